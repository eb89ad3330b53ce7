"""Thread-pool settings: set/get, RUSTTORCH_NUM_THREADS, results independent of the thread
count, and fork safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
import torch

import rusttorch_view as rv

# Large enough that copy() splits the work over several threads (64Ki elements per thread).
BIG = (1024, 1536)


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = rv.get_num_threads()
    yield
    rv.set_num_threads(before)


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Runs `code` in a fresh interpreter; returns stdout, failing on a non-zero exit."""
    full_env = {k: v for k, v in os.environ.items() if k != "RUSTTORCH_NUM_THREADS"}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.usefixtures("restore_threads")
@pytest.mark.parametrize("n", [0, -1, 1025, 2**40])
def test_a_thread_count_out_of_range_is_refused_and_changes_nothing(n: int) -> None:
    before = rv.get_num_threads()
    with pytest.raises(ValueError, match="expected an integer from 1 to 1024"):
        rv.set_num_threads(n)
    assert rv.get_num_threads() == before


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_set_get_round_trip(n: int) -> None:
    rv.set_num_threads(n)
    assert rv.get_num_threads() == n
    # Still n once the pool has been (re)built by a kernel.
    rv.copy(torch.zeros(BIG))
    assert rv.get_num_threads() == n


@pytest.mark.usefixtures("restore_threads")
@pytest.mark.parametrize("n", [1, 2, 5])
def test_results_do_not_depend_on_the_thread_count(n: int) -> None:
    x = torch.randn(BIG[1], BIG[0], generator=torch.Generator().manual_seed(0)).t()
    rv.set_num_threads(n)
    y = rv.copy(x)
    assert torch.equal(y, x.contiguous())
    out = torch.empty(BIG)
    rv.copy(x, out=out)
    assert torch.equal(out, x)


@pytest.mark.usefixtures("restore_threads")
def test_concurrent_python_threads() -> None:
    """Large copies from several Python threads at once (the GIL is released) are correct."""
    rv.set_num_threads(2)
    sources = [torch.full((512, 512), float(k)).t() for k in range(6)]
    results: dict[int, torch.Tensor] = {}

    def work(k: int) -> None:
        for _ in range(5):
            results[k] = rv.copy(sources[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for k in range(6):
        assert torch.equal(results[k], sources[k].contiguous())


@pytest.mark.usefixtures("restore_threads")
def test_set_num_threads_while_kernels_run() -> None:
    """Resizing the pool while other threads run large copies neither deadlocks nor
    corrupts results (running work finishes on the old pool)."""
    x = torch.arange(BIG[0] * BIG[1], dtype=torch.float32).reshape(BIG[1], BIG[0]).t()
    expected = x.contiguous()
    failures: list[str] = []
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            if not torch.equal(rv.copy(x), expected):
                failures.append("wrong result")

    workers = [threading.Thread(target=work) for _ in range(3)]
    for t in workers:
        t.start()
    for n in [1, 4, 2, 3, 1, 2] * 5:
        rv.set_num_threads(n)
        assert rv.get_num_threads() == n
        time.sleep(0.01)  # let the workers launch copies on this pool size
    stop.set()
    for t in workers:
        t.join(timeout=60)
        assert not t.is_alive(), "a copy hung while the pool was resized"
    assert failures == []


@pytest.fixture(scope="module")
def default_threads() -> int:
    """get_num_threads() in a fresh interpreter with RUSTTORCH_NUM_THREADS unset."""
    return int(run_python("import rusttorch_view as rv; print(rv.get_num_threads())"))


def test_default_is_the_usable_cores(default_threads: int) -> None:
    # Rust also honours cgroup CPU quotas, so it may see fewer cores than os.cpu_count().
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= default_threads <= (usable or 1)


def test_env_var_sets_the_default(default_threads: int) -> None:
    # The variable is read whenever the pool is (re)built and set_num_threads was not
    # called, so one interpreter can check several values before the first kernel runs.
    code = """
        import os, warnings
        warnings.simplefilter("error")  # a valid value must not warn
        import torch, rusttorch_view as rv
        seen = [rv.get_num_threads()]
        for value in [" 5 ", "", "abc", "0"]:
            os.environ["RUSTTORCH_NUM_THREADS"] = value
            seen.append(rv.get_num_threads())
        os.environ["RUSTTORCH_NUM_THREADS"] = "3"
        rv.copy(torch.zeros(1024, 1024))  # builds the pool with 3 threads
        seen.append(rv.get_num_threads())
        rv.set_num_threads(2)  # overrides the variable
        rv.copy(torch.zeros(1024, 1024))
        seen.append(rv.get_num_threads())
        print(*seen)
    """
    seen = run_python(code, env={"RUSTTORCH_NUM_THREADS": "3"}).split()
    d = str(default_threads)
    assert seen == ["3", "5", d, d, d, "3", "2"]


def test_invalid_env_var_warns_at_import_and_falls_back_to_cores(default_threads: int) -> None:
    code = """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import rusttorch_view as rv
        hits = [w for w in caught if "RUSTTORCH_NUM_THREADS" in str(w.message)]
        print(len(hits), hits[0].category.__name__ if hits else "-", rv.get_num_threads())
    """
    out = run_python(code, env={"RUSTTORCH_NUM_THREADS": "abc"}).split()
    assert out == ["1", "RuntimeWarning", str(default_threads)]


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", "2x", "1e3", "1025", "1000000000000"])
def test_invalid_env_values_are_reported(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTTORCH_NUM_THREADS", value)
    problem = rv._native._thread_env_problem()
    assert problem is not None
    assert value in problem


@pytest.mark.parametrize("value", ["1", "4", " 8 ", ""])
def test_valid_env_values_are_not_reported(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTTORCH_NUM_THREADS", value)
    assert rv._native._thread_env_problem() is None


def pool_threads_snippet() -> str:
    return """
        def pool_threads():
            names = []
            for task in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{task}/comm") as f:
                        names.append(f.read().strip())
                except OSError:
                    pass
            return sum(n.startswith("rusttorch-") for n in names)
    """


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs os.fork and /proc")
def test_fork_after_the_pool_started() -> None:
    """A forked child builds its own pool instead of waiting on the parent's threads.

    (Without the at-fork hook the child would hang: a fork through libc directly, which
    skips Python's hooks, leaves the child a pool whose worker threads do not exist.)
    """
    code = (
        """
        import os, signal, time, warnings
        warnings.simplefilter("ignore")  # Python warns about fork() in threaded processes
        import numpy as np, torch, rusttorch_view as rv
        # Keep torch's own OpenMP pool out of it: GNU OpenMP can hang in a forked child.
        torch.set_num_threads(1)
        rv.set_num_threads(4)
    """
        + pool_threads_snippet()
        + """
        a = np.arange(1536 * 1024, dtype=np.float32).reshape(1536, 1024)
        x = torch.from_numpy(a).t()
        expected = a.T.copy()
        assert np.array_equal(rv.copy(x).numpy(), expected)
        assert pool_threads() == 4, "the large copy should have started the pool"

        pid = os.fork()
        if pid == 0:
            ok = pool_threads() == 0  # threads do not survive fork
            ok = ok and np.array_equal(rv.copy(x).numpy(), expected)
            ok = ok and pool_threads() == 4 and rv.get_num_threads() == 4
            out = torch.empty(1024, 1536)
            rv.copy(x, out=out)
            os._exit(0 if ok and np.array_equal(out.numpy(), expected) else 3)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                result = str(os.waitstatus_to_exitcode(status))
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            result = "hung"
        assert np.array_equal(rv.copy(x).numpy(), expected)  # the parent's pool still works
        print(result)
    """
    )
    assert run_python(code, timeout=60).split() == ["0"]

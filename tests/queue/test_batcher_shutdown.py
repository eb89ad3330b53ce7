"""close(), the context manager, dropping, interpreter exit and fork: every request is
resolved exactly once and no thread is left behind."""

from __future__ import annotations

import concurrent.futures
import gc
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from typing import Any

import pytest
import torch
from _queue_support import Gate, join_all, start_thread

import rusttorch_queue as rq


def test_close_drains_pending_requests_then_joins() -> None:
    gate = Gate(lambda b: b + 1)
    batcher = rq.Batcher(gate, max_batch_size=4, max_wait_ms=0)
    gate.hold(batcher.submit)
    futures = [batcher.submit(torch.full((2,), float(i))) for i in range(10)]
    closer = start_thread(batcher.close)
    time.sleep(0.1)
    assert closer.is_alive(), "close() must wait for the queued requests"
    assert batcher.closed
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(torch.ones(2))
    gate.open()
    join_all([closer], timeout=10)
    assert [f.result(timeout=0).tolist() for f in futures] == [[i + 1.0] * 2 for i in range(10)]
    batcher.close()  # idempotent


def test_the_context_manager_drains_on_exit_even_after_an_error() -> None:
    gate = Gate()
    futures: list[concurrent.futures.Future[Any]] = []
    with pytest.raises(LookupError), rq.Batcher(gate, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        futures = [batcher.submit(torch.ones(1)) for _ in range(5)]
        threading.Timer(0.1, gate.open).start()
        raise LookupError("the with-block failed")
    assert batcher.closed
    assert all(f.done() and f.result().item() == 1.0 for f in futures)


def test_callers_blocked_in_call_get_their_results_across_close() -> None:
    gate = Gate(lambda b: b * 2)
    batcher = rq.Batcher(gate, max_batch_size=8, max_wait_ms=0)
    gate.hold(batcher.submit)
    results: list[float] = []
    callers = [
        start_thread(lambda i=i: results.append(batcher(torch.tensor([float(i)])).item()))
        for i in range(6)
    ]
    time.sleep(0.1)
    closer = start_thread(batcher.close)
    gate.open()
    join_all([*callers, closer], timeout=10)
    assert sorted(results) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


def test_every_future_is_resolved_exactly_once() -> None:
    """Many requests, some malformed for their batch, some in failing batches, some
    cancelled, some timed out; each future fires its callback exactly once."""
    rng = random.Random(0)
    fired: Counter[int] = Counter()
    lock = threading.Lock()

    def fn(batch: torch.Tensor) -> torch.Tensor:
        if rng.random() < 0.2:
            raise RuntimeError("flaky model")
        time.sleep(rng.random() * 0.002)
        return batch

    batcher = rq.Batcher(fn, max_batch_size=8, max_wait_ms=1, max_queue=64, timeout_ms=30)
    futures: list[concurrent.futures.Future[Any]] = []
    refused_at_submit = [0]

    def client(c: int) -> None:
        for i in range(150):
            shape = (2,) if rng.random() < 0.9 else (3,)
            try:
                future = batcher.submit(torch.ones(shape))
            except TimeoutError:  # the queue stayed full for timeout_ms: nothing was queued
                with lock:
                    refused_at_submit[0] += 1
                continue
            key = c * 1000 + i

            def done(_: Any, key: int = key) -> None:
                with lock:
                    fired[key] += 1

            future.add_done_callback(done)
            if rng.random() < 0.05:
                future.cancel()
            futures.append(future)

    join_all([start_thread(client, c) for c in range(8)], timeout=60)
    batcher.close()
    assert all(f.done() for f in futures)
    assert len(fired) == len(futures) == 8 * 150 - refused_at_submit[0]
    assert set(fired.values()) == {1}
    stats = batcher.stats
    outcomes = Counter(
        "cancelled"
        if f.cancelled()
        else type(f.exception()).__name__
        if f.exception() is not None
        else "ok"
        for f in futures
    )
    assert outcomes["cancelled"] == stats.cancelled
    assert outcomes["TimeoutError"] == stats.timed_out
    assert sum(outcomes.values()) == len(futures)
    assert outcomes["ok"] + stats.failed == stats.requests


def test_every_blocked_call_is_resolved_exactly_once_while_close_races_the_callers() -> None:
    """Callers loop on batcher(x) (some malformed for their batch, some in failing batches,
    some timed out) while close() lands in the middle: every call returns or raises once,
    with its own row or the error that concerns it, and nothing hangs."""
    rng = random.Random(2)
    lock = threading.Lock()
    rows_ok = [0]

    def fn(batch: torch.Tensor) -> torch.Tensor:
        if rng.random() < 0.2:
            raise LookupError("flaky model")
        time.sleep(rng.random() * 0.003)
        with lock:
            rows_ok[0] += len(batch)
        return batch

    batcher = rq.Batcher(fn, max_batch_size=4, max_wait_ms=1, max_queue=16, timeout_ms=20)
    outcomes: Counter[str] = Counter()
    started = threading.Barrier(7)

    def caller(c: int) -> None:
        started.wait()
        for i in range(10_000):
            value = float(c * 100_000 + i)
            shape = (2,) if rng.random() < 0.9 else (3,)
            try:
                result = batcher(torch.full(shape, value))
            except RuntimeError as e:
                assert "closed" in str(e), e
                with lock:
                    outcomes["closed"] += 1
                return  # refused at submit: nothing was queued
            except (LookupError, ValueError, TimeoutError) as e:
                with lock:
                    outcomes[type(e).__name__] += 1
                continue
            assert result.tolist() == [value] * shape[0], (result, value)
            with lock:
                outcomes["ok"] += 1

    callers = [start_thread(caller, c) for c in range(6)]
    started.wait()
    time.sleep(0.3)
    batcher.close()
    join_all(callers, timeout=30)
    stats = batcher.stats
    assert outcomes["closed"] == 6
    assert outcomes["ok"] > 0
    assert outcomes["ok"] == rows_ok[0] == stats.requests - stats.failed
    assert outcomes["LookupError"] == stats.failed
    assert outcomes["ValueError"] == stats.rejected
    assert outcomes["TimeoutError"] == stats.timed_out


def test_interpreter_exit_with_timed_out_futures_in_flight_is_clean() -> None:
    # The expiry thread fails queued Futures while fn is busy, and is joined with the
    # worker before Python finalizes.
    result = run_python(
        """
        import time, torch, rusttorch_queue as rq

        def slow(batch):
            time.sleep(0.6)
            return batch

        batcher = rq.Batcher(slow, max_batch_size=1, max_wait_ms=0, timeout_ms=200)
        for i in range(4):
            batcher.submit(torch.ones(1)).add_done_callback(
                lambda f: print("timeout" if f.exception() else "done", flush=True)
            )
        print("exiting", flush=True)
        """
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["done", "exiting", "timeout", "timeout", "timeout"]


def test_a_dropped_batcher_still_runs_what_was_queued() -> None:
    batcher = rq.Batcher(lambda b: b * 3, max_wait_ms=50)
    future = batcher.submit(torch.ones(1))
    del batcher
    gc.collect()
    assert future.result(timeout=10).item() == 3.0


def test_close_from_fn_does_not_deadlock() -> None:
    holder: list[rq.Batcher] = []

    def fn(batch: torch.Tensor) -> torch.Tensor:
        holder[0].close()
        return batch

    batcher = rq.Batcher(fn, max_wait_ms=0)
    holder.append(batcher)
    assert batcher(torch.ones(1)).item() == 1.0
    assert batcher.closed
    batcher.close()


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_interpreter_exit_with_requests_in_flight_is_clean() -> None:
    # Never closed, still busy at exit: the atexit hook drains and joins the worker
    # before Python finalizes, so the process exits normally and callbacks still run.
    result = run_python(
        """
        import time, torch, rusttorch_queue as rq

        def slow(batch):
            time.sleep(0.05)
            return batch

        batcher = rq.Batcher(slow, max_batch_size=2, max_wait_ms=1)
        for i in range(6):
            batcher.submit(torch.ones(1)).add_done_callback(lambda f: print("done", flush=True))
        print("exiting", flush=True)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["exiting"] + ["done"] * 6


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_clear_error_instead_of_a_hang() -> None:
    result = run_python(
        """
        import os, torch, rusttorch_queue as rq

        batcher = rq.Batcher(lambda b: b)
        batcher(torch.ones(1))
        pid = os.fork()
        if pid == 0:
            try:
                batcher.submit(torch.ones(1))
                os._exit(1)
            except RuntimeError as e:
                os._exit(0 if "fork" in str(e) else 2)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        print("parent", batcher(torch.ones(1)).item())
        batcher.close()
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["child", "0", "parent", "1.0"]

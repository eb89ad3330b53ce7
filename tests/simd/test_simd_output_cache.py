"""The cache of large outputs (rt-view's ``OwnedTensor::for_overwrite``): a dropped output's
memory serves the next output of the same size, never one that is still alive, every
reused element is overwritten, and ``RUSTTORCH_OUTPUT_CACHE_MB`` bounds what is kept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable

import torch

import rusttorch_simd as rs

# 8 MiB of float32: above the 4 MiB from which outputs are cached.
N = 2 * 1024 * 1024


def test_a_dropped_output_serves_the_next_of_the_same_size() -> None:
    rs.release_cached_outputs()
    x = torch.randn(N)
    first = rs.relu(x)
    addr = first.data_ptr()
    del first
    assert rs.cached_output_bytes() >= 4 * N
    # Reused memory, but every element of the new result is the new op's.
    y = rs.exp(x)
    assert y.data_ptr() == addr
    torch.testing.assert_close(y, torch.exp(x), rtol=2 * 2.0**-23, atol=0)
    # Another shape of the same byte length takes it too.
    del y
    z = rs.tanh(x.view(1024, -1).double()[:, : N // 2048])
    assert z.dtype == torch.float64 and z.data_ptr() == addr
    torch.testing.assert_close(z, torch.tanh(x.view(1024, -1).double()[:, : N // 2048]))


def test_a_live_output_is_never_reused() -> None:
    x = torch.randn(N)
    a = rs.relu(x)
    view = a[::2]  # keeps a's storage alive after `del a`
    addr = a.data_ptr()
    del a
    b = rs.silu(x)
    assert b.data_ptr() != addr
    expected = torch.relu(x)[::2]
    b.fill_(7.0)
    assert torch.equal(view, expected)
    del view
    c = rs.sigmoid(x)
    assert c.data_ptr() == addr  # free once the last view died


def test_release_hands_everything_back() -> None:
    x = torch.randn(N)
    for _ in range(3):
        rs.relu(x)
    assert rs.cached_output_bytes() >= 4 * N
    assert rs.release_cached_outputs() >= 4 * N
    assert rs.cached_output_bytes() == 0


def test_outputs_from_many_threads_stay_correct() -> None:
    # Threads allocating, filling and dropping outputs of one size at once: each result
    # must be its own op's, whichever buffer it got.
    xs = [torch.randn(N // 2) for _ in range(4)]
    want = [torch.sigmoid(x) for x in xs]
    errors: list[str] = []

    def worker(i: int) -> None:
        for _ in range(20):
            y = rs.sigmoid(xs[i])
            if not torch.allclose(y, want[i], rtol=1e-6, atol=0):
                errors.append(f"thread {i}: wrong result")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def run_with_limit(limit_mb: str, code: str) -> str:
    env = {**os.environ, "RUSTTORCH_OUTPUT_CACHE_MB": limit_mb}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_limit_evicts_the_oldest_and_zero_turns_the_cache_off() -> None:
    code = """
        import torch, rusttorch_simd as rs
        MB = 1 << 20
        a, b = rs.relu(torch.randn(MB * 5 // 4)), rs.relu(torch.randn(MB * 6 // 4))
        del a  # 5 MiB cached
        first = rs.cached_output_bytes()
        del b  # 6 MiB more: over 8 MiB, so the older 5 MiB go
        second = rs.cached_output_bytes()
        big = rs.relu(torch.randn(MB * 3))  # 12 MiB: larger than the limit, never kept
        del big
        print(first // MB, second // MB, rs.cached_output_bytes() // MB)
    """
    assert run_with_limit("8", code) == "5 6 6"
    assert run_with_limit("0", code) == "0 0 0"


def test_an_invalid_limit_warns_at_import_and_is_ignored(
    assert_invalid_cache_limit_warns: Callable[[str], None],
) -> None:
    # tests/sparse checks rusttorch_sparse's import the same way; this suite also runs where
    # only rusttorch-simd is installed (nox -s isolated).
    assert_invalid_cache_limit_warns("rusttorch_simd")

"""Setup shared by every crate's test suite."""

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

# A shell without job control starts background commands (`cmd &`) with SIGINT ignored, and
# Python then leaves it ignored: the Ctrl-C tests, which simulate the signal with
# `_thread.interrupt_main()`, would wait for an interrupt that never comes. Restore Python's
# handler so they behave as under a terminal or CI.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _check_releases_gil(name: str, call: Callable[[], object]) -> None:
    """Runs ``call`` while another thread stamps the time every 0.5 ms, and asserts that
    thread kept running during the call. A warm-up call times it; the timed stretch repeats
    it (up to 8 times) until it lasts about 60 ms, so a machine faster than the caller
    planned for still gives a stretch long enough to tell."""
    stamps: list[float] = []
    stop = False

    def count() -> None:
        while not stop:
            stamps.append(time.perf_counter())
            time.sleep(0.0005)

    warm_start = time.perf_counter()
    call()  # warm up the pool and the pages, and time one call
    one_call = max(time.perf_counter() - warm_start, 1e-4)
    # At most 8: far more gaps would let a GIL-holding kernel through as often as a
    # releasing one lets the thread in.
    repeats = min(math.ceil(0.06 / one_call), 8)
    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.02)
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        end = time.perf_counter()
    finally:
        stop = True
        t.join()
    assert end - start > 0.03, f"{name}: the calls were too short to tell ({end - start:.3f} s)"
    # Holding the GIL for the call, the other thread could run only in the one switch
    # interval (5 ms) before the first call took it, and once in each gap between calls.
    during = [s for s in stamps if start + 0.012 < s < end - 0.002]
    needed = 5 + (repeats - 1)
    assert len(during) >= needed, (
        f"{name}: {len(during)} stamps during {repeats} calls over {end - start:.3f} s "
        f"(a call that releases the GIL lets at least {needed} in)"
    )


@pytest.fixture
def assert_releases_gil() -> Callable[[str, Callable[[], object]], None]:
    """The check above, for tests in any crate's suite."""
    return _check_releases_gil


def _check_invalid_cache_limit_warns(module: str) -> None:
    """Imports ``module`` in a child with ``RUSTTORCH_OUTPUT_CACHE_MB=lots``: the import must
    succeed, warn (RuntimeWarning) naming the variable and its value, and serve calls."""
    env = {**os.environ, "RUSTTORCH_OUTPUT_CACHE_MB": "lots"}
    code = f"import {module} as m; print(m.cached_output_bytes())"
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "RUSTTORCH_OUTPUT_CACHE_MB" in done.stderr and "lots" in done.stderr
    assert "RuntimeWarning" in done.stderr


@pytest.fixture
def assert_invalid_cache_limit_warns() -> Callable[[str], None]:
    """The check above, for the suites of the wheels that have the output cache."""
    return _check_invalid_cache_limit_warns

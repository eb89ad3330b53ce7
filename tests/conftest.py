"""Setup shared by every crate's test suite."""

import signal
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
    """Runs ``call`` twice (a warm-up, then timed) while another thread stamps the time
    every 0.5 ms, and asserts that thread kept running during the timed call. The call
    must take over 30 ms (the caller makes it long enough: one thread, a slow level)."""
    stamps: list[float] = []
    stop = False

    def count() -> None:
        while not stop:
            stamps.append(time.perf_counter())
            time.sleep(0.0005)

    call()  # warm up the pool and the pages
    t = threading.Thread(target=count)
    t.start()
    try:
        time.sleep(0.02)
        start = time.perf_counter()
        call()
        end = time.perf_counter()
    finally:
        stop = True
        t.join()
    assert end - start > 0.03, f"{name}: the call was too short to tell ({end - start:.3f} s)"
    # Holding the GIL for the call, the other thread could run only in the one switch
    # interval (5 ms) before the call took it.
    during = [s for s in stamps if start + 0.012 < s < end - 0.002]
    assert len(during) >= 5, f"{name}: {len(during)} stamps during a {end - start:.3f} s call"


@pytest.fixture
def assert_releases_gil() -> Callable[[str, Callable[[], object]], None]:
    """The check above, for tests in any crate's suite."""
    return _check_releases_gil

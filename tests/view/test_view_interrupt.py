"""Ctrl-C reaches Rust work that runs with the GIL released (rt_view::python::run_interruptible)."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

import rusttorch_view as rv


def test_keyboard_interrupt_stops_long_rust_work_promptly() -> None:
    # interrupt_main() raises the same flag a SIGINT handler does.
    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            rv._native._sleep_interruptible(30.0)
    finally:
        # Never let a pending interrupt fire into the next test.
        timer.cancel()
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"took {elapsed:.2f} s to react to Ctrl-C"


def test_uninterrupted_work_runs_to_completion() -> None:
    slept = rv._native._sleep_interruptible(0.15)
    assert 0.15 <= slept < 1.0

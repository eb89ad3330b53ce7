"""Ctrl-C reaches a thread blocked in get() or put(), and the queue stays usable."""

from __future__ import annotations

import time

import pytest
from _queue_support import interrupt_after

import rusttorch_queue as rq


def test_ctrl_c_interrupts_a_blocking_get() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    start = time.monotonic()
    with interrupt_after(0.2), pytest.raises(KeyboardInterrupt):
        q.get()
    assert time.monotonic() - start < 2.0, "Ctrl-C took too long to land"
    q.put(5)
    assert q.get() == 5


def test_ctrl_c_interrupts_a_timed_get() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    start = time.monotonic()
    with interrupt_after(0.2), pytest.raises(KeyboardInterrupt):
        q.get(timeout=60)
    assert time.monotonic() - start < 2.0


def test_ctrl_c_interrupts_a_blocking_put_without_adding_the_item() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    q.put(1)
    start = time.monotonic()
    with interrupt_after(0.2), pytest.raises(KeyboardInterrupt):
        q.put(2)
    assert time.monotonic() - start < 2.0
    assert q.qsize() == 1
    assert q.get() == 1
    assert q.empty()

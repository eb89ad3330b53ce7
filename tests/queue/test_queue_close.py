"""close(): puts fail, gets drain what is left and then fail, every waiter wakes."""

from __future__ import annotations

import sys
import time

import pytest
from _queue_support import join_all, start_thread

import rusttorch_queue as rq


def test_gets_drain_then_raise_closed() -> None:
    q: rq.Queue[int] = rq.Queue(4)
    q.put(1)
    q.put(2)
    q.close()
    assert q.closed
    assert q.get() == 1
    assert q.get_nowait() == 2
    with pytest.raises(rq.Closed, match="closed and drained"):
        q.get()
    with pytest.raises(rq.Closed):
        q.get_nowait()
    with pytest.raises(rq.Closed):
        q.get(timeout=0.5)


def test_puts_after_close_raise_closed_and_keep_nothing() -> None:
    q: rq.Queue[object] = rq.Queue(4)
    q.close()
    item = object()
    before = sys.getrefcount(item)
    for put in (q.put, q.put_nowait, lambda x: q.put(x, timeout=0.1)):
        with pytest.raises(rq.Closed, match="closed"):
            put(item)
    assert q.qsize() == 0
    assert sys.getrefcount(item) == before


def test_close_is_idempotent() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    q.close()
    q.close()
    assert q.closed


def test_iteration_ends_once_closed_and_drained() -> None:
    q: rq.Queue[int | None] = rq.Queue(3)

    def produce() -> None:
        for i in [0, None, 2, 3, 4]:  # None is an item like any other
            q.put(i)
        q.close()

    producer = start_thread(produce)
    assert list(q) == [0, None, 2, 3, 4]
    join_all([producer])
    assert list(q) == []


def test_close_wakes_every_blocked_getter() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    outcomes: list[str] = []

    def getter(timeout: float | None = None) -> None:
        try:
            q.get(timeout=timeout)
            outcomes.append("item")
        except rq.Closed:
            outcomes.append("closed")

    threads = [start_thread(getter) for _ in range(4)]
    threads += [start_thread(lambda: getter(timeout=60.0)) for _ in range(4)]
    time.sleep(0.1)
    start = time.monotonic()
    q.close()
    join_all(threads, timeout=10)
    assert time.monotonic() - start < 5
    assert outcomes == ["closed"] * 8


def test_close_wakes_every_blocked_putter_and_keeps_the_queued_items() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    q.put(0)
    outcomes: list[str] = []

    def putter(i: int) -> None:
        try:
            q.put(i)
            outcomes.append("put")
        except rq.Closed:
            outcomes.append("closed")

    threads = [start_thread(putter, i) for i in range(1, 5)]
    time.sleep(0.1)
    q.close()
    join_all(threads, timeout=10)
    assert outcomes == ["closed"] * 4
    assert q.get() == 0
    with pytest.raises(rq.Closed):
        q.get()

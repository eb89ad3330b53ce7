"""Blocking and timeouts: waits last as long as asked, end early for an item, and burn no CPU."""

from __future__ import annotations

import threading
import time

import pytest
from _queue_support import join_all, process_cpu_seconds, start_thread

import rusttorch_queue as rq


def test_get_times_out_with_empty() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    start = time.monotonic()
    with pytest.raises(rq.Empty, match="until the timeout"):
        q.get(timeout=0.2)
    waited = time.monotonic() - start
    assert 0.19 <= waited < 2.0


def test_put_times_out_with_full_and_the_item_stays_out() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    q.put(1)
    start = time.monotonic()
    with pytest.raises(rq.Full):
        q.put(2, timeout=0.2)
    assert 0.19 <= time.monotonic() - start < 2.0
    assert q.qsize() == 1
    assert q.get() == 1


def test_zero_timeout_does_not_wait_and_block_false_ignores_timeout() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    start = time.monotonic()
    with pytest.raises(rq.Empty):
        q.get(timeout=0)
    with pytest.raises(rq.Empty):
        q.get(block=False, timeout=60)
    assert time.monotonic() - start < 0.5


def test_a_waiting_get_returns_as_soon_as_an_item_arrives() -> None:
    q: rq.Queue[str] = rq.Queue(1)
    timer = threading.Timer(0.1, q.put, args=("late",))
    timer.start()
    start = time.monotonic()
    assert q.get(timeout=30) == "late"
    assert time.monotonic() - start < 5


def test_a_waiting_put_returns_as_soon_as_there_is_room() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    q.put(1)
    timer = threading.Timer(0.1, q.get)
    timer.start()
    q.put(2, timeout=30)
    timer.join()
    assert q.get_nowait() == 2


def test_a_huge_timeout_waits_like_none() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    threading.Timer(0.05, q.put, args=(7,)).start()
    assert q.get(timeout=1e300) == 7


def test_waiting_releases_the_gil() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    getter = start_thread(q.get)
    # The getter waits in Rust without the GIL, so this thread runs Python freely.
    count = 0
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        count += 1
    assert count > 10_000
    q.put(1)
    join_all([getter])


def test_waiting_parks_instead_of_spinning() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    getter = start_thread(q.get)
    time.sleep(0.05)
    cpu = process_cpu_seconds()
    time.sleep(0.5)
    used = process_cpu_seconds() - cpu
    # A spinning getter would use about 0.5 s of CPU here.
    assert used < 0.1, f"a waiting get() used {used:.3f} s of CPU in 0.5 s"
    q.put(1)
    join_all([getter])

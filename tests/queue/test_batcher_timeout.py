"""timeout_ms: a request still queued that long after submit fails with TimeoutError."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
import torch
from _queue_support import Gate, join_all, start_thread

import rusttorch_queue as rq


def test_requests_queued_past_their_timeout_fail_and_the_others_run() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=8, max_wait_ms=0, timeout_ms=100) as batcher:
        gate.hold(batcher.submit)
        stale = [batcher.submit(torch.ones(1)) for _ in range(3)]
        time.sleep(0.3)  # the worker is busy: these wait past their 100 ms
        gate.open()
        for f in stale:
            error = f.exception(timeout=10)
            assert isinstance(error, TimeoutError)
            assert "in the batcher's queue, past its timeout_ms=100" in str(error)
        fresh = batcher.submit(torch.ones(1) * 2)
        assert fresh.result(timeout=10).item() == 2.0
    assert batcher.stats.timed_out == 3
    # Only the requests that were taken into a batch count towards the queue wait: the
    # three that timed out after 300 ms would otherwise be most of the percentiles.
    p99 = batcher.stats.queue_wait_p99_ms
    assert p99 is not None and p99 < 100, p99


def test_a_timed_out_call_raises_timeout_error() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=8, max_wait_ms=0, timeout_ms=50) as batcher:
        gate.hold(batcher.submit)
        threading.Timer(0.3, gate.open).start()
        with pytest.raises(TimeoutError, match="timeout_ms=50"):
            batcher(torch.ones(1))


def test_a_lone_request_is_not_timed_out_by_the_batch_window() -> None:
    # max_wait_ms < timeout_ms: a request alone in the queue waits its window and runs.
    with rq.Batcher(lambda b: b, max_batch_size=8, max_wait_ms=50, timeout_ms=200) as batcher:
        for _ in range(3):
            assert batcher(torch.ones(1)).item() == 1.0
        assert batcher.stats.timed_out == 0


def test_submit_waiting_for_room_gives_up_at_the_timeout() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=1, max_wait_ms=0, max_queue=1, timeout_ms=150) as batcher:
        gate.hold(batcher.submit)
        queued = batcher.submit(torch.ones(1))
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="stayed full"):
            batcher.submit(torch.ones(1))
        assert 0.14 <= time.monotonic() - start < 5
        gate.open()
        queued.exception(timeout=10)  # resolved either way


class SlowFn:
    """A batch function whose first call sleeps `seconds`; records when it started and
    finished, and every batch it was given."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = threading.Event()
        self.finished = threading.Event()
        self.batches: list[torch.Tensor] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.batches.append(batch)
        if not self.started.is_set():
            self.started.set()
            time.sleep(self.seconds)
            self.finished.set()
        return batch


def test_a_blocked_call_times_out_at_its_deadline_while_fn_is_busy() -> None:
    slow = SlowFn(0.6)
    with rq.Batcher(slow, max_batch_size=1, max_wait_ms=0, timeout_ms=50) as batcher:
        blocker = batcher.submit(torch.zeros(1))
        assert slow.started.wait(10)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="in the batcher's queue, past its timeout_ms=50"):
            batcher(torch.ones(1))
        elapsed = time.monotonic() - start
        # At its deadline, not when fn returns (generous bounds: a loaded 2-core VM).
        assert not slow.finished.is_set(), "the TimeoutError waited for fn to return"
        assert 0.045 <= elapsed < 0.45, elapsed
        assert blocker.result(timeout=10).item() == 0.0
        assert batcher(torch.full((1,), 2.0)).item() == 2.0
    # The timed-out request never reached fn.
    assert [b.tolist() for b in slow.batches] == [[[0.0]], [[2.0]]]
    assert batcher.stats.timed_out == 1


def test_a_future_fails_at_its_deadline_while_fn_is_busy() -> None:
    slow = SlowFn(0.6)
    with rq.Batcher(slow, max_batch_size=1, max_wait_ms=0, timeout_ms=50) as batcher:
        blocker = batcher.submit(torch.zeros(1))
        assert slow.started.wait(10)
        start = time.monotonic()
        futures = [batcher.submit(torch.ones(1)) for _ in range(3)]
        arrived = []
        for future in futures:
            error = future.exception(timeout=10)
            arrived.append(time.monotonic() - start)
            assert isinstance(error, TimeoutError)
            assert "past its timeout_ms=50" in str(error)
        assert not slow.finished.is_set(), "the TimeoutError waited for fn to return"
        assert min(arrived) >= 0.045 and max(arrived) < 0.45, arrived
        assert blocker.result(timeout=10).item() == 0.0
    assert len(slow.batches) == 1
    assert batcher.stats.timed_out == 3


def test_asubmit_fails_at_its_deadline_while_fn_is_busy() -> None:
    slow = SlowFn(0.6)

    async def main(batcher: rq.Batcher) -> float:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            await batcher.asubmit(torch.ones(1))
        return time.monotonic() - start

    with rq.Batcher(slow, max_batch_size=1, max_wait_ms=0, timeout_ms=50) as batcher:
        batcher.submit(torch.zeros(1))
        assert slow.started.wait(10)
        elapsed = asyncio.run(main(batcher))
        assert not slow.finished.is_set()
        assert 0.045 <= elapsed < 0.45, elapsed


def test_a_future_cancelled_before_its_deadline_stays_cancelled() -> None:
    slow = SlowFn(0.4)
    with rq.Batcher(slow, max_batch_size=1, max_wait_ms=0, timeout_ms=50) as batcher:
        batcher.submit(torch.zeros(1))
        assert slow.started.wait(10)
        future = batcher.submit(torch.ones(1))
        assert future.cancel()
        time.sleep(0.15)  # past its deadline
        assert future.cancelled()
    assert len(slow.batches) == 1
    assert (batcher.stats.cancelled, batcher.stats.timed_out) == (1, 0)


def test_racing_deadlines_resolve_every_request_exactly_once() -> None:
    """Deadlines just around the time the worker starts each request, so that callers,
    the expiry thread and the worker race for the same requests: each request either ran
    (its own row back, and fn saw it) or timed out, never both, never neither."""
    rng = random.Random(1)
    rows_run = [0]
    fired: Counter[int] = Counter()
    lock = threading.Lock()

    def fn(batch: torch.Tensor) -> torch.Tensor:
        time.sleep(rng.random() * 0.008)
        rows_run[0] += len(batch)
        return batch

    batcher = rq.Batcher(fn, max_batch_size=4, max_wait_ms=1, max_queue=256, timeout_ms=6)
    ok = [0]
    timed_out = [0]
    futures: list[concurrent.futures.Future[Any]] = []

    def record(value: float, outcome: Any) -> None:
        with lock:
            if isinstance(outcome, TimeoutError):
                timed_out[0] += 1
            else:
                assert outcome.item() == value
                ok[0] += 1

    def client(c: int) -> None:
        for i in range(120):
            value = float(c * 1000 + i)
            x = torch.tensor([value])
            if i % 2:
                try:
                    outcome = batcher(x)
                except TimeoutError as e:
                    outcome = e
                record(value, outcome)
            else:
                future = batcher.submit(x)

                def done(f: concurrent.futures.Future[Any], value: float = value) -> None:
                    with lock:
                        fired[int(value)] += 1
                    record(value, f.exception() or f.result())

                future.add_done_callback(done)
                with lock:
                    futures.append(future)

    join_all([start_thread(client, c) for c in range(6)], timeout=120)
    batcher.close()
    assert all(f.done() for f in futures)
    assert len(fired) == len(futures) == 6 * 60 and set(fired.values()) == {1}
    assert ok[0] + timed_out[0] == 6 * 120
    assert ok[0] == rows_run[0] == batcher.stats.requests
    assert timed_out[0] == batcher.stats.timed_out

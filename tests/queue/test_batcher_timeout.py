"""timeout_ms: a request still queued that long after submit fails with TimeoutError."""

from __future__ import annotations

import time

import pytest
import torch
from _queue_support import Gate

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


def test_a_timed_out_call_raises_timeout_error() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=8, max_wait_ms=0, timeout_ms=50) as batcher:
        gate.hold(batcher.submit)
        import threading

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

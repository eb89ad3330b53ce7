"""Ctrl-C reaches a caller blocked in a Batcher, and the batcher keeps working."""

from __future__ import annotations

import time

import pytest
import torch
from _queue_support import Gate, interrupt_after

import rusttorch_queue as rq


def test_ctrl_c_interrupts_a_call_waiting_for_its_result() -> None:
    gate = Gate(lambda b: b + 1)
    with rq.Batcher(gate, max_batch_size=4, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        start = time.monotonic()
        with interrupt_after(0.2), pytest.raises(KeyboardInterrupt):
            batcher(torch.ones(1))
        assert time.monotonic() - start < 2.0
        gate.open()
        assert batcher(torch.ones(1)).item() == 2.0


def test_ctrl_c_interrupts_a_submit_waiting_for_room() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=1, max_wait_ms=0, max_queue=1) as batcher:
        gate.hold(batcher.submit)
        queued = batcher.submit(torch.ones(1))
        start = time.monotonic()
        with interrupt_after(0.2), pytest.raises(KeyboardInterrupt):
            batcher.submit(torch.ones(1))
        assert time.monotonic() - start < 2.0
        gate.open()
        assert queued.result(timeout=10).item() == 1.0


def test_ctrl_c_interrupts_close_waiting_for_the_worker() -> None:
    gate = Gate()
    batcher = rq.Batcher(gate, max_wait_ms=0)
    gate.hold(batcher.submit)
    with interrupt_after(0.2), pytest.raises(KeyboardInterrupt):
        batcher.close()
    gate.open()
    batcher.close()
    assert batcher.closed

"""Shared helpers for the rusttorch_queue tests: threads, Ctrl-C, a gate that holds a batch."""

from __future__ import annotations

import _thread
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch


def start_thread(target: Callable[..., Any], *args: Any) -> threading.Thread:
    """A started daemon thread (a failing test must not hang the run at exit)."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def join_all(threads: list[threading.Thread], timeout: float = 30.0) -> None:
    """Joins every thread, failing if one is still alive after `timeout` seconds in all."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), f"{thread.name} did not finish"


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Simulates Ctrl-C in the main thread after `seconds`, like a SIGINT handler would."""
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    try:
        yield
    finally:
        # Never let a pending interrupt fire into the next test.
        timer.cancel()


class Gate:
    """A batch function that holds its first call until `open()`, so that a test can queue
    requests behind it and know exactly which batches they form; records every batch.
    """

    def __init__(self, inner: Callable[[Any], Any] = lambda batch: batch) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.released = threading.Event()
        self.batches: list[Any] = []

    def __call__(self, batch: Any) -> Any:
        self.batches.append(batch)
        if not self.entered.is_set():
            self.entered.set()
            assert self.released.wait(30), "the test never opened the gate"
        return self.inner(batch)

    def hold(self, submit: Callable[[Any], Any]) -> Any:
        """Submits a blocker request and waits until its batch is inside fn."""
        blocker = submit(torch.zeros(1))
        assert self.entered.wait(10), "the blocker batch never started"
        return blocker

    def open(self) -> None:
        self.released.set()

    def sizes(self) -> list[int]:
        """Requests per batch after the blocker's, read from the batches fn received."""
        return [batch_size(b) for b in self.batches[1:]]


def batch_size(batch: Any) -> int:
    """Rows along dim 0 of a batch (a tensor, or a tuple or dict of tensors)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return int(next(iter(batch.values())).shape[0])
    return int(batch[0].shape[0])


def process_cpu_seconds() -> float:
    """CPU time used by this process (all threads) so far."""
    return time.process_time()

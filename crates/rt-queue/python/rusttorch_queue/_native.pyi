"""Type stubs for the compiled ``rusttorch_queue._native`` module."""

import queue
import sys
from collections.abc import Callable
from concurrent.futures import Future
from types import GenericAlias
from typing import Any, Generic, Self, TypeVar, final

from typing_extensions import disjoint_base

__version__: str

_T = TypeVar("_T")

class Full(queue.Full):
    """Raised by ``put_nowait()``, or ``put()`` when its timeout passes, on a full queue;
    and by ``Batcher.submit(x, block=False)`` when the batcher's queue is full."""

class Empty(queue.Empty):
    """Raised by ``get_nowait()``, or ``get()`` when its timeout passes, on an empty queue."""

if sys.version_info >= (3, 13):
    class Closed(queue.ShutDown):
        """Raised by ``put()`` on a closed queue, and by ``get()`` once it is also drained."""

else:
    class Closed(Exception):
        """Raised by ``put()`` on a closed queue, and by ``get()`` once it is also drained."""

@final
class Queue(Generic[_T]):
    """A bounded FIFO queue for Python threads, with ``close()``.

    ``put``/``get`` follow ``queue.Queue``; a call that can complete at once does so
    holding the GIL, and a call that must wait releases the GIL, parks (no spinning) and
    still answers Ctrl-C. Items are passed by reference: a tensor is never copied.

    After ``close()``, ``put`` raises ``Closed``; ``get`` returns what is left, then raises
    ``Closed``; iterating stops. ``close()`` wakes every waiting thread.

    >>> import rusttorch_queue as rq
    >>> q = rq.Queue(2)
    >>> q.put("a"); q.put_nowait("b"); q.full()
    True
    >>> q.close()
    >>> list(q)
    ['a', 'b']
    """

    def __new__(cls, maxsize: int) -> Self:
        """A queue of at most ``maxsize`` (>= 1, else ``ValueError``) items."""

    @property
    def maxsize(self) -> int:
        """The most items the queue holds."""

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""

    def put(self, item: _T, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``, waiting for room unless ``block`` is false.

        Raises ``Full`` when ``block`` is false and the queue is full, or when ``timeout``
        seconds pass without room; ``Closed`` if the queue is or gets closed;
        ``ValueError`` for a negative ``timeout``.
        """

    def put_nowait(self, item: _T) -> None:
        """``put(item, block=False)``."""

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        """Remove and return the oldest item, waiting for one unless ``block`` is false.

        Raises ``Empty`` when ``block`` is false and the queue is empty, or when
        ``timeout`` seconds pass without an item; ``Closed`` once the queue is closed and
        drained; ``ValueError`` for a negative ``timeout``.
        """

    def get_nowait(self) -> _T:
        """``get(block=False)``."""

    def qsize(self) -> int:
        """The number of items now."""

    def empty(self) -> bool:
        """True when the queue holds no item now."""

    def full(self) -> bool:
        """True when the queue holds ``maxsize`` items now."""

    def close(self) -> None:
        """Refuse new items and wake every waiting thread; getters drain what is left."""

    def __iter__(self) -> Self:
        """Iterate with blocking ``get()`` until the queue is closed and drained."""

    def __next__(self) -> _T: ...
    def __class_getitem__(cls, key: Any) -> GenericAlias: ...

@disjoint_base
class Batcher:
    """Collect concurrent requests into batches for ``fn`` (see ``rusttorch_queue.Batcher``)."""

    def __new__(
        cls,
        fn: Callable[[Any], Any],
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        max_queue: int = 1024,
        timeout_ms: float | None = None,
    ) -> Self:
        """Start a worker thread that runs ``fn`` on batches of requests.

        ``max_batch_size`` and ``max_queue`` must be >= 1 and ``max_wait_ms`` >= 0;
        ``timeout_ms``, when given, must exceed ``max_wait_ms``; ``fn`` must be callable.
        """

    def submit(self, x: Any, *, block: bool = True) -> Future[Any]:
        """Queue one request and return a ``concurrent.futures.Future`` of its result.

        ``x`` is a tensor, or a tuple or dict (str keys) of tensors (``TypeError`` for
        anything else). While the queue is full, waits for room (GIL released, up to
        ``timeout_ms``, then ``TimeoutError``), or raises ``Full`` if ``block`` is false.
        Raises ``RuntimeError`` after ``close()``.

        >>> import torch, rusttorch_queue as rq
        >>> with rq.Batcher(lambda b: b.sum(dim=1)) as batcher:
        ...     futures = [batcher.submit(torch.full((3,), float(i))) for i in range(4)]
        ...     [f.result().item() for f in futures]
        [0.0, 3.0, 6.0, 9.0]
        """

    def __call__(self, x: Any) -> Any:
        """Submit ``x`` and wait for its result (GIL released, Ctrl-C honoured).

        With ``timeout_ms``, raises ``TimeoutError`` at the request's deadline if it is
        still queued then (the worker skips it), even while ``fn`` is busy.
        """

    def close(self) -> None:
        """Refuse new requests, let the queued ones run, and join the worker thread."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> bool:
        """``close()``."""

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""

    @property
    def max_batch_size(self) -> int: ...
    @property
    def max_wait_ms(self) -> float: ...
    @property
    def max_queue(self) -> int: ...
    @property
    def timeout_ms(self) -> float | None: ...
    @property
    def stats(self) -> BatcherStats:
        """A snapshot of what the batcher has done so far."""

    def reset_stats(self) -> None:
        """Start the statistics afresh (after a warm-up, say)."""

@final
class BatcherStats:
    """What a ``Batcher`` has done since it started or ``reset_stats()``."""

    @property
    def requests(self) -> int:
        """Requests that ran in a batch (whether ``fn`` succeeded or not)."""

    @property
    def batches(self) -> int:
        """Calls of ``fn``."""

    @property
    def timed_out(self) -> int:
        """Requests still queued after ``timeout_ms``, failed with ``TimeoutError``."""

    @property
    def rejected(self) -> int:
        """Requests that did not match their batch, failed alone with ``ValueError``."""

    @property
    def failed(self) -> int:
        """Requests of batches whose ``fn`` raised or returned an unusable output."""

    @property
    def cancelled(self) -> int:
        """Requests whose Future was cancelled before they ran."""

    @property
    def mean_batch_size(self) -> float | None:
        """Requests per batch on average; None before the first batch."""

    @property
    def batch_size_histogram(self) -> dict[int, int]:
        """Batch size to the number of batches of that size."""

    @property
    def queue_wait_p50_ms(self) -> float | None:
        """Median time from submit to the request's batch being formed, in ms (requests
        taken into a batch only: not those cancelled, expired or timed out while queued)."""

    @property
    def queue_wait_p99_ms(self) -> float | None:
        """99th percentile of the same, in ms."""

    @property
    def throughput(self) -> float | None:
        """Requests run per second, from the first arrival to the end of the last batch."""

    def as_dict(self) -> dict[str, Any]:
        """Every field as a dict."""

def get_num_threads() -> int:
    """Threads this wheel's Rust pool uses (for copying large batches)."""

def set_num_threads(n: int) -> None:
    """Set the thread count (1 to 1024) of this wheel's Rust pool."""

def _forget_pool_after_fork() -> None: ...
def _shutdown_all() -> None: ...
def _after_fork_in_child() -> None: ...

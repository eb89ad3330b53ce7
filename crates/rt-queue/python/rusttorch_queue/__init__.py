"""Bounded queues for Python threads, and a dynamic batcher for CPU inference.

``Queue`` is a bounded ``queue.Queue`` with ``close()``, whose waits release the GIL:

>>> import threading, rusttorch_queue as rq
>>> q = rq.Queue(maxsize=2)
>>> def produce():
...     for i in range(5):
...         q.put(i)  # blocks while the queue is full
...     q.close()
>>> threading.Thread(target=produce).start()
>>> list(q)  # drains, then stops at close
[0, 1, 2, 3, 4]

``Batcher`` turns concurrent single requests into batched calls of one function:

>>> import torch
>>> model = torch.nn.Linear(4, 2)
>>> @torch.inference_mode()
... def infer(batch):
...     return model(batch)
>>> with rq.Batcher(infer, max_batch_size=8, max_wait_ms=1.0) as batcher:
...     y = batcher(torch.ones(4))  # blocks; batched with concurrent callers
...     future = batcher.submit(torch.ones(4))
...     y.shape, future.result().shape
(torch.Size([2]), torch.Size([2]))
"""

from __future__ import annotations

import asyncio
import atexit
import os
from typing import Any

from . import _native
from ._native import (
    BatcherStats,
    Closed,
    Empty,
    Full,
    Queue,
    get_num_threads,
    set_num_threads,
)

__version__: str = _native.__version__

__all__ = [
    "Batcher",
    "BatcherStats",
    "Closed",
    "Empty",
    "Full",
    "Queue",
    "__version__",
    "get_num_threads",
    "set_num_threads",
]


class Batcher(_native.Batcher):
    """Collect concurrent requests into batches for ``fn``, run on a worker thread.

    Each request is one sample: a CPU tensor, or a tuple or dict (str keys) of tensors.
    The requests of a batch are stacked along a new dim 0 (in Rust, without a Python-level
    ``torch.stack``), ``fn(batch)`` is called once, and its output (a tensor, or a tuple,
    list or dict of tensors, one row per request along dim 0) is split back: each caller
    gets its row, a view of the output.

    A batch goes when it holds ``max_batch_size`` requests, or ``max_wait_ms`` after its
    first request arrived. ``max_queue`` bounds the requests waiting; ``submit`` blocks
    (GIL released) while it is full. A request still queued ``timeout_ms`` after it was
    submitted fails with ``TimeoutError`` then, even while ``fn`` is busy, and never runs.

    Errors reach only the callers they concern: a batch runs the layout (structure, keys,
    shapes and dtypes) most of its requests share, and a request of another layout fails
    alone with ``ValueError``; an exception from ``fn``, or an output with the wrong number
    of rows, fails every request of that batch. ``close()`` (or leaving a ``with`` block)
    stops new requests, lets the queued ones run, and joins the worker. Every request is
    resolved exactly once.

    ``fn`` runs on the worker thread, where torch's grad mode is on by default: decorate it
    with ``@torch.inference_mode()`` for inference.

    >>> import torch, rusttorch_queue as rq
    >>> with rq.Batcher(lambda batch: batch * 2, max_batch_size=4) as double:
    ...     double(torch.tensor([1.0, 2.0]))
    tensor([2., 4.])
    """

    __slots__ = ()

    async def asubmit(self, x: Any) -> Any:
        """Submit ``x`` and await its result, for asyncio code.

        Never blocks the event loop: when the queue is full, the wait for room runs in the
        loop's default executor.

        >>> import asyncio, torch, rusttorch_queue as rq
        >>> async def main():
        ...     with rq.Batcher(lambda b: b + 1) as batcher:
        ...         requests = [batcher.asubmit(torch.zeros(2)) for _ in range(3)]
        ...         rows = await asyncio.gather(*requests)
        ...     return [r.tolist() for r in rows]
        >>> asyncio.run(main())
        [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
        """
        try:
            future = self.submit(x, block=False)
        except Full:
            loop = asyncio.get_running_loop()
            future = await loop.run_in_executor(None, self.submit, x)
        return await asyncio.wrap_future(future)


# Workers must finish before the interpreter finalizes: a Rust thread that touched Python
# after that would take the process down.
atexit.register(_native._shutdown_all)
if hasattr(os, "register_at_fork"):
    # A forked child has no worker threads and none of the parent's pool threads.
    os.register_at_fork(after_in_child=_native._after_fork_in_child)
    os.register_at_fork(after_in_child=_native._forget_pool_after_fork)

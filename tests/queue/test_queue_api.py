"""Queue basics: FIFO order, the bound, queue.Queue's API and exceptions, any object by
reference."""

from __future__ import annotations

import gc
import queue
import sys
import weakref

import pytest
import torch

import rusttorch_queue as rq


def test_items_come_out_in_order() -> None:
    q: rq.Queue[int] = rq.Queue(10)
    for i in range(10):
        q.put(i)
    assert [q.get() for _ in range(10)] == list(range(10))


def test_the_bound_and_the_size_queries() -> None:
    q: rq.Queue[str] = rq.Queue(2)
    assert (q.maxsize, q.qsize(), q.empty(), q.full()) == (2, 0, True, False)
    q.put("a")
    assert (q.qsize(), q.empty(), q.full()) == (1, False, False)
    q.put_nowait("b")
    assert (q.qsize(), q.empty(), q.full()) == (2, False, True)
    with pytest.raises(rq.Full, match="maxsize=2"):
        q.put_nowait("c")
    with pytest.raises(rq.Full):
        q.put("c", block=False)
    assert q.get_nowait() == "a"
    assert q.get(block=False) == "b"
    with pytest.raises(rq.Empty, match="empty"):
        q.get_nowait()


def test_exceptions_subclass_the_standard_library_ones() -> None:
    assert issubclass(rq.Full, queue.Full)
    assert issubclass(rq.Empty, queue.Empty)
    if sys.version_info >= (3, 13):
        assert issubclass(rq.Closed, queue.ShutDown)
    assert not issubclass(rq.Closed, (queue.Empty, queue.Full))
    # Code written for queue.Queue catches ours unchanged.
    q: rq.Queue[int] = rq.Queue(1)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    for exc in (rq.Full, rq.Empty, rq.Closed):
        assert exc.__module__ == "rusttorch_queue"


def test_any_object_passes_by_reference() -> None:
    q: rq.Queue[object] = rq.Queue(8)
    items: list[object] = [None, 0, "text", b"bytes", [1, 2], {"k": object()}, object(), q]
    for item in items:
        q.put(item)
    for item in items:
        assert q.get() is item


def test_tensors_are_not_copied() -> None:
    q: rq.Queue[torch.Tensor] = rq.Queue(1)
    x = torch.arange(1000.0)
    q.put(x)
    y = q.get()
    assert y is x
    assert y.data_ptr() == x.data_ptr()


def test_no_reference_is_leaked_or_lost() -> None:
    q: rq.Queue[object] = rq.Queue(4)
    obj = object()
    before = sys.getrefcount(obj)
    for _ in range(3):
        q.put(obj)
    assert sys.getrefcount(obj) == before + 3
    for _ in range(3):
        q.get()
    assert sys.getrefcount(obj) == before
    q.put(obj)
    del q  # a dropped queue releases what it held
    assert sys.getrefcount(obj) == before


def test_a_reference_cycle_through_a_queued_item_is_collected() -> None:
    # An object that holds the queue it sits in: unreachable once both names are gone, and
    # freed by the cycle collector only if the queue reports its items (as queue.Queue's
    # Python objects do).
    class Holder:
        pass

    for make in (rq.Queue, queue.Queue):
        q = make(4)
        holder = Holder()
        holder.q = q  # type: ignore[attr-defined]
        q.put(holder)
        alive = weakref.ref(holder)
        del q, holder
        gc.collect()
        assert alive() is None, make


def test_generic_alias_and_repr() -> None:
    alias = rq.Queue[int]
    q = alias(3)
    assert isinstance(q, rq.Queue)
    q.put(1)
    assert repr(q) == "Queue(maxsize=3, qsize=1, closed=False)"
    q.close()
    assert repr(q) == "Queue(maxsize=3, qsize=1, closed=True)"


def test_component_api() -> None:
    assert rq.__version__ == rq._native.__version__
    n = rq.get_num_threads()
    assert n >= 1
    rq.set_num_threads(1)
    assert rq.get_num_threads() == 1
    rq.set_num_threads(n)

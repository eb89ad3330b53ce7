"""Property test over batch composition: mixed structures, shapes, dtypes and strides.

Each example queues a list of requests behind a blocker, so they form batches of
`max_batch_size` in submit order; fn returns its batch unchanged. Each batch runs the
layout (structure, keys, dtypes and shapes) most of its requests share, the earliest on a
tie: every request with that layout must get its own input back bit for bit, and every
other request must fail alone with ValueError.
"""

from __future__ import annotations

from typing import Any

import torch
from _queue_support import Gate, batch_size
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_queue as rq

DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.uint8,
    torch.bool,
]
SHAPES = [(), (3,), (2, 3), (3, 2), (0, 2)]


@st.composite
def tensors(draw: st.DrawFn) -> torch.Tensor:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.sampled_from(SHAPES))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    values = torch.randint(0, 100, shape, generator=g)
    t = values.to(dtype)
    if len(shape) == 2 and draw(st.booleans()):
        # The same values through a transposed (non-contiguous) view.
        t = t.t().contiguous().t()
    return t


@st.composite
def requests(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["tensor", "tuple", "dict"]))
    if kind == "tensor":
        return draw(tensors())
    if kind == "tuple":
        return tuple(draw(st.lists(tensors(), min_size=1, max_size=2)))
    keys = draw(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2, unique=True))
    return {k: draw(tensors()) for k in keys}


def signature(request: Any) -> Any:
    """What must match within a batch: structure, keys, and each field's dtype and shape."""
    if isinstance(request, torch.Tensor):
        return ("tensor", request.dtype, tuple(request.shape))
    if isinstance(request, tuple):
        return ("tuple", tuple((t.dtype, tuple(t.shape)) for t in request))
    return ("dict", frozenset((k, t.dtype, tuple(t.shape)) for k, t in request.items()))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same, a, b))
    return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(requests(), min_size=1, max_size=10), max_batch_size=st.integers(1, 5))
def test_batches_of_any_composition(batch: list[Any], max_batch_size: int) -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=max_batch_size, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        futures = [batcher.submit(r) for r in batch]
        gate.open()
        outcomes = [f.exception(timeout=10) or f.result() for f in futures]

    expected_sizes = []
    for start in range(0, len(batch), max_batch_size):
        chunk = range(start, min(start + max_batch_size, len(batch)))
        signatures = [signature(batch[i]) for i in chunk]
        # The most shared layout; max() keeps the first (earliest) of equals.
        reference = max(signatures, key=signatures.count)
        matching = 0
        for i in chunk:
            if signature(batch[i]) == reference:
                matching += 1
                assert same(batch[i], outcomes[i]), (batch[i], outcomes[i])
            else:
                assert isinstance(outcomes[i], ValueError), outcomes[i]
                assert "its batch runs" in str(outcomes[i])
        expected_sizes.append(matching)
    assert [batch_size(b) for b in gate.batches[1:]] == expected_sizes

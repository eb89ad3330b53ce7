"""Non-contiguous layouts: slices, steps, transposes, expansions, offsets, negative strides,
0-d and empty tensors, tensors that require grad; hypothesis against torch and NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _view_support import (
    NUMPY_DTYPES,
    TORCH_DTYPES,
    assert_bitwise_equal,
    dtype_name,
    np_data_ptr,
    random_tensor,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_view as rv

HYPOTHESIS = settings(max_examples=80, deadline=None)


def check_against_torch(x: torch.Tensor) -> None:
    """info() agrees with torch's own metadata, and both copies equal x.contiguous()."""
    i = rv.info(x)
    assert i.shape == tuple(x.shape)
    assert i.strides == x.stride()
    assert i.data_ptr == x.data_ptr()
    assert i.dtype == dtype_name(x.dtype)
    assert i.numel == x.numel()
    assert i.itemsize == x.element_size()
    assert i.is_contiguous == x.is_contiguous()
    assert i.device == "cpu"
    expected = x.contiguous()
    y = rv.copy(x)
    assert y.is_contiguous()
    assert_bitwise_equal(y, expected)
    assert_bitwise_equal(rv._native._copy_torch_alloc(x), expected)


# --- fixed layouts --------------------------------------------------------------------------


BASE = torch.arange(6 * 9, dtype=torch.float32).reshape(6, 9)


@pytest.mark.parametrize(
    "x",
    [
        BASE[1:4, 2:7],
        BASE[::2, 1::3],
        BASE[1::2, ::4],
        BASE.t(),
        BASE.reshape(2, 3, 9).permute(2, 0, 1),
        BASE[:, 4],
        BASE[3],
        BASE.reshape(-1)[5:41].reshape(4, 9),
        BASE[:, :1],
        BASE.unsqueeze(1),
    ],
    ids=[
        "sliced",
        "stepped",
        "stepped-rows",
        "transposed",
        "permuted",
        "column",
        "row",
        "storage-offset",
        "size-1-column",
        "unsqueezed",
    ],
)
def test_torch_layouts(x: torch.Tensor) -> None:
    check_against_torch(x)


BIG_BASE = torch.arange(97 * 130, dtype=torch.float64).reshape(97, 130)


@pytest.mark.parametrize(
    "x",
    [
        BIG_BASE.t(),
        BIG_BASE[::3, 1::2].t(),
        BIG_BASE[5:90, 7:121],
        BIG_BASE.reshape(2, 97, 65).permute(2, 0, 1),
        BIG_BASE.reshape(97, 5, 26).permute(1, 2, 0),
        BIG_BASE.reshape(97, 5, 26).transpose(0, 2)[:, ::2, 3:],
        BIG_BASE[:, :1].expand(97, 70),
        BIG_BASE[:33, :33].t(),
        BIG_BASE[:32, :64].t(),
    ],
    ids=[
        "transposed",
        "stepped-transposed",
        "window",
        "permuted-3d",
        "permuted-3d-b",
        "transposed-stepped-3d",
        "expanded",
        "just-over-a-tile",
        "whole-tiles",
    ],
)
def test_layouts_spanning_several_copy_tiles(x: torch.Tensor) -> None:
    """Larger than the 32x32 tiles the strided copy works in, with ragged edges."""
    check_against_torch(x)
    dims = list(reversed(range(x.dim())))
    out = torch.full([x.shape[d] for d in dims], -1.0, dtype=x.dtype).permute(dims)  # col-major
    assert out.shape == x.shape
    rv.copy(x, out=out)
    assert torch.equal(out, x)


def test_expanded_tensor_is_readable() -> None:
    x = torch.arange(3.0).reshape(3, 1).expand(3, 4)
    assert rv.info(x).strides == (1, 0)
    assert not rv.info(x).is_contiguous
    check_against_torch(x)
    scalar = torch.tensor(7, dtype=torch.int64).expand(2, 3)
    assert rv.info(scalar).strides == (0, 0)
    assert rv.copy(scalar).tolist() == [[7, 7, 7], [7, 7, 7]]


def test_broadcast_numpy_array_is_readable() -> None:
    a = np.broadcast_to(np.arange(4, dtype=np.int32), (3, 4))
    i = rv.info(a)
    assert i.strides == (0, 1)
    assert i.readonly
    assert rv.to_torch(a).tolist() == a.tolist()
    assert rv.copy(a).tolist() == a.tolist()


def test_zero_dim_tensor() -> None:
    x = torch.tensor(3.25, dtype=torch.float64)
    i = rv.info(x)
    assert i.shape == ()
    assert i.strides == ()
    assert i.numel == 1
    assert i.is_contiguous
    y = rv.copy(x)
    assert y.shape == ()
    assert y.item() == 3.25
    out = torch.tensor(0.0, dtype=torch.float64)
    rv.copy(x, out=out)
    assert out.item() == 3.25


def test_zero_dim_numpy() -> None:
    a = np.array(-5, dtype=np.int16)
    t = rv.to_torch(a)
    assert t.shape == ()
    assert t.item() == -5
    assert t.data_ptr() == np_data_ptr(a)
    assert rv.info(a).shape == ()


def test_zero_dim_element_of_a_tensor() -> None:
    x = torch.arange(10, dtype=torch.int32)[7]
    assert rv.info(x).data_ptr == x.data_ptr()
    assert rv.copy(x).item() == 7


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), (0, 0), (1, 0)], ids=str)
def test_empty_tensors(shape: tuple[int, ...]) -> None:
    x = torch.empty(shape, dtype=torch.float32)
    i = rv.info(x)
    assert i.shape == shape
    assert i.numel == 0
    assert i.is_contiguous
    y = rv.copy(x)
    assert y.shape == shape
    assert y.dtype == torch.float32
    out = torch.empty(shape)
    assert rv.copy(x, out=out) is out
    a = np.empty(shape, dtype=np.int64)
    t = rv.to_torch(a)
    assert tuple(t.shape) == shape
    assert t.dtype == torch.int64


def test_empty_slice_of_a_tensor() -> None:
    x = torch.arange(20.0).reshape(4, 5)[2:2, 1:]
    check_against_torch(x)


def test_fortran_order_numpy() -> None:
    a = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    i = rv.info(a)
    assert i.strides == (1, 3)
    assert not i.is_contiguous
    t = rv.to_torch(a)
    assert t.data_ptr() == np_data_ptr(a)
    assert t.stride() == (1, 3)
    assert t.tolist() == a.tolist()
    assert rv.copy(a).tolist() == a.tolist()


# --- negative strides -----------------------------------------------------------------------


def test_numpy_negative_strides_info() -> None:
    a = np.arange(12, dtype=np.float64).reshape(3, 4)[::-1, ::-2]
    i = rv.info(a)
    assert i.strides == (-4, -2)
    assert i.data_ptr == np_data_ptr(a)
    assert not i.is_contiguous


def test_numpy_negative_strides_to_torch_copies() -> None:
    a = np.arange(12, dtype=np.int32).reshape(3, 4)[::-1, 1::2]
    t = rv.to_torch(a)
    assert t.tolist() == a.tolist()
    assert t.is_contiguous()
    assert t.data_ptr() != np_data_ptr(a)
    t[0, 0] = 1000
    assert a[0, 0] != 1000, "a copy must not write back into the source"


def test_numpy_negative_strides_copy_false_raises() -> None:
    a = np.arange(10, dtype=np.float32)[::-1]
    with pytest.raises(ValueError, match="negative strides"):
        rv.to_torch(a, copy=False)


def test_numpy_negative_strides_rusttorch_copy() -> None:
    a = np.arange(24, dtype=np.int64).reshape(2, 3, 4)[:, ::-1, ::-3]
    y = rv.copy(a)
    assert y.tolist() == a.tolist()


def test_negative_stride_over_a_single_element_is_shared() -> None:
    a = np.arange(6, dtype=np.float32).reshape(1, 6)[::-1]
    t = rv.to_torch(a, copy=False)
    assert t.data_ptr() == np_data_ptr(a)
    assert t.tolist() == a.tolist()


def test_negative_strides_into_out() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[::-1]
    out = torch.empty(3, 4)
    rv.copy(a, out=out)
    assert out.tolist() == a.tolist()


# --- requires grad --------------------------------------------------------------------------


def test_requires_grad_leaf_is_readable() -> None:
    x = torch.randn(4, 5, requires_grad=True)
    i = rv.info(x)
    assert i.data_ptr == x.data_ptr()
    assert i.shape == (4, 5)
    y = rv.copy(x)
    assert not y.requires_grad
    assert y.grad_fn is None
    assert torch.equal(y, x.detach())
    assert torch.equal(rv.copy(x.t()), x.detach().t().contiguous())
    assert rv.to_torch(x) is x


def test_requires_grad_non_leaf_is_readable() -> None:
    w = torch.randn(3, 3, requires_grad=True)
    x = (w * 2)[:, 1:]
    assert x.grad_fn is not None
    y = rv.copy(x)
    assert not y.requires_grad
    assert torch.equal(y, x.detach().contiguous())


def test_requires_grad_as_input_with_out() -> None:
    x = torch.randn(6, requires_grad=True)
    out = torch.zeros(6)
    rv.copy(x, out=out)
    assert torch.equal(out, x.detach())
    assert not out.requires_grad


# --- hypothesis -----------------------------------------------------------------------------


shapes = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)


@st.composite
def as_strided_tensors(draw: st.DrawFn) -> torch.Tensor:
    """Any non-negative strides (zero and overlapping ones included) and a storage offset."""
    dtype = draw(st.sampled_from(TORCH_DTYPES))
    shape = draw(shapes)
    strides = tuple(draw(st.lists(st.integers(0, 30), min_size=len(shape), max_size=len(shape))))
    offset = draw(st.integers(0, 7))
    reach = sum((n - 1) * s for n, s in zip(shape, strides, strict=True)) if all(shape) else 0
    base = random_tensor((offset + reach + 1,), dtype, seed=draw(st.integers(0, 2**16)))
    return torch.as_strided(base, shape, strides, offset)


@st.composite
def sliced_tensors(draw: st.DrawFn) -> torch.Tensor:
    """Slices with steps of a tensor at a storage offset, then a permutation of the dims."""
    dtype = draw(st.sampled_from(TORCH_DTYPES))
    base_shape = draw(st.lists(st.integers(0, 8), min_size=0, max_size=4).map(tuple))
    offset = draw(st.integers(0, 5))
    flat = random_tensor((offset + math.prod(base_shape),), dtype, seed=draw(st.integers(0, 999)))
    x = flat[offset:].view(base_shape)
    index = []
    for n in base_shape:
        start = draw(st.integers(0, n))
        stop = draw(st.integers(start, n))
        index.append(slice(start, stop, draw(st.integers(1, 3))))
    x = x[tuple(index)]
    return x.permute(draw(st.permutations(range(x.dim()))))


@HYPOTHESIS
@given(as_strided_tensors())
def test_hypothesis_as_strided(x: torch.Tensor) -> None:
    check_against_torch(x)


@HYPOTHESIS
@given(sliced_tensors())
def test_hypothesis_sliced_and_permuted(x: torch.Tensor) -> None:
    check_against_torch(x)


@st.composite
def large_as_strided_tensors(draw: st.DrawFn) -> torch.Tensor:
    """2-d and 3-d layouts with extents past the copy's 32x32 tiles."""
    dtype = draw(st.sampled_from([torch.float32, torch.int8, torch.float16, torch.int64]))
    ndim = draw(st.integers(2, 3))
    shape = tuple(draw(st.lists(st.integers(1, 75), min_size=ndim, max_size=ndim)))
    strides = tuple(draw(st.lists(st.integers(0, 90), min_size=ndim, max_size=ndim)))
    offset = draw(st.integers(0, 3))
    reach = sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
    base = random_tensor((offset + reach + 1,), dtype, seed=draw(st.integers(0, 99)))
    return torch.as_strided(base, shape, strides, offset)


@settings(max_examples=30, deadline=None)
@given(large_as_strided_tensors())
def test_hypothesis_large_as_strided(x: torch.Tensor) -> None:
    check_against_torch(x)


@HYPOTHESIS
@given(sliced_tensors(), st.data())
def test_hypothesis_into_non_contiguous_out(x: torch.Tensor, data: st.DataObject) -> None:
    """out= is a permuted, stepped window of a larger tensor; nothing outside it changes."""
    perm = data.draw(st.permutations(range(x.dim())))
    inverse = [perm.index(d) for d in range(x.dim())]
    permuted_shape = [x.shape[p] for p in perm]
    sentinel = random_tensor(tuple(2 * n + 1 for n in permuted_shape), x.dtype, seed=7)
    big = sentinel.clone()
    window = tuple(slice(1, None, 2) for _ in permuted_shape)
    out = big[window].permute(inverse)
    assert out.shape == x.shape
    assert rv.copy(x, out=out) is out
    assert_bitwise_equal(out, x.contiguous())
    # Every element outside the window keeps its value.
    big[window] = sentinel[window]
    assert_bitwise_equal(big, sentinel)


@st.composite
def numpy_arrays(draw: st.DrawFn) -> np.ndarray:
    """NumPy views with negative steps, offsets and transposes."""
    np_dtype = draw(st.sampled_from(NUMPY_DTYPES))
    torch_dtype = torch.from_numpy(np.zeros(0, np_dtype)).dtype
    base_shape = draw(st.lists(st.integers(0, 7), min_size=0, max_size=4).map(tuple))
    a = random_tensor(base_shape, torch_dtype, seed=draw(st.integers(0, 999))).numpy()
    index = []
    for n in base_shape:
        step = draw(st.sampled_from([1, 2, 3, -1, -2, -3]))
        start = draw(st.integers(0, max(n - 1, 0)))
        index.append(slice(start, None, step))
    a = a[(*index, ...)]  # the Ellipsis keeps a 0-d result an array, not a NumPy scalar
    return a.transpose(draw(st.permutations(range(a.ndim))))


@HYPOTHESIS
@given(numpy_arrays())
def test_hypothesis_numpy(a: np.ndarray) -> None:
    i = rv.info(a)
    assert i.shape == a.shape
    assert i.strides == tuple(s // a.itemsize for s in a.strides)
    assert i.data_ptr == np_data_ptr(a)
    assert i.source == "dlpack"
    expected = torch.from_numpy(a.copy())
    t = rv.to_torch(a)
    assert_bitwise_equal(t, expected)
    negative = any(s < 0 and n > 1 for s, n in zip(a.strides, a.shape, strict=True))
    if a.size and not negative:
        assert t.data_ptr() == np_data_ptr(a), "memory should have been shared"
    elif a.size:
        assert t.data_ptr() != np_data_ptr(a)
        with pytest.raises(ValueError, match="negative strides"):
            rv.to_torch(a, copy=False)
    assert_bitwise_equal(rv.copy(a), expected)

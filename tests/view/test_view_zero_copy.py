"""Zero copy, proven by data pointers and by writes, and the lifetime of shared memory."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest
import torch
from _view_support import np_data_ptr, rss_bytes

import rusttorch_view as rv


class TrackedArray(np.ndarray):
    """An ndarray subclass, so that instances can be weakly referenced."""


def tracked(a: np.ndarray) -> TrackedArray:
    return a.view(TrackedArray)


# --- data pointers --------------------------------------------------------------------------


def test_numpy_to_torch_shares_memory() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = rv.to_torch(a)
    assert t.data_ptr() == np_data_ptr(a)
    assert tuple(t.shape) == a.shape
    assert t.stride() == (4, 1)
    assert t.dtype == torch.float32
    assert torch.equal(t, torch.from_numpy(a))


@pytest.mark.parametrize(
    "index",
    [
        (slice(1, None), slice(2, None)),
        (slice(None, None, 2), slice(1, None, 3)),
        (1,),
        (slice(None), 3),
    ],
    ids=["offset", "stepped", "row", "column"],
)
def test_numpy_slices_share_memory(index: tuple[object, ...]) -> None:
    base = np.arange(5 * 7, dtype=np.int64).reshape(5, 7)
    a = base[index]
    t = rv.to_torch(a)
    assert t.data_ptr() == np_data_ptr(a)
    assert t.stride() == tuple(s // a.itemsize for s in a.strides)
    assert torch.equal(t, torch.from_numpy(np.ascontiguousarray(a)))


def test_transposed_numpy_shares_memory() -> None:
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4).transpose(2, 0, 1)
    t = rv.to_torch(a)
    assert t.data_ptr() == np_data_ptr(a)
    assert t.stride() == (1, 12, 4)
    assert not t.is_contiguous()
    assert torch.equal(t, torch.from_numpy(a.copy()))


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x,
        lambda x: x[1:, 2:],
        lambda x: x[::2, 1::3],
        lambda x: x.t(),
        lambda x: x[2],
        lambda x: x[:, 5],
        lambda x: x.reshape(-1)[7:20],
    ],
    ids=["whole", "offset", "stepped", "transposed", "row", "column", "flat-offset"],
)
def test_info_data_ptr_matches_torch(make: object) -> None:
    base = torch.arange(6 * 8, dtype=torch.float32).reshape(6, 8)
    x = make(base)  # type: ignore[operator]
    i = rv.info(x)
    assert i.data_ptr == x.data_ptr()
    assert i.shape == tuple(x.shape)
    assert i.strides == x.stride()
    assert i.source == "torch"
    if x.storage_offset():
        assert i.data_ptr == base.data_ptr() + x.storage_offset() * 4


def test_info_of_numpy_view_of_torch_points_at_torch_memory() -> None:
    x = torch.arange(20, dtype=torch.int32)[3:]
    i = rv.info(x.numpy())
    assert i.data_ptr == x.data_ptr()
    assert i.source == "dlpack"


def test_torch_numpy_torch_round_trip_is_the_same_memory() -> None:
    x = torch.arange(10, dtype=torch.float64)
    back = rv.to_torch(x.numpy())
    assert back.data_ptr() == x.data_ptr()
    assert back is not x


def test_torch_input_is_returned_as_is() -> None:
    x = torch.arange(5.0)
    assert rv.to_torch(x) is x
    assert rv.to_torch(x, copy=False) is x
    p = torch.nn.Parameter(torch.ones(3))
    assert rv.to_torch(p) is p


# --- writes go both ways ---------------------------------------------------------------------


def test_write_through_torch_shows_in_numpy() -> None:
    a = np.zeros((3, 4), dtype=np.float32)
    t = rv.to_torch(a)
    t[1, 2] = 5.0
    t[2].fill_(-1.0)
    expected = np.zeros((3, 4), dtype=np.float32)
    expected[1, 2] = 5.0
    expected[2] = -1.0
    np.testing.assert_array_equal(a, expected)


def test_write_through_numpy_shows_in_torch() -> None:
    a = np.zeros(6, dtype=np.int16)
    t = rv.to_torch(a[1::2])
    a[3] = 42
    a[5] = -7
    assert t.tolist() == [0, 42, -7]


def test_write_through_torch_view_of_strided_numpy() -> None:
    a = np.zeros((4, 6), dtype=np.int32)
    view = a[1:, ::2]
    t = rv.to_torch(view)
    t.copy_(torch.arange(9, dtype=torch.int32).reshape(3, 3))
    expected = np.zeros((4, 6), dtype=np.int32)
    expected[1:, ::2] = np.arange(9).reshape(3, 3)
    np.testing.assert_array_equal(a, expected)


def test_to_torch_copy_true_does_not_share() -> None:
    a = np.arange(6, dtype=np.float32)
    t = rv.to_torch(a, copy=True)
    assert t.data_ptr() != np_data_ptr(a)
    assert torch.equal(t, torch.from_numpy(a))
    t[0] = 100.0
    assert a[0] == 0.0

    x = torch.arange(6.0)
    y = rv.to_torch(x, copy=True)
    assert y is not x
    assert y.data_ptr() != x.data_ptr()
    assert torch.equal(x, y)


def test_copy_makes_new_contiguous_aligned_memory() -> None:
    x = torch.arange(30, dtype=torch.float32).reshape(5, 6).t()
    y = rv.copy(x)
    assert y.data_ptr() != x.data_ptr()
    assert y.is_contiguous()
    assert y.data_ptr() % 64 == 0
    assert torch.equal(y, x)
    y.zero_()
    assert x.sum().item() == sum(range(30))


def test_copy_into_out_writes_in_place() -> None:
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    out = torch.full((3, 4), -1.0, dtype=torch.float64)
    ptr = out.data_ptr()
    result = rv.copy(x, out=out)
    assert result is out
    assert out.data_ptr() == ptr
    assert torch.equal(out, x)


def test_copy_into_numpy_out_writes_in_place() -> None:
    x = torch.arange(8, dtype=torch.int32)
    out = np.zeros(8, dtype=np.int32)
    result = rv.copy(x, out=out)
    assert result is out
    np.testing.assert_array_equal(out, np.arange(8, dtype=np.int32))


def test_torch_alloc_copy_matches() -> None:
    x = torch.arange(20, dtype=torch.int16).reshape(4, 5)[:, 1::2]
    y = rv._native._copy_torch_alloc(x)
    assert y.is_contiguous()
    assert y.data_ptr() != x.data_ptr()
    assert torch.equal(y, x)


# --- lifetimes ------------------------------------------------------------------------------


def test_shared_tensor_keeps_numpy_owner_alive() -> None:
    a = tracked(np.arange(1000, dtype=np.float64))
    ref = weakref.ref(a)
    t = rv.to_torch(a)
    del a
    gc.collect()
    assert ref() is not None, "the source array died while a tensor still uses its memory"
    # Use the memory after the Python name is gone.
    assert t.sum().item() == sum(range(1000))
    t.add_(1.0)
    assert t[-1].item() == 1000.0
    del t
    gc.collect()
    assert ref() is None, "the source array outlived the last tensor that shares it"


def test_views_of_shared_tensor_keep_owner_alive() -> None:
    a = tracked(np.arange(100, dtype=np.int64))
    ref = weakref.ref(a)
    t = rv.to_torch(a)
    v = t[10:20]
    del a, t
    gc.collect()
    assert ref() is not None
    assert v.tolist() == list(range(10, 20))
    del v
    gc.collect()
    assert ref() is None


def test_copy_result_survives_source() -> None:
    x = torch.arange(1000, dtype=torch.float32)
    y = rv.copy(x)
    del x
    gc.collect()
    assert y.sum().item() == sum(range(1000))


def test_refcount_of_source_restored_after_tensor_dies() -> None:
    a = np.arange(16, dtype=np.float32)
    before = sys.getrefcount(a)
    t = rv.to_torch(a)
    assert sys.getrefcount(a) > before
    del t
    gc.collect()
    assert sys.getrefcount(a) == before


def test_info_and_refused_calls_do_not_hold_references() -> None:
    a = np.arange(16, dtype=np.float32)
    ro = np.arange(16, dtype=np.float32)
    ro.flags.writeable = False
    before, before_ro = sys.getrefcount(a), sys.getrefcount(ro)
    for _ in range(100):
        rv.info(a)
        rv.copy(a)
        with pytest.raises(ValueError):
            rv.to_torch(ro[::-1], copy=False)
        with pytest.raises(ValueError):
            rv.copy(a, out=ro)
    gc.collect()
    assert sys.getrefcount(a) == before
    assert sys.getrefcount(ro) == before_ro


def test_buffer_export_is_released_with_the_tensor() -> None:
    data = bytearray(range(16))
    t = rv.to_torch(data)
    # While the tensor holds the buffer export, the bytearray can not be resized.
    with pytest.raises(BufferError):
        data.append(0)
    assert t[3].item() == 3
    del t
    gc.collect()
    data.append(0)
    assert len(data) == 17


def test_buffer_export_is_released_after_info_and_copy() -> None:
    data = bytearray(range(16))
    rv.info(data)
    rv.copy(data)
    with pytest.raises(ValueError, match="shape"):
        rv.copy(torch.zeros(3, dtype=torch.uint8), out=data)
    data.append(0)  # raises BufferError if an export leaked
    assert len(data) == 17


def test_no_memory_growth_over_many_round_trips() -> None:
    # Every iteration moves 8 KiB buffers: a leak of any of them over 20k iterations is
    # at least 160 MiB, far above the slack allowed for allocator noise.
    n = 2048
    rev = np.arange(n, dtype=np.float32)[::-1]
    x = torch.arange(n, dtype=torch.float32).reshape(32, 64).t()
    out = torch.empty(64, 32)

    def round_trips(count: int) -> None:
        for _ in range(count):
            src = np.ones(n, dtype=np.float32)
            t = rv.to_torch(src)  # shared: the tensor owns a reference to src
            del src
            rv.copy(t)  # a new Rust-owned buffer handed to torch
            rv.copy(x, out=out)
            rv.to_torch(rev)  # the copying path (negative strides)
            rv.info(t)

    round_trips(2000)
    gc.collect()
    before = rss_bytes()
    round_trips(20_000)
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 20k round trips"

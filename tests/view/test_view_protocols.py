"""Producers other than torch: pyarrow, the buffer protocol (array.array, bytearray, bytes,
memoryview, ctypes, NumPy scalars) and hand-written DLPack producers."""

from __future__ import annotations

import array
import ctypes
import gc
import warnings
import weakref

import numpy as np
import pyarrow as pa
import pytest
import torch
from _view_support import np_data_ptr

import rusttorch_view as rv

ignore_unversioned_export = pytest.mark.filterwarnings(
    "ignore:Exporting an unversioned DLPack capsule:DeprecationWarning"
)

# --- pyarrow --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "pa_type", "torch_dtype"),
    [
        ([1.5, -2.0, 3.25, 4.0, 5.5], pa.float64(), torch.float64),
        ([1, -2, 3, 2**31 - 1, -(2**31)], pa.int32(), torch.int32),
        ([0.5, 1.5, 2.5, 3.5, 4.5], pa.float32(), torch.float32),
        ([1, 2, 3, 4, 255], pa.uint8(), torch.uint8),
        ([-(2**63), 0, 1, 2, 2**63 - 1], pa.int64(), torch.int64),
    ],
    ids=["float64", "int32", "float32", "uint8", "int64"],
)
def test_pyarrow_array_is_borrowed_in_place(
    values: list[float], pa_type: pa.DataType, torch_dtype: torch.dtype
) -> None:
    arr = pa.array(values, type=pa_type)
    itemsize = pa_type.bit_width // 8
    address = arr.buffers()[1].address
    i = rv.info(arr)
    assert i.data_ptr == address
    assert i.shape == (5,)
    assert i.readonly, "Arrow buffers are immutable"
    assert i.source == "dlpack"
    assert i.dtype == str(torch_dtype).removeprefix("torch.")
    sliced = arr.slice(2, 3)
    assert rv.info(sliced).data_ptr == address + 2 * itemsize
    assert rv.info(sliced).shape == (3,)
    # Arrow memory is read-only, so to_torch copies (torch tensors are always writable).
    t = rv.to_torch(sliced)
    assert t.dtype == torch_dtype
    assert t.tolist() == values[2:]
    assert t.data_ptr() != address + 2 * itemsize
    # copy=False is the zero-copy route: it shares the Arrow buffer, with a warning.
    with pytest.warns(UserWarning, match="read-only"):
        shared = rv.to_torch(sliced, copy=False)
    assert shared.data_ptr() == address + 2 * itemsize
    assert shared.tolist() == values[2:]
    assert rv.copy(arr).tolist() == values


def test_pyarrow_with_nulls_is_refused() -> None:
    arr = pa.array([1.0, None, 3.0])
    with pytest.raises(ValueError, match="nulls") as e:
        rv.to_torch(arr)
    assert isinstance(e.value.__cause__, pa.ArrowException)
    with pytest.raises(ValueError, match="nulls"):
        rv.info(arr)


def test_pyarrow_with_nulls_warns_nothing() -> None:
    arr = pa.array([1.0, None, 3.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError):
            rv.info(arr)
    assert [str(w.message) for w in caught] == []


def test_pyarrow_boolean_is_refused() -> None:
    with pytest.raises(ValueError, match=r"[Bb]oolean"):
        rv.info(pa.array([True, False, True]))


def test_chunked_array_with_one_chunk() -> None:
    chunked = pa.chunked_array([pa.array([1.0, 2.0, 3.0])])
    t = rv.to_torch(chunked)
    assert t.tolist() == [1.0, 2.0, 3.0]
    assert t.dtype == torch.float64
    # The one chunk is used as is: copy=False shares it (read-only, hence the warning).
    with pytest.warns(UserWarning, match="read-only"):
        shared = rv.to_torch(chunked, copy=False)
    assert shared.data_ptr() == chunked.chunk(0).buffers()[1].address


def test_chunked_array_with_several_chunks_is_copied() -> None:
    chunked = pa.chunked_array([pa.array([1, 2], pa.int32()), pa.array([3, 4, 5], pa.int32())])
    t = rv.to_torch(chunked)
    assert t.dtype == torch.int32
    assert t.tolist() == [1, 2, 3, 4, 5]
    for chunk in chunked.chunks:
        assert t.data_ptr() != chunk.buffers()[1].address
    with pytest.raises(ValueError, match="2 chunks"):
        rv.to_torch(chunked, copy=False)


def test_chunked_array_with_no_chunks() -> None:
    t = rv.to_torch(pa.chunked_array([], type=pa.float32()))
    assert t.shape == (0,)
    assert t.dtype == torch.float32


# --- buffer protocol ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "torch_dtype"),
    [
        ("d", torch.float64),
        ("f", torch.float32),
        ("b", torch.int8),
        ("B", torch.uint8),
        ("h", torch.int16),
        ("i", torch.int32),
        ("q", torch.int64),
    ],
)
def test_array_array_is_shared(code: str, torch_dtype: torch.dtype) -> None:
    data = array.array(code, [1, 2, 3, 4])
    t = rv.to_torch(data)
    assert t.dtype == torch_dtype
    assert t.data_ptr() == data.buffer_info()[0]
    assert rv.info(data).source == "buffer"
    assert not rv.info(data).readonly
    t[2] = 9
    assert data[2] == 9
    assert t.tolist() == [1, 2, 9, 4]


def test_bytearray_is_shared_and_writable() -> None:
    data = bytearray(b"\x00\x01\x02\x03")
    t = rv.to_torch(data)
    assert t.dtype == torch.uint8
    assert rv.info(data).data_ptr == t.data_ptr()
    t[0] = 200
    assert data[0] == 200
    out = bytearray(4)
    rv.copy(torch.tensor([5, 6, 7, 8], dtype=torch.uint8), out=out)
    assert out == bytearray(b"\x05\x06\x07\x08")


@pytest.mark.parametrize("make", [bytes, lambda b: memoryview(bytes(b))], ids=["bytes", "mv"])
def test_read_only_buffer_is_copied(make: object) -> None:
    src = make(b"\x01\x02\x03\x04")  # type: ignore[operator]
    i = rv.info(src)
    assert i.readonly
    assert i.source == "buffer"
    t = rv.to_torch(src)
    assert t.tolist() == [1, 2, 3, 4]
    assert t.data_ptr() != i.data_ptr
    t[0] = 99
    assert bytes(src) == b"\x01\x02\x03\x04"
    with pytest.warns(UserWarning, match="read-only"):
        shared = rv.to_torch(src, copy=False)
    assert shared.data_ptr() == i.data_ptr
    assert shared.tolist() == [1, 2, 3, 4]


def test_numpy_through_the_buffer_protocol_only() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    m = memoryview(a)
    assert not hasattr(m, "__dlpack__")
    i = rv.info(m)
    assert i.source == "buffer"
    assert i.data_ptr == np_data_ptr(a)
    assert i.shape == (3, 4)
    assert i.strides == (4, 1)
    t = rv.to_torch(m)
    assert t.data_ptr() == np_data_ptr(a)
    t[0, 0] = -1.0
    assert a[0, 0] == -1.0


def test_strided_memoryview() -> None:
    a = np.arange(20, dtype=np.int32).reshape(4, 5)
    view = a[1:, ::2].T
    i = rv.info(memoryview(view))
    assert i.strides == (2, 5)
    assert i.data_ptr == np_data_ptr(view)
    assert rv.to_torch(memoryview(view)).tolist() == view.tolist()
    assert rv.copy(memoryview(view)).tolist() == view.tolist()


def test_memoryview_with_negative_strides_is_copied() -> None:
    a = np.arange(6, dtype=np.int64)
    m = memoryview(a[::-2])
    assert rv.info(m).strides == (-2,)
    t = rv.to_torch(m)
    assert t.tolist() == [5, 3, 1]
    t[0] = 0
    assert a[5] == 5
    with pytest.raises(ValueError, match="negative strides"):
        rv.to_torch(m, copy=False)


def test_memoryview_cast_to_two_dims() -> None:
    data = bytearray(np.arange(6, dtype=np.int32).tobytes())
    m = memoryview(data).cast("i", (2, 3))
    i = rv.info(m)
    assert (i.dtype, i.shape, i.strides) == ("int32", (2, 3), (3, 1))
    assert rv.to_torch(m).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_buffer_stride_not_a_multiple_of_the_item_size_is_refused() -> None:
    packed = np.zeros(4, dtype=np.dtype([("a", "<i4"), ("b", "u1")]))  # 5-byte records
    field = packed["a"]
    assert field.strides == (5,)
    with pytest.raises(ValueError, match="multiple of the item size"):
        rv.info(memoryview(field))


def test_ctypes_arrays() -> None:
    one = (ctypes.c_double * 3)(1.0, 2.0, 3.0)
    t = rv.to_torch(one)
    assert t.dtype == torch.float64
    assert t.data_ptr() == ctypes.addressof(one)
    assert t.tolist() == [1.0, 2.0, 3.0]
    two = ((ctypes.c_int32 * 3) * 2)()
    i = rv.info(two)
    assert (i.dtype, i.shape, i.strides) == ("int32", (2, 3), (3, 1))


def test_numpy_scalar_is_a_read_only_buffer() -> None:
    s = np.float32(1.5)
    i = rv.info(s)
    assert (i.shape, i.readonly, i.dtype) == ((), True, "float32")
    t = rv.to_torch(s)
    assert t.shape == ()
    assert t.item() == 1.5


def test_buffer_owner_is_kept_alive() -> None:
    class Owner(bytearray):
        pass

    data = Owner(range(8))
    ref = weakref.ref(data)
    t = rv.to_torch(data)
    del data
    gc.collect()
    assert ref() is not None
    assert t.tolist() == list(range(8))
    del t
    gc.collect()
    assert ref() is None


# --- hand-written DLPack producers ----------------------------------------------------------


class LegacyProducer:
    """A pre-1.0 producer: `__dlpack__` takes no arguments and returns a legacy capsule."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.calls = 0

    def __dlpack__(self) -> object:
        self.calls += 1
        return self.a.__dlpack__()


class VersionedProducer:
    """A DLPack >= 1.0 producer that records the arguments it was called with."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.kwargs: list[dict[str, object]] = []

    def __dlpack__(self, **kwargs: object) -> object:
        self.kwargs.append(kwargs)
        return self.a.__dlpack__(**kwargs)  # type: ignore[arg-type]


@ignore_unversioned_export
def test_legacy_only_producer_works() -> None:
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    producer = LegacyProducer(a)
    i = rv.info(producer)
    assert i.source == "dlpack"
    assert i.data_ptr == np_data_ptr(a)
    assert (i.shape, i.strides) == ((2, 3), (3, 1))
    assert not i.readonly
    t = rv.to_torch(producer)
    assert t.data_ptr() == np_data_ptr(a)
    t[1, 1] = -4.0
    assert a[1, 1] == -4.0


@ignore_unversioned_export
def test_legacy_producer_keeps_memory_alive() -> None:
    a: np.ndarray = np.arange(100, dtype=np.int32).view(type("Tracked", (np.ndarray,), {}))
    ref = weakref.ref(a)
    t = rv.to_torch(LegacyProducer(a))
    del a
    gc.collect()
    assert ref() is not None
    assert t.sum().item() == sum(range(100))
    del t
    gc.collect()
    assert ref() is None


def test_versioned_producer_is_asked_for_version_1() -> None:
    a = np.arange(4, dtype=np.int16)
    producer = VersionedProducer(a)
    assert rv.to_torch(producer).tolist() == [0, 1, 2, 3]
    assert producer.kwargs == [{"max_version": (1, 0)}]


def test_versioned_read_only_export_is_copied() -> None:
    a = np.arange(4, dtype=np.float32)
    a.flags.writeable = False
    producer = VersionedProducer(a)
    assert rv.info(producer).readonly
    t = rv.to_torch(producer)
    assert t.data_ptr() != np_data_ptr(a)
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="read-only"):
        rv.copy(torch.ones(4), out=producer)


def test_producer_returning_a_non_capsule_is_a_type_error() -> None:
    class NotACapsule:
        def __dlpack__(self, **kwargs: object) -> object:
            return np.zeros(3)

    with pytest.raises(TypeError, match="PyCapsule"):
        rv.info(NotACapsule())


def test_producer_returning_a_consumed_capsule_is_a_type_error() -> None:
    capsule = np.arange(3.0).__dlpack__(max_version=(1, 0))
    torch.from_dlpack(capsule)  # consumes it: renamed to "used_dltensor_versioned"

    class Stale:
        def __dlpack__(self, **kwargs: object) -> object:
            return capsule

    with pytest.raises(TypeError, match="neither"):
        rv.info(Stale())


def test_dlpack_is_preferred_over_the_buffer_protocol() -> None:
    assert rv.info(np.zeros(3)).source == "dlpack"
    assert rv.info(torch.zeros(3)).source == "torch"

"""The DLPack consumer against hand-built capsules (ctypes): devices, dtypes, versions,
flags, offsets, malformed metadata, and the producer's deleter running exactly once."""

from __future__ import annotations

import ctypes
import gc
from ctypes import POINTER, c_int32, c_int64, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p

import numpy as np
import pytest
import torch
from _view_support import np_data_ptr

import rusttorch_view as rv


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", c_int32), ("device_id", c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", c_void_p),
        ("device", DLDevice),
        ("ndim", c_int32),
        ("dtype", DLDataType),
        ("shape", POINTER(c_int64)),
        ("strides", POINTER(c_int64)),
        ("byte_offset", c_uint64),
    ]


DELETER = ctypes.CFUNCTYPE(None, c_void_p)
CAPSULE_DESTRUCTOR = ctypes.CFUNCTYPE(None, c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", c_void_p), ("deleter", DELETER)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", c_uint32), ("minor", c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [
        ("version", DLPackVersion),
        ("manager_ctx", c_void_p),
        ("deleter", DELETER),
        ("flags", c_uint64),
        ("dl_tensor", DLTensor),
    ]


assert ctypes.sizeof(DLTensor) == 48
assert ctypes.sizeof(DLManagedTensor) == 64
assert ctypes.sizeof(DLManagedTensorVersioned) == 80

# Private prototypes, so that the shared ctypes.pythonapi functions are left untouched.
_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, c_void_p, c_void_p, c_void_p)(
    ("PyCapsule_New", ctypes.pythonapi)
)
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, c_void_p, c_void_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi)
)
_NAMES = {
    True: ctypes.create_string_buffer(b"dltensor_versioned"),
    False: ctypes.create_string_buffer(b"dltensor"),
}

READ_ONLY = 1
CPU = 1
# (code, bits) of every supported dtype.
DL_DTYPES = {
    "float32": (2, 32),
    "float64": (2, 64),
    "float16": (2, 16),
    "bfloat16": (4, 16),
    "int8": (0, 8),
    "int16": (0, 16),
    "int32": (0, 32),
    "int64": (0, 64),
    "uint8": (1, 8),
    "bool": (6, 8),
}


class Crafted:
    """A DLPack producer that exports `a`'s memory with whatever metadata a test asks for,
    and counts how often the managed tensor is deleted (by the consumer, or by the capsule
    destructor when no consumer took the capsule)."""

    def __init__(
        self,
        a: np.ndarray,
        *,
        versioned: bool = True,
        version: tuple[int, int] = (1, 0),
        device: tuple[int, int] = (CPU, 0),
        dtype: tuple[int, int, int] | None = None,
        shape: tuple[int, ...] | None = None,
        strides: tuple[int, ...] | str | None = "from-array",
        ndim: int | None = None,
        data: int | None = None,
        byte_offset: int = 0,
        flags: int = 0,
        capsule_name: bytes | None = None,
    ) -> None:
        self.a = a
        self.deleted = 0
        self.exports = 0
        shape = a.shape if shape is None else shape
        if isinstance(strides, str):  # "from-array": the array's own strides
            strides = tuple(s // a.itemsize for s in a.strides)
        self._shape = (c_int64 * max(len(shape), 1))(*shape)
        self._strides = None if strides is None else (c_int64 * max(len(strides), 1))(*strides)
        if dtype is None:
            code, bits = DL_DTYPES[a.dtype.name]
            dtype = (code, bits, 1)
        tensor = DLTensor(
            data=np_data_ptr(a) if data is None else data,
            device=DLDevice(*device),
            ndim=len(shape) if ndim is None else ndim,
            dtype=DLDataType(*dtype),
            shape=ctypes.cast(self._shape, POINTER(c_int64)),
            strides=None if self._strides is None else ctypes.cast(self._strides, POINTER(c_int64)),
            byte_offset=byte_offset,
        )
        self._deleter = DELETER(self._on_delete)
        self._destructor = CAPSULE_DESTRUCTOR(self._on_capsule_dealloc)
        self.versioned = versioned
        self.managed: DLManagedTensorVersioned | DLManagedTensor
        if versioned:
            self.managed = DLManagedTensorVersioned(
                version=DLPackVersion(*version),
                manager_ctx=None,
                deleter=self._deleter,
                flags=flags,
                dl_tensor=tensor,
            )
        else:
            self.managed = DLManagedTensor(
                dl_tensor=tensor, manager_ctx=None, deleter=self._deleter
            )
        self._name = (
            _NAMES[versioned] if capsule_name is None else ctypes.create_string_buffer(capsule_name)
        )

    def _on_delete(self, ptr: int | None) -> None:
        assert ptr == ctypes.addressof(self.managed)
        self.deleted += 1

    def _on_capsule_dealloc(self, capsule: int | None) -> None:
        # What a real producer does: free the tensor if no consumer renamed the capsule.
        if _capsule_is_valid(capsule, ctypes.addressof(self._name)):
            self._on_delete(ctypes.addressof(self.managed))

    def __dlpack__(self, **kwargs: object) -> object:
        self.exports += 1
        return _capsule_new(
            ctypes.addressof(self.managed),
            ctypes.addressof(self._name),
            ctypes.cast(self._destructor, c_void_p),
        )


def settled(p: Crafted) -> Crafted:
    gc.collect()
    return p


# --- well-formed capsules -------------------------------------------------------------------


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "legacy"])
def test_info_consumes_and_deletes_once(versioned: bool) -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = Crafted(a, versioned=versioned)
    i = rv.info(p)
    assert (i.shape, i.strides, i.dtype) == ((2, 3), (3, 1), "float32")
    assert i.data_ptr == np_data_ptr(a)
    assert i.source == "dlpack"
    assert not i.readonly
    assert settled(p).deleted == p.exports == 1


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "legacy"])
def test_shared_tensor_deletes_when_it_dies(versioned: bool) -> None:
    a = np.arange(8, dtype=np.int64)
    p = Crafted(a, versioned=versioned)
    t = rv.to_torch(p)
    assert t.data_ptr() == np_data_ptr(a)
    assert settled(p).deleted == 0, "deleted while torch still uses the memory"
    t[3] = -3
    assert a[3] == -3
    del t
    assert settled(p).deleted == 1


@pytest.mark.parametrize("name", list(DL_DTYPES))
def test_every_dl_dtype(name: str) -> None:
    code, bits = DL_DTYPES[name]
    raw = np.arange(4 * 8, dtype=np.uint8)
    p = Crafted(raw, dtype=(code, bits, 1), shape=(4 * 8 // (bits // 8),), strides=None)
    assert rv.info(p).dtype == name
    if name == "bool":
        raw[:] = raw % 2  # bool memory must hold 0 or 1
    t = rv.to_torch(p)
    assert t.dtype == getattr(torch, name)
    assert t.data_ptr() == np_data_ptr(raw)
    assert bytes(t.view(torch.uint8).numpy()) == raw.tobytes()


def test_null_strides_mean_row_major() -> None:
    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    i = rv.info(Crafted(a, strides=None))
    assert i.strides == (12, 4, 1)
    assert rv.to_torch(Crafted(a, strides=None)).tolist() == a.tolist()


def test_byte_offset_is_added() -> None:
    a = np.arange(10, dtype=np.float64)
    p = Crafted(a, shape=(4,), strides=(2,), byte_offset=3 * 8)
    assert rv.info(p).data_ptr == np_data_ptr(a) + 24
    assert rv.copy(p).tolist() == [3.0, 5.0, 7.0, 9.0]
    assert rv.to_torch(p).tolist() == [3.0, 5.0, 7.0, 9.0]


def test_read_only_flag() -> None:
    a = np.arange(4, dtype=np.float32)
    p = Crafted(a, flags=READ_ONLY)
    assert rv.info(p).readonly
    t = rv.to_torch(p)
    assert t.data_ptr() != np_data_ptr(a), "read-only memory must be copied"
    assert t.tolist() == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="read-only"):
        rv.copy(torch.ones(4), out=p)
    np.testing.assert_array_equal(a, np.arange(4, dtype=np.float32))
    del t
    assert settled(p).deleted == p.exports == 3


def test_zero_dim_capsule() -> None:
    a = np.array(2.5, dtype=np.float64)
    p = Crafted(a, strides=None)
    assert rv.info(p).shape == ()
    assert rv.to_torch(p).item() == 2.5


# --- refused capsules: an error, and the tensor still deleted exactly once ----------------


@pytest.mark.parametrize(
    ("device", "named"),
    [((2, 0), "cuda:0"), ((2, 3), "cuda:3"), ((10, 1), "rocm:1"), ((99, 0), "device type 99")],
)
def test_non_cpu_device_is_a_value_error(device: tuple[int, int], named: str) -> None:
    p = Crafted(np.zeros(3, dtype=np.float32), device=device)
    for call in (rv.info, rv.copy, rv.to_torch):
        with pytest.raises(ValueError, match=named):
            call(p)
    assert settled(p).deleted == p.exports == 3


@pytest.mark.parametrize(
    ("dtype", "named"),
    [
        ((5, 64, 1), "complex64"),
        ((2, 32, 4), "float32x4"),
        ((1, 16, 1), "uint16"),
        ((3, 8, 1), "opaque8"),
    ],
)
def test_unsupported_dl_dtype_is_a_type_error(dtype: tuple[int, int, int], named: str) -> None:
    p = Crafted(np.zeros(8, dtype=np.float64), dtype=dtype)
    with pytest.raises(TypeError, match=named):
        rv.info(p)
    assert settled(p).deleted == 1


def test_unknown_major_version_is_refused_and_not_consumed() -> None:
    p = Crafted(np.zeros(3, dtype=np.float32), version=(2, 0))
    with pytest.raises(ValueError, match="DLPack 2"):
        rv.info(p)
    # Not consumed: the capsule's own destructor frees the tensor.
    assert settled(p).deleted == 1


def test_newer_minor_version_is_accepted() -> None:
    a = np.arange(3, dtype=np.float32)
    p = Crafted(a, version=(1, 3))
    assert rv.to_torch(p).tolist() == [0.0, 1.0, 2.0]


def test_negative_extent_is_a_value_error() -> None:
    p = Crafted(np.zeros(6, dtype=np.float32), shape=(2, -3), strides=(3, 1))
    with pytest.raises(ValueError, match="negative"):
        rv.info(p)
    assert settled(p).deleted == 1


def test_negative_ndim_is_a_value_error() -> None:
    p = Crafted(np.zeros(6, dtype=np.float32), ndim=-1)
    with pytest.raises(ValueError, match="ndim"):
        rv.info(p)
    assert settled(p).deleted == 1


def test_overflowing_data_pointer_is_a_value_error() -> None:
    p = Crafted(np.zeros(2, dtype=np.float32), data=2**64 - 8, byte_offset=64)
    with pytest.raises(ValueError, match="overflow"):
        rv.info(p)
    assert settled(p).deleted == 1


@pytest.mark.parametrize("call", [rv.info, rv.to_torch, rv.copy], ids=["info", "to_torch", "copy"])
def test_extent_past_the_address_space_is_a_value_error(call: object) -> None:
    # Metadata claiming 2**61 rows: must be refused before anything reads the memory.
    p = Crafted(np.zeros(4, dtype=np.float32), shape=(2**61, 4), strides=(4, 1))
    with pytest.raises(ValueError, match=r"address space|overflow"):
        call(p)  # type: ignore[operator]
    assert settled(p).deleted == 1


def test_capsule_with_a_foreign_name_is_a_type_error() -> None:
    p = Crafted(np.zeros(3, dtype=np.float32), capsule_name=b"not_a_tensor")
    with pytest.raises(TypeError, match="neither"):
        rv.info(p)
    assert settled(p).deleted == 1

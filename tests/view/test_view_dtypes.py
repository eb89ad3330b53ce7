"""Every supported dtype through torch, NumPy, DLPack and the buffer protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _view_support import (
    NUMPY_DTYPES,
    TORCH_DTYPES,
    as_bits,
    assert_bitwise_equal,
    dtype_name,
    np_data_ptr,
    random_tensor,
)

import rusttorch_view as rv

torch_dtypes = pytest.mark.parametrize("dtype", TORCH_DTYPES, ids=dtype_name)
numpy_dtypes = pytest.mark.parametrize("np_dtype", NUMPY_DTYPES, ids=str)


def test_supported_dtypes_lists_exactly_the_ten() -> None:
    assert rv.supported_dtypes() == [dtype_name(d) for d in TORCH_DTYPES]


@torch_dtypes
def test_info_reports_torch_dtype(dtype: torch.dtype) -> None:
    x = random_tensor((3, 5), dtype)
    i = rv.info(x)
    assert i.dtype == dtype_name(dtype)
    assert i.itemsize == x.element_size()
    assert i.numel == 15
    assert i.source == "torch"
    assert not i.readonly


@torch_dtypes
def test_copy_preserves_every_bit(dtype: torch.dtype) -> None:
    x = random_tensor((7, 9), dtype, seed=1)
    assert_bitwise_equal(rv.copy(x), x)
    assert_bitwise_equal(rv.copy(x.t()), x.t().contiguous())
    assert_bitwise_equal(rv._native._copy_torch_alloc(x[::2]), x[::2].contiguous())


@torch_dtypes
def test_copy_into_out_of_every_dtype(dtype: torch.dtype) -> None:
    x = random_tensor((4, 6), dtype, seed=2)
    out = torch.zeros((4, 6), dtype=dtype)
    rv.copy(x, out=out)
    assert_bitwise_equal(out, x)


@torch_dtypes
def test_to_torch_copy_true_of_every_dtype(dtype: torch.dtype) -> None:
    x = random_tensor((10,), dtype, seed=3)
    y = rv.to_torch(x, copy=True)
    assert y.data_ptr() != x.data_ptr()
    assert_bitwise_equal(y, x)


@numpy_dtypes
def test_numpy_to_torch_of_every_dtype(np_dtype: np.dtype) -> None:
    ref = random_tensor((4, 5), torch.from_numpy(np.zeros(0, np_dtype)).dtype, seed=4)
    a = ref.numpy().copy()
    i = rv.info(a)
    assert i.dtype == dtype_name(ref.dtype)
    assert i.itemsize == a.itemsize
    assert i.source == "dlpack"
    t = rv.to_torch(a)
    assert t.dtype == ref.dtype
    assert t.data_ptr() == np_data_ptr(a)
    assert_bitwise_equal(t, ref)


@numpy_dtypes
def test_buffer_protocol_of_every_numpy_dtype(np_dtype: np.dtype) -> None:
    ref = random_tensor((6,), torch.from_numpy(np.zeros(0, np_dtype)).dtype, seed=5)
    a = ref.numpy().copy()
    m = memoryview(a)
    i = rv.info(m)
    assert i.source == "buffer"
    assert i.dtype == dtype_name(ref.dtype)
    t = rv.to_torch(m)
    assert t.data_ptr() == np_data_ptr(a)
    assert_bitwise_equal(t, ref)


@numpy_dtypes
def test_numpy_copy_of_every_dtype(np_dtype: np.dtype) -> None:
    ref = random_tensor((5, 4), torch.from_numpy(np.zeros(0, np_dtype)).dtype, seed=6)
    a = ref.numpy().copy().T
    y = rv.copy(a)
    assert isinstance(y, torch.Tensor)
    assert y.is_contiguous()
    assert_bitwise_equal(y, ref.t().contiguous())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_name)
def test_all_half_bit_patterns_survive(dtype: torch.dtype) -> None:
    # All 65536 patterns: +-0, subnormals, +-inf, and NaNs with every payload.
    x = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(dtype)
    assert_bitwise_equal(rv.copy(x), x)
    assert_bitwise_equal(rv.copy(x.reshape(256, 256).t()), x.reshape(256, 256).t().contiguous())
    out = torch.empty_like(x)
    rv.copy(x, out=out)
    assert torch.equal(as_bits(out), as_bits(x))


def test_numpy_float16_bit_patterns_survive_the_copying_path() -> None:
    bits = np.arange(2**16, dtype=np.uint16).view(np.float16)
    bits.flags.writeable = False  # read-only: to_torch must copy
    t = rv.to_torch(bits)
    assert t.data_ptr() != np_data_ptr(bits)
    np.testing.assert_array_equal(t.view(torch.int16).numpy().view(np.uint16), bits.view(np.uint16))


def test_bfloat16_values() -> None:
    values = [0.0, -0.0, 1.0, -2.5, 3.0e38, -1.0e-38, float("inf"), float("-inf")]
    x = torch.tensor(values, dtype=torch.bfloat16)
    y = rv.copy(x)
    assert y.dtype == torch.bfloat16
    assert y.tolist() == x.tolist()
    assert torch.signbit(y).tolist() == torch.signbit(x).tolist()
    assert rv.info(x).dtype == "bfloat16"
    assert rv.info(x).itemsize == 2


def test_integer_extremes() -> None:
    for dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
        lim = torch.iinfo(dtype)
        x = torch.tensor([lim.min, -1 if lim.min < 0 else 0, lim.max], dtype=dtype)
        assert rv.copy(x).tolist() == [lim.min, -1 if lim.min < 0 else 0, lim.max]


def test_bool_numpy_array() -> None:
    a = np.array([[True, False, True], [False, False, True]])
    t = rv.to_torch(a)
    assert t.dtype == torch.bool
    assert t.data_ptr() == np_data_ptr(a)
    assert t.tolist() == a.tolist()
    t[1, 0] = True
    assert a[1, 0]
    assert rv.info(a).dtype == "bool"
    assert rv.info(a).itemsize == 1


def test_bool_torch_copy_and_logic() -> None:
    x = torch.tensor([True, False, True, True]).reshape(2, 2).t()
    y = rv.copy(x)
    assert y.dtype == torch.bool
    assert torch.equal(y, x)
    assert torch.equal(~y, ~x)
    assert (y & x).tolist() == x.tolist()

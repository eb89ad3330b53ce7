"""Shared helpers for the rusttorch_view tests: dtype tables, random data, bitwise checks."""

from __future__ import annotations

import os

import numpy as np
import torch

# Every dtype rusttorch supports, as torch names it, in `supported_dtypes()` order.
TORCH_DTYPES: list[torch.dtype] = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
]

# The NumPy equivalents (NumPy has no bfloat16).
NUMPY_DTYPES: list[np.dtype] = [
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(np.float16),
    np.dtype(np.int8),
    np.dtype(np.int16),
    np.dtype(np.int32),
    np.dtype(np.int64),
    np.dtype(np.uint8),
    np.dtype(np.bool_),
]

# An integer dtype of the same width, for bitwise comparisons (NaN payloads, -0.0).
_BITS: dict[torch.dtype, torch.dtype] = {
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
    torch.bool: torch.uint8,
}


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.float32` -> `"float32"`, the name rusttorch reports."""
    return str(dtype).removeprefix("torch.")


def random_tensor(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """A contiguous tensor of random bit patterns (floats include NaN, inf, -0.0, subnormals)."""
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g, dtype=torch.uint8).bool()
    bits = _BITS.get(dtype, dtype)
    info = torch.iinfo(bits)
    raw = torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64)
    return raw.to(bits).view(dtype)


def as_bits(t: torch.Tensor) -> torch.Tensor:
    """`t` reinterpreted as integers of the same width (a view; strides kept)."""
    target = _BITS.get(t.dtype)
    return t if target is None else t.view(target)


def assert_bitwise_equal(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Same shape, dtype and bit pattern of every element."""
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.equal(as_bits(actual), as_bits(expected))


def np_data_ptr(a: np.ndarray) -> int:
    """Address of element [0, ...] of a NumPy array."""
    return int(a.__array_interface__["data"][0])


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")

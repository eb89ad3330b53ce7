"""Activations against torch, every op x dtype x SIMD level, with the documented
tolerances; odd lengths (vector tails), unaligned starts, strides, NaN/inf, empty and 0-d
tensors; hypothesis over shapes and strides."""

from __future__ import annotations

import pytest
import torch
from _simd_support import (
    ACTIVATIONS,
    FLOAT_DTYPES,
    activation_tolerance,
    assert_close_to,
    dtype_name,
    random_input,
    special_values,
)
from hypothesis import given, settings
from hypothesis import strategies as st

OPS = sorted(ACTIVATIONS)


def check(name: str, x: torch.Tensor, what: str = "") -> None:
    """rusttorch's result equals torch's float64 result within the documented tolerance."""
    ours, ref, _ = ACTIVATIONS[name]
    y = ours(x)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert y.is_contiguous()
    expected = ref(x.double())
    # A 16-bit result can only be the float64 value rounded to its dtype.
    if x.dtype in (torch.float16, torch.bfloat16):
        expected = expected.to(x.dtype).double()
    rtol, atol = activation_tolerance(name, x.dtype, x)
    assert_close_to(y, expected, rtol, atol, f"{name} {dtype_name(x.dtype)} {what}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("name", OPS)
def test_every_op_dtype_and_level_matches_torch(level: str, name: str, dtype: torch.dtype) -> None:
    # An odd length (a vector tail), large enough to be split over two threads.
    x = random_input(300_007, dtype)
    check(name, x, f"at {level}")
    check(name, special_values(dtype), f"special values at {level}")


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("n", [0, 1, 3, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129])
def test_odd_lengths_and_unaligned_starts(level: str, name: str, n: int) -> None:
    base = random_input(n + 1, torch.float32, seed=n)
    check(name, base[1:], f"n={n} at offset 1 ({level})")
    check(name, base[:n], f"n={n} ({level})")


@pytest.mark.parametrize("name", OPS)
def test_zero_dim_and_empty(name: str) -> None:
    check(name, torch.tensor(0.75), "0-d")
    check(name, torch.empty(0, 5), "empty")
    check(name, torch.empty(3, 0, 2, dtype=torch.float64), "empty 3-d")


@pytest.mark.parametrize("name", OPS)
def test_wide_range_in_float64(name: str) -> None:
    # exp and the tails: every binade from overflow to underflow.
    x = torch.linspace(-800, 800, 20_001, dtype=torch.float64)
    check(name, x, "linspace")
    check(name, torch.linspace(-1e-3, 1e-3, 2001, dtype=torch.float64), "near 0")


@pytest.mark.parametrize("name", OPS)
def test_out_receives_the_result_also_when_strided(name: str) -> None:
    ours, ref, _ = ACTIVATIONS[name]
    x = random_input(600, torch.float32).reshape(20, 30)
    out = torch.empty(30, 20).t()
    returned = ours(x, out=out)
    assert returned is out
    assert_close_to(out, ref(x.double()), 1e-5, 1e-6, name)
    out2 = torch.empty(20, 30)
    assert ours(x, out=out2) is out2
    assert torch.equal(out2, out)


def test_out_bumps_the_version_so_autograd_notices() -> None:
    import rusttorch_simd as rs

    out = torch.empty(5)
    v = out._version
    rs.relu(torch.randn(5), out=out)
    assert out._version > v


def test_numpy_input_gives_a_torch_result() -> None:
    import numpy as np

    import rusttorch_simd as rs

    a = np.linspace(-3, 3, 11, dtype=np.float32)
    y = rs.silu(a)
    assert isinstance(y, torch.Tensor)
    assert torch.allclose(y, torch.nn.functional.silu(torch.from_numpy(a)))


SHAPES = st.lists(st.integers(0, 9), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(
    shape=SHAPES,
    name=st.sampled_from(OPS),
    dtype=st.sampled_from(FLOAT_DTYPES),
    transpose=st.booleans(),
    step=st.integers(1, 3),
    offset=st.integers(0, 2),
)
def test_any_shape_and_strides(
    shape: list[int], name: str, dtype: torch.dtype, transpose: bool, step: int, offset: int
) -> None:
    full = list(shape)
    full[-1] = full[-1] * step + offset
    base = random_input(max(1, int(torch.tensor(full).prod())), dtype, seed=len(shape))
    x = base[: int(torch.tensor(full).prod())].reshape(full)[..., offset::step]
    if transpose and x.dim() >= 2:
        x = x.transpose(0, -1)
    check(name, x, f"shape {list(x.shape)} strides {x.stride()}")


def test_nan_and_inf_follow_torch_float64() -> None:
    import rusttorch_simd as rs

    x = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64)
    for name in OPS:
        ours, ref, _ = ACTIVATIONS[name]
        y, want = ours(x), ref(x)
        assert torch.equal(y.isnan(), want.isnan()), name
        assert torch.equal(y[~y.isnan()], want[~want.isnan()]), name
    # gelu(+inf) is +inf, as torch's float64 (torch's float32 vector path gives NaN).
    assert rs.gelu(torch.tensor([float("inf")] * 20))[0].item() == float("inf")

"""float16 and bfloat16 inputs to the statistics, the scalers and cosine_similarity: widened
to float32 as they are read (sums in float64), each result rounded to 16 bits once. The
reference is float64 on the same (upcast) input, so every bound below is one 16-bit
rounding plus the float32 arithmetic's own error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _simd_support import assert_close_to, dtype_name
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_simd as rs

HALF_DTYPES = [torch.float16, torch.bfloat16]
# Unit roundoff of float32: the error of one float32 operation, relative.
U32 = 2.0**-24


def eps(dtype: torch.dtype) -> float:
    """One ulp of 1.0: bounds one rounding to nearest (half an ulp) plus double rounding
    (f64 -> f32 -> 16 bits) with room to spare."""
    return torch.finfo(dtype).eps


def matrix(rows: int, cols: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    # Columns with offsets and spreads of different sizes (within float16's range).
    g = torch.Generator().manual_seed(seed)
    offsets = torch.linspace(-20, 20, cols, dtype=torch.float64)
    scales = torch.linspace(0.5, 8, cols, dtype=torch.float64)
    x = torch.randn(rows, cols, generator=g, dtype=torch.float64) * scales + offsets
    return x.to(dtype)


# The smallest positive subnormal of each format: results that round into the subnormal
# range (float16's starts below 6.1e-5) keep only this absolute accuracy.
SMALLEST = {torch.float16: 2.0**-24, torch.bfloat16: 2.0**-133}


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1])
def test_mean_var(level: str, dtype: torch.dtype, dim: int) -> None:
    x = matrix(3001, 37, dtype)
    x64 = x.double()
    for correction in (0, 1):
        mean, var = rs.mean_var(x, dim, correction=correction)
        assert mean.dtype == var.dtype == dtype
        what = f"{dtype_name(dtype)} dim {dim} c={correction} at {level}"
        assert_close_to(mean, x64.mean(dim), eps(dtype), SMALLEST[dtype], f"mean {what}")
        want = x64.var(dim, correction=correction)
        assert_close_to(var, want, eps(dtype), 0.0, f"var {what}")


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1])
def test_standardize(level: str, dtype: torch.dtype, dim: int) -> None:
    x = matrix(2001, 53, dtype, seed=1)
    y, mean, std = rs.standardize(x, dim)
    assert y.dtype == mean.dtype == std.dtype == dtype
    x64 = x.double()
    m64, s64 = x64.mean(dim, keepdim=True), x64.std(dim, keepdim=True)
    # y = (x - mean) / std in float32 from the float32 mean and std: their rounding moves
    # y by about (|x| + |mean|) u32 / std; then one rounding to 16 bits.
    atol = 4 * U32 * (x64.abs() + m64.abs()) / s64 + SMALLEST[dtype]
    what = f"{dtype_name(dtype)} dim {dim} at {level}"
    assert_close_to(y, (x64 - m64) / s64, eps(dtype), atol, f"y {what}")
    assert_close_to(mean, m64.squeeze(dim), eps(dtype), SMALLEST[dtype], f"mean {what}")
    assert_close_to(std, s64.squeeze(dim), eps(dtype), 0.0, f"std {what}")
    out = torch.full_like(x, 7.0)
    assert rs.standardize(x, dim, out=out)[0] is out
    assert torch.equal(out, y)


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1])
def test_minmax_scale(level: str, dtype: torch.dtype, dim: int) -> None:
    x = matrix(1001, 29, dtype, seed=2)
    lo, hi = -1.0, 2.0
    y, xmin, xmax = rs.minmax_scale(x, dim, feature_range=(lo, hi))
    # The extremes are input values: exact.
    assert torch.equal(xmin, x.amin(dim)) and torch.equal(xmax, x.amax(dim))
    a = x.double().numpy()
    amin, amax = a.min(dim, keepdims=True), a.max(dim, keepdims=True)
    scale = (hi - lo) / (amax - amin)
    offset = lo - amin * scale
    # x * s + offset in float32 cancels: its error scales with the terms.
    atol = torch.from_numpy(4 * U32 * (np.abs(a * scale) + np.abs(offset))) + SMALLEST[dtype]
    want = torch.from_numpy(a * scale + offset)
    assert_close_to(y, want, eps(dtype), atol, f"{dtype_name(dtype)} dim {dim} at {level}")


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("rows", [1, 2, 5, 1000])
def test_robust_scale(level: str, dtype: torch.dtype, dim: int, rows: int) -> None:
    x = matrix(rows, 23, dtype, seed=3)
    y, center, scale = rs.robust_scale(x, dim, quantile_range=(10.0, 90.0))
    assert y.dtype == center.dtype == scale.dtype == dtype
    a = x.double().numpy()
    med = np.median(a, axis=dim, keepdims=True)
    q = np.percentile(a, [10.0, 90.0], axis=dim, keepdims=True)
    iqr = q[1] - q[0]
    iqr[iqr == 0] = 1.0
    # Quantiles interpolate in float32 at the scale of the values.
    mag = float(np.abs(a).max())
    what = f"{dtype_name(dtype)} dim {dim} rows {rows} at {level}"
    med_t = torch.from_numpy(med).squeeze(dim)
    assert_close_to(center, med_t, eps(dtype), 4 * U32 * mag, f"center {what}")
    iqr_t = torch.from_numpy(iqr).squeeze(dim)
    assert_close_to(scale, iqr_t, eps(dtype), 8 * U32 * mag, f"scale {what}")
    atol = torch.from_numpy(8 * U32 * mag * (1 + np.abs((a - med) / iqr)) / iqr) + SMALLEST[dtype]
    want = torch.from_numpy((a - med) / iqr)
    assert_close_to(y, want, eps(dtype), atol, f"y {what}")


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_name)
def test_nan_policies(dtype: torch.dtype) -> None:
    x = matrix(101, 5, dtype, seed=4)
    x[3, 1] = float("nan")
    x[50:60, 2] = float("nan")
    a = x.double().numpy()
    mean, var = rs.mean_var(x, nan_policy="omit")
    assert_close_to(
        mean, torch.from_numpy(np.nanmean(a, 0)), eps(dtype), SMALLEST[dtype], "nanmean"
    )
    assert_close_to(var, torch.from_numpy(np.nanvar(a, 0, ddof=1)), eps(dtype), 0.0, "nanvar")
    mean, _ = rs.mean_var(x)
    assert torch.equal(mean.isnan(), torch.tensor([False, True, True, False, False]))
    y, c, _ = rs.robust_scale(x, nan_policy="omit")
    assert torch.equal(y.isnan(), x.isnan())
    assert_close_to(c, torch.from_numpy(np.nanmedian(a, 0)), eps(dtype), 0.0, "nanmedian")
    out = torch.full_like(x, 7.0)
    with pytest.raises(ValueError, match="column 1"):
        rs.standardize(x, nan_policy="raise", out=out)
    assert (out == 7.0).all()


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("d", [1, 7, 33, 300])
def test_cosine_similarity(level: str, dtype: torch.dtype, d: int) -> None:
    g = torch.Generator().manual_seed(d)
    x1 = torch.randn(517, d, generator=g).to(dtype)
    x2 = torch.randn(517, d, generator=g).to(dtype)
    x2[5] = 0.0  # a zero row: the eps clamp
    got = rs.cosine_similarity(x1, x2)
    assert got.dtype == dtype and got.shape == (517,)
    want = torch.nn.functional.cosine_similarity(x1.double(), x2.double(), dim=-1)
    # Sums of d float32 products (in 16 lanes): a few d u32 at worst, relative to the
    # norms' product, i.e. absolute in the cosine (which is at most 1).
    atol = 4 * d * U32 + SMALLEST[dtype]
    assert_close_to(got, want, eps(dtype), atol, f"{dtype_name(dtype)} d={d} at {level}")


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=dtype_name)
def test_standardize_gradient_is_computed_in_float32(dtype: torch.dtype) -> None:
    x = matrix(64, 6, dtype, seed=5)
    gy = torch.randn(64, 6, generator=torch.Generator().manual_seed(6))
    x16 = x.clone().requires_grad_()
    (g16,) = torch.autograd.grad(rs.standardize(x16)[0], x16, gy.to(dtype))
    assert g16.dtype == dtype
    x64 = x.double().requires_grad_()
    (g64,) = torch.autograd.grad(rs.standardize(x64)[0], x64, gy.to(dtype).double())
    # Float32 throughout, rounded once: 16 bits of the float64 gradient (whose terms
    # cancel, hence the absolute part, relative to the gradient's scale).
    atol = 4 * eps(dtype) * g64.abs().max().item()
    assert_close_to(g16, g64, eps(dtype), atol, f"{dtype_name(dtype)} gradient")


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    dim=st.integers(0, 1),
    transpose=st.booleans(),
    dtype=st.sampled_from(HALF_DTYPES),
)
def test_any_matrix_and_layout(
    rows: int, cols: int, dim: int, transpose: bool, dtype: torch.dtype
) -> None:
    x = matrix(rows, cols, dtype, seed=rows * 100 + cols)
    if transpose:
        x = x.t()
    x64 = x.double()
    mean, var = rs.mean_var(x, dim, correction=0)
    assert_close_to(mean, x64.mean(dim), eps(dtype), SMALLEST[dtype], "mean")
    assert_close_to(var, x64.var(dim, correction=0), eps(dtype), SMALLEST[dtype], "var")
    _y, lo, hi = rs.minmax_scale(x, dim)
    assert torch.equal(lo, x.amin(dim)) and torch.equal(hi, x.amax(dim))

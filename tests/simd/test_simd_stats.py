"""Column statistics and scalers against torch and NumPy (scikit-learn's formulas): every
axis, dtype and SIMD level, the three NaN policies, large inputs merged across threads,
ill-conditioned data, empty and constant columns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _simd_support import REDUCTION_DTYPES, assert_close_to, dtype_name
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_simd as rs

RTOL = {torch.float32: 2e-6, torch.float64: 1e-12}


def matrix(rows: int, cols: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    offsets = torch.linspace(-100, 100, cols, dtype=torch.float64)
    scales = torch.linspace(0.1, 10, cols, dtype=torch.float64)
    x = torch.randn(rows, cols, generator=g, dtype=torch.float64) * scales + offsets
    return x.to(dtype)


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_mean_var_matches_torch(level: str, dtype: torch.dtype, dim: int) -> None:
    x = matrix(3001, 37, dtype)
    for correction in (0, 1):
        mean, var = rs.mean_var(x, dim, correction=correction)
        x64 = x.double()
        atol = RTOL[dtype] * x64.abs().max().item()
        assert_close_to(mean, x64.mean(dim), RTOL[dtype], atol, "mean")
        assert_close_to(var, x64.var(dim, correction=correction), RTOL[dtype], 0.0, "var")


@pytest.mark.parametrize("dim", [0, 1])
def test_statistics_of_an_unaligned_contiguous_matrix(level: str, dim: int) -> None:
    # One element into its storage: every vector load of every level is unaligned.
    x = matrix(1, 301 * 37 + 1, torch.float32).flatten()[1:].view(301, 37)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    x64 = x.double()
    mean, var = rs.mean_var(x, dim)
    atol = RTOL[torch.float32] * x64.abs().max().item()
    assert_close_to(mean, x64.mean(dim), RTOL[torch.float32], atol, f"mean at {level}")
    assert_close_to(var, x64.var(dim), RTOL[torch.float32] * 10, atol, f"var at {level}")
    lo, hi = x64.amin(dim, keepdim=True), x64.amax(dim, keepdim=True)
    y, _, _ = rs.minmax_scale(x, dim)
    assert_close_to(y, (x64 - lo) / (hi - lo), 1e-5, 1e-5, f"minmax at {level}")
    r, center, _ = rs.robust_scale(x, dim)
    assert_close_to(center, x64.median(dim).values, 0.0, 1e-5, f"median at {level}")
    assert_close_to(r, rs.robust_scale(x.clone(), dim)[0], 0.0, 0.0, f"robust at {level}")


def test_mean_var_of_3d_along_each_dim() -> None:
    x = matrix(4 * 5, 6, torch.float64).reshape(4, 5, 6)
    for dim in range(3):
        mean, var = rs.mean_var(x, dim)
        assert mean.shape == var.shape == x.mean(dim).shape
        assert_close_to(mean, x.mean(dim), 1e-12, 1e-12, f"mean dim {dim}")
        assert_close_to(var, x.var(dim), 1e-12, 1e-12, f"var dim {dim}")


def test_welford_is_stable_where_sums_of_squares_are_not() -> None:
    # A huge offset and a tiny spread: E[x^2] - E[x]^2 loses every digit in float64.
    x = (1e9 + torch.arange(100_000, dtype=torch.float64) % 7).reshape(-1, 1)
    _, var = rs.mean_var(x, correction=0)
    assert_close_to(var, (x - 1e9).var(0, correction=0), 1e-9, 0.0, "offset variance")


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
def test_large_matrix_merges_thread_partials(dtype: torch.dtype) -> None:
    x = matrix(200_003, 11, dtype, seed=3)
    mean, var = rs.mean_var(x)
    atol = RTOL[dtype] * x.double().abs().max().item()
    assert_close_to(mean, x.double().mean(0), RTOL[dtype], atol, "mean")
    assert_close_to(var, x.double().var(0), RTOL[dtype] * 10, 0.0, "var")


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1])
def test_standardize_is_eager_torchs_formula(level: str, dtype: torch.dtype, dim: int) -> None:
    x = matrix(2001, 53, dtype)
    y, _mean, std = rs.standardize(x, dim)
    x64 = x.double()
    want = (x64 - x64.mean(dim, keepdim=True)) / x64.std(dim, keepdim=True)
    # x - mean rounds at the scale of |x|: an absolute error of eps |x| / std in y (the
    # same as eager torch in this dtype).
    atol = RTOL[dtype] * 4 * (x64.abs() + 1) / x64.std(dim, keepdim=True)
    assert_close_to(y, want, RTOL[dtype] * 4, atol, "y")
    assert_close_to(std, x64.std(dim), RTOL[dtype], 0.0, "std")
    out = torch.empty_like(x)
    y2, _, _ = rs.standardize(x, dim, out=out)
    assert y2 is out and torch.equal(out, y)
    y3, _, s3 = rs.standardize(x, dim, eps=1.0, correction=0)
    assert_close_to(s3, x64.std(dim, correction=0), RTOL[dtype], 0.0, "std c=0")
    want = (x64 - x64.mean(dim, keepdim=True)) / (s3.double().unsqueeze(dim) + 1.0)
    assert_close_to(y3, want, RTOL[dtype] * 4, RTOL[dtype] * 4 * (x64.abs() + 1), "eps=1")


def test_constant_columns_follow_torch_division() -> None:
    x = torch.ones(10, 3)
    y, _, std = rs.standardize(x)
    assert torch.equal(std, torch.zeros(3))
    assert y.isnan().all()  # 0 / 0, as eager torch
    y, _lo, _hi = rs.minmax_scale(x)
    assert torch.equal(y, torch.zeros(10, 3))  # scikit-learn: a zero range counts as 1
    y, _center, scale = rs.robust_scale(x)
    assert torch.equal(scale, torch.ones(3)) and torch.equal(y, torch.zeros(10, 3))


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1])
def test_minmax_scale_is_scikit_learns(level: str, dtype: torch.dtype, dim: int) -> None:
    x = matrix(1001, 29, dtype)
    lo, hi = -1.0, 2.0
    y, xmin, xmax = rs.minmax_scale(x, dim, feature_range=(lo, hi))
    a = x.double().numpy()
    amin, amax = a.min(dim, keepdims=True), a.max(dim, keepdims=True)
    scale = (hi - lo) / (amax - amin)
    offset = lo - amin * scale
    want = a * scale + offset
    assert torch.equal(xmin, x.amin(dim)) and torch.equal(xmax, x.amax(dim))
    # x * s + offset cancels: the error scales with the terms, as in scikit-learn.
    atol = torch.from_numpy(RTOL[dtype] * 4 * (np.abs(a * scale) + np.abs(offset)))
    assert_close_to(y, torch.from_numpy(want), RTOL[dtype] * 4, atol, "minmax")


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("rows", [1, 2, 5, 1000])
def test_robust_scale_is_scikit_learns(level: str, dtype: torch.dtype, dim: int, rows: int) -> None:
    x = matrix(rows, 23, dtype)
    y, center, scale = rs.robust_scale(x, dim, quantile_range=(10.0, 90.0))
    a = x.numpy()
    med = np.median(a, axis=dim, keepdims=True)
    q = np.percentile(a, [10.0, 90.0], axis=dim, keepdims=True)
    iqr = q[1] - q[0]
    iqr[iqr == 0] = 1.0
    assert_close_to(center, torch.from_numpy(med).squeeze(dim), RTOL[dtype], 0.0, "center")
    # Quantiles interpolate at the scale of the values (|x| up to ~130 here).
    mag = float(np.abs(a).max())
    iqr_t = torch.from_numpy(iqr).squeeze(dim)
    assert_close_to(scale, iqr_t, RTOL[dtype] * 10, RTOL[dtype] * 4 * mag, "scale")
    atol = RTOL[dtype] * 8 * mag * (1 + np.abs((a - med) / iqr)) / iqr
    assert_close_to(
        y, torch.from_numpy((a - med) / iqr), RTOL[dtype] * 10, torch.from_numpy(atol), "y"
    )


# --- NaN policies ---------------------------------------------------------------------------


def with_nans(dtype: torch.dtype) -> torch.Tensor:
    x = matrix(101, 5, dtype)
    x[3, 1] = float("nan")
    x[50:60, 2] = float("nan")
    x[:, 4] = float("nan")
    return x


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
def test_nan_policy_propagate(dtype: torch.dtype) -> None:
    x = with_nans(dtype)
    nan_cols, clean = [1, 2, 4], [0, 3]
    mean, var = rs.mean_var(x)
    assert mean[nan_cols].isnan().all() and not mean[clean].isnan().any()
    assert var[nan_cols].isnan().all() and not var[clean].isnan().any()
    y, _, _ = rs.standardize(x)
    assert y[:, nan_cols].isnan().all() and not y[:, clean].isnan().any()
    y, lo, hi = rs.minmax_scale(x)
    assert lo[nan_cols].isnan().all() and hi[nan_cols].isnan().all()
    assert not y[:, clean].isnan().any()
    y, c, _s = rs.robust_scale(x)
    assert c[nan_cols].isnan().all() and not c[clean].isnan().any()


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
def test_nan_policy_omit_is_numpys_nan_functions(level: str, dtype: torch.dtype) -> None:
    x = with_nans(dtype)
    a = x.double().numpy()
    mean, var = rs.mean_var(x, nan_policy="omit")
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want_mean = np.nanmean(a, 0)
        want_var = np.nanvar(a, 0, ddof=1)
    assert_close_to(mean, torch.from_numpy(want_mean), RTOL[dtype], RTOL[dtype] * 100, "nanmean")
    assert_close_to(var, torch.from_numpy(want_var), RTOL[dtype], 0.0, "nanvar")
    y, lo, _hi = rs.minmax_scale(x, nan_policy="omit")
    assert torch.equal(y.isnan(), x.isnan())
    assert not lo[:4].isnan().any() and lo[4].isnan()
    y, c, _s = rs.robust_scale(x, nan_policy="omit")
    with pytest.warns(RuntimeWarning):
        want_c = np.nanmedian(a, 0)
    assert_close_to(c, torch.from_numpy(want_c), RTOL[dtype], 0.0, "nanmedian")
    y, _m, _sd = rs.standardize(x, nan_policy="omit")
    assert torch.equal(y.isnan(), x.isnan() | torch.tensor([False] * 4 + [True]))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: rs.mean_var(x, nan_policy="raise"),
        lambda x: rs.standardize(x, nan_policy="raise"),
        lambda x: rs.minmax_scale(x, nan_policy="raise"),
        lambda x: rs.robust_scale(x, nan_policy="raise"),
    ],
    ids=["mean_var", "standardize", "minmax_scale", "robust_scale"],
)
def test_nan_policy_raise_raises_only_on_nan(call) -> None:  # type: ignore[no-untyped-def]
    x = with_nans(torch.float32)
    with pytest.raises(ValueError, match="NaN"):
        call(x)
    clean = matrix(20, 3, torch.float32)
    call(clean)  # no NaN: no error


@pytest.mark.parametrize("scaler", [rs.standardize, rs.minmax_scale, rs.robust_scale])
def test_nan_policy_raise_leaves_out_untouched(scaler) -> None:  # type: ignore[no-untyped-def]
    x = with_nans(torch.float64)
    out = torch.full_like(x, 7.0)
    with pytest.raises(ValueError, match="column 1"):
        scaler(x, nan_policy="raise", out=out)
    assert (out == 7.0).all()


# --- shapes ---------------------------------------------------------------------------------


def test_empty_and_single_row() -> None:
    mean, var = rs.mean_var(torch.empty(0, 4))
    assert mean.isnan().all() and var.isnan().all()
    mean, var = rs.mean_var(torch.ones(1, 4))
    assert torch.equal(mean, torch.ones(4)) and var.isnan().all()  # torch: var of 1 with c=1
    assert rs.mean_var(torch.empty(4, 0))[0].shape == (0,)
    y, _, _ = rs.standardize(torch.empty(0, 3))
    assert y.shape == (0, 3)


@settings(max_examples=50, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    dim=st.integers(0, 1),
    transpose=st.booleans(),
)
def test_any_matrix_and_layout(rows: int, cols: int, dim: int, transpose: bool) -> None:
    x = matrix(rows, cols, torch.float64, seed=rows * 100 + cols)
    if transpose:
        x = x.t()
    mean, var = rs.mean_var(x, dim, correction=0)
    assert_close_to(mean, x.mean(dim), 1e-12, 1e-12, "mean")
    assert_close_to(var, x.var(dim, correction=0), 1e-10, 1e-10, "var")
    _y, lo, hi = rs.minmax_scale(x, dim)
    assert torch.equal(lo, x.amin(dim)) and torch.equal(hi, x.amax(dim))

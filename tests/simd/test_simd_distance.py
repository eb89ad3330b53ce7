"""cdist against torch.cdist and explicit formulas: every metric, dtype and SIMD level,
odd sizes around the register blocks, batches, strided inputs, out=, and the accuracy of
the expanded Euclidean form."""

from __future__ import annotations

import pytest
import torch
from _simd_support import REDUCTION_DTYPES, assert_close_to, dtype_name
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_simd as rs
from rusttorch_simd._ops import _euclidean_center

EPS = {torch.float32: 2.0**-23, torch.float64: 2.0**-52}


def points(n: int, d: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)


def reference(x: torch.Tensor, y: torch.Tensor, metric: str) -> torch.Tensor:
    x, y = x.double(), y.double()
    if metric == "dot":
        return x @ y.transpose(-1, -2)
    diff = x.unsqueeze(-2) - y.unsqueeze(-3)
    sq = (diff * diff).sum(-1)
    if metric == "sqeuclidean":
        return sq
    if metric == "l2":
        return sq.sqrt()
    nx = x.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    ny = y.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return 1.0 - (x / nx) @ (y / ny).transpose(-1, -2)


def check(x: torch.Tensor, y: torch.Tensor, metric: str) -> None:
    got = rs.cdist(x, y, metric)
    want = reference(x, y, metric)
    d = x.shape[-1]
    eps = EPS[x.dtype]
    # x.y rounds at the scale of the norms; the Euclidean metrics' |x-p|^2 + |y-p|^2 - 2
    # (x-p).(y-p) at the scale of the norms about the point p both operands are moved by
    # (the README's bound; the kernel's p, mirrored by the l2 backward).
    p = _euclidean_center(x, y) if metric in ("l2", "sqeuclidean") else torch.zeros(1, d)
    xp, yp = (x - p.to(x.dtype)).double(), (y - p.to(y.dtype)).double()
    norms = xp.pow(2).sum(-1).unsqueeze(-1) + yp.pow(2).sum(-1).unsqueeze(-2)
    atol = 4 * (d + 4) * eps * norms
    if metric == "l2":
        got, want = got.double() ** 2, want**2
    if metric == "cosine":
        atol = torch.full_like(want, 4 * (d + 4) * eps)
    assert_close_to(got, want, 4 * eps, atol, f"{metric} {list(x.shape)} x {list(y.shape)}")


METRICS = ["l2", "sqeuclidean", "cosine", "dot"]


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    "n,m,d", [(1, 1, 1), (7, 33, 5), (13, 17, 64), (200, 301, 3), (97, 65, 129)]
)
def test_cdist(level: str, metric: str, dtype: torch.dtype, n: int, m: int, d: int) -> None:
    check(points(n, d, dtype, 1), points(m, d, dtype, 2), metric)


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
def test_l2_matches_torch_cdist(dtype: torch.dtype) -> None:
    x, y = points(300, 40, dtype, 3), points(200, 40, dtype, 4)
    got, want = rs.cdist(x, y), torch.cdist(x, y)
    assert torch.allclose(got, want, rtol=1e-4 if dtype == torch.float32 else 1e-10, atol=1e-3)


@pytest.mark.parametrize("metric", METRICS)
def test_unaligned_contiguous_points(level: str, metric: str) -> None:
    # One element into their storage: every vector load of every level is unaligned.
    x = points(1, 33 * 19 + 1, torch.float32, 7).flatten()[1:].view(33, 19)
    y = points(1, 21 * 19 + 1, torch.float32, 8).flatten()[1:].view(21, 19)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    check(x, y, metric)
    want = torch.nn.functional.cosine_similarity(x[:21].double(), y.double())
    assert_close_to(rs.cosine_similarity(x[:21], y), want, 0.0, 1e-5)


def test_batched_strided_and_out() -> None:
    x = points(2 * 30, 9, torch.float32, 5).reshape(2, 30, 9)
    y = points(2 * 20, 9, torch.float32, 6).reshape(2, 20, 9)
    check(x, y, "l2")
    check(x[:, ::2, :], y.transpose(1, 2).contiguous().transpose(1, 2), "dot")
    out = torch.empty(2, 20, 30).transpose(1, 2)
    assert rs.cdist(x, y, "sqeuclidean", out=out) is out
    assert torch.allclose(out, reference(x, y, "sqeuclidean").float(), rtol=1e-5, atol=1e-4)


def test_empty_and_zero_features() -> None:
    assert rs.cdist(torch.empty(0, 3), torch.ones(4, 3)).shape == (0, 4)
    assert rs.cdist(torch.ones(2, 3), torch.empty(0, 3)).shape == (2, 0)
    assert torch.equal(rs.cdist(torch.ones(2, 0), torch.ones(3, 0)), torch.zeros(2, 3))
    assert torch.equal(rs.cdist(torch.ones(2, 0), torch.ones(3, 0), "cosine"), torch.ones(2, 3))


def test_nan_propagates_to_its_row_and_column() -> None:
    x = points(5, 4, torch.float64, 7)
    y = points(6, 4, torch.float64, 8)
    x[2, 1] = float("nan")
    for metric in METRICS:
        got = rs.cdist(x, y, metric)
        assert got[2].isnan().all() and not got[[0, 1, 3, 4]].isnan().any(), metric


@pytest.mark.parametrize("metric", ["l2", "sqeuclidean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_name)
@pytest.mark.parametrize(("n", "m"), [(20, 4000), (300, 60)], ids=["by-columns", "by-rows"])
def test_infinities_give_the_direct_forms_results(
    metric: str, dtype: torch.dtype, n: int, m: int
) -> None:
    """Pairs with an infinite value, or a squared norm that overflows, are what torch.cdist's
    direct form gives (inf; NaN where both hold the same infinity in one feature; finite
    where the huge values cancel), not the inf - inf = NaN of |x|^2 + |y|^2 - 2 x.y that
    torch.cdist's own matrix-product path returns above 25 rows."""
    inf, nan = float("inf"), float("nan")
    x, y = points(n, 8, dtype, 3), points(m, 8, dtype, 4)
    x[1, 2], x[3, 5], x[4, 1] = inf, -inf, nan
    y[2, 2], y[5, 0], y[6, 5] = inf, -inf, -inf
    big = torch.finfo(dtype).max / 4
    x[6, 7], y[7, 7] = big, big
    got = rs.cdist(x, y, metric)
    want = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
    if metric == "sqeuclidean":
        want = want * want
    assert want[1].isinf().sum() == m - 1 and want[1, 2].isnan() and want[3, 6].isnan()
    assert want[6, 7].isfinite() and want[6, 0].isinf()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_close_to(got, want, tol, tol, f"{metric} {dtype}")


@pytest.mark.parametrize("metric", ["l2", "sqeuclidean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_name)
def test_finite_norms_near_overflow_give_the_direct_forms_results(
    metric: str, dtype: torch.dtype
) -> None:
    """Squared norms that are finite but above half the largest value make |x|^2 + |y|^2
    overflow: those pairs too are the direct form's (0 on the diagonal, inf apart)."""
    big = torch.finfo(dtype).max ** 0.5 * 0.9
    x = torch.tensor([[big, 0.0], [-big, 0.0], [1.0, 2.0]], dtype=dtype)
    want = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    if metric == "sqeuclidean":
        want = want * want
    assert want[0, 0] == 0 and want[0, 1].isinf()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_close_to(rs.cdist(x, x, metric), want, tol, tol, f"{metric} {dtype}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=dtype_name)
@pytest.mark.parametrize(("n", "m"), [(20, 4000), (300, 60)], ids=["by-columns", "by-rows"])
def test_one_outlying_row_leaves_the_other_distances_accurate(
    dtype: torch.dtype, n: int, m: int
) -> None:
    """The common point both operands move by is a median, which one huge row cannot
    carry off (a mean did: every other distance became 0). The outlier's own row loses its
    digits, as in torch.cdist's product path."""
    x, y = points(n, 7, dtype, 5), points(m, 7, dtype, 6)
    x[5, 3] = 1e12 if dtype == torch.float32 else 1e30
    got = rs.cdist(x, y)
    want = reference(x, y, "l2")
    others = torch.arange(n) != 5
    assert_close_to(got[others], want[others], 1e-4, 1e-4, str(dtype))
    # And both operands' outliers at once, on the operand the point comes from.
    y[2, 0] = -1e12
    got = rs.cdist(y, x) if m < n else rs.cdist(x, y)
    want = reference(y, x, "l2") if m < n else reference(x, y, "l2")
    keep_rows = torch.ones(got.shape[0], dtype=torch.bool)
    keep_cols = torch.ones(got.shape[1], dtype=torch.bool)
    (keep_rows if m < n else keep_cols)[2] = False
    (keep_cols if m < n else keep_rows)[5] = False
    assert_close_to(got[keep_rows][:, keep_cols], want[keep_rows][:, keep_cols], 1e-4, 1e-4, "")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 70),
    d=st.integers(1, 40),
    metric=st.sampled_from(METRICS),
    dtype=st.sampled_from(REDUCTION_DTYPES),
)
def test_any_sizes(n: int, m: int, d: int, metric: str, dtype: torch.dtype) -> None:
    check(points(n, d, dtype, n), points(m, d, dtype, m + 100), metric)


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("n", [1, 5, 128])
def test_few_rows_against_many_split_by_columns(n: int, metric: str, dtype: torch.dtype) -> None:
    # Up to 128 rows of x with enough work run as column blocks of y (each packed where it
    # is used), the last one narrower than a register panel; 129 rows run as row bands.
    check(points(n, 70, dtype, 11), points(4099, 70, dtype, 12), metric)


def test_long_calls_run_interruptibly_and_still_agree() -> None:
    # More than 2^30 multiply-adds: the Ctrl-C-aware path (a helper thread, a cancel token
    # polled between bands), with a new output and with a strided out=.
    x, y = points(2048, 257, torch.float32, 9), points(2048, 257, torch.float32, 10)
    want = x @ y.T
    assert torch.allclose(rs.cdist(x, y, "dot"), want, rtol=1e-4, atol=1e-3)
    out = torch.empty(2048, 2048).t()
    rs.cdist(x, y, "dot", out=out)
    assert torch.allclose(out, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(3, 20_000), (300, 200)], ids=["by columns", "by rows"])
def test_euclidean_distances_far_from_the_origin_keep_their_digits(shape) -> None:  # type: ignore[no-untyped-def]
    # Without moving both sides by a common point first, |x|^2 + |y|^2 - 2 x.y near
    # (1e4, ..., 1e4) in float32 loses every digit of the distances.
    n, m = shape
    g = torch.Generator().manual_seed(21)
    x = 1e4 + torch.randn(n, 16, generator=g)
    y = 1e4 + torch.randn(m, 16, generator=g)
    want = torch.cdist(x.double(), y.double())
    for metric, ref in (("l2", want), ("sqeuclidean", want.square())):
        got = rs.cdist(x, y, metric).double()
        assert ((got - ref).abs() / ref).max() < 1e-4, metric

"""Row kernels over the last dimension against torch: layer_norm, rms_norm, softmax,
log_softmax, l2_normalize and cosine_similarity, every dtype and SIMD level, with odd row
lengths, strided inputs, NaN/inf rows and empty tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _simd_support import REDUCTION_DTYPES, assert_close_to, dtype_name
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_simd as rs

# Row sums in float32 lanes: a few ulps times log2(d) for the rows tested here.
RTOL = {torch.float32: 1e-5, torch.float64: 1e-13}


def rows(n: int, d: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * 3 + 1).to(dtype)


def params(d: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.linspace(0.5, 1.5, d, dtype=torch.float64).to(dtype)
    b = torch.linspace(-1, 1, d, dtype=torch.float64).to(dtype)
    return w, b


CASES = {
    "layer_norm": (
        lambda x, w, b: rs.layer_norm(x, w, b),
        lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b),
    ),
    "layer_norm_plain": (
        lambda x, w, b: rs.layer_norm(x, eps=1e-3),
        lambda x, w, b: F.layer_norm(x, (x.shape[-1],), eps=1e-3),
    ),
    "rms_norm": (
        lambda x, w, b: rs.rms_norm(x, w),
        lambda x, w, b: F.rms_norm(x, (x.shape[-1],), w, eps=torch.finfo(w.dtype).eps),
    ),
    "softmax": (lambda x, w, b: rs.softmax(x), lambda x, w, b: torch.softmax(x, -1)),
    "log_softmax": (
        lambda x, w, b: rs.log_softmax(x),
        lambda x, w, b: torch.log_softmax(x, -1),
    ),
    "l2_normalize": (
        lambda x, w, b: rs.l2_normalize(x),
        lambda x, w, b: F.normalize(x, dim=-1),
    ),
}


def check(name: str, x: torch.Tensor, what: str = "") -> None:
    ours, ref = CASES[name]
    w, b = params(x.shape[-1], x.dtype)
    y = ours(x, w, b)
    assert y.dtype == x.dtype and y.shape == x.shape
    want = ref(x.double(), w.double(), b.double())
    if name == "rms_norm":  # eps is the input dtype's epsilon
        want = F.rms_norm(x.double(), (x.shape[-1],), w.double(), eps=torch.finfo(x.dtype).eps)
    assert_close_to(y, want, RTOL[x.dtype], RTOL[x.dtype], f"{name} {what}")


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("d", [1, 7, 32, 33, 100, 1024])
def test_rows_match_torch(level: str, name: str, dtype: torch.dtype, d: int) -> None:
    check(name, rows(max(2, 40_000 // d), d, dtype), f"d={d} {dtype_name(dtype)} at {level}")


WIDENED = ["layer_norm", "layer_norm_plain", "rms_norm", "softmax", "log_softmax", "l2_normalize"]
WIDENED_OUT = {
    "layer_norm": lambda x, w, b, out: rs.layer_norm(x, w, b, out=out),
    "rms_norm": lambda x, w, b, out: rs.rms_norm(x, w, out=out),
    "softmax": lambda x, w, b, out: rs.softmax(x, out=out),
    "log_softmax": lambda x, w, b, out: rs.log_softmax(x, out=out),
    "l2_normalize": lambda x, w, b, out: rs.l2_normalize(x, out=out),
}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=dtype_name)
@pytest.mark.parametrize("name", WIDENED)
@pytest.mark.parametrize("d", [1, 7, 33, 1024, 9000])
def test_16_bit_rows_are_computed_in_float32_and_rounded_once(
    level: str, name: str, dtype: torch.dtype, d: int
) -> None:
    x = rows(max(2, 40_000 // d), d, dtype)
    w, b = params(d, dtype)
    ours, ref = CASES[name]
    y = ours(x, w, b)
    assert y.dtype == dtype and y.shape == x.shape
    if name == "rms_norm":  # torch's default eps for 16-bit inputs is float32's
        want = F.rms_norm(x.double(), (d,), w.double(), eps=torch.finfo(torch.float32).eps)
    else:
        want = ref(x.double(), w.double(), b.double())
    # One rounding to the 16-bit format (half an ulp, eps/2 relative) on top of float32's
    # far smaller error; the absolute term covers log_softmax and layer_norm results near
    # 0, where float32 subtractions of O(10) terms leave ~1e-6.
    eps = torch.finfo(dtype).eps
    assert_close_to(y, want, eps, 1e-4, f"{name} d={d} {dtype_name(dtype)} at {level}")
    if name in WIDENED_OUT:
        out = torch.full_like(x, 7.0)
        assert WIDENED_OUT[name](x, w, b, out) is out
        assert torch.equal(out, y)


@pytest.mark.parametrize("name", sorted(CASES))
def test_contiguous_rows_at_an_unaligned_start(level: str, name: str) -> None:
    # A contiguous view one element into its storage: the kernels read it in place (no
    # aligning copy), so every vector load of every level is unaligned.
    x = rows(1, 37 * 129 + 1, torch.float32).flatten()[1:].view(37, 129)
    assert x.is_contiguous() and x.data_ptr() % 16 != 0
    check(name, x, f"offset 1 at {level}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_strided_unaligned_3d_and_empty(name: str) -> None:
    base = rows(50, 65, torch.float32)
    check(name, base[:, 1:], "offset 1")
    check(name, base[::2, ::2], "steps")
    check(name, rows(60, 70, torch.float64).reshape(3, 20, 70), "3-d")
    check(name, rows(60, 70, torch.float64).reshape(20, 3, 70).transpose(0, 1), "3-d permuted")
    ours, _ = CASES[name]
    w, b = params(5, torch.float32)
    assert ours(torch.empty(0, 5), w, b).shape == (0, 5)


def test_softmax_nan_and_inf_rows_follow_torch() -> None:
    inf, nan = float("inf"), float("nan")
    x = torch.tensor(
        [[1.0, 2.0, 3.0], [1.0, nan, 3.0], [-inf, -inf, -inf], [1.0, inf, 2.0], [-inf, 0.0, 1.0]]
    )
    for ours, ref in [(rs.softmax, torch.softmax), (rs.log_softmax, torch.log_softmax)]:
        y, want = ours(x), ref(x, -1)
        assert torch.equal(y.isnan(), want.isnan())
        assert torch.allclose(y[~y.isnan()], want[~want.isnan()])


def test_out_and_3d() -> None:
    x = rows(6, 10, torch.float32).reshape(2, 3, 10)
    out = torch.empty(10, 3, 2).permute(2, 1, 0)
    assert rs.softmax(x, out=out) is out
    assert torch.allclose(out, torch.softmax(x, -1))
    assert rs.softmax(x, dim=2).shape == x.shape


@pytest.mark.parametrize("dtype", REDUCTION_DTYPES, ids=dtype_name)
def test_cosine_similarity_matches_torch(level: str, dtype: torch.dtype) -> None:
    a, b = rows(5000, 67, dtype, 1), rows(5000, 67, dtype, 2)
    a[3] = 0.0  # a zero row: the norm is clamped at eps, as in torch
    y = rs.cosine_similarity(a, b)
    want = F.cosine_similarity(a.double(), b.double(), dim=-1)
    assert_close_to(y, want, RTOL[dtype], RTOL[dtype], "cosine_similarity")
    y = rs.cosine_similarity(a.reshape(50, 100, 67), b.reshape(50, 100, 67))
    assert y.shape == (50, 100)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(0, 30),
    d=st.integers(1, 70),
    name=st.sampled_from(sorted(CASES)),
    dtype=st.sampled_from(REDUCTION_DTYPES),
    transpose=st.booleans(),
)
def test_any_rows(n: int, d: int, name: str, dtype: torch.dtype, transpose: bool) -> None:
    x = rows(d, n, dtype).t() if transpose else rows(n, d, dtype)
    check(name, x, f"[{n}, {d}]")

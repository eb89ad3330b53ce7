"""Fused elementwise chains against eager torch: fused_mad_normalize, affine, per-channel
normalize and clamp, every dtype and SIMD level, with strided, unaligned and empty inputs."""

from __future__ import annotations

import pytest
import torch
from _simd_support import EPS, FLOAT_DTYPES, assert_close_to, dtype_name, random_input
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_simd as rs


def rounding_bound(dtype: torch.dtype, *magnitudes: torch.Tensor) -> torch.Tensor:
    """A few roundings of the dtype, relative to the magnitude of the terms (a chain may
    cancel, so the bound is on the terms, not on the result)."""
    eps = EPS[dtype] if dtype in (torch.float32, torch.float64) else EPS[dtype] + 2**-23
    total = sum(m.double().abs() for m in magnitudes)
    return 4 * eps * total + 1e-30


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_name)
def test_fused_mad_normalize(level: str, dtype: torch.dtype) -> None:
    n = 50_001
    a, b, c = (random_input(n, dtype, 3.0, seed=s) for s in (1, 2, 3))
    mean, std = 0.25, 1.5
    y = rs.fused_mad_normalize(a, b, c, mean, std)
    a64, b64, c64 = a.double(), b.double(), c.double()
    want = (a64 * b64 + c64 - mean) / std
    if dtype in (torch.float16, torch.bfloat16):
        want = want.to(dtype).double()
    bound = rounding_bound(dtype, a64 * b64, c64, torch.full_like(a64, mean)) / std
    assert_close_to(y, want, 0.0, bound, "fused_mad_normalize")
    out = torch.empty_like(a)
    assert rs.fused_mad_normalize(a, b, c, mean, std, out=out) is out
    assert torch.equal(out, y)


def test_fused_mad_normalize_with_strided_and_offset_inputs() -> None:
    base = random_input(3 * 1001, torch.float32).reshape(3, 1001)
    a, b, c = base[0, 1:], base[1, :-1], base[2, ::1][1:]
    y = rs.fused_mad_normalize(a, b, c, -1.0, 0.5)
    assert_close_to(y, (a.double() * b.double() + c.double() + 1.0) / 0.5, 1e-6, 1e-6, "")
    m = random_input(40 * 30, torch.float64).reshape(40, 30)
    t = m.t()
    y = rs.fused_mad_normalize(t, t, t, 0.0, 1.0)
    assert_close_to(y, t * t + t, 0.0, rounding_bound(torch.float64, t * t, t), "transposed")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_name)
def test_affine_scalar_and_per_feature(level: str, dtype: torch.dtype) -> None:
    x = random_input(1000 * 37, dtype).reshape(1000, 37)
    y = rs.affine(x, 2.5, -1.0)
    x64 = x.double()
    want = x64 * 2.5 - 1.0
    if dtype in (torch.float16, torch.bfloat16):
        want = want.to(dtype).double()
    assert_close_to(y, want, 0.0, rounding_bound(dtype, x64 * 2.5, torch.ones_like(x64)), "affine")
    scale = torch.linspace(0.5, 2.0, 37, dtype=torch.float64)
    shift = torch.linspace(-1.0, 1.0, 37, dtype=torch.float64)
    for s, t in [(scale, shift), (scale.tolist(), shift.tolist()), (scale, 0.5)]:
        y = rs.affine(x, s, t)
        s64 = torch.as_tensor(s, dtype=torch.float64)
        t64 = torch.as_tensor(t, dtype=torch.float64)
        want = x64 * s64 + t64
        if dtype in (torch.float16, torch.bfloat16):
            want = want.to(dtype).double()
        bound = rounding_bound(dtype, x64 * s64, t64.expand_as(x64))
        assert_close_to(y, want, 0.0, bound, "affine per feature")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_name)
def test_normalize_images_per_channel(level: str, dtype: torch.dtype) -> None:
    x = random_input(2 * 3 * 41 * 37, dtype).reshape(2, 3, 41, 37)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    y = rs.normalize(x, mean, std)
    m = torch.tensor(mean, dtype=dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=dtype).view(1, 3, 1, 1)
    if dtype in (torch.float32, torch.float64):
        # torchvision's sub_().div_() exactly: same roundings.
        assert torch.equal(y, (x - m) / s)
    else:
        # 16-bit inputs use the parameters in float32 (torch would round them to the
        # input's dtype first, which moves bfloat16's 0.485 to 0.484375).
        m64 = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
        s64 = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
        want = ((x.double() - m64) / s64).to(dtype)
        assert_close_to(y, want, EPS[dtype], 1e-6, "normalize 16-bit")


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_normalize_along_any_dim(dim: int) -> None:
    x = random_input(4 * 5 * 6, torch.float64).reshape(4, 5, 6)
    c = x.shape[dim]
    mean = torch.linspace(-1, 1, c, dtype=torch.float64)
    std = torch.linspace(0.5, 2, c, dtype=torch.float64)
    shape = [1, 1, 1]
    shape[dim] = c
    y = rs.normalize(x, mean, std, dim)
    assert torch.equal(y, (x - mean.view(shape)) / std.view(shape))
    y = rs.normalize(x.transpose(0, 2), 0.5, 2.0, dim)
    assert torch.equal(y, (x.transpose(0, 2) - 0.5) / 2.0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=dtype_name)
def test_clamp_matches_torch_bit_for_bit(level: str, dtype: torch.dtype) -> None:
    x = random_input(10_001, dtype)
    x[::97] = float("nan")
    nan = float("nan")
    for lo, hi in [(-1.0, 1.0), (None, 0.5), (-0.5, None), (2.0, 1.0), (nan, None), (0.0, nan)]:
        y = rs.clamp(x, lo, hi)
        want = torch.clamp(x, lo, hi)
        assert torch.equal(y.isnan(), want.isnan())
        assert torch.equal(y[~y.isnan()], want[~want.isnan()]), (lo, hi)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(0, 7), min_size=1, max_size=4),
    dtype=st.sampled_from(FLOAT_DTYPES),
    step=st.integers(1, 3),
)
def test_chains_on_any_shape_and_stride(shape: list[int], dtype: torch.dtype, step: int) -> None:
    full = [*shape[:-1], shape[-1] * step]
    n = int(torch.tensor(full).prod())
    x = random_input(max(n, 1), dtype)[:n].reshape(full)[..., ::step]
    y = rs.clamp(x, -1.0, 1.0)
    assert torch.equal(y, x.clamp(-1.0, 1.0))
    if dtype in (torch.float32, torch.float64):
        assert_close_to(
            rs.fused_mad_normalize(x, x, x, 1.0, 2.0),
            (x.double() * x.double() + x.double() - 1.0) / 2.0,
            0.0,
            rounding_bound(dtype, x.double() ** 2, x.double(), torch.ones_like(x.double())),
            "chain",
        )

"""The ulp bounds the crate README documents for gelu, measured against mpmath (40
digits) rather than torch, whose own float64 gelu cancels in the negative tail."""

from __future__ import annotations

import pytest
import torch

import rusttorch_simd as rs

mp = pytest.importorskip("mpmath")
mp.mp.dps = 40
MANTISSA = {torch.float32: 23, torch.float64: 52}


def exact_gelu(x: float) -> object:
    v = mp.mpf(x)
    return v * mp.ncdf(v)


def exact_gelu_tanh(x: float) -> object:
    v = mp.mpf(x)
    y = mp.sqrt(2 / mp.pi) * (v + mp.mpf("0.044715") * v**3)
    return v / (1 + mp.exp(-2 * y))


def worst_ulps(values: torch.Tensor, got: torch.Tensor, exact) -> float:  # type: ignore[no-untyped-def]
    bits = MANTISSA[values.dtype]
    worst = 0.0
    for x, y in zip(values.double().tolist(), got.double().tolist(), strict=True):
        t = exact(x)
        if t == 0:
            continue
        ulp = mp.mpf(2) ** (mp.floor(mp.log(abs(t), 2)) - bits)
        worst = max(worst, float(abs(y - t) / ulp))
    return worst


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_gelu_is_within_7_ulp_on_minus_10_to_10(level: str, dtype: torch.dtype) -> None:
    x = torch.linspace(-10, 10, 2001, dtype=torch.float64).to(dtype)
    assert worst_ulps(x, rs.gelu(x), exact_gelu) <= 7.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_gelu_tanh_is_within_32_ulp_on_minus_5_to_5(level: str, dtype: torch.dtype) -> None:
    x = torch.linspace(-5, 5, 2001, dtype=torch.float64).to(dtype)
    assert worst_ulps(x, rs.gelu(x, "tanh"), exact_gelu_tanh) <= 32.0

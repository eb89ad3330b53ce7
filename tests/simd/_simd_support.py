"""Shared helpers for the rusttorch_simd tests: dtypes, the documented tolerances, inputs
with the awkward values (NaN, inf, subnormals, odd lengths), and reference comparisons.

The tolerances here are the ones the crate README documents; each is a bound on
``|result - reference| <= atol + rtol * |reference|`` where the reference is torch's op run
in float64 on the same input (upcast), then compared in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

import rusttorch_simd as rs

FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
REDUCTION_DTYPES = [torch.float32, torch.float64]
UNSUPPORTED_DTYPES = [torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64]

EPS = {
    torch.float64: 2.0**-52,
    torch.float32: 2.0**-23,
    torch.float16: 2.0**-10,
    torch.bfloat16: 2.0**-7,
}

# The smallest normal number: below it, results keep only absolute accuracy.
TINY = {
    torch.float64: 2.2250738585072014e-308,
    torch.float32: 1.1754943508222875e-38,
    torch.float16: 6.103515625e-05,
    torch.bfloat16: 1.1754943508222875e-38,
}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# name -> (rusttorch call, torch reference, error bound in ulps (eps) for float32/float64)
ACTIVATIONS: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor], float]] = {
    "relu": (rs.relu, torch.relu, 0),
    "leaky_relu": (lambda x, **k: rs.leaky_relu(x, 0.2, **k), lambda x: F.leaky_relu(x, 0.2), 0.5),
    "gelu": (rs.gelu, F.gelu, 8),
    "gelu_tanh": (
        lambda x, **k: rs.gelu(x, "tanh", **k),
        lambda x: F.gelu(x, approximate="tanh"),
        8,
    ),
    "silu": (rs.silu, F.silu, 4),
    "sigmoid": (rs.sigmoid, torch.sigmoid, 4),
    "tanh": (rs.tanh, torch.tanh, 4),
    "softplus": (rs.softplus, F.softplus, 4),
    "softplus_beta": (
        lambda x, **k: rs.softplus(x, 2.0, 5.0, **k),
        lambda x: F.softplus(x, 2.0, 5.0),
        4,
    ),
    "exp": (rs.exp, torch.exp, 2),
}


def activation_tolerance(
    name: str, dtype: torch.dtype, x: torch.Tensor
) -> tuple[float, torch.Tensor]:
    """(rtol, atol per element) for activation ``name`` on input ``x`` of ``dtype``.

    16-bit results are rounded once from float32: within one ulp of the dtype (plus the
    float32 error). gelu(tanh) exponentiates 2y = O(x^3), whose rounding error carries into
    the result (relative error up to ~4|2y| eps); torch's float64 formulas 0.5x(1 + erf)
    and 0.5x(1 + tanh) cancel for negative x, so the reference itself is only good to
    about |x| * 2^-53 in absolute terms there.
    """
    ulps = ACTIVATIONS[name][2]
    eps = EPS[dtype]
    if dtype in (torch.float16, torch.bfloat16):
        rtol = eps + ulps * EPS[torch.float32]
    else:
        rtol = max(ulps, 1) * eps
    xa = x.double().abs().nan_to_num(0.0, posinf=0.0, neginf=0.0)
    atol = torch.full_like(xa, TINY[dtype] * 16)
    if name in ("gelu", "gelu_tanh"):
        atol = atol + xa * 2.0**-52 * 4
    if name in ("silu", "sigmoid", "gelu_tanh", "gelu"):
        # Where e^-|x| falls below the smallest normal number both torch (once exp(-x)
        # overflows) and we (once e^-|x| is subnormal) return 0 instead of ~x e^x.
        atol = atol + (1.0 + xa) * 16 * TINY[dtype]
    if name == "gelu_tanh":
        two_y = 1.6 * (xa + 0.044715 * xa**3)
        rtol_t = (4 * two_y + 8) * EPS[torch.float32 if dtype != torch.float64 else dtype]
        return rtol, atol + rtol_t * xa  # generous in the tail only
    return rtol, atol


def special_values(dtype: torch.dtype) -> torch.Tensor:
    """NaN, infinities, signed zeros, the extremes and subnormals of ``dtype``."""
    info = torch.finfo(dtype)
    vals = [
        float("nan"),
        float("inf"),
        -float("inf"),
        0.0,
        -0.0,
        info.max,
        -info.max,
        info.tiny,
        -info.tiny,
        info.tiny / 4,
        1.0,
        -1.0,
    ]
    return torch.tensor(vals, dtype=torch.float64).to(dtype)


def random_input(n: int, dtype: torch.dtype, scale: float = 6.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, generator=g, dtype=torch.float64) * scale).to(dtype)


def assert_close_to(
    actual: torch.Tensor,
    expected: torch.Tensor,
    rtol: float,
    atol: float | torch.Tensor,
    what: str = "",
) -> None:
    """|actual - expected| <= atol + rtol |expected| elementwise (NaN where NaN, inf equal)."""
    a = actual.double()
    e = expected.double()
    assert a.shape == e.shape, (a.shape, e.shape)
    nan_a, nan_e = a.isnan(), e.isnan()
    assert torch.equal(nan_a, nan_e), f"{what}: NaN at different places"
    inf = e.isinf() | a.isinf()
    assert torch.equal(a[inf], e[inf]), f"{what}: infinities differ: {a[inf]} vs {e[inf]}"
    ok = ~(nan_e | inf)
    diff = (a - e).abs()
    bound = atol + rtol * e.abs()
    bad = ok & (diff > bound)
    if bad.any():
        idx = tuple(bad.nonzero()[0].tolist())
        limit = bound[idx].item() if isinstance(bound, torch.Tensor) else bound
        raise AssertionError(
            f"{what}: {int(bad.sum())} element(s) out of tolerance; first at {list(idx)}: "
            f"got {a[idx].item()!r}, want {e[idx].item()!r} (allowed {limit!r})"
        )

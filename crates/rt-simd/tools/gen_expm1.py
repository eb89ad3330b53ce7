"""Generates EXPM1_POLY_F32 and EXP_NEG_HALF_POLY_F32 in crates/rt-simd/src/real.rs.

exp and expm1 reduce x to r = x - n ln2 with |r| <= ln(2)/2 and compute
e^r - 1 = r + r^2 P(r). The Taylor series needs P of degree 5 (1/2! .. 1/7!) for float32;
a minimax fit of degree 4 is as accurate.

gelu's e^(-x^2/2) reduces x^2 to s = x^2 + 2 n ln2 with |s| <= ln 2, which is exact in one
FMA (the factor -1/2 stays out of the reduction), and computes e^(-s/2) = 1 + s Q(s) by
Horner's rule: Q of degree 5, six FMAs in all.

Each fit minimizes the error of its polynomial weighted by its effect on the result,
relative (r^2 / e^r for P, |s| / e^(-s/2) for Q), by iteratively reweighted least squares on
4001 Chebyshev points (Lawson's algorithm), with the target computed by mpmath at 40
digits. The script prints the coefficients as shortest float32 literals and the weighted
error before rounding them (P: 3e-9, under 0.05 ulp of float32; Q: 2e-9).

    python crates/rt-simd/tools/gen_expm1.py     # needs mpmath and numpy
"""

from collections.abc import Callable

import mpmath as mp
import numpy as np
from lawson import lawson_fit

mp.mp.dps = 40
MARGIN = 1.0005  # a little past the reduced ranges


def expm1_tail(r: float) -> float:
    """(e^r - 1 - r) / r^2."""
    if r == 0:
        return 0.5
    m = mp.mpf(r)
    return float((mp.expm1(m) - m) / m**2)


def neg_half_tail(s: float) -> float:
    """(e^(-s/2) - 1) / s."""
    if s == 0:
        return -0.5
    m = mp.mpf(s)
    return float(mp.expm1(-m / 2) / m)


def fit(
    target_of: Callable[[float], float],
    sensitivity_of: Callable[[np.ndarray], np.ndarray],
    half_width: float,
    degree: int,
) -> tuple[np.ndarray, float]:
    xs = np.cos(np.linspace(0, np.pi, 4001)) * half_width
    target = np.array([target_of(x) for x in xs])
    sensitivity = np.maximum(sensitivity_of(xs), 1e-30)
    return lawson_fit(xs, target, sensitivity, degree + 1, iterations=30, floor=1e-3)


def emit(name: str, coeffs: np.ndarray, error: float) -> None:
    print(f"// weighted error before rounding to f32: {error:.2e}")
    print(f"const {name}: [f32; {len(coeffs)}] = [")
    for c in coeffs:
        print(f"    {np.format_float_positional(np.float32(c), unique=True)},")
    print("];")


def main() -> None:
    ln2 = float(np.log(2))
    emit(
        "EXPM1_POLY_F32",
        *fit(expm1_tail, lambda r: r**2 / np.exp(r), ln2 / 2 * MARGIN, 4),
    )
    emit(
        "EXP_NEG_HALF_POLY_F32",
        *fit(neg_half_tail, lambda s: np.abs(s) / np.exp(-s / 2), ln2 * MARGIN, 5),
    )


if __name__ == "__main__":
    main()

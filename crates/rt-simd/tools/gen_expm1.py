"""Generates EXPM1_POLY_F32 in crates/rt-simd/src/real.rs.

exp and expm1 reduce x to r = x - n ln2 with |r| <= ln(2)/2 and compute
e^r - 1 = r + r^2 P(r). The Taylor series needs P of degree 5 (1/2! .. 1/7!) for float32;
a minimax fit of degree 4 is as accurate. The fit minimizes the error of P weighted by
r^2 / e^r (its effect on e^r, relative), by iteratively reweighted least squares on 4001
Chebyshev points (Lawson's algorithm), with P's target computed by mpmath at 40 digits.
The script prints the coefficients as shortest float32 literals and the weighted error
before rounding them (3e-9, under 0.05 ulp of float32).

    python crates/rt-simd/tools/gen_expm1.py     # needs mpmath and numpy
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 40
DEGREE = 4
HALF_LN2 = float(np.log(2) / 2) * 1.0005  # a little margin past the reduced range


def tail(r: float) -> float:
    """(e^r - 1 - r) / r^2."""
    if r == 0:
        return 0.5
    m = mp.mpf(r)
    return float((mp.expm1(m) - m) / m**2)


def fit(iterations: int = 30) -> tuple[np.ndarray, float]:
    xs = np.cos(np.linspace(0, np.pi, 4001)) * HALF_LN2
    target = np.array([tail(x) for x in xs])
    sensitivity = np.maximum(xs**2 / np.exp(xs), 1e-30)
    basis = np.vander(xs, DEGREE + 1, increasing=True)
    weights = np.ones_like(xs)
    for _ in range(iterations):
        w = weights * sensitivity
        coeffs, *_ = np.linalg.lstsq(basis * w[:, None], target * w, rcond=None)
        error = np.abs((basis @ coeffs - target) * sensitivity)
        weights = weights * np.sqrt(error / error.max()) + 1e-3
    return coeffs, float(error.max())


def main() -> None:
    coeffs, error = fit()
    print(f"// weighted error before rounding to f32: {error:.2e}")
    print(f"const EXPM1_POLY_F32: [f32; {DEGREE + 1}] = [")
    for c in coeffs:
        print(f"    {np.format_float_positional(np.float32(c), unique=True)},")
    print("];")


if __name__ == "__main__":
    main()

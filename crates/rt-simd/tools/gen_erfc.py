"""Generates the erfc coefficients in crates/rt-simd/src/real.rs (ERFC_POLY_F64/F32_WIDE).

erfc(z) = t * S_K(t) * exp(-z*z) with t = K / (K + z), t in (0, 1] for z >= 0. S_K is smooth
on [0, 1] and its monomial coefficients are well conditioned (the sum of |a_k v^k| stays
near 1), so the kernel evaluates them with one FMA per term.

- float64: S_3, its Chebyshev series (computed with mpmath at 50 digits) truncated to 26
  terms over t in [0, 1] and converted to monomials in u = 2t - 1.
- float32: S_2 / 2 (K = 2), 9 terms in v = t - C over the t that gelu
  needs only: it clamps |x| at GELU_TAIL = 13.18 (beyond it the kernel takes the tail
  as 0; the fit runs to GELU_TAIL_F32 = 13.2), so t = KP / (KP + |x|) with
  KP = 2 sqrt 2 stays above 0.176. The fit minimizes the relative error (Lawson's iteratively
  reweighted least squares on 3001 Chebyshev points): on this interval 9 terms with K = 2
  are as accurate as 10 with K = 3 (about 2.5 eps with every rounding of the kernel counted,
  t's division and the product t * S included), one FMA fewer per element.

The script prints the coefficients and the measured relative error, evaluated in the
target precision (Horner's rule, the variable rounded as the kernel rounds it): of S over
4000 points of [0, 1] for float64, of t S(t) / 2 = erfc(z) e^(z^2) / 2 over 8000 values of
|x| in [0, 13.2] for float32.

    python crates/rt-simd/tools/gen_erfc.py      # needs mpmath and numpy
"""

import mpmath as mp
import numpy as np
from lawson import lawson_fit

mp.mp.dps = 50
K = 3
K_F32 = 2
GELU_TAIL_F32 = 13.2
N_F32 = 9


def S(t, k=K):
    t = mp.mpf(t)
    if t == 0:
        return 1 / (k * mp.sqrt(mp.pi))
    z = k / t - k
    return mp.erfc(z) * mp.exp(z * z) / t


def chebyshev(n, lo, hi):
    """The first n Chebyshev coefficients of S on [lo, hi], in u = (2t - lo - hi) / (hi - lo)."""
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    values = [S(lo + (hi - lo) * (u + 1) / 2) for u in nodes]
    c = []
    for j in range(n):
        s = sum(values[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k in range(n))
        c.append(2 * s / n)
    c[0] /= 2
    return c


def to_monomial(c):
    """Coefficients in u of sum c_k T_k(u)."""
    t_polys = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    for k in range(2, len(c)):
        nxt = [mp.mpf(0)] * (k + 1)
        for i, v in enumerate(t_polys[k - 1]):
            nxt[i + 1] += 2 * v
        for i, v in enumerate(t_polys[k - 2]):
            nxt[i] -= v
        t_polys.append(nxt)
    a = [mp.mpf(0)] * len(c)
    for k, ck in enumerate(c):
        for i, v in enumerate(t_polys[k]):
            a[i] += ck * v
    return a


def substitute(a, scale, shift):
    """Coefficients in v of p(u) with u = scale * (v - shift)."""
    out = [mp.mpf(0)] * len(a)
    for k, ak in enumerate(a):
        for j in range(k + 1):
            out[j] += ak * mp.binomial(k, j) * scale**k * (-shift) ** (k - j)
    return out


def worst_error(a, dt, lo, variable):
    cs = [dt(float(x)) for x in a]
    worst = 0.0
    for t in np.linspace(lo, 1, 4001):
        t = dt(t)
        if t == 0:
            continue
        u = variable(t)
        acc = dt(0)
        for ck in reversed(cs):
            acc = dt(acc * u + ck)
        ref = S(mp.mpf(float(t)))
        worst = max(worst, float(abs((mp.mpf(float(acc)) - ref) / ref)))
    return worst / float(np.finfo(dt).eps)


def emit(name, a, error, of="S"):
    print(f"// {name}: {len(a)} terms, max relative error of {of} {error:.2f} eps")
    print(f"const {name}: [f64; {len(a)}] = [")
    for x in a:
        print(f"    {float(x)!r},")
    print("];")


f64 = to_monomial(chebyshev(60, 0, 1)[:26])
f64_error = worst_error(f64, np.float64, 0, lambda t: np.float64(2) * t - np.float64(1))
emit("ERFC_POLY_F64", f64, f64_error)


def fma32(a, b, c):
    """a * b + c rounded once to float32 (the float64 product of two float32s is exact)."""
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


def fit_f32():
    """S_2(t) / 2 in v = t - C, C the middle of the t range, both in float32 as the kernel."""
    kp = np.float32(K_F32 * np.sqrt(2))
    t_min = float(kp / (kp + np.float32(GELU_TAIL_F32)))
    center = np.float32((1 + t_min) / 2)
    ts = np.cos(np.linspace(0, np.pi, 3001)) * (1 - t_min) / 2 + (1 + t_min) / 2
    target = np.array([float(S(t, K_F32) / 2) for t in ts])
    coeffs, _ = lawson_fit(
        ts - float(center), target, 1 / np.abs(target), N_F32, iterations=60, floor=1e-4
    )
    cs = [np.float32(c) for c in coeffs]
    worst = 0.0
    for a in np.linspace(0, GELU_TAIL_F32, 8001).astype(np.float32):
        t = np.float32(kp / np.float32(kp + a))
        v = np.float32(t - center)
        acc = cs[-1]
        for c in reversed(cs[:-1]):
            acc = fma32(acc, v, c)
        z = mp.mpf(float(a)) / mp.sqrt(2)
        ref = mp.erfc(z) * mp.exp(z * z) / 2
        worst = max(worst, float(abs(mp.mpf(float(np.float32(t * acc))) / ref - 1)))
    print(f"// float32: KP = {float(kp)!r}, C = {float(center)!r}")
    return coeffs, worst / float(np.finfo(np.float32).eps)


f32, f32_error = fit_f32()
emit("ERFC_POLY_F32_WIDE", f32, f32_error, of="t S(t) / 2 from |x|")

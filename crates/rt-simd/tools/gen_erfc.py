"""Generates the erfc coefficients in crates/rt-simd/src/real.rs (ERFC_POLY_F64/F32).

erfc(z) = t * S(t) * exp(-z*z) with t = 3 / (3 + z), t in (0, 1] for z >= 0. S is smooth on
[0, 1]; its Chebyshev series (computed here with mpmath at 50 digits) is truncated and
converted to monomial coefficients, which are well conditioned (the sum of |a_k v^k| stays
near 1), so the kernel's Estrin scheme evaluates them with one FMA per term.

- float64: 26 terms over t in [0, 1], in u = 2t - 1.
- float32: 10 terms over t in [T_MIN_F32, 1] only, in v = t - 1/2. gelu clamps |x| at
  GELU_TAIL_F32 = 15 (its result is 0 to the last bit beyond), so z never exceeds 15/sqrt 2
  and t never falls below 0.2205; on the shorter interval 10 terms do better than 12 did
  over [0, 1] (8 would do as well as those 12, but cost gelu 2 ulp more at worst).
  v = 2 (t/2) - 1/2 is one exact FMA for t >= 1/4 (Sterbenz), where the u of a scaled
  interval would be rounded.

The script prints the coefficients and the measured relative error of S, evaluated in the
target precision (Horner's rule, the variable rounded as the kernel rounds it), over 4000
points of the interval.

    python crates/rt-simd/tools/gen_erfc.py      # needs mpmath and numpy
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 50
K = 3
GELU_TAIL_F32 = 15
T_MIN_F32 = 0.22  # below 3 / (3 + GELU_TAIL_F32 / sqrt 2) = 0.22048
N_F32 = 10


def S(t):
    t = mp.mpf(t)
    if t == 0:
        return 1 / (K * mp.sqrt(mp.pi))
    z = K / t - K
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


def emit(name, a, error):
    print(f"// {name}: {len(a)} terms, max relative error of S {error:.2f} eps")
    print(f"const ERFC_POLY_{name}: [f64; {len(a)}] = [")
    for x in a:
        print(f"    {float(x)!r},")
    print("];")


f64 = to_monomial(chebyshev(60, 0, 1)[:26])
emit("F64", f64, worst_error(f64, np.float64, 0, lambda t: np.float64(2) * t - np.float64(1)))

lo = mp.mpf(T_MIN_F32)
in_u = to_monomial(chebyshev(60, lo, 1)[:N_F32])
# u = (2t - lo - 1) / (1 - lo) = (v - (lo + 1) / 2 + 1/2) * 2 / (1 - lo)
f32 = substitute(in_u, 2 / (1 - lo), (lo + 1) / 2 - mp.mpf(1) / 2)
half = np.float32(0.5)
emit("F32", f32, worst_error(f32, np.float32, T_MIN_F32, lambda t: np.float32(t - half)))

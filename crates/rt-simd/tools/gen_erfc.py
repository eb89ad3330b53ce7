"""Generates the erfc coefficients in crates/rt-simd/src/real.rs (ERFC_POLY_F64/F32).

erfc(z) = t * S(t) * exp(-z*z) with t = 3 / (3 + z), t in (0, 1] for z >= 0. S is smooth on
[0, 1]; its Chebyshev series in u = 2t - 1 (computed here with mpmath at 50 digits) is
truncated to 26 terms (f64) or 12 (f32) and converted to monomial coefficients in u, which
are well conditioned (sum |a_k| = 1.003), so Horner's rule evaluates them with one FMA per
term. The script prints the coefficients and the measured relative error of S, evaluated
in the target precision, over 4000 points.

    python crates/rt-simd/tools/gen_erfc.py      # needs mpmath and numpy
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 50
K = 3


def S(t):
    t = mp.mpf(t)
    if t == 0:
        return 1 / (K * mp.sqrt(mp.pi))
    z = K / t - K
    return mp.erfc(z) * mp.exp(z * z) / t


def chebyshev(n):
    nodes = [mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n) for k in range(n)]
    values = [S((u + 1) / 2) for u in nodes]
    c = []
    for j in range(n):
        s = sum(values[k] * mp.cos(mp.pi * j * (k + mp.mpf(1) / 2) / n) for k in range(n))
        c.append(2 * s / n)
    c[0] /= 2
    return c


def to_monomial(c):
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


def worst_error(a, dt):
    cs = [dt(float(x)) for x in a]
    worst = 0.0
    for t in np.linspace(0, 1, 4001)[1:]:
        u = dt(2) * dt(t) - dt(1)
        acc = dt(0)
        for ck in reversed(cs):
            acc = dt(acc * u + ck)
        ref = S(mp.mpf(float(dt(t))))
        worst = max(worst, float(abs((mp.mpf(float(acc)) - ref) / ref)))
    return worst / float(np.finfo(dt).eps)


full = chebyshev(60)
for name, dt, n in [("F64", np.float64, 26), ("F32", np.float32, 12)]:
    a = to_monomial(full[:n])
    print(f"// {name}: {n} terms, max relative error of S {worst_error(a, dt):.2f} eps")
    print(f"const ERFC_POLY_{name}: [f64; {n}] = [")
    for x in a:
        print(f"    {float(x)!r},")
    print("];")

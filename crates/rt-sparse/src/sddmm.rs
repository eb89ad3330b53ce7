//! SDDMM: the values of `scale * Q @ K^T` at the stored positions of a pattern, without
//! forming the dense product.

use crate::error::{Result, check_len};
use crate::parallel::{balanced_splits, for_each_chunk_at};
use crate::pattern::CsrPattern;
use crate::scalar::{Index, Scalar, fmadd};
use rt_simd::dispatch::{Isa, Kernel, dispatch};

const W: usize = 16;

/// The sum of 16 accumulators, added pairwise (16 -> 8 -> 4 -> 2 -> 1) with named
/// temporaries, so that it stays in registers as a few shuffles (a loop or an array
/// built by closures here made LLVM spill the accumulators and reload them one lane at a
/// time, stalling on store forwarding).
#[inline(always)]
fn reduce16<V: Scalar>(a: [V; W]) -> V {
    let [
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        a8,
        a9,
        a10,
        a11,
        a12,
        a13,
        a14,
        a15,
    ] = a;
    let (b0, b1, b2, b3) = (a0 + a8, a1 + a9, a2 + a10, a3 + a11);
    let (b4, b5, b6, b7) = (a4 + a12, a5 + a13, a6 + a14, a7 + a15);
    let (c0, c1, c2, c3) = (b0 + b4, b1 + b5, b2 + b6, b3 + b7);
    (c0 + c2) + (c1 + c3)
}

/// Folds `x * y` into the accumulators, lane by lane.
#[inline(always)]
fn fma16<S: Isa, V: Scalar>(acc: &mut [V; W], x: &[V; W], y: &[V; W]) {
    for ((s, &xv), &yv) in acc.iter_mut().zip(x).zip(y) {
        *s = fmadd::<S, V>(*s, xv, yv);
    }
}

/// The `W`-wide block of `s` at `off`, if it is all there.
#[inline(always)]
fn block<V>(s: &[V], off: usize) -> Option<&[V; W]> {
    s.get(off..off + W)?.try_into().ok()
}

/// `a . b` with 16 independent accumulators, so the loop vectorizes and hides FMA latency.
#[inline(always)]
pub(crate) fn dot<S: Isa, V: Scalar>(a: &[V], b: &[V]) -> V {
    let mut acc = [V::ZERO; W];
    let n = a.len().min(b.len()) / W * W;
    let mut off = 0;
    while off < n {
        if let (Some(x), Some(y)) = (block(a, off), block(b, off)) {
            fma16::<S, V>(&mut acc, x, y);
        }
        off += W;
    }
    let mut tail = V::ZERO;
    for (&x, &y) in a
        .get(n..)
        .unwrap_or(&[])
        .iter()
        .zip(b.get(n..).unwrap_or(&[]))
    {
        tail = fmadd::<S, V>(tail, x, y);
    }
    reduce16(acc) + tail
}

/// `[a . b0, a . b1, a . b2, a . b3]`: one pass over `a` for four dot products, with four
/// independent accumulator sets. The `b`s are as long as `a`.
#[inline(always)]
pub(crate) fn dot4<S: Isa, V: Scalar>(a: &[V], b: [&[V]; 4]) -> [V; 4] {
    let [b0, b1, b2, b3] = b;
    let (mut s0, mut s1, mut s2, mut s3) = ([V::ZERO; W], [V::ZERO; W], [V::ZERO; W], [V::ZERO; W]);
    let n = a.len() / W * W;
    let mut off = 0;
    while off < n {
        if let (Some(x), Some(y0), Some(y1), Some(y2), Some(y3)) = (
            block(a, off),
            block(b0, off),
            block(b1, off),
            block(b2, off),
            block(b3, off),
        ) {
            fma16::<S, V>(&mut s0, x, y0);
            fma16::<S, V>(&mut s1, x, y1);
            fma16::<S, V>(&mut s2, x, y2);
            fma16::<S, V>(&mut s3, x, y3);
        }
        off += W;
    }
    let mut out = [reduce16(s0), reduce16(s1), reduce16(s2), reduce16(s3)];
    if n < a.len() {
        let ta = a.get(n..).unwrap_or(&[]);
        for (o, bj) in out.iter_mut().zip(b) {
            *o += dot::<S, V>(ta, bj.get(n..).unwrap_or(&[]));
        }
    }
    out
}

/// `out[e] = scale * <q[i], k[j]>` for every stored entry `e = (i, j)` of `a`: `q` is
/// `nrows x d`, `k` is `ncols x d`, `out` has `nnz` entries.
pub fn sddmm<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    q: &[V],
    k: &[V],
    d: usize,
    scale: V,
    out: &mut [V],
) -> Result<()> {
    check_len("q rows x features (nrows x d)", a.nrows() * d, q.len())?;
    check_len("k rows x features (ncols x d)", a.ncols() * d, k.len())?;
    check_len("output length (nnz)", a.nnz(), out.len())?;
    let crow = a.crow();
    let start = |r: usize| crow.get(r).and_then(|v| v.to_usize()).unwrap_or(0);
    let splits = balanced_splits(a.nrows(), |r| start(r) + r, d);
    for_each_chunk_at(&splits, out, start, |rows, out| {
        let base = start(rows.start);
        dispatch(SddmmRows {
            a,
            q,
            k,
            d,
            scale,
            rows,
            base,
            out,
        });
        Ok(())
    })
}

/// The rows of one chunk, compiled for every instruction set (see `rt_simd::dispatch`).
struct SddmmRows<'a, 'p, I, V> {
    a: &'a CsrPattern<'p, I>,
    q: &'a [V],
    k: &'a [V],
    d: usize,
    scale: V,
    rows: std::ops::Range<usize>,
    base: usize,
    out: &'a mut [V],
}

impl<I: Index, V: Scalar> Kernel for SddmmRows<'_, '_, I, V> {
    type Output = ();
    #[inline(always)]
    fn run<S: Isa>(self) {
        let SddmmRows {
            a,
            q,
            k,
            d,
            scale,
            rows,
            base,
            out,
        } = self;
        for r in rows {
            let range = a.row_range(r);
            let qr = q.get(r * d..(r + 1) * d).unwrap_or(&[]);
            let cols = a.col().get(range.clone()).unwrap_or(&[]);
            let dst = out
                .get_mut(range.start - base..range.end - base)
                .unwrap_or(&mut []);
            let krow = |c: I| {
                let c = c.to_usize().unwrap_or(0);
                k.get(c * d..(c + 1) * d).unwrap_or(&[])
            };
            let mut slots = dst.chunks_exact_mut(4);
            let mut quads = cols.chunks_exact(4);
            for (slot, c) in (&mut slots).zip(&mut quads) {
                let ks = [krow(c[0]), krow(c[1]), krow(c[2]), krow(c[3])];
                if ks.iter().all(|kr| kr.len() == qr.len()) {
                    let v = dot4::<S, V>(qr, ks);
                    for (o, v) in slot.iter_mut().zip(v) {
                        *o = scale * v;
                    }
                }
            }
            for (slot, &c) in slots.into_remainder().iter_mut().zip(quads.remainder()) {
                *slot = scale * dot::<S, V>(qr, krow(c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_dense_products_at_the_pattern() {
        let crow = [0i64, 2, 2, 5];
        let col = [1i64, 3, 0, 1, 3];
        let a = CsrPattern::try_new(3, 4, &crow, &col).unwrap();
        for d in [1usize, 7, 16, 33] {
            let q: Vec<f64> = (0..3 * d).map(|i| (i % 7) as f64 - 3.0).collect();
            let k: Vec<f64> = (0..4 * d).map(|i| (i % 5) as f64 * 0.5).collect();
            let mut out = vec![0.0; 5];
            sddmm(&a, &q, &k, d, 0.5, &mut out).unwrap();
            let rows = [0usize, 0, 2, 2, 2];
            for e in 0..5 {
                let (i, j) = (rows[e], col[e] as usize);
                let want: f64 = (0..d).map(|f| q[i * d + f] * k[j * d + f]).sum::<f64>() * 0.5;
                assert!((out[e] - want).abs() < 1e-12);
            }
        }
    }
}

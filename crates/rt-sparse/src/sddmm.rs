//! SDDMM: the values of `scale * Q @ K^T` at the stored positions of a pattern, without
//! forming the dense product.

use crate::error::{Result, check_len};
use crate::parallel::{balanced_splits, for_each_chunk_at};
use crate::pattern::CsrPattern;
use crate::scalar::{Index, Scalar, fmadd};
use rt_simd::dispatch::{Isa, Kernel, dispatch};
use rt_simd::prefetch::prefetch_read;

/// Row `c` (`d` wide) of the row-major matrix `m`; empty if out of range (validation rules
/// that out). A function, not a closure, so it always inlines into the ISA-specific code.
#[inline(always)]
fn row_of<I: Index, V>(m: &[V], c: I, d: usize) -> &[V] {
    let c = c.to_usize().unwrap_or(0);
    m.get(c * d..(c + 1) * d).unwrap_or(&[])
}

/// How many stored entries ahead of the one being computed its k row is prefetched
/// (`rt_simd::prefetch`). The lookahead runs across row ends, since most rows of a sparse
/// graph hold fewer entries than this. Measured on the 200k-node power-law graph
/// (d = 64): 8 to 32 are within noise of each other, 12 was best.
const SDDMM_PREFETCH_DISTANCE: usize = 12;

/// Lanes per accumulator: one AVX2 register of f32.
const L: usize = 8;

/// The `L`-wide block of `s` at `off`, if it is all there.
#[inline(always)]
fn lanes<V>(s: &[V], off: usize) -> Option<&[V; L]> {
    s.get(off..off + L)?.try_into().ok()
}

/// Folds `x * y` into the accumulator, lane by lane.
#[inline(always)]
fn fma_lanes<S: Isa, V: Scalar>(acc: &mut [V; L], x: &[V; L], y: &[V; L]) {
    for ((s, &xv), &yv) in acc.iter_mut().zip(x).zip(y) {
        *s = fmadd::<S, V>(*s, xv, yv);
    }
}

/// `a . b` with two independent `L`-lane accumulators (so the loop vectorizes and hides
/// FMA latency), added lane-wise at the end and then summed. Kept deliberately simple:
/// wider accumulator sets or a hand-written reduction tree made LLVM vectorize across the
/// wrong dimension (two-lane vectors, several times the instructions per entry, which
/// also limits how many k-row cache misses are in flight).
#[inline(always)]
pub(crate) fn dot<S: Isa, V: Scalar>(a: &[V], b: &[V]) -> V {
    let n = a.len().min(b.len());
    let (mut a0, mut a1) = ([V::ZERO; L], [V::ZERO; L]);
    let mut off = 0;
    while off + 2 * L <= n {
        if let (Some(x0), Some(y0), Some(x1), Some(y1)) = (
            lanes(a, off),
            lanes(b, off),
            lanes(a, off + L),
            lanes(b, off + L),
        ) {
            fma_lanes::<S, V>(&mut a0, x0, y0);
            fma_lanes::<S, V>(&mut a1, x1, y1);
        }
        off += 2 * L;
    }
    if off + L <= n {
        if let (Some(x0), Some(y0)) = (lanes(a, off), lanes(b, off)) {
            fma_lanes::<S, V>(&mut a0, x0, y0);
        }
        off += L;
    }
    for (s, &t) in a0.iter_mut().zip(&a1) {
        *s += t;
    }
    let mut tail = V::ZERO;
    for (&x, &y) in a
        .get(off..n)
        .unwrap_or(&[])
        .iter()
        .zip(b.get(off..n).unwrap_or(&[]))
    {
        tail = fmadd::<S, V>(tail, x, y);
    }
    a0.iter().fold(V::ZERO, |s, &v| s + v) + tail
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
            let later = a.col().get(range.start..).unwrap_or(&[]);
            for (e, (slot, &c)) in dst.iter_mut().zip(cols).enumerate() {
                if let Some(&ahead) = later.get(e + SDDMM_PREFETCH_DISTANCE) {
                    prefetch_read(row_of(k, ahead, d));
                }
                *slot = scale * dot::<S, V>(qr, row_of(k, c, d));
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

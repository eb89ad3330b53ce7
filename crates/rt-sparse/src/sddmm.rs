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

/// `a . b`: 16 lanes of accumulators (one AVX-512 or two AVX2 registers of f32), so the
/// loop vectorizes and hides FMA latency, then a halving sum.
#[inline(always)]
pub(crate) fn dot<S: Isa, V: Scalar>(a: &[V], b: &[V]) -> V {
    const W: usize = 16;
    let mut acc = [V::ZERO; W];
    let ca = a.chunks_exact(W);
    let cb = b.chunks_exact(W);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..W {
            acc[j] = fmadd::<S, V>(acc[j], x[j], y[j]);
        }
    }
    let mut tail = V::ZERO;
    for (&x, &y) in ta.iter().zip(tb) {
        tail = fmadd::<S, V>(tail, x, y);
    }
    // Halving through small arrays that must be materialized (`black_box`): the stores
    // give LLVM's SLP vectorizer full-width groups to start from, so `acc` stays in 8- and
    // 16-lane registers; a plain reduction made it pick two-lane vectors.
    let mut h8 = [V::ZERO; W / 2];
    for j in 0..W / 2 {
        h8[j] = acc[j] + acc[j + W / 2];
    }
    let h8 = *std::hint::black_box(&mut h8);
    let mut h4 = [V::ZERO; W / 4];
    for j in 0..W / 4 {
        h4[j] = h8[j] + h8[j + W / 4];
    }
    let h4 = *std::hint::black_box(&mut h4);
    (h4[0] + h4[2]) + (h4[1] + h4[3]) + tail
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

//! SDDMM: the values of `scale * Q @ K^T` at the stored positions of a pattern, without
//! forming the dense product.

use crate::error::{Result, check_len};
use crate::parallel::{balanced_splits, for_each_chunk_at};
use crate::pattern::CsrPattern;
use crate::scalar::{Index, Scalar};

/// `a . b` with 16 independent accumulators, so the loop vectorizes and hides FMA latency.
#[inline(always)]
pub(crate) fn dot<V: Scalar>(a: &[V], b: &[V]) -> V {
    const W: usize = 16;
    let mut acc = [V::ZERO; W];
    let ca = a.chunks_exact(W);
    let cb = b.chunks_exact(W);
    let tail: V = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, &xv), &yv) in acc.iter_mut().zip(x).zip(y) {
            *s += xv * yv;
        }
    }
    acc.iter().copied().sum::<V>() + tail
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
    for_each_chunk_at(&splits, out, start, |rows, o| {
        let base = start(rows.start);
        for r in rows {
            let range = a.row_range(r);
            let qr = q.get(r * d..(r + 1) * d).unwrap_or(&[]);
            let cols = a.col().get(range.clone()).unwrap_or(&[]);
            let dst = o
                .get_mut(range.start - base..range.end - base)
                .unwrap_or(&mut []);
            for (slot, &c) in dst.iter_mut().zip(cols) {
                let c = c.to_usize().unwrap_or(0);
                let kr = k.get(c * d..(c + 1) * d).unwrap_or(&[]);
                *slot = scale * dot(qr, kr);
            }
        }
        Ok(())
    })
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

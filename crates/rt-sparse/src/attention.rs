//! Sparse attention `softmax(scale * Q K^T restricted to a pattern) @ V`, fused: each row's
//! scores live only in a per-thread scratch buffer as long as the row, never in an
//! `n x n` matrix, so memory is O(nnz) at most and O(n d) in practice. Each row is one
//! SDDMM pass, a max-subtracted softmax and one SpMM pass over the same entries.

use crate::error::{Result, check_len};
use crate::parallel::{balanced_splits, for_each_chunk};
use crate::pattern::CsrPattern;
use crate::scalar::{Index, Scalar};
use crate::sddmm::dot;
use crate::softmax::softmax_slice;
use crate::spmm::{SumOp, row};
use rt_simd::dispatch::{Isa, Kernel, dispatch};

/// Output of [`sparse_attention`] besides the attended values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Query/key feature width.
    pub d: usize,
    /// Value feature width.
    pub dv: usize,
}

/// `out[i] = sum_j softmax_j(scale * q[i] . k[j]) v[j]` over the stored `j` of row `i`;
/// rows without entries give 0. `q` is `nrows x d`, `k` is `ncols x d`, `v` is
/// `ncols x dv`, `out` is `nrows x dv`.
pub fn sparse_attention<I: Index, V: Scalar>(
    pattern: &CsrPattern<'_, I>,
    q: &[V],
    k: &[V],
    v: &[V],
    shape: AttentionShape,
    scale: V,
    out: &mut [V],
) -> Result<()> {
    let AttentionShape { d, dv } = shape;
    check_len(
        "q rows x features (nrows x d)",
        pattern.nrows() * d,
        q.len(),
    )?;
    check_len(
        "k rows x features (ncols x d)",
        pattern.ncols() * d,
        k.len(),
    )?;
    check_len(
        "v rows x features (ncols x dv)",
        pattern.ncols() * dv,
        v.len(),
    )?;
    check_len(
        "output rows x features (nrows x dv)",
        pattern.nrows() * dv,
        out.len(),
    )?;
    if dv == 0 {
        return Ok(());
    }
    let crow = pattern.crow();
    let prefix = |r: usize| crow.get(r).and_then(|x| x.to_usize()).unwrap_or(0) + r;
    let splits = balanced_splits(pattern.nrows(), prefix, d + dv);
    for_each_chunk(&splits, out, dv, |rows, out| {
        dispatch(AttentionRows {
            pattern,
            q,
            k,
            v,
            d,
            dv,
            scale,
            rows,
            out,
        });
        Ok(())
    })
}

/// The rows of one chunk, compiled for every instruction set (see `rt_simd::dispatch`).
struct AttentionRows<'a, 'p, I, V> {
    pattern: &'a CsrPattern<'p, I>,
    q: &'a [V],
    k: &'a [V],
    v: &'a [V],
    d: usize,
    dv: usize,
    scale: V,
    rows: std::ops::Range<usize>,
    out: &'a mut [V],
}

impl<I: Index, V: Scalar> Kernel for AttentionRows<'_, '_, I, V> {
    type Output = ();
    #[inline(always)]
    fn run<S: Isa>(self) {
        let AttentionRows {
            pattern,
            q,
            k,
            v,
            d,
            dv,
            scale,
            rows,
            out,
        } = self;
        let mut scores: Vec<V> = Vec::new();
        let mut probs: Vec<V> = Vec::new();
        for (r, dst) in rows.zip(out.chunks_exact_mut(dv)) {
            let cols = pattern.row_cols(r);
            if cols.is_empty() {
                dst.fill(V::ZERO);
                continue;
            }
            let qr = q.get(r * d..(r + 1) * d).unwrap_or(&[]);
            // A plain loop, not `extend(map(closure))`: a closure is its own function, and
            // if LLVM does not inline it, it is compiled without this ISA's features (the
            // fused multiply-adds in `dot` then become library calls, 10x slower).
            scores.clear();
            for &c in cols {
                let c = c.to_usize().unwrap_or(0);
                scores.push(scale * dot::<S, V>(qr, k.get(c * d..(c + 1) * d).unwrap_or(&[])));
            }
            probs.resize(scores.len(), V::ZERO);
            softmax_slice(&scores, &mut probs);
            row::<S, I, V, SumOp>(cols, cols, Some(&probs), v, dv, dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_dense_masked_attention() {
        let n = 5;
        let (d, dv) = (3, 2);
        let crow = [0i64, 2, 2, 5, 6, 8];
        let col = [0i64, 4, 1, 2, 3, 3, 0, 4];
        let p = CsrPattern::try_new(n, n, &crow, &col).unwrap();
        let q: Vec<f64> = (0..n * d).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let k: Vec<f64> = (0..n * d).map(|i| ((i * 3) % 4) as f64 - 1.5).collect();
        let v: Vec<f64> = (0..n * dv).map(|i| i as f64).collect();
        let mut out = vec![0.0; n * dv];
        sparse_attention(&p, &q, &k, &v, AttentionShape { d, dv }, 0.7, &mut out).unwrap();
        for i in 0..n {
            let js: Vec<usize> = (crow[i] as usize..crow[i + 1] as usize)
                .map(|e| col[e] as usize)
                .collect();
            let s: Vec<f64> = js
                .iter()
                .map(|&j| 0.7 * (0..d).map(|f| q[i * d + f] * k[j * d + f]).sum::<f64>())
                .collect();
            let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            for f in 0..dv {
                let want: f64 = if js.is_empty() {
                    0.0
                } else {
                    js.iter()
                        .zip(&s)
                        .map(|(&j, x)| (x - m).exp() / z * v[j * dv + f])
                        .sum()
                };
                assert!((out[i * dv + f] - want).abs() < 1e-12);
            }
        }
    }
}

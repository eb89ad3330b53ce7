//! Row-wise softmax over the stored entries of a CSR matrix (absent entries count as
//! -inf, so they get probability 0), and its backward. Empty rows stay empty.

use crate::error::{Result, check_len};
use crate::parallel::{balanced_splits, for_each_chunk_at};
use crate::pattern::CsrPattern;
use crate::scalar::{Index, Scalar};

/// Softmax of `x` over a row's entries into `y` (same length), max-subtracted; NaN
/// propagates to the whole row, and a row of only -inf becomes NaN (as in torch).
#[inline]
pub(crate) fn softmax_slice<V: Scalar>(x: &[V], y: &mut [V]) {
    let m = x.iter().fold(
        V::NEG_INFINITY,
        |m, &v| if v > m || v.is_nan() { v } else { m },
    );
    let mut sum = V::ZERO;
    for (o, &v) in y.iter_mut().zip(x) {
        let e = (v - m).exp();
        *o = e;
        sum += e;
    }
    let inv = V::ONE / sum;
    y.iter_mut().for_each(|o| *o *= inv);
}

fn row_parallel<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    out: &mut [V],
    f: impl Fn(std::ops::Range<usize>, &mut [V]) + Sync,
) -> Result<()> {
    let crow = a.crow();
    let start = |r: usize| crow.get(r).and_then(|v| v.to_usize()).unwrap_or(0);
    let splits = balanced_splits(a.nrows(), |r| start(r) + r, 8);
    for_each_chunk_at(&splits, out, start, |rows, o| {
        let base = start(rows.start);
        for r in rows {
            let range = a.row_range(r);
            if let Some(dst) = o.get_mut(range.start - base..range.end - base) {
                f(range, dst);
            }
        }
        Ok(())
    })
}

/// `y = softmax(values)` within each row of `a`.
pub fn sparse_softmax<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    values: &[V],
    y: &mut [V],
) -> Result<()> {
    check_len("values length (nnz)", a.nnz(), values.len())?;
    check_len("output length (nnz)", a.nnz(), y.len())?;
    row_parallel(a, y, |range, dst| {
        if let Some(x) = values.get(range) {
            softmax_slice(x, dst);
        }
    })
}

/// The gradient of [`sparse_softmax`]: `dx = y * (dy - sum_row(dy * y))`.
pub fn sparse_softmax_backward<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    y: &[V],
    dy: &[V],
    dx: &mut [V],
) -> Result<()> {
    check_len("softmax output length (nnz)", a.nnz(), y.len())?;
    check_len("gradient length (nnz)", a.nnz(), dy.len())?;
    check_len("output length (nnz)", a.nnz(), dx.len())?;
    row_parallel(a, dx, |range, dst| {
        let (Some(y), Some(g)) = (y.get(range.clone()), dy.get(range)) else {
            return;
        };
        let dot: V = y.iter().zip(g).map(|(&a, &b)| a * b).sum();
        for ((o, &yv), &gv) in dst.iter_mut().zip(y).zip(g) {
            *o = yv * (gv - dot);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_backward_matches_finite_differences() {
        let crow = [0i64, 3, 3, 5];
        let col = [0i64, 1, 2, 0, 2];
        let a = CsrPattern::try_new(3, 3, &crow, &col).unwrap();
        let x = [1.0f64, 2.0, 3.0, -1.0, 1000.0];
        let mut y = [0.0; 5];
        sparse_softmax(&a, &x, &mut y).unwrap();
        assert!((y[0] + y[1] + y[2] - 1.0).abs() < 1e-12);
        assert!((y[3] + y[4] - 1.0).abs() < 1e-12);
        let g = [0.3, -0.2, 0.5, 1.0, 2.0];
        let mut dx = [0.0; 5];
        sparse_softmax_backward(&a, &y, &g, &mut dx).unwrap();
        let h = 1e-6;
        for e in 0..3 {
            let mut xp = x;
            xp[e] += h;
            let mut yp = [0.0; 5];
            sparse_softmax(&a, &xp, &mut yp).unwrap();
            let fd: f64 = (0..3).map(|k| g[k] * (yp[k] - y[k]) / h).sum();
            assert!((fd - dx[e]).abs() < 1e-4, "{fd} vs {}", dx[e]);
        }
    }
}

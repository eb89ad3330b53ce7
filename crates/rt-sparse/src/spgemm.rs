//! SpGEMM `C = A @ B` for CSR matrices: Gustavson's row-by-row algorithm in two parallel
//! phases. The symbolic phase counts each row's distinct columns, so the result is
//! allocated once, at its exact size, and only after the nnz limit is checked; the numeric
//! phase then fills disjoint row ranges of it. Rows are split into chunks of equal
//! multiply count (power-law inputs have a few very expensive rows).

use std::ops::Range;

use rayon::prelude::*;

use crate::convert::{CsrParts, to_index};
use crate::error::{Result, SparseError, check_len};
use crate::parallel::{balanced_splits, map_chunks};
use crate::pattern::CsrPattern;
use crate::scalar::{Index, Scalar};

/// Default cap on the stored entries of a SpGEMM result: 2^31.
pub const DEFAULT_MAX_NNZ: usize = 1 << 31;

const NONE: usize = usize::MAX;

/// The result of the symbolic phase: the row pointers of `C = A @ B` and how its rows
/// are split between threads. The caller allocates `nnz` entries (in Rust, or a torch
/// tensor) and hands them to [`SpgemmPlan::numeric`].
#[derive(Clone, Debug)]
pub struct SpgemmPlan<I> {
    crow: Vec<I>,
    splits: Vec<usize>,
    nnz: usize,
}

/// Whether the numeric phase sorts the columns of each output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnOrder {
    /// Ascending columns in every row (costs a sort per row).
    Sorted,
    /// First-touched order, as SciPy and MKL return it.
    Unsorted,
}

fn check_chain<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    a_values: &[V],
    b: &CsrPattern<'_, I>,
    b_values: &[V],
) -> Result<()> {
    check_len("values of A (nnz)", a.nnz(), a_values.len())?;
    check_len("values of B (nnz)", b.nnz(), b_values.len())?;
    if a.ncols() != b.nrows() {
        return Err(SparseError::InvalidArgument {
            name: "B",
            reason: format!(
                "shapes do not chain: A is {} x {}, B is {} x {}",
                a.nrows(),
                a.ncols(),
                b.nrows(),
                b.ncols()
            ),
        });
    }
    Ok(())
}

impl<I: Index> SpgemmPlan<I> {
    /// The symbolic phase: counts the distinct columns of every row of `A @ B` in
    /// parallel, and fails when the total would exceed `max_nnz` or the index type.
    pub fn new(a: &CsrPattern<'_, I>, b: &CsrPattern<'_, I>, max_nnz: usize) -> Result<Self> {
        if a.ncols() != b.nrows() {
            return check_chain::<I, f32>(a, &vec![0.0; a.nnz()], b, &vec![0.0; b.nnz()])
                .map(|_| unreachable_plan());
        }
        let (n, m) = (a.nrows(), b.ncols());
        let b_row_nnz = |j: I| j.to_usize().map_or(0, |j| b.row_nnz(j));
        // Multiplications per row, as the work estimate for balancing.
        let mut flops = Vec::with_capacity(n + 1);
        flops.push(0usize);
        let mut total = 0usize;
        for r in 0..n {
            total = total.saturating_add(a.row_cols(r).iter().map(|&j| b_row_nnz(j)).sum());
            flops.push(total);
        }
        let splits = balanced_splits(n, |r| flops.get(r).copied().unwrap_or(0) + r, 1);
        let counts: Vec<Vec<usize>> = map_chunks(&splits, |rows| {
            let mut marks = Marks::new(m);
            rows.map(|r| {
                let stamp = marks.next_row();
                let mut count = 0;
                for &j in a.row_cols(r) {
                    for &c in j.to_usize().map_or(&[][..], |j| b.row_cols(j)) {
                        if let Some(slot) = c.to_usize().and_then(|c| marks.mark.get_mut(c)) {
                            if *slot != stamp {
                                *slot = stamp;
                                count += 1;
                            }
                        }
                    }
                }
                count
            })
            .collect()
        })?;
        let zero = to_index::<I>(0, "nnz")?;
        let mut crow = Vec::with_capacity(n + 1);
        crow.push(zero);
        let mut nnz = 0usize;
        for c in counts.iter().flatten() {
            nnz = nnz.saturating_add(*c);
            crow.push(I::from_usize(nnz).unwrap_or(zero));
        }
        if nnz > max_nnz || I::from_usize(nnz).is_none() {
            return Err(SparseError::LimitExceeded {
                what: "the product A @ B",
                requested: nnz as u128,
                limit: (max_nnz as u128).min(I::MAX as u128),
                unit: "stored entries",
                knob: "max_nnz",
            });
        }
        Ok(SpgemmPlan { crow, splits, nnz })
    }

    /// Stored entries of the product.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// Row pointers of the product.
    pub fn crow(&self) -> &[I] {
        &self.crow
    }

    /// Consumes the plan, returning its row pointers.
    pub fn into_crow(self) -> Vec<I> {
        self.crow
    }

    /// The numeric phase: fills `col` and `values` (each `nnz` long) with the product of
    /// the matrices the plan was made for, rows in parallel over disjoint slices.
    #[allow(clippy::too_many_arguments)] // two matrices, the order and two outputs
    pub fn numeric<V: Scalar>(
        &self,
        a: &CsrPattern<'_, I>,
        a_values: &[V],
        b: &CsrPattern<'_, I>,
        b_values: &[V],
        order: ColumnOrder,
        col: &mut [I],
        values: &mut [V],
    ) -> Result<()> {
        check_chain(a, a_values, b, b_values)?;
        check_len("rows of A (plan)", self.crow.len(), a.nrows() + 1)?;
        check_len("output columns (nnz)", self.nnz, col.len())?;
        check_len("output values (nnz)", self.nnz, values.len())?;
        let m = b.ncols();
        let zero = to_index::<I>(0, "nnz")?;
        let start = |r: usize| self.crow.get(r).and_then(|v| v.to_usize()).unwrap_or(0);
        let mut tasks = Vec::with_capacity(self.splits.len());
        let (mut col_rest, mut val_rest) = (col, values);
        for w in self.splits.windows(2) {
            let len = start(w[1]) - start(w[0]);
            let (ch, ct) = col_rest.split_at_mut(len.min(col_rest.len()));
            let (vh, vt) = val_rest.split_at_mut(len.min(val_rest.len()));
            tasks.push((w[0]..w[1], ch, vh));
            col_rest = ct;
            val_rest = vt;
        }
        let numeric = |(rows, cols_out, vals_out): (Range<usize>, &mut [I], &mut [V])| {
            // One (row stamp, partial sum) slot per column of B, side by side, so each
            // update touches one cache line, not two. Stamps count rows within this chunk;
            // when they would wrap, the slots are cleared and counting restarts.
            let mut slots: Vec<(u32, V)> = vec![(0, V::ZERO); m];
            let mut stamp = 0u32;
            let mut touched: Vec<usize> = Vec::new();
            let mut pos = 0usize;
            for r in rows {
                touched.clear();
                if stamp == u32::MAX {
                    slots.fill((0, V::ZERO));
                    stamp = 0;
                }
                stamp += 1;
                let range = a.row_range(r);
                let a_cols = a.col().get(range.clone()).unwrap_or(&[]);
                let a_vals = a_values.get(range).unwrap_or(&[]);
                for (&j, &av) in a_cols.iter().zip(a_vals) {
                    let Some(j) = j.to_usize() else { continue };
                    let br = b.row_range(j);
                    let b_cols = b.col().get(br.clone()).unwrap_or(&[]);
                    let b_vals = b_values.get(br).unwrap_or(&[]);
                    for (&c, &bv) in b_cols.iter().zip(b_vals) {
                        let c = c.to_usize().unwrap_or(NONE);
                        let Some(slot) = slots.get_mut(c) else {
                            continue;
                        };
                        if slot.0 != stamp {
                            *slot = (stamp, av * bv);
                            touched.push(c);
                        } else {
                            slot.1 += av * bv;
                        }
                    }
                }
                if order == ColumnOrder::Sorted {
                    touched.sort_unstable();
                }
                for &c in &touched {
                    if let (Some(co), Some(vo)) = (cols_out.get_mut(pos), vals_out.get_mut(pos)) {
                        *co = I::from_usize(c).unwrap_or(zero);
                        *vo = slots.get(c).map_or(V::ZERO, |s| s.1);
                    }
                    pos += 1;
                }
            }
        };
        if tasks.len() <= 1 {
            tasks.into_iter().for_each(numeric);
        } else {
            rt_view::threads::install(|| tasks.into_par_iter().for_each(numeric))?;
        }
        Ok(())
    }
}

/// Per-thread "seen in this row" stamps, 4 bytes per column (half of a `usize`, so more
/// of them stay in cache). Stamps count rows within the thread's chunk; when they would
/// wrap, the array is cleared and counting restarts.
struct Marks {
    mark: Vec<u32>,
    stamp: u32,
}

impl Marks {
    fn new(m: usize) -> Self {
        Marks {
            mark: vec![0; m],
            stamp: 0,
        }
    }

    /// The stamp of the next row (never 0, the cleared value).
    #[inline]
    fn next_row(&mut self) -> u32 {
        if self.stamp == u32::MAX {
            self.mark.fill(0);
            self.stamp = 0;
        }
        self.stamp += 1;
        self.stamp
    }
}

#[cold]
fn unreachable_plan<I>() -> SpgemmPlan<I> {
    // `check_chain` fails for shapes that do not chain, so this is never reached.
    SpgemmPlan {
        crow: Vec::new(),
        splits: Vec::new(),
        nnz: 0,
    }
}

/// `C = A @ B` (Gustavson, two phases). Fails before allocating the result when its nnz
/// would exceed `max_nnz` or the index type.
pub fn spgemm<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    a_values: &[V],
    b: &CsrPattern<'_, I>,
    b_values: &[V],
    max_nnz: usize,
    order: ColumnOrder,
) -> Result<CsrParts<I, V>> {
    check_chain(a, a_values, b, b_values)?;
    let plan = SpgemmPlan::new(a, b, max_nnz)?;
    let zero = to_index::<I>(0, "nnz")?;
    let mut col = vec![zero; plan.nnz()];
    let mut values = vec![V::ZERO; plan.nnz()];
    plan.numeric(a, a_values, b, b_values, order, &mut col, &mut values)?;
    Ok(CsrParts {
        crow: plan.into_crow(),
        col,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_dense_product_and_respects_the_limit() {
        // A: 2x3, B: 3x2
        let (ac, ai, av) = ([0i64, 2, 3], [0i64, 2, 1], [1.0f64, 2.0, 3.0]);
        let (bc, bi, bv) = ([0i64, 1, 3, 4], [1i64, 0, 1, 0], [4.0f64, 5.0, 6.0, 7.0]);
        let a = CsrPattern::try_new(2, 3, &ac, &ai).unwrap();
        let b = CsrPattern::try_new(3, 2, &bc, &bi).unwrap();
        let c = spgemm(&a, &av, &b, &bv, DEFAULT_MAX_NNZ, ColumnOrder::Sorted).unwrap();
        // row 0: 1*[0,4] + 2*[7,0] = [14, 4]; row 1: 3*[5,6] = [15, 18]
        assert_eq!(c.crow, vec![0, 2, 4]);
        assert_eq!(c.col, vec![0, 1, 0, 1]);
        assert_eq!(c.values, vec![14.0, 4.0, 15.0, 18.0]);
        let e = spgemm(&a, &av, &b, &bv, 3, ColumnOrder::Sorted).unwrap_err();
        assert!(matches!(e, SparseError::LimitExceeded { requested: 4, .. }));
        assert!(spgemm(&b, &bv, &b, &bv, 100, ColumnOrder::Unsorted).is_err());
    }
}

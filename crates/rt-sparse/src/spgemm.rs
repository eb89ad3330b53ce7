//! SpGEMM `C = A @ B` for CSR matrices: Gustavson's row-by-row algorithm in two parallel
//! phases. The symbolic phase counts each row's distinct columns, so the result is
//! allocated once, at its exact size, and only after the nnz limit is checked; the numeric
//! phase then fills disjoint row ranges of it. Rows are split into chunks of equal
//! multiply count (power-law inputs have a few very expensive rows).
//!
//! Both phases check the calling thread's ambient cancel token
//! (`rt_view::cancel::with_token`) before every chunk of at most about 2^24
//! multiplications and return [`SparseError::Cancelled`] once it is cancelled.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use rayon::prelude::*;

use crate::convert::{CsrParts, to_index};
use crate::error::{Result, SparseError, check_len};
use crate::limits::try_filled;
use crate::parallel::{Cancel, balanced_splits, map_chunks, on_pool};
use crate::pattern::CsrPattern;
use crate::scalar::{Index, Scalar};

/// Default cap on the stored entries of a SpGEMM result: 2^31.
pub const DEFAULT_MAX_NNZ: usize = 1 << 31;

const NONE: usize = usize::MAX;

/// Up to this many columns of B a chunk of rows always accumulates in dense per-column
/// arrays (at most 16 MiB of `(u32, f64)` slots per thread).
const DENSE_MIN_COLS: usize = 1 << 20;

/// Whether a chunk of rows doing `work` multiplications accumulates in dense per-column
/// arrays (O(1) per update, but O(m) memory per thread) rather than in a hash map. Dense
/// arrays are used when B's `m` columns are few or paid for by the work, so that memory
/// follows the work and never B's shape alone: `A (2 x 3) @ B (3 x 2^40)` holding a
/// handful of entries needs a handful of slots, not 2^40 of them per thread.
fn dense_accumulator(m: usize, work: usize) -> bool {
    m <= DENSE_MIN_COLS.max(work)
}

/// The result of the symbolic phase: the row pointers of `C = A @ B` and how its rows
/// are split between threads. The caller allocates `nnz` entries (in Rust, or a torch
/// tensor) and hands them to [`SpgemmPlan::numeric`].
#[derive(Clone, Debug)]
pub struct SpgemmPlan<I> {
    crow: Vec<I>,
    splits: Vec<usize>,
    /// Multiplications in each chunk between consecutive `splits`.
    chunk_flops: Vec<usize>,
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
    /// parallel, and fails when the total would exceed `max_nnz` or the index type (or
    /// with `Cancelled`, see the module docs).
    pub fn new(a: &CsrPattern<'_, I>, b: &CsrPattern<'_, I>, max_nnz: usize) -> Result<Self> {
        if a.ncols() != b.nrows() {
            return check_chain::<I, f32>(a, &vec![0.0; a.nnz()], b, &vec![0.0; b.nnz()])
                .map(|_| unreachable_plan());
        }
        let (n, m) = (a.nrows(), b.ncols());
        let b_row_nnz = |j: I| j.to_usize().map_or(0, |j| b.row_nnz(j));
        // Multiplications per row, as the work estimate for balancing.
        let cancel = Cancel::ambient();
        let mut poll = cancel.poll();
        let mut flops = Vec::with_capacity(n + 1);
        flops.push(0usize);
        let mut total = 0usize;
        for r in 0..n {
            let cols = a.row_cols(r);
            poll.tick(cols.len())?;
            total = total.saturating_add(cols.iter().map(|&j| b_row_nnz(j)).sum());
            flops.push(total);
        }
        let splits = balanced_splits(n, |r| flops.get(r).copied().unwrap_or(0) + r, 1);
        let flops_at = |r: usize| flops.get(r).copied().unwrap_or(total);
        let chunk_flops: Vec<usize> = splits
            .windows(2)
            .map(|w| flops_at(w[1]) - flops_at(w[0]))
            .collect();
        let counts: Vec<Vec<usize>> = map_chunks(&splits, |rows| {
            let work = flops_at(rows.end) - flops_at(rows.start);
            // Dense marks when affordable; a refused allocation falls back to the set.
            let mut marks = dense_accumulator(m, work)
                .then(|| Marks::new(m).ok())
                .flatten();
            let mut seen: HashSet<usize> = HashSet::new();
            rows.map(|r| match marks.as_mut() {
                Some(marks) => {
                    let stamp = marks.next_row();
                    let mut count = 0;
                    for &j in a.row_cols(r) {
                        for &c in j.to_usize().map_or(&[][..], |j| b.row_cols(j)) {
                            if let Some(slot) = c.to_usize().and_then(|c| marks.mark.get_mut(c))
                                && *slot != stamp
                            {
                                *slot = stamp;
                                count += 1;
                            }
                        }
                    }
                    count
                }
                None => {
                    seen.clear();
                    for &j in a.row_cols(r) {
                        for &c in j.to_usize().map_or(&[][..], |j| b.row_cols(j)) {
                            seen.extend(c.to_usize());
                        }
                    }
                    seen.len()
                }
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
        // The index type bounds it too: nnz must fit the row pointers. Name the remedy
        // that works: past the index type's range, raising max_nnz would not help.
        let what = "the product A @ B";
        let (limit, knob) = if (max_nnz as u128) <= I::MAX as u128 || I::MAX > i32::MAX as u64 {
            ((max_nnz as u128).min(I::MAX as u128), "max_nnz")
        } else {
            (
                I::MAX as u128,
                "it is the int32 index range: use int64 indices",
            )
        };
        crate::limits::check_limit(what, nnz as u128, limit, "stored entries", knob)?;
        Ok(SpgemmPlan {
            crow,
            splits,
            chunk_flops,
            nnz,
        })
    }

    /// Stored entries of the product.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// Row pointers of the product.
    pub fn crow(&self) -> &[I] {
        &self.crow
    }

    /// Multiplications the numeric phase will do (the work of [`numeric`](Self::numeric)).
    pub fn flops(&self) -> usize {
        self.chunk_flops
            .iter()
            .fold(0usize, |t, &f| t.saturating_add(f))
    }

    /// Consumes the plan, returning its row pointers.
    pub fn into_crow(self) -> Vec<I> {
        self.crow
    }

    /// The numeric phase: fills `col` and `values` (each `nnz` long) with the product of
    /// the matrices the plan was made for, rows in parallel over disjoint slices. On
    /// `Cancelled` (see the module docs) some rows of the outputs are filled and others not.
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
        for (k, w) in self.splits.windows(2).enumerate() {
            let len = start(w[1]) - start(w[0]);
            let (ch, ct) = col_rest.split_at_mut(len.min(col_rest.len()));
            let (vh, vt) = val_rest.split_at_mut(len.min(val_rest.len()));
            let work = self.chunk_flops.get(k).copied().unwrap_or(usize::MAX);
            tasks.push((w[0]..w[1], work, ch, vh));
            col_rest = ct;
            val_rest = vt;
        }
        let numeric =
            |(rows, work, cols_out, vals_out): (Range<usize>, usize, &mut [I], &mut [V])| {
                // One (row stamp, partial sum) slot per column of B, side by side, so each
                // update touches one cache line, not two. Stamps count rows within this chunk;
                // when they would wrap, the slots are cleared and counting restarts. When B has
                // too many columns for the work (or the allocation is refused), a map from
                // column to position in `sums` takes their place: same order, same sums.
                let mut slots: Option<Vec<(u32, V)>> = dense_accumulator(m, work)
                    .then(|| try_filled("SpGEMM accumulators", m, (0, V::ZERO)).ok())
                    .flatten();
                let mut sparse: HashMap<usize, usize> = HashMap::new();
                let mut sums: Vec<V> = Vec::new();
                let mut stamp = 0u32;
                let mut touched: Vec<usize> = Vec::new();
                let mut pos = 0usize;
                for r in rows {
                    touched.clear();
                    sparse.clear();
                    sums.clear();
                    if stamp == u32::MAX {
                        if let Some(slots) = slots.as_mut() {
                            slots.fill((0, V::ZERO));
                        }
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
                        match slots.as_mut() {
                            Some(slots) => {
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
                            None => {
                                for (&c, &bv) in b_cols.iter().zip(b_vals) {
                                    let c = c.to_usize().unwrap_or(NONE);
                                    match sparse.entry(c) {
                                        Entry::Occupied(e) => {
                                            if let Some(sum) = sums.get_mut(*e.get()) {
                                                *sum += av * bv;
                                            }
                                        }
                                        Entry::Vacant(e) => {
                                            e.insert(sums.len());
                                            sums.push(av * bv);
                                            touched.push(c);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if order == ColumnOrder::Sorted {
                        touched.sort_unstable();
                    }
                    for &c in &touched {
                        let sum = match slots.as_ref() {
                            Some(slots) => slots.get(c).map(|s| s.1),
                            None => sparse.get(&c).and_then(|&k| sums.get(k)).copied(),
                        };
                        if let (Some(co), Some(vo)) = (cols_out.get_mut(pos), vals_out.get_mut(pos))
                        {
                            *co = I::from_usize(c).unwrap_or(zero);
                            *vo = sum.unwrap_or(V::ZERO);
                        }
                        pos += 1;
                    }
                }
            };
        let cancel = Cancel::ambient();
        let run = |task: (Range<usize>, usize, &mut [I], &mut [V])| -> Result<()> {
            cancel.check()?;
            numeric(task);
            Ok(())
        };
        if !on_pool(tasks.len()) {
            return tasks.into_iter().try_for_each(run);
        }
        let results: Vec<Result<()>> =
            rt_view::threads::install(|| tasks.into_par_iter().map(run).collect())?;
        results.into_iter().collect()
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
    /// `m` cleared marks, or `OutOfMemory` when the allocator refuses them.
    fn new(m: usize) -> Result<Self> {
        Ok(Marks {
            mark: try_filled("SpGEMM column marks", m, 0)?,
            stamp: 0,
        })
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
        chunk_flops: Vec::new(),
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
    let mut col = try_filled("the column indices of A @ B", plan.nnz(), zero)?;
    let mut values = try_filled("the values of A @ B", plan.nnz(), V::ZERO)?;
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
    fn matches_a_dense_product_respects_the_limit_and_stops_when_cancelled() {
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
        // A cancelled ambient token stops both phases; an uncancelled one changes nothing.
        let token = rt_view::cancel::CancelToken::new();
        let order = ColumnOrder::Sorted;
        let run = || spgemm(&a, &av, &b, &bv, DEFAULT_MAX_NNZ, order).map(|c| c.values);
        let fine = rt_view::cancel::with_token(&token, run);
        assert_eq!(fine, Ok(vec![14.0, 4.0, 15.0, 18.0]));
        token.cancel();
        let e = rt_view::cancel::with_token(&token, run);
        assert_eq!(e, Err(SparseError::Cancelled));
        let plan = SpgemmPlan::new(&a, &b, DEFAULT_MAX_NNZ).unwrap();
        let (mut col, mut val) = (vec![0i64; 4], vec![0.0f64; 4]);
        let e = rt_view::cancel::with_token(&token, || {
            plan.numeric(&a, &av, &b, &bv, order, &mut col, &mut val)
        });
        assert_eq!(e, Err(SparseError::Cancelled));
    }

    /// Gustavson with a map per row, summing in the kernels' order: the reference.
    fn reference(
        a: &CsrPattern<'_, i64>,
        av: &[f64],
        b: &CsrPattern<'_, i64>,
        bv: &[f64],
    ) -> Vec<Vec<(i64, f64)>> {
        (0..a.nrows())
            .map(|r| {
                let mut row: Vec<(i64, f64)> = Vec::new();
                for e in a.row_range(r) {
                    let j = a.col()[e] as usize;
                    for f in b.row_range(j) {
                        let (c, v) = (b.col()[f], av[e] * bv[f]);
                        match row.iter_mut().find(|(k, _)| *k == c) {
                            Some(slot) => slot.1 += v,
                            None => row.push((c, v)),
                        }
                    }
                }
                row
            })
            .collect()
    }

    #[test]
    fn many_columns_use_memory_in_proportion_to_the_work() {
        // B has 2^40 columns but 8 entries: a dense accumulator would be 2^40 slots per
        // thread (an abort); the map-based one gives the same product.
        let (ac, ai, av) = ([0i64, 2, 3], [0i64, 2, 1], [1.0f64, 2.0, 3.0]);
        let big = 1i64 << 40;
        let bc = [0i64, 3, 5, 8];
        let bi = [big - 1, 7, 0, big - 1, 5, 7, 1 << 33, big - 1];
        let bv = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let a = CsrPattern::try_new(2, 3, &ac, &ai).unwrap();
        let b = CsrPattern::try_new(3, 1 << 40, &bc, &bi).unwrap();
        let want = reference(&a, &av, &b, &bv);
        for order in [ColumnOrder::Unsorted, ColumnOrder::Sorted] {
            let c = spgemm(&a, &av, &b, &bv, DEFAULT_MAX_NNZ, order).unwrap();
            for (r, row) in want.iter().enumerate() {
                let (s, e) = (c.crow[r] as usize, c.crow[r + 1] as usize);
                let mut row = row.clone();
                if order == ColumnOrder::Sorted {
                    row.sort_by_key(|&(k, _)| k);
                }
                let got: Vec<(i64, f64)> = (s..e).map(|k| (c.col[k], c.values[k])).collect();
                assert_eq!(got, row, "row {r}, {order:?}");
            }
        }
        assert_eq!(c_nnz(&a, &b), 6);
    }

    fn c_nnz(a: &CsrPattern<'_, i64>, b: &CsrPattern<'_, i64>) -> usize {
        SpgemmPlan::new(a, b, DEFAULT_MAX_NNZ).unwrap().nnz()
    }

    #[test]
    fn the_map_and_dense_accumulators_agree() {
        // The same product with B's columns spread over 2^21 (the map: little work per
        // column) and over 64 (dense arrays), in first-touched order both times.
        let n = 60usize;
        let mut crow = vec![0i64];
        let (mut col, mut val) = (vec![], vec![]);
        for r in 0..n {
            for k in 0..(r * 7 % 9) {
                col.push(((r * 13 + k * 29) % n) as i64);
                val.push((r + k) as f64 * 0.25 - 3.0);
            }
            crow.push(col.len() as i64);
        }
        let a = CsrPattern::try_new(n, n, &crow, &col).unwrap();
        let spread: Vec<i64> = col.iter().map(|&c| c * 30_011 % (1 << 21)).collect();
        let b_wide = CsrPattern::try_new(n, 1 << 21, &crow, &spread).unwrap();
        let b_narrow = CsrPattern::try_new(n, 64, &crow, &col).unwrap();
        assert!(!dense_accumulator(1 << 21, 1000) && dense_accumulator(64, 0));
        let wide = spgemm(
            &a,
            &val,
            &b_wide,
            &val,
            DEFAULT_MAX_NNZ,
            ColumnOrder::Unsorted,
        )
        .unwrap();
        let narrow = spgemm(
            &a,
            &val,
            &b_narrow,
            &val,
            DEFAULT_MAX_NNZ,
            ColumnOrder::Unsorted,
        )
        .unwrap();
        assert_eq!(wide.crow, narrow.crow);
        assert_eq!(wide.values, narrow.values);
        let mapped: Vec<i64> = narrow.col.iter().map(|&c| c * 30_011 % (1 << 21)).collect();
        assert_eq!(wide.col, mapped);
        let want = reference(&a, &val, &b_wide, &val);
        assert_eq!(want.iter().map(Vec::len).sum::<usize>(), wide.col.len());
    }
}

//! Validated compressed sparsity patterns: the row pointers and column indices of a CSR
//! matrix (or the column pointers and row indices of a CSC one), checked in O(nnz) before
//! any kernel sees them. Kernels take a [`CsrPattern`], which only these checks construct.
//!
//! Cancellation: the checks read the calling thread's ambient cancel token
//! ([`rt_view::cancel::current`]) and check it every `POLL_WORK` (2^20) entries (before
//! every chunk when the range check runs on the pool), returning
//! [`SparseError::Cancelled`]. Each piece is still one branch-free, vectorized scan, so
//! the polling costs nothing measurable.

use std::ops::Range;

use rayon::prelude::*;

use crate::error::{Result, SparseError, check_len};
use crate::parallel::{Cancel, POLL_WORK};
use crate::scalar::Index;

/// From this many stored entries up, the index range check runs on the thread pool.
const PARALLEL_CHECK_MIN: usize = 1 << 18;

/// What the arrays of a compressed layout are called in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Names {
    /// The pointer array: `"crow"` or `"ccol"`.
    pub ptr: &'static str,
    /// The index array: `"col"` or `"row"`.
    pub idx: &'static str,
    /// The compressed dimension, singular: `"row"` or `"column"`.
    pub major: &'static str,
    /// The indexed dimension, plural: `"columns"` or `"rows"`.
    pub minor: &'static str,
}

/// Names for CSR arrays.
pub const CSR: Names = Names {
    ptr: "crow",
    idx: "col",
    major: "row",
    minor: "columns",
};

/// Names for CSC arrays.
pub const CSC: Names = Names {
    ptr: "ccol",
    idx: "row",
    major: "column",
    minor: "rows",
};

/// Whether indices within each row must also be sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    /// Any order, duplicates allowed (they add up in every kernel).
    #[default]
    Any,
    /// Strictly increasing within each row: sorted, no duplicates.
    SortedUnique,
}

/// Checks a shape given as signed integers (as Python passes it) and returns it as
/// `usize`: non-negative, and every index fits the index type `I`.
pub fn check_shape<I: Index>(nrows: i64, ncols: i64) -> Result<(usize, usize)> {
    let bad = |reason: String| SparseError::InvalidShape {
        shape: vec![nrows, ncols],
        reason,
    };
    if nrows < 0 || ncols < 0 {
        return Err(bad("dimensions must be non-negative".into()));
    }
    let max = I::MAX as i64;
    if nrows > max || ncols > max {
        return Err(bad(format!(
            "a dimension exceeds the largest {} index ({max})",
            I::DTYPE
        )));
    }
    let r = usize::try_from(nrows).map_err(|_| bad("does not fit in memory".into()))?;
    let c = usize::try_from(ncols).map_err(|_| bad("does not fit in memory".into()))?;
    // The pointer array holds nrows + 1 entries.
    r.checked_add(1)
        .ok_or_else(|| bad("does not fit in memory".into()))?;
    Ok((r, c))
}

/// The first index in `idx` (positions from `base`) that is negative or not below `bound`.
fn first_out_of_range<I: Index>(
    idx: &[I],
    base: usize,
    bound: usize,
    name: &'static str,
    what: &'static str,
) -> Result<()> {
    // Written as one branch-free scan so that it vectorizes; the slow search for the
    // position runs only when something is wrong.
    let bound_i64 = i64::try_from(bound).unwrap_or(i64::MAX);
    let ok = idx.iter().fold(true, |ok, &v| {
        let v = v.to_i64();
        ok & (v >= 0) & (v < bound_i64)
    });
    if ok {
        return Ok(());
    }
    for (k, &v) in idx.iter().enumerate() {
        let value = v.to_i64();
        if value < 0 {
            return Err(SparseError::NegativeIndex {
                name,
                position: base + k,
                value,
            });
        }
        if value >= bound_i64 {
            return Err(SparseError::IndexOutOfRange {
                name,
                position: base + k,
                value,
                bound,
                what,
            });
        }
    }
    Ok(())
}

/// Checks that every entry of `idx` is in `0..bound`, in parallel for long arrays; the
/// error names the first violation. Checks the ambient cancel token between pieces.
pub fn check_indices<I: Index>(
    idx: &[I],
    bound: usize,
    name: &'static str,
    what: &'static str,
) -> Result<()> {
    check_indices_polled(idx, bound, name, what, &Cancel::ambient())
}

/// [`check_indices`] checking `cancel` before every piece of at most [`POLL_WORK`]
/// entries (sequentially) or every chunk (on the pool).
fn check_indices_polled<I: Index>(
    idx: &[I],
    bound: usize,
    name: &'static str,
    what: &'static str,
    cancel: &Cancel,
) -> Result<()> {
    if idx.len() < PARALLEL_CHECK_MIN || rt_view::threads::get_num_threads() < 2 {
        for (k, piece) in idx.chunks(POLL_WORK).enumerate() {
            cancel.check()?;
            first_out_of_range(piece, k * POLL_WORK, bound, name, what)?;
        }
        return Ok(());
    }
    let chunk = PARALLEL_CHECK_MIN / 4;
    let results: Vec<Result<()>> = rt_view::threads::install(|| {
        idx.par_chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                cancel.check()?;
                first_out_of_range(part, c * chunk, bound, name, what)
            })
            .collect()
    })?;
    // Chunks come back in order, so the first error is the first violation (or the
    // cancellation, once the token is cancelled).
    results.into_iter().collect()
}

/// Checks the pointer array: `nmajor + 1` entries, starting at 0, never decreasing, ending
/// at `nnz`.
pub fn check_pointers<I: Index>(names: Names, nmajor: usize, ptr: &[I], nnz: usize) -> Result<()> {
    check_pointers_polled(names, nmajor, ptr, nnz, &Cancel::ambient())
}

/// [`check_pointers`] checking `cancel` before every piece of [`POLL_WORK`] pointers.
fn check_pointers_polled<I: Index>(
    names: Names,
    nmajor: usize,
    ptr: &[I],
    nnz: usize,
    cancel: &Cancel,
) -> Result<()> {
    if ptr.len() != nmajor.saturating_add(1) {
        return Err(SparseError::PointerLength {
            name: names.ptr,
            expected: nmajor.saturating_add(1),
            actual: ptr.len(),
            dim: names.major,
        });
    }
    let first = ptr.first().map_or(0, |v| v.to_i64());
    if first != 0 {
        return Err(SparseError::PointerStart {
            name: names.ptr,
            value: first,
        });
    }
    // Pieces of POLL_WORK pairs, each overlapping the next by one pointer; each scanned
    // branch-free so that it vectorizes.
    let mut sorted = true;
    let mut start = 0;
    while sorted && start + 1 < ptr.len() {
        cancel.check()?;
        let end = start.saturating_add(POLL_WORK + 1).min(ptr.len());
        let piece = ptr.get(start..end).unwrap_or(&[]);
        sorted = piece.windows(2).fold(true, |ok, w| ok & (w[0] <= w[1]));
        start = end - 1;
    }
    if !sorted {
        for (k, w) in ptr.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(SparseError::PointerDecreasing {
                    name: names.ptr,
                    position: k + 1,
                    value: w[1].to_i64(),
                    previous: w[0].to_i64(),
                });
            }
        }
    }
    let last = ptr.last().map_or(0, |v| v.to_i64());
    if usize::try_from(last).ok() != Some(nnz) {
        return Err(SparseError::PointerEnd {
            name: names.ptr,
            position: nmajor,
            value: last,
            nnz,
            index: names.idx,
        });
    }
    Ok(())
}

/// Checks that indices are strictly increasing within each row.
fn check_sorted_unique<I: Index>(
    names: Names,
    ptr: &[I],
    idx: &[I],
    cancel: &Cancel,
) -> Result<()> {
    let mut poll = cancel.poll();
    for (r, w) in ptr.windows(2).enumerate() {
        let (Some(s), Some(e)) = (w[0].to_usize(), w[1].to_usize()) else {
            continue; // unreachable after check_pointers
        };
        let Some(row) = idx.get(s..e) else { continue };
        poll.tick(row.len())?;
        for (k, pair) in row.windows(2).enumerate() {
            if pair[1] <= pair[0] {
                return Err(SparseError::Unsorted {
                    name: names.idx,
                    position: s + k + 1,
                    value: pair[1].to_i64(),
                    previous: pair[0].to_i64(),
                    row: r,
                    order: "sorted and unique",
                });
            }
        }
    }
    Ok(())
}

/// A validated compressed pattern. For CSR, `major` is rows and `minor` columns; a CSC
/// matrix is the CSR pattern of its transpose.
#[derive(Clone, Copy, Debug)]
pub struct CsrPattern<'a, I> {
    nrows: usize,
    ncols: usize,
    crow: &'a [I],
    col: &'a [I],
}

impl<'a, I: Index> CsrPattern<'a, I> {
    /// Validates `crow` and `col` as the pattern of an `nrows x ncols` CSR matrix, naming
    /// them as `names` says in errors.
    pub fn try_new_named(
        names: Names,
        nrows: usize,
        ncols: usize,
        crow: &'a [I],
        col: &'a [I],
        order: Order,
    ) -> Result<Self> {
        Self::validate(names, nrows, ncols, crow, col, order, &Cancel::ambient())
    }

    /// [`CsrPattern::try_new_named`] polling `cancel` (every [`POLL_WORK`] entries):
    /// `Cancel::default()` never cancels, for re-validating what was validated before.
    pub(crate) fn validate(
        names: Names,
        nrows: usize,
        ncols: usize,
        crow: &'a [I],
        col: &'a [I],
        order: Order,
        cancel: &Cancel,
    ) -> Result<Self> {
        if I::from_usize(nrows).is_none() || I::from_usize(ncols).is_none() {
            return Err(SparseError::InvalidShape {
                shape: vec![nrows as i64, ncols as i64],
                reason: format!("a dimension exceeds the largest {} index", I::DTYPE),
            });
        }
        check_pointers_polled(names, nrows, crow, col.len(), cancel)?;
        check_indices_polled(col, ncols, names.idx, names.minor, cancel)?;
        if order == Order::SortedUnique {
            check_sorted_unique(names, crow, col, cancel)?;
        }
        Ok(CsrPattern {
            nrows,
            ncols,
            crow,
            col,
        })
    }

    /// Validates a CSR pattern (see [`CsrPattern::try_new_named`]).
    pub fn try_new(nrows: usize, ncols: usize, crow: &'a [I], col: &'a [I]) -> Result<Self> {
        Self::try_new_named(CSR, nrows, ncols, crow, col, Order::Any)
    }

    /// Rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.col.len()
    }

    /// The row pointers (`nrows + 1` entries).
    pub fn crow(&self) -> &'a [I] {
        self.crow
    }

    /// The column indices (`nnz` entries).
    pub fn col(&self) -> &'a [I] {
        self.col
    }

    /// The positions of row `r`'s entries in `col` (empty for `r >= nrows`).
    #[inline(always)]
    pub fn row_range(&self, r: usize) -> Range<usize> {
        let at = |k: usize| {
            self.crow
                .get(k)
                .and_then(|v| v.to_usize())
                .unwrap_or(self.col.len())
        };
        // Validation guarantees start <= end <= nnz; `min` keeps it true regardless.
        let end = at(r + 1);
        at(r).min(end)..end
    }

    /// The column indices of row `r`.
    #[inline(always)]
    pub fn row_cols(&self, r: usize) -> &'a [I] {
        self.col.get(self.row_range(r)).unwrap_or(&[])
    }

    /// Entries in row `r`.
    #[inline(always)]
    pub fn row_nnz(&self, r: usize) -> usize {
        self.row_range(r).len()
    }
}

/// Checks the lengths and ranges of COO arrays for an `nrows x ncols` matrix.
pub fn check_coo<I: Index>(
    nrows: usize,
    ncols: usize,
    row: &[I],
    col: &[I],
    nvalues: Option<usize>,
) -> Result<()> {
    check_len("row and col lengths", row.len(), col.len())?;
    if let Some(n) = nvalues {
        check_len("values length (one per stored entry)", row.len(), n)?;
    }
    check_indices(row, nrows, "row", "rows")?;
    check_indices(col, ncols, "col", "columns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious, sequential reading of the rules, as the reference: pointers (length,
    /// start, order, end), then indices in position order, then (if asked) order within
    /// each row. `names` are the arrays' names (CSR or CSC).
    fn naive_named(
        names: Names,
        nrows: usize,
        ncols: usize,
        crow: &[i64],
        col: &[i64],
        sorted: bool,
    ) -> Result<()> {
        if crow.len() != nrows + 1 {
            return Err(SparseError::PointerLength {
                name: names.ptr,
                expected: nrows + 1,
                actual: crow.len(),
                dim: names.major,
            });
        }
        if crow[0] != 0 {
            return Err(SparseError::PointerStart {
                name: names.ptr,
                value: crow[0],
            });
        }
        for k in 1..crow.len() {
            if crow[k] < crow[k - 1] {
                return Err(SparseError::PointerDecreasing {
                    name: names.ptr,
                    position: k,
                    value: crow[k],
                    previous: crow[k - 1],
                });
            }
        }
        if crow[nrows] != col.len() as i64 {
            return Err(SparseError::PointerEnd {
                name: names.ptr,
                position: nrows,
                value: crow[nrows],
                nnz: col.len(),
                index: names.idx,
            });
        }
        naive_indices(col, ncols, names.idx, names.minor)?;
        if sorted {
            for r in 0..nrows {
                for k in (crow[r] as usize + 1)..(crow[r + 1] as usize) {
                    if col[k] <= col[k - 1] {
                        return Err(SparseError::Unsorted {
                            name: names.idx,
                            position: k,
                            value: col[k],
                            previous: col[k - 1],
                            row: r,
                            order: "sorted and unique",
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn naive_indices(
        idx: &[i64],
        bound: usize,
        name: &'static str,
        what: &'static str,
    ) -> Result<()> {
        for (k, &c) in idx.iter().enumerate() {
            if c < 0 {
                return Err(SparseError::NegativeIndex {
                    name,
                    position: k,
                    value: c,
                });
            }
            if c >= bound as i64 {
                return Err(SparseError::IndexOutOfRange {
                    name,
                    position: k,
                    value: c,
                    bound,
                    what,
                });
            }
        }
        Ok(())
    }

    fn naive(nrows: usize, ncols: usize, crow: &[i64], col: &[i64], sorted: bool) -> Result<()> {
        naive_named(CSR, nrows, ncols, crow, col, sorted)
    }

    fn check(nrows: usize, ncols: usize, crow: &[i64], col: &[i64], sorted: bool) -> Result<()> {
        let order = if sorted {
            Order::SortedUnique
        } else {
            Order::Any
        };
        CsrPattern::try_new_named(CSR, nrows, ncols, crow, col, order).map(|_| ())
    }

    #[test]
    fn messages_name_the_position() {
        let e = check(2, 10, &[0, 1, 2], &[3, 12], false).unwrap_err();
        assert_eq!(e.to_string(), "col[1] = 12 is out of range for 10 columns");
        let e = check(2, 10, &[0, 2, 1], &[3, 4], false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("crow[2] = 1 is smaller than crow[1] = 2")
        );
        let e = check(2, 10, &[1, 1, 2], &[3, 4], false).unwrap_err();
        assert_eq!(e.to_string(), "crow[0] = 1, expected 0");
        let e = check(2, 10, &[0, 1, 3], &[3, 4], false).unwrap_err();
        assert!(e.to_string().starts_with("crow[2] = 3, expected nnz = 2"));
        let e = check(2, 10, &[0, 2], &[3, 4], false).unwrap_err();
        assert!(matches!(
            e,
            SparseError::PointerLength {
                expected: 3,
                actual: 2,
                ..
            }
        ));
        let e = check(1, 10, &[0, 2], &[4, 4], true).unwrap_err();
        assert!(matches!(e, SparseError::Unsorted { position: 1, .. }));
        assert!(check(1, 10, &[0, 2], &[4, 4], false).is_ok());
        let e = check(1, 10, &[0, 1], &[-1], false).unwrap_err();
        assert_eq!(e.to_string(), "col[0] = -1 is negative");
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        assert!(check_shape::<i32>(-1, 3).is_err());
        assert!(check_shape::<i32>(1 << 31, 3).is_err());
        assert!(check_shape::<i64>(1 << 31, 3).is_ok());
        assert!(check_shape::<i64>(i64::MAX, 1).is_err() || usize::BITS == 64);
    }

    #[test]
    fn parallel_check_finds_the_first_violation() {
        let n = 1 << 20;
        let mut col = vec![1i64; n];
        col[700_000] = 99;
        col[900_000] = -5;
        col[300_001] = 10;
        let crow = [0, n as i64];
        let e = check(1, 10, &crow, &col, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "col[300001] = 10 is out of range for 10 columns"
        );
    }

    #[test]
    fn a_cancelled_ambient_token_stops_the_checks() {
        use rt_view::cancel::{CancelToken, with_token};
        // Long enough for several pieces, and for the pool at two threads.
        let n = 3 * POLL_WORK + 5;
        let crow: Vec<i64> = (0..=n as i64).collect();
        let col: Vec<i64> = vec![0; n];
        let token = CancelToken::new();
        let csr = |order| CsrPattern::try_new_named(CSR, n, 1, &crow, &col, order).map(|p| p.nnz());
        let coo = || check_coo(n, 1, &col, &col, Some(n));
        // An uncancelled token changes nothing.
        with_token(&token, || {
            assert_eq!(csr(Order::Any), Ok(n));
            assert_eq!(csr(Order::SortedUnique), Ok(n));
            assert_eq!(coo(), Ok(()));
        });
        token.cancel();
        with_token(&token, || {
            assert_eq!(csr(Order::Any), Err(SparseError::Cancelled));
            assert_eq!(coo(), Err(SparseError::Cancelled));
            assert_eq!(
                check_pointers(CSR, n, &crow, n),
                Err(SparseError::Cancelled)
            );
            assert_eq!(
                check_indices(&col, 1, "col", "columns"),
                Err(SparseError::Cancelled)
            );
            // The sorted check polls on its own too (the others come first otherwise).
            let never = Cancel::default();
            assert_eq!(
                check_sorted_unique(CSR, &crow, &col, &Cancel::ambient()),
                Err(SparseError::Cancelled)
            );
            assert_eq!(check_sorted_unique(CSR, &crow, &col, &never), Ok(()));
            // Re-validating an owned matrix never sees the token (it must not fail).
            let m = crate::CsrMatrix::try_new(1, 2, vec![0i64, 2], vec![1, 0], vec![1.0f32; 2]);
            assert_eq!(m.map(|_| ()), Err(SparseError::Cancelled));
        });
        let m =
            crate::CsrMatrix::try_new(1, 2, vec![0i64, 2], vec![1, 0], vec![1.0f32; 2]).unwrap();
        with_token(&token, || assert_eq!(m.pattern().nnz(), 2));
        // Outside `with_token` nothing is polled.
        assert_eq!(csr(Order::SortedUnique), Ok(n));
    }

    /// One thing wrong with an otherwise valid pattern (or nothing).
    #[derive(Clone, Copy, Debug)]
    enum Fault {
        None,
        /// `crow[at % len] += delta`, `delta` in `-2..=2` but not 0.
        Pointer {
            at: usize,
            delta: i64,
        },
        /// One pointer more (`true`) or one fewer; for COO, a row index fewer.
        PointerCount(bool),
        /// `col[at % nnz] = value` (`row` instead for COO with `on_row`).
        Index {
            at: usize,
            value: i64,
            on_row: bool,
        },
        /// Entries `i, i + 1` (`i = at % (nnz - 1)`) swapped, or the second made a copy of
        /// the first.
        Order {
            at: usize,
            swap: bool,
        },
        /// One value more (`true`) or fewer.
        Values(bool),
    }

    /// A pattern built from rows (so its pointers hold) and then given at most one fault,
    /// in CSR, CSC (the same arrays read as column pointers) and COO form.
    #[derive(Clone, Debug)]
    struct Case {
        nrows: usize,
        ncols: usize,
        crow: Vec<i64>,
        col: Vec<i64>,
        /// COO: the row of every entry and the columns, with the COO form of the fault.
        coo_row: Vec<i64>,
        coo_col: Vec<i64>,
        nvalues: usize,
        /// Whether sorted, unique indices are asked for.
        sorted: bool,
    }

    fn fault() -> impl Strategy<Value = Fault> {
        prop_oneof![
            3 => Just(Fault::None),
            2 => (any::<usize>(), prop_oneof![-2i64..0, 1i64..3])
                .prop_map(|(at, delta)| Fault::Pointer { at, delta }),
            1 => any::<bool>().prop_map(Fault::PointerCount),
            2 => (any::<usize>(), -3i64..10, any::<bool>())
                .prop_map(|(at, value, on_row)| Fault::Index { at, value, on_row }),
            2 => (any::<usize>(), any::<bool>()).prop_map(|(at, swap)| Fault::Order { at, swap }),
            1 => any::<bool>().prop_map(Fault::Values),
        ]
    }

    fn case() -> impl Strategy<Value = Case> {
        (1usize..8)
            .prop_flat_map(|ncols| {
                let row = proptest::collection::btree_set(0..ncols as i64, 0..=ncols.min(4));
                (
                    Just(ncols),
                    proptest::collection::vec(row, 0..6),
                    any::<bool>(),
                    any::<bool>(),
                    fault(),
                )
            })
            .prop_map(|(ncols, rows, reverse_rows, sorted, fault)| {
                let mut crow = vec![0i64];
                let (mut col, mut coo_row) = (vec![], vec![]);
                for (r, cols) in rows.iter().enumerate() {
                    let start = col.len();
                    col.extend(cols.iter().copied());
                    if reverse_rows {
                        col[start..].reverse();
                    }
                    coo_row.extend(std::iter::repeat_n(r as i64, cols.len()));
                    crow.push(col.len() as i64);
                }
                let mut coo_col = col.clone();
                let mut nvalues = col.len();
                match fault {
                    Fault::None => {}
                    Fault::Pointer { at, delta } => {
                        let k = at % crow.len();
                        crow[k] += delta;
                    }
                    Fault::PointerCount(more) => {
                        if more {
                            crow.push(*crow.last().unwrap_or(&0));
                        } else {
                            crow.pop();
                        }
                        coo_row.pop();
                    }
                    Fault::Index { at, value, on_row } => {
                        if !col.is_empty() {
                            let k = at % col.len();
                            col[k] = value;
                            if on_row {
                                coo_row[k] = value;
                            } else {
                                coo_col[k] = value;
                            }
                        }
                    }
                    Fault::Order { at, swap } => {
                        if col.len() >= 2 {
                            let k = at % (col.len() - 1);
                            if swap {
                                col.swap(k, k + 1);
                            } else {
                                col[k + 1] = col[k];
                            }
                            coo_col = col.clone();
                        }
                    }
                    Fault::Values(more) => {
                        nvalues = if more || nvalues == 0 {
                            nvalues + 1
                        } else {
                            nvalues - 1
                        };
                    }
                }
                Case {
                    nrows: rows.len(),
                    ncols,
                    crow,
                    col,
                    coo_row,
                    coo_col,
                    nvalues,
                    sorted,
                }
            })
    }

    fn naive_coo(
        nrows: usize,
        ncols: usize,
        row: &[i64],
        col: &[i64],
        nvalues: usize,
    ) -> Result<()> {
        check_len("row and col lengths", row.len(), col.len())?;
        check_len("values length (one per stored entry)", row.len(), nvalues)?;
        naive_indices(row, nrows, "row", "rows")?;
        naive_indices(col, ncols, "col", "columns")
    }

    fn to_i32(v: &[i64]) -> Vec<i32> {
        v.iter().map(|&x| x as i32).collect()
    }

    /// Which rule an outcome is, for counting.
    fn rule(r: &Result<()>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(SparseError::PointerLength { .. }) => "pointer length",
            Err(SparseError::PointerStart { .. }) => "pointer start",
            Err(SparseError::PointerDecreasing { .. }) => "pointer decreasing",
            Err(SparseError::PointerEnd { .. }) => "pointer end",
            Err(SparseError::NegativeIndex { .. }) => "negative index",
            Err(SparseError::IndexOutOfRange { .. }) => "index out of range",
            Err(SparseError::Unsorted { .. }) => "unsorted",
            Err(SparseError::LengthMismatch { .. }) => "length",
            Err(_) => "other",
        }
    }

    #[test]
    fn the_cases_reach_every_rule() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = case();
        let (mut csr, mut matrix, mut coo) = (
            std::collections::BTreeMap::new(),
            std::collections::BTreeMap::new(),
            std::collections::BTreeMap::new(),
        );
        let n = 4000;
        for _ in 0..n {
            let Ok(tree) = strategy.new_tree(&mut runner) else {
                continue;
            };
            let c = tree.current();
            let pattern = naive(c.nrows, c.ncols, &c.crow, &c.col, c.sorted);
            let values = pattern.clone().and_then(|()| {
                check_len(
                    "values length (one per stored entry)",
                    c.col.len(),
                    c.nvalues,
                )
            });
            let coo_outcome = naive_coo(c.nrows, c.ncols, &c.coo_row, &c.coo_col, c.nvalues);
            *csr.entry(rule(&pattern)).or_insert(0usize) += 1;
            *matrix.entry(rule(&values)).or_insert(0usize) += 1;
            *coo.entry(rule(&coo_outcome)).or_insert(0usize) += 1;
        }
        // Most cases get past the pointer checks, and every rule is hit often.
        let past_pointers: usize = ["ok", "negative index", "index out of range", "unsorted"]
            .iter()
            .map(|k| csr.get(k).copied().unwrap_or(0))
            .sum();
        assert!(past_pointers * 2 > n, "{csr:?}");
        for k in [
            "ok",
            "pointer length",
            "pointer start",
            "pointer decreasing",
            "pointer end",
            "negative index",
            "index out of range",
            "unsorted",
        ] {
            assert!(csr.get(k).copied().unwrap_or(0) * 40 > n, "{k}: {csr:?}");
        }
        assert!(
            matrix.get("length").copied().unwrap_or(0) * 40 > n,
            "{matrix:?}"
        );
        for k in ["ok", "length", "negative index", "index out of range"] {
            assert!(coo.get(k).copied().unwrap_or(0) * 40 > n, "{k}: {coo:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn agrees_with_the_naive_validator(c in case()) {
            let (nrows, ncols) = (c.nrows, c.ncols);
            let order = if c.sorted { Order::SortedUnique } else { Order::Any };
            let want = naive(nrows, ncols, &c.crow, &c.col, c.sorted);
            prop_assert_eq!(check(nrows, ncols, &c.crow, &c.col, c.sorted), want.clone());
            let (crow32, col32) = (to_i32(&c.crow), to_i32(&c.col));
            let got32 = CsrPattern::try_new_named(CSR, nrows, ncols, &crow32, &col32, order);
            prop_assert_eq!(got32.map(|_| ()), want.clone());

            // The owned matrices also check the values' length, after the pattern.
            let values_rule = |r: Result<()>| {
                r.and_then(|()| {
                    check_len("values length (one per stored entry)", c.col.len(), c.nvalues)
                })
            };
            let want_m = values_rule(want);
            let (v32, v64) = (vec![1.0f32; c.nvalues], vec![1.0f64; c.nvalues]);
            let got = crate::CsrMatrix::try_new_ordered(
                nrows, ncols, c.crow.clone(), c.col.clone(), v32.clone(), order,
            );
            prop_assert_eq!(got.map(|_| ()), want_m.clone());
            let got = crate::CsrMatrix::try_new_ordered(
                nrows, ncols, crow32.clone(), col32.clone(), v64.clone(), order,
            );
            prop_assert_eq!(got.map(|_| ()), want_m.clone());
            if !c.sorted {
                let got = crate::CsrMatrix::try_new(nrows, ncols, crow32.clone(), col32.clone(), v32.clone());
                prop_assert_eq!(got.map(|_| ()), want_m);
            }

            // CSC: the same arrays as the column pointers and row indices of the
            // ncols x nrows matrix, named as such in the errors.
            let want_csc = values_rule(naive_named(CSC, nrows, ncols, &c.crow, &c.col, false));
            let got = crate::CscMatrix::try_new(ncols, nrows, c.crow.clone(), c.col.clone(), v64.clone());
            prop_assert_eq!(got.map(|_| ()), want_csc.clone());
            let got = crate::CscMatrix::try_new(ncols, nrows, crow32, col32, v32.clone());
            prop_assert_eq!(got.map(|_| ()), want_csc);

            // COO: rows expanded from the pattern, with the COO form of the fault.
            let want_coo = naive_coo(nrows, ncols, &c.coo_row, &c.coo_col, c.nvalues);
            let got = crate::CooMatrix::try_new(nrows, ncols, c.coo_row.clone(), c.coo_col.clone(), v32);
            prop_assert_eq!(got.map(|_| ()), want_coo.clone());
            let got = crate::CooMatrix::try_new(
                nrows, ncols, to_i32(&c.coo_row), to_i32(&c.coo_col), v64,
            );
            prop_assert_eq!(got.map(|_| ()), want_coo);
        }

        #[test]
        fn agrees_on_arbitrary_arrays(
            nrows in 0usize..6,
            ncols in 0usize..6,
            crow in proptest::collection::vec(-2i64..12, 0..8),
            col in proptest::collection::vec(-2i64..8, 0..12),
            sorted in any::<bool>(),
        ) {
            // Unstructured input: almost always a pointer error, kept for the odd shapes.
            prop_assert_eq!(check(nrows, ncols, &crow, &col, sorted), naive(nrows, ncols, &crow, &col, sorted));
        }

        #[test]
        fn valid_patterns_pass(
            rows in proptest::collection::vec(proptest::collection::btree_set(0i64..7, 0..5), 0..6),
        ) {
            let mut crow = vec![0i64];
            let mut col = vec![];
            for r in &rows {
                col.extend(r.iter().copied());
                crow.push(col.len() as i64);
            }
            prop_assert!(check(rows.len(), 7, &crow, &col, true).is_ok());
            let crow32: Vec<i32> = crow.iter().map(|&v| v as i32).collect();
            let col32: Vec<i32> = col.iter().map(|&v| v as i32).collect();
            prop_assert!(CsrPattern::try_new(rows.len(), 7, &crow32, &col32).is_ok());
        }
    }
}

//! Conversions between layouts on validated inputs: COO to CSR (sorting, optionally summing
//! duplicates), transposition (CSR <-> CSC), row expansion (CSR -> COO) and dense output
//! under an explicit size limit.
//!
//! The conversions are sequential; they check the calling thread's ambient cancel token
//! (`rt_view::cancel::with_token`) about every 2^20 entries and then return
//! [`SparseError::Cancelled`], dropping what they built (`to_dense` leaves `out` partly
//! written).

use crate::error::{Result, SparseError};
use crate::limits::{check_pointer_buffer, try_filled, try_with_capacity};
use crate::parallel::Cancel;
use crate::pattern::{CsrPattern, check_coo, check_indices};
use crate::scalar::{Index, Scalar};

/// Default cap on the elements of a dense conversion: 2^31 (8 GiB of float32).
pub const DEFAULT_MAX_DENSE_ELEMENTS: usize = 1 << 31;

/// The arrays of a CSR matrix, as built by the conversions.
#[derive(Clone, Debug, PartialEq)]
pub struct CsrParts<I, V> {
    /// Row pointers.
    pub crow: Vec<I>,
    /// Column indices.
    pub col: Vec<I>,
    /// Values (empty when the input had none).
    pub values: Vec<V>,
}

/// `n` as index type `I`, or an error naming what overflowed.
pub(crate) fn to_index<I: Index>(n: usize, what: &'static str) -> Result<I> {
    I::from_usize(n).ok_or_else(|| SparseError::InvalidArgument {
        name: what,
        reason: format!("{n} does not fit the {} index type", I::DTYPE),
    })
}

/// What the arrays of a COO -> CSR conversion are called in error messages: plain COO
/// arrays, or the edges of a graph (whose dimension is `num_nodes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CooNames {
    /// The row index array (`"row"`; for edges, the destinations).
    pub row: &'static str,
    /// What the row indices index, plural (`"rows"`).
    pub rows: &'static str,
    /// The column index array (`"col"`; for edges, the sources).
    pub col: &'static str,
    /// What the column indices index, plural (`"columns"`).
    pub cols: &'static str,
    /// The pair of index arrays whose lengths must agree.
    pub lengths: &'static str,
    /// The values' length check.
    pub values: &'static str,
    /// The row pointer array and the dimension that sizes it.
    pub ptr: &'static str,
}

/// Names for plain COO arrays.
pub const COO: CooNames = CooNames {
    row: "row",
    rows: "rows",
    col: "col",
    cols: "columns",
    lengths: "row and col lengths",
    values: "values length (one per stored entry)",
    ptr: "the row pointers of the CSR matrix (nrows + 1)",
};

/// Names for a PyG-style `[2, E]` edge index (row 0 sources, row 1 destinations) turned
/// into the `num_nodes x num_nodes` aggregation matrix `A[dst, src]`.
pub const EDGE_INDEX: CooNames = CooNames {
    row: "edge_index[1]",
    rows: "nodes (num_nodes)",
    col: "edge_index[0]",
    cols: "nodes (num_nodes)",
    lengths: "edge_index[0] and edge_index[1] lengths",
    values: "values length (one per edge)",
    ptr: "the row pointers of the aggregation matrix (num_nodes + 1)",
};

/// Names for the `src`/`dst` edge lists of `gather_scatter` (rows are destinations).
pub const EDGES: CooNames = CooNames {
    row: "dst",
    rows: "nodes (num_nodes)",
    col: "src",
    cols: "source nodes (rows of x)",
    lengths: "src length (one entry per dst entry)",
    values: "values length (one per edge)",
    ptr: "the row pointers of the edges grouped by destination (num_nodes + 1)",
};

/// Sorts COO entries into CSR order: by row, then column (stable, so duplicates keep their
/// input order). With `sum_duplicates`, entries with equal (row, col) are added into one
/// (`values` may be `None` for a pattern, then duplicates are merged).
pub fn coo_to_csr<I: Index, V: Scalar>(
    nrows: usize,
    ncols: usize,
    row: &[I],
    col: &[I],
    values: Option<&[V]>,
    sum_duplicates: bool,
) -> Result<CsrParts<I, V>> {
    coo_to_csr_named(COO, nrows, ncols, row, col, values, sum_duplicates)
}

/// [`coo_to_csr`], naming the arrays `names` in errors.
pub fn coo_to_csr_named<I: Index, V: Scalar>(
    names: CooNames,
    nrows: usize,
    ncols: usize,
    row: &[I],
    col: &[I],
    values: Option<&[V]>,
    sum_duplicates: bool,
) -> Result<CsrParts<I, V>> {
    check_coo_named(names, nrows, ncols, row, col, values.map(<[V]>::len))?;
    let nval = if values.is_some() { row.len() } else { 0 };
    let mut out_val: Vec<V> = try_with_capacity("the values of the CSR matrix", nval)?;
    let (crow, out_col) = coo_order(names, nrows, row, col, sum_duplicates, |e, merged| {
        let v = values.and_then(|v| v.get(e).copied());
        if merged {
            if let (Some(acc), Some(v)) = (out_val.last_mut(), v) {
                *acc += v;
            }
        } else {
            out_val.extend(v);
        }
    })?;
    Ok(CsrParts {
        crow,
        col: out_col,
        values: out_val,
    })
}

/// The pattern of [`coo_to_csr`] and, for every input entry `e`, the position `pos[e]` of
/// the stored entry it lands in (duplicates that are summed share one). The values of the
/// conversion are then `zeros(nnz).index_add(0, pos, values)`, which autograd can follow.
pub fn coo_to_csr_positions<I: Index>(
    names: CooNames,
    nrows: usize,
    ncols: usize,
    row: &[I],
    col: &[I],
    sum_duplicates: bool,
) -> Result<(Vec<I>, Vec<I>, Vec<I>)> {
    check_coo_named(names, nrows, ncols, row, col, None)?;
    let zero = to_index::<I>(0, "nnz")?;
    let mut pos = try_filled(
        "the positions of the COO -> CSR conversion",
        row.len(),
        zero,
    )?;
    let mut next = 0usize;
    let mut failed = None;
    let (crow, out_col) = coo_order(names, nrows, row, col, sum_duplicates, |e, merged| {
        if !merged {
            next += 1;
        }
        // `next - 1` is the stored entry that `e` went into; it fits I (nnz was checked).
        match (pos.get_mut(e), to_index::<I>(next.saturating_sub(1), "nnz")) {
            (Some(slot), Ok(p)) => *slot = p,
            (_, Err(err)) => failed = Some(err),
            _ => {}
        }
    })?;
    if let Some(err) = failed {
        return Err(err);
    }
    Ok((crow, out_col, pos))
}

fn check_coo_named<I: Index>(
    names: CooNames,
    nrows: usize,
    ncols: usize,
    row: &[I],
    col: &[I],
    nvalues: Option<usize>,
) -> Result<()> {
    if names == COO {
        return check_coo(nrows, ncols, row, col, nvalues);
    }
    crate::error::check_len(names.lengths, row.len(), col.len())?;
    if let Some(n) = nvalues {
        crate::error::check_len(names.values, row.len(), n)?;
    }
    // Sources first: `edge_index[0]` comes before `edge_index[1]`.
    check_indices(col, ncols, names.col, names.cols)?;
    check_indices(row, nrows, names.row, names.rows)
}

/// The CSR order of validated COO entries: builds `crow` and `col` and calls
/// `visit(e, merged)` for every input entry `e` in output order, `merged` when it was
/// added into the stored entry before it (a duplicate, with `sum_duplicates`).
fn coo_order<I: Index>(
    names: CooNames,
    nrows: usize,
    row: &[I],
    col: &[I],
    sum_duplicates: bool,
    mut visit: impl FnMut(usize, bool),
) -> Result<(Vec<I>, Vec<I>)> {
    let nnz = row.len();
    to_index::<I>(nnz, "nnz")?;
    // The row pointers grow with nrows, not with the entries: bounded before allocating.
    let nptr = check_pointer_buffer(names.ptr, nrows)?;
    let cancel = Cancel::ambient();
    // Counting sort by row (indices are validated, so `to_usize` is total here).
    let mut counts = try_filled("the row counts of the COO -> CSR conversion", nptr, 0usize)?;
    cancel.for_pieces(row, |_, piece| {
        for &r in piece {
            if let Some(slot) = r.to_usize().and_then(|r| counts.get_mut(r + 1)) {
                *slot += 1;
            }
        }
    })?;
    for k in 1..counts.len() {
        counts[k] += counts[k - 1];
    }
    let mut next = try_with_capacity("the row counts of the COO -> CSR conversion", nptr)?;
    next.extend_from_slice(&counts);
    let mut order = try_filled("the entry order of the COO -> CSR conversion", nnz, 0usize)?;
    cancel.for_pieces(row, |base, piece| {
        for (k, &r) in piece.iter().enumerate() {
            if let Some(pos) = r.to_usize().and_then(|r| next.get_mut(r)) {
                if let Some(slot) = order.get_mut(*pos) {
                    *slot = base + k;
                }
                *pos += 1;
            }
        }
    })?;
    let mut out_col: Vec<I> = try_with_capacity("the column indices of the CSR matrix", nnz)?;
    let mut crow: Vec<I> = try_with_capacity(names.ptr, nptr)?;
    crow.push(to_index(0, "nnz")?);
    let mut scratch: Vec<(I, usize)> = Vec::new();
    let mut poll = cancel.poll();
    for r in 0..nrows {
        let seg = order.get(counts[r]..counts[r + 1]).unwrap_or(&[]);
        // Sorting costs a few units per entry.
        poll.tick(seg.len().saturating_mul(4))?;
        scratch.clear();
        scratch.extend(seg.iter().map(|&e| (col[e], e)));
        // Stable: equal columns keep input order.
        scratch.sort_by_key(|&(c, _)| c);
        let mut last: Option<I> = None;
        for &(c, e) in &scratch {
            if sum_duplicates && last == Some(c) {
                visit(e, true);
                continue;
            }
            out_col.push(c);
            visit(e, false);
            last = Some(c);
        }
        crow.push(to_index(out_col.len(), "nnz")?);
    }
    Ok((crow, out_col))
}

/// The transpose of a validated pattern: the CSR pattern of `A^T` (equivalently the CSC
/// pattern of `A`) and `perm`, where entry `k` of the result is entry `perm[k]` of `A`.
/// Columns come out sorted within each row.
///
/// The result's pointer array has `ncols + 1` entries however few are stored, so it is
/// checked against [`crate::dim_buffer_limit`] first.
pub fn transpose<I: Index>(a: &CsrPattern<'_, I>) -> Result<(Vec<I>, Vec<I>, Vec<I>)> {
    transpose_named(a, "the row pointers of the transpose (ncols + 1)")
}

/// [`transpose`], naming the result's pointer array `what` (with the dimension that sizes
/// it) when it would pass the limit: the CSC column pointers of `to_csc`, say.
pub(crate) fn transpose_named<I: Index>(
    a: &CsrPattern<'_, I>,
    what: &'static str,
) -> Result<(Vec<I>, Vec<I>, Vec<I>)> {
    let (nrows, ncols, nnz) = (a.nrows(), a.ncols(), a.nnz());
    to_index::<I>(nnz, "nnz")?;
    let nptr = check_pointer_buffer(what, ncols)?;
    let cancel = Cancel::ambient();
    let mut counts = try_filled(what, nptr, 0usize)?;
    cancel.for_pieces(a.col(), |_, piece| {
        for &c in piece {
            if let Some(slot) = c.to_usize().and_then(|c| counts.get_mut(c + 1)) {
                *slot += 1;
            }
        }
    })?;
    for k in 1..counts.len() {
        counts[k] += counts[k - 1];
    }
    let mut crow_t = try_with_capacity(what, nptr)?;
    for &n in &counts {
        crow_t.push(to_index::<I>(n, "nnz")?);
    }
    let zero = to_index::<I>(0, "nnz")?;
    let mut col_t = try_filled("the indices of the transpose", nnz, zero)?;
    let mut perm = try_filled("the permutation of the transpose", nnz, zero)?;
    let mut poll = cancel.poll();
    for r in 0..nrows {
        let ri = to_index::<I>(r, "nrows")?;
        poll.tick(a.row_nnz(r))?;
        for e in a.row_range(r) {
            let Some(c) = a.col().get(e).and_then(|c| c.to_usize()) else {
                continue;
            };
            let Some(pos) = counts.get_mut(c) else {
                continue;
            };
            if let (Some(ct), Some(p)) = (col_t.get_mut(*pos), perm.get_mut(*pos)) {
                *ct = ri;
                *p = to_index(e, "nnz")?;
            }
            *pos += 1;
        }
    }
    Ok((crow_t, col_t, perm))
}

/// The row index of every stored entry (CSR -> COO).
pub fn expand_rows<I: Index>(a: &CsrPattern<'_, I>) -> Result<Vec<I>> {
    let mut rows = try_with_capacity("the row indices of the COO matrix", a.nnz())?;
    let cancel = Cancel::ambient();
    let mut poll = cancel.poll();
    for r in 0..a.nrows() {
        poll.tick(a.row_nnz(r))?;
        let ri = to_index::<I>(r, "nrows")?;
        rows.extend(std::iter::repeat_n(ri, a.row_nnz(r)));
    }
    Ok(rows)
}

/// Checks that an `nrows x ncols` dense result stays within `max_elements`.
pub fn check_dense_size(nrows: usize, ncols: usize, max_elements: usize) -> Result<usize> {
    let n = (nrows as u128) * (ncols as u128);
    let limit = max_elements as u128;
    crate::limits::check_limit("the dense matrix", n, limit, "elements", "max_elements")?;
    usize::try_from(n).map_err(|_| SparseError::InvalidShape {
        shape: vec![nrows as i64, ncols as i64],
        reason: "the dense matrix does not fit in memory".into(),
    })
}

/// Writes the dense matrix (row-major, `nrows * ncols`) into `out`; duplicates add up.
/// Rows are cleared and filled one at a time (on `Cancelled`, the rows after the one
/// reached hold what `out` held before).
pub fn to_dense<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    values: &[V],
    out: &mut [V],
) -> Result<()> {
    crate::error::check_len("values length (nnz)", a.nnz(), values.len())?;
    crate::error::check_len("dense output length", a.nrows() * a.ncols(), out.len())?;
    let ncols = a.ncols();
    let cancel = Cancel::ambient();
    let mut poll = cancel.poll();
    for r in 0..a.nrows() {
        let range = a.row_range(r);
        poll.tick(ncols.saturating_add(range.len()))?;
        let cols = a.col().get(range.clone()).unwrap_or(&[]);
        let vals = values.get(range).unwrap_or(&[]);
        let Some(dst) = out.get_mut(r * ncols..(r + 1) * ncols) else {
            continue;
        };
        dst.fill(V::ZERO);
        for (&c, &v) in cols.iter().zip(vals) {
            if let Some(slot) = c.to_usize().and_then(|c| dst.get_mut(c)) {
                *slot += v;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coo_to_csr_sorts_and_sums() {
        let row = [1i64, 0, 1, 1];
        let col = [2i64, 1, 0, 2];
        let val = [1.0f64, 2.0, 3.0, 4.0];
        let p = coo_to_csr(2, 3, &row, &col, Some(&val), true).unwrap();
        assert_eq!(p.crow, vec![0, 1, 3]);
        assert_eq!(p.col, vec![1, 0, 2]);
        assert_eq!(p.values, vec![2.0, 3.0, 5.0]);
        let p = coo_to_csr(2, 3, &row, &col, Some(&val), false).unwrap();
        assert_eq!(p.col, vec![1, 0, 2, 2]);
        assert_eq!(p.values, vec![2.0, 3.0, 1.0, 4.0]);
        assert!(coo_to_csr::<i64, f64>(2, 3, &[2], &[0], None, true).is_err());
    }

    #[test]
    fn positions_gather_the_values_of_coo_to_csr() {
        let row = [1i64, 0, 1, 1, 0];
        let col = [2i64, 1, 0, 2, 1];
        let val = [1.0f64, 2.0, 3.0, 4.0, 5.0];
        for sum in [true, false] {
            let p = coo_to_csr(2, 3, &row, &col, Some(&val), sum).unwrap();
            let (crow, c, pos) = coo_to_csr_positions(COO, 2, 3, &row, &col, sum).unwrap();
            assert_eq!((&crow, &c), (&p.crow, &p.col));
            let mut gathered = vec![0.0; c.len()];
            for (e, &k) in pos.iter().enumerate() {
                gathered[k as usize] += val[e];
            }
            assert_eq!(gathered, p.values);
        }
        let (_, _, pos) = coo_to_csr_positions(COO, 2, 3, &row, &col, true).unwrap();
        assert_eq!(pos, vec![2, 0, 1, 2, 0]);
    }

    #[test]
    fn edge_names_say_num_nodes() {
        let e = coo_to_csr_positions::<i64>(EDGE_INDEX, 3, 3, &[0], &[3], false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "edge_index[0][0] = 3 is out of range for 3 nodes (num_nodes)"
        );
        let e = coo_to_csr_named::<i64, f32>(EDGE_INDEX, 1 << 40, 1 << 40, &[], &[], None, false)
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "the row pointers of the aggregation matrix (num_nodes + 1) would need"
            )
        );
    }

    fn limit_what(e: SparseError) -> &'static str {
        match e {
            SparseError::LimitExceeded {
                what,
                unit: "entries",
                knob: "set_dim_buffer_limit",
                ..
            } => what,
            e => panic!("expected a dimension-buffer limit, got {e:?}"),
        }
    }

    #[test]
    fn huge_dimensions_with_few_entries_are_refused_not_allocated() {
        let big = 1usize << 40;
        // COO -> CSR: the row pointers follow nrows.
        let e = coo_to_csr::<i64, f32>(big, 2, &[5], &[1], Some(&[1.0]), true).unwrap_err();
        assert_eq!(
            limit_what(e),
            "the row pointers of the CSR matrix (nrows + 1)"
        );
        assert!(coo_to_csr::<i64, f32>(big, 2, &[], &[], None, false).is_err());
        // A wide matrix is fine as it is; its transpose's pointers follow ncols.
        let (crow, col) = ([0i64, 1], [big as i64 - 1]);
        let a = CsrPattern::try_new(1, big, &crow, &col).unwrap();
        let e = transpose(&a).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the row pointers of the transpose (ncols + 1) would need 1099511627777 entries, \
             over the limit of 2147483648; raise the limit (set_dim_buffer_limit) if this is \
             intended"
        );
        // Grouping edges by destination: num_nodes + 1 pointers.
        let e = crate::spmm::edges_by_destination::<i64>(&[0], &[3], 1, big).unwrap_err();
        assert_eq!(
            limit_what(e),
            "the row pointers of the edges grouped by destination (num_nodes + 1)"
        );
        let mut out = [0.0f32; 0];
        let e = crate::spmm::gather_scatter::<i64, f32>(
            &[],
            1,
            &[],
            &[],
            crate::Reduce::Sum,
            big,
            &mut out,
        );
        assert!(matches!(e, Err(SparseError::LimitExceeded { .. })));
        // Just under the limit in the other dimension: accepted.
        let (crow, col) = ([0i64, 1], [5i64]);
        let a = CsrPattern::try_new(1, 10, &crow, &col).unwrap();
        assert_eq!(transpose(&a).unwrap().0.len(), 11);
    }

    #[test]
    fn a_cancelled_ambient_token_stops_the_conversions() {
        let token = rt_view::cancel::CancelToken::new();
        token.cancel();
        let cancelled = |e: Result<()>| assert_eq!(e, Err(SparseError::Cancelled));
        let (row, col) = ([1i64, 0, 1], [2i64, 1, 0]);
        let (crow, pcol) = ([0i32, 2, 3], [0i32, 2, 1]);
        let a = CsrPattern::try_new(2, 3, &crow, &pcol).unwrap();
        rt_view::cancel::with_token(&token, || {
            cancelled(coo_to_csr::<i64, f32>(2, 3, &row, &col, None, true).map(drop));
            cancelled(coo_to_csr_positions(COO, 2, 3, &row, &col, false).map(drop));
            cancelled(transpose(&a).map(drop));
            cancelled(expand_rows(&a).map(drop));
            cancelled(to_dense(&a, &[1.0f32; 3], &mut [0.0; 6]));
            let grouped = crate::spmm::edges_by_destination(&row, &col, 3, 3);
            cancelled(grouped.map(drop));
        });
        // Without the token the same calls go through.
        assert!(transpose(&a).is_ok() && expand_rows(&a).is_ok());
    }

    #[test]
    fn transpose_round_trips() {
        let crow = [0i32, 2, 3, 5];
        let col = [0i32, 2, 1, 0, 2];
        let a = CsrPattern::try_new(3, 3, &crow, &col).unwrap();
        let (ct, colt, perm) = transpose(&a).unwrap();
        assert_eq!(ct, vec![0, 2, 3, 5]);
        assert_eq!(colt, vec![0, 2, 1, 0, 2]);
        assert_eq!(perm, vec![0, 3, 2, 1, 4]);
        let mut d = vec![0.0f32; 9];
        to_dense(&a, &[1.0, 2.0, 3.0, 4.0, 5.0], &mut d).unwrap();
        assert_eq!(d, vec![1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0, 5.0]);
        assert!(check_dense_size(1 << 20, 1 << 20, DEFAULT_MAX_DENSE_ELEMENTS).is_err());
    }
}

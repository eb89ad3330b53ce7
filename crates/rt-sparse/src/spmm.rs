//! Sparse x dense products: SpMV, SpMM `A @ X` with a sum/mean/max/min reduction over each
//! row's entries (GNN aggregation), and `gather_scatter` message passing over an edge list.
//!
//! Empty rows give 0 for every reduction, as in torch_scatter and PyG (not -inf/+inf).
//! Rows run in parallel in chunks of equal nnz; each row's result is accumulated in
//! fixed-width register blocks (`[V; W]`) over the feature dimension, which the compiler
//! vectorizes, and written once.

use std::marker::PhantomData;
use std::ops::Range;

use rt_simd::dispatch::{Isa, Kernel, dispatch};
use rt_simd::prefetch::prefetch_read;

use crate::error::{Result, SparseError, check_len};
use crate::parallel::{balanced_splits, for_each_chunk};
use crate::pattern::{CsrPattern, check_indices};
use crate::scalar::{Index, Scalar, fmadd};

/// How the products in a row are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Sum (`A @ X`).
    Sum,
    /// Sum divided by the number of stored entries in the row.
    Mean,
    /// Largest product; NaN propagates.
    Max,
    /// Smallest product; NaN propagates.
    Min,
}

impl Reduce {
    /// Parses `"sum"`, `"mean"`, `"max"`, `"min"` (also `"add"`, `"amax"`, `"amin"`).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "sum" | "add" => Ok(Reduce::Sum),
            "mean" => Ok(Reduce::Mean),
            "max" | "amax" => Ok(Reduce::Max),
            "min" | "amin" => Ok(Reduce::Min),
            _ => Err(SparseError::InvalidArgument {
                name: "reduce",
                reason: format!("{name:?}; expected one of \"sum\", \"mean\", \"max\", \"min\""),
            }),
        }
    }
}

/// One reduction, monomorphized into the row kernels.
pub(crate) trait Combine<V: Scalar>: Copy + Send + Sync + 'static {
    const INIT: V;
    /// Folds the product `w * x` into `acc`.
    fn step<S: Isa>(acc: V, w: V, x: V) -> V;
    /// Folds an unweighted `x` into `acc`.
    fn step1(acc: V, x: V) -> V;
}

#[derive(Clone, Copy)]
pub(crate) struct SumOp;
#[derive(Clone, Copy)]
struct MaxOp;
#[derive(Clone, Copy)]
struct MinOp;

impl<V: Scalar> Combine<V> for SumOp {
    const INIT: V = V::ZERO;
    #[inline(always)]
    fn step<S: Isa>(acc: V, w: V, x: V) -> V {
        fmadd::<S, V>(acc, w, x)
    }
    #[inline(always)]
    fn step1(acc: V, x: V) -> V {
        acc + x
    }
}

impl<V: Scalar> Combine<V> for MaxOp {
    const INIT: V = V::NEG_INFINITY;
    #[inline(always)]
    fn step<S: Isa>(acc: V, w: V, x: V) -> V {
        Self::step1(acc, w * x)
    }
    #[inline(always)]
    fn step1(acc: V, p: V) -> V {
        // A select, so it vectorizes; `p != p` carries a NaN product into the result.
        #[allow(clippy::eq_op)]
        if p > acc || p != p { p } else { acc }
    }
}

impl<V: Scalar> Combine<V> for MinOp {
    const INIT: V = V::INFINITY;
    #[inline(always)]
    fn step<S: Isa>(acc: V, w: V, x: V) -> V {
        Self::step1(acc, w * x)
    }
    #[inline(always)]
    fn step1(acc: V, p: V) -> V {
        #[allow(clippy::eq_op)]
        if p < acc || p != p { p } else { acc }
    }
}

/// Features `off..off + W` of row `c` of the row-major `x` (`d` wide); `None` only for an
/// index outside `x`, which validation rules out.
#[inline(always)]
fn gather<const W: usize, I: Index, V>(x: &[V], c: I, d: usize, off: usize) -> Option<&[V; W]> {
    let start = c.to_usize()?.checked_mul(d)?.checked_add(off)?;
    x.get(start..start.checked_add(W)?)?.try_into().ok()
}

/// How many stored entries ahead the x row is prefetched (`rt_simd::prefetch`). Measured
/// on the 200k-node power-law graph (d = 64, 2 threads): 8 to 32 are within noise of each
/// other.
const SPMM_PREFETCH_DISTANCE: usize = 16;

/// Prefetches the x row of the entry `SPMM_PREFETCH_DISTANCE` after entry `k` of `ahead`
/// (the stored entries from the current row's first on, so the lookahead runs on into the
/// next rows: most rows of a sparse graph are shorter than the distance). The first
/// feature block of a row does this; later blocks find the rows in cache.
#[inline(always)]
fn prefetch_row<I: Index, V>(ahead: &[I], k: usize, x: &[V], d: usize) {
    if let Some(&c) = ahead.get(k + SPMM_PREFETCH_DISTANCE) {
        let start = c.to_usize().unwrap_or(0).saturating_mul(d);
        prefetch_read(x.get(start..start.saturating_add(d)).unwrap_or(&[]));
    }
}

/// Accumulates features `off..off + W` of one row into registers and writes them to `dst`.
#[inline(always)]
fn block<const W: usize, S: Isa, I: Index, V: Scalar, C: Combine<V>>(
    cols: &[I],
    ahead: &[I],
    vals: Option<&[V]>,
    x: &[V],
    d: usize,
    off: usize,
    dst: &mut [V],
) {
    let mut acc = [C::INIT; W];
    // Plain code instead of closures in this loop: see `attention.rs`.
    match vals {
        Some(v) => {
            for (k, (&c, &w)) in cols.iter().zip(v).enumerate() {
                if off == 0 {
                    prefetch_row(ahead, k, x, d);
                }
                let Some(xs) = gather::<W, I, V>(x, c, d, off) else {
                    continue;
                };
                for (a, &xv) in acc.iter_mut().zip(xs) {
                    *a = C::step::<S>(*a, w, xv);
                }
            }
        }
        None => {
            for (k, &c) in cols.iter().enumerate() {
                if off == 0 {
                    prefetch_row(ahead, k, x, d);
                }
                let Some(xs) = gather::<W, I, V>(x, c, d, off) else {
                    continue;
                };
                for (a, &xv) in acc.iter_mut().zip(xs) {
                    *a = C::step1(*a, xv);
                }
            }
        }
    }
    for (o, a) in dst.iter_mut().zip(acc) {
        *o = a;
    }
}

/// One output row: blocks of 64/32/16/8 features, then one at a time for the rest.
/// `cols` are the row's stored columns; `ahead` the columns from the row's first entry on,
/// as far as the caller has them, for the prefetch lookahead.
#[inline(always)]
pub(crate) fn row<S: Isa, I: Index, V: Scalar, C: Combine<V>>(
    cols: &[I],
    ahead: &[I],
    vals: Option<&[V]>,
    x: &[V],
    d: usize,
    dst: &mut [V],
) {
    let mut off = 0;
    // 64 float32 fill 8 AVX2 registers; float64 blocks stop at 32 for the same footprint.
    if std::mem::size_of::<V>() == 4 {
        while off + 64 <= d {
            block::<64, S, I, V, C>(cols, ahead, vals, x, d, off, &mut dst[off..off + 64]);
            off += 64;
        }
    }
    while off + 32 <= d {
        block::<32, S, I, V, C>(cols, ahead, vals, x, d, off, &mut dst[off..off + 32]);
        off += 32;
    }
    while off + 16 <= d {
        block::<16, S, I, V, C>(cols, ahead, vals, x, d, off, &mut dst[off..off + 16]);
        off += 16;
    }
    while off + 8 <= d {
        block::<8, S, I, V, C>(cols, ahead, vals, x, d, off, &mut dst[off..off + 8]);
        off += 8;
    }
    while off < d {
        block::<1, S, I, V, C>(cols, ahead, vals, x, d, off, &mut dst[off..off + 1]);
        off += 1;
    }
}

/// The rows of one chunk, as a [`Kernel`] so that it is compiled for every instruction
/// set and run at the one the CPU has.
struct Rows<'a, 'p, I, V, C> {
    a: &'a CsrPattern<'p, I>,
    values: Option<&'a [V]>,
    x: &'a [V],
    d: usize,
    mean: bool,
    rows: Range<usize>,
    out: &'a mut [V],
    combine: PhantomData<C>,
}

impl<I: Index, V: Scalar, C: Combine<V>> Kernel for Rows<'_, '_, I, V, C> {
    type Output = ();
    #[inline(always)]
    fn run<S: Isa>(self) {
        let Rows {
            a,
            values,
            x,
            d,
            mean,
            rows,
            out,
            ..
        } = self;
        for (r, dst) in rows.zip(out.chunks_exact_mut(d.max(1))) {
            let range = a.row_range(r);
            let n = range.len();
            let cols = a.col().get(range.clone()).unwrap_or(&[]);
            let ahead = a.col().get(range.start..).unwrap_or(&[]);
            let vals = values.and_then(|v| v.get(range));
            row::<S, I, V, C>(cols, ahead, vals, x, d, dst);
            if n == 0 {
                dst.fill(V::ZERO);
            } else if mean {
                let inv = V::ONE / V::from_usize(n);
                dst.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }
}

fn run<I: Index, V: Scalar, C: Combine<V>>(
    a: &CsrPattern<'_, I>,
    values: Option<&[V]>,
    x: &[V],
    d: usize,
    mean: bool,
    out: &mut [V],
) -> Result<()> {
    let crow = a.crow();
    let prefix = |r: usize| crow.get(r).and_then(|v| v.to_usize()).unwrap_or(0) + r;
    let splits = balanced_splits(a.nrows(), prefix, d);
    for_each_chunk(&splits, out, d, |rows, out| {
        dispatch(Rows::<I, V, C> {
            a,
            values,
            x,
            d,
            mean,
            rows,
            out,
            combine: PhantomData,
        });
        Ok(())
    })
}

/// `out = reduce_j A[i, j] * X[j, :]` for every row `i`: `X` is `ncols x d` row-major,
/// `out` is `nrows x d`. `values = None` means every stored entry is 1 (an unweighted
/// graph). Empty rows give 0.
pub fn spmm<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    values: Option<&[V]>,
    x: &[V],
    d: usize,
    reduce: Reduce,
    out: &mut [V],
) -> Result<()> {
    if let Some(v) = values {
        check_len("values length (nnz)", a.nnz(), v.len())?;
    }
    check_len("dense operand rows x features", a.ncols() * d, x.len())?;
    check_len("output rows x features", a.nrows() * d, out.len())?;
    if d == 0 {
        return Ok(());
    }
    match reduce {
        Reduce::Sum => run::<I, V, SumOp>(a, values, x, d, false, out),
        Reduce::Mean => run::<I, V, SumOp>(a, values, x, d, true, out),
        Reduce::Max => run::<I, V, MaxOp>(a, values, x, d, false, out),
        Reduce::Min => run::<I, V, MinOp>(a, values, x, d, false, out),
    }
}

/// `y = A @ x` for a vector `x` (`ncols` entries) into `y` (`nrows`).
pub fn spmv<I: Index, V: Scalar>(
    a: &CsrPattern<'_, I>,
    values: Option<&[V]>,
    x: &[V],
    y: &mut [V],
) -> Result<()> {
    if let Some(v) = values {
        check_len("values length (nnz)", a.nnz(), v.len())?;
    }
    check_len("vector length (ncols)", a.ncols(), x.len())?;
    check_len("output length (nrows)", a.nrows(), y.len())?;
    let crow = a.crow();
    let prefix = |r: usize| crow.get(r).and_then(|v| v.to_usize()).unwrap_or(0) + r;
    let splits = balanced_splits(a.nrows(), prefix, 1);
    for_each_chunk(&splits, y, 1, |rows, o| {
        for (r, dst) in rows.zip(o.iter_mut()) {
            let range = a.row_range(r);
            let cols = a.col().get(range.clone()).unwrap_or(&[]);
            let gather = |c: &I| c.to_usize().and_then(|c| x.get(c)).copied();
            *dst = match values.and_then(|v| v.get(range)) {
                Some(vals) => cols
                    .iter()
                    .zip(vals)
                    .map(|(c, &v)| v * gather(c).unwrap_or(V::ZERO))
                    .sum(),
                None => cols.iter().map(|c| gather(c).unwrap_or(V::ZERO)).sum(),
            };
        }
        Ok(())
    })
}

/// Groups an edge list by destination: the CSR pattern (`num_nodes` rows, `num_src`
/// columns) whose row `n` lists the sources of the edges into `n`, in edge order.
pub fn edges_by_destination<I: Index>(
    src: &[I],
    dst: &[I],
    num_src: usize,
    num_nodes: usize,
) -> Result<(Vec<I>, Vec<I>)> {
    // Worded as the grouping by destination words it (`convert::EDGES`), so that both paths
    // of `gather_scatter` (with and without autograd) report a mismatch alike.
    check_len("src length (one entry per dst entry)", dst.len(), src.len())?;
    check_indices(src, num_src, "src", "source nodes (rows of x)")?;
    check_indices(dst, num_nodes, "dst", "nodes (num_nodes)")?;
    let ne = src.len();
    crate::convert::to_index::<I>(ne, "number of edges")?;
    // Sized by num_nodes, not by the edges: bounded before allocating.
    let what = "the row pointers of the edges grouped by destination (num_nodes + 1)";
    let nptr = crate::limits::check_pointer_buffer(what, num_nodes)?;
    let cancel = crate::parallel::Cancel::ambient();
    let mut counts = crate::limits::try_filled(what, nptr, 0usize)?;
    cancel.for_pieces(dst, |_, piece| {
        for &t in piece {
            if let Some(slot) = t.to_usize().and_then(|t| counts.get_mut(t + 1)) {
                *slot += 1;
            }
        }
    })?;
    for k in 1..counts.len() {
        counts[k] += counts[k - 1];
    }
    let mut crow = crate::limits::try_with_capacity(what, nptr)?;
    for &n in &counts {
        crow.push(crate::convert::to_index::<I>(n, "number of edges")?);
    }
    let mut col = crate::limits::try_with_capacity("the sources grouped by destination", ne)?;
    col.extend_from_slice(src);
    cancel.for_pieces(dst, |base, piece| {
        let sources = src.get(base..).unwrap_or(&[]);
        for (&s, &t) in sources.iter().zip(piece) {
            if let Some(pos) = t.to_usize().and_then(|t| counts.get_mut(t)) {
                if let Some(slot) = col.get_mut(*pos) {
                    *slot = s;
                }
                *pos += 1;
            }
        }
    })?;
    Ok((crow, col))
}

/// Message passing: `out[n] = reduce over edges e with dst[e] == n of x[src[e]]`, with
/// `x` of `num_src x d` and `out` of `num_nodes x d`. Nodes without incoming edges get 0.
/// The source count is `x.len() / d`, so `d` must be at least 1 (with `d = 0` every edge
/// is out of range); [`edges_by_destination`] + [`spmm`] take it explicitly.
pub fn gather_scatter<I: Index, V: Scalar>(
    x: &[V],
    d: usize,
    src: &[I],
    dst: &[I],
    reduce: Reduce,
    num_nodes: usize,
    out: &mut [V],
) -> Result<()> {
    let num_src = x.len().checked_div(d).unwrap_or(0);
    let (crow, col) = edges_by_destination(src, dst, num_src, num_nodes)?;
    let a = CsrPattern::try_new(num_nodes, num_src, &crow, &col)?;
    spmm::<I, V>(&a, None, x, d, reduce, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_ref(
        nrows: usize,
        crow: &[i64],
        col: &[i64],
        val: &[f64],
        x: &[f64],
        d: usize,
        reduce: Reduce,
    ) -> Vec<f64> {
        let mut out = vec![0.0; nrows * d];
        for r in 0..nrows {
            let (s, e) = (crow[r] as usize, crow[r + 1] as usize);
            for f in 0..d {
                let ps: Vec<f64> = (s..e)
                    .map(|k| val[k] * x[col[k] as usize * d + f])
                    .collect();
                out[r * d + f] = if ps.is_empty() {
                    0.0
                } else {
                    match reduce {
                        Reduce::Sum => ps.iter().sum(),
                        Reduce::Mean => ps.iter().sum::<f64>() / ps.len() as f64,
                        Reduce::Max => ps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        Reduce::Min => ps.iter().copied().fold(f64::INFINITY, f64::min),
                    }
                };
            }
        }
        out
    }

    #[test]
    fn matches_a_dense_reference_for_every_width() {
        let crow = [0i64, 3, 3, 5, 9];
        let col = [0i64, 2, 2, 1, 3, 0, 1, 2, 3];
        let val: Vec<f64> = (0..9).map(|k| (k as f64 - 3.5) * 0.7).collect();
        let a = CsrPattern::try_new(4, 4, &crow, &col).unwrap();
        for d in [1usize, 3, 8, 13, 16, 40, 64, 100, 130] {
            let x: Vec<f64> = (0..4 * d).map(|k| ((k * 37 % 11) as f64) - 5.0).collect();
            for reduce in [Reduce::Sum, Reduce::Mean, Reduce::Max, Reduce::Min] {
                let mut out = vec![f64::NAN; 4 * d];
                spmm(&a, Some(&val), &x, d, reduce, &mut out).unwrap();
                let want = dense_ref(4, &crow, &col, &val, &x, d, reduce);
                for (g, w) in out.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-9, "{reduce:?} d={d}: {g} vs {w}");
                }
            }
        }
        let mut y = vec![0.0; 4];
        spmv(&a, Some(&val), &[1.0, 2.0, 3.0, 4.0], &mut y).unwrap();
        let want = dense_ref(4, &crow, &col, &val, &[1.0, 2.0, 3.0, 4.0], 1, Reduce::Sum);
        assert_eq!(y, want);
    }

    #[test]
    fn nan_propagates_through_max() {
        let crow = [0i32, 2];
        let col = [0i32, 1];
        let a = CsrPattern::try_new(1, 2, &crow, &col).unwrap();
        let mut out = [0.0f32];
        spmm(&a, None, &[f32::NAN, 1.0], 1, Reduce::Max, &mut out).unwrap();
        assert!(out[0].is_nan());
        spmm(&a, None, &[1.0, f32::NAN], 1, Reduce::Min, &mut out).unwrap();
        assert!(out[0].is_nan());
    }

    #[test]
    fn gather_scatter_groups_by_destination() {
        let x = [1.0f32, 10.0, 2.0, 20.0, 3.0, 30.0];
        let src = [0i64, 1, 2, 2];
        let dst = [1i64, 1, 0, 1];
        let mut out = vec![0.0f32; 3 * 2];
        gather_scatter(&x, 2, &src, &dst, Reduce::Sum, 3, &mut out).unwrap();
        assert_eq!(out, vec![3.0, 30.0, 6.0, 60.0, 0.0, 0.0]);
        gather_scatter(&x, 2, &src, &dst, Reduce::Max, 3, &mut out).unwrap();
        assert_eq!(out, vec![3.0, 30.0, 3.0, 30.0, 0.0, 0.0]);
        let e = gather_scatter(&x, 2, &[0i64], &[3], Reduce::Sum, 3, &mut out).unwrap_err();
        assert!(e.is_index_error());
    }
}

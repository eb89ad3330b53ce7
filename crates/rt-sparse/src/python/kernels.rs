//! Entry points of the kernels: validate the pattern, check the dense operands against it,
//! release the GIL, run (long calls so that Ctrl-C stops them: `convert::run_kernel`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rt_view::DType;
use rt_view::python::{Access, PyTensor, torch_empty};

use super::convert::{
    Arg, EXPAND_ENTRY_COST, PATTERN_DRAW_COST, PATTERN_ENTRY_COST, SPGEMM_FLOP_COST,
    TRANSPOSE_ENTRY_COST, dispatch, fill_new, index_dtype, run_kernel, value_dtype, vec_to_torch,
};
use super::matrix::pattern;
use crate::attention::{self, AttentionShape};
use crate::error::check_len;
use crate::parallel::{Cancel, POLL_WORK};
use crate::pattern::{CSR, Order};
use crate::spmm::Reduce;
use crate::{patterns, sddmm as sddmm_k, softmax as softmax_k, spgemm as spgemm_k, spmm as spmm_k};

/// `ValueError` unless dense operand `a` has `rows` rows; returns its feature width.
fn rows_of(op: &str, a: &Arg<'_>, rows: usize, what: &str) -> PyResult<usize> {
    let shape = a.shape();
    if shape.first() != Some(&rows) || shape.len() > 2 {
        return Err(PyValueError::new_err(format!(
            "{op}: {} has shape {shape:?}, expected {rows} rows ({what})",
            a.name
        )));
    }
    Ok(shape.get(1).copied().unwrap_or(1))
}

/// `A @ X` with a reduction per row; `X` 1-D gives a vector.
#[pyfunction]
#[pyo3(signature = (crow, col, values, x, shape, reduce = "sum"))]
pub(crate) fn spmm<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    values: Option<&Bound<'py, PyAny>>,
    x: &Bound<'py, PyAny>,
    shape: (i64, i64),
    reduce: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "spmm";
    let reduce = Reduce::from_name(reduce)?;
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let x = Arg::new("x", x)?;
    let values = values.map(|v| Arg::new("values", v)).transpose()?;
    let it = index_dtype(op, &[&crow, &col])?;
    let vt = match &values {
        Some(v) => value_dtype(op, &[v, &x])?,
        None => value_dtype(op, &[&x])?,
    };
    dispatch!(it, vt, |I, V| {
        let (p, c) = (crow.slice::<I>()?, col.slice::<I>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        let d = rows_of(op, &x, a.ncols(), "the matrix's column count")?;
        let xs = x.slice::<V>()?;
        let vals = values.as_ref().map(|v| v.slice::<V>()).transpose()?;
        let vals = vals.as_deref();
        let work = a.nnz().saturating_mul(d);
        if x.shape().len() == 1 {
            fill_new::<V, _>(py, &[a.nrows()], work, |out| match reduce {
                Reduce::Sum => spmm_k::spmv(&a, vals, &xs, out),
                _ => spmm_k::spmm(&a, vals, &xs, 1, reduce, out),
            })
        } else {
            fill_new::<V, _>(py, &[a.nrows(), d], work, |out| {
                spmm_k::spmm(&a, vals, &xs, d, reduce, out)
            })
        }
    })
}

/// `scale * (Q @ K^T)` at the stored positions of the pattern.
#[pyfunction]
#[pyo3(signature = (crow, col, q, k, shape, scale = 1.0))]
pub(crate) fn sddmm<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    shape: (i64, i64),
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "sddmm";
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let q = Arg::new("q", q)?;
    let k = Arg::new("k", k)?;
    let it = index_dtype(op, &[&crow, &col])?;
    let vt = value_dtype(op, &[&q, &k])?;
    q.expect_ndim(op, 2)?;
    k.expect_ndim(op, 2)?;
    dispatch!(it, vt, |I, V| {
        let (p, c) = (crow.slice::<I>()?, col.slice::<I>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        let d = rows_of(op, &q, a.nrows(), "the matrix's row count")?;
        let dk = rows_of(op, &k, a.ncols(), "the matrix's column count")?;
        if dk != d {
            return Err(PyValueError::new_err(format!(
                "{op}: q has {d} features but k has {dk}"
            )));
        }
        let (qs, ks) = (q.slice::<V>()?, k.slice::<V>()?);
        let scale = <V as crate::Scalar>::from_f64(scale);
        fill_new::<V, _>(py, &[a.nnz()], a.nnz().saturating_mul(d), |out| {
            sddmm_k::sddmm(&a, &qs, &ks, d, scale, out)
        })
    })
}

/// Softmax of the values within each row.
#[pyfunction]
pub(crate) fn softmax<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    shape: (i64, i64),
) -> PyResult<Bound<'py, PyAny>> {
    let op = "softmax";
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let values = Arg::new("values", values)?;
    let it = index_dtype(op, &[&crow, &col])?;
    let vt = value_dtype(op, &[&values])?;
    dispatch!(it, vt, |I, V| {
        let (p, c, v) = (crow.slice::<I>()?, col.slice::<I>()?, values.slice::<V>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        // An exponential costs about 8 multiply-adds (the kernel's unit for splitting).
        fill_new::<V, _>(py, &[a.nnz()], a.nnz().saturating_mul(8), |out| {
            softmax_k::sparse_softmax(&a, &v, out)
        })
    })
}

/// The gradient of [`softmax`] given its output `y` and the incoming gradient.
#[pyfunction]
pub(crate) fn softmax_backward<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    shape: (i64, i64),
) -> PyResult<Bound<'py, PyAny>> {
    let op = "softmax_backward";
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let y = Arg::new("y", y)?;
    let grad = Arg::new("grad", grad)?;
    let it = index_dtype(op, &[&crow, &col])?;
    let vt = value_dtype(op, &[&y, &grad])?;
    dispatch!(it, vt, |I, V| {
        let (p, c) = (crow.slice::<I>()?, col.slice::<I>()?);
        let (ys, gs) = (y.slice::<V>()?, grad.slice::<V>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        fill_new::<V, _>(py, &[a.nnz()], a.nnz(), |out| {
            softmax_k::sparse_softmax_backward(&a, &ys, &gs, out)
        })
    })
}

/// `A @ B` for two CSR matrices: `(crow, col, values)` of the product, columns sorted
/// within rows when `sort_indices`.
#[pyfunction]
#[pyo3(signature = (a_crow, a_col, a_values, a_shape, b_crow, b_col, b_values, b_shape, max_nnz, sort_indices = false))]
#[allow(clippy::too_many_arguments)] // two matrices of three arrays and a shape each
pub(crate) fn spgemm<'py>(
    py: Python<'py>,
    a_crow: &Bound<'py, PyAny>,
    a_col: &Bound<'py, PyAny>,
    a_values: &Bound<'py, PyAny>,
    a_shape: (i64, i64),
    b_crow: &Bound<'py, PyAny>,
    b_col: &Bound<'py, PyAny>,
    b_values: &Bound<'py, PyAny>,
    b_shape: (i64, i64),
    max_nnz: usize,
    sort_indices: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "spgemm";
    let ac = Arg::new("A.crow", a_crow)?;
    let ai = Arg::new("A.col", a_col)?;
    let av = Arg::new("A.values", a_values)?;
    let bc = Arg::new("B.crow", b_crow)?;
    let bi = Arg::new("B.col", b_col)?;
    let bv = Arg::new("B.values", b_values)?;
    let it = index_dtype(op, &[&ac, &ai, &bc, &bi])?;
    let vt = value_dtype(op, &[&av, &bv])?;
    let order = if sort_indices {
        spgemm_k::ColumnOrder::Sorted
    } else {
        spgemm_k::ColumnOrder::Unsorted
    };
    dispatch!(it, vt, |I, V| {
        let (acs, ais, avs) = (ac.slice::<I>()?, ai.slice::<I>()?, av.slice::<V>()?);
        let (bcs, bis, bvs) = (bc.slice::<I>()?, bi.slice::<I>()?, bv.slice::<V>()?);
        let a = pattern(py, CSR, a_shape, &acs, &ais, Order::Any)?;
        let b = pattern(py, CSR, b_shape, &bcs, &bis, Order::Any)?;
        if a.ncols() != b.nrows() {
            return Err(PyValueError::new_err(format!(
                "{op}: shapes do not chain: A is {} x {}, B is {} x {}",
                a.nrows(),
                a.ncols(),
                b.nrows(),
                b.ncols()
            )));
        }
        // The symbolic phase's work is only known once it ran: estimated as nnz(A) times
        // B's mean row length (power-law rows make it larger), at least the inputs' size.
        let mean_b_row = b.nnz() / b.nrows().max(1);
        let guess = a.nnz().saturating_mul(mean_b_row).max(a.nnz() + b.nnz());
        let plan = run_kernel(py, guess.saturating_mul(SPGEMM_FLOP_COST), || {
            spgemm_k::SpgemmPlan::new(&a, &b, max_nnz)
        })?;
        let nnz = plan.nnz();
        // The result goes straight into torch-owned tensors: no copy of the (possibly
        // huge) product.
        let col = torch_empty(py, &[nnz], <I as rt_view::Element>::DTYPE)?;
        let values = torch_empty(py, &[nnz], <V as rt_view::Element>::DTYPE)?;
        {
            let mut col_t = PyTensor::extract(&col, Access::Write)?;
            let mut val_t = PyTensor::extract(&values, Access::Write)?;
            let mut col_v = col_t.view_mut::<I>()?;
            let mut val_v = val_t.view_mut::<V>()?;
            let (Some(cs), Some(vs)) = (col_v.as_slice_mut(), val_v.as_slice_mut()) else {
                return Err(PyValueError::new_err(
                    "torch.empty returned a strided tensor",
                ));
            };
            let work = plan.flops().max(nnz).saturating_mul(SPGEMM_FLOP_COST);
            run_kernel(py, work, || plan.numeric(&a, &avs, &b, &bvs, order, cs, vs))?;
        }
        let crow = vec_to_torch(py, plan.crow(), &[plan.crow().len()])?;
        Ok((crow, col, values).into_pyobject(py)?.into_any())
    })
}

/// Fused `softmax(scale * Q K^T at the pattern) @ V`.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // pattern arrays, three operands, shape and scale
pub(crate) fn sparse_attention<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    k: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    shape: (i64, i64),
    scale: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "sparse_attention";
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let q = Arg::new("q", q)?;
    let k = Arg::new("k", k)?;
    let v = Arg::new("v", v)?;
    let it = index_dtype(op, &[&crow, &col])?;
    let vt = value_dtype(op, &[&q, &k, &v])?;
    for a in [&q, &k, &v] {
        a.expect_ndim(op, 2)?;
    }
    dispatch!(it, vt, |I, V| {
        let (p, c) = (crow.slice::<I>()?, col.slice::<I>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        let d = rows_of(op, &q, a.nrows(), "the pattern's row count")?;
        let dk = rows_of(op, &k, a.ncols(), "the pattern's column count")?;
        let dv = rows_of(op, &v, a.ncols(), "the pattern's column count")?;
        if dk != d {
            return Err(PyValueError::new_err(format!(
                "{op}: q has {d} features but k has {dk}"
            )));
        }
        let (qs, ks, vs) = (q.slice::<V>()?, k.slice::<V>()?, v.slice::<V>()?);
        let scale = <V as crate::Scalar>::from_f64(scale);
        let work = a.nnz().saturating_mul(d + dv);
        fill_new::<V, _>(py, &[a.nrows(), dv], work, |out| {
            attention::sparse_attention(&a, &qs, &ks, &vs, AttentionShape { d, dv }, scale, out)
        })
    })
}

/// Message passing over an edge list: `out[n] = reduce_{e: dst[e] = n} x[src[e]]`.
#[pyfunction]
#[pyo3(signature = (x, src, dst, reduce, num_nodes))]
pub(crate) fn gather_scatter<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    src: &Bound<'py, PyAny>,
    dst: &Bound<'py, PyAny>,
    reduce: &str,
    num_nodes: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "gather_scatter";
    let reduce = Reduce::from_name(reduce)?;
    let x = Arg::new("x", x)?;
    let src = Arg::new("src", src)?;
    let dst = Arg::new("dst", dst)?;
    src.expect_ndim(op, 1)?;
    dst.expect_ndim(op, 1)?;
    x.expect_ndim(op, 2)?;
    let it = index_dtype(op, &[&src, &dst])?;
    let vt = value_dtype(op, &[&x])?;
    dispatch!(it, vt, |I, V| {
        let n = super::matrix::check_num_nodes::<I>(num_nodes)?;
        let (n_src, d) = (x.shape()[0], x.shape()[1]);
        let (xs, ss, ds) = (x.slice::<V>()?, src.slice::<I>()?, dst.slice::<I>()?);
        // Grouped here rather than in `spmm_k::gather_scatter` so that the source count
        // comes from x's shape (it cannot be recovered from the data when d = 0).
        let (crow, col) = run_kernel(py, ss.len().saturating_mul(TRANSPOSE_ENTRY_COST), || {
            spmm_k::edges_by_destination(&ss, &ds, n_src, n)
        })?;
        let a = pattern(py, CSR, (n as i64, n_src as i64), &crow, &col, Order::Any)?;
        fill_new::<V, _>(py, &[n, d], ss.len().saturating_mul(d), |out| {
            spmm_k::spmm(&a, None, &xs, d, reduce, out)
        })
    })
}

/// `(crow, col)` of a built pattern as new tensors, copied in pieces through
/// [`fill_new`] (so that Ctrl-C stops the copy of a huge pattern too).
fn pattern_to_torch<'py>(
    py: Python<'py>,
    p: patterns::PatternParts,
) -> PyResult<Bound<'py, PyAny>> {
    let copy = |src: &[i64]| {
        let work = src.len().saturating_mul(EXPAND_ENTRY_COST);
        fill_new::<i64, _>(py, &[src.len()], work, |out| copy_polled(src, out))
    };
    Ok((copy(&p.crow)?, copy(&p.col)?)
        .into_pyobject(py)?
        .into_any())
}

/// Copies `src` into `out` (of the same length) piece by piece, checking the ambient
/// cancel token before each.
fn copy_polled(src: &[i64], out: &mut [i64]) -> crate::Result<()> {
    check_len("the copied pattern", src.len(), out.len())?;
    let cancel = Cancel::ambient();
    for (s, o) in src.chunks(POLL_WORK).zip(out.chunks_mut(POLL_WORK)) {
        cancel.check()?;
        o.copy_from_slice(s);
    }
    Ok(())
}

/// Runs pattern builder `f`, which writes about `entries` entries and makes `draws`
/// random block draws, through [`run_kernel`] (the builders poll the ambient token).
fn build_pattern<F>(
    py: Python<'_>,
    entries: usize,
    draws: usize,
    f: F,
) -> PyResult<patterns::PatternParts>
where
    F: FnOnce() -> crate::Result<patterns::PatternParts> + Send,
{
    let work = entries
        .saturating_mul(PATTERN_ENTRY_COST)
        .saturating_add(draws.saturating_mul(PATTERN_DRAW_COST));
    run_kernel(py, work, f)
}

/// `(crow, col)` of a sliding-window pattern.
#[pyfunction]
pub(crate) fn sliding_window(
    py: Python<'_>,
    n: usize,
    window: usize,
) -> PyResult<Bound<'_, PyAny>> {
    // At most window + 1 keys per row.
    let entries = n.saturating_mul(window.saturating_add(1));
    let p = build_pattern(py, entries, 0, || patterns::sliding_window(n, window))?;
    pattern_to_torch(py, p)
}

/// `(crow, col)` of a Longformer pattern; tokens `0..num_leading` are global as well.
#[pyfunction]
#[pyo3(signature = (n, window, global_tokens, num_leading = 0))]
pub(crate) fn longformer(
    py: Python<'_>,
    n: usize,
    window: usize,
    global_tokens: Vec<usize>,
    num_leading: usize,
) -> PyResult<Bound<'_, PyAny>> {
    // Every row holds at most its window and the global tokens; a global token's row and
    // column hold at most n entries each.
    let global = num_leading.saturating_add(global_tokens.len());
    let per_row = window
        .saturating_add(1)
        .saturating_add(global.saturating_mul(2));
    let entries = n.saturating_mul(per_row);
    let p = build_pattern(py, entries, 0, || {
        patterns::longformer_with_leading(n, window, num_leading, &global_tokens)
    })?;
    pattern_to_torch(py, p)
}

/// `(crow, col)` of a BigBird pattern.
#[pyfunction]
pub(crate) fn bigbird(
    py: Python<'_>,
    n: usize,
    block: usize,
    num_random: usize,
    num_global: usize,
    seed: u64,
) -> PyResult<Bound<'_, PyAny>> {
    // A row sees at most its 3 neighbouring blocks, the global and the random ones (all
    // n keys for a global row); every non-global block draws twice (count, then build).
    let blocks = n.div_ceil(block.max(1));
    let seen = num_random
        .saturating_add(num_global.saturating_mul(2))
        .saturating_add(3);
    let entries = n.saturating_mul(block.saturating_mul(seen).min(n));
    let draws = blocks
        .saturating_mul(num_random.min(blocks))
        .saturating_mul(2);
    let p = build_pattern(py, entries, draws, || {
        patterns::bigbird(n, block, num_random, num_global, seed)
    })?;
    pattern_to_torch(py, p)
}

#[allow(dead_code)]
const _: DType = DType::Int64;

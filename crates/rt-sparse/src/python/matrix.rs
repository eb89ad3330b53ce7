//! Entry points for validation and layout conversions of the Python matrix classes.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rt_view::DType;

use super::convert::{
    Arg, COO_ENTRY_COST, EXPAND_ENTRY_COST, SORTED_ENTRY_COST, TRANSPOSE_ENTRY_COST,
    VALIDATE_ENTRY_COST, dispatch, dispatch_index, fill_new, index_dtype, run_kernel, value_dtype,
    vec_to_torch,
};
use crate::convert::{self, CooNames};
use crate::error::SparseError;
use crate::error::check_len;
use crate::pattern::{CSC, CSR, CsrPattern, Names, Order, check_coo, check_shape};
use crate::scalar::Index;

/// Validates `ptr`/`idx` as a compressed pattern with `nmajor` pointers' rows over
/// `nminor` indexed entries, through [`run_kernel`]: with the GIL released, and so that
/// Ctrl-C stops it for very long arrays (the checks poll the ambient token).
pub(crate) fn pattern<'a, I: Index>(
    py: Python<'_>,
    names: Names,
    shape: (i64, i64),
    ptr: &'a [I],
    idx: &'a [I],
    order: Order,
) -> PyResult<CsrPattern<'a, I>> {
    let (nmajor, nminor) = check_shape::<I>(shape.0, shape.1)?;
    let per_entry = match order {
        Order::Any => VALIDATE_ENTRY_COST,
        Order::SortedUnique => VALIDATE_ENTRY_COST + SORTED_ENTRY_COST,
    };
    let work = (ptr.len().saturating_mul(VALIDATE_ENTRY_COST))
        .saturating_add(idx.len().saturating_mul(per_entry));
    run_kernel(py, work, || {
        CsrPattern::try_new_named(names, nmajor, nminor, ptr, idx, order)
    })
}

fn layout_names(layout: &str) -> PyResult<Names> {
    match layout {
        "csr" => Ok(CSR),
        "csc" => Ok(CSC),
        _ => Err(PyValueError::new_err(format!(
            "layout must be \"csr\" or \"csc\", got {layout:?}"
        ))),
    }
}

/// Validates a CSR (or, with `layout="csc"`, CSC) matrix; raises naming the first
/// violation. For CSC, `shape` is still `(nrows, ncols)`.
#[pyfunction]
#[pyo3(signature = (ptr, idx, values, shape, *, sorted = false, layout = "csr"))]
pub(crate) fn check_compressed(
    py: Python<'_>,
    ptr: &Bound<'_, PyAny>,
    idx: &Bound<'_, PyAny>,
    values: Option<&Bound<'_, PyAny>>,
    shape: (i64, i64),
    sorted: bool,
    layout: &str,
) -> PyResult<()> {
    let names = layout_names(layout)?;
    let op = "check";
    let ptr = Arg::new(names.ptr, ptr)?;
    let idx = Arg::new(names.idx, idx)?;
    ptr.expect_ndim(op, 1)?;
    idx.expect_ndim(op, 1)?;
    let it = index_dtype(op, &[&ptr, &idx])?;
    let values = values.map(|v| Arg::new("values", v)).transpose()?;
    let vt = match &values {
        Some(v) => {
            v.expect_ndim(op, 1)?;
            value_dtype(op, &[v])?
        }
        None => DType::Float32,
    };
    let order = if sorted {
        Order::SortedUnique
    } else {
        Order::Any
    };
    let major_shape = if names == CSC {
        (shape.1, shape.0)
    } else {
        shape
    };
    dispatch!(it, vt, |I, V| {
        let _ = std::marker::PhantomData::<V>;
        let p = ptr.slice::<I>()?;
        let i = idx.slice::<I>()?;
        // Shape first, so a bad shape is reported as such.
        check_shape::<I>(shape.0, shape.1)?;
        pattern(py, names, major_shape, &p, &i, order)?;
        if let Some(v) = &values {
            check_len(
                "values length (one per stored entry)",
                i.len(),
                v.shape()[0],
            )?;
        }
        Ok(())
    })
}

/// Validates COO arrays.
#[pyfunction]
pub(crate) fn check_coo_arrays(
    py: Python<'_>,
    row: &Bound<'_, PyAny>,
    col: &Bound<'_, PyAny>,
    values: Option<&Bound<'_, PyAny>>,
    shape: (i64, i64),
) -> PyResult<()> {
    let op = "check";
    let row = Arg::new("row", row)?;
    let col = Arg::new("col", col)?;
    row.expect_ndim(op, 1)?;
    col.expect_ndim(op, 1)?;
    let it = index_dtype(op, &[&row, &col])?;
    let values = values.map(|v| Arg::new("values", v)).transpose()?;
    if let Some(v) = &values {
        v.expect_ndim(op, 1)?;
        value_dtype(op, &[v])?;
    }
    let nvalues = values.as_ref().map(|v| v.shape()[0]);
    dispatch_index!(it, |I| {
        let (nr, nc) = check_shape::<I>(shape.0, shape.1)?;
        let (r, c) = (row.slice::<I>()?, col.slice::<I>()?);
        let work = (r.len().saturating_add(c.len())).saturating_mul(VALIDATE_ENTRY_COST);
        run_kernel(py, work, || check_coo(nr, nc, &r, &c, nvalues))?;
        Ok(())
    })
}

fn coo_names(source: &str) -> PyResult<CooNames> {
    match source {
        "coo" => Ok(convert::COO),
        "edge_index" => Ok(convert::EDGE_INDEX),
        "gather_scatter" => Ok(convert::EDGES),
        _ => Err(PyValueError::new_err(format!(
            "source must be \"coo\", \"edge_index\" or \"gather_scatter\", got {source:?}"
        ))),
    }
}

/// `num_nodes` as a dimension of index type `I`, or an error that names it.
pub(crate) fn check_num_nodes<I: Index>(num_nodes: i64) -> Result<usize, SparseError> {
    let bad = |reason: String| SparseError::InvalidArgument {
        name: "num_nodes",
        reason,
    };
    if num_nodes < 0 {
        return Err(bad(format!("{num_nodes} is negative")));
    }
    let max = I::MAX as i64;
    if num_nodes > max {
        return Err(bad(format!(
            "{num_nodes} exceeds the largest {} index ({max})",
            I::DTYPE
        )));
    }
    usize::try_from(num_nodes).map_err(|_| bad(format!("{num_nodes} does not fit in memory")))
}

/// The shape of a COO -> CSR conversion, with errors naming `num_nodes` for edges.
fn coo_shape<I: Index>(names: CooNames, shape: (i64, i64)) -> Result<(usize, usize), SparseError> {
    if names == convert::COO {
        return check_shape::<I>(shape.0, shape.1);
    }
    let n = check_num_nodes::<I>(shape.0)?;
    let (_, ncols) = check_shape::<I>(0, shape.1)?;
    Ok((n, ncols))
}

/// COO arrays to sorted CSR arrays `(crow, col, values)`, summing duplicates if asked.
/// `source` names the arrays in errors: `"coo"`, `"edge_index"` (a `[2, E]` edge index,
/// `shape = (num_nodes, num_nodes)`) or `"gather_scatter"` (`dst`, `src`).
#[pyfunction]
#[pyo3(signature = (row, col, values, shape, sum_duplicates = true, *, source = "coo"))]
pub(crate) fn coo_to_csr<'py>(
    py: Python<'py>,
    row: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    shape: (i64, i64),
    sum_duplicates: bool,
    source: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "from_coo";
    let names = coo_names(source)?;
    let row = Arg::new(names.row, row)?;
    let col = Arg::new(names.col, col)?;
    let values = Arg::new("values", values)?;
    for a in [&row, &col, &values] {
        a.expect_ndim(op, 1)?;
    }
    let it = index_dtype(op, &[&row, &col])?;
    let vt = value_dtype(op, &[&values])?;
    dispatch!(it, vt, |I, V| {
        let (nr, nc) = coo_shape::<I>(names, shape)?;
        let (r, c, v) = (row.slice::<I>()?, col.slice::<I>()?, values.slice::<V>()?);
        let work = r.len().saturating_mul(COO_ENTRY_COST);
        let parts = run_kernel(py, work, || {
            convert::coo_to_csr_named(names, nr, nc, &r, &c, Some(&v), sum_duplicates)
        })?;
        let crow = vec_to_torch(py, &parts.crow, &[parts.crow.len()])?;
        let colt = vec_to_torch(py, &parts.col, &[parts.col.len()])?;
        let vals = vec_to_torch(py, &parts.values, &[parts.values.len()])?;
        Ok((crow, colt, vals).into_pyobject(py)?.into_any())
    })
}

/// The pattern of [`coo_to_csr`] and each input entry's position in it:
/// `(crow, col, pos)`, all of the index dtype; the values are
/// `zeros(nnz).index_add(0, pos, values)` (differentiable in torch).
#[pyfunction]
#[pyo3(signature = (row, col, shape, sum_duplicates = true, *, source = "coo"))]
pub(crate) fn coo_to_csr_positions<'py>(
    py: Python<'py>,
    row: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    shape: (i64, i64),
    sum_duplicates: bool,
    source: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "from_coo";
    let names = coo_names(source)?;
    let row = Arg::new(names.row, row)?;
    let col = Arg::new(names.col, col)?;
    for a in [&row, &col] {
        a.expect_ndim(op, 1)?;
    }
    let it = index_dtype(op, &[&row, &col])?;
    dispatch_index!(it, |I| {
        let (nr, nc) = coo_shape::<I>(names, shape)?;
        let (r, c) = (row.slice::<I>()?, col.slice::<I>()?);
        let work = r.len().saturating_mul(COO_ENTRY_COST);
        let (crow, colv, pos) = run_kernel(py, work, || {
            convert::coo_to_csr_positions(names, nr, nc, &r, &c, sum_duplicates)
        })?;
        Ok((
            vec_to_torch(py, &crow, &[crow.len()])?,
            vec_to_torch(py, &colv, &[colv.len()])?,
            vec_to_torch(py, &pos, &[pos.len()])?,
        )
            .into_pyobject(py)?
            .into_any())
    })
}

/// The transpose of a CSR pattern: `(crow_t, col_t, perm)` with `values_t = values[perm]`.
/// `result` says what the caller makes of it, for the message when the result's pointer
/// array (`ncols + 1` entries) passes the limit: `"transpose"`, `"csc"` (`to_csc`) or
/// `"csr"` (a CSC matrix's `to_csr`, whose arrays are the CSR arrays of the transpose).
#[pyfunction]
#[pyo3(signature = (crow, col, shape, *, result = "transpose"))]
pub(crate) fn transpose<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    shape: (i64, i64),
    result: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "transpose";
    let what = match result {
        "transpose" => "the row pointers of the transpose (ncols + 1)",
        "csc" => "the column pointers of the CSC matrix (ncols + 1)",
        "csr" => "the row pointers of the CSR matrix (nrows + 1)",
        _ => {
            return Err(PyValueError::new_err(format!(
                "result must be \"transpose\", \"csc\" or \"csr\", got {result:?}"
            )));
        }
    };
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let it = index_dtype(op, &[&crow, &col])?;
    dispatch_index!(it, |I| {
        let (p, c) = (crow.slice::<I>()?, col.slice::<I>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        let work = c.len().saturating_mul(TRANSPOSE_ENTRY_COST);
        let (ct, colt, perm) = run_kernel(py, work, || convert::transpose_named(&a, what))?;
        Ok((
            vec_to_torch(py, &ct, &[ct.len()])?,
            vec_to_torch(py, &colt, &[colt.len()])?,
            vec_to_torch(py, &perm, &[perm.len()])?,
        )
            .into_pyobject(py)?
            .into_any())
    })
}

/// The row index of every stored entry of a CSR pattern (CSR -> COO).
#[pyfunction]
pub(crate) fn expand_rows<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    shape: (i64, i64),
) -> PyResult<Bound<'py, PyAny>> {
    let op = "to_coo";
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let it = index_dtype(op, &[&crow, &col])?;
    dispatch_index!(it, |I| {
        let (p, c) = (crow.slice::<I>()?, col.slice::<I>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        let rows = run_kernel(py, c.len().saturating_mul(EXPAND_ENTRY_COST), || {
            convert::expand_rows(&a)
        })?;
        vec_to_torch(py, &rows, &[rows.len()])
    })
}

/// The dense matrix of a CSR matrix; refused above `max_elements` elements.
#[pyfunction]
pub(crate) fn to_dense<'py>(
    py: Python<'py>,
    crow: &Bound<'py, PyAny>,
    col: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    shape: (i64, i64),
    max_elements: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let op = "to_dense";
    let crow = Arg::new("crow", crow)?;
    let col = Arg::new("col", col)?;
    let values = Arg::new("values", values)?;
    let it = index_dtype(op, &[&crow, &col])?;
    let vt = value_dtype(op, &[&values])?;
    dispatch!(it, vt, |I, V| {
        let (p, c, v) = (crow.slice::<I>()?, col.slice::<I>()?, values.slice::<V>()?);
        let a = pattern(py, CSR, shape, &p, &c, Order::Any)?;
        let n = convert::check_dense_size(a.nrows(), a.ncols(), max_elements)?;
        check_len("values length (one per stored entry)", a.nnz(), v.len())?;
        fill_new::<V, _>(py, &[a.nrows(), a.ncols()], n, |out| {
            convert::to_dense(&a, &v, out)
        })
    })
}

/// Sets the process-wide cap on the entries of a buffer sized by a dimension.
#[pyfunction]
pub(crate) fn set_dim_buffer_limit(entries: usize) {
    crate::limits::set_dim_buffer_limit(entries);
}

/// The process-wide cap on the entries of a buffer sized by a dimension.
#[pyfunction]
pub(crate) fn get_dim_buffer_limit() -> usize {
    crate::limits::dim_buffer_limit()
}

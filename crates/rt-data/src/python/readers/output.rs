//! `read_all`: a whole source into torch tensors, with the GIL released and Ctrl-C honoured.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use rt_view::cancel::CancelToken;
use rt_view::python::{owned_to_torch, run_interruptible};

use super::args::on_error as parse_on_error;
use crate::materialize::materialize;
use crate::python::errors::to_py;
use crate::python::source::PySource;
use crate::source::{ErrorBudget, Matrix, ReadContext, ReadStats};

/// Gives a matrix to torch without copying.
pub fn matrix_to_torch<'py>(py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyAny>> {
    match m {
        Matrix::F32(t) => owned_to_torch(py, t),
        Matrix::F64(t) => owned_to_torch(py, t),
        Matrix::I64(t) => owned_to_torch(py, t),
        Matrix::Shared { .. } => crate::python::shared::shared_to_torch(py, m),
    }
}

/// The statistics of a read as a dict.
pub fn stats_dict<'py>(py: Python<'py>, stats: &ReadStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rows", stats.rows)?;
    d.set_item("bytes_read", stats.bytes_read)?;
    d.set_item("read_time", stats.read_time.as_secs_f64())?;
    d.set_item("parse_time", stats.parse_time.as_secs_f64())?;
    let skipped = PyList::empty(py);
    for s in &stats.skipped {
        skipped.append((s.file.to_string(), s.line, s.reason.clone()))?;
    }
    d.set_item("skipped", skipped)?;
    Ok(d)
}

/// Reads a whole source into `(features, labels)` (`labels` is None without label columns),
/// plus a statistics dict when `with_stats`.
#[pyfunction]
#[pyo3(signature = (source, *, on_error = "raise", max_errors = None, with_stats = false))]
pub fn read_all<'py>(
    py: Python<'py>,
    source: &Bound<'py, PySource>,
    on_error: &str,
    max_errors: Option<u64>,
    with_stats: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let policy = parse_on_error(on_error, max_errors)?;
    let inner = source.get().inner.clone();
    let dataset = run_interruptible(py, move |cancel: &CancelToken| {
        let errors = ErrorBudget::new(policy);
        materialize(
            inner.as_ref(),
            ReadContext {
                cancel,
                errors: &errors,
            },
        )
    })?
    .map_err(to_py)?;
    let stats = dataset.stats;
    let features = matrix_to_torch(py, dataset.features)?;
    let labels = match dataset.labels {
        Some(m) => matrix_to_torch(py, m)?,
        None => py.None().into_bound(py),
    };
    if with_stats {
        Ok((features, labels, stats_dict(py, &stats)?).into_pyobject(py)?.into_any())
    } else {
        Ok((features, labels).into_pyobject(py)?.into_any())
    }
}

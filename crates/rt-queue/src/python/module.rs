//! The `rusttorch_queue._native` extension module.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rt_view::threads;

use super::batcher::{_after_fork_in_child, _shutdown_all};
use super::errors::exceptions;
use super::{Batcher, BatcherStats, Queue};

#[pyfunction]
fn get_num_threads() -> usize {
    threads::get_num_threads()
}

#[pyfunction]
fn set_num_threads(n: i64) -> PyResult<()> {
    let n = usize::try_from(n).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid thread count {n}: expected an integer >= 1"
        ))
    })?;
    Ok(threads::set_num_threads(n)?)
}

/// Registered with `os.register_at_fork` by the Python package.
#[pyfunction]
fn _forget_pool_after_fork() {
    threads::forget_pool_after_fork();
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Queue>()?;
    m.add_class::<Batcher>()?;
    m.add_class::<BatcherStats>()?;
    let errors = exceptions(py)?;
    m.add("Full", errors.full.bind(py))?;
    m.add("Empty", errors.empty.bind(py))?;
    m.add("Closed", errors.closed.bind(py))?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_forget_pool_after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown_all, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    Ok(())
}

//! The `rusttorch_queue._native` extension module.

use pyo3::prelude::*;
use rt_view::python::add_thread_functions;

use super::batcher::{_after_fork_in_child, _shutdown_all};
use super::errors::exceptions;
use super::{Batcher, BatcherStats, Queue};

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
    add_thread_functions(m)?;
    m.add_function(wrap_pyfunction!(_shutdown_all, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    Ok(())
}

//! The `rusttorch_data._native` extension module.

use pyo3::prelude::*;
use rt_view::python::{_thread_env_problem, add_thread_functions};

use super::{errors, loader, readers, source};

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    add_thread_functions(m)?;
    m.add_function(wrap_pyfunction!(_thread_env_problem, m)?)?;
    m.add_class::<source::PySource>()?;
    errors::register(m)?;
    readers::register(m)?;
    loader::register(m)?;
    Ok(())
}

//! Python functions that open sources (`open_csv`, `open_parquet`, ...) and read them whole
//! (`read_all`). Argument conversion lives in [`args`], the tensor hand-over in [`output`].

mod args;
mod arrow_import;
mod open;
mod output;

use pyo3::prelude::*;

pub use args::ColumnArgs;

/// Adds the readers' functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(open::open_csv, m)?)?;
    m.add_function(wrap_pyfunction!(open::open_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(open::open_ipc, m)?)?;
    m.add_function(wrap_pyfunction!(open::open_npy, m)?)?;
    m.add_function(wrap_pyfunction!(arrow_import::open_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(output::read_all, m)?)?;
    crate::python::shared::register(m)?;
    Ok(())
}

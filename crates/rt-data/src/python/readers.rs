//! Python functions that open sources (`open_csv`, `open_parquet`, ...) and read them whole.

use pyo3::prelude::*;

/// Adds the readers' functions to the module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}

//! The loader's Python class.

use pyo3::prelude::*;

/// Adds the loader's classes to the module.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}

//! Memory owned elsewhere (a memory-mapped .npy) handed to torch without a copy.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::source::Matrix;

/// Wraps [`Matrix::Shared`] memory as a torch tensor that keeps the owner alive.
pub fn shared_to_torch<'py>(_py: Python<'py>, _m: Matrix) -> PyResult<Bound<'py, PyAny>> {
    Err(PyValueError::new_err("shared matrices are not supported yet"))
}

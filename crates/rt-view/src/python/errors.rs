//! How [`ViewError`] becomes a Python exception.

use pyo3::PyErr;
use pyo3::exceptions::{PyIndexError, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};

use crate::ViewError;

impl From<ViewError> for PyErr {
    fn from(err: ViewError) -> PyErr {
        let message = err.to_string();
        match err {
            ViewError::DTypeMismatch { .. } => PyTypeError::new_err(message),
            ViewError::AxisOutOfRange { .. } | ViewError::IndexOutOfRange { .. } => {
                PyIndexError::new_err(message)
            }
            ViewError::ThreadPool(_) => PyRuntimeError::new_err(message),
            ViewError::OutOfMemory { .. } => PyMemoryError::new_err(message),
            _ => PyValueError::new_err(message),
        }
    }
}

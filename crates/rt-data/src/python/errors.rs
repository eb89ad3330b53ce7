//! How [`DataError`] becomes a Python exception: OSError subclasses for file problems (picked
//! from the OS error kind, as `open()` would), `ParseError`/`SchemaError` (both ValueError)
//! for bad content, TypeError for unsupported column types, KeyboardInterrupt for Ctrl-C.

use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyKeyboardInterrupt, PyNotADirectoryError, PyOSError,
    PyPermissionError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};

use crate::DataError;

create_exception!(
    rusttorch_data,
    ParseError,
    PyValueError,
    "A record could not be read: ragged, unparsable, missing or not UTF-8. The message names the file, line and column."
);
create_exception!(
    rusttorch_data,
    SchemaError,
    PyValueError,
    "Columns are missing, or differ across the files of one source, or cannot become a tensor."
);

/// Converts a [`DataError`] into the Python exception documented for it.
pub fn to_py(err: DataError) -> PyErr {
    let message = err.to_string();
    match err {
        DataError::Io { path, source } => {
            let args = (source.raw_os_error().unwrap_or(0), message, path);
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(args),
                std::io::ErrorKind::NotADirectory => PyNotADirectoryError::new_err(args),
                _ => PyOSError::new_err(args),
            }
        }
        DataError::Ragged { .. }
        | DataError::Parse { .. }
        | DataError::Missing { .. }
        | DataError::Encoding { .. }
        | DataError::TooManyErrors { .. } => ParseError::new_err(message),
        DataError::Schema(_) => SchemaError::new_err(message),
        DataError::UnsupportedType { .. } => PyTypeError::new_err(message),
        DataError::Corrupt { .. } | DataError::InvalidArgument(_) => PyValueError::new_err(message),
        DataError::Cancelled => PyKeyboardInterrupt::new_err(message),
        DataError::View(view) => view.into(),
    }
}

/// Adds the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ParseError", py.get_type::<ParseError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    Ok(())
}

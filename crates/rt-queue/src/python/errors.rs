//! The exceptions of `rusttorch_queue`, and how the crate's errors become Python ones.
//!
//! `Full` and `Empty` subclass `queue.Full` and `queue.Empty`, so code written against
//! `queue.Queue` catches them unchanged. `Closed` subclasses `queue.ShutDown` where Python
//! has it (3.13+, raised by `queue.Queue.shutdown()` in the same situations) and
//! `Exception` before.

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::Error;

/// The exception types, created once per interpreter.
pub(crate) struct Exceptions {
    pub(crate) full: Py<PyType>,
    pub(crate) empty: Py<PyType>,
    pub(crate) closed: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// The exception types, creating them on first use.
pub(crate) fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || {
        let queue = py.import("queue")?;
        let full_base = queue.getattr("Full")?.cast_into::<PyType>()?;
        let empty_base = queue.getattr("Empty")?.cast_into::<PyType>()?;
        let closed_base = match queue.getattr("ShutDown") {
            Ok(shutdown) => shutdown.cast_into::<PyType>()?,
            Err(_) => py.get_type::<PyException>(),
        };
        Ok(Exceptions {
            full: PyErr::new_type(
                py,
                c"rusttorch_queue.Full",
                Some(c"Raised by put_nowait(), or put() when its timeout passes, on a full queue."),
                Some(&full_base),
                None,
            )?,
            empty: PyErr::new_type(
                py,
                c"rusttorch_queue.Empty",
                Some(c"Raised by get_nowait(), or get() when its timeout passes, on an empty queue."),
                Some(&empty_base),
                None,
            )?,
            closed: PyErr::new_type(
                py,
                c"rusttorch_queue.Closed",
                Some(
                    c"Raised by put() on a closed queue, and by get() on a closed queue once it is \
                      drained.",
                ),
                Some(&closed_base),
                None,
            )?,
        })
    })
}

/// A `Full` exception with `message`.
pub(crate) fn full(py: Python<'_>, message: String) -> PyErr {
    match exceptions(py) {
        Ok(e) => PyErr::from_type(e.full.bind(py).clone(), message),
        Err(err) => err,
    }
}

/// An `Empty` exception with `message`.
pub(crate) fn empty(py: Python<'_>, message: &'static str) -> PyErr {
    match exceptions(py) {
        Ok(e) => PyErr::from_type(e.empty.bind(py).clone(), message),
        Err(err) => err,
    }
}

/// A `Closed` exception with `message`.
pub(crate) fn closed(py: Python<'_>, message: &'static str) -> PyErr {
    match exceptions(py) {
        Ok(e) => PyErr::from_type(e.closed.bind(py).clone(), message),
        Err(err) => err,
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::View(view) => view.into(),
            other => PyValueError::new_err(other.to_string()),
        }
    }
}

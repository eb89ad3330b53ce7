//! `rusttorch_queue.Queue`: a [`BoundedQueue`] of Python objects with `queue.Queue`'s API.
//!
//! A call that can complete at once does so while holding the GIL (a lock and a pointer
//! move, no GIL round trip); only a call that must wait releases the GIL and parks.

use std::ops::ControlFlow;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use super::errors::{closed, empty, full};
use super::wait::{deadline_after, wait_released};
use crate::{BoundedQueue, PopTimeoutError, PushTimeoutError, TryPopError, TryPushError};

/// A bounded FIFO queue for Python threads, with `close()`.
///
/// `put`/`get` follow `queue.Queue`; waiting releases the GIL and honours Ctrl-C. Items are
/// any Python objects, passed by reference (a tensor is never copied).
#[pyclass(module = "rusttorch_queue", frozen, generic)]
pub struct Queue {
    inner: BoundedQueue<Py<PyAny>>,
}

impl Queue {
    fn full_error(&self, py: Python<'_>) -> PyErr {
        full(
            py,
            format!("the queue is full (maxsize={})", self.inner.capacity()),
        )
    }
}

#[pymethods]
impl Queue {
    #[new]
    fn new(maxsize: i64) -> PyResult<Self> {
        let capacity = usize::try_from(maxsize)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "maxsize must be at least 1, got {maxsize}: a rusttorch_queue.Queue is always \
                 bounded"
                ))
            })?;
        Ok(Queue {
            inner: BoundedQueue::new(capacity)?,
        })
    }

    /// The most items the queue holds.
    #[getter]
    fn maxsize(&self) -> usize {
        self.inner.capacity()
    }

    /// True once `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    #[pyo3(signature = (item, block = true, timeout = None))]
    fn put(
        &self,
        py: Python<'_>,
        item: Py<PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let item = match self.inner.try_push(item) {
            Ok(()) => return Ok(()),
            Err(TryPushError::Closed(_)) => return Err(closed(py, "the queue is closed")),
            Err(TryPushError::Full(item)) if block => item,
            Err(TryPushError::Full(_)) => return Err(self.full_error(py)),
        };
        let deadline = deadline_after(timeout)?;
        let waited = wait_released(py, deadline, item, |item, until| {
            match self.inner.push_deadline(item, until) {
                Ok(()) => ControlFlow::Break(Ok(())),
                Err(PushTimeoutError::Closed(_)) => ControlFlow::Break(Err(())),
                Err(PushTimeoutError::Timeout(item)) => ControlFlow::Continue(item),
            }
        })?;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(closed(py, "the queue was closed while put() waited")),
            Err(_item) => Err(self.full_error(py)),
        }
    }

    fn put_nowait(&self, py: Python<'_>, item: Py<PyAny>) -> PyResult<()> {
        self.put(py, item, false, None)
    }

    #[pyo3(signature = (block = true, timeout = None))]
    fn get(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        match self.inner.try_pop() {
            Ok(item) => return Ok(item),
            Err(TryPopError::Closed) => return Err(closed(py, "the queue is closed and drained")),
            Err(TryPopError::Empty) if block => {}
            Err(TryPopError::Empty) => return Err(empty(py, "the queue is empty")),
        }
        let deadline = deadline_after(timeout)?;
        let waited = wait_released(py, deadline, (), |(), until| {
            match self.inner.pop_deadline(until) {
                Ok(item) => ControlFlow::Break(Ok(item)),
                Err(PopTimeoutError::Closed) => ControlFlow::Break(Err(())),
                Err(PopTimeoutError::Timeout) => ControlFlow::Continue(()),
            }
        })?;
        match waited {
            Ok(Ok(item)) => Ok(item),
            Ok(Err(())) => Err(closed(py, "the queue is closed and drained")),
            Err(()) => Err(empty(py, "the queue stayed empty until the timeout")),
        }
    }

    fn get_nowait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.get(py, false, None)
    }

    fn qsize(&self) -> usize {
        self.inner.len()
    }

    fn empty(&self) -> bool {
        self.inner.is_empty()
    }

    fn full(&self) -> bool {
        self.inner.is_full()
    }

    fn close(&self) {
        self.inner.close();
    }

    /// Reports the queued items to Python's cycle collector (without waiting: when another
    /// thread holds the lock, none this time), so that a cycle through a queued item (an
    /// object holding the queue it sits in) can be collected, as with `queue.Queue`.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.inner.try_for_each(|item| visit.call(item)).map(|_| ())
    }

    /// Drops the queued items, breaking such a cycle.
    fn __clear__(&self) {
        drop(self.inner.take_all());
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.get(py, true, None) {
            Ok(item) => Ok(Some(item)),
            Err(e) if is_closed_error(py, &e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Queue(maxsize={}, qsize={}, closed={})",
            self.inner.capacity(),
            self.inner.len(),
            if self.inner.is_closed() {
                "True"
            } else {
                "False"
            }
        )
    }
}

fn is_closed_error(py: Python<'_>, err: &PyErr) -> bool {
    super::errors::exceptions(py).is_ok_and(|e| err.is_instance(py, e.closed.bind(py)))
}

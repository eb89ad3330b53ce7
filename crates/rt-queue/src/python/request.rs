//! One request to a `Batcher`: the caller's input, when it arrived, and how its result gets
//! back (a `concurrent.futures.Future`, or a slot a blocked `__call__` waits on).

use std::sync::Arc;
use std::time::Instant;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};
use rt_view::python::is_torch_tensor;

use crate::claim::Claim;
use crate::{Oneshot, Queued};

/// How a request's tensors are arranged; the batch passed to `fn` has the same arrangement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Structure {
    Tensor,
    Tuple(usize),
    Dict(usize),
}

impl Structure {
    /// Checks what a caller submitted: a tensor, or a non-empty tuple of tensors, or a
    /// non-empty dict of str keys to tensors. Anything else is refused at once, in the
    /// caller's thread.
    pub(crate) fn of(x: &Bound<'_, PyAny>) -> PyResult<Structure> {
        if is_torch_tensor(x)? {
            return Ok(Structure::Tensor);
        }
        if let Ok(tuple) = x.cast::<PyTuple>() {
            if tuple.is_empty() {
                return Err(PyValueError::new_err(
                    "a request can not be an empty tuple: there is nothing to batch",
                ));
            }
            for (i, item) in tuple.iter().enumerate() {
                check_leaf(&item, || format!("element {i} of the request tuple"))?;
            }
            return Ok(Structure::Tuple(tuple.len()));
        }
        if let Ok(dict) = x.cast::<PyDict>() {
            if dict.is_empty() {
                return Err(PyValueError::new_err(
                    "a request can not be an empty dict: there is nothing to batch",
                ));
            }
            for (key, value) in dict.iter() {
                if !key.is_instance_of::<PyString>() {
                    return Err(PyTypeError::new_err(format!(
                        "the keys of a request dict must be str, got {}",
                        key.get_type().name()?
                    )));
                }
                check_leaf(&value, || {
                    format!(
                        "request[{}]",
                        key.repr().map(|r| r.to_string()).unwrap_or_default()
                    )
                })?;
            }
            return Ok(Structure::Dict(dict.len()));
        }
        Err(PyTypeError::new_err(format!(
            "a request must be a torch.Tensor, or a tuple or dict of tensors; got {}",
            x.get_type().name()?
        )))
    }

    /// "a tensor", "a tuple of 2 tensors", "a dict of 3 tensors".
    pub(crate) fn describe(self) -> String {
        match self {
            Structure::Tensor => "a tensor".to_owned(),
            Structure::Tuple(n) => format!("a tuple of {n} tensors"),
            Structure::Dict(n) => format!("a dict of {n} tensors"),
        }
    }
}

fn check_leaf(item: &Bound<'_, PyAny>, name: impl FnOnce() -> String) -> PyResult<()> {
    if is_torch_tensor(item)? {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "{} must be a torch.Tensor, got {}",
        name(),
        item.get_type().name()?
    )))
}

/// A request's outcome: the row of `fn`'s output, or the exception for this caller.
pub(crate) type Outcome = PyResult<Py<PyAny>>;

/// The slot a blocked `__call__` waits on.
pub(crate) type Slot = Arc<Oneshot<Outcome>>;

/// Where a request's result goes.
pub(crate) enum Completion {
    /// A `concurrent.futures.Future` returned by `submit`.
    Future(Py<PyAny>),
    /// The slot a blocked `__call__` waits on (cheaper than a Future: no Python-level
    /// condition variable, one futex wake).
    Waiter(Slot),
}

static FUTURE_TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A new `concurrent.futures.Future`.
pub(crate) fn new_future(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    FUTURE_TYPE
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("concurrent.futures")?.getattr("Future")?.unbind())
        })?
        .bind(py)
        .call0()
}

/// A request waiting in the queue or in a forming batch.
pub(crate) struct Request {
    pub(crate) payload: Py<PyAny>,
    pub(crate) structure: Structure,
    /// `None` once resolved (or abandoned before anyone could see it).
    completion: Option<Completion>,
    pub(crate) enqueued_at: Instant,
    pub(crate) deadline: Option<Instant>,
    /// With a deadline: taken by the worker when it starts the request, or by whoever
    /// enforces the deadline while it is queued (the blocked caller, the expiry thread),
    /// whichever comes first; the loser leaves the request alone.
    claim: Option<Arc<Claim>>,
}

/// What the worker does with a request it took off the queue.
pub(crate) enum Start {
    /// Run it: the worker owns its resolution now.
    Run,
    /// Its caller cancelled its Future first: dropped without a result.
    Cancelled,
    /// Its deadline passed while it was queued and already resolved it: skipped.
    Expired,
}

impl Queued for Request {
    fn enqueued_at(&self) -> Instant {
        self.enqueued_at
    }
}

impl Request {
    pub(crate) fn new(
        payload: Py<PyAny>,
        structure: Structure,
        completion: Completion,
        enqueued_at: Instant,
        deadline: Option<Instant>,
        claim: Option<Arc<Claim>>,
    ) -> Self {
        Request {
            payload,
            structure,
            completion: Some(completion),
            enqueued_at,
            deadline,
            claim,
        }
    }

    /// Claims the request for the worker and marks it as running. A request whose
    /// deadline claimed it first is skipped (whoever claimed it resolved it); one whose
    /// caller cancelled its Future is dropped without a result, as `concurrent.futures`
    /// executors do.
    pub(crate) fn start(&mut self, py: Python<'_>) -> Start {
        if self.claim.as_ref().is_some_and(|claim| !claim.take()) {
            self.completion = None;
            return Start::Expired;
        }
        let running = match &self.completion {
            Some(Completion::Future(future)) => future
                .bind(py)
                .call_method0(intern!(py, "set_running_or_notify_cancel"))
                .and_then(|r| r.is_truthy())
                // A future someone else already resolved has nobody waiting on us.
                .unwrap_or(false),
            Some(Completion::Waiter(_)) => true,
            None => false,
        };
        if running {
            Start::Run
        } else {
            self.completion = None;
            Start::Cancelled
        }
    }

    /// Delivers the result; every request is resolved exactly once, by this or by `Drop`.
    ///
    /// A Future is resolved at once (that needs the GIL). A blocked caller's slot is only
    /// filled later, by [`Deferred::deliver`], which the worker runs with the GIL released:
    /// a caller woken while the worker still holds the GIL would only park again, on the
    /// GIL. (An A/B run during development, 16 callers and an identity `fn` on 2 cores:
    /// 33k requests/s filling the slots under the GIL, 55k/s filling them after.)
    pub(crate) fn resolve(mut self, py: Python<'_>, result: Outcome, deferred: &mut Deferred) {
        match self.completion.take() {
            Some(Completion::Waiter(slot)) => deferred.0.push((slot, result)),
            Some(future) => deliver(py, future, result),
            None => {}
        }
    }

    /// Forgets the completion of a request that never reached the queue: its caller gets
    /// the error directly, and the Future was never handed out.
    pub(crate) fn abandon(mut self) {
        self.completion = None;
    }
}

/// Results for blocked callers, delivered after the worker releases the GIL.
#[derive(Default)]
pub(crate) struct Deferred(Vec<(Slot, Outcome)>);

impl Deferred {
    /// Fills every slot; needs no GIL (the results only move).
    pub(crate) fn deliver(&mut self) {
        for (slot, result) in self.0.drain(..) {
            // `set` refuses only a second value, and each request resolves once.
            let _ = slot.set(result);
        }
    }
}

fn deliver(py: Python<'_>, completion: Completion, result: Outcome) {
    match completion {
        Completion::Future(future) => {
            let future = future.bind(py);
            let delivered = match result {
                Ok(value) => future.call_method1(intern!(py, "set_result"), (value,)),
                Err(err) => {
                    future.call_method1(intern!(py, "set_exception"), (err.into_value(py),))
                }
            };
            // Only fails for a future resolved by someone else (InvalidStateError), whose
            // waiters already have an answer.
            drop(delivered);
        }
        Completion::Waiter(slot) => {
            // `set` refuses only a second value, and each request resolves once.
            let _ = slot.set(result);
        }
    }
}

impl Drop for Request {
    /// The safety net: a request dropped unresolved (a bug, a panic in the worker, the
    /// interpreter shutting down) still fails its caller instead of leaving it waiting.
    fn drop(&mut self) {
        if let Some(completion) = self.completion.take() {
            let _ = Python::try_attach(|py| {
                deliver(
                    py,
                    completion,
                    Err(PyRuntimeError::new_err(
                        "the batcher dropped this request without a result (internal error)",
                    )),
                );
            });
        }
    }
}

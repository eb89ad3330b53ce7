//! Running long kernels so that Ctrl-C still works.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::cancel::CancelToken;

/// How often the waiting thread runs Python's signal handlers: short enough that Ctrl-C
/// feels immediate, long enough to cost nothing measurable.
pub const SIGNAL_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A one-shot slot the worker fills and the waiting thread empties.
struct Slot<T> {
    value: Mutex<Option<std::thread::Result<T>>>,
    filled: Condvar,
}

impl<T> Slot<T> {
    fn put(&self, v: std::thread::Result<T>) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(v);
        self.filled.notify_all();
    }

    /// Waits up to `timeout` (forever if `None`) and takes the value if it is there.
    fn take(&self, timeout: Option<Duration>) -> Option<std::thread::Result<T>> {
        let guard = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        let mut guard = match timeout {
            Some(t) => {
                self.filled
                    .wait_timeout_while(guard, t, |v| v.is_none())
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .filled
                .wait_while(guard, |v| v.is_none())
                .unwrap_or_else(PoisonError::into_inner),
        };
        guard.take()
    }
}

/// Runs `f` on a helper thread with the GIL released, while this thread wakes every
/// [`SIGNAL_POLL_INTERVAL`] to run Python's signal handlers. If one raises (Ctrl-C gives
/// `KeyboardInterrupt`), the token passed to `f` is cancelled, `f` is awaited (it should
/// poll the token and return early), its result is dropped, and the exception is raised.
///
/// Use it for calls that can run for seconds; for short kernels the thread start (tens
/// of microseconds) is not worth it.
pub fn run_interruptible<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce(&CancelToken) -> T + Send,
    T: Send,
{
    let token = CancelToken::new();
    let slot = Slot {
        value: Mutex::new(None),
        filled: Condvar::new(),
    };
    std::thread::scope(|scope| {
        let worker_token = token.clone();
        let slot_ref = &slot;
        scope.spawn(move || {
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&worker_token)));
            slot_ref.put(result);
        });
        let finished = |result: std::thread::Result<T>| {
            result.map_err(|_| PyRuntimeError::new_err("a rusttorch worker thread panicked"))
        };
        loop {
            if let Some(result) = py.detach(|| slot.take(Some(SIGNAL_POLL_INTERVAL))) {
                return finished(result);
            }
            if let Err(signal_error) = py.check_signals() {
                token.cancel();
                // The worker must finish before the scope ends; it stops at its next poll.
                let _ = py.detach(|| slot.take(None));
                return Err(signal_error);
            }
        }
    })
}

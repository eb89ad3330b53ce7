//! Cooperative cancellation for long kernels.
//!
//! Ctrl-C in Python only sets a flag that the interpreter checks while it runs Python code;
//! a Rust loop running with the GIL released never sees it. Long kernels therefore take a
//! [`CancelToken`] and poll it between chunks of work; the Python bridge
//! (`python::run_interruptible`) sets it when a signal handler raises.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared flag that asks a running kernel to stop early. Cloning shares the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

/// Returned by [`CancelToken::check`] once cancellation was requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the operation was cancelled")]
pub struct Cancelled;

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder of this token to stop.
    pub fn cancel(&self) {
        // Relaxed suffices: the flag carries no data, and the worker's result is handed
        // back through a synchronizing channel anyway.
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancellation was requested, for use with `?` in loops.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancelling_a_clone_stops_a_worker() {
        let token = CancelToken::new();
        assert_eq!(token.check(), Ok(()));
        let worker = {
            let token = token.clone();
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while token.check().is_ok() {
                    rounds += 1;
                    std::thread::yield_now();
                }
                rounds
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(10));
        token.cancel();
        assert!(worker.join().is_ok());
        assert_eq!(token.check(), Err(Cancelled));
    }
}

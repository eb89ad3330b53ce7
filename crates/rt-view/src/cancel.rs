//! Cooperative cancellation for long kernels.
//!
//! Ctrl-C in Python only sets a flag that the interpreter checks while it runs Python code;
//! a Rust loop running with the GIL released never sees it. Long kernels therefore take a
//! [`CancelToken`] and poll it between chunks of work; the Python bridge
//! (`python::run_interruptible`) sets it when a signal handler raises.
//!
//! A token reaches a kernel either as a parameter or as the calling thread's *ambient*
//! token ([`with_token`], read back with [`current`]). The ambient token is for kernels
//! whose work runs through shared helpers (row-chunk runners, conversions) that cannot
//! all grow a token parameter without changing every public signature: such a kernel
//! reads [`current`] once, on the thread that called it, before it hands work to the
//! pool, and polls that token between chunks. Rust users opt in by wrapping a call in
//! [`with_token`]; without it [`current`] is `None` and nothing is polled.
//!
//! ```
//! use rt_view::cancel::{self, CancelToken};
//!
//! let token = CancelToken::new();
//! assert!(cancel::current().is_none());
//! cancel::with_token(&token, || {
//!     // A kernel called here sees the token...
//!     let seen = cancel::current().expect("installed");
//!     token.cancel();
//!     // ...and stops at its next poll.
//!     assert!(seen.check().is_err());
//! });
//! assert!(cancel::current().is_none());
//! ```

use std::cell::Cell;
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

thread_local! {
    /// The ambient token of this thread (see [`with_token`]).
    static CURRENT: Cell<Option<CancelToken>> = const { Cell::new(None) };
}

/// Puts the previous ambient token back when dropped, also when `f` panics.
struct Restore(Option<CancelToken>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        // `try_with`: during thread teardown the slot may already be gone; nothing is
        // left to restore then.
        let _ = CURRENT.try_with(|slot| slot.set(previous));
    }
}

/// Runs `f` with `token` as this thread's ambient token, so that kernels called from `f`
/// on this thread poll it (see the module docs); the previous ambient token, if any, is
/// restored afterwards, also when `f` panics. Other threads, the pool's included, do not
/// see it: a kernel reads [`current`] before it hands work to them.
pub fn with_token<R>(token: &CancelToken, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|slot| slot.replace(Some(token.clone())));
    let _restore = Restore(previous);
    f()
}

/// The ambient token installed by the innermost [`with_token`] on this thread, if any.
pub fn current() -> Option<CancelToken> {
    CURRENT
        .try_with(|slot| {
            let token = slot.take();
            let copy = token.clone();
            slot.set(token);
            copy
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambient_tokens_nest_and_are_restored() {
        let (outer, inner) = (CancelToken::new(), CancelToken::new());
        assert!(current().is_none());
        with_token(&outer, || {
            outer.cancel();
            assert_eq!(current().map(|t| t.check()), Some(Err(Cancelled)));
            let r = with_token(&inner, || {
                // The inner token is not cancelled, the outer one is.
                assert_eq!(current().map(|t| t.check()), Some(Ok(())));
                7
            });
            assert_eq!(r, 7);
            assert_eq!(current().map(|t| t.check()), Some(Err(Cancelled)));
        });
        assert!(current().is_none());
    }

    #[test]
    fn ambient_token_is_restored_after_a_panic() {
        let (outer, inner) = (CancelToken::new(), CancelToken::new());
        inner.cancel();
        with_token(&outer, || {
            let caught = std::panic::catch_unwind(|| with_token(&inner, || panic!("boom")));
            assert!(caught.is_err());
            // The outer (not cancelled) token is back, not the inner one.
            assert_eq!(current().map(|t| t.check()), Some(Ok(())));
        });
        assert!(current().is_none());
    }

    #[test]
    fn ambient_token_is_not_visible_on_other_threads() {
        let token = CancelToken::new();
        with_token(&token, || {
            assert!(current().is_some());
            let elsewhere = std::thread::spawn(|| current().is_none()).join();
            assert_eq!(elsewhere.ok(), Some(true));
            // Nor do the pool's threads (called from outside the pool, both halves of a
            // join run there).
            assert_eq!(
                rayon::join(|| current().is_none(), || current().is_none()),
                (true, true)
            );
        });
    }

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

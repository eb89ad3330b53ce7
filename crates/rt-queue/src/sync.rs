//! The locks and atomics every type in this crate is built from: std's, or loom's under
//! `--cfg loom`.
//!
//! [loom](https://docs.rs/loom) runs a test under every interleaving of its threads and
//! reports deadlocks (a lost wake-up leaves a thread waiting forever), but it has no clock:
//! its `Condvar::wait_timeout` just waits. So timed waits go through [`wait_until`] and
//! deadlines through [`Timeouts::expired`]. Under std they read the real clock. Under loom
//! a timed wait is a plain wait, and a deadline passes only when the model's "timer" thread
//! calls `fire_timeouts` on the queue, at whatever point of the interleaving loom picks:
//! every ordering of a timeout against pushes, pops and `close` gets explored.

use std::time::Instant;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: no code in this crate panics while it holds a lock
/// with its state half-updated, so the state behind a poisoned lock is still consistent.
pub(crate) fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks `mutex` if no other thread holds it now (`None` if one does), ignoring poisoning
/// as [`lock`] does.
pub(crate) fn try_lock<S>(mutex: &Mutex<S>) -> Option<MutexGuard<'_, S>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Waits for a notification (or a spurious wake-up); callers re-check their condition.
pub(crate) fn wait<'a, S>(condvar: &Condvar, guard: MutexGuard<'a, S>) -> MutexGuard<'a, S> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for a notification, a spurious wake-up or `deadline`; callers re-check their
/// condition and [`Timeouts::expired`].
#[cfg(not(loom))]
pub(crate) fn wait_until<'a, S>(
    condvar: &Condvar,
    guard: MutexGuard<'a, S>,
    deadline: Instant,
) -> MutexGuard<'a, S> {
    let timeout = deadline.saturating_duration_since(Instant::now());
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// Under loom a timed wait is a plain wait that `fire_timeouts` ends (see the module docs).
#[cfg(loom)]
pub(crate) fn wait_until<'a, S>(
    condvar: &Condvar,
    guard: MutexGuard<'a, S>,
    _deadline: Instant,
) -> MutexGuard<'a, S> {
    wait(condvar, guard)
}

/// Whether a deadline has passed; kept inside each lock's state so that, under loom, the
/// model's timer changes it under the same lock the waiters check it with.
#[derive(Debug, Default)]
pub(crate) struct Timeouts {
    #[cfg(loom)]
    fired: bool,
}

impl Timeouts {
    /// True once `deadline` has passed (under loom: once the model's timer fired).
    #[cfg(not(loom))]
    pub(crate) fn expired(&self, deadline: Instant) -> bool {
        Instant::now() >= deadline
    }

    /// True once the model's timer fired.
    #[cfg(loom)]
    pub(crate) fn expired(&self, _deadline: Instant) -> bool {
        self.fired
    }

    /// Makes every deadline pass.
    #[cfg(loom)]
    pub(crate) fn fire(&mut self) {
        self.fired = true;
    }
}

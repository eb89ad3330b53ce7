//! Deadlines for `submit()` Futures while the worker is busy.
//!
//! A blocked `batcher(x)` caller enforces its own deadline: it waits on its slot until the
//! deadline, then claims its request. A Future has nobody waiting in Rust, and the worker
//! cannot fail it while it is inside `fn`, so a batcher with `timeout_ms` runs one more
//! thread that parks on the earliest pending deadline and claims and fails the Futures
//! still queued at it. Parked on a condition variable it costs nothing between deadlines,
//! unlike polling from the worker or the callers; one thread per batcher (not a timer per
//! request) because every deadline is `submit` time plus the same `timeout_ms`.
//!
//! For the same reason deadlines arrive almost in order (only a `submit` that waited for
//! room is out of order), so the pending list is a deque kept sorted by inserting from the
//! back, and entries whose request was claimed (run, or resolved) are dropped from the
//! front: as the worker takes requests in order, the list stays about as long as the queue.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use pyo3::prelude::*;

use crate::claim::Claim;

/// A queued Future with a deadline.
pub(crate) struct Watched {
    pub(crate) deadline: Instant,
    pub(crate) enqueued_at: Instant,
    pub(crate) claim: Arc<Claim>,
    pub(crate) future: Py<PyAny>,
}

/// The pending deadlines of one batcher's Futures, and the thread that enforces them.
#[derive(Default)]
pub(crate) struct Expiry {
    state: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    /// Sorted by deadline.
    watched: VecDeque<Watched>,
    /// Set when the worker finished: every request was run or resolved.
    stopped: bool,
}

impl Pending {
    /// Drops the entries at the front that someone already claimed.
    fn prune(&mut self) {
        while self.watched.front().is_some_and(|w| w.claim.is_taken()) {
            // Without the GIL on the expiry thread, pyo3 defers the Future's decref.
            self.watched.pop_front();
        }
    }
}

fn lock(mutex: &Mutex<Pending>) -> MutexGuard<'_, Pending> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Expiry {
    /// Watches a Future whose request is queued (call after the push, so that a deadline
    /// never fires for a request that did not make it into the queue).
    pub(crate) fn watch(&self, watched: Watched) {
        let mut pending = lock(&self.state);
        if pending.stopped {
            // The worker has finished, so the request was run or resolved already.
            return;
        }
        pending.prune();
        let at = pending
            .watched
            .iter()
            .rposition(|w| w.deadline <= watched.deadline)
            .map_or(0, |i| i + 1);
        pending.watched.insert(at, watched);
        drop(pending);
        if at == 0 {
            // A new earliest deadline: the thread may be parked on a later one.
            self.wake.notify_one();
        }
    }

    /// Ends [`run`](Self::run); the worker calls it when it has finished.
    pub(crate) fn stop(&self) {
        lock(&self.state).stopped = true;
        self.wake.notify_one();
    }

    /// The expiry thread's body: hands every entry whose deadline passed to `expire`
    /// (without the lock held), until [`stop`](Self::stop).
    pub(crate) fn run(&self, mut expire: impl FnMut(Vec<Watched>)) {
        let mut pending = lock(&self.state);
        loop {
            pending.prune();
            if pending.stopped {
                return;
            }
            let now = Instant::now();
            let Some(next) = pending.watched.front().map(|w| w.deadline) else {
                pending = self
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            };
            if next > now {
                pending = self
                    .wake
                    .wait_timeout(pending, next - now)
                    .map_or_else(|p| p.into_inner().0, |(p, _)| p);
                continue;
            }
            let due = pending
                .watched
                .iter()
                .position(|w| w.deadline > now)
                .unwrap_or(pending.watched.len());
            let due: Vec<Watched> = pending.watched.drain(..due).collect();
            drop(pending);
            expire(due);
            pending = lock(&self.state);
        }
    }
}

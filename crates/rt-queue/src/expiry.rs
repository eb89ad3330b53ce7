//! [`Expiry`]: deadlines enforced by one parked thread, for the batcher's Futures.
//!
//! A blocked `batcher(x)` caller enforces its own deadline: it waits on its slot until the
//! deadline, then claims its request. A Future has nobody waiting in Rust, and the worker
//! cannot fail it while it is inside `fn`, so a batcher with `timeout_ms` runs one more
//! thread, [`Expiry::run`], that parks on the earliest pending deadline and hands the
//! entries due to a callback, which claims and fails the Futures still queued. Parked on a
//! condition variable it costs nothing between deadlines, unlike polling from the worker
//! or the callers; one thread per batcher (not a timer per request) because every deadline
//! is `submit` time plus the same `timeout_ms`.
//!
//! For the same reason deadlines arrive almost in order (only a `submit` that waited for
//! room is out of order), so the pending list is a deque kept sorted by inserting from the
//! back, and entries whose request was claimed (run, or resolved) are dropped from the
//! front: as the worker takes requests in order, the list stays about as long as the queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::claim::Claim;
use crate::sync::{Condvar, Mutex, Timeouts, lock, wait, wait_until};

/// A queued request with a deadline: `item` is what the callback needs to resolve it.
pub(crate) struct Watched<T> {
    pub(crate) deadline: Instant,
    pub(crate) claim: Arc<Claim>,
    pub(crate) item: T,
}

/// The pending deadlines of one batcher's Futures, and the loop that enforces them.
pub(crate) struct Expiry<T> {
    state: Mutex<Pending<T>>,
    wake: Condvar,
}

struct Pending<T> {
    /// Sorted by deadline.
    watched: VecDeque<Watched<T>>,
    /// Set when the worker finished: every request was run or resolved.
    stopped: bool,
    timeouts: Timeouts,
}

impl<T> Pending<T> {
    /// Drops the entries at the front that someone already claimed.
    fn prune(&mut self) {
        while self.watched.front().is_some_and(|w| w.claim.is_taken()) {
            self.watched.pop_front();
        }
    }
}

impl<T> Expiry<T> {
    pub(crate) fn new() -> Self {
        Expiry {
            state: Mutex::new(Pending {
                watched: VecDeque::new(),
                stopped: false,
                timeouts: Timeouts::default(),
            }),
            wake: Condvar::new(),
        }
    }

    /// Watches a queued request (call after the push, so that a deadline never fires for
    /// a request that did not make it into the queue).
    pub(crate) fn watch(&self, watched: Watched<T>) {
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
            // A new earliest deadline: the thread may be parked on a later one, or on none.
            self.wake.notify_one();
        }
    }

    /// Ends [`run`](Self::run); the worker calls it when it has finished.
    pub(crate) fn stop(&self) {
        lock(&self.state).stopped = true;
        self.wake.notify_one();
    }

    /// The expiry thread's body: hands the entries whose deadline passed to `expire`
    /// (without the lock held), until [`stop`](Self::stop). `expire` must claim an entry
    /// before it resolves it; what it gets may already be claimed by the worker.
    pub(crate) fn run(&self, mut expire: impl FnMut(Vec<Watched<T>>)) {
        let mut pending = lock(&self.state);
        loop {
            pending.prune();
            if pending.stopped {
                return;
            }
            let Some(next) = pending.watched.front().map(|w| w.deadline) else {
                pending = wait(&self.wake, pending);
                continue;
            };
            if !pending.timeouts.expired(next) {
                pending = wait_until(&self.wake, pending, next);
                continue;
            }
            let due = pending
                .watched
                .iter()
                .position(|w| !pending.timeouts.expired(w.deadline))
                .unwrap_or(pending.watched.len());
            let due: Vec<Watched<T>> = pending.watched.drain(..due).collect();
            drop(pending);
            expire(due);
            pending = lock(&self.state);
        }
    }

    /// Makes every deadline pass and wakes the thread: the model's timer.
    #[cfg(loom)]
    pub(crate) fn fire_timeouts(&self) {
        lock(&self.state).timeouts.fire();
        self.wake.notify_one();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    use super::*;

    fn watched(ms: u64, item: u32) -> (Arc<Claim>, Watched<u32>) {
        let claim = Arc::new(Claim::new());
        let deadline = Instant::now() + Duration::from_millis(ms);
        let w = Watched {
            deadline,
            claim: Arc::clone(&claim),
            item,
        };
        (claim, w)
    }

    #[test]
    fn entries_expire_in_deadline_order_and_claimed_ones_are_skipped() {
        let expiry = Arc::new(Expiry::new());
        let expired = Arc::new(StdMutex::new(Vec::new()));
        let runner = {
            let (expiry, expired) = (Arc::clone(&expiry), Arc::clone(&expired));
            std::thread::spawn(move || {
                expiry.run(|due| {
                    for w in due {
                        if w.claim.take() {
                            expired.lock().unwrap().push(w.item);
                        }
                    }
                })
            })
        };
        let start = Instant::now();
        let (_, late) = watched(120, 3);
        let (worker_took, early) = watched(40, 1);
        let (_, middle) = watched(80, 2);
        expiry.watch(late);
        std::thread::sleep(Duration::from_millis(5));
        // An earlier deadline than the one the thread is parked on must wake it.
        expiry.watch(early);
        expiry.watch(middle);
        assert!(
            worker_took.take(),
            "the worker claims entry 1 before its deadline"
        );
        while expired.lock().unwrap().len() < 2 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "deadlines never fired"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(start.elapsed() >= Duration::from_millis(120));
        expiry.stop();
        runner.join().unwrap();
        assert_eq!(*expired.lock().unwrap(), [2, 3]);
    }
}

/// `RUSTFLAGS="--cfg loom" cargo test -p rt-queue --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    use super::*;

    /// A Future watched while the expiry thread may be parked on nothing, the worker
    /// racing the deadline for it, then the worker finishing: the thread wakes for the new
    /// deadline, exactly one of worker and deadline resolves the request, and `stop` ends
    /// the thread (a lost wake-up would leave it parked: a deadlock loom reports).
    #[test]
    fn loom_watch_then_race_the_worker_then_stop() {
        loom::model(|| {
            let expiry = loom::sync::Arc::new(Expiry::new());
            let expired = loom::sync::Arc::new(AtomicUsize::new(0));
            let runner = {
                let (expiry, expired) = (expiry.clone(), expired.clone());
                thread::spawn(move || {
                    expiry.run(|due| {
                        for w in due {
                            if w.claim.take() {
                                expired.fetch_add(w.item, Ordering::SeqCst);
                            }
                        }
                    })
                })
            };
            let claim = Arc::new(Claim::new());
            expiry.watch(Watched {
                deadline: Instant::now(),
                claim: Arc::clone(&claim),
                item: 1,
            });
            let timer = {
                let expiry = expiry.clone();
                thread::spawn(move || expiry.fire_timeouts())
            };
            // The worker starting the request.
            let ran = claim.take();
            timer.join().unwrap();
            // The worker finishing.
            expiry.stop();
            runner.join().unwrap();
            let timed_out = expired.load(Ordering::SeqCst) == 1;
            assert!(claim.is_taken());
            assert!(ran || timed_out, "nobody resolved the request");
            assert!(!(ran && timed_out), "the request both ran and timed out");
        });
    }

    /// A deadline already past when it is watched, while the expiry thread may be parked
    /// with nothing to watch: the watch alone must wake it (the timer's wake-up came
    /// before), or the request would never be resolved.
    #[test]
    fn loom_watching_wakes_the_parked_thread() {
        loom::model(|| {
            let expiry = loom::sync::Arc::new(Expiry::new());
            let resolved = loom::sync::Arc::new(crate::Oneshot::new());
            let runner = {
                let (expiry, resolved) = (expiry.clone(), resolved.clone());
                thread::spawn(move || {
                    expiry.run(|due| {
                        for w in due {
                            if w.claim.take() {
                                resolved.set(w.item).unwrap();
                            }
                        }
                    })
                })
            };
            expiry.fire_timeouts();
            expiry.watch(Watched {
                deadline: Instant::now(),
                claim: Arc::new(Claim::new()),
                item: 1,
            });
            resolved.wait();
            expiry.stop();
            runner.join().unwrap();
            assert_eq!(resolved.take(), Some(1));
        });
    }
}

//! [`Claim`]: decides, once, which of two threads resolves a request.
//!
//! The batcher's worker claims a request when it starts it; the request's deadline claims
//! it when it passes first (a blocked `batcher(x)` caller claims its own, the expiry thread
//! a Future's). Whoever loses leaves the request alone: the worker skips it, the caller
//! waits on for the result. One atomic swap decides, so a request can never both run and
//! time out, nor be resolved twice.

use crate::sync::{AtomicBool, Ordering};

/// A flag that exactly one [`take`](Claim::take) wins.
#[derive(Debug)]
pub(crate) struct Claim {
    taken: AtomicBool,
}

impl Claim {
    pub(crate) fn new() -> Self {
        Claim {
            taken: AtomicBool::new(false),
        }
    }

    /// True for the first caller only.
    pub(crate) fn take(&self) -> bool {
        // AcqRel: the winner's later writes (the result it delivers) are ordered after the
        // swap, and a loser that then reads the result sees them through the slot's lock.
        !self.taken.swap(true, Ordering::AcqRel)
    }

    /// Whether someone took it already (then nobody else can).
    pub(crate) fn is_taken(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn exactly_one_of_many_racing_threads_wins() {
        for _ in 0..200 {
            let claim = Arc::new(Claim::new());
            let barrier = Arc::new(Barrier::new(4));
            let racers: Vec<_> = (0..4)
                .map(|_| {
                    let (claim, barrier) = (Arc::clone(&claim), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        claim.take()
                    })
                })
                .collect();
            let wins = racers
                .into_iter()
                .map(|r| r.join().unwrap())
                .filter(|&won| won)
                .count();
            assert_eq!(wins, 1);
            assert!(claim.is_taken());
            assert!(!claim.take());
        }
    }
}

/// `RUSTFLAGS="--cfg loom" cargo test -p rt-queue --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use std::time::Instant;

    use loom::sync::Arc;
    use loom::thread;

    use super::*;
    use crate::Oneshot;

    /// The batcher's protocol for a blocked caller with a deadline, under every
    /// interleaving of the worker starting the request, the deadline passing and the
    /// caller's wait: exactly one of them resolves it, and the caller never waits forever.
    #[test]
    fn loom_a_deadline_and_the_worker_resolve_a_request_exactly_once() {
        loom::model(|| {
            let claim = Arc::new(Claim::new());
            let slot = Arc::new(Oneshot::new());
            let worker = {
                let (claim, slot) = (claim.clone(), slot.clone());
                thread::spawn(move || {
                    let ran = claim.take();
                    if ran {
                        slot.set(7).unwrap();
                    }
                    ran
                })
            };
            let timer = {
                let slot = slot.clone();
                thread::spawn(move || slot.fire_timeouts())
            };
            // Batcher.__call__: wait until the deadline, then claim; a lost claim means the
            // worker started the request first, so its result is coming.
            let timed_out = if slot.wait_deadline(Instant::now()) {
                false
            } else if claim.take() {
                true
            } else {
                slot.wait();
                false
            };
            let ran = worker.join().unwrap();
            timer.join().unwrap();
            assert_ne!(
                ran, timed_out,
                "resolved by exactly one of worker and deadline"
            );
            assert_eq!(slot.take(), ran.then_some(7));
        });
    }
}

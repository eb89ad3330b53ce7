//! [`Oneshot`]: a slot that is filled exactly once and waited on by any number of threads.
//!
//! The batcher hands each blocking caller one of these and fills it with the caller's
//! result; `set` refusing a second value is what makes "every request is resolved exactly
//! once" checkable rather than hoped for.

use std::time::Instant;

use crate::sync::{Condvar, Mutex, Timeouts, lock, wait, wait_until};

/// A value set once, by one thread, and awaited by others.
///
/// ```
/// use std::sync::Arc;
/// use rt_queue::Oneshot;
///
/// let slot = Arc::new(Oneshot::new());
/// let setter = {
///     let slot = Arc::clone(&slot);
///     std::thread::spawn(move || slot.set(42))
/// };
/// slot.wait();
/// assert_eq!(setter.join().unwrap(), Ok(()));
/// assert_eq!(slot.set(7), Err(7)); // a second value is refused
/// assert_eq!(slot.take(), Some(42));
/// assert_eq!(slot.take(), None);
/// ```
#[derive(Debug, Default)]
pub struct Oneshot<T> {
    state: Mutex<Slot<T>>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct Slot<T> {
    value: Option<T>,
    /// Stays true after the value is taken, so that a late `set` is still refused.
    is_set: bool,
    waiters: usize,
    timeouts: Timeouts,
}

impl<T> Oneshot<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Oneshot {
            state: Mutex::new(Slot {
                value: None,
                is_set: false,
                waiters: 0,
                timeouts: Timeouts::default(),
            }),
            ready: Condvar::new(),
        }
    }

    /// Fills the slot and wakes every waiter; a slot that was already set refuses the
    /// value and hands it back.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut slot = lock(&self.state);
        if slot.is_set {
            return Err(value);
        }
        slot.value = Some(value);
        slot.is_set = true;
        let waiters = slot.waiters;
        drop(slot);
        if waiters > 0 {
            self.ready.notify_all();
        }
        Ok(())
    }

    /// True once [`set`](Self::set) succeeded.
    pub fn is_set(&self) -> bool {
        lock(&self.state).is_set
    }

    /// Waits until the slot is set.
    pub fn wait(&self) {
        let mut slot = lock(&self.state);
        while !slot.is_set {
            slot.waiters += 1;
            slot = wait(&self.ready, slot);
            slot.waiters -= 1;
        }
    }

    /// Waits until the slot is set or `deadline` passes; true if it is set.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        let mut slot = lock(&self.state);
        while !slot.is_set {
            if slot.timeouts.expired(deadline) {
                return false;
            }
            slot.waiters += 1;
            slot = wait_until(&self.ready, slot, deadline);
            slot.waiters -= 1;
        }
        true
    }

    /// Takes the value out, if it was set and not yet taken.
    pub fn take(&self) -> Option<T> {
        lock(&self.state).value.take()
    }

    /// The model's timer (see `sync.rs`).
    #[cfg(loom)]
    pub(crate) fn fire_timeouts(&self) {
        lock(&self.state).timeouts.fire();
        self.ready.notify_all();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn set_once_then_refuse() {
        let slot = Oneshot::new();
        assert!(!slot.is_set());
        assert_eq!(slot.set("a"), Ok(()));
        assert!(slot.is_set());
        assert_eq!(slot.set("b"), Err("b"));
        assert_eq!(slot.take(), Some("a"));
        assert_eq!(slot.set("c"), Err("c"), "taking does not reopen the slot");
        assert!(slot.wait_deadline(Instant::now()));
    }

    #[test]
    fn waiters_time_out_or_wake() {
        let slot = Arc::new(Oneshot::<u8>::new());
        let start = Instant::now();
        assert!(!slot.wait_deadline(Instant::now() + Duration::from_millis(20)));
        assert!(start.elapsed() >= Duration::from_millis(20));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let slot = Arc::clone(&slot);
                std::thread::spawn(move || {
                    slot.wait();
                    slot.wait_deadline(Instant::now() + Duration::from_secs(60))
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        slot.set(1).unwrap();
        for w in waiters {
            assert!(w.join().unwrap());
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    #[test]
    fn loom_two_setters_exactly_one_wins_and_the_waiter_wakes() {
        loom::model(|| {
            let slot = Arc::new(Oneshot::new());
            let setters: Vec<_> = (0..2)
                .map(|i| {
                    let slot = slot.clone();
                    thread::spawn(move || slot.set(i).is_ok())
                })
                .collect();
            slot.wait();
            let wins = setters
                .into_iter()
                .map(|s| s.join().unwrap())
                .filter(|&won| won)
                .count();
            assert_eq!(wins, 1);
            assert!(slot.take().is_some());
        });
    }

    #[test]
    fn loom_timed_wait_racing_set() {
        loom::model(|| {
            let slot = Arc::new(Oneshot::new());
            let waiter = {
                let slot = slot.clone();
                thread::spawn(move || slot.wait_deadline(Instant::now()))
            };
            let timer = {
                let slot = slot.clone();
                thread::spawn(move || slot.fire_timeouts())
            };
            slot.set(3).unwrap();
            let woke_set = waiter.join().unwrap();
            timer.join().unwrap();
            // Either way the value is there; a waiter that reports "set" saw it.
            if woke_set {
                assert!(slot.is_set());
            }
            assert_eq!(slot.take(), Some(3));
        });
    }
}

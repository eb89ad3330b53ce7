//! The bounded reorder buffer between the batch builders and the consumer.
//!
//! Builders take numbered tickets (batch indices) and may finish them in any order; the
//! consumer receives them in ticket order. A ticket is only handed out while it is less
//! than `consumed + capacity`, so at most `capacity` batches are being built or waiting at
//! any time: that is the backpressure, in batches (`prefetch`) and, since all batches of a
//! run have about the same size, in bytes (`prefetch_bytes` caps the capacity).

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::error::DataError;

struct State<T> {
    next_ticket: u64,
    end: u64,
    consumed: u64,
    ready: BTreeMap<u64, T>,
    closed: bool,
    failure: Option<DataError>,
}

/// What the consumer gets.
#[derive(Debug)]
pub enum Pop<T> {
    /// The next item in order.
    Item(T),
    /// Not ready within the timeout.
    Pending,
    /// Every ticket was consumed, or the buffer was closed.
    Finished,
    /// A builder failed outside any batch (a panic); raised once.
    Failed(DataError),
}

/// See the module documentation.
pub struct Reorder<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item arrives or the buffer closes.
    arrived: Condvar,
    /// Signalled when the consumer takes an item (a new ticket may be free) or on close.
    space: Condvar,
    capacity: u64,
}

impl<T> std::fmt::Debug for Reorder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reorder")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Reorder<T> {
    /// Tickets `first..end`, at most `capacity` (>= 1) in flight.
    pub fn new(first: u64, end: u64, capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                next_ticket: first,
                end,
                consumed: first,
                ready: BTreeMap::new(),
                closed: false,
                failure: None,
            }),
            arrived: Condvar::new(),
            space: Condvar::new(),
            capacity: capacity.max(1) as u64,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section leaves the state consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next ticket to build, blocking while `capacity` are in flight; `None` when all
    /// tickets are handed out or the buffer is closed.
    pub fn take_ticket(&self) -> Option<u64> {
        let mut st = self.lock();
        loop {
            if st.closed || st.next_ticket >= st.end {
                return None;
            }
            if st.next_ticket < st.consumed + self.capacity {
                let ticket = st.next_ticket;
                st.next_ticket += 1;
                return Some(ticket);
            }
            st = self.space.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Delivers the item of `ticket`.
    pub fn put(&self, ticket: u64, item: T) {
        let mut st = self.lock();
        if !st.closed {
            st.ready.insert(ticket, item);
        }
        drop(st);
        self.arrived.notify_all();
    }

    /// Ends the run with `error` (a builder died without delivering its ticket).
    pub fn fail(&self, error: DataError) {
        let mut st = self.lock();
        st.failure.get_or_insert(error);
        drop(st);
        self.arrived.notify_all();
    }

    /// Stops everything: builders get no more tickets, batches not yet taken are dropped
    /// (freeing their memory), the consumer gets `Finished`.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        let dropped = std::mem::take(&mut st.ready);
        drop(st);
        drop(dropped);
        self.arrived.notify_all();
        self.space.notify_all();
    }

    /// Ends the run at ticket `end` (when a producer finds the data ends earlier than
    /// planned): items before it are still delivered, then `Finished`.
    pub fn finish_at(&self, end: u64) {
        let mut st = self.lock();
        st.end = st.end.min(end);
        drop(st);
        self.arrived.notify_all();
        self.space.notify_all();
    }

    /// The next item in order, waiting up to `timeout`.
    pub fn pop_timeout(&self, timeout: Duration) -> Pop<T> {
        let mut st = self.lock();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let next = st.consumed;
            if let Some(item) = st.ready.remove(&next) {
                st.consumed += 1;
                drop(st);
                self.space.notify_all();
                return Pop::Item(item);
            }
            if let Some(error) = st.failure.take() {
                st.closed = true;
                drop(st);
                self.space.notify_all();
                return Pop::Failed(error);
            }
            if st.closed || st.consumed >= st.end {
                return Pop::Finished;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Pop::Pending;
            }
            st = self
                .arrived
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Items waiting for the consumer.
    pub fn buffered(&self) -> usize {
        self.lock().ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn delivers_in_order_with_bounded_flight() {
        let q = Arc::new(Reorder::new(0, 100, 3));
        let in_flight = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let max_seen = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (q, f, m) = (q.clone(), in_flight.clone(), max_seen.clone());
                std::thread::spawn(move || {
                    while let Some(t) = q.take_ticket() {
                        let now = f.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        m.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(50 * ((t + w) % 3)));
                        q.put(t, t);
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        loop {
            match q.pop_timeout(Duration::from_millis(5)) {
                Pop::Item(t) => {
                    in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    got.push(t)
                }
                Pop::Pending => {}
                Pop::Finished => break,
                Pop::Failed(e) => panic!("{e}"),
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(got, (0..100).collect::<Vec<u64>>());
        // `capacity` in flight, plus the one the consumer popped but has not yet counted.
        assert!(max_seen.load(std::sync::atomic::Ordering::SeqCst) <= 4);
    }

    #[test]
    fn close_releases_builders_and_failure_is_reported() {
        let q = Arc::new(Reorder::<u64>::new(0, 10, 1));
        assert_eq!(q.take_ticket(), Some(0));
        let q2 = q.clone();
        let blocked = std::thread::spawn(move || q2.take_ticket());
        std::thread::sleep(Duration::from_millis(10));
        q.close();
        assert_eq!(blocked.join().unwrap(), None);
        assert!(matches!(q.pop_timeout(Duration::ZERO), Pop::Finished));

        let q = Reorder::<u64>::new(5, 10, 2);
        assert!(matches!(
            q.pop_timeout(Duration::from_millis(1)),
            Pop::Pending
        ));
        q.fail(DataError::Cancelled);
        assert!(matches!(q.pop_timeout(Duration::ZERO), Pop::Failed(_)));
        assert!(matches!(q.pop_timeout(Duration::ZERO), Pop::Finished));
    }
}

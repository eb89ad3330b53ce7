//! [`BoundedQueue`]: a bounded multi-producer multi-consumer FIFO queue with blocking,
//! timed and non-blocking pushes and pops, and an explicit [`close`](BoundedQueue::close).
//!
//! One mutex guards a `VecDeque`; threads that must wait park on a condition variable (no
//! spinning, so a waiting thread costs no CPU), and wake-ups are edge-triggered (see
//! `State`). Why not crossbeam's channel: its only "close" is dropping every sender, which
//! a queue shared by reference (a Python object, an `Arc`) cannot do while other threads
//! are blocked in `send`; and its lock-free internals cannot be model-checked with loom,
//! while every wait here can (see `sync.rs`). In Rust alone crossbeam moves items about
//! 1.1 to 1.25 times as fast (`benches/mpmc.rs`); from Python the GIL, not this lock,
//! bounds throughput (`benchmarks/queue_batcher.py`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::{
    Error, PopError, PopTimeoutError, PushError, PushTimeoutError, Result, TryPopError,
    TryPushError,
};
use crate::sync::{Condvar, Mutex, MutexGuard, Timeouts, lock, try_lock, wait, wait_until};

/// A bounded MPMC FIFO queue that can be closed.
///
/// After [`close`](Self::close), pushes fail (handing the item back) and pops drain what is
/// left, then fail with "closed". `close` wakes every blocked thread.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use rt_queue::{BoundedQueue, PopTimeoutError};
///
/// let queue = Arc::new(BoundedQueue::new(2)?);
/// let producer = {
///     let queue = Arc::clone(&queue);
///     std::thread::spawn(move || {
///         for i in 0..5 {
///             queue.push(i).unwrap(); // blocks while the queue is full
///         }
///         queue.close();
///     })
/// };
/// let mut received = Vec::new();
/// while let Ok(item) = queue.pop() {  // drains, then stops at close
///     received.push(item);
/// }
/// producer.join().unwrap();
/// assert_eq!(received, vec![0, 1, 2, 3, 4]);
/// assert_eq!(queue.pop_timeout(Duration::from_millis(1)), Err(PopTimeoutError::Closed));
/// # Ok::<(), rt_queue::Error>(())
/// ```
pub struct BoundedQueue<T> {
    state: Mutex<State<T>>,
    /// Single pops wait here for an item.
    not_empty: Condvar,
    /// Pushes wait here for a free slot.
    not_full: Condvar,
    /// [`pop_many`](BoundedQueue::pop_many) waits here for enough items.
    filled: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    // Threads blocked in each kind of wait. Notifications are edge-triggered: a push wakes
    // one popper only when it made the queue non-empty, a pop wakes one pusher only when it
    // made the queue non-full, and a woken thread that leaves items (or room) behind wakes
    // the next waiter ("passing the baton"). A steady stream thus costs one wake-up per
    // burst, not a futex system call per item (benches/mpmc.rs measures the difference).
    poppers: usize,
    pushers: usize,
    batchers: usize,
    /// The smallest `want` among the threads blocked in `pop_many` (`usize::MAX` when none).
    /// Each waiter lowers it and the last one to leave resets it, so it can be lower than
    /// needed (a spurious wake-up) but never higher (a lost one).
    batch_want: usize,
    timeouts: Timeouts,
}

/// How long an operation may block.
#[derive(Clone, Copy, Debug)]
enum Wait {
    No,
    Forever,
    Until(Instant),
}

impl Wait {
    /// A timeout too long to represent as an `Instant` waits forever.
    fn from_timeout(timeout: Duration) -> Wait {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }
}

/// Why an internal push or pop gave up.
enum Refusal {
    Full,
    Timeout,
    Closed,
}

/// Which waiters to wake once the lock is released.
#[derive(Default)]
#[must_use]
struct Wake {
    one_popper: bool,
    batchers: bool,
    pushers: usize,
}

impl<T> BoundedQueue<T> {
    /// A queue that holds at most `capacity` items; `capacity` must be at least 1.
    pub fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::ZeroCapacity(capacity));
        }
        Ok(BoundedQueue {
            state: Mutex::new(State {
                // Grown on demand: a large capacity costs nothing until it fills.
                items: VecDeque::with_capacity(capacity.min(64)),
                closed: false,
                poppers: 0,
                pushers: 0,
                batchers: 0,
                batch_want: usize::MAX,
                timeouts: Timeouts::default(),
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            filled: Condvar::new(),
            capacity,
        })
    }

    /// The most items the queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of items in the queue now (it may change as soon as this returns).
    pub fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    /// True when the queue holds no item now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the queue holds `capacity` items now.
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    /// Calls `f` on every queued item, oldest first, if no other thread holds the lock
    /// now; `Ok(false)` (and no call) when one does. Never blocks: for Python's garbage
    /// collector, which must not wait on a lock and may safely be shown fewer references
    /// than there are (an unreported reference only keeps an object alive).
    pub fn try_for_each<E>(&self, mut f: impl FnMut(&T) -> Result<(), E>) -> Result<bool, E> {
        let Some(state) = try_lock(&self.state) else {
            return Ok(false);
        };
        for item in &state.items {
            f(item)?;
        }
        Ok(true)
    }

    /// Removes every queued item and returns them, oldest first, waking blocked pushers
    /// (for Python's garbage collector, which clears a queue that is part of an unreachable
    /// reference cycle). The queue stays open.
    pub fn take_all(&self) -> Vec<T> {
        let mut state = lock(&self.state);
        let items: Vec<T> = state.items.drain(..).collect();
        let pushers = state.pushers;
        drop(state);
        if pushers > 0 && !items.is_empty() {
            self.not_full.notify_all();
        }
        items
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Closes the queue and wakes every blocked thread: pushes fail from now on, pops take
    /// what is left and then fail. Returns true if this call closed it (false if it was
    /// already closed).
    pub fn close(&self) -> bool {
        let mut state = lock(&self.state);
        if state.closed {
            return false;
        }
        state.closed = true;
        let (poppers, pushers, batchers) = (state.poppers, state.pushers, state.batchers);
        drop(state);
        if poppers > 0 {
            self.not_empty.notify_all();
        }
        if pushers > 0 {
            self.not_full.notify_all();
        }
        if batchers > 0 {
            self.filled.notify_all();
        }
        true
    }

    /// Adds `item` if there is room, without blocking.
    pub fn try_push(&self, item: T) -> Result<(), TryPushError<T>> {
        self.push_inner(item, Wait::No)
            .map_err(|(why, item)| match why {
                Refusal::Closed => TryPushError::Closed(item),
                Refusal::Full | Refusal::Timeout => TryPushError::Full(item),
            })
    }

    /// Adds `item`, waiting for room as long as it takes; fails only if the queue is closed.
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.push_inner(item, Wait::Forever)
            .map_err(|(_, item)| PushError(item))
    }

    /// Adds `item`, waiting up to `timeout` for room.
    pub fn push_timeout(&self, item: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        self.push_waiting(item, Wait::from_timeout(timeout))
    }

    /// Adds `item`, waiting until `deadline` for room. An item goes in if there is room
    /// when the call starts, even if `deadline` has passed.
    pub fn push_deadline(&self, item: T, deadline: Instant) -> Result<(), PushTimeoutError<T>> {
        self.push_waiting(item, Wait::Until(deadline))
    }

    fn push_waiting(&self, item: T, wait: Wait) -> Result<(), PushTimeoutError<T>> {
        self.push_inner(item, wait)
            .map_err(|(why, item)| match why {
                Refusal::Closed => PushTimeoutError::Closed(item),
                Refusal::Full | Refusal::Timeout => PushTimeoutError::Timeout(item),
            })
    }

    /// Takes the oldest item if there is one, without blocking.
    pub fn try_pop(&self) -> Result<T, TryPopError> {
        self.pop_inner(Wait::No).map_err(|why| match why {
            Refusal::Closed => TryPopError::Closed,
            Refusal::Full | Refusal::Timeout => TryPopError::Empty,
        })
    }

    /// Takes the oldest item, waiting as long as it takes; fails only once the queue is
    /// closed and drained.
    pub fn pop(&self) -> Result<T, PopError> {
        self.pop_inner(Wait::Forever).map_err(|_| PopError)
    }

    /// Takes the oldest item, waiting up to `timeout` for one.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopTimeoutError> {
        self.pop_waiting(Wait::from_timeout(timeout))
    }

    /// Takes the oldest item, waiting until `deadline` for one. An item that is there when
    /// the call starts is taken even if `deadline` has passed.
    pub fn pop_deadline(&self, deadline: Instant) -> Result<T, PopTimeoutError> {
        self.pop_waiting(Wait::Until(deadline))
    }

    fn pop_waiting(&self, wait: Wait) -> Result<T, PopTimeoutError> {
        self.pop_inner(wait).map_err(|why| match why {
            Refusal::Closed => PopTimeoutError::Closed,
            Refusal::Full | Refusal::Timeout => PopTimeoutError::Timeout,
        })
    }

    /// Moves up to `max` of the oldest items into `out` (appending), under one lock.
    ///
    /// Waits until the queue holds at least `want` items (clamped to `1..=max` and to the
    /// capacity), the `deadline` passes, or the queue is closed; then takes what there is.
    /// A waiting caller is woken once, when enough items are there, rather than once per
    /// push. Returns how many items were moved: fewer than `want` after a deadline or
    /// close. Fails with `Timeout` when the deadline passed with the queue empty, and with
    /// `Closed` when it is closed and drained. `max == 0` moves nothing and returns `Ok(0)`.
    pub fn pop_many(
        &self,
        out: &mut Vec<T>,
        want: usize,
        max: usize,
        deadline: Option<Instant>,
    ) -> Result<usize, PopTimeoutError> {
        if max == 0 {
            return Ok(0);
        }
        let want = want.clamp(1, max).min(self.capacity);
        let mut state = lock(&self.state);
        loop {
            let available = state.items.len();
            let expired = deadline.is_some_and(|d| state.timeouts.expired(d));
            if available >= want || (available > 0 && (state.closed || expired)) {
                let was_full = available >= self.capacity;
                let taken = available.min(max);
                out.extend(state.items.drain(..taken));
                let wake = Wake {
                    // Items left behind may have a popper sleeping on them.
                    one_popper: state.poppers > 0 && !state.items.is_empty(),
                    batchers: false,
                    // Freed slots: wake as many pushers (the baton covers later ones).
                    pushers: if was_full {
                        state.pushers.min(taken)
                    } else {
                        0
                    },
                };
                drop(state);
                self.wake(wake);
                return Ok(taken);
            }
            if state.closed {
                return Err(PopTimeoutError::Closed);
            }
            if expired {
                return Err(PopTimeoutError::Timeout);
            }
            state.batchers += 1;
            state.batch_want = state.batch_want.min(want);
            state = match deadline {
                None => wait(&self.filled, state),
                Some(d) => wait_until(&self.filled, state, d),
            };
            state.batchers -= 1;
            if state.batchers == 0 {
                state.batch_want = usize::MAX;
            }
        }
    }

    fn push_inner(&self, item: T, wait_for: Wait) -> Result<(), (Refusal, T)> {
        let mut state = lock(&self.state);
        let mut waited = false;
        loop {
            if state.closed {
                return Err((Refusal::Closed, item));
            }
            if state.items.len() < self.capacity {
                let was_empty = state.items.is_empty();
                state.items.push_back(item);
                let wake = Wake {
                    // Only on the empty-to-non-empty edge: the popper woken passes the
                    // baton (see `pop_inner`), so later pushes need not notify.
                    one_popper: state.poppers > 0 && was_empty,
                    batchers: state.batchers > 0 && state.items.len() >= state.batch_want,
                    // Pass the baton: room is left, and another pusher may sleep on it.
                    pushers: usize::from(
                        waited && state.pushers > 0 && state.items.len() < self.capacity,
                    ),
                };
                drop(state);
                self.wake(wake);
                return Ok(());
            }
            waited = true;
            state = match wait_for {
                Wait::No => return Err((Refusal::Full, item)),
                Wait::Until(deadline) if state.timeouts.expired(deadline) => {
                    return Err((Refusal::Timeout, item));
                }
                Wait::Forever => {
                    Self::wait_counted(&self.not_full, state, None, |s| &mut s.pushers)
                }
                Wait::Until(deadline) => {
                    Self::wait_counted(&self.not_full, state, Some(deadline), |s| &mut s.pushers)
                }
            };
        }
    }

    fn pop_inner(&self, wait_for: Wait) -> Result<T, Refusal> {
        let mut state = lock(&self.state);
        let mut waited = false;
        loop {
            let was_full = state.items.len() >= self.capacity;
            if let Some(item) = state.items.pop_front() {
                let wake = Wake {
                    // Pass the baton: items are left, and another popper may sleep on them.
                    one_popper: waited && state.poppers > 0 && !state.items.is_empty(),
                    batchers: false,
                    // A pusher is only woken on the full-to-non-full edge; the one woken
                    // passes the baton (see `push_inner`).
                    pushers: usize::from(state.pushers > 0 && was_full),
                };
                drop(state);
                self.wake(wake);
                return Ok(item);
            }
            if state.closed {
                return Err(Refusal::Closed);
            }
            waited = true;
            state = match wait_for {
                Wait::No => return Err(Refusal::Full),
                Wait::Until(deadline) if state.timeouts.expired(deadline) => {
                    return Err(Refusal::Timeout);
                }
                Wait::Forever => {
                    Self::wait_counted(&self.not_empty, state, None, |s| &mut s.poppers)
                }
                Wait::Until(deadline) => {
                    Self::wait_counted(&self.not_empty, state, Some(deadline), |s| &mut s.poppers)
                }
            };
        }
    }

    /// Waits on `condvar`, counted in the waiter count `count` picks, so that the other
    /// side knows to notify.
    fn wait_counted<'a>(
        condvar: &Condvar,
        mut state: MutexGuard<'a, State<T>>,
        deadline: Option<Instant>,
        count: fn(&mut State<T>) -> &mut usize,
    ) -> MutexGuard<'a, State<T>> {
        *count(&mut state) += 1;
        let mut state = match deadline {
            None => wait(condvar, state),
            Some(d) => wait_until(condvar, state, d),
        };
        *count(&mut state) -= 1;
        state
    }

    /// Sends the notifications a push or pop decided on, after releasing the lock so that
    /// a woken thread does not immediately block on it.
    fn wake(&self, wake: Wake) {
        if wake.one_popper {
            self.not_empty.notify_one();
        }
        if wake.batchers {
            self.filled.notify_all();
        }
        match wake.pushers {
            0 => {}
            1 => self.not_full.notify_one(),
            _ => self.not_full.notify_all(),
        }
    }

    /// Makes every deadline pass and wakes every timed waiter: the model's timer.
    #[cfg(loom)]
    pub(crate) fn fire_timeouts(&self) {
        lock(&self.state).timeouts.fire();
        self.not_empty.notify_all();
        self.not_full.notify_all();
        self.filled.notify_all();
    }
}

impl<T> std::fmt::Debug for BoundedQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("BoundedQueue")
            .field("len", &state.items.len())
            .field("capacity", &self.capacity)
            .field("closed", &state.closed)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::thread;

    use super::*;

    const SHORT: Duration = Duration::from_millis(30);

    #[test]
    fn zero_capacity_is_refused() {
        assert!(matches!(
            BoundedQueue::<u8>::new(0),
            Err(Error::ZeroCapacity(0))
        ));
    }

    #[test]
    fn items_come_out_in_order_and_the_bound_holds() {
        let q = BoundedQueue::new(3).unwrap();
        for i in 0..3 {
            q.try_push(i).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.try_push(9), Err(TryPushError::Full(9)));
        assert_eq!(q.len(), 3);
        assert_eq!(
            (0..3).map(|_| q.try_pop().unwrap()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(q.try_pop(), Err(TryPopError::Empty));
        assert!(q.is_empty());
        assert_eq!(q.capacity(), 3);
    }

    #[test]
    fn close_refuses_pushes_and_drains_pops() {
        let q = BoundedQueue::new(4).unwrap();
        q.push("a").unwrap();
        q.push("b").unwrap();
        assert!(q.close());
        assert!(!q.close(), "the second close reports it was already closed");
        assert!(q.is_closed());
        assert_eq!(q.try_push("c"), Err(TryPushError::Closed("c")));
        assert_eq!(q.push("c").unwrap_err().into_inner(), "c");
        assert_eq!(
            q.push_timeout("c", SHORT),
            Err(PushTimeoutError::Closed("c"))
        );
        assert_eq!(q.pop(), Ok("a"));
        assert_eq!(q.pop_timeout(SHORT), Ok("b"));
        assert_eq!(q.pop(), Err(PopError));
        assert_eq!(q.try_pop(), Err(TryPopError::Closed));
        assert_eq!(q.pop_timeout(SHORT), Err(PopTimeoutError::Closed));
        let mut out = Vec::new();
        assert_eq!(
            q.pop_many(&mut out, 1, 4, None),
            Err(PopTimeoutError::Closed)
        );
    }

    #[test]
    fn timeouts_wait_about_as_long_as_asked() {
        let q = BoundedQueue::<u32>::new(1).unwrap();
        let start = Instant::now();
        assert_eq!(q.pop_timeout(SHORT), Err(PopTimeoutError::Timeout));
        let waited = start.elapsed();
        assert!(waited >= SHORT && waited < SHORT * 20, "{waited:?}");

        q.push(1).unwrap();
        let start = Instant::now();
        assert_eq!(q.push_timeout(2, SHORT), Err(PushTimeoutError::Timeout(2)));
        assert!(start.elapsed() >= SHORT);

        // A deadline in the past still takes or places what it can without waiting.
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(q.pop_deadline(past), Ok(1));
        assert_eq!(q.push_deadline(3, past), Ok(()));
        assert_eq!(q.push_deadline(4, past), Err(PushTimeoutError::Timeout(4)));
        // A timeout that overflows Instant waits forever instead of panicking; the item
        // arriving ends it.
        let q = Arc::new(BoundedQueue::new(1).unwrap());
        let pusher = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                thread::sleep(SHORT);
                q.push(5).unwrap();
            })
        };
        assert_eq!(q.pop_timeout(Duration::MAX), Ok(5));
        pusher.join().unwrap();
    }

    #[test]
    fn a_blocked_pop_wakes_for_a_push_and_a_blocked_push_for_a_pop() {
        let q = Arc::new(BoundedQueue::new(1).unwrap());
        let popper = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.pop())
        };
        thread::sleep(SHORT);
        q.push(7).unwrap();
        assert_eq!(popper.join().unwrap(), Ok(7));

        q.push(1).unwrap();
        let pusher = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.push(2))
        };
        thread::sleep(SHORT);
        assert_eq!(q.pop(), Ok(1));
        assert_eq!(pusher.join().unwrap(), Ok(()));
        assert_eq!(q.pop(), Ok(2));
    }

    #[test]
    fn try_for_each_sees_every_item_unless_the_lock_is_held() {
        let q = BoundedQueue::new(4).unwrap();
        for i in 0..3 {
            q.push(i).unwrap();
        }
        let mut seen = Vec::new();
        assert_eq!(
            q.try_for_each(|&i| {
                seen.push(i);
                Ok::<(), ()>(())
            }),
            Ok(true)
        );
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(q.try_for_each(|_| Err("stop")), Err("stop"));
        let held = lock(&q.state);
        assert_eq!(q.try_for_each(|_| Ok::<(), ()>(())), Ok(false));
        drop(held);
    }

    #[test]
    fn take_all_empties_the_queue_and_wakes_a_blocked_pusher() {
        let q = Arc::new(BoundedQueue::new(1).unwrap());
        q.push(1).unwrap();
        let pusher = {
            let q = Arc::clone(&q);
            thread::spawn(move || q.push(2))
        };
        thread::sleep(SHORT);
        assert_eq!(q.take_all(), [1]);
        assert_eq!(pusher.join().unwrap(), Ok(()));
        assert_eq!(q.try_pop(), Ok(2));
        assert!(!q.is_closed());
    }

    #[test]
    fn close_wakes_every_kind_of_waiter() {
        let empty = Arc::new(BoundedQueue::<u32>::new(1).unwrap());
        let full = Arc::new(BoundedQueue::new(1).unwrap());
        full.push(0).unwrap();
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let q = Arc::clone(&empty);
            waiters.push(thread::spawn(move || q.pop().is_err()));
            let q = Arc::clone(&empty);
            waiters.push(thread::spawn(move || {
                q.pop_timeout(Duration::from_secs(60)) == Err(PopTimeoutError::Closed)
            }));
            let q = Arc::clone(&empty);
            waiters.push(thread::spawn(move || {
                q.pop_many(&mut Vec::new(), 1, 1, None) == Err(PopTimeoutError::Closed)
            }));
            let q = Arc::clone(&full);
            waiters.push(thread::spawn(move || q.push(1) == Err(PushError(1))));
        }
        thread::sleep(SHORT);
        let start = Instant::now();
        empty.close();
        full.close();
        for w in waiters {
            assert!(w.join().unwrap());
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(
            full.pop(),
            Ok(0),
            "the item pushed before close is still there"
        );
    }

    #[test]
    fn pop_many_takes_up_to_max_and_waits_for_want() {
        let q = Arc::new(BoundedQueue::new(8).unwrap());
        for i in 0..5 {
            q.push(i).unwrap();
        }
        let mut out = vec![100];
        assert_eq!(q.pop_many(&mut out, 1, 3, None), Ok(3));
        assert_eq!(out, [100, 0, 1, 2]);
        assert_eq!(q.pop_many(&mut out, 1, 0, None), Ok(0));

        // Two items are there; waiting for four until a deadline takes the two.
        out.clear();
        let start = Instant::now();
        assert_eq!(
            q.pop_many(&mut out, 4, 4, Some(Instant::now() + SHORT)),
            Ok(2)
        );
        assert!(start.elapsed() >= SHORT);
        assert_eq!(out, [3, 4]);
        assert_eq!(
            q.pop_many(&mut out, 1, 4, Some(Instant::now() + SHORT)),
            Err(PopTimeoutError::Timeout)
        );

        // A waiter for three wakes when the third arrives, not at its deadline.
        let waiter = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                let mut got = Vec::new();
                let start = Instant::now();
                let n = q.pop_many(
                    &mut got,
                    3,
                    8,
                    Some(Instant::now() + Duration::from_secs(60)),
                );
                (n, got, start.elapsed())
            })
        };
        for i in 0..3 {
            thread::sleep(Duration::from_millis(5));
            q.push(10 + i).unwrap();
        }
        let (n, got, waited) = waiter.join().unwrap();
        assert_eq!(n, Ok(3));
        assert_eq!(got, [10, 11, 12]);
        assert!(waited < Duration::from_secs(30));

        // `want` above the capacity is clamped, so a full queue satisfies it.
        let small = BoundedQueue::new(2).unwrap();
        small.push(1).unwrap();
        small.push(2).unwrap();
        assert_eq!(small.pop_many(&mut out, 10, 10, None), Ok(2));
    }

    #[test]
    fn pop_many_frees_room_for_blocked_pushers() {
        let q = Arc::new(BoundedQueue::new(2).unwrap());
        q.push(0).unwrap();
        q.push(1).unwrap();
        let pushers: Vec<_> = (2..4)
            .map(|i| {
                let q = Arc::clone(&q);
                thread::spawn(move || q.push(i))
            })
            .collect();
        thread::sleep(SHORT);
        let mut out = Vec::new();
        assert_eq!(q.pop_many(&mut out, 2, 2, None), Ok(2));
        for p in pushers {
            assert_eq!(p.join().unwrap(), Ok(()));
        }
        assert_eq!(q.pop_many(&mut out, 2, 2, None), Ok(2));
        out.sort_unstable();
        assert_eq!(out, [0, 1, 2, 3]);
    }

    /// A thread blocked in `pop` must not burn CPU: it parks. Checked by the waiter's own
    /// CPU time while it waits (Linux's per-thread `schedstat`, in nanoseconds): 300 ms
    /// spinning would cost it tens of milliseconds even on a loaded 2-core machine, parked
    /// it costs nothing. Elsewhere only the registration as a parked waiter is checked.
    #[test]
    fn waiting_parks_instead_of_spinning() {
        let q = Arc::new(BoundedQueue::<u32>::new(1).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let popper = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                // "<pid>/task/<tid>": where this thread's statistics stay readable by others.
                tx.send(std::fs::read_link("/proc/thread-self").ok())
                    .unwrap();
                q.pop()
            })
        };
        let me = rx.recv().unwrap();
        while lock(&q.state).poppers == 0 {
            thread::yield_now();
        }
        // The popper is registered as a parked waiter, exactly once.
        assert_eq!(lock(&q.state).poppers, 1);
        let cpu_ns = || -> Option<u64> {
            let path = Path::new("/proc").join(me.as_ref()?).join("schedstat");
            let stat = std::fs::read_to_string(path).ok()?;
            stat.split_whitespace().next()?.parse().ok()
        };
        let before = cpu_ns();
        thread::sleep(Duration::from_millis(300));
        let after = cpu_ns();
        if cfg!(target_os = "linux") {
            let (before, after) = (before.unwrap(), after.unwrap());
            let used = Duration::from_nanos(after - before);
            assert!(
                used < Duration::from_millis(20),
                "the blocked popper used {used:?} of CPU in 300 ms"
            );
        }
        assert_eq!(lock(&q.state).poppers, 1);
        q.push(3).unwrap();
        assert_eq!(popper.join().unwrap(), Ok(3));
        assert_eq!(lock(&q.state).poppers, 0);
    }

    /// The issue's stress test: 8 producers and 8 consumers move 1M items through a small
    /// queue; every item arrives exactly once.
    #[test]
    fn eight_producers_eight_consumers_one_million_items_none_lost_or_duplicated() {
        const PRODUCERS: usize = 8;
        const CONSUMERS: usize = 8;
        const TOTAL: usize = 1_000_000;
        const PER_PRODUCER: usize = TOTAL / PRODUCERS;
        let q = Arc::new(BoundedQueue::new(64).unwrap());
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    for i in 0..PER_PRODUCER {
                        let item = p * PER_PRODUCER + i;
                        // Mix the three kinds of push.
                        match i % 3 {
                            0 => q.push(item).unwrap(),
                            1 => q.push_timeout(item, Duration::from_secs(60)).unwrap(),
                            _ => {
                                let mut item = item;
                                loop {
                                    match q.try_push(item) {
                                        Ok(()) => break,
                                        Err(TryPushError::Full(back)) => {
                                            item = back;
                                            thread::yield_now();
                                        }
                                        Err(TryPushError::Closed(_)) => unreachable!(),
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|c| {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    let mut got = Vec::with_capacity(TOTAL / CONSUMERS * 2);
                    let mut batch = Vec::new();
                    loop {
                        // Mix the kinds of pop; all end at close.
                        let done = match c % 3 {
                            0 => q.pop().map(|x| got.push(x)).is_err(),
                            1 => match q.pop_timeout(Duration::from_millis(5)) {
                                Ok(x) => {
                                    got.push(x);
                                    false
                                }
                                Err(PopTimeoutError::Timeout) => false,
                                Err(PopTimeoutError::Closed) => true,
                            },
                            _ => {
                                let r = q.pop_many(&mut batch, 4, 16, None);
                                got.append(&mut batch);
                                r.is_err()
                            }
                        };
                        if done {
                            return got;
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.close();
        let mut seen = vec![false; TOTAL];
        let mut count = 0;
        for c in consumers {
            for item in c.join().unwrap() {
                assert!(!seen[item], "item {item} arrived twice");
                seen[item] = true;
                count += 1;
            }
        }
        assert_eq!(count, TOTAL, "items were lost");
    }

    #[test]
    fn debug_shows_the_state() {
        let q = BoundedQueue::new(2).unwrap();
        q.push(1).unwrap();
        assert_eq!(
            format!("{q:?}"),
            "BoundedQueue { len: 1, capacity: 2, closed: false, .. }"
        );
    }
}

/// Model checks: every interleaving of these small scenarios, run with
/// `RUSTFLAGS="--cfg loom" cargo test -p rt-queue --release --lib loom`. A lost wake-up
/// shows up as a deadlock, which loom reports.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    fn queue(capacity: usize) -> Arc<BoundedQueue<u32>> {
        Arc::new(BoundedQueue::new(capacity).unwrap())
    }

    #[test]
    fn loom_blocking_push_and_pop_hand_over_every_item_in_order() {
        loom::model(|| {
            let q = queue(1);
            let producer = {
                let q = q.clone();
                thread::spawn(move || {
                    q.push(1).unwrap();
                    q.push(2).unwrap();
                })
            };
            assert_eq!(q.pop(), Ok(1));
            assert_eq!(q.pop(), Ok(2));
            producer.join().unwrap();
        });
    }

    /// Two poppers sleep; two pushes make one empty-to-non-empty edge; the popper woken
    /// by it must pass the baton to the other.
    #[test]
    fn loom_two_blocked_poppers_both_get_an_item() {
        loom::model(|| {
            let q = queue(2);
            let poppers: Vec<_> = (0..2)
                .map(|_| {
                    let q = q.clone();
                    thread::spawn(move || q.pop())
                })
                .collect();
            q.push(1).unwrap();
            q.push(2).unwrap();
            let mut got: Vec<u32> = poppers
                .into_iter()
                .map(|p| p.join().unwrap().unwrap())
                .collect();
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
        });
    }

    /// Two pushers sleep on a full queue; two pops make one full-to-non-full edge, and
    /// the pusher woken by it must pass the baton to the other.
    #[test]
    fn loom_two_blocked_pushers_both_get_in() {
        loom::model(|| {
            let q = queue(2);
            q.push(0).unwrap();
            q.push(1).unwrap();
            let pushers: Vec<_> = (2..4)
                .map(|i| {
                    let q = q.clone();
                    thread::spawn(move || q.push(i))
                })
                .collect();
            let mut got: Vec<u32> = (0..4).map(|_| q.pop().unwrap()).collect();
            for p in pushers {
                assert_eq!(p.join().unwrap(), Ok(()));
            }
            got.sort_unstable();
            assert_eq!(got, [0, 1, 2, 3]);
        });
    }

    #[test]
    fn loom_close_wakes_a_blocked_pop() {
        loom::model(|| {
            let q = queue(1);
            let popper = {
                let q = q.clone();
                thread::spawn(move || q.pop())
            };
            q.close();
            assert_eq!(popper.join().unwrap(), Err(PopError));
        });
    }

    #[test]
    fn loom_close_wakes_a_blocked_push_and_keeps_what_was_queued() {
        loom::model(|| {
            let q = queue(1);
            q.push(1).unwrap();
            let pusher = {
                let q = q.clone();
                thread::spawn(move || q.push(2))
            };
            q.close();
            assert_eq!(pusher.join().unwrap(), Err(PushError(2)));
            assert_eq!(q.pop(), Ok(1));
            assert_eq!(q.pop(), Err(PopError));
        });
    }

    #[test]
    fn loom_two_consumers_drain_then_see_closed() {
        loom::model(|| {
            let q = queue(1);
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    let q = q.clone();
                    thread::spawn(move || q.pop().ok())
                })
                .collect();
            q.push(7).unwrap();
            q.close();
            let got: Vec<_> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
            // Exactly one consumer gets the item; the other sees the close.
            assert_eq!(got.iter().flatten().count(), 1);
            assert!(got.contains(&Some(7)));
        });
    }

    #[test]
    fn loom_timed_pop_racing_a_push_neither_loses_nor_duplicates() {
        loom::model(|| {
            let q = queue(1);
            let popper = {
                let q = q.clone();
                thread::spawn(move || q.pop_timeout(Duration::from_secs(1)))
            };
            let timer = {
                let q = q.clone();
                thread::spawn(move || q.fire_timeouts())
            };
            q.push(5).unwrap();
            let popped = popper.join().unwrap();
            timer.join().unwrap();
            match popped {
                Ok(item) => {
                    assert_eq!(item, 5);
                    assert_eq!(q.try_pop(), Err(TryPopError::Empty));
                }
                Err(PopTimeoutError::Timeout) => assert_eq!(q.try_pop(), Ok(5)),
                Err(PopTimeoutError::Closed) => panic!("nobody closed the queue"),
            }
        });
    }

    #[test]
    fn loom_timed_push_racing_a_pop_neither_loses_nor_duplicates() {
        loom::model(|| {
            let q = queue(1);
            q.push(1).unwrap();
            let pusher = {
                let q = q.clone();
                thread::spawn(move || q.push_timeout(2, Duration::from_secs(1)))
            };
            let timer = {
                let q = q.clone();
                thread::spawn(move || q.fire_timeouts())
            };
            assert_eq!(q.pop(), Ok(1));
            let pushed = pusher.join().unwrap();
            timer.join().unwrap();
            match pushed {
                Ok(()) => assert_eq!(q.try_pop(), Ok(2)),
                Err(PushTimeoutError::Timeout(item)) => {
                    assert_eq!(item, 2);
                    assert_eq!(q.try_pop(), Err(TryPopError::Empty));
                }
                Err(PushTimeoutError::Closed(_)) => panic!("nobody closed the queue"),
            }
        });
    }

    #[test]
    fn loom_timed_pop_racing_close_ends_either_way() {
        loom::model(|| {
            let q = queue(1);
            let popper = {
                let q = q.clone();
                thread::spawn(move || q.pop_timeout(Duration::from_secs(1)))
            };
            let timer = {
                let q = q.clone();
                thread::spawn(move || q.fire_timeouts())
            };
            q.close();
            let popped = popper.join().unwrap();
            timer.join().unwrap();
            assert!(matches!(
                popped,
                Err(PopTimeoutError::Closed | PopTimeoutError::Timeout)
            ));
        });
    }

    #[test]
    fn loom_pop_many_wakes_when_enough_items_arrive() {
        loom::model(|| {
            let q = queue(2);
            let producer = {
                let q = q.clone();
                thread::spawn(move || {
                    q.push(1).unwrap();
                    q.push(2).unwrap();
                })
            };
            let mut out = Vec::new();
            assert_eq!(q.pop_many(&mut out, 2, 2, None), Ok(2));
            assert_eq!(out, [1, 2]);
            producer.join().unwrap();
        });
    }

    #[test]
    fn loom_pop_many_with_a_deadline_takes_what_came() {
        loom::model(|| {
            let q = queue(2);
            let producer = {
                let q = q.clone();
                thread::spawn(move || q.push(1).unwrap())
            };
            let timer = {
                let q = q.clone();
                thread::spawn(move || q.fire_timeouts())
            };
            let mut out = Vec::new();
            let got = q.pop_many(&mut out, 2, 2, Some(Instant::now()));
            producer.join().unwrap();
            timer.join().unwrap();
            match got {
                Ok(1) => assert_eq!(out, [1]),
                Err(PopTimeoutError::Timeout) => assert_eq!(q.try_pop(), Ok(1)),
                other => panic!("unexpected {other:?}"),
            }
        });
    }

    #[test]
    fn loom_pop_many_and_a_single_pop_share_items_without_loss() {
        loom::model(|| {
            let q = queue(2);
            let batcher = {
                let q = q.clone();
                thread::spawn(move || {
                    let mut out = Vec::new();
                    while q.pop_many(&mut out, 2, 2, None).is_ok() {}
                    out
                })
            };
            let popper = {
                let q = q.clone();
                thread::spawn(move || q.pop().ok())
            };
            q.push(1).unwrap();
            q.push(2).unwrap();
            q.close();
            let mut all = batcher.join().unwrap();
            all.extend(popper.join().unwrap());
            all.sort_unstable();
            assert_eq!(all, [1, 2]);
        });
    }
}

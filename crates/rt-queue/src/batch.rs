//! Dynamic batching: take requests off a [`BoundedQueue`] in batches of up to
//! `max_batch_size`, waiting at most `max_wait` after the batch's first request arrived.

use std::time::{Duration, Instant};

use crate::error::{Error, PopError, Result};
use crate::queue::BoundedQueue;

/// Something that remembers when it was queued.
pub trait Queued {
    /// When the item was pushed into the queue.
    fn enqueued_at(&self) -> Instant;
}

/// How big a batch may grow and how long its first request may wait for company.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPolicy {
    max_batch_size: usize,
    max_wait: Duration,
}

impl BatchPolicy {
    /// Batches of at most `max_batch_size` (>= 1) requests; a batch goes when it is full
    /// or `max_wait` after its first request was queued, whichever comes first.
    pub fn new(max_batch_size: usize, max_wait: Duration) -> Result<Self> {
        if max_batch_size == 0 {
            return Err(Error::ZeroBatchSize(max_batch_size));
        }
        Ok(BatchPolicy {
            max_batch_size,
            max_wait,
        })
    }

    /// The most requests in one batch.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// How long a batch's first request may wait for more.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

/// Appends the next batch to `out` (which should be empty), blocking until there is at
/// least one request.
///
/// The batch is sent (this returns) as soon as it holds `max_batch_size` requests, or when
/// `max_wait` has passed since its first request was *queued*, so a request that already
/// waited while the consumer was busy is not made to wait again. A backlog longer than one
/// batch gives full batches at once. The consumer is woken once when the batch is full,
/// not once per request. Fails only when the queue is closed and drained; a close while a
/// batch is forming returns what it holds.
///
/// ```
/// use std::time::{Duration, Instant};
/// use rt_queue::{BatchPolicy, BoundedQueue, Queued, next_batch};
///
/// struct Request(u32, Instant);
/// impl Queued for Request {
///     fn enqueued_at(&self) -> Instant { self.1 }
/// }
///
/// let queue = BoundedQueue::new(16)?;
/// for i in 0..5 {
///     queue.push(Request(i, Instant::now())).unwrap();
/// }
/// let policy = BatchPolicy::new(4, Duration::from_millis(2))?;
/// let mut batch = Vec::new();
/// next_batch(&queue, &policy, &mut batch).unwrap(); // full: goes at once
/// assert_eq!(batch.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
/// batch.clear();
/// next_batch(&queue, &policy, &mut batch).unwrap(); // one left: goes after 2 ms
/// assert_eq!(batch.len(), 1);
/// # Ok::<(), rt_queue::Error>(())
/// ```
pub fn next_batch<T: Queued>(
    queue: &BoundedQueue<T>,
    policy: &BatchPolicy,
    out: &mut Vec<T>,
) -> Result<(), PopError> {
    let max = policy.max_batch_size;
    let start = out.len();
    // Wait for the first request; take whatever else is already there.
    queue.pop_many(out, 1, max, None).map_err(|_| PopError)?;
    let Some(first) = out.get(start) else {
        return Ok(());
    };
    // `None` (an unrepresentable instant) waits for a full batch or close.
    let flush_at = first.enqueued_at().checked_add(policy.max_wait);
    loop {
        let missing = max.saturating_sub(out.len() - start);
        if missing == 0 {
            return Ok(());
        }
        if queue.pop_many(out, missing, missing, flush_at).is_err() {
            // The deadline passed with the queue empty, or it was closed: send what we have.
            return Ok(());
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(u32, Instant);

    impl Queued for Item {
        fn enqueued_at(&self) -> Instant {
            self.1
        }
    }

    fn ids(batch: &[Item]) -> Vec<u32> {
        batch.iter().map(|i| i.0).collect()
    }

    #[test]
    fn zero_batch_size_is_refused() {
        assert!(matches!(
            BatchPolicy::new(0, Duration::ZERO),
            Err(Error::ZeroBatchSize(0))
        ));
        let p = BatchPolicy::new(3, Duration::from_millis(1)).unwrap();
        assert_eq!(
            (p.max_batch_size(), p.max_wait()),
            (3, Duration::from_millis(1))
        );
    }

    #[test]
    fn a_full_batch_goes_at_once_even_with_a_long_wait() {
        let q = Arc::new(BoundedQueue::new(64).unwrap());
        let policy = BatchPolicy::new(4, Duration::from_secs(60)).unwrap();
        let feeder = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                for i in 0..4 {
                    thread::sleep(Duration::from_millis(2));
                    q.push(Item(i, Instant::now())).unwrap();
                }
            })
        };
        let start = Instant::now();
        let mut batch = Vec::new();
        next_batch(&q, &policy, &mut batch).unwrap();
        assert_eq!(ids(&batch), [0, 1, 2, 3]);
        assert!(start.elapsed() < Duration::from_secs(30));
        feeder.join().unwrap();
    }

    #[test]
    fn a_partial_batch_goes_max_wait_after_its_first_request() {
        let q = BoundedQueue::new(64).unwrap();
        let wait = Duration::from_millis(40);
        let policy = BatchPolicy::new(8, wait).unwrap();
        let queued = Instant::now();
        q.push(Item(0, queued)).unwrap();
        q.push(Item(1, queued)).unwrap();
        let mut batch = Vec::new();
        next_batch(&q, &policy, &mut batch).unwrap();
        assert_eq!(ids(&batch), [0, 1]);
        let waited = queued.elapsed();
        assert!(waited >= wait && waited < wait * 20, "{waited:?}");
    }

    #[test]
    fn the_timer_starts_when_the_first_request_was_queued() {
        let q = BoundedQueue::new(64).unwrap();
        let policy = BatchPolicy::new(8, Duration::from_secs(60)).unwrap();
        // Queued "long ago": its batch is overdue and goes without waiting.
        let long_ago = Instant::now() - Duration::from_secs(120);
        q.push(Item(0, long_ago)).unwrap();
        let start = Instant::now();
        let mut batch = Vec::new();
        next_batch(&q, &policy, &mut batch).unwrap();
        assert_eq!(ids(&batch), [0]);
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_backlog_gives_full_batches_in_order() {
        let q = BoundedQueue::new(64).unwrap();
        let policy = BatchPolicy::new(3, Duration::ZERO).unwrap();
        for i in 0..7 {
            q.push(Item(i, Instant::now())).unwrap();
        }
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        for _ in 0..3 {
            let mut batch = Vec::new();
            next_batch(&q, &policy, &mut batch).unwrap();
            sizes.push(batch.len());
            all.extend(ids(&batch));
        }
        assert_eq!(sizes, [3, 3, 1]);
        assert_eq!(all, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn close_sends_the_forming_batch_then_ends() {
        let q = Arc::new(BoundedQueue::new(64).unwrap());
        let policy = BatchPolicy::new(8, Duration::from_secs(60)).unwrap();
        q.push(Item(0, Instant::now())).unwrap();
        let closer = {
            let q = Arc::clone(&q);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                q.close();
            })
        };
        let mut batch = Vec::new();
        next_batch(&q, &policy, &mut batch).unwrap();
        assert_eq!(ids(&batch), [0]);
        closer.join().unwrap();
        batch.clear();
        assert_eq!(next_batch(&q, &policy, &mut batch), Err(PopError));
        assert!(batch.is_empty());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    struct Item(u32, Instant);

    impl Queued for Item {
        fn enqueued_at(&self) -> Instant {
            self.1
        }
    }

    /// A batch of two forms while a producer pushes and the max_wait timer fires at any
    /// point: the batch holds one or both items, in order, and nothing is lost.
    #[test]
    fn loom_a_batch_forms_while_the_timer_may_fire() {
        loom::model(|| {
            let q = Arc::new(BoundedQueue::new(2).unwrap());
            let policy = BatchPolicy::new(2, Duration::from_secs(1)).unwrap();
            let producer = {
                let q = q.clone();
                thread::spawn(move || {
                    q.push(Item(1, Instant::now())).unwrap();
                    q.push(Item(2, Instant::now())).unwrap();
                })
            };
            let timer = {
                let q = q.clone();
                thread::spawn(move || q.fire_timeouts())
            };
            let mut batch = Vec::new();
            next_batch(&q, &policy, &mut batch).unwrap();
            producer.join().unwrap();
            timer.join().unwrap();
            let mut seen: Vec<u32> = batch.iter().map(|i| i.0).collect();
            assert!(!seen.is_empty());
            seen.extend(q.try_pop().ok().map(|i| i.0));
            assert_eq!(seen, [1, 2]);
        });
    }

    /// Close while a batch forms: what was pushed comes out, then the batcher ends.
    #[test]
    fn loom_close_ends_batching_after_the_last_item() {
        loom::model(|| {
            let q = Arc::new(BoundedQueue::new(2).unwrap());
            let policy = BatchPolicy::new(2, Duration::from_secs(1)).unwrap();
            let producer = {
                let q = q.clone();
                thread::spawn(move || {
                    q.push(Item(1, Instant::now())).unwrap();
                    q.close();
                })
            };
            let mut batch = Vec::new();
            assert_eq!(next_batch(&q, &policy, &mut batch), Ok(()));
            assert_eq!(batch.len(), 1);
            assert_eq!(next_batch(&q, &policy, &mut batch), Err(PopError));
            producer.join().unwrap();
        });
    }
}

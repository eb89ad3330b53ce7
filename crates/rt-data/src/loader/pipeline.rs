//! One epoch in flight: the threads building its batches, the reorder buffer they deliver
//! into, and the lifecycle that stops and joins them when the consumer leaves early.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rt_view::cancel::CancelToken;

use super::gather::Batch;
use super::prefetch::{Pop, Reorder};
use super::stats::LoaderStats;
use crate::error::{DataError, Result};

/// The buffer batches travel through.
pub type BatchQueue = Reorder<Result<Batch>>;

/// Something to close when the epoch stops, so that blocked threads wake up.
pub type Closer = Box<dyn Fn() + Send + Sync>;

/// The running epoch. Dropping it cancels and joins its threads.
pub struct Pipeline {
    queue: Arc<BatchQueue>,
    cancel: CancelToken,
    threads: Vec<JoinHandle<()>>,
    closers: Vec<Closer>,
    stats: Arc<LoaderStats>,
    /// Batches of the epoch, on every rank.
    pub batches: u64,
    /// The first batch this pipeline builds (non-zero when resuming).
    pub first: u64,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("batches", &self.batches)
            .field("first", &self.first)
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// An epoch of `batches` batches starting at `first`, at most `capacity` in flight.
    pub fn new(first: u64, batches: u64, capacity: usize, stats: Arc<LoaderStats>) -> Self {
        Self {
            queue: Arc::new(Reorder::new(first, batches, capacity)),
            cancel: CancelToken::new(),
            threads: Vec::new(),
            closers: Vec::new(),
            stats,
            batches,
            first,
        }
    }

    /// The buffer, for builder threads.
    pub fn queue(&self) -> Arc<BatchQueue> {
        Arc::clone(&self.queue)
    }

    /// The token builder threads poll.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Registers something to close on stop.
    pub fn on_stop(&mut self, closer: Closer) {
        self.closers.push(closer);
    }

    /// Starts a builder thread. A panic inside it fails the epoch instead of hanging the
    /// consumer.
    pub fn spawn(&mut self, name: String, body: impl FnOnce() + Send + 'static) -> Result<()> {
        let queue = Arc::clone(&self.queue);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
                if outcome.is_err() {
                    queue.fail(DataError::InvalidArgument(
                        "a rusttorch-data worker thread panicked (a bug: please report it)"
                            .to_owned(),
                    ));
                }
            })
            .map_err(|e| DataError::InvalidArgument(format!("cannot start a thread: {e}")))?;
        self.threads.push(handle);
        Ok(())
    }

    /// The next batch in order, waiting up to `timeout`; the wait is added to the stats.
    pub fn next_timeout(&self, timeout: Duration) -> Pop<Result<Batch>> {
        let start = Instant::now();
        let pop = self.queue.pop_timeout(timeout);
        self.stats.add_wait(start.elapsed());
        pop
    }

    /// Batches built and waiting.
    pub fn buffered(&self) -> usize {
        self.queue.buffered()
    }

    /// Cancels the builders, wakes them and joins them. Idempotent.
    pub fn stop(&mut self) {
        self.cancel.cancel();
        self.queue.close();
        for closer in &self.closers {
            closer();
        }
        for handle in self.threads.drain(..) {
            // A builder's panic was already turned into an error for the consumer.
            let _ = handle.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

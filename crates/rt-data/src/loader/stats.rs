//! What a loader did, accumulated since it was made: shared by its threads as atomics and
//! read as a [`StatsSnapshot`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::source::{ReadStats, SkippedRow};

/// Skipped rows kept for the report; the count goes on beyond it.
const MAX_SKIPPED_KEPT: usize = 1000;

/// Counters updated by the loader's threads.
#[derive(Debug, Default)]
pub struct LoaderStats {
    rows_read: AtomicU64,
    bytes_read: AtomicU64,
    read_ns: AtomicU64,
    parse_ns: AtomicU64,
    gather_ns: AtomicU64,
    wait_ns: AtomicU64,
    batches: AtomicU64,
    samples: AtomicU64,
    dropped: AtomicU64,
    padded: AtomicU64,
    windows: AtomicU64,
    skipped_count: AtomicU64,
    skipped: Mutex<Vec<SkippedRow>>,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    /// Rows decoded from the source (every epoch in stream mode, once in memory mode).
    pub rows_read: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Time reading (I/O, decompression), summed over threads.
    pub read_time: Duration,
    /// Time parsing and converting, summed over threads.
    pub parse_time: Duration,
    /// Time gathering rows into batches and applying transforms, summed over threads.
    pub gather_time: Duration,
    /// Time the consumer waited for a batch.
    pub wait_time: Duration,
    /// Batches delivered to the consumer.
    pub batches: u64,
    /// Samples delivered to the consumer.
    pub samples: u64,
    /// Samples left out by `uneven="drop"` or `drop_last`, per planned epoch.
    pub dropped: u64,
    /// Repeated samples served by `uneven="pad"`, per planned epoch.
    pub padded: u64,
    /// Stream-mode windows decoded.
    pub windows: u64,
    /// Rows skipped under `on_error="skip"`.
    pub skipped_count: u64,
    /// The first skipped rows, with file and line.
    pub skipped: Vec<SkippedRow>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl LoaderStats {
    /// Adds what a read did.
    pub fn add_read(&self, read: &ReadStats) {
        self.rows_read.fetch_add(read.rows, Ordering::Relaxed);
        self.bytes_read
            .fetch_add(read.bytes_read, Ordering::Relaxed);
        self.read_ns
            .fetch_add(nanos(read.read_time), Ordering::Relaxed);
        self.parse_ns
            .fetch_add(nanos(read.parse_time), Ordering::Relaxed);
        self.add_skipped(&read.skipped);
    }

    /// Records skipped rows.
    pub fn add_skipped(&self, rows: &[SkippedRow]) {
        if rows.is_empty() {
            return;
        }
        self.skipped_count
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        let mut kept = self.skipped.lock().unwrap_or_else(PoisonError::into_inner);
        let room = MAX_SKIPPED_KEPT.saturating_sub(kept.len());
        kept.extend(rows.iter().take(room).cloned());
    }

    /// Adds gathering time.
    pub fn add_gather(&self, d: Duration) {
        self.gather_ns.fetch_add(nanos(d), Ordering::Relaxed);
    }

    /// Adds consumer waiting time.
    pub fn add_wait(&self, d: Duration) {
        self.wait_ns.fetch_add(nanos(d), Ordering::Relaxed);
    }

    /// Counts a delivered batch.
    pub fn add_batch(&self, rows: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.samples.fetch_add(rows as u64, Ordering::Relaxed);
    }

    /// Counts the sharding policy's effect for one epoch.
    pub fn add_policy(&self, dropped: u64, padded: u64) {
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
        self.padded.fetch_add(padded, Ordering::Relaxed);
    }

    /// Counts a decoded stream-mode window.
    pub fn add_window(&self) {
        self.windows.fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            rows_read: get(&self.rows_read),
            bytes_read: get(&self.bytes_read),
            read_time: Duration::from_nanos(get(&self.read_ns)),
            parse_time: Duration::from_nanos(get(&self.parse_ns)),
            gather_time: Duration::from_nanos(get(&self.gather_ns)),
            wait_time: Duration::from_nanos(get(&self.wait_ns)),
            batches: get(&self.batches),
            samples: get(&self.samples),
            dropped: get(&self.dropped),
            padded: get(&self.padded),
            windows: get(&self.windows),
            skipped_count: get(&self.skipped_count),
            skipped: self
                .skipped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }
}

//! What a batcher reports about itself: batch sizes, queue waits and throughput.

use std::time::{Duration, Instant};

/// Sub-buckets per power of two: 2^5 = 32, so a bucket is at most 1/32 (3.1 %) of its
/// value wide, and the midpoint reported is within 1.6 % of every value in it.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Exact buckets for 0..32 ns, then 32 per power of two up to 2^64 ns.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// A histogram of durations in constant memory (15 KiB) with about 1.6 % relative error
/// over the whole range, in the style of HdrHistogram's log-linear buckets.
///
/// ```
/// use std::time::Duration;
/// use rt_queue::LatencyHistogram;
///
/// let mut h = LatencyHistogram::new();
/// for ms in 1..=100 {
///     h.record(Duration::from_millis(ms));
/// }
/// let p50 = h.quantile(0.5).unwrap().as_secs_f64() * 1e3;
/// assert!((p50 - 50.0).abs() < 1.0);
/// ```
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    /// Adds one duration (saturating at about 584 years).
    pub fn record(&mut self, value: Duration) {
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        if let Some(count) = self.counts.get_mut(bucket_of(nanos)) {
            *count += 1;
            self.total += 1;
        }
    }

    /// How many durations were recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The duration below which a fraction `q` (0..=1, clamped) of the recorded ones lie,
    /// or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        // The rank of the wanted value, 1-based: ceil(q * n), at least 1.
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_nanos(bucket_midpoint(bucket)));
            }
        }
        None
    }

    /// Forgets every recorded duration.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("len", &self.total)
            .field("p50", &self.quantile(0.5))
            .field("p99", &self.quantile(0.99))
            .finish()
    }
}

fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB {
        return nanos as usize;
    }
    let top_bit = 63 - nanos.leading_zeros();
    let shift = top_bit - SUB_BITS;
    let sub = (nanos >> shift) & (SUB - 1);
    ((u64::from(shift) + 1) * SUB + sub) as usize
}

fn bucket_midpoint(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB {
        return bucket;
    }
    let shift = bucket / SUB - 1;
    let low = (SUB + bucket % SUB) << shift;
    low.saturating_add((1u64 << shift) / 2)
}

/// Counters and histograms of a batcher since it started (or was reset).
///
/// The worker records into it; readers take a copy. `throughput` is averaged over the span
/// from the first request's arrival to the last batch's end, idle time included.
#[derive(Clone, Debug, Default)]
pub struct BatchStats {
    /// Requests that ran in a batch (whether `fn` succeeded or not).
    pub requests: u64,
    /// Batches run.
    pub batches: u64,
    /// Requests whose deadline passed while they were queued.
    pub timed_out: u64,
    /// Requests refused alone because they did not fit their batch.
    pub rejected: u64,
    /// Requests whose batch failed (`fn` raised or returned something unusable).
    pub failed: u64,
    /// Requests cancelled by their caller before they ran.
    pub cancelled: u64,
    batch_sizes: Vec<u64>,
    queue_wait: LatencyHistogram,
    first_arrival: Option<Instant>,
    last_batch_end: Option<Instant>,
}

impl BatchStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a request taken off the queue: its arrival and how long it waited.
    pub fn record_dequeued(&mut self, arrived: Instant, taken: Instant) {
        self.queue_wait
            .record(taken.saturating_duration_since(arrived));
        if self.first_arrival.is_none_or(|first| arrived < first) {
            self.first_arrival = Some(arrived);
        }
    }

    /// Records a batch of `size` requests that finished at `end`.
    pub fn record_batch(&mut self, size: usize, end: Instant) {
        if self.batch_sizes.len() <= size {
            self.batch_sizes.resize(size + 1, 0);
        }
        if let Some(count) = self.batch_sizes.get_mut(size) {
            *count += 1;
        }
        self.batches += 1;
        self.requests += size as u64;
        self.last_batch_end = Some(end);
    }

    /// `(batch size, number of batches)` for every size seen, smallest first.
    pub fn batch_size_histogram(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.batch_sizes
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(size, &n)| (size, n))
    }

    /// Mean requests per batch, `None` before the first batch.
    pub fn mean_batch_size(&self) -> Option<f64> {
        (self.batches > 0).then(|| self.requests as f64 / self.batches as f64)
    }

    /// How long requests waited from arrival until their batch was formed.
    pub fn queue_wait(&self) -> &LatencyHistogram {
        &self.queue_wait
    }

    /// Requests run per second, from the first arrival to the end of the last batch;
    /// `None` until a batch finished.
    pub fn throughput(&self) -> Option<f64> {
        let span = self
            .last_batch_end?
            .saturating_duration_since(self.first_arrival?);
        let seconds = span.as_secs_f64();
        (seconds > 0.0).then(|| self.requests as f64 / seconds)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let check = |nanos: u64| {
            let b = bucket_of(nanos);
            assert!(b < BUCKETS);
            let mid = bucket_midpoint(b);
            let error = (mid as f64 - nanos as f64).abs() / (nanos.max(1) as f64);
            assert!(error <= 1.0 / 32.0, "{nanos} -> bucket {b}, midpoint {mid}");
            b
        };
        // Consecutive values never skip a bucket.
        let mut previous = 0;
        for nanos in 0..5000u64 {
            let b = check(nanos);
            assert!(
                b == previous || b == previous + 1,
                "{nanos} -> {b} after {previous}"
            );
            previous = b;
        }
        for power in 1..64 {
            let p = 1u64 << power;
            for nanos in [p - 1, p, p + 1] {
                check(nanos);
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_match_sorted_data_within_the_precision() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.quantile(0.5), None);
        let values: Vec<u64> = (1..=1000).map(|i| i * 997 % 1000 + 1).collect();
        for &us in &values {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.len(), 1000);
        for (q, exact_us) in [(0.5, 500.0), (0.99, 990.0), (0.0, 1.0), (1.0, 1000.0)] {
            let got = h.quantile(q).unwrap().as_secs_f64() * 1e6;
            assert!(
                (got - exact_us).abs() / exact_us < 0.02,
                "q={q}: {got} vs {exact_us}"
            );
        }
        h.record(Duration::MAX);
        assert!(h.quantile(1.0).unwrap() > Duration::from_secs(1 << 30));
        h.clear();
        assert!(h.is_empty());
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = LatencyHistogram::new();
        for ns in [3, 3, 7, 20] {
            h.record(Duration::from_nanos(ns));
        }
        assert_eq!(h.quantile(0.5), Some(Duration::from_nanos(3)));
        assert_eq!(h.quantile(0.75), Some(Duration::from_nanos(7)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_nanos(20)));
    }

    #[test]
    fn batch_stats_count_sizes_waits_and_throughput() {
        let mut s = BatchStats::new();
        assert_eq!(s.throughput(), None);
        assert_eq!(s.mean_batch_size(), None);
        let t0 = Instant::now();
        for i in 0..4 {
            s.record_dequeued(
                t0 + Duration::from_millis(i),
                t0 + Duration::from_millis(10),
            );
        }
        s.record_batch(3, t0 + Duration::from_millis(500));
        s.record_batch(1, t0 + Duration::from_millis(1000));
        assert_eq!(
            s.batch_size_histogram().collect::<Vec<_>>(),
            [(1, 1), (3, 1)]
        );
        assert_eq!((s.batches, s.requests), (2, 4));
        assert_eq!(s.mean_batch_size(), Some(2.0));
        let throughput = s.throughput().unwrap();
        assert!((throughput - 4.0).abs() < 1e-9, "{throughput}");
        let p50 = s.queue_wait().quantile(0.5).unwrap();
        assert!(p50 >= Duration::from_millis(8) && p50 <= Duration::from_millis(10));
    }
}

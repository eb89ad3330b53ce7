//! Row-parallel execution on rt-view's shared pool, with rows split into chunks of equal
//! work (stored entries, not rows: on power-law graphs a few hub rows hold most of them).
//!
//! Cancellation: the helpers read the calling thread's ambient token
//! ([`rt_view::cancel::current`], installed by `rt_view::cancel::with_token`, which the
//! Python layer does for long calls) before they hand chunks to the pool, and check it
//! before every chunk, returning [`SparseError::Cancelled`]. Chunks are bounded in work
//! ([`MAX_CHUNK_WORK`]), so a cancelled call stops within a few milliseconds of work per
//! thread. A cancelled kernel has written some chunks of its output and not others; the
//! Python layer only ever cancels into new tensors, which it then drops.

use std::ops::Range;

use rayon::prelude::*;
use rt_view::cancel::CancelToken;

use crate::error::{Result, SparseError};

/// Below this much work (entries x features) a kernel runs on the calling thread: waking a
/// pool thread costs about what this many multiply-adds take.
pub const PARALLEL_MIN_WORK: usize = 1 << 16;

/// Chunks per thread, so that uneven progress evens out.
const CHUNKS_PER_THREAD: usize = 8;

/// The most work (entries x `unit`) one chunk should hold, so that a cancel is seen
/// soon even at one thread: 2^24 multiply-adds are a few milliseconds of SpMM and some
/// tens of milliseconds of SpGEMM's scattered accumulation (one multiplication there is
/// one unit). The benchmark-sized SpMM (4M entries x 64 features, 2^28 units) gets 16
/// chunks from this as from `CHUNKS_PER_THREAD` at 2 threads, so its split is unchanged.
pub const MAX_CHUNK_WORK: usize = 1 << 24;

/// Work between two polls of the cancel token in the sequential loops (conversions,
/// SpGEMM's row counts): about a millisecond.
pub(crate) const POLL_WORK: usize = 1 << 20;

/// The calling thread's ambient cancel token (if any), read once on that thread and then
/// shared with the pool's threads by reference.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cancel(Option<CancelToken>);

impl Cancel {
    /// The ambient token of the calling thread.
    pub(crate) fn ambient() -> Self {
        Cancel(rt_view::cancel::current())
    }

    /// `Err(Cancelled)` once the token was cancelled.
    #[inline]
    pub(crate) fn check(&self) -> Result<()> {
        match &self.0 {
            Some(token) if token.is_cancelled() => Err(SparseError::Cancelled),
            _ => Ok(()),
        }
    }

    /// A counter for a sequential loop that checks the token at its first tick and then
    /// every [`POLL_WORK`] units.
    pub(crate) fn poll(&self) -> Poll<'_> {
        Poll {
            cancel: self,
            done: POLL_WORK,
        }
    }

    /// Runs `f` on every piece of `items` of at most [`POLL_WORK`] elements, checking the
    /// token before each (for the linear passes of the conversions).
    pub(crate) fn for_pieces<T>(&self, items: &[T], mut f: impl FnMut(usize, &[T])) -> Result<()> {
        for (k, piece) in items.chunks(POLL_WORK).enumerate() {
            self.check()?;
            f(k * POLL_WORK, piece);
        }
        Ok(())
    }
}

/// Counts the work of a sequential loop and checks the token every [`POLL_WORK`] units.
pub(crate) struct Poll<'a> {
    cancel: &'a Cancel,
    done: usize,
}

impl Poll<'_> {
    /// Adds `work` units (plus one, so that empty rows count too) and checks the token
    /// when enough have accumulated.
    #[inline]
    pub(crate) fn tick(&mut self, work: usize) -> Result<()> {
        self.done = self.done.saturating_add(work).saturating_add(1);
        if self.done >= POLL_WORK {
            self.done = 0;
            self.cancel.check()?;
        }
        Ok(())
    }
}

/// Row boundaries `0 = b0 < b1 < ... = nrows` cutting the rows into chunks of about equal
/// work, where `prefix(r)` is the work of rows `0..r` (non-decreasing, `prefix(0) = 0`)
/// and one unit of it costs `unit` multiply-adds. There are enough chunks to keep every
/// thread busy ([`CHUNKS_PER_THREAD`] each, when the work pays for waking them) and at
/// least `work / MAX_CHUNK_WORK` of them (at one thread too), so that cancellation is
/// checked often; never more than `nrows`.
pub fn balanced_splits(nrows: usize, prefix: impl Fn(usize) -> usize, unit: usize) -> Vec<usize> {
    let total = prefix(nrows);
    let threads = rt_view::threads::get_num_threads().max(1);
    let work = total.saturating_mul(unit.max(1));
    let for_threads = if threads == 1 {
        1
    } else {
        (threads * CHUNKS_PER_THREAD).min(work / PARALLEL_MIN_WORK)
    };
    let parts = for_threads.max(work / MAX_CHUNK_WORK).min(nrows).max(1);
    if parts == 1 {
        return vec![0, nrows];
    }
    let mut splits = Vec::with_capacity(parts + 1);
    splits.push(0);
    for k in 1..parts {
        let target = (total as u128 * k as u128 / parts as u128) as usize;
        // The first row whose prefix reaches the target.
        let (mut lo, mut hi) = (*splits.last().unwrap_or(&0), nrows);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if prefix(mid) < target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo > *splits.last().unwrap_or(&0) && lo < nrows {
            splits.push(lo);
        }
    }
    splits.push(nrows);
    splits
}

/// Whether `chunks` chunks run on the pool rather than one after the other on the calling
/// thread (one chunk, or a pool of one thread, gains nothing from the hand-off).
pub(crate) fn on_pool(chunks: usize) -> bool {
    chunks > 1 && rt_view::threads::get_num_threads() > 1
}

/// Runs `f(rows, out_rows)` for every chunk between consecutive `splits`, where
/// `out_rows` is the part of `out` holding those rows (`width` elements per row), in
/// parallel when there is more than one chunk. Returns the first chunk's error, if any,
/// or `Cancelled` once the calling thread's ambient token is cancelled (see the module
/// docs: `out` then holds some chunks' results and not others).
pub fn for_each_chunk<T, F>(splits: &[usize], out: &mut [T], width: usize, f: F) -> Result<()>
where
    T: Send,
    F: Fn(Range<usize>, &mut [T]) -> Result<()> + Sync,
{
    for_each_chunk_at(splits, out, |r| r * width, f)
}

/// As [`for_each_chunk`], with row `r`'s output starting at `offset(r)` (non-decreasing):
/// for outputs with one entry per stored element, `offset` reads the row pointers.
pub fn for_each_chunk_at<T, F>(
    splits: &[usize],
    out: &mut [T],
    offset: impl Fn(usize) -> usize,
    f: F,
) -> Result<()>
where
    T: Send,
    F: Fn(Range<usize>, &mut [T]) -> Result<()> + Sync,
{
    let cancel = Cancel::ambient();
    let mut tasks = Vec::with_capacity(splits.len());
    let mut rest = out;
    for w in splits.windows(2) {
        let len = offset(w[1]).saturating_sub(offset(w[0]));
        let (head, tail) = rest.split_at_mut(len.min(rest.len()));
        tasks.push((w[0]..w[1], head));
        rest = tail;
    }
    let run = |(rows, o): (Range<usize>, &mut [T])| {
        cancel.check()?;
        f(rows, o)
    };
    if !on_pool(tasks.len()) {
        return tasks.into_iter().try_for_each(run);
    }
    let results: Vec<Result<()>> =
        rt_view::threads::install(|| tasks.into_par_iter().map(run).collect())?;
    results.into_iter().collect()
}

/// Runs `f` over every chunk between consecutive `splits` and collects the results in
/// chunk order; `Cancelled` once the calling thread's ambient token is cancelled.
pub fn map_chunks<R, F>(splits: &[usize], f: F) -> Result<Vec<R>>
where
    R: Send,
    F: Fn(Range<usize>) -> R + Sync,
{
    let cancel = Cancel::ambient();
    let ranges: Vec<Range<usize>> = splits.windows(2).map(|w| w[0]..w[1]).collect();
    let run = |rows: Range<usize>| -> Result<R> {
        cancel.check()?;
        Ok(f(rows))
    };
    if !on_pool(ranges.len()) {
        return ranges.into_iter().map(run).collect();
    }
    let results: Vec<Result<R>> =
        rt_view::threads::install(|| ranges.into_par_iter().map(run).collect())?;
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_all_rows_in_order() {
        let crow: Vec<usize> = (0..=1000).map(|r| r * r).collect();
        let s = balanced_splits(1000, |r| crow[r] + r, 64);
        assert_eq!(s.first(), Some(&0));
        assert_eq!(s.last(), Some(&1000));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        let mut out = vec![0u32; 1000 * 3];
        for_each_chunk(&s, &mut out, 3, |rows, o| {
            assert_eq!(o.len(), rows.len() * 3);
            for (k, v) in o.iter_mut().enumerate() {
                *v = (rows.start * 3 + k) as u32;
            }
            Ok(())
        })
        .unwrap();
        assert!(out.iter().enumerate().all(|(k, &v)| v == k as u32));
        assert_eq!(balanced_splits(0, |_| 0, 1), vec![0, 0]);
    }

    #[test]
    fn chunks_are_bounded_in_work() {
        // 2^28 units over 2^20 rows: at least 16 chunks, so a cancel is seen often.
        let rows = 1usize << 20;
        let s = balanced_splits(rows, |r| r * 256, 1);
        assert!(s.len() > 16, "{} chunks", s.len() - 1);
        let s = balanced_splits(rows, |r| r, 1);
        assert!(s.len() >= 2);
        // A few rows cannot be cut finer than rows.
        assert_eq!(balanced_splits(2, |r| r << 40, 1).len(), 3);
    }

    #[test]
    fn a_cancelled_ambient_token_stops_the_helpers() {
        let s: Vec<usize> = (0..=64).map(|k| k * 10).collect();
        let mut out = vec![0u8; 640];
        let token = rt_view::cancel::CancelToken::new();
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let count = |_: Range<usize>| {
            ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        rt_view::cancel::with_token(&token, || {
            // Not cancelled: everything runs.
            assert!(
                for_each_chunk(&s, &mut out, 1, |_, o| {
                    o.fill(1);
                    Ok(())
                })
                .is_ok()
            );
            assert_eq!(map_chunks(&s, |rows| rows.len()).map(|v| v.len()), Ok(64));
            token.cancel();
            let e = for_each_chunk(&s, &mut out, 1, |rows, _| {
                count(rows);
                Ok(())
            });
            assert_eq!(e, Err(SparseError::Cancelled));
            assert_eq!(map_chunks(&s, count), Err(SparseError::Cancelled));
            // One chunk goes through the same check.
            assert_eq!(map_chunks(&[0, 5], count), Err(SparseError::Cancelled));
            let e = Cancel::ambient().for_pieces(&[1u8; 10], |_, _| {});
            assert_eq!(e, Err(SparseError::Cancelled));
        });
        assert_eq!(ran.into_inner(), 0);
        assert!(out.iter().all(|&v| v == 1));
        // Outside `with_token` nothing is polled.
        assert_eq!(map_chunks(&s, |rows| rows.len()).map(|v| v.len()), Ok(64));
    }
}

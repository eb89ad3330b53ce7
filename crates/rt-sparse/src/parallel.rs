//! Row-parallel execution on rt-view's shared pool, with rows split into chunks of equal
//! work (stored entries, not rows: on power-law graphs a few hub rows hold most of them).

use std::ops::Range;

use rayon::prelude::*;

use crate::error::Result;

/// Below this much work (entries x features) a kernel runs on the calling thread: waking a
/// pool thread costs about what this many multiply-adds take.
pub const PARALLEL_MIN_WORK: usize = 1 << 16;

/// Chunks per thread, so that uneven progress evens out.
const CHUNKS_PER_THREAD: usize = 8;

/// Row boundaries `0 = b0 < b1 < ... = nrows` cutting the rows into chunks of about equal
/// work, where `prefix(r)` is the work of rows `0..r` (non-decreasing, `prefix(0) = 0`).
pub fn balanced_splits(nrows: usize, prefix: impl Fn(usize) -> usize, unit: usize) -> Vec<usize> {
    let total = prefix(nrows);
    let threads = rt_view::threads::get_num_threads().max(1);
    let by_work = total.saturating_mul(unit.max(1)) / PARALLEL_MIN_WORK;
    let parts = (threads * CHUNKS_PER_THREAD).min(by_work).min(nrows).max(1);
    if parts == 1 || threads == 1 {
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

/// Runs `f(rows, out_rows)` for every chunk between consecutive `splits`, where
/// `out_rows` is the part of `out` holding those rows (`width` elements per row), in
/// parallel when there is more than one chunk. Returns the first chunk's error, if any.
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
    let mut tasks = Vec::with_capacity(splits.len());
    let mut rest = out;
    for w in splits.windows(2) {
        let len = offset(w[1]).saturating_sub(offset(w[0]));
        let (head, tail) = rest.split_at_mut(len.min(rest.len()));
        tasks.push((w[0]..w[1], head));
        rest = tail;
    }
    if tasks.len() <= 1 {
        return tasks.into_iter().try_for_each(|(rows, o)| f(rows, o));
    }
    let results: Vec<Result<()>> =
        rt_view::threads::install(|| tasks.into_par_iter().map(|(rows, o)| f(rows, o)).collect())?;
    results.into_iter().collect()
}

/// Runs `f` over every chunk between consecutive `splits` and collects the results in
/// chunk order.
pub fn map_chunks<R, F>(splits: &[usize], f: F) -> Result<Vec<R>>
where
    R: Send,
    F: Fn(Range<usize>) -> R + Sync,
{
    let ranges: Vec<Range<usize>> = splits.windows(2).map(|w| w[0]..w[1]).collect();
    if ranges.len() <= 1 {
        return Ok(ranges.into_iter().map(f).collect());
    }
    Ok(rt_view::threads::install(|| {
        ranges.into_par_iter().map(&f).collect()
    })?)
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
}

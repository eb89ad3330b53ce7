//! Splitting work over the shared rayon pool (rt-view's `threads`), with the calling
//! thread taking part.
//!
//! `pool.install(..)` would park the caller while the pool's threads do all the work, so
//! every call would wait for a sleeping worker to wake before anything happens (15 µs when
//! the workers are still spinning, about 90 µs once they sleep, measured on the 2-core
//! benchmark machine). [`run_tasks`] instead starts on the caller at once, hands the other
//! tasks to the pool through `in_place_scope`, and lets every participant take the next
//! task from a shared queue, so a late or slow thread leaves no idle tail.

use std::sync::{Mutex, PoisonError};

use rt_view::threads;

use crate::error::Result;

/// Below this many elements a kernel runs on the calling thread alone: a helper that has to
/// be woken costs what ~100k elements of a memory-bound kernel take on one thread.
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 17;

/// Chunk length (in units of `granule` elements) for `n` elements split over the pool:
/// four chunks per thread, so that the shared queue can even out uneven progress, none
/// smaller than [`PARALLEL_MIN_ELEMENTS`] / 4.
pub fn chunk_len(n: usize, granule: usize) -> usize {
    let granule = granule.max(1);
    let threads = threads::get_num_threads().max(1);
    let target = (n / (threads * 4)).max(PARALLEL_MIN_ELEMENTS / 4);
    target.div_ceil(granule).max(1) * granule
}

/// True when `n` elements of work are worth spreading over more than one thread.
pub fn worth_parallel(n: usize) -> bool {
    n >= PARALLEL_MIN_ELEMENTS && threads::get_num_threads() > 1
}

/// Runs `f` on every task: on the calling thread and up to `threads - 1` pool threads,
/// each taking the next task from a shared queue. Returns after the last task.
pub fn run_tasks<T: Send, F: Fn(T) + Sync>(tasks: Vec<T>, f: F) -> Result<()> {
    let threads = threads::get_num_threads().max(1);
    let helpers = threads.min(tasks.len()).saturating_sub(1);
    if helpers == 0 {
        tasks.into_iter().for_each(f);
        return Ok(());
    }
    let queue = Mutex::new(tasks.into_iter());
    // The lock guards an iterator that is always left consistent, so a panic in another
    // task (which rayon re-raises after the scope) does not invalidate it.
    let next = || queue.lock().unwrap_or_else(PoisonError::into_inner).next();
    let work = || {
        while let Some(task) = next() {
            f(task);
        }
    };
    let pool = threads::pool()?;
    pool.in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| work());
        }
        work();
    });
    Ok(())
}

/// [`run_tasks`] collecting each task's result, in task order.
pub fn map_tasks<T: Send, R: Send, F: Fn(T) -> R + Sync>(tasks: Vec<T>, f: F) -> Result<Vec<R>> {
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(tasks.len()).collect();
    let jobs: Vec<(T, &mut Option<R>)> = tasks.into_iter().zip(slots.iter_mut()).collect();
    run_tasks(jobs, |(task, slot)| *slot = Some(f(task)))?;
    Ok(slots.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_and_results_keep_their_order() {
        let out = map_tasks((0..1000).collect(), |i: u64| i * i).unwrap();
        assert_eq!(out, (0..1000).map(|i| i * i).collect::<Vec<_>>());
        let mut data = vec![0u32; 10_000];
        run_tasks(data.chunks_mut(7).collect(), |c: &mut [u32]| {
            c.iter_mut().for_each(|v| *v += 1)
        })
        .unwrap();
        assert!(data.iter().all(|&v| v == 1));
        run_tasks(Vec::<u8>::new(), |_| unreachable!()).unwrap();
    }
}

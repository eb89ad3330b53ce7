//! Splitting work over the shared rayon pool (rt-view's `threads`), with the calling
//! thread taking part.
//!
//! `pool.install(..)` would park the caller while the pool's threads do all the work, so
//! every call would wait for a sleeping worker to wake before anything happens (15 µs when
//! the workers are still spinning, about 90 µs once they sleep, measured on the 2-core
//! benchmark machine). [`run_tasks`] instead starts on the caller at once, hands the other
//! tasks to the pool through `in_place_scope`, and lets every participant take the next
//! task from a shared queue, so a late or slow thread leaves no idle tail.
//!
//! Waking a sleeping thread is the cost that remains, twice per call (the helpers at the
//! start, the caller at the end), and on a VM it can be far more than the futex: an idle
//! virtual CPU has to be scheduled again. So the caller waits for the helpers' last tasks
//! awake, and after a call the helpers [`linger`] for a millisecond, as OpenMP runtimes do
//! after a parallel region. On the 2-core VM, a 4M-element activation called in a loop took
//! 10-20% less time per call with both, and the calls right after a pause up to 40% less.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rt_view::threads;

use crate::error::Result;

/// Below this many elements a kernel runs on the calling thread alone: a helper that has to
/// be woken costs what ~100k elements of a memory-bound kernel take on one thread.
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 17;

/// How long the calling thread stays awake for the helpers to finish before it parks.
const FINISH_WAIT: Duration = Duration::from_micros(300);

/// Chunk length (in units of `granule` elements) for `n` elements split over the pool:
/// four chunks per thread, so that the shared queue can even out uneven progress, none
/// smaller than [`PARALLEL_MIN_ELEMENTS`] / 4.
pub fn chunk_len(n: usize, granule: usize) -> usize {
    chunk_len_for_work(n, 1, granule)
}

/// [`chunk_len`] for `n` elements that each cost `cost` times a memory-bound element:
/// the smallest chunk shrinks in proportion, so that costly maps of mid-sized inputs still
/// give every thread some of the work.
pub fn chunk_len_for_work(n: usize, cost: usize, granule: usize) -> usize {
    let granule = granule.max(1);
    let threads = threads::get_num_threads().max(1);
    let target = (n / (threads * 4)).max(PARALLEL_MIN_ELEMENTS / 4 / cost.max(1));
    target.div_ceil(granule).max(1) * granule
}

/// True when `n` elements of work (memory-bound elements, or the equivalent) are worth
/// spreading over more than one thread.
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
    LAST_ACTIVE_NS.store(now_ns(), Ordering::Relaxed);
    let exited = AtomicUsize::new(0);
    let pool = threads::pool()?;
    pool.in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| {
                work();
                exited.fetch_add(1, Ordering::Release);
            });
        }
        work();
        // The queue is empty, but helpers may still be finishing their last task. The
        // scope's own wait parks this thread, and being woken costs a futex and, on a VM,
        // often an idle virtual CPU: tens of microseconds per call (a 4M-element activation
        // on 2 threads took 10-20% longer without this). A helper's last task is short (a
        // quarter of a thread's share), so wait awake for a bounded time first, yielding
        // rather than spinning so that a helper waiting for this core (more threads than
        // cores) gets it. Not on a pool thread: there the scope's wait runs other jobs.
        if rayon::current_thread_index().is_none() {
            let deadline = Instant::now() + FINISH_WAIT;
            while exited.load(Ordering::Acquire) < helpers && Instant::now() < deadline {
                std::thread::yield_now();
            }
        }
    });
    LAST_ACTIVE_NS.store(now_ns(), Ordering::Relaxed);
    if rayon::current_thread_index().is_none() {
        keep_lingering(&pool, helpers);
    }
    Ok(())
}

/// How long pool threads stay awake after the last [`run_tasks`] call, in nanoseconds.
const LINGER_NS: u64 = 1_000_000;

/// When a [`run_tasks`] call last started or ended, in nanoseconds since [`now_ns`]'s origin.
static LAST_ACTIVE_NS: AtomicU64 = AtomicU64::new(0);

/// The pool (its address) whose lingering threads [`LINGERING`] counts: a fork or a resize
/// makes a new pool, and the count starts over. Atomics rather than a lock, which a fork
/// could copy in its locked state; a race can only miscount for a moment.
static LINGER_POOL: AtomicUsize = AtomicUsize::new(0);
static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// Makes `wanted` pool threads [`linger`], counting those already doing so.
fn keep_lingering(pool: &Arc<rayon::ThreadPool>, wanted: usize) {
    let id = Arc::as_ptr(pool) as usize;
    if LINGER_POOL.swap(id, Ordering::Relaxed) != id {
        LINGERING.store(0, Ordering::Relaxed);
    }
    let alive = LINGERING.load(Ordering::Relaxed);
    for _ in alive..wanted {
        LINGERING.fetch_add(1, Ordering::Relaxed);
        pool.spawn(move || linger(id));
    }
}

fn now_ns() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let elapsed = ORIGIN.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// Keeps a pool thread awake until [`LINGER_NS`] have passed since the last call, running any
/// pool work that comes (the next call's tasks above all): a kernel called in a loop then
/// finds its helpers running instead of waking them, which costs a futex and, on a VM, an
/// idle virtual CPU (on the 2-core VM, after a pause, so much that a 4M-element activation
/// ran at one thread's speed). What OpenMP runtimes do after every parallel region, but
/// shorter, and yielding the core to any other runnable thread.
fn linger(pool_id: usize) {
    while now_ns().saturating_sub(LAST_ACTIVE_NS.load(Ordering::Relaxed)) < LINGER_NS {
        if !matches!(rayon::yield_now(), Some(rayon::Yield::Executed)) {
            std::thread::yield_now();
        }
    }
    if LINGER_POOL.load(Ordering::Relaxed) == pool_id {
        let _ = LINGERING.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
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

    #[test]
    fn concurrent_callers_and_lingering_helpers_lose_no_task() {
        // Several threads calling at once, back to back (so helpers linger between calls
        // and pick up other callers' tasks), each checking that every task of each of its
        // calls ran exactly once.
        std::thread::scope(|s| {
            for caller in 0..4u64 {
                s.spawn(move || {
                    for call in 0..100u64 {
                        let tasks: Vec<u64> = (0..64)
                            .map(|i| caller * 1_000_000 + call * 100 + i)
                            .collect();
                        let out = map_tasks(tasks.clone(), |t| t + 1).unwrap();
                        assert_eq!(out, tasks.iter().map(|t| t + 1).collect::<Vec<_>>());
                    }
                });
            }
        });
    }
}

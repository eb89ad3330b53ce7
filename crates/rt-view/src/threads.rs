//! The rayon thread pool every rusttorch kernel runs on, and its size.
//!
//! The size defaults to the available cores, follows `RUSTTORCH_NUM_THREADS`, and can be
//! changed at any time with [`set_num_threads`] (the pool is rebuilt on next use; work
//! already running finishes on the old pool). Each Python extension module links its own
//! copy of this crate, so each wheel has its own pool; the `rusttorch` meta-package forwards
//! `set_num_threads` to all of them.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Result, ViewError};

/// The environment variable that sets the default thread count.
pub const NUM_THREADS_ENV: &str = "RUSTTORCH_NUM_THREADS";

/// The most threads a pool may have. Each pool thread is an OS thread with its own stack,
/// started when the pool is built; a mistyped count (2**40) would otherwise have the next
/// kernel spawn threads until the process runs out of memory.
pub const MAX_NUM_THREADS: usize = 1024;

struct PoolState {
    /// Set by `set_num_threads`; overrides the environment.
    requested: Option<usize>,
    pool: Option<Arc<rayon::ThreadPool>>,
}

static STATE: Mutex<PoolState> = Mutex::new(PoolState {
    requested: None,
    pool: None,
});

fn state() -> MutexGuard<'static, PoolState> {
    // The state is two plain fields that are always left consistent, so a panic in
    // another thread while holding the lock does not invalidate it.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Parses `RUSTTORCH_NUM_THREADS`: `Ok(None)` when unset or empty, an error when it is set
/// to anything but an integer from 1 to [`MAX_NUM_THREADS`].
pub fn env_num_threads() -> Result<Option<usize>> {
    match std::env::var(NUM_THREADS_ENV) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_NUM_THREADS).contains(&n) => Ok(Some(n)),
            _ => Err(ViewError::InvalidThreadCount { value: v }),
        },
        Err(_) => Ok(None),
    }
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn resolve(requested: Option<usize>) -> usize {
    // An invalid environment value falls back to the core count here; the Python module
    // reports it as a warning at import, where the user can see it.
    requested
        .or_else(|| env_num_threads().ok().flatten())
        .unwrap_or_else(available_cores)
}

/// The number of threads rusttorch kernels use.
pub fn get_num_threads() -> usize {
    let st = state();
    match &st.pool {
        Some(pool) => pool.current_num_threads(),
        None => resolve(st.requested),
    }
}

/// Sets the number of threads (1 to [`MAX_NUM_THREADS`]). Takes effect for the next kernel
/// launched.
pub fn set_num_threads(n: usize) -> Result<()> {
    if !(1..=MAX_NUM_THREADS).contains(&n) {
        return Err(ViewError::InvalidThreadCount {
            value: n.to_string(),
        });
    }
    let mut st = state();
    st.requested = Some(n);
    if st
        .pool
        .as_ref()
        .is_some_and(|p| p.current_num_threads() != n)
    {
        // Dropping our handle lets the old pool wind down once running work finishes.
        st.pool = None;
    }
    Ok(())
}

/// The shared pool, built on first use.
pub fn pool() -> Result<Arc<rayon::ThreadPool>> {
    let mut st = state();
    if let Some(pool) = &st.pool {
        return Ok(Arc::clone(pool));
    }
    let n = resolve(st.requested);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("rusttorch-{i}"))
        .build()
        .map_err(|e| ViewError::ThreadPool(e.to_string()))?;
    let pool = Arc::new(pool);
    st.pool = Some(Arc::clone(&pool));
    Ok(pool)
}

/// Runs `f` inside the shared pool, so that rayon's parallel iterators in `f` use it.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> Result<R> {
    Ok(pool()?.install(f))
}

/// Forgets the pool without joining it. Call in a forked child: the parent's worker
/// threads do not exist there, and waiting for them would hang (the same reason
/// huggingface/tokenizers resets its pool after fork). The next kernel builds a new pool.
pub fn forget_pool_after_fork() {
    let mut st = state();
    if let Some(pool) = st.pool.take() {
        // Dropping would signal threads that do not exist in this process; leak instead.
        std::mem::forget(pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test touches the global state, so that parallel test threads can not interleave.
    #[test]
    fn set_get_and_rebuild() {
        assert!(set_num_threads(0).is_err());
        set_num_threads(3).unwrap();
        assert_eq!(get_num_threads(), 3);
        assert_eq!(install(rayon::current_num_threads).unwrap(), 3);
        set_num_threads(2).unwrap();
        assert_eq!(install(rayon::current_num_threads).unwrap(), 2);
        forget_pool_after_fork();
        assert_eq!(get_num_threads(), 2);
        let names = install(|| std::thread::current().name().map(str::to_owned)).unwrap();
        assert!(names.is_some_and(|n| n.starts_with("rusttorch-")));
    }
}

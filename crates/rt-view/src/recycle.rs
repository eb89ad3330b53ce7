//! A bounded cache of large output buffers, so that a kernel called in a loop writes into
//! memory that is already paged in instead of a fresh mapping
//! ([`crate::OwnedTensor::for_overwrite`]).
//!
//! Why: the first write to each page of a fresh mapping is a page fault that zeroes it.
//! For a 512 MB output that is 131,072 faults (256 with huge pages), and on the 2-core CI
//! VM, whose host backs guest memory lazily, a memory-bound kernel writing a fresh 512 MB
//! output took 150-360 ms against 50-90 ms for the same kernel writing into an existing
//! tensor. torch's CPU allocator returns large blocks to the system at once, so every
//! eager op pays this; a buffer dropped here is kept instead, up to a byte limit, and
//! handed to the next output of the same size (PyTorch's CUDA caching allocator and
//! jemalloc's retained extents do the same).
//!
//! The cache holds whole mappings of exactly the requested length; up to
//! [`output_cache_limit`] bytes (by default [`DEFAULT_LIMIT_BYTES`] or a sixteenth of the
//! physical memory, whichever is less; `RUSTTORCH_OUTPUT_CACHE_MB` overrides it, `0` turns
//! the cache off), the oldest evicted first.
//! [`release_cached_outputs`] unmaps everything cached. The lock is only ever tried, never
//! waited for: a buffer that meets contention is simply allocated or unmapped as if there
//! were no cache, so no thread blocks here, and a child forked while another thread held
//! the lock cannot deadlock on it.

use std::sync::{Mutex, OnceLock, TryLockError};

/// The environment variable that sets the cache's limit in MiB (`0`: off).
pub const OUTPUT_CACHE_ENV: &str = "RUSTTORCH_OUTPUT_CACHE_MB";

/// The default limit (at most; see [`output_cache_limit`]): enough for the two or three
/// large outputs a loop of calls keeps alive at once, small next to the memory of a
/// machine that makes 512 MB tensors.
pub const DEFAULT_LIMIT_BYTES: usize = 1 << 30;

/// The default limit is at most this fraction of the physical memory, so that a small
/// machine keeps proportionally less (512 MiB on 8 GiB).
const DEFAULT_MEMORY_FRACTION: usize = 16;

/// Cached mappings, oldest first.
static CACHE: Mutex<Vec<memmap2::MmapMut>> = Mutex::new(Vec::new());

/// The cache's limit in bytes: `RUSTTORCH_OUTPUT_CACHE_MB` (read once), else
/// [`DEFAULT_LIMIT_BYTES`] or a sixteenth of the physical memory, whichever is less. An
/// unparsable value counts as unset.
pub fn output_cache_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let default = physical_memory().map_or(DEFAULT_LIMIT_BYTES, |m| {
            (m / DEFAULT_MEMORY_FRACTION).min(DEFAULT_LIMIT_BYTES)
        });
        std::env::var(OUTPUT_CACHE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(default, |mb| mb.saturating_mul(1 << 20))
    })
}

/// What is wrong with `RUSTTORCH_OUTPUT_CACHE_MB` when it is set to something other than a
/// whole number of MiB (which [`output_cache_limit`] then ignores), for a warning at import.
pub fn output_cache_env_problem() -> Option<String> {
    let value = std::env::var(OUTPUT_CACHE_ENV).ok()?;
    match value.trim().parse::<usize>() {
        Ok(_) => None,
        Err(_) => Some(format!(
            "invalid value {value:?}: expected a whole number of MiB (0 turns the cache off)"
        )),
    }
}

/// Bytes of physical memory, where the system says.
fn physical_memory() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf reads a system constant; it has no memory-safety preconditions
        // and reports failure as -1, handled below.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let pages = usize::try_from(pages).ok()?;
        let page = usize::try_from(page).ok()?;
        pages.checked_mul(page).filter(|&b| b > 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// A cached mapping of exactly `bytes`, the most recently cached first; `None` when there
/// is none (or the cache is busy).
pub(crate) fn take(bytes: usize) -> Option<memmap2::MmapMut> {
    let mut cache = try_lock()?;
    let i = cache.iter().rposition(|m| m.len() == bytes)?;
    Some(cache.remove(i))
}

/// Keeps `map` for a later [`take`], evicting the oldest entries beyond the limit; a
/// mapping larger than the limit (or one that meets a busy cache) is unmapped.
pub(crate) fn give(map: memmap2::MmapMut) {
    let limit = output_cache_limit();
    if map.len() > limit {
        return;
    }
    let Some(mut cache) = try_lock() else {
        return;
    };
    cache.push(map);
    let mut total: usize = cache.iter().map(|m| m.len()).sum();
    while total > limit {
        total -= cache.remove(0).len();
    }
}

/// Unmaps every cached buffer; returns how many bytes that released.
pub fn release_cached_outputs() -> usize {
    let released = match CACHE.lock() {
        Ok(mut cache) => std::mem::take(&mut *cache),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    released.iter().map(|m| m.len()).sum()
}

/// Bytes the cache holds now.
pub fn cached_output_bytes() -> usize {
    try_lock().map_or(0, |cache| cache.iter().map(|m| m.len()).sum())
}

fn try_lock() -> Option<std::sync::MutexGuard<'static, Vec<memmap2::MmapMut>>> {
    match CACHE.try_lock() {
        Ok(guard) => Some(guard),
        // The vector is always left consistent (pushes and removes only), so a panic
        // elsewhere while holding the lock does not invalidate it.
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_is_at_most_a_sixteenth_of_the_memory() {
        if std::env::var(OUTPUT_CACHE_ENV).is_ok() {
            return; // set by whoever runs the tests: not the default
        }
        let limit = output_cache_limit();
        assert!(limit <= DEFAULT_LIMIT_BYTES);
        if let Some(memory) = physical_memory() {
            assert!(limit > 0 && limit <= memory / DEFAULT_MEMORY_FRACTION);
        }
    }
}

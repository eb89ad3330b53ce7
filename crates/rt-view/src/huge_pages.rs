//! Transparent huge pages for large new outputs ([`crate::OwnedTensor::zeros`] and, with the
//! `python` feature, `python::torch_empty`).
//!
//! A new output of 128 MB costs torch (and us) 32,768 page faults on first write, each
//! zeroing a 4 KiB page: about 30 ms on the 2-core CI machine, more than a memory-bound
//! kernel needs to fill it. Asking the kernel to back the buffer with 2 MiB pages
//! (`madvise(MADV_HUGEPAGE)`, honoured when THP is in `madvise` or `always` mode, the
//! default of most distributions) cuts that to 64 faults (in a one-off measurement, an
//! `empty` + `fill_` of 128 MB went from 31 to 13 ms; `benchmarks/simd.py` has the op-level
//! figures). torch does the same for its own allocations only when
//! `THP_MEM_ALLOC_ENABLE=1` is set.
//!
//! Not a win everywhere: on the CI VM the kernel zeroes fresh 2 MiB pages slowly (the
//! host backs guest memory lazily), and a new 512 MB standardize output got ~25% slower
//! with the advice while relu, affine and layer_norm outputs got ~2x faster. Hence the
//! switch below.

/// Set to `0` to turn the advice off (for example where THP's background compaction is
/// unwelcome, or to compare).
pub const HUGE_PAGES_ENV: &str = "RUSTTORCH_HUGE_PAGES";

/// Whether the advice is on: unless `RUSTTORCH_HUGE_PAGES=0`, read once.
fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var(HUGE_PAGES_ENV).map_or(true, |v| v.trim() != "0"))
}

/// Buffers below this size are left alone: they hold at most one aligned huge page, and
/// the advice (a system call that may split the mapping) would cost more than it saves.
pub(crate) const MIN_BYTES: usize = 4 << 20;

/// Size and alignment of an x86_64 / aarch64 (4 KiB granule) transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// The whole huge pages inside `[addr, addr + bytes)`, as `(start, length)`; `None` if
/// there are none.
fn aligned_span(addr: usize, bytes: usize) -> Option<(usize, usize)> {
    let start = addr.checked_add(HUGE_PAGE - 1)? & !(HUGE_PAGE - 1);
    let end = addr.checked_add(bytes)? & !(HUGE_PAGE - 1);
    (end > start).then(|| (start, end - start))
}

/// Advises the kernel to back the untouched buffer `[addr, addr + bytes)`, which the
/// caller has just allocated and owns, with huge pages (the whole 2 MiB pages inside it;
/// nothing below 4 MiB). Advice only: nothing is read or written, and failure (THP off, an
/// old kernel, a non-Linux system) changes nothing. Worth it for a large buffer that a
/// kernel sweeps more than once: with 4 KiB pages, every few megabytes swept cost TLB
/// misses (rt-simd's `cdist` packing buffers).
pub fn advise(addr: usize, bytes: usize) {
    if bytes < MIN_BYTES || !enabled() {
        return;
    }
    let Some((start, len)) = aligned_span(addr, bytes) else {
        return;
    };
    #[cfg(target_os = "linux")]
    {
        // SAFETY: madvise with MADV_HUGEPAGE changes only how the kernel backs the pages
        // of the range, never their contents or protection, and the range holds whole
        // pages that lie inside the caller's own allocation, so no other object's memory
        // is affected. An error return is harmless and deliberately ignored.
        let _ = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (start, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_holds_only_whole_pages_inside_the_buffer() {
        let mb = 1 << 20;
        assert_eq!(aligned_span(0, 4 * mb), Some((0, 4 * mb)));
        assert_eq!(aligned_span(1, 4 * mb), Some((2 * mb, 2 * mb)));
        assert_eq!(aligned_span(mb, 3 * mb), Some((2 * mb, 2 * mb)));
        assert_eq!(aligned_span(mb, 2 * mb), None);
        assert_eq!(aligned_span(usize::MAX - 10, 100), None);
        for (addr, bytes) in [(12_345, 9 * mb), (3 * mb + 7, 5 * mb), (0, 0)] {
            if let Some((s, l)) = aligned_span(addr, bytes) {
                assert!(s >= addr && s + l <= addr + bytes);
                assert_eq!(s % HUGE_PAGE, 0);
                assert_eq!(l % HUGE_PAGE, 0);
            }
        }
    }

    #[test]
    fn advice_leaves_the_contents_alone() {
        let mut buf = vec![7u8; 8 << 20];
        advise(buf.as_mut_ptr() as usize, buf.len());
        assert!(buf.iter().all(|&b| b == 7));
    }
}

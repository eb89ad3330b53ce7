//! Releasing the GIL around kernels.

use pyo3::Python;
use pyo3::marker::Ungil;

/// Below this many elements a kernel finishes faster than releasing and re-taking the GIL
/// (about 0.1 µs) is worth; larger work lets other Python threads run meanwhile.
pub const RELEASE_GIL_MIN_ELEMENTS: usize = 1 << 14;

/// Runs `f`, with the GIL released when `work_elements` is large enough to pay for it.
pub fn run_released<T, F>(py: Python<'_>, work_elements: usize, f: F) -> T
where
    F: Ungil + FnOnce() -> T,
    T: Ungil,
{
    if work_elements >= RELEASE_GIL_MIN_ELEMENTS {
        py.detach(f)
    } else {
        f()
    }
}

//! The thread-pool functions every rusttorch extension module exposes.
//!
//! Each wheel links its own copy of rt-view and so owns its own pool; each module therefore
//! registers these functions itself, through [`add_thread_functions`].

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::threads;

/// Threads this wheel's Rust kernels use.
#[pyfunction]
pub fn get_num_threads() -> usize {
    threads::get_num_threads()
}

/// Sets the thread count (1 to 1024) for this wheel's Rust kernels.
#[pyfunction]
pub fn set_num_threads(n: i64) -> PyResult<()> {
    let n = usize::try_from(n).map_err(|_| {
        PyValueError::new_err(format!(
            "invalid thread count {n}: expected an integer from 1 to {}",
            threads::MAX_NUM_THREADS
        ))
    })?;
    Ok(threads::set_num_threads(n)?)
}

/// Registered with `os.register_at_fork` by each Python package.
#[pyfunction]
pub fn _forget_pool_after_fork() {
    threads::forget_pool_after_fork();
}

/// The problem with `RUSTTORCH_NUM_THREADS`, if any, for a warning at import.
#[pyfunction]
pub fn _thread_env_problem() -> Option<String> {
    threads::env_num_threads().err().map(|e| e.to_string())
}

/// Adds `get_num_threads`, `set_num_threads` and `_forget_pool_after_fork` to `m`.
pub fn add_thread_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(_forget_pool_after_fork, m)?)?;
    Ok(())
}

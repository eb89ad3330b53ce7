//! The output-cache functions of the extension modules whose kernels allocate outputs with
//! [`crate::OwnedTensor::for_overwrite`]. Each wheel links its own copy of rt-view, so each
//! has its own cache and registers these itself, through [`add_output_cache_functions`].

use pyo3::prelude::*;

/// Unmaps the large output buffers this wheel keeps for reuse; returns the bytes released.
#[pyfunction]
pub fn release_cached_outputs() -> usize {
    crate::release_cached_outputs()
}

/// Bytes of dropped outputs this wheel keeps for reuse now.
#[pyfunction]
pub fn cached_output_bytes() -> usize {
    crate::cached_output_bytes()
}

/// The problem with `RUSTTORCH_OUTPUT_CACHE_MB`, if any, for a warning at import.
#[pyfunction]
pub fn _output_cache_env_problem() -> Option<String> {
    crate::output_cache_env_problem()
}

/// Adds `release_cached_outputs`, `cached_output_bytes` and `_output_cache_env_problem`
/// to `m`.
pub fn add_output_cache_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(release_cached_outputs, m)?)?;
    m.add_function(wrap_pyfunction!(cached_output_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(_output_cache_env_problem, m)?)?;
    Ok(())
}

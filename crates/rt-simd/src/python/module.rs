//! The `rusttorch_simd._native` extension module.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use rt_view::python::{_thread_env_problem, add_output_cache_functions, add_thread_functions};

use super::{distance, elementwise, rows, stats};
use crate::dispatch::{self, SimdLevel};

/// The SIMD level kernels run at now.
#[pyfunction]
fn simd_level() -> &'static str {
    dispatch::simd_level().name()
}

/// The levels this CPU supports, lowest first.
#[pyfunction]
fn supported_simd_levels() -> Vec<&'static str> {
    dispatch::supported_levels()
        .iter()
        .map(|l| l.name())
        .collect()
}

/// Runs kernels at `level` from now on; `None` goes back to the detected level capped by
/// `RUSTTORCH_SIMD`.
#[pyfunction]
#[pyo3(signature = (level))]
fn set_simd_level(level: Option<&str>) -> PyResult<()> {
    let Some(name) = level else {
        dispatch::reset_simd_level();
        return Ok(());
    };
    let level = SimdLevel::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown SIMD level {name:?}: expected one of {}",
            supported_simd_levels().join(", ")
        ))
    })?;
    Ok(dispatch::set_simd_level(level)?)
}

/// The problem with `RUSTTORCH_SIMD`, if any, for a warning at import.
#[pyfunction]
fn _simd_env_problem() -> Option<String> {
    dispatch::env_cap().err().map(|e| e.to_string())
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(supported_simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(set_simd_level, m)?)?;
    add_thread_functions(m)?;
    add_output_cache_functions(m)?;
    m.add_function(wrap_pyfunction!(_thread_env_problem, m)?)?;
    m.add_function(wrap_pyfunction!(_simd_env_problem, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::relu, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::leaky_relu, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::gelu, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::silu, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::sigmoid, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::tanh, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::softplus, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::exp, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::clamp, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::affine, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::normalize, m)?)?;
    m.add_function(wrap_pyfunction!(elementwise::fused_mad_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(stats::mean_var, m)?)?;
    m.add_function(wrap_pyfunction!(stats::standardize, m)?)?;
    m.add_function(wrap_pyfunction!(stats::minmax_scale, m)?)?;
    m.add_function(wrap_pyfunction!(stats::robust_scale, m)?)?;
    m.add_function(wrap_pyfunction!(rows::layer_norm, m)?)?;
    m.add_function(wrap_pyfunction!(rows::rms_norm, m)?)?;
    m.add_function(wrap_pyfunction!(rows::softmax, m)?)?;
    m.add_function(wrap_pyfunction!(rows::log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(rows::l2_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(rows::cosine_similarity, m)?)?;
    m.add_function(wrap_pyfunction!(distance::cdist, m)?)?;
    Ok(())
}

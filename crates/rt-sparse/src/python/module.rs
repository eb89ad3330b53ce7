//! The `rusttorch_sparse._native` extension module.

use pyo3::prelude::*;
use rt_view::python::{_thread_env_problem, add_output_cache_functions, add_thread_functions};

use super::{kernels, matrix};

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "DEFAULT_MAX_DENSE_ELEMENTS",
        crate::convert::DEFAULT_MAX_DENSE_ELEMENTS,
    )?;
    m.add("DEFAULT_MAX_NNZ", crate::spgemm::DEFAULT_MAX_NNZ)?;
    m.add(
        "DEFAULT_MAX_DIM_BUFFER",
        crate::limits::DEFAULT_MAX_DIM_BUFFER,
    )?;
    m.add_function(wrap_pyfunction!(matrix::set_dim_buffer_limit, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::get_dim_buffer_limit, m)?)?;
    add_thread_functions(m)?;
    add_output_cache_functions(m)?;
    m.add_function(wrap_pyfunction!(_thread_env_problem, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::check_compressed, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::check_coo_arrays, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::coo_to_csr, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::coo_to_csr_positions, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::transpose, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::expand_rows, m)?)?;
    m.add_function(wrap_pyfunction!(matrix::to_dense, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::spmm, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::sddmm, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::softmax, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::softmax_backward, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::spgemm, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::sparse_attention, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::gather_scatter, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::sliding_window, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::longformer, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::bigbird, m)?)?;
    Ok(())
}

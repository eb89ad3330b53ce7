//! Python entry points of the statistics and scalers.

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rt_view::python::{Access, PyTensor, owned_to_torch};
use rt_view::{DType, OwnedTensor};

use super::convert::{FLOAT_DTYPES, Output, check_dtype, contiguous};
use crate::stats::{self, Axis, NanPolicy};
use crate::storage::Storage;
use half::{bf16, f16};

/// A negative `dim` counts from the end, as in torch.
pub(crate) fn resolve_dim(op: &str, dim: isize, ndim: usize) -> PyResult<usize> {
    let n = ndim as isize;
    let d = if dim < 0 { dim + n } else { dim };
    if d < 0 || d >= n.max(1) || ndim == 0 {
        return Err(PyIndexError::new_err(format!(
            "{op}: dim {dim} is out of range for a {ndim}-d tensor"
        )));
    }
    Ok(d as usize)
}

fn nan_policy(op: &str, name: &str) -> PyResult<NanPolicy> {
    NanPolicy::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{op}: nan_policy must be 'propagate', 'omit' or 'raise', got {name:?}"
        ))
    })
}

/// The shape of the statistics: the input's without `dim`.
fn stats_shape(shape: &[usize], dim: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s.remove(dim);
    s
}

/// Which scaler to run.
#[derive(Clone, Copy)]
enum Scaler {
    Standardize { correction: f64, eps: f64 },
    MinMax { range: (f64, f64) },
    Robust { range: (f64, f64) },
}

fn scale_typed<'py, T: Storage>(
    py: Python<'py>,
    src: &PyTensor<'py>,
    dim: usize,
    scaler: Scaler,
    nan: NanPolicy,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let axis = Axis::of(src.shape(), dim)?;
    let view = src.view::<T>()?;
    let x = contiguous(py, &view)?;
    let shape = stats_shape(src.shape(), dim);
    let mut a = OwnedTensor::<T>::zeros(&shape)?;
    let mut b = OwnedTensor::<T>::zeros(&shape)?;
    let mut y = Output::<T>::new(py, out, src.shape(), &[src])?;
    let x = x.as_slice();
    let (sa, sb) = (a.as_mut_slice(), b.as_mut_slice());
    y.fill(py, x.len(), |y| match scaler {
        Scaler::Standardize { correction, eps } => {
            stats::standardize(x, axis, correction, eps, nan, y, sa, sb)
        }
        Scaler::MinMax { range } => stats::minmax_scale(x, axis, range, nan, y, sa, sb),
        Scaler::Robust { range } => stats::robust_scale(x, axis, range, nan, y, sa, sb),
    })?;
    let y = y.finish(py)?;
    PyTuple::new(py, [y, owned_to_torch(py, a)?, owned_to_torch(py, b)?])
}

fn scale<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    dim: isize,
    scaler: Scaler,
    nan_policy_name: &str,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let nan = nan_policy(op, nan_policy_name)?;
    let src = PyTensor::extract(x, Access::Read)?;
    let dtype = check_dtype(op, &src, FLOAT_DTYPES)?;
    let dim = resolve_dim(op, dim, src.shape().len())?;
    match dtype {
        DType::Float32 => scale_typed::<f32>(py, &src, dim, scaler, nan, out),
        DType::Float16 => scale_typed::<f16>(py, &src, dim, scaler, nan, out),
        DType::BFloat16 => scale_typed::<bf16>(py, &src, dim, scaler, nan, out),
        _ => scale_typed::<f64>(py, &src, dim, scaler, nan, out),
    }
}

#[pyfunction]
#[pyo3(signature = (x, dim = 0, *, correction = 1.0, eps = 0.0, nan_policy = "propagate", out = None))]
pub(crate) fn standardize<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dim: isize,
    correction: f64,
    eps: f64,
    nan_policy: &str,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let scaler = Scaler::Standardize { correction, eps };
    scale(py, "standardize", x, dim, scaler, nan_policy, out)
}

#[pyfunction]
#[pyo3(
    signature = (x, dim = 0, *, feature_range = (0.0, 1.0), nan_policy = "propagate", out = None),
    text_signature = "(x, dim=0, *, feature_range=(0.0, 1.0), nan_policy='propagate', out=None)"
)]
pub(crate) fn minmax_scale<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dim: isize,
    feature_range: (f64, f64),
    nan_policy: &str,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let scaler = Scaler::MinMax {
        range: feature_range,
    };
    scale(py, "minmax_scale", x, dim, scaler, nan_policy, out)
}

#[pyfunction]
#[pyo3(
    signature = (x, dim = 0, *, quantile_range = (25.0, 75.0), nan_policy = "propagate", out = None),
    text_signature = "(x, dim=0, *, quantile_range=(25.0, 75.0), nan_policy='propagate', out=None)"
)]
pub(crate) fn robust_scale<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dim: isize,
    quantile_range: (f64, f64),
    nan_policy: &str,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let scaler = Scaler::Robust {
        range: quantile_range,
    };
    scale(py, "robust_scale", x, dim, scaler, nan_policy, out)
}

fn mean_var_typed<'py, T: Storage>(
    py: Python<'py>,
    src: &PyTensor<'py>,
    dim: usize,
    correction: f64,
    nan: NanPolicy,
) -> PyResult<Bound<'py, PyTuple>> {
    let axis = Axis::of(src.shape(), dim)?;
    let view = src.view::<T>()?;
    let x = contiguous(py, &view)?;
    let shape = stats_shape(src.shape(), dim);
    let mut mean = OwnedTensor::<T>::zeros(&shape)?;
    let mut var = OwnedTensor::<T>::zeros(&shape)?;
    let (x, m, v) = (x.as_slice(), mean.as_mut_slice(), var.as_mut_slice());
    rt_view::python::run_released(py, x.len(), || {
        stats::mean_var(x, axis, correction, nan, m, v)
    })?;
    PyTuple::new(py, [owned_to_torch(py, mean)?, owned_to_torch(py, var)?])
}

#[pyfunction]
#[pyo3(signature = (x, dim = 0, *, correction = 1.0, nan_policy = "propagate"))]
pub(crate) fn mean_var<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dim: isize,
    correction: f64,
    nan_policy: &str,
) -> PyResult<Bound<'py, PyTuple>> {
    const OP: &str = "mean_var";
    let nan = self::nan_policy(OP, nan_policy)?;
    let src = PyTensor::extract(x, Access::Read)?;
    let dtype = check_dtype(OP, &src, FLOAT_DTYPES)?;
    let dim = resolve_dim(OP, dim, src.shape().len())?;
    match dtype {
        DType::Float32 => mean_var_typed::<f32>(py, &src, dim, correction, nan),
        DType::Float16 => mean_var_typed::<f16>(py, &src, dim, correction, nan),
        DType::BFloat16 => mean_var_typed::<bf16>(py, &src, dim, correction, nan),
        _ => mean_var_typed::<f64>(py, &src, dim, correction, nan),
    }
}

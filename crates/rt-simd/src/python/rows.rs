//! Python entry points of the row kernels (last dimension) and the row-wise distances.

use half::{bf16, f16};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rt_view::python::{Access, PyTensor};
use rt_view::{DType, Element};

use super::convert::{Contiguous, FLOAT_DTYPES, Output, check_dtype, check_same, contiguous};
use super::stats::resolve_dim;
use crate::distance;
use crate::real::Real;
use crate::rows;
use crate::storage::Storage;

/// Which row function to run.
#[derive(Clone, Copy)]
enum RowFn {
    LayerNorm { eps: f64 },
    RmsNorm { eps: Option<f64> },
    Softmax,
    LogSoftmax,
    L2Normalize { eps: f64 },
}

/// Checks that `dim` names the last dimension (the only one these kernels reduce over).
fn last_dim(op: &str, dim: isize, ndim: usize) -> PyResult<()> {
    let d = resolve_dim(op, dim, ndim)?;
    if d + 1 != ndim {
        return Err(PyValueError::new_err(format!(
            "{op}: only the last dimension is supported (dim=-1), got dim={dim} of a {ndim}-d \
             tensor; move the dimension last with .movedim({dim}, -1) first"
        )));
    }
    Ok(())
}

/// An optional per-feature parameter tensor: same dtype as `x`, shape `[d]`.
fn feature_param<'a, T: Element>(
    py: Python<'_>,
    op: &str,
    name: &str,
    t: Option<&'a PyTensor<'_>>,
    x: &PyTensor<'_>,
    d: usize,
) -> PyResult<Option<Contiguous<'a, T>>> {
    let Some(t) = t else {
        return Ok(None);
    };
    if t.dtype() != x.dtype() {
        return Err(PyTypeError::new_err(format!(
            "{op}: {name} has dtype {}, expected {} like the input",
            t.dtype(),
            x.dtype()
        )));
    }
    if t.shape() != [d] {
        return Err(PyValueError::new_err(format!(
            "{op}: {name} has shape {:?}, expected [{d}] (the size of the last dimension)",
            t.shape()
        )));
    }
    let view = t.view::<T>()?;
    Ok(Some(contiguous(py, &view)?))
}

/// The element types the row functions take: f32 and f64 computed as they are, the 16-bit
/// formats read and written as such and computed in f32 (`rows::*_widened`).
trait RowElement: Element {
    fn run(
        f: RowFn,
        x: &[Self],
        d: usize,
        w: Option<&[Self]>,
        b: Option<&[Self]>,
        y: &mut [Self],
    ) -> crate::Result<()>;
}

fn run_direct<T: Real>(
    f: RowFn,
    x: &[T],
    d: usize,
    w: Option<&[T]>,
    b: Option<&[T]>,
    y: &mut [T],
) -> crate::Result<()> {
    match f {
        RowFn::LayerNorm { eps } => rows::layer_norm(x, d, w, b, eps, y),
        RowFn::RmsNorm { eps } => rows::rms_norm(x, d, w, eps.unwrap_or(T::EPSILON.to_f64()), y),
        RowFn::Softmax => rows::softmax(x, d, y),
        RowFn::LogSoftmax => rows::log_softmax(x, d, y),
        RowFn::L2Normalize { eps } => rows::l2_normalize(x, d, eps, y),
    }
}

fn run_widened<S: Storage<Compute = f32>>(
    f: RowFn,
    x: &[S],
    d: usize,
    w: Option<&[S]>,
    b: Option<&[S]>,
    y: &mut [S],
) -> crate::Result<()> {
    match f {
        RowFn::LayerNorm { eps } => rows::layer_norm_widened(x, d, w, b, eps, y),
        // torch's default for 16-bit inputs: the epsilon of float32, the type it computes in.
        RowFn::RmsNorm { eps } => {
            rows::rms_norm_widened(x, d, w, eps.unwrap_or(f64::from(f32::EPSILON)), y)
        }
        RowFn::Softmax => rows::softmax_widened(x, d, y),
        RowFn::LogSoftmax => rows::log_softmax_widened(x, d, y),
        RowFn::L2Normalize { eps } => rows::l2_normalize_widened(x, d, eps, y),
    }
}

macro_rules! row_element {
    ($($t:ty => $run:ident),*) => {$(
        impl RowElement for $t {
            fn run(
                f: RowFn,
                x: &[Self],
                d: usize,
                w: Option<&[Self]>,
                b: Option<&[Self]>,
                y: &mut [Self],
            ) -> crate::Result<()> {
                $run(f, x, d, w, b, y)
            }
        }
    )*};
}

row_element!(f32 => run_direct, f64 => run_direct, f16 => run_widened, bf16 => run_widened);

#[allow(clippy::too_many_arguments)] // the op, its two optional parameters and out
fn rows_typed<'py, T: RowElement>(
    py: Python<'py>,
    op: &str,
    src: &PyTensor<'py>,
    weight: Option<&PyTensor<'py>>,
    bias: Option<&PyTensor<'py>>,
    f: RowFn,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = src.shape().last().copied().unwrap_or(1);
    let view = src.view::<T>()?;
    let x = contiguous(py, &view)?;
    let w = feature_param::<T>(py, op, "weight", weight, src, d)?;
    let b = feature_param::<T>(py, op, "bias", bias, src, d)?;
    let mut inputs: Vec<&PyTensor<'_>> = vec![src];
    inputs.extend(weight);
    inputs.extend(bias);
    let mut y = Output::<T>::new(py, out, src.shape(), &inputs)?;
    let x = x.as_slice();
    let w = w.as_ref().map(|w| w.as_slice());
    let b = b.as_ref().map(|b| b.as_slice());
    y.fill(py, x.len(), |y| T::run(f, x, d, w, b, y))?;
    y.finish(py)
}

fn run_rows<'py>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    f: RowFn,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let src = PyTensor::extract(x, Access::Read)?;
    // The row functions read each element once and are memory-bound, so 16-bit inputs pay.
    let dtype = check_dtype(op, &src, FLOAT_DTYPES)?;
    let w = weight
        .map(|w| PyTensor::extract(w, Access::Read))
        .transpose()?;
    let b = bias
        .map(|b| PyTensor::extract(b, Access::Read))
        .transpose()?;
    let (w, b) = (w.as_ref(), b.as_ref());
    match dtype {
        DType::Float32 => rows_typed::<f32>(py, op, &src, w, b, f, out),
        DType::Float16 => rows_typed::<f16>(py, op, &src, w, b, f, out),
        DType::BFloat16 => rows_typed::<bf16>(py, op, &src, w, b, f, out),
        _ => rows_typed::<f64>(py, op, &src, w, b, f, out),
    }
}

#[pyfunction]
#[pyo3(signature = (x, weight = None, bias = None, eps = 1e-5, *, out = None))]
pub(crate) fn layer_norm<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    bias: Option<&Bound<'py, PyAny>>,
    eps: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = RowFn::LayerNorm { eps };
    run_rows(py, "layer_norm", x, weight, bias, f, out)
}

#[pyfunction]
#[pyo3(signature = (x, weight = None, eps = None, *, out = None))]
pub(crate) fn rms_norm<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    eps: Option<f64>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    run_rows(py, "rms_norm", x, weight, None, RowFn::RmsNorm { eps }, out)
}

#[pyfunction]
#[pyo3(signature = (x, dim = -1, *, out = None), text_signature = "(x, dim=-1, *, out=None)")]
pub(crate) fn softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dim: isize,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ndim = x.getattr("ndim")?.extract::<usize>()?;
    last_dim("softmax", dim, ndim)?;
    run_rows(py, "softmax", x, None, None, RowFn::Softmax, out)
}

#[pyfunction]
#[pyo3(signature = (x, dim = -1, *, out = None), text_signature = "(x, dim=-1, *, out=None)")]
pub(crate) fn log_softmax<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dim: isize,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ndim = x.getattr("ndim")?.extract::<usize>()?;
    last_dim("log_softmax", dim, ndim)?;
    run_rows(py, "log_softmax", x, None, None, RowFn::LogSoftmax, out)
}

#[pyfunction]
#[pyo3(
    signature = (x, dim = -1, eps = 1e-12, *, out = None),
    text_signature = "(x, dim=-1, eps=1e-12, *, out=None)"
)]
pub(crate) fn l2_normalize<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    dim: isize,
    eps: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ndim = x.getattr("ndim")?.extract::<usize>()?;
    last_dim("l2_normalize", dim, ndim)?;
    let f = RowFn::L2Normalize { eps };
    run_rows(py, "l2_normalize", x, None, None, f, out)
}

fn cosine_typed<'py, T: Storage>(
    py: Python<'py>,
    a: &PyTensor<'py>,
    b: &PyTensor<'py>,
    eps: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let d = a.shape().last().copied().unwrap_or(1);
    let (va, vb) = (a.view::<T>()?, b.view::<T>()?);
    let (x1, x2) = (contiguous(py, &va)?, contiguous(py, &vb)?);
    let shape = &a.shape()[..a.shape().len().saturating_sub(1)];
    let mut y = Output::<T>::new(py, out, shape, &[a, b])?;
    let (x1, x2) = (x1.as_slice(), x2.as_slice());
    y.fill(py, x1.len(), |y| {
        distance::cosine_similarity(x1, x2, d, eps, y)
    })?;
    y.finish(py)
}

#[pyfunction]
#[pyo3(
    signature = (x1, x2, dim = -1, eps = 1e-8, *, out = None),
    text_signature = "(x1, x2, dim=-1, eps=1e-08, *, out=None)"
)]
pub(crate) fn cosine_similarity<'py>(
    py: Python<'py>,
    x1: &Bound<'py, PyAny>,
    x2: &Bound<'py, PyAny>,
    dim: isize,
    eps: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const OP: &str = "cosine_similarity";
    let a = PyTensor::extract(x1, Access::Read)?;
    let b = PyTensor::extract(x2, Access::Read)?;
    let dtype = check_dtype(OP, &a, FLOAT_DTYPES)?;
    check_same(OP, "x2", &a, &b)?;
    last_dim(OP, dim, a.shape().len())?;
    match dtype {
        DType::Float32 => cosine_typed::<f32>(py, &a, &b, eps, out),
        DType::Float16 => cosine_typed::<f16>(py, &a, &b, eps, out),
        DType::BFloat16 => cosine_typed::<bf16>(py, &a, &b, eps, out),
        _ => cosine_typed::<f64>(py, &a, &b, eps, out),
    }
}

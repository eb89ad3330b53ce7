//! Python entry points of the elementwise kernels: activations, clamp, affine, normalize
//! and the fused `(a * b + c - mean) / std` chain.

use half::{bf16, f16};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rt_view::DType;
use rt_view::python::{Access, PyTensor};

use super::convert::{FLOAT_DTYPES, Output, Param, check_dtype, check_same, contiguous};
use crate::elementwise::{self, Activation};
use crate::storage::Storage;

/// A kernel from one input slice to an output slice of the same length, for any
/// [`Storage`] type.
pub(crate) trait UnaryKernel: Sync {
    fn apply<S: Storage>(&self, input: &[S], out: &mut [S]) -> crate::Result<()>;
}

fn unary<'py, K: UnaryKernel>(
    py: Python<'py>,
    op: &str,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
    kernel: &K,
) -> PyResult<Bound<'py, PyAny>> {
    let src = PyTensor::extract(x, Access::Read)?;
    match check_dtype(op, &src, FLOAT_DTYPES)? {
        DType::Float32 => unary_typed::<f32, K>(py, &src, out, kernel),
        DType::Float64 => unary_typed::<f64, K>(py, &src, out, kernel),
        DType::Float16 => unary_typed::<f16, K>(py, &src, out, kernel),
        _ => unary_typed::<bf16, K>(py, &src, out, kernel),
    }
}

fn unary_typed<'py, S: Storage, K: UnaryKernel>(
    py: Python<'py>,
    src: &PyTensor<'py>,
    out: Option<&Bound<'py, PyAny>>,
    kernel: &K,
) -> PyResult<Bound<'py, PyAny>> {
    let view = src.view::<S>()?;
    let input = contiguous(py, &view)?;
    let mut output = Output::<S>::new(py, out, src.shape(), &[src])?;
    let input = input.as_slice();
    output.fill(py, input.len(), |o| kernel.apply(input, o))?;
    output.finish(py)
}

struct Act(Activation);
impl UnaryKernel for Act {
    fn apply<S: Storage>(&self, input: &[S], out: &mut [S]) -> crate::Result<()> {
        elementwise::activation(self.0, input, out)
    }
}

struct Clamp(Option<f64>, Option<f64>);
impl UnaryKernel for Clamp {
    fn apply<S: Storage>(&self, input: &[S], out: &mut [S]) -> crate::Result<()> {
        elementwise::clamp(input, out, self.0, self.1)
    }
}

struct Affine(f64, f64);
impl UnaryKernel for Affine {
    fn apply<S: Storage>(&self, input: &[S], out: &mut [S]) -> crate::Result<()> {
        elementwise::affine(input, out, self.0, self.1)
    }
}

struct AffinePerFeature(Vec<f64>, Vec<f64>);
impl UnaryKernel for AffinePerFeature {
    fn apply<S: Storage>(&self, input: &[S], out: &mut [S]) -> crate::Result<()> {
        elementwise::affine_per_feature(input, out, &self.0, &self.1)
    }
}

struct NormalizeChannels {
    shape: Vec<usize>,
    dim: usize,
    mean: Vec<f64>,
    std: Vec<f64>,
}
impl UnaryKernel for NormalizeChannels {
    fn apply<S: Storage>(&self, input: &[S], out: &mut [S]) -> crate::Result<()> {
        elementwise::normalize_channels(input, out, &self.shape, self.dim, &self.mean, &self.std)
    }
}

macro_rules! activation_fn {
    ($name:ident, $op:expr) => {
        #[pyfunction]
        #[pyo3(signature = (x, *, out = None))]
        pub(crate) fn $name<'py>(
            py: Python<'py>,
            x: &Bound<'py, PyAny>,
            out: Option<&Bound<'py, PyAny>>,
        ) -> PyResult<Bound<'py, PyAny>> {
            unary(py, stringify!($name), x, out, &Act($op))
        }
    };
}

activation_fn!(relu, Activation::Relu);
activation_fn!(silu, Activation::Silu);
activation_fn!(sigmoid, Activation::Sigmoid);
activation_fn!(tanh, Activation::Tanh);
activation_fn!(exp, Activation::Exp);

#[pyfunction]
#[pyo3(signature = (x, negative_slope = 0.01, *, out = None))]
pub(crate) fn leaky_relu<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    negative_slope: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = Activation::LeakyRelu { negative_slope };
    unary(py, "leaky_relu", x, out, &Act(op))
}

#[pyfunction]
#[pyo3(signature = (x, approximate = "none", *, out = None))]
pub(crate) fn gelu<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    approximate: &str,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = match approximate {
        "none" => Activation::Gelu,
        "tanh" => Activation::GeluTanh,
        other => {
            return Err(PyValueError::new_err(format!(
                "gelu: approximate must be 'none' or 'tanh', got {other:?}"
            )));
        }
    };
    unary(py, "gelu", x, out, &Act(op))
}

#[pyfunction]
#[pyo3(signature = (x, beta = 1.0, threshold = 20.0, *, out = None))]
pub(crate) fn softplus<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    beta: f64,
    threshold: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let op = Activation::Softplus { beta, threshold };
    unary(py, "softplus", x, out, &Act(op))
}

#[pyfunction]
#[pyo3(signature = (x, min = None, max = None, *, out = None))]
pub(crate) fn clamp<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    min: Option<f64>,
    max: Option<f64>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if min.is_none() && max.is_none() {
        return Err(PyValueError::new_err(
            "clamp: at least one of min and max must be given",
        ));
    }
    unary(py, "clamp", x, out, &Clamp(min, max))
}

#[pyfunction]
#[pyo3(signature = (x, scale, shift, *, out = None))]
pub(crate) fn affine<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    scale: &Bound<'py, PyAny>,
    shift: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let scale = Param::extract("affine: scale", scale)?;
    let shift = Param::extract("affine: shift", shift)?;
    if let (Param::Scalar(a), Param::Scalar(b)) = (&scale, &shift) {
        return unary(py, "affine", x, out, &Affine(*a, *b));
    }
    let shape: Vec<usize> = x.getattr("shape")?.extract()?;
    let Some(&features) = shape.last() else {
        return Err(PyValueError::new_err(
            "affine: per-feature scale/shift need at least one dimension",
        ));
    };
    let (scale, shift) = (scale.expand(features), shift.expand(features));
    for (name, v) in [("scale", &scale), ("shift", &shift)] {
        if v.len() != features {
            return Err(PyValueError::new_err(format!(
                "affine: {name} has {} values; expected a number or {features} (the size of \
                 the last dimension)",
                v.len()
            )));
        }
    }
    unary(py, "affine", x, out, &AffinePerFeature(scale, shift))
}

#[pyfunction]
#[pyo3(signature = (x, mean, std, dim = 1, *, out = None))]
pub(crate) fn normalize<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    mean: &Bound<'py, PyAny>,
    std: &Bound<'py, PyAny>,
    dim: isize,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let mean = Param::extract("normalize: mean", mean)?;
    let std = Param::extract("normalize: std", std)?;
    let shape: Vec<usize> = x.getattr("shape")?.extract()?;
    let ndim = shape.len() as isize;
    let d = if dim < 0 { dim + ndim } else { dim };
    if d < 0 || d >= ndim {
        return Err(pyo3::exceptions::PyIndexError::new_err(format!(
            "normalize: dim {dim} is out of range for a {ndim}-d tensor"
        )));
    }
    let dim = d as usize;
    let channels = shape[dim];
    let (mean, std) = (mean.expand(channels), std.expand(channels));
    for (name, v) in [("mean", &mean), ("std", &std)] {
        if v.len() != channels {
            return Err(PyValueError::new_err(format!(
                "normalize: {name} has {} values; expected a number or {channels} (the size of \
                 dim {dim})",
                v.len()
            )));
        }
    }
    let kernel = NormalizeChannels {
        shape,
        dim,
        mean,
        std,
    };
    unary(py, "normalize", x, out, &kernel)
}

#[pyfunction]
#[pyo3(signature = (a, b, c, mean, std, *, out = None))]
pub(crate) fn fused_mad_normalize<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    c: &Bound<'py, PyAny>,
    mean: f64,
    std: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const OP: &str = "fused_mad_normalize";
    let ta = PyTensor::extract(a, Access::Read)?;
    let tb = PyTensor::extract(b, Access::Read)?;
    let tc = PyTensor::extract(c, Access::Read)?;
    let dtype = check_dtype(OP, &ta, FLOAT_DTYPES)?;
    check_same(OP, "b", &ta, &tb)?;
    check_same(OP, "c", &ta, &tc)?;
    match dtype {
        DType::Float32 => mad_typed::<f32>(py, [&ta, &tb, &tc], mean, std, out),
        DType::Float64 => mad_typed::<f64>(py, [&ta, &tb, &tc], mean, std, out),
        DType::Float16 => mad_typed::<f16>(py, [&ta, &tb, &tc], mean, std, out),
        DType::BFloat16 => mad_typed::<bf16>(py, [&ta, &tb, &tc], mean, std, out),
        other => Err(PyTypeError::new_err(format!(
            "{OP}: unsupported dtype {other}"
        ))),
    }
}

fn mad_typed<'py, S: Storage>(
    py: Python<'py>,
    [ta, tb, tc]: [&PyTensor<'py>; 3],
    mean: f64,
    std: f64,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (va, vb, vc) = (ta.view::<S>()?, tb.view::<S>()?, tc.view::<S>()?);
    let (a, b, c) = (
        contiguous(py, &va)?,
        contiguous(py, &vb)?,
        contiguous(py, &vc)?,
    );
    let mut output = Output::<S>::new(py, out, ta.shape(), &[ta, tb, tc])?;
    let (a, b, c) = (a.as_slice(), b.as_slice(), c.as_slice());
    output.fill(py, a.len(), |o| {
        elementwise::fused_mad_normalize(a, b, c, o, mean, std)
    })?;
    output.finish(py)
}

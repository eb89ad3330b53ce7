//! Argument conversion shared by every Python entry point: dtype checks, contiguous input
//! slices (copied once when strided), outputs (new or `out=`), parameters given as floats,
//! sequences or tensors, and the mapping of [`SimdError`] onto Python exceptions.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rt_view::python::{Access, PyTensor, check_out, owned_to_torch, run_released, torch_empty};
use rt_view::{DType, Element, OwnedTensor, TensorView, TensorViewMut};

use crate::error::SimdError;

impl From<SimdError> for PyErr {
    fn from(err: SimdError) -> PyErr {
        match err {
            SimdError::View(e) => e.into(),
            SimdError::Cancelled => pyo3::exceptions::PyKeyboardInterrupt::new_err(err.to_string()),
            _ => PyValueError::new_err(err.to_string()),
        }
    }
}

/// The dtypes of the memory-bound ops (all but `cdist`): 16-bit inputs are widened to f32
/// in registers and each result is rounded once.
pub(crate) const FLOAT_DTYPES: &[DType] = &[
    DType::Float32,
    DType::Float64,
    DType::Float16,
    DType::BFloat16,
];
/// The dtypes of `cdist`, which is compute-bound (its FMA tiles run in f32 or f64), so
/// 16-bit inputs would gain nothing from being read narrow.
pub(crate) const CDIST_DTYPES: &[DType] = &[DType::Float32, DType::Float64];

fn names(dtypes: &[DType]) -> String {
    let names: Vec<&str> = dtypes.iter().map(|d| d.name()).collect();
    names.join(", ")
}

/// `TypeError` unless `t` has one of `allowed`.
pub(crate) fn check_dtype(op: &str, t: &PyTensor<'_>, allowed: &[DType]) -> PyResult<DType> {
    let dtype = t.dtype();
    if allowed.contains(&dtype) {
        Ok(dtype)
    } else {
        Err(PyTypeError::new_err(format!(
            "{op}: unsupported dtype {dtype}; expected one of {}",
            names(allowed)
        )))
    }
}

/// `TypeError`/`ValueError` unless `other` has `first`'s dtype and shape.
pub(crate) fn check_same(
    op: &str,
    what: &str,
    first: &PyTensor<'_>,
    other: &PyTensor<'_>,
) -> PyResult<()> {
    if other.dtype() != first.dtype() {
        return Err(PyTypeError::new_err(format!(
            "{op}: {what} has dtype {}, expected {} like the first input",
            other.dtype(),
            first.dtype()
        )));
    }
    if other.shape() != first.shape() {
        return Err(PyValueError::new_err(format!(
            "{op}: {what} has shape {:?}, expected {:?} like the first input",
            other.shape(),
            first.shape()
        )));
    }
    Ok(())
}

/// The elements of a borrowed input in row-major order.
pub(crate) enum Contiguous<'a, T: Element> {
    /// The input itself.
    Borrowed(&'a [T]),
    /// A contiguous copy of a strided input.
    Copied(OwnedTensor<T>),
}

impl<T: Element> Contiguous<'_, T> {
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Contiguous::Borrowed(s) => s,
            Contiguous::Copied(t) => t.as_slice(),
        }
    }
}

/// The elements of `view` in row-major order: borrowed when contiguous, else copied once
/// (the documented copy for strided inputs).
pub(crate) fn contiguous<'a, T: Element>(
    py: Python<'_>,
    view: &TensorView<'a, T>,
) -> PyResult<Contiguous<'a, T>> {
    if let Some(slice) = view.as_slice() {
        return Ok(Contiguous::Borrowed(slice));
    }
    let mut owned = OwnedTensor::<T>::zeros(view.shape())?;
    {
        let dst = owned.view_mut()?;
        run_released(py, view.numel(), || rt_view::copy::copy_into(view, dst))?;
    }
    Ok(Contiguous::Copied(owned))
}

/// From this many bytes up to [`rt_view::MAPPED_FROM_BYTES`], new outputs come from
/// `torch.empty` instead of a zeroed [`OwnedTensor`]: that one is cleared with a `memset`
/// (Rust's allocator can not use `calloc` at 64-byte alignment), costing about as much as
/// a memory-bound kernel, while glibc hands heap memory of this size back as is. Below it,
/// the DLPack route's lower per-call cost wins (`benchmarks/view.py`). From
/// `MAPPED_FROM_BYTES` on, outputs are [`OwnedTensor::for_overwrite`]: torch would map and
/// fault in fresh pages for every one (its allocator unmaps large blocks when they are
/// freed), while those come from rt-view's cache of dropped outputs when it holds one of
/// the same size.
const LARGE_OUTPUT: usize = 1 << 20;

/// Where a kernel writes its result: a new tensor, or a checked `out=`.
pub(crate) struct Output<'py, T: Element> {
    target: Target<'py, T>,
}

enum Target<'py, T: Element> {
    New(OwnedTensor<T>),
    Into {
        obj: Bound<'py, PyAny>,
        tensor: PyTensor<'py>,
        /// A contiguous staging buffer when `out=` is strided.
        staging: Option<OwnedTensor<T>>,
        /// Allocated here (torch.empty), so no one else has seen it.
        fresh: bool,
    },
}

impl<'py, T: Element> Output<'py, T> {
    /// A new output of `shape`, or `out` after checking its shape, dtype and that it
    /// shares no memory with `inputs`.
    pub(crate) fn new(
        py: Python<'py>,
        out: Option<&Bound<'py, PyAny>>,
        shape: &[usize],
        inputs: &[&PyTensor<'_>],
    ) -> PyResult<Self> {
        let bytes = shape
            .iter()
            .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX);
        let target = match out {
            None if bytes >= rt_view::MAPPED_FROM_BYTES => {
                Target::New(OwnedTensor::for_overwrite(shape)?)
            }
            None if bytes >= LARGE_OUTPUT => {
                let obj = torch_empty(py, shape, T::DTYPE)?;
                let tensor = PyTensor::extract(&obj, Access::Write)?;
                Target::Into {
                    obj,
                    tensor,
                    staging: None,
                    fresh: true,
                }
            }
            None => Target::New(OwnedTensor::zeros(shape)?),
            Some(obj) => {
                let mut tensor = PyTensor::extract(obj, Access::Write)?;
                check_out(&tensor, shape, T::DTYPE, inputs)?;
                let contiguous = tensor.view_mut::<T>()?.is_contiguous();
                let staging = match contiguous {
                    true => None,
                    false => Some(OwnedTensor::zeros(shape)?),
                };
                Target::Into {
                    obj: obj.clone(),
                    tensor,
                    staging,
                    fresh: false,
                }
            }
        };
        Ok(Output { target })
    }

    /// Runs `kernel` on the output's elements (row-major, contiguous), with the GIL
    /// released for large outputs.
    pub(crate) fn fill<F>(&mut self, py: Python<'_>, work: usize, kernel: F) -> PyResult<()>
    where
        F: FnOnce(&mut [T]) -> crate::Result<()> + Send,
    {
        match &mut self.target {
            Target::New(owned) => {
                let slice = owned.as_mut_slice();
                run_released(py, work, || kernel(slice))?;
            }
            Target::Into {
                tensor, staging, ..
            } => match staging {
                Some(buf) => {
                    // Computed into the staging buffer first: an error leaves `out` as it was.
                    let slice = buf.as_mut_slice();
                    run_released(py, work, || kernel(slice))?;
                    let src = buf.view();
                    let dst: TensorViewMut<'_, T> = tensor.view_mut::<T>()?;
                    run_released(py, work, || rt_view::copy::copy_into(&src, dst))?;
                }
                None => {
                    let mut view = tensor.view_mut::<T>()?;
                    let slice = view
                        .as_slice_mut()
                        .ok_or_else(|| PyValueError::new_err("out= stopped being contiguous"))?;
                    run_released(py, work, || kernel(slice))?;
                }
            },
        }
        Ok(())
    }

    /// Like [`fill`](Self::fill), for long kernels: runs on a helper thread while this
    /// one watches for Ctrl-C, which cancels the token the kernel polls. A cancelled
    /// kernel may have written part of a new output (which is dropped) or of a
    /// contiguous `out=`; the KeyboardInterrupt says so.
    pub(crate) fn fill_interruptible<F>(&mut self, py: Python<'_>, kernel: F) -> PyResult<()>
    where
        F: FnOnce(&mut [T], Option<&rt_view::cancel::CancelToken>) -> crate::Result<()> + Send,
    {
        let slice: &mut [T] = match &mut self.target {
            Target::New(owned) => owned.as_mut_slice(),
            Target::Into {
                staging: Some(buf), ..
            } => buf.as_mut_slice(),
            Target::Into { tensor, .. } => {
                let view = tensor.view_mut::<T>()?;
                return self_fill_direct(py, view, kernel);
            }
        };
        rt_view::python::run_interruptible(py, |token| kernel(slice, Some(token)))??;
        if let Target::Into {
            tensor,
            staging: Some(buf),
            ..
        } = &mut self.target
        {
            let src = buf.view();
            let dst: TensorViewMut<'_, T> = tensor.view_mut::<T>()?;
            run_released(py, src.numel(), || rt_view::copy::copy_into(&src, dst))?;
        }
        Ok(())
    }

    /// The tensor to return: the new one handed to torch, or `out` (its version bumped).
    pub(crate) fn finish(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.target {
            Target::New(owned) => owned_to_torch(py, owned),
            Target::Into {
                obj, tensor, fresh, ..
            } => {
                if !fresh {
                    tensor.mark_written()?;
                }
                Ok(obj)
            }
        }
    }
}

fn self_fill_direct<T: Element, F>(
    py: Python<'_>,
    mut view: TensorViewMut<'_, T>,
    kernel: F,
) -> PyResult<()>
where
    F: FnOnce(&mut [T], Option<&rt_view::cancel::CancelToken>) -> crate::Result<()> + Send,
{
    let slice = view
        .as_slice_mut()
        .ok_or_else(|| PyValueError::new_err("out= stopped being contiguous"))?;
    rt_view::python::run_interruptible(py, |token| kernel(slice, Some(token)))??;
    Ok(())
}

/// A parameter given as a number, a sequence of numbers or a tensor.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Scalar(f64),
    Vector(Vec<f64>),
}

impl Param {
    /// Reads `obj`: a Python number (or 0-d tensor) is a scalar; a sequence or a 1-d
    /// tensor/array of floats is a vector.
    pub(crate) fn extract(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Param> {
        if let Ok(v) = obj.extract::<f64>() {
            return Ok(Param::Scalar(v));
        }
        if let Ok(t) = PyTensor::extract(obj, Access::Read) {
            let values: Vec<f64> = match t.dtype() {
                DType::Float32 => t.view::<f32>()?.iter().map(|&v| f64::from(v)).collect(),
                DType::Float64 => t.view::<f64>()?.to_vec(),
                DType::Float16 => t.view::<half::f16>()?.iter().map(|v| v.to_f64()).collect(),
                DType::BFloat16 => t.view::<half::bf16>()?.iter().map(|v| v.to_f64()).collect(),
                other => {
                    return Err(PyTypeError::new_err(format!(
                        "{name}: expected a floating-point tensor, got dtype {other}"
                    )));
                }
            };
            return match t.shape().len() {
                0 => Ok(Param::Scalar(values.first().copied().unwrap_or(f64::NAN))),
                1 => Ok(Param::Vector(values)),
                n => Err(PyValueError::new_err(format!(
                    "{name}: expected a number or a 1-d tensor, got a {n}-d tensor"
                ))),
            };
        }
        match obj.extract::<Vec<f64>>() {
            Ok(v) => Ok(Param::Vector(v)),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{name}: expected a number, a sequence of numbers or a 1-d tensor, got {}",
                obj.get_type().name()?
            ))),
        }
    }

    /// The values, a scalar repeated `len` times.
    pub(crate) fn expand(self, len: usize) -> Vec<f64> {
        match self {
            Param::Scalar(v) => vec![v; len],
            Param::Vector(v) => v,
        }
    }
}

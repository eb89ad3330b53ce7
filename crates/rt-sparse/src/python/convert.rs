//! Argument conversion shared by the entry points: tensors to slices (copied once when
//! strided), dtype checks with messages naming the argument, outputs handed to torch
//! without copying, the mapping of [`SparseError`] onto Python exceptions, and
//! [`run_kernel`], which runs every kernel with the GIL released and long ones so that
//! Ctrl-C stops them.

use std::borrow::Cow;

use pyo3::exceptions::{
    PyIndexError, PyKeyboardInterrupt, PyMemoryError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use rt_view::python::{
    Access, PyTensor, owned_to_torch, run_interruptible, run_released, torch_empty,
};
use rt_view::{DType, Element, OwnedTensor};

use crate::error::SparseError;

impl From<SparseError> for PyErr {
    fn from(err: SparseError) -> PyErr {
        let message = err.to_string();
        match err {
            SparseError::View(e) => e.into(),
            SparseError::Cancelled => PyKeyboardInterrupt::new_err(message),
            SparseError::OutOfMemory { .. } => PyMemoryError::new_err(message),
            e if e.is_index_error() => PyIndexError::new_err(message),
            _ => PyValueError::new_err(message),
        }
    }
}

/// From this much work (in SpMM multiply-adds, or what takes as long) a kernel runs
/// through [`run_interruptible`], so that Ctrl-C stops it. That costs a thread start and
/// a hand-off, some tens of microseconds, while 2^27 multiply-adds take about 40 ms at
/// one thread and 20 ms at two (the benchmark's 2^28 take 48 ms at two,
/// `benchmarks/sparse.py`): under 0.2% of the shortest call that pays it. Calls below it
/// end within a few tens of milliseconds, so Ctrl-C is raised right after them anyway.
pub(crate) const INTERRUPTIBLE_MIN_WORK: usize = 1 << 27;

// What one unit of the other kernels costs in SpMM multiply-adds (about 0.3 ns each at
// one thread), measured at one thread on a 3000-node matrix with 800 entries per row
// and on 4M random COO entries over 200k rows.

/// One SpGEMM multiplication: a scattered accumulator update plus its share of the
/// symbolic phase (1.8 ns cache-resident, about 6 ns on the benchmark's power-law graph).
pub(crate) const SPGEMM_FLOP_COST: usize = 8;

/// One entry of a COO -> CSR conversion: a counting sort by row with random accesses, then
/// a sort within rows (about 100 ns).
pub(crate) const COO_ENTRY_COST: usize = 256;

/// One entry of a transpose, or of grouping edges by destination: a counting sort
/// (about 40 ns).
pub(crate) const TRANSPOSE_ENTRY_COST: usize = 128;

/// One entry of a CSR -> COO row expansion: a streamed write (about 7 ns).
pub(crate) const EXPAND_ENTRY_COST: usize = 16;

/// One index (or pointer) checked by the validation of the input arrays: a streamed,
/// vectorized read (about 1.3 ns for int64 at one thread: 50M entries in 65 ms).
pub(crate) const VALIDATE_ENTRY_COST: usize = 4;

/// One index checked for sorted, unique order within its row (`sorted=True`), on top of
/// [`VALIDATE_ENTRY_COST`]: a scalar compare per entry, row by row (about 1.5 ns).
pub(crate) const SORTED_ENTRY_COST: usize = 4;

/// One entry of a built attention pattern: written once into a new array and copied
/// once into the output tensor, both freshly faulted in (about 7 ns all told; a BigBird
/// draw counts as [`PATTERN_DRAW_COST`] more).
pub(crate) const PATTERN_ENTRY_COST: usize = 16;

/// One random block draw of BigBird's pattern: a hash map lookup and insert (about 40 ns).
pub(crate) const PATTERN_DRAW_COST: usize = 128;

/// Runs kernel `f` (which does about `work` multiply-adds) with the GIL released. From
/// [`INTERRUPTIBLE_MIN_WORK`] on it runs on a helper thread with `f`'s cancel token as
/// that thread's ambient token (`rt_view::cancel::with_token`, which the kernels poll
/// between chunks) while this thread watches for Ctrl-C: a KeyboardInterrupt cancels the
/// kernel, and whatever it wrote (always into new buffers) is dropped.
pub(crate) fn run_kernel<T, F>(py: Python<'_>, work: usize, f: F) -> PyResult<T>
where
    F: FnOnce() -> crate::Result<T> + Send,
    T: Send,
{
    if work >= INTERRUPTIBLE_MIN_WORK {
        run_interruptible(py, |token| rt_view::cancel::with_token(token, f))?.map_err(PyErr::from)
    } else {
        run_released(py, work, f).map_err(PyErr::from)
    }
}

/// A borrowed tensor argument and its name for messages.
pub(crate) struct Arg<'py> {
    pub(crate) name: &'static str,
    pub(crate) t: PyTensor<'py>,
}

impl<'py> Arg<'py> {
    /// Borrows `obj` read-only.
    pub(crate) fn new(name: &'static str, obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let t = PyTensor::extract(obj, Access::Read).map_err(|e| {
            let py = obj.py();
            let kind = e.get_type(py);
            PyErr::from_type(kind, format!("{name}: {}", e.value(py)))
        })?;
        Ok(Arg { name, t })
    }

    pub(crate) fn dtype(&self) -> DType {
        self.t.dtype()
    }

    pub(crate) fn shape(&self) -> &[usize] {
        self.t.shape()
    }

    /// `ValueError` unless the tensor has `ndim` dimensions.
    pub(crate) fn expect_ndim(&self, op: &str, ndim: usize) -> PyResult<()> {
        if self.t.shape().len() != ndim {
            return Err(PyValueError::new_err(format!(
                "{op}: {} must be {ndim}-dimensional, got shape {:?}",
                self.name,
                self.t.shape()
            )));
        }
        Ok(())
    }

    /// The elements in row-major order: borrowed when contiguous, else copied once.
    pub(crate) fn slice<T: Element>(&self) -> PyResult<Cow<'_, [T]>> {
        let view = self.t.view::<T>()?;
        Ok(match view.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(view.to_vec()),
        })
    }
}

/// The shared index dtype (int32 or int64) of index arrays, or a `TypeError`.
pub(crate) fn index_dtype(op: &str, args: &[&Arg<'_>]) -> PyResult<DType> {
    let Some(first) = args.first() else {
        return Ok(DType::Int64);
    };
    for a in args {
        if !matches!(a.dtype(), DType::Int32 | DType::Int64) {
            return Err(PyTypeError::new_err(format!(
                "{op}: {} has dtype {}, expected int32 or int64",
                a.name,
                a.dtype()
            )));
        }
        if a.dtype() != first.dtype() {
            return Err(PyTypeError::new_err(format!(
                "{op}: {} has dtype {} but {} has dtype {}; index arrays must share one dtype",
                a.name,
                a.dtype(),
                first.name,
                first.dtype()
            )));
        }
    }
    Ok(first.dtype())
}

/// The shared value dtype (float32 or float64), or a `TypeError` naming the mismatch.
pub(crate) fn value_dtype(op: &str, args: &[&Arg<'_>]) -> PyResult<DType> {
    let Some(first) = args.first() else {
        return Ok(DType::Float32);
    };
    for a in args {
        if !matches!(a.dtype(), DType::Float32 | DType::Float64) {
            return Err(PyTypeError::new_err(format!(
                "{op}: {} has dtype {}, expected float32 or float64",
                a.name,
                a.dtype()
            )));
        }
        if a.dtype() != first.dtype() {
            return Err(PyTypeError::new_err(format!(
                "{op}: {} has dtype {} but {} has dtype {}; convert one with .to()",
                a.name,
                a.dtype(),
                first.name,
                first.dtype()
            )));
        }
    }
    Ok(first.dtype())
}

/// A new torch tensor of `shape` holding `data` (one copy out of the Vec).
pub(crate) fn vec_to_torch<'py, T: Element>(
    py: Python<'py>,
    data: &[T],
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    owned_to_torch(py, OwnedTensor::from_slice(data, shape)?)
}

/// From this many bytes up to [`rt_view::MAPPED_FROM_BYTES`], new outputs come from
/// `torch.empty` (whose memory is not cleared) instead of a zeroed [`OwnedTensor`]; from
/// there on they are [`OwnedTensor::for_overwrite`], which reuses a dropped output of the
/// same size from rt-view's cache instead of faulting in fresh pages (10-20% of a SpMM
/// on the 200k-node graph). As in rt-simd (`benchmarks/view.py`).
const LARGE_OUTPUT: usize = 1 << 20;

/// A new output of `shape`, filled by `f` through [`run_kernel`] (`work` says how long it
/// takes), handed to torch without copying. `f` must write every element; on error
/// (a KeyboardInterrupt included) nothing is returned.
pub(crate) fn fill_new<'py, T: Element, F>(
    py: Python<'py>,
    shape: &[usize],
    work: usize,
    f: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: FnOnce(&mut [T]) -> crate::Result<()> + Send,
{
    let numel: usize = shape.iter().product();
    let bytes = numel.saturating_mul(std::mem::size_of::<T>());
    if bytes >= rt_view::MAPPED_FROM_BYTES {
        let mut out = OwnedTensor::<T>::for_overwrite(shape)?;
        let slice = out.as_mut_slice();
        run_kernel(py, work, || f(slice))?;
        return owned_to_torch(py, out);
    }
    if bytes >= LARGE_OUTPUT {
        let obj = torch_empty(py, shape, T::DTYPE)?;
        {
            let mut tensor = PyTensor::extract(&obj, Access::Write)?;
            let mut view = tensor.view_mut::<T>()?;
            let slice = view
                .as_slice_mut()
                .ok_or_else(|| PyValueError::new_err("torch.empty returned a strided tensor"))?;
            run_kernel(py, work, || f(slice))?;
        }
        return Ok(obj);
    }
    let mut out = OwnedTensor::<T>::zeros(shape)?;
    let slice = out.as_mut_slice();
    run_kernel(py, work, || f(slice))?;
    owned_to_torch(py, out)
}

/// Runs `$body` with `$I` bound to the index type of `$idx` and `$V` to the value type of
/// `$val`.
macro_rules! dispatch {
    ($idx:expr, $val:expr, |$I:ident, $V:ident| $body:expr) => {
        match ($idx, $val) {
            (rt_view::DType::Int32, rt_view::DType::Float32) => {
                type $I = i32;
                type $V = f32;
                $body
            }
            (rt_view::DType::Int32, _) => {
                type $I = i32;
                type $V = f64;
                $body
            }
            (_, rt_view::DType::Float32) => {
                type $I = i64;
                type $V = f32;
                $body
            }
            _ => {
                type $I = i64;
                type $V = f64;
                $body
            }
        }
    };
}

pub(crate) use dispatch;

/// Runs `$body` with `$I` bound to the index type of `$idx`, for functions that take no
/// values (patterns, positions).
macro_rules! dispatch_index {
    ($idx:expr, |$I:ident| $body:expr) => {
        match $idx {
            rt_view::DType::Int32 => {
                type $I = i32;
                $body
            }
            _ => {
                type $I = i64;
                $body
            }
        }
    };
}

pub(crate) use dispatch_index;

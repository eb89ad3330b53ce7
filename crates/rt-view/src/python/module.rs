//! The `rusttorch_view._native` extension module: a thin layer that converts arguments,
//! calls rt-view, and converts back.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::input::{Access, PyTensor};
use super::output::{check_out, owned_to_torch, share_with_torch, torch_empty};
use super::torch_api::is_torch_tensor;
use super::{_thread_env_problem, add_thread_functions, run_interruptible, run_released};
use crate::{DType, OwnedTensor, TensorViewMut, copy::copy_into, dispatch_dtype};

/// What rusttorch sees when it borrows a tensor.
#[pyclass(frozen, module = "rusttorch_view")]
struct TensorInfo {
    #[pyo3(get)]
    dtype: &'static str,
    shape: Vec<usize>,
    strides: Vec<isize>,
    #[pyo3(get)]
    device: &'static str,
    #[pyo3(get)]
    is_contiguous: bool,
    #[pyo3(get)]
    data_ptr: usize,
    #[pyo3(get)]
    readonly: bool,
    #[pyo3(get)]
    source: &'static str,
    #[pyo3(get)]
    itemsize: usize,
}

#[pymethods]
impl TensorInfo {
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.shape)
    }

    #[getter]
    fn strides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.strides)
    }

    #[getter]
    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("dtype", self.dtype)?;
        d.set_item("shape", self.shape(py)?)?;
        d.set_item("strides", self.strides(py)?)?;
        d.set_item("device", self.device)?;
        d.set_item("is_contiguous", self.is_contiguous)?;
        d.set_item("data_ptr", self.data_ptr)?;
        d.set_item("readonly", self.readonly)?;
        d.set_item("source", self.source)?;
        d.set_item("itemsize", self.itemsize)?;
        d.set_item("numel", self.numel())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "TensorInfo(dtype='{}', shape={}, strides={}, device='{}', is_contiguous={}, \
             data_ptr={:#x}, readonly={}, source='{}', itemsize={})",
            self.dtype,
            py_tuple(&self.shape),
            py_tuple(&self.strides),
            self.device,
            if self.is_contiguous { "True" } else { "False" },
            self.data_ptr,
            if self.readonly { "True" } else { "False" },
            self.source,
            self.itemsize
        )
    }
}

/// Formats like Python's tuple repr: `(3,)`, `(2, 3)`, `()`.
fn py_tuple<T: std::fmt::Display>(items: &[T]) -> String {
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

#[pyfunction]
fn info(x: &Bound<'_, PyAny>) -> PyResult<TensorInfo> {
    let t = PyTensor::extract(x, Access::Read)?;
    // Validates the extent (for torch, against the storage) as any kernel would.
    t.byte_range()?;
    Ok(TensorInfo {
        dtype: t.dtype().name(),
        shape: t.shape().to_vec(),
        strides: t.strides().to_vec(),
        device: "cpu",
        is_contiguous: t.is_contiguous(),
        data_ptr: t.data_ptr(),
        readonly: t.readonly(),
        source: t.source().name(),
        itemsize: t.dtype().itemsize(),
    })
}

/// Copies `src` into `dst` (same shape and dtype), element-wise when both are aligned and
/// byte-wise otherwise (`np.frombuffer(buf, offset=1)` gives misaligned floats, which
/// must not be read as `&f32`).
fn copy_between(py: Python<'_>, src: &PyTensor<'_>, dst: &mut PyTensor<'_>) -> PyResult<()> {
    if src.is_aligned() && dst.is_aligned() {
        dispatch_dtype!(src.dtype(), T => {
            let view = src.view::<T>()?;
            let target = dst.view_mut::<T>()?;
            run_released(py, view.numel(), || copy_into(&view, target))?;
        });
    } else {
        let view = src.view_bytes()?;
        let target = dst.view_bytes_mut()?;
        run_released(py, view.numel(), || copy_into(&view, target))?;
    }
    Ok(())
}

/// Copies a borrowed tensor into a new Rust-owned contiguous tensor and hands it to torch.
fn copy_to_new<'py>(py: Python<'py>, src: &PyTensor<'py>) -> PyResult<Bound<'py, PyAny>> {
    dispatch_dtype!(src.dtype(), T => {
        let mut out = OwnedTensor::<T>::zeros(src.shape())?;
        if src.is_aligned() {
            let view = src.view::<T>()?;
            let dst = out.view_mut()?;
            run_released(py, view.numel(), || copy_into(&view, dst))?;
        } else {
            let view = src.view_bytes()?;
            let mut byte_shape = src.shape().to_vec();
            byte_shape.push(src.dtype().itemsize());
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(out.as_mut_slice());
            let dst = TensorViewMut::from_slice(bytes, &byte_shape)?;
            run_released(py, view.numel(), || copy_into(&view, dst))?;
        }
        owned_to_torch(py, out)
    })
}

#[pyfunction]
#[pyo3(signature = (x, *, copy = None))]
fn to_torch<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    copy: Option<bool>,
) -> PyResult<Bound<'py, PyAny>> {
    if is_torch_tensor(x)? && copy != Some(true) {
        return Ok(x.clone());
    }
    let t = PyTensor::extract(x, Access::Read)?;
    t.byte_range()?;
    // What torch can not represent: these need a copy whatever the caller asked.
    let must_copy = if t.has_negative_strides() {
        Some("it has negative strides, which torch tensors can not have")
    } else if !t.is_aligned() {
        Some("its data is not aligned to its item size")
    } else {
        None
    };
    match (copy, must_copy) {
        (Some(true), _) | (None, Some(_)) => copy_to_new(py, &t),
        (Some(false), Some(why)) => Err(PyValueError::new_err(format!(
            "to_torch(copy=False) can not share this {} without a copy: {why}",
            x.get_type().name()?
        ))),
        // Read-only memory (pyarrow, bytes, a read-only mmap) is copied by default, since
        // every torch tensor is writable and a write into such memory could crash.
        (None, None) if t.readonly() => copy_to_new(py, &t),
        (Some(false), None) if t.readonly() => {
            PyErr::warn(
                py,
                &py.get_type::<pyo3::exceptions::PyUserWarning>(),
                c"to_torch(copy=False) shares read-only memory: torch tensors are always \
                  writable, and writing to this one is undefined behaviour (it may crash)",
                2,
            )?;
            share_with_torch(t)
        }
        _ => share_with_torch(t),
    }
}

#[pyfunction]
#[pyo3(signature = (x, *, out = None))]
fn copy<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let src = PyTensor::extract(x, Access::Read)?;
    let Some(out_obj) = out else {
        return copy_to_new(py, &src);
    };
    let mut dst = PyTensor::extract(out_obj, Access::Write)?;
    check_out(&dst, src.shape(), src.dtype(), &[&src])?;
    copy_between(py, &src, &mut dst)?;
    dst.mark_written()?;
    Ok(out_obj.clone())
}

/// `copy` with the output allocated by `torch.empty` instead of Rust; `benchmarks/view.py`
/// compares the two allocation routes.
#[pyfunction]
fn _copy_torch_alloc<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let src = PyTensor::extract(x, Access::Read)?;
    let out_obj = torch_empty(py, src.shape(), src.dtype())?;
    let mut dst = PyTensor::extract(&out_obj, Access::Write)?;
    copy_between(py, &src, &mut dst)?;
    Ok(out_obj)
}

#[pyfunction]
fn cpu_features() -> Vec<&'static str> {
    crate::cpu::cpu_features()
}

#[pyfunction]
fn supported_dtypes() -> Vec<&'static str> {
    DType::ALL.iter().map(|d| d.name()).collect()
}

/// Sleeps in Rust, in steps of 1 ms that poll a cancel token, for up to `seconds`; returns
/// the seconds slept. A test hook for `run_interruptible`: Ctrl-C must end it promptly.
#[pyfunction]
fn _sleep_interruptible(py: Python<'_>, seconds: f64) -> PyResult<f64> {
    let start = std::time::Instant::now();
    let budget = std::time::Duration::from_secs_f64(seconds.max(0.0));
    run_interruptible(py, |token| {
        while start.elapsed() < budget && !token.is_cancelled() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    })?;
    Ok(start.elapsed().as_secs_f64())
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<TensorInfo>()?;
    m.add_function(wrap_pyfunction!(info, m)?)?;
    m.add_function(wrap_pyfunction!(to_torch, m)?)?;
    m.add_function(wrap_pyfunction!(copy, m)?)?;
    m.add_function(wrap_pyfunction!(_copy_torch_alloc, m)?)?;
    add_thread_functions(m)?;
    m.add_function(wrap_pyfunction!(_thread_env_problem, m)?)?;
    m.add_function(wrap_pyfunction!(cpu_features, m)?)?;
    m.add_function(wrap_pyfunction!(supported_dtypes, m)?)?;
    m.add_function(wrap_pyfunction!(_sleep_interruptible, m)?)?;
    Ok(())
}

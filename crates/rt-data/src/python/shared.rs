//! Memory owned elsewhere (a memory-mapped .npy) handed to torch without a copy: a small
//! buffer-protocol object over the bytes, wrapped by `torch.frombuffer`, which keeps it (and
//! so the mapping) alive as long as the tensor's storage lives.

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{ffi, intern};
use rt_view::python::torch;

use crate::source::{Matrix, SharedBytes};

/// A Python buffer over [`SharedBytes`].
#[pyclass(frozen, module = "rusttorch_data._native", name = "_SharedBuffer")]
pub struct SharedBuffer {
    owner: Arc<dyn SharedBytes>,
    len: usize,
}

#[pymethods]
impl SharedBuffer {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        let bytes = this.owner.bytes();
        let len = this.len.min(bytes.len());
        let len = ffi::Py_ssize_t::try_from(len)
            .map_err(|_| PyValueError::new_err("buffer too large"))?;
        // SAFETY: `view` is the caller's Py_buffer (CPython's buffer protocol); the pointer
        // and length describe `owner`'s bytes, which live as long as `slf`, and
        // PyBuffer_FillInfo takes a reference to `slf` for the view's lifetime. The bytes
        // are a private copy-on-write mapping (see `readers::npy`), so exporting them
        // writable is memory-safe: a write lands in this process's copy, never in the file.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                bytes.as_ptr().cast_mut().cast::<c_void>(),
                len,
                0,
                flags,
            )
        };
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// Wraps [`Matrix::Shared`] memory as a `[rows, cols]` torch tensor that keeps the owner
/// alive, without copying.
pub fn shared_to_torch<'py>(py: Python<'py>, m: Matrix) -> PyResult<Bound<'py, PyAny>> {
    let Matrix::Shared {
        owner,
        dtype,
        rows,
        cols,
    } = m
    else {
        return Err(PyValueError::new_err("not a shared matrix"));
    };
    let api = torch(py)?;
    let torch_dtype = api.dtype_object(py, dtype);
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "dtype"), torch_dtype)?;
    let module = py.import(intern!(py, "torch"))?;
    let numel = rows.saturating_mul(cols);
    if numel == 0 {
        return module.call_method(intern!(py, "empty"), ((rows, cols),), Some(&kwargs));
    }
    let len = numel
        .checked_mul(dtype.itemsize())
        .ok_or_else(|| PyValueError::new_err("shape overflows"))?;
    let buffer = Bound::new(py, SharedBuffer { owner, len })?;
    let flat = module.call_method(intern!(py, "frombuffer"), (buffer,), Some(&kwargs))?;
    flat.call_method1(intern!(py, "view"), (rows, cols))
}

/// Adds the buffer class (returned inside tensors, never constructed by users).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SharedBuffer>()
}

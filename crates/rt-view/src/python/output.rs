//! Handing results back to torch without copying, and checking `out=` arguments.
//!
//! Two ways to return a new tensor were measured (`benchmarks/view.py`): allocating it with
//! `torch.empty` and writing into it, or allocating it in Rust and passing ownership to
//! torch through a DLPack capsule. The DLPack route is the default: it skips torch's
//! Python-level argument parsing and lets Rust choose the alignment.

use std::any::Any;
use std::ffi::c_void;
use std::panic::AssertUnwindSafe;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{ffi, intern};

use super::dlpack::{self, DLDevice, DLManagedTensorVersioned, DLTensor};
use super::input::{Keepalive, PyTensor};
use super::torch_api::torch;
use crate::{DType, Element, OwnedTensor};

/// A DLPack tensor plus everything it points at. `managed` must stay the first field: the
/// deleter receives a pointer to it and casts it back to the whole struct.
#[repr(C)]
struct Exported {
    managed: DLManagedTensorVersioned,
    shape: Vec<i64>,
    strides: Vec<i64>,
    _owner: Box<dyn Any + Send>,
}

/// DLPack deleter for tensors made by [`export`]; torch calls it when the storage dies,
/// from whichever thread drops the last reference.
unsafe extern "C" fn delete_exported(managed: *mut DLManagedTensorVersioned) {
    if managed.is_null() {
        return;
    }
    // A panic must not unwind into C; the worst outcome of swallowing one is a leak.
    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `managed` is the first field of a repr(C) `Exported` leaked by
        // `Box::into_raw` in `export`, and DLPack calls the deleter exactly once.
        drop(unsafe { Box::from_raw(managed.cast::<Exported>()) });
    }));
}

/// Capsule destructor: frees the tensor only if no consumer took it (a consumer renames
/// the capsule to "used_dltensor_versioned" and then owns the tensor).
unsafe extern "C" fn drop_unconsumed_capsule(capsule: *mut ffi::PyObject) {
    let name = dlpack::CAPSULE_VERSIONED.as_ptr();
    // SAFETY: CPython calls this with the dying capsule and the GIL held; the pointer
    // check succeeds only for an unconsumed capsule made by `export`.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, name) == 1 {
            let managed =
                ffi::PyCapsule_GetPointer(capsule, name).cast::<DLManagedTensorVersioned>();
            delete_exported(managed);
        } else {
            // IsValid does not set an exception for a renamed capsule, but clear any
            // stray one: destructors must not leave one behind.
            ffi::PyErr_Clear();
        }
    }
}

fn export<'py>(
    py: Python<'py>,
    data: *mut c_void,
    dtype: DType,
    shape: &[usize],
    strides: &[isize],
    owner: Box<dyn Any + Send>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut exported = Box::new(Exported {
        managed: DLManagedTensorVersioned {
            version: dlpack::VERSION,
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(delete_exported),
            flags: 0,
            dl_tensor: DLTensor {
                data,
                device: DLDevice {
                    device_type: dlpack::DEVICE_CPU,
                    device_id: 0,
                },
                ndim: i32::try_from(shape.len())
                    .map_err(|_| PyValueError::new_err("too many dimensions for DLPack"))?,
                dtype: dlpack::dl_dtype(dtype),
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
        },
        shape: shape.iter().map(|&n| n as i64).collect(),
        strides: strides.iter().map(|&s| s as i64).collect(),
        _owner: owner,
    });
    // The Vecs' heap buffers do not move when the Box does, so these pointers stay valid.
    exported.managed.dl_tensor.shape = exported.shape.as_mut_ptr();
    exported.managed.dl_tensor.strides = exported.strides.as_mut_ptr();
    let raw = Box::into_raw(exported);
    // SAFETY: `raw` is a valid, leaked `Exported` whose first field is the managed tensor;
    // the capsule's destructor or the consumer's call of the deleter frees it, exactly once.
    let capsule = unsafe {
        ffi::PyCapsule_New(
            raw.cast(),
            dlpack::CAPSULE_VERSIONED.as_ptr(),
            Some(drop_unconsumed_capsule),
        )
    };
    if capsule.is_null() {
        // SAFETY: no capsule owns `raw`, so we still do.
        drop(unsafe { Box::from_raw(raw) });
        return Err(PyErr::fetch(py));
    }
    // SAFETY: PyCapsule_New returned a new (owned) reference.
    let capsule = unsafe { Bound::from_owned_ptr(py, capsule) };
    torch(py)?.from_dlpack.bind(py).call1((capsule,))
}

/// Gives `tensor` to torch without copying; torch frees it when its storage dies.
pub fn owned_to_torch<'py, T: Element>(
    py: Python<'py>,
    mut tensor: OwnedTensor<T>,
) -> PyResult<Bound<'py, PyAny>> {
    let data = tensor.as_mut_ptr().cast::<c_void>();
    let shape = tensor.shape().to_vec();
    let strides = tensor.strides().to_vec();
    export(py, data, T::DTYPE, &shape, &strides, Box::new(tensor))
}

/// Keeps a borrowed Python export alive inside a torch tensor, releasing it with the GIL.
struct SharedOwner {
    keep: Option<Keepalive>,
    owner: Option<Py<PyAny>>,
}

impl Drop for SharedOwner {
    fn drop(&mut self) {
        let keep = self.keep.take();
        let owner = self.owner.take();
        // Releasing a buffer or calling a producer's deleter needs the GIL, and torch may
        // drop its storage on a thread that does not hold it.
        Python::attach(move |_py| {
            drop(keep);
            drop(owner);
        });
    }
}

/// Shares the memory of a borrowed object with torch without copying: the torch tensor
/// keeps the object (and its export) alive.
///
/// Torch can not represent negative strides; callers copy those first.
pub fn share_with_torch<'py>(tensor: PyTensor<'py>) -> PyResult<Bound<'py, PyAny>> {
    let py = tensor.owner().py();
    if tensor.has_negative_strides() {
        return Err(PyValueError::new_err(
            "torch tensors can not have negative strides; copy the data instead",
        ));
    }
    let data = tensor.data_ptr() as *mut c_void;
    let dtype = tensor.dtype();
    let shape = tensor.shape().to_vec();
    let strides = tensor.strides().to_vec();
    let (owner, keep) = tensor.into_parts();
    let owner = SharedOwner {
        keep: Some(keep),
        owner: Some(owner.unbind()),
    };
    export(py, data, dtype, &shape, &strides, Box::new(owner))
}

/// A new uninitialized torch tensor from `torch.empty` (the alternative to
/// [`owned_to_torch`] that `benchmarks/view.py` measures). From 4 MiB on, the buffer is
/// advised to be backed by transparent huge pages before anything touches it (see
/// `huge_pages`): fewer page faults when the kernel writes it.
pub fn torch_empty<'py>(
    py: Python<'py>,
    shape: &[usize],
    dtype: DType,
) -> PyResult<Bound<'py, PyAny>> {
    let api = torch(py)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "dtype"), api.dtype_object(py, dtype))?;
    let tensor = api
        .empty
        .bind(py)
        .call((PyTuple::new(py, shape)?,), Some(&kwargs))?;
    let bytes = shape
        .iter()
        .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d));
    if let Some(bytes) = bytes.filter(|&b| b >= crate::huge_pages::MIN_BYTES) {
        let addr: usize = tensor.call_method0(intern!(py, "data_ptr"))?.extract()?;
        crate::huge_pages::advise(addr, bytes);
    }
    Ok(tensor)
}

/// Checks an `out=` tensor: the expected shape and dtype, and no shared memory with any
/// input. Overlap is judged by byte ranges, so interleaved but disjoint slices of one
/// tensor (two columns, say) are refused too; that is conservative and never wrong.
pub fn check_out(
    out: &PyTensor<'_>,
    shape: &[usize],
    dtype: DType,
    inputs: &[&PyTensor<'_>],
) -> PyResult<()> {
    if out.dtype() != dtype {
        return Err(PyTypeError::new_err(format!(
            "out= has dtype {}, expected {dtype}",
            out.dtype()
        )));
    }
    if out.shape() != shape {
        return Err(PyValueError::new_err(format!(
            "out= has shape {:?}, expected {shape:?}",
            out.shape()
        )));
    }
    if let Some(out_bytes) = out.byte_range()? {
        for (i, input) in inputs.iter().enumerate() {
            if let Some(in_bytes) = input.byte_range()?
                && in_bytes.start < out_bytes.end
                && out_bytes.start < in_bytes.end
            {
                return Err(PyValueError::new_err(format!(
                    "out= overlaps the memory of input {i}; pass a separate output tensor"
                )));
            }
        }
    }
    Ok(())
}

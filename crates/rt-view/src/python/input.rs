//! Taking views of Python objects without copying: torch tensors, DLPack producers (NumPy,
//! pyarrow, JAX, CuPy...), and buffer-protocol objects.

use std::ffi::CStr;
use std::ops::Range;
use std::ptr::NonNull;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use pyo3::{ffi, intern};

use super::dlpack::{self, DLManagedTensor, DLManagedTensorVersioned, DLTensor};
use super::torch_api::{is_torch_tensor, torch};
use crate::layout::{is_contiguous, relative_extent};
use crate::{DType, Element, TensorView, TensorViewMut, ViewError};

/// Whether the caller will write through the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Read,
    /// Read and write; refused for read-only memory and for tensors that require grad.
    Write,
}

/// Which protocol the memory came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `torch.Tensor`, read through its attributes (no DLPack round trip).
    Torch,
    /// An object with `__dlpack__`.
    DLPack,
    /// An object with the buffer protocol.
    Buffer,
}

impl Source {
    /// `"torch"`, `"dlpack"` or `"buffer"`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Torch => "torch",
            Source::DLPack => "dlpack",
            Source::Buffer => "buffer",
        }
    }
}

/// What keeps foreign memory valid besides a reference to its owner object.
pub(crate) enum Keepalive {
    Nothing,
    /// A consumed DLPack >= 1.0 tensor; its deleter runs on drop.
    Versioned(NonNull<DLManagedTensorVersioned>),
    /// A consumed legacy DLPack tensor; its deleter runs on drop.
    Legacy(NonNull<DLManagedTensor>),
    /// An acquired buffer; released on drop.
    Buffer(Box<ffi::Py_buffer>),
}

// SAFETY: a Keepalive is only ever dropped with the GIL held (inside `PyTensor`, which
// holds a `Bound<'py>`, or inside `Python::attach` in `output::SharedOwner::drop`), and the
// producers' deleters and `PyBuffer_Release` may run on any thread that holds the GIL.
unsafe impl Send for Keepalive {}

impl Drop for Keepalive {
    fn drop(&mut self) {
        match self {
            Keepalive::Nothing => {}
            Keepalive::Versioned(p) => {
                // SAFETY: we took ownership of the managed tensor by renaming its capsule
                // to "used_dltensor_versioned"; DLPack says the consumer calls the deleter
                // exactly once, which is here.
                unsafe {
                    if let Some(deleter) = (*p.as_ptr()).deleter {
                        deleter(p.as_ptr());
                    }
                }
            }
            Keepalive::Legacy(p) => {
                // SAFETY: as for `Versioned`, with the legacy capsule renamed to "used_dltensor".
                unsafe {
                    if let Some(deleter) = (*p.as_ptr()).deleter {
                        deleter(p.as_ptr());
                    }
                }
            }
            Keepalive::Buffer(view) => {
                // SAFETY: the buffer was filled by a successful PyObject_GetBuffer and is
                // released exactly once; the GIL is held (see `unsafe impl Send`).
                unsafe { ffi::PyBuffer_Release(&mut **view) }
            }
        }
    }
}

/// A borrowed Python tensor: metadata checked, memory pinned, ready to be viewed as
/// [`TensorView`] or [`TensorViewMut`] of the right element type.
///
/// The owner object (and the DLPack tensor or buffer it exported) stays alive as long as
/// this value, and views borrow from it, so a view can never outlive the memory.
pub struct PyTensor<'py> {
    // Field order matters: `keep` drops before `owner`, releasing the export before the
    // last reference we hold to its exporter.
    keep: Keepalive,
    owner: Bound<'py, PyAny>,
    /// Address of element `[0, 0, ...]`.
    data: usize,
    dtype: DType,
    shape: Vec<usize>,
    strides: Vec<isize>,
    readonly: bool,
    writable: bool,
    source: Source,
    /// For torch tensors, the byte range of the storage, which every element must lie in.
    storage: Option<Range<usize>>,
}

fn supported_dtypes() -> String {
    DType::ALL.map(DType::name).join(", ")
}

impl<'py> PyTensor<'py> {
    /// Borrows `obj` (a torch tensor, a DLPack producer or a buffer) without copying.
    ///
    /// Errors: `ValueError` for memory that is not on the CPU, read-only memory asked for
    /// `Access::Write`, or a tensor requiring grad asked for writing; `TypeError` for an
    /// unsupported dtype, layout or object.
    pub fn extract(obj: &Bound<'py, PyAny>, access: Access) -> PyResult<Self> {
        let tensor = if is_torch_tensor(obj)? {
            Self::from_torch(obj, access)?
        } else if obj.hasattr(intern!(obj.py(), "__dlpack__"))? {
            Self::from_dlpack(obj)?
        // SAFETY: `obj` is a valid object and we hold the GIL.
        } else if unsafe { ffi::PyObject_CheckBuffer(obj.as_ptr()) } == 1 {
            Self::from_buffer(obj)?
        } else {
            return Err(PyTypeError::new_err(format!(
                "expected a torch.Tensor, a NumPy array, or an object with __dlpack__ or the \
                 buffer protocol; got {}",
                obj.get_type().name()?
            )));
        };
        tensor.check_access(access)
    }

    fn check_access(mut self, access: Access) -> PyResult<Self> {
        if access == Access::Write {
            if self.readonly {
                return Err(PyValueError::new_err(format!(
                    "cannot write into this {}: its memory is read-only",
                    self.owner.get_type().name()?
                )));
            }
            self.writable = true;
        }
        Ok(self)
    }

    fn from_torch(obj: &Bound<'py, PyAny>, access: Access) -> PyResult<Self> {
        let py = obj.py();
        let api = torch(py)?;
        let layout = obj.getattr(intern!(py, "layout"))?;
        if !layout.is(&api.strided) {
            return Err(PyTypeError::new_err(format!(
                "expected a dense (torch.strided) tensor, got layout {}; call .to_dense() first",
                layout.str()?
            )));
        }
        if !obj.getattr(intern!(py, "is_cpu"))?.is_truthy()? {
            let device = obj.getattr(intern!(py, "device"))?.str()?;
            return Err(PyValueError::new_err(format!(
                "expected a CPU tensor, got a tensor on device '{device}'; rusttorch runs on the \
                 CPU, move it with .cpu() first"
            )));
        }
        let torch_dtype = obj.getattr(intern!(py, "dtype"))?;
        let dtype = api.dtype_of(&torch_dtype).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "unsupported dtype {}; rusttorch supports {}",
                torch_dtype.str().map(|s| s.to_string()).unwrap_or_default(),
                supported_dtypes()
            ))
        })?;
        if obj.call_method0(intern!(py, "is_neg"))?.is_truthy()? {
            return Err(PyValueError::new_err(
                "the tensor has its lazy negation bit set; call .resolve_neg() first",
            ));
        }
        if access == Access::Write {
            if obj.getattr(intern!(py, "requires_grad"))?.is_truthy()?
                && api.is_grad_enabled.bind(py).call0()?.is_truthy()?
            {
                return Err(PyValueError::new_err(
                    "cannot write into a tensor that requires grad: autograd would not see \
                     the write; pass a tensor that does not require grad, or call under \
                     torch.no_grad()",
                ));
            }
            if obj.call_method0(intern!(py, "is_inference"))?.is_truthy()?
                && !api
                    .is_inference_mode_enabled
                    .bind(py)
                    .call0()?
                    .is_truthy()?
            {
                return Err(PyValueError::new_err(
                    "cannot write into an inference tensor outside torch.inference_mode() \
                     (torch refuses such in-place updates too)",
                ));
            }
        }
        let data: usize = obj.call_method0(intern!(py, "data_ptr"))?.extract()?;
        let shape: Vec<usize> = obj.getattr(intern!(py, "shape"))?.extract()?;
        let strides: Vec<isize> = obj.call_method0(intern!(py, "stride"))?.extract()?;
        let storage = obj.call_method0(intern!(py, "untyped_storage"))?;
        let storage_ptr: usize = storage.call_method0(intern!(py, "data_ptr"))?.extract()?;
        let storage_len: usize = storage.call_method0(intern!(py, "nbytes"))?.extract()?;
        Ok(PyTensor {
            keep: Keepalive::Nothing,
            owner: obj.clone(),
            data,
            dtype,
            shape,
            strides,
            readonly: false,
            writable: false,
            source: Source::Torch,
            storage: Some(storage_ptr..storage_ptr.saturating_add(storage_len)),
        })
    }

    fn from_dlpack(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let method = obj.getattr(intern!(py, "__dlpack__"))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item(
            intern!(py, "max_version"),
            (dlpack::VERSION.major, dlpack::VERSION.minor),
        )?;
        // Producers older than DLPack 1.0 do not know `max_version`. Retry without it only
        // for that TypeError: pyarrow, for one, raises a TypeError subclass for arrays with
        // nulls, and a second call would bury that reason under a deprecation warning.
        let exported = match method.call((), Some(&kwargs)) {
            Err(e) if e.is_instance_of::<PyTypeError>(py) && mentions_max_version(py, &e) => {
                method.call0()
            }
            other => other,
        };
        let capsule = exported.map_err(|e| dlpack_export_error(obj, e))?;
        let capsule = capsule
            .cast_into::<PyCapsule>()
            .map_err(|_| PyTypeError::new_err("__dlpack__() did not return a PyCapsule"))?;
        // SAFETY: `capsule` is a live capsule and we hold the GIL. Taking ownership means
        // renaming it so that its destructor no longer frees the tensor; from then on the
        // Keepalive calls the deleter exactly once.
        let (keep, dl, readonly) = unsafe {
            let cap = capsule.as_ptr();
            if ffi::PyCapsule_IsValid(cap, dlpack::CAPSULE_VERSIONED.as_ptr()) == 1 {
                let managed = ffi::PyCapsule_GetPointer(cap, dlpack::CAPSULE_VERSIONED.as_ptr())
                    .cast::<DLManagedTensorVersioned>();
                let managed = NonNull::new(managed).ok_or_else(|| PyErr::fetch(py))?;
                if (*managed.as_ptr()).version.major != dlpack::VERSION.major {
                    return Err(PyValueError::new_err(format!(
                        "the producer exported DLPack {}.x; rusttorch reads 1.x",
                        (*managed.as_ptr()).version.major
                    )));
                }
                if ffi::PyCapsule_SetName(cap, dlpack::CAPSULE_VERSIONED_USED.as_ptr()) != 0 {
                    return Err(PyErr::fetch(py));
                }
                let flags = (*managed.as_ptr()).flags;
                let dl: *const DLTensor = &(*managed.as_ptr()).dl_tensor;
                (
                    Keepalive::Versioned(managed),
                    dl,
                    flags & dlpack::FLAG_READ_ONLY != 0,
                )
            } else if ffi::PyCapsule_IsValid(cap, dlpack::CAPSULE_LEGACY.as_ptr()) == 1 {
                let managed = ffi::PyCapsule_GetPointer(cap, dlpack::CAPSULE_LEGACY.as_ptr())
                    .cast::<DLManagedTensor>();
                let managed = NonNull::new(managed).ok_or_else(|| PyErr::fetch(py))?;
                if ffi::PyCapsule_SetName(cap, dlpack::CAPSULE_LEGACY_USED.as_ptr()) != 0 {
                    return Err(PyErr::fetch(py));
                }
                let dl: *const DLTensor = &(*managed.as_ptr()).dl_tensor;
                // Legacy capsules can not mark memory read-only (NumPy refuses to export
                // read-only arrays through them for that reason).
                (Keepalive::Legacy(managed), dl, false)
            } else {
                return Err(PyTypeError::new_err(
                    "__dlpack__() returned a capsule that is neither 'dltensor' nor 'dltensor_versioned'",
                ));
            }
        };
        // SAFETY: `dl` points into the managed tensor that `keep` owns and frees only on drop.
        let dl = unsafe { &*dl };
        // From here on, an early return drops `keep`, which calls the producer's deleter.
        if dl.device.device_type != dlpack::DEVICE_CPU {
            return Err(PyValueError::new_err(format!(
                "expected CPU memory, got memory on device '{}'; rusttorch runs on the CPU",
                dlpack::device_name(dl.device)
            )));
        }
        let dtype = dlpack::from_dl_dtype(dl.dtype).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "unsupported dtype {}; rusttorch supports {}",
                dlpack::describe_dl_dtype(dl.dtype),
                supported_dtypes()
            ))
        })?;
        let ndim = usize::try_from(dl.ndim)
            .map_err(|_| PyValueError::new_err(format!("DLPack tensor has ndim {}", dl.ndim)))?;
        // SAFETY: DLPack guarantees `shape` (and `strides` when non-null) hold `ndim`
        // entries while the managed tensor lives; both may be null only when ndim is 0.
        let (raw_shape, raw_strides) = unsafe {
            let shape: &[i64] = if ndim == 0 || dl.shape.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(dl.shape, ndim)
            };
            let strides: Option<&[i64]> = (ndim > 0 && !dl.strides.is_null())
                .then(|| std::slice::from_raw_parts(dl.strides, ndim));
            (shape, strides)
        };
        if raw_shape.len() != ndim {
            return Err(PyValueError::new_err("DLPack tensor has a null shape"));
        }
        let shape = raw_shape
            .iter()
            .map(|&n| usize::try_from(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                PyValueError::new_err(format!("DLPack shape {raw_shape:?} is negative"))
            })?;
        let strides = match raw_strides {
            Some(s) => s
                .iter()
                .map(|&v| isize::try_from(v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| PyValueError::new_err(format!("DLPack strides {s:?} overflow")))?,
            None => crate::layout::contiguous_strides(&shape).ok_or_else(|| {
                ViewError::ShapeOverflow {
                    shape: shape.clone(),
                    strides: Vec::new(),
                }
            })?,
        };
        let data = (dl.data as usize)
            .checked_add(usize::try_from(dl.byte_offset).unwrap_or(usize::MAX))
            .ok_or_else(|| PyValueError::new_err("DLPack data pointer overflows"))?;
        Ok(PyTensor {
            keep,
            owner: obj.clone(),
            data,
            dtype,
            shape,
            strides,
            readonly,
            writable: false,
            source: Source::DLPack,
            storage: None,
        })
    }

    fn from_buffer(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        // SAFETY: Py_buffer is a plain C struct for which all-zero is a valid "empty" state.
        let mut view: Box<ffi::Py_buffer> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `obj` is live, the GIL is held, and `view` is writable storage for the result.
        let rc =
            unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), &mut *view, ffi::PyBUF_RECORDS_RO) };
        if rc != 0 {
            return Err(PyErr::fetch(py));
        }
        let view_ptr: *const ffi::Py_buffer = &*view;
        // From here on, an early return drops `keep`, which releases the buffer.
        let keep = Keepalive::Buffer(view);
        // SAFETY: the Py_buffer lives in a Box owned by `keep`; moving `keep` (into the
        // result below) does not move the heap allocation, and `keep` outlives every use.
        let view = unsafe { &*view_ptr };
        let itemsize = usize::try_from(view.itemsize).unwrap_or(0);
        let format = if view.format.is_null() {
            "B"
        } else {
            // SAFETY: a non-null format is a NUL-terminated string valid while the buffer is held.
            unsafe { CStr::from_ptr(view.format) }
                .to_str()
                .unwrap_or("?unknown")
        };
        let dtype = dtype_from_buffer_format(format, itemsize).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "unsupported buffer format '{format}' (itemsize {itemsize}); rusttorch supports {}",
                supported_dtypes()
            ))
        })?;
        let ndim = usize::try_from(view.ndim).unwrap_or(0);
        // SAFETY: with PyBUF_RECORDS_RO the exporter fills `shape` and `strides` with `ndim`
        // entries each, valid while the buffer is held.
        let (shape, byte_strides) = unsafe {
            if ndim == 0 || view.shape.is_null() {
                (Vec::new(), Vec::new())
            } else {
                let shape = std::slice::from_raw_parts(view.shape, ndim);
                let strides = if view.strides.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(view.strides, ndim).to_vec()
                };
                (shape.to_vec(), strides)
            }
        };
        let shape = shape
            .iter()
            .map(|&n| usize::try_from(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PyValueError::new_err("buffer has a negative extent"))?;
        let strides = if byte_strides.is_empty() {
            crate::layout::contiguous_strides(&shape).unwrap_or_default()
        } else {
            byte_strides
                .iter()
                .map(|&s| {
                    (s % itemsize as isize == 0)
                        .then_some(s / itemsize as isize)
                        .ok_or_else(|| {
                            PyValueError::new_err(format!(
                                "buffer stride {s} bytes is not a multiple of the item size {itemsize}"
                            ))
                        })
                })
                .collect::<PyResult<Vec<_>>>()?
        };
        Ok(PyTensor {
            data: view.buf as usize,
            readonly: view.readonly != 0,
            keep,
            owner: obj.clone(),
            dtype,
            shape,
            strides,
            writable: false,
            source: Source::Buffer,
            storage: None,
        })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The strides in elements.
    pub fn strides(&self) -> &[isize] {
        &self.strides
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Address of element `[0, 0, ...]`.
    pub fn data_ptr(&self) -> usize {
        self.data
    }

    /// True when the producer marked the memory read-only.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// Which protocol the memory came through.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The Python object that owns the memory.
    pub fn owner(&self) -> &Bound<'py, PyAny> {
        &self.owner
    }

    /// True when the elements are row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        is_contiguous(&self.shape, &self.strides)
    }

    /// True when some stride is negative (NumPy's reversed views); torch can not import those.
    pub fn has_negative_strides(&self) -> bool {
        self.strides
            .iter()
            .zip(&self.shape)
            .any(|(&s, &n)| s < 0 && n > 1)
    }

    /// True when the element address is aligned for the dtype.
    pub fn is_aligned(&self) -> bool {
        self.numel() == 0 || self.data.is_multiple_of(self.dtype.itemsize())
    }

    /// The bytes the elements occupy, `None` when empty. Used to refuse an `out=` that
    /// overlaps an input.
    pub fn byte_range(&self) -> PyResult<Option<Range<usize>>> {
        Ok(self.element_extent(self.dtype.itemsize())?.map(|e| e.bytes))
    }

    /// Start, length and offset (in elements) of the smallest buffer holding every element.
    fn element_extent(&self, itemsize: usize) -> PyResult<Option<Extent>> {
        let Some((lowest, highest)) = relative_extent(&self.shape, &self.strides)? else {
            return Ok(None);
        };
        let overflow = || {
            PyValueError::new_err(format!(
                "shape {:?} with strides {:?} reaches outside the address space",
                self.shape, self.strides
            ))
        };
        let itemsize = itemsize as i128;
        let start = (self.data as i128)
            .checked_add(lowest.checked_mul(itemsize).ok_or_else(overflow)?)
            .filter(|&s| s >= 0)
            .ok_or_else(overflow)?;
        let end = (self.data as i128)
            .checked_add((highest + 1).checked_mul(itemsize).ok_or_else(overflow)?)
            .filter(|&e| e <= usize::MAX as i128)
            .ok_or_else(overflow)?;
        let bytes = start as usize..end as usize;
        if let Some(storage) = &self.storage
            && (bytes.start < storage.start || bytes.end > storage.end)
        {
            return Err(PyValueError::new_err(format!(
                "the tensor (shape {:?}, strides {:?}) reaches bytes {:#x}..{:#x}, outside \
                     its storage {:#x}..{:#x} (was the storage resized?)",
                self.shape, self.strides, bytes.start, bytes.end, storage.start, storage.end
            )));
        }
        Ok(Some(Extent {
            bytes,
            len: (highest - lowest + 1) as usize,
            offset: (-lowest) as usize,
        }))
    }

    fn check_element<T: Element>(&self) -> PyResult<()> {
        if T::DTYPE != self.dtype {
            return Err(ViewError::DTypeMismatch {
                expected: T::DTYPE,
                actual: self.dtype,
            }
            .into());
        }
        if !self.is_aligned() {
            return Err(ViewError::Misaligned {
                address: self.data,
                align: std::mem::align_of::<T>(),
                dtype: self.dtype,
            }
            .into());
        }
        Ok(())
    }

    /// A read-only view of the elements as `T`, which must match the dtype.
    pub fn view<T: Element>(&self) -> PyResult<TensorView<'_, T>> {
        self.check_element::<T>()?;
        let (ptr, len, offset) = match self.element_extent(std::mem::size_of::<T>())? {
            Some(e) => (e.bytes.start as *const T, e.len, e.offset),
            None => (std::ptr::null(), 0, 0),
        };
        // SAFETY: the producer (torch storage, DLPack tensor or buffer, all kept alive by
        // `self`) guarantees that every element reachable through shape and strides is
        // readable, and `element_extent` is exactly the span of those elements (for torch
        // also checked against the storage). Alignment was checked in `check_element`.
        // Concurrent writes from other Python threads while the view lives are a data race
        // for torch's own kernels too; rusttorch documents the same rule.
        let view =
            unsafe { TensorView::from_raw_parts(ptr, len, &self.shape, &self.strides, offset) }?;
        Ok(view)
    }

    /// A writable view of the elements as `T`. Needs [`Access::Write`] at extraction, and
    /// fails if the tensor overlaps itself (an expanded tensor, say).
    pub fn view_mut<T: Element>(&mut self) -> PyResult<TensorViewMut<'_, T>> {
        if !self.writable {
            return Err(PyValueError::new_err(
                "this tensor was borrowed read-only; extract it with Access::Write to write",
            ));
        }
        self.check_element::<T>()?;
        let (ptr, len, offset) = match self.element_extent(std::mem::size_of::<T>())? {
            Some(e) => (e.bytes.start as *mut T, e.len, e.offset),
            None => (std::ptr::null_mut(), 0, 0),
        };
        // SAFETY: as in `view`, plus: the memory is writable (not read-only, checked at
        // extraction), and `&mut self` makes this the only view made through `self`.
        // Callers check that no other borrowed tensor overlaps it (`check_out`).
        let view =
            unsafe { TensorViewMut::from_raw_parts(ptr, len, &self.shape, &self.strides, offset) }?;
        Ok(view)
    }

    /// Tells torch that the tensor's memory was written (bumps its version counter), so
    /// that autograd refuses to use a value saved before the write, as it does after torch's
    /// own in-place ops. Call after every write into an `out=` tensor; a no-op for
    /// non-torch memory.
    pub fn mark_written(&self) -> PyResult<()> {
        if self.source != Source::Torch || !self.writable {
            return Ok(());
        }
        let py = self.owner.py();
        let tensors = pyo3::types::PyTuple::new(py, [&self.owner])?;
        torch(py)?.increment_version.bind(py).call1((tensors,))?;
        Ok(())
    }

    /// A read-only view of the raw bytes: shape `[..shape, itemsize]`, strides scaled to
    /// bytes. Needs no alignment, so misaligned memory can still be copied.
    pub fn view_bytes(&self) -> PyResult<TensorView<'_, u8>> {
        let (shape, strides) = self.byte_layout()?;
        let (ptr, len, offset) = match self.element_extent(self.dtype.itemsize())? {
            Some(e) => (
                e.bytes.start as *const u8,
                e.bytes.len(),
                e.offset * self.dtype.itemsize(),
            ),
            None => (std::ptr::null(), 0, 0),
        };
        // SAFETY: as in `view`; `u8` has alignment 1, and the byte layout reaches exactly
        // the bytes of the elements (offset and length scaled by the item size).
        let view = unsafe { TensorView::from_raw_parts(ptr, len, &shape, &strides, offset) }?;
        Ok(view)
    }

    /// A writable view of the raw bytes (see [`view_bytes`](Self::view_bytes)).
    pub fn view_bytes_mut(&mut self) -> PyResult<TensorViewMut<'_, u8>> {
        if !self.writable {
            return Err(PyValueError::new_err(
                "this tensor was borrowed read-only; extract it with Access::Write to write",
            ));
        }
        let (shape, strides) = self.byte_layout()?;
        let (ptr, len, offset) = match self.element_extent(self.dtype.itemsize())? {
            Some(e) => (
                e.bytes.start as *mut u8,
                e.bytes.len(),
                e.offset * self.dtype.itemsize(),
            ),
            None => (std::ptr::null_mut(), 0, 0),
        };
        // SAFETY: as in `view_mut`, for the bytes of the elements.
        let view = unsafe { TensorViewMut::from_raw_parts(ptr, len, &shape, &strides, offset) }?;
        Ok(view)
    }

    fn byte_layout(&self) -> PyResult<(Vec<usize>, Vec<isize>)> {
        let itemsize = self.dtype.itemsize();
        let mut shape = self.shape.clone();
        shape.push(itemsize);
        let mut strides = self
            .strides
            .iter()
            .map(|&s| s.checked_mul(itemsize as isize))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| PyValueError::new_err("strides overflow when scaled to bytes"))?;
        strides.push(1);
        Ok((shape, strides))
    }

    pub(crate) fn into_parts(self) -> (Bound<'py, PyAny>, Keepalive) {
        (self.owner, self.keep)
    }
}

struct Extent {
    bytes: Range<usize>,
    len: usize,
    offset: usize,
}

/// True when a TypeError from `__dlpack__(max_version=...)` is about that keyword.
fn mentions_max_version(py: Python<'_>, err: &PyErr) -> bool {
    err.value(py)
        .str()
        .map(|m| m.to_string_lossy().contains("max_version"))
        .unwrap_or(false)
}

/// The error for a producer whose `__dlpack__` failed: a `TypeError` naming the dtype when
/// the object has a dtype rusttorch does not support (NumPy raises BufferError for
/// non-native byte order, datetimes, strings...), a `ValueError` otherwise. The producer's
/// exception is kept as the cause.
fn dlpack_export_error(obj: &Bound<'_, PyAny>, cause: PyErr) -> PyErr {
    let py = obj.py();
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let dtype = obj
        .getattr(intern!(py, "dtype"))
        .and_then(|d| d.str())
        .map(|d| d.to_string())
        .ok();
    let err = match dtype {
        Some(d) if DType::from_name(&d).is_none() => PyTypeError::new_err(format!(
            "unsupported dtype {d} in this {type_name} (rusttorch supports {}, in native byte \
             order): {cause}",
            supported_dtypes()
        )),
        _ => PyValueError::new_err(format!(
            "cannot borrow this {type_name} through DLPack: {cause}"
        )),
    };
    err.set_cause(py, Some(cause));
    err
}

/// The dtype of a PEP 3118 format string on a little-endian machine.
fn dtype_from_buffer_format(format: &str, itemsize: usize) -> Option<DType> {
    let code = match format.as_bytes() {
        [prefix @ (b'@' | b'=' | b'<'), code] => {
            // '@' is native; '=' and '<' are little-endian standard sizes.
            let _ = prefix;
            *code
        }
        [b'>' | b'!', _] if cfg!(target_endian = "little") => return None,
        [code] => *code,
        _ => return None,
    };
    let dtype = match code {
        b'f' => DType::Float32,
        b'd' => DType::Float64,
        b'e' => DType::Float16,
        b'?' => DType::Bool,
        b'b' => DType::Int8,
        b'B' => DType::UInt8,
        b'h' | b'i' | b'l' | b'q' | b'n' => match itemsize {
            2 => DType::Int16,
            4 => DType::Int32,
            8 => DType::Int64,
            _ => return None,
        },
        _ => return None,
    };
    (dtype.itemsize() == itemsize).then_some(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_formats() {
        assert_eq!(dtype_from_buffer_format("f", 4), Some(DType::Float32));
        assert_eq!(dtype_from_buffer_format("<d", 8), Some(DType::Float64));
        assert_eq!(dtype_from_buffer_format("l", 8), Some(DType::Int64));
        assert_eq!(dtype_from_buffer_format("i", 4), Some(DType::Int32));
        assert_eq!(dtype_from_buffer_format("?", 1), Some(DType::Bool));
        assert_eq!(dtype_from_buffer_format(">f", 4), None);
        assert_eq!(dtype_from_buffer_format("Zf", 8), None);
        assert_eq!(dtype_from_buffer_format("H", 2), None);
        assert_eq!(dtype_from_buffer_format("f", 8), None);
    }
}

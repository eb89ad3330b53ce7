//! The torch objects the bridge needs, looked up once per interpreter.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::DType;

/// Cached torch objects. Looking them up once keeps the per-call cost of the bridge to a
/// handful of attribute reads and pointer comparisons.
pub struct TorchApi {
    /// `torch.Tensor`.
    pub tensor_type: Py<PyType>,
    /// `torch.strided`, the only layout with plain strided memory.
    pub strided: Py<PyAny>,
    /// `torch.float32`, ... in the order of [`DType::ALL`].
    pub dtypes: Vec<Py<PyAny>>,
    /// `torch._C._from_dlpack`: takes a capsule, skipping `torch.from_dlpack`'s Python-level
    /// argument handling (about 2 µs of the 4.5 µs it costs).
    pub from_dlpack: Py<PyAny>,
    /// `torch.empty`.
    pub empty: Py<PyAny>,
    /// `torch.is_grad_enabled`.
    pub is_grad_enabled: Py<PyAny>,
    /// `torch.is_inference_mode_enabled`.
    pub is_inference_mode_enabled: Py<PyAny>,
    /// `torch._C._increment_version`, which takes a tuple of tensors (given one tensor it
    /// would iterate over its elements, one bump and ~0.5 µs each).
    pub increment_version: Py<PyAny>,
}

static TORCH: PyOnceLock<TorchApi> = PyOnceLock::new();

/// The cached torch objects, importing torch on first use.
pub fn torch(py: Python<'_>) -> PyResult<&TorchApi> {
    TORCH.get_or_try_init(py, || {
        let torch = py.import("torch")?;
        let dtypes = DType::ALL
            .iter()
            .map(|d| torch.getattr(d.name()).map(Bound::unbind))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(TorchApi {
            tensor_type: torch.getattr("Tensor")?.cast_into::<PyType>()?.unbind(),
            strided: torch.getattr("strided")?.unbind(),
            dtypes,
            from_dlpack: torch.getattr("_C")?.getattr("_from_dlpack")?.unbind(),
            empty: torch.getattr("empty")?.unbind(),
            is_grad_enabled: torch.getattr("is_grad_enabled")?.unbind(),
            is_inference_mode_enabled: torch.getattr("is_inference_mode_enabled")?.unbind(),
            increment_version: torch.getattr("_C")?.getattr("_increment_version")?.unbind(),
        })
    })
}

impl TorchApi {
    /// The rusttorch dtype of a `torch.dtype` object, by identity.
    pub fn dtype_of(&self, torch_dtype: &Bound<'_, PyAny>) -> Option<DType> {
        self.dtypes
            .iter()
            .zip(DType::ALL)
            .find(|(obj, _)| torch_dtype.is(*obj))
            .map(|(_, d)| d)
    }

    /// The `torch.dtype` object of a rusttorch dtype.
    pub fn dtype_object<'py>(&self, py: Python<'py>, dtype: DType) -> Bound<'py, PyAny> {
        let index = DType::ALL.iter().position(|d| *d == dtype).unwrap_or(0);
        self.dtypes[index].bind(py).clone()
    }
}

/// True when `obj` is a `torch.Tensor` (or a subclass such as `nn.Parameter`).
pub fn is_torch_tensor(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let ty = torch(obj.py())?.tensor_type.bind(obj.py());
    Ok(obj.get_type().is(ty) || obj.is_instance(ty)?)
}

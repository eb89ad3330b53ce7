//! `open_arrow`: in-memory Arrow data from Python through the Arrow PyCapsule interface
//! (`__arrow_c_stream__`), imported with arrow's own C stream importer. pyo3-arrow and arrow's
//! `pyarrow` feature are not used: both pin other PyO3 versions than the workspace's.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_array::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use super::args::ColumnArgs;
use crate::python::errors::to_py;
use crate::python::source::PySource;
use crate::readers::ArrowSource;

/// Opens in-memory Arrow data (pyarrow Table/RecordBatchReader, polars DataFrame: anything
/// with `__arrow_c_stream__`) as a source; its batches are collected once.
#[pyfunction]
#[pyo3(signature = (
    data, *, features = None, label = None, feature_dtype = None, label_dtype = None,
    missing = None, categorical = None
))]
#[allow(clippy::too_many_arguments)]
pub fn open_arrow<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    features: Option<Bound<'py, PyAny>>,
    label: Option<Bound<'py, PyAny>>,
    feature_dtype: Option<Bound<'py, PyAny>>,
    label_dtype: Option<Bound<'py, PyAny>>,
    missing: Option<Bound<'py, PyAny>>,
    categorical: Option<String>,
) -> PyResult<PySource> {
    let columns = ColumnArgs {
        features,
        label,
        feature_dtype,
        label_dtype,
        missing,
        categorical,
    }
    .to_options()?;
    if !data.hasattr("__arrow_c_stream__")? {
        return Err(PyTypeError::new_err(format!(
            "open_arrow needs an object with __arrow_c_stream__ (pyarrow Table, polars \
             DataFrame...), not {}",
            data.get_type().name()?
        )));
    }
    let capsule = data.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: the Arrow PyCapsule interface guarantees that a capsule named
    // "arrow_array_stream" holds a valid `ArrowArrayStream`; `from_raw` moves the stream out
    // and leaves a released one behind, which the capsule's destructor then frees as a no-op.
    // The capsule is alive (we hold it) while this runs.
    let reader = unsafe { ArrowArrayStreamReader::from_raw(pointer.as_ptr().cast::<FFI_ArrowArrayStream>()) }
        .map_err(|e| PyValueError::new_err(format!("cannot import the Arrow stream: {e}")))?;
    let schema = reader.schema();
    // The producer may need the GIL to produce batches, so they are collected with it held.
    let batches = reader
        .collect::<Result<Vec<RecordBatch>, _>>()
        .map_err(|e| PyValueError::new_err(format!("cannot read the Arrow stream: {e}")))?;
    let source = py
        .detach(|| ArrowSource::new(&schema, batches, &columns))
        .map_err(to_py)?;
    Ok(PySource {
        inner: Arc::new(source),
    })
}

//! `open_csv`, `open_parquet`, `open_ipc`, `open_npy`, `open_arrow`: validated sources.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use super::args::{ColumnArgs, byte_char};
use crate::python::errors::to_py;
use crate::python::source::PySource;
use crate::readers::csv::{CsvOptions, CsvSource, DEFAULT_CHUNK_BYTES};
use crate::readers::{IpcSource, NpyOptions, NpySource, ParquetSource};

/// Opens CSV/TSV files (plain or gzip) as one source.
#[pyfunction]
#[pyo3(signature = (
    paths, *, delimiter = ",", quote = Some("\""), comment = None, header = true,
    na_values = None, chunk_bytes = None,
    features = None, label = None, feature_dtype = None, label_dtype = None,
    missing = None, categorical = None
))]
#[allow(clippy::too_many_arguments)]
pub fn open_csv<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    delimiter: &str,
    quote: Option<&str>,
    comment: Option<&str>,
    header: bool,
    na_values: Option<Vec<String>>,
    chunk_bytes: Option<u64>,
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
    if chunk_bytes == Some(0) {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "chunk_bytes must be positive",
        ));
    }
    let options = CsvOptions {
        delimiter: byte_char(delimiter, "delimiter")?,
        quote: quote.map(|q| byte_char(q, "quote")).transpose()?,
        comment: comment.map(|c| byte_char(c, "comment")).transpose()?,
        header,
        na_values,
        chunk_bytes: chunk_bytes.unwrap_or(DEFAULT_CHUNK_BYTES),
        columns,
    };
    let source = py
        .detach(|| CsvSource::open(&paths, &options))
        .map_err(to_py)?;
    Ok(PySource {
        inner: Arc::new(source),
    })
}

/// Opens Parquet files (same schema) as one source: a chunk per row group.
#[pyfunction]
#[pyo3(signature = (
    paths, *, features = None, label = None, feature_dtype = None, label_dtype = None,
    missing = None, categorical = None
))]
#[allow(clippy::too_many_arguments)]
pub fn open_parquet<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
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
    let source = py
        .detach(|| ParquetSource::open(&paths, &columns))
        .map_err(to_py)?;
    Ok(PySource {
        inner: Arc::new(source),
    })
}

/// Opens Arrow IPC files (Feather v2) as one source: a chunk per record batch.
#[pyfunction]
#[pyo3(signature = (
    paths, *, features = None, label = None, feature_dtype = None, label_dtype = None,
    missing = None, categorical = None
))]
#[allow(clippy::too_many_arguments)]
pub fn open_ipc<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
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
    let source = py
        .detach(|| IpcSource::open(&paths, &columns))
        .map_err(to_py)?;
    Ok(PySource {
        inner: Arc::new(source),
    })
}

/// Opens a `.npy` file (memory-mapped), with labels from a column or a separate file.
#[pyfunction]
#[pyo3(signature = (
    path, *, labels = None, features = None, label = None, feature_dtype = None,
    label_dtype = None, missing = None, categorical = None
))]
#[allow(clippy::too_many_arguments)]
pub fn open_npy<'py>(
    py: Python<'py>,
    path: PathBuf,
    labels: Option<PathBuf>,
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
    let options = NpyOptions {
        labels_path: labels,
        columns,
    };
    let source = py
        .detach(|| NpySource::open(&path, &options))
        .map_err(to_py)?;
    Ok(PySource {
        inner: Arc::new(source),
    })
}

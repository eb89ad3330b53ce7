//! `rusttorch_data._native.Source`: an opened source handed between the readers' and the
//! loader's Python code.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::Source;

/// An opened, validated data source (files checked, columns resolved, chunks planned).
#[pyclass(name = "Source", module = "rusttorch_data._native", frozen)]
#[derive(Debug)]
pub struct PySource {
    /// The reader behind it.
    pub inner: Arc<dyn Source>,
}

#[pymethods]
impl PySource {
    /// Names of the feature columns, in tensor order.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.inner.schema().feature_names.clone()
    }

    /// Names of the label columns, in tensor order (empty without labels).
    #[getter]
    fn label_names(&self) -> Vec<String> {
        self.inner.schema().label_names.clone()
    }

    /// Number of chunks (units of parallel work and of stream-mode shuffling).
    #[getter]
    fn num_chunks(&self) -> usize {
        self.inner.chunks().len()
    }

    /// Total records when every chunk's count is known without reading it, else `None`.
    #[getter]
    fn known_rows(&self) -> Option<u64> {
        self.inner
            .chunks()
            .iter()
            .try_fold(0u64, |sum, chunk| sum.checked_add(chunk.rows?))
    }

    /// Bytes of the files the source covers.
    #[getter]
    fn nbytes(&self) -> u64 {
        self.inner.chunks().iter().map(|c| c.bytes).sum()
    }

    fn __repr__(&self) -> String {
        let schema = self.inner.schema();
        format!(
            "Source({} features as {}, {} labels, {} chunks)",
            schema.num_features(),
            schema.feature_dtype,
            schema.num_labels(),
            self.inner.chunks().len()
        )
    }
}

//! `tensor_source(X, y=None)`: torch tensors or NumPy arrays already in memory, served by the
//! loader without a copy (`DataLoader(X)`, `DataLoader((X, y))`).
//!
//! The source is resident: memory mode gathers batches straight from the caller's buffers,
//! which stay alive as long as the source holds a reference to their owners. Reading
//! chunks (`read_into`) is also supported so that every consumer of `Source` works on it.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rt_view::DType;
use rt_view::python::{Access, PyTensor};

use super::source::PySource;
use crate::error::{DataError, Result};
use crate::source::{
    ChunkInfo, ChunkReport, Dataset, Destination, Matrix, ReadContext, ReadStats, RowsMut, Schema,
    SharedBytes, Source, check_destination,
};

/// Rows per chunk when the tensors are read chunk by chunk (stream mode, `read_into`); the
/// default of `tensor_source(chunk_rows=...)`, spelled out in its signature.
pub const DEFAULT_CHUNK_ROWS: usize = 1 << 16;

/// A contiguous CPU buffer of a Python object, kept alive by a reference to it.
#[derive(Debug)]
struct PyBuffer {
    /// Keeps the exporting object (and so its memory) alive.
    _owner: Py<PyAny>,
    address: usize,
    len: usize,
}

impl SharedBytes for PyBuffer {
    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `address..address + len` was the contiguous CPU memory of `_owner` when this
        // value was made (checked by `PyTensor::extract` and `is_contiguous` in `buffer`), and
        // `_owner` stays referenced as long as `self`, so the memory is not freed. NumPy
        // refuses to resize an array that is referenced; torch tensors must not be resized in
        // place while a loader uses them (documented on `DataLoader`), the same contract as
        // torch's own TensorDataset. Values may change (then batches see the new values),
        // which is plain data, never out-of-bounds memory.
        unsafe { std::slice::from_raw_parts(self.address as *const u8, self.len) }
    }
}

/// One tensor of the source: its buffer, dtype, rows and row width.
#[derive(Debug, Clone)]
struct Column {
    buffer: Arc<PyBuffer>,
    dtype: DType,
    rows: usize,
    width: usize,
}

impl Column {
    fn matrix(&self) -> Matrix {
        Matrix::Shared {
            owner: Arc::clone(&self.buffer) as Arc<dyn SharedBytes>,
            dtype: self.dtype,
            rows: self.rows,
            cols: self.width,
        }
    }
}

fn buffer(obj: &Bound<'_, PyAny>, what: &str, allowed: &[DType]) -> PyResult<Column> {
    let tensor = PyTensor::extract(obj, Access::Read)?;
    if !allowed.contains(&tensor.dtype()) {
        let names: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
        return Err(PyTypeError::new_err(format!(
            "{what} must have dtype {}, got {}",
            names.join(" or "),
            tensor.dtype()
        )));
    }
    if tensor.shape().is_empty() {
        return Err(PyValueError::new_err(format!(
            "{what} must have at least one dimension (the samples), got a scalar"
        )));
    }
    if !tensor.is_contiguous() || !tensor.is_aligned() {
        return Err(PyValueError::new_err(format!(
            "{what} must be C-contiguous and aligned; pass .contiguous() (torch) or \
             np.ascontiguousarray (NumPy)"
        )));
    }
    let rows = tensor.shape()[0];
    let width = tensor.shape()[1..].iter().product::<usize>();
    let len = tensor.numel() * tensor.dtype().itemsize();
    Ok(Column {
        buffer: Arc::new(PyBuffer {
            _owner: tensor.owner().clone().unbind(),
            address: tensor.data_ptr(),
            len,
        }),
        dtype: tensor.dtype(),
        rows,
        width,
    })
}

/// Tensors in memory, as a [`Source`].
#[derive(Debug)]
pub struct TensorSource {
    schema: Schema,
    chunks: Vec<ChunkInfo>,
    features: Column,
    labels: Option<Column>,
    chunk_rows: usize,
}

impl TensorSource {
    fn rows(&self) -> usize {
        self.features.rows
    }
}

fn copy_rows(column: &Column, from: usize, rows: usize, dest: &mut RowsMut<'_>) -> Result<()> {
    let matrix = column.matrix();
    let (a, b) = (from * column.width, (from + rows) * column.width);
    let mismatch = || DataError::InvalidArgument("internal: tensor chunk out of range".to_owned());
    match dest {
        RowsMut::F32(d) => d
            .get_mut(..b - a)
            .zip(matrix.as_slice::<f32>().and_then(|s| s.get(a..b)))
            .map(|(d, s)| d.copy_from_slice(s)),
        RowsMut::F64(d) => d
            .get_mut(..b - a)
            .zip(matrix.as_slice::<f64>().and_then(|s| s.get(a..b)))
            .map(|(d, s)| d.copy_from_slice(s)),
        RowsMut::I64(d) => d
            .get_mut(..b - a)
            .zip(matrix.as_slice::<i64>().and_then(|s| s.get(a..b)))
            .map(|(d, s)| d.copy_from_slice(s)),
    }
    .ok_or_else(mismatch)
}

impl Source for TensorSource {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }

    fn count_rows(&self, chunk: usize, _ctx: ReadContext<'_>) -> Result<u64> {
        self.chunks
            .get(chunk)
            .and_then(|c| c.rows)
            .ok_or_else(|| DataError::InvalidArgument(format!("no chunk {chunk}")))
    }

    fn read_into(
        &self,
        chunk: usize,
        mut dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        ctx.cancel.check()?;
        let from = chunk * self.chunk_rows;
        let rows = self.count_rows(chunk, ctx)? as usize;
        check_destination(&self.schema, &dest, rows as u64)?;
        copy_rows(&self.features, from, rows, &mut dest.features)?;
        if let (Some(labels), Some(dest)) = (&self.labels, dest.labels.as_mut()) {
            copy_rows(labels, from, rows, dest)?;
        }
        Ok(ChunkReport {
            rows,
            bytes_read: self.chunks.get(chunk).map_or(0, |c| c.bytes),
            ..ChunkReport::default()
        })
    }

    fn resident(&self) -> Option<Dataset> {
        Some(Dataset {
            features: self.features.matrix(),
            labels: self.labels.as_ref().map(Column::matrix),
            stats: ReadStats {
                rows: self.rows() as u64,
                ..ReadStats::default()
            },
        })
    }
}

/// Serves `features` (and `labels`) from memory without copying them. `features`: a
/// float32/float64 tensor or array `[N, ...]`; `labels`: int64/float32/float64 `[N, ...]`;
/// `chunk_rows`: rows per chunk when read chunk by chunk (stream mode).
#[pyfunction]
// The default is written out (= DEFAULT_CHUNK_ROWS) so that the text signature shows it.
#[pyo3(signature = (features, labels=None, *, chunk_rows=65536))]
pub fn tensor_source(
    features: &Bound<'_, PyAny>,
    labels: Option<&Bound<'_, PyAny>>,
    chunk_rows: usize,
) -> PyResult<PySource> {
    if chunk_rows == 0 {
        return Err(PyValueError::new_err("chunk_rows must be >= 1"));
    }
    let features = buffer(features, "features", &[DType::Float32, DType::Float64])?;
    let labels = labels
        .map(|l| buffer(l, "labels", &[DType::Int64, DType::Float32, DType::Float64]))
        .transpose()?;
    if let Some(l) = &labels {
        if l.width == 0 {
            return Err(PyValueError::new_err(
                "labels have no values per sample (shape [N, 0]); pass labels=None",
            ));
        }
        if l.rows != features.rows {
            return Err(PyValueError::new_err(format!(
                "features have {} samples but labels have {}",
                features.rows, l.rows
            )));
        }
    }
    let rows = features.rows;
    let row_bytes = features.width * features.dtype.itemsize()
        + labels.as_ref().map_or(0, |l| l.width * l.dtype.itemsize());
    let file: Arc<str> = Arc::from("<tensor>");
    let chunks = (0..rows.div_ceil(chunk_rows))
        .map(|i| {
            let n = chunk_rows.min(rows - i * chunk_rows);
            ChunkInfo {
                file: Arc::clone(&file),
                rows: Some(n as u64),
                bytes: (n * row_bytes) as u64,
            }
        })
        .collect();
    let label_names = match &labels {
        None => Vec::new(),
        Some(l) if l.width == 1 => vec!["label".to_owned()],
        Some(l) => (0..l.width).map(|i| format!("label{i}")).collect(),
    };
    let schema = Schema {
        feature_names: (0..features.width).map(|i| i.to_string()).collect(),
        label_names,
        feature_dtype: features.dtype,
        label_dtype: labels.as_ref().map_or(DType::Int64, |l| l.dtype),
    };
    Ok(PySource {
        inner: Arc::new(TensorSource {
            schema,
            chunks,
            features,
            labels,
            chunk_rows,
        }),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_spells_out_the_default() {
        assert_eq!(super::DEFAULT_CHUNK_ROWS, 65536);
    }
}

//! The contract between the readers (CSV, Parquet, Arrow IPC, .npy, in-memory Arrow, tensors)
//! and everything that consumes them (`materialize`, the loader's memory and stream modes).
//!
//! A [`Source`] is opened once: files are checked, the schema is resolved against the
//! [`ColumnOptions`](crate::options::ColumnOptions) and the data is cut into chunks. A chunk is
//! the unit of parallel work and of stream-mode shuffling: a byte range of a CSV file that
//! starts on a record boundary, a Parquet row group, an IPC record batch, a row range of a
//! .npy file. Any thread may read any chunk, in any order, any number of times (every epoch of
//! stream mode reads them again), and reading chunk `i` always gives the same rows.
//!
//! Reading decodes straight into a caller-provided row-major destination, so memory mode can
//! size the final tensor from the row counts and let every chunk decode into its own slice of
//! it, with no per-chunk buffers and no concatenation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rt_view::cancel::CancelToken;
use rt_view::{DType, Element, OwnedTensor};

use crate::error::{DataError, Result};
use crate::options::OnError;

/// The tensors a source produces: resolved column names and output dtypes.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Names of the feature columns, in output order (`"0"`, `"1"`... without a header).
    pub feature_names: Vec<String>,
    /// Names of the label columns, in output order; empty without labels.
    pub label_names: Vec<String>,
    /// `Float32` or `Float64`.
    pub feature_dtype: DType,
    /// `Int64`, `Float32` or `Float64`.
    pub label_dtype: DType,
}

impl Schema {
    /// Width of a features row.
    pub fn num_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Width of a labels row (0 without labels).
    pub fn num_labels(&self) -> usize {
        self.label_names.len()
    }
}

/// One unit of work of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkInfo {
    /// The file it comes from (`"<arrow>"`, `"<tensor>"` for in-memory data).
    pub file: Arc<str>,
    /// Records in the chunk when known without decoding it (Parquet metadata, .npy shape,
    /// an indexed CSV); rows skipped under `on_error="skip"` may make the decoded count lower.
    pub rows: Option<u64>,
    /// Bytes of the file the chunk covers, for statistics and memory bounds.
    pub bytes: u64,
}

/// A mutable row-major slice of one element type.
#[derive(Debug)]
pub enum RowsMut<'a> {
    /// float32 elements.
    F32(&'a mut [f32]),
    /// float64 elements.
    F64(&'a mut [f64]),
    /// int64 elements.
    I64(&'a mut [i64]),
}

impl RowsMut<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            RowsMut::F32(s) => s.len(),
            RowsMut::F64(s) => s.len(),
            RowsMut::I64(s) => s.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where [`Source::read_into`] writes a chunk: `capacity` rows of features (and labels).
#[derive(Debug)]
pub struct Destination<'a> {
    /// `capacity * schema.num_features()` elements of `schema.feature_dtype`.
    pub features: RowsMut<'a>,
    /// `capacity * schema.num_labels()` elements of `schema.label_dtype`; `None` without labels.
    pub labels: Option<RowsMut<'a>>,
    /// Rows that fit.
    pub capacity: usize,
}

/// A row dropped under `on_error="skip"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    /// The file.
    pub file: Arc<str>,
    /// 1-based line (CSV) or 0-based row (columnar formats).
    pub line: u64,
    /// The error message.
    pub reason: String,
}

/// What reading one chunk did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkReport {
    /// Rows written densely from row 0 of the destination.
    pub rows: usize,
    /// Rows dropped under `on_error="skip"`, in file order.
    pub skipped: Vec<SkippedRow>,
    /// Bytes read from the file (compressed size for compressed input).
    pub bytes_read: u64,
    /// Time spent on I/O and decompression.
    pub read_time: Duration,
    /// Time spent tokenizing and converting values.
    pub parse_time: Duration,
}

/// The shared count of skipped rows behind `max_errors`, across every thread of one read.
#[derive(Debug)]
pub struct ErrorBudget {
    policy: OnError,
    skipped: AtomicU64,
}

impl ErrorBudget {
    /// A budget for `policy`.
    pub fn new(policy: OnError) -> Self {
        Self {
            policy,
            skipped: AtomicU64::new(0),
        }
    }

    /// The policy.
    pub fn policy(&self) -> OnError {
        self.policy
    }

    /// Rows skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Decides the fate of a row that failed with `error`: `Ok(())` means skip it (and it is
    /// counted), `Err` means fail the read with this error (`on_error="raise"`, an error
    /// that is not confined to one row, or `max_errors` exceeded).
    pub fn skip(&self, error: DataError) -> Result<()> {
        let OnError::Skip { max_errors } = self.policy else {
            return Err(error);
        };
        if !error.is_row_error() {
            return Err(error);
        }
        let skipped = self.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        match max_errors {
            Some(max_errors) if skipped > max_errors => Err(DataError::TooManyErrors {
                max_errors,
                skipped,
                last: Box::new(error),
            }),
            _ => Ok(()),
        }
    }
}

/// What every read of one pass shares.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    /// Polled between records; a cancelled read returns [`DataError::Cancelled`].
    pub cancel: &'a CancelToken,
    /// Skipped-row accounting.
    pub errors: &'a ErrorBudget,
}

/// A dataset that can be read chunk by chunk from any thread.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// The resolved columns and output dtypes.
    fn schema(&self) -> &Schema;

    /// The chunks, in the source's natural order (files in the given order, then offsets).
    fn chunks(&self) -> &[ChunkInfo];

    /// The exact number of records in chunk `chunk` before skipping: the capacity that
    /// [`read_into`](Self::read_into) needs. Cheap when [`ChunkInfo::rows`] is known;
    /// otherwise a counting pass (cached by the source).
    fn count_rows(&self, chunk: usize, ctx: ReadContext<'_>) -> Result<u64>;

    /// Decodes chunk `chunk` into `dest` (capacity at least [`count_rows`](Self::count_rows)),
    /// densely from row 0. On error, what was written is unspecified but nothing outside
    /// `dest` is touched.
    fn read_into(
        &self,
        chunk: usize,
        dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport>;

    /// The whole dataset, when it already sits in memory in the final layout and dtype (a
    /// memory-mapped .npy, a contiguous tensor) and can be used without decoding or copying.
    fn resident(&self) -> Option<Dataset> {
        None
    }
}

/// Runs a reader call on chunk `chunk` of `source`, turning a panic inside a decoding
/// library (arrow, parquet) into an error naming the chunk's file: worker threads would
/// otherwise report a bare "worker thread panicked" that does not say which file.
pub fn guard_chunk<T>(
    source: &dyn Source,
    chunk: usize,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    crate::panics::catch_quietly(f).unwrap_or_else(|payload| {
        let file = source
            .chunks()
            .get(chunk)
            .map_or_else(|| format!("chunk {chunk}"), |c| c.file.to_string());
        Err(DataError::Corrupt {
            file,
            reason: format!(
                "decoding failed ({}); the file is probably damaged",
                crate::panics::panic_message(&*payload)
            ),
        })
    })
}

/// Bytes that stay valid while the owner lives: a memory map, a Python buffer.
pub trait SharedBytes: Send + Sync + std::fmt::Debug {
    /// The bytes.
    fn bytes(&self) -> &[u8];
}

/// A row-major `[rows, cols]` matrix of one dtype.
#[derive(Debug)]
pub enum Matrix {
    /// Decoded float32 data.
    F32(OwnedTensor<f32>),
    /// Decoded float64 data.
    F64(OwnedTensor<f64>),
    /// Decoded int64 data.
    I64(OwnedTensor<i64>),
    /// Memory owned elsewhere, already in this layout (not copied).
    Shared {
        /// The owner of the bytes.
        owner: Arc<dyn SharedBytes>,
        /// Element type.
        dtype: DType,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

impl Matrix {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Matrix::F32(_) => DType::Float32,
            Matrix::F64(_) => DType::Float64,
            Matrix::I64(_) => DType::Int64,
            Matrix::Shared { dtype, .. } => *dtype,
        }
    }

    /// `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        let dims = |t: &[usize]| {
            [
                t.first().copied().unwrap_or(0),
                t.get(1).copied().unwrap_or(0),
            ]
        };
        match self {
            Matrix::F32(t) => dims(t.shape()),
            Matrix::F64(t) => dims(t.shape()),
            Matrix::I64(t) => dims(t.shape()),
            Matrix::Shared { rows, cols, .. } => [*rows, *cols],
        }
    }

    /// The elements as `T`, or `None` when `T` is not the matrix's dtype (or shared bytes are
    /// not aligned for `T`).
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        if T::DTYPE != self.dtype() {
            return None;
        }
        let bytes: &[u8] = match self {
            Matrix::F32(t) => bytemuck::cast_slice(t.as_slice()),
            Matrix::F64(t) => bytemuck::cast_slice(t.as_slice()),
            Matrix::I64(t) => bytemuck::cast_slice(t.as_slice()),
            Matrix::Shared {
                owner, rows, cols, ..
            } => {
                let len = rows
                    .checked_mul(*cols)?
                    .checked_mul(std::mem::size_of::<T>())?;
                owner.bytes().get(..len)?
            }
        };
        if bytes.is_empty() {
            // An empty buffer's pointer may be dangling and unaligned for `T` (an empty
            // tensor's data pointer), which `try_cast_slice` refuses; nothing is read anyway.
            return Some(&[]);
        }
        bytemuck::try_cast_slice(bytes).ok()
    }
}

/// What reading several chunks did, summed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadStats {
    /// Rows decoded.
    pub rows: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Time spent on I/O and decompression, summed over threads.
    pub read_time: Duration,
    /// Time spent tokenizing and converting, summed over threads.
    pub parse_time: Duration,
    /// Rows dropped under `on_error="skip"`, in source order.
    pub skipped: Vec<SkippedRow>,
}

impl ReadStats {
    /// Adds one chunk's report (call in chunk order to keep `skipped` in source order).
    pub fn add(&mut self, report: ChunkReport) {
        self.rows += report.rows as u64;
        self.bytes_read += report.bytes_read;
        self.read_time += report.read_time;
        self.parse_time += report.parse_time;
        self.skipped.extend(report.skipped);
    }
}

/// A whole dataset in memory: what `read_*` return and what memory mode shuffles.
#[derive(Debug)]
pub struct Dataset {
    /// `[rows, num_features]`.
    pub features: Matrix,
    /// `[rows, num_labels]`, `None` without labels.
    pub labels: Option<Matrix>,
    /// What reading it did.
    pub stats: ReadStats,
}

impl Dataset {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.features.shape()[0]
    }
}

/// Checks that `dest` can take `rows` rows of `schema`'s widths and dtypes, for readers to
/// call before decoding.
pub fn check_destination(schema: &Schema, dest: &Destination<'_>, rows: u64) -> Result<()> {
    let fits = |buf: &RowsMut<'_>, width: usize, dtype: DType| {
        let dtype_ok = matches!(
            (buf, dtype),
            (RowsMut::F32(_), DType::Float32)
                | (RowsMut::F64(_), DType::Float64)
                | (RowsMut::I64(_), DType::Int64)
        );
        dtype_ok && (dest.capacity as u128) * (width as u128) <= buf.len() as u128
    };
    let labels_ok = match &dest.labels {
        Some(labels) => fits(labels, schema.num_labels(), schema.label_dtype),
        None => schema.num_labels() == 0,
    };
    if (dest.capacity as u64) < rows
        || !fits(&dest.features, schema.num_features(), schema.feature_dtype)
        || !labels_ok
    {
        return Err(DataError::InvalidArgument(format!(
            "destination for {rows} rows does not match the schema ({} features as {}, {} labels as {})",
            schema.num_features(),
            schema.feature_dtype,
            schema.num_labels(),
            schema.label_dtype
        )));
    }
    Ok(())
}

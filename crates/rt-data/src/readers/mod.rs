//! The readers: one [`Source`](crate::Source) per file format, and what they share.
//!
//! - [`csv`]: CSV/TSV (plain or gzip), split into byte ranges parsed in parallel.
//! - [`parquet`]: Parquet, one chunk per row group, columns projected.
//! - [`ipc`]: Arrow IPC files (Feather v2), one chunk per record batch.
//! - [`arrow_stream`]: Arrow record batches handed over in memory (the C stream interface).
//! - [`npy`]: NumPy `.npy`, memory-mapped, used in place when the layout already fits.
//! - [`columns`]: which columns become features and labels, shared by every format.
//! - [`arrow_columns`]: Arrow arrays written into row-major destinations (Parquet, IPC, Arrow).

pub mod arrow_columns;
pub mod arrow_stream;
pub mod columns;
pub mod csv;
pub mod files;
pub mod ipc;
pub mod npy;
pub mod parquet;

pub use arrow_stream::ArrowSource;
pub use columns::ColumnPlan;
pub use csv::{CsvOptions, CsvSource};
pub use ipc::IpcSource;
pub use npy::{NpyOptions, NpySource};
pub use parquet::ParquetSource;

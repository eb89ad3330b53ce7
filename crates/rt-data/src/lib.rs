//! rt-data: parallel, streaming, resumable loaders from CSV, Parquet, Arrow and .npy straight
//! into row-major tensors, and the DataLoader that shuffles, shards and batches them.
//!
//! The pieces and how they meet:
//! - [`source`]: the [`Source`] trait every reader implements, chunk by chunk.
//! - [`readers`]: CSV/TSV, Parquet, Arrow IPC, .npy and in-memory Arrow sources.
//! - [`materialize`]: a whole source decoded in parallel into one tensor (memory mode, `read_*`).
//! - [`loader`]: epochs, shuffling, sharding, batching, prefetch, resume and statistics.
//! - [`transform`]: per-feature transforms applied inside the pipeline.

pub mod error;
pub mod loader;
pub mod materialize;
pub mod options;
pub mod panics;
pub mod readers;
pub mod source;
pub mod transform;

#[cfg(feature = "python")]
pub mod python;

pub use error::{DataError, RecordAt, Result};
pub use options::{CategoricalPolicy, ColumnOptions, ColumnRef, MissingPolicy, OnError};
pub use source::{
    ChunkInfo, ChunkReport, Dataset, Destination, ErrorBudget, Matrix, ReadContext, ReadStats,
    RowsMut, Schema, SharedBytes, SkippedRow, Source,
};

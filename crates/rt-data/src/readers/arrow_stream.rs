//! In-memory Arrow record batches (from Python: anything with `__arrow_c_stream__`, imported
//! through the Arrow C stream interface by the Python layer). The batches are collected once;
//! a chunk is a batch.

use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch};

use crate::error::{DataError, Result};
use crate::options::ColumnOptions;
use crate::readers::arrow_columns::{self, BatchPlace};
use crate::readers::columns::{self, ColumnPlan};
use crate::readers::parquet::arrow_fields;
use crate::source::{
    ChunkInfo, ChunkReport, Destination, ReadContext, Schema, Source, check_destination,
};

/// The name in-memory data gets in messages.
pub const ARROW_NAME: &str = "<arrow>";

/// A source over record batches held in memory.
#[derive(Debug)]
pub struct ArrowSource {
    batches: Vec<RecordBatch>,
    first_rows: Vec<u64>,
    infos: Vec<ChunkInfo>,
    plan: ColumnPlan,
}

impl ArrowSource {
    /// A source over `batches` (all with `schema`).
    pub fn new(
        schema: &arrow_schema::Schema,
        batches: Vec<RecordBatch>,
        options: &ColumnOptions,
    ) -> Result<Self> {
        let fields = arrow_fields(schema);
        let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
        let plan = columns::resolve(&names, options)?;
        arrow_columns::check_types(&fields, &plan)?;
        let name: Arc<str> = Arc::from(ARROW_NAME);
        let mut first_rows = Vec::with_capacity(batches.len());
        let mut infos = Vec::with_capacity(batches.len());
        let mut row = 0u64;
        for b in &batches {
            if b.num_columns() != fields.len() {
                return Err(DataError::Schema(format!(
                    "{ARROW_NAME}: a batch has {} columns, the schema {}",
                    b.num_columns(),
                    fields.len()
                )));
            }
            first_rows.push(row);
            row += b.num_rows() as u64;
            infos.push(ChunkInfo {
                file: name.clone(),
                rows: Some(b.num_rows() as u64),
                bytes: b.get_array_memory_size() as u64,
            });
        }
        Ok(Self {
            batches,
            first_rows,
            infos,
            plan,
        })
    }
}

impl Source for ArrowSource {
    fn schema(&self) -> &Schema {
        &self.plan.schema
    }

    fn chunks(&self) -> &[ChunkInfo] {
        &self.infos
    }

    fn count_rows(&self, chunk: usize, _ctx: ReadContext<'_>) -> Result<u64> {
        self.batches
            .get(chunk)
            .map(|b| b.num_rows() as u64)
            .ok_or_else(|| DataError::InvalidArgument(format!("chunk {chunk} out of range")))
    }

    fn read_into(
        &self,
        chunk: usize,
        mut dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        ctx.cancel.check()?;
        let batch = self
            .batches
            .get(chunk)
            .ok_or_else(|| DataError::InvalidArgument(format!("chunk {chunk} out of range")))?;
        let t0 = Instant::now();
        let rows = batch.num_rows();
        check_destination(&self.plan.schema, &dest, rows as u64)?;
        let column = |c: usize| -> Option<&ArrayRef> {
            (c < batch.num_columns()).then(|| batch.column(c))
        };
        let labels = dest.labels.as_mut().map(|l| arrow_columns::rows_from(l, 0, 0));
        let features = arrow_columns::rows_from(&mut dest.features, 0, 0);
        let place = BatchPlace {
            file: ARROW_NAME,
            first_row: self.first_rows.get(chunk).copied().unwrap_or(0),
        };
        arrow_columns::write_batch(&self.plan, column, rows, features, labels, place)?;
        Ok(ChunkReport {
            rows,
            skipped: Vec::new(),
            bytes_read: 0,
            read_time: std::time::Duration::ZERO,
            parse_time: t0.elapsed(),
        })
    }
}

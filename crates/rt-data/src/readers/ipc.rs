//! Arrow IPC files (Feather v2) through `arrow-ipc`'s `FileReader`: one chunk per record
//! batch, only the selected columns decoded. Every read opens its own handle, so any thread
//! can read any batch.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::reader::FileReader;

use crate::error::{DataError, Result};
use crate::options::ColumnOptions;
use crate::readers::arrow_columns::{self, BatchPlace};
use crate::readers::columns::{self, ColumnPlan};
use crate::readers::files;
use crate::readers::parquet::arrow_fields;
use crate::source::{
    ChunkInfo, ChunkReport, Destination, ReadContext, Schema, Source, check_destination,
};

#[derive(Debug)]
struct IpcFile {
    path: PathBuf,
    name: Arc<str>,
}

#[derive(Debug)]
struct IpcBatch {
    file: usize,
    index: usize,
    /// Counted on first demand (the footer does not store row counts).
    rows: OnceLock<u64>,
    /// Rows of the file's earlier batches, once known (for messages).
    first_row: OnceLock<u64>,
}

/// An Arrow IPC file source.
#[derive(Debug)]
pub struct IpcSource {
    files: Vec<IpcFile>,
    batches: Vec<IpcBatch>,
    infos: Vec<ChunkInfo>,
    plan: ColumnPlan,
    /// Selected input columns, ascending: the projection every read asks for.
    projection: Vec<usize>,
}

fn corrupt(name: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Corrupt {
        file: name.to_owned(),
        reason: format!("not a readable Arrow IPC file: {e}"),
    }
}

fn reader(path: &Path, name: &str, projection: Option<Vec<usize>>) -> Result<FileReader<BufReader<File>>> {
    let file = files::open(path)?;
    FileReader::try_new(BufReader::with_capacity(1 << 16, file), projection)
        .map_err(|e| corrupt(name, e))
}

impl IpcSource {
    /// Opens `paths`: reads every footer, checks that the schemas agree, resolves the columns.
    pub fn open(paths: &[PathBuf], options: &ColumnOptions) -> Result<Self> {
        if paths.is_empty() {
            return Err(DataError::InvalidArgument("no Arrow IPC files given".to_owned()));
        }
        let mut files_out = Vec::new();
        let mut batches = Vec::new();
        let mut infos = Vec::new();
        let mut fields = Vec::new();
        for (fi, path) in paths.iter().enumerate() {
            let name = files::display_name(path);
            let r = reader(path, &name, None)?;
            let these = arrow_fields(&r.schema());
            if fi == 0 {
                fields = these;
            } else if let Some(first) = files_out.first() {
                let first: &IpcFile = first;
                arrow_columns::check_same_fields(&first.name, &fields, &name, &these)?;
            }
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let n = r.num_batches();
            for index in 0..n {
                batches.push(IpcBatch {
                    file: fi,
                    index,
                    rows: OnceLock::new(),
                    first_row: OnceLock::new(),
                });
                infos.push(ChunkInfo {
                    file: name.clone(),
                    rows: None,
                    bytes: size / n.max(1) as u64,
                });
            }
            files_out.push(IpcFile {
                path: path.clone(),
                name,
            });
        }
        let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
        let plan = columns::resolve(&names, options)?;
        arrow_columns::check_types(&fields, &plan)?;
        let mut projection: Vec<usize> =
            plan.feature_cols.iter().chain(&plan.label_cols).copied().collect();
        projection.sort_unstable();
        Ok(Self {
            files: files_out,
            batches,
            infos,
            plan,
            projection,
        })
    }

    fn batch(&self, chunk: usize) -> Result<(&IpcBatch, &IpcFile)> {
        let b = self
            .batches
            .get(chunk)
            .ok_or_else(|| DataError::InvalidArgument(format!("chunk {chunk} out of range")))?;
        let f = self
            .files
            .get(b.file)
            .ok_or_else(|| DataError::InvalidArgument("bad chunk".to_owned()))?;
        Ok((b, f))
    }

    fn read_batch(&self, b: &IpcBatch, f: &IpcFile, projection: Vec<usize>) -> Result<RecordBatch> {
        let mut r = reader(&f.path, &f.name, Some(projection))?;
        r.set_index(b.index).map_err(|e| corrupt(&f.name, e))?;
        match r.next() {
            Some(Ok(batch)) => Ok(batch),
            Some(Err(e)) => Err(corrupt(&f.name, e)),
            None => Err(corrupt(&f.name, format!("record batch {} is missing", b.index))),
        }
    }
}

impl Source for IpcSource {
    fn schema(&self) -> &Schema {
        &self.plan.schema
    }

    fn chunks(&self) -> &[ChunkInfo] {
        &self.infos
    }

    fn count_rows(&self, chunk: usize, _ctx: ReadContext<'_>) -> Result<u64> {
        let (b, f) = self.batch(chunk)?;
        if let Some(&rows) = b.rows.get() {
            return Ok(rows);
        }
        // The narrowest projection that still carries the row count.
        let one: Vec<usize> = self.projection.first().copied().into_iter().collect();
        let rows = self.read_batch(b, f, one)?.num_rows() as u64;
        Ok(*b.rows.get_or_init(|| rows))
    }

    fn read_into(
        &self,
        chunk: usize,
        mut dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        ctx.cancel.check()?;
        let (b, f) = self.batch(chunk)?;
        let t0 = Instant::now();
        let batch = self.read_batch(b, f, self.projection.clone())?;
        let t1 = Instant::now();
        let rows = batch.num_rows();
        let _ = b.rows.set(rows as u64);
        check_destination(&self.plan.schema, &dest, rows as u64)?;
        let first_row = match b.first_row.get() {
            Some(&r) => r,
            None => {
                // Rows of the earlier batches of the same file (known once they were counted).
                let earlier = (0..chunk)
                    .filter_map(|i| self.batches.get(i))
                    .filter(|o| o.file == b.file)
                    .map(|o| o.rows.get().copied())
                    .sum::<Option<u64>>();
                earlier.map_or(0, |r| *b.first_row.get_or_init(|| r))
            }
        };
        let position: Vec<Option<usize>> = (0..self.plan.input_names.len())
            .map(|c| self.projection.iter().position(|&p| p == c))
            .collect();
        let column = |c: usize| -> Option<&ArrayRef> {
            let j = (*position.get(c)?)?;
            (j < batch.num_columns()).then(|| batch.column(j))
        };
        let labels = dest.labels.as_mut().map(|l| arrow_columns::rows_from(l, 0, 0));
        let features = arrow_columns::rows_from(&mut dest.features, 0, 0);
        let place = BatchPlace {
            file: &f.name,
            first_row,
        };
        arrow_columns::write_batch(&self.plan, column, rows, features, labels, place)?;
        Ok(ChunkReport {
            rows,
            skipped: Vec::new(),
            bytes_read: self.infos.get(chunk).map_or(0, |i| i.bytes),
            read_time: t1 - t0,
            parse_time: t1.elapsed(),
        })
    }
}

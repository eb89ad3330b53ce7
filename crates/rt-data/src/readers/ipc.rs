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
use crate::readers::arrow_columns::{self, BatchPlace, Categories};
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
    /// From the batch's metadata message at open, or counted on first demand.
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
    categories: Categories,
}

fn corrupt(name: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Corrupt {
        file: name.to_owned(),
        reason: format!("not a readable Arrow IPC file: {e}"),
    }
}

fn reader(
    path: &Path,
    name: &str,
    projection: Option<Vec<usize>>,
) -> Result<FileReader<BufReader<File>>> {
    let file = files::open(path)?;
    FileReader::try_new(BufReader::with_capacity(1 << 16, file), projection)
        .map_err(|e| corrupt(name, e))
}

/// The row count of every record batch, from the footer and the batches' metadata messages
/// alone (no body is read). `None` when the file does not look as expected; the counts are
/// then taken lazily by reading the batches.
fn batch_row_counts(path: &Path) -> Option<Vec<u64>> {
    let file = files::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut trailer = [0u8; 10];
    files::read_exact_at(&file, path, &mut trailer, len.checked_sub(10)?).ok()?;
    if trailer.get(4..) != Some(b"ARROW1".as_slice()) {
        return None;
    }
    let footer_len = u64::try_from(i32::from_le_bytes(trailer[..4].try_into().ok()?)).ok()?;
    let mut footer = vec![0u8; usize::try_from(footer_len).ok()?];
    files::read_exact_at(&file, path, &mut footer, len.checked_sub(10 + footer_len)?).ok()?;
    let footer = arrow_ipc::root_as_footer(&footer).ok()?;
    let mut counts = Vec::new();
    for block in footer.recordBatches()? {
        let mut meta = vec![0u8; usize::try_from(block.metaDataLength()).ok()?];
        files::read_exact_at(&file, path, &mut meta, u64::try_from(block.offset()).ok()?).ok()?;
        // Since format 0.15 a message starts with 0xFFFFFFFF and its length; before, with the
        // length alone.
        let body = if meta.get(..4) == Some([0xff; 4].as_slice()) {
            meta.get(8..)?
        } else {
            meta.get(4..)?
        };
        let message = arrow_ipc::root_as_message(body).ok()?;
        counts.push(u64::try_from(message.header_as_record_batch()?.length()).ok()?);
    }
    Some(counts)
}

impl IpcSource {
    /// Opens `paths`: reads every footer, checks that the schemas agree, resolves the columns.
    pub fn open(paths: &[PathBuf], options: &ColumnOptions) -> Result<Self> {
        if paths.is_empty() {
            return Err(DataError::InvalidArgument(
                "no Arrow IPC files given".to_owned(),
            ));
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
            let counts = batch_row_counts(path).filter(|c| c.len() == n);
            let mut first_row = 0u64;
            for index in 0..n {
                let known = counts.as_ref().and_then(|c| c.get(index).copied());
                let rows = OnceLock::new();
                let first = OnceLock::new();
                if let Some(count) = known {
                    let _ = rows.set(count);
                    let _ = first.set(first_row);
                    first_row += count;
                }
                batches.push(IpcBatch {
                    file: fi,
                    index,
                    rows,
                    first_row: first,
                });
                infos.push(ChunkInfo {
                    file: name.clone(),
                    rows: known,
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
        let mut projection: Vec<usize> = plan
            .feature_cols
            .iter()
            .chain(&plan.label_cols)
            .copied()
            .collect();
        projection.sort_unstable();
        // Codes of string columns: one pass over those columns, files and batches in order.
        let mut categories = Categories::default();
        let text = Categories::text_columns(&fields, &plan);
        if !text.is_empty() {
            for f in &files_out {
                for batch in reader(&f.path, &f.name, Some(text.clone()))? {
                    let batch = batch.map_err(|e| corrupt(&f.name, e))?;
                    for (j, &c) in text.iter().enumerate() {
                        if j < batch.num_columns() {
                            categories.add(c, batch.column(j))?;
                        }
                    }
                }
            }
        }
        Ok(Self {
            files: files_out,
            batches,
            infos,
            plan,
            projection,
            categories,
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
            None => Err(corrupt(
                &f.name,
                format!("record batch {} is missing", b.index),
            )),
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
        let labels = dest
            .labels
            .as_mut()
            .map(|l| arrow_columns::rows_from(l, 0, 0));
        let features = arrow_columns::rows_from(&mut dest.features, 0, 0);
        let place = BatchPlace {
            file: &f.name,
            first_row,
        };
        arrow_columns::write_batch(
            &self.plan,
            &self.categories,
            column,
            rows,
            features,
            labels,
            place,
        )?;
        Ok(ChunkReport {
            rows,
            skipped: Vec::new(),
            bytes_read: self.infos.get(chunk).map_or(0, |i| i.bytes),
            read_time: t1 - t0,
            parse_time: t1.elapsed(),
        })
    }
}

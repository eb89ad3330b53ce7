//! Parquet sources through the `parquet` crate's Arrow reader: one chunk per row group, only
//! the selected columns decoded (a [`ProjectionMask`]).
//!
//! A row group can hold a whole file (pyarrow writes up to 1Mi rows per group), so a chunk
//! is also parallel inside: the selected columns are split into one group per thread, each
//! group decoded by its own reader over the same row group, batch by batch, and every batch
//! is transposed into the destination rows in parallel.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::reader::{ChunkReader, Length};
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::options::ColumnOptions;
use crate::readers::arrow_columns::{self, BatchPlace, Categories};
use crate::readers::columns::{self, ColumnPlan};
use crate::readers::files;
use crate::source::{
    ChunkInfo, ChunkReport, Destination, ReadContext, Schema, Source, check_destination,
};

/// Rows per decoded batch inside a row group.
const BATCH_ROWS: usize = 64 * 1024;

/// A file read with positioned reads, so that any number of threads can decode parts of it
/// at once (`File`'s own `ChunkReader` shares one seek position between clones).
#[derive(Debug, Clone)]
struct SharedFile {
    file: Arc<File>,
    len: u64,
}

/// A `Read` at its own offset of a [`SharedFile`].
struct PositionedReader {
    file: Arc<File>,
    pos: u64,
}

impl Read for PositionedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file.as_ref(), buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file.as_ref(), buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Length for SharedFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for SharedFile {
    type T = PositionedReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<PositionedReader> {
        Ok(PositionedReader {
            file: self.file.clone(),
            pos: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        // The length comes from the file's metadata (a column chunk's or a page's size): a
        // damaged file may declare any size, and allocating it before reading would abort
        // the process when the allocation fails. Bytes past the end cannot be read anyway.
        let end = u64::try_from(length)
            .ok()
            .and_then(|n| start.checked_add(n));
        if end.is_none_or(|end| end > self.len) {
            return Err(ParquetError::EOF(format!(
                "{length} bytes at offset {start} would end past the end of the file \
                 ({} bytes)",
                self.len
            )));
        }
        let mut buf = vec![0u8; length];
        let mut reader = self.get_read(start)?;
        reader
            .read_exact(&mut buf)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Bytes::from(buf))
    }
}

#[derive(Debug)]
struct ParquetFile {
    name: Arc<str>,
    file: SharedFile,
    meta: ArrowReaderMetadata,
}

#[derive(Debug, Clone, Copy)]
struct RowGroup {
    file: usize,
    group: usize,
    rows: u64,
    first_row: u64,
}

/// A Parquet source over one or more files with the same schema.
#[derive(Debug)]
pub struct ParquetSource {
    files: Vec<ParquetFile>,
    groups: Vec<RowGroup>,
    infos: Vec<ChunkInfo>,
    plan: ColumnPlan,
    categories: Categories,
}

fn corrupt(name: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Corrupt {
        file: name.to_owned(),
        reason: format!("not a readable Parquet file: {e}"),
    }
}

/// The (name, type) of every top-level column.
pub fn arrow_fields(schema: &arrow_schema::Schema) -> Vec<(String, DataType)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect()
}

fn open_file(path: &Path) -> Result<ParquetFile> {
    let file = files::open(path)?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let name = files::display_name(path);
    let shared = SharedFile {
        file: Arc::new(file),
        len,
    };
    let meta = ArrowReaderMetadata::load(&shared, ArrowReaderOptions::new())
        .map_err(|e| corrupt(&name, e))?;
    Ok(ParquetFile {
        name,
        file: shared,
        meta,
    })
}

impl ParquetSource {
    /// Opens `paths`: reads every footer, checks that the schemas agree, resolves the columns.
    pub fn open(paths: &[PathBuf], options: &ColumnOptions) -> Result<Self> {
        if paths.is_empty() {
            return Err(DataError::InvalidArgument(
                "no Parquet files given".to_owned(),
            ));
        }
        let files = paths
            .iter()
            .map(|p| open_file(p))
            .collect::<Result<Vec<_>>>()?;
        let mut fields = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let these = arrow_fields(f.meta.schema());
            if i == 0 {
                fields = these;
            } else if let Some(first) = files.first() {
                arrow_columns::check_same_fields(&first.name, &fields, &f.name, &these)?;
            }
        }
        let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
        let plan = columns::resolve(&names, options)?;
        arrow_columns::check_types(&fields, &plan)?;
        let mut groups = Vec::new();
        let mut infos = Vec::new();
        for (fi, f) in files.iter().enumerate() {
            let mut first_row = 0u64;
            for (gi, rg) in f.meta.metadata().row_groups().iter().enumerate() {
                let rows = u64::try_from(rg.num_rows()).map_err(|e| corrupt(&f.name, e))?;
                groups.push(RowGroup {
                    file: fi,
                    group: gi,
                    rows,
                    first_row,
                });
                infos.push(ChunkInfo {
                    file: f.name.clone(),
                    rows: Some(rows),
                    bytes: u64::try_from(rg.compressed_size()).unwrap_or(0),
                });
                first_row += rows;
            }
        }
        // Codes of string columns: one pass over those columns, row groups in order.
        let mut categories = Categories::default();
        let text = Categories::text_columns(&fields, &plan);
        if !text.is_empty() {
            for f in &files {
                let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                    f.file.clone(),
                    f.meta.clone(),
                );
                let mask = ProjectionMask::roots(builder.parquet_schema(), text.iter().copied());
                let reader = builder
                    .with_projection(mask)
                    .build()
                    .map_err(|e| corrupt(&f.name, e))?;
                for batch in reader {
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
            files,
            groups,
            infos,
            plan,
            categories,
        })
    }

    fn readers(
        &self,
        g: &RowGroup,
        f: &ParquetFile,
    ) -> Result<(Vec<ParquetRecordBatchReader>, Vec<Vec<usize>>)> {
        let mut selected: Vec<usize> = self
            .plan
            .feature_cols
            .iter()
            .chain(&self.plan.label_cols)
            .copied()
            .collect();
        selected.sort_unstable();
        let threads = rayon::current_num_threads().max(1);
        let parts = if g.rows as usize >= BATCH_ROWS {
            threads.min(selected.len()).max(1)
        } else {
            1
        };
        let per = selected.len().div_ceil(parts).max(1);
        let column_groups: Vec<Vec<usize>> = selected.chunks(per).map(<[usize]>::to_vec).collect();
        let readers = column_groups
            .iter()
            .map(|cols| {
                let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
                    f.file.clone(),
                    f.meta.clone(),
                );
                let mask = ProjectionMask::roots(builder.parquet_schema(), cols.iter().copied());
                builder
                    .with_projection(mask)
                    .with_row_groups(vec![g.group])
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| corrupt(&f.name, e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((readers, column_groups))
    }
}

impl Source for ParquetSource {
    fn schema(&self) -> &Schema {
        &self.plan.schema
    }

    fn chunks(&self) -> &[ChunkInfo] {
        &self.infos
    }

    fn count_rows(&self, chunk: usize, _ctx: ReadContext<'_>) -> Result<u64> {
        self.groups
            .get(chunk)
            .map(|g| g.rows)
            .ok_or_else(|| DataError::InvalidArgument(format!("chunk {chunk} out of range")))
    }

    fn read_into(
        &self,
        chunk: usize,
        mut dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        let g = *self
            .groups
            .get(chunk)
            .ok_or_else(|| DataError::InvalidArgument(format!("chunk {chunk} out of range")))?;
        let f = self
            .files
            .get(g.file)
            .ok_or_else(|| DataError::InvalidArgument("bad chunk".to_owned()))?;
        check_destination(&self.plan.schema, &dest, g.rows)?;
        let (mut readers, column_groups) = self.readers(&g, f)?;
        // Input column -> (reader, position in its batches).
        let mut location = vec![None; self.plan.input_names.len()];
        for (ri, cols) in column_groups.iter().enumerate() {
            for (j, &c) in cols.iter().enumerate() {
                if let Some(slot) = location.get_mut(c) {
                    *slot = Some((ri, j));
                }
            }
        }
        let (nf, nl) = (
            self.plan.schema.num_features(),
            self.plan.schema.num_labels(),
        );
        let mut done = 0usize;
        let mut read_time = Duration::ZERO;
        let mut parse_time = Duration::ZERO;
        loop {
            ctx.cancel.check()?;
            let t0 = Instant::now();
            let batches: Vec<Option<std::result::Result<RecordBatch, arrow_schema::ArrowError>>> =
                readers.par_iter_mut().map(Iterator::next).collect();
            let t1 = Instant::now();
            read_time += t1 - t0;
            if batches.iter().all(Option::is_none) {
                break;
            }
            let batches = batches
                .into_iter()
                .map(|b| match b {
                    Some(Ok(b)) => Ok(b),
                    Some(Err(e)) => Err(corrupt(&f.name, e)),
                    None => Err(corrupt(
                        &f.name,
                        "columns of one row group end at different rows",
                    )),
                })
                .collect::<Result<Vec<_>>>()?;
            let rows = batches.first().map_or(0, RecordBatch::num_rows);
            if done + rows > g.rows as usize {
                return Err(corrupt(
                    &f.name,
                    "more rows than the row group's metadata says",
                ));
            }
            let column = |c: usize| -> Option<&ArrayRef> {
                let (ri, j) = (*location.get(c)?)?;
                let batch = batches.get(ri)?;
                (j < batch.num_columns()).then(|| batch.column(j))
            };
            let features = arrow_columns::rows_from(&mut dest.features, done, nf);
            let labels = dest
                .labels
                .as_mut()
                .map(|l| arrow_columns::rows_from(l, done, nl));
            let place = BatchPlace {
                file: &f.name,
                first_row: g.first_row + done as u64,
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
            parse_time += t1.elapsed();
            done += rows;
        }
        if done as u64 != g.rows {
            return Err(corrupt(
                &f.name,
                format!(
                    "row group {} has {done} rows, its metadata says {}",
                    g.group, g.rows
                ),
            ));
        }
        Ok(ChunkReport {
            rows: done,
            skipped: Vec::new(),
            bytes_read: self.infos.get(chunk).map_or(0, |i| i.bytes),
            read_time,
            parse_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_past_the_end_fails_before_allocating() {
        let path = std::env::temp_dir().join(format!("rt_data_get_bytes_{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = SharedFile {
            file: Arc::new(File::open(&path).unwrap()),
            len: 10,
        };
        assert_eq!(&file.get_bytes(2, 8).unwrap()[..], b"23456789");
        // A declared length that would abort if allocated: refused, not attempted.
        for (start, length) in [(0, usize::MAX), (2, 9), (u64::MAX, 1), (11, 0)] {
            let err = file.get_bytes(start, length).unwrap_err().to_string();
            assert!(err.contains("past the end of the file (10 bytes)"), "{err}");
        }
        std::fs::remove_file(&path).unwrap();
    }
}

//! CSV/TSV sources: several files (plain or gzip) with agreeing headers, cut into byte ranges
//! on record boundaries ([`plan`]) and decoded in parallel straight into destination rows
//! ([`parse`]).
//!
//! Memory: a chunk is read in blocks of [`BLOCK_BYTES`] into a buffer owned by the reading
//! thread and reused, so a read holds about threads × block bytes besides its output; the
//! file is never mapped or loaded whole.

pub mod categories;
pub mod decimal_simd;
pub mod gzip;
pub mod header;
pub mod number;
pub mod parse;
pub mod plan;

use std::cell::RefCell;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use self::header::Header;
use self::number::NaValues;
use self::parse::{Layout, OutFloat, RowWriter};
use self::plan::{Dialect, PlannedChunk};
use crate::error::{DataError, Result};
use crate::options::ColumnOptions;
use crate::readers::columns::{self, ColumnPlan};
use crate::readers::files;
use crate::source::{
    ChunkInfo, ChunkReport, Destination, ReadContext, RowsMut, Schema, Source, check_destination,
};

/// Bytes read per block while decoding a chunk: large enough that the system call and the
/// carry-over of a partial record cost nothing, small enough to stay in the L2/L3 cache
/// between the copy from the page cache and the parse.
pub const BLOCK_BYTES: usize = 1 << 20;

/// Default size of the byte ranges a file is cut into: a chunk is the unit of parallel
/// decoding and of stream mode's shuffled order, and stream mode's first window is at least
/// one chunk, so smaller chunks bring its first batch sooner (1.1 GB CSV: 15.6 ms after
/// opening with 8 MiB, 10.8 ms with 2 MiB) and shuffle at a finer grain; the decoding rate
/// and the planning time did not change between 8 and 2 MiB.
pub const DEFAULT_CHUNK_BYTES: u64 = 2 << 20;

/// How to read CSV text.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// Field separator (`b','`, `b'\t'` for TSV...).
    pub delimiter: u8,
    /// Quote character; `None` reads quotes as ordinary characters.
    pub quote: Option<u8>,
    /// Lines starting with this are skipped; elsewhere it ends a line's data.
    pub comment: Option<u8>,
    /// The first record holds the column names.
    pub header: bool,
    /// Strings read as missing besides pandas' defaults (which always apply, as in pandas).
    /// The empty field is always missing.
    pub na_values: Option<Vec<String>>,
    /// Target size of a chunk (a byte range of a plain file).
    pub chunk_bytes: u64,
    /// Which columns, which dtypes, missing values.
    pub columns: ColumnOptions,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: Some(b'"'),
            comment: None,
            header: true,
            na_values: None,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            columns: ColumnOptions::default(),
        }
    }
}

#[derive(Debug)]
struct CsvFile {
    path: PathBuf,
    name: Arc<str>,
    file: File,
    gzip: bool,
    header: Header,
    size: u64,
}

#[derive(Debug)]
struct CsvChunk {
    file: usize,
    start: u64,
    end: u64,
    first_line: u64,
    /// Known from planning for plain files; counted once on demand for gzip.
    rows: OnceLock<u64>,
}

/// A CSV/TSV source over one or more files.
#[derive(Debug)]
pub struct CsvSource {
    files: Vec<CsvFile>,
    chunks: Vec<CsvChunk>,
    infos: Vec<ChunkInfo>,
    plan: ColumnPlan,
    na: NaValues,
    dialect: Dialect,
    /// Codes of the text columns under `categorical="codes"` (empty otherwise).
    codes: categories::Codes,
}

thread_local! {
    /// The reading thread's block buffer, reused across chunks (a fresh buffer per chunk
    /// would page-fault the whole file's size in over a read).
    static BLOCK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl CsvSource {
    /// Opens `paths`: checks every file, reads the headers (which must agree), resolves the
    /// columns and plans the chunks, in parallel on rt-view's pool.
    pub fn open(paths: &[PathBuf], options: &CsvOptions) -> Result<Self> {
        if paths.is_empty() {
            return Err(DataError::InvalidArgument("no CSV files given".to_owned()));
        }
        if options.delimiter == b'\n' || options.delimiter == b'\r' {
            return Err(DataError::InvalidArgument(
                "the delimiter cannot be a newline".to_owned(),
            ));
        }
        if options.quote == Some(options.delimiter) || options.comment == Some(options.delimiter) {
            return Err(DataError::InvalidArgument(
                "the delimiter, quote and comment characters must differ".to_owned(),
            ));
        }
        columns::check_options(&options.columns)?;
        let dialect = Dialect {
            delimiter: options.delimiter,
            quote: options.quote,
            comment: options.comment,
        };
        let files = paths
            .iter()
            .map(|path| open_file(path, dialect, options.header))
            .collect::<Result<Vec<_>>>()?;
        // Every file with columns must have the first such file's columns.
        let reference = files.iter().find(|f| !f.header.names.is_empty());
        if let Some(first) = reference {
            for f in &files {
                if !f.header.names.is_empty() {
                    columns::check_same_columns(
                        &first.name,
                        &first.header.names,
                        &f.name,
                        &f.header.names,
                    )?;
                }
            }
        }
        let names = reference
            .map(|f| f.header.names.clone())
            .unwrap_or_default();
        let plan = columns::resolve(&names, &options.columns)?;
        let chunk_bytes = options.chunk_bytes.max(1);
        let planned: Vec<Vec<PlannedChunk>> = rt_view::threads::install(|| {
            files
                .iter()
                .map(|f| plan_one(f, chunk_bytes, dialect))
                .collect::<Result<Vec<_>>>()
        })??;
        let mut chunks = Vec::new();
        let mut infos = Vec::new();
        for (index, (f, planned)) in files.iter().zip(planned).enumerate() {
            for p in planned {
                let rows = OnceLock::new();
                if !f.gzip {
                    let _ = rows.set(p.rows);
                }
                infos.push(ChunkInfo {
                    file: f.name.clone(),
                    rows: (!f.gzip).then_some(p.rows),
                    bytes: if f.gzip { f.size } else { p.end - p.start },
                });
                chunks.push(CsvChunk {
                    file: index,
                    start: p.start,
                    end: p.end,
                    first_line: p.first_line,
                    rows,
                });
            }
        }
        let mut source = Self {
            files,
            chunks,
            infos,
            plan,
            na: NaValues::new(options.na_values.as_deref()),
            dialect,
            codes: Vec::new(),
        };
        if options.columns.categorical == crate::options::CategoricalPolicy::Codes {
            source.codes = rt_view::threads::install(|| categories::collect(&source))??;
        }
        Ok(source)
    }

    /// The resolved columns.
    pub fn column_plan(&self) -> &ColumnPlan {
        &self.plan
    }

    fn chunk(&self, chunk: usize) -> Result<(&CsvChunk, &CsvFile)> {
        let c = self.chunks.get(chunk).ok_or_else(|| {
            DataError::InvalidArgument(format!(
                "chunk {chunk} out of range ({} chunks)",
                self.chunks.len()
            ))
        })?;
        let f = self
            .files
            .get(c.file)
            .ok_or_else(|| DataError::InvalidArgument("bad chunk".to_owned()))?;
        Ok((c, f))
    }

    fn decode<F: OutFloat>(
        &self,
        c: &CsvChunk,
        f: &CsvFile,
        features: &mut [F],
        labels: Option<RowsMut<'_>>,
        capacity: usize,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        let layout = Layout {
            dialect: self.dialect,
            roles: &self.plan.roles,
            names: &self.plan.input_names,
            na: &self.na,
            missing: self.plan.missing,
            file: &f.name,
            num_features: self.plan.schema.num_features(),
            num_labels: self.plan.schema.num_labels(),
            codes: &self.codes,
        };
        let mut writer = RowWriter::new(&layout, features, labels, capacity);
        let mut line = c.first_line;
        let mut read_time = Duration::ZERO;
        let mut parse_time = Duration::ZERO;
        let mut input = ChunkInput::new(c, f)?;
        let result = with_block(|buf| -> Result<()> {
            let mut filled = 0usize;
            loop {
                if filled == buf.len() {
                    let grown = (buf.len() * 2).max(BLOCK_BYTES);
                    buf.resize(grown, 0);
                }
                let t0 = Instant::now();
                let target = buf.get_mut(filled..).unwrap_or_default();
                let (n, at_eof) = input.read(target, f)?;
                filled += n;
                let t1 = Instant::now();
                let data = buf.get(..filled).unwrap_or_default();
                let used = writer.parse_block(data, at_eof, &mut line, ctx)?;
                parse_time += t1.elapsed();
                read_time += t1 - t0;
                if at_eof {
                    if used != filled {
                        return Err(inconsistent(f, line));
                    }
                    return Ok(());
                }
                buf.copy_within(used..filled, 0);
                filled -= used;
            }
        });
        result?;
        let found = (writer.rows + writer.skipped.len()) as u64;
        if c.rows.get().is_some_and(|&planned| planned != found) {
            return Err(inconsistent(f, line));
        }
        Ok(ChunkReport {
            rows: writer.rows,
            skipped: writer.skipped,
            bytes_read: if f.gzip { f.size } else { c.end - c.start },
            read_time,
            parse_time,
        })
    }
}

fn inconsistent(f: &CsvFile, line: u64) -> DataError {
    DataError::Corrupt {
        file: f.name.to_string(),
        reason: format!(
            "near line {line}: the records differ from what was planned when the file was \
             opened; the file changed, or a quote character appears inside an unquoted field"
        ),
    }
}

/// Streams the bytes of chunk `c` in blocks: `consume(data, at_eof)` returns how many bytes
/// of `data` it used (whole records); the rest is carried into the next block.
fn read_chunk_bytes(
    c: &CsvChunk,
    f: &CsvFile,
    mut consume: impl FnMut(&[u8], bool) -> usize,
) -> Result<()> {
    let mut input = ChunkInput::new(c, f)?;
    with_block(|buf| {
        let mut filled = 0usize;
        loop {
            if filled == buf.len() {
                let grown = (buf.len() * 2).max(BLOCK_BYTES);
                buf.resize(grown, 0);
            }
            let target = buf.get_mut(filled..).unwrap_or_default();
            let (n, at_eof) = input.read(target, f)?;
            filled += n;
            let used = consume(buf.get(..filled).unwrap_or_default(), at_eof).min(filled);
            if at_eof {
                return Ok(());
            }
            buf.copy_within(used..filled, 0);
            filled -= used;
        }
    })
}

/// Runs `f` with this thread's block buffer (a fresh one if it is somehow in use).
fn with_block<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    BLOCK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut Vec::new()),
    })
}

/// The bytes of one chunk: a positioned range of a plain file, or a gzip stream.
enum ChunkInput {
    Plain { offset: u64, remaining: u64 },
    Gzip(Box<flate2::read::MultiGzDecoder<std::io::BufReader<File>>>),
}

impl ChunkInput {
    fn new(c: &CsvChunk, f: &CsvFile) -> Result<Self> {
        if f.gzip {
            let mut dec = gzip::decoder(files::open(&f.path)?);
            gzip::skip(&mut dec, c.start, &f.path)?;
            Ok(ChunkInput::Gzip(Box::new(dec)))
        } else {
            Ok(ChunkInput::Plain {
                offset: c.start,
                remaining: c.end - c.start,
            })
        }
    }

    /// Fills `buf` from the chunk; returns the bytes read and whether the chunk is done.
    fn read(&mut self, buf: &mut [u8], f: &CsvFile) -> Result<(usize, bool)> {
        match self {
            ChunkInput::Plain { offset, remaining } => {
                let n = (buf.len() as u64).min(*remaining) as usize;
                let target = buf.get_mut(..n).unwrap_or_default();
                files::read_exact_at(&f.file, &f.path, target, *offset)?;
                *offset += n as u64;
                *remaining -= n as u64;
                Ok((n, *remaining == 0))
            }
            ChunkInput::Gzip(dec) => {
                let n = gzip::read_full(dec, buf, &f.path)?;
                Ok((n, n < buf.len()))
            }
        }
    }
}

/// Opens one file and reads its header (growing the read until a whole record is in).
fn open_file(path: &Path, dialect: Dialect, has_header: bool) -> Result<CsvFile> {
    let file = files::open(path)?;
    let size = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let name = files::display_name(path);
    let mut magic = [0u8; 2];
    let gzip = size >= 2 && {
        files::read_exact_at(&file, path, &mut magic, 0)?;
        magic == gzip::MAGIC
    };
    let mut want = 1usize << 16;
    let header = if gzip {
        let mut dec = gzip::decoder(files::open(path)?);
        let mut buf = Vec::new();
        loop {
            let old = buf.len();
            buf.resize(want, 0);
            let n = gzip::read_full(&mut dec, buf.get_mut(old..).unwrap_or_default(), path)?;
            buf.truncate(old + n);
            let at_eof = buf.len() < want;
            if let Some(h) = header::parse_header(&buf, at_eof, dialect, has_header, &name)? {
                break h;
            }
            want *= 2;
        }
    } else {
        loop {
            let len = (want as u64).min(size) as usize;
            let mut buf = vec![0u8; len];
            files::read_exact_at(&file, path, &mut buf, 0)?;
            let at_eof = len as u64 == size;
            if let Some(h) = header::parse_header(&buf, at_eof, dialect, has_header, &name)? {
                break h;
            }
            want *= 2;
        }
    };
    Ok(CsvFile {
        path: path.to_path_buf(),
        name,
        file,
        gzip,
        header,
        size,
    })
}

fn plan_one(f: &CsvFile, chunk_bytes: u64, dialect: Dialect) -> Result<Vec<PlannedChunk>> {
    if f.gzip {
        // Not splittable: one chunk over the whole decompressed data, counted on demand.
        return Ok(vec![PlannedChunk {
            start: f.header.data_start,
            end: u64::MAX,
            rows: 0,
            first_line: f.header.data_line,
        }]);
    }
    plan::plan_file(
        &f.file,
        &f.path,
        f.header.data_start,
        f.header.data_line,
        f.size,
        chunk_bytes,
        dialect,
    )
}

/// Counts the records of a gzip file's data by the same quote-parity rule as the planner,
/// streaming (two bytes are carried between blocks for the blank-line look-ahead).
fn count_gzip(c: &CsvChunk, f: &CsvFile, dialect: Dialect, ctx: ReadContext<'_>) -> Result<u64> {
    let mut dec = gzip::decoder(files::open(&f.path)?);
    gzip::skip(&mut dec, c.start, &f.path)?;
    with_block(|buf| {
        if buf.len() < BLOCK_BYTES {
            buf.resize(BLOCK_BYTES, 0);
        }
        let mut filled = 0usize;
        let mut parity = 0usize;
        let mut total = 0u64;
        let mut first = true;
        loop {
            ctx.cancel.check()?;
            let n = gzip::read_full(&mut dec, buf.get_mut(filled..).unwrap_or_default(), &f.path)?;
            let at_eof = filled + n < buf.len();
            filled += n;
            let data = buf.get(..filled).unwrap_or_default();
            if first {
                first = false;
                total += u64::from(plan::is_record_start(data, 0, dialect.comment));
            }
            let window = if at_eof {
                filled
            } else {
                filled.saturating_sub(2)
            };
            let stats = plan::scan_window(data, window, 0, dialect);
            total += stats.starts[parity];
            parity ^= usize::from(stats.quotes_odd);
            if at_eof {
                return Ok(total);
            }
            buf.copy_within(window..filled, 0);
            filled -= window;
        }
    })
}

impl Source for CsvSource {
    fn schema(&self) -> &Schema {
        &self.plan.schema
    }

    fn chunks(&self) -> &[ChunkInfo] {
        &self.infos
    }

    fn count_rows(&self, chunk: usize, ctx: ReadContext<'_>) -> Result<u64> {
        let (c, f) = self.chunk(chunk)?;
        if let Some(&rows) = c.rows.get() {
            return Ok(rows);
        }
        let rows = count_gzip(c, f, self.dialect, ctx)?;
        Ok(*c.rows.get_or_init(|| rows))
    }

    fn read_into(
        &self,
        chunk: usize,
        dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        let (c, f) = self.chunk(chunk)?;
        let rows = self.count_rows(chunk, ctx)?;
        check_destination(&self.plan.schema, &dest, rows)?;
        let capacity = dest.capacity;
        match dest.features {
            RowsMut::F32(out) => self.decode(c, f, out, dest.labels, capacity, ctx),
            RowsMut::F64(out) => self.decode(c, f, out, dest.labels, capacity, ctx),
            RowsMut::I64(_) => Err(DataError::InvalidArgument(
                "features are float32 or float64".to_owned(),
            )),
        }
    }
}

//! Arrow IPC files (Feather v2) through `arrow-ipc`: one chunk per record batch, only the
//! selected columns decoded. The footer, schema and dictionaries of each file are read once,
//! at open, into a `FileDecoder`; a read then fetches its batch's bytes alone (a
//! `FileReader` per read would parse the whole footer each time, quadratic in the number of
//! batches). Every read opens its own handle, so any thread can read any batch.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::{Buffer, MutableBuffer};
use arrow_ipc::MetadataVersion;
use arrow_ipc::reader::{FileDecoder, FileReader};
use arrow_schema::SchemaRef;

use crate::error::{DataError, Result};
use crate::options::ColumnOptions;
use crate::panics::{catch_quietly, panic_message};
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
    schema: SchemaRef,
    /// From our own reading of the footer; `None` when we could not parse it (every read
    /// then goes through a `FileReader`, which reports what is wrong).
    footer: Option<Footer>,
    /// Decodes the source's projection; built at the end of `open` (with `footer`).
    decoder: Option<FileDecoder>,
}

/// What the decoder needs from a file's footer.
#[derive(Debug)]
struct Footer {
    version: MetadataVersion,
    /// Dictionary batches, each with the dictionary id its message names.
    dictionaries: Vec<(i64, Block)>,
    /// The dictionary ids each top-level column uses (its own and its children's).
    column_dictionaries: Vec<Vec<i64>>,
    batches: Vec<Block>,
}

/// Where a record or dictionary batch sits in its file, from the footer (checked to lie
/// inside the file).
#[derive(Debug, Clone, Copy)]
struct Block {
    /// Rows of a record batch, from its metadata message (0 for a dictionary batch).
    rows: u64,
    /// Offset of the batch's metadata message.
    offset: u64,
    /// Length of the metadata message (with its prefix and padding): the body follows it.
    meta_len: u64,
    body_len: u64,
}

impl Block {
    /// The footer's form of the block, for arrow-ipc (the values came from it).
    fn arrow(&self) -> arrow_ipc::Block {
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        arrow_ipc::Block::new(
            as_i64(self.offset),
            i32::try_from(self.meta_len).unwrap_or(i32::MAX),
            as_i64(self.body_len),
        )
    }

    /// The block's bytes (metadata message, then body) in one 64-byte aligned buffer, as
    /// arrow-ipc reads it; the length was checked against the file's at open.
    fn read(&self, f: &IpcFile) -> Result<Buffer> {
        let len = self
            .meta_len
            .checked_add(self.body_len)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| corrupt(&f.name, "a batch is larger than the address space"))?;
        let file = files::open(&f.path)?;
        let mut buf = MutableBuffer::from_len_zeroed(len);
        files::read_exact_at(&file, &f.path, buf.as_slice_mut(), self.offset)?;
        Ok(buf.into())
    }
}

#[derive(Debug)]
struct IpcBatch {
    file: usize,
    index: usize,
    /// From the footer at open; `None` when we could not parse it ourselves.
    block: Option<Block>,
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

/// Runs an arrow-ipc call on file `name`, turning a panic into a `Corrupt` error naming the
/// file. arrow-ipc trusts some offsets and lengths of a damaged file and panics on them (an
/// `unwrap` on a corrupt footer, a slice past the body); without this the user would get a
/// `PanicException` (not an `Exception`) or a worker panic that does not name the file.
fn guarded<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_quietly(f).unwrap_or_else(|payload| {
        Err(corrupt(
            name,
            format!("arrow-ipc failed on it: {}", panic_message(&*payload)),
        ))
    })
}

fn reader(
    path: &Path,
    name: &str,
    projection: Option<Vec<usize>>,
) -> Result<FileReader<BufReader<File>>> {
    let file = files::open(path)?;
    guarded(name, || {
        FileReader::try_new(BufReader::with_capacity(1 << 16, file), projection)
            .map_err(|e| corrupt(name, e))
    })
}

/// Largest decompression ratio we accept: LZ4 cannot expand more than ~255x and zstd's best
/// case is an RLE block (4 bytes for 128 KiB, 32768x); twice that, plus slack for frame
/// headers. A larger declared length is a damaged prefix, and arrow-ipc would try to
/// allocate it up front: an allocation failure aborts the process and cannot be caught.
const MAX_LZ4_RATIO: u64 = 512;
const MAX_ZSTD_RATIO: u64 = 1 << 16;
const RATIO_SLACK: u64 = 1 << 20;

/// The batch a metadata message describes: a record batch's own, or the one inside a
/// dictionary batch. `meta` is the message as stored (see [`message_of`]).
fn batch_of_message(meta: &[u8]) -> Option<arrow_ipc::RecordBatch<'_>> {
    let message = message_of(meta)?;
    message
        .header_as_record_batch()
        .or_else(|| message.header_as_dictionary_batch()?.data())
}

/// The metadata message `meta` holds, as stored with its length prefix (since format 0.15
/// a message starts with 0xFFFFFFFF and its length; before, with the length alone).
fn message_of(meta: &[u8]) -> Option<arrow_ipc::Message<'_>> {
    let body = if meta.get(..4) == Some([0xff; 4].as_slice()) {
        meta.get(8..)
    } else {
        meta.get(4..)
    }?;
    arrow_ipc::root_as_message(body).ok()
}

/// [`check_compressed_lengths_of`] for `block` of `file`, whose metadata message `meta`
/// was read already, reading only the 8-byte prefixes from its body (at open, before
/// arrow-ipc reads the dictionary batches).
fn check_compressed_lengths(
    file: &File,
    path: &Path,
    name: &str,
    (block, meta): (&Block, &[u8]),
    what: &str,
) -> Result<()> {
    let body_start = block.offset.saturating_add(block.meta_len);
    check_compressed_lengths_of(meta, name, what, |at| {
        let mut prefix = [0u8; 8];
        files::read_exact_at(file, path, &mut prefix, body_start.saturating_add(at)).ok()?;
        Some(prefix)
    })
}

/// Checks the uncompressed length that prefixes every compressed buffer of a batch (8
/// bytes, little-endian; -1 for a buffer stored uncompressed) against what its compressed
/// size can expand to, before arrow-ipc decodes (and allocates) it. `meta` is the batch's
/// metadata message; `prefix_at(o)` reads the 8 bytes at offset `o` of its body (`None` past
/// the end). `what` names the batch in the error ("record batch", "dictionary batch").
fn check_compressed_lengths_of(
    meta: &[u8],
    name: &str,
    what: &str,
    mut prefix_at: impl FnMut(u64) -> Option<[u8; 8]>,
) -> Result<()> {
    // arrow-ipc would parse the message from the whole block, body included, and could
    // then read a garbage length prefix: a message that does not parse within its own
    // length is damaged.
    let Some(batch) = batch_of_message(meta) else {
        return Err(corrupt(
            name,
            format!("the metadata of a {what} is damaged"),
        ));
    };
    let (Some(compression), Some(buffers)) = (batch.compression(), batch.buffers()) else {
        return Ok(());
    };
    let ratio = if compression.codec() == arrow_ipc::CompressionType::ZSTD {
        MAX_ZSTD_RATIO
    } else {
        MAX_LZ4_RATIO
    };
    for (i, buffer) in buffers.iter().enumerate() {
        let (Ok(buffer_offset), Ok(length)) = (
            u64::try_from(buffer.offset()),
            u64::try_from(buffer.length()),
        ) else {
            continue; // negative: arrow-ipc rejects it
        };
        if length < 8 {
            continue; // an empty buffer has no prefix
        }
        let prefix = prefix_at(buffer_offset)
            .ok_or_else(|| corrupt(name, format!("buffer {i} of a {what} is cut off")))?;
        let declared = i64::from_le_bytes(prefix);
        let bound = (length - 8)
            .saturating_mul(ratio)
            .saturating_add(RATIO_SLACK);
        if u64::try_from(declared).is_ok_and(|d| d > bound) {
            return Err(corrupt(
                name,
                format!(
                    "buffer {i} of a {what} declares {declared} uncompressed bytes, \
                     more than its {} compressed bytes can hold",
                    length - 8
                ),
            ));
        }
    }
    Ok(())
}

/// The footer's blocks (dictionary batches with their ids, record batches with the row
/// count of each), the dictionaries each column uses and the metadata version, from the
/// footer and the batches' metadata messages alone (no body is read). `Ok(None)` when there
/// is no footer we can parse (arrow-ipc's `FileReader` then reports what is wrong). An
/// error when a block lies past the end of the file (arrow-ipc would allocate its stated
/// length before reading it, and a damaged length of terabytes aborts the process), or
/// when a batch's metadata message does not parse within its length.
fn read_footer(path: &Path, name: &str) -> Result<Option<Footer>> {
    // Reading the flatbuffers is checked (`root_as_*` verify them); catching a panic here
    // too keeps a surprise from escaping as a `PanicException`.
    guarded(name, || Ok(footer_bytes(path)))?.map_or(Ok(None), |(file, len, footer)| {
        guarded(name, || footer_of(&file, path, name, len, &footer))
    })
}

/// The file, its length and its footer's bytes; `None` when there is no Arrow IPC footer.
fn footer_bytes(path: &Path) -> Option<(File, u64, Vec<u8>)> {
    let file = files::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut trailer = [0u8; 10];
    files::read_exact_at(&file, path, &mut trailer, len.checked_sub(10)?).ok()?;
    if trailer.get(4..) != Some(b"ARROW1".as_slice()) {
        return None;
    }
    let footer_len = u64::try_from(i32::from_le_bytes(trailer[..4].try_into().ok()?)).ok()?;
    let at = len.checked_sub(10 + footer_len)?;
    let mut footer = vec![0u8; usize::try_from(footer_len).ok()?];
    files::read_exact_at(&file, path, &mut footer, at).ok()?;
    Some((file, len, footer))
}

/// A footer block as ours, once it is known to lie inside a file of `len` bytes (an error
/// naming `what` otherwise).
fn located(block: &arrow_ipc::Block, len: u64, name: &str, what: &str) -> Result<Block> {
    let parts = u64::try_from(block.offset())
        .ok()
        .zip(u64::try_from(block.metaDataLength()).ok())
        .zip(u64::try_from(block.bodyLength()).ok());
    let inside = parts.filter(|&((o, m), b)| {
        o.checked_add(m)
            .and_then(|e| e.checked_add(b))
            .is_some_and(|end| end <= len)
    });
    let Some(((offset, meta_len), body_len)) = inside else {
        return Err(corrupt(
            name,
            format!(
                "a {what} at offset {} with {} + {} bytes lies outside the file ({len} bytes)",
                block.offset(),
                block.metaDataLength(),
                block.bodyLength()
            ),
        ));
    };
    Ok(Block {
        rows: 0,
        offset,
        meta_len,
        body_len,
    })
}

/// The dictionary id a dictionary batch's metadata message names.
fn dictionary_id(meta: &[u8]) -> Option<i64> {
    Some(message_of(meta)?.header_as_dictionary_batch()?.id())
}

/// The dictionary ids used by `field` and its children.
fn field_dictionaries(field: arrow_ipc::Field<'_>, ids: &mut Vec<i64>) {
    if let Some(encoding) = field.dictionary() {
        ids.push(encoding.id());
    }
    for child in field.children().into_iter().flatten() {
        field_dictionaries(child, ids);
    }
}

/// The metadata message of `block`, read from `file`.
fn read_meta(file: &File, path: &Path, name: &str, block: &Block) -> Result<Vec<u8>> {
    let len = usize::try_from(block.meta_len).map_err(|e| corrupt(name, e))?;
    let mut meta = vec![0u8; len];
    files::read_exact_at(file, path, &mut meta, block.offset)?;
    Ok(meta)
}

fn footer_of(
    file: &File,
    path: &Path,
    name: &str,
    len: u64,
    footer: &[u8],
) -> Result<Option<Footer>> {
    let Ok(footer) = arrow_ipc::root_as_footer(footer) else {
        return Ok(None);
    };
    let dictionaries = footer.dictionaries().into_iter().flatten();
    let dictionaries = dictionaries
        .map(|b| located(b, len, name, "dictionary batch"))
        .collect::<Result<Vec<_>>>()?;
    let batches = footer.recordBatches().into_iter().flatten();
    let mut batches = batches
        .map(|b| located(b, len, name, "record batch"))
        .collect::<Result<Vec<_>>>()?;
    // Dictionary batches are decoded at open, before any record batch: check their
    // compressed lengths now.
    let mut with_ids = Vec::with_capacity(dictionaries.len());
    for (k, block) in dictionaries.into_iter().enumerate() {
        let meta = read_meta(file, path, name, &block)?;
        check_compressed_lengths(file, path, name, (&block, &meta), "dictionary batch")?;
        let id = dictionary_id(&meta);
        let id = id.ok_or_else(|| {
            corrupt(
                name,
                format!("the metadata of dictionary batch {k} is damaged"),
            )
        })?;
        with_ids.push((id, block));
    }
    // Once the blocks lie inside the file, a batch message that does not parse within its
    // length is damaged, not left to arrow-ipc (see `check_compressed_lengths_of`).
    for (k, block) in batches.iter_mut().enumerate() {
        let meta = read_meta(file, path, name, block)?;
        let rows = batch_of_message(&meta).and_then(|r| u64::try_from(r.length()).ok());
        block.rows = rows
            .ok_or_else(|| corrupt(name, format!("the metadata of record batch {k} is damaged")))?;
    }
    let fields = footer.schema().and_then(|s| s.fields());
    let column_dictionaries = fields
        .into_iter()
        .flatten()
        .map(|field| {
            let mut ids = Vec::new();
            field_dictionaries(field, &mut ids);
            ids
        })
        .collect();
    Ok(Some(Footer {
        version: footer.version(),
        dictionaries: with_ids,
        column_dictionaries,
        batches,
    }))
}

/// A decoder of `f`'s record batches for `projection`, holding the dictionaries those
/// columns use. (`FileReader` decodes every dictionary on every open; a source keeps its
/// decoders, so a large dictionary of a column it does not read would stay in memory.)
/// `None` when we could not read the footer.
fn decoder(f: &IpcFile, projection: Vec<usize>) -> Result<Option<FileDecoder>> {
    let Some(footer) = &f.footer else {
        return Ok(None);
    };
    let needed: HashSet<i64> = projection
        .iter()
        .filter_map(|&c| footer.column_dictionaries.get(c))
        .flatten()
        .copied()
        .collect();
    let mut decoder =
        FileDecoder::new(f.schema.clone(), footer.version).with_projection(projection);
    let used = footer
        .dictionaries
        .iter()
        .filter(|(id, _)| needed.contains(id));
    for (_, block) in used {
        let buf = block.read(f)?;
        guarded(&f.name, || {
            decoder
                .read_dictionary(&block.arrow(), &buf)
                .map_err(|e| corrupt(&f.name, e))
        })?;
    }
    Ok(Some(decoder))
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
            // Before arrow-ipc reads anything: it allocates what the footer states.
            let footer = read_footer(path, &name)?;
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
            let footer = footer.filter(|f| f.batches.len() == n);
            let mut first_row = 0u64;
            for index in 0..n {
                let block = footer.as_ref().and_then(|f| f.batches.get(index).copied());
                let known = block.map(|b| b.rows);
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
                    block,
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
                schema: r.schema(),
                footer,
                decoder: None,
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
            for (fi, f) in files_out.iter().enumerate() {
                let text_decoder = decoder(f, text.clone())?;
                let mine = batches.iter().filter(|b| b.file == fi);
                for b in mine {
                    let batch = read_batch(b, f, text_decoder.as_ref(), &text)?;
                    for (j, &c) in text.iter().enumerate() {
                        if j < batch.num_columns() {
                            categories.add(c, batch.column(j))?;
                        }
                    }
                }
            }
        }
        for f in &mut files_out {
            f.decoder = decoder(f, projection.clone())?;
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
}

/// Decodes record batch `b` of `f` (only the `projection` columns), with `decoder` (made for
/// that projection) when we could read the footer, with a `FileReader` otherwise.
fn read_batch(
    b: &IpcBatch,
    f: &IpcFile,
    decoder: Option<&FileDecoder>,
    projection: &[usize],
) -> Result<RecordBatch> {
    let missing = || corrupt(&f.name, format!("record batch {} is missing", b.index));
    if let (Some(block), Some(decoder)) = (b.block, decoder) {
        let buf = block.read(f)?;
        let meta_len = usize::try_from(block.meta_len).unwrap_or(usize::MAX);
        let (meta, body) = buf
            .split_at_checked(meta_len)
            .ok_or_else(|| corrupt(&f.name, "a record batch is cut off"))?;
        check_compressed_lengths_of(meta, &f.name, "record batch", |at| {
            let at = usize::try_from(at).ok()?;
            body.get(at..at.checked_add(8)?)?.try_into().ok()
        })?;
        return guarded(&f.name, || {
            decoder
                .read_record_batch(&block.arrow(), &buf)
                .map_err(|e| corrupt(&f.name, e))?
                .ok_or_else(missing)
        });
    }
    let mut r = reader(&f.path, &f.name, Some(projection.to_vec()))?;
    guarded(&f.name, || {
        r.set_index(b.index).map_err(|e| corrupt(&f.name, e))?;
        match r.next() {
            Some(Ok(batch)) => Ok(batch),
            Some(Err(e)) => Err(corrupt(&f.name, e)),
            None => Err(missing()),
        }
    })
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
        let rows = read_batch(b, f, None, &one)?.num_rows() as u64;
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
        let batch = read_batch(b, f, f.decoder.as_ref(), &self.projection)?;
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

//! NumPy `.npy` sources, memory-mapped.
//!
//! When the array already is what the tensor needs (C order, little-endian, the output dtype,
//! every column a feature), [`Source::resident`] hands out the mapped bytes themselves: no
//! copy, no decoding. Otherwise rows are converted chunk by chunk. Labels come from a column
//! of the array (`label=` index) or from a separate `.npy` file with one value (or one row)
//! per sample.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use memmap2::{MmapMut, MmapOptions};
use rt_view::{DType, OwnedTensor};

use crate::error::{DataError, RecordAt, Result};
use crate::options::ColumnOptions;
use crate::readers::columns::{self, ColumnPlan, int_from_f64};
use crate::readers::csv::parse::OutFloat;
use crate::readers::files;
use crate::source::{
    ChunkInfo, ChunkReport, Dataset, Destination, Matrix, ReadContext, ReadStats, RowsMut, Schema,
    SharedBytes, Source, check_destination,
};

/// Rows per chunk aim at this many bytes.
const CHUNK_BYTES: usize = 8 << 20;

/// Element types a `.npy` file may hold here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    kind: Kind,
    size: usize,
    big_endian: bool,
    fortran: bool,
    rows: usize,
    cols: usize,
    data_offset: usize,
    descr: String,
}

/// The mapped file (a private copy-on-write mapping: writes through a shared tensor never
/// reach the file).
#[derive(Debug)]
pub struct MappedFile {
    map: MmapMut,
    offset: usize,
}

impl SharedBytes for MappedFile {
    fn bytes(&self) -> &[u8] {
        self.map.get(self.offset..).unwrap_or_default()
    }
}

#[derive(Debug)]
struct NpyArray {
    name: Arc<str>,
    header: Header,
    data: Arc<MappedFile>,
}

/// What to read from `.npy` files besides the column options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NpyOptions {
    /// A separate labels array (`[rows]` or `[rows, k]`).
    pub labels_path: Option<PathBuf>,
    /// Columns, dtypes, missing values.
    pub columns: ColumnOptions,
}

/// A `.npy` source.
#[derive(Debug)]
pub struct NpySource {
    array: NpyArray,
    labels: Option<NpyArray>,
    infos: Vec<ChunkInfo>,
    rows_per_chunk: usize,
    plan: ColumnPlan,
}

fn corrupt(name: &str, reason: impl Into<String>) -> DataError {
    DataError::Corrupt {
        file: name.to_owned(),
        reason: reason.into(),
    }
}

/// The value of `'key':` in the header dict text.
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = dict.get(at..)?.trim_start().strip_prefix(':')?.trim_start();
    Some(rest)
}

/// A non-string `descr` (a structured dtype's field list) as an error shows it: the whole
/// bracketed value, not the header text after it, shortened to 80 characters when longer.
fn shown_descr(descr_text: &str) -> String {
    let mut depth = 0usize;
    let mut end = descr_text.len();
    for (i, c) in descr_text.char_indices() {
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    end = i + c.len_utf8();
                    break;
                }
            }
            ',' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    let value = descr_text.get(..end).unwrap_or(descr_text).trim();
    if value.chars().count() <= 80 {
        return value.to_owned();
    }
    let mut short: String = value.chars().take(77).collect();
    short.push_str("...");
    short
}

fn parse_header(bytes: &[u8], name: &str) -> Result<Header> {
    let bad = |why: &str| corrupt(name, format!("not a valid .npy file: {why}"));
    if bytes.get(..6) != Some(b"\x93NUMPY".as_slice()) {
        return Err(bad("the magic string is missing"));
    }
    let major = *bytes.get(6).ok_or_else(|| bad("truncated"))?;
    let (len, start) = match major {
        1 => {
            let b: [u8; 2] = bytes
                .get(8..10)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad("truncated"))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let b: [u8; 4] = bytes
                .get(8..12)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| bad("truncated"))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(bad(&format!("unknown format version {v}"))),
    };
    let text = bytes
        .get(start..start + len)
        .ok_or_else(|| bad("truncated header"))?;
    let dict = std::str::from_utf8(text).map_err(|_| bad("the header is not text"))?;
    let descr_text = dict_value(dict, "descr").ok_or_else(|| bad("no 'descr'"))?;
    let descr = descr_text
        .strip_prefix('\'')
        .and_then(|s| s.split('\'').next())
        .ok_or_else(|| DataError::UnsupportedType {
            column: name.to_owned(),
            found: shown_descr(descr_text),
            hint: "structured arrays cannot become a tensor; save a plain numeric array".to_owned(),
        })?
        .to_owned();
    let fortran = dict_value(dict, "fortran_order").is_some_and(|v| v.starts_with("True"));
    let shape_text = dict_value(dict, "shape").ok_or_else(|| bad("no 'shape'"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("bad 'shape'"))?;
    let dims = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad("bad 'shape'"))
        })
        .collect::<Result<Vec<_>>>()?;
    let (rows, cols) = match dims.as_slice() {
        [n] => (*n, 1),
        [n, m] => (*n, *m),
        other => {
            return Err(DataError::InvalidArgument(format!(
                "{name}: a {}-dimensional array; .npy sources are 1-D (one column) or 2-D",
                other.len()
            )));
        }
    };
    let unsupported = || DataError::UnsupportedType {
        column: name.to_owned(),
        found: descr.clone(),
        hint: "only bool, integer and float arrays can become a tensor".to_owned(),
    };
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unsupported)?;
    let kind = match chars.next() {
        Some('f') => Kind::Float,
        Some('i') => Kind::Int,
        Some('u') => Kind::UInt,
        Some('b') => Kind::Bool,
        _ => return Err(unsupported()),
    };
    let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
    let ok = match kind {
        Kind::Float => matches!(size, 4 | 8),
        Kind::Int | Kind::UInt => matches!(size, 1 | 2 | 4 | 8),
        Kind::Bool => size == 1,
    };
    if !ok {
        return Err(unsupported());
    }
    let big_endian = order == '>' || (order == '=' && cfg!(target_endian = "big"));
    Ok(Header {
        kind,
        size,
        big_endian,
        fortran,
        rows,
        cols,
        data_offset: start + len,
        descr,
    })
}

fn map_array(path: &Path) -> Result<NpyArray> {
    let file = files::open(path)?;
    let name = files::display_name(path);
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    if len == 0 {
        return Err(corrupt(&name, "not a valid .npy file: it is empty"));
    }
    // SAFETY: the mapping is private (copy-on-write), so our own writes never reach the
    // file; the remaining hazard, another process truncating the file while it is mapped, is
    // the documented contract of every memory-mapped reader (numpy's `mmap_mode` included),
    // and every access below is bounds-checked against the length checked here.
    let map = unsafe { MmapOptions::new().map_copy(&file) }.map_err(|e| DataError::io(path, e))?;
    let header = parse_header(&map, &name)?;
    let needed = header
        .rows
        .checked_mul(header.cols)
        .and_then(|n| n.checked_mul(header.size))
        .and_then(|n| n.checked_add(header.data_offset))
        .ok_or_else(|| corrupt(&name, "the shape overflows"))?;
    if map.len() < needed {
        return Err(corrupt(
            &name,
            format!(
                "truncated: the header promises {needed} bytes, the file has {}",
                map.len()
            ),
        ));
    }
    let offset = header.data_offset;
    Ok(NpyArray {
        name,
        header,
        data: Arc::new(MappedFile { map, offset }),
    })
}

impl NpyArray {
    /// Element `(r, c)` as f64, for messages (exact for every type but 64-bit integers
    /// above 2^53).
    #[inline]
    fn get(&self, r: usize, c: usize) -> f64 {
        self.get_raw(r, c).map_or(f64::NAN, |raw| match raw {
            Raw::F(v) => v,
            Raw::I(v) => v as f64,
            Raw::U(v) => v as f64,
        })
    }

    /// Element `(r, c)` rounded once to `F` (64-bit integers directly, not through f64).
    #[inline]
    fn get_as<F: OutFloat>(&self, r: usize, c: usize) -> F {
        self.get_raw(r, c)
            .map_or(F::from_f64(f64::NAN), |raw| match raw {
                Raw::F(v) => F::from_f64(v),
                Raw::I(v) => F::from_i64(v),
                Raw::U(v) => F::from_u64(v),
            })
    }

    #[inline]
    fn get_int(&self, r: usize, c: usize) -> Option<i64> {
        match self.get_raw(r, c)? {
            Raw::F(v) => int_from_f64(v),
            Raw::I(v) => Some(v),
            Raw::U(v) => i64::try_from(v).ok(),
        }
    }

    #[inline]
    fn get_raw(&self, r: usize, c: usize) -> Option<Raw> {
        let h = &self.header;
        let index = if h.fortran {
            c * h.rows + r
        } else {
            r * h.cols + c
        };
        let at = index * h.size;
        let b = self.data.bytes().get(at..at + h.size)?;
        let mut buf = [0u8; 8];
        buf.get_mut(..h.size)?.copy_from_slice(b);
        if h.big_endian {
            buf.get_mut(..h.size)?.reverse();
        }
        let word = u64::from_le_bytes(buf);
        let sign_extend = |bits: usize| -> i64 {
            let shift = 64 - bits;
            ((word << shift) as i64) >> shift
        };
        Some(match (h.kind, h.size) {
            (Kind::Float, 4) => Raw::F(f64::from(f32::from_bits(word as u32))),
            (Kind::Float, _) => Raw::F(f64::from_bits(word)),
            (Kind::Int, n) => Raw::I(sign_extend(n * 8)),
            (Kind::UInt | Kind::Bool, _) => Raw::U(word),
        })
    }

    fn native(&self, dtype: DType) -> bool {
        let h = &self.header;
        !h.big_endian
            && !h.fortran
            && match dtype {
                DType::Float32 => h.kind == Kind::Float && h.size == 4,
                DType::Float64 => h.kind == Kind::Float && h.size == 8,
                DType::Int64 => h.kind == Kind::Int && h.size == 8,
                _ => false,
            }
    }
}

enum Raw {
    F(f64),
    I(i64),
    U(u64),
}

impl NpySource {
    /// Maps `path` (and the labels file), checks shapes, resolves columns (named `"0"`,
    /// `"1"`...).
    pub fn open(path: &Path, options: &NpyOptions) -> Result<Self> {
        let array = map_array(path)?;
        let names: Vec<String> = (0..array.header.cols).map(|i| i.to_string()).collect();
        let labels = match &options.labels_path {
            Some(p) => {
                if !options.columns.labels.is_empty() {
                    return Err(DataError::InvalidArgument(
                        "give labels either as a column (label=) or as a file (labels=), not both"
                            .to_owned(),
                    ));
                }
                let labels = map_array(p)?;
                if labels.header.rows != array.header.rows {
                    return Err(DataError::Schema(format!(
                        "{} has {} rows but {} has {}",
                        array.name, array.header.rows, labels.name, labels.header.rows
                    )));
                }
                Some(labels)
            }
            None => None,
        };
        let mut plan = columns::resolve(&names, &options.columns)?;
        if let Some(l) = &labels {
            plan.schema.label_names = (0..l.header.cols).map(|i| format!("label{i}")).collect();
        }
        let row_bytes = (array.header.cols * array.header.size).max(1);
        let rows_per_chunk = (CHUNK_BYTES / row_bytes).max(1);
        let n = array.header.rows;
        let infos = (0..n.div_ceil(rows_per_chunk))
            .map(|i| {
                let rows = rows_per_chunk.min(n - i * rows_per_chunk);
                ChunkInfo {
                    file: array.name.clone(),
                    rows: Some(rows as u64),
                    bytes: (rows * row_bytes) as u64,
                }
            })
            .collect();
        Ok(Self {
            array,
            labels,
            infos,
            rows_per_chunk,
            plan,
        })
    }

    fn write<F: OutFloat>(&self, out: &mut [F], r0: usize, rows: usize) {
        let nf = self.plan.feature_cols.len();
        if nf == 0 {
            return;
        }
        for (i, row) in out.chunks_exact_mut(nf).take(rows).enumerate() {
            for (slot, &c) in row.iter_mut().zip(&self.plan.feature_cols) {
                *slot = self.array.get_as(r0 + i, c);
            }
        }
    }

    /// Label columns: (array, column) pairs in output order.
    fn label_columns(&self) -> Vec<(&NpyArray, usize)> {
        match &self.labels {
            Some(l) => (0..l.header.cols).map(|c| (l, c)).collect(),
            None => self
                .plan
                .label_cols
                .iter()
                .map(|&c| (&self.array, c))
                .collect(),
        }
    }

    fn write_labels(&self, out: &mut RowsMut<'_>, r0: usize, rows: usize) -> Result<()> {
        let cols = self.label_columns();
        let nl = cols.len();
        if nl == 0 {
            return Ok(());
        }
        match out {
            RowsMut::I64(s) => {
                for (i, row) in s.chunks_exact_mut(nl).take(rows).enumerate() {
                    for (slot, &(a, c)) in row.iter_mut().zip(&cols) {
                        *slot = a.get_int(r0 + i, c).ok_or_else(|| DataError::Parse {
                            file: a.name.to_string(),
                            at: RecordAt::Row((r0 + i) as u64),
                            column: c.to_string(),
                            text: a.get(r0 + i, c).to_string(),
                            expected:
                                "an integer label (pass label_dtype=\"float32\" for float labels)"
                                    .to_owned(),
                        })?;
                    }
                }
            }
            RowsMut::F32(s) => {
                for (i, row) in s.chunks_exact_mut(nl).take(rows).enumerate() {
                    for (slot, &(a, c)) in row.iter_mut().zip(&cols) {
                        *slot = a.get_as::<f32>(r0 + i, c);
                    }
                }
            }
            RowsMut::F64(s) => {
                for (i, row) in s.chunks_exact_mut(nl).take(rows).enumerate() {
                    for (slot, &(a, c)) in row.iter_mut().zip(&cols) {
                        *slot = a.get_as::<f64>(r0 + i, c);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Source for NpySource {
    fn schema(&self) -> &Schema {
        &self.plan.schema
    }

    fn chunks(&self) -> &[ChunkInfo] {
        &self.infos
    }

    fn count_rows(&self, chunk: usize, _ctx: ReadContext<'_>) -> Result<u64> {
        self.infos
            .get(chunk)
            .and_then(|i| i.rows)
            .ok_or_else(|| DataError::InvalidArgument(format!("chunk {chunk} out of range")))
    }

    fn read_into(
        &self,
        chunk: usize,
        mut dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        ctx.cancel.check()?;
        let rows = self.count_rows(chunk, ctx)? as usize;
        check_destination(&self.plan.schema, &dest, rows as u64)?;
        let t0 = Instant::now();
        let r0 = chunk * self.rows_per_chunk;
        match &mut dest.features {
            RowsMut::F32(s) => self.write(s, r0, rows),
            RowsMut::F64(s) => self.write(s, r0, rows),
            RowsMut::I64(_) => {
                return Err(DataError::InvalidArgument(
                    "features are float32 or float64".to_owned(),
                ));
            }
        }
        if let Some(l) = dest.labels.as_mut() {
            self.write_labels(l, r0, rows)?;
        }
        Ok(ChunkReport {
            rows,
            skipped: Vec::new(),
            bytes_read: self.infos.get(chunk).map_or(0, |i| i.bytes),
            read_time: std::time::Duration::ZERO,
            parse_time: t0.elapsed(),
        })
    }

    fn resident(&self) -> Option<Dataset> {
        let h = &self.array.header;
        let all_features =
            self.plan.label_cols.is_empty() && self.plan.feature_cols.iter().copied().eq(0..h.cols);
        if !all_features || !self.array.native(self.plan.schema.feature_dtype) {
            return None;
        }
        let features = Matrix::Shared {
            owner: self.array.data.clone(),
            dtype: self.plan.schema.feature_dtype,
            rows: h.rows,
            cols: h.cols,
        };
        let labels = match &self.labels {
            None => None,
            Some(l) if l.native(self.plan.schema.label_dtype) => Some(Matrix::Shared {
                owner: l.data.clone(),
                dtype: self.plan.schema.label_dtype,
                rows: l.header.rows,
                cols: l.header.cols,
            }),
            Some(l) => {
                let shape = [l.header.rows, l.header.cols];
                let mut m = match self.plan.schema.label_dtype {
                    DType::Int64 => Matrix::I64(OwnedTensor::zeros(&shape).ok()?),
                    DType::Float32 => Matrix::F32(OwnedTensor::zeros(&shape).ok()?),
                    _ => Matrix::F64(OwnedTensor::zeros(&shape).ok()?),
                };
                let mut rows = match &mut m {
                    Matrix::I64(t) => RowsMut::I64(t.as_mut_slice()),
                    Matrix::F32(t) => RowsMut::F32(t.as_mut_slice()),
                    Matrix::F64(t) => RowsMut::F64(t.as_mut_slice()),
                    Matrix::Shared { .. } => return None,
                };
                self.write_labels(&mut rows, 0, l.header.rows).ok()?;
                Some(m)
            }
        };
        Some(Dataset {
            features,
            labels,
            stats: ReadStats {
                rows: h.rows as u64,
                ..ReadStats::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(dict: &str) -> Vec<u8> {
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out
    }

    #[test]
    fn structured_descr_is_shown_whole_or_shortened() {
        let header_rest = "[('a', '<f4'), ('b', '<i8')], 'fortran_order': False, }";
        assert_eq!(shown_descr(header_rest), "[('a', '<f4'), ('b', '<i8')]");
        let long = format!("[{}], 'shape': (3,), }}", "('field', '<f8'), ".repeat(20));
        let shown = shown_descr(&long);
        assert_eq!(shown.chars().count(), 80);
        assert!(shown.starts_with("[('field', '<f8')") && shown.ends_with("..."));
        assert_eq!(shown_descr("<f4, 'shape'"), "<f4");
    }

    #[test]
    fn headers() {
        let h = parse_header(
            &header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"),
            "x",
        )
        .unwrap();
        assert_eq!(
            (h.kind, h.size, h.rows, h.cols, h.fortran, h.big_endian),
            (Kind::Float, 4, 3, 2, false, false)
        );
        let h = parse_header(
            &header("{'descr': '>i8', 'fortran_order': True, 'shape': (5,), }"),
            "x",
        )
        .unwrap();
        assert_eq!(
            (h.kind, h.rows, h.cols, h.fortran, h.big_endian),
            (Kind::Int, 5, 1, true, true)
        );
        assert!(
            parse_header(
                &header("{'descr': '|O', 'fortran_order': False, 'shape': (5,), }"),
                "x"
            )
            .is_err()
        );
        assert!(
            parse_header(
                &header("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }"),
                "x"
            )
            .is_err()
        );
        assert!(parse_header(b"garbage", "x").is_err());
    }
}

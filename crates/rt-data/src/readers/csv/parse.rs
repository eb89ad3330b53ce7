//! Decoding CSV records straight into row-major destination rows.
//!
//! The hot path reads a numeric feature field with [`DecimalScanner`], which stops at
//! the first byte that is not part of the number: when that byte is the delimiter or the end
//! of the line, the field is done without any separate search for its end, no copy and no
//! allocation. Every other field (quoted, empty, NA, exponent, label, skipped column...) goes
//! through [`scan_field`], which finds its end with `memchr` and unescapes quoted text into a
//! reused scratch buffer.

use std::sync::Arc;

use super::decimal_simd::DecimalScanner;
use super::number::{Decimal, FieldValue, NaValues};
use super::plan::Dialect;
use crate::error::{DataError, RecordAt, Result};
use crate::options::MissingPolicy;
use crate::readers::columns::{Role, missing_float, missing_int};
use crate::source::{ReadContext, RowsMut, SkippedRow};

/// A float output element.
pub trait OutFloat: Copy + Send + Sync + 'static {
    /// `v` rounded to this type (parsing goes through f64, so float32 results equal
    /// `numpy.float32(float(text))`, which is what pandas followed by a cast gives).
    fn from_f64(v: f64) -> Self;

    /// A scanned decimal, with the same result as `from_f64(d.to_f64())`.
    fn from_decimal(d: Decimal) -> Self;

    /// `v` rounded once to this type, as NumPy's `astype` does (through f64 it would be
    /// rounded twice above 2^53, and could differ in the last bit).
    fn from_i64(v: i64) -> Self;

    /// [`OutFloat::from_i64`] for unsigned integers.
    fn from_u64(v: u64) -> Self;
}

impl OutFloat for f32 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }

    #[inline(always)]
    fn from_decimal(d: Decimal) -> Self {
        d.to_f32()
    }

    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as f32
    }

    #[inline(always)]
    fn from_u64(v: u64) -> Self {
        v as f32
    }
}

impl OutFloat for f64 {
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }

    #[inline(always)]
    fn from_decimal(d: Decimal) -> Self {
        d.to_f64()
    }

    #[inline(always)]
    fn from_i64(v: i64) -> Self {
        v as f64
    }

    #[inline(always)]
    fn from_u64(v: u64) -> Self {
        v as f64
    }
}

/// What every chunk of one CSV source shares.
#[derive(Debug)]
pub struct Layout<'s> {
    /// Delimiter, quote, comment.
    pub dialect: Dialect,
    /// Role of each input column.
    pub roles: &'s [Role],
    /// Name of each input column, for messages.
    pub names: &'s [String],
    /// NA strings.
    pub na: &'s NaValues,
    /// What missing values become.
    pub missing: MissingPolicy,
    /// The file, for messages.
    pub file: &'s Arc<str>,
    /// Width of a features row.
    pub num_features: usize,
    /// Width of a labels row.
    pub num_labels: usize,
    /// Codes of text columns under `categorical="codes"`, by input column (empty: none).
    pub codes: &'s [Option<std::collections::HashMap<Vec<u8>, i64>>],
}

/// How a field ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    /// At a delimiter: another field follows.
    Delimiter,
    /// At a newline: the record is done.
    Newline,
    /// At the end of the data: the record is done.
    End,
}

/// Where a field's text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// `buf[start..end]`.
    Buf(usize, usize),
    /// The scratch buffer (a quoted field, unescaped).
    Scratch,
}

/// One scanned field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Its text.
    pub text: Text,
    /// How it ended.
    pub term: Term,
    /// Offset after its terminator.
    pub next: usize,
    /// Newlines inside it (quoted fields), not counting a terminating newline.
    pub newlines: u64,
}

/// The end of an unquoted field starting at `p`: `(end of text, terminator, next offset)`,
/// or `None` when more bytes are needed.
#[inline]
fn find_end(buf: &[u8], p: usize, at_eof: bool, d: Dialect) -> Option<(usize, Term, usize)> {
    let hay = buf.get(p..).unwrap_or_default();
    let hit = match d.comment {
        Some(c) => memchr::memchr3(d.delimiter, b'\n', c, hay),
        None => memchr::memchr2(d.delimiter, b'\n', hay),
    };
    let strip_cr = |end: usize| {
        if end > p && buf.get(end - 1) == Some(&b'\r') {
            end - 1
        } else {
            end
        }
    };
    let Some(o) = hit else {
        return at_eof.then(|| (strip_cr(buf.len()), Term::End, buf.len()));
    };
    let e = p + o;
    match buf.get(e) {
        Some(&b) if b == d.delimiter => Some((e, Term::Delimiter, e + 1)),
        Some(b'\n') => Some((strip_cr(e), Term::Newline, e + 1)),
        // The comment character: the rest of the line is not data.
        _ => match memchr::memchr(b'\n', buf.get(e..).unwrap_or_default()) {
            Some(o2) => Some((e, Term::Newline, e + o2 + 1)),
            None => at_eof.then_some((e, Term::End, buf.len())),
        },
    }
}

/// Scans the field at `pos`. `Ok(None)`: more bytes needed. With `strict`, a quote character
/// inside an unquoted field is an error (it would break the parallel split's quote parity).
pub fn scan_field(
    buf: &[u8],
    pos: usize,
    at_eof: bool,
    d: Dialect,
    scratch: &mut Vec<u8>,
    strict: bool,
) -> std::result::Result<Option<Scanned>, &'static str> {
    let quote = match d.quote {
        Some(q) if buf.get(pos) == Some(&q) => q,
        _ => {
            let Some((end, term, next)) = find_end(buf, pos, at_eof, d) else {
                return Ok(None);
            };
            let stray = d.quote.is_some_and(|q| {
                memchr::memchr(q, buf.get(pos..end).unwrap_or_default()).is_some()
            });
            if strict && stray {
                return Err(
                    "a quote character inside an unquoted field (quote the whole field, RFC 4180)",
                );
            }
            return Ok(Some(Scanned {
                text: Text::Buf(pos, end),
                term,
                next,
                newlines: 0,
            }));
        }
    };
    scratch.clear();
    let mut p = pos + 1;
    let mut newlines = 0u64;
    loop {
        let hay = buf.get(p..).unwrap_or_default();
        let Some(o) = memchr::memchr(quote, hay) else {
            return if at_eof {
                Err("a quoted field is not closed before the end of the data")
            } else {
                Ok(None)
            };
        };
        let segment = hay.get(..o).unwrap_or_default();
        newlines += memchr::memchr_iter(b'\n', segment).count() as u64;
        scratch.extend_from_slice(segment);
        let q = p + o;
        match buf.get(q + 1) {
            Some(&b) if b == quote => {
                scratch.push(quote);
                p = q + 2;
            }
            None if !at_eof => return Ok(None),
            _ => {
                p = q + 1;
                break;
            }
        }
    }
    // Text after the closing quote joins the field, as csv-core and pandas do.
    let Some((end, term, next)) = find_end(buf, p, at_eof, d) else {
        return Ok(None);
    };
    scratch.extend_from_slice(buf.get(p..end).unwrap_or_default());
    Ok(Some(Scanned {
        text: Text::Scratch,
        term,
        next,
        newlines,
    }))
}

/// The end of the record at `pos` (offset after it, physical lines it spans), tolerant of
/// anything; `None` when more bytes are needed.
pub fn skip_record(
    buf: &[u8],
    mut pos: usize,
    at_eof: bool,
    d: Dialect,
    scratch: &mut Vec<u8>,
) -> Option<(usize, u64, usize)> {
    let mut newlines = 0;
    let mut fields = 0;
    loop {
        let s = match scan_field(buf, pos, at_eof, d, scratch, false) {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            // Unclosed quote at the end of the data: the record runs to the end.
            Err(_) => return Some((buf.len(), newlines, fields + 1)),
        };
        fields += 1;
        newlines += s.newlines;
        match s.term {
            Term::Delimiter => pos = s.next,
            Term::Newline => return Some((s.next, newlines + 1, fields)),
            Term::End => return Some((s.next, newlines, fields)),
        }
    }
}

/// A record that could not be decoded, before it is raised or skipped.
fn truncate(text: &[u8]) -> String {
    const MAX: usize = 80;
    let shown =
        String::from_utf8_lossy(text.get(..MAX.min(text.len())).unwrap_or_default()).into_owned();
    if text.len() > MAX {
        format!("{shown}...")
    } else {
        shown
    }
}

/// Decodes records into `[capacity, num_features]` (and labels) row-major buffers.
#[derive(Debug)]
pub struct RowWriter<'a, 's, F> {
    layout: &'s Layout<'s>,
    features: &'a mut [F],
    labels: Option<RowsMut<'a>>,
    capacity: usize,
    scratch: Vec<u8>,
    /// Reads the common numeric fields (vector instructions where available).
    decimals: DecimalScanner,
    /// Rows written.
    pub rows: usize,
    /// Rows skipped under `on_error="skip"`.
    pub skipped: Vec<SkippedRow>,
}

enum Step {
    /// Offset after the record, physical lines it spans.
    Done(usize, u64),
    Incomplete,
}

impl<'a, 's, F: OutFloat> RowWriter<'a, 's, F> {
    /// A writer into `features` (and `labels`) for up to `capacity` rows.
    pub fn new(
        layout: &'s Layout<'s>,
        features: &'a mut [F],
        labels: Option<RowsMut<'a>>,
        capacity: usize,
    ) -> Self {
        Self {
            layout,
            features,
            labels,
            capacity,
            scratch: Vec::new(),
            decimals: DecimalScanner::current(),
            rows: 0,
            skipped: Vec::new(),
        }
    }

    /// Decodes the complete records of `buf` (all of it when `at_eof`); returns the offset
    /// of the first byte not consumed (the start of an incomplete record). `line` is the
    /// physical line at `buf[0]` and is advanced past what was consumed.
    pub fn parse_block(
        &mut self,
        buf: &[u8],
        at_eof: bool,
        line: &mut u64,
        ctx: ReadContext<'_>,
    ) -> Result<usize> {
        #[cfg(target_arch = "x86_64")]
        if self.decimals.is_vector() {
            // SAFETY: the scanner chose its vector path only after detecting SSSE3 and
            // SSE4.1 on this CPU.
            return unsafe { self.parse_block_sse41(buf, at_eof, line, ctx) };
        }
        self.parse_block_inline(buf, at_eof, line, ctx)
    }

    /// [`Self::parse_block`] compiled with SSSE3 and SSE4.1, so that the vector decimal
    /// scanner inlines into the field loop instead of being called once per field.
    ///
    /// # Safety
    /// The CPU must support SSSE3 and SSE4.1.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "ssse3,sse4.1")]
    unsafe fn parse_block_sse41(
        &mut self,
        buf: &[u8],
        at_eof: bool,
        line: &mut u64,
        ctx: ReadContext<'_>,
    ) -> Result<usize> {
        self.parse_block_inline(buf, at_eof, line, ctx)
    }

    #[inline(always)]
    fn parse_block_inline(
        &mut self,
        buf: &[u8],
        at_eof: bool,
        line: &mut u64,
        ctx: ReadContext<'_>,
    ) -> Result<usize> {
        let d = self.layout.dialect;
        let mut pos = 0usize;
        let mut since_check = 0u32;
        while pos < buf.len() {
            // Blank and comment lines are not records.
            match buf.get(pos) {
                Some(b'\n') => {
                    pos += 1;
                    *line += 1;
                    continue;
                }
                Some(b'\r') if matches!(buf.get(pos + 1), Some(b'\n')) => {
                    pos += 2;
                    *line += 1;
                    continue;
                }
                Some(b'\r') if pos + 1 == buf.len() => {
                    if at_eof {
                        pos += 1;
                        continue;
                    }
                    return Ok(pos);
                }
                Some(&c) if Some(c) == d.comment => {
                    match memchr::memchr(b'\n', buf.get(pos..).unwrap_or_default()) {
                        Some(o) => {
                            pos += o + 1;
                            *line += 1;
                        }
                        None if at_eof => pos = buf.len(),
                        None => return Ok(pos),
                    }
                    continue;
                }
                _ => {}
            }
            since_check += 1;
            if since_check >= 1024 {
                since_check = 0;
                ctx.cancel.check()?;
            }
            if self.rows >= self.capacity {
                return Err(DataError::Corrupt {
                    file: self.layout.file.to_string(),
                    reason: format!(
                        "line {line}: more records than planned; the file changed while it was read"
                    ),
                });
            }
            match self.record(buf, pos, at_eof, *line) {
                Ok(Step::Done(next, newlines)) => {
                    self.rows += 1;
                    pos = next;
                    *line += newlines;
                }
                Ok(Step::Incomplete) => return Ok(pos),
                Err(error) => {
                    let mut scratch = std::mem::take(&mut self.scratch);
                    let end = skip_record(buf, pos, at_eof, d, &mut scratch);
                    self.scratch = scratch;
                    let Some((next, newlines, _)) = end else {
                        // Judge the record once it is complete.
                        return Ok(pos);
                    };
                    let reason = error.to_string();
                    ctx.errors.skip(error)?;
                    self.skipped.push(SkippedRow {
                        file: self.layout.file.clone(),
                        line: *line,
                        reason,
                    });
                    pos = next;
                    *line += newlines;
                }
            }
        }
        Ok(pos)
    }

    /// Decodes the record at `pos` into row `self.rows`.
    #[inline(always)]
    fn record(&mut self, buf: &[u8], mut pos: usize, at_eof: bool, line: u64) -> Result<Step> {
        let layout = self.layout;
        let d = layout.dialect;
        let ncols = layout.roles.len();
        let row = self.rows;
        let nf = layout.num_features;
        let Self {
            features,
            labels,
            scratch,
            decimals,
            ..
        } = self;
        let decimals = *decimals;
        let frow = features
            .get_mut(row * nf..(row + 1) * nf)
            .ok_or_else(|| DataError::InvalidArgument("destination too small".to_owned()))?;
        let mut col = 0usize;
        let mut newlines = 0u64;
        let fast_numbers = !layout.na.has_numeric();
        let has_codes = !layout.codes.is_empty();
        loop {
            let Some(&role) = layout.roles.get(col) else {
                // More fields than columns: count them all for the message.
                let found = match skip_record(buf, pos, at_eof, d, scratch) {
                    Some((_, _, rest)) => col + rest,
                    None => return Ok(Step::Incomplete),
                };
                return Err(DataError::Ragged {
                    file: layout.file.to_string(),
                    line,
                    expected: ncols,
                    found,
                });
            };
            let fast = match role {
                Role::Feature(k)
                    if fast_numbers
                        && buf.get(pos).copied() != d.quote
                        && !(has_codes && coded(layout, col).is_some()) =>
                {
                    buf.get(pos..)
                        .and_then(|text| decimals.scan(text))
                        .map(|(dec, n)| (k, F::from_decimal(dec), n))
                }
                _ => None,
            };
            if let Some((k, v, n)) = fast {
                let mut spare = v;
                let slot = frow.get_mut(k).unwrap_or(&mut spare);
                let t = pos + n;
                match buf.get(t) {
                    Some(&c) if c == d.delimiter => {
                        *slot = v;
                        pos = t + 1;
                        col += 1;
                        continue;
                    }
                    Some(b'\n') => {
                        *slot = v;
                        return finish(layout, line, col + 1, t + 1, newlines + 1);
                    }
                    Some(b'\r') if buf.get(t + 1) == Some(&b'\n') => {
                        *slot = v;
                        return finish(layout, line, col + 1, t + 2, newlines + 1);
                    }
                    None if at_eof => {
                        *slot = v;
                        return finish(layout, line, col + 1, t, newlines);
                    }
                    None => return Ok(Step::Incomplete),
                    _ => {}
                }
            }
            let scanned = match scan_field(buf, pos, at_eof, d, scratch, true) {
                Ok(Some(s)) => s,
                Ok(None) => return Ok(Step::Incomplete),
                Err(reason) => {
                    return Err(DataError::Parse {
                        file: layout.file.to_string(),
                        at: RecordAt::Line(line),
                        column: column_name(layout, col),
                        text: truncate(buf.get(pos..).unwrap_or_default()),
                        expected: reason.to_owned(),
                    });
                }
            };
            let text: &[u8] = match scanned.text {
                Text::Buf(a, b) => buf.get(a..b).unwrap_or_default(),
                Text::Scratch => scratch,
            };
            let code = match coded(layout, col) {
                Some(codes) if has_codes => Some(code_of(layout, codes, text, line, col)?),
                _ => None,
            };
            match (role, code) {
                (Role::Skip, _) => {}
                (Role::Feature(k), Some(code)) => {
                    let v = match code {
                        Some(c) => c as f64,
                        None => missing_float(layout.missing, || missing_error(layout, line, col))?,
                    };
                    if let Some(slot) = frow.get_mut(k) {
                        *slot = F::from_f64(v);
                    }
                }
                (Role::Label(k), Some(code)) => {
                    store_code(layout, labels, row, k, code, line, col)?;
                }
                (Role::Feature(k), None) => {
                    let v = match layout.na.parse_float(text) {
                        FieldValue::Number(v) => v,
                        FieldValue::Missing => {
                            missing_float(layout.missing, || missing_error(layout, line, col))?
                        }
                        FieldValue::Invalid => {
                            return Err(parse_error(layout, line, col, text, "a float"));
                        }
                    };
                    if let Some(slot) = frow.get_mut(k) {
                        *slot = F::from_f64(v);
                    }
                }
                (Role::Label(k), None) => {
                    store_label(layout, labels, row, k, text, line, col)?;
                }
            }
            newlines += scanned.newlines;
            col += 1;
            match scanned.term {
                Term::Delimiter => pos = scanned.next,
                Term::Newline => return finish(layout, line, col, scanned.next, newlines + 1),
                Term::End => return finish(layout, line, col, scanned.next, newlines),
            }
        }
    }
}

#[inline]
fn finish(
    layout: &Layout<'_>,
    line: u64,
    found: usize,
    next: usize,
    newlines: u64,
) -> Result<Step> {
    if found != layout.roles.len() {
        return Err(DataError::Ragged {
            file: layout.file.to_string(),
            line,
            expected: layout.roles.len(),
            found,
        });
    }
    Ok(Step::Done(next, newlines))
}

/// The codes of input column `col` when it is a coded text column.
#[inline]
fn coded<'a>(
    layout: &'a Layout<'_>,
    col: usize,
) -> Option<&'a std::collections::HashMap<Vec<u8>, i64>> {
    layout.codes.get(col).and_then(Option::as_ref)
}

/// The code of `text` (`None` for a missing value).
fn code_of(
    layout: &Layout<'_>,
    codes: &std::collections::HashMap<Vec<u8>, i64>,
    text: &[u8],
    line: u64,
    col: usize,
) -> Result<Option<i64>> {
    if layout.na.contains(text) {
        return Ok(None);
    }
    codes.get(text).copied().map(Some).ok_or_else(|| {
        parse_error(
            layout,
            line,
            col,
            text,
            "a category seen when the file was opened",
        )
    })
}

/// Stores a category code (or a missing value) as label `k` of `row`.
fn store_code(
    layout: &Layout<'_>,
    labels: &mut Option<RowsMut<'_>>,
    row: usize,
    k: usize,
    code: Option<i64>,
    line: u64,
    col: usize,
) -> Result<()> {
    let at = row * layout.num_labels + k;
    let float = || match code {
        Some(c) => Ok(c as f64),
        None => missing_float(layout.missing, || missing_error(layout, line, col)),
    };
    match labels {
        Some(RowsMut::I64(out)) => {
            let v = match code {
                Some(c) => c,
                None => missing_int(layout.missing, || missing_error(layout, line, col))?,
            };
            if let Some(slot) = out.get_mut(at) {
                *slot = v;
            }
        }
        Some(RowsMut::F32(out)) => {
            let v = float()?;
            if let Some(slot) = out.get_mut(at) {
                *slot = v as f32;
            }
        }
        Some(RowsMut::F64(out)) => {
            let v = float()?;
            if let Some(slot) = out.get_mut(at) {
                *slot = v;
            }
        }
        None => {}
    }
    Ok(())
}

fn column_name(layout: &Layout<'_>, col: usize) -> String {
    layout
        .names
        .get(col)
        .cloned()
        .unwrap_or_else(|| col.to_string())
}

fn missing_error(layout: &Layout<'_>, line: u64, col: usize) -> DataError {
    DataError::Missing {
        file: layout.file.to_string(),
        at: RecordAt::Line(line),
        column: column_name(layout, col),
    }
}

fn parse_error(
    layout: &Layout<'_>,
    line: u64,
    col: usize,
    text: &[u8],
    expected: &str,
) -> DataError {
    DataError::Parse {
        file: layout.file.to_string(),
        at: RecordAt::Line(line),
        column: column_name(layout, col),
        text: truncate(text),
        expected: expected.to_owned(),
    }
}

fn store_label(
    layout: &Layout<'_>,
    labels: &mut Option<RowsMut<'_>>,
    row: usize,
    k: usize,
    text: &[u8],
    line: u64,
    col: usize,
) -> Result<()> {
    let at = row * layout.num_labels + k;
    let float = || match layout.na.parse_float(text) {
        FieldValue::Number(v) => Ok(v),
        FieldValue::Missing => missing_float(layout.missing, || missing_error(layout, line, col)),
        FieldValue::Invalid => Err(parse_error(layout, line, col, text, "a float label")),
    };
    match labels {
        Some(RowsMut::I64(out)) => {
            let v = match layout.na.parse_int(text) {
                FieldValue::Number(v) => v,
                FieldValue::Missing => {
                    missing_int(layout.missing, || missing_error(layout, line, col))?
                }
                FieldValue::Invalid => {
                    return Err(parse_error(layout, line, col, text, "an integer label"));
                }
            };
            if let Some(slot) = out.get_mut(at) {
                *slot = v;
            }
        }
        Some(RowsMut::F32(out)) => {
            let v = float()?;
            if let Some(slot) = out.get_mut(at) {
                *slot = v as f32;
            }
        }
        Some(RowsMut::F64(out)) => {
            let v = float()?;
            if let Some(slot) = out.get_mut(at) {
                *slot = v;
            }
        }
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::OnError;
    use crate::source::ErrorBudget;
    use rt_view::cancel::CancelToken;

    type Parsed = (Vec<f64>, Vec<i64>, usize, Vec<SkippedRow>);

    fn parse(text: &[u8], roles: &[Role], nf: usize, nl: usize, policy: OnError) -> Result<Parsed> {
        let names: Vec<String> = (0..roles.len()).map(|i| format!("c{i}")).collect();
        let na = NaValues::new(None);
        let file: Arc<str> = Arc::from("t.csv");
        let layout = Layout {
            dialect: Dialect {
                delimiter: b',',
                quote: Some(b'"'),
                comment: Some(b'#'),
            },
            roles,
            names: &names,
            na: &na,
            missing: MissingPolicy::Nan,
            file: &file,
            num_features: nf,
            num_labels: nl,
            codes: &[],
        };
        let cap = 16;
        let mut feats = vec![0f64; cap * nf];
        let mut labs = vec![0i64; cap * nl];
        let cancel = CancelToken::new();
        let errors = ErrorBudget::new(policy);
        let ctx = ReadContext {
            cancel: &cancel,
            errors: &errors,
        };
        let mut w = RowWriter::new(
            &layout,
            &mut feats,
            (nl > 0).then(|| RowsMut::I64(&mut labs)),
            cap,
        );
        let mut line = 1;
        let used = w.parse_block(text, true, &mut line, ctx)?;
        assert_eq!(used, text.len());
        let (rows, skipped) = (w.rows, w.skipped);
        Ok((feats, labs, rows, skipped))
    }

    const FL: [Role; 3] = [Role::Feature(0), Role::Label(0), Role::Feature(1)];

    #[test]
    fn quoted_crlf_comments_missing() {
        let text = b"1.5,2,\"3\"\r\n# skip\n\n\"-4e1\",\"5\",NA\n7,8,9 # tail\n";
        let (f, l, rows, _) = parse(text, &FL, 2, 1, OnError::Raise).unwrap();
        assert_eq!(rows, 3);
        assert_eq!(&f[..2], &[1.5, 3.0]);
        assert_eq!(f[2], -40.0);
        assert!(f[3].is_nan());
        assert_eq!(&f[4..6], &[7.0, 9.0]);
        assert_eq!(&l[..3], &[2, 5, 8]);
    }

    #[test]
    fn ragged_and_bad_numbers_name_the_place() {
        let err = parse(b"1,2,3\n4,5\n", &FL, 2, 1, OnError::Raise)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.csv:2") && err.contains("expected 3 fields, found 2"),
            "{err}"
        );
        let err = parse(b"1,2,3\n\n4,5,6,7\n", &FL, 2, 1, OnError::Raise)
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.csv:3") && err.contains("found 4"), "{err}");
        let err = parse(b"1,2.5,3\n", &FL, 2, 1, OnError::Raise)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"c1\"") && err.contains("2.5") && err.contains("integer"),
            "{err}"
        );
        let err = parse(b"1,2,x\"y\n", &FL, 2, 1, OnError::Raise)
            .unwrap_err()
            .to_string();
        assert!(err.contains("quote"), "{err}");
    }

    #[test]
    fn skip_keeps_order_and_lines() {
        let text = b"1,1,1\nbad,2,2\n3,\"3\n\",3\n4,4\n5,5,5\n";
        let (f, l, rows, skipped) =
            parse(text, &FL, 2, 1, OnError::Skip { max_errors: None }).unwrap();
        assert_eq!(rows, 2);
        assert_eq!(&l[..2], &[1, 5]);
        assert_eq!(&f[..4], &[1.0, 1.0, 5.0, 5.0]);
        let lines: Vec<u64> = skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 3, 5]);
        let err = parse(
            text,
            &FL,
            2,
            1,
            OnError::Skip {
                max_errors: Some(2),
            },
        )
        .unwrap_err();
        assert!(matches!(err, DataError::TooManyErrors { .. }));
    }

    #[test]
    fn incomplete_records_wait_for_more_bytes() {
        let names: Vec<String> = vec!["a".into()];
        let na = NaValues::new(None);
        let file: Arc<str> = Arc::from("t.csv");
        let roles = [Role::Feature(0)];
        let layout = Layout {
            dialect: Dialect {
                delimiter: b',',
                quote: Some(b'"'),
                comment: None,
            },
            roles: &roles,
            names: &names,
            na: &na,
            missing: MissingPolicy::Raise,
            file: &file,
            num_features: 1,
            num_labels: 0,
            codes: &[],
        };
        let mut out = vec![0f32; 4];
        let cancel = CancelToken::new();
        let errors = ErrorBudget::new(OnError::Raise);
        let ctx = ReadContext {
            cancel: &cancel,
            errors: &errors,
        };
        let mut w = RowWriter::new(&layout, &mut out, None, 4);
        let mut line = 1;
        assert_eq!(
            w.parse_block(b"1\n2\n\"3", false, &mut line, ctx).unwrap(),
            4
        );
        assert_eq!(line, 3);
        assert_eq!(w.parse_block(b"\"3\"\n4", true, &mut line, ctx).unwrap(), 5);
        assert_eq!(out, vec![1.0, 2.0, 3.0, 4.0]);
    }
}

#[cfg(test)]
mod bench {
    //! `cargo test --release -p rt-data parse_speed -- --ignored --nocapture`: nanoseconds per
    //! field of the decoder alone on benchmark-shaped rows (minimum of several runs, so that
    //! other load on the machine matters less).

    use super::*;
    use crate::options::OnError;
    use crate::source::ErrorBudget;
    use rt_view::cancel::CancelToken;

    #[test]
    #[ignore = "a measurement, not a check"]
    fn parse_speed() {
        let (rows, cols) = (20_000usize, 100usize);
        let mut text = String::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..rows {
            for c in 0..cols {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let v = (x % 4_000_000) as f64 / 1e6 - 2.0;
                text.push_str(&format!("{}", v as f32));
                text.push(if c + 1 == cols { '\n' } else { ',' });
            }
        }
        let names: Vec<String> = (0..cols).map(|i| i.to_string()).collect();
        let roles: Vec<Role> = (0..cols).map(Role::Feature).collect();
        let na = NaValues::new(None);
        let file: Arc<str> = Arc::from("bench.csv");
        let layout = Layout {
            dialect: Dialect {
                delimiter: b',',
                quote: Some(b'"'),
                comment: None,
            },
            roles: &roles,
            names: &names,
            na: &na,
            missing: MissingPolicy::Raise,
            file: &file,
            num_features: cols,
            num_labels: 0,
            codes: &[],
        };
        let mut out = vec![0f32; rows * cols];
        let cancel = CancelToken::new();
        let errors = ErrorBudget::new(OnError::Raise);
        let ctx = ReadContext {
            cancel: &cancel,
            errors: &errors,
        };
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            let mut w = RowWriter::new(&layout, &mut out, None, rows);
            let mut line = 1;
            let t = std::time::Instant::now();
            w.parse_block(text.as_bytes(), true, &mut line, ctx)
                .unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            assert_eq!(w.rows, rows);
        }
        println!(
            "{:.2} ns/field, {:.0} MB/s ({} bytes)",
            best * 1e9 / (rows * cols) as f64,
            text.len() as f64 / best / 1e6,
            text.len()
        );
    }
}

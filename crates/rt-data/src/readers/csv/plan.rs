//! Cutting a CSV file into byte ranges that start on record boundaries, in parallel, correctly
//! even when quoted fields contain newlines.
//!
//! # Why quote parity works
//!
//! Under RFC 4180 a quote character appears only at the start of a field, at its end, or
//! doubled inside a quoted field. Every one of them toggles "inside quotes" (a doubled quote
//! toggles twice), so a newline at offset `p` ends a record exactly when the number of quote
//! characters between the start of the data and `p` is even.
//!
//! The data is cut into fixed windows. Each window is scanned on its own, in parallel, and
//! counts its newlines under both hypotheses for the parity at its start (even: outside quotes,
//! odd: inside), plus its own quote parity. A cheap sequential pass then chains the windows:
//! the parity at the start of window `i` is the XOR of the parities of the windows before it,
//! which picks the right hypothesis for each. Chunk `i` holds the records whose first byte
//! lies in window `i`; its text starts right after the first record-ending newline of the
//! window (or at the data start for window 0).
//!
//! Blank lines and comment lines are not records: a record starts after a record-ending
//! newline unless the next line is empty or starts with the comment character.
//!
//! # Caveat, and the fallback
//!
//! A comment line may contain quote characters, which would break the parity. When a comment
//! character is set and the file contains any quote character, the file is planned by the
//! sequential tokenizer ([`record_starts`]) instead: exact, single-threaded.
//! A quote character in the middle of an unquoted field (not RFC 4180) is rejected by the
//! parser rather than misread.

use std::fs::File;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::readers::files::read_exact_at;

/// The bytes that shape records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// Field separator.
    pub delimiter: u8,
    /// Quote character; `None` disables quoting.
    pub quote: Option<u8>,
    /// Lines starting with it are skipped, and it ends the data of a line.
    pub comment: Option<u8>,
}

/// What one window holds, for both hypotheses `h` on the quote parity at its start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Odd number of quote characters in the window.
    pub quotes_odd: bool,
    /// Whether the window has a quote character at all.
    pub has_quotes: bool,
    /// Records starting after a record-ending newline of the window, under hypothesis `h`.
    pub starts: [u64; 2],
    /// Offset just after the window's first record-ending newline, under hypothesis `h`.
    pub first_boundary: [Option<u64>; 2],
    /// Every newline of the window (physical lines, for line numbers).
    pub newlines: u64,
}

/// True when a record starts at `q` in `buf` (`buf` ends at the end of the file or at least
/// two bytes past `q`): not the end of the file, not a blank line, not a comment line.
#[inline]
pub fn is_record_start(buf: &[u8], q: usize, comment: Option<u8>) -> bool {
    match buf.get(q) {
        None | Some(b'\n') => false,
        Some(b'\r') => !matches!(buf.get(q + 1), None | Some(b'\n')),
        Some(&c) => Some(c) != comment,
    }
}

/// Scans `buf[..window]` (`buf` carries up to two bytes past the window for look-ahead);
/// `base` is the file offset of `buf[0]`.
pub fn scan_window(buf: &[u8], window: usize, base: u64, dialect: Dialect) -> WindowStats {
    let mut scan = WindowScan::default();
    scan.feed(buf, window, base, dialect);
    scan.finish()
}

/// A window scanned piece by piece, in order: [`WindowScan::feed`] each piece, then
/// [`WindowScan::finish`]. The same result as one [`scan_window`] over the whole window.
#[derive(Debug, Default)]
pub struct WindowScan {
    stats: WindowStats,
    /// Quote parity since the window's start.
    parity: usize,
}

impl WindowScan {
    /// Scans `buf[..body]`, the next piece of the window (`buf` carries up to two bytes past
    /// it for look-ahead); `base` is the file offset of `buf[0]`.
    pub fn feed(&mut self, buf: &[u8], body: usize, base: u64, dialect: Dialect) {
        let Some(data) = buf.get(..body) else {
            return;
        };
        let stats = &mut self.stats;
        let record = |stats: &mut WindowStats, p: usize, h: usize| {
            if stats.first_boundary[h].is_none() {
                stats.first_boundary[h] = Some(base + p as u64 + 1);
            }
            stats.starts[h] += u64::from(is_record_start(buf, p + 1, dialect.comment));
        };
        match dialect.quote {
            None => {
                for p in memchr::memchr_iter(b'\n', data) {
                    stats.newlines += 1;
                    record(stats, p, 0);
                }
            }
            Some(quote) => {
                for p in memchr::memchr2_iter(quote, b'\n', data) {
                    if data.get(p) == Some(&quote) {
                        self.parity ^= 1;
                        stats.has_quotes = true;
                    } else {
                        stats.newlines += 1;
                        // A newline ends a record when the total parity is even, that is
                        // when the local parity equals the parity at the window's start.
                        record(stats, p, self.parity);
                    }
                }
            }
        }
    }

    /// The window's statistics.
    pub fn finish(mut self) -> WindowStats {
        self.stats.quotes_odd = self.parity == 1;
        self.stats
    }
}

/// One planned chunk of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChunk {
    /// File offset of the chunk's first byte (a record boundary).
    pub start: u64,
    /// File offset one past its last byte (a record boundary, or the end of the file).
    pub end: u64,
    /// Records in `[start, end)`.
    pub rows: u64,
    /// 1-based physical line at `start`.
    pub first_line: u64,
}

/// The windows covering `[data_start, file_end)`.
fn windows(data_start: u64, file_end: u64, chunk_bytes: u64) -> Vec<(u64, u64)> {
    let step = chunk_bytes.max(1);
    let mut out = Vec::new();
    let mut at = data_start;
    while at < file_end {
        let end = at.saturating_add(step).min(file_end);
        out.push((at, end));
        at = end;
    }
    if out.is_empty() {
        out.push((data_start, data_start));
    }
    out
}

/// Chains window statistics into chunks (the sequential part of planning).
pub fn chain(
    stats: &[WindowStats],
    data_start: u64,
    data_line: u64,
    first_is_record: bool,
    file_end: u64,
) -> Vec<PlannedChunk> {
    let mut parity = 0usize;
    let mut line = data_line;
    let mut starts = Vec::with_capacity(stats.len());
    let mut rows = Vec::with_capacity(stats.len());
    let mut line_at = Vec::with_capacity(stats.len());
    for (i, st) in stats.iter().enumerate() {
        let h = parity;
        let start = if i == 0 {
            Some(data_start)
        } else {
            st.first_boundary[h]
        };
        starts.push(start);
        rows.push(st.starts[h] + u64::from(i == 0 && first_is_record));
        line_at.push(line);
        line += st.newlines;
        parity ^= usize::from(st.quotes_odd);
    }
    // A window without a boundary contributes an empty chunk that starts where the next
    // boundary is.
    let mut out = Vec::with_capacity(stats.len());
    let mut next_start = file_end;
    for i in (0..stats.len()).rev() {
        let start = starts[i].unwrap_or(next_start);
        out.push(PlannedChunk {
            start,
            end: next_start,
            rows: rows[i],
            first_line: line_at[i],
        });
        next_start = start;
    }
    out.reverse();
    out
}

/// Plans one plain (uncompressed) file: windows scanned in parallel on the current rayon
/// pool, chained, with line numbers fixed up by counting the few bytes between each window
/// start and its first boundary.
#[allow(clippy::too_many_arguments)]
pub fn plan_file(
    file: &File,
    path: &Path,
    data_start: u64,
    data_line: u64,
    file_end: u64,
    chunk_bytes: u64,
    dialect: Dialect,
) -> Result<Vec<PlannedChunk>> {
    let wins = windows(data_start, file_end, chunk_bytes);
    let stats = scan_windows(file, path, &wins, file_end, dialect)?;
    let first_is_record = first_record_at_start(file, path, data_start, file_end, dialect)?;
    if dialect.comment.is_some() && dialect.quote.is_some() && stats.iter().any(|s| s.has_quotes) {
        return plan_sequential(file, path, &wins, data_start, data_line, file_end, dialect);
    }
    let mut chunks = chain(&stats, data_start, data_line, first_is_record, file_end);
    // `chain` numbers lines at window starts; a chunk starts at its first boundary, a few
    // bytes later: count the newlines in between.
    for (chunk, &(ws, _)) in chunks.iter_mut().zip(&wins) {
        if chunk.start > ws && chunk.start <= file_end {
            let len = usize::try_from(chunk.start - ws).map_err(|_| too_big(path))?;
            let mut gap = vec![0u8; len];
            read_exact_at(file, path, &mut gap, ws)?;
            chunk.first_line += memchr::memchr_iter(b'\n', &gap).count() as u64;
        }
    }
    Ok(chunks)
}

/// Bytes read and scanned at a time: small enough to stay in L2 between the copy out of the
/// page cache and the scan, which saves a trip to memory per byte (on the 2-core CI machine,
/// planning a 1.1 GB file took 92 ms with whole 8 MiB windows read at once, 74 ms in
/// 256 KiB pieces).
const SCAN_PIECE: u64 = 256 << 10;

/// Scans the windows in parallel, each read piece by piece into a per-thread buffer.
fn scan_windows(
    file: &File,
    path: &Path,
    wins: &[(u64, u64)],
    file_end: u64,
    dialect: Dialect,
) -> Result<Vec<WindowStats>> {
    wins.par_iter()
        .map_init(Vec::new, |buf: &mut Vec<u8>, &(ws, we)| {
            let mut scan = WindowScan::default();
            let mut at = ws;
            while at < we {
                let end = at.saturating_add(SCAN_PIECE).min(we);
                // Two bytes past the piece for the blank-line look-ahead.
                let read_end = end.saturating_add(2).min(file_end);
                let len = usize::try_from(read_end - at).map_err(|_| too_big(path))?;
                buf.resize(len, 0);
                read_exact_at(file, path, buf, at)?;
                scan.feed(buf, (end - at) as usize, at, dialect);
                at = end;
            }
            Ok(scan.finish())
        })
        .collect()
}

fn too_big(path: &Path) -> DataError {
    DataError::Corrupt {
        file: path.display().to_string(),
        reason: "a chunk does not fit in memory".to_owned(),
    }
}

fn first_record_at_start(
    file: &File,
    path: &Path,
    data_start: u64,
    file_end: u64,
    dialect: Dialect,
) -> Result<bool> {
    let end = data_start.saturating_add(2).min(file_end);
    let mut head = vec![0u8; (end - data_start) as usize];
    read_exact_at(file, path, &mut head, data_start)?;
    Ok(is_record_start(&head, 0, dialect.comment))
}

/// The exact fallback: one sequential pass of the tokenizer over the file's data.
fn plan_sequential(
    file: &File,
    path: &Path,
    wins: &[(u64, u64)],
    data_start: u64,
    data_line: u64,
    file_end: u64,
    dialect: Dialect,
) -> Result<Vec<PlannedChunk>> {
    let len = usize::try_from(file_end - data_start).map_err(|_| too_big(path))?;
    let mut data = vec![0u8; len];
    read_exact_at(file, path, &mut data, data_start)?;
    let starts = record_starts(&data, dialect);
    let mut out = Vec::with_capacity(wins.len());
    let mut idx = 0usize;
    for (i, &(_, we)) in wins.iter().enumerate() {
        let begin = idx;
        while idx < starts.len() && data_start + (starts[idx].0 as u64) < we {
            idx += 1;
        }
        let start = if i == 0 {
            data_start
        } else {
            starts
                .get(begin)
                .map_or(file_end, |s| data_start + s.0 as u64)
        };
        let first_line = if i == 0 {
            data_line
        } else {
            starts.get(begin).map_or(0, |s| data_line + s.1)
        };
        out.push(PlannedChunk {
            start,
            end: file_end,
            rows: (idx - begin) as u64,
            first_line,
        });
    }
    for i in 0..out.len().saturating_sub(1) {
        out[i].end = out[i + 1].start;
    }
    Ok(out)
}

/// Offsets (and newlines before them) of every record start in `data`, by a byte-at-a-time
/// tokenizer: the reference the parallel planner is tested against, and the fallback.
pub fn record_starts(data: &[u8], dialect: Dialect) -> Vec<(usize, u64)> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        LineStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
        Comment,
        SkipLine,
    }
    let mut out = Vec::new();
    let mut state = State::LineStart;
    let mut newlines = 0u64;
    let mut i = 0usize;
    while i < data.len() {
        let b = data[i];
        match state {
            State::LineStart => {
                if is_record_start(data, i, dialect.comment) {
                    out.push((i, newlines));
                    state = State::Unquoted;
                    // Re-read this byte as the first of a field.
                    if Some(b) == dialect.quote {
                        state = State::Quoted;
                    } else if b == b'\n' {
                        newlines += 1;
                        state = State::LineStart;
                    }
                } else {
                    state = State::SkipLine;
                    if b == b'\n' {
                        newlines += 1;
                        state = State::LineStart;
                    }
                }
            }
            State::Unquoted => {
                if b == b'\n' {
                    newlines += 1;
                    state = State::LineStart;
                } else if Some(b) == dialect.comment {
                    state = State::Comment;
                } else if Some(b) == dialect.quote
                    && (i == 0 || data[i - 1] == dialect.delimiter || data[i - 1] == b'\n')
                {
                    state = State::Quoted;
                }
            }
            State::Quoted => {
                if b == b'\n' {
                    newlines += 1;
                }
                if Some(b) == dialect.quote {
                    state = State::QuoteInQuoted;
                }
            }
            State::QuoteInQuoted => {
                if Some(b) == dialect.quote {
                    state = State::Quoted;
                } else if b == b'\n' {
                    newlines += 1;
                    state = State::LineStart;
                } else if Some(b) == dialect.comment {
                    state = State::Comment;
                } else {
                    state = State::Unquoted;
                }
            }
            State::Comment | State::SkipLine => {
                if b == b'\n' {
                    newlines += 1;
                    state = State::LineStart;
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan_in_memory(data: &[u8], chunk: u64, dialect: Dialect) -> Vec<PlannedChunk> {
        let end = data.len() as u64;
        let wins = windows(0, end, chunk);
        let stats: Vec<WindowStats> = wins
            .iter()
            .map(|&(ws, we)| {
                let read_end = (we + 2).min(end);
                scan_window(
                    &data[ws as usize..read_end as usize],
                    (we - ws) as usize,
                    ws,
                    dialect,
                )
            })
            .collect();
        let mut chunks = chain(&stats, 0, 1, is_record_start(data, 0, dialect.comment), end);
        for (c, &(ws, _)) in chunks.iter_mut().zip(&wins) {
            if c.start > ws {
                c.first_line += data[ws as usize..c.start as usize]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
            }
        }
        chunks
    }

    const DIALECT: Dialect = Dialect {
        delimiter: b',',
        quote: Some(b'"'),
        comment: None,
    };

    fn check(data: &[u8], chunk: u64, dialect: Dialect) {
        let reference = record_starts(data, dialect);
        let chunks = plan_in_memory(data, chunk, dialect);
        let total: u64 = chunks.iter().map(|c| c.rows).sum();
        assert_eq!(
            total,
            reference.len() as u64,
            "{:?}",
            String::from_utf8_lossy(data)
        );
        // Every chunk starts on a record boundary (or the end), and the starts inside it are
        // exactly `rows`.
        let mut covered = 0;
        for c in &chunks {
            let inside: Vec<_> = reference
                .iter()
                .filter(|(s, _)| (*s as u64) >= c.start && (*s as u64) < c.end)
                .collect();
            assert_eq!(
                inside.len() as u64,
                c.rows,
                "{chunks:?} {:?}",
                String::from_utf8_lossy(data)
            );
            if let Some((_, newlines)) = inside.first() {
                let before = data[..c.start as usize]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                let gap = newlines - before;
                assert!(c.first_line + gap == 1 + newlines, "line numbers");
            }
            covered += c.end - c.start;
        }
        assert_eq!(covered, data.len() as u64);
    }

    #[test]
    fn quoted_newlines_across_windows() {
        let data = b"1,\"a\nb\",3\n4,\"\"\"x\n\n\",6\n\n7,8,9\n";
        for chunk in 1..data.len() as u64 + 2 {
            check(data, chunk, DIALECT);
        }
    }

    #[test]
    fn comments_and_crlf() {
        let d = Dialect {
            comment: Some(b'#'),
            quote: None,
            ..DIALECT
        };
        let data = b"#c\r\n1,2\r\n\r\n#x\n3,4";
        for chunk in 1..data.len() as u64 + 2 {
            check(data, chunk, d);
        }
    }

    fn csv_text() -> impl Strategy<Value = Vec<u8>> {
        let field = prop_oneof![
            "[0-9.]{0,4}".prop_map(|s| s.into_bytes()),
            "[a-z,\n\"#]{0,5}".prop_map(|s| {
                let mut v = vec![b'"'];
                for b in s.bytes() {
                    if b == b'"' {
                        v.push(b'"');
                    }
                    v.push(b);
                }
                v.push(b'"');
                v
            }),
        ];
        let record = prop::collection::vec(field, 1..4).prop_map(|fields| fields.join(&b','));
        let line = prop_oneof![
            8 => record,
            1 => Just(Vec::new()),
            1 => Just(b"\r".to_vec()),
        ];
        (prop::collection::vec(line, 0..12), any::<bool>()).prop_map(|(lines, trailing)| {
            let mut out = lines.join(&b'\n');
            if trailing {
                out.push(b'\n');
            }
            out
        })
    }

    proptest! {
        #[test]
        fn parallel_plan_matches_sequential_tokenizer(data in csv_text(), chunk in 1u64..24) {
            check(&data, chunk, DIALECT);
        }

        #[test]
        fn a_window_scanned_in_pieces_matches_one_scan(
            data in csv_text(),
            skip in 0usize..4,
            piece in 1usize..9,
            comment in any::<bool>(),
        ) {
            let dialect = Dialect { comment: comment.then_some(b'#'), ..DIALECT };
            let start = skip.min(data.len());
            let window = data.len() - start;
            let whole = scan_window(&data[start..], window, start as u64, dialect);
            let mut scan = WindowScan::default();
            let mut at = start;
            while at < data.len() {
                let end = (at + piece).min(data.len());
                let read_end = (end + 2).min(data.len());
                scan.feed(&data[at..read_end], end - at, at as u64, dialect);
                at = end;
            }
            prop_assert_eq!(scan.finish(), whole);
        }
    }
}

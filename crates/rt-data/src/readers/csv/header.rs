//! The first record of a CSV file: column names (or, without a header, the column count), and
//! where the data starts. A UTF-8 byte order mark, blank lines and comment lines before it are
//! skipped, as pandas does.

use super::plan::{Dialect, is_record_start};
use crate::error::{DataError, Result};

/// What the start of a file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Column names: the header's fields, or `"0"`, `"1"`... without a header. Empty for a
    /// file without any record.
    pub names: Vec<String>,
    /// Offset (in the possibly decompressed text) of the first data byte.
    pub data_start: u64,
    /// 1-based physical line at `data_start`.
    pub data_line: u64,
}

/// The fields of the record at `start` of `buf`, the offset after it, the newlines it spans
/// and whether it holds a bare `\r` (one not followed by `\n`) outside quotes; `None` when
/// the record runs past the end of `buf` and more bytes may follow.
pub fn split_record(
    buf: &[u8],
    start: usize,
    at_eof: bool,
    dialect: Dialect,
) -> Option<(Vec<Vec<u8>>, usize, u64, bool)> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut i = start;
    let mut newlines = 0u64;
    let mut in_quotes = false;
    let mut at_field_start = true;
    let mut bare_cr = false;
    loop {
        let Some(&b) = buf.get(i) else {
            if !at_eof {
                return None;
            }
            fields.push(field);
            return Some((fields, i, newlines, bare_cr));
        };
        i += 1;
        if in_quotes {
            if Some(b) == dialect.quote {
                if buf.get(i) == Some(&b) {
                    field.push(b);
                    i += 1;
                } else if buf.get(i).is_none() && !at_eof {
                    return None;
                } else {
                    in_quotes = false;
                }
            } else {
                newlines += u64::from(b == b'\n');
                field.push(b);
            }
            continue;
        }
        if at_field_start && Some(b) == dialect.quote {
            in_quotes = true;
            at_field_start = false;
        } else if b == dialect.delimiter {
            fields.push(std::mem::take(&mut field));
            at_field_start = true;
        } else if b == b'\n' || Some(b) == dialect.comment {
            if field.last() == Some(&b'\r') {
                field.pop();
            }
            fields.push(field);
            if b != b'\n' {
                match memchr::memchr(b'\n', buf.get(i..).unwrap_or_default()) {
                    Some(p) => i += p + 1,
                    None if at_eof => i = buf.len(),
                    None => return None,
                }
            }
            return Some((fields, i, newlines + 1, bare_cr));
        } else {
            if b == b'\r' {
                match buf.get(i) {
                    Some(b'\n') => {}
                    None if !at_eof => return None,
                    _ => bare_cr = true,
                }
            }
            field.push(b);
            at_field_start = false;
        }
    }
}

/// Reads the header from the first bytes of a file (`buf`; `at_eof` when that is the whole
/// file). `None` means: give me more bytes.
pub fn parse_header(
    buf: &[u8],
    at_eof: bool,
    dialect: Dialect,
    has_header: bool,
    file: &str,
) -> Result<Option<Header>> {
    let mut pos = if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut line = 1u64;
    // Blank and comment lines before the first record.
    loop {
        if pos >= buf.len() {
            if !at_eof {
                return Ok(None);
            }
            return Ok(Some(Header {
                names: Vec::new(),
                data_start: buf.len() as u64,
                data_line: line,
            }));
        }
        if pos + 2 > buf.len() && !at_eof {
            return Ok(None);
        }
        if is_record_start(buf, pos, dialect.comment) {
            break;
        }
        match memchr::memchr(b'\n', buf.get(pos..).unwrap_or_default()) {
            Some(p) => {
                pos += p + 1;
                line += 1;
            }
            None if at_eof => pos = buf.len(),
            None => return Ok(None),
        }
    }
    let Some((fields, end, newlines, bare_cr)) = split_record(buf, pos, at_eof, dialect) else {
        return Ok(None);
    };
    if bare_cr {
        // Records end at `\n` only (planning counts newlines with memchr; supporting `\r`
        // too would slow every file down). A file with old Mac `\r` line endings would
        // otherwise read as one header line and no data, silently.
        return Err(DataError::InvalidArgument(format!(
            "{file}:{line}: the first record holds a bare carriage return (\\r) outside \
             quotes: files with \\r-only line endings are not supported; convert them to \
             \\n or \\r\\n line endings"
        )));
    }
    if !has_header {
        return Ok(Some(Header {
            names: (0..fields.len()).map(|i| i.to_string()).collect(),
            data_start: pos as u64,
            data_line: line,
        }));
    }
    let names = fields
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            String::from_utf8(f).map_err(|e| DataError::Encoding {
                file: file.to_owned(),
                line,
                reason: format!("header field {i}: {e}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Header {
        names,
        data_start: end as u64,
        data_line: line + newlines,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Dialect = Dialect {
        delimiter: b',',
        quote: Some(b'"'),
        comment: Some(b'#'),
    };

    #[test]
    fn bom_comments_quotes() {
        let text = b"\xEF\xBB\xBF# note\n\n\"a,1\",\"b\"\"\"\r\n1,2\n";
        let h = parse_header(text, true, D, true, "f").unwrap().unwrap();
        assert_eq!(h.names, vec!["a,1".to_owned(), "b\"".to_owned()]);
        assert_eq!(&text[h.data_start as usize..], b"1,2\n");
        assert_eq!(h.data_line, 4);
    }

    #[test]
    fn needs_more_bytes() {
        assert_eq!(parse_header(b"a,b", false, D, true, "f").unwrap(), None);
        let h = parse_header(b"a,b", true, D, true, "f").unwrap().unwrap();
        assert_eq!(h.names.len(), 2);
    }

    #[test]
    fn no_header_counts_columns() {
        let h = parse_header(b"1,2,3\n", true, D, false, "f")
            .unwrap()
            .unwrap();
        assert_eq!(h.names, vec!["0", "1", "2"]);
        assert_eq!(h.data_start, 0);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = parse_header(b"\n\xff,b\n", true, D, true, "f.csv")
            .unwrap_err()
            .to_string();
        assert!(err.contains("f.csv:2"), "{err}");
    }

    #[test]
    fn bare_carriage_return_in_the_first_record_is_refused() {
        for has_header in [true, false] {
            let err = parse_header(b"a,b\r1,2\r", true, D, has_header, "f.csv").unwrap_err();
            assert!(err.to_string().contains("f.csv:1:"), "{err}");
        }
        // Not enough bytes to tell yet; CRLF and a quoted \r are fine.
        assert_eq!(parse_header(b"a,b\r", false, D, true, "f").unwrap(), None);
        let h = parse_header(b"a,b\r\n1,2\r\n", true, D, true, "f")
            .unwrap()
            .unwrap();
        assert_eq!(h.names, vec!["a", "b"]);
        let h = parse_header(b"\"a\rx\",b\n", true, D, true, "f")
            .unwrap()
            .unwrap();
        assert_eq!(h.names, vec!["a\rx", "b"]);
    }

    #[test]
    fn empty_file() {
        let h = parse_header(b"", true, D, true, "f").unwrap().unwrap();
        assert!(h.names.is_empty());
    }
}

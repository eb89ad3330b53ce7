//! Gzip input: detected by its magic bytes, decompressed as a stream (never whole in memory).
//! A gzip file is not splittable, so it is one chunk.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

/// The two bytes every gzip member starts with (RFC 1952).
pub const MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A decompressing reader over `file` from its start. `MultiGzDecoder` because `cat a.gz
/// b.gz` is a valid gzip file holding both.
pub fn decoder(file: File) -> MultiGzDecoder<BufReader<File>> {
    MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file))
}

/// Fills `buf` as far as the stream goes; returns the bytes read (fewer only at the end).
/// A damaged or truncated stream is a [`DataError::Corrupt`] naming the file.
pub fn read_full(reader: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(corrupt(path, &e)),
        }
    }
    Ok(got)
}

/// Reads and drops `n` bytes.
pub fn skip(reader: &mut impl Read, n: u64, path: &Path) -> Result<()> {
    let copied = std::io::copy(&mut reader.take(n), &mut std::io::sink())
        .map_err(|e| corrupt(path, &e))?;
    if copied < n {
        return Err(DataError::Corrupt {
            file: path.display().to_string(),
            reason: "the gzip stream is shorter than when it was opened".to_owned(),
        });
    }
    Ok(())
}

fn corrupt(path: &Path, e: &std::io::Error) -> DataError {
    DataError::Corrupt {
        file: path.display().to_string(),
        reason: format!("cannot decompress the gzip stream (truncated or damaged): {e}"),
    }
}

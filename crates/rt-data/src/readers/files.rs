//! Opening files so that every failure names the path, and positioned reads.

use std::fs::File;
use std::io::{Error, ErrorKind};
use std::path::Path;

use crate::error::{DataError, Result};

/// Opens `path` for reading. A directory is refused with `IsADirectory` here, because on
/// Linux `File::open` succeeds on a directory and the failure would only come at the first
/// read, with a less useful message.
pub fn open(path: &Path) -> Result<File> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.is_dir() {
        return Err(DataError::io(
            path,
            Error::new(ErrorKind::IsADirectory, "is a directory"),
        ));
    }
    File::open(path).map_err(|e| DataError::io(path, e))
}

/// Reads exactly `buf.len()` bytes at `offset` (positioned, so threads share one handle
/// without seeking). A file that shrank since it was planned gives `UnexpectedEof`.
pub fn read_exact_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
            .map_err(|e| DataError::io(path, e))
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0usize;
        while done < buf.len() {
            let n = file
                .seek_read(&mut buf[done..], offset + done as u64)
                .map_err(|e| DataError::io(path, e))?;
            if n == 0 {
                return Err(DataError::io(
                    path,
                    Error::new(ErrorKind::UnexpectedEof, "file shrank while being read"),
                ));
            }
            done += n;
        }
        Ok(())
    }
}

/// The name a path gets in messages and [`ChunkInfo::file`](crate::ChunkInfo::file).
pub fn display_name(path: &Path) -> std::sync::Arc<str> {
    std::sync::Arc::from(path.display().to_string())
}

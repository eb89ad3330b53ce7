//! The error type of rt-data. Every variant names where the problem is (file, line, column)
//! so that a user can open the file and look.

use std::path::PathBuf;

/// Where a record is in its file, as an error message shows it after the file name: a text
/// file's 1-based physical line (`data.csv:12`, as editors and compilers count) or a
/// columnar file's 0-based row (`t.parquet, row index 5`, as pandas and pyarrow count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordAt {
    /// 1-based physical line where the record starts (CSV).
    Line(u64),
    /// 0-based row (Parquet, Arrow IPC, in-memory Arrow, `.npy`).
    Row(u64),
    /// A batch of a columnar file, by the 0-based row it starts at, where the failing row
    /// is not known (a cast that fails for the batch as a whole).
    BatchFrom(u64),
}

impl std::fmt::Display for RecordAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordAt::Line(n) => write!(f, ":{n}"),
            RecordAt::Row(n) => write!(f, ", row index {n}"),
            RecordAt::BatchFrom(n) => write!(f, ", the batch from row index {n}"),
        }
    }
}

/// Why a source could not be opened or read, or a loader could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The operating system refused a file: missing, permission denied, a directory...
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said; its kind picks the Python OSError subclass.
        source: std::io::Error,
    },
    /// A record has another number of fields than the header (or the first record).
    #[error("{file}:{line}: expected {expected} fields, found {found}")]
    Ragged {
        /// The file.
        file: String,
        /// 1-based physical line where the record starts.
        line: u64,
        /// Fields in the header or first record.
        expected: usize,
        /// Fields in this record.
        found: usize,
    },
    /// A field is not a number (or not valid for the requested output dtype).
    #[error("{file}{at}: column {column:?}: cannot parse {text:?} as {expected}")]
    Parse {
        /// The file.
        file: String,
        /// Where the record is in the file.
        at: RecordAt,
        /// The column's name (or its index when there is no header).
        column: String,
        /// The offending text, truncated to a readable length.
        text: String,
        /// What was expected ("a float", "an integer label"...).
        expected: String,
    },
    /// A missing value (empty field, `NA`, Parquet null...) under `missing="raise"`.
    #[error(
        "{file}{at}: column {column:?} has a missing value; pass missing=\"nan\" or a fill value to accept it"
    )]
    Missing {
        /// The file.
        file: String,
        /// Where the record is in the file.
        at: RecordAt,
        /// The column's name.
        column: String,
    },
    /// Bytes that are not UTF-8 where text is required (a header, a category).
    #[error("{file}:{line}: invalid UTF-8: {reason}")]
    Encoding {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// Details.
        reason: String,
    },
    /// The file is damaged: a truncated gzip stream, a corrupt Parquet footer...
    #[error("{file}: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// Columns differ across the files of one source, or a column was not found.
    #[error("{0}")]
    Schema(String),
    /// A column whose type cannot become a tensor under the current options (strings without
    /// `categorical="codes"`, nested types...).
    #[error("column {column:?} has type {found}: {hint}")]
    UnsupportedType {
        /// The column's name.
        column: String,
        /// Its type as the file states it.
        found: String,
        /// What to do about it.
        hint: String,
    },
    /// More rows were skipped under `on_error="skip"` than `max_errors` allows.
    #[error("{skipped} rows failed, more than max_errors={max_errors}; the last: {last}")]
    TooManyErrors {
        /// The limit.
        max_errors: u64,
        /// Rows skipped so far.
        skipped: u64,
        /// The error that crossed the limit.
        last: Box<DataError>,
    },
    /// An argument is out of its domain.
    #[error("{0}")]
    InvalidArgument(String),
    /// The work was cancelled (Ctrl-C, or the loader was dropped).
    #[error("cancelled")]
    Cancelled,
    /// A tensor could not be made.
    #[error(transparent)]
    View(#[from] rt_view::ViewError),
}

impl From<rt_view::cancel::Cancelled> for DataError {
    fn from(_: rt_view::cancel::Cancelled) -> Self {
        DataError::Cancelled
    }
}

impl DataError {
    /// An [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// True for errors that `on_error="skip"` may skip: problems confined to one row.
    pub fn is_row_error(&self) -> bool {
        matches!(
            self,
            DataError::Ragged { .. }
                | DataError::Parse { .. }
                | DataError::Missing { .. }
                | DataError::Encoding { .. }
        )
    }
}

/// The crate's result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

//! The error type of rt-sparse.

use rt_view::ViewError;

/// Why a constructor or kernel refused its arguments. Nothing is written when one is
/// returned; every message names the first violation and its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SparseError {
    /// A pointer array (`crow`/`ccol`) has the wrong length.
    #[error("{name} has {actual} entries, expected {expected} (one more than the {dim} dimension)")]
    PointerLength {
        /// `"crow"` or `"ccol"`.
        name: &'static str,
        /// `major + 1`.
        expected: usize,
        /// The length given.
        actual: usize,
        /// `"row"` or `"column"`.
        dim: &'static str,
    },
    /// The first pointer is not 0.
    #[error("{name}[0] = {value}, expected 0")]
    PointerStart {
        /// `"crow"` or `"ccol"`.
        name: &'static str,
        /// The value found.
        value: i64,
    },
    /// A pointer is smaller than the one before it.
    #[error("{name}[{position}] = {value} is smaller than {name}[{prev}] = {previous}; row pointers must never decrease", prev = position - 1)]
    PointerDecreasing {
        /// `"crow"` or `"ccol"`.
        name: &'static str,
        /// Where (at least 1).
        position: usize,
        /// The value there.
        value: i64,
        /// The value before it.
        previous: i64,
    },
    /// The last pointer is not the number of stored entries.
    #[error("{name}[{position}] = {value}, expected nnz = {nnz} (the length of {index})")]
    PointerEnd {
        /// `"crow"` or `"ccol"`.
        name: &'static str,
        /// The last position.
        position: usize,
        /// The value there.
        value: i64,
        /// The number of stored entries.
        nnz: usize,
        /// The index array whose length is nnz.
        index: &'static str,
    },
    /// An index is negative.
    #[error("{name}[{position}] = {value} is negative")]
    NegativeIndex {
        /// `"row"`, `"col"`, `"src"`...
        name: &'static str,
        /// Where.
        position: usize,
        /// The value there.
        value: i64,
    },
    /// An index is not below its bound.
    #[error("{name}[{position}] = {value} is out of range for {bound} {what}")]
    IndexOutOfRange {
        /// `"row"`, `"col"`, `"src"`...
        name: &'static str,
        /// Where.
        position: usize,
        /// The value there.
        value: i64,
        /// The exclusive bound.
        bound: usize,
        /// `"rows"`, `"columns"`, `"nodes"`.
        what: &'static str,
    },
    /// Indices within a row are not strictly increasing (only when sortedness was asked for).
    #[error(
        "{name}[{position}] = {value} follows {previous} in row {row}; indices within a row must be {order}"
    )]
    Unsorted {
        /// `"col"` or `"row"`.
        name: &'static str,
        /// Where.
        position: usize,
        /// The value there.
        value: i64,
        /// The value before it.
        previous: i64,
        /// The row (or column, for CSC) it is in.
        row: usize,
        /// `"sorted"` or `"sorted and unique"`.
        order: &'static str,
    },
    /// Two lengths that must agree do not.
    #[error("{what}: expected {expected}, got {actual}")]
    LengthMismatch {
        /// Which arrays, in words.
        what: String,
        /// The required length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A shape that is negative or does not fit the index type or memory.
    #[error("invalid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The shape given.
        shape: Vec<i64>,
        /// Why it is refused.
        reason: String,
    },
    /// A result would exceed an explicit resource limit.
    #[error(
        "{what} would need {requested} {unit}, over the limit of {limit}; raise the limit ({knob}) if this is intended"
    )]
    LimitExceeded {
        /// What was being built.
        what: &'static str,
        /// How much it needs.
        requested: u128,
        /// The limit.
        limit: u128,
        /// `"elements"`, `"stored entries"` or `"entries"`.
        unit: &'static str,
        /// The argument that raises the limit.
        knob: &'static str,
    },
    /// The allocator refused memory that the limits allowed (Python: `MemoryError`).
    #[error("could not allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// What was being built.
        what: &'static str,
        /// The size asked for.
        bytes: u128,
    },
    /// An argument outside its domain.
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The operation was cancelled (Ctrl-C) before it finished.
    #[error("the operation was cancelled")]
    Cancelled,
    /// From rt-view: a view could not be made or the thread pool failed.
    #[error(transparent)]
    View(#[from] ViewError),
}

impl SparseError {
    /// True for the variants that Python raises as `IndexError`.
    pub fn is_index_error(&self) -> bool {
        matches!(
            self,
            SparseError::NegativeIndex { .. } | SparseError::IndexOutOfRange { .. }
        )
    }
}

impl From<rt_view::cancel::Cancelled> for SparseError {
    fn from(_: rt_view::cancel::Cancelled) -> Self {
        SparseError::Cancelled
    }
}

/// Shorthand for `Result<T, SparseError>`.
pub type Result<T, E = SparseError> = std::result::Result<T, E>;

/// `LengthMismatch` unless `expected == actual`.
pub(crate) fn check_len(what: &str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(SparseError::LengthMismatch {
            what: what.to_string(),
            expected,
            actual,
        })
    }
}

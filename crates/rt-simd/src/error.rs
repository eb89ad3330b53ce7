//! The error type of rt-simd.

use rt_view::ViewError;

/// Why a kernel refused its arguments. Nothing is written when a kernel returns an error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimdError {
    /// Two lengths or shapes that must agree do not.
    #[error("{what}: expected {expected:?}, got {actual:?}")]
    ShapeMismatch {
        /// Which argument, in words.
        what: &'static str,
        /// The required shape.
        expected: Vec<usize>,
        /// The shape given.
        actual: Vec<usize>,
    },
    /// An argument outside its domain (a negative `eps`, `min > max` in a range...).
    #[error("invalid argument {name}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `nan_policy = raise` and the input holds NaN.
    #[error("the input holds {count} NaN value(s) (nan_policy='raise'); first in column {column}")]
    NanFound {
        /// How many NaNs.
        count: usize,
        /// The first column (reduction lane) holding one.
        column: usize,
    },
    /// `RUSTTORCH_SIMD` or `set_simd_level` named no known level.
    #[error("unknown SIMD level {name:?}: expected one of scalar, sse2, neon, avx2, avx512")]
    UnknownSimdLevel {
        /// The name given.
        name: String,
    },
    /// A level this CPU cannot run.
    #[error("SIMD level {level} is not supported by this CPU; supported: {supported}")]
    UnsupportedSimdLevel {
        /// The level asked for.
        level: &'static str,
        /// The levels this CPU runs, comma-separated.
        supported: String,
    },
    /// The operation was cancelled (Ctrl-C) before it finished.
    #[error("the operation was cancelled")]
    Cancelled,
    /// From rt-view: a view could not be made or the thread pool failed.
    #[error(transparent)]
    View(#[from] ViewError),
}

impl From<rt_view::cancel::Cancelled> for SimdError {
    fn from(_: rt_view::cancel::Cancelled) -> Self {
        SimdError::Cancelled
    }
}

/// Shorthand for `Result<T, SimdError>`.
pub type Result<T, E = SimdError> = std::result::Result<T, E>;

pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(SimdError::ShapeMismatch {
            what,
            expected: vec![expected],
            actual: vec![actual],
        })
    }
}

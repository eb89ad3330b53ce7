//! The error type of rt-view.

use crate::DType;

/// Why a view, a layout or an owned tensor could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// `shape` and `strides` have different lengths.
    #[error("shape has {shape} dimensions but strides has {strides}")]
    RankMismatch {
        /// Length of the shape.
        shape: usize,
        /// Length of the strides.
        strides: usize,
    },
    /// The element count, or the span of memory it covers, does not fit the address space.
    #[error("shape {shape:?}{} overflows the address space", with_strides(strides))]
    ShapeOverflow {
        /// The offending shape.
        shape: Vec<usize>,
        /// The offending strides (in elements); empty for a new row-major tensor, whose
        /// element count alone overflows.
        strides: Vec<isize>,
    },
    /// Some element reachable through shape and strides lies outside the buffer.
    #[error(
        "shape {shape:?} with strides {strides:?} and offset {offset} reaches element \
         offsets {lowest}..={highest}, outside the buffer of {len} elements"
    )]
    OutOfBounds {
        /// The shape.
        shape: Vec<usize>,
        /// The strides in elements.
        strides: Vec<isize>,
        /// Offset of element `[0, 0, ...]` in elements.
        offset: usize,
        /// Lowest reachable element offset.
        lowest: i128,
        /// Highest reachable element offset.
        highest: i128,
        /// Buffer length in elements.
        len: usize,
    },
    /// A writable view whose elements alias each other (a zero stride, say).
    #[error(
        "shape {shape:?} with strides {strides:?} maps several indices to one element; \
         a writable view must not overlap itself"
    )]
    SelfOverlap {
        /// The shape.
        shape: Vec<usize>,
        /// The strides in elements.
        strides: Vec<isize>,
    },
    /// The data has another dtype than the one asked for.
    #[error("expected dtype {expected}, got {actual}")]
    DTypeMismatch {
        /// What the caller asked for.
        expected: DType,
        /// What the data holds.
        actual: DType,
    },
    /// Two shapes that must agree do not.
    #[error("shape mismatch: expected {expected:?}, got {actual:?}")]
    ShapeMismatch {
        /// The required shape.
        expected: Vec<usize>,
        /// The shape given.
        actual: Vec<usize>,
    },
    /// A contiguous slice of the data was needed.
    #[error("the view with shape {shape:?} and strides {strides:?} is not contiguous")]
    NotContiguous {
        /// The shape.
        shape: Vec<usize>,
        /// The strides in elements.
        strides: Vec<isize>,
    },
    /// An axis index out of range.
    #[error("axis {axis} is out of range for a {ndim}-d view")]
    AxisOutOfRange {
        /// The axis asked for.
        axis: usize,
        /// The number of dimensions.
        ndim: usize,
    },
    /// An index or range past the end of an axis.
    #[error("index {index} is out of range for axis {axis} of length {len}")]
    IndexOutOfRange {
        /// The axis.
        axis: usize,
        /// The index (or range end) asked for.
        index: usize,
        /// The length of the axis.
        len: usize,
    },
    /// A buffer whose address is not a multiple of the element alignment.
    #[error("address {address:#x} is not aligned to {align} bytes, as {dtype} requires")]
    Misaligned {
        /// The address.
        address: usize,
        /// The required alignment.
        align: usize,
        /// The dtype.
        dtype: DType,
    },
    /// `set_num_threads(0)`, a count above [`MAX_NUM_THREADS`](crate::threads::MAX_NUM_THREADS)
    /// or an unparsable `RUSTTORCH_NUM_THREADS`.
    #[error(
        "invalid thread count {value:?}: expected an integer from 1 to {}",
        crate::threads::MAX_NUM_THREADS
    )]
    InvalidThreadCount {
        /// The rejected value as given.
        value: String,
    },
    /// The operating system refused the memory for a new tensor.
    #[error("could not allocate {bytes} bytes for a new tensor: {reason}")]
    OutOfMemory {
        /// The size asked for.
        bytes: usize,
        /// What the operating system said.
        reason: String,
    },
    /// The operating system refused to start the worker threads.
    #[error("could not start the thread pool: {0}")]
    ThreadPool(String),
}

/// Shorthand for `Result<T, ViewError>`.
pub type Result<T, E = ViewError> = std::result::Result<T, E>;

/// " with strides [..]" for a view's strides; nothing for a new tensor's (none yet), which
/// would otherwise read "with strides []".
fn with_strides(strides: &[isize]) -> String {
    if strides.is_empty() {
        String::new()
    } else {
        format!(" with strides {strides:?}")
    }
}

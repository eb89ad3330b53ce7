//! The errors of rt-queue.
//!
//! Construction and stacking errors form the crate's [`Error`] enum. Queue operations return
//! one small type per kind of call instead, so that a refused push hands its item back and a
//! caller never has to match a variant its call can not produce (the shape of
//! `crossbeam-channel`'s and `std::sync::mpsc`'s errors).

use std::fmt;

use rt_view::ViewError;

/// Errors from building queues, batch policies and batches.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A queue must hold at least one item.
    #[error("a queue needs a capacity of at least 1, got {0}")]
    ZeroCapacity(usize),
    /// A batch must hold at least one item.
    #[error("max_batch_size must be at least 1, got {0}")]
    ZeroBatchSize(usize),
    /// Stacking needs at least one tensor.
    #[error("cannot stack an empty list of tensors")]
    EmptyStack,
    /// A tensor to stack has another shape than the first one.
    #[error(
        "tensor {index} has shape {actual:?}, but the first tensor of the batch has shape {expected:?}"
    )]
    ShapeMismatch {
        /// Position of the offending tensor.
        index: usize,
        /// Shape of the first tensor.
        expected: Vec<usize>,
        /// Shape of the offending tensor.
        actual: Vec<usize>,
    },
    /// An error from rt-view (allocating or copying the stacked tensor).
    #[error(transparent)]
    View(#[from] ViewError),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why [`try_push`](crate::BoundedQueue::try_push) refused an item, with the item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TryPushError<T> {
    /// The queue holds `capacity` items.
    Full(T),
    /// The queue was closed.
    Closed(T),
}

/// Why a timed push refused an item, with the item.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushTimeoutError<T> {
    /// The queue stayed full until the deadline.
    Timeout(T),
    /// The queue was closed.
    Closed(T),
}

/// A blocking push found the queue closed; the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PushError<T>(pub T);

/// Why [`try_pop`](crate::BoundedQueue::try_pop) returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryPopError {
    /// The queue is empty but open.
    Empty,
    /// The queue is closed and every item has been taken.
    Closed,
}

/// Why a timed pop returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopTimeoutError {
    /// The queue stayed empty until the deadline.
    Timeout,
    /// The queue is closed and every item has been taken.
    Closed,
}

/// A blocking pop found the queue closed and drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PopError;

impl<T> TryPushError<T> {
    /// The refused item.
    pub fn into_inner(self) -> T {
        match self {
            TryPushError::Full(item) | TryPushError::Closed(item) => item,
        }
    }
}

impl<T> PushTimeoutError<T> {
    /// The refused item.
    pub fn into_inner(self) -> T {
        match self {
            PushTimeoutError::Timeout(item) | PushTimeoutError::Closed(item) => item,
        }
    }
}

impl<T> PushError<T> {
    /// The refused item.
    pub fn into_inner(self) -> T {
        self.0
    }
}

// Debug without `T: Debug`, so that `Result::unwrap` and `?` into boxed errors work for
// any item type (the items are what the caller gets back, not what they need printed).
impl<T> fmt::Debug for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPushError::Full(_) => f.write_str("Full(..)"),
            TryPushError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Debug for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            PushTimeoutError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushError(..)")
    }
}

impl<T> fmt::Display for TryPushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPushError::Full(_) => f.write_str("the queue is full"),
            TryPushError::Closed(_) => f.write_str("the queue is closed"),
        }
    }
}

impl<T> fmt::Display for PushTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushTimeoutError::Timeout(_) => f.write_str("the queue stayed full until the deadline"),
            PushTimeoutError::Closed(_) => f.write_str("the queue is closed"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is closed")
    }
}

impl fmt::Display for TryPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPopError::Empty => f.write_str("the queue is empty"),
            TryPopError::Closed => f.write_str("the queue is closed and drained"),
        }
    }
}

impl fmt::Display for PopTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PopTimeoutError::Timeout => f.write_str("the queue stayed empty until the deadline"),
            PopTimeoutError::Closed => f.write_str("the queue is closed and drained"),
        }
    }
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is closed and drained")
    }
}

impl<T> std::error::Error for TryPushError<T> {}
impl<T> std::error::Error for PushTimeoutError<T> {}
impl<T> std::error::Error for PushError<T> {}
impl std::error::Error for TryPopError {}
impl std::error::Error for PopTimeoutError {}
impl std::error::Error for PopError {}

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod batch;
// `claim` and `expiry` serve the Python batcher; they live here to be model-checked with
// the rest of the crate's sync.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
mod claim;
mod error;
#[cfg_attr(not(feature = "python"), allow(dead_code))]
mod expiry;
mod oneshot;
mod queue;
mod stack;
mod stats;
mod sync;

#[cfg(feature = "python")]
pub mod python;

pub use batch::{BatchPolicy, Queued, next_batch};
pub use error::{
    Error, PopError, PopTimeoutError, PushError, PushTimeoutError, Result, TryPopError,
    TryPushError,
};
pub use oneshot::Oneshot;
pub use queue::BoundedQueue;
pub use stack::stack;
pub use stats::{BatchStats, LatencyHistogram};

//! The Python face (feature `python`): [`Queue`], [`Batcher`] and their exceptions, on top of
//! the pure Rust core and rt-view's tensor bridge. These files convert arguments, release
//! the GIL around waits and hand results back; the queueing, batching, stacking and
//! statistics live in the Rust core.

mod batch_io;
mod batcher;
mod errors;
mod queue;
mod request;
mod wait;

#[cfg(feature = "extension")]
mod module;

pub use batcher::{Batcher, BatcherStats};
pub use queue::Queue;

#![doc = include_str!("../README.md")]

pub mod cancel;
pub mod copy;
pub mod cpu;
mod dtype;
mod error;
mod huge_pages;
pub mod layout;
mod owned;
mod recycle;
pub mod threads;
mod view;
mod view_mut;

#[cfg(feature = "python")]
pub mod python;

pub use dtype::{Bool, DType, Element};
pub use error::{Result, ViewError};
pub use huge_pages::{HUGE_PAGES_ENV, advise as advise_huge_pages};
pub use layout::Layout;
pub use owned::{ALIGNMENT, MAPPED_FROM_BYTES, OwnedTensor};
pub use recycle::{
    DEFAULT_LIMIT_BYTES as DEFAULT_OUTPUT_CACHE_BYTES, OUTPUT_CACHE_ENV, cached_output_bytes,
    output_cache_env_problem, output_cache_limit, release_cached_outputs,
};
pub use view::{Lane, TensorView};
pub use view_mut::TensorViewMut;

/// Re-exported so that [`dispatch_dtype!`] and users name the same 16-bit float types.
pub use half;

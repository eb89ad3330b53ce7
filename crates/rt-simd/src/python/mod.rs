//! The Python face (feature `python`): argument conversion around the kernels, and with
//! feature `extension` the `rusttorch_simd._native` module. No domain logic lives here.

mod convert;
mod distance;
mod elementwise;
mod rows;
mod stats;

#[cfg(feature = "extension")]
mod module;

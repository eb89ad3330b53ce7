//! The Python face (feature `python`): argument conversion around the kernels, and with
//! feature `extension` the `rusttorch_sparse._native` module. No domain logic lives here.

mod convert;
mod kernels;
mod matrix;

#[cfg(feature = "extension")]
mod module;

//! The Python face (feature `python`): argument conversion, the `Source` handle, errors, and
//! with feature `extension` the `rusttorch_data._native` module. No domain logic lives here.

pub mod errors;
pub mod loader;
pub mod readers;
pub mod shared;
pub mod source;
pub mod tensor_source;

#[cfg(feature = "extension")]
mod module;

pub use source::PySource;

//! A whole source decoded in parallel into one row-major tensor.
//!
//! PLACEHOLDER (the readers' work replaces the body): the signature is the contract the loader's
//! memory mode and `read_*` build on.

use crate::error::{DataError, Result};
use crate::source::{Dataset, ReadContext, Source};

/// Decodes every chunk of `source` in parallel into one `[rows, features]` tensor (and one
/// `[rows, labels]` tensor), or returns [`Source::resident`] data without copying.
pub fn materialize(source: &dyn Source, ctx: ReadContext<'_>) -> Result<Dataset> {
    if let Some(dataset) = source.resident() {
        return Ok(dataset);
    }
    let _ = ctx;
    Err(DataError::InvalidArgument(
        "materialize: not implemented yet".to_owned(),
    ))
}

//! A whole source decoded in parallel into one row-major tensor.

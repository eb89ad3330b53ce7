//! The readers: one [`Source`](crate::Source) per file format.

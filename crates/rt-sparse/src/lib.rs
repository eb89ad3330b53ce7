#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod attention;
pub mod convert;
mod error;
pub mod limits;
mod matrix;
mod parallel;
pub mod pattern;
pub mod patterns;
mod scalar;
pub mod sddmm;
pub mod softmax;
pub mod spgemm;
pub mod spmm;

#[cfg(feature = "python")]
pub mod python;

pub use attention::{AttentionShape, sparse_attention};
pub use error::{Result, SparseError};
pub use limits::{DEFAULT_MAX_DIM_BUFFER, dim_buffer_limit, set_dim_buffer_limit};
pub use matrix::{CooMatrix, CscMatrix, CsrMatrix};
pub use pattern::{CsrPattern, Order};
pub use scalar::{Index, Scalar};
pub use sddmm::sddmm;
pub use softmax::{sparse_softmax, sparse_softmax_backward};
pub use spgemm::{ColumnOrder, SpgemmPlan, spgemm};
pub use spmm::{Reduce, gather_scatter, spmm, spmv};

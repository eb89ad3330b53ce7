#![doc = include_str!("../README.md")]

pub mod dispatch;
pub mod distance;
pub mod elementwise;
mod error;
pub mod math;
mod parallel;
pub mod prefetch;
pub mod real;
pub mod rows;
pub mod stats;
pub mod storage;
mod tile;

#[cfg(feature = "python")]
pub mod python;

pub use dispatch::{
    SimdLevel, detected_level, reset_simd_level, set_simd_level, simd_level, supported_levels,
};
pub use distance::{Metric, cdist, cosine_similarity};
pub use elementwise::{
    Activation, activation, activation_inplace, affine, affine_per_feature, clamp,
    fused_mad_normalize, normalize_channels,
};
pub use error::{Result, SimdError};
pub use real::Real;
pub use rows::{
    l2_normalize, l2_normalize_widened, layer_norm, layer_norm_widened, log_softmax,
    log_softmax_widened, rms_norm, rms_norm_widened, softmax, softmax_widened,
};
pub use stats::{Axis, NanPolicy, mean_var, minmax_scale, robust_scale, standardize};
pub use storage::Storage;

//! The index (`i32`, `i64`) and value (`f32`, `f64`) types the matrices are generic over.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub};

use rt_view::Element;

/// A stored index: `i32` or `i64`, as torch stores them.
pub trait Index: Element + Copy + Ord + Debug + Send + Sync + 'static {
    /// The largest value, as `u64`.
    const MAX: u64;
    /// The value as `i64` (lossless for both index types).
    fn to_i64(self) -> i64;
    /// The value as an in-memory index, `None` when negative.
    fn to_usize(self) -> Option<usize>;
    /// `n` as an index, `None` when it does not fit.
    fn from_usize(n: usize) -> Option<Self>;
}

impl Index for i32 {
    const MAX: u64 = i32::MAX as u64;
    #[inline(always)]
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
    #[inline(always)]
    fn to_usize(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
    #[inline(always)]
    fn from_usize(n: usize) -> Option<Self> {
        i32::try_from(n).ok()
    }
}

impl Index for i64 {
    const MAX: u64 = i64::MAX as u64;
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self
    }
    #[inline(always)]
    fn to_usize(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
    #[inline(always)]
    fn from_usize(n: usize) -> Option<Self> {
        i64::try_from(n).ok()
    }
}

/// A stored value: `f32` or `f64`.
pub trait Scalar:
    Element
    + Copy
    + PartialOrd
    + Debug
    + Default
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + MulAssign
    + Sum
    + Send
    + Sync
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// From `f64`, rounding.
    fn from_f64(v: f64) -> Self;
    /// From a count.
    fn from_usize(n: usize) -> Self;
    /// `e^self`.
    fn exp(self) -> Self;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// `self * a + b`, rounded once.
    fn mul_add(self, a: Self, b: Self) -> Self;
}

/// `acc + w * x`, as one fused multiply-add where the instruction set `S` has one (a
/// library call otherwise, so the plain form is used there).
#[inline(always)]
pub(crate) fn fmadd<S: rt_simd::dispatch::Isa, V: Scalar>(acc: V, w: V, x: V) -> V {
    if S::FMA {
        w.mul_add(x, acc)
    } else {
        acc + w * x
    }
}

macro_rules! impl_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const INFINITY: Self = <$t>::INFINITY;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_usize(n: usize) -> Self {
                n as $t
            }
            #[inline(always)]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
        }
    )*};
}

impl_scalar!(f32, f64);

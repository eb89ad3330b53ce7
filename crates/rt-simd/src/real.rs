//! [`Real`]: the two floating-point types kernels compute in (f32 and f64), with the
//! per-type constants and bit tricks the vectorizable math in [`crate::math`] needs.

use std::fmt::{Debug, Display};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::dispatch::Isa;

mod sealed {
    pub trait Sealed: crate::tile::DotTile {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// `f32` or `f64`: what kernels compute in.
///
/// The math in [`crate::math`] is written against this trait in plain arithmetic,
/// comparisons and bit casts (no branches, no library calls), so that LLVM vectorizes the
/// loops that call it.
pub trait Real:
    sealed::Sealed
    + rt_view::Element
    + Copy
    + Default
    + PartialOrd
    + Debug
    + Display
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// 0.5.
    const HALF: Self;
    /// 2.
    const TWO: Self;
    /// +inf.
    const INFINITY: Self;
    /// -inf.
    const NEG_INFINITY: Self;
    /// A quiet NaN.
    const NAN: Self;
    /// The largest finite value.
    const MAX: Self;
    /// Machine epsilon (the distance from 1 to the next value).
    const EPSILON: Self;
    /// log2(e).
    const LOG2E: Self;
    /// ln(2).
    const LN2: Self;
    /// ln(2) split so that `n * LN2_HI` is exact for every exponent `n` the exp range needs.
    const LN2_HI: Self;
    /// ln(2) - LN2_HI.
    const LN2_LO: Self;
    /// sqrt(2).
    const SQRT2: Self;
    /// 1/sqrt(2).
    const FRAC_1_SQRT_2: Self;
    /// 1.5 * 2^(mantissa bits): adding it rounds to an integer held in the low bits.
    const ROUND_MAGIC: Self;
    /// Below this, exp underflows to 0.
    const EXP_LO: Self;
    /// Above this, exp overflows to inf.
    const EXP_HI: Self;
    /// Down to here exp's result is a normal number (2^n with n >= the minimum exponent).
    const EXP_NORMAL_LO: Self;
    /// Below this, expm1 is -1 to the last bit.
    const EXPM1_LO: Self;
    /// gelu clamps |x| here for its normal tail Phi(-|x|) = R(|x|) e^(-x^2/2), and takes
    /// that tail as 0 beyond (it is subnormal there, like the e^-|x| factors torch
    /// flushes): up to here e^(-x^2/2) is a normal number times a power of two that keeps
    /// it one (see each type's value).
    const GELU_TAIL: Self;
    /// Dekker's splitter, 2^ceil(p/2) + 1.
    const SPLITTER: Self;

    /// Converts (rounding) from f64; used for constants, folded at compile time.
    fn from_f64(v: f64) -> Self;
    /// Widens (or keeps) to f64.
    fn to_f64(self) -> f64;
    /// `n` as a float (rounded).
    fn from_usize(n: usize) -> Self;
    /// |self|.
    fn abs(self) -> Self;
    /// Square root (one instruction).
    fn sqrt(self) -> Self;
    /// `self` with the sign of `sign`.
    fn copysign(self, sign: Self) -> Self;
    /// Natural log through std (a library call: for per-row scalars, not element loops).
    fn ln(self) -> Self;
    /// True for NaN.
    #[inline(always)]
    fn is_nan(self) -> bool {
        #[allow(clippy::eq_op)] // NaN is the one value unequal to itself
        let nan = self != self;
        nan
    }
    /// `self * a + b` with one rounding (a library call unless the CPU has FMA: use
    /// [`madd`] in kernels).
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// Given `t = x * LOG2E + ROUND_MAGIC`, returns `2^n` for the integer `n` held in `t`'s
    /// low bits (`n` must be a normal exponent).
    fn pow2_from_magic(t: Self) -> Self;
    /// `p * 2^n` for the `n` held in `t` as in [`pow2_from_magic`](Self::pow2_from_magic),
    /// by adding `n` to `p`'s exponent field: an integer add where the product would take a
    /// multiplier. `p` and the result must be normal numbers.
    fn scale_by_pow2_from_magic(p: Self, t: Self) -> Self;
    /// Like [`pow2_from_magic`](Self::pow2_from_magic) but as two factors `2^(n/2)`,
    /// `2^(n - n/2)`, so that `n` may span the whole range from underflow to overflow.
    fn pow2_split_from_magic(t: Self) -> (Self, Self);
    /// `e^r - 1` for `|r| <= ln(2)/2` by a polynomial, accurate to the last bit.
    fn expm1_poly<I: Isa>(r: Self) -> Self;
    /// `sum_{k>=1} s2^k / (2k+1)`, for `s2 <= 0.0295` (the atanh series of log).
    fn log_series<I: Isa>(s2: Self) -> Self;
    /// `e^(-s/2)` for `|s| <= ln 2` by a polynomial, accurate to the last bit.
    fn exp_neg_half_poly<I: Isa>(s: Self) -> Self;
    /// `Phi(-a) e^(a^2/2) = erfc(a / sqrt 2) e^(a^2/2) / 2` for `0 <= a <= GELU_TAIL` (or
    /// NaN): `t S(t) / 2` with `t = K / (K + a / sqrt 2)` and a polynomial `S` (each
    /// precision picks its `K` and variable, see `ERFC_POLY_F32_WIDE` in this file).
    fn normal_tail_scaled<I: Isa>(a: Self) -> Self;
}

/// `a * b + c`: one FMA instruction where the level has it, a multiply and an add where it
/// does not (never the slow library call).
#[inline(always)]
pub fn madd<T: Real, I: Isa>(a: T, b: T, c: T) -> T {
    if I::FMA { a.mul_add(b, c) } else { a * b + c }
}

/// Horner evaluation of `c[0] + x (c[1] + x (c[2] + ...))`, unrolled (N is a constant).
#[inline(always)]
pub(crate) fn horner<T: Real, I: Isa, const N: usize>(x: T, c: &[T; N]) -> T {
    const { assert!(N > 0, "a polynomial needs a coefficient") };
    // Starting from c[N-1] rather than from 0: `0 * x + c` is not `c` to LLVM (x may be
    // NaN), so a zero start costs an FMA per polynomial.
    let mut acc = c[N - 1];
    let mut k = N - 1;
    while k > 0 {
        k -= 1;
        acc = madd::<T, I>(acc, x, c[k]);
    }
    acc
}

/// Estrin evaluation of the same polynomial as [`horner`]: pairs `c[2i] + c[2i+1] x` and
/// then pairs of pairs with `x^2`, `x^4`, ..., so the dependency chain is about log2(N)
/// FMAs deep instead of N (these polynomials sit on the critical path of every element).
#[inline(always)]
pub(crate) fn estrin<T: Real, I: Isa, const N: usize>(x: T, c: &[T; N]) -> T {
    let mut v = *c;
    let mut len = N;
    let mut p = x;
    while len > 1 {
        let half = len / 2;
        for i in 0..half {
            v[i] = madd::<T, I>(v[2 * i + 1], p, v[2 * i]);
        }
        if len % 2 == 1 {
            v[half] = v[len - 1];
        }
        len = half + len % 2;
        p = p * p;
    }
    v[0]
}

/// `S(t) = erfc(z) exp(z^2) / t` with `t = 3 / (3 + z)`, in `u = 2t - 1`: a Chebyshev fit
/// over `t in [0, 1]` (mpmath, 50 digits) truncated to 26 terms and converted to monomials,
/// generated by `tools/gen_erfc.py`, which measured 1.3 eps of relative error with rounding
/// included.
const ERFC_POLY_F64: [f64; 26] = [
    0.3580023023627799,
    0.2944648177232946,
    0.19674278570136744,
    0.10348908730018744,
    0.03984258709575589,
    0.00894241154156505,
    -0.00040413887561527735,
    -0.001011354001751452,
    -0.00018276989812552789,
    9.225929586396032e-05,
    3.585383190933426e-05,
    -1.0132805140510624e-05,
    -5.823526632789038e-06,
    1.5834012485425441e-06,
    9.21797828119643e-07,
    -3.3378982080015963e-07,
    -1.35985295154599e-07,
    7.920242675075349e-08,
    1.5352633398082838e-08,
    -1.829005649885831e-08,
    -3.2727855351973006e-10,
    3.670595666649971e-09,
    -3.26104546261355e-10,
    -5.513274833171313e-10,
    5.473714338980995e-11,
    4.4955398417727714e-11,
];

/// `S(t) / 2` for float32, with `K = 2` (`t = 2 / (2 + z)`), in `v = t - ERFC_CENTER_F32`,
/// fitted for minimal relative error over the `t` gelu needs only: it clamps `|x|` at
/// `GELU_TAIL` = 13.18, so `t = KP / (KP + |x|)` stays above 0.176 (the fit runs to 13.2).
/// There 9 terms with `K = 2` are as accurate as 10 with `K = 3` were (2.6 eps relative
/// error for `t S(t) / 2` from `|x|`, every rounding of the kernel counted;
/// `tools/gen_erfc.py`), one FMA fewer. Evaluated by Horner's rule: gelu's two interleaved
/// streams already fill the FMA units, so Estrin's shorter chain only adds its squarings.
const ERFC_POLY_F32_WIDE: [f64; 9] = [
    0.28793053958413145,
    0.3943483167998442,
    0.2944359757339856,
    0.03922960912826628,
    -0.10262875291423725,
    -0.023447026818236887,
    0.05610568350741736,
    0.003277842835432142,
    -0.029408538397521878,
];

/// `K sqrt 2` for float32's `K = 2`: `t = KP / (KP + |x|)`.
const ERFC_KP_F32: f32 = 2.828_427;
/// The middle of the float32 fit's `t` range, `(1 + t_min) / 2`.
const ERFC_CENTER_F32: f32 = 0.588_231_56;

const ERFC_POLY_F32: [f32; 9] = {
    let mut out = [0f32; 9];
    let mut i = 0;
    while i < out.len() {
        out[i] = ERFC_POLY_F32_WIDE[i] as f32;
        i += 1;
    }
    out
};

/// The f32 `Q(s)` of `e^(-s/2) = 1 + s Q(s)` for |s| <= ln 2: a degree-5 minimax fit
/// (2e-9 relative before rounding), six FMAs by Horner's rule where `1 + r + r^2 P(r)` with
/// `r = -s/2` takes seven operations. Generated by `tools/gen_expm1.py`.
const EXP_NEG_HALF_POLY_F32: [f32; 6] = [
    -0.5,
    0.124999985,
    -0.020833038,
    0.00260425,
    -0.00026169376,
    0.000021630827,
];

/// 1/k! for k = 2..=13: the f64 tail of e^r - 1 = r + r^2 P(r). With |r| <= 0.347 the
/// truncation error is below 0.1 ulp.
const INV_FACT_F64: [f64; 12] = {
    let mut out = [0f64; 12];
    let mut fact = 1.0f64;
    let mut k = 2;
    while k <= 13 {
        fact *= k as f64;
        out[k - 2] = 1.0 / fact;
        k += 1;
    }
    out
};

/// The f32 tail `P(r)` of `e^r - 1 = r + r^2 P(r)` for |r| <= ln(2)/2: a degree-4 minimax
/// fit (weighted by the sensitivity of e^r to `P`) where the Taylor series needs degree 5
/// for the same accuracy: 3e-9 relative before rounding, under 0.05 ulp. Generated by
/// `tools/gen_expm1.py`; one term fewer on the critical path of exp, the logistic
/// function, tanh and gelu.
const EXPM1_POLY_F32: [f32; 5] = [
    0.49999994,
    0.1666652,
    0.041668393,
    0.008368747,
    0.0013814438,
];

/// 1/(2k+1) for k = 1..=5 (f32) and 1..=11 (f64): log(m) = 2s + 2s sum s^2k/(2k+1) with
/// s^2 <= 0.0295 leaves under 0.1 ulp.
const INV_ODD_F64: [f64; 11] = {
    let mut out = [0f64; 11];
    let mut k = 1;
    while k <= 11 {
        out[k - 1] = 1.0 / (2 * k + 1) as f64;
        k += 1;
    }
    out
};

const INV_ODD_F32: [f32; 5] = {
    let mut out = [0f32; 5];
    let mut i = 0;
    while i < out.len() {
        out[i] = INV_ODD_F64[i] as f32;
        i += 1;
    }
    out
};

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const HALF: f32 = 0.5;
    const TWO: f32 = 2.0;
    const INFINITY: f32 = f32::INFINITY;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
    const NAN: f32 = f32::NAN;
    const MAX: f32 = f32::MAX;
    const EPSILON: f32 = f32::EPSILON;
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2: f32 = std::f32::consts::LN_2;
    // 0x3f318000: 9 significant bits, so n * LN2_HI is exact for |n| < 2^15.
    const LN2_HI: f32 = f32::from_bits(0x3f31_8000);
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SQRT2: f32 = std::f32::consts::SQRT_2;
    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const ROUND_MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    const EXP_LO: f32 = -104.0;
    const EXP_HI: f32 = 89.0;
    const EXP_NORMAL_LO: f32 = -87.33;
    const EXPM1_LO: f32 = -20.0;
    // -13.18^2 / 2 = -86.86 > -125 ln 2: e^(-x^2/2) = 2^m e^(-s/2) with m >= -125, so
    // 2^m e^(-s/2) stays a normal number (e^(-s/2) >= 2^-1/2).
    const GELU_TAIL: f32 = 13.18;
    const SPLITTER: f32 = 4097.0; // 2^12 + 1

    #[inline(always)]
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn from_usize(n: usize) -> f32 {
        n as f32
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::abs(self)
    }
    #[inline(always)]
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn copysign(self, sign: f32) -> f32 {
        f32::copysign(self, sign)
    }
    #[inline(always)]
    fn ln(self) -> f32 {
        f32::ln(self)
    }
    #[inline(always)]
    fn mul_add(self, a: f32, b: f32) -> f32 {
        f32::mul_add(self, a, b)
    }
    #[inline(always)]
    fn pow2_from_magic(t: f32) -> f32 {
        let n = t.to_bits().wrapping_sub(Self::ROUND_MAGIC.to_bits());
        f32::from_bits(n.wrapping_add(127) << 23)
    }
    #[inline(always)]
    fn scale_by_pow2_from_magic(p: f32, t: f32) -> f32 {
        let n = t.to_bits().wrapping_sub(Self::ROUND_MAGIC.to_bits());
        f32::from_bits(p.to_bits().wrapping_add(n << 23))
    }
    #[inline(always)]
    fn pow2_split_from_magic(t: f32) -> (f32, f32) {
        let n = t.to_bits().wrapping_sub(Self::ROUND_MAGIC.to_bits()) as i32;
        let n1 = n >> 1;
        let n2 = n - n1;
        (
            f32::from_bits(((n1 + 127) as u32) << 23),
            f32::from_bits(((n2 + 127) as u32) << 23),
        )
    }
    #[inline(always)]
    fn expm1_poly<I: Isa>(r: f32) -> f32 {
        let p = estrin::<f32, I, 5>(r, &EXPM1_POLY_F32);
        madd::<f32, I>(r * r, p, r)
    }
    #[inline(always)]
    fn log_series<I: Isa>(s2: f32) -> f32 {
        s2 * horner::<f32, I, 5>(s2, &INV_ODD_F32)
    }
    #[inline(always)]
    fn exp_neg_half_poly<I: Isa>(s: f32) -> f32 {
        madd::<f32, I>(s, horner::<f32, I, 6>(s, &EXP_NEG_HALF_POLY_F32), 1.0)
    }
    #[inline(always)]
    fn normal_tail_scaled<I: Isa>(a: f32) -> f32 {
        let t = ERFC_KP_F32 / (ERFC_KP_F32 + a);
        t * horner::<f32, I, 9>(t - ERFC_CENTER_F32, &ERFC_POLY_F32)
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const HALF: f64 = 0.5;
    const TWO: f64 = 2.0;
    const INFINITY: f64 = f64::INFINITY;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
    const NAN: f64 = f64::NAN;
    const MAX: f64 = f64::MAX;
    const EPSILON: f64 = f64::EPSILON;
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2: f64 = std::f64::consts::LN_2;
    // fdlibm's split: LN2_HI has 32 significant bits, so n * LN2_HI is exact for |n| < 2^20.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const SQRT2: f64 = std::f64::consts::SQRT_2;
    const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
    const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    const EXP_LO: f64 = -746.0;
    const EXP_HI: f64 = 710.0;
    const EXP_NORMAL_LO: f64 = -708.3;
    const EXPM1_LO: f64 = -40.0;
    // -37.63^2 / 2 = -708.0 > -1021.5 ln 2: m >= -1021 (see f32's); gelu's results fall
    // below the smallest normal number from about -37.615.
    const GELU_TAIL: f64 = 37.63;
    const SPLITTER: f64 = 134_217_729.0; // 2^27 + 1

    #[inline(always)]
    fn from_f64(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_usize(n: usize) -> f64 {
        n as f64
    }
    #[inline(always)]
    fn abs(self) -> f64 {
        f64::abs(self)
    }
    #[inline(always)]
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn copysign(self, sign: f64) -> f64 {
        f64::copysign(self, sign)
    }
    #[inline(always)]
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    #[inline(always)]
    fn mul_add(self, a: f64, b: f64) -> f64 {
        f64::mul_add(self, a, b)
    }
    #[inline(always)]
    fn pow2_from_magic(t: f64) -> f64 {
        let n = t.to_bits().wrapping_sub(Self::ROUND_MAGIC.to_bits());
        f64::from_bits(n.wrapping_add(1023) << 52)
    }
    #[inline(always)]
    fn scale_by_pow2_from_magic(p: f64, t: f64) -> f64 {
        let n = t.to_bits().wrapping_sub(Self::ROUND_MAGIC.to_bits());
        f64::from_bits(p.to_bits().wrapping_add(n << 52))
    }
    #[inline(always)]
    fn pow2_split_from_magic(t: f64) -> (f64, f64) {
        let n = t.to_bits().wrapping_sub(Self::ROUND_MAGIC.to_bits()) as i64;
        let n1 = n >> 1;
        let n2 = n - n1;
        (
            f64::from_bits(((n1 + 1023) as u64) << 52),
            f64::from_bits(((n2 + 1023) as u64) << 52),
        )
    }
    #[inline(always)]
    fn expm1_poly<I: Isa>(r: f64) -> f64 {
        let p = estrin::<f64, I, 12>(r, &INV_FACT_F64);
        madd::<f64, I>(r * r, p, r)
    }
    #[inline(always)]
    fn log_series<I: Isa>(s2: f64) -> f64 {
        s2 * horner::<f64, I, 11>(s2, &INV_ODD_F64)
    }
    #[inline(always)]
    fn exp_neg_half_poly<I: Isa>(s: f64) -> f64 {
        1.0 + Self::expm1_poly::<I>(-0.5 * s)
    }
    #[inline(always)]
    fn normal_tail_scaled<I: Isa>(a: f64) -> f64 {
        // th = t / 2 with t = 3 / (3 + a / sqrt 2) = k / (k + a), k = 3 sqrt 2.
        let k = 3.0 * std::f64::consts::SQRT_2;
        let th = (0.5 * k) / (k + a);
        let u = madd::<f64, I>(4.0, th, -1.0);
        th * estrin::<f64, I, 26>(u, &ERFC_POLY_F64)
    }
}

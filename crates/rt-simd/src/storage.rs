//! [`Storage`]: the element types elementwise kernels read and write (f32, f64, and the
//! 16-bit floats, which are widened to f32 in registers and rounded back once).
//!
//! The 16-bit conversions are written as branch-free bit manipulation (after
//! F. Giesen, "half to float done quic", and the round-to-nearest-even variant of his
//! float-to-half), because `half`'s conversions branch per element and stop LLVM from
//! vectorizing the loops around them. The tests check them against `half` bit for bit.

use half::{bf16, f16};

use crate::real::Real;

/// An element type an elementwise kernel can load and store.
pub trait Storage: rt_view::Element + Copy + Send + Sync {
    /// The type the kernel computes in: f32 for the 16-bit floats.
    type Compute: Real;
    /// Widens to the compute type (exact).
    fn load(self) -> Self::Compute;
    /// Rounds to nearest even (NaN stays NaN, quieted).
    fn store(v: Self::Compute) -> Self;
}

impl Storage for f32 {
    type Compute = f32;
    #[inline(always)]
    fn load(self) -> f32 {
        self
    }
    #[inline(always)]
    fn store(v: f32) -> f32 {
        v
    }
}

impl Storage for f64 {
    type Compute = f64;
    #[inline(always)]
    fn load(self) -> f64 {
        self
    }
    #[inline(always)]
    fn store(v: f64) -> f64 {
        v
    }
}

impl Storage for bf16 {
    type Compute = f32;
    #[inline(always)]
    fn load(self) -> f32 {
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }
    #[inline(always)]
    fn store(v: f32) -> bf16 {
        let b = v.to_bits();
        let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
        let quiet_nan = (b >> 16) | 0x40;
        bf16::from_bits(if v.is_nan() { quiet_nan } else { rounded } as u16)
    }
}

impl Storage for f16 {
    type Compute = f32;
    #[inline(always)]
    fn load(self) -> f32 {
        f16_bits_to_f32(self.to_bits())
    }
    #[inline(always)]
    fn store(v: f32) -> f16 {
        f16::from_bits(f32_to_f16_bits(v))
    }
}

#[inline(always)]
fn f16_bits_to_f32(h: u16) -> f32 {
    const SHIFTED_EXP: u32 = 0x7c00 << 13;
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let shifted = (h & 0x7fff) << 13;
    let exp = shifted & SHIFTED_EXP;
    let normal = shifted + ((127 - 15) << 23);
    let inf_nan = normal + ((128 - 16) << 23);
    // Subnormal halves: renormalize through a float subtraction.
    let subnormal = (f32::from_bits(normal + (1 << 23)) - f32::from_bits(113 << 23)).to_bits();
    let bits = if exp == SHIFTED_EXP {
        inf_nan
    } else if exp == 0 {
        subnormal
    } else {
        normal
    };
    f32::from_bits(bits | sign)
}

#[inline(always)]
fn f32_to_f16_bits(v: f32) -> u16 {
    const F32_INF: u32 = 255 << 23;
    const F16_MAX_PLUS: u32 = (127 + 16) << 23;
    const DENORM_MAGIC: u32 = ((127 - 15) + (23 - 10) + 1) << 23;
    let bits = v.to_bits();
    let sign = bits & 0x8000_0000;
    let abs = bits ^ sign;
    let inf_nan: u32 = if abs > F32_INF { 0x7e00 } else { 0x7c00 };
    // Results that are subnormal halves (or zero): align the 10 mantissa bits at the
    // bottom of a float with a magic addition, which rounds to nearest even.
    let subnormal = (f32::from_bits(abs) + f32::from_bits(DENORM_MAGIC))
        .to_bits()
        .wrapping_sub(DENORM_MAGIC);
    // Normal halves: rebias the exponent and round to nearest even by hand.
    let mant_odd = (abs >> 13) & 1;
    let normal = abs
        .wrapping_add(((15u32.wrapping_sub(127)) << 23).wrapping_add(0xfff))
        .wrapping_add(mant_odd)
        >> 13;
    let out = if abs >= F16_MAX_PLUS {
        inf_nan
    } else if abs < (113 << 23) {
        subnormal
    } else {
        normal
    };
    (out | (sign >> 16)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_half_widens_exactly() {
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            let want = h.to_f32();
            let got = h.load();
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#x}");
            }
            let b = bf16::from_bits(bits);
            if b.is_nan() {
                assert!(b.load().is_nan());
            } else {
                assert_eq!(b.load().to_bits(), b.to_f32().to_bits());
            }
        }
    }

    fn check_narrowing(v: f32) {
        let h = f16::store(v);
        let want = f16::from_f32(v);
        if want.is_nan() {
            assert!(h.is_nan(), "{v:e}");
        } else {
            assert_eq!(
                h.to_bits(),
                want.to_bits(),
                "f16 of {v:e} ({:#x})",
                v.to_bits()
            );
        }
        let b = bf16::store(v);
        let want = bf16::from_f32(v);
        if want.is_nan() {
            assert!(b.is_nan(), "{v:e}");
        } else {
            assert_eq!(b.to_bits(), want.to_bits(), "bf16 of {v:e}");
        }
    }

    #[test]
    fn narrowing_matches_half_at_the_edges() {
        let edges = [
            0.0f32,
            -0.0,
            1.0,
            65504.0,
            65519.99,
            65520.0,
            1e10,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN_POSITIVE,
            5.96e-8,
            2.98e-8,
            2.99e-8,
            6.1e-5,
            6.103_515_6e-5,
            1.0 + f32::EPSILON,
            f32::from_bits(0x3f80_1000), // 1 + 2^-11: a tie for f16, rounds to even
            f32::from_bits(0x3f80_3000), // 1 + 3 * 2^-11: a tie that rounds up
            f32::from_bits(0x3f80_8000), // a tie for bf16
            f32::from_bits(0x3f81_8000), // a tie for bf16 that rounds up
        ];
        for v in edges {
            check_narrowing(v);
            check_narrowing(-v);
        }
        // Every 4099th bit pattern: a sweep over all exponents.
        for bits in (0..=u32::MAX).step_by(4099) {
            check_narrowing(f32::from_bits(bits));
        }
    }

    proptest! {
        #[test]
        fn narrowing_matches_half(bits in any::<u32>()) {
            check_narrowing(f32::from_bits(bits));
        }
    }
}

//! The common numeric field, `[-]digits[.digits]` in at most 15 digit-or-point bytes, read
//! with 128-bit SSSE3 / SSE4.1 instructions and no branch that depends on the digits.
//!
//! # Why
//!
//! The scalar scanner ([`scan_simple_decimal`]) reads eight digits at a time, but the number
//! of eight-digit steps, and whether a sign comes first, change from field to field
//! (`0.1234567` and `-12.34567891` take different paths), which the branch predictor can
//! not learn on random data (the CI VM exposes no counters to confirm the miss rate; the
//! speed-up below is the evidence). Here a field is one 16-byte load: compare masks give
//! the length and the point's position, one byte shuffle drops the point and right-aligns
//! the digits, and three multiply-add steps (`pmaddubsw`, `pmaddwd`, `pmaddwd`) turn them
//! into two eight-digit halves, the technique simdjson uses for integers. The decoder went
//! from 15.5 to 10.3 ns per field on benchmark-shaped rows (`parse_speed`).
//!
//! # Same answers as the scalar scanner
//!
//! [`DecimalScanner::scan`] returns exactly what [`scan_simple_decimal`] returns: the vector
//! path answers only for shapes it fully understands (an optional `-`, then 1..=15 digit or
//! point bytes with at most one point and at least one digit, then a byte that is neither,
//! and not `e`, `E` or `_`), with the same mantissa, fraction and sign, and passes everything
//! else (a `+` sign, longer numbers, two points, fewer than 17 bytes left in the buffer) to
//! the scalar scanner. The tests compare both on every shape.

use super::number::{Decimal, scan_simple_decimal};

/// Reads numeric fields with the vector path where this CPU (and `RUSTTORCH_SIMD`) allows.
#[derive(Debug, Clone, Copy)]
pub struct DecimalScanner {
    /// SSSE3 and SSE4.1 are present and the SIMD level is at least AVX2.
    vector: bool,
}

impl DecimalScanner {
    /// The scanner for the current SIMD level (`rusttorch_simd`'s, so that
    /// `RUSTTORCH_SIMD=scalar` or `sse2` selects the scalar path here too).
    pub fn current() -> Self {
        Self::at_level(rt_simd::simd_level())
    }

    /// The scanner for `level` (vector path from AVX2 up, which implies SSSE3 and SSE4.1;
    /// they are checked as well).
    pub fn at_level(level: rt_simd::SimdLevel) -> Self {
        #[cfg(target_arch = "x86_64")]
        let vector = level >= rt_simd::SimdLevel::Avx2
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1");
        #[cfg(not(target_arch = "x86_64"))]
        let vector = {
            let _ = level;
            false
        };
        Self { vector }
    }

    /// Whether the vector path is used.
    pub fn is_vector(self) -> bool {
        self.vector
    }

    /// [`scan_simple_decimal`]`(bytes)`, faster.
    #[inline(always)]
    pub fn scan(self, bytes: &[u8]) -> Option<(Decimal, usize)> {
        #[cfg(target_arch = "x86_64")]
        if self.vector && bytes.len() >= 17 {
            // SAFETY: `vector` is true only when SSSE3 and SSE4.1 were detected on this CPU,
            // and `bytes` has the 17 bytes `scan16` may read.
            if let Some(found) = unsafe { x86::scan16(bytes) } {
                return Some(found);
            }
        }
        scan_simple_decimal(bytes)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Decimal;

    /// Largest mantissa for which `m as f64` is exact (as in the scalar scanner).
    const MAX_EXACT_MANTISSA: u64 = 1 << 53;

    /// The vector path; `None` means "ask the scalar scanner".
    ///
    /// # Safety
    /// The CPU must support SSSE3 and SSE4.1, and `bytes.len() >= 17`.
    #[target_feature(enable = "ssse3,sse4.1")]
    pub unsafe fn scan16(bytes: &[u8]) -> Option<(Decimal, usize)> {
        let first = *bytes.first()?;
        if first == b'+' {
            return None;
        }
        let negative = first == b'-';
        let start = usize::from(negative);
        debug_assert!(bytes.len() >= start + 16);
        // SAFETY: `start <= 1` and the caller guarantees 17 bytes, so the 16 bytes from
        // `start` are inside `bytes`; `loadu` has no alignment requirement.
        let v = unsafe { _mm_loadu_si128(bytes.as_ptr().add(start).cast::<__m128i>()) };
        let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        // A digit is a byte whose distance from '0', taken unsigned, is at most 9.
        let is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
        let is_point = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8));
        let digit_mask = _mm_movemask_epi8(is_digit) as u32;
        let point_mask = _mm_movemask_epi8(is_point) as u32;
        // Bits 16 and up are clear in both masks, so `len <= 16`.
        let len = (!(digit_mask | point_mask)).trailing_zeros();
        if len >= 16 {
            return None;
        }
        let points = point_mask & ((1 << len) - 1);
        if points & points.wrapping_sub(1) != 0 {
            return None;
        }
        let has_point = points != 0;
        let point = if has_point {
            points.trailing_zeros()
        } else {
            len
        };
        let ndigits = len - u32::from(has_point);
        if ndigits == 0 || matches!(bytes.get(start + len as usize), Some(b'e' | b'E' | b'_')) {
            return None;
        }
        // Output byte i takes compacted digit j = i - (16 - ndigits) (none when j < 0: a
        // negative index has its top bit set, and `pshufb` writes 0 for it), which sits at
        // input byte j, or j + 1 once past the point.
        let iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let j = _mm_sub_epi8(iota, _mm_set1_epi8((16 - ndigits) as i8));
        let past_point = _mm_cmpgt_epi8(j, _mm_set1_epi8(point as i8 - 1));
        let source = _mm_sub_epi8(j, past_point);
        let digits = _mm_shuffle_epi8(d, source);
        // Sixteen digits (leading zeros) to two eight-digit halves.
        let pairs = _mm_maddubs_epi16(
            digits,
            _mm_setr_epi8(10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1),
        );
        let quads = _mm_madd_epi16(pairs, _mm_setr_epi16(100, 1, 100, 1, 100, 1, 100, 1));
        let quads16 = _mm_packus_epi32(quads, quads);
        let octs = _mm_madd_epi16(quads16, _mm_setr_epi16(10000, 1, 10000, 1, 0, 0, 0, 0));
        let high = _mm_cvtsi128_si32(octs) as u32 as u64;
        let low = _mm_extract_epi32::<1>(octs) as u32 as u64;
        let mantissa = high * 100_000_000 + low;
        if mantissa > MAX_EXACT_MANTISSA {
            return None;
        }
        let fraction = if has_point {
            (len - point - 1) as usize
        } else {
            0
        };
        Some((
            Decimal {
                mantissa,
                fraction,
                negative,
            },
            start + len as usize,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vector() -> Option<DecimalScanner> {
        let s = DecimalScanner::at_level(rt_simd::dispatch::detected_level());
        s.is_vector().then_some(s)
    }

    /// Both scanners on `text` followed by each terminator and padding (so the vector path
    /// has its 17 bytes), and on `text` at the very end of the buffer.
    fn agree(text: &[u8]) {
        let Some(fast) = vector() else {
            return;
        };
        for tail in [
            &b",0000000000000000"[..],
            b"\n",
            b"\r\n",
            b"e5,00000000000000000",
            b"",
        ] {
            let mut buf = text.to_vec();
            buf.extend_from_slice(tail);
            assert_eq!(
                fast.scan(&buf),
                scan_simple_decimal(&buf),
                "{:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    }

    #[test]
    fn the_vector_path_is_chosen_from_avx2_up_and_not_below() {
        let detected = rt_simd::dispatch::detected_level();
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            DecimalScanner::at_level(detected).is_vector(),
            detected >= rt_simd::SimdLevel::Avx2
        );
        for level in [rt_simd::SimdLevel::Scalar, rt_simd::SimdLevel::Sse2] {
            assert!(!DecimalScanner::at_level(level).is_vector());
        }
    }

    #[test]
    fn agrees_on_edge_shapes() {
        for text in [
            "0",
            "-0",
            "5.",
            ".5",
            "-.5",
            ".",
            "-",
            "+1.5",
            "-+1",
            "1.2.3",
            "00012.500",
            "123456789012345",
            "1234567890123456",
            "9007199254740992",
            "9007199254740993",
            "900719925474099.3",
            "-1.23456789012345",
            "1.234567890123456",
            "12345678.12345",
            "0.000000000000001",
            "1e5",
            "1E5",
            "1_000",
            "abc",
            "",
            "1,2",
            "-0.0",
            "99999999",
            "100000000",
            "0.30000001",
            "-3.4028235",
            "\u{e9}1",
            "1\u{e9}",
        ] {
            agree(text.as_bytes());
        }
    }

    #[test]
    fn agrees_on_every_short_string_of_number_bytes() {
        // Every string of up to 5 bytes over the bytes that steer the scanners.
        let alphabet = b"019.-+e,\n";
        let mut text = Vec::new();
        fn each(text: &mut Vec<u8>, alphabet: &[u8], left: usize) {
            agree(text);
            if left == 0 {
                return;
            }
            for &b in alphabet {
                text.push(b);
                each(text, alphabet, left - 1);
                text.pop();
            }
        }
        each(&mut text, alphabet, 5);
    }

    proptest! {
        #[test]
        fn agrees_with_the_scalar_scanner(
            sign in prop_oneof![Just(""), Just("-"), Just("+")],
            int in "[0-9]{0,12}",
            point in any::<bool>(),
            frac in "[0-9]{0,12}",
            junk in "[0-9.eE_a,\n-]{0,3}",
        ) {
            let text = format!("{sign}{int}{}{frac}{junk}", if point { "." } else { "" });
            agree(text.as_bytes());
        }
    }
}

//! Numbers from CSV text: floats correctly rounded (equal to Python's `float()` bit for bit),
//! integer labels exactly, and the strings that mean "missing".
//!
//! The hot path is [`parse_simple_decimal`], which reads the overwhelmingly common shape
//! `[-]digits[.digits]` in one pass that also finds where the field ends, so the parser needs
//! no separate delimiter search for numeric fields. It only answers when the result is
//! provably exact (Clinger's fast path: a mantissa below 2^53 divided by an exactly
//! representable power of ten is one correctly rounded IEEE operation); every other shape
//! goes to `fast-float2`, a port of Lemire's correctly rounded algorithm.

use std::collections::HashSet;

/// pandas' default NA strings (`pandas._libs.parsers.STR_NA_VALUES`), so that a CSV reads to
/// the same values here as with `pandas.read_csv`.
pub const PANDAS_NA_VALUES: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// Powers of ten that f64 represents exactly (up to 10^22).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Largest mantissa for which `m as f64` is exact.
const MAX_EXACT_MANTISSA: u64 = 1 << 53;

#[cfg(test)]
/// True when the 8 bytes of `v` are all ASCII digits.
#[inline(always)]
fn is_8digits(v: u64) -> bool {
    let a = v.wrapping_add(0x4646_4646_4646_4646);
    let b = v.wrapping_sub(0x3030_3030_3030_3030);
    (a | b) & 0x8080_8080_8080_8080 == 0
}

/// The value of 8 ASCII digits loaded little-endian (the first digit in the lowest byte),
/// three multiplications instead of eight (the SWAR trick used by fast_float).
#[inline(always)]
fn parse_8digits(mut v: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 0x000F_4240_0000_0064;
    const MUL2: u64 = 0x0000_2710_0000_0001;
    v = v.wrapping_sub(0x3030_3030_3030_3030);
    v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v1 = (v & MASK).wrapping_mul(MUL1);
    let v2 = ((v >> 16) & MASK).wrapping_mul(MUL2);
    v1.wrapping_add(v2) >> 32
}

#[inline(always)]
fn load8(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// `10^n` for `n <= 8`.
const POW10_INT: [u64; 9] = [
    1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000,
];

/// How many of the 8 bytes of `v` (first byte lowest) are ASCII digits before the first
/// non-digit. Carries and borrows only travel upward, from a non-digit byte into later
/// bytes, so the lowest flagged byte is exact even when later bytes are garbage.
#[inline(always)]
fn digit_prefix(v: u64) -> usize {
    let above = v.wrapping_add(0x4646_4646_4646_4646);
    let below = v.wrapping_sub(0x3030_3030_3030_3030);
    let flags = (above | below) & 0x8080_8080_8080_8080;
    (flags.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (1..=8) digit bytes of `v`: the digits are shifted to the top
/// and the vacated low bytes filled with `'0'`, so one [`parse_8digits`] reads them all.
#[inline(always)]
fn leading_digits_value(v: u64, n: usize) -> u64 {
    if n >= 8 {
        return parse_8digits(v);
    }
    let shift = 8 * (8 - n) as u32;
    let padded = (v << shift) | (0x3030_3030_3030_3030u64 >> (64 - shift));
    parse_8digits(padded)
}

/// Accumulates the digits at `bytes[i..]` into `mantissa`; returns the new offset and the
/// digit count, or `None` past 19 digits (the caller then uses the full parser).
#[inline(always)]
fn digits(bytes: &[u8], mut i: usize, mantissa: &mut u64, count: &mut usize) -> Option<usize> {
    while let Some(v) = load8(bytes, i) {
        let n = digit_prefix(v);
        if n == 0 {
            return Some(i);
        }
        if *count + n > 19 {
            return None;
        }
        *mantissa = *mantissa * POW10_INT[n] + leading_digits_value(v, n);
        *count += n;
        i += n;
        if n < 8 {
            return Some(i);
        }
    }
    // Fewer than 8 bytes left: one at a time.
    while let Some(&b) = bytes.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if *count >= 19 {
            return None;
        }
        *mantissa = *mantissa * 10 + u64::from(d);
        *count += 1;
        i += 1;
    }
    Some(i)
}

/// Parses `[-+]?digits[.digits]` at the start of `bytes` when the result is exact by
/// Clinger's fast path; returns the value and the bytes consumed, or `None` for any other
/// shape (exponent, too many digits, no digits...), which the caller hands to the full parser.
#[inline(always)]
pub fn parse_simple_decimal(bytes: &[u8]) -> Option<(f64, usize)> {
    let (negative, mut i) = match bytes.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0usize;
    i = digits(bytes, i, &mut mantissa, &mut count)?;
    let mut fraction = 0usize;
    if bytes.get(i) == Some(&b'.') {
        let int_digits = count;
        i = digits(bytes, i + 1, &mut mantissa, &mut count)?;
        fraction = count - int_digits;
    }
    if count == 0 || mantissa > MAX_EXACT_MANTISSA {
        return None;
    }
    // An exponent or anything glued to the digits is for the full parser to judge.
    if matches!(bytes.get(i), Some(b'e' | b'E' | b'_')) {
        return None;
    }
    let magnitude = mantissa as f64 / *POW10.get(fraction)?;
    let sign = u64::from(negative) << 63;
    Some((f64::from_bits(magnitude.to_bits() | sign), i))
}

/// Exactly `[-+]?digits` as int64, or `None` (overflow, a fraction, anything else).
#[inline]
pub fn parse_int(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively so that i64::MIN parses without overflow.
    let mut value: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if negative { Some(value) } else { value.checked_neg() }
}

/// A field read as a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<T> {
    /// A number.
    Number(T),
    /// Empty or an NA string.
    Missing,
    /// Not a number.
    Invalid,
}

/// The strings that mean "missing" (besides the empty field, always missing).
#[derive(Debug, Clone)]
pub struct NaValues {
    values: HashSet<Vec<u8>>,
    /// True when some NA string also parses as a number other than NaN ("-999"): then every
    /// field must be looked up before it is parsed, not only fields that fail to parse.
    numeric: bool,
}

impl NaValues {
    /// A set from `values` (pandas' defaults when `None`).
    pub fn new(values: Option<&[String]>) -> Self {
        let values: HashSet<Vec<u8>> = match values {
            Some(values) => values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            None => PANDAS_NA_VALUES.iter().map(|v| v.as_bytes().to_vec()).collect(),
        };
        let numeric = values
            .iter()
            .any(|v| fast_float2::parse::<f64, _>(v).is_ok_and(|x| !x.is_nan()));
        Self { values, numeric }
    }

    /// True when `text` is an NA string.
    #[inline]
    pub fn contains(&self, text: &[u8]) -> bool {
        text.is_empty() || self.values.contains(text)
    }

    /// Reads a float field: NA strings are missing, numbers correctly rounded, surrounding
    /// spaces and tabs ignored (as Python's `float()` and pandas do).
    #[inline]
    pub fn parse_float(&self, text: &[u8]) -> FieldValue<f64> {
        if text.is_empty() || (self.numeric && self.contains(text)) {
            return FieldValue::Missing;
        }
        if let Some((v, _)) = parse_simple_decimal(text).filter(|&(_, n)| n == text.len()) {
            return FieldValue::Number(v);
        }
        match fast_float2::parse::<f64, _>(text) {
            Ok(v) if v.is_nan() && self.contains(text) => FieldValue::Missing,
            Ok(v) => FieldValue::Number(v),
            Err(_) if self.contains(text) => FieldValue::Missing,
            Err(_) => {
                let trimmed = trim(text);
                if trimmed.len() == text.len() || trimmed.is_empty() {
                    FieldValue::Invalid
                } else {
                    self.parse_float(trimmed)
                }
            }
        }
    }

    /// Reads an integer label field exactly: `"1.5"` or `"1e3"` is invalid, not rounded.
    #[inline]
    pub fn parse_int(&self, text: &[u8]) -> FieldValue<i64> {
        if self.contains(text) {
            return FieldValue::Missing;
        }
        match parse_int(text).or_else(|| parse_int(trim(text))) {
            Some(v) => FieldValue::Number(v),
            None => FieldValue::Invalid,
        }
    }
}

/// `text` without surrounding ASCII spaces and tabs.
#[inline]
pub fn trim(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |p| p + 1);
    text.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(text: &str) -> Option<f64> {
        text.trim_matches([' ', '\t']).parse::<f64>().ok()
    }

    #[test]
    fn simple_decimals() {
        for text in ["0", "-0.0", "1.5", "0.12345678", "123456.123456789", "5.", ".5", "+7"] {
            let (v, n) = parse_simple_decimal(text.as_bytes()).unwrap();
            assert_eq!(n, text.len(), "{text}");
            assert_eq!(v.to_bits(), text.parse::<f64>().unwrap().to_bits(), "{text}");
        }
        for text in ["", "-", ".", "1e5", "abc", "12345678901234567890"] {
            let r = parse_simple_decimal(text.as_bytes());
            assert!(r.is_none() || r.unwrap().1 < text.len(), "{text}");
        }
    }

    #[test]
    fn na_strings_are_missing_numbers_are_not() {
        let na = NaValues::new(None);
        assert_eq!(na.parse_float(b"NaN"), FieldValue::Missing);
        assert_eq!(na.parse_float(b""), FieldValue::Missing);
        assert_eq!(na.parse_float(b"NA"), FieldValue::Missing);
        assert_eq!(na.parse_float(b" 2.5 "), FieldValue::Number(2.5));
        assert_eq!(na.parse_float(b"inf"), FieldValue::Number(f64::INFINITY));
        assert_eq!(na.parse_float(b"x1"), FieldValue::Invalid);
        let custom = NaValues::new(Some(&["-999".to_owned()]));
        assert_eq!(custom.parse_float(b"-999"), FieldValue::Missing);
        assert_eq!(custom.parse_float(b"NA"), FieldValue::Invalid);
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int(b"9223372036854775808"), None);
        assert_eq!(parse_int(b"1.5"), None);
        assert_eq!(parse_int(b"+"), None);
        let na = NaValues::new(None);
        assert_eq!(na.parse_int(b" 42"), FieldValue::Number(42));
        assert_eq!(na.parse_int(b"1.0"), FieldValue::Invalid);
    }

    proptest! {
        #[test]
        fn floats_match_std(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            prop_assume!(x.is_finite());
            for text in [format!("{x}"), format!("{x:e}"), format!("{x:.7}"), format!("{:.17}", x / 1e3)] {
                let na = NaValues::new(None);
                let expected = reference(&text).unwrap();
                prop_assert_eq!(na.parse_float(text.as_bytes()), FieldValue::Number(expected), "{}", text);
            }
        }

        #[test]
        fn short_decimals_match_std(int in 0u64..10_000_000, frac in 0u64..100_000_000_000, width in 1usize..12, neg in any::<bool>()) {
            let text = format!("{}{int}.{frac:0width$}", if neg { "-" } else { "" });
            let expected: f64 = text.parse().unwrap();
            let got = match parse_simple_decimal(text.as_bytes()) {
                Some((v, n)) if n == text.len() => v,
                _ => fast_float2::parse::<f64, _>(&text).unwrap(),
            };
            prop_assert_eq!(got.to_bits(), expected.to_bits(), "{}", text);
        }

        #[test]
        fn eight_digit_blocks(v in 0u64..100_000_000) {
            let text = format!("{v:08}");
            let word = u64::from_le_bytes(text.as_bytes().try_into().unwrap());
            prop_assert!(is_8digits(word));
            prop_assert_eq!(parse_8digits(word), v);
        }

        #[test]
        fn digit_prefixes(text in "[0-9]{0,9}[,.a-z\n\u{80}-\u{ff}]{0,8}") {
            let bytes = text.as_bytes();
            let mut padded = [b'x'; 8];
            let n = bytes.len().min(8);
            padded[..n].copy_from_slice(&bytes[..n]);
            let word = u64::from_le_bytes(padded);
            let expected = padded.iter().take_while(|b| b.is_ascii_digit()).count();
            prop_assert_eq!(digit_prefix(word), expected);
            if expected > 0 {
                let value: u64 = std::str::from_utf8(&padded[..expected]).unwrap().parse().unwrap();
                prop_assert_eq!(leading_digits_value(word, expected), value);
            }
        }

        #[test]
        fn ints_match_std(v in any::<i64>()) {
            prop_assert_eq!(parse_int(v.to_string().as_bytes()), Some(v));
        }
    }
}

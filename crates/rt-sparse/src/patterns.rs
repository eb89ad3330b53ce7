//! Attention pattern builders: sliding window, Longformer (window + global tokens) and
//! BigBird (window + global + seeded random blocks). Each returns a CSR pattern with sorted,
//! unique columns; the same arguments always give the same pattern.

use crate::error::{Result, SparseError};

/// A CSR pattern as `i64` row pointers and column indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternParts {
    /// Row pointers (`n + 1`).
    pub crow: Vec<i64>,
    /// Column indices, sorted within each row.
    pub col: Vec<i64>,
}

/// Cap on the stored entries of a built pattern: 2^31.
pub const MAX_PATTERN_NNZ: usize = 1 << 31;

fn build(n: usize, mut row: impl FnMut(usize, &mut Vec<usize>)) -> Result<PatternParts> {
    let mut crow = Vec::with_capacity(n + 1);
    crow.push(0i64);
    let mut col: Vec<i64> = Vec::new();
    let mut scratch = Vec::new();
    for i in 0..n {
        scratch.clear();
        row(i, &mut scratch);
        if col.len() + scratch.len() > MAX_PATTERN_NNZ {
            return Err(SparseError::LimitExceeded {
                what: "the attention pattern",
                requested: (col.len() + scratch.len()) as u128,
                limit: MAX_PATTERN_NNZ as u128,
                unit: "stored entries",
                knob: "smaller n or window",
            });
        }
        col.extend(scratch.iter().map(|&c| c as i64));
        crow.push(col.len() as i64);
    }
    Ok(PatternParts { crow, col })
}

fn positive(name: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(SparseError::InvalidArgument {
            name,
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// Query `i` attends to keys `j` with `|i - j| <= window / 2` (so `window + 1` keys away
/// from the edges for even `window`).
pub fn sliding_window(n: usize, window: usize) -> Result<PatternParts> {
    let half = window / 2;
    build(n, |i, out| {
        out.extend(i.saturating_sub(half)..=(i.saturating_add(half)).min(n.saturating_sub(1)));
    })
}

/// A sliding window plus global tokens: a global token attends to every key and every
/// query attends to it.
pub fn longformer(n: usize, window: usize, global_tokens: &[usize]) -> Result<PatternParts> {
    let mut global: Vec<usize> = global_tokens.to_vec();
    global.sort_unstable();
    global.dedup();
    if let Some(&g) = global.iter().find(|&&g| g >= n) {
        return Err(SparseError::IndexOutOfRange {
            name: "global_tokens",
            position: global_tokens.iter().position(|&x| x == g).unwrap_or(0),
            value: g as i64,
            bound: n,
            what: "tokens",
        });
    }
    let half = window / 2;
    build(n, |i, out| {
        if global.binary_search(&i).is_ok() {
            out.extend(0..n);
            return;
        }
        let lo = i.saturating_sub(half);
        let hi = i.saturating_add(half).min(n - 1);
        out.extend(global.iter().copied().filter(|&g| g < lo));
        out.extend(lo..=hi);
        out.extend(global.iter().copied().filter(|&g| g > hi));
    })
}

/// SplitMix64: a tiny, well-mixed generator, so patterns do not depend on a crate's RNG.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// BigBird's block pattern over blocks of `block` tokens: each query block attends to its
/// own and neighbouring blocks, to the first `num_global` blocks (which attend to every
/// block), and to `num_random` other blocks drawn with `seed`.
pub fn bigbird(
    n: usize,
    block: usize,
    num_random: usize,
    num_global: usize,
    seed: u64,
) -> Result<PatternParts> {
    positive("block", block)?;
    let nb = n.div_ceil(block);
    let mut blocks_of: Vec<Vec<usize>> = Vec::with_capacity(nb);
    for qb in 0..nb {
        let mut chosen = vec![false; nb];
        if qb < num_global {
            chosen.iter_mut().for_each(|c| *c = true);
        } else {
            let lo = qb.saturating_sub(1);
            let hi = (qb + 1).min(nb - 1);
            chosen[lo..=hi].iter_mut().for_each(|c| *c = true);
            for c in chosen.iter_mut().take(num_global.min(nb)) {
                *c = true;
            }
            let mut free: Vec<usize> = (0..nb).filter(|&b| !chosen[b]).collect();
            let mut state = seed ^ (qb as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
            for _ in 0..num_random.min(free.len()) {
                let pick = (splitmix64(&mut state) % free.len() as u64) as usize;
                chosen[free.swap_remove(pick)] = true;
            }
        }
        blocks_of.push((0..nb).filter(|&b| chosen[b]).collect());
    }
    build(n, |i, out| {
        for &b in &blocks_of[i / block] {
            out.extend(b * block..((b + 1) * block).min(n));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::{CSR, CsrPattern, Order};

    fn valid(p: &PatternParts, n: usize) {
        CsrPattern::try_new_named(CSR, n, n, &p.crow, &p.col, Order::SortedUnique).unwrap();
    }

    #[test]
    fn patterns_are_valid_and_deterministic() {
        let s = sliding_window(10, 4).unwrap();
        valid(&s, 10);
        assert_eq!(&s.col[..3], &[0, 1, 2]);
        assert_eq!(s.crow[6] - s.crow[5], 5);
        let l = longformer(12, 2, &[0, 7]).unwrap();
        valid(&l, 12);
        assert_eq!(l.crow[1] - l.crow[0], 12);
        assert_eq!(
            &l.col[l.crow[3] as usize..l.crow[4] as usize],
            &[0, 2, 3, 4, 7]
        );
        assert!(longformer(5, 2, &[5]).is_err());
        let b1 = bigbird(64, 8, 2, 1, 42).unwrap();
        let b2 = bigbird(64, 8, 2, 1, 42).unwrap();
        valid(&b1, 64);
        assert_eq!(b1, b2);
        assert_ne!(b1, bigbird(64, 8, 2, 1, 43).unwrap());
        assert!(bigbird(64, 0, 2, 1, 1).is_err());
        valid(&bigbird(61, 8, 3, 2, 7).unwrap(), 61);
    }
}

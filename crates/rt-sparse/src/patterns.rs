//! Attention pattern builders: sliding window, Longformer (window + global tokens) and
//! BigBird (window + global + seeded random blocks). Each returns a CSR pattern with sorted,
//! unique columns; the same arguments always give the same pattern.
//!
//! Cancellation: the builders read the calling thread's ambient cancel token
//! ([`rt_view::cancel::current`]) and check it about every `POLL_WORK` (2^20)
//! units of work (a unit: one entry written, or about a nanosecond of counting), in the
//! counting pass and in the building pass, returning [`SparseError::Cancelled`] and
//! dropping what was built.

use std::collections::HashMap;

use crate::error::{Result, SparseError};
use crate::limits::try_with_capacity;
use crate::parallel::Cancel;

/// What counting one row of a Longformer pattern costs in polling units (two binary
/// searches over the global tokens, some tens of nanoseconds).
const COUNT_ROW_WORK: usize = 32;

/// What one random draw of BigBird's block choice costs in polling units (a hash map
/// lookup and insert, some tens of nanoseconds).
const DRAW_WORK: usize = 64;

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

/// `LimitExceeded` unless a pattern of `total` stored entries stays within
/// [`MAX_PATTERN_NNZ`]; `knob` names the arguments that shrink it.
fn check_total(total: u128, knob: &'static str) -> Result<()> {
    let limit = MAX_PATTERN_NNZ as u128;
    crate::limits::check_limit(
        "the attention pattern",
        total,
        limit,
        "stored entries",
        knob,
    )
}

/// The arrays of a pattern being built, allocated once at their exact size (counted
/// beforehand, within the limit) and fallibly, so that nothing grows or aborts halfway.
struct Builder {
    crow: Vec<i64>,
    col: Vec<i64>,
}

impl Builder {
    fn new(n: usize, nnz: u128) -> Result<Self> {
        // Both are at most MAX_PATTERN_NNZ (+ 1) here: every row holds at least one entry.
        let nnz = usize::try_from(nnz).unwrap_or(usize::MAX);
        let mut crow = try_with_capacity("the row pointers of the pattern", n.saturating_add(1))?;
        crow.push(0);
        let col = try_with_capacity("the column indices of the pattern", nnz)?;
        Ok(Builder { crow, col })
    }

    fn push_row(&mut self, cols: impl IntoIterator<Item = usize>) {
        self.col.extend(cols.into_iter().map(|c| c as i64));
        self.crow.push(self.col.len() as i64);
    }

    fn finish(self) -> PatternParts {
        PatternParts {
            crow: self.crow,
            col: self.col,
        }
    }
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

/// The keys of query `i` in a window of `half` on either side, over `n >= 1` tokens.
fn window_keys(i: usize, half: usize, n: usize) -> std::ops::RangeInclusive<usize> {
    i.saturating_sub(half)..=i.saturating_add(half).min(n.saturating_sub(1))
}

/// The stored entries of `sliding_window(n, 2 * half)`, in O(1): with `h = min(half,
/// n - 1)`, every row has `2h + 1` keys less those cut off at the two edges.
fn sliding_window_nnz(n: usize, half: usize) -> u128 {
    if n == 0 {
        return 0;
    }
    let (n, h) = (n as u128, half.min(n - 1) as u128);
    n * (2 * h + 1) - h * (h + 1)
}

/// Query `i` attends to keys `j` with `|i - j| <= window / 2` (so `window + 1` keys away
/// from the edges for even `window`). The size is computed and checked against
/// [`MAX_PATTERN_NNZ`] before anything is allocated.
pub fn sliding_window(n: usize, window: usize) -> Result<PatternParts> {
    let half = window / 2;
    let total = sliding_window_nnz(n, half);
    check_total(total, "smaller n or window")?;
    let mut b = Builder::new(n, total)?;
    let cancel = Cancel::ambient();
    let mut poll = cancel.poll();
    for i in 0..n {
        let keys = window_keys(i, half, n);
        poll.tick(keys.end() - keys.start())?;
        b.push_row(keys);
    }
    Ok(b.finish())
}

/// A sliding window plus global tokens: a global token attends to every key and every
/// query attends to it. The size is counted and checked before anything is allocated.
pub fn longformer(n: usize, window: usize, global_tokens: &[usize]) -> Result<PatternParts> {
    longformer_with_leading(n, window, 0, global_tokens)
}

/// As [`longformer`], with tokens `0..num_leading` global as well (Python's
/// `global_tokens=g`), never listed before the size is checked: `num_leading` rows of
/// `n` entries each must fit the limit first.
pub fn longformer_with_leading(
    n: usize,
    window: usize,
    num_leading: usize,
    global_tokens: &[usize],
) -> Result<PatternParts> {
    let out_of_range = |position: usize, g: usize| SparseError::IndexOutOfRange {
        name: "global_tokens",
        position,
        value: g as i64,
        bound: n,
        what: "tokens",
    };
    if let Some((position, &g)) = global_tokens.iter().enumerate().find(|&(_, &g)| g >= n) {
        return Err(out_of_range(position, g));
    }
    if num_leading > n {
        // Tokens 0..num_leading: the first one out of range is token n, at position n.
        return Err(out_of_range(n, n));
    }
    let half = window / 2;
    let knob = "smaller n, window or global_tokens";
    // Every row holds at least its window, and a global token's row all n keys: these
    // refuse a huge n or num_leading in O(1), so that what follows (the list of global
    // tokens, the exact count) is bounded by MAX_PATTERN_NNZ.
    check_total(sliding_window_nnz(n, half), knob)?;
    check_total(num_leading as u128 * n as u128, knob)?;
    let mut global: Vec<usize> = (0..num_leading)
        .chain(global_tokens.iter().copied())
        .collect();
    global.sort_unstable();
    global.dedup();
    let is_global = |i: usize| global.binary_search(&i).is_ok();
    let cancel = Cancel::ambient();
    let mut poll = cancel.poll();
    let mut total = 0u128;
    for i in 0..n {
        poll.tick(COUNT_ROW_WORK)?;
        total += if is_global(i) {
            n as u128
        } else {
            let keys = window_keys(i, half, n);
            let inside = global.partition_point(|&g| g <= *keys.end())
                - global.partition_point(|&g| g < *keys.start());
            (keys.count() + global.len() - inside) as u128
        };
        check_total(total, knob)?;
    }
    let mut b = Builder::new(n, total)?;
    for i in 0..n {
        if is_global(i) {
            poll.tick(n)?;
            b.push_row(0..n);
            continue;
        }
        let keys = window_keys(i, half, n);
        poll.tick(keys.end() - keys.start() + global.len())?;
        let (lo, hi) = (*keys.start(), *keys.end());
        b.push_row(
            global
                .iter()
                .copied()
                .filter(|&g| g < lo)
                .chain(keys)
                .chain(global.iter().copied().filter(|&g| g > hi)),
        );
    }
    Ok(b.finish())
}

/// SplitMix64: a tiny, well-mixed generator, so patterns do not depend on a crate's RNG.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The blocks that query block `qb` (not a global one) attends to, sorted, into `out`:
/// its neighbours `lo..=hi`, the global blocks `0..g`, and `num_random` blocks drawn from
/// the rest. The draw is the one the first version made by listing the free blocks in
/// order and `swap_remove`-ing picks from that list; here the list stays virtual (the
/// free blocks are the complement of two intervals, so the `p`-th is computed) and only
/// the positions that swaps overwrote are stored, which costs O(g + num_random) per
/// block instead of O(number of blocks), with the same patterns as before.
fn chosen_blocks(
    qb: usize,
    nb: usize,
    g: usize,
    num_random: usize,
    seed: u64,
    swapped: &mut HashMap<usize, usize>,
    out: &mut Vec<usize>,
) {
    out.clear();
    let (lo, hi) = (qb.saturating_sub(1), (qb + 1).min(nb - 1));
    // qb >= g, so the neighbours past the global blocks are the non-empty e_lo..=hi.
    let e_lo = lo.max(g);
    let e_len = hi + 1 - e_lo;
    let free = nb - g - e_len;
    out.extend(0..g);
    out.extend(e_lo..=hi);
    if num_random >= free {
        // Every free block gets drawn.
        out.extend((g..e_lo).chain(hi + 1..nb));
        out.sort_unstable();
        return;
    }
    let nth_free = |p: usize| if g + p >= e_lo { g + p + e_len } else { g + p };
    swapped.clear();
    let mut len = free;
    let mut state = seed ^ (qb as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    for _ in 0..num_random {
        let pick = (splitmix64(&mut state) % len as u64) as usize;
        let at = |p: usize, swapped: &HashMap<usize, usize>| {
            swapped.get(&p).copied().unwrap_or_else(|| nth_free(p))
        };
        out.push(at(pick, swapped));
        let last = at(len - 1, swapped);
        swapped.insert(pick, last);
        len -= 1;
    }
    out.sort_unstable();
}

/// BigBird's block pattern over blocks of `block` tokens: each query block attends to its
/// own and neighbouring blocks, to the first `num_global` blocks (which attend to every
/// block), and to `num_random` other blocks drawn with `seed`. The size is counted and
/// checked before anything is allocated, in time proportional to the blocks' choices
/// (never to the square of the number of blocks).
pub fn bigbird(
    n: usize,
    block: usize,
    num_random: usize,
    num_global: usize,
    seed: u64,
) -> Result<PatternParts> {
    positive("block", block)?;
    let knob = "smaller n, block, num_random or num_global";
    // Every token attends to at least its own block: this refuses a huge n in O(1).
    check_total(n as u128, knob)?;
    let nb = n.div_ceil(block);
    let g = num_global.min(nb);
    let tokens = |b: usize| b * block..((b + 1) * block).min(n);
    let mut swapped = HashMap::new();
    let mut chosen = Vec::new();
    let cancel = Cancel::ambient();
    let mut poll = cancel.poll();
    // Drawing one block's choices: its neighbours, the global blocks and the draws.
    let choice_work = g.saturating_add(num_random.saturating_mul(DRAW_WORK));
    let mut total = 0u128;
    for qb in 0..nb {
        poll.tick(choice_work)?;
        let per_row = if qb < g {
            n
        } else {
            chosen_blocks(qb, nb, g, num_random, seed, &mut swapped, &mut chosen);
            chosen.iter().map(|&b| tokens(b).len()).sum()
        };
        total += tokens(qb).len() as u128 * per_row as u128;
        check_total(total, knob)?;
    }
    let mut b = Builder::new(n, total)?;
    for qb in 0..nb {
        if qb < g {
            for _ in tokens(qb) {
                poll.tick(n)?;
                b.push_row(0..n);
            }
            continue;
        }
        poll.tick(choice_work)?;
        chosen_blocks(qb, nb, g, num_random, seed, &mut swapped, &mut chosen);
        let per_row = chosen.len().saturating_mul(block);
        for _ in tokens(qb) {
            poll.tick(per_row)?;
            b.push_row(chosen.iter().flat_map(|&c| tokens(c)));
        }
    }
    Ok(b.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::{CSR, CsrPattern, Order};

    fn valid(p: &PatternParts, n: usize) {
        CsrPattern::try_new_named(CSR, n, n, &p.crow, &p.col, Order::SortedUnique).unwrap();
    }

    /// The first BigBird builder, O(number of blocks^2): the reference for the patterns.
    fn bigbird_reference(
        n: usize,
        block: usize,
        num_random: usize,
        num_global: usize,
        seed: u64,
    ) -> PatternParts {
        let nb = n.div_ceil(block);
        let mut crow = vec![0i64];
        let mut col = vec![];
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
        for i in 0..n {
            for &b in &blocks_of[i / block] {
                col.extend((b * block..((b + 1) * block).min(n)).map(|c| c as i64));
            }
            crow.push(col.len() as i64);
        }
        PatternParts { crow, col }
    }

    #[test]
    fn bigbird_gives_the_reference_patterns() {
        for n in [0, 1, 2, 7, 8, 9, 31, 64, 100] {
            for block in [1, 2, 3, 8, 200] {
                for num_random in [0, 1, 2, 5, 1000] {
                    for num_global in [0, 1, 2, 40] {
                        for seed in [0, 42] {
                            let got = bigbird(n, block, num_random, num_global, seed).unwrap();
                            let want = bigbird_reference(n, block, num_random, num_global, seed);
                            assert_eq!(
                                got, want,
                                "n {n} block {block} r {num_random} g {num_global}"
                            );
                            valid(&got, n);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sizes_are_checked_before_any_work() {
        let limit = |e: SparseError| match e {
            SparseError::LimitExceeded {
                requested, limit, ..
            } => (requested, limit),
            e => panic!("expected LimitExceeded, got {e:?}"),
        };
        // 2^40 rows of one key each: refused at once, not allocated or looped over.
        let e = sliding_window(1 << 40, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the attention pattern would need 1099511627776 stored entries, over the limit of \
             2147483648; raise the limit (smaller n or window) if this is intended"
        );
        assert_eq!(
            limit(sliding_window(usize::MAX, usize::MAX).unwrap_err()).1,
            1 << 31
        );
        assert!(e_is_limit(longformer(1 << 40, 2, &[0])));
        // Python's global_tokens=g for a huge g: refused before 0..g is listed.
        assert!(e_is_limit(longformer_with_leading(
            1 << 30,
            2,
            1 << 30,
            &[]
        )));
        let e = longformer_with_leading(10, 2, 11, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "global_tokens[10] = 10 is out of range for 10 tokens"
        );
        assert_eq!(
            longformer_with_leading(12, 2, 2, &[7]).unwrap(),
            longformer(12, 2, &[0, 1, 7]).unwrap()
        );
        // Under the window bound, over the limit through the global rows (2^33 entries),
        // refused by the count, before a row is built.
        let global: Vec<usize> = (0..1 << 12).collect();
        let r = longformer(1 << 20, 0, &global);
        assert!(e_is_limit(r.clone()));
        assert!(limit(r.err().unwrap_or(SparseError::Cancelled)).0 > 1 << 31);
        assert!(e_is_limit(bigbird(1 << 40, 1, 0, 0, 0)));
        // 2^16 blocks of 2^12 tokens, each seeing 5 blocks: 2^28 rows of 20480 entries,
        // refused after counting 26 blocks (the first builder took 2^32 steps first).
        assert!(e_is_limit(bigbird(1 << 28, 1 << 12, 2, 0, 0)));
        // Every block global: n^2 entries, refused.
        assert!(e_is_limit(bigbird(1 << 20, 1 << 10, 0, 1 << 10, 0)));
        assert_eq!(sliding_window_nnz(10, 2), 44);
        assert_eq!(sliding_window_nnz(10, 50), 100);
        assert_eq!(sliding_window_nnz(0, 3), 0);
        for (n, w) in [(1, 0), (5, 3), (9, 4), (12, 30)] {
            assert_eq!(
                sliding_window(n, w).unwrap().col.len() as u128,
                sliding_window_nnz(n, w / 2)
            );
        }
    }

    #[test]
    fn a_cancelled_ambient_token_stops_the_builders() {
        use rt_view::cancel::{CancelToken, with_token};
        let token = CancelToken::new();
        let build = || {
            [
                sliding_window(1000, 8),
                longformer(1000, 8, &[3, 500]),
                longformer_with_leading(1000, 8, 2, &[]),
                bigbird(1000, 8, 2, 1, 5),
            ]
        };
        let plain = build();
        // An uncancelled token changes nothing; a cancelled one stops every builder (the
        // first poll is at the first row).
        assert_eq!(with_token(&token, build), plain);
        token.cancel();
        for r in with_token(&token, build) {
            assert_eq!(r, Err(SparseError::Cancelled));
        }
        // Refused sizes are still refused first, before any polling.
        assert!(e_is_limit(with_token(&token, || sliding_window(
            1 << 40,
            0
        ))));
    }

    fn e_is_limit(r: Result<PatternParts>) -> bool {
        matches!(r, Err(SparseError::LimitExceeded { .. }))
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

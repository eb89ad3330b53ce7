//! The sample order of an epoch: a documented, stable permutation that depends only on
//! `(seed, epoch, stream)` and the number of items, never on the thread count.
//!
//! Algorithm (stable across releases; changing it is a breaking change of resumed runs):
//! 1. A ChaCha8 generator (`rand_chacha`, whose output stream is value-stable) keyed with the
//!    32 bytes `seed ‖ epoch ‖ stream ‖ purpose`, each a little-endian u64.
//! 2. Fisher–Yates from the last item down: for `i = n-1 .. 1`, swap item `i` with item `j`
//!    drawn uniformly from `0..=i` by Lemire's multiply-shift with rejection on the
//!    generator's `next_u64` (unbiased, and independent of any `rand` sampling code that
//!    might change between versions).

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// What a permutation is for, so that two uses of one `(seed, epoch)` never share a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The global row order of memory mode.
    Rows = 1,
    /// The chunk order of stream mode.
    Chunks = 2,
    /// The row order inside one stream-mode window (`stream` = the window index).
    Window = 3,
}

/// The generator for `(seed, epoch, stream, purpose)`.
pub fn rng(seed: u64, epoch: u64, stream: u64, purpose: Purpose) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[0..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    key[16..24].copy_from_slice(&stream.to_le_bytes());
    key[24..32].copy_from_slice(&(purpose as u64).to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A uniform integer in `0..bound` (`bound >= 1`), Lemire's method with rejection.
fn below(rng: &mut impl RngCore, bound: u64) -> u64 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let product = u128::from(rng.next_u64()) * u128::from(bound);
        // The low half decides rejection; the high half is the uniform result.
        if (product as u64) >= threshold {
            return (product >> 64) as u64;
        }
    }
}

/// Shuffles `items` in place with the documented Fisher–Yates.
pub fn shuffle<T>(items: &mut [T], rng: &mut impl RngCore) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// `0..n` in the order of `(seed, epoch, stream, purpose)`, or in natural order when
/// `shuffle` is false.
pub fn permutation(
    n: usize,
    shuffle_it: bool,
    seed: u64,
    epoch: u64,
    stream: u64,
    purpose: Purpose,
) -> Vec<u64> {
    let mut items: Vec<u64> = (0..n as u64).collect();
    if shuffle_it {
        shuffle(&mut items, &mut rng(seed, epoch, stream, purpose));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_permutation_and_deterministic() {
        let a = permutation(1000, true, 7, 3, 0, Purpose::Rows);
        let b = permutation(1000, true, 7, 3, 0, Purpose::Rows);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u64>>());
        assert_ne!(a, sorted, "a shuffle of 1000 items is not the identity");
        assert_ne!(a, permutation(1000, true, 7, 4, 0, Purpose::Rows));
        assert_ne!(a, permutation(1000, true, 8, 3, 0, Purpose::Rows));
        assert_ne!(a, permutation(1000, true, 7, 3, 0, Purpose::Chunks));
        assert_eq!(
            permutation(5, false, 7, 3, 0, Purpose::Rows),
            vec![0, 1, 2, 3, 4]
        );
        assert!(permutation(0, true, 1, 1, 1, Purpose::Rows).is_empty());
    }

    /// Pins the algorithm: a change here changes every user's resumed order.
    #[test]
    fn the_order_is_pinned() {
        let p = permutation(10, true, 0, 0, 0, Purpose::Rows);
        assert_eq!(p, PINNED.to_vec());
    }
    const PINNED: [u64; 10] = [1, 3, 9, 4, 0, 7, 6, 2, 8, 5];

    #[test]
    fn below_is_roughly_uniform() {
        let mut r = rng(1, 2, 3, Purpose::Rows);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[below(&mut r, 6) as usize] += 1;
        }
        // Expected 10 000 each; 5 sigma is about 470.
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }
}

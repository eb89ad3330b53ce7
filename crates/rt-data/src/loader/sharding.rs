//! Splitting one epoch's global sequence of `n` samples between `world_size` ranks.
//!
//! Every rank computes the same plan from `(n, world_size, batch_size, drop_last, policy)`
//! alone, so the number of batches agrees on every rank and collective ops never hang.
//! A rank always takes a *contiguous* range of the global (shuffled) sequence: in stream mode
//! that means it decodes only its own windows plus the two at its boundaries.

use crate::error::{DataError, Result};

/// What happens to the `n mod world_size` samples that do not split evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Uneven {
    /// Every rank gets `floor(n / W)` samples; the rest of the sequence is not served.
    Drop,
    /// Every rank gets `ceil(n / W)` samples; the sequence is extended by repeating its
    /// first samples.
    Pad,
    /// Every sample exactly once; ranks get `floor` or `ceil(n / W)` samples, and all yield
    /// the same number of batches, so a short rank's last batch is one sample smaller (and
    /// may be empty).
    #[default]
    EvenBatches,
}

impl Uneven {
    /// Parses `"drop"`, `"pad"` or `"even_batches"`.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "drop" => Ok(Uneven::Drop),
            "pad" => Ok(Uneven::Pad),
            "even_batches" => Ok(Uneven::EvenBatches),
            other => Err(DataError::InvalidArgument(format!(
                "uneven must be \"drop\", \"pad\" or \"even_batches\", got {other:?}"
            ))),
        }
    }

    /// The name [`from_name`](Self::from_name) accepts.
    pub fn name(self) -> &'static str {
        match self {
            Uneven::Drop => "drop",
            Uneven::Pad => "pad",
            Uneven::EvenBatches => "even_batches",
        }
    }
}

/// One rank's part of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// First position of the rank's range in the (possibly padded) global sequence.
    pub start: u64,
    /// Samples in the range; positions `>= n` wrap to `position % n` (padding).
    pub len: u64,
    /// Batches this rank yields: the same on every rank.
    pub batches: u64,
    /// Samples of the range actually served (`len`, minus a dropped incomplete last batch).
    pub served: u64,
    /// Samples of the sequence this rank leaves out this epoch (policy `drop` and
    /// `drop_last`), counted on rank 0 for the sequence's tail.
    pub dropped: u64,
    /// Repeated samples this rank serves (policy `pad`).
    pub padded: u64,
}

/// The batch size, checked once.
fn check(batch_size: usize, rank: usize, world_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(DataError::InvalidArgument(
            "batch_size must be >= 1".to_owned(),
        ));
    }
    if world_size == 0 || rank >= world_size {
        return Err(DataError::InvalidArgument(format!(
            "rank must be in 0..world_size, got rank={rank}, world_size={world_size}"
        )));
    }
    Ok(())
}

/// Plans rank `rank` of `world_size` for an epoch of `n` samples.
pub fn shard(
    n: u64,
    rank: usize,
    world_size: usize,
    batch_size: usize,
    drop_last: bool,
    policy: Uneven,
) -> Result<Shard> {
    check(batch_size, rank, world_size)?;
    let (r, w, b) = (rank as u64, world_size as u64, batch_size as u64);
    let (floor, ceil) = (n / w, n.div_ceil(w));
    let (start, len) = match policy {
        Uneven::Drop => (r * floor, floor),
        Uneven::Pad => (r * ceil, ceil),
        Uneven::EvenBatches => {
            // The first `n mod W` ranks take one sample more.
            let extra = n % w;
            (r * floor + r.min(extra), floor + u64::from(r < extra))
        }
    };
    // Batches are counted from the longest rank's length (the same on every rank).
    let batches = if drop_last {
        floor / b
    } else {
        ceil.div_ceil(b)
    };
    let batches = match policy {
        Uneven::Drop if !drop_last => floor.div_ceil(b),
        _ => batches,
    };
    let served = len.min(batches.saturating_mul(b));
    let tail_dropped = if r == 0 && policy == Uneven::Drop {
        n - floor * w
    } else {
        0
    };
    // Positions >= n of the served range are the repeated ones.
    let padded = (start + served).saturating_sub(n.max(start));
    Ok(Shard {
        start,
        len,
        batches,
        served,
        dropped: tail_dropped + (len - served),
        padded,
    })
}

/// The positions in the rank's range (relative to `shard.start`) of batch `index`.
pub fn batch_range(shard: &Shard, batch_size: usize, index: u64) -> std::ops::Range<u64> {
    let b = batch_size as u64;
    // Saturating: a batch_size near 2^64 must give one batch, not wrap around.
    let lo = index.saturating_mul(b).min(shard.served);
    let hi = index.saturating_add(1).saturating_mul(b).min(shard.served);
    lo..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(n: u64, w: usize, b: usize, drop_last: bool, p: Uneven) -> Vec<Shard> {
        (0..w)
            .map(|r| shard(n, r, w, b, drop_last, p).unwrap())
            .collect()
    }

    /// Samples (mod n) served by every rank, batch by batch.
    fn served(n: u64, w: usize, b: usize, drop_last: bool, p: Uneven) -> Vec<Vec<u64>> {
        all(n, w, b, drop_last, p)
            .iter()
            .map(|s| {
                (0..s.batches)
                    .flat_map(|i| batch_range(s, b, i))
                    .map(|pos| (s.start + pos) % n.max(1))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn even_batches_serves_each_sample_once_with_equal_batch_counts() {
        for n in 0..40u64 {
            for w in 1..5 {
                for b in 1..6 {
                    let shards = all(n, w, b, false, Uneven::EvenBatches);
                    assert!(shards.iter().all(|s| s.batches == shards[0].batches));
                    let mut seen: Vec<u64> = served(n, w, b, false, Uneven::EvenBatches).concat();
                    seen.sort_unstable();
                    assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} w={w} b={b}");
                    assert!(shards.iter().all(|s| s.dropped == 0 && s.padded == 0));
                }
            }
        }
    }

    #[test]
    fn drop_and_pad_give_equal_shares() {
        for n in 0..40u64 {
            for w in 1..5usize {
                for b in 1..6 {
                    let d = all(n, w, b, false, Uneven::Drop);
                    assert!(
                        d.iter()
                            .all(|s| s.len == n / w as u64 && s.batches == d[0].batches)
                    );
                    let dropped: u64 = d.iter().map(|s| s.dropped).sum();
                    assert_eq!(dropped, n % w as u64);
                    let mut seen = served(n, w, b, false, Uneven::Drop).concat();
                    seen.sort_unstable();
                    seen.dedup();
                    assert_eq!(seen.len() as u64, n - n % w as u64);

                    let p = all(n, w, b, false, Uneven::Pad);
                    assert!(p.iter().all(|s| s.len == n.div_ceil(w as u64)));
                    let padded: u64 = p.iter().map(|s| s.padded).sum();
                    assert_eq!(padded, n.div_ceil(w as u64) * w as u64 - n, "n={n} w={w}");
                    let mut seen = served(n, w, b, false, Uneven::Pad).concat();
                    seen.sort_unstable();
                    seen.dedup();
                    assert_eq!(seen.len() as u64, n);
                }
            }
        }
    }

    #[test]
    fn drop_last_yields_only_full_batches() {
        for n in 0..40u64 {
            for w in 1..4 {
                for p in [Uneven::Drop, Uneven::Pad, Uneven::EvenBatches] {
                    let shards = all(n, w, 3, true, p);
                    for s in &shards {
                        assert_eq!(s.batches, shards[0].batches);
                        for i in 0..s.batches {
                            assert_eq!(batch_range(s, 3, i).count(), 3);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(shard(10, 0, 1, 0, false, Uneven::Drop).is_err());
        assert!(shard(10, 2, 2, 1, false, Uneven::Drop).is_err());
        assert!(shard(10, 0, 0, 1, false, Uneven::Drop).is_err());
        assert!(Uneven::from_name("nope").is_err());
        assert_eq!(Uneven::from_name("pad").unwrap(), Uneven::Pad);
    }
}

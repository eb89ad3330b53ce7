//! Memory mode: the whole dataset sits in memory (decoded once by `materialize`, or resident
//! like a tensor or a memory-mapped .npy); each epoch is a global permutation of its rows,
//! sharded between ranks, and batches are gathered by worker threads ahead of the consumer.

use std::sync::Arc;
use std::time::Instant;

use super::BatchSpec;
use super::gather::Scratch;
use super::order::{Purpose, permutation};
use super::pipeline::Pipeline;
use super::sharding::{Shard, batch_range};
use super::stats::LoaderStats;
use crate::error::Result;
use crate::source::Dataset;

/// Everything one memory-mode epoch needs.
#[derive(Debug, Clone)]
pub struct MemoryEpoch {
    /// The data.
    pub dataset: Arc<Dataset>,
    /// The rank's part.
    pub shard: Shard,
    /// Shuffle or not, with which seed, which epoch.
    pub shuffle: bool,
    /// The loader's seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: u64,
    /// Builder threads.
    pub threads: usize,
    /// Batches in flight at most.
    pub capacity: usize,
}

/// Starts the epoch's workers at batch `first`.
pub fn start(
    plan: MemoryEpoch,
    spec: Arc<BatchSpec>,
    stats: Arc<LoaderStats>,
    first: u64,
) -> Result<Pipeline> {
    let n = plan.dataset.rows() as u64;
    // The identity needs no table; a shuffled epoch costs one u64 per row, shared by all
    // workers.
    let order: Option<Arc<Vec<u64>>> = plan.shuffle.then(|| {
        Arc::new(permutation(
            n as usize,
            true,
            plan.seed,
            plan.epoch,
            0,
            Purpose::Rows,
        ))
    });
    let mut pipeline = Pipeline::new(first, plan.shard.batches, plan.capacity, stats.clone());
    let remaining = plan.shard.batches.saturating_sub(first);
    let threads = plan.threads.clamp(1, remaining.clamp(1, 64) as usize);
    for worker in 0..threads {
        let queue = pipeline.queue();
        let cancel = pipeline.cancel_token();
        let (dataset, order, spec, stats) = (
            Arc::clone(&plan.dataset),
            order.clone(),
            Arc::clone(&spec),
            Arc::clone(&stats),
        );
        let shard = plan.shard;
        pipeline.spawn(format!("rt-data-gather-{worker}"), move || {
            let mut scratch = Scratch::default();
            // Sized by the samples this rank can actually serve, never by `batch_size`
            // alone: a huge batch_size over a small dataset must not reserve batch_size
            // u64s up front (that aborts the process when the allocation fails).
            let most = usize::try_from(shard.served).unwrap_or(usize::MAX);
            let mut rows: Vec<u64> = Vec::with_capacity(spec.batch_size.min(most));
            while let Some(ticket) = queue.take_ticket() {
                if cancel.is_cancelled() {
                    break;
                }
                let start = Instant::now();
                rows.clear();
                rows.extend(batch_range(&shard, spec.batch_size, ticket).map(|pos| {
                    // Positions past the end repeat the sequence from its start (`pad`).
                    let global = (shard.start + pos) % n.max(1);
                    order.as_ref().map_or(global, |o| o[global as usize])
                }));
                let batch = spec.build(ticket, &[(&dataset, &rows)], &mut scratch);
                stats.add_gather(start.elapsed());
                queue.put(ticket, batch);
            }
        })?;
    }
    Ok(pipeline)
}

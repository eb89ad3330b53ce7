//! Stream mode: data larger than memory, read again every epoch with bounded memory.
//!
//! The epoch's global sequence is defined from the data alone:
//! 1. the chunks are put in the order of `permutation(chunks, seed, epoch, Purpose::Chunks)`;
//! 2. consecutive chunks of that order form windows, using the chunks' exact record counts:
//!    window `w` takes chunks until it holds at least `shuffle_buffer >> (3 - w)` records
//!    for `w < 3` (a ramp of 1/8, 1/4, 1/2 of the buffer, so that the first batch needs
//!    only a small first window) and `shuffle_buffer` from then on (the last may be
//!    smaller);
//! 3. window `w` occupies the positions `[start_w, start_w + records_w)` of the sequence, and
//!    its decoded rows, permuted with `permutation(rows_w, seed, epoch, w, Purpose::Window)`,
//!    fill the first of them (rows skipped under `on_error="skip"` leave holes at the end
//!    of the window, so positions never depend on what other windows skipped).
//!
//! So the order is a pure function of (seed, epoch, data, shuffle_buffer), the same for any
//! thread count. A rank serves a contiguous range of positions: it decodes only the windows
//! that overlap it. One decoder thread reads windows (their chunks in parallel on the shared
//! pool) into a queue of capacity one; one batcher thread cuts batches from them. Three
//! windows are alive (being decoded, queued, being cut; four for a moment while a batch
//! spans two), plus the prefetched batches.
//!
//! With one rank and no resume the number of records is not needed, so the first batch
//! comes as soon as the first window is decoded, without a counting pass over the files.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rayon::prelude::*;
use rt_queue::BoundedQueue;
use rt_view::cancel::CancelToken;
use rt_view::{DType, OwnedTensor};

use super::BatchSpec;
use super::gather::{BatchTensor, Scratch};
use super::order::{Purpose, permutation};
use super::pipeline::Pipeline;
use super::sharding::{Shard, batch_range};
use super::stats::LoaderStats;
use crate::error::{DataError, Result};
use crate::options::OnError;
use crate::source::{
    Dataset, Destination, ErrorBudget, Matrix, ReadContext, ReadStats, RowsMut, Source,
};

/// Record counts of a source's chunks, counted when first needed and kept.
#[derive(Debug, Default)]
pub struct Counts {
    known: Mutex<Vec<Option<u64>>>,
}

impl Counts {
    /// Empty cache for `chunks` chunks, pre-filled with the counts the source states.
    pub fn new(source: &dyn Source) -> Self {
        Self {
            known: Mutex::new(source.chunks().iter().map(|c| c.rows).collect()),
        }
    }

    /// The records of chunk `chunk`.
    pub fn get(&self, source: &dyn Source, chunk: usize, ctx: ReadContext<'_>) -> Result<u64> {
        let cached = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(chunk)
            .copied()
            .flatten();
        if let Some(n) = cached {
            return Ok(n);
        }
        let n = crate::source::guard_chunk(source, chunk, || source.count_rows(chunk, ctx))?;
        if let Some(slot) = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(chunk)
        {
            *slot = Some(n);
        }
        Ok(n)
    }

    /// The total, counting every chunk not yet counted in parallel on the shared pool.
    pub fn total(&self, source: &dyn Source, ctx: ReadContext<'_>) -> Result<u64> {
        let chunks = source.chunks().len();
        let counts: Vec<Result<u64>> = rt_view::threads::install(|| {
            (0..chunks)
                .into_par_iter()
                .map(|c| self.get(source, c, ctx))
                .collect()
        })?;
        counts.into_iter().try_fold(0u64, |sum, c| Ok(sum + c?))
    }
}

/// Everything one stream-mode epoch needs.
#[derive(Debug, Clone)]
pub struct StreamEpoch {
    /// The source.
    pub source: Arc<dyn Source>,
    /// Its counts.
    pub counts: Arc<Counts>,
    /// Total records and the rank's part, when the plan needs them (several ranks, resume,
    /// `len()`); `None` for one rank read to the end.
    pub shard: Option<(u64, Shard)>,
    /// Shuffle chunks and windows or keep the source order.
    pub shuffle: bool,
    /// The loader's seed.
    pub seed: u64,
    /// The epoch.
    pub epoch: u64,
    /// Records per window at least.
    pub shuffle_buffer: u64,
    /// Batches in flight at most.
    pub capacity: usize,
    /// Drop the last incomplete batch (one rank without a known total).
    pub drop_last: bool,
    /// Row errors.
    pub on_error: OnError,
}

/// Windows before this index are smaller (see the module documentation).
const RAMP_WINDOWS: u64 = 3;

/// Records window `index` takes at least.
fn window_target(shuffle_buffer: u64, index: u64) -> u64 {
    (shuffle_buffer >> RAMP_WINDOWS.saturating_sub(index)).max(1)
}

/// A decoded window.
#[derive(Debug)]
struct Window {
    /// Its first position in the epoch's sequence.
    start: u64,
    /// Records it covers (decoded rows plus holes).
    records: u64,
    /// Decoded rows; positions `start + i` for `i < perm.len()` are row `perm[i]`.
    data: Dataset,
    perm: Vec<u64>,
}

impl Window {
    fn contains(&self, position: u64) -> bool {
        position >= self.start && position - self.start < self.records
    }
}

fn zeros(dtype: DType, rows: usize, width: usize) -> Result<BatchTensor> {
    let shape = [rows, width];
    Ok(match dtype {
        DType::Float32 => BatchTensor::F32(OwnedTensor::zeros(&shape)?),
        DType::Float64 => BatchTensor::F64(OwnedTensor::zeros(&shape)?),
        DType::Int64 => BatchTensor::I64(OwnedTensor::zeros(&shape)?),
        other => {
            return Err(DataError::InvalidArgument(format!(
                "unsupported dtype {other}"
            )));
        }
    })
}

/// Disjoint row ranges of `t`, `counts[i]` rows of `width` each.
fn split<'a>(t: &'a mut BatchTensor, counts: &[usize], width: usize) -> Vec<RowsMut<'a>> {
    fn cut<'a, T>(
        mut rest: &'a mut [T],
        counts: &[usize],
        width: usize,
        wrap: fn(&'a mut [T]) -> RowsMut<'a>,
    ) -> Vec<RowsMut<'a>> {
        let mut out = Vec::with_capacity(counts.len());
        for &c in counts {
            let take = (c * width).min(rest.len());
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
            out.push(wrap(head));
            rest = tail;
        }
        out
    }
    match t {
        BatchTensor::F32(t) => cut(t.as_mut_slice(), counts, width, RowsMut::F32),
        BatchTensor::F64(t) => cut(t.as_mut_slice(), counts, width, RowsMut::F64),
        BatchTensor::I64(t) => cut(t.as_mut_slice(), counts, width, RowsMut::I64),
    }
}

/// Moves rows `src..src+rows` to `dst` (dst <= src), for closing holes.
fn move_rows(t: &mut BatchTensor, width: usize, src: usize, dst: usize, rows: usize) {
    let (s, d, n) = (src * width, dst * width, rows * width);
    match t {
        BatchTensor::F32(t) => t.as_mut_slice().copy_within(s..s + n, d),
        BatchTensor::F64(t) => t.as_mut_slice().copy_within(s..s + n, d),
        BatchTensor::I64(t) => t.as_mut_slice().copy_within(s..s + n, d),
    }
}

fn into_matrix(t: BatchTensor) -> Matrix {
    match t {
        BatchTensor::F32(t) => Matrix::F32(t),
        BatchTensor::F64(t) => Matrix::F64(t),
        BatchTensor::I64(t) => Matrix::I64(t),
    }
}

/// Decodes `chunks` (with `counts` records each) into one window, chunks in parallel.
fn decode(
    source: &dyn Source,
    chunks: &[usize],
    counts: &[usize],
    ctx: ReadContext<'_>,
) -> Result<(Dataset, usize)> {
    let schema = source.schema();
    let (fw, lw) = (schema.num_features(), schema.num_labels());
    let total: usize = counts.iter().sum();
    let mut features = zeros(schema.feature_dtype, total, fw)?;
    let mut labels = if lw > 0 {
        Some(zeros(schema.label_dtype, total, lw)?)
    } else {
        None
    };
    let reports = {
        let fparts = split(&mut features, counts, fw);
        let mut lparts: Vec<Option<RowsMut<'_>>> = match labels.as_mut() {
            Some(l) => split(l, counts, lw).into_iter().map(Some).collect(),
            None => counts.iter().map(|_| None).collect(),
        };
        let jobs: Vec<_> = chunks
            .iter()
            .zip(counts)
            .zip(fparts)
            .zip(lparts.drain(..))
            .map(|(((&chunk, &capacity), features), labels)| {
                (
                    chunk,
                    Destination {
                        features,
                        labels,
                        capacity,
                    },
                )
            })
            .collect();
        let reports: Vec<Result<_>> = rt_view::threads::install(|| {
            jobs.into_par_iter()
                .map(|(chunk, dest)| {
                    crate::source::guard_chunk(&*source, chunk, || {
                        source.read_into(chunk, dest, ctx)
                    })
                })
                .collect()
        })?;
        reports.into_iter().collect::<Result<Vec<_>>>()?
    };
    // Close the holes left by skipped rows, keeping chunk order.
    let mut stats = ReadStats::default();
    let (mut offset, mut dense) = (0usize, 0usize);
    for (report, &count) in reports.into_iter().zip(counts) {
        let rows = report.rows.min(count);
        if offset != dense && rows > 0 {
            move_rows(&mut features, fw, offset, dense, rows);
            if let Some(l) = labels.as_mut() {
                move_rows(l, lw, offset, dense, rows);
            }
        }
        offset += count;
        dense += rows;
        stats.add(report);
    }
    Ok((
        Dataset {
            features: into_matrix(features),
            labels: labels.map(into_matrix),
            stats,
        },
        dense,
    ))
}

/// Position segments of the rank's range from batch `first` on, mapped into the sequence
/// (`pad` ranges that run past the end continue from position 0). `u64::MAX` = to the end.
fn segments(plan: &StreamEpoch, batch_size: usize, first: u64) -> Vec<(u64, u64)> {
    match &plan.shard {
        None => vec![(first.saturating_mul(batch_size as u64), u64::MAX)],
        Some((n, shard)) => {
            let lo = shard.start + batch_range(shard, batch_size, first).start;
            let hi = shard.start + shard.served;
            let n = (*n).max(1);
            // A `pad` range may wrap more than once when there are fewer samples than
            // ranks (n = 1, world = 3: every rank serves sample 0).
            let mut segments = Vec::new();
            let mut position = lo;
            while position < hi {
                let start = position % n;
                let take = (hi - position).min(n - start);
                segments.push((start, start + take));
                position += take;
            }
            segments
        }
    }
}

/// The decoder thread: walks the windows of the epoch and decodes those the range needs.
#[allow(clippy::too_many_arguments)] // the plan, the range, and the plumbing
fn run_decoder(
    plan: &StreamEpoch,
    segments: &[(u64, u64)],
    windows: &BoundedQueue<Result<Arc<Window>>>,
    stats: &LoaderStats,
    cancel: &CancelToken,
) -> Result<()> {
    let source = &*plan.source;
    let budget = ErrorBudget::new(plan.on_error);
    let ctx = ReadContext {
        cancel,
        errors: &budget,
    };
    let order = permutation(
        source.chunks().len(),
        plan.shuffle,
        plan.seed,
        plan.epoch,
        0,
        Purpose::Chunks,
    );
    for &(lo, hi) in segments {
        let (mut position, mut index, mut next_chunk) = (0u64, 0u64, 0usize);
        while position < hi && next_chunk < order.len() {
            cancel.check()?;
            let mut chunks = Vec::new();
            let mut counts = Vec::new();
            let mut records = 0u64;
            let target = window_target(plan.shuffle_buffer, index);
            while next_chunk < order.len() && (records < target || chunks.is_empty()) {
                let chunk = order[next_chunk] as usize;
                let count = plan.counts.get(source, chunk, ctx)?;
                chunks.push(chunk);
                counts.push(count as usize);
                records += count;
                next_chunk += 1;
            }
            if position + records > lo && records > 0 {
                let (data, rows) = decode(source, &chunks, &counts, ctx)?;
                stats.add_read(&data.stats);
                stats.add_window();
                let perm = permutation(
                    rows,
                    plan.shuffle,
                    plan.seed,
                    plan.epoch,
                    index,
                    Purpose::Window,
                );
                let window = Window {
                    start: position,
                    records,
                    data,
                    perm,
                };
                if windows.push(Ok(Arc::new(window))).is_err() {
                    return Ok(()); // closed: the epoch was stopped
                }
            }
            position += records;
            index += 1;
        }
    }
    Ok(())
}

/// Starts the epoch's decoder and batcher at batch `first`.
pub fn start(
    plan: StreamEpoch,
    spec: Arc<BatchSpec>,
    stats: Arc<LoaderStats>,
    first: u64,
) -> Result<Pipeline> {
    let end = plan.shard.map_or(u64::MAX, |(_, s)| s.batches);
    let mut pipeline = Pipeline::new(first, end, plan.capacity, Arc::clone(&stats));
    let windows: Arc<BoundedQueue<Result<Arc<Window>>>> =
        Arc::new(BoundedQueue::new(1).map_err(|e| DataError::InvalidArgument(e.to_string()))?);
    {
        let windows = Arc::clone(&windows);
        pipeline.on_stop(Box::new(move || {
            windows.close();
        }));
    }
    let segments = segments(&plan, spec.batch_size, first);
    let plan = Arc::new(plan);
    {
        let (plan, windows, stats) = (Arc::clone(&plan), Arc::clone(&windows), Arc::clone(&stats));
        let cancel = pipeline.cancel_token();
        let segments = segments.clone();
        pipeline.spawn("rt-data-decode".to_owned(), move || {
            if let Err(error) = run_decoder(&plan, &segments, &windows, &stats, &cancel) {
                let _ = windows.push(Err(error));
            }
            windows.close();
        })?;
    }
    let queue = pipeline.queue();
    let cancel = pipeline.cancel_token();
    pipeline.spawn("rt-data-batch".to_owned(), move || {
        let mut scratch = Scratch::default();
        let mut current: Option<Arc<Window>> = None;
        // Positions of the rank, in order, across the segments.
        let mut positions = segments.iter().flat_map(|&(lo, hi)| lo..hi);
        while let Some(ticket) = queue.take_ticket() {
            if cancel.is_cancelled() {
                break;
            }
            let wanted = match &plan.shard {
                Some((_, shard)) => batch_range(shard, spec.batch_size, ticket).count(),
                None => spec.batch_size,
            };
            let mut pieces: Vec<(Arc<Window>, Vec<u64>)> = Vec::new();
            let mut exhausted = false;
            let mut failure = None;
            for _ in 0..wanted {
                let Some(position) = positions.next() else {
                    exhausted = true;
                    break;
                };
                while !current.as_ref().is_some_and(|w| w.contains(position)) {
                    match windows.pop() {
                        Ok(Ok(w)) => current = Some(w),
                        Ok(Err(e)) => {
                            failure = Some(e);
                            break;
                        }
                        Err(_) => {
                            exhausted = true;
                            break;
                        }
                    }
                }
                if failure.is_some() || exhausted {
                    break;
                }
                let Some(window) = current.as_ref() else {
                    break;
                };
                let offset = position - window.start;
                let Some(&row) = window.perm.get(offset as usize) else {
                    continue; // a hole left by a skipped row
                };
                match pieces.last_mut() {
                    Some((w, rows)) if Arc::ptr_eq(w, window) => rows.push(row),
                    _ => pieces.push((Arc::clone(window), vec![row])),
                }
            }
            if let Some(error) = failure {
                queue.put(ticket, Err(error));
                break;
            }
            let rows: usize = pieces.iter().map(|(_, r)| r.len()).sum();
            let unknown_end = plan.shard.is_none();
            if exhausted && unknown_end && (rows == 0 || (plan.drop_last && rows < wanted)) {
                queue.finish_at(ticket);
                break;
            }
            let refs: Vec<(&Dataset, &[u64])> = pieces
                .iter()
                .map(|(w, r)| (&w.data, r.as_slice()))
                .collect();
            // Only the copy counts as gathering; waiting for windows is the decoder's time.
            let started = Instant::now();
            let batch = spec.build(ticket, &refs, &mut scratch);
            stats.add_gather(started.elapsed());
            queue.put(ticket, batch);
            if exhausted && unknown_end {
                queue.finish_at(ticket + 1);
                break;
            }
        }
    })?;
    Ok(pipeline)
}

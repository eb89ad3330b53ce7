//! The loader: epochs, shuffling, sharding, batching, prefetch, resume and statistics.
//!
//! - [`order`]: the documented, stable permutation of an epoch.
//! - [`sharding`]: each rank's contiguous part of the epoch and the `uneven` policies.
//! - [`memory`] and [`stream`]: the two ways of producing an epoch's batches.
//! - [`gather`]: copying rows into batch buffers (and applying transforms).
//! - [`prefetch`] and [`pipeline`]: the bounded reorder buffer and the epoch's threads.
//! - [`state`]: resume points and the data fingerprint. [`stats`]: counters.
//!
//! A [`Loader`] is made once per dataset; [`Loader::start`] runs one epoch from a given
//! batch and returns a [`Pipeline`] that yields its batches in order.

pub mod gather;
pub mod memory;
pub mod order;
pub mod pipeline;
pub mod prefetch;
pub mod sharding;
pub mod state;
pub mod stats;
pub mod stream;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use rt_view::DType;
use rt_view::cancel::CancelToken;

pub use gather::{Batch, BatchTensor};
pub use pipeline::Pipeline;
pub use prefetch::Pop;
pub use sharding::{Shard, Uneven};
pub use state::{Fingerprint, Progress, STATE_VERSION};
pub use stats::{LoaderStats, StatsSnapshot};

use crate::error::{DataError, Result};
use crate::materialize::materialize;
use crate::options::OnError;
use crate::source::{Dataset, ErrorBudget, ReadContext, Source};
use crate::transform::{Transform, Transforms};
use gather::{Piece, Scratch};

/// Where an epoch's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decoded once into memory; a global shuffle per epoch.
    Memory,
    /// Read again each epoch, window by window, with bounded memory.
    Stream,
}

impl Mode {
    /// `"memory"` or `"stream"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Memory => "memory",
            Mode::Stream => "stream",
        }
    }
}

/// How to serve a source.
#[derive(Debug, Clone)]
pub struct LoaderOptions {
    /// Samples per batch (>= 1).
    pub batch_size: usize,
    /// Reshuffle each epoch from `(seed, epoch)`.
    pub shuffle: bool,
    /// The shuffle's seed.
    pub seed: u64,
    /// Drop each rank's last incomplete batch.
    pub drop_last: bool,
    /// Gathering threads in memory mode.
    pub num_threads: usize,
    /// Batches built ahead of the consumer, at most.
    pub prefetch: usize,
    /// Bytes of batches built ahead of the consumer, at most (at least one batch).
    pub prefetch_bytes: usize,
    /// This process's rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// The remainder policy.
    pub uneven: Uneven,
    /// Memory or stream.
    pub mode: Mode,
    /// Stream mode: records per shuffle window, at least.
    pub shuffle_buffer: u64,
    /// Row errors.
    pub on_error: OnError,
    /// Shape of one sample's features (default `[num_features]`).
    pub feature_shape: Option<Vec<usize>>,
    /// Shape of one sample's labels (default `[]` for one label column, else `[labels]`).
    pub label_shape: Option<Vec<usize>>,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            shuffle: false,
            seed: 0,
            drop_last: false,
            num_threads: rt_view::threads::get_num_threads(),
            prefetch: 4,
            prefetch_bytes: 256 << 20,
            rank: 0,
            world_size: 1,
            uneven: Uneven::EvenBatches,
            mode: Mode::Memory,
            shuffle_buffer: 1 << 16,
            on_error: OnError::Raise,
            feature_shape: None,
            label_shape: None,
        }
    }
}

/// What a batch looks like; shared by the builder threads.
#[derive(Debug)]
pub struct BatchSpec {
    /// Samples per batch.
    pub batch_size: usize,
    feature_dtype: DType,
    feature_width: usize,
    feature_shape: Vec<usize>,
    label_dtype: DType,
    label_width: usize,
    label_shape: Vec<usize>,
    transforms: Transforms,
}

impl BatchSpec {
    /// Builds batch `index` from rows of one or more datasets.
    pub fn build(
        &self,
        index: u64,
        parts: &[(&Dataset, &[u64])],
        scratch: &mut Scratch,
    ) -> Result<Batch> {
        let features: Vec<Piece<'_>> = parts
            .iter()
            .map(|(d, rows)| Piece {
                matrix: &d.features,
                rows,
            })
            .collect();
        let rows = parts.iter().map(|(_, r)| r.len()).sum();
        let features = gather::gather_features(
            &features,
            self.feature_dtype,
            self.feature_width,
            &self.feature_shape,
            &self.transforms,
            scratch,
        )?;
        let labels = if self.label_width > 0 {
            let pieces = parts
                .iter()
                .map(|(d, rows)| {
                    d.labels
                        .as_ref()
                        .map(|matrix| Piece { matrix, rows })
                        .ok_or_else(|| {
                            DataError::InvalidArgument("internal: labels missing".to_owned())
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            Some(gather::gather(
                &pieces,
                self.label_dtype,
                self.label_width,
                &self.label_shape,
            )?)
        } else {
            None
        };
        Ok(Batch {
            index,
            features,
            labels,
            rows,
        })
    }

    /// Bytes of a full batch (saturating: only used to cap the prefetch depth).
    pub fn batch_bytes(&self) -> usize {
        self.batch_size.saturating_mul(
            self.feature_width * self.feature_dtype.itemsize()
                + self.label_width * self.label_dtype.itemsize(),
        )
    }
}

fn check_shape(what: &str, shape: &[usize], width: usize) -> Result<()> {
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n != Some(width) {
        return Err(DataError::InvalidArgument(format!(
            "{what} shape {shape:?} does not hold {width} values per sample"
        )));
    }
    Ok(())
}

/// A dataset served in epochs. See the module documentation.
#[derive(Debug)]
pub struct Loader {
    source: Arc<dyn Source>,
    options: LoaderOptions,
    dataset: Option<Arc<Dataset>>,
    counts: Arc<stream::Counts>,
    spec: Arc<BatchSpec>,
    stats: Arc<LoaderStats>,
}

impl Loader {
    /// Opens `source` for serving: in memory mode it is decoded (or taken resident) now;
    /// transforms that need fitting are fitted now, in one pass each.
    pub fn new(
        source: Arc<dyn Source>,
        options: LoaderOptions,
        transforms: Vec<Transform>,
        cancel: &CancelToken,
    ) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(DataError::InvalidArgument(
                "batch_size must be >= 1".to_owned(),
            ));
        }
        if options.prefetch == 0 {
            return Err(DataError::InvalidArgument(
                "prefetch must be >= 1".to_owned(),
            ));
        }
        if options.num_threads == 0 {
            return Err(DataError::InvalidArgument(
                "num_threads must be >= 1".to_owned(),
            ));
        }
        if options.shuffle_buffer == 0 {
            return Err(DataError::InvalidArgument(
                "shuffle_buffer must be >= 1".to_owned(),
            ));
        }
        sharding::shard(
            0,
            options.rank,
            options.world_size,
            options.batch_size,
            options.drop_last,
            options.uneven,
        )?;
        let schema = source.schema().clone();
        let (fw, lw) = (schema.num_features(), schema.num_labels());
        let feature_shape = options.feature_shape.clone().unwrap_or_else(|| vec![fw]);
        check_shape("feature", &feature_shape, fw)?;
        let label_shape = options.label_shape.clone().unwrap_or_else(|| match lw {
            1 => Vec::new(),
            n => vec![n],
        });
        check_shape("label", &label_shape, lw)?;
        let mut transforms = Transforms::new(transforms, fw)?;
        let stats = Arc::new(LoaderStats::default());
        let counts = Arc::new(stream::Counts::new(&*source));
        let budget = ErrorBudget::new(options.on_error);
        let ctx = ReadContext {
            cancel,
            errors: &budget,
        };
        let dataset = match options.mode {
            Mode::Memory => {
                let data = materialize(&*source, ctx)?;
                stats.add_read(&data.stats);
                Some(Arc::new(data))
            }
            Mode::Stream => None,
        };
        if transforms.needs_fit() {
            fit(&mut transforms, &*source, dataset.as_deref(), &counts, ctx)?;
        }
        let spec = Arc::new(BatchSpec {
            batch_size: options.batch_size,
            feature_dtype: schema.feature_dtype,
            feature_width: fw,
            feature_shape,
            label_dtype: schema.label_dtype,
            label_width: lw,
            label_shape,
            transforms,
        });
        Ok(Self {
            source,
            options,
            dataset,
            counts,
            spec,
            stats,
        })
    }

    /// The options.
    pub fn options(&self) -> &LoaderOptions {
        &self.options
    }

    /// The source.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// The data in memory mode.
    pub fn dataset(&self) -> Option<&Arc<Dataset>> {
        self.dataset.as_ref()
    }

    /// Samples per epoch across all ranks (stream mode counts every chunk once, in
    /// parallel, and keeps the counts).
    pub fn num_samples(&self, cancel: &CancelToken) -> Result<u64> {
        match &self.dataset {
            Some(d) => Ok(d.rows() as u64),
            None => {
                let budget = ErrorBudget::new(self.options.on_error);
                let ctx = ReadContext {
                    cancel,
                    errors: &budget,
                };
                self.counts.total(&*self.source, ctx)
            }
        }
    }

    /// This rank's part of every epoch.
    pub fn shard(&self, cancel: &CancelToken) -> Result<Shard> {
        let o = &self.options;
        sharding::shard(
            self.num_samples(cancel)?,
            o.rank,
            o.world_size,
            o.batch_size,
            o.drop_last,
            o.uneven,
        )
    }

    /// The transforms with their fitted parameters.
    pub fn transforms(&self) -> &[Transform] {
        self.spec.transforms.list()
    }

    /// Replaces the transforms' parameters (from a state); no epoch may be running.
    pub fn set_transforms(&mut self, list: Vec<Transform>) -> Result<()> {
        let mut spec = BatchSpec {
            transforms: self.spec.transforms.clone(),
            feature_shape: self.spec.feature_shape.clone(),
            label_shape: self.spec.label_shape.clone(),
            ..*self.spec
        };
        spec.transforms.set_list(list)?;
        self.spec = Arc::new(spec);
        Ok(())
    }

    /// The statistics so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The shared counters, for the consumer's side.
    pub fn stats_handle(&self) -> &Arc<LoaderStats> {
        &self.stats
    }

    /// The data's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        let rows = self.dataset.as_ref().map(|d| d.rows() as u64).or_else(|| {
            self.source
                .chunks()
                .iter()
                .try_fold(0u64, |s, c| Some(s + c.rows?))
        });
        state::fingerprint(&*self.source, rows)
    }

    fn capacity(&self) -> usize {
        let by_bytes = self.options.prefetch_bytes / self.spec.batch_bytes().max(1);
        self.options.prefetch.min(by_bytes).max(1)
    }

    /// Starts epoch `epoch` at batch `first` (0 for a fresh epoch).
    pub fn start(&self, epoch: u64, first: u64, cancel: &CancelToken) -> Result<Pipeline> {
        let o = &self.options;
        match &self.dataset {
            Some(dataset) => {
                let shard = self.shard(cancel)?;
                self.stats.add_policy(shard.dropped, shard.padded);
                memory::start(
                    memory::MemoryEpoch {
                        dataset: Arc::clone(dataset),
                        shard,
                        shuffle: o.shuffle,
                        seed: o.seed,
                        epoch,
                        threads: o.num_threads,
                        capacity: self.capacity(),
                    },
                    Arc::clone(&self.spec),
                    Arc::clone(&self.stats),
                    first,
                )
            }
            None => {
                // One rank read from the start to the end needs no total: skip the
                // counting pass so that the first batch comes quickly.
                let needs_total = o.world_size > 1 || first > 0;
                let shard = if needs_total {
                    let n = self.num_samples(cancel)?;
                    let shard = self.shard(cancel)?;
                    self.stats.add_policy(shard.dropped, shard.padded);
                    Some((n, shard))
                } else {
                    None
                };
                stream::start(
                    stream::StreamEpoch {
                        source: Arc::clone(&self.source),
                        counts: Arc::clone(&self.counts),
                        shard,
                        shuffle: o.shuffle,
                        seed: o.seed,
                        epoch,
                        shuffle_buffer: o.shuffle_buffer,
                        capacity: self.capacity(),
                        drop_last: o.drop_last,
                        on_error: o.on_error,
                    },
                    Arc::clone(&self.spec),
                    Arc::clone(&self.stats),
                    first,
                )
            }
        }
    }
}

/// Fits the transforms on the whole dataset: the memory-mode tensor, or every chunk of a
/// stream-mode source decoded one at a time.
fn fit(
    transforms: &mut Transforms,
    source: &dyn Source,
    dataset: Option<&Dataset>,
    counts: &stream::Counts,
    ctx: ReadContext<'_>,
) -> Result<()> {
    let width = source.schema().num_features();
    match source.schema().feature_dtype {
        DType::Float32 => fit_typed::<f32>(transforms, source, dataset, counts, ctx, width),
        DType::Float64 => fit_typed::<f64>(transforms, source, dataset, counts, ctx, width),
        other => Err(DataError::InvalidArgument(format!(
            "transforms need float32 or float64 features, got {other}"
        ))),
    }
}

fn fit_typed<T: rt_simd::Real + rt_simd::Storage>(
    transforms: &mut Transforms,
    source: &dyn Source,
    dataset: Option<&Dataset>,
    counts: &stream::Counts,
    ctx: ReadContext<'_>,
    width: usize,
) -> Result<()> {
    transforms.fit::<T>(|feed| match dataset {
        Some(d) => {
            let all = d.features.as_slice::<T>().ok_or_else(|| {
                DataError::InvalidArgument("internal: feature dtype mismatch".to_owned())
            })?;
            feed(all)
        }
        None => {
            for chunk in 0..source.chunks().len() {
                ctx.cancel.check()?;
                let n = counts.get(source, chunk, ctx)? as usize;
                // `n` can come from a file's metadata: allocate fallibly, so that a damaged
                // row count is an error instead of an abort.
                let mut features = Vec::new();
                n.checked_mul(width)
                    .filter(|&len| features.try_reserve_exact(len).is_ok())
                    .ok_or_else(|| {
                        DataError::InvalidArgument(format!(
                            "cannot allocate {n} rows of {width} features to fit the transforms"
                        ))
                    })?;
                features.resize(n * width, T::ZERO);
                // Readers fill labels too when the schema has them (check_destination).
                let report = crate::source::guard_chunk(source, chunk, || {
                    if source.schema().num_labels() > 0 {
                        read_with_labels::<T>(source, chunk, n, &mut features, ctx)
                    } else {
                        source.read_into(
                            chunk,
                            crate::source::Destination {
                                features: rows_mut(&mut features),
                                labels: None,
                                capacity: n,
                            },
                            ctx,
                        )
                    }
                })?;
                feed(&features[..report.rows.min(n) * width])?;
            }
            Ok(())
        }
    })
}

fn rows_mut<T: rt_simd::Real>(v: &mut [T]) -> crate::source::RowsMut<'_> {
    // T is f32 or f64 (the only `Real`s); the casts cannot fail for them.
    if T::DTYPE == DType::Float32 {
        return match bytemuck::try_cast_slice_mut::<T, f32>(v) {
            Ok(s) => crate::source::RowsMut::F32(s),
            Err(_) => crate::source::RowsMut::F32(&mut []),
        };
    }
    match bytemuck::try_cast_slice_mut::<T, f64>(v) {
        Ok(s) => crate::source::RowsMut::F64(s),
        Err(_) => crate::source::RowsMut::F64(&mut []),
    }
}

fn read_with_labels<T: rt_simd::Real>(
    source: &dyn Source,
    chunk: usize,
    n: usize,
    features: &mut [T],
    ctx: ReadContext<'_>,
) -> Result<crate::source::ChunkReport> {
    let schema = source.schema();
    let lw = schema.num_labels();
    let (mut li, mut lf, mut ld) = (Vec::new(), Vec::new(), Vec::new());
    let labels = match schema.label_dtype {
        DType::Int64 => {
            li.resize(n * lw, 0i64);
            crate::source::RowsMut::I64(&mut li)
        }
        DType::Float32 => {
            lf.resize(n * lw, 0f32);
            crate::source::RowsMut::F32(&mut lf)
        }
        _ => {
            ld.resize(n * lw, 0f64);
            crate::source::RowsMut::F64(&mut ld)
        }
    };
    source.read_into(
        chunk,
        crate::source::Destination {
            features: rows_mut(features),
            labels: Some(labels),
            capacity: n,
        },
        ctx,
    )
}

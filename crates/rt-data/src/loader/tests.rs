//! End-to-end tests of [`Loader`] over a synthetic chunked source that can skip rows and
//! fail on a chosen chunk, in both modes.

use std::sync::Arc;
use std::time::Duration;

use rt_view::DType;
use rt_view::cancel::CancelToken;

use super::*;
use crate::error::RecordAt;
use crate::source::{ChunkInfo, ChunkReport, Destination, RowsMut, Schema, SkippedRow};

/// Rows `0..n` (feature = row id as f32, label = row id), cut into chunks of `chunk` rows.
#[derive(Debug)]
struct Synthetic {
    schema: Schema,
    chunks: Vec<ChunkInfo>,
    chunk: usize,
    n: usize,
    /// Rows dropped as if they failed to parse under `on_error="skip"`.
    skip: Vec<usize>,
    /// A chunk whose reading fails.
    fail: Option<usize>,
}

fn synthetic(n: usize, chunk: usize) -> Synthetic {
    let file: Arc<str> = Arc::from("synthetic.csv");
    Synthetic {
        schema: Schema {
            feature_names: vec!["id".into()],
            label_names: vec!["y".into()],
            feature_dtype: DType::Float32,
            label_dtype: DType::Int64,
        },
        chunks: (0..n.div_ceil(chunk))
            .map(|i| ChunkInfo {
                file: Arc::clone(&file),
                // Unknown counts, as for CSV: the loader must count.
                rows: None,
                bytes: (chunk.min(n - i * chunk) * 10) as u64,
            })
            .collect(),
        chunk,
        n,
        skip: Vec::new(),
        fail: None,
    }
}

impl Source for Synthetic {
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }
    fn count_rows(&self, chunk: usize, _ctx: ReadContext<'_>) -> Result<u64> {
        Ok(self.chunk.min(self.n - chunk * self.chunk) as u64)
    }
    fn read_into(
        &self,
        chunk: usize,
        dest: Destination<'_>,
        ctx: ReadContext<'_>,
    ) -> Result<ChunkReport> {
        if self.fail == Some(chunk) {
            return Err(DataError::Parse {
                file: "synthetic.csv".into(),
                at: RecordAt::Line((chunk * self.chunk + 2) as u64),
                column: "id".into(),
                text: "x".into(),
                expected: "a float".into(),
            });
        }
        let (RowsMut::F32(f), Some(RowsMut::I64(l))) = (dest.features, dest.labels) else {
            return Err(DataError::InvalidArgument("dtype".into()));
        };
        let mut report = ChunkReport::default();
        let start = chunk * self.chunk;
        for id in start..start + self.count_rows(chunk, ctx)? as usize {
            if self.skip.contains(&id) {
                report.skipped.push(SkippedRow {
                    file: Arc::from("synthetic.csv"),
                    line: id as u64 + 2,
                    reason: "bad".into(),
                });
                ctx.errors.skip(DataError::Missing {
                    file: "synthetic.csv".into(),
                    at: RecordAt::Line(id as u64 + 2),
                    column: "id".into(),
                })?;
                continue;
            }
            f[report.rows] = id as f32;
            l[report.rows] = id as i64;
            report.rows += 1;
        }
        Ok(report)
    }
}

fn ids(pipeline: &Pipeline) -> Result<Vec<Vec<i64>>> {
    let mut out = Vec::new();
    loop {
        match pipeline.next_timeout(Duration::from_secs(10)) {
            Pop::Item(batch) => {
                let batch = batch?;
                let Some(BatchTensor::I64(labels)) = batch.labels else {
                    panic!("labels")
                };
                let BatchTensor::F32(features) = batch.features else {
                    panic!("features")
                };
                let l = labels.as_slice().to_vec();
                assert_eq!(
                    features
                        .as_slice()
                        .iter()
                        .map(|&f| f as i64)
                        .collect::<Vec<_>>(),
                    l
                );
                out.push(l);
            }
            Pop::Finished => return Ok(out),
            Pop::Failed(e) => return Err(e),
            Pop::Pending => panic!("no batch within 10 s"),
        }
    }
}

fn options(mode: Mode) -> LoaderOptions {
    LoaderOptions {
        batch_size: 8,
        shuffle: true,
        seed: 3,
        mode,
        shuffle_buffer: 20,
        ..LoaderOptions::default()
    }
}

fn run(source: Synthetic, opts: LoaderOptions, epoch: u64) -> Result<Vec<Vec<i64>>> {
    let token = CancelToken::new();
    let loader = Loader::new(Arc::new(source), opts, Vec::new(), &token)?;
    ids(&loader.start(epoch, 0, &token)?)
}

#[test]
fn stream_mode_serves_every_row_once_in_thread_independent_order() {
    let a = run(synthetic(203, 9), options(Mode::Stream), 0).unwrap();
    let mut flat: Vec<i64> = a.concat();
    assert_ne!(flat, (0..203).collect::<Vec<_>>());
    flat.sort_unstable();
    assert_eq!(flat, (0..203).collect::<Vec<_>>());
    let b = run(synthetic(203, 9), options(Mode::Stream), 1).unwrap();
    assert_ne!(a, b);
    // The decode runs on the shared pool; its size must not change the order.
    for threads in [1, 3] {
        rt_view::threads::set_num_threads(threads).unwrap();
        assert_eq!(run(synthetic(203, 9), options(Mode::Stream), 0).unwrap(), a);
    }
}

#[test]
fn skipped_rows_leave_holes_without_moving_other_positions() {
    let full = run(synthetic(100, 10), options(Mode::Stream), 0).unwrap();
    let mut with_holes = synthetic(100, 10);
    with_holes.skip = vec![3, 57];
    let opts = LoaderOptions {
        on_error: OnError::Skip { max_errors: None },
        ..options(Mode::Stream)
    };
    let got = run(with_holes, opts.clone(), 0).unwrap();
    assert_eq!(got.len(), full.len());
    let mut flat = got.concat();
    flat.sort_unstable();
    let expected: Vec<i64> = (0..100).filter(|i| *i != 3 && *i != 57).collect();
    assert_eq!(flat, expected);
    // Only the batches that cover the two windows with holes change.
    let untouched = full
        .iter()
        .zip(&got)
        .filter(|(f, g)| f.len() == g.len())
        .count();
    assert!(untouched >= full.len() - 6, "{untouched}");
    // max_errors is honoured.
    let mut too_many = synthetic(100, 10);
    too_many.skip = vec![1, 2, 3];
    let opts = LoaderOptions {
        on_error: OnError::Skip {
            max_errors: Some(2),
        },
        ..options(Mode::Stream)
    };
    assert!(matches!(
        run(too_many, opts, 0),
        Err(DataError::TooManyErrors { .. })
    ));
}

#[test]
fn a_read_error_reaches_the_consumer_after_the_earlier_batches() {
    let mut bad = synthetic(100, 10);
    bad.fail = Some(6);
    let opts = LoaderOptions {
        shuffle: false,
        ..options(Mode::Stream)
    };
    let token = CancelToken::new();
    let loader = Loader::new(Arc::new(bad), opts, Vec::new(), &token).unwrap();
    let pipeline = loader.start(0, 0, &token).unwrap();
    let mut delivered = 0;
    let error = loop {
        match pipeline.next_timeout(Duration::from_secs(10)) {
            Pop::Item(Ok(_)) => delivered += 1,
            Pop::Item(Err(e)) | Pop::Failed(e) => break e,
            other => panic!("{other:?}"),
        }
    };
    // Windows (targets 2, 5, 10, then 20 rows) of 10-row chunks: rows 0..10, 10..20,
    // 20..30, 30..50, 50..70; the last holds the failing chunk 6, and the 6 batches of 8
    // before position 50 are delivered first.
    assert_eq!(delivered, 6);
    assert!(error.to_string().contains("synthetic.csv:62"), "{error}");
}

#[test]
fn stopping_an_epoch_early_joins_its_threads() {
    let token = CancelToken::new();
    let loader = Loader::new(
        Arc::new(synthetic(10_000, 10)),
        options(Mode::Stream),
        Vec::new(),
        &token,
    )
    .unwrap();
    let mut pipeline = loader.start(0, 0, &token).unwrap();
    assert!(matches!(
        pipeline.next_timeout(Duration::from_secs(10)),
        Pop::Item(Ok(_))
    ));
    pipeline.stop();
    assert!(matches!(
        pipeline.next_timeout(Duration::ZERO),
        Pop::Finished
    ));
}

#[test]
fn memory_mode_needs_materialize_for_non_resident_sources() {
    // materialize() belongs to the readers; until it decodes chunks this is a clear error,
    // and afterwards memory mode must agree with stream mode without shuffling.
    let token = CancelToken::new();
    let opts = LoaderOptions {
        shuffle: false,
        ..options(Mode::Memory)
    };
    match Loader::new(Arc::new(synthetic(50, 7)), opts.clone(), Vec::new(), &token) {
        Err(e) => assert!(e.to_string().contains("materialize")),
        Ok(loader) => {
            let memory = ids(&loader.start(0, 0, &token).unwrap()).unwrap();
            let stream = run(
                synthetic(50, 7),
                LoaderOptions {
                    mode: Mode::Stream,
                    ..opts
                },
                0,
            )
            .unwrap();
            assert_eq!(memory, stream);
        }
    }
}

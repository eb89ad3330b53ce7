//! Parquet, Arrow IPC, in-memory Arrow and .npy sources read whole through `materialize`,
//! compared with the values that were written (no Python needed).

// Test helpers outside #[test] functions may unwrap too (clippy.toml only covers the tests).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failure is the test failing"
)]

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch};
use rt_data::materialize::materialize;
use rt_data::readers::{ArrowSource, IpcSource, NpyOptions, NpySource, ParquetSource};
use rt_data::{ColumnOptions, ColumnRef, Dataset, ErrorBudget, OnError, ReadContext, Source};
use rt_view::cancel::CancelToken;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rt-data-columnar-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn read(source: &dyn Source) -> Dataset {
    let cancel = CancelToken::new();
    let errors = ErrorBudget::new(OnError::Raise);
    materialize(
        source,
        ReadContext {
            cancel: &cancel,
            errors: &errors,
        },
    )
    .unwrap()
}

/// 70 000 rows: more than one 64Ki-row batch, so Parquet decodes a row group with one reader
/// per column group.
fn batch(rows: usize) -> RecordBatch {
    let a: ArrayRef = Arc::new(Float32Array::from_iter_values(
        (0..rows).map(|i| i as f32 * 0.5),
    ));
    let b: ArrayRef = Arc::new(Float64Array::from_iter_values(
        (0..rows).map(|i| -(i as f64)),
    ));
    let c: ArrayRef = Arc::new(Int32Array::from_iter_values(
        (0..rows).map(|i| (i % 7) as i32),
    ));
    let y: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..rows).map(|i| (i % 3) as i64),
    ));
    RecordBatch::try_from_iter([("a", a), ("b", b), ("c", c), ("y", y)]).unwrap()
}

fn options() -> ColumnOptions {
    ColumnOptions {
        labels: vec![ColumnRef::Name("y".into())],
        ..Default::default()
    }
}

/// `data` holds copies of `batch(period)`, one after the other.
fn check(data: &Dataset, rows: usize, period: usize) {
    assert_eq!(data.rows(), rows);
    let x = data.features.as_slice::<f32>().unwrap();
    let y = data.labels.as_ref().unwrap().as_slice::<i64>().unwrap();
    for i in [0, 1, rows / 3, rows / 2, rows - 1] {
        let j = i % period;
        assert_eq!(
            &x[i * 3..i * 3 + 3],
            &[j as f32 * 0.5, -(j as f32), (j % 7) as f32]
        );
        assert_eq!(y[i], (j % 3) as i64);
    }
}

#[test]
fn parquet_row_groups_and_column_groups() {
    let rows = 70_000;
    let path = temp("t.parquet");
    let file = std::fs::File::create(&path).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(50_000))
        .build();
    let b = batch(rows);
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, b.schema(), Some(props)).unwrap();
    writer.write(&b).unwrap();
    writer.close().unwrap();
    let source = ParquetSource::open(&[path.clone(), path], &options()).unwrap();
    assert_eq!(source.chunks().len(), 4);
    check(&read(&source), 2 * rows, rows);
}

#[test]
fn ipc_batches() {
    let path = temp("t.arrow");
    let b = batch(1000);
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = arrow_ipc::writer::FileWriter::try_new(file, &b.schema()).unwrap();
    for start in (0..1000).step_by(300) {
        writer
            .write(&b.slice(start, 300.min(1000 - start)))
            .unwrap();
    }
    writer.finish().unwrap();
    let source = IpcSource::open(&[path], &options()).unwrap();
    assert_eq!(source.chunks().len(), 4);
    // Row counts come from the metadata messages, without reading the batches.
    let rows: Vec<Option<u64>> = source.chunks().iter().map(|c| c.rows).collect();
    assert_eq!(rows, vec![Some(300), Some(300), Some(300), Some(100)]);
    check(&read(&source), 1000, 1000);
}

#[test]
fn in_memory_arrow() {
    let b = batch(500);
    let batches = vec![b.slice(0, 200), b.slice(200, 300)];
    let source = ArrowSource::new(&b.schema(), batches, &options()).unwrap();
    check(&read(&source), 500, 500);
}

#[test]
fn npy_shared_and_converted() {
    let (rows, cols) = (1000usize, 3usize);
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    // The header is padded with spaces so that the data starts 64-byte aligned.
    let padded = format!("{header:<width$}\n", width = 117);
    bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
    bytes.extend_from_slice(padded.as_bytes());
    for i in 0..rows * cols {
        bytes.extend_from_slice(&(i as f32).to_le_bytes());
    }
    let path = temp("x.npy");
    std::fs::write(&path, &bytes).unwrap();
    // All columns as float32 features: the mapped bytes are used as they are.
    let source = NpySource::open(&path, &NpyOptions::default()).unwrap();
    let shared = source.resident().expect("used in place");
    assert!(matches!(shared.features, rt_data::Matrix::Shared { .. }));
    assert_eq!(shared.features.as_slice::<f32>().unwrap()[2999], 2999.0);
    // A label column: converted chunk by chunk.
    let options = NpyOptions {
        labels_path: None,
        columns: ColumnOptions {
            labels: vec![ColumnRef::Index(2)],
            feature_dtype: rt_view::DType::Float64,
            ..Default::default()
        },
    };
    let source = NpySource::open(&path, &options).unwrap();
    assert!(source.resident().is_none());
    let data = read(&source);
    let x = data.features.as_slice::<f64>().unwrap();
    let y = data.labels.as_ref().unwrap().as_slice::<i64>().unwrap();
    assert_eq!((&x[..2], y[0], y[999]), (&[0.0, 1.0][..], 2, 2999));
}

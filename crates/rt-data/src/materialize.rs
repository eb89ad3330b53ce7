//! A whole source decoded in parallel into one row-major tensor (memory mode, `read_*`).
//!
//! Three steps, all on rt-view's pool (so `set_num_threads` applies): count the records of
//! every chunk in parallel; allocate the output tensors once; split them by those counts and
//! let every chunk decode straight into its own rows, in parallel. No per-chunk buffers, no
//! concatenation: peak memory is the output plus the readers' per-thread block buffers.
//! When rows were skipped (`on_error="skip"`), the rows are moved down to close the gaps,
//! keeping source order, and copied once into a tensor of the exact size.

use rayon::prelude::*;
use rt_view::{DType, Element, OwnedTensor};

use crate::error::{DataError, Result};
use crate::source::{
    ChunkReport, Dataset, Destination, Matrix, ReadContext, ReadStats, RowsMut, Source, guard_chunk,
};

/// Decodes every chunk of `source` in parallel into one `[rows, features]` tensor (and one
/// `[rows, labels]` tensor), or returns [`Source::resident`] data without copying.
pub fn materialize(source: &dyn Source, ctx: ReadContext<'_>) -> Result<Dataset> {
    if let Some(dataset) = source.resident() {
        return Ok(dataset);
    }
    rt_view::threads::install(|| materialize_on_pool(source, ctx))?
}

fn materialize_on_pool(source: &dyn Source, ctx: ReadContext<'_>) -> Result<Dataset> {
    let n = source.chunks().len();
    let counts: Vec<u64> = (0..n)
        .into_par_iter()
        .map(|i| {
            ctx.cancel.check()?;
            guard_chunk(source, i, || source.count_rows(i, ctx))
        })
        .collect::<Result<_>>()?;
    let total = counts
        .iter()
        .try_fold(0usize, |sum, &c| sum.checked_add(usize::try_from(c).ok()?))
        .ok_or_else(|| DataError::InvalidArgument("too many rows for this machine".to_owned()))?;
    let schema = source.schema();
    let (nf, nl) = (schema.num_features(), schema.num_labels());
    let mut features = allocate(schema.feature_dtype, total, nf)?;
    let mut labels = if nl > 0 {
        Some(allocate(schema.label_dtype, total, nl)?)
    } else {
        None
    };
    let feature_parts = split(rows_mut(&mut features)?, nf, &counts);
    let label_parts: Vec<Option<RowsMut<'_>>> = match labels.as_mut() {
        Some(m) => split(rows_mut(m)?, nl, &counts)
            .into_iter()
            .map(Some)
            .collect(),
        None => (0..n).map(|_| None).collect(),
    };
    let reports: Vec<Result<ChunkReport>> = feature_parts
        .into_par_iter()
        .zip(label_parts)
        .enumerate()
        .map(|(i, (features, labels))| {
            ctx.cancel.check()?;
            let capacity = counts.get(i).copied().unwrap_or(0) as usize;
            let dest = Destination {
                features,
                labels,
                capacity,
            };
            guard_chunk(source, i, || source.read_into(i, dest, ctx))
        })
        .collect();
    // The first failing chunk in source order, whatever thread finished first.
    let reports = reports.into_iter().collect::<Result<Vec<_>>>()?;
    let mut stats = ReadStats::default();
    let written: Vec<usize> = reports.iter().map(|r| r.rows).collect();
    for report in reports {
        stats.add(report);
    }
    let rows: usize = written.iter().sum();
    if rows != total {
        features = compact(features, nf, &counts, &written, rows)?;
        labels = labels
            .map(|m| compact(m, nl, &counts, &written, rows))
            .transpose()?;
    }
    Ok(Dataset {
        features,
        labels,
        stats,
    })
}

/// The output, on base pages: decoders fill it far below memory bandwidth, so huge pages
/// would save little and their first touch can cost more (`OwnedTensor::zeros_base_pages`).
fn allocate(dtype: DType, rows: usize, cols: usize) -> Result<Matrix> {
    let shape = [rows, cols];
    Ok(match dtype {
        DType::Float32 => Matrix::F32(OwnedTensor::zeros_base_pages(&shape)?),
        DType::Float64 => Matrix::F64(OwnedTensor::zeros_base_pages(&shape)?),
        DType::Int64 => Matrix::I64(OwnedTensor::zeros_base_pages(&shape)?),
        other => {
            return Err(DataError::InvalidArgument(format!(
                "cannot materialize {other} data"
            )));
        }
    })
}

fn rows_mut(m: &mut Matrix) -> Result<RowsMut<'_>> {
    Ok(match m {
        Matrix::F32(t) => RowsMut::F32(t.as_mut_slice()),
        Matrix::F64(t) => RowsMut::F64(t.as_mut_slice()),
        Matrix::I64(t) => RowsMut::I64(t.as_mut_slice()),
        Matrix::Shared { .. } => {
            return Err(DataError::InvalidArgument(
                "shared memory is read-only".to_owned(),
            ));
        }
    })
}

/// Cuts `rows` into consecutive pieces of `counts[i] * width` elements.
fn split<'a>(rows: RowsMut<'a>, width: usize, counts: &[u64]) -> Vec<RowsMut<'a>> {
    fn pieces<'a, T>(mut rest: &'a mut [T], width: usize, counts: &[u64]) -> Vec<&'a mut [T]> {
        let mut out = Vec::with_capacity(counts.len());
        for &c in counts {
            let len = (c as usize).saturating_mul(width).min(rest.len());
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
            out.push(head);
            rest = tail;
        }
        out
    }
    match rows {
        RowsMut::F32(s) => pieces(s, width, counts)
            .into_iter()
            .map(RowsMut::F32)
            .collect(),
        RowsMut::F64(s) => pieces(s, width, counts)
            .into_iter()
            .map(RowsMut::F64)
            .collect(),
        RowsMut::I64(s) => pieces(s, width, counts)
            .into_iter()
            .map(RowsMut::I64)
            .collect(),
    }
}

/// Moves every chunk's `written` rows down to close the gaps left by skipped rows (source
/// order kept), then copies them into a tensor of exactly `rows` rows.
fn compact(
    m: Matrix,
    width: usize,
    counts: &[u64],
    written: &[usize],
    rows: usize,
) -> Result<Matrix> {
    fn go<T: Element>(
        mut t: OwnedTensor<T>,
        width: usize,
        counts: &[u64],
        written: &[usize],
        rows: usize,
    ) -> Result<OwnedTensor<T>> {
        let data = t.as_mut_slice();
        let mut src = 0usize;
        let mut dst = 0usize;
        for (&c, &w) in counts.iter().zip(written) {
            let len = w * width;
            if src != dst {
                data.copy_within(src..src + len, dst);
            }
            dst += len;
            src += c as usize * width;
        }
        let kept = data.get(..rows * width).unwrap_or_default();
        Ok(OwnedTensor::from_slice(kept, &[rows, width])?)
    }
    Ok(match m {
        Matrix::F32(t) => Matrix::F32(go(t, width, counts, written, rows)?),
        Matrix::F64(t) => Matrix::F64(go(t, width, counts, written, rows)?),
        Matrix::I64(t) => Matrix::I64(go(t, width, counts, written, rows)?),
        shared @ Matrix::Shared { .. } => shared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{ColumnOptions, ColumnRef, OnError};
    use crate::readers::csv::{CsvOptions, CsvSource};
    use crate::source::ErrorBudget;
    use rt_view::cancel::CancelToken;
    use std::io::Write;

    fn read(text: &str, chunk_bytes: u64, on_error: OnError) -> Result<Dataset> {
        let dir = std::env::temp_dir().join(format!(
            "rt-data-mat-{}-{}",
            std::process::id(),
            chunk_bytes
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("t{}.csv", text.len()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let options = CsvOptions {
            chunk_bytes,
            columns: ColumnOptions {
                labels: vec![ColumnRef::Name("y".into())],
                features: Some(vec![ColumnRef::Index(0), ColumnRef::Index(1)]),
                ..Default::default()
            },
            ..Default::default()
        };
        let source = CsvSource::open(&[path], &options)?;
        let cancel = CancelToken::new();
        let errors = ErrorBudget::new(on_error);
        materialize(
            &source,
            ReadContext {
                cancel: &cancel,
                errors: &errors,
            },
        )
    }

    #[test]
    fn every_chunk_size_gives_the_same_rows() {
        let mut text = String::from("a,\"b\nc\",y,note\n");
        for i in 0..50 {
            if i % 7 == 3 {
                text.push_str(&format!("{i}.5,\"{i}\",{i},\"x\n,\"\"y\"\n"));
            } else {
                text.push_str(&format!("{i}.5,{i},{i},z\n"));
            }
        }
        let reference = read(&text, 1 << 20, OnError::Raise).unwrap();
        for chunk in [1, 2, 3, 5, 8, 13, 64] {
            let d = read(&text, chunk, OnError::Raise).unwrap();
            assert_eq!(d.rows(), 50);
            assert_eq!(
                d.features.as_slice::<f32>(),
                reference.features.as_slice::<f32>()
            );
            assert_eq!(
                d.labels.as_ref().unwrap().as_slice::<i64>(),
                reference.labels.as_ref().unwrap().as_slice::<i64>()
            );
        }
        let y = reference.labels.unwrap();
        assert_eq!(y.as_slice::<i64>().unwrap()[49], 49);
    }

    #[test]
    fn skipped_rows_are_compacted_in_order() {
        let text = "a,b,y\n1,0,1\nx,0,2\n3,0,3\n4\n5,0,5\n";
        for chunk in [1, 4, 100] {
            let d = read(text, chunk, OnError::Skip { max_errors: None }).unwrap();
            assert_eq!(
                d.features.as_slice::<f32>().unwrap(),
                &[1.0, 0.0, 3.0, 0.0, 5.0, 0.0]
            );
            assert_eq!(d.labels.unwrap().as_slice::<i64>().unwrap(), &[1, 3, 5]);
            let lines: Vec<u64> = d.stats.skipped.iter().map(|s| s.line).collect();
            assert_eq!(lines, vec![3, 5]);
        }
    }
}

//! Building one batch: copying the selected rows of a dataset (or of a decoded stream window)
//! into a fresh row-major buffer that is handed to torch without another copy.

use rt_view::{DType, Element, OwnedTensor};

use crate::error::{DataError, Result};
use crate::source::Matrix;
use crate::transform::Transforms;

/// A batch tensor of one of the dtypes a source produces.
#[derive(Debug)]
pub enum BatchTensor {
    /// float32.
    F32(OwnedTensor<f32>),
    /// float64.
    F64(OwnedTensor<f64>),
    /// int64.
    I64(OwnedTensor<i64>),
}

impl BatchTensor {
    /// Bytes of the buffer.
    pub fn nbytes(&self) -> usize {
        match self {
            BatchTensor::F32(t) => t.numel() * 4,
            BatchTensor::F64(t) => t.numel() * 8,
            BatchTensor::I64(t) => t.numel() * 8,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            BatchTensor::F32(t) => t.shape(),
            BatchTensor::F64(t) => t.shape(),
            BatchTensor::I64(t) => t.shape(),
        }
    }
}

/// One batch, ready for the consumer.
#[derive(Debug)]
pub struct Batch {
    /// Position of the batch in the rank's epoch (0-based).
    pub index: u64,
    /// `[rows, *feature_shape]`.
    pub features: BatchTensor,
    /// `[rows, *label_shape]`; `None` without labels.
    pub labels: Option<BatchTensor>,
    /// Rows in the batch.
    pub rows: usize,
}

impl Batch {
    /// Bytes held by the batch.
    pub fn nbytes(&self) -> usize {
        self.features.nbytes() + self.labels.as_ref().map_or(0, BatchTensor::nbytes)
    }
}

/// Rows of one matrix to copy, in output order.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// The matrix rows come from.
    pub matrix: &'a Matrix,
    /// Its rows, in output order.
    pub rows: &'a [u64],
}

fn shape_for(rows: usize, row_shape: &[usize]) -> Vec<usize> {
    std::iter::once(rows)
        .chain(row_shape.iter().copied())
        .collect()
}

fn copy_rows<T: Element>(pieces: &[Piece<'_>], width: usize, out: &mut [T]) -> Result<()> {
    let mut dst = out.chunks_exact_mut(width.max(1));
    for piece in pieces {
        let src = piece.matrix.as_slice::<T>().ok_or_else(|| {
            DataError::InvalidArgument(format!(
                "internal: a {} matrix was gathered as {}",
                piece.matrix.dtype(),
                T::DTYPE
            ))
        })?;
        if width == 0 {
            continue;
        }
        for &row in piece.rows {
            let start = (row as usize).saturating_mul(width);
            let from = src.get(start..start.saturating_add(width)).ok_or_else(|| {
                DataError::InvalidArgument(format!("internal: row {row} is out of range"))
            })?;
            let to = dst.next().ok_or_else(|| {
                DataError::InvalidArgument("internal: batch buffer too small".to_owned())
            })?;
            to.copy_from_slice(from);
        }
    }
    Ok(())
}

fn gather_typed<T: Element>(
    pieces: &[Piece<'_>],
    rows: usize,
    width: usize,
    row_shape: &[usize],
) -> Result<OwnedTensor<T>> {
    let mut out = OwnedTensor::<T>::zeros(&shape_for(rows, row_shape))?;
    copy_rows(pieces, width, out.as_mut_slice())?;
    Ok(out)
}

/// Gathers the label rows of `pieces` into a `[rows, *row_shape]` tensor of `dtype`.
pub fn gather(
    pieces: &[Piece<'_>],
    dtype: DType,
    width: usize,
    row_shape: &[usize],
) -> Result<BatchTensor> {
    let rows = pieces.iter().map(|p| p.rows.len()).sum();
    Ok(match dtype {
        DType::Float32 => BatchTensor::F32(gather_typed(pieces, rows, width, row_shape)?),
        DType::Float64 => BatchTensor::F64(gather_typed(pieces, rows, width, row_shape)?),
        DType::Int64 => BatchTensor::I64(gather_typed(pieces, rows, width, row_shape)?),
        other => {
            return Err(DataError::InvalidArgument(format!(
                "unsupported batch dtype {other}"
            )));
        }
    })
}

/// Gathers feature rows and applies `transforms` on the way (into a per-worker `scratch`
/// first when there are transforms, so that the source is never modified).
pub fn gather_features(
    pieces: &[Piece<'_>],
    dtype: DType,
    width: usize,
    row_shape: &[usize],
    transforms: &Transforms,
    scratch: &mut Scratch,
) -> Result<BatchTensor> {
    if transforms.is_empty() {
        return gather(pieces, dtype, width, row_shape);
    }
    let rows: usize = pieces.iter().map(|p| p.rows.len()).sum();
    let n = rows.saturating_mul(width);
    Ok(match dtype {
        DType::Float32 => {
            scratch.f32.resize(n, 0.0);
            copy_rows(pieces, width, &mut scratch.f32)?;
            let mut out = OwnedTensor::<f32>::zeros(&shape_for(rows, row_shape))?;
            transforms.apply(&scratch.f32, out.as_mut_slice(), width)?;
            BatchTensor::F32(out)
        }
        DType::Float64 => {
            scratch.f64.resize(n, 0.0);
            copy_rows(pieces, width, &mut scratch.f64)?;
            let mut out = OwnedTensor::<f64>::zeros(&shape_for(rows, row_shape))?;
            transforms.apply(&scratch.f64, out.as_mut_slice(), width)?;
            BatchTensor::F64(out)
        }
        other => {
            return Err(DataError::InvalidArgument(format!(
                "transforms need float32 or float64 features, got {other}"
            )));
        }
    })
}

/// Per-worker buffers reused from batch to batch.
#[derive(Debug, Default)]
pub struct Scratch {
    f32: Vec<f32>,
    f64: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_rows_from_several_pieces_in_order() {
        let a = Matrix::F32(OwnedTensor::from_slice(&[0., 1., 2., 3., 4., 5.], &[3, 2]).unwrap());
        let b = Matrix::F32(OwnedTensor::from_slice(&[10., 11.], &[1, 2]).unwrap());
        let pieces = [
            Piece {
                matrix: &a,
                rows: &[2, 0],
            },
            Piece {
                matrix: &b,
                rows: &[0],
            },
        ];
        let BatchTensor::F32(t) = gather(&pieces, DType::Float32, 2, &[2]).unwrap() else {
            panic!("dtype")
        };
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.as_slice(), &[4., 5., 0., 1., 10., 11.]);
        assert!(gather(&pieces, DType::Int64, 2, &[2]).is_err());
        let bad = [Piece {
            matrix: &a,
            rows: &[3],
        }];
        assert!(gather(&bad, DType::Float32, 2, &[2]).is_err());
    }
}

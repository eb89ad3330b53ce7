//! Strided copy, split over the shared thread pool for large tensors.

use rayon::prelude::*;

use crate::dtype::Element;
use crate::error::{Result, ViewError};
use crate::threads;
use crate::view::TensorView;
use crate::view_mut::TensorViewMut;

/// Below this many elements per thread, splitting costs more than it saves.
const MIN_ELEMENTS_PER_THREAD: usize = 1 << 16;

/// Copies `src` into `dst` element by element in row-major order; shapes must be equal.
/// Large copies are split along axis 0 over [`threads::pool`].
pub fn copy_into<T: Element>(src: &TensorView<'_, T>, mut dst: TensorViewMut<'_, T>) -> Result<()> {
    if src.shape() != dst.shape() {
        return Err(ViewError::ShapeMismatch {
            expected: dst.shape().to_vec(),
            actual: src.shape().to_vec(),
        });
    }
    let numel = src.numel();
    let wanted = threads::get_num_threads().min(numel / MIN_ELEMENTS_PER_THREAD);
    let pieces = match src.shape().first() {
        Some(&rows) => wanted.min(rows),
        None => 1,
    };
    if pieces <= 1 {
        return dst.copy_from(src);
    }
    let mut pairs = Vec::with_capacity(pieces);
    let mut start = 0;
    for piece in dst.split_axis(0, pieces)? {
        let rows = piece.shape()[0];
        pairs.push((src.narrow(0, start, rows)?, piece));
        start += rows;
    }
    threads::install(|| {
        pairs
            .into_par_iter()
            .try_for_each(|(s, mut d)| d.copy_from(&s))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_transposed_copy_matches_serial() {
        let rows = 700;
        let cols = 300;
        let src: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        let view = TensorView::from_slice(&src, &[rows, cols])
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        let mut dst = vec![0f32; rows * cols];
        copy_into(
            &view,
            TensorViewMut::from_slice(&mut dst, &[cols, rows]).unwrap(),
        )
        .unwrap();
        assert_eq!(dst, view.to_vec());
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let src = [1i8, 2, 3];
        let mut dst = [0i8; 3];
        let s = TensorView::from_slice(&src, &[3]).unwrap();
        let d = TensorViewMut::from_slice(&mut dst, &[3, 1]).unwrap();
        assert!(copy_into(&s, d).is_err());
    }
}

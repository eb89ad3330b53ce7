//! Stacking same-shaped tensor views into one new batch tensor.

use rt_view::{Element, OwnedTensor, TensorView, TensorViewMut, copy::copy_into};

use crate::error::{Error, Result};

/// Copies `items` (all of one shape `S`, any strides) into a new row-major tensor of shape
/// `[items.len(), ..S]`, like `torch.stack(items)`.
///
/// Contiguous items are copied with `memcpy`; strided ones element by element (tiled, and
/// split over rt-view's thread pool when large).
///
/// ```
/// use rt_view::TensorView;
/// use rt_queue::stack;
///
/// let a = [1.0f32, 2.0, 3.0, 4.0];
/// let b = [5.0f32, 6.0, 7.0, 8.0];
/// let a = TensorView::from_slice(&a, &[2, 2])?;
/// let b = TensorView::from_slice(&b, &[2, 2])?.transpose(0, 1)?;
/// let batch = stack(&[a, b])?;
/// assert_eq!(batch.shape(), &[2, 2, 2]);
/// assert_eq!(batch.as_slice(), &[1., 2., 3., 4., 5., 7., 6., 8.]);
/// # Ok::<(), rt_queue::Error>(())
/// ```
pub fn stack<T: Element>(items: &[TensorView<'_, T>]) -> Result<OwnedTensor<T>> {
    let first = items.first().ok_or(Error::EmptyStack)?;
    let item_shape = first.shape();
    for (index, item) in items.iter().enumerate() {
        if item.shape() != item_shape {
            return Err(Error::ShapeMismatch {
                index,
                expected: item_shape.to_vec(),
                actual: item.shape().to_vec(),
            });
        }
    }
    let mut shape = Vec::with_capacity(item_shape.len() + 1);
    shape.push(items.len());
    shape.extend_from_slice(item_shape);
    let mut out = OwnedTensor::<T>::zeros(&shape)?;
    let row = first.numel();
    if row == 0 {
        return Ok(out);
    }
    for (item, chunk) in items.iter().zip(out.as_mut_slice().chunks_exact_mut(row)) {
        match item.as_slice() {
            Some(data) => chunk.copy_from_slice(data),
            None => copy_into(item, TensorViewMut::from_slice(chunk, item_shape)?)?,
        }
    }
    Ok(out)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn stacks_contiguous_strided_and_scalar_items() {
        let data: Vec<i64> = (0..6).collect();
        let m = TensorView::from_slice(&data, &[2, 3]).unwrap();
        let batch = stack(&[m.clone(), m.clone()]).unwrap();
        assert_eq!(batch.shape(), &[2, 2, 3]);
        assert_eq!(batch.as_slice(), &[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);

        let columns = [m.select(1, 0).unwrap(), m.select(1, 2).unwrap()];
        let batch = stack(&columns).unwrap();
        assert_eq!(batch.shape(), &[2, 2]);
        assert_eq!(batch.as_slice(), &[0, 3, 2, 5]);

        let scalars = [m.select(0, 1).unwrap().select(0, 1).unwrap()];
        let batch = stack(&scalars).unwrap();
        assert_eq!(batch.shape(), &[1]);
        assert_eq!(batch.as_slice(), &[4]);
    }

    #[test]
    fn empty_items_give_an_empty_batch() {
        let data: [f32; 0] = [];
        let e = TensorView::from_slice(&data, &[0, 4]).unwrap();
        let batch = stack(&[e.clone(), e]).unwrap();
        assert_eq!(batch.shape(), &[2, 0, 4]);
        assert!(batch.as_slice().is_empty());
    }

    #[test]
    fn mismatched_or_missing_items_are_refused() {
        let data = [1.0f32; 6];
        let a = TensorView::from_slice(&data, &[2, 3]).unwrap();
        let b = TensorView::from_slice(&data, &[3, 2]).unwrap();
        match stack(&[a, b]) {
            Err(Error::ShapeMismatch {
                index,
                expected,
                actual,
            }) => assert_eq!((index, expected, actual), (1, vec![2, 3], vec![3, 2])),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(stack::<f32>(&[]), Err(Error::EmptyStack)));
    }
}

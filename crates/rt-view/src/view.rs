//! Read-only strided views: [`TensorView`] and its 1-d [`Lane`]s.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::dtype::Element;
use crate::error::{Result, ViewError};
use crate::layout::{Layout, OffsetIter};

/// A read-only borrow of `len` elements at `ptr`, from which only elements named by a
/// validated layout are ever referenced.
///
/// Not a `&[T]`: the pieces of a split [`TensorViewMut`](crate::TensorViewMut) interleave in
/// memory, so a slice covering a piece's whole span would alias elements another thread is
/// writing. Referencing single elements (or exactly the elements of a contiguous view)
/// never does.
#[derive(Debug)]
pub(crate) struct RawBuffer<'a, T> {
    ptr: NonNull<T>,
    len: usize,
    _borrow: PhantomData<&'a [T]>,
}

impl<T> Clone for RawBuffer<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for RawBuffer<'_, T> {}

// SAFETY: RawBuffer is a shared borrow of `T`s, like `&[T]`, which is Send and Sync when
// T is Sync.
unsafe impl<T: Sync> Send for RawBuffer<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for RawBuffer<'_, T> {}

impl<'a, T> RawBuffer<'a, T> {
    pub(crate) fn from_slice(data: &'a [T]) -> Self {
        RawBuffer {
            ptr: NonNull::from(data).cast(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    /// # Safety
    /// `ptr` must be aligned and valid for reads of every element later referenced through
    /// this buffer (offsets `< len` named by a validated layout) for `'a`, and those
    /// elements must not be written during `'a`. A null `ptr` is allowed only if `len` is 0.
    pub(crate) unsafe fn from_raw_parts(ptr: *const T, len: usize) -> Self {
        RawBuffer {
            ptr: NonNull::new(ptr.cast_mut()).unwrap_or(NonNull::dangling()),
            len,
            _borrow: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// The element at `offset`, or `None` past the end.
    pub(crate) fn get(&self, offset: usize) -> Option<&'a T> {
        if offset >= self.len {
            return None;
        }
        // SAFETY: offset < len, and the constructor's contract makes every element the
        // owning view references readable for 'a.
        Some(unsafe { &*self.ptr.as_ptr().add(offset) })
    }

    /// Elements `start..start + n` as a slice, or `None` past the end.
    pub(crate) fn slice(&self, start: usize, n: usize) -> Option<&'a [T]> {
        if start.checked_add(n)? > self.len {
            return None;
        }
        if n == 0 {
            return Some(&[]);
        }
        // SAFETY: the range lies inside 0..len; callers ask only for the exact elements of
        // a contiguous view, which no sibling piece writes.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), n) })
    }
}

/// A borrowed, read-only, strided n-d view of `T`s.
///
/// Every element reachable through the shape and strides was checked to lie inside the
/// borrowed buffer when the view was made, so no accessor can read out of bounds.
#[derive(Clone, Debug)]
pub struct TensorView<'a, T> {
    data: RawBuffer<'a, T>,
    layout: Layout,
}

impl<'a, T: Element> TensorView<'a, T> {
    /// A view of `data` with explicit `strides` (in elements) and the `offset` of element
    /// `[0, 0, ...]`. Fails if any reachable element lies outside `data`.
    pub fn new(data: &'a [T], shape: &[usize], strides: &[isize], offset: usize) -> Result<Self> {
        let layout = Layout::new(shape, strides, offset, data.len())?;
        Ok(TensorView {
            data: RawBuffer::from_slice(data),
            layout,
        })
    }

    /// A row-major view of `data`, which must hold exactly `shape.iter().product()` elements.
    pub fn from_slice(data: &'a [T], shape: &[usize]) -> Result<Self> {
        check_exact_len(data.len(), shape)?;
        let layout = Layout::contiguous(shape, data.len())?;
        Ok(TensorView {
            data: RawBuffer::from_slice(data),
            layout,
        })
    }

    /// A read-only view of foreign memory (the Python bridge uses this).
    ///
    /// # Safety
    /// `ptr` must be aligned for `T` and valid for reads of `len` elements for `'a`, and
    /// those elements must not be written during `'a`. `ptr` may be null only if `len` is 0.
    pub unsafe fn from_raw_parts(
        ptr: *const T,
        len: usize,
        shape: &[usize],
        strides: &[isize],
        offset: usize,
    ) -> Result<Self> {
        let layout = Layout::new(shape, strides, offset, len)?;
        // SAFETY: forwarded from this function's contract.
        let data = unsafe { RawBuffer::from_raw_parts(ptr, len) };
        Ok(TensorView { data, layout })
    }

    /// A view with an already-validated layout (the layout was checked against `data.len()`).
    pub(crate) fn from_parts(data: RawBuffer<'a, T>, layout: Layout) -> Self {
        debug_assert!(layout.span().is_none_or(|r| r.end <= data.len()));
        TensorView { data, layout }
    }

    /// The layout (shape, strides, offset).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// The strides in elements.
    pub fn strides(&self) -> &[isize] {
        self.layout.strides()
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.layout.ndim()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// True when the elements are row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The elements as one slice in row-major order, when the view is contiguous.
    pub fn as_slice(&self) -> Option<&'a [T]> {
        if !self.layout.is_contiguous() {
            return None;
        }
        self.data.slice(self.layout.offset(), self.numel())
    }

    /// Like [`as_slice`](Self::as_slice) but with an error naming the layout.
    pub fn try_as_slice(&self) -> Result<&'a [T]> {
        self.as_slice().ok_or_else(|| ViewError::NotContiguous {
            shape: self.shape().to_vec(),
            strides: self.strides().to_vec(),
        })
    }

    /// The element at `index`, or `None` if it is out of range.
    pub fn get(&self, index: &[usize]) -> Option<&'a T> {
        self.layout.offset_of(index).and_then(|o| self.data.get(o))
    }

    /// The elements in row-major index order.
    pub fn iter(&self) -> impl Iterator<Item = &'a T> + '_ {
        let data = self.data;
        // Offsets come from a validated layout, so `get` never misses.
        OffsetIter::new(&self.layout).filter_map(move |o| data.get(o))
    }

    /// Copies the elements into a new `Vec` in row-major order.
    pub fn to_vec(&self) -> Vec<T> {
        match self.as_slice() {
            Some(s) => s.to_vec(),
            None => self.iter().copied().collect(),
        }
    }

    /// The address of element offset 0 of the underlying buffer (for overlap checks).
    pub fn buffer_ptr(&self) -> *const T {
        self.data.as_ptr()
    }

    /// The length of the underlying buffer in elements.
    pub fn buffer_len(&self) -> usize {
        self.data.len()
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: usize, b: usize) -> Result<TensorView<'a, T>> {
        Ok(TensorView::from_parts(
            self.data,
            self.layout.transpose(a, b)?,
        ))
    }

    /// `len` entries of `axis` from `start`.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<TensorView<'a, T>> {
        Ok(TensorView::from_parts(
            self.data,
            self.layout.narrow(axis, start, len)?,
        ))
    }

    /// The (n-1)-d view at `index` along `axis`.
    pub fn select(&self, axis: usize, index: usize) -> Result<TensorView<'a, T>> {
        Ok(TensorView::from_parts(
            self.data,
            self.layout.select(axis, index)?,
        ))
    }

    /// The (n-1)-d sub-views along `axis`, in order (for example the rows of a matrix for
    /// `axis = 0`).
    pub fn axis_iter(&self, axis: usize) -> Result<impl Iterator<Item = TensorView<'a, T>> + '_> {
        let len = *self.shape().get(axis).ok_or(ViewError::AxisOutOfRange {
            axis,
            ndim: self.ndim(),
        })?;
        Ok((0..len).filter_map(move |i| self.select(axis, i).ok()))
    }

    /// Every 1-d lane along `axis`: for a `[rows, features]` matrix, `lanes(1)` yields the
    /// rows and `lanes(0)` the columns. Lanes are visited in row-major order of the other
    /// axes and cost no allocation each.
    pub fn lanes(&self, axis: usize) -> Result<impl Iterator<Item = Lane<'a, T>> + 'a> {
        let len = *self.shape().get(axis).ok_or(ViewError::AxisOutOfRange {
            axis,
            ndim: self.ndim(),
        })?;
        let stride = self.strides()[axis];
        // The starts of the lanes are the offsets of the view with `axis` fixed at 0.
        let starts = self.layout.select(axis, 0).ok();
        let data = self.data;
        let offsets: Vec<usize> = match (&starts, len) {
            (Some(l), 1..) => OffsetIter::new(l).collect(),
            _ => Vec::new(),
        };
        Ok(offsets.into_iter().map(move |start| Lane {
            data,
            start,
            stride,
            len,
        }))
    }

    /// The lanes along the last axis: the rows of a matrix. A 0-d view has one lane of one
    /// element.
    pub fn rows(&self) -> impl Iterator<Item = Lane<'a, T>> + 'a {
        let lanes = match self.ndim() {
            0 => None,
            n => self.lanes(n - 1).ok(),
        };
        let scalar = (self.ndim() == 0).then(|| Lane {
            data: self.data,
            start: self.layout.offset(),
            stride: 1,
            len: 1,
        });
        lanes.into_iter().flatten().chain(scalar)
    }
}

pub(crate) fn check_exact_len(len: usize, shape: &[usize]) -> Result<()> {
    match crate::layout::checked_numel(shape) {
        Some(n) if n == len => Ok(()),
        Some(_) => Err(ViewError::ShapeMismatch {
            expected: shape.to_vec(),
            actual: vec![len],
        }),
        None => Err(ViewError::ShapeOverflow {
            shape: shape.to_vec(),
            strides: Vec::new(),
        }),
    }
}

/// One strided 1-d run of elements, for example a row or a column of a matrix.
#[derive(Clone, Copy, Debug)]
pub struct Lane<'a, T> {
    data: RawBuffer<'a, T>,
    start: usize,
    stride: isize,
    len: usize,
}

impl<'a, T: Element> Lane<'a, T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the lane has no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The step between neighbours, in elements.
    pub fn stride(&self) -> isize {
        self.stride
    }

    /// The `i`-th element.
    pub fn get(&self, i: usize) -> Option<&'a T> {
        if i >= self.len {
            return None;
        }
        // In bounds: the lane lies inside a validated layout.
        self.data
            .get((self.start as isize + i as isize * self.stride) as usize)
    }

    /// The elements as a slice when the stride is 1 (or the lane has at most one element).
    pub fn as_slice(&self) -> Option<&'a [T]> {
        if self.stride == 1 || self.len <= 1 {
            self.data.slice(self.start, self.len)
        } else {
            None
        }
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a T> + 'a {
        let lane = *self;
        (0..lane.len).filter_map(move |i| lane.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> Vec<f32> {
        (0..12).map(|v| v as f32).collect()
    }

    #[test]
    fn contiguous_view_is_a_slice() {
        let data = matrix();
        let v = TensorView::from_slice(&data, &[3, 4]).unwrap();
        assert!(v.is_contiguous());
        assert_eq!(v.as_slice().unwrap(), &data[..]);
        assert_eq!(*v.get(&[2, 1]).unwrap(), 9.0);
        assert!(v.get(&[3, 0]).is_none());
        assert!(TensorView::from_slice(&data, &[5, 3]).is_err());
    }

    #[test]
    fn transpose_iterates_in_logical_order() {
        let data = matrix();
        let v = TensorView::from_slice(&data, &[3, 4])
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        assert!(!v.is_contiguous());
        assert!(v.as_slice().is_none());
        assert_eq!(
            v.to_vec(),
            vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
        );
    }

    #[test]
    fn lanes_are_rows_and_columns() {
        let data = matrix();
        let v = TensorView::from_slice(&data, &[3, 4]).unwrap();
        let rows: Vec<Vec<f32>> = v
            .lanes(1)
            .unwrap()
            .map(|l| l.iter().copied().collect())
            .collect();
        assert_eq!(rows[1], vec![4., 5., 6., 7.]);
        assert!(v.rows().all(|r| r.as_slice().is_some()));
        let cols: Vec<f32> = v.lanes(0).unwrap().map(|l| l.iter().sum()).collect();
        assert_eq!(cols, vec![12., 15., 18., 21.]);
        assert!(v.lanes(2).is_err());
    }

    #[test]
    fn axis_iter_yields_sub_views() {
        let data = matrix();
        let v = TensorView::from_slice(&data, &[3, 4]).unwrap();
        let sums: Vec<f32> = v.axis_iter(1).unwrap().map(|c| c.iter().sum()).collect();
        assert_eq!(sums, vec![12., 15., 18., 21.]);
    }

    #[test]
    fn zero_dim_and_empty() {
        let data = [5i64];
        let v = TensorView::from_slice(&data, &[]).unwrap();
        assert_eq!(v.numel(), 1);
        assert_eq!(v.rows().count(), 1);
        let e = TensorView::<i64>::from_slice(&[], &[0, 3]).unwrap();
        assert_eq!(e.iter().count(), 0);
        assert_eq!(e.rows().count(), 0);
        assert_eq!(e.as_slice().unwrap().len(), 0);
    }
}

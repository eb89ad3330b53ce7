//! Writable strided views: [`TensorViewMut`], which can be split into disjoint pieces
//! for threads.

use std::marker::PhantomData;
use std::ptr::NonNull;

use crate::dtype::Element;
use crate::error::{Result, ViewError};
use crate::layout::{Layout, OffsetIter};
use crate::view::{RawBuffer, TensorView, check_exact_len};

/// A borrowed, writable, strided n-d view of `T`s.
///
/// Invariants, checked at construction:
/// - every element reachable through the layout lies inside the buffer `ptr..ptr + len`;
/// - no two indices reach the same element ([`Layout::is_non_overlapping`]);
/// - the view has exclusive access to the elements it reaches for `'a`.
///
/// It holds a raw pointer rather than `&mut [T]` because the pieces made by
/// [`split_axis`](Self::split_axis) may interleave in memory (the columns of a row-major
/// matrix, say): each piece reaches a disjoint set of elements while their spans overlap,
/// which a slice cannot express.
#[derive(Debug)]
pub struct TensorViewMut<'a, T> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a TensorViewMut is a unique borrow of the elements it reaches, like `&mut [T]`,
// which is Send when T is Send. Views made by `split_axis` reach disjoint elements, so
// moving them to different threads cannot create a data race.
unsafe impl<T: Send> Send for TensorViewMut<'_, T> {}
// SAFETY: shared access to a TensorViewMut only permits reads (`&self` methods), as for
// `&mut [T]`, which is Sync when T is Sync.
unsafe impl<T: Sync> Sync for TensorViewMut<'_, T> {}

impl<'a, T: Element> TensorViewMut<'a, T> {
    /// A writable view of `data` with explicit strides and offset. Fails if any reachable
    /// element lies outside `data` or if two indices reach the same element.
    pub fn new(
        data: &'a mut [T],
        shape: &[usize],
        strides: &[isize],
        offset: usize,
    ) -> Result<Self> {
        let layout = Layout::new(shape, strides, offset, data.len())?;
        check_non_overlapping(&layout)?;
        Ok(TensorViewMut {
            len: data.len(),
            ptr: NonNull::from(data).cast(),
            layout,
            _borrow: PhantomData,
        })
    }

    /// A row-major writable view of `data`, which must hold exactly the shape's element count.
    pub fn from_slice(data: &'a mut [T], shape: &[usize]) -> Result<Self> {
        check_exact_len(data.len(), shape)?;
        let layout = Layout::contiguous(shape, data.len())?;
        Ok(TensorViewMut {
            len: data.len(),
            ptr: NonNull::from(data).cast(),
            layout,
            _borrow: PhantomData,
        })
    }

    /// A writable view of foreign memory (the Python bridge uses this).
    ///
    /// # Safety
    /// `ptr` must be non-null, aligned for `T` and valid for reads and writes of `len`
    /// elements for `'a`, and nothing else may access those elements during `'a`.
    pub unsafe fn from_raw_parts(
        ptr: *mut T,
        len: usize,
        shape: &[usize],
        strides: &[isize],
        offset: usize,
    ) -> Result<Self> {
        let layout = Layout::new(shape, strides, offset, len)?;
        check_non_overlapping(&layout)?;
        let ptr = NonNull::new(ptr).unwrap_or(NonNull::dangling());
        Ok(TensorViewMut {
            ptr,
            len,
            layout,
            _borrow: PhantomData,
        })
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

    /// The address of element offset 0 of the underlying buffer (for overlap checks).
    pub fn buffer_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// A read-only view of the same elements, borrowing `self`.
    pub fn view(&self) -> TensorView<'_, T> {
        // SAFETY: `ptr` is valid for `len` elements (constructor contract); the view only
        // references elements this piece reaches, and `&self` stops writes through this
        // piece while the view lives.
        let data = unsafe { RawBuffer::from_raw_parts(self.ptr.as_ptr(), self.len) };
        TensorView::from_parts(data, self.layout.clone())
    }

    /// The elements as one mutable slice when the view is contiguous.
    pub fn as_slice_mut(&mut self) -> Option<&mut [T]> {
        if !self.layout.is_contiguous() {
            return None;
        }
        let start = self.layout.offset();
        let n = self.numel();
        if n == 0 {
            return Some(&mut []);
        }
        // SAFETY: a contiguous layout reaches exactly `start..start + n`, which lies in
        // `0..len` (checked in the constructor), and those elements belong to this view
        // alone (pieces from `split_axis` reach disjoint elements); `&mut self` makes the
        // borrow unique.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(start), n) })
    }

    /// A mutable reference to the element at `index`.
    pub fn get_mut(&mut self, index: &[usize]) -> Option<&mut T> {
        let off = self.layout.offset_of(index)?;
        // SAFETY: `offset_of` returns only reachable offsets, which are < len; `&mut self`
        // makes the reference unique.
        Some(unsafe { &mut *self.ptr.as_ptr().add(off) })
    }

    /// Calls `f` on every element in row-major order.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut T)) {
        if let Some(s) = self.as_slice_mut() {
            s.iter_mut().for_each(f);
            return;
        }
        let base = self.ptr.as_ptr();
        for off in OffsetIter::new(&self.layout) {
            // SAFETY: every offset from the validated layout is < len, each is visited once
            // (the layout does not overlap itself), and `&mut self` makes access unique.
            f(unsafe { &mut *base.add(off) });
        }
    }

    /// Writes `value` to every element.
    pub fn fill(&mut self, value: T) {
        self.for_each_mut(|x| *x = value);
    }

    /// Copies `src` element by element (row-major order); the shapes must be equal.
    pub fn copy_from(&mut self, src: &TensorView<'_, T>) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(ViewError::ShapeMismatch {
                expected: self.shape().to_vec(),
                actual: src.shape().to_vec(),
            });
        }
        if let (Some(s), Some(d)) = (src.as_slice(), self.as_slice_mut()) {
            d.copy_from_slice(s);
            return Ok(());
        }
        if self.numel() == 0 {
            return Ok(());
        }
        let ndim = self.ndim();
        if ndim < 2 {
            let mut values = src.iter();
            self.for_each_mut(|x| {
                if let Some(v) = values.next() {
                    *x = *v;
                }
            });
            return Ok(());
        }
        self.copy_tiled(src)
    }

    /// Strided copy in square tiles over the last two axes, so that a transposed source is
    /// read a few cache lines at a time instead of one line per element.
    fn copy_tiled(&mut self, src: &TensorView<'_, T>) -> Result<()> {
        const TILE: usize = 32;
        let ndim = self.ndim();
        let (rows, cols) = (self.shape()[ndim - 2], self.shape()[ndim - 1]);
        let (src_rs, src_cs) = (src.strides()[ndim - 2], src.strides()[ndim - 1]);
        let (dst_rs, dst_cs) = (self.strides()[ndim - 2], self.strides()[ndim - 1]);
        // The outer axes are walked by fixing the last two at 0.
        // Never empty here: the caller returns early for zero elements.
        let outer_src = src.layout().select(ndim - 1, 0)?.select(ndim - 2, 0)?;
        let outer_dst = self.layout.select(ndim - 1, 0)?.select(ndim - 2, 0)?;
        let src_ptr = src.buffer_ptr();
        let dst_ptr = self.ptr.as_ptr();
        for (src_base, dst_base) in OffsetIter::new(&outer_src).zip(OffsetIter::new(&outer_dst)) {
            for i0 in (0..rows).step_by(TILE) {
                for j0 in (0..cols).step_by(TILE) {
                    for i in i0..(i0 + TILE).min(rows) {
                        let s_row = src_base as isize + i as isize * src_rs;
                        let d_row = dst_base as isize + i as isize * dst_rs;
                        for j in j0..(j0 + TILE).min(cols) {
                            let s = s_row + j as isize * src_cs;
                            let d = d_row + j as isize * dst_cs;
                            // SAFETY: (.., i, j) is an index of both views (equal shapes,
                            // i < rows, j < cols), so `s` and `d` are offsets their
                            // validated layouts reach: inside the buffers, non-negative.
                            // The destination is uniquely borrowed (`&mut self`), and the
                            // caller's views do not overlap (src is a shared borrow alive
                            // at the same time as `&mut self`).
                            unsafe { *dst_ptr.offset(d) = *src_ptr.offset(s) };
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Splits along `axis` into at most `pieces` views of near-equal length, in order,
    /// which reach disjoint elements and so may be written from different threads.
    pub fn split_axis(self, axis: usize, pieces: usize) -> Result<Vec<TensorViewMut<'a, T>>> {
        let n = *self.shape().get(axis).ok_or(ViewError::AxisOutOfRange {
            axis,
            ndim: self.ndim(),
        })?;
        let pieces = pieces.clamp(1, n.max(1));
        let mut out = Vec::with_capacity(pieces);
        let mut start = 0;
        for p in 0..pieces {
            let len = n / pieces + usize::from(p < n % pieces);
            out.push(TensorViewMut {
                ptr: self.ptr,
                len: self.len,
                layout: self.layout.narrow(axis, start, len)?,
                _borrow: PhantomData,
            });
            start += len;
        }
        Ok(out)
    }

    /// Consumes the view into one with a narrower range of `axis`.
    pub fn narrow(self, axis: usize, start: usize, len: usize) -> Result<TensorViewMut<'a, T>> {
        Ok(TensorViewMut {
            layout: self.layout.narrow(axis, start, len)?,
            ..self
        })
    }
}

fn check_non_overlapping(layout: &Layout) -> Result<()> {
    if layout.is_non_overlapping() {
        Ok(())
    } else {
        Err(ViewError::SelfOverlap {
            shape: layout.shape().to_vec(),
            strides: layout.strides().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_where_the_strides_say() {
        let mut data = vec![0i32; 12];
        {
            let v = TensorViewMut::from_slice(&mut data, &[3, 4]).unwrap();
            // Column 1 of a 3x4 row-major matrix.
            let mut col = v.narrow(1, 1, 1).unwrap();
            col.fill(7);
        }
        assert_eq!(data, vec![0, 7, 0, 0, 0, 7, 0, 0, 0, 7, 0, 0]);
    }

    #[test]
    fn self_overlapping_views_are_refused() {
        let mut data = vec![0f32; 4];
        let err = TensorViewMut::new(&mut data, &[3, 4], &[0, 1], 0).unwrap_err();
        assert!(matches!(err, ViewError::SelfOverlap { .. }));
    }

    #[test]
    fn out_of_bounds_writable_views_are_refused() {
        let mut data = vec![0f32; 4];
        assert!(matches!(
            TensorViewMut::new(&mut data, &[5], &[1], 0),
            Err(ViewError::OutOfBounds { .. })
        ));
    }

    #[test]
    fn split_pieces_write_in_parallel_without_overlap() {
        let mut data = vec![0u8; 6 * 5];
        let v = TensorViewMut::from_slice(&mut data, &[6, 5]).unwrap();
        // Split the *columns* of a row-major matrix: the pieces interleave in memory.
        let pieces = v.split_axis(1, 3).unwrap();
        assert_eq!(
            pieces.iter().map(|p| p.shape()[1]).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        std::thread::scope(|s| {
            for (i, mut p) in pieces.into_iter().enumerate() {
                s.spawn(move || p.fill(i as u8 + 1));
            }
        });
        for row in data.chunks(5) {
            assert_eq!(row, &[1, 1, 2, 2, 3]);
        }
    }

    #[test]
    fn copy_from_a_transposed_view() {
        let src: Vec<f64> = (0..6).map(f64::from).collect();
        let src_view = TensorView::from_slice(&src, &[2, 3])
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        let mut dst = vec![0f64; 6];
        let mut dst_view = TensorViewMut::from_slice(&mut dst, &[3, 2]).unwrap();
        dst_view.copy_from(&src_view).unwrap();
        assert_eq!(dst, vec![0., 3., 1., 4., 2., 5.]);
        let mut wrong = vec![0f64; 6];
        let mut wrong_view = TensorViewMut::from_slice(&mut wrong, &[6]).unwrap();
        assert!(wrong_view.copy_from(&src_view).is_err());
    }
}

//! Shape, strides and offset: the bounds arithmetic every view is built on.
//!
//! All offsets are in elements, never bytes. Reachable offsets are computed in `i128`
//! with checked arithmetic, so a crafted shape or stride can not wrap around into the
//! buffer: it is rejected.

use crate::error::{Result, ViewError};

/// How an n-d index maps to an element offset: `offset + Σ index[k] · strides[k]`.
///
/// A `Layout` on its own proves nothing; [`Layout::new`] checks it against a buffer
/// length and only then does it let a view use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<isize>,
    offset: usize,
}

/// The lowest and highest element offsets a layout reaches, or `None` when it reaches
/// no element (some dimension is 0).
fn reachable_range(
    shape: &[usize],
    strides: &[isize],
    offset: usize,
) -> Result<Option<(i128, i128)>> {
    if shape.contains(&0) {
        return Ok(None);
    }
    let overflow = || ViewError::ShapeOverflow {
        shape: shape.to_vec(),
        strides: strides.to_vec(),
    };
    let mut lowest = offset as i128;
    let mut highest = offset as i128;
    for (&n, &s) in shape.iter().zip(strides) {
        // n >= 1 here; (n - 1) * s is at most 2^64 * 2^63 = 2^127 in magnitude, which
        // still fits in i128 up to the sign bit, hence the checked ops.
        let reach = (n as i128 - 1)
            .checked_mul(s as i128)
            .ok_or_else(overflow)?;
        if reach < 0 {
            lowest = lowest.checked_add(reach).ok_or_else(overflow)?;
        } else {
            highest = highest.checked_add(reach).ok_or_else(overflow)?;
        }
    }
    Ok(Some((lowest, highest)))
}

/// Row-major (C order) strides for `shape`, or `None` on overflow.
pub fn contiguous_strides(shape: &[usize]) -> Option<Vec<isize>> {
    let mut strides = vec![0isize; shape.len()];
    let mut step: isize = 1;
    for (stride, &n) in strides.iter_mut().zip(shape).rev() {
        *stride = step;
        step = step.checked_mul(isize::try_from(n.max(1)).ok()?)?;
    }
    Some(strides)
}

/// True when `shape` and `strides` describe row-major elements without gaps. Dimensions
/// of extent 1 may have any stride, as in torch; an empty shape is contiguous.
pub fn is_contiguous(shape: &[usize], strides: &[isize]) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected: isize = 1;
    for (&n, &s) in shape.iter().zip(strides).rev() {
        if n != 1 {
            if s != expected {
                return false;
            }
            match expected.checked_mul(n as isize) {
                Some(e) => expected = e,
                None => return false,
            }
        }
    }
    true
}

/// The lowest and highest element offsets, relative to element `[0, ...]`, that `shape`
/// and `strides` reach, or `None` when no element is reachable. Fails on overflow.
pub fn relative_extent(shape: &[usize], strides: &[isize]) -> Result<Option<(i128, i128)>> {
    reachable_range(shape, strides, 0)
}

/// Number of elements of `shape`, or `None` on overflow.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n))
}

impl Layout {
    /// Checks that every element reachable through `shape`, `strides` and `offset` lies
    /// inside a buffer of `buffer_len` elements.
    pub fn new(
        shape: &[usize],
        strides: &[isize],
        offset: usize,
        buffer_len: usize,
    ) -> Result<Self> {
        if shape.len() != strides.len() {
            return Err(ViewError::RankMismatch {
                shape: shape.len(),
                strides: strides.len(),
            });
        }
        let numel = checked_numel(shape);
        if numel.is_none_or(|n| n > isize::MAX as usize) {
            return Err(ViewError::ShapeOverflow {
                shape: shape.to_vec(),
                strides: strides.to_vec(),
            });
        }
        if let Some((lowest, highest)) = reachable_range(shape, strides, offset)?
            && (lowest < 0 || highest >= buffer_len as i128)
        {
            return Err(ViewError::OutOfBounds {
                shape: shape.to_vec(),
                strides: strides.to_vec(),
                offset,
                lowest,
                highest,
                len: buffer_len,
            });
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            offset,
        })
    }

    /// The row-major layout of `shape` starting at offset 0, checked against `buffer_len`.
    pub fn contiguous(shape: &[usize], buffer_len: usize) -> Result<Self> {
        let strides = contiguous_strides(shape).ok_or_else(|| ViewError::ShapeOverflow {
            shape: shape.to_vec(),
            strides: Vec::new(),
        })?;
        Layout::new(shape, &strides, 0, buffer_len)
    }

    /// The extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The step between neighbours along each dimension, in elements (may be negative or 0).
    pub fn strides(&self) -> &[isize] {
        &self.strides
    }

    /// Offset of element `[0, 0, ...]` in the buffer, in elements.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (checked to fit `isize` at construction).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the elements are laid out row-major without gaps, starting at `offset`.
    ///
    /// Dimensions of extent 1 may have any stride, as in torch.
    pub fn is_contiguous(&self) -> bool {
        is_contiguous(&self.shape, &self.strides)
    }

    /// True when no two indices map to the same element.
    ///
    /// The test is the usual sufficient one (torch and NumPy use the same idea): sorted by
    /// |stride|, each dimension must step over everything the smaller dimensions span. It
    /// can reject exotic interleavings that happen not to collide; a writable view refuses
    /// those too, which is safe.
    pub fn is_non_overlapping(&self) -> bool {
        if self.numel() <= 1 {
            return true;
        }
        let mut dims: Vec<(usize, usize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(n, _)| **n > 1)
            .map(|(&n, &s)| (n, s.unsigned_abs()))
            .collect();
        dims.sort_unstable_by_key(|&(_, s)| s);
        // `span` is the highest offset, relative to the lowest, that the smaller dims reach.
        let mut span: usize = 0;
        for (n, s) in dims {
            if s <= span || s == 0 {
                return false;
            }
            // Fits: bounded by the buffer length, checked in `new`.
            span += (n - 1) * s;
        }
        true
    }

    /// The element offsets `lowest..highest + 1` that this layout touches, or `None` when empty.
    pub fn span(&self) -> Option<std::ops::Range<usize>> {
        // Validated in `new`: the range is inside 0..buffer_len, so the casts are exact.
        match reachable_range(&self.shape, &self.strides, self.offset) {
            Ok(Some((lo, hi))) => Some(lo as usize..hi as usize + 1),
            _ => None,
        }
    }

    /// The buffer offset of `index`, or `None` if `index` has the wrong rank or is out of range.
    pub fn offset_of(&self, index: &[usize]) -> Option<usize> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut off = self.offset as isize;
        for ((&i, &n), &s) in index.iter().zip(&self.shape).zip(&self.strides) {
            if i >= n {
                return None;
            }
            // In range: every reachable offset lies in 0..buffer_len (checked in `new`).
            off += i as isize * s;
        }
        Some(off as usize)
    }

    fn check_axis(&self, axis: usize) -> Result<()> {
        if axis < self.ndim() {
            Ok(())
        } else {
            Err(ViewError::AxisOutOfRange {
                axis,
                ndim: self.ndim(),
            })
        }
    }

    /// Swaps two axes (no data moves).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Layout> {
        self.check_axis(a)?;
        self.check_axis(b)?;
        let mut out = self.clone();
        out.shape.swap(a, b);
        out.strides.swap(a, b);
        Ok(out)
    }

    /// Keeps `len` entries of `axis` starting at `start`. The result reaches a subset of
    /// what `self` reaches, so it stays in bounds.
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Layout> {
        self.check_axis(axis)?;
        let n = self.shape[axis];
        let end = start
            .checked_add(len)
            .filter(|&e| e <= n)
            .ok_or(ViewError::IndexOutOfRange {
                axis,
                index: start.saturating_add(len),
                len: n,
            })?;
        let mut out = self.clone();
        out.shape[axis] = end - start;
        if len > 0 {
            // start < n, so this element is reachable and its offset is in bounds.
            out.offset = (self.offset as isize + start as isize * self.strides[axis]) as usize;
        }
        Ok(out)
    }

    /// Fixes `axis` at `index` and drops it.
    pub fn select(&self, axis: usize, index: usize) -> Result<Layout> {
        // `narrow` rejects index >= len, so the removed axis had exactly this entry.
        let mut out = self.narrow(axis, index, 1)?;
        out.shape.remove(axis);
        out.strides.remove(axis);
        Ok(out)
    }
}

/// Visits the buffer offsets of a layout in row-major index order without allocating
/// per element (an odometer over the index).
#[derive(Clone, Debug)]
pub struct OffsetIter<'l> {
    layout: &'l Layout,
    index: Vec<usize>,
    next: Option<usize>,
    remaining: usize,
}

impl<'l> OffsetIter<'l> {
    /// Starts at index `[0, 0, ...]`.
    pub fn new(layout: &'l Layout) -> Self {
        let remaining = layout.numel();
        OffsetIter {
            layout,
            index: vec![0; layout.ndim()],
            next: (remaining > 0).then_some(layout.offset),
            remaining,
        }
    }
}

impl Iterator for OffsetIter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        self.remaining -= 1;
        let mut off = current as isize;
        let mut advanced = false;
        for axis in (0..self.index.len()).rev() {
            let stride = self.layout.strides[axis];
            if self.index[axis] + 1 < self.layout.shape[axis] {
                self.index[axis] += 1;
                off += stride;
                advanced = true;
                break;
            }
            off -= (self.layout.shape[axis] as isize - 1) * stride;
            self.index[axis] = 0;
        }
        self.next = advanced.then_some(off as usize);
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for OffsetIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn contiguous_layout_is_contiguous() {
        let l = Layout::contiguous(&[2, 3, 4], 24).unwrap();
        assert_eq!(l.strides(), &[12, 4, 1]);
        assert!(l.is_contiguous());
        assert!(l.is_non_overlapping());
        assert_eq!(l.span(), Some(0..24));
    }

    #[test]
    fn rejects_a_stride_that_reaches_past_the_buffer() {
        // Offsets 0, 3, 6, 9: a buffer of 10 holds them, one of 9 does not.
        assert!(Layout::new(&[4], &[3], 0, 10).is_ok());
        let err = Layout::new(&[4], &[3], 0, 9).unwrap_err();
        assert_eq!(
            err,
            ViewError::OutOfBounds {
                shape: vec![4],
                strides: vec![3],
                offset: 0,
                lowest: 0,
                highest: 9,
                len: 9
            }
        );
    }

    #[test]
    fn negative_strides_need_an_offset() {
        assert!(Layout::new(&[5], &[-2], 0, 10).is_err());
        let l = Layout::new(&[5], &[-2], 8, 10).unwrap();
        assert_eq!(OffsetIter::new(&l).collect::<Vec<_>>(), vec![8, 6, 4, 2, 0]);
    }

    #[test]
    fn overflowing_shapes_are_rejected_not_wrapped() {
        let big = usize::MAX / 2;
        assert!(matches!(
            Layout::new(&[big, big], &[1, 1], 0, 10),
            Err(ViewError::ShapeOverflow { .. })
        ));
        assert!(matches!(
            Layout::new(&[2, 2], &[isize::MAX, isize::MAX], 0, 10),
            Err(ViewError::OutOfBounds { .. } | ViewError::ShapeOverflow { .. })
        ));
        assert!(Layout::new(&[3], &[isize::MIN], usize::MAX, usize::MAX).is_err());
    }

    #[test]
    fn empty_layout_reaches_nothing() {
        let l = Layout::new(&[0, 5], &[1_000_000, 7], 0, 0).unwrap();
        assert_eq!(l.numel(), 0);
        assert_eq!(l.span(), None);
        assert_eq!(OffsetIter::new(&l).count(), 0);
    }

    #[test]
    fn zero_dim_layout_has_one_element() {
        let l = Layout::new(&[], &[], 3, 4).unwrap();
        assert_eq!(l.numel(), 1);
        assert_eq!(OffsetIter::new(&l).collect::<Vec<_>>(), vec![3]);
        assert!(Layout::new(&[], &[], 4, 4).is_err());
    }

    #[test]
    fn overlap_detection() {
        assert!(
            !Layout::new(&[3, 2], &[0, 1], 0, 2)
                .unwrap()
                .is_non_overlapping()
        );
        assert!(
            !Layout::new(&[3, 3], &[1, 1], 0, 5)
                .unwrap()
                .is_non_overlapping()
        );
        assert!(
            Layout::new(&[3, 3], &[1, 3], 0, 9)
                .unwrap()
                .is_non_overlapping()
        );
        assert!(
            Layout::new(&[3, 1], &[1, 0], 0, 3)
                .unwrap()
                .is_non_overlapping()
        );
    }

    #[test]
    fn narrow_and_select() {
        let l = Layout::contiguous(&[4, 3], 12).unwrap();
        let n = l.narrow(0, 1, 2).unwrap();
        assert_eq!((n.shape(), n.offset()), (&[2usize, 3][..], 3));
        assert!(l.narrow(0, 3, 2).is_err());
        let s = l.select(1, 2).unwrap();
        assert_eq!(OffsetIter::new(&s).collect::<Vec<_>>(), vec![2, 5, 8, 11]);
        assert!(l.select(1, 3).is_err());
    }

    fn brute_force_offsets(shape: &[usize], strides: &[isize], offset: usize) -> Vec<i128> {
        let mut out = Vec::new();
        let numel: usize = shape.iter().product();
        for flat in 0..numel {
            let mut rem = flat;
            let mut off = offset as i128;
            for (&n, &s) in shape.iter().zip(strides).rev() {
                off += (rem % n) as i128 * s as i128;
                rem /= n;
            }
            out.push(off);
        }
        out
    }

    proptest! {
        /// The bounds check accepts a layout exactly when every reachable offset is in the
        /// buffer, and the odometer visits exactly those offsets in row-major order.
        #[test]
        fn bounds_check_matches_brute_force(
            dims in proptest::collection::vec((0usize..5, -7isize..8), 0..4),
            offset in 0usize..40,
            len in 0usize..60,
        ) {
            let shape: Vec<usize> = dims.iter().map(|d| d.0).collect();
            let strides: Vec<isize> = dims.iter().map(|d| d.1).collect();
            let offsets = brute_force_offsets(&shape, &strides, offset);
            let in_bounds = offsets.iter().all(|&o| o >= 0 && o < len as i128);
            match Layout::new(&shape, &strides, offset, len) {
                Ok(layout) => {
                    prop_assert!(in_bounds);
                    let visited: Vec<i128> = OffsetIter::new(&layout).map(|o| o as i128).collect();
                    prop_assert_eq!(visited, offsets.clone());
                    let mut unique = offsets.clone();
                    unique.sort_unstable();
                    unique.dedup();
                    if layout.is_non_overlapping() {
                        prop_assert_eq!(unique.len(), offsets.len());
                    }
                    if layout.is_contiguous() && !offsets.is_empty() {
                        let expect: Vec<i128> = (0..offsets.len() as i128).map(|i| i + offset as i128).collect();
                        prop_assert_eq!(offsets, expect);
                    }
                }
                Err(_) => prop_assert!(!in_bounds),
            }
        }

        /// Huge crafted strides and shapes never pass the check.
        #[test]
        fn crafted_extremes_never_pass(
            n in 2usize..usize::MAX, s in proptest::num::isize::ANY, offset in 0usize..1000,
        ) {
            let len = 1000usize;
            if let Ok(layout) = Layout::new(&[n], &[s], offset, len) {
                let last = offset as i128 + (n as i128 - 1) * s as i128;
                prop_assert!(last >= 0 && last < len as i128);
                prop_assert!(layout.numel() == n);
            }
        }
    }
}

//! [`OwnedTensor`]: a Rust-owned, 64-byte-aligned, row-major tensor that can be handed to
//! Python without a copy.

use crate::dtype::Element;
use crate::error::{Result, ViewError};
use crate::layout::{Layout, checked_numel};
use crate::view::{RawBuffer, TensorView};
use crate::view_mut::TensorViewMut;

/// One cache line. Storing small buffers as `Vec<CacheLine>` gives 64-byte alignment (what
/// AVX-512 loads and torch's own allocator use) with no unsafe allocation code: bytemuck
/// reinterprets the lines as elements, which is sound because `CacheLine` is plain bytes
/// and 64 is a multiple of every element size.
#[repr(C, align(64))]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CacheLine([u8; 64]);

/// The alignment, in bytes, of every [`OwnedTensor`] buffer.
pub const ALIGNMENT: usize = std::mem::align_of::<CacheLine>();

/// From this size on, buffers are anonymous memory mappings instead of heap allocations.
///
/// Why: Rust's allocator can only take zeroed memory from `calloc` up to 16-byte alignment;
/// for 64 it allocates and then `memset`s the whole buffer, in the calling thread, before
/// anyone writes it (400 MB: about 200 ms on the CI VM, all of it faulting pages in one
/// thread). A fresh mapping is zero pages from the kernel that cost nothing until the
/// threads that fill the tensor first write them, in parallel; it is page-aligned.
pub const MAPPED_FROM_BYTES: usize = crate::huge_pages::MIN_BYTES;

/// Where the elements live.
enum Buffer {
    /// Small buffers: zeroed cache lines from the global allocator.
    Heap(Vec<CacheLine>),
    /// Large buffers: a private anonymous mapping, page-aligned and zero-filled.
    Mapped(memmap2::MmapMut),
    /// A large buffer of [`OwnedTensor::for_overwrite`]: a mapping that goes back to the
    /// output cache when dropped.
    Recycled(Recycling),
}

/// A mapping that returns to the output cache (`crate::recycle`) when dropped. Always
/// `Some` until then.
struct Recycling(Option<memmap2::MmapMut>);

impl Drop for Recycling {
    fn drop(&mut self) {
        if let Some(map) = self.0.take() {
            crate::recycle::give(map);
        }
    }
}

impl Buffer {
    /// `bytes` zero bytes, 64-byte aligned; a large mapping is advised onto huge pages when
    /// `huge` is set.
    fn zeroed(bytes: usize, huge: bool) -> Result<Buffer> {
        if bytes < MAPPED_FROM_BYTES {
            return Ok(Buffer::Heap(bytemuck::allocation::zeroed_vec(
                bytes.div_ceil(ALIGNMENT),
            )));
        }
        let map = memmap2::MmapOptions::new()
            .len(bytes)
            .map_anon()
            .map_err(|e| ViewError::OutOfMemory {
                bytes,
                reason: e.to_string(),
            })?;
        if huge {
            // Untouched so far: huge pages make the first writes fault less.
            crate::huge_pages::advise(map.as_ptr() as usize, bytes);
        }
        Ok(Buffer::Mapped(map))
    }

    /// `bytes` bytes of unspecified content: a cached mapping of that length if there is
    /// one, else a new one (zeroed, advised onto huge pages), either going back to the
    /// cache when dropped. Small buffers are zeroed heap memory as in [`Buffer::zeroed`].
    fn for_overwrite(bytes: usize) -> Result<Buffer> {
        if bytes < MAPPED_FROM_BYTES {
            return Buffer::zeroed(bytes, false);
        }
        let map = match crate::recycle::take(bytes) {
            Some(map) => map,
            None => match Buffer::zeroed(bytes, true)? {
                Buffer::Mapped(map) => map,
                other => return Ok(other),
            },
        };
        Ok(Buffer::Recycled(Recycling(Some(map))))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Buffer::Heap(lines) => bytemuck::cast_slice(lines),
            Buffer::Mapped(map) => map,
            Buffer::Recycled(Recycling(map)) => map.as_deref().unwrap_or(&[]),
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Buffer::Heap(lines) => bytemuck::cast_slice_mut(lines),
            Buffer::Mapped(map) => map,
            Buffer::Recycled(Recycling(map)) => map.as_deref_mut().unwrap_or(&mut []),
        }
    }
}

/// A row-major tensor that owns its 64-byte-aligned buffer.
pub struct OwnedTensor<T> {
    buffer: Buffer,
    numel: usize,
    /// Row-major over exactly `numel` elements; validated whenever it is set.
    layout: Layout,
    _element: std::marker::PhantomData<T>,
}

impl<T: Element> OwnedTensor<T> {
    /// A tensor of `shape` filled with zero bits (0, 0.0 or false).
    ///
    /// From 4 MiB on the buffer is a fresh anonymous mapping, so its pages cost nothing until
    /// written, and it is advised onto transparent huge pages (Linux), so that the first
    /// write takes one page fault per 2 MiB instead of per 4 KiB. The operating system
    /// refusing the memory is an error ([`ViewError::OutOfMemory`]), not an abort.
    pub fn zeros(shape: &[usize]) -> Result<Self> {
        Self::zeros_paged(shape, true)
    }

    /// [`OwnedTensor::zeros`] without the huge-page advice, for a buffer that its writers
    /// fill slowly (a parser writes a few hundred MB/s per thread), where saving page faults
    /// is worth little and a huge page's first touch can cost more than the 512 small pages
    /// it replaces: the kernel zeroes 2 MiB at once, may compact memory to find it, and on
    /// VMs whose memory the host backs lazily (Firecracker, the CI machine here) fresh 2 MiB
    /// blocks are the never-touched ones. rt-data's CSV reader on the CI VM: a 400 MB
    /// output filled with huge pages took the epoch from 1.02 to 1.24-1.41 s.
    pub fn zeros_base_pages(shape: &[usize]) -> Result<Self> {
        Self::zeros_paged(shape, false)
    }

    /// A tensor of `shape` whose contents are unspecified (zeros, or the values of an
    /// earlier tensor): for an output that the caller writes in full. From 4 MiB on, the
    /// buffer comes from the output cache (`RUSTTORCH_OUTPUT_CACHE_MB`, see
    /// [`crate::release_cached_outputs`]) when that holds one of the same size, and goes
    /// back to it when the tensor is dropped, so that a kernel called in a loop writes
    /// into memory that is already paged in rather than faulting in fresh pages each
    /// time. Any bit pattern is a valid element (`Element: Pod`), so reading it before
    /// writing is garbage, never undefined behaviour.
    pub fn for_overwrite(shape: &[usize]) -> Result<Self> {
        let (numel, bytes, layout) = Self::checked_shape(shape)?;
        Ok(OwnedTensor {
            buffer: Buffer::for_overwrite(bytes)?,
            numel,
            layout,
            _element: std::marker::PhantomData,
        })
    }

    fn zeros_paged(shape: &[usize], huge: bool) -> Result<Self> {
        let (numel, bytes, layout) = Self::checked_shape(shape)?;
        Ok(OwnedTensor {
            buffer: Buffer::zeroed(bytes, huge)?,
            numel,
            layout,
            _element: std::marker::PhantomData,
        })
    }

    /// (elements, bytes, row-major layout) of `shape`, refusing sizes that overflow.
    fn checked_shape(shape: &[usize]) -> Result<(usize, usize, Layout)> {
        let overflow = || ViewError::ShapeOverflow {
            shape: shape.to_vec(),
            strides: Vec::new(),
        };
        let numel = checked_numel(shape).ok_or_else(overflow)?;
        let bytes = numel
            .checked_mul(std::mem::size_of::<T>())
            .filter(|&b| b <= isize::MAX as usize);
        let bytes = bytes.ok_or_else(overflow)?;
        Ok((numel, bytes, Layout::contiguous(shape, numel)?))
    }

    /// A tensor of `shape` holding a copy of `data` (row-major).
    pub fn from_slice(data: &[T], shape: &[usize]) -> Result<Self> {
        let mut out = Self::zeros(shape)?;
        if data.len() != out.numel {
            return Err(ViewError::ShapeMismatch {
                expected: shape.to_vec(),
                actual: vec![data.len()],
            });
        }
        out.as_mut_slice().copy_from_slice(data);
        Ok(out)
    }

    /// The extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> &[isize] {
        self.layout.strides()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[T] {
        let len = self.numel * std::mem::size_of::<T>();
        bytemuck::cast_slice(&self.buffer.bytes()[..len])
    }

    /// The elements in row-major order, writable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        let len = self.numel * std::mem::size_of::<T>();
        bytemuck::cast_slice_mut(&mut self.buffer.bytes_mut()[..len])
    }

    /// The address of the first element (64-byte aligned).
    pub fn as_ptr(&self) -> *const T {
        self.as_slice().as_ptr()
    }

    /// A mutable pointer to the first element, for handing the buffer to a foreign owner.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.as_mut_slice().as_mut_ptr()
    }

    /// A read-only view of the whole tensor.
    pub fn view(&self) -> TensorView<'_, T> {
        TensorView::from_parts(RawBuffer::from_slice(self.as_slice()), self.layout.clone())
    }

    /// A writable view of the whole tensor.
    pub fn view_mut(&mut self) -> Result<TensorViewMut<'_, T>> {
        let layout = self.layout.clone();
        TensorViewMut::new(self.as_mut_slice(), layout.shape(), layout.strides(), 0)
    }

    /// Reshapes in place; the element count must not change.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
        if checked_numel(shape) != Some(self.numel) {
            return Err(ViewError::ShapeMismatch {
                expected: self.shape().to_vec(),
                actual: shape.to_vec(),
            });
        }
        self.layout = Layout::contiguous(shape, self.numel)?;
        Ok(())
    }
}

impl<T: Element> std::fmt::Debug for OwnedTensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedTensor")
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    #[test]
    fn buffers_are_64_byte_aligned_and_zeroed() {
        for n in [0usize, 1, 3, 17, 1000] {
            let t = OwnedTensor::<f64>::zeros(&[n]).unwrap();
            assert_eq!(t.as_ptr() as usize % 64, 0);
            assert!(t.as_slice().iter().all(|&v| v == 0.0));
            assert_eq!(t.as_slice().len(), n);
        }
    }

    #[test]
    fn views_see_the_data() {
        let mut t = OwnedTensor::<bf16>::zeros(&[2, 3]).unwrap();
        t.as_mut_slice()[4] = bf16::from_f32(1.5);
        assert_eq!(*t.view().get(&[1, 1]).unwrap(), bf16::from_f32(1.5));
        assert_eq!(t.strides(), &[3, 1]);
        *t.view_mut().unwrap().get_mut(&[0, 2]).unwrap() = bf16::ONE;
        assert_eq!(t.as_slice()[2], bf16::ONE);
    }

    #[test]
    fn large_buffers_are_mapped_aligned_and_zeroed() {
        let n = MAPPED_FROM_BYTES / 4 + 3;
        let mut t = OwnedTensor::<f32>::zeros(&[n]).unwrap();
        assert!(matches!(t.buffer, Buffer::Mapped(_)));
        assert_eq!(t.as_ptr() as usize % ALIGNMENT, 0);
        assert_eq!(t.as_slice().len(), n);
        assert!(t.as_slice().iter().all(|&v| v == 0.0));
        t.as_mut_slice()[n - 1] = 2.5;
        assert_eq!(t.view().to_vec()[n - 1], 2.5);
        let small = OwnedTensor::<f32>::zeros(&[n / 2]).unwrap();
        assert!(matches!(small.buffer, Buffer::Heap(_)));
    }

    #[test]
    fn dropped_output_buffers_are_reused_by_the_next_of_the_same_size() {
        // A size no other test uses, so that parallel tests do not take this buffer.
        let n = MAPPED_FROM_BYTES / 4 + 12_346;
        let mut first = OwnedTensor::<f32>::for_overwrite(&[n]).unwrap();
        assert!(matches!(first.buffer, Buffer::Recycled(_)));
        first.as_mut_slice().fill(3.5);
        let addr = first.as_ptr() as usize;
        drop(first);
        assert!(crate::cached_output_bytes() >= n * 4);
        // Same byte length, another shape and element type: the same memory, as it was.
        let again = OwnedTensor::<i32>::for_overwrite(&[2, n / 2]).unwrap();
        assert_eq!(again.as_ptr() as usize, addr);
        assert!(
            again
                .as_slice()
                .iter()
                .all(|&v| v == 3.5f32.to_bits() as i32)
        );
        assert_eq!(again.shape(), &[2, n / 2]);
        // Another size gets a buffer of its own; a small one is plain heap memory.
        let other = OwnedTensor::<f32>::for_overwrite(&[n + 1024]).unwrap();
        assert_ne!(other.as_ptr() as usize, addr);
        let small = OwnedTensor::<f32>::for_overwrite(&[100]).unwrap();
        assert!(matches!(small.buffer, Buffer::Heap(_)));
        drop((again, other));
        assert!(crate::release_cached_outputs() >= 2 * n * 4);
    }

    #[test]
    fn memory_the_system_refuses_is_an_error_not_an_abort() {
        // 2^62 bytes passes the isize check but exceeds any x86-64/aarch64 address space,
        // so the mapping fails whatever the overcommit setting.
        let err = OwnedTensor::<u8>::zeros(&[1 << 62]).unwrap_err();
        assert!(
            matches!(err, ViewError::OutOfMemory { bytes, .. } if bytes == 1 << 62),
            "{err}"
        );
    }

    #[test]
    fn absurd_shapes_are_refused() {
        assert!(OwnedTensor::<f32>::zeros(&[usize::MAX, 2]).is_err());
        assert!(OwnedTensor::<f32>::zeros(&[usize::MAX / 2]).is_err());
    }

    #[test]
    fn from_slice_and_reshape() {
        let mut t = OwnedTensor::from_slice(&[1i32, 2, 3, 4], &[4]).unwrap();
        t.reshape(&[2, 2]).unwrap();
        assert_eq!(t.view().to_vec(), vec![1, 2, 3, 4]);
        assert!(t.reshape(&[3]).is_err());
        assert!(OwnedTensor::from_slice(&[1i32, 2], &[3]).is_err());
    }
}

//! Register-blocked tiles of dot products: the micro-kernel of [`crate::distance::cdist`].
//!
//! A tile is MR rows of `x` against NR rows of `y`, both packed k-major (for each feature
//! k, the MR or NR values side by side), accumulated in MR x NR registers over every k.
//! distance.rs has a generic loop for this that LLVM vectorizes, but how LLVM allocates
//! its registers proved fragile: moving the loop that calls it took the 6 x 32 AVX-512
//! tile from 109 to 9 GFLOP/s (the accumulators went to the stack), and no shape of it
//! reached MKL's 185-200 GFLOP/s per core. The AVX-512 and AVX2 tiles are therefore
//! written with intrinsics: per k, two vector loads of `y`, MR broadcasts of `x` and
//! 2 x MR fused multiply-adds into accumulators that stay in registers (24 of AVX-512's 32
//! vector registers, 12 of AVX2's 16, leaving room for the operands).

/// Which of a thread's two packing buffers (see [`DotTile::with_pack_buffer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackBuffer {
    /// Panels of `y` (the vector operand).
    Panels,
    /// Row groups of `x` (the broadcast operand).
    Groups,
}

/// A thread keeps packing buffers of up to this many bytes for the next call; larger
/// requests get an allocation of their own, freed after use.
const PACK_BUFFER_KEEP_BYTES: usize = 8 << 20;

/// Element types with hand-written tiles. Implemented for `f32` and `f64`; the tile
/// methods exist on every target, and are only called at the matching
/// [`crate::dispatch`] level.
pub trait DotTile: Copy {
    /// Runs `f` on `len` values of unspecified content, from a buffer this thread reuses
    /// across calls instead of a fresh zeroed allocation: zeroing the 2 MB of [4096, 128]
    /// took 0.05 ms of a 0.45 ms 12-row call, and above 128 KiB each allocation is a new
    /// mapping whose pages fault in again. The packers write every element. A nested call
    /// for the same buffer (or one during thread teardown) gets a fresh allocation.
    fn with_pack_buffer<R>(which: PackBuffer, len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;

    /// (MR, NR) of the AVX-512 tile.
    const AVX512: (usize, usize);
    /// (MR, NR) of the AVX2 tile.
    const AVX2: (usize, usize);

    /// `dst[r * ldc + c] = sum over k < d of group[k * MR + r] * panel[k * NR + c]` for
    /// r < MR, c < NR, with (MR, NR) = [`DotTile::AVX512`]: a tile of a row-major output
    /// with rows `ldc` apart. Slices shorter than that (`dst`: `(MR - 1) * ldc + NR`) panic.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    unsafe fn tile_avx512(group: &[Self], panel: &[Self], d: usize, dst: &mut [Self], ldc: usize);

    /// As [`DotTile::tile_avx512`], with (MR, NR) = [`DotTile::AVX2`].
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    unsafe fn tile_avx2(group: &[Self], panel: &[Self], d: usize, dst: &mut [Self], ldc: usize);
}

/// How many features ahead of the one being multiplied the tiles prefetch the panel of `y`
/// into L1. The hardware prefetchers keep up with a short panel, less so with a long one
/// coming from L2: on the 2-core VM (2 threads, ad-hoc) prefetching 8 ahead took
/// [256, 1024] x [8192, 1024] from 0.51x to 0.57x MKL's GEMM and [512, 512] x
/// [8192, 512] from 0.65x to 0.70x, with no change at 128 features.
const TILE_PREFETCH_DISTANCE: usize = 8;

/// Defines one intrinsics tile: `$mr` rows against two vectors of `$lanes` columns.
macro_rules! x86_tile {
    (
        $name:ident, $features:literal, $t:ty, $mr:literal, $lanes:literal,
        $zero:ident, $load:ident, $set1:ident, $fma:ident, $store:ident
    ) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        fn $name(group: &[$t], panel: &[$t], d: usize, dst: &mut [$t], ldc: usize) {
            use std::arch::x86_64::*;
            const MR: usize = $mr;
            const NR: usize = 2 * $lanes;
            let group = &group[..MR * d];
            let panel = &panel[..NR * d];
            let dst = &mut dst[..(MR - 1) * ldc + NR];
            let mut acc = [$zero(); 2 * MR];
            let ahead = panel.as_ptr().wrapping_add(TILE_PREFETCH_DISTANCE * NR);
            for (k, (a, b)) in group
                .chunks_exact(MR)
                .zip(panel.chunks_exact(NR))
                .enumerate()
            {
                let Ok(a) = <&[$t; MR]>::try_from(a) else {
                    break;
                };
                // A prefetch reads nothing and cannot fault: past the panel's end it is
                // merely wasted (`wrapping_add` keeps the address arithmetic defined).
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(k * NR).cast::<i8>());
                // SAFETY: `b` holds NR = 2 * $lanes elements, so both unaligned loads of
                // $lanes elements stay inside it.
                let (b0, b1) = unsafe { ($load(b.as_ptr()), $load(b.as_ptr().add($lanes))) };
                for r in 0..MR {
                    let ar = $set1(a[r]);
                    acc[2 * r] = $fma(ar, b0, acc[2 * r]);
                    acc[2 * r + 1] = $fma(ar, b1, acc[2 * r + 1]);
                }
            }
            for r in 0..MR {
                let row = &mut dst[r * ldc..r * ldc + NR];
                // SAFETY: `row` holds NR = 2 * $lanes elements, so both unaligned stores
                // of $lanes elements stay inside it.
                unsafe {
                    $store(row.as_mut_ptr(), acc[2 * r]);
                    $store(row.as_mut_ptr().add($lanes), acc[2 * r + 1]);
                }
            }
        }
    };
}

x86_tile!(
    tile_f32_avx512,
    "avx512f",
    f32,
    12,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_storeu_ps
);
x86_tile!(
    tile_f64_avx512,
    "avx512f",
    f64,
    12,
    8,
    _mm512_setzero_pd,
    _mm512_loadu_pd,
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_storeu_pd
);
x86_tile!(
    tile_f32_avx2,
    "avx2,fma",
    f32,
    6,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_storeu_ps
);
x86_tile!(
    tile_f64_avx2,
    "avx2,fma",
    f64,
    6,
    4,
    _mm256_setzero_pd,
    _mm256_loadu_pd,
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    _mm256_storeu_pd
);

/// The same sums in plain Rust: the tiles off x86_64, where no caller reaches them (the
/// levels that call them do not exist there), and the reference of the tests.
#[cfg(any(test, not(target_arch = "x86_64")))]
pub(crate) fn tile_portable<T>(
    group: &[T],
    panel: &[T],
    d: usize,
    shape: (usize, usize),
    dst: &mut [T],
    ldc: usize,
) where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
{
    let (mr, nr) = shape;
    for r in 0..mr {
        for (c, out) in dst[r * ldc..r * ldc + nr].iter_mut().enumerate() {
            *out = (0..d).fold(T::default(), |s, k| {
                s + group[k * mr + r] * panel[k * nr + c]
            });
        }
    }
}

/// A zeroed buffer of `len` values, advised onto transparent huge pages before anything
/// touches it (from 4 MiB, see `rt_view::advise_huge_pages`): the tiles sweep the packed
/// panels once per band of rows, and with 4 KiB pages each sweep of more than a few
/// megabytes misses the TLB (in a [256, 1024] x [8192, 1024] cdist, 0.40x the speed of
/// MKL's GEMM with them, 0.57x with huge pages; 2 threads, ad-hoc).
fn pack_buffer<T: Copy + Default>(len: usize) -> Vec<T> {
    let mut buffer = Vec::with_capacity(len);
    rt_view::advise_huge_pages(buffer.as_ptr() as usize, len * std::mem::size_of::<T>());
    buffer.resize(len, T::default());
    buffer
}

macro_rules! impl_dot_tile {
    ($t:ty, $avx512:ident, $avx2:ident, $shape512:expr, $shape2:expr) => {
        impl DotTile for $t {
            const AVX512: (usize, usize) = $shape512;
            const AVX2: (usize, usize) = $shape2;

            fn with_pack_buffer<R>(
                which: PackBuffer,
                len: usize,
                f: impl FnOnce(&mut [$t]) -> R,
            ) -> R {
                use std::cell::Cell;
                thread_local! {
                    static BUFFERS: [Cell<Vec<$t>>; 2] =
                        const { [Cell::new(Vec::new()), Cell::new(Vec::new())] };
                }
                if len.saturating_mul(std::mem::size_of::<$t>()) > PACK_BUFFER_KEEP_BYTES {
                    // Too large to keep: its own allocation, the kept buffer left alone.
                    return f(&mut pack_buffer(len));
                }
                let slot = which as usize;
                let mut buffer = BUFFERS.try_with(|b| b[slot].take()).unwrap_or_default();
                if buffer.len() < len {
                    buffer = pack_buffer(len);
                }
                let result = f(&mut buffer[..len]);
                let _ = BUFFERS.try_with(|b| {
                    // A nested call may have put a buffer back meanwhile: keep the larger.
                    let other = b[slot].take();
                    b[slot].set(if other.len() > buffer.len() {
                        other
                    } else {
                        buffer
                    });
                });
                result
            }

            unsafe fn tile_avx512(
                group: &[$t],
                panel: &[$t],
                d: usize,
                dst: &mut [$t],
                ldc: usize,
            ) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller guarantees AVX-512F, the only feature it enables.
                unsafe {
                    $avx512(group, panel, d, dst, ldc)
                }
                #[cfg(not(target_arch = "x86_64"))]
                tile_portable(group, panel, d, Self::AVX512, dst, ldc)
            }

            unsafe fn tile_avx2(group: &[$t], panel: &[$t], d: usize, dst: &mut [$t], ldc: usize) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller guarantees AVX2 and FMA, the features it enables.
                unsafe {
                    $avx2(group, panel, d, dst, ldc)
                }
                #[cfg(not(target_arch = "x86_64"))]
                tile_portable(group, panel, d, Self::AVX2, dst, ldc)
            }
        }
    };
}

impl_dot_tile!(f32, tile_f32_avx512, tile_f32_avx2, (12, 32), (6, 16));
impl_dot_tile!(f64, tile_f64_avx512, tile_f64_avx2, (12, 16), (6, 8));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{SimdLevel, supported_levels};

    /// Integer-valued operands: every sum is exact, so the tiles must match bit for bit.
    fn check<T>(from: fn(i32) -> T)
    where
        T: DotTile + Default + PartialEq + std::fmt::Debug,
        T: std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
    {
        for d in [0usize, 1, 3, 17, 128] {
            for level in supported_levels() {
                let shape = match level {
                    SimdLevel::Avx512 => T::AVX512,
                    SimdLevel::Avx2 => T::AVX2,
                    _ => continue,
                };
                let (mr, nr) = shape;
                let group: Vec<T> = (0..mr * d)
                    .map(|i| from((i as i32 * 7) % 23 - 11))
                    .collect();
                let panel: Vec<T> = (0..nr * d).map(|i| from((i as i32 * 5) % 19 - 9)).collect();
                // Rows 3 apart from the tile's width: what lies between must stay untouched.
                let ldc = nr + 3;
                let len = (mr - 1) * ldc + nr;
                let mut want = vec![from(99); len];
                tile_portable(&group, &panel, d, shape, &mut want, ldc);
                let mut got = vec![from(99); len];
                // SAFETY: `supported_levels` lists only levels this CPU runs.
                unsafe {
                    match level {
                        SimdLevel::Avx512 => T::tile_avx512(&group, &panel, d, &mut got, ldc),
                        _ => T::tile_avx2(&group, &panel, d, &mut got, ldc),
                    }
                }
                assert_eq!(got, want, "{level} with d = {d}");
                assert!(
                    got.chunks(ldc)
                        .all(|row| row[nr..].iter().all(|&v| v == from(99)))
                );
            }
        }
    }

    #[test]
    fn pack_buffers_are_reused_and_nest() {
        let first = f32::with_pack_buffer(PackBuffer::Panels, 1000, |b| {
            b.fill(1.0);
            b.as_ptr() as usize
        });
        // The same memory comes back, with its old contents (the packers overwrite it).
        f32::with_pack_buffer(PackBuffer::Panels, 10, |b| {
            assert_eq!(b.as_ptr() as usize, first);
            assert_eq!(b.len(), 10);
            // Nested: the same slot gives a separate buffer, the other slot its own.
            f32::with_pack_buffer(PackBuffer::Panels, 10, |inner| {
                assert_ne!(inner.as_ptr() as usize, first);
            });
            f32::with_pack_buffer(PackBuffer::Groups, 10, |g| {
                assert_ne!(g.as_ptr() as usize, first);
            });
        });
        let huge = PACK_BUFFER_KEEP_BYTES / 4 + 1;
        f32::with_pack_buffer(PackBuffer::Panels, huge, |b| assert_eq!(b.len(), huge));
        f32::with_pack_buffer(PackBuffer::Panels, 1, |b| {
            assert_eq!(
                b.as_ptr() as usize,
                first,
                "a buffer over the limit is not kept"
            );
        });
    }

    #[test]
    fn intrinsic_tiles_match_the_portable_sums() {
        check::<f32>(|v| v as f32);
        check::<f64>(f64::from);
    }
}

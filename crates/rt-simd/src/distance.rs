//! Distances: `cdist` between the rows of two matrices (l2, squared l2, cosine, dot),
//! and row-wise `cosine_similarity` (`l2_normalize` is a row function, in `rows`).
//!
//! `cdist` computes every dot product with a register-blocked kernel (the shape of a GEMM
//! micro-kernel: MR rows of `x` against a packed panel of NR rows of `y`, accumulated in
//! MR x NR registers; hand-written for AVX-512 and AVX2 in `crate::tile`) and applies the
//! metric in the same pass, so the output is written once. Like `torch.cdist` for more
//! than 25 rows, the Euclidean metrics use `|x|^2 + |y|^2 - 2 x.y` (clamped at 0): fast,
//! with an absolute error of a few ulps of `|x|^2 + |y|^2`, which is large relative to the
//! distance of near-identical rows (both operands are first moved by a common point, see
//! `euclidean_center`). Pairs with a row whose squared norm could overflow that form are
//! then recomputed from their differences (`direct_for_unbounded_rows`).

use crate::dispatch::{Isa, Kernel, SimdLevel, detected_level, dispatch_at, simd_level};
use crate::error::{Result, SimdError, check_len};
use crate::parallel::{PARALLEL_MIN_ELEMENTS, map_tasks, run_tasks, worth_parallel};
use crate::real::{Real, madd};
use crate::rows::lane_sum;
use crate::storage::Storage;
use crate::tile::PackBuffer;

/// The metric of [`cdist`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Euclidean distance.
    L2,
    /// Squared Euclidean distance.
    SqEuclidean,
    /// Cosine distance, `1 - cos(x, y)`; a row's norm is clamped at `eps` = 1e-8 as
    /// `torch.nn.functional.cosine_similarity` does.
    Cosine,
    /// The dot product (a similarity, not a distance).
    Dot,
}

impl Metric {
    /// Parses `"l2"` (or `"euclidean"`), `"sqeuclidean"`, `"cosine"`, `"dot"`.
    pub fn from_name(name: &str) -> Option<Metric> {
        match name {
            "l2" | "euclidean" => Some(Metric::L2),
            "sqeuclidean" => Some(Metric::SqEuclidean),
            "cosine" => Some(Metric::Cosine),
            "dot" => Some(Metric::Dot),
            _ => None,
        }
    }
}

/// The eps of `cosine_similarity`'s default, used by the cosine metric.
pub const COSINE_EPS: f64 = 1e-8;

/// Register-block shape (MR rows of x, NR columns of y) for a level and element type: the
/// hand-written tiles' (`crate::tile`) at AVX-512 and AVX2, the generic loop's below.
fn block_shape<T: Real>(level: SimdLevel) -> (usize, usize) {
    match (level, std::mem::size_of::<T>()) {
        (SimdLevel::Scalar, _) => (1, 1),
        (SimdLevel::Avx512, _) => T::AVX512,
        (SimdLevel::Avx2, _) => T::AVX2,
        (_, 4) => (6, 8),
        (_, _) => (6, 4),
    }
}

/// The packed y panels of one column block add up to about this many bytes, so that the
/// block stays in L2 while every row group of a band runs against it.
const COLUMN_BLOCK_BYTES: usize = 512 * 1024;

/// `y` (m x d) packed into `packed` (`m.div_ceil(nr) * nr * d` values) as panels of `nr`
/// rows, transposed: panel p holds, for each k,
/// the nr values `y[p*nr + c][k]` side by side; missing rows are zero. About as costly as
/// copying `y` (memory-bound: 0.25 ms for [4096, 128] float32 here, a copy 0.19 ms), so
/// large ones are split over the threads.
#[allow(clippy::too_many_arguments)] // operand, shape, centre, panel width, level, output
fn pack_panels<T: Real>(
    y: &[T],
    m: usize,
    d: usize,
    center: &[T],
    nr: usize,
    level: SimdLevel,
    packed: &mut [T],
) -> Result<()> {
    let panels = m.div_ceil(nr);
    let pack = |(p0, chunk): (usize, &mut [T])| {
        let kernel = PackPanels {
            y,
            center,
            m,
            d,
            nr,
            first_panel: p0,
            out: chunk,
        };
        dispatch_at(level, kernel);
    };
    if !worth_parallel(packed.len()) {
        pack((0, packed));
        return Ok(());
    }
    let threads = rt_view::threads::get_num_threads().max(1);
    let per_task = panels.div_ceil(threads * 2);
    run_tasks(
        packed
            .chunks_mut(per_task * nr * d)
            .enumerate()
            .map(|(t, chunk)| (t * per_task, chunk))
            .collect(),
        pack,
    )
}

/// Packs the panels `first_panel..` of `y` into `out` (whole panels), for [`pack_panels`],
/// each value less `center` of its feature (see [`euclidean_center`]).
struct PackPanels<'a, T> {
    y: &'a [T],
    center: &'a [T],
    m: usize,
    d: usize,
    nr: usize,
    first_panel: usize,
    out: &'a mut [T],
}

impl<T: Real> Kernel for PackPanels<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        match self.nr {
            32 => pack_into::<T, 32>(self),
            16 => pack_into::<T, 16>(self),
            8 => pack_into::<T, 8>(self),
            4 => pack_into::<T, 4>(self),
            _ => pack_into::<T, 1>(self),
        }
    }
}

/// [`PackPanels`] for a constant panel width: each step of the inner loop writes one
/// contiguous run of NR values (read from NR rows), a loop LLVM unrolls without bounds
/// checks; 1.8x faster than writing each row's values NR apart.
#[inline(always)]
fn pack_into<T: Real, const NR: usize>(p: PackPanels<'_, T>) {
    let d = p.d;
    let center = &p.center[..d];
    for (q, panel) in p.out.chunks_mut(NR * d).enumerate() {
        let first = (p.first_panel + q) * NR;
        let rows = NR.min(p.m.saturating_sub(first));
        if rows == NR {
            let src = &p.y[first * d..(first + NR) * d];
            for ((k, dst), &ck) in panel.chunks_exact_mut(NR).enumerate().zip(center) {
                for c in 0..NR {
                    dst[c] = src[c * d + k] - ck;
                }
            }
        } else {
            // The last panel, past the end of y: its missing rows are zero.
            for ((k, dst), &ck) in panel.chunks_exact_mut(NR).enumerate().zip(center) {
                for (c, v) in dst.iter_mut().enumerate() {
                    *v = if c < rows {
                        p.y[(first + c) * d + k] - ck
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}

/// Per-row data the epilogue needs: squared norms of the rows less `center` (Euclidean)
/// or clamped inverse norms (cosine).
fn row_factors<T: Real>(
    x: &[T],
    d: usize,
    metric: Metric,
    center: &[T],
    level: SimdLevel,
) -> Vec<T> {
    match metric {
        Metric::Dot => vec![T::ZERO; x.len() / d.max(1)],
        Metric::L2 | Metric::SqEuclidean => {
            let center = &center[..d];
            let mut shifted = vec![T::ZERO; d];
            x.chunks_exact(d.max(1))
                .map(|r| {
                    for ((s, &v), &c) in shifted.iter_mut().zip(r).zip(center) {
                        *s = v - c;
                    }
                    dispatch_at(level, SumSquares(&shifted))
                })
                .collect()
        }
        Metric::Cosine => x
            .chunks_exact(d.max(1))
            .map(|r| {
                let n = dispatch_at(level, SumSquares(r)).sqrt();
                let eps = T::from_f64(COSINE_EPS);
                T::ONE / if n < eps { eps } else { n }
            })
            .collect(),
    }
}

struct SumSquares<'a, T>(&'a [T]);
impl<T: Real> Kernel for SumSquares<'_, T> {
    type Output = T;
    #[inline(always)]
    fn run<I: Isa>(self) -> T {
        if I::SCALAR {
            lane_sum::<T, I, 1>(self.0, |v| v * v)
        } else {
            lane_sum::<T, I, 32>(self.0, |v| v * v)
        }
    }
}

/// A band of rows of `x` against every panel of `y`. `x_factor` holds one value per row
/// of the band and `y_factor` one per row of `y`; `x` is packed less `center` (as `y` was).
struct Band<'a, T> {
    x: &'a [T],
    center: &'a [T],
    out: &'a mut [T],
    packed: &'a [T],
    /// Room for the band's rows packed MR at a time ([`groups_len`] values).
    apack: &'a mut [T],
    m: usize,
    d: usize,
    x_factor: &'a [T],
    y_factor: &'a [T],
    metric: Metric,
}

#[inline(always)]
fn epilogue<T: Real>(metric: Metric, dot: T, fx: T, fy: T) -> T {
    match metric {
        Metric::Dot => dot,
        Metric::SqEuclidean | Metric::L2 => {
            let d2 = fx + fy - T::TWO * dot;
            // Clamped at 0 (rounding can make it slightly negative); NaN kept.
            let d2 = if d2 < T::ZERO { T::ZERO } else { d2 };
            if metric == Metric::L2 { d2.sqrt() } else { d2 }
        }
        Metric::Cosine => T::ONE - dot * fx * fy,
    }
}

/// The length of [`Band::apack`] for `rows` rows of `d` features at `level`. The caller
/// lends it (from [`DotTile::with_pack_buffer`](crate::tile::DotTile::with_pack_buffer))
/// outside the dispatched kernel: a closure inside the kernel would be compiled without
/// the level's instruction set (its epilogue ran on SSE2 that way).
fn groups_len<T: Real>(rows: usize, d: usize, level: SimdLevel) -> usize {
    let (mr, _) = block_shape::<T>(level);
    rows.div_ceil(mr) * mr * d
}

#[inline(always)]
fn band<T: Real, I: Isa, const MR: usize, const NR: usize>(k: Band<'_, T>) {
    let d = k.d;
    let rows = k.out.len() / k.m.max(1);
    if d == 0 || rows == 0 {
        return;
    }
    // The band's rows packed MR at a time, k-major (for each k, the MR values side by
    // side), so that the inner loop reads both operands sequentially; rows past the end
    // repeat the last row, and their results are dropped.
    let groups = rows.div_ceil(MR);
    // Lent by the caller at `groups_len` values: a shorter one is a bug here, and a panic
    // (a Python exception) beats leaving the output unwritten.
    let apack = &mut k.apack[..groups * MR * d];
    // One value per feature (a shorter one would leave features unwritten: a panic instead).
    let center = &k.center[..d];
    for (g, group) in apack.chunks_exact_mut(MR * d).enumerate() {
        for r in 0..MR {
            let row = (g * MR + r).min(rows - 1);
            let src = &k.x[row * d..(row + 1) * d];
            for (kk, (&v, &c)) in src.iter().zip(center).enumerate() {
                group[kk * MR + r] = v - c;
            }
        }
    }
    // Column blocks of y's panels that stay in L2 while every row group of the band runs
    // against them; within a block one group (in L1) sweeps the panels left to right, so
    // each output row is written front to back rather than NR values at a time on every
    // row of the band (measured with the generic 12 x 32 tile on one core, [2048, 128] x
    // [4096, 128]: 108 -> 138 GFLOP/s; the order of BLIS's loops, C being row-major here).
    let panel_len = NR * d;
    let panels_per_block = (COLUMN_BLOCK_BYTES / (panel_len * std::mem::size_of::<T>())).max(1);
    let tile_kind = TileKind::of::<T, I>((MR, NR));
    let mut edge = [[T::ZERO; NR]; MR];
    let m = k.m;
    for (b, block) in k.packed.chunks(panels_per_block * panel_len).enumerate() {
        for (g, group) in apack.chunks_exact(MR * d).enumerate() {
            let i0 = g * MR;
            let height = MR.min(rows - i0);
            for (q, panel) in block.chunks_exact(panel_len).enumerate() {
                let j0 = (b * panels_per_block + q) * NR;
                let width = NR.min(m - j0);
                let fys = &k.y_factor[j0..j0 + width];
                if height == MR && width == NR {
                    // A whole tile: its dot products go straight into the output (no
                    // round trip through the stack), and the metric is applied there,
                    // while the rows are still in L1.
                    let dst = &mut k.out[i0 * m + j0..(i0 + MR - 1) * m + j0 + NR];
                    fill_tile::<T, I, MR, NR>(tile_kind, group, panel, d, dst, m);
                    if k.metric != Metric::Dot {
                        for r in 0..MR {
                            let fx = k.x_factor[i0 + r];
                            let orow = &mut dst[r * m..r * m + NR];
                            for (o, &fy) in orow.iter_mut().zip(fys) {
                                *o = epilogue(k.metric, *o, fx, fy);
                            }
                        }
                    }
                    continue;
                }
                // A tile at the bottom or right edge: computed whole into `edge`, of which
                // the part inside the output is kept.
                fill_tile::<T, I, MR, NR>(tile_kind, group, panel, d, edge.as_flattened_mut(), NR);
                for (r, acc_row) in edge.iter().enumerate().take(height) {
                    let i = i0 + r;
                    let fx = k.x_factor[i];
                    let orow = &mut k.out[i * m + j0..i * m + j0 + width];
                    for ((o, &dot), &fy) in orow.iter_mut().zip(acc_row).zip(fys) {
                        *o = epilogue(k.metric, dot, fx, fy);
                    }
                }
            }
        }
    }
}

/// Which code computes a band's tiles.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TileKind {
    Avx512,
    Avx2,
    Generic,
}

impl TileKind {
    /// The hand-written tile of level `I` when it has this shape and the CPU runs it
    /// (`Kernel::run` is public, so `I` alone does not prove the CPU supports it).
    fn of<T: Real, I: Isa>(shape: (usize, usize)) -> TileKind {
        match I::LEVEL {
            SimdLevel::Avx512 if shape == T::AVX512 && detected_level() >= SimdLevel::Avx512 => {
                TileKind::Avx512
            }
            SimdLevel::Avx2 if shape == T::AVX2 && detected_level() >= SimdLevel::Avx2 => {
                TileKind::Avx2
            }
            _ => TileKind::Generic,
        }
    }
}

/// `dst[r * ldc + c]` = the dot product of the group's row r and the panel's row c, for
/// r < MR and c < NR (`dst` holds at least `(MR - 1) * ldc + NR` elements).
#[inline(always)]
fn fill_tile<T: Real, I: Isa, const MR: usize, const NR: usize>(
    kind: TileKind,
    group: &[T],
    panel: &[T],
    d: usize,
    dst: &mut [T],
    ldc: usize,
) {
    match kind {
        // SAFETY: `TileKind::of` chose these only where `detected_level` confirmed the
        // CPU's support, and for the tile's own (MR, NR).
        TileKind::Avx512 => unsafe { T::tile_avx512(group, panel, d, dst, ldc) },
        // SAFETY: as above, for AVX2 and FMA.
        TileKind::Avx2 => unsafe { T::tile_avx2(group, panel, d, dst, ldc) },
        TileKind::Generic => {
            let mut acc = [[T::ZERO; NR]; MR];
            for (a, b) in group.chunks_exact(MR).zip(panel.chunks_exact(NR)) {
                let (Ok(a), Ok(b)) = (<&[T; MR]>::try_from(a), <&[T; NR]>::try_from(b)) else {
                    return;
                };
                for r in 0..MR {
                    for c in 0..NR {
                        acc[r][c] = madd::<T, I>(a[r], b[c], acc[r][c]);
                    }
                }
            }
            // Copied out with constant indices only: a dynamic index into `acc` would make
            // LLVM keep the accumulators in memory instead of registers.
            let mut tile = [[T::ZERO; NR]; MR];
            for r in 0..MR {
                for c in 0..NR {
                    tile[r][c] = acc[r][c];
                }
            }
            for (r, row) in tile.iter().enumerate() {
                dst[r * ldc..r * ldc + NR].copy_from_slice(row);
            }
        }
    }
}

impl<T: Real> Kernel for Band<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        match block_shape::<T>(I::LEVEL) {
            (1, 1) => band::<T, I, 1, 1>(self),
            (12, 32) => band::<T, I, 12, 32>(self),
            (12, 16) => band::<T, I, 12, 16>(self),
            (6, 16) => band::<T, I, 6, 16>(self),
            (6, 8) => band::<T, I, 6, 8>(self),
            _ => band::<T, I, 6, 4>(self),
        }
    }
}

/// Distances between every row of `x` (`n x d`) and every row of `y` (`m x d`), written
/// to `out` (`n x m`, row-major).
pub fn cdist<T: Real>(x: &[T], y: &[T], d: usize, metric: Metric, out: &mut [T]) -> Result<()> {
    cdist_cancellable(x, y, d, metric, out, None)
}

pub(crate) fn cdist_cancellable<T: Real>(
    x: &[T],
    y: &[T],
    d: usize,
    metric: Metric,
    out: &mut [T],
    cancel: Option<&rt_view::cancel::CancelToken>,
) -> Result<()> {
    let rows = |len: usize, what: &'static str| -> Result<usize> {
        if d == 0 {
            return Ok(0);
        }
        if !len.is_multiple_of(d) {
            return Err(SimdError::InvalidArgument {
                name: what,
                reason: format!("{len} elements do not split into rows of {d}"),
            });
        }
        Ok(len / d)
    };
    let (n, m) = (rows(x.len(), "x")?, rows(y.len(), "y")?);
    if d == 0 {
        // Rows of no features: the caller's shapes say how many; out must be n x m then.
        let value = epilogue(metric, T::ZERO, T::ZERO, T::ZERO);
        out.iter_mut().for_each(|o| *o = value);
        return Ok(());
    }
    check_len("output length (x rows * y rows)", n * m, out.len())?;
    if n == 0 || m == 0 {
        return Ok(());
    }
    let level = simd_level();
    let (_, nr) = block_shape::<T>(level);
    let center = match metric {
        Metric::L2 | Metric::SqEuclidean if n <= m => euclidean_center(x, d),
        Metric::L2 | Metric::SqEuclidean => euclidean_center(y, d),
        Metric::Dot | Metric::Cosine => vec![T::ZERO; d],
    };
    let x_factor = row_factors(x, d, metric, &center, level);
    let y_factor = row_factors(y, d, metric, &center, level);
    let by_columns = n <= BY_COLUMNS_MAX_ROWS && n * m <= BY_COLUMNS_MAX_OUTPUT;
    let factors = (x_factor.as_slice(), y_factor.as_slice());
    if by_columns && n * m * d >= PARALLEL_MIN_ELEMENTS * 4 {
        let operands = (x, y, center.as_slice());
        cdist_by_columns(operands, (n, m, d), metric, factors, out, level, cancel)?;
    } else {
        let len = m.div_ceil(nr) * nr * d;
        T::with_pack_buffer(PackBuffer::Panels, len, |packed| {
            pack_panels(y, m, d, &center, nr, level, packed)?;
            let packed: &[T] = packed;
            cdist_by_rows(
                (x, &center),
                (n, m, d),
                metric,
                packed,
                factors,
                out,
                level,
                cancel,
            )
        })?;
    }
    if matches!(metric, Metric::L2 | Metric::SqEuclidean) {
        direct_for_unbounded_rows((x, y, d), metric, factors, out, level);
    }
    Ok(())
}

/// Rewrites, from the direct sum of squared differences, the distances of every pair with
/// a row whose squared norm exceeds a quarter of the largest finite value: a row holding
/// an infinity, or values so large that `|x|^2 + |y|^2 - 2 x.y` may overflow (below that
/// bound it cannot: `2 |x.y| <= |x|^2 + |y|^2`). The norm form gives inf - inf = NaN
/// there, where the distance is inf (or finite, where huge values cancel), as
/// torch.cdist's direct path (25 rows or fewer) gives it. Rows with a NaN are NaN either
/// way. Data without such rows pays one scan of the row factors.
fn direct_for_unbounded_rows<T: Real>(
    (x, y, d): (&[T], &[T], usize),
    metric: Metric,
    (x_factor, y_factor): (&[T], &[T]),
    out: &mut [T],
    level: SimdLevel,
) {
    let unbounded = |f: &[T]| -> Vec<usize> {
        let limit = T::MAX * T::from_f64(0.25);
        (0..f.len()).filter(|&i| f[i] > limit).collect()
    };
    let (rows_x, rows_y) = (unbounded(x_factor), unbounded(y_factor));
    if rows_x.is_empty() && rows_y.is_empty() {
        return;
    }
    let m = y_factor.len();
    // Rare pairs: each difference goes through one small buffer into the row norms' sum.
    let mut diff = vec![T::ZERO; d];
    let mut distance = |i: usize, j: usize| {
        for ((s, &a), &b) in diff.iter_mut().zip(&x[i * d..][..d]).zip(&y[j * d..][..d]) {
            *s = a - b;
        }
        let d2 = dispatch_at(level, SumSquares(&diff));
        if metric == Metric::L2 { d2.sqrt() } else { d2 }
    };
    for &i in &rows_x {
        for j in 0..m {
            out[i * m + j] = distance(i, j);
        }
    }
    for &j in &rows_y {
        // Pairs whose x row was unbounded too are already done.
        for i in (0..x_factor.len()).filter(|i| rows_x.binary_search(i).is_err()) {
            out[i * m + j] = distance(i, j);
        }
    }
}

/// At most this many rows, evenly spaced, give [`euclidean_center`] its medians.
const CENTER_SAMPLE_ROWS: usize = 64;

/// The point both operands of a Euclidean [`cdist`] are moved by: per feature, the median
/// (the lower one for an even count) of the finite values of up to [`CENTER_SAMPLE_ROWS`]
/// evenly spaced rows (every `ceil(n / 64)`-th, from the first) of `rows`, the operand with
/// fewer rows; 0 for a feature with no finite value there. `|x|^2 + |y|^2 - 2 x.y` loses
/// about `|x|^2 / |x - y|^2` ulps, so data far from the origin (coordinates, pixel values)
/// lost most of its digits; distances do not change when both sides move by the same
/// point. A median rather than a mean, so that a few outlying rows cannot carry the point
/// away from all the others (one value of 1e12 among unit data took every other distance
/// to 0 with the mean). Applied while the operands are packed; the l2 backward
/// (`_euclidean_center` in `_ops.py`) picks the same point.
fn euclidean_center<T: Real>(rows: &[T], d: usize) -> Vec<T> {
    let n = rows.len() / d.max(1);
    let stride = n.div_ceil(CENTER_SAMPLE_ROWS).max(1);
    let mut column = Vec::with_capacity(CENTER_SAMPLE_ROWS);
    (0..d)
        .map(|j| {
            column.clear();
            column.extend(
                (0..n)
                    .step_by(stride)
                    .map(|i| rows[i * d + j])
                    .filter(|v| v.to_f64().is_finite()),
            );
            if column.is_empty() {
                return T::ZERO;
            }
            let mid = (column.len() - 1) / 2;
            // Finite values only, so the order is total.
            let order = |a: &T, b: &T| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal);
            *column.select_nth_unstable_by(mid, order).1
        })
        .collect()
}

/// [`cdist`] in bands of rows of `x` against all of `y`, packed once into `packed`.
#[allow(clippy::too_many_arguments)] // operands, shapes, metric, factors, output, level, token
fn cdist_by_rows<T: Real>(
    (x, center): (&[T], &[T]),
    (n, m, d): (usize, usize, usize),
    metric: Metric,
    packed: &[T],
    (x_factor, y_factor): (&[T], &[T]),
    out: &mut [T],
    level: SimdLevel,
    cancel: Option<&rt_view::cancel::CancelToken>,
) -> Result<()> {
    let (mr, _) = block_shape::<T>(level);
    let work = n * m * d;
    let threads = rt_view::threads::get_num_threads().max(1);
    let band_rows = if work < PARALLEL_MIN_ELEMENTS * 4 {
        n
    } else {
        // Several bands per thread, each a multiple of MR rows.
        let per = n.div_ceil(threads * 4).max(1);
        per.div_ceil(mr) * mr
    };
    let run = |(b, out): (usize, &mut [T])| -> Result<()> {
        if let Some(token) = cancel {
            token.check()?;
        }
        let i0 = b * band_rows;
        let rows = out.len() / m;
        T::with_pack_buffer(
            PackBuffer::Groups,
            groups_len::<T>(rows, d, level),
            |apack| {
                let kernel = Band {
                    x: &x[i0 * d..(i0 + rows) * d],
                    center,
                    out,
                    packed,
                    apack,
                    m,
                    d,
                    x_factor: &x_factor[i0..i0 + rows],
                    y_factor,
                    metric,
                };
                dispatch_at(level, kernel);
            },
        );
        Ok(())
    };
    if band_rows >= n {
        return run((0, out));
    }
    let results = map_tasks(out.chunks_mut(band_rows * m).enumerate().collect(), run)?;
    results.into_iter().collect()
}

/// Up to this many rows of `x`, [`cdist_by_columns`] runs instead of row bands.
///
/// Row bands share one packed copy of all of `y`: writing and re-reading it costs about two
/// passes over `y` in memory, which few rows of `x` do not amortize (12 rows against
/// [4096, 128]: 0.45 ms, of which packing 0.3, against MKL's 0.09). Column blocks pack
/// their part of `y` where it is used, in L2, at the price of packing `x` once per block
/// and copying the result once: by a count of the memory traffic (not measured), equal
/// costs at about 230 rows for 128 features.
const BY_COLUMNS_MAX_ROWS: usize = 128;

/// ... and up to this many output values: the column blocks' results live side by side
/// until they are copied out, as much memory again as the output.
const BY_COLUMNS_MAX_OUTPUT: usize = 1 << 24;

/// [`cdist`] for few rows of `x`: blocks of `y`'s rows are the parallel tasks, each packed
/// into L2 by the task that uses it and run against every row of `x` into a task-local
/// result, copied into `out` afterwards (in parallel, by rows).
#[allow(clippy::too_many_arguments)] // operands, shapes, metric, factors, output, level, token
fn cdist_by_columns<T: Real>(
    (x, y, center): (&[T], &[T], &[T]),
    (n, m, d): (usize, usize, usize),
    metric: Metric,
    (x_factor, y_factor): (&[T], &[T]),
    out: &mut [T],
    level: SimdLevel,
    cancel: Option<&rt_view::cancel::CancelToken>,
) -> Result<()> {
    let (_, nr) = block_shape::<T>(level);
    let threads = rt_view::threads::get_num_threads().max(1);
    let by_cache = (COLUMN_BLOCK_BYTES / (d * std::mem::size_of::<T>())).max(nr) / nr * nr;
    let by_threads = m.div_ceil(threads * 4).div_ceil(nr) * nr;
    let cols = by_cache.min(by_threads).max(nr);
    let starts: Vec<usize> = (0..m).step_by(cols).collect();
    let block = |j0: usize| -> Result<Vec<T>> {
        if let Some(token) = cancel {
            token.check()?;
        }
        let width = cols.min(m - j0);
        let mut local = vec![T::ZERO; n * width];
        T::with_pack_buffer(PackBuffer::Panels, width.div_ceil(nr) * nr * d, |packed| {
            let pack = PackPanels {
                y: &y[j0 * d..(j0 + width) * d],
                center,
                m: width,
                d,
                nr,
                first_panel: 0,
                out: &mut *packed,
            };
            dispatch_at(level, pack);
            T::with_pack_buffer(PackBuffer::Groups, groups_len::<T>(n, d, level), |apack| {
                let kernel = Band {
                    x,
                    center,
                    out: &mut local,
                    packed,
                    apack,
                    m: width,
                    d,
                    x_factor,
                    y_factor: &y_factor[j0..j0 + width],
                    metric,
                };
                dispatch_at(level, kernel);
            });
        });
        Ok(local)
    };
    let blocks = match starts.len() {
        1 => vec![block(0)?],
        _ => map_tasks(starts.clone(), block)?
            .into_iter()
            .collect::<Result<Vec<_>>>()?,
    };
    let rows_per_task = n.div_ceil(threads);
    let copy = |(t, rows): (usize, &mut [T])| {
        for (r, row) in rows.chunks_exact_mut(m).enumerate() {
            let i = t * rows_per_task + r;
            for (&j0, local) in starts.iter().zip(&blocks) {
                let width = cols.min(m - j0);
                row[j0..j0 + width].copy_from_slice(&local[i * width..(i + 1) * width]);
            }
        }
    };
    if worth_parallel(out.len()) {
        run_tasks(
            out.chunks_mut(rows_per_task * m).enumerate().collect(),
            copy,
        )
    } else {
        copy((0, out));
        Ok(())
    }
}

struct RowPairs<'a, S: Storage> {
    x1: &'a [S],
    x2: &'a [S],
    d: usize,
    eps: S::Compute,
    out: &'a mut [S],
}

impl<S: Storage> Kernel for RowPairs<'_, S> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let d = self.d.max(1);
        let rows = self.x1.chunks_exact(d).zip(self.x2.chunks_exact(d));
        for (o, (a, b)) in self.out.iter_mut().zip(rows) {
            let (dot, n1, n2) = if I::SCALAR {
                dot_norms::<S, I, 1>(a, b)
            } else {
                dot_norms::<S, I, 16>(a, b)
            };
            let clamp = |n: S::Compute| if n < self.eps { self.eps } else { n };
            *o = S::store(dot / (clamp(n1.sqrt()) * clamp(n2.sqrt())));
        }
    }
}

#[inline(always)]
fn dot_norms<S: Storage, I: Isa, const L: usize>(
    a: &[S],
    b: &[S],
) -> (S::Compute, S::Compute, S::Compute) {
    let zero = S::Compute::ZERO;
    let mut dot = [zero; L];
    let mut na = [zero; L];
    let mut nb = [zero; L];
    let ca = a.chunks_exact(L);
    let cb = b.chunks_exact(L);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..L {
            let (x, y) = (x[j].load(), y[j].load());
            dot[j] = madd::<S::Compute, I>(x, y, dot[j]);
            na[j] = madd::<S::Compute, I>(x, x, na[j]);
            nb[j] = madd::<S::Compute, I>(y, y, nb[j]);
        }
    }
    let (mut d, mut s1, mut s2) = (zero, zero, zero);
    for (&x, &y) in ta.iter().zip(tb) {
        let (x, y) = (x.load(), y.load());
        d += x * y;
        s1 += x * x;
        s2 += y * y;
    }
    for j in 0..L {
        d += dot[j];
        s1 += na[j];
        s2 += nb[j];
    }
    (d, s1, s2)
}

/// Row-wise cosine similarity of two `n x d` matrices, as
/// `torch.nn.functional.cosine_similarity(x1, x2, dim=-1, eps)`:
/// `x1.x2 / (max(|x1|, eps) max(|x2|, eps))`.
pub fn cosine_similarity<S: Storage>(
    x1: &[S],
    x2: &[S],
    d: usize,
    eps: f64,
    out: &mut [S],
) -> Result<()> {
    check_len("x1 and x2 lengths", x1.len(), x2.len())?;
    let n = x1.len().checked_div(d).unwrap_or(out.len());
    if d > 0 && !x1.len().is_multiple_of(d) {
        return Err(SimdError::InvalidArgument {
            name: "x1",
            reason: format!("{} elements do not split into rows of {d}", x1.len()),
        });
    }
    check_len("output length (rows)", n, out.len())?;
    if d == 0 {
        out.iter_mut().for_each(|o| *o = S::store(S::Compute::ZERO));
        return Ok(());
    }
    let level = simd_level();
    let eps = S::Compute::from_f64(eps);
    let rows_per_task = (PARALLEL_MIN_ELEMENTS / d).max(1);
    let task = |((x1, x2), out): ((&[S], &[S]), &mut [S])| {
        dispatch_at(
            level,
            RowPairs {
                x1,
                x2,
                d,
                eps,
                out,
            },
        )
    };
    if x1.len() < PARALLEL_MIN_ELEMENTS {
        task(((x1, x2), out));
        return Ok(());
    }
    run_tasks(
        x1.chunks(rows_per_task * d)
            .zip(x2.chunks(rows_per_task * d))
            .zip(out.chunks_mut(rows_per_task))
            .collect(),
        task,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(x: &[f64], y: &[f64], d: usize, metric: Metric) -> Vec<f64> {
        let (n, m) = (x.len() / d, y.len() / d);
        let mut out = Vec::with_capacity(n * m);
        for i in 0..n {
            for j in 0..m {
                let a = &x[i * d..(i + 1) * d];
                let b = &y[j * d..(j + 1) * d];
                let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
                let sq: f64 = a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum();
                let na = a.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-8);
                let nb = b.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-8);
                out.push(match metric {
                    Metric::Dot => dot,
                    Metric::SqEuclidean => sq,
                    Metric::L2 => sq.sqrt(),
                    Metric::Cosine => 1.0 - dot / (na * nb),
                });
            }
        }
        out
    }

    proptest! {
        #[test]
        fn cdist_matches_the_naive_loops_at_every_level(
            n in 1usize..20,
            m in 1usize..40,
            d in 1usize..20,
            seed in 0u64..1000,
        ) {
            let make = |len: usize, s: u64| -> Vec<f64> {
                (0..len).map(|i| ((i as u64 * 2654435761 + s) % 200) as f64 / 20.0 - 5.0).collect()
            };
            let x = make(n * d, seed);
            let y = make(m * d, seed + 7);
            for metric in [Metric::Dot, Metric::SqEuclidean, Metric::L2, Metric::Cosine] {
                let want = naive(&x, &y, d, metric);
                // Moved by x's centre for the Euclidean metrics, as `cdist` does.
                let center = if matches!(metric, Metric::L2 | Metric::SqEuclidean) {
                    euclidean_center(&x, d)
                } else {
                    vec![0.0; d]
                };
                for level in crate::dispatch::supported_levels() {
                    let (_, nr) = block_shape::<f64>(level);
                    let mut packed = vec![0.0; m.div_ceil(nr) * nr * d];
                    pack_panels(&y, m, d, &center, nr, level, &mut packed).unwrap();
                    let mut out = vec![0.0; n * m];
                    let mut apack = vec![0.0; groups_len::<f64>(n, d, level)];
                    let kernel = Band {
                        x: &x,
                        center: &center,
                        out: &mut out,
                        packed: &packed,
                        apack: &mut apack,
                        m,
                        d,
                        x_factor: &row_factors(&x, d, metric, &center, level),
                        y_factor: &row_factors(&y, d, metric, &center, level),
                        metric,
                    };
                    dispatch_at(level, kernel);
                    for (g, w) in out.iter().zip(&want) {
                        // |x|^2 + |y|^2 - 2xy errs by a few ulps of |x|^2 + |y|^2 (at most
                        // 2 * 25 * d here); compare squares for l2.
                        let (g, w) = if metric == Metric::L2 { (g * g, w * w) } else { (*g, *w) };
                        let tol = 1e-14 * (1.0 + w.abs() + 50.0 * d as f64);
                        prop_assert!((g - w).abs() <= tol, "{metric:?} at {level}: {g} vs {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn euclidean_distances_far_from_the_origin_keep_their_digits() {
        // Points near (1e4, ..., 1e4) in f32: |x|^2 + |y|^2 - 2 x.y without the shift would
        // lose |x|^2 / |x - y|^2 = 1e8 / ~10 ulps, every digit of a float32. Both paths (a few
        // rows by column blocks, many by bands), a NaN in one row kept to its row.
        for (n, m) in [(3usize, 20_000usize), (300, 200)] {
            let d = 16;
            let wobble = |i: usize| ((i * 2_654_435_761) % 1000) as f32 / 500.0 - 1.0;
            let mut x: Vec<f32> = (0..n * d).map(|i| 1e4 + wobble(i)).collect();
            let y: Vec<f32> = (0..m * d).map(|i| 1e4 + wobble(i + 7)).collect();
            x[d] = f32::NAN;
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            let y64: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
            for metric in [Metric::L2, Metric::SqEuclidean] {
                let mut out = vec![0f32; n * m];
                cdist(&x, &y, d, metric, &mut out).unwrap();
                let want = naive(&x64, &y64, d, metric);
                for (k, (g, w)) in out.iter().zip(&want).enumerate() {
                    if k / m == 1 {
                        assert!(g.is_nan());
                        continue;
                    }
                    let err = (f64::from(*g) - w).abs();
                    assert!(err <= 1e-4 * w.abs(), "{metric:?} {n}x{m}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn large_cdist_splits_into_bands() {
        let (n, m, d) = (500, 300, 33);
        let x: Vec<f32> = (0..n * d).map(|i| ((i * 13) % 17) as f32 / 7.0).collect();
        let y: Vec<f32> = (0..m * d).map(|i| ((i * 11) % 19) as f32 / 5.0).collect();
        let mut out = vec![0f32; n * m];
        cdist(&x, &y, d, Metric::Dot, &mut out).unwrap();
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let y64: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
        let want = naive(&x64, &y64, d, Metric::Dot);
        for (g, w) in out.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() <= 1e-4 * (1.0 + w.abs()));
        }
        assert!(cdist(&x, &y[..10], d, Metric::Dot, &mut out).is_err());
    }

    #[test]
    fn few_rows_run_by_column_blocks() {
        // Few rows of x and enough work: the column-block path, with a last block narrower
        // than the others and than a panel; every metric against the naive loops.
        let (n, m, d) = (7, 5000 + 3, 40);
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i * 13) % 17) as f64 / 7.0 - 1.0)
            .collect();
        let y: Vec<f64> = (0..m * d)
            .map(|i| ((i * 11) % 19) as f64 / 5.0 - 2.0)
            .collect();
        assert!(n <= BY_COLUMNS_MAX_ROWS && n * m * d >= PARALLEL_MIN_ELEMENTS * 4);
        for metric in [Metric::Dot, Metric::SqEuclidean, Metric::L2, Metric::Cosine] {
            let mut out = vec![f64::NAN; n * m];
            cdist(&x, &y, d, metric, &mut out).unwrap();
            for (g, w) in out.iter().zip(naive(&x, &y, d, metric)) {
                assert!(
                    (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                    "{metric:?}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn cosine_similarity_and_normalize() {
        let x1 = [3.0f64, 4.0, 0.0, 0.0];
        let x2 = [6.0f64, 8.0, 1.0, 0.0];
        let mut out = [0.0; 2];
        cosine_similarity(&x1, &x2, 2, 1e-8, &mut out).unwrap();
        assert!((out[0] - 1.0).abs() < 1e-15);
        assert_eq!(out[1], 0.0);
        let mut y = [0.0; 4];
        crate::rows::l2_normalize(&x1, 2, 1e-12, &mut y).unwrap();
        assert_eq!(y, [0.6, 0.8, 0.0, 0.0]);
    }
}

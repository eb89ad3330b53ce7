//! Statistics along one axis and the scalers built on them: `mean_var` (one pass, Welford,
//! merged across threads with Chan's formula), `standardize`, `minmax_scale` and
//! `robust_scale` (median and IQR, as scikit-learn's RobustScaler), each with a NaN policy.
//!
//! A row-major tensor reduced along `dim` is seen as `[outer, len, inner]` ([`Axis`]): for
//! the columns of a `[rows, features]` matrix that is `[1, rows, features]`, and the
//! kernels walk it row by row, vectorized across the `inner` features, so memory is read
//! once, in order. Reductions along the last axis (`inner == 1`) sum contiguous rows in
//! independent lanes instead. Sums and Welford states are kept in f64 for every input.
//!
//! Every function takes any [`Storage`] type: the 16-bit floats are widened in registers
//! as they are read (minima, maxima and quantiles are compared in f32, exactly), the
//! per-lane parameters are applied in f32, and each result is rounded to 16 bits once.

use crate::dispatch::{Isa, Kernel, SimdLevel, dispatch_at, simd_level};
use crate::error::{Result, SimdError, check_len};
use crate::math::opaque;
use crate::parallel::{PARALLEL_MIN_ELEMENTS, map_tasks, run_tasks};
use crate::real::{Real, madd};
use crate::storage::Storage;

/// What to do with NaN inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NanPolicy {
    /// A NaN makes its lane's statistics NaN (torch's and NumPy's default).
    Propagate,
    /// NaNs are skipped (like `np.nanmean` or scikit-learn's scalers); NaN inputs give NaN
    /// outputs; a lane of only NaNs gets NaN statistics.
    Omit,
    /// Any NaN is an error, and nothing is written.
    Raise,
}

impl NanPolicy {
    /// Parses `"propagate"`, `"omit"` or `"raise"`.
    pub fn from_name(name: &str) -> Option<NanPolicy> {
        match name {
            "propagate" => Some(NanPolicy::Propagate),
            "omit" => Some(NanPolicy::Omit),
            "raise" => Some(NanPolicy::Raise),
            _ => None,
        }
    }
}

/// A row-major tensor seen as `[outer, len, inner]`, reduced over `len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    /// Product of the dimensions before the reduced one.
    pub outer: usize,
    /// The reduced dimension's size.
    pub len: usize,
    /// Product of the dimensions after it.
    pub inner: usize,
}

impl Axis {
    /// The axis `dim` of a row-major tensor of `shape`.
    pub fn of(shape: &[usize], dim: usize) -> Result<Axis> {
        let Some(&len) = shape.get(dim) else {
            return Err(SimdError::InvalidArgument {
                name: "dim",
                reason: format!("dim {dim} is out of range for {} dimensions", shape.len()),
            });
        };
        let prod = |dims: &[usize]| dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let overflow = || SimdError::InvalidArgument {
            name: "shape",
            reason: format!("{shape:?} has more elements than fit in memory"),
        };
        let outer = prod(&shape[..dim]).ok_or_else(overflow)?;
        let inner = prod(&shape[dim + 1..]).ok_or_else(overflow)?;
        outer
            .checked_mul(len)
            .and_then(|v| v.checked_mul(inner))
            .ok_or_else(overflow)?;
        Ok(Axis { outer, len, inner })
    }

    /// The matrix `[rows, features]` reduced per column.
    pub fn columns(rows: usize, features: usize) -> Axis {
        Axis {
            outer: 1,
            len: rows,
            inner: features,
        }
    }

    /// Number of elements of the tensor.
    pub fn numel(&self) -> usize {
        self.outer * self.len * self.inner
    }

    /// Number of statistics (lanes): `outer * inner`.
    pub fn lanes(&self) -> usize {
        self.outer * self.inner
    }

    fn check(&self, what: &'static str, data: usize, stats: &[usize]) -> Result<()> {
        check_len(what, self.numel(), data)?;
        for &s in stats {
            check_len("statistics length (outer * inner)", self.lanes(), s)?;
        }
        Ok(())
    }
}

// ---- Welford states ------------------------------------------------------------------

/// Count, mean and sum of squared deviations for each of `inner` lanes.
#[derive(Clone, Debug)]
struct Welford {
    /// One shared count (no NaN skipping) or one per lane.
    count: Vec<f64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    /// NaNs seen (only counted when skipping them).
    nans: Vec<f64>,
}

impl Welford {
    fn new(inner: usize, per_lane_counts: bool) -> Welford {
        Welford {
            count: vec![0.0; if per_lane_counts { inner } else { 1 }],
            mean: vec![0.0; inner],
            m2: vec![0.0; inner],
            nans: vec![0.0; if per_lane_counts { inner } else { 0 }],
        }
    }

    fn count(&self, j: usize) -> f64 {
        match self.count.len() {
            1 => self.count[0],
            _ => self.count[j],
        }
    }

    /// Chan et al.'s pairwise merge of `other` (which follows `self` in row order).
    fn merge(&mut self, other: &Welford) {
        let shared = self.count.len() == 1 && other.count.len() == 1;
        for j in 0..self.mean.len() {
            let (na, nb) = (self.count(j), other.count(j));
            let n = na + nb;
            if nb == 0.0 {
                continue;
            }
            let d = other.mean[j] - self.mean[j];
            self.mean[j] += d * (nb / n);
            self.m2[j] += other.m2[j] + d * d * (na * nb / n);
            if !shared {
                self.count[j] = n;
                self.nans[j] += other.nans[j];
            }
        }
        if shared {
            self.count[0] += other.count[0];
        }
    }
}

/// Welford updates for a block of rows, vectorized across the lanes.
struct WelfordRows<'a, S> {
    rows: &'a [S],
    state: &'a mut Welford,
}

impl<S: Storage> Kernel for WelfordRows<'_, S> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let st = self.state;
        let inner = st.mean.len();
        if inner == 0 {
            return;
        }
        if st.count.len() == 1 {
            let mut k = st.count[0];
            for row in self.rows.chunks_exact(inner) {
                k += 1.0;
                let inv = 1.0 / k;
                let lanes = st.mean.iter_mut().zip(st.m2.iter_mut());
                for ((m, s), &x) in lanes.zip(row) {
                    let x = opaque::<_, I>(x.load().to_f64());
                    let d = x - *m;
                    *m = madd::<f64, I>(d, inv, *m);
                    *s = madd::<f64, I>(d, x - *m, *s);
                }
            }
            st.count[0] = k;
        } else {
            for row in self.rows.chunks_exact(inner) {
                let lanes = st.mean.iter_mut().zip(st.m2.iter_mut());
                let counts = st.count.iter_mut().zip(st.nans.iter_mut());
                for (((m, s), (c, nans)), &x) in lanes.zip(counts).zip(row) {
                    let x = opaque::<_, I>(x.load().to_f64());
                    let valid = !x.is_nan();
                    *c += if valid { 1.0 } else { 0.0 };
                    *nans += if valid { 0.0 } else { 1.0 };
                    let d = if valid { x - *m } else { 0.0 };
                    *m += d / if *c < 1.0 { 1.0 } else { *c };
                    let d2 = if valid { x - *m } else { 0.0 };
                    *s = madd::<f64, I>(d, d2, *s);
                }
            }
        }
    }
}

/// Sums over one contiguous row in `L` independent f64 lanes (L = 1 at the scalar level).
struct RowMoments<'a, S> {
    row: &'a [S],
    skip_nan: bool,
}

/// (count, mean, sum of squared deviations, NaNs) of a row, two passes over it (the
/// second from cache).
#[inline(always)]
fn row_moments<S: Storage, I: Isa, const L: usize>(row: &[S], skip_nan: bool) -> [f64; 4] {
    let mut sum = [0f64; L];
    let mut cnt = [0f64; L];
    let chunks = row.chunks_exact(L);
    let tail = chunks.remainder();
    for chunk in chunks {
        for j in 0..L {
            let x = opaque::<_, I>(chunk[j].load().to_f64());
            let valid = !skip_nan || !x.is_nan();
            sum[j] += if valid { x } else { 0.0 };
            cnt[j] += if valid { 1.0 } else { 0.0 };
        }
    }
    for &x in tail {
        let x = x.load().to_f64();
        let valid = !skip_nan || !x.is_nan();
        sum[0] += if valid { x } else { 0.0 };
        cnt[0] += if valid { 1.0 } else { 0.0 };
    }
    let n: f64 = cnt.iter().sum();
    let mean = sum.iter().sum::<f64>() / n;
    let mut ss = [0f64; L];
    let chunks = row.chunks_exact(L);
    let tail = chunks.remainder();
    for chunk in chunks {
        for j in 0..L {
            let x = opaque::<_, I>(chunk[j].load().to_f64());
            let d = x - mean;
            let valid = !skip_nan || !x.is_nan();
            ss[j] = madd::<f64, I>(d, if valid { d } else { 0.0 }, ss[j]);
        }
    }
    for &x in tail {
        let x = x.load().to_f64();
        let d = x - mean;
        let valid = !skip_nan || !x.is_nan();
        ss[0] += if valid { d * d } else { 0.0 };
    }
    let nans = row.len() as f64 - n;
    [n, mean, ss.iter().sum(), nans]
}

impl<S: Storage> Kernel for RowMoments<'_, S> {
    type Output = [f64; 4];
    #[inline(always)]
    fn run<I: Isa>(self) -> [f64; 4] {
        if I::SCALAR {
            row_moments::<S, I, 1>(self.row, self.skip_nan)
        } else {
            row_moments::<S, I, 16>(self.row, self.skip_nan)
        }
    }
}

/// Per-lane (count, mean, M2, NaNs) of the whole tensor, lanes in `outer * inner` order.
struct Moments {
    count: Vec<f64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    nans: Vec<f64>,
}

fn moments<S: Storage>(x: &[S], axis: Axis, nan: NanPolicy) -> Result<Moments> {
    let level = simd_level();
    let skip = nan != NanPolicy::Propagate;
    let lanes = axis.lanes();
    let mut out = Moments {
        count: vec![0.0; lanes],
        mean: vec![0.0; lanes],
        m2: vec![0.0; lanes],
        nans: vec![0.0; lanes],
    };
    if lanes == 0 {
        return Ok(out);
    }
    if axis.inner == 1 {
        // Contiguous rows of `len`: one task per group of rows.
        let rows_per_task = (PARALLEL_MIN_ELEMENTS / axis.len.max(1)).max(1);
        let row_stats = |row: &[S]| {
            dispatch_at(
                level,
                RowMoments {
                    row,
                    skip_nan: skip,
                },
            )
        };
        let stats: Vec<[f64; 4]> = if axis.numel() >= PARALLEL_MIN_ELEMENTS && axis.len > 0 {
            map_tasks(
                x.chunks(axis.len * rows_per_task).collect(),
                |rows: &[S]| rows.chunks(axis.len).map(row_stats).collect::<Vec<_>>(),
            )?
            .into_iter()
            .flatten()
            .collect()
        } else if axis.len == 0 {
            vec![[0.0, f64::NAN, 0.0, 0.0]; lanes]
        } else {
            x.chunks(axis.len).map(row_stats).collect()
        };
        for (i, s) in stats.into_iter().enumerate() {
            out.count[i] = s[0];
            out.mean[i] = s[1];
            out.m2[i] = s[2];
            out.nans[i] = s[3];
        }
        return Ok(out);
    }
    // Rows of `inner` lanes: split each outer slab into row blocks, Welford per block,
    // then merge the blocks in order.
    let threads = rt_view::threads::get_num_threads().max(1);
    let slab = axis.len * axis.inner;
    let min_rows = (PARALLEL_MIN_ELEMENTS / axis.inner).max(64);
    let blocks_per_slab = if axis.numel() < PARALLEL_MIN_ELEMENTS {
        1
    } else {
        (threads * 2)
            .div_ceil(axis.outer)
            .min(axis.len.div_ceil(min_rows))
            .max(1)
    };
    let rows_per_block = axis.len.div_ceil(blocks_per_slab).max(1);
    let items: Vec<(usize, usize)> = (0..axis.outer)
        .flat_map(|o| (0..blocks_per_slab).map(move |b| (o, b)))
        .collect();
    let run_block = |&(o, b): &(usize, usize)| {
        let mut state = Welford::new(axis.inner, skip);
        let start = (b * rows_per_block).min(axis.len);
        let end = ((b + 1) * rows_per_block).min(axis.len);
        let base = o * slab;
        let rows = &x[base + start * axis.inner..base + end * axis.inner];
        dispatch_at(
            level,
            WelfordRows {
                rows,
                state: &mut state,
            },
        );
        state
    };
    let partial: Vec<Welford> = if items.len() > 1 {
        map_tasks(items.iter().collect(), run_block)?
    } else {
        items.iter().map(run_block).collect()
    };
    for (o, blocks) in partial.chunks(blocks_per_slab).enumerate() {
        let mut acc = Welford::new(axis.inner, skip);
        for block in blocks {
            acc.merge(block);
        }
        for j in 0..axis.inner {
            let i = o * axis.inner + j;
            out.count[i] = acc.count(j);
            out.mean[i] = if acc.count(j) > 0.0 {
                acc.mean[j]
            } else {
                f64::NAN
            };
            out.m2[i] = acc.m2[j];
            out.nans[i] = if skip { acc.nans[j] } else { 0.0 };
        }
    }
    Ok(out)
}

fn raise_on_nan(nans: &[f64], nan: NanPolicy) -> Result<()> {
    if nan != NanPolicy::Raise {
        return Ok(());
    }
    let count: f64 = nans.iter().sum();
    if count > 0.0 {
        let column = nans.iter().position(|&n| n > 0.0).unwrap_or(0);
        return Err(SimdError::NanFound {
            count: count as usize,
            column,
        });
    }
    Ok(())
}

fn variance(count: f64, m2: f64, correction: f64) -> f64 {
    // torch: m2 / max(0, N - correction); 0/0 is NaN, as there.
    m2 / (count - correction).max(0.0)
}

fn check_correction(correction: f64) -> Result<()> {
    if correction.is_finite() && correction >= 0.0 {
        Ok(())
    } else {
        Err(SimdError::InvalidArgument {
            name: "correction",
            reason: format!("expected a finite number >= 0, got {correction}"),
        })
    }
}

/// `v` in the compute type of `S` (f32 for the 16-bit floats).
fn compute<S: Storage>(v: f64) -> S::Compute {
    S::Compute::from_f64(v)
}

/// A lane's mean: NaN for a lane with no values.
fn lane_mean(m: &Moments, i: usize) -> f64 {
    if m.count[i] > 0.0 {
        m.mean[i]
    } else {
        f64::NAN
    }
}

/// Mean and variance along `axis` in one pass over `x`, written to `mean` and `var`
/// (`axis.lanes()` values each, in `[outer, inner]` order). `correction` is torch's
/// (1 for the sample variance, 0 for the population variance).
pub fn mean_var<S: Storage>(
    x: &[S],
    axis: Axis,
    correction: f64,
    nan: NanPolicy,
    mean: &mut [S],
    var: &mut [S],
) -> Result<()> {
    axis.check("input length", x.len(), &[mean.len(), var.len()])?;
    check_correction(correction)?;
    let m = moments(x, axis, nan)?;
    raise_on_nan(&m.nans, nan)?;
    for i in 0..axis.lanes() {
        mean[i] = S::store(compute::<S>(lane_mean(&m, i)));
        var[i] = S::store(compute::<S>(variance(m.count[i], m.m2[i], correction)));
    }
    Ok(())
}

/// `y = (x - mean) / (std + eps)` along `axis` (torch's `(x - x.mean(d)) / x.std(d)` for
/// `eps = 0`), two passes; also writes the mean and std. A 16-bit `y` is computed from
/// the f32 mean and std, before they are rounded to 16 bits for `mean` and `std`.
#[allow(clippy::too_many_arguments)] // the inputs, the options and three outputs
pub fn standardize<S: Storage>(
    x: &[S],
    axis: Axis,
    correction: f64,
    eps: f64,
    nan: NanPolicy,
    y: &mut [S],
    mean: &mut [S],
    std: &mut [S],
) -> Result<()> {
    axis.check("input length", x.len(), &[mean.len(), std.len()])?;
    check_len("output length", x.len(), y.len())?;
    check_correction(correction)?;
    let m = moments(x, axis, nan)?;
    raise_on_nan(&m.nans, nan)?;
    let eps = compute::<S>(eps);
    let mut centre = Vec::with_capacity(axis.lanes());
    let mut scale = Vec::with_capacity(axis.lanes());
    for i in 0..axis.lanes() {
        let mu = compute::<S>(lane_mean(&m, i));
        let sd = compute::<S>(variance(m.count[i], m.m2[i], correction).sqrt());
        mean[i] = S::store(mu);
        std[i] = S::store(sd);
        centre.push(mu);
        scale.push(sd + eps);
    }
    apply_per_lane(x, axis, y, &centre, &scale, LaneOp::Normalize)
}

/// scikit-learn's `minmax_scale`: `y = x * s + (lo - min * s)` with
/// `s = (hi - lo) / (max - min)` (a zero range counts as 1); writes min and max too.
#[allow(clippy::too_many_arguments)] // the inputs, the options and three outputs
pub fn minmax_scale<S: Storage>(
    x: &[S],
    axis: Axis,
    feature_range: (f64, f64),
    nan: NanPolicy,
    y: &mut [S],
    min: &mut [S],
    max: &mut [S],
) -> Result<()> {
    axis.check("input length", x.len(), &[min.len(), max.len()])?;
    check_len("output length", x.len(), y.len())?;
    let (lo, hi) = feature_range;
    // Written so that NaN bounds are refused too.
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return Err(SimdError::InvalidArgument {
            name: "feature_range",
            reason: format!("minimum {lo} must be smaller than maximum {hi}"),
        });
    }
    let ext = extremes(x, axis, nan)?;
    raise_on_nan(&ext.nans, nan)?;
    let zero = S::Compute::ZERO;
    let mut scale = vec![zero; axis.lanes()];
    let mut offset = vec![zero; axis.lanes()];
    for i in 0..axis.lanes() {
        // Exact: the extremes are input values.
        min[i] = S::store(ext.min[i]);
        max[i] = S::store(ext.max[i]);
        let range = ext.max[i] - ext.min[i];
        let range = if range == zero {
            S::Compute::ONE
        } else {
            range
        };
        scale[i] = compute::<S>(hi - lo) / range;
        offset[i] = compute::<S>(lo) - ext.min[i] * scale[i];
    }
    apply_per_lane(x, axis, y, &scale, &offset, LaneOp::Affine)
}

// ---- min / max -----------------------------------------------------------------------

struct Extremes<T> {
    min: Vec<T>,
    max: Vec<T>,
    nans: Vec<f64>,
}

struct MinMaxRows<'a, S: Storage> {
    rows: &'a [S],
    inner: usize,
    min: &'a mut [S::Compute],
    max: &'a mut [S::Compute],
    nans: &'a mut [f64],
    propagate: bool,
}

impl<S: Storage> Kernel for MinMaxRows<'_, S> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let inner = self.inner.max(1);
        for row in self.rows.chunks_exact(inner) {
            let lanes = self.min.iter_mut().zip(self.max.iter_mut());
            for (((lo, hi), nans), &x) in lanes.zip(self.nans.iter_mut()).zip(row) {
                let x = opaque::<_, I>(x.load());
                let is_nan = x.is_nan();
                *nans += if is_nan { 1.0 } else { 0.0 };
                if self.propagate {
                    // Once a lane holds NaN it keeps it.
                    *lo = if x < *lo || is_nan { x } else { *lo };
                    *hi = if x > *hi || is_nan { x } else { *hi };
                } else {
                    *lo = if x < *lo { x } else { *lo };
                    *hi = if x > *hi { x } else { *hi };
                }
            }
        }
    }
}

fn extremes<S: Storage>(x: &[S], axis: Axis, nan: NanPolicy) -> Result<Extremes<S::Compute>> {
    let level = simd_level();
    let propagate = nan == NanPolicy::Propagate;
    let lanes = axis.lanes();
    let mut out = Extremes {
        min: vec![S::Compute::INFINITY; lanes],
        max: vec![S::Compute::NEG_INFINITY; lanes],
        nans: vec![0.0; lanes],
    };
    // As [outer * len, inner] rows (inner == 1: each row is one lane's element; the
    // per-row loop is then scalar, which reductions along the last axis accept).
    let block = |o: usize, start: usize, end: usize| {
        let mut part = Extremes {
            min: vec![S::Compute::INFINITY; axis.inner],
            max: vec![S::Compute::NEG_INFINITY; axis.inner],
            nans: vec![0.0; axis.inner],
        };
        let base = o * axis.len * axis.inner;
        let rows = &x[base + start * axis.inner..base + end * axis.inner];
        if axis.inner == 1 {
            for &v in rows {
                let v = v.load();
                let is_nan = v.is_nan();
                part.nans[0] += if is_nan { 1.0 } else { 0.0 };
                let lo = part.min[0];
                let hi = part.max[0];
                part.min[0] = if v < lo || (propagate && is_nan) {
                    v
                } else {
                    lo
                };
                part.max[0] = if v > hi || (propagate && is_nan) {
                    v
                } else {
                    hi
                };
            }
        } else {
            dispatch_at(
                level,
                MinMaxRows {
                    rows,
                    inner: axis.inner,
                    min: &mut part.min,
                    max: &mut part.max,
                    nans: &mut part.nans,
                    propagate,
                },
            );
        }
        part
    };
    let threads = rt_view::threads::get_num_threads().max(1);
    let blocks = if axis.numel() < PARALLEL_MIN_ELEMENTS || axis.len == 0 {
        1
    } else {
        (threads * 2)
            .div_ceil(axis.outer)
            .min(axis.len.div_ceil(64))
            .max(1)
    };
    let per = axis.len.div_ceil(blocks).max(1);
    let items: Vec<(usize, usize, usize)> = (0..axis.outer)
        .flat_map(|o| {
            (0..blocks).map(move |b| (o, (b * per).min(axis.len), ((b + 1) * per).min(axis.len)))
        })
        .collect();
    let parts: Vec<Extremes<S::Compute>> = if items.len() > 1 {
        map_tasks(items, |(o, s, e)| block(o, s, e))?
    } else {
        items.iter().map(|&(o, s, e)| block(o, s, e)).collect()
    };
    for (o, parts) in parts.chunks(blocks).enumerate() {
        for part in parts {
            for j in 0..axis.inner {
                let i = o * axis.inner + j;
                let (lo, hi) = (part.min[j], part.max[j]);
                let keep_nan =
                    |cur: S::Compute, new: S::Compute| propagate && (cur.is_nan() || new.is_nan());
                out.min[i] = if keep_nan(out.min[i], lo) {
                    S::Compute::NAN
                } else if lo < out.min[i] {
                    lo
                } else {
                    out.min[i]
                };
                out.max[i] = if keep_nan(out.max[i], hi) {
                    S::Compute::NAN
                } else if hi > out.max[i] {
                    hi
                } else {
                    out.max[i]
                };
                out.nans[i] += part.nans[j];
            }
        }
    }
    // Lanes with no value at all (empty, or only NaN when skipping) get NaN.
    for i in 0..lanes {
        if out.nans[i] >= axis.len as f64 {
            out.min[i] = S::Compute::NAN;
            out.max[i] = S::Compute::NAN;
        }
    }
    Ok(out)
}

// ---- quantiles -----------------------------------------------------------------------

/// NumPy's `linear` quantile of sorted-by-selection `values` (no NaN): position
/// `q * (n - 1)`, interpolated as NumPy's `_lerp` does.
fn quantile_linear<T: Real>(values: &mut [T], q: f64) -> T {
    let n = values.len();
    if n == 0 {
        return T::NAN;
    }
    let pos = q * (n - 1) as f64;
    let lo = (pos.floor() as usize).min(n - 1);
    let t = pos - lo as f64;
    let (_, &mut a, upper) = values.select_nth_unstable_by(lo, |a, b| {
        a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
    });
    if t == 0.0 || upper.is_empty() {
        return a;
    }
    let b = upper
        .iter()
        .copied()
        .fold(T::INFINITY, |m, v| if v < m { v } else { m });
    let t = T::from_f64(t);
    let diff = b - a;
    // NumPy: a + diff * t, or b - diff * (1 - t) for t >= 0.5 (exact at both ends).
    if t >= T::HALF {
        b - diff * (T::ONE - t)
    } else {
        a + diff * t
    }
}

/// scikit-learn's RobustScaler (centering and scaling on, `unit_variance=False`):
/// `y = (x - median) / (q_hi - q_lo)` with the quantiles in percent (a zero IQR counts as
/// 1); writes the center and scale too. Quantiles interpolate linearly, as NumPy's
/// `nanpercentile`.
#[allow(clippy::too_many_arguments)] // the inputs, the options and three outputs
pub fn robust_scale<S: Storage>(
    x: &[S],
    axis: Axis,
    quantile_range: (f64, f64),
    nan: NanPolicy,
    y: &mut [S],
    center: &mut [S],
    scale: &mut [S],
) -> Result<()> {
    robust_scale_cancellable(x, axis, quantile_range, nan, y, center, scale, None)
}

#[allow(clippy::too_many_arguments)] // as robust_scale, plus the cancel token
pub(crate) fn robust_scale_cancellable<S: Storage>(
    x: &[S],
    axis: Axis,
    quantile_range: (f64, f64),
    nan: NanPolicy,
    y: &mut [S],
    center: &mut [S],
    scale: &mut [S],
    cancel: Option<&rt_view::cancel::CancelToken>,
) -> Result<()> {
    axis.check("input length", x.len(), &[center.len(), scale.len()])?;
    check_len("output length", x.len(), y.len())?;
    let (q_lo, q_hi) = quantile_range;
    let ordered = |a: f64, b: f64| a.partial_cmp(&b).is_some_and(|o| o.is_le());
    if !(ordered(0.0, q_lo) && ordered(q_lo, q_hi) && ordered(q_hi, 100.0)) {
        return Err(SimdError::InvalidArgument {
            name: "quantile_range",
            reason: format!("expected 0 <= low <= high <= 100, got ({q_lo}, {q_hi})"),
        });
    }
    let lanes = axis.lanes();
    // Lanes are gathered GROUP at a time, so that each pass over the rows reads whole
    // cache lines (16 f32 or 8 f64 lanes per 64 bytes) instead of one element per line.
    const GROUP: usize = 16;
    let groups: Vec<(usize, usize)> = (0..axis.outer)
        .flat_map(|o| (0..axis.inner.div_ceil(GROUP)).map(move |g| (o, g * GROUP)))
        .collect();
    let per_group = |&(o, j0): &(usize, usize)| -> Result<Vec<[S::Compute; 3]>> {
        if let Some(token) = cancel {
            token.check()?;
        }
        let width = GROUP.min(axis.inner - j0);
        let mut columns: Vec<Vec<S::Compute>> = vec![Vec::with_capacity(axis.len); width];
        let mut nans = vec![0usize; width];
        let base = o * axis.len * axis.inner;
        for r in 0..axis.len {
            let row = &x[base + r * axis.inner + j0..base + r * axis.inner + j0 + width];
            for ((col, n), &v) in columns.iter_mut().zip(nans.iter_mut()).zip(row) {
                let v = v.load();
                if v.is_nan() {
                    *n += 1;
                } else {
                    col.push(v);
                }
            }
        }
        Ok(columns
            .iter_mut()
            .zip(&nans)
            .map(|(col, &n)| {
                if n > 0 && nan == NanPolicy::Propagate {
                    return [S::Compute::NAN; 3];
                }
                let med = quantile_linear(col, 0.5);
                let lo = quantile_linear(col, q_lo / 100.0);
                let hi = quantile_linear(col, q_hi / 100.0);
                [med, lo, hi]
            })
            .collect())
    };
    if nan == NanPolicy::Raise {
        // The lowest column (lane) holding a NaN, as the one-pass statistics report it;
        // not the column of the first NaN in memory order, which is an earlier row's.
        let inner = axis.inner.max(1);
        let lane_of = |i: usize| (i / (axis.len * inner).max(1)) * inner + i % inner;
        let nan_lanes = x.iter().enumerate().filter(|(_, v)| v.load().is_nan());
        let (count, column) = nan_lanes.fold((0usize, usize::MAX), |(n, lo), (i, _)| {
            (n + 1, lo.min(lane_of(i)))
        });
        if count > 0 {
            return Err(SimdError::NanFound { count, column });
        }
    }
    let results: Vec<Result<Vec<[S::Compute; 3]>>> = map_tasks(groups.iter().collect(), per_group)?;
    let mut centres = Vec::with_capacity(lanes);
    let mut scales = Vec::with_capacity(lanes);
    for r in results {
        for [med, lo, hi] in r? {
            let iqr = hi - lo;
            centres.push(med);
            scales.push(if iqr == S::Compute::ZERO {
                S::Compute::ONE
            } else {
                iqr
            });
        }
    }
    for i in 0..lanes {
        center[i] = S::store(centres[i]);
        scale[i] = S::store(scales[i]);
    }
    apply_per_lane(x, axis, y, &centres, &scales, LaneOp::Normalize)
}

// ---- applying per-lane parameters ----------------------------------------------------

#[derive(Clone, Copy)]
enum LaneOp {
    /// (x - p) / q
    Normalize,
    /// x * p + q
    Affine,
}

struct LaneApply<'a, S: Storage> {
    x: &'a [S],
    y: &'a mut [S],
    /// Parameters per lane of a row of `p.len()` (inner > 1), or per run of `run` elements.
    p: &'a [S::Compute],
    q: &'a [S::Compute],
    run: usize,
    op: LaneOp,
}

impl<S: Storage> Kernel for LaneApply<'_, S> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let f = |x: S::Compute, p: S::Compute, q: S::Compute| match self.op {
            LaneOp::Normalize => (x - p) / q,
            LaneOp::Affine => madd::<S::Compute, I>(x, p, q),
        };
        if self.run == 1 {
            let width = self.p.len().max(1);
            for (yr, xr) in self.y.chunks_mut(width).zip(self.x.chunks(width)) {
                let params = self.p.iter().zip(self.q);
                match self.op {
                    LaneOp::Normalize => {
                        for ((o, &x), (&p, &q)) in yr.iter_mut().zip(xr).zip(params) {
                            *o = S::store((opaque::<_, I>(x.load()) - p) / q);
                        }
                    }
                    LaneOp::Affine => {
                        for ((o, &x), (&p, &q)) in yr.iter_mut().zip(xr).zip(params) {
                            *o = S::store(madd::<S::Compute, I>(opaque::<_, I>(x.load()), p, q));
                        }
                    }
                }
            }
        } else {
            let runs = self.y.chunks_mut(self.run).zip(self.x.chunks(self.run));
            for ((yr, xr), (&p, &q)) in runs.zip(self.p.iter().zip(self.q)) {
                for (o, &x) in yr.iter_mut().zip(xr) {
                    *o = S::store(f(opaque::<_, I>(x.load()), p, q));
                }
            }
        }
    }
}

/// `y = op(x, p[lane], q[lane])` where lane is `(outer, inner)` of each element.
fn apply_per_lane<S: Storage>(
    x: &[S],
    axis: Axis,
    y: &mut [S],
    p: &[S::Compute],
    q: &[S::Compute],
    op: LaneOp,
) -> Result<()> {
    let level = simd_level();
    if axis.numel() == 0 {
        return Ok(());
    }
    let work =
        |x: &[S], y: &mut [S], p: &[S::Compute], q: &[S::Compute], run: usize, level: SimdLevel| {
            dispatch_at(
                level,
                LaneApply {
                    x,
                    y,
                    p,
                    q,
                    run,
                    op,
                },
            )
        };
    let parallel = axis.numel() >= PARALLEL_MIN_ELEMENTS;
    if axis.inner == 1 {
        // One parameter pair per contiguous run of `len` elements (a row).
        let rows_per_task = (PARALLEL_MIN_ELEMENTS / axis.len.max(1)).max(1);
        let chunk = rows_per_task * axis.len;
        let task = |(i, (y, x)): (usize, (&mut [S], &[S]))| {
            let first = i * rows_per_task;
            let last = (first + rows_per_task).min(p.len());
            work(x, y, &p[first..last], &q[first..last], axis.len, level)
        };
        if parallel {
            run_tasks(
                y.chunks_mut(chunk)
                    .zip(x.chunks(chunk))
                    .enumerate()
                    .collect(),
                task,
            )?;
        } else {
            y.chunks_mut(chunk)
                .zip(x.chunks(chunk))
                .enumerate()
                .for_each(task);
        }
        return Ok(());
    }
    let slab = axis.len * axis.inner;
    for o in 0..axis.outer {
        let (p, q) = (
            &p[o * axis.inner..(o + 1) * axis.inner],
            &q[o * axis.inner..(o + 1) * axis.inner],
        );
        let (xs, ys) = (
            &x[o * slab..(o + 1) * slab],
            &mut y[o * slab..(o + 1) * slab],
        );
        if parallel {
            let rows = (PARALLEL_MIN_ELEMENTS / axis.inner)
                .max(1)
                .max(axis.len / (4 * rt_view::threads::get_num_threads().max(1)));
            let chunk = rows * axis.inner;
            run_tasks(
                ys.chunks_mut(chunk).zip(xs.chunks(chunk)).collect(),
                |(y, x)| work(x, y, p, q, 1, level),
            )?;
        } else {
            work(xs, ys, p, q, 1, level);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{at_level, supported_levels};
    use proptest::prelude::*;

    fn naive(x: &[f64], axis: Axis, correction: f64) -> (Vec<f64>, Vec<f64>) {
        let mut mean = vec![0.0; axis.lanes()];
        let mut var = vec![0.0; axis.lanes()];
        for o in 0..axis.outer {
            for j in 0..axis.inner {
                let vals: Vec<f64> = (0..axis.len)
                    .map(|i| x[(o * axis.len + i) * axis.inner + j])
                    .collect();
                let n = vals.len() as f64;
                let m = vals.iter().sum::<f64>() / n;
                let ss: f64 = vals.iter().map(|v| (v - m) * (v - m)).sum();
                mean[o * axis.inner + j] = m;
                var[o * axis.inner + j] = ss / (n - correction).max(0.0);
            }
        }
        (mean, var)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * (1.0 + b.abs())
    }

    proptest! {
        #[test]
        fn mean_var_matches_two_pass_along_every_axis(
            dims in proptest::collection::vec(1usize..9, 1..4),
            dim_seed in 0usize..3,
            seed in 0u64..1000,
        ) {
            let dim = dim_seed % dims.len();
            let n: usize = dims.iter().product();
            let x: Vec<f64> = (0..n).map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f64 / 7.0 - 50.0).collect();
            let axis = Axis::of(&dims, dim).unwrap();
            let (want_m, want_v) = naive(&x, axis, 1.0);
            let mut m = vec![0.0; axis.lanes()];
            let mut v = vec![0.0; axis.lanes()];
            for level in supported_levels() {
                for nan in [NanPolicy::Propagate, NanPolicy::Omit] {
                    at_level(level, || mean_var(&x, axis, 1.0, nan, &mut m, &mut v)).unwrap();
                    for i in 0..axis.lanes() {
                        prop_assert!(close(m[i], want_m[i], 1e-12), "mean {i} at {level}: {} vs {}", m[i], want_m[i]);
                        prop_assert!(close(v[i], want_v[i], 1e-10), "var {i} at {level}: {} vs {}", v[i], want_v[i]);
                    }
                }
            }
        }
    }

    /// Each lane's values (along the reduced dim), in order.
    fn lanes_of(x: &[f64], axis: Axis) -> Vec<Vec<f64>> {
        let mut out = vec![Vec::new(); axis.lanes()];
        for o in 0..axis.outer {
            for i in 0..axis.len {
                for j in 0..axis.inner {
                    out[o * axis.inner + j].push(x[(o * axis.len + i) * axis.inner + j]);
                }
            }
        }
        out
    }

    /// NumPy's linear quantile of sorted values.
    fn quantile(sorted: &[f64], q: f64) -> f64 {
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    }

    proptest! {
        #[test]
        fn scalers_match_naive_formulas_at_every_level(
            dims in proptest::collection::vec(1usize..9, 1..4),
            dim_seed in 0usize..3,
            seed in 0u64..1000,
        ) {
            let dim = dim_seed % dims.len();
            let n: usize = dims.iter().product();
            // Few distinct values, so that ties, equal quantiles and constant lanes occur.
            let x: Vec<f64> = (0..n).map(|i| ((i as u64 * 2654435761 + seed) % 23) as f64 / 3.0 - 4.0).collect();
            let axis = Axis::of(&dims, dim).unwrap();
            let lanes = lanes_of(&x, axis);
            let lane_of = |k: usize| {
                let (o, rest) = (k / (axis.len * axis.inner), k % (axis.len * axis.inner));
                o * axis.inner + rest % axis.inner
            };
            let (nl, mut a, mut b) = (axis.lanes(), vec![0.0; axis.lanes()], vec![0.0; axis.lanes()]);
            let mut y = vec![0.0; n];
            for level in supported_levels() {
                // standardize (correction 0, so that one-element lanes are defined)
                at_level(level, || standardize(&x, axis, 0.0, 0.5, NanPolicy::Propagate, &mut y, &mut a, &mut b)).unwrap();
                for l in 0..nl {
                    let v = &lanes[l];
                    let m = v.iter().sum::<f64>() / v.len() as f64;
                    let sd = (v.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / v.len() as f64).sqrt();
                    prop_assert!(close(a[l], m, 1e-12) && close(b[l], sd, 1e-12), "standardize stats at {level}");
                }
                for k in 0..n {
                    let l = lane_of(k);
                    let want = (x[k] - a[l]) / (b[l] + 0.5);
                    prop_assert!(close(y[k], want, 1e-12), "standardize y[{k}] at {level}: {} vs {want}", y[k]);
                }
                // minmax_scale to (-1, 2)
                at_level(level, || minmax_scale(&x, axis, (-1.0, 2.0), NanPolicy::Propagate, &mut y, &mut a, &mut b)).unwrap();
                for k in 0..n {
                    let v = &lanes[lane_of(k)];
                    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &e| (lo.min(e), hi.max(e)));
                    // scikit-learn: a constant feature scales by 1 (range 0 treated as 1).
                    let range = if hi > lo { hi - lo } else { 1.0 };
                    let want = (x[k] - lo) * (3.0 / range) - 1.0;
                    prop_assert!(close(y[k], want, 1e-12), "minmax y[{k}] at {level}: {} vs {want}", y[k]);
                }
                // robust_scale with the (10, 90) quantile range
                at_level(level, || robust_scale(&x, axis, (10.0, 90.0), NanPolicy::Propagate, &mut y, &mut a, &mut b)).unwrap();
                for l in 0..nl {
                    let mut v = lanes[l].clone();
                    v.sort_by(f64::total_cmp);
                    let iqr = quantile(&v, 0.9) - quantile(&v, 0.1);
                    let iqr = if iqr == 0.0 { 1.0 } else { iqr };
                    prop_assert!(close(a[l], quantile(&v, 0.5), 1e-12), "median at {level}");
                    prop_assert!(close(b[l], iqr, 1e-12), "iqr at {level}: {} vs {iqr}", b[l]);
                }
                for k in 0..n {
                    let l = lane_of(k);
                    let want = (x[k] - a[l]) / b[l];
                    prop_assert!(close(y[k], want, 1e-12), "robust y[{k}] at {level}");
                }
            }
        }
    }

    /// Each 16-bit result must be the f32 path's result on the widened input, rounded once.
    fn check_widened<S: Storage<Compute = f32>>(
        x: &[f32],
        axis: Axis,
        level: SimdLevel,
    ) -> std::result::Result<(), TestCaseError> {
        let narrow: Vec<S> = x.iter().map(|&v| S::store(v)).collect();
        let wide: Vec<f32> = narrow.iter().map(|v| v.load()).collect();
        let (n, l) = (narrow.len(), axis.lanes());
        let same = |a: &[S], b: &[f32], what: &str| -> std::result::Result<(), TestCaseError> {
            for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
                let want = S::store(b).load();
                let got = a.load();
                prop_assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{what}[{i}] at {level}: {got} vs {want}"
                );
            }
            Ok(())
        };
        let (mut y, mut a, mut b) = (
            vec![S::store(0.0); n],
            vec![S::store(0.0); l],
            vec![S::store(0.0); l],
        );
        let (mut y32, mut a32, mut b32) = (vec![0f32; n], vec![0f32; l], vec![0f32; l]);
        at_level(level, || {
            mean_var(&narrow, axis, 1.0, NanPolicy::Omit, &mut a, &mut b)
        })
        .unwrap();
        at_level(level, || {
            mean_var(&wide, axis, 1.0, NanPolicy::Omit, &mut a32, &mut b32)
        })
        .unwrap();
        same(&a, &a32, "mean")?;
        same(&b, &b32, "var")?;
        at_level(level, || {
            standardize(
                &narrow,
                axis,
                0.0,
                0.25,
                NanPolicy::Propagate,
                &mut y,
                &mut a,
                &mut b,
            )
        })
        .unwrap();
        at_level(level, || {
            standardize(
                &wide,
                axis,
                0.0,
                0.25,
                NanPolicy::Propagate,
                &mut y32,
                &mut a32,
                &mut b32,
            )
        })
        .unwrap();
        same(&y, &y32, "standardize y")?;
        same(&b, &b32, "std")?;
        at_level(level, || {
            minmax_scale(
                &narrow,
                axis,
                (-1.0, 2.0),
                NanPolicy::Omit,
                &mut y,
                &mut a,
                &mut b,
            )
        })
        .unwrap();
        at_level(level, || {
            minmax_scale(
                &wide,
                axis,
                (-1.0, 2.0),
                NanPolicy::Omit,
                &mut y32,
                &mut a32,
                &mut b32,
            )
        })
        .unwrap();
        same(&y, &y32, "minmax y")?;
        same(&a, &a32, "min")?;
        at_level(level, || {
            robust_scale(
                &narrow,
                axis,
                (10.0, 90.0),
                NanPolicy::Omit,
                &mut y,
                &mut a,
                &mut b,
            )
        })
        .unwrap();
        at_level(level, || {
            robust_scale(
                &wide,
                axis,
                (10.0, 90.0),
                NanPolicy::Omit,
                &mut y32,
                &mut a32,
                &mut b32,
            )
        })
        .unwrap();
        same(&y, &y32, "robust y")?;
        same(&b, &b32, "iqr")
    }

    proptest! {
        #[test]
        fn sixteen_bit_inputs_give_the_widened_f32_results_rounded_once(
            dims in proptest::collection::vec(1usize..9, 1..4),
            dim_seed in 0usize..3,
            seed in 0u64..1000,
            nan_at in proptest::option::of(0usize..500),
        ) {
            let dim = dim_seed % dims.len();
            let n: usize = dims.iter().product();
            let mut x: Vec<f32> = (0..n).map(|i| ((i as u64 * 2654435761 + seed) % 1000) as f32 / 7.0 - 60.0).collect();
            if let Some(i) = nan_at.filter(|&i| i < n) {
                x[i] = f32::NAN;
            }
            let axis = Axis::of(&dims, dim).unwrap();
            for level in supported_levels() {
                check_widened::<half::f16>(&x, axis, level)?;
                check_widened::<half::bf16>(&x, axis, level)?;
            }
        }
    }

    #[test]
    fn large_columns_are_merged_across_threads_accurately() {
        let (rows, cols) = (50_000, 7);
        // A large offset: naive sum-of-squares would lose the variance entirely.
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| 1.0e4 + ((i * 37) % 101) as f32 / 10.0)
            .collect();
        let axis = Axis::columns(rows, cols);
        let mut m = vec![0f32; cols];
        let mut v = vec![0f32; cols];
        mean_var(&x, axis, 0.0, NanPolicy::Propagate, &mut m, &mut v).unwrap();
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        let (wm, wv) = naive(&x64, axis, 0.0);
        for j in 0..cols {
            assert!(close(f64::from(m[j]), wm[j], 1e-7));
            assert!(close(f64::from(v[j]), wv[j], 1e-6), "{} vs {}", v[j], wv[j]);
        }
    }

    #[test]
    fn nan_policies() {
        let x = [1.0f64, f64::NAN, 3.0, 4.0, 5.0, 6.0];
        let axis = Axis::columns(3, 2);
        let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
        mean_var(&x, axis, 0.0, NanPolicy::Propagate, &mut m, &mut v).unwrap();
        assert_eq!(m[0], 3.0);
        assert!(m[1].is_nan() && v[1].is_nan());
        mean_var(&x, axis, 0.0, NanPolicy::Omit, &mut m, &mut v).unwrap();
        assert_eq!(m, vec![3.0, 5.0]);
        assert_eq!(v[1], 1.0);
        let before = m.clone();
        let err = mean_var(&x, axis, 0.0, NanPolicy::Raise, &mut m, &mut v).unwrap_err();
        assert!(matches!(
            err,
            SimdError::NanFound {
                count: 1,
                column: 1
            }
        ));
        assert_eq!(m, before, "nothing written on error");
        // Rows (inner == 1) too.
        let axis = Axis::of(&[2, 3], 1).unwrap();
        mean_var(&x, axis, 0.0, NanPolicy::Omit, &mut m, &mut v).unwrap();
        assert_eq!(m, vec![2.0, 5.0]);
    }

    #[test]
    fn standardize_minmax_robust_on_a_small_matrix() {
        let x = [1.0f64, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        let axis = Axis::columns(4, 2);
        let mut y = vec![0.0; 8];
        let (mut a, mut b) = (vec![0.0; 2], vec![0.0; 2]);
        standardize(
            &x,
            axis,
            1.0,
            0.0,
            NanPolicy::Propagate,
            &mut y,
            &mut a,
            &mut b,
        )
        .unwrap();
        assert_eq!(a, vec![2.5, 25.0]);
        let s = (5.0f64 / 3.0).sqrt();
        assert!((y[0] - (-1.5 / s)).abs() < 1e-15);
        minmax_scale(
            &x,
            axis,
            (0.0, 1.0),
            NanPolicy::Propagate,
            &mut y,
            &mut a,
            &mut b,
        )
        .unwrap();
        assert_eq!((a.clone(), b.clone()), (vec![1.0, 10.0], vec![4.0, 40.0]));
        let want = [
            0.0,
            0.0,
            1.0 / 3.0,
            1.0 / 3.0,
            2.0 / 3.0,
            2.0 / 3.0,
            1.0,
            1.0,
        ];
        // scikit-learn's x * s + (lo - min * s) is exact only up to rounding.
        assert!(
            y.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15),
            "{y:?}"
        );
        robust_scale(
            &x,
            axis,
            (25.0, 75.0),
            NanPolicy::Propagate,
            &mut y,
            &mut a,
            &mut b,
        )
        .unwrap();
        // NumPy: median 2.5, q25 1.75, q75 3.25 -> IQR 1.5.
        assert_eq!((a[0], b[0]), (2.5, 1.5));
        assert_eq!(y[0], -1.0);
        assert!(
            minmax_scale(
                &x,
                axis,
                (1.0, 1.0),
                NanPolicy::Omit,
                &mut y,
                &mut a,
                &mut b
            )
            .is_err()
        );
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        let mut v = vec![4.0f64, 1.0, 3.0, 2.0];
        assert_eq!(quantile_linear(&mut v, 0.25), 1.75);
        assert_eq!(quantile_linear(&mut v, 0.5), 2.5);
        assert_eq!(quantile_linear(&mut v, 1.0), 4.0);
        assert_eq!(quantile_linear(&mut v, 0.0), 1.0);
        assert!(quantile_linear::<f64>(&mut [], 0.5).is_nan());
    }

    #[test]
    fn empty_inputs() {
        let axis = Axis::of(&[0, 3], 0).unwrap();
        let (mut m, mut v) = (vec![0f32; 3], vec![0f32; 3]);
        mean_var::<f32>(&[], axis, 1.0, NanPolicy::Propagate, &mut m, &mut v).unwrap();
        assert!(m.iter().all(|m| m.is_nan()));
        let axis = Axis::of(&[3, 0], 0).unwrap();
        mean_var::<f32>(&[], axis, 1.0, NanPolicy::Propagate, &mut [], &mut []).unwrap();
    }
}

//! Row kernels over the last dimension of a row-major tensor: `layer_norm`, `rms_norm`,
//! `softmax`, `log_softmax` and `l2_normalize`, for f32 and f64, and for bfloat16/float16
//! storage computed in f32 (the `*_widened` functions).
//!
//! Each row is read from memory once and then reused from cache (two or three short
//! passes), reductions run in 32 independent lanes so they vectorize, and rows are split
//! over the pool in groups.

use crate::dispatch::{Isa, Kernel, dispatch_at, simd_level};
use crate::error::{Result, SimdError, check_len};
use crate::math::{self, opaque};
use crate::parallel::{PARALLEL_MIN_ELEMENTS, run_tasks};
use crate::real::{Real, madd};
use crate::storage::Storage;

/// Which row function to apply.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RowOp {
    LayerNorm { eps: f64 },
    RmsNorm { eps: f64 },
    Softmax,
    LogSoftmax,
    L2Normalize { eps: f64 },
}

/// Lanes of the reductions over long rows (a multiple of every vector width, in elements).
const LANES: usize = 32;

/// The sum of `f(x)` over `row` in `L` independent lanes, combined pairwise.
#[inline(always)]
pub(crate) fn lane_sum<T: Real, I: Isa, const L: usize>(row: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; L];
    let chunks = row.chunks_exact(L);
    let tail = chunks.remainder();
    for chunk in chunks {
        for j in 0..L {
            acc[j] += f(opaque::<_, I>(chunk[j]));
        }
    }
    let mut total = T::ZERO;
    for &x in tail {
        total += f(x);
    }
    // Pairwise, so that the lanes' partial sums combine with little rounding.
    let mut width = L;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            let upper = acc[j + width];
            acc[j] += upper;
        }
    }
    acc[0] + total
}

/// The maximum of the non-NaN elements (-inf if none). Softmax needs no more: a NaN
/// element makes the sum of exponentials NaN, and so every output, as in torch.
#[inline(always)]
fn lane_max<T: Real, I: Isa, const L: usize>(row: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; L];
    let chunks = row.chunks_exact(L);
    let tail = chunks.remainder();
    let step = |m: T, x: T| if x > m { x } else { m };
    for chunk in chunks {
        for j in 0..L {
            acc[j] = step(acc[j], opaque::<_, I>(chunk[j]));
        }
    }
    let mut m = T::NEG_INFINITY;
    for &x in tail {
        m = step(m, x);
    }
    // Pairwise across the lanes, so that the reduction vectorizes too.
    let mut width = L;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            acc[j] = step(acc[j], acc[j + width]);
        }
    }
    step(m, acc[0])
}

struct Rows<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
    d: usize,
    weight: Option<&'a [T]>,
    bias: Option<&'a [T]>,
    op: RowOp,
}

#[inline(always)]
fn one_row<T: Real, I: Isa, const L: usize>(
    x: &[T],
    y: &mut [T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    op: RowOp,
) {
    let n = T::from_usize(x.len());
    match op {
        RowOp::LayerNorm { eps } => {
            let mean = lane_sum::<T, I, L>(x, |v| v) / n;
            let var = lane_sum::<T, I, L>(x, |v| (v - mean) * (v - mean)) / n;
            let rstd = T::ONE / (var + T::from_f64(eps)).sqrt();
            match (weight, bias) {
                (Some(w), Some(b)) => {
                    for (((o, &v), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                        *o = madd::<T, I>((v - mean) * rstd, w, b);
                    }
                }
                (Some(w), None) => {
                    for ((o, &v), &w) in y.iter_mut().zip(x).zip(w) {
                        *o = (v - mean) * rstd * w;
                    }
                }
                (None, Some(b)) => {
                    for ((o, &v), &b) in y.iter_mut().zip(x).zip(b) {
                        *o = madd::<T, I>(v - mean, rstd, b);
                    }
                }
                (None, None) => {
                    for (o, &v) in y.iter_mut().zip(x) {
                        *o = (v - mean) * rstd;
                    }
                }
            }
        }
        RowOp::RmsNorm { eps } => {
            let ms = lane_sum::<T, I, L>(x, |v| v * v) / n;
            let r = T::ONE / (ms + T::from_f64(eps)).sqrt();
            match weight {
                Some(w) => {
                    for ((o, &v), &w) in y.iter_mut().zip(x).zip(w) {
                        *o = v * r * w;
                    }
                }
                None => {
                    for (o, &v) in y.iter_mut().zip(x) {
                        *o = v * r;
                    }
                }
            }
        }
        RowOp::Softmax => {
            let m = lane_max::<T, I, L>(x);
            for (o, &v) in y.iter_mut().zip(x) {
                *o = math::exp::<T, I>(opaque::<_, I>(v) - m);
            }
            let s = lane_sum::<T, I, L>(y, |v| v);
            let inv = T::ONE / s;
            for o in y.iter_mut() {
                *o *= inv;
            }
        }
        RowOp::L2Normalize { eps } => {
            // torch's F.normalize: x / max(|x|, eps), dividing (not multiplying by the
            // reciprocal) as torch does; a NaN norm stays NaN.
            let n = lane_sum::<T, I, L>(x, |v| v * v).sqrt();
            let eps = T::from_f64(eps);
            let n = if n < eps { eps } else { n };
            for (o, &v) in y.iter_mut().zip(x) {
                *o = opaque::<_, I>(v) / n;
            }
        }
        RowOp::LogSoftmax => {
            let m = lane_max::<T, I, L>(x);
            let s = lane_sum::<T, I, L>(x, |v| math::exp::<T, I>(v - m));
            let log_s = s.ln();
            for (o, &v) in y.iter_mut().zip(x) {
                *o = (opaque::<_, I>(v) - m) - log_s;
            }
        }
    }
}

/// One row of `d` elements, with the number of reduction lanes its length calls for.
#[inline(always)]
fn any_row<T: Real, I: Isa>(
    x: &[T],
    y: &mut [T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    op: RowOp,
) {
    // Short rows use fewer lanes, so that less time goes into combining them.
    match x.len() {
        _ if I::SCALAR => one_row::<T, I, 1>(x, y, weight, bias, op),
        0..64 => one_row::<T, I, 8>(x, y, weight, bias, op),
        64..256 => one_row::<T, I, 16>(x, y, weight, bias, op),
        _ => one_row::<T, I, LANES>(x, y, weight, bias, op),
    }
}

impl<T: Real> Kernel for Rows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let d = self.d.max(1);
        for (x, y) in self.x.chunks_exact(d).zip(self.y.chunks_exact_mut(d)) {
            any_row::<T, I>(x, y, self.weight, self.bias, self.op);
        }
    }
}

/// Elements per block of the 16-bit path: a block of rows is widened into an f32 scratch
/// that stays in L1/L2 while the row functions make their passes over it, so memory sees
/// each 16-bit element once on the way in and once on the way out.
const WIDENED_BLOCK: usize = 1 << 13;

/// Rows held as bfloat16/float16 (`S`), computed in f32 block by block; `weight`/`bias`
/// come already widened.
struct WidenedRows<'a, S> {
    x: &'a [S],
    y: &'a mut [S],
    d: usize,
    weight: Option<&'a [f32]>,
    bias: Option<&'a [f32]>,
    op: RowOp,
}

impl<S: Storage<Compute = f32>> Kernel for WidenedRows<'_, S> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let d = self.d.max(1);
        let block = (WIDENED_BLOCK / d).max(1) * d;
        let scratch = block.min(self.x.len());
        let (mut wide_x, mut wide_y) = (vec![0f32; scratch], vec![0f32; scratch]);
        for (xb, yb) in self.x.chunks(block).zip(self.y.chunks_mut(block)) {
            let (wx, wy) = (&mut wide_x[..xb.len()], &mut wide_y[..xb.len()]);
            // The conversions run here, inside the ISA-specific function, so they vectorize.
            for (w, &v) in wx.iter_mut().zip(xb) {
                *w = opaque::<_, I>(v).load();
            }
            for (x, y) in wx.chunks_exact(d).zip(wy.chunks_exact_mut(d)) {
                any_row::<f32, I>(x, y, self.weight, self.bias, self.op);
            }
            for (o, &v) in yb.iter_mut().zip(wy.iter()) {
                *o = S::store(v);
            }
        }
    }
}

/// The checks every row function makes before touching memory.
fn check_rows(
    len: usize,
    out_len: usize,
    d: usize,
    weight: Option<usize>,
    bias: Option<usize>,
    op: RowOp,
) -> Result<()> {
    check_len("input and output lengths", len, out_len)?;
    if let Some(w) = weight {
        check_len("weight length (the size of the last dimension)", d, w)?;
    }
    if let Some(b) = bias {
        check_len("bias length (the size of the last dimension)", d, b)?;
    }
    if d == 0 {
        return check_len("input length for rows of 0 elements", 0, len);
    }
    if !len.is_multiple_of(d) {
        return Err(SimdError::InvalidArgument {
            name: "d",
            reason: format!("{len} elements do not split into rows of {d}"),
        });
    }
    if let RowOp::LayerNorm { eps } | RowOp::RmsNorm { eps } = op
        && (eps.is_nan() || eps < 0.0)
    {
        return Err(SimdError::InvalidArgument {
            name: "eps",
            reason: format!("expected a number >= 0, got {eps}"),
        });
    }
    Ok(())
}

/// Runs `kernel` over groups of whole rows (`d` elements each) of `x` and `y`, in parallel
/// when there are enough elements.
fn for_row_groups<A: Sync, B: Send>(
    x: &[A],
    y: &mut [B],
    d: usize,
    kernel: impl Fn(&[A], &mut [B]) + Sync,
) -> Result<()> {
    if x.len() < PARALLEL_MIN_ELEMENTS {
        kernel(x, y);
        return Ok(());
    }
    let threads = rt_view::threads::get_num_threads().max(1);
    let rows = x.len() / d;
    let rows_per_task = (PARALLEL_MIN_ELEMENTS / d).max(rows / (threads * 4)).max(1);
    let chunk = rows_per_task * d;
    run_tasks(
        y.chunks_mut(chunk).zip(x.chunks(chunk)).collect(),
        |(y, x)| kernel(x, y),
    )
}

fn run_rows<T: Real>(
    x: &[T],
    d: usize,
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    op: RowOp,
    y: &mut [T],
) -> Result<()> {
    check_rows(
        x.len(),
        y.len(),
        d,
        weight.map(<[T]>::len),
        bias.map(<[T]>::len),
        op,
    )?;
    if d == 0 {
        return Ok(());
    }
    let level = simd_level();
    for_row_groups(x, y, d, |x, y| {
        dispatch_at(
            level,
            Rows {
                x,
                y,
                d,
                weight,
                bias,
                op,
            },
        )
    })
}

fn run_rows_widened<S: Storage<Compute = f32>>(
    x: &[S],
    d: usize,
    weight: Option<&[S]>,
    bias: Option<&[S]>,
    op: RowOp,
    y: &mut [S],
) -> Result<()> {
    check_rows(
        x.len(),
        y.len(),
        d,
        weight.map(<[S]>::len),
        bias.map(<[S]>::len),
        op,
    )?;
    if d == 0 {
        return Ok(());
    }
    let widen = |p: &[S]| p.iter().map(|&v| v.load()).collect::<Vec<f32>>();
    let (weight, bias) = (weight.map(widen), bias.map(widen));
    let (weight, bias) = (weight.as_deref(), bias.as_deref());
    let level = simd_level();
    for_row_groups(x, y, d, |x, y| {
        dispatch_at(
            level,
            WidenedRows {
                x,
                y,
                d,
                weight,
                bias,
                op,
            },
        )
    })
}

/// torch's `layer_norm` over the last dimension (rows of `d`): `(x - mean) / sqrt(var +
/// eps) * weight + bias` with the biased variance.
pub fn layer_norm<T: Real>(
    x: &[T],
    d: usize,
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    eps: f64,
    y: &mut [T],
) -> Result<()> {
    run_rows(x, d, weight, bias, RowOp::LayerNorm { eps }, y)
}

/// torch's `rms_norm` over the last dimension: `x / sqrt(mean(x^2) + eps) * weight`.
pub fn rms_norm<T: Real>(
    x: &[T],
    d: usize,
    weight: Option<&[T]>,
    eps: f64,
    y: &mut [T],
) -> Result<()> {
    run_rows(x, d, weight, None, RowOp::RmsNorm { eps }, y)
}

/// Softmax over the last dimension: `exp(x - max) / sum(exp(x - max))`.
pub fn softmax<T: Real>(x: &[T], d: usize, y: &mut [T]) -> Result<()> {
    run_rows(x, d, None, None, RowOp::Softmax, y)
}

/// Log-softmax over the last dimension: `x - max - log(sum(exp(x - max)))`.
pub fn log_softmax<T: Real>(x: &[T], d: usize, y: &mut [T]) -> Result<()> {
    run_rows(x, d, None, None, RowOp::LogSoftmax, y)
}

/// `torch.nn.functional.normalize(x, p=2, dim=-1, eps)`: each row of `d` divided by
/// `max(|row|, eps)`.
pub fn l2_normalize<T: Real>(x: &[T], d: usize, eps: f64, y: &mut [T]) -> Result<()> {
    run_rows(x, d, None, None, RowOp::L2Normalize { eps }, y)
}

/// [`l2_normalize`] of bfloat16/float16 rows, computed in f32.
pub fn l2_normalize_widened<S: Storage<Compute = f32>>(
    x: &[S],
    d: usize,
    eps: f64,
    y: &mut [S],
) -> Result<()> {
    run_rows_widened(x, d, None, None, RowOp::L2Normalize { eps }, y)
}

/// [`layer_norm`] of bfloat16/float16 rows, computed in f32 and rounded once (as torch
/// computes its 16-bit layer_norm); `weight` and `bias` are in the input's format.
pub fn layer_norm_widened<S: Storage<Compute = f32>>(
    x: &[S],
    d: usize,
    weight: Option<&[S]>,
    bias: Option<&[S]>,
    eps: f64,
    y: &mut [S],
) -> Result<()> {
    run_rows_widened(x, d, weight, bias, RowOp::LayerNorm { eps }, y)
}

/// [`rms_norm`] of bfloat16/float16 rows, computed in f32.
pub fn rms_norm_widened<S: Storage<Compute = f32>>(
    x: &[S],
    d: usize,
    weight: Option<&[S]>,
    eps: f64,
    y: &mut [S],
) -> Result<()> {
    run_rows_widened(x, d, weight, None, RowOp::RmsNorm { eps }, y)
}

/// [`softmax`] of bfloat16/float16 rows, computed in f32.
pub fn softmax_widened<S: Storage<Compute = f32>>(x: &[S], d: usize, y: &mut [S]) -> Result<()> {
    run_rows_widened(x, d, None, None, RowOp::Softmax, y)
}

/// [`log_softmax`] of bfloat16/float16 rows, computed in f32.
pub fn log_softmax_widened<S: Storage<Compute = f32>>(
    x: &[S],
    d: usize,
    y: &mut [S],
) -> Result<()> {
    run_rows_widened(x, d, None, None, RowOp::LogSoftmax, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{at_level, supported_levels};
    use proptest::prelude::*;

    fn reference(op: &str, row: &[f64], w: Option<&[f64]>, b: Option<&[f64]>) -> Vec<f64> {
        let n = row.len() as f64;
        match op {
            "layer_norm" => {
                let m = row.iter().sum::<f64>() / n;
                let v = row.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
                let r = 1.0 / (v + 1e-5).sqrt();
                row.iter()
                    .enumerate()
                    .map(|(i, x)| (x - m) * r * w.map_or(1.0, |w| w[i]) + b.map_or(0.0, |b| b[i]))
                    .collect()
            }
            "rms_norm" => {
                let r = 1.0 / (row.iter().map(|x| x * x).sum::<f64>() / n + 1e-6).sqrt();
                row.iter()
                    .enumerate()
                    .map(|(i, x)| x * r * w.map_or(1.0, |w| w[i]))
                    .collect()
            }
            "softmax" => {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = row.iter().map(|x| (x - m).exp()).sum();
                row.iter().map(|x| (x - m).exp() / s).collect()
            }
            "l2_normalize" => {
                let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                row.iter().map(|x| x / norm).collect()
            }
            _ => {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = row.iter().map(|x| (x - m).exp()).sum();
                row.iter().map(|x| x - m - s.ln()).collect()
            }
        }
    }

    fn run(op: &str, x: &[f64], d: usize, w: Option<&[f64]>, b: Option<&[f64]>) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        match op {
            "layer_norm" => layer_norm(x, d, w, b, 1e-5, &mut y),
            "rms_norm" => rms_norm(x, d, w, 1e-6, &mut y),
            "softmax" => softmax(x, d, &mut y),
            "l2_normalize" => l2_normalize(x, d, 1e-12, &mut y),
            _ => log_softmax(x, d, &mut y),
        }
        .unwrap();
        y
    }

    proptest! {
        #[test]
        fn rows_match_the_reference(
            rows in 1usize..5,
            d in 1usize..100,
            seed in 0u64..1000,
            affine in any::<bool>(),
        ) {
            let x: Vec<f64> = (0..rows * d)
                .map(|i| ((i as u64 * 2654435761 + seed) % 2000) as f64 / 100.0 - 10.0)
                .collect();
            let w: Vec<f64> = (0..d).map(|i| 0.5 + i as f64 / d as f64).collect();
            let b: Vec<f64> = (0..d).map(|i| i as f64 / 10.0 - 1.0).collect();
            let (w, b) = if affine { (Some(&w[..]), Some(&b[..])) } else { (None, None) };
            for level in supported_levels() {
                for op in ["layer_norm", "rms_norm", "softmax", "log_softmax", "l2_normalize"] {
                    let got = at_level(level, || run(op, &x, d, w, b));
                    for r in 0..rows {
                        let want = reference(op, &x[r * d..(r + 1) * d], w, b);
                        for (g, w) in got[r * d..(r + 1) * d].iter().zip(&want) {
                            prop_assert!(
                                (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                                "{op} at {level}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The 16-bit path computes exactly what the f32 kernel computes on the widened input,
    /// rounded once: bit for bit, at whatever level runs, across the block boundaries of
    /// the f32 scratch (rows of up to ~3 blocks) and the parallel split.
    fn widened_matches_f32<S: Storage<Compute = f32> + std::fmt::Debug>(
        rows: usize,
        d: usize,
        seed: u64,
        affine: bool,
    ) -> std::result::Result<(), TestCaseError> {
        let x: Vec<S> = (0..rows * d)
            .map(|i| S::store(((i as u64 * 2654435761 + seed) % 2000) as f32 / 100.0 - 10.0))
            .collect();
        let w: Vec<S> = (0..d)
            .map(|i| S::store(0.5 + i as f32 / d as f32))
            .collect();
        let b: Vec<S> = (0..d).map(|i| S::store(i as f32 / 10.0 - 1.0)).collect();
        let (w, b) = if affine {
            (Some(&w[..]), Some(&b[..]))
        } else {
            (None, None)
        };
        let wide = |v: &[S]| v.iter().map(|&e| e.load()).collect::<Vec<f32>>();
        let (x32, w32, b32) = (wide(&x), w.map(wide), b.map(wide));
        for op in 0..5 {
            let mut got = vec![S::store(0.0); x.len()];
            let mut want = vec![0f32; x.len()];
            match op {
                0 => {
                    layer_norm_widened(&x, d, w, b, 1e-5, &mut got).unwrap();
                    layer_norm(&x32, d, w32.as_deref(), b32.as_deref(), 1e-5, &mut want).unwrap();
                }
                1 => {
                    rms_norm_widened(&x, d, w, 1e-6, &mut got).unwrap();
                    rms_norm(&x32, d, w32.as_deref(), 1e-6, &mut want).unwrap();
                }
                2 => {
                    softmax_widened(&x, d, &mut got).unwrap();
                    softmax(&x32, d, &mut want).unwrap();
                }
                3 => {
                    l2_normalize_widened(&x, d, 1e-12, &mut got).unwrap();
                    l2_normalize(&x32, d, 1e-12, &mut want).unwrap();
                }
                _ => {
                    log_softmax_widened(&x, d, &mut got).unwrap();
                    log_softmax(&x32, d, &mut want).unwrap();
                }
            }
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                let w = S::store(*w);
                prop_assert!(
                    g.load().to_bits() == w.load().to_bits(),
                    "op {op}, element {k}: {g:?} vs {w:?}"
                );
            }
        }
        Ok(())
    }

    proptest! {
        // Fewer cases than the default: the long rows make each case a few ms (debug/ASan).
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn widened_rows_are_the_f32_rows_rounded(
            rows in 1usize..40,
            d in prop_oneof![1usize..70, 3000usize..20000],
            seed in 0u64..1000,
            affine in any::<bool>(),
        ) {
            // Keep the element count small enough for a quick test, large enough to
            // reach the parallel split sometimes.
            let rows = if d > 1000 { rows.min(12) } else { rows };
            for level in supported_levels() {
                at_level(level, || widened_matches_f32::<half::bf16>(rows, d, seed, affine))?;
                at_level(level, || widened_matches_f32::<half::f16>(rows, d, seed, affine))?;
            }
        }
    }

    #[test]
    fn softmax_of_large_batches_sums_to_one_and_propagates_nan() {
        let d = 1000;
        let rows = 300;
        let mut x: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 31) % 97) as f32 / 9.0)
            .collect();
        x[5 * d + 7] = f32::NAN;
        let mut y = vec![0f32; x.len()];
        softmax(&x, d, &mut y).unwrap();
        for (r, row) in y.chunks(d).enumerate() {
            if r == 5 {
                assert!(row.iter().all(|v| v.is_nan()));
            } else {
                let s: f32 = row.iter().sum();
                assert!((s - 1.0).abs() < 1e-5, "row {r} sums to {s}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        let x = [1.0f32; 6];
        let mut y = [0f32; 6];
        assert!(layer_norm(&x, 4, None, None, 1e-5, &mut y).is_err());
        assert!(layer_norm(&x, 3, Some(&[1.0; 2]), None, 1e-5, &mut y).is_err());
        assert!(layer_norm(&x, 3, None, None, -1.0, &mut y).is_err());
        assert!(softmax(&x, 3, &mut y[..5]).is_err());
        assert_eq!(y, [0.0; 6]);
        softmax::<f32>(&[], 0, &mut []).unwrap();
        softmax::<f32>(&[], 5, &mut []).unwrap();
    }
}

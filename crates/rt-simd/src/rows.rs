//! Row kernels over the last dimension of a row-major tensor: `layer_norm`, `rms_norm`,
//! `softmax` and `log_softmax`, for f32 and f64.
//!
//! Each row is read from memory once and then reused from cache (two or three short
//! passes), reductions run in 32 independent lanes so they vectorize, and rows are split
//! over the pool in groups.

use crate::dispatch::{Isa, Kernel, dispatch_at, simd_level};
use crate::error::{Result, SimdError, check_len};
use crate::math::{self, opaque};
use crate::parallel::{PARALLEL_MIN_ELEMENTS, run_tasks};
use crate::real::{Real, madd};

/// Which row function to apply.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RowOp {
    LayerNorm { eps: f64 },
    RmsNorm { eps: f64 },
    Softmax,
    LogSoftmax,
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

impl<T: Real> Kernel for Rows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let d = self.d.max(1);
        // Short rows use fewer lanes, so that less time goes into combining them.
        for (x, y) in self.x.chunks_exact(d).zip(self.y.chunks_exact_mut(d)) {
            match d {
                _ if I::SCALAR => one_row::<T, I, 1>(x, y, self.weight, self.bias, self.op),
                0..64 => one_row::<T, I, 8>(x, y, self.weight, self.bias, self.op),
                64..256 => one_row::<T, I, 16>(x, y, self.weight, self.bias, self.op),
                _ => one_row::<T, I, LANES>(x, y, self.weight, self.bias, self.op),
            }
        }
    }
}

fn run_rows<T: Real>(
    x: &[T],
    d: usize,
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    op: RowOp,
    y: &mut [T],
) -> Result<()> {
    check_len("input and output lengths", x.len(), y.len())?;
    if let Some(w) = weight {
        check_len("weight length (the size of the last dimension)", d, w.len())?;
    }
    if let Some(b) = bias {
        check_len("bias length (the size of the last dimension)", d, b.len())?;
    }
    if d == 0 {
        return check_len("input length for rows of 0 elements", 0, x.len());
    }
    if x.len() % d != 0 {
        return Err(SimdError::InvalidArgument {
            name: "d",
            reason: format!("{} elements do not split into rows of {d}", x.len()),
        });
    }
    if let RowOp::LayerNorm { eps } | RowOp::RmsNorm { eps } = op {
        if eps.is_nan() || eps < 0.0 {
            return Err(SimdError::InvalidArgument {
                name: "eps",
                reason: format!("expected a number >= 0, got {eps}"),
            });
        }
    }
    let level = simd_level();
    let kernel = |x: &[T], y: &mut [T]| {
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
    };
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

#[cfg(test)]
mod tests {
    use super::*;
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
            for op in ["layer_norm", "rms_norm", "softmax", "log_softmax"] {
                let got = run(op, &x, d, w, b);
                for r in 0..rows {
                    let want = reference(op, &x[r * d..(r + 1) * d], w, b);
                    for (g, w) in got[r * d..(r + 1) * d].iter().zip(&want) {
                        prop_assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{op}: {g} vs {w}");
                    }
                }
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

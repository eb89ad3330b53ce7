//! Per-feature transforms applied to feature batches inside the loader's worker threads:
//! `Standardize`, `MinMaxScale`, `Normalize`, `Clip`, `FillNaN`, composed in order.
//!
//! The arithmetic runs on rt-simd's kernels (`mean_var` to fit, `affine_per_feature` and
//! `clamp` to apply), Rust to Rust. Fitting is one pass over the data per transform that
//! needs it, in row blocks processed in parallel and merged with Chan's formula, so the
//! result does not depend on the thread count beyond floating-point rounding of the merge
//! (blocks have a fixed size, so the merge order is fixed too).

use rayon::prelude::*;
use rt_simd::{Axis, NanPolicy, Real, Storage};

use crate::error::{DataError, Result};

/// Rows per block of the fitting pass: the merge tree, hence the rounding, depends only on
/// this and the data.
const FIT_BLOCK_ROWS: usize = 1024;

/// One transform. Parameters left `None` are fitted on the data.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// `(x - mean) / std`; `std` is the population standard deviation (as scikit-learn's
    /// StandardScaler), and a zero std counts as 1. NaNs make the fitted statistics NaN:
    /// put `FillNaN` first.
    Standardize {
        /// Per-feature mean.
        mean: Option<Vec<f64>>,
        /// Per-feature standard deviation.
        std: Option<Vec<f64>>,
    },
    /// `(x - min) / (max - min) * (hi - lo) + lo`; a zero range counts as 1; NaNs are
    /// ignored when fitting.
    MinMaxScale {
        /// Per-feature minimum.
        min: Option<Vec<f64>>,
        /// Per-feature maximum.
        max: Option<Vec<f64>>,
        /// `(lo, hi)`.
        range: (f64, f64),
    },
    /// `(x - mean) / std` with given parameters (one value, or one per feature).
    Normalize {
        /// Mean.
        mean: Vec<f64>,
        /// Standard deviation (non-zero).
        std: Vec<f64>,
    },
    /// `min(max(x, min), max)`.
    Clip {
        /// Lower bound.
        min: Option<f64>,
        /// Upper bound.
        max: Option<f64>,
    },
    /// NaN becomes `value`.
    FillNaN {
        /// The replacement.
        value: f64,
    },
}

impl Transform {
    /// The transform's name, as in Python.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Standardize { .. } => "Standardize",
            Transform::MinMaxScale { .. } => "MinMaxScale",
            Transform::Normalize { .. } => "Normalize",
            Transform::Clip { .. } => "Clip",
            Transform::FillNaN { .. } => "FillNaN",
        }
    }

    fn is_fitted(&self) -> bool {
        match self {
            Transform::Standardize { mean, std } => mean.is_some() && std.is_some(),
            Transform::MinMaxScale { min, max, .. } => min.is_some() && max.is_some(),
            _ => true,
        }
    }

    /// `(scale, shift)` of the affine form, when the transform is one.
    fn affine(&self, width: usize) -> Result<Option<(Vec<f64>, Vec<f64>)>> {
        let widen = |name: &str, v: &[f64]| -> Result<Vec<f64>> {
            match v.len() {
                1 => Ok(vec![v[0]; width]),
                n if n == width => Ok(v.to_vec()),
                n => Err(DataError::InvalidArgument(format!(
                    "{}: {name} has {n} values for {width} features",
                    self.name()
                ))),
            }
        };
        let of_mean_std = |mean: &[f64], std: &[f64], zero_is_one: bool| -> Result<_> {
            let (mean, std) = (widen("mean", mean)?, widen("std", std)?);
            let mut scale = Vec::with_capacity(width);
            let mut shift = Vec::with_capacity(width);
            for (&m, &s) in mean.iter().zip(&std) {
                let s = if s == 0.0 && zero_is_one { 1.0 } else { s };
                if s == 0.0 {
                    return Err(DataError::InvalidArgument(format!(
                        "{}: std must be non-zero",
                        self.name()
                    )));
                }
                scale.push(1.0 / s);
                shift.push(-m / s);
            }
            Ok(Some((scale, shift)))
        };
        match self {
            Transform::Standardize {
                mean: Some(mean),
                std: Some(std),
            } => of_mean_std(mean, std, true),
            Transform::Normalize { mean, std } => of_mean_std(mean, std, false),
            Transform::MinMaxScale {
                min: Some(min),
                max: Some(max),
                range: (lo, hi),
            } => {
                let (min, max) = (widen("min", min)?, widen("max", max)?);
                let mut scale = Vec::with_capacity(width);
                let mut shift = Vec::with_capacity(width);
                for (&a, &b) in min.iter().zip(&max) {
                    let r = if b - a == 0.0 { 1.0 } else { b - a };
                    let s = (hi - lo) / r;
                    scale.push(s);
                    shift.push(lo - a * s);
                }
                Ok(Some((scale, shift)))
            }
            Transform::Standardize { .. } | Transform::MinMaxScale { .. } => Err(
                DataError::InvalidArgument(format!("{} is not fitted yet", self.name())),
            ),
            Transform::Clip { .. } | Transform::FillNaN { .. } => Ok(None),
        }
    }

    /// The parameters, by name (fitted ones included), for `state_dict` and Python.
    pub fn params(&self) -> Vec<(&'static str, Vec<f64>)> {
        let opt = |v: &Option<Vec<f64>>| v.clone().unwrap_or_default();
        let one = |v: Option<f64>| v.map(|v| vec![v]).unwrap_or_default();
        match self {
            Transform::Standardize { mean, std } => vec![("mean", opt(mean)), ("std", opt(std))],
            Transform::MinMaxScale { min, max, range } => vec![
                ("min", opt(min)),
                ("max", opt(max)),
                ("feature_range", vec![range.0, range.1]),
            ],
            Transform::Normalize { mean, std } => {
                vec![("mean", mean.clone()), ("std", std.clone())]
            }
            Transform::Clip { min, max } => vec![("min", one(*min)), ("max", one(*max))],
            Transform::FillNaN { value } => vec![("value", vec![*value])],
        }
    }
}

/// Parameters prepared for the hot loop.
#[derive(Debug, Clone)]
enum Step {
    Affine { scale: Vec<f64>, shift: Vec<f64> },
    Clip { min: Option<f64>, max: Option<f64> },
    FillNaN(f64),
}

/// An ordered list of transforms for features of a fixed width.
#[derive(Debug, Clone, Default)]
pub struct Transforms {
    list: Vec<Transform>,
    width: usize,
    steps: Vec<Step>,
}

fn simd(e: rt_simd::SimdError) -> DataError {
    DataError::InvalidArgument(e.to_string())
}

impl Transforms {
    /// Checks `list` against `width` features. Unfitted transforms must be fitted with
    /// [`fit`](Self::fit) before use.
    pub fn new(list: Vec<Transform>, width: usize) -> Result<Self> {
        for t in &list {
            match t {
                Transform::Clip {
                    min: Some(lo),
                    max: Some(hi),
                } if lo > hi => {
                    return Err(DataError::InvalidArgument(format!(
                        "Clip: min {lo} is larger than max {hi}"
                    )));
                }
                Transform::Clip {
                    min: None,
                    max: None,
                } => {
                    return Err(DataError::InvalidArgument(
                        "Clip: give min, max or both".to_owned(),
                    ));
                }
                Transform::MinMaxScale {
                    range: (lo, hi), ..
                } if lo.partial_cmp(hi) != Some(std::cmp::Ordering::Less) => {
                    return Err(DataError::InvalidArgument(format!(
                        "MinMaxScale: feature_range ({lo}, {hi}) must be increasing"
                    )));
                }
                _ => {}
            }
        }
        let mut out = Self {
            list,
            width,
            steps: Vec::new(),
        };
        out.prepare()?;
        Ok(out)
    }

    fn prepare(&mut self) -> Result<()> {
        self.steps.clear();
        for t in &self.list {
            if !t.is_fitted() {
                // Steps after an unfitted transform are prepared once it is fitted.
                return Ok(());
            }
            self.steps.push(match t {
                Transform::Clip { min, max } => Step::Clip {
                    min: *min,
                    max: *max,
                },
                Transform::FillNaN { value } => Step::FillNaN(*value),
                _ => match t.affine(self.width)? {
                    Some((scale, shift)) => Step::Affine { scale, shift },
                    None => continue,
                },
            });
        }
        Ok(())
    }

    /// True with no transforms.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The transforms, with fitted parameters.
    pub fn list(&self) -> &[Transform] {
        &self.list
    }

    /// True when some transform still needs fitting.
    pub fn needs_fit(&self) -> bool {
        self.list.iter().any(|t| !t.is_fitted())
    }

    /// Replaces the transforms' parameters (from a `state_dict`); the kinds must match.
    pub fn set_list(&mut self, list: Vec<Transform>) -> Result<()> {
        let kinds = |l: &[Transform]| l.iter().map(Transform::name).collect::<Vec<_>>();
        if kinds(&list) != kinds(&self.list) {
            return Err(DataError::InvalidArgument(format!(
                "the state's transforms {:?} differ from the loader's {:?}",
                kinds(&list),
                kinds(&self.list)
            )));
        }
        self.list = list;
        self.prepare()
    }

    /// `out = transforms(input)`, both `[rows, width]` row-major.
    pub fn apply<T: Real + Storage>(&self, input: &[T], out: &mut [T], width: usize) -> Result<()> {
        if self.needs_fit() {
            return Err(DataError::InvalidArgument(
                "transforms are not fitted".to_owned(),
            ));
        }
        if input.len() != out.len() || width != self.width {
            return Err(DataError::InvalidArgument(
                "internal: transform buffers do not match".to_owned(),
            ));
        }
        if self.steps.is_empty() {
            out.copy_from_slice(input);
            return Ok(());
        }
        let mut tmp: Vec<T> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let src: &[T] = if i == 0 {
                input
            } else {
                // The kernels write into a separate buffer; later steps read the previous
                // step's output from a copy.
                tmp.clear();
                tmp.extend_from_slice(out);
                &tmp
            };
            match step {
                Step::Affine { scale, shift } => {
                    rt_simd::affine_per_feature(src, out, scale, shift).map_err(simd)?;
                }
                Step::Clip { min, max } => rt_simd::clamp(src, out, *min, *max).map_err(simd)?,
                Step::FillNaN(value) => {
                    let value = T::from_f64(*value);
                    for (o, &x) in out.iter_mut().zip(src) {
                        *o = if x.is_nan() { value } else { x };
                    }
                }
            }
        }
        Ok(())
    }

    /// Fits every unfitted transform, one pass of `for_each_block` per transform, each pass
    /// seeing the data through the transforms before it. `for_each_block` calls its argument
    /// with consecutive `[rows, width]` blocks covering the data once.
    pub fn fit<T: Real + Storage>(
        &mut self,
        mut for_each_block: impl FnMut(&mut dyn FnMut(&[T]) -> Result<()>) -> Result<()>,
    ) -> Result<()> {
        let width = self.width;
        while let Some(i) = self.list.iter().position(|t| !t.is_fitted()) {
            let prefix = Transforms::new(self.list[..i].to_vec(), width)?;
            let mut acc = Accumulator::new(width);
            let minmax = matches!(self.list[i], Transform::MinMaxScale { .. });
            for_each_block(&mut |block: &[T]| {
                let mut seen = vec![T::ZERO; block.len()];
                prefix.apply(block, &mut seen, width)?;
                acc.add(&seen, minmax)
            })?;
            match &mut self.list[i] {
                Transform::Standardize { mean, std } => {
                    let (m, s) = acc.mean_std();
                    mean.get_or_insert(m);
                    std.get_or_insert(s);
                }
                Transform::MinMaxScale { min, max, .. } => {
                    min.get_or_insert(acc.min.clone());
                    max.get_or_insert(acc.max.clone());
                }
                _ => {}
            }
        }
        self.prepare()
    }
}

/// Per-feature count, mean, M2 (Welford/Chan) and extremes over the blocks seen.
#[derive(Debug, Clone)]
struct Accumulator {
    n: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
    min: Vec<f64>,
    max: Vec<f64>,
}

impl Accumulator {
    fn new(width: usize) -> Self {
        Self {
            n: 0.0,
            mean: vec![0.0; width],
            m2: vec![0.0; width],
            min: vec![f64::NAN; width],
            max: vec![f64::NAN; width],
        }
    }

    /// Chan's parallel merge of two sets of moments.
    fn merge(&mut self, other: &Accumulator) {
        let n = self.n + other.n;
        if other.n > 0.0 {
            for j in 0..self.mean.len() {
                let delta = other.mean[j] - self.mean[j];
                self.mean[j] += delta * other.n / n;
                self.m2[j] += other.m2[j] + delta * delta * self.n * other.n / n;
            }
        }
        self.n = n;
        for j in 0..self.min.len() {
            // f64::min/max ignore a NaN operand, so NaNs in the data are skipped.
            self.min[j] = self.min[j].min(other.min[j]);
            self.max[j] = self.max[j].max(other.max[j]);
        }
    }

    /// Adds a `[rows, width]` block: blocks of FIT_BLOCK_ROWS rows in parallel on the
    /// shared pool, merged left to right.
    fn add<T: Real + Storage>(&mut self, data: &[T], extremes: bool) -> Result<()> {
        let width = self.mean.len();
        if width == 0 {
            return Ok(());
        }
        let parts: Vec<Result<Accumulator>> = rt_view::threads::install(|| {
            data.par_chunks(FIT_BLOCK_ROWS * width)
                .map(|block| {
                    let rows = block.len() / width;
                    let mut acc = Accumulator::new(width);
                    acc.n = rows as f64;
                    if extremes {
                        for row in block.chunks_exact(width) {
                            for (j, &x) in row.iter().enumerate() {
                                acc.min[j] = acc.min[j].min(x.to_f64());
                                acc.max[j] = acc.max[j].max(x.to_f64());
                            }
                        }
                    } else {
                        let mut mean = vec![T::ZERO; width];
                        let mut var = vec![T::ZERO; width];
                        rt_simd::mean_var(
                            block,
                            Axis::columns(rows, width),
                            0.0,
                            NanPolicy::Propagate,
                            &mut mean,
                            &mut var,
                        )
                        .map_err(simd)?;
                        for j in 0..width {
                            acc.mean[j] = mean[j].to_f64();
                            acc.m2[j] = var[j].to_f64() * rows as f64;
                        }
                    }
                    Ok(acc)
                })
                .collect()
        })?;
        for part in parts {
            self.merge(&part?);
        }
        Ok(())
    }

    fn mean_std(&self) -> (Vec<f64>, Vec<f64>) {
        let std = self
            .m2
            .iter()
            .map(|&m2| (m2 / self.n).sqrt())
            .collect::<Vec<_>>();
        (self.mean.clone(), std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<f32> {
        // 3000 rows x 3 features, not all the same.
        (0..9000)
            .map(|i| ((i * 37 % 101) as f32) * 0.5 + (i % 3) as f32 * 10.0)
            .collect()
    }

    fn fitted(list: Vec<Transform>, x: &[f32]) -> Transforms {
        let mut t = Transforms::new(list, 3).unwrap();
        t.fit::<f32>(|f| {
            for block in x.chunks(3 * 700) {
                f(block)?;
            }
            Ok(())
        })
        .unwrap();
        t
    }

    #[test]
    fn standardize_matches_a_two_pass_reference() {
        let x = data();
        let t = fitted(
            vec![Transform::Standardize {
                mean: None,
                std: None,
            }],
            &x,
        );
        let mut y = vec![0.0; x.len()];
        t.apply(&x, &mut y, 3).unwrap();
        for j in 0..3 {
            let col: Vec<f64> = x.iter().skip(j).step_by(3).map(|&v| v as f64).collect();
            let n = col.len() as f64;
            let mean = col.iter().sum::<f64>() / n;
            let std = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            let Transform::Standardize {
                mean: Some(m),
                std: Some(s),
            } = &t.list()[0]
            else {
                panic!("not fitted")
            };
            // mean_var returns float32 statistics for float32 data.
            assert!((m[j] - mean).abs() < 1e-5 * mean.abs() && (s[j] - std).abs() < 1e-5 * std);
            let out: Vec<f32> = y.iter().skip(j).step_by(3).copied().collect();
            for (o, v) in out.iter().zip(&col) {
                assert!((*o as f64 - (v - mean) / std).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn chains_fill_clip_and_minmax() {
        let mut x = data();
        x[4] = f32::NAN;
        let t = fitted(
            vec![
                Transform::FillNaN { value: 0.0 },
                Transform::Clip {
                    min: Some(1.0),
                    max: Some(40.0),
                },
                Transform::MinMaxScale {
                    min: None,
                    max: None,
                    range: (0.0, 1.0),
                },
            ],
            &x,
        );
        let mut y = vec![0.0; x.len()];
        t.apply(&x, &mut y, 3).unwrap();
        assert!(y.iter().all(|v| (0.0..=1.0).contains(v)));
        // The filled NaN became 0, was clipped to 1, the column minimum.
        assert!(y[4].abs() < 1e-6);
        for j in 0..3 {
            let col: Vec<f32> = y.iter().skip(j).step_by(3).copied().collect();
            assert!(col.iter().cloned().fold(f32::MAX, f32::min).abs() < 1e-6);
            assert!((col.iter().cloned().fold(f32::MIN, f32::max) - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(
            Transforms::new(
                vec![Transform::Clip {
                    min: None,
                    max: None
                }],
                3
            )
            .is_err()
        );
        assert!(
            Transforms::new(
                vec![Transform::Clip {
                    min: Some(2.0),
                    max: Some(1.0)
                }],
                3
            )
            .is_err()
        );
        let n = |mean: Vec<f64>, std: Vec<f64>| {
            Transforms::new(vec![Transform::Normalize { mean, std }], 3)
        };
        assert!(n(vec![0.0; 2], vec![1.0]).is_err());
        assert!(n(vec![0.0], vec![0.0]).is_err());
        assert!(n(vec![0.0], vec![2.0]).is_ok());
        let unfitted = Transforms::new(
            vec![Transform::Standardize {
                mean: None,
                std: None,
            }],
            3,
        )
        .unwrap();
        let mut y = vec![0.0f32; 3];
        assert!(unfitted.apply(&[1.0f32, 2.0, 3.0], &mut y, 3).is_err());
    }
}

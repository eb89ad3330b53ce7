//! Elementwise kernels: activations, clamp, affine maps and the fused
//! `(a * b + c - mean) / std` chain, over contiguous slices of f32, f64, f16 or bf16
//! (16-bit floats are computed in f32 and rounded once).
//!
//! Every function checks its arguments first and writes nothing when it returns an error.

use crate::dispatch::{Isa, Kernel, SimdLevel, dispatch_at, simd_level};
use crate::error::{Result, SimdError, check_len};
use crate::math::{self, opaque};
use crate::parallel::{chunk_len, chunk_len_for_work, run_tasks, worth_parallel};
use crate::real::{Real, madd};
use crate::storage::Storage;

/// An elementwise activation, with torch's semantics and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// max(x, 0); NaN stays NaN.
    Relu,
    /// x for x > 0, else `negative_slope * x` (torch's default slope is 0.01).
    LeakyRelu {
        /// The slope for x <= 0.
        negative_slope: f64,
    },
    /// x Phi(x) with the exact normal CDF (`approximate="none"`).
    Gelu,
    /// torch's `approximate="tanh"` gelu.
    GeluTanh,
    /// x sigmoid(x).
    Silu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// ln(1 + e^(beta x)) / beta, or x where beta x > threshold (torch: beta 1, threshold 20).
    Softplus {
        /// The sharpness; must be nonzero.
        beta: f64,
        /// Above this beta x the result is x.
        threshold: f64,
    },
    /// e^x.
    Exp,
}

impl Activation {
    /// The op's name as the Python API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu(approximate='tanh')",
            Activation::Silu => "silu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softplus { .. } => "softplus",
            Activation::Exp => "exp",
        }
    }

    fn validate(self) -> Result<()> {
        if let Activation::Softplus { beta, .. } = self
            && (beta == 0.0 || beta.is_nan())
        {
            return Err(SimdError::InvalidArgument {
                name: "beta",
                reason: format!("softplus needs a nonzero beta, got {beta}"),
            });
        }
        Ok(())
    }
}

/// A function of one element, inlined into every level's loop.
pub(crate) trait UnaryFn<T: Real>: Copy + Send + Sync {
    /// Its time per element relative to a memory-bound map such as relu (one thread, data
    /// in L2, AVX-512: exp, the logistic family and tanh 2.5-3.3x, gelu and softplus ~6x):
    /// what decides when a call is worth splitting over the pool.
    const COST: usize = 1;
    fn call<I: Isa>(self, x: T) -> T;
}

/// A function of three elements.
pub(crate) trait TernaryFn<T: Real>: Copy + Send + Sync {
    fn call<I: Isa>(self, a: T, b: T, c: T) -> T;
}

/// A function of an element and two per-channel (or per-feature) parameters.
pub(crate) trait ParamFn<T: Real>: Copy + Send + Sync {
    fn call<I: Isa>(self, x: T, p: T, q: T) -> T;
}

macro_rules! unary_fn {
    ($name:ident $({ $($field:ident),* })?, |$self_:ident, $x:ident| $body:expr) => {
        unary_fn!($name $({ $($field),* })?, cost 1, |$self_, $x| $body);
    };
    ($name:ident $({ $($field:ident),* })?, cost $cost:expr, |$self_:ident, $x:ident| $body:expr) => {
        #[derive(Clone, Copy)]
        pub(crate) struct $name<T> {
            $($($field: T,)*)?
            _t: std::marker::PhantomData<T>,
        }
        impl<T: Real> UnaryFn<T> for $name<T> {
            const COST: usize = $cost;
            #[inline(always)]
            #[allow(unused_variables)]
            fn call<I: Isa>($self_, $x: T) -> T {
                $body
            }
        }
    };
}

unary_fn!(ReluFn, |self, x| if x < T::ZERO { T::ZERO } else { x });
unary_fn!(LeakyReluFn { slope }, |self, x| if x > T::ZERO {
    x
} else {
    x * self.slope
});
unary_fn!(GeluFn, cost 6, |self, x| math::gelu_erf::<T, I>(x));
unary_fn!(GeluTanhFn, cost 3, |self, x| math::gelu_tanh::<T, I>(x));
unary_fn!(SiluFn, cost 3, |self, x| math::silu::<T, I>(x));
unary_fn!(SigmoidFn, cost 3, |self, x| math::sigmoid::<T, I>(x));
unary_fn!(TanhFn, cost 3, |self, x| math::tanh::<T, I>(x));
unary_fn!(
    SoftplusFn {
        beta,
        inv_beta,
        threshold
    },
    cost 6,
    |self, x| math::softplus::<T, I>(x, self.beta, self.inv_beta, self.threshold)
);
unary_fn!(ExpFn, cost 3, |self, x| math::exp::<T, I>(x));
// torch.clamp: min(max(x, lo), hi), NaN kept; lo > hi gives hi.
unary_fn!(ClampFn { lo, hi }, |self, x| {
    let y = if x < self.lo { self.lo } else { x };
    if y > self.hi { self.hi } else { y }
});
unary_fn!(AffineFn { scale, shift }, |self, x| madd::<T, I>(
    x, self.scale, self.shift
));

/// (a * b + c - mean) / std.
#[derive(Clone, Copy)]
pub(crate) struct MadNormalizeFn<T> {
    mean: T,
    std: T,
}
impl<T: Real> TernaryFn<T> for MadNormalizeFn<T> {
    #[inline(always)]
    fn call<I: Isa>(self, a: T, b: T, c: T) -> T {
        (madd::<T, I>(a, b, c) - self.mean) / self.std
    }
}

/// x * p + q (FMA where available).
#[derive(Clone, Copy)]
pub(crate) struct AffineParam;
impl<T: Real> ParamFn<T> for AffineParam {
    #[inline(always)]
    fn call<I: Isa>(self, x: T, p: T, q: T) -> T {
        madd::<T, I>(x, p, q)
    }
}

/// (x - p) / q, as torchvision's Normalize computes it.
#[derive(Clone, Copy)]
pub(crate) struct NormalizeParam;
impl<T: Real> ParamFn<T> for NormalizeParam {
    #[inline(always)]
    fn call<I: Isa>(self, x: T, p: T, q: T) -> T {
        (x - p) / q
    }
}

fn new_fn<T, F>(build: impl FnOnce(std::marker::PhantomData<T>) -> F) -> F {
    build(std::marker::PhantomData)
}

// ---- kernels -------------------------------------------------------------------------

struct Map<'a, S, F> {
    input: Option<&'a [S]>,
    out: &'a mut [S],
    f: F,
}

impl<S: Storage, F: UnaryFn<S::Compute>> Kernel for Map<'_, S, F> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let f = self.f;
        let g = |x: S| S::store(f.call::<I>(opaque::<_, I>(x.load())));
        match self.input {
            Some(input) => {
                // Two independent streams per step: each element's math is one long
                // dependency chain, and two in flight keep the FMA units busier.
                let half = input.len().min(self.out.len()) / 2;
                let (in1, in2) = input.split_at(half);
                let (out1, out2) = self.out.split_at_mut(half);
                for ((o1, o2), (&x1, &x2)) in out1
                    .iter_mut()
                    .zip(out2.iter_mut())
                    .zip(in1.iter().zip(in2))
                {
                    *o1 = g(x1);
                    *o2 = g(x2);
                }
                // An odd length leaves the last element of the second half.
                if out2.len() > half
                    && let (Some(o), Some(&x)) = (out2.last_mut(), in2.last())
                {
                    *o = g(x);
                }
            }
            None => {
                for o in self.out.iter_mut() {
                    *o = S::store(f.call::<I>(opaque::<_, I>(o.load())));
                }
            }
        }
    }
}

struct Map3<'a, S, F> {
    a: &'a [S],
    b: &'a [S],
    c: &'a [S],
    out: &'a mut [S],
    f: F,
}

impl<S: Storage, F: TernaryFn<S::Compute>> Kernel for Map3<'_, S, F> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let f = self.f;
        let abc = self.a.iter().zip(self.b).zip(self.c);
        for (o, ((&a, &b), &c)) in self.out.iter_mut().zip(abc) {
            *o = S::store(f.call::<I>(opaque::<_, I>(a.load()), b.load(), c.load()));
        }
    }
}

/// Rows of `p.len()` elements; element j of every row uses `p[j]`, `q[j]`.
struct PerLane<'a, S: Storage, F> {
    input: &'a [S],
    out: &'a mut [S],
    p: &'a [S::Compute],
    q: &'a [S::Compute],
    f: F,
}

impl<S: Storage, F: ParamFn<S::Compute>> Kernel for PerLane<'_, S, F> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let f = self.f;
        let width = self.p.len().max(1);
        for (orow, irow) in self.out.chunks_mut(width).zip(self.input.chunks(width)) {
            let params = self.p.iter().zip(self.q);
            for ((o, &x), (&p, &q)) in orow.iter_mut().zip(irow).zip(params) {
                *o = S::store(f.call::<I>(opaque::<_, I>(x.load()), p, q));
            }
        }
    }
}

/// Runs of `inner` elements sharing one (p, q) pair; run r uses channel
/// `(first_run + r) % p.len()`.
struct PerRun<'a, S: Storage, F> {
    input: &'a [S],
    out: &'a mut [S],
    inner: usize,
    first_run: usize,
    p: &'a [S::Compute],
    q: &'a [S::Compute],
    f: F,
}

impl<S: Storage, F: ParamFn<S::Compute>> Kernel for PerRun<'_, S, F> {
    type Output = ();
    #[inline(always)]
    fn run<I: Isa>(self) {
        let f = self.f;
        let channels = self.p.len().max(1);
        let inner = self.inner.max(1);
        let runs = self.out.chunks_mut(inner).zip(self.input.chunks(inner));
        for (r, (orun, irun)) in runs.enumerate() {
            let c = (self.first_run + r) % channels;
            let (Some(&p), Some(&q)) = (self.p.get(c), self.q.get(c)) else {
                return;
            };
            for (o, &x) in orun.iter_mut().zip(irun) {
                *o = S::store(f.call::<I>(opaque::<_, I>(x.load()), p, q));
            }
        }
    }
}

// ---- drivers -------------------------------------------------------------------------

/// Runs a unary map over `out` (from `input`, or in place), split over the pool when large.
fn run_map<S: Storage, F: UnaryFn<S::Compute>>(
    level: SimdLevel,
    input: Option<&[S]>,
    out: &mut [S],
    f: F,
) -> Result<()> {
    let n = out.len();
    let work = n.saturating_mul(F::COST);
    if !worth_parallel(work) {
        dispatch_at(level, Map { input, out, f });
        return Ok(());
    }
    let chunk = chunk_len_for_work(n, F::COST, 64);
    match input {
        Some(input) => run_tasks(
            out.chunks_mut(chunk).zip(input.chunks(chunk)).collect(),
            |(out, input)| {
                dispatch_at(
                    level,
                    Map {
                        input: Some(input),
                        out,
                        f,
                    },
                )
            },
        ),
        None => run_tasks(out.chunks_mut(chunk).collect(), |out| {
            dispatch_at(
                level,
                Map {
                    input: None,
                    out,
                    f,
                },
            )
        }),
    }
}

fn map_with<S: Storage>(input: Option<&[S]>, out: &mut [S], op: Activation) -> Result<()> {
    op.validate()?;
    if let Some(input) = input {
        check_len("input and output lengths", out.len(), input.len())?;
    }
    let level = simd_level();
    let c = |v: f64| S::Compute::from_f64(v);
    match op {
        Activation::Relu => run_map(level, input, out, new_fn(|_t| ReluFn { _t })),
        Activation::LeakyRelu { negative_slope } => {
            let slope = c(negative_slope);
            run_map(level, input, out, new_fn(|_t| LeakyReluFn { slope, _t }))
        }
        Activation::Gelu => run_map(level, input, out, new_fn(|_t| GeluFn { _t })),
        Activation::GeluTanh => run_map(level, input, out, new_fn(|_t| GeluTanhFn { _t })),
        Activation::Silu => run_map(level, input, out, new_fn(|_t| SiluFn { _t })),
        Activation::Sigmoid => run_map(level, input, out, new_fn(|_t| SigmoidFn { _t })),
        Activation::Tanh => run_map(level, input, out, new_fn(|_t| TanhFn { _t })),
        Activation::Softplus { beta, threshold } => {
            let f = new_fn(|_t| SoftplusFn {
                beta: c(beta),
                inv_beta: c(1.0 / beta),
                threshold: c(threshold),
                _t,
            });
            run_map(level, input, out, f)
        }
        Activation::Exp => run_map(level, input, out, new_fn(|_t| ExpFn { _t })),
    }
}

/// `out[i] = op(input[i])`. The slices must have equal lengths.
///
/// ```
/// use rt_simd::{Activation, activation};
/// let x = [-1.0f32, 0.5, 2.0];
/// let mut y = [0.0f32; 3];
/// activation(Activation::Relu, &x, &mut y)?;
/// assert_eq!(y, [0.0, 0.5, 2.0]);
/// # Ok::<(), rt_simd::SimdError>(())
/// ```
pub fn activation<S: Storage>(op: Activation, input: &[S], out: &mut [S]) -> Result<()> {
    map_with(Some(input), out, op)
}

/// `data[i] = op(data[i])`.
pub fn activation_inplace<S: Storage>(op: Activation, data: &mut [S]) -> Result<()> {
    map_with(None, data, op)
}

/// torch.clamp: `min(max(x, min), max)`; NaN stays NaN; where `min > max` every element
/// becomes `max` (as in torch). At least one bound must be given.
pub fn clamp<S: Storage>(
    input: &[S],
    out: &mut [S],
    min: Option<f64>,
    max: Option<f64>,
) -> Result<()> {
    check_len("input and output lengths", out.len(), input.len())?;
    if min.is_none() && max.is_none() {
        return Err(SimdError::InvalidArgument {
            name: "min/max",
            reason: "at least one of min and max must be given".into(),
        });
    }
    let lo = S::Compute::from_f64(min.unwrap_or(f64::NEG_INFINITY));
    let hi = S::Compute::from_f64(max.unwrap_or(f64::INFINITY));
    if lo.is_nan() || hi.is_nan() {
        // torch.clamp with a NaN bound returns NaN everywhere; the comparisons in
        // `ClampFn` would ignore such a bound instead.
        let nan = S::store(S::Compute::NAN);
        out.fill(nan);
        return Ok(());
    }
    run_map(
        simd_level(),
        Some(input),
        out,
        new_fn(|_t| ClampFn { lo, hi, _t }),
    )
}

/// `out = input * scale + shift` (one rounding where the CPU has FMA).
pub fn affine<S: Storage>(input: &[S], out: &mut [S], scale: f64, shift: f64) -> Result<()> {
    check_len("input and output lengths", out.len(), input.len())?;
    let (scale, shift) = (S::Compute::from_f64(scale), S::Compute::from_f64(shift));
    let f = new_fn(|_t| AffineFn { scale, shift, _t });
    run_map(simd_level(), Some(input), out, f)
}

/// `out = (a * b + c - mean) / std` in one pass (one rounding for `a * b + c` where the
/// CPU has FMA). All four slices must have equal lengths.
pub fn fused_mad_normalize<S: Storage>(
    a: &[S],
    b: &[S],
    c: &[S],
    out: &mut [S],
    mean: f64,
    std: f64,
) -> Result<()> {
    check_len("a and output lengths", out.len(), a.len())?;
    check_len("b and output lengths", out.len(), b.len())?;
    check_len("c and output lengths", out.len(), c.len())?;
    let f = MadNormalizeFn {
        mean: S::Compute::from_f64(mean),
        std: S::Compute::from_f64(std),
    };
    let level = simd_level();
    let n = out.len();
    if !worth_parallel(n) {
        dispatch_at(level, Map3 { a, b, c, out, f });
        return Ok(());
    }
    let chunk = chunk_len(n, 64);
    run_tasks(
        out.chunks_mut(chunk)
            .zip(a.chunks(chunk))
            .zip(b.chunks(chunk))
            .zip(c.chunks(chunk))
            .collect(),
        |(((out, a), b), c)| dispatch_at(level, Map3 { a, b, c, out, f }),
    )
}

fn to_compute<S: Storage>(what: &'static str, v: &[f64], len: usize) -> Result<Vec<S::Compute>> {
    check_len(what, len, v.len())?;
    Ok(v.iter().map(|&x| S::Compute::from_f64(x)).collect())
}

/// Runs a per-feature map over rows of `features` elements.
fn run_per_lane<S: Storage, F: ParamFn<S::Compute>>(
    input: &[S],
    out: &mut [S],
    p: &[S::Compute],
    q: &[S::Compute],
    f: F,
) -> Result<()> {
    let level = simd_level();
    let width = p.len();
    let n = out.len();
    if width == 0 || n == 0 {
        return Ok(());
    }
    if !worth_parallel(n) {
        dispatch_at(
            level,
            PerLane {
                input,
                out,
                p,
                q,
                f,
            },
        );
        return Ok(());
    }
    let chunk = chunk_len(n, width);
    run_tasks(
        out.chunks_mut(chunk).zip(input.chunks(chunk)).collect(),
        |(out, input)| {
            dispatch_at(
                level,
                PerLane {
                    input,
                    out,
                    p,
                    q,
                    f,
                },
            )
        },
    )
}

/// `out[r, j] = input[r, j] * scale[j] + shift[j]` over rows of `scale.len()` features.
pub fn affine_per_feature<S: Storage>(
    input: &[S],
    out: &mut [S],
    scale: &[f64],
    shift: &[f64],
) -> Result<()> {
    check_len("input and output lengths", out.len(), input.len())?;
    let features = scale.len();
    let p = to_compute::<S>("scale length", scale, features)?;
    let q = to_compute::<S>("shift length (must equal scale's)", shift, features)?;
    if features == 0 {
        return check_len("input length for 0 features", 0, input.len());
    }
    if !input.len().is_multiple_of(features) {
        return Err(SimdError::InvalidArgument {
            name: "scale",
            reason: format!(
                "{} elements do not split into rows of {features} features",
                input.len()
            ),
        });
    }
    run_per_lane(input, out, &p, &q, AffineParam)
}

/// Per-channel normalization of a row-major tensor of `shape`:
/// `out = (x - mean[c]) / std[c]` where `c` is the index along `dim` (dim 1 of an
/// N x C x H x W image batch, say). `mean` and `std` hold `shape[dim]` values.
pub fn normalize_channels<S: Storage>(
    input: &[S],
    out: &mut [S],
    shape: &[usize],
    dim: usize,
    mean: &[f64],
    std: &[f64],
) -> Result<()> {
    check_len("input and output lengths", out.len(), input.len())?;
    let Some(&channels) = shape.get(dim) else {
        return Err(SimdError::InvalidArgument {
            name: "dim",
            reason: format!("dim {dim} is out of range for {} dimensions", shape.len()),
        });
    };
    let numel = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    check_len(
        "input length for the shape",
        numel.unwrap_or(usize::MAX),
        input.len(),
    )?;
    let p = to_compute::<S>("mean length (must equal the size of dim)", mean, channels)?;
    let q = to_compute::<S>("std length (must equal the size of dim)", std, channels)?;
    let inner: usize = shape[dim + 1..].iter().product();
    if input.is_empty() {
        return Ok(());
    }
    if inner == 1 {
        return run_per_lane(input, out, &p, &q, NormalizeParam);
    }
    let level = simd_level();
    let n = out.len();
    let f = NormalizeParam;
    let (p, q) = (&p[..], &q[..]);
    if !worth_parallel(n) {
        let k = PerRun {
            input,
            out,
            inner,
            first_run: 0,
            p,
            q,
            f,
        };
        dispatch_at(level, k);
        return Ok(());
    }
    let chunk = chunk_len(n, inner);
    let runs_per_chunk = chunk / inner;
    run_tasks(
        out.chunks_mut(chunk)
            .zip(input.chunks(chunk))
            .enumerate()
            .collect(),
        |(i, (out, input))| {
            let k = PerRun {
                input,
                out,
                inner,
                first_run: i * runs_per_chunk,
                p,
                q,
                f,
            };
            dispatch_at(level, k)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{at_level, supported_levels};
    use half::{bf16, f16};
    use proptest::prelude::*;

    /// The same map at an explicit level (the global level is shared between tests).
    fn act_at<S: Storage>(level: SimdLevel, op: Activation, x: &[S]) -> Vec<S> {
        let mut out = vec![S::store(S::Compute::ZERO); x.len()];
        macro_rules! go {
            ($f:expr) => {
                run_map(level, Some(x), &mut out, $f).unwrap()
            };
        }
        let c = |v: f64| S::Compute::from_f64(v);
        match op {
            Activation::Relu => go!(new_fn(|_t| ReluFn { _t })),
            Activation::LeakyRelu { negative_slope } => go!(new_fn(|_t| LeakyReluFn {
                slope: c(negative_slope),
                _t
            })),
            Activation::Gelu => go!(new_fn(|_t| GeluFn { _t })),
            Activation::GeluTanh => go!(new_fn(|_t| GeluTanhFn { _t })),
            Activation::Silu => go!(new_fn(|_t| SiluFn { _t })),
            Activation::Sigmoid => go!(new_fn(|_t| SigmoidFn { _t })),
            Activation::Tanh => go!(new_fn(|_t| TanhFn { _t })),
            Activation::Softplus { beta, threshold } => go!(new_fn(|_t| SoftplusFn {
                beta: c(beta),
                inv_beta: c(1.0 / beta),
                threshold: c(threshold),
                _t
            })),
            Activation::Exp => go!(new_fn(|_t| ExpFn { _t })),
        }
        out
    }

    fn sigmoid_ref(z: f64) -> f64 {
        if z >= 0.0 {
            1.0 / (1.0 + (-z).exp())
        } else {
            z.exp() / (1.0 + z.exp())
        }
    }

    /// Scalar f64 reference of each activation.
    fn reference(op: Activation, x: f64) -> f64 {
        match op {
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::LeakyRelu { negative_slope } => {
                if x > 0.0 {
                    x
                } else {
                    x * negative_slope
                }
            }
            Activation::Gelu => math::gelu_erf::<f64, crate::dispatch::ScalarIsa>(x),
            Activation::GeluTanh => {
                let y = 0.797_884_560_802_865_4 * (x + 0.044_715 * x * x * x);
                x * sigmoid_ref(2.0 * y)
            }
            Activation::Silu => x * sigmoid_ref(x),
            Activation::Sigmoid => sigmoid_ref(x),
            Activation::Tanh => x.tanh(),
            Activation::Softplus { beta, threshold } => {
                if beta * x > threshold {
                    x
                } else {
                    (beta * x).exp().ln_1p() / beta
                }
            }
            Activation::Exp => x.exp(),
        }
    }

    const OPS: [Activation; 10] = [
        Activation::Relu,
        Activation::LeakyRelu {
            negative_slope: 0.01,
        },
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::Silu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softplus {
            beta: 1.0,
            threshold: 20.0,
        },
        Activation::Softplus {
            beta: 2.0,
            threshold: 5.0,
        },
        Activation::Exp,
    ];

    fn close(got: f64, want: f64, rtol: f64, atol: f64) -> bool {
        (got.is_nan() && want.is_nan())
            || got == want
            || (got - want).abs() <= atol + rtol * want.abs()
    }

    proptest! {
        #[test]
        fn every_level_matches_the_scalar_reference(
            xs in proptest::collection::vec(-30.0f64..30.0, 0..300),
        ) {
            for level in supported_levels() {
                for op in OPS {
                    // gelu(tanh) exponentiates 2y = O(x^3), whose own rounding error scales
                    // the result's: relative error up to |2y| eps (torch's formula is worse).
                    let (rtol64, rtol32) = match op {
                        Activation::GeluTanh => (3e-13, 3e-5),
                        // The reference is the non-FMA scalar build of the same formula.
                        Activation::Gelu => (1e-15, 1e-6),
                        _ => (1e-15, 5e-7),
                    };
                    let got = act_at(level, op, &xs);
                    for (&g, &x) in got.iter().zip(&xs) {
                        let want = reference(op, x);
                        prop_assert!(close(g, want, rtol64, 1e-300), "{op:?} at {level}: f({x}) = {g}, want {want}");
                    }
                    // Results below the smallest normal f32 (1.2e-38) may be flushed to 0.
                    let x32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
                    let got = act_at(level, op, &x32);
                    for (&g, &x) in got.iter().zip(&x32) {
                        let want = reference(op, f64::from(x));
                        prop_assert!(close(f64::from(g), want, rtol32, 2e-37), "{op:?} at {level}: f({x}) = {g}, want {want}");
                    }
                }
            }
        }
    }

    proptest! {
        // Fewer cases than the default: the large ones are ~130k elements at every level.
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The fused and per-channel maps at every level against plain f64 formulas, on
        /// lengths that leave vector tails and sizes that reach the parallel split.
        #[test]
        fn fused_maps_match_the_formulas_at_every_level(
            dims in proptest::collection::vec(1usize..12, 1..4),
            big in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let mut dims = dims;
            if big {
                // Just past PARALLEL_MIN_ELEMENTS: the split over the pool, and its seams.
                let d = dims[dims.len() - 1];
                dims = vec![crate::parallel::PARALLEL_MIN_ELEMENTS / d + 3, d];
            }
            let n: usize = dims.iter().product();
            let values = |k: u64| -> Vec<f64> {
                (0..n).map(|i| ((i as u64 * 2654435761 + seed * k) % 2001) as f64 / 100.0 - 10.0).collect()
            };
            let (a, b, c) = (values(1), values(3), values(7));
            let dim = dims.len() - 1;
            let d = dims[dim];
            let scale: Vec<f64> = (0..d).map(|i| 0.5 + i as f64).collect();
            let shift: Vec<f64> = (0..d).map(|i| 1.0 - i as f64 / 4.0).collect();
            let std: Vec<f64> = (0..d).map(|i| 0.25 + i as f64 / 2.0).collect();
            let close = |g: f64, w: f64| (g - w).abs() <= 1e-13 * (1.0 + w.abs());
            let mut out = vec![0.0; n];
            for level in supported_levels() {
                at_level(level, || fused_mad_normalize(&a, &b, &c, &mut out, 0.5, 2.5)).unwrap();
                for k in 0..n {
                    let want = (a[k] * b[k] + c[k] - 0.5) / 2.5;
                    prop_assert!(close(out[k], want), "fused_mad_normalize[{k}] at {level}");
                }
                at_level(level, || affine(&a, &mut out, -1.5, 0.25)).unwrap();
                for k in 0..n {
                    prop_assert!(close(out[k], a[k] * -1.5 + 0.25), "affine[{k}] at {level}");
                }
                at_level(level, || affine_per_feature(&a, &mut out, &scale, &shift)).unwrap();
                for k in 0..n {
                    let want = a[k] * scale[k % d] + shift[k % d];
                    prop_assert!(close(out[k], want), "affine_per_feature[{k}] at {level}");
                }
                at_level(level, || normalize_channels(&a, &mut out, &dims, dim, &shift, &std)).unwrap();
                for k in 0..n {
                    let want = (a[k] - shift[k % d]) / std[k % d];
                    prop_assert!(close(out[k], want), "normalize_channels[{k}] at {level}");
                }
                at_level(level, || clamp(&a, &mut out, Some(-2.0), Some(3.5))).unwrap();
                for k in 0..n {
                    prop_assert!(out[k] == a[k].clamp(-2.0, 3.5), "clamp[{k}] at {level}");
                }
            }
        }
    }

    #[test]
    fn half_precision_rounds_once() {
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 37.0).collect();
        for level in supported_levels() {
            let xb: Vec<bf16> = xs.iter().map(|&x| bf16::from_f32(x)).collect();
            let xh: Vec<f16> = xs.iter().map(|&x| f16::from_f32(x)).collect();
            for op in OPS {
                let gb = act_at(level, op, &xb);
                let gh = act_at(level, op, &xh);
                // Rounded once from the f32 result of the same kernel.
                let wide = act_at(
                    level,
                    op,
                    &xb.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
                );
                for (g, w) in gb.iter().zip(&wide) {
                    assert_eq!(
                        g.to_bits(),
                        bf16::from_f32(*w).to_bits(),
                        "{op:?} bf16 at {level}"
                    );
                }
                let wide = act_at(
                    level,
                    op,
                    &xh.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
                );
                for (g, w) in gh.iter().zip(&wide) {
                    assert_eq!(
                        g.to_bits(),
                        f16::from_f32(*w).to_bits(),
                        "{op:?} f16 at {level}"
                    );
                }
            }
        }
    }

    #[test]
    fn large_inputs_split_over_threads_agree_with_small_ones() {
        let n = 200_003;
        let xs: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let mut big = vec![0f32; n];
        activation(Activation::Gelu, &xs, &mut big).unwrap();
        for (i, &x) in xs.iter().enumerate().step_by(997) {
            let mut one = [0f32];
            activation(Activation::Gelu, &[x], &mut one).unwrap();
            assert_eq!(big[i], one[0]);
        }
        let mut inplace = xs.clone();
        activation_inplace(Activation::Gelu, &mut inplace).unwrap();
        assert_eq!(inplace, big);
    }

    #[test]
    fn clamp_affine_and_fused_follow_torch() {
        let x = [f32::NAN, -2.0, 0.5, 3.0];
        let mut y = [0f32; 4];
        clamp(&x, &mut y, Some(-1.0), Some(1.0)).unwrap();
        assert!(y[0].is_nan());
        assert_eq!(&y[1..], &[-1.0, 0.5, 1.0]);
        clamp(&x, &mut y, Some(2.0), Some(1.0)).unwrap();
        assert_eq!(&y[1..], &[1.0, 1.0, 1.0]);
        assert!(clamp(&x, &mut y, None, None).is_err());
        affine(&x, &mut y, 2.0, 1.0).unwrap();
        assert_eq!(&y[1..], &[-3.0, 2.0, 7.0]);
        let a = [1.0f64, 2.0, 3.0];
        let mut out = [0f64; 3];
        fused_mad_normalize(&a, &a, &a, &mut out, 1.0, 2.0).unwrap();
        assert_eq!(out, [0.5, 2.5, 5.5]);
        assert!(fused_mad_normalize(&a, &a[..2], &a, &mut out, 0.0, 1.0).is_err());
        assert_eq!(out, [0.5, 2.5, 5.5], "refused calls write nothing");
    }

    #[test]
    fn per_feature_and_per_channel_parameters() {
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut y = vec![0f32; 12];
        affine_per_feature(&x, &mut y, &[1.0, 10.0, 100.0], &[0.0, 0.0, 1.0]).unwrap();
        assert_eq!(&y[..6], &[0.0, 10.0, 201.0, 3.0, 40.0, 501.0]);
        assert!(affine_per_feature(&x, &mut y, &[1.0; 5], &[0.0; 5]).is_err());
        // 2 x 3 x 2 with channels on dim 1.
        normalize_channels(
            &x,
            &mut y,
            &[2, 3, 2],
            1,
            &[0.0, 2.0, 4.0],
            &[1.0, 2.0, 4.0],
        )
        .unwrap();
        assert_eq!(
            y,
            vec![0., 1., 0., 0.5, 0., 0.25, 6., 7., 3., 3.5, 1.5, 1.75]
        );
        normalize_channels(&x, &mut y, &[4, 3], 1, &[0.0, 1.0, 2.0], &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!(&y[..3], &[0.0, 0.0, 0.0]);
        assert!(normalize_channels(&x, &mut y, &[4, 3], 2, &[0.0], &[1.0]).is_err());
        assert!(normalize_channels(&x, &mut y, &[4, 3], 0, &[0.0], &[1.0]).is_err());
    }

    #[test]
    fn per_channel_parallel_split_keeps_channels_aligned() {
        let shape = [3, 5, 97, 101];
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n).map(|i| (i % 13) as f32).collect();
        let mean = [1.0, 2.0, 3.0, 4.0, 5.0];
        let std = [1.0, 2.0, 4.0, 8.0, 16.0];
        let mut y = vec![0f32; n];
        normalize_channels(&x, &mut y, &shape, 1, &mean, &std).unwrap();
        for (i, (&yv, &xv)) in y.iter().zip(&x).enumerate() {
            let c = (i / (97 * 101)) % 5;
            assert_eq!(yv, (xv - mean[c] as f32) / std[c] as f32);
        }
    }
}

//! Choosing the instruction set at run time.
//!
//! Every kernel is written once, as generic `#[inline(always)]` code over an [`Isa`] marker
//! type, and [`dispatch`] runs it inside a function compiled with `#[target_feature]` for
//! the level picked at run time: the kernel inlines into that function, so LLVM vectorizes
//! it for AVX-512, AVX2+FMA or the baseline (SSE2 on x86-64, NEON on aarch64). The marker
//! tells the kernel whether fused multiply-add is available (`f32::mul_add` is a slow
//! library call without it) and whether it runs at the `scalar` level, which keeps one
//! element per step as a reference.
//!
//! The level is detected once; the environment variable `RUSTTORCH_SIMD`
//! (`scalar|sse2|avx2|avx512|neon`) caps it, and [`set_simd_level`] changes it at run time
//! (tests run every level this way).

use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Result, SimdError};

/// The environment variable that caps the SIMD level.
pub const SIMD_ENV: &str = "RUSTTORCH_SIMD";

/// An instruction-set level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// One element per step, no vector instructions in the element loops: the reference.
    Scalar,
    /// x86-64 baseline: 128-bit SSE2, no FMA.
    Sse2,
    /// aarch64 baseline: 128-bit NEON with FMA.
    Neon,
    /// 256-bit AVX2 with FMA (Haswell and later, Zen).
    Avx2,
    /// 512-bit AVX-512 (F, BW, DQ, VL) with FMA (Skylake-SP and later, Zen 4).
    Avx512,
}

impl SimdLevel {
    /// Every level, lowest first.
    pub const ALL: [SimdLevel; 5] = [
        SimdLevel::Scalar,
        SimdLevel::Sse2,
        SimdLevel::Neon,
        SimdLevel::Avx2,
        SimdLevel::Avx512,
    ];

    /// `"scalar"`, `"sse2"`, `"neon"`, `"avx2"` or `"avx512"`.
    pub const fn name(self) -> &'static str {
        match self {
            SimdLevel::Scalar => "scalar",
            SimdLevel::Sse2 => "sse2",
            SimdLevel::Neon => "neon",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// Parses a name produced by [`SimdLevel::name`] (case-insensitive, surrounding spaces
    /// ignored).
    pub fn from_name(name: &str) -> Option<SimdLevel> {
        let name = name.trim().to_ascii_lowercase();
        SimdLevel::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Rank used when a level caps another: scalar 0, sse2 and neon 1, avx2 2, avx512 3.
    /// (`RUSTTORCH_SIMD=sse2` on aarch64 therefore means the NEON baseline.)
    const fn rank(self) -> u8 {
        match self {
            SimdLevel::Scalar => 0,
            SimdLevel::Sse2 | SimdLevel::Neon => 1,
            SimdLevel::Avx2 => 2,
            SimdLevel::Avx512 => 3,
        }
    }

    const fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Option<SimdLevel> {
        SimdLevel::ALL.get(usize::from(code)).copied()
    }
}

impl std::fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The best level this CPU and build support, ignoring `RUSTTORCH_SIMD`.
pub fn detected_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512bw")
            && has!("avx512dq")
            && has!("avx512vl")
            && has!("avx2")
            && has!("fma")
        {
            return SimdLevel::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return SimdLevel::Avx2;
        }
        SimdLevel::Sse2
    }
    #[cfg(target_arch = "aarch64")]
    {
        SimdLevel::Neon
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        SimdLevel::Scalar
    }
}

/// Every level this CPU can run, lowest first (always includes `scalar`).
pub fn supported_levels() -> Vec<SimdLevel> {
    let best = detected_level();
    SimdLevel::ALL
        .into_iter()
        .filter(|&l| {
            l == SimdLevel::Scalar || l == best || (l.rank() < best.rank() && same_arch(l, best))
        })
        .collect()
}

/// True when both levels belong to one architecture (scalar belongs to all).
fn same_arch(a: SimdLevel, b: SimdLevel) -> bool {
    let arm = |l: SimdLevel| l == SimdLevel::Neon;
    a == SimdLevel::Scalar || b == SimdLevel::Scalar || arm(a) == arm(b)
}

/// Parses `RUSTTORCH_SIMD`: `Ok(None)` when unset or empty, an error for an unknown name.
pub fn env_cap() -> Result<Option<SimdLevel>> {
    match std::env::var(SIMD_ENV) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => SimdLevel::from_name(&v)
            .map(Some)
            .ok_or(SimdError::UnknownSimdLevel { name: v }),
        Err(_) => Ok(None),
    }
}

/// The highest supported level whose rank does not exceed `cap`'s.
fn capped(cap: SimdLevel) -> SimdLevel {
    supported_levels()
        .into_iter()
        .rev()
        .find(|l| l.rank() <= cap.rank())
        .unwrap_or(SimdLevel::Scalar)
}

const UNSET: u8 = u8::MAX;
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);

fn initial_level() -> SimdLevel {
    // An unknown name is ignored here; the Python module warns about it at import.
    match env_cap() {
        Ok(Some(cap)) => capped(cap),
        _ => detected_level(),
    }
}

/// The level kernels run at now: the detected one, capped by `RUSTTORCH_SIMD`, unless
/// [`set_simd_level`] chose another.
#[inline]
pub fn simd_level() -> SimdLevel {
    #[cfg(test)]
    if let Some(level) = TEST_LEVEL.with(std::cell::Cell::get) {
        return level;
    }
    match SimdLevel::from_code(LEVEL.load(Ordering::Relaxed)) {
        Some(level) => level,
        None => {
            let level = initial_level();
            // Racing initializers compute the same value.
            LEVEL.store(level.code(), Ordering::Relaxed);
            level
        }
    }
}

#[cfg(test)]
thread_local! {
    /// A level for this thread's calls only ([`at_level`]).
    static TEST_LEVEL: std::cell::Cell<Option<SimdLevel>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with this thread's kernel calls at `level`, for unit tests, which run in
/// parallel threads and so cannot share [`set_simd_level`]. Every entry point reads the
/// level once, on the calling thread, and hands it to the pool threads it uses.
#[cfg(test)]
pub(crate) fn at_level<R>(level: SimdLevel, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<SimdLevel>);
    impl Drop for Restore {
        fn drop(&mut self) {
            TEST_LEVEL.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(TEST_LEVEL.with(|l| l.replace(Some(level))));
    f()
}

/// Makes kernels run at `level` from now on, in every thread. Fails for a level this CPU
/// cannot run (running AVX-512 code on a CPU without it would be undefined behaviour).
pub fn set_simd_level(level: SimdLevel) -> Result<()> {
    if !supported_levels().contains(&level) {
        return Err(SimdError::UnsupportedSimdLevel {
            level: level.name(),
            supported: supported_levels()
                .iter()
                .map(|l| l.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    LEVEL.store(level.code(), Ordering::Relaxed);
    Ok(())
}

/// Forgets [`set_simd_level`]: the next kernel uses the detected level capped by the
/// environment again.
pub fn reset_simd_level() {
    LEVEL.store(UNSET, Ordering::Relaxed);
}

/// What a kernel may assume about the instructions it is compiled for.
pub trait Isa: Copy + Send + Sync + 'static {
    /// Fused multiply-add is a single instruction.
    const FMA: bool;
    /// The `scalar` level: element loops must not be vectorized (see [`crate::real::Real::opaque`]).
    const SCALAR: bool;
    /// Which level this marker stands for.
    const LEVEL: SimdLevel;
}

/// Marker for the `scalar` level.
#[derive(Clone, Copy, Debug)]
pub struct ScalarIsa;
impl Isa for ScalarIsa {
    const FMA: bool = false;
    const SCALAR: bool = true;
    const LEVEL: SimdLevel = SimdLevel::Scalar;
}

/// Marker for the baseline of the architecture: SSE2 on x86-64, NEON on aarch64.
#[derive(Clone, Copy, Debug)]
pub struct BaselineIsa;
impl Isa for BaselineIsa {
    // aarch64's baseline has FMA; x86-64's does not.
    const FMA: bool = cfg!(target_arch = "aarch64");
    const SCALAR: bool = false;
    const LEVEL: SimdLevel = if cfg!(target_arch = "aarch64") {
        SimdLevel::Neon
    } else {
        SimdLevel::Sse2
    };
}

/// Marker for AVX2 + FMA.
#[derive(Clone, Copy, Debug)]
pub struct Avx2Isa;
impl Isa for Avx2Isa {
    const FMA: bool = true;
    const SCALAR: bool = false;
    const LEVEL: SimdLevel = SimdLevel::Avx2;
}

/// Marker for AVX-512.
#[derive(Clone, Copy, Debug)]
pub struct Avx512Isa;
impl Isa for Avx512Isa {
    const FMA: bool = true;
    const SCALAR: bool = false;
    const LEVEL: SimdLevel = SimdLevel::Avx512;
}

/// A kernel written once for every level: `run` is monomorphized per [`Isa`] and must be
/// `#[inline(always)]` (as must everything it calls in its loops) so that it inlines into
/// the `#[target_feature]` function [`dispatch`] calls.
pub trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel compiled for `I`.
    fn run<I: Isa>(self) -> Self::Output;
}

/// Runs `kernel` at the current [`simd_level`].
#[inline]
pub fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    dispatch_at(simd_level(), kernel)
}

/// Runs `kernel` at `level`, or at the best supported level below it.
#[inline]
pub fn dispatch_at<K: Kernel>(level: SimdLevel, kernel: K) -> K::Output {
    match level {
        SimdLevel::Scalar => kernel.run::<ScalarIsa>(),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 if detected_level() >= SimdLevel::Avx512 => {
            // SAFETY: `detected_level` returned Avx512 only after `is_x86_feature_detected!`
            // confirmed every feature `run_avx512` enables on this CPU.
            unsafe { run_avx512(kernel) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Avx2 if detected_level() >= SimdLevel::Avx2 => {
            // SAFETY: `detected_level` returned Avx2 or better only after
            // `is_x86_feature_detected!` confirmed avx2 and fma on this CPU.
            unsafe { run_avx2(kernel) }
        }
        _ => kernel.run::<BaselineIsa>(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,avx,sse4.2,sse4.1")]
unsafe fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<Avx512Isa>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,avx,sse4.2,sse4.1")]
unsafe fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<Avx2Isa>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_caps_rank() {
        for level in SimdLevel::ALL {
            assert_eq!(SimdLevel::from_name(level.name()), Some(level));
        }
        assert_eq!(SimdLevel::from_name(" AVX2 "), Some(SimdLevel::Avx2));
        assert_eq!(SimdLevel::from_name("avx3"), None);
        assert_eq!(capped(SimdLevel::Scalar), SimdLevel::Scalar);
        assert!(capped(SimdLevel::Avx512) == detected_level());
    }

    #[test]
    fn supported_levels_start_with_scalar_and_end_with_the_detected_one() {
        let levels = supported_levels();
        assert_eq!(levels.first(), Some(&SimdLevel::Scalar));
        assert_eq!(levels.last(), Some(&detected_level()));
        #[cfg(target_arch = "x86_64")]
        assert!(levels.contains(&SimdLevel::Sse2));
        assert!(!levels.contains(&SimdLevel::Neon) || cfg!(target_arch = "aarch64"));
    }

    struct WhichLevel;
    impl Kernel for WhichLevel {
        type Output = SimdLevel;
        fn run<I: Isa>(self) -> SimdLevel {
            I::LEVEL
        }
    }

    #[test]
    fn dispatch_runs_each_supported_level_and_falls_back_below_unsupported_ones() {
        for level in supported_levels() {
            assert_eq!(dispatch_at(level, WhichLevel), level);
        }
        let best = detected_level();
        assert!(dispatch_at(SimdLevel::Avx512, WhichLevel) <= best);
    }
}

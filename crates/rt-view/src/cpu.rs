//! Which SIMD instruction sets this CPU offers (detected at run time).

/// The SIMD feature names this CPU supports, in a fixed order (e.g. `["sse2", "avx2", "fma"]`).
pub fn cpu_features() -> Vec<&'static str> {
    let mut found = Vec::new();
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        macro_rules! probe {
            ($($name:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($name) {
                    found.push($name);
                }
            )*};
        }
        probe!(
            "sse2",
            "sse4.1",
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512dq",
            "avx512bf16",
            "avx512fp16"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($name:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($name) {
                    found.push($name);
                }
            )*};
        }
        probe!("neon", "fp16", "bf16", "sve", "sve2");
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x86_64_always_has_sse2() {
        assert!(super::cpu_features().contains(&"sse2"));
    }
}

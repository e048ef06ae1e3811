//! CPU features as the audit sees them: iced-x86's CPUID feature of each instruction, the
//! rustc `target_feature` name it corresponds to, and the [`Level`] one variant may use
//! without runtime dispatch, derived from what rustc enables for the variant's `target-cpu`.

use std::collections::BTreeSet;
use std::fmt;

use iced_x86::{CpuidFeature, Mnemonic};
use serde::{Deserialize, Serialize};

/// Broad instruction-set classes, for report columns and the "really built for it" check.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum IsaClass {
    /// Runs on every x86-64 CPU (x86-64-v1: SSE2, CMOV, ...).
    #[default]
    Baseline,
    /// SSE3, SSSE3, SSE4.1/4.2, POPCNT, CX16 (x86-64-v2).
    V2,
    /// AVX, AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE (x86-64-v3).
    V3,
    /// Any AVX-512 extension.
    Avx512,
    /// Everything else beyond the baseline (AES, SHA, PCLMULQDQ, RDRAND, ADX, SSE4A, ...).
    OtherExtension,
}

impl IsaClass {
    /// The psABI level a class belongs to, `None` for extensions outside the levels.
    fn level_rank(self) -> Option<u8> {
        match self {
            IsaClass::Baseline => Some(1),
            IsaClass::V2 => Some(2),
            IsaClass::V3 => Some(3),
            IsaClass::Avx512 => Some(4),
            IsaClass::OtherExtension => None,
        }
    }
}

/// The class of one CPUID feature.
pub fn classify(feature: CpuidFeature) -> IsaClass {
    use CpuidFeature as F;
    if is_architectural(feature) {
        return IsaClass::Baseline;
    }
    if feature_name(feature).starts_with("AVX512") {
        return IsaClass::Avx512;
    }
    match feature {
        F::SSE3 | F::SSSE3 | F::SSE4_1 | F::SSE4_2 | F::POPCNT | F::CMPXCHG16B => IsaClass::V2,
        F::AVX | F::AVX2 | F::FMA | F::BMI1 | F::BMI2 | F::F16C | F::LZCNT | F::MOVBE => {
            IsaClass::V3
        }
        _ => IsaClass::OtherExtension,
    }
}

/// Features every x86-64 CPU has, whatever `target-cpu` says (rustc does not even list most
/// of them as target features).
pub fn is_architectural(feature: CpuidFeature) -> bool {
    use CpuidFeature as F;
    matches!(
        feature,
        F::INTEL8086
            | F::INTEL186
            | F::INTEL286
            | F::INTEL386
            | F::INTEL486
            | F::X64
            | F::CMOV
            | F::CX8
            | F::FPU
            | F::FPU287
            | F::FPU387
            | F::MMX
            | F::FXSR
            | F::SSE
            | F::SSE2
            | F::SYSCALL
            | F::TSC
            | F::MULTIBYTENOP
            | F::PAUSE
            | F::CLFSH
            | F::SEP
            // `cpuid` itself is how runtime feature detection starts.
            | F::CPUID
    )
}

/// Name used in reports: iced's feature name (`AVX512F`, `AVX2`, `SSE4_2`).
pub fn feature_name(feature: CpuidFeature) -> String {
    format!("{feature:?}")
}

/// The rustc `target_feature` that enables `feature`'s instructions, for every feature a
/// `-C target-cpu` can turn on. `None`: no stable rustc feature covers it, so no variant's
/// level includes it (only runtime-dispatched code may use it).
pub fn rustc_feature(feature: CpuidFeature) -> Option<&'static str> {
    use CpuidFeature as F;
    Some(match feature {
        F::SSE => "sse",
        F::SSE2 => "sse2",
        F::SSE3 => "sse3",
        F::SSSE3 => "ssse3",
        F::SSE4_1 => "sse4.1",
        F::SSE4_2 => "sse4.2",
        F::SSE4A => "sse4a",
        F::POPCNT => "popcnt",
        F::CMPXCHG16B => "cmpxchg16b",
        F::FXSR => "fxsr",
        F::AVX => "avx",
        F::AVX2 => "avx2",
        F::FMA => "fma",
        F::BMI1 => "bmi1",
        F::BMI2 => "bmi2",
        F::F16C => "f16c",
        F::LZCNT => "lzcnt",
        F::MOVBE => "movbe",
        F::XSAVE => "xsave",
        F::XSAVEC => "xsavec",
        F::XSAVEOPT => "xsaveopt",
        F::XSAVES => "xsaves",
        F::ADX => "adx",
        F::AES => "aes",
        F::PCLMULQDQ => "pclmulqdq",
        F::VAES => "vaes",
        F::VPCLMULQDQ => "vpclmulqdq",
        F::GFNI => "gfni",
        F::SHA => "sha",
        F::SHA512 => "sha512",
        F::SM3 => "sm3",
        F::SM4 => "sm4",
        F::RDRAND => "rdrand",
        F::RDSEED => "rdseed",
        F::RTM => "rtm",
        F::TBM => "tbm",
        F::XOP => "xop",
        F::KL => "kl",
        F::WIDE_KL => "widekl",
        F::PREFETCHW => "prfchw",
        F::AVX512F => "avx512f",
        F::AVX512BW => "avx512bw",
        F::AVX512CD => "avx512cd",
        F::AVX512DQ => "avx512dq",
        F::AVX512VL => "avx512vl",
        F::AVX512_BF16 => "avx512bf16",
        F::AVX512_BITALG => "avx512bitalg",
        F::AVX512_FP16 => "avx512fp16",
        F::AVX512_IFMA => "avx512ifma",
        F::AVX512_VBMI => "avx512vbmi",
        F::AVX512_VBMI2 => "avx512vbmi2",
        F::AVX512_VNNI => "avx512vnni",
        F::AVX512_VP2INTERSECT => "avx512vp2intersect",
        F::AVX512_VPOPCNTDQ => "avx512vpopcntdq",
        F::AVX_VNNI => "avxvnni",
        F::AVX_IFMA => "avxifma",
        F::AVX_NE_CONVERT => "avxneconvert",
        F::AVX_VNNI_INT8 => "avxvnniint8",
        F::AVX_VNNI_INT16 => "avxvnniint16",
        _ => return None,
    })
}

/// Instructions iced attributes to an extension whose encoding older CPUs execute as a
/// baseline instruction, which is why LLVM emits them in generic builds.
pub fn runs_on_baseline(mnemonic: Mnemonic) -> bool {
    matches!(
        mnemonic,
        // `tzcnt` is `rep bsf`: the same result for every non-zero input, and LLVM only
        // emits it where a zero input is handled (or undefined) either way.
        Mnemonic::Tzcnt
        // `endbr64` (CET) is a multi-byte NOP without CET.
        | Mnemonic::Endbr64 | Mnemonic::Endbr32
    )
}

/// What one variant's code may use without runtime dispatch: the architectural baseline plus
/// every feature rustc enables for its `target-cpu` (`rustc --print cfg -C target-cpu=X`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub target_cpu: String,
    /// rustc `target_feature` names.
    pub rustc_features: BTreeSet<String>,
}

impl Level {
    pub fn new(target_cpu: &str, rustc_features: BTreeSet<String>) -> Level {
        Level {
            target_cpu: target_cpu.to_owned(),
            rustc_features,
        }
    }

    /// Whether code of this level may execute instructions needing `feature`.
    pub fn allows(&self, feature: CpuidFeature) -> bool {
        is_architectural(feature)
            || rustc_feature(feature).is_some_and(|name| self.rustc_features.contains(name))
    }

    /// The highest psABI class among the level's features (`Baseline` for generic,
    /// `Avx512` for znver4 and x86-64-v4): what a build for it should visibly contain.
    pub fn top_class(&self) -> IsaClass {
        CpuidFeature::values()
            .filter(|&feature| !is_architectural(feature) && self.allows(feature))
            .map(classify)
            .filter(|class| class.level_rank().is_some())
            .max_by_key(|class| class.level_rank())
            .unwrap_or(IsaClass::Baseline)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target-cpu={}", self.target_cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(target_cpu: &str, features: &[&str]) -> Level {
        Level::new(target_cpu, features.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn feature_classes() {
        assert_eq!(classify(CpuidFeature::SSE2), IsaClass::Baseline);
        assert_eq!(classify(CpuidFeature::POPCNT), IsaClass::V2);
        assert_eq!(classify(CpuidFeature::BMI2), IsaClass::V3);
        assert_eq!(classify(CpuidFeature::AVX512VL), IsaClass::Avx512);
        assert_eq!(classify(CpuidFeature::AVX512_VNNI), IsaClass::Avx512);
        assert_eq!(classify(CpuidFeature::SHA), IsaClass::OtherExtension);
    }

    #[test]
    fn a_level_allows_exactly_its_features() {
        let generic = level("generic", &["sse", "sse2"]);
        assert!(generic.allows(CpuidFeature::SSE2));
        assert!(generic.allows(CpuidFeature::CMOV), "architectural");
        assert!(!generic.allows(CpuidFeature::SSSE3));
        let v4 = level("x86-64-v4", &["avx2", "avx512f", "avx512vl", "popcnt"]);
        assert!(v4.allows(CpuidFeature::AVX512F));
        assert!(v4.allows(CpuidFeature::AVX512VL));
        assert!(
            !v4.allows(CpuidFeature::AVX512_VNNI),
            "not enabled by the cfg"
        );
        assert!(!v4.allows(CpuidFeature::SSE4A));
        assert!(
            !v4.allows(CpuidFeature::RDTSCP),
            "no rustc feature: never a level"
        );
    }

    #[test]
    fn top_class_follows_the_features() {
        assert_eq!(level("generic", &["sse2"]).top_class(), IsaClass::Baseline);
        assert_eq!(level("v2", &["sse4.2", "popcnt"]).top_class(), IsaClass::V2);
        assert_eq!(level("v3", &["avx2", "sse4.2"]).top_class(), IsaClass::V3);
        assert_eq!(
            level("znver4", &["avx2", "avx512f", "sse4a"]).top_class(),
            IsaClass::Avx512
        );
    }

    #[test]
    fn rustc_knows_every_mapped_feature_name() {
        // The names must be the compiler's, or a level silently loses a feature.
        let out = std::process::Command::new("rustc")
            .args([
                "--print",
                "target-features",
                "--target",
                "x86_64-unknown-linux-gnu",
            ])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        let known: BTreeSet<&str> = listing
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        let mut unknown = Vec::new();
        for feature in CpuidFeature::values() {
            if let Some(name) = rustc_feature(feature)
                && !known.contains(name)
            {
                unknown.push(name);
            }
        }
        assert!(unknown.is_empty(), "rustc does not know {unknown:?}");
    }
}

//! CPU features as the audit sees them: iced-x86's CPUID feature of each x86-64 instruction
//! (or the rustc feature of an aarch64 one, [`super::program::aarch64`]), the rustc
//! `target_feature` name it corresponds to, and the [`Level`] one variant may use without
//! runtime dispatch, derived from what rustc enables for the variant's `target-cpu`.

use std::collections::BTreeSet;
use std::fmt;

use iced_x86::{CpuidFeature, Mnemonic};
use serde::{Deserialize, Serialize};

/// One CPU feature an instruction needs: iced's CPUID feature on x86-64; on aarch64 the rustc
/// `target_feature` name itself (`lse`, `aes`, `sve`), which is how the aarch64 decoder names
/// extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    X86(CpuidFeature),
    Aarch64(&'static str),
}

impl From<CpuidFeature> for Feature {
    fn from(feature: CpuidFeature) -> Feature {
        Feature::X86(feature)
    }
}

/// The features one instruction needs, as its decoder lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureList {
    X86(&'static [CpuidFeature]),
    Aarch64(&'static [&'static str]),
}

impl FeatureList {
    pub fn iter(self) -> impl Iterator<Item = Feature> {
        let (x86, aarch64) = match self {
            FeatureList::X86(list) => (list, &[][..]),
            FeatureList::Aarch64(list) => (&[][..], list),
        };
        x86.iter()
            .map(|&f| Feature::X86(f))
            .chain(aarch64.iter().map(|&f| Feature::Aarch64(f)))
    }
}

/// The instruction set an artifact is audited as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Arch {
    #[default]
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture of a target triple, if the audit decodes it.
    pub fn of_target(target: &str) -> Option<Arch> {
        match target.split('-').next() {
            Some("x86_64") => Some(Arch::X86_64),
            Some("aarch64") => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

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

/// The class of one feature (aarch64 has no psABI levels: every extension beyond the
/// architecture's baseline is `OtherExtension`).
pub fn classify(feature: impl Into<Feature>) -> IsaClass {
    use CpuidFeature as F;
    let feature = match feature.into() {
        Feature::X86(feature) => feature,
        Feature::Aarch64(_) => return IsaClass::OtherExtension,
    };
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
/// of them as target features). The aarch64 decoder lists no baseline features at all.
pub fn is_architectural(feature: impl Into<Feature>) -> bool {
    use CpuidFeature as F;
    let Feature::X86(feature) = feature.into() else {
        return false;
    };
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

/// Name used in reports: iced's feature name (`AVX512F`, `AVX2`, `SSE4_2`), the rustc name
/// in capitals on aarch64 (`LSE`, `SHA2`).
pub fn feature_name(feature: impl Into<Feature>) -> String {
    match feature.into() {
        Feature::X86(feature) => format!("{feature:?}"),
        Feature::Aarch64(name) => name.to_uppercase(),
    }
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
    pub arch: Arch,
    pub target_cpu: String,
    /// rustc `target_feature` names.
    pub rustc_features: BTreeSet<String>,
}

impl Level {
    /// An x86-64 level.
    pub fn new(target_cpu: &str, rustc_features: BTreeSet<String>) -> Level {
        Level::of_arch(Arch::X86_64, target_cpu, rustc_features)
    }

    pub fn of_arch(arch: Arch, target_cpu: &str, rustc_features: BTreeSet<String>) -> Level {
        Level {
            arch,
            target_cpu: target_cpu.to_owned(),
            rustc_features,
        }
    }

    /// Whether code of this level may execute instructions needing `feature`.
    pub fn allows(&self, feature: impl Into<Feature>) -> bool {
        match feature.into() {
            Feature::X86(feature) => {
                self.arch == Arch::X86_64
                    && (is_architectural(feature)
                        || rustc_feature(feature)
                            .is_some_and(|name| self.rustc_features.contains(name)))
            }
            Feature::Aarch64(name) => {
                self.arch == Arch::Aarch64 && self.rustc_features.contains(name)
            }
        }
    }

    /// The highest psABI class among the level's features (`Baseline` for generic,
    /// `Avx512` for znver4 and x86-64-v4): what a build for it should visibly contain.
    /// aarch64 has no such levels: `Baseline`.
    pub fn top_class(&self) -> IsaClass {
        if self.arch != Arch::X86_64 {
            return IsaClass::Baseline;
        }
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
pub(crate) mod tests {
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

    /// Every `target_feature` name rustc knows for `target`.
    pub fn rustc_feature_names(target: &str) -> BTreeSet<String> {
        let out = std::process::Command::new("rustc")
            .args(["--print", "target-features", "--target", target])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| Some(line.split_whitespace().next()?.to_owned()))
            .collect()
    }

    #[test]
    fn rustc_knows_every_mapped_feature_name() {
        // The names must be the compiler's, or a level silently loses a feature.
        let known = rustc_feature_names("x86_64-unknown-linux-gnu");
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

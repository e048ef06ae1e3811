//! Instruction-set audit of ELF artifacts: decodes every function with iced-x86 and counts
//! instructions by the CPUID feature they need, then applies the variant rules.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use iced_x86::{CpuidFeature, Decoder, DecoderOptions, Instruction, Mnemonic};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use serde::{Deserialize, Serialize};

/// Broad instruction-set classes, as reported per artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsaClass {
    /// Runs on every x86-64 CPU (x86-64-v1: SSE2, CMOV, ...).
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
    pub fn beyond_baseline(self) -> bool {
        self != IsaClass::Baseline
    }
}

/// The class of one CPUID feature.
pub fn classify(feature: CpuidFeature) -> IsaClass {
    use CpuidFeature as F;
    let name = format!("{feature:?}");
    if name.starts_with("AVX512") {
        return IsaClass::Avx512;
    }
    match feature {
        F::INTEL8086 | F::INTEL186 | F::INTEL286 | F::INTEL386 | F::INTEL486 | F::X64
        | F::CMOV | F::CX8 | F::FPU | F::FPU287 | F::FPU387 | F::MMX | F::FXSR | F::SSE
        | F::SSE2 | F::SYSCALL | F::TSC | F::MULTIBYTENOP | F::PAUSE | F::CLFSH | F::SEP
        // `cpuid` itself is how runtime feature detection starts.
        | F::CPUID => IsaClass::Baseline,
        F::SSE3 | F::SSSE3 | F::SSE4_1 | F::SSE4_2 | F::POPCNT | F::CMPXCHG16B => IsaClass::V2,
        F::AVX | F::AVX2 | F::FMA | F::BMI1 | F::BMI2 | F::F16C | F::LZCNT | F::MOVBE => {
            IsaClass::V3
        }
        _ => IsaClass::OtherExtension,
    }
}

/// Name used in reports: iced's feature name (`AVX512F`, `AVX2`, `SSE4_2`).
pub fn feature_name(feature: CpuidFeature) -> String {
    format!("{feature:?}")
}

/// Instruction counts of one function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionIsa {
    /// Demangled, without the hash suffix.
    pub name: String,
    pub instructions: u64,
    /// Instructions needing each beyond-baseline feature.
    pub features: BTreeMap<String, u64>,
    /// Instructions per class (an instruction needing several features counts once, in its
    /// highest class).
    pub classes: BTreeMap<IsaClass, u64>,
}

impl FunctionIsa {
    pub fn count(&self, class: IsaClass) -> u64 {
        self.classes.get(&class).copied().unwrap_or(0)
    }
}

/// Decodes `bytes` (code at address `ip`) and counts instructions by feature.
pub fn audit_code(name: &str, bytes: &[u8], ip: u64) -> FunctionIsa {
    let mut result = FunctionIsa {
        name: name.to_owned(),
        ..FunctionIsa::default()
    };
    let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        if instruction.is_invalid() {
            // Data or padding inside .text (jump tables, alignment) decodes as garbage;
            // it executes nowhere, so it does not count.
            continue;
        }
        result.instructions += 1;
        if runs_on_baseline(instruction.mnemonic()) {
            *result.classes.entry(IsaClass::Baseline).or_default() += 1;
            continue;
        }
        let mut highest = IsaClass::Baseline;
        for &feature in instruction.cpuid_features() {
            let class = classify(feature);
            if class.beyond_baseline() {
                *result.features.entry(feature_name(feature)).or_default() += 1;
            }
            highest = highest.max(class);
        }
        *result.classes.entry(highest).or_default() += 1;
    }
    result
}

/// Instructions iced attributes to an extension whose encoding older CPUs execute as a
/// baseline instruction, which is why LLVM emits them in generic builds.
fn runs_on_baseline(mnemonic: Mnemonic) -> bool {
    matches!(
        mnemonic,
        // `tzcnt` is `rep bsf`: the same result for every non-zero input, and LLVM only
        // emits it where a zero input is handled (or undefined) either way.
        Mnemonic::Tzcnt
        // `endbr64` (CET) is a multi-byte NOP without CET.
        | Mnemonic::Endbr64 | Mnemonic::Endbr32
    )
}

/// Per-function instruction counts of an ELF file. Needs the symbol table (audit before
/// stripping); code not covered by any function symbol is reported as `<no symbol>`.
pub fn audit_elf(data: &[u8]) -> Result<Vec<FunctionIsa>> {
    let file = object::File::parse(data).context("not an ELF/object file object can read")?;
    if file.architecture() != object::Architecture::X86_64 {
        bail!(
            "instruction audit supports x86_64 only, this file is {:?}",
            file.architecture()
        );
    }
    // Function symbols per section, deduplicated by address (aliases share code).
    let mut by_address: BTreeMap<(usize, u64), (String, u64)> = BTreeMap::new();
    for symbol in file.symbols() {
        if symbol.kind() != SymbolKind::Text || symbol.size() == 0 {
            continue;
        }
        let Some(section) = symbol.section_index() else {
            continue;
        };
        let Ok(raw) = symbol.name() else { continue };
        let name = demangle(raw);
        by_address
            .entry((section.0, symbol.address()))
            .and_modify(|existing| {
                if name.len() < existing.0.len() {
                    existing.0 = name.clone();
                }
            })
            .or_insert((name, symbol.size()));
    }
    if by_address.is_empty() {
        bail!("the file has no function symbols; audit the unstripped copy");
    }

    let mut functions: BTreeMap<String, FunctionIsa> = BTreeMap::new();
    let mut merge = |isa: FunctionIsa| {
        let entry = functions
            .entry(isa.name.clone())
            .or_insert_with(|| FunctionIsa {
                name: isa.name.clone(),
                ..FunctionIsa::default()
            });
        entry.instructions += isa.instructions;
        for (feature, count) in isa.features {
            *entry.features.entry(feature).or_default() += count;
        }
        for (class, count) in isa.classes {
            *entry.classes.entry(class).or_default() += count;
        }
    };
    for section in file.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        let data = section.data().context("reading a code section")?;
        let start = section.address();
        let end = start + data.len() as u64;
        let mut covered_until = start;
        let symbols = by_address.range((section.index().0, start)..(section.index().0, end));
        for (&(_, address), (name, size)) in symbols {
            let function_end = (address + size).min(end);
            if address > covered_until {
                let gap = &data[(covered_until - start) as usize..(address - start) as usize];
                merge(audit_code("<no symbol>", gap, covered_until));
            }
            if address < covered_until {
                // Overlapping symbols: the overlap was already counted.
                if function_end <= covered_until {
                    continue;
                }
            }
            let from = address.max(covered_until);
            let bytes = &data[(from - start) as usize..(function_end - start) as usize];
            merge(audit_code(name, bytes, from));
            covered_until = function_end;
        }
        if covered_until < end {
            let gap = &data[(covered_until - start) as usize..];
            merge(audit_code("<no symbol>", gap, covered_until));
        }
    }
    Ok(functions.into_values().collect())
}

/// `memchr::arch::x86_64::avx2::memchr::One::find_raw` (no hash) for Rust symbols, the raw
/// name otherwise.
pub fn demangle(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

/// A function allowed to use instructions beyond a generic build's baseline, because it is
/// only ever called after runtime CPU feature detection confirmed support.
#[derive(Debug, Clone, Copy)]
pub struct AllowRule {
    /// Matches demangled names that start with this, or contain it after `<` (trait impls).
    pub prefix: &'static str,
    pub why: &'static str,
}

/// Runtime-dispatched code of dependencies and the standard library. Every entry must be
/// code that is reached only through `is_x86_feature_detected!`/`cpufeatures`-style checks;
/// adding statically enabled code here would hide exactly the leak the audit exists to find.
pub const GENERIC_ALLOW_LIST: &[AllowRule] = &[
    AllowRule {
        prefix: "memchr::arch::x86_64::avx2::",
        why: "memchr selects its AVX2 routines at runtime (memchr::arch::x86_64::memchr dispatch)",
    },
    AllowRule {
        prefix: "memchr::arch::x86_64::sse2::",
        why: "memchr's SSE2 routines; SSE2 is baseline, listed for symmetry with the AVX2 ones",
    },
    AllowRule {
        prefix: "memchr::arch::x86_64::memchr::",
        why: "memchr's dispatch module: its find_avx2 wrappers carry #[target_feature(enable = \"avx2\")] and are chosen only after is_x86_feature_detected!",
    },
    AllowRule {
        prefix: "memchr::arch::generic::",
        why: "memchr's generic vector code, instantiated for the runtime-selected AVX2 vector type",
    },
    AllowRule {
        prefix: "httparse::simd::avx2::",
        why: "httparse's AVX2 parser, selected at runtime by httparse::simd's is_x86_feature_detected! cache",
    },
    AllowRule {
        prefix: "httparse::simd::sse42::",
        why: "httparse's SSE4.2 parser, selected at runtime by httparse::simd's is_x86_feature_detected! cache",
    },
    AllowRule {
        prefix: "std_detect::",
        why: "the standard library's CPU feature detection itself (cpuid/xgetbv)",
    },
    AllowRule {
        prefix: "core::core_arch::x86::xsave::_xgetbv",
        why: "xgetbv, called by std_detect only after cpuid reported OSXSAVE",
    },
    AllowRule {
        prefix: "sha2::sha256::x86_sha::",
        why: "sha2's SHA-NI backend, selected through cpufeatures runtime detection",
    },
    AllowRule {
        prefix: "sha2::sha512::x86_avx2::",
        why: "sha2's AVX2 backend, selected through cpufeatures runtime detection",
    },
    AllowRule {
        prefix: "std::sys::random::",
        why: "the standard library's random source probes RDRAND/RDSEED at runtime",
    },
];

/// The allow-list rule covering `function`, if any.
pub fn allowed_by(function: &str, rules: &'static [AllowRule]) -> Option<&'static AllowRule> {
    rules.iter().find(|rule| {
        function.starts_with(rule.prefix)
            || function.contains(&format!("<{}", rule.prefix))
            || function.contains(&format!(" {}", rule.prefix))
    })
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub function: String,
    pub features: BTreeMap<String, u64>,
}

/// Functions of a generic artifact that use AVX-512 without being on the allow-list.
/// Functions using other beyond-baseline features off the list are returned separately,
/// as warnings (see `generic_warnings`).
pub fn generic_violations(functions: &[FunctionIsa]) -> Vec<Violation> {
    functions
        .iter()
        .filter(|f| f.count(IsaClass::Avx512) > 0)
        .filter(|f| allowed_by(&f.name, GENERIC_ALLOW_LIST).is_none())
        .map(|f| Violation {
            function: f.name.clone(),
            features: f.features.clone(),
        })
        .collect()
}

/// Functions of a generic artifact using x86-64-v2/v3 or other extensions (not AVX-512)
/// without being on the allow-list.
pub fn generic_warnings(functions: &[FunctionIsa]) -> Vec<Violation> {
    functions
        .iter()
        .filter(|f| f.count(IsaClass::Avx512) == 0)
        .filter(|f| {
            f.count(IsaClass::V2) + f.count(IsaClass::V3) + f.count(IsaClass::OtherExtension) > 0
        })
        .filter(|f| allowed_by(&f.name, GENERIC_ALLOW_LIST).is_none())
        .map(|f| Violation {
            function: f.name.clone(),
            features: f.features.clone(),
        })
        .collect()
}

/// Whether `function` belongs to one of our crates (`crate_idents` are underscored names).
pub fn is_own_function(function: &str, crate_idents: &[String]) -> bool {
    crate_idents.iter().any(|ident| {
        let path = format!("{ident}::");
        function.starts_with(&path) || function.starts_with(&format!("<{path}"))
    })
}

/// AVX-512 instructions in our own crates' functions.
pub fn own_avx512(functions: &[FunctionIsa], crate_idents: &[String]) -> u64 {
    functions
        .iter()
        .filter(|f| is_own_function(&f.name, crate_idents))
        .map(|f| f.count(IsaClass::Avx512))
        .sum()
}

/// Totals over all functions, per beyond-baseline feature and per class.
pub fn totals(functions: &[FunctionIsa]) -> FunctionIsa {
    let mut total = FunctionIsa {
        name: "<all>".into(),
        ..FunctionIsa::default()
    };
    for function in functions {
        total.instructions += function.instructions;
        for (feature, count) in &function.features {
            *total.features.entry(feature.clone()).or_default() += count;
        }
        for (class, count) in &function.classes {
            *total.classes.entry(*class).or_default() += count;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known encodings.
    const ADD_RAX_RBX: &[u8] = &[0x48, 0x01, 0xd8]; // add rax, rbx
    const PADDD_XMM: &[u8] = &[0x66, 0x0f, 0xfe, 0xc1]; // paddd xmm0, xmm1 (SSE2)
    const PSHUFB_XMM: &[u8] = &[0x66, 0x0f, 0x38, 0x00, 0xc1]; // pshufb xmm0, xmm1 (SSSE3)
    const VPADDD_YMM: &[u8] = &[0xc5, 0xf5, 0xfe, 0xc2]; // vpaddd ymm0, ymm1, ymm2 (AVX2)
    const VPADDD_ZMM: &[u8] = &[0x62, 0xf1, 0x75, 0x48, 0xfe, 0xc2]; // vpaddd zmm0, zmm1, zmm2 (AVX512F)
    const VFMADD_YMM: &[u8] = &[0xc4, 0xe2, 0x75, 0xb8, 0xc2]; // vfmadd231ps ymm0, ymm1, ymm2 (FMA)
    const RET: &[u8] = &[0xc3];

    fn code(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn classifies_known_instruction_bytes() {
        let isa = audit_code(
            "f",
            &code(&[
                ADD_RAX_RBX,
                PADDD_XMM,
                PSHUFB_XMM,
                VPADDD_YMM,
                VFMADD_YMM,
                VPADDD_ZMM,
                RET,
            ]),
            0x1000,
        );
        assert_eq!(isa.instructions, 7);
        assert_eq!(isa.count(IsaClass::Baseline), 3, "{isa:?}");
        assert_eq!(isa.count(IsaClass::V2), 1, "{isa:?}");
        assert_eq!(isa.count(IsaClass::V3), 2, "{isa:?}");
        assert_eq!(isa.count(IsaClass::Avx512), 1, "{isa:?}");
        assert_eq!(isa.features.get("SSSE3"), Some(&1));
        assert_eq!(isa.features.get("AVX2"), Some(&1));
        assert_eq!(isa.features.get("FMA"), Some(&1));
        assert_eq!(isa.features.get("AVX512F"), Some(&1));
        assert!(
            !isa.features.contains_key("SSE2"),
            "baseline is not listed: {isa:?}"
        );
    }

    #[test]
    fn tzcnt_and_endbr64_count_as_baseline() {
        const TZCNT: &[u8] = &[0xf3, 0x48, 0x0f, 0xbc, 0xc1]; // tzcnt rax, rcx (rep bsf)
        const LZCNT: &[u8] = &[0xf3, 0x48, 0x0f, 0xbd, 0xc1]; // lzcnt rax, rcx (differs from bsr)
        const ENDBR64: &[u8] = &[0xf3, 0x0f, 0x1e, 0xfa];
        let isa = audit_code("f", &code(&[TZCNT, ENDBR64, LZCNT]), 0);
        assert_eq!(isa.count(IsaClass::Baseline), 2, "{isa:?}");
        assert_eq!(isa.count(IsaClass::V3), 1, "{isa:?}");
        assert_eq!(isa.features.keys().collect::<Vec<_>>(), ["LZCNT"]);
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
    fn allow_list_covers_dispatched_routines_only() {
        let rule = allowed_by(
            "memchr::arch::x86_64::avx2::memchr::One::find_raw",
            GENERIC_ALLOW_LIST,
        );
        assert!(rule.is_some_and(|r| r.why.contains("runtime")));
        assert!(
            allowed_by(
                "<memchr::arch::x86_64::avx2::memchr::One as core::fmt::Debug>::fmt",
                GENERIC_ALLOW_LIST
            )
            .is_some()
        );
        assert!(allowed_by("mcp_rust_core::kernels::dot", GENERIC_ALLOW_LIST).is_none());
        // A name merely mentioning memchr elsewhere is not covered.
        assert!(
            allowed_by(
                "my_crate::memchr::arch::x86_64::avx2::x",
                GENERIC_ALLOW_LIST
            )
            .is_none()
        );
    }

    fn function(name: &str, bytes: &[u8]) -> FunctionIsa {
        audit_code(name, bytes, 0)
    }

    #[test]
    fn avx512_in_a_generic_build_fails_unless_dispatched() {
        let leaked = function("mcp_rust_core::kernels::top_k", &code(&[VPADDD_ZMM, RET]));
        let dispatched = function(
            "memchr::arch::x86_64::avx2::memchr::One::find_raw",
            &code(&[VPADDD_ZMM, RET]),
        );
        let clean = function("bash_god::parse", &code(&[ADD_RAX_RBX, PADDD_XMM, RET]));
        let violations = generic_violations(&[leaked, dispatched, clean.clone()]);
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].function, "mcp_rust_core::kernels::top_k");
        assert_eq!(violations[0].features.get("AVX512F"), Some(&1));
        assert!(generic_violations(&[clean]).is_empty());
    }

    #[test]
    fn avx2_outside_the_allow_list_is_a_warning() {
        let haswell = function("mcp_rust_core::kernels::dot", &code(&[VPADDD_YMM, RET]));
        assert!(generic_violations(std::slice::from_ref(&haswell)).is_empty());
        assert_eq!(generic_warnings(&[haswell]).len(), 1);
    }

    #[test]
    fn own_functions_include_trait_impls() {
        let idents = vec!["mcp_rust_core".to_owned(), "bash_god".to_owned()];
        assert!(is_own_function(
            "mcp_rust_core::store::Store::top_k",
            &idents
        ));
        assert!(is_own_function(
            "<mcp_rust_core::store::Store as core::ops::Drop>::drop",
            &idents
        ));
        assert!(!is_own_function(
            "core::ptr::drop_in_place<mcp_rust_core::store::Store>",
            &idents
        ));
        let functions = [
            function(
                "mcp_rust_core::kernels::dot",
                &code(&[VPADDD_ZMM, VPADDD_ZMM]),
            ),
            function("serde::x", &code(&[VPADDD_ZMM])),
        ];
        assert_eq!(own_avx512(&functions, &idents), 2);
        assert_eq!(totals(&functions).count(IsaClass::Avx512), 3);
    }

    #[test]
    fn demangles_legacy_rust_symbols_without_hash() {
        assert_eq!(
            demangle("_ZN6memchr4arch6x86_644avx26memchr3One8find_raw17h0123456789abcdefE"),
            "memchr::arch::x86_64::avx2::memchr::One::find_raw"
        );
        assert_eq!(demangle("PyInit_mcp_rust_core"), "PyInit_mcp_rust_core");
    }

    #[test]
    fn rejects_files_that_are_not_elf() {
        assert!(audit_elf(b"definitely not an ELF file").is_err());
    }
}

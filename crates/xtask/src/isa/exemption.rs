//! Crates that dispatch at run time in a way the disassembly cannot prove, reviewed one by
//! one: *type-state* dispatch, where a constructor runs the CPU check and stores its
//! result in an ordinary object (an enum in the hasher), and later calls branch on that
//! field. The taint analysis does not follow values through heap or stack objects, so the
//! kernel call looks unconditional.
//!
//! An exemption names the crate and its mechanism (as read in the crate's source), and
//! applies to an artifact only when the artifact contains that crate's detection code: a
//! function that reads CPU detection state and either belongs to the crate or calls (or
//! takes the address of) one of the crate's functions — where the crate's `#[inline]`
//! constructor ended up after inlining. Without it the crate's beyond-level code fails
//! like any other. Accepted code is reported as a warning: it rests on review, not proof.

use std::collections::{BTreeMap, BTreeSet};

use super::dispatch::Dispatch;
use super::features::Arch;
use super::program::{Program, crate_of};

/// One reviewed crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrateDispatch {
    /// Crate name as in symbols (underscores).
    pub crate_name: &'static str,
    /// How it selects code at run time, for the report.
    pub mechanism: &'static str,
}

/// The reviewed crates. Add one only after reading how the crate checks the CPU: the
/// exemption hides undispatched code in that crate.
pub const TYPE_STATE_DISPATCH: &[CrateDispatch] = &[
    CrateDispatch {
        crate_name: "crc32fast",
        mechanism: "State::new runs is_x86_feature_detected! (pclmulqdq, sse4.1, ssse3; \
                    avx2/avx512f + vpclmulqdq for the wide kernels) and stores the chosen Kind \
                    in the Hasher; update() calls only the kernel of that Kind",
    },
    CrateDispatch {
        crate_name: "sha1dc",
        mechanism: "Backend::new runs is_x86_feature_detected! (sha, sse2, ssse3, sse4.1; avx) \
                    and stores Repr::ShaNi only when they are present; compress_spill and \
                    recompress match on the stored Repr",
    },
    CrateDispatch {
        crate_name: "ring",
        mechanism: "cpu::features() runs OPENSSL_cpuid_setup once (cpuid/xgetbv into \
                    OPENSSL_ia32cap_P); keys and contexts store the implementation chosen from \
                    those features (aes::Key's hw/vpaes/nohw, the GCM and ChaCha20 variants) and \
                    the perlasm routines test OPENSSL_ia32cap_P bits before their \
                    AVX2/ADX/BMI2/VAES/SHA paths; local assembly labels count as ring's when \
                    only ring's functions reference them",
    },
];

/// The same review for aarch64 builds, where the crates detect with `getauxval` (directly or
/// through `is_aarch64_feature_detected!`).
pub const TYPE_STATE_DISPATCH_AARCH64: &[CrateDispatch] = &[
    CrateDispatch {
        crate_name: "crc32fast",
        mechanism: "State::new runs is_aarch64_feature_detected!(\"crc\") and returns a State \
                    only when it is present; update() calls specialized::aarch64::calculate only \
                    through such a State",
    },
    CrateDispatch {
        crate_name: "sha1dc",
        mechanism: "Backend::new runs is_aarch64_feature_detected!(\"sha2\") and stores \
                    Repr::Armv8 only when it is present; compress_spill and recompress match on \
                    the stored Repr",
    },
    CrateDispatch {
        crate_name: "ring",
        mechanism: "cpu::features() runs detect_features once (getauxval(AT_HWCAP): the AES, \
                    PMULL, SHA2 and SHA512 bits, kept in OPENSSL_armcap_P); keys and contexts \
                    store the implementation chosen from those features (aes::Key's hw/vpaes/nohw, \
                    the GCM clmul/neon/fallback variants) and the SHA-2 block functions take the \
                    _hw routines only when the bit is set",
    },
    CrateDispatch {
        crate_name: "libunwind",
        mechanism: "LLVM libunwind's cursor init stores getauxval(AT_HWCAP2) & HWCAP2_SME in the \
                    cursor, and jumpto() calls __libunwind_Registers_arm64_za_disable (SME: \
                    TPIDR2_EL0, ZA stores, smstop) only when that field is set",
    },
];

/// Code that runs only while unwinding a frame whose CIE has an augmentation letter: proven
/// absent when the artifact's `.eh_frame` has no such CIE ([`super::eh_frame`]), instead of
/// taken on detection evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnwindGated {
    /// Crate name as in symbols.
    pub crate_name: &'static str,
    /// Part of the function's (possibly C++-mangled) name.
    pub function: &'static str,
    /// The one beyond-level feature the gate covers, as [`super::feature_name`] spells it.
    pub feature: &'static str,
    /// The CIE augmentation letter that opens the gate.
    pub augmentation: char,
    /// Why the letter gates the code, as read in the source, for the report.
    pub mechanism: &'static str,
}

/// The reviewed gates.
pub const UNWIND_GATED: &[UnwindGated] = &[UnwindGated {
    crate_name: "libunwind",
    function: "stepWithDwarf",
    feature: "MTE",
    augmentation: 'G',
    mechanism: "LLVM libunwind's DwarfInstructions::stepWithDwarf runs its MTE stg re-tagging \
                only `if (stage2 && cieInfo.mteTaggedFrame)`, and parseCIE sets mteTaggedFrame \
                only for the 'G' augmentation; stage 2 unwinds the frames between a panic and the \
                catch_unwind that stops it, all in the artifact's own code, since this \
                libunwind is linked in privately (not exported)",
}];

/// The gate of `function` in `crate_name` that covers one of its undispatched features.
pub fn unwind_gate(
    crate_name: &str,
    function: &str,
    undispatched: &BTreeMap<String, u64>,
) -> Option<&'static UnwindGated> {
    UNWIND_GATED.iter().find(|gate| {
        gate.crate_name == crate_name
            && function.contains(gate.function)
            && undispatched.contains_key(gate.feature)
    })
}

/// The reviewed crates of an architecture.
pub fn for_arch(arch: Arch) -> &'static [CrateDispatch] {
    match arch {
        Arch::X86_64 => TYPE_STATE_DISPATCH,
        Arch::Aarch64 => TYPE_STATE_DISPATCH_AARCH64,
    }
}

/// The function showing `crate_name`'s detection code, if the artifact has one.
pub fn detection_evidence(
    program: &Program,
    dispatch: &Dispatch,
    crate_name: &str,
) -> Option<String> {
    let crate_functions: BTreeSet<u64> = program
        .functions
        .iter()
        .filter(|f| crate_of(&f.name) == crate_name)
        .map(|f| f.address)
        .collect();
    let detecting = || {
        dispatch
            .detecting_functions
            .iter()
            .map(|&index| &program.functions[index])
    };
    let references_crate = |function: &&super::program::Function| {
        function.references.iter().any(|reference| {
            program
                .function_at(reference.target)
                .is_some_and(|target| crate_functions.contains(&program.functions[target].address))
        })
    };
    // The crate's own function first, then one its inlined constructor landed in.
    detecting()
        .find(|function| crate_of(&function.name) == crate_name)
        .or_else(|| detecting().find(references_crate))
        .map(|function| function.name.clone())
}

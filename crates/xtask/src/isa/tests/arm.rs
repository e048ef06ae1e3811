//! The audit's rules on synthetic aarch64 programs: functions encoded word by word (the
//! encodings are checked against the decoder in `program::aarch64`'s tests), laid out like a
//! static non-PIE executable with one data section, audited against the generic aarch64
//! level. Each test shows a rule accept or reject.

use std::collections::BTreeMap;

use super::super::program::{DataSection, Image};
use super::super::*;

const CODE: u64 = 0x1_0000;
/// Each function gets this much room.
const SLOT: u64 = 0x100;
const DATA: u64 = 0x20_0000;
const CACHE: u64 = DATA;
const LSE_FLAG: u64 = DATA + 0x80;
const OWN_CACHE: u64 = DATA + 0x100;

/// Words of one function, with its start address so branches can be encoded.
struct Function {
    name: &'static str,
    start: u64,
    words: Vec<u32>,
}

impl Function {
    fn pc(&self) -> u64 {
        self.start + 4 * self.words.len() as u64
    }
    fn offset(&self, target: u64) -> u32 {
        ((target as i64 - self.pc() as i64) >> 2) as u32
    }
    /// Address of this function's `index`th instruction (for branches inside it).
    fn at(&self, index: u64) -> u64 {
        self.start + 4 * index
    }
    fn word(&mut self, word: u32) -> &mut Self {
        self.words.push(word);
        self
    }
    fn bl(&mut self, target: u64) -> &mut Self {
        let imm = self.offset(target) & 0x03FF_FFFF;
        self.word(0x9400_0000 | imm)
    }
    fn b(&mut self, target: u64) -> &mut Self {
        let imm = self.offset(target) & 0x03FF_FFFF;
        self.word(0x1400_0000 | imm)
    }
    fn ret(&mut self) -> &mut Self {
        self.word(0xD65F_03C0)
    }
    /// `adrp xd, target` then `ldr xd, [xd, #lo12]` (`byte`: `ldrb wd`).
    fn load_static(&mut self, rd: u32, target: u64, byte: bool) -> &mut Self {
        self.adrp(rd, target);
        let low = (target & 0xFFF) as u32;
        if byte {
            self.word(0x3940_0000 | low << 10 | rd << 5 | rd)
        } else {
            self.word(0xF940_0000 | (low / 8) << 10 | rd << 5 | rd)
        }
    }
    /// `adrp x9, target` then `str xs, [x9, #lo12]`.
    fn store_static(&mut self, rs: u32, target: u64) -> &mut Self {
        self.adrp(9, target);
        let low = (target & 0xFFF) as u32;
        self.word(0xF900_0000 | (low / 8) << 10 | 9 << 5 | rs)
    }
    fn adrp(&mut self, rd: u32, target: u64) -> &mut Self {
        let pages = ((target >> 12) as i64 - (self.pc() >> 12) as i64) as u32;
        self.word(0x9000_0000 | (pages & 3) << 29 | ((pages >> 2) & 0x7FFFF) << 5 | rd)
    }
    /// `cbz xt, target` / `cbnz`.
    fn cbz(&mut self, rt: u32, target: u64, nonzero: bool) -> &mut Self {
        let imm = self.offset(target) & 0x7FFFF;
        self.word(if nonzero { 0xB500_0000 } else { 0xB400_0000 } | imm << 5 | rt)
    }
    /// `tbz xt, #bit, target`.
    fn tbz(&mut self, rt: u32, bit: u32, target: u64) -> &mut Self {
        let imm = self.offset(target) & 0x3FFF;
        self.word(0x3600_0000 | (bit >> 5) << 31 | (bit & 31) << 19 | imm << 5 | rt)
    }
    /// `mov xd, #imm`.
    fn movz(&mut self, rd: u32, imm: u32) -> &mut Self {
        self.word(0xD280_0000 | imm << 5 | rd)
    }
    /// `mov xd, xs`.
    fn mov(&mut self, rd: u32, rs: u32) -> &mut Self {
        self.word(0xAA00_03E0 | rs << 16 | rd)
    }
}

const LDADDAL: u32 = 0xB8E0_0020;
const SVE_ADD: u32 = 0x04A0_0000;
const CRC32X: u32 = 0x9AC1_4C00;
const SHA256H: u32 = 0x5E02_4020;
const ADD_X0_X0_X1: u32 = 0x8B01_0000;
const MRS_X0_ID_AA64ISAR0: u32 = 0xD538_0600;
const STG_X0_X0: u32 = 0xD920_0800;

/// A program under construction: functions in slots, `main` first.
struct Arm {
    functions: Vec<Function>,
    names: Vec<&'static str>,
    /// What the file's `.eh_frame` says (empty: no CIEs).
    eh_frame: eh_frame::EhFrame,
    /// GOT slot → imported function (see `program::plt`).
    imports: BTreeMap<u64, String>,
}

impl Arm {
    /// `names` in layout order; their addresses are known before any code is written.
    fn new(names: &[&'static str]) -> Arm {
        Arm {
            functions: Vec::new(),
            names: names.to_vec(),
            eh_frame: Default::default(),
            imports: BTreeMap::new(),
        }
    }
    fn address(&self, name: &str) -> u64 {
        let index = self.names.iter().position(|n| *n == name).unwrap();
        CODE + SLOT * index as u64
    }
    fn function(&mut self, name: &'static str) -> &mut Function {
        let start = self.address(name);
        self.functions.push(Function {
            name,
            start,
            words: Vec::new(),
        });
        self.functions.last_mut().unwrap()
    }

    fn audit(&self) -> Audit {
        let mut code = vec![0u8; SLOT as usize * self.names.len()];
        let mut symbols = Vec::new();
        for function in &self.functions {
            let at = (function.start - CODE) as usize;
            for (n, word) in function.words.iter().enumerate() {
                code[at + 4 * n..at + 4 * n + 4].copy_from_slice(&word.to_le_bytes());
            }
            symbols.push((
                function.start,
                4 * function.words.len() as u64,
                function.name.to_owned(),
            ));
        }
        let image = Image {
            code: vec![(CODE, &code)],
            function_symbols: symbols,
            data_sections: vec![DataSection {
                name: ".data".into(),
                address: DATA,
                end: DATA + 0x1000,
                called_by_loader: false,
            }],
            data_symbols: vec![
                (CACHE, 16, "std_detect::detect::cache::CACHE".into()),
                (LSE_FLAG, 1, "__aarch64_have_lse_atomics".into()),
                (OWN_CACHE, 8, "own::STORAGE".into()),
            ],
            entry_points: vec![self.address("main")],
            arch: Arch::Aarch64,
            eh_frame: self.eh_frame.clone(),
            imports: self.imports.clone(),
            ..Image::default()
        };
        let program = Program::from_image(image).unwrap();
        assert!(
            program
                .functions
                .iter()
                .all(|f| f.undecodable == 0 || f.name == "<no symbol>")
        );
        let dispatch = dispatch::analyze(&program);
        super::super::audit(
            &program,
            &dispatch,
            &generic(),
            &["own".to_owned()],
            exemption::TYPE_STATE_DISPATCH_AARCH64,
        )
    }
}

/// Rust's `aarch64-unknown-linux-musl` baseline, as rustc prints it.
fn generic() -> Level {
    Level::of_arch(
        Arch::Aarch64,
        "generic",
        crate::cpu::target_features("aarch64-unknown-linux-musl", "generic").unwrap(),
    )
}

fn violations(audit: &Audit) -> Vec<&str> {
    audit.violations().map(|v| v.function.as_str()).collect()
}

fn finding<'a>(audit: &'a Audit, function: &str) -> &'a BeyondLevel {
    audit
        .beyond_level
        .iter()
        .find(|b| b.function == function)
        .unwrap_or_else(|| panic!("no beyond-level finding for {function}: {audit:#?}"))
}

#[test]
fn the_generic_level_is_rusts_armv8_baseline() {
    let level = generic();
    assert!(level.rustc_features.contains("neon"), "{level:?}");
    for beyond in ["lse", "aes", "crc", "sve", "dotprod", "sha2"] {
        assert!(!level.allows(Feature::Aarch64(beyond)), "{beyond}");
    }
    assert_eq!(level.top_class(), IsaClass::Baseline);
}

#[test]
fn a_baseline_only_program_passes() {
    let mut arm = Arm::new(&["main", "own::helper"]);
    let helper = arm.address("own::helper");
    arm.function("main").movz(0, 1).bl(helper).ret();
    arm.function("own::helper").word(ADD_X0_X0_X1).ret();
    let audit = arm.audit();
    assert!(audit.beyond_level.is_empty(), "{audit:#?}");
    // The five instructions and the slots' `udf #0` padding; nothing undecodable.
    assert!(audit.instructions >= 5);
    assert_eq!(audit.undecodable, 0);
}

#[test]
fn lse_called_without_a_check_fails_naming_function_and_crate() {
    let mut arm = Arm::new(&["main", "own::atomic"]);
    let atomic = arm.address("own::atomic");
    arm.function("main").bl(atomic).ret();
    arm.function("own::atomic").word(LDADDAL).ret();
    let audit = arm.audit();
    assert_eq!(violations(&audit), ["own::atomic"]);
    let leak = finding(&audit, "own::atomic");
    assert_eq!(leak.crate_name, "own");
    assert_eq!(leak.undispatched.get("LSE"), Some(&1));
    assert_eq!(leak.evidence, Evidence::Unconditional);
}

#[test]
fn sve_called_without_a_check_fails() {
    let mut arm = Arm::new(&["main", "own::kernel_sve"]);
    let kernel = arm.address("own::kernel_sve");
    arm.function("main").bl(kernel).ret();
    arm.function("own::kernel_sve").word(SVE_ADD).ret();
    let audit = arm.audit();
    assert_eq!(violations(&audit), ["own::kernel_sve"]);
    assert_eq!(
        finding(&audit, "own::kernel_sve").undispatched.get("SVE"),
        Some(&1)
    );
}

/// compiler-rt's `__aarch64_ldadd4_acq`: the LSE instruction only when the flag is set.
fn outline_atomic(arm: &mut Arm, check_flag: bool) {
    let function = arm.function("__aarch64_ldadd4_acq");
    if check_flag {
        function.load_static(16, LSE_FLAG, true);
        let fallback = function.at(5);
        function.cbz(16, fallback, false);
    }
    function.word(LDADDAL).ret();
    // The load/store-exclusive loop every armv8-a runs.
    function.word(0x885F_FC20).ret();
}

#[test]
fn outline_atomics_behind_their_lse_flag_pass() {
    let mut arm = Arm::new(&["main", "__aarch64_ldadd4_acq"]);
    let atomic = arm.address("__aarch64_ldadd4_acq");
    arm.function("main").bl(atomic).ret();
    outline_atomic(&mut arm, true);
    let audit = arm.audit();
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    let lse = finding(&audit, "__aarch64_ldadd4_acq");
    assert_eq!(lse.evidence, Evidence::GuardedInside);
    assert_eq!(lse.crate_name, "compiler_builtins");
    assert_eq!(audit.features["LSE"].dispatched, 1);
    assert!(audit.detection_state.iter().any(|s| s.contains("lse")));
}

#[test]
fn outline_atomics_without_the_check_fail() {
    let mut arm = Arm::new(&["main", "__aarch64_ldadd4_acq"]);
    let atomic = arm.address("__aarch64_ldadd4_acq");
    arm.function("main").bl(atomic).ret();
    outline_atomic(&mut arm, false);
    assert_eq!(violations(&arm.audit()), ["__aarch64_ldadd4_acq"]);
}

/// `main` calls `own::dispatch`: `is_aarch64_feature_detected!("crc")` as std inlines it
/// (load the cache, initialize it when empty, test a bit), then the CRC kernel or the
/// scalar code. `check_first`: the kernel call comes after the check (else before it).
fn std_dispatch(check_first: bool) -> Audit {
    let mut arm = Arm::new(&[
        "main",
        "own::dispatch",
        "own::kernel_crc",
        "own::scalar",
        "std_detect::detect::cache::detect_and_initialize",
    ]);
    let [dispatch, kernel, scalar, detect] = [
        "own::dispatch",
        "own::kernel_crc",
        "own::scalar",
        "std_detect::detect::cache::detect_and_initialize",
    ]
    .map(|name| arm.address(name));
    arm.function("main").bl(dispatch).ret();
    let f = arm.function("own::dispatch");
    if !check_first {
        f.bl(kernel);
    }
    let base = f.words.len() as u64;
    // 0: adrp, 1: ldr, 2: cbz → init (9), 3: tbz → fallback (6), 4: bl kernel, 5: ret,
    // 6: bl scalar, 7: ret, 8: (padding ret), 9: bl detect, 10: mov x8, x0, 11: b check (3)
    f.load_static(8, CACHE, false);
    let (init, check, fallback) = (f.at(base + 9), f.at(base + 3), f.at(base + 6));
    f.cbz(8, init, false);
    f.tbz(8, 5, fallback);
    f.bl(if check_first { kernel } else { scalar });
    f.ret();
    f.bl(scalar).ret().ret();
    f.bl(detect).mov(8, 0).b(check);
    arm.function("own::kernel_crc").word(CRC32X).ret();
    arm.function("own::scalar").word(ADD_X0_X0_X1).ret();
    // The slow path: ask the CPU (here an ID register), fill the cache, return the bits.
    arm.function("std_detect::detect::cache::detect_and_initialize")
        .word(MRS_X0_ID_AA64ISAR0)
        .store_static(0, CACHE)
        .ret();
    arm.audit()
}

#[test]
fn crc_behind_is_aarch64_feature_detected_passes() {
    let audit = std_dispatch(true);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    assert_eq!(
        finding(&audit, "own::kernel_crc").evidence,
        Evidence::Dispatched {
            behind: vec!["own::dispatch".into()]
        }
    );
}

#[test]
fn a_call_before_the_check_is_not_dispatched() {
    let audit = std_dispatch(false);
    assert_eq!(violations(&audit), ["own::kernel_crc"]);
}

/// cpufeatures-style: `own::init` stores `getauxval(argument)` in a static; `main` tests a
/// bit of it before calling the SHA-2 kernel.
fn auxv_cache(argument: u32) -> Audit {
    let mut arm = Arm::new(&["main", "own::init", "own::kernel_sha", "getauxval"]);
    let [init, kernel, getauxval] =
        ["own::init", "own::kernel_sha", "getauxval"].map(|name| arm.address(name));
    let f = arm.function("main");
    f.bl(init).load_static(9, OWN_CACHE, false);
    let skip = f.at(5);
    f.tbz(9, 6, skip).bl(kernel).ret();
    arm.function("own::init")
        .movz(0, argument)
        .bl(getauxval)
        .store_static(0, OWN_CACHE)
        .ret();
    arm.function("own::kernel_sha").word(SHA256H).ret();
    // musl's getauxval walks the auxiliary vector; its body does not matter here.
    arm.function("getauxval").word(ADD_X0_X0_X1).ret();
    arm.audit()
}

#[test]
fn a_crates_own_getauxval_hwcap_cache_is_found_and_trusted() {
    assert_sha_dispatched_behind_own_cache(&auxv_cache(16));
}

/// No violation: `own::STORAGE` is detection state, and the SHA-2 kernel runs behind it.
fn assert_sha_dispatched_behind_own_cache(audit: &Audit) {
    assert!(violations(audit).is_empty(), "{audit:#?}");
    assert!(
        audit.detection_state.iter().any(|s| s == "own::STORAGE"),
        "{:?}",
        audit.detection_state
    );
    assert!(matches!(
        finding(audit, "own::kernel_sha").evidence,
        Evidence::Dispatched { .. }
    ));
}

#[test]
fn getauxval_of_something_else_is_not_a_cpu_check() {
    // AT_PAGESZ (6): a branch on the page size proves nothing about SHA-2.
    let audit = auxv_cache(6);
    assert_eq!(violations(&audit), ["own::kernel_sha"]);
}

#[test]
fn a_type_state_crate_passes_only_with_its_detection_code() {
    // crc32fast: `State::new` checks, `update` calls the kernel through the stored State.
    let build = |with_detection: bool| {
        let mut arm = Arm::new(&[
            "main",
            "crc32fast::State::new",
            "crc32fast::specialized::aarch64::calculate",
            "std_detect::detect::cache::detect_and_initialize",
        ]);
        let [new, kernel] = [
            "crc32fast::State::new",
            "crc32fast::specialized::aarch64::calculate",
        ]
        .map(|name| arm.address(name));
        arm.function("main").bl(new).bl(kernel).ret();
        let f = arm.function("crc32fast::State::new");
        if with_detection {
            f.load_static(8, CACHE, false).mov(0, 8);
        }
        f.ret();
        arm.function("crc32fast::specialized::aarch64::calculate")
            .word(CRC32X)
            .ret();
        arm.function("std_detect::detect::cache::detect_and_initialize")
            .ret();
        arm.audit()
    };
    let with = build(true);
    assert!(violations(&with).is_empty(), "{with:#?}");
    assert!(matches!(
        finding(&with, "crc32fast::specialized::aarch64::calculate").evidence,
        Evidence::CrateExemption { .. }
    ));
    let without = build(false);
    assert_eq!(
        violations(&without),
        ["crc32fast::specialized::aarch64::calculate"]
    );
}

/// LLVM libunwind's MTE `stg` in stepWithDwarf runs only for frames whose CIE has the 'G'
/// augmentation: accepted when `.eh_frame` has no such CIE, failed when it has one, even
/// where libunwind's SME detection code would accept the crate's other code.
#[test]
fn unwinder_mte_code_passes_only_without_mte_tagged_frames() {
    const STEP: &str = "_ZN9libunwind17DwarfInstructionsINS_17LocalAddressSpaceENS_15Registers_arm64EE13stepWithDwarfERS1_mmRS2_Rbb";
    const INIT: &str =
        "_ZN9libunwind12UnwindCursorINS_17LocalAddressSpaceENS_15Registers_arm64EE6initEv";
    let tagged = eh_frame::EhFrame {
        augmentations: [("zR".to_owned(), 1), ("zRG".to_owned(), 1)].into(),
        fdes: 2,
        terminators: 0,
    };
    let plain = eh_frame::EhFrame {
        augmentations: [("zR".to_owned(), 2)].into(),
        fdes: 2,
        terminators: 0,
    };
    // `sve`: the step also holds SVE code only the detection evidence can accept.
    let build = |eh_frame: &eh_frame::EhFrame, sve: bool, detection: bool| {
        let mut arm = Arm::new(&["main", STEP, INIT]);
        arm.eh_frame = eh_frame.clone();
        let [step, init] = [STEP, INIT].map(|name| arm.address(name));
        arm.function("main").bl(init).bl(step).ret();
        let f = arm.function(STEP);
        f.word(STG_X0_X0);
        if sve {
            f.word(SVE_ADD);
        }
        f.ret();
        let f = arm.function(INIT);
        if detection {
            f.load_static(8, CACHE, false).mov(0, 8);
        }
        f.ret();
        arm.audit()
    };

    let audit = build(&plain, false, false);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    assert!(matches!(
        &finding(&audit, STEP).evidence,
        Evidence::NoGatingFrames { augmentation: 'G', eh_frame, .. } if eh_frame.contains("2 CIE(s)")
    ));

    let audit = build(&tagged, false, true);
    assert_eq!(violations(&audit), [STEP]);
    assert!(matches!(
        finding(&audit, STEP).evidence,
        Evidence::GatingFramesPresent { cies: 1, .. }
    ));

    // MTE by the unwind tables, SVE by the reviewed detection code.
    let audit = build(&plain, true, true);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    assert!(matches!(
        &finding(&audit, STEP).evidence,
        Evidence::CrateExemption { mechanism, .. } if mechanism.contains("MTE only for unwind frames")
    ));
    let audit = build(&tagged, true, true);
    assert_eq!(violations(&audit), [STEP]);
    assert_eq!(
        finding(&audit, STEP)
            .undispatched
            .keys()
            .collect::<Vec<_>>(),
        ["MTE", "SVE"]
    );
    // Without detection code the SVE part fails on its own; the MTE part is still proven.
    let audit = build(&plain, true, false);
    assert_eq!(
        finding(&audit, STEP)
            .undispatched
            .keys()
            .collect::<Vec<_>>(),
        ["SVE"]
    );
}

mod plt;
mod real;

//! The audit's rules on synthetic programs: small functions assembled with iced-x86, laid
//! out like a non-PIE executable with one data section, each test showing a rule accept
//! and reject.

mod arm;
mod guards;
mod synth;

use iced_x86::code_asm::*;

use super::program::{DataSection, Image};
use super::*;
use synth::*;

/// `main` calls `dispatcher`; `is_x86_feature_detected!` as std inlines it: load the
/// cache, initialize it when empty, test a bit, branch.
fn std_dispatcher(s: &mut Synth, fast: &'static str) {
    let dispatcher = s.label("own::dispatch");
    s.function("main").call(dispatcher).unwrap();
    s.a.ret().unwrap();
    let (mut init, mut check, mut fallback) =
        (s.a.create_label(), s.a.create_label(), s.a.create_label());
    let fast = s.label(fast);
    let scalar = s.label("own::scalar");
    let detect = s.label("std_detect::detect::cache::detect_and_initialize");
    let a = s.function("own::dispatch");
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.test(rax, rax).unwrap();
    a.je(init).unwrap();
    a.set_label(&mut check).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(fallback).unwrap();
    a.call(fast).unwrap();
    a.ret().unwrap();
    a.set_label(&mut fallback).unwrap();
    a.call(scalar).unwrap();
    a.ret().unwrap();
    a.set_label(&mut init).unwrap();
    a.call(detect).unwrap();
    a.jmp(check).unwrap();
}

#[test]
fn avx512_behind_is_x86_feature_detected_passes_a_generic_build() {
    let mut s = Synth::new();
    std_dispatcher(&mut s, "own::kernel_avx512");
    let audit = audit_generic(s, "own::kernel_avx512");
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    assert_eq!(
        finding(&audit, "own::kernel_avx512").evidence,
        Evidence::Dispatched {
            behind: vec!["own::dispatch".into()]
        }
    );
    assert_eq!(audit.features["AVX512F"].dispatched, 1);
    assert!(audit.detection_state.iter().any(|s| s.contains("CACHE")));
}

#[test]
fn avx512_called_directly_fails_a_generic_build() {
    let mut s = Synth::new();
    let kernel = s.label("own::kernel_avx512");
    s.function("main").call(kernel).unwrap();
    s.a.ret().unwrap();
    let audit = audit_generic(s, "own::kernel_avx512");
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
    let leak = finding(&audit, "own::kernel_avx512");
    assert_eq!(leak.evidence, Evidence::Unconditional);
    assert_eq!(leak.undispatched.get("AVX512F"), Some(&1));
}

#[test]
fn a_call_before_the_check_is_not_dispatched() {
    let mut s = Synth::new();
    let (kernel, scalar) = (s.label("own::kernel_avx512"), s.label("own::scalar"));
    let mut skip = s.a.create_label();
    let a = s.function("main");
    a.call(kernel).unwrap();
    skip_unless_detected(a, skip);
    a.call(scalar).unwrap();
    a.set_label(&mut skip).unwrap();
    a.ret().unwrap();
    let audit = audit_generic(s, "own::kernel_avx512");
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
}

#[test]
fn a_call_after_the_paths_merge_again_is_not_dispatched() {
    // `if detected { scalar() }; kernel()`: the check does not decide whether it runs.
    let mut s = Synth::new();
    let (kernel, scalar) = (s.label("own::kernel_avx512"), s.label("own::scalar"));
    let mut merge = s.a.create_label();
    let a = s.function("main");
    skip_unless_detected(a, merge);
    a.call(scalar).unwrap();
    a.set_label(&mut merge).unwrap();
    a.call(kernel).unwrap();
    a.ret().unwrap();
    let audit = audit_generic(s, "own::kernel_avx512");
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
}

#[test]
fn a_branch_on_anything_else_is_not_a_check() {
    let mut s = Synth::new();
    let kernel = s.label("own::kernel_avx512");
    let mut skip = s.a.create_label();
    let a = s.function("main");
    a.mov(rax, qword_ptr(DATA + 0x800)).unwrap(); // some other static
    a.test(rax, rax).unwrap();
    a.je(skip).unwrap();
    a.call(kernel).unwrap();
    a.set_label(&mut skip).unwrap();
    a.ret().unwrap();
    let audit = audit_generic(s, "own::kernel_avx512");
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
}

/// memchr's pattern: the function pointer is picked with `cmov` on the detection result
/// and stored in a static before the tail call.
fn cmov_selector(s: &mut Synth, leak_the_fast_address: bool) {
    let selector = s.label("own::select");
    s.function("main").call(selector).unwrap();
    s.a.ret().unwrap();
    let (fast, scalar) = (s.label("own::kernel_avx2"), s.label("own::scalar"));
    let a = s.function("own::select");
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 5).unwrap();
    a.lea(rcx, ptr(fast)).unwrap();
    a.lea(rdx, ptr(scalar)).unwrap();
    a.cmovb(rdx, rcx).unwrap();
    if leak_the_fast_address {
        a.mov(qword_ptr(FN_SLOT), rcx).unwrap();
    } else {
        a.mov(qword_ptr(FN_SLOT), rdx).unwrap();
    }
    a.jmp(rdx).unwrap();
    kernels(s, "own::kernel_avx2");
}

#[test]
fn a_function_pointer_chosen_by_cmov_on_the_check_is_dispatched() {
    let mut s = Synth::new();
    cmov_selector(&mut s, false);
    let audit = s.build().audit(&generic(), &[]);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    assert!(matches!(
        finding(&audit, "own::kernel_avx2").evidence,
        Evidence::Dispatched { .. }
    ));

    let mut s = Synth::new();
    cmov_selector(&mut s, true);
    let audit = s.build().audit(&generic(), &[]);
    assert_eq!(violations(&audit), ["own::kernel_avx2"]);
}

#[test]
fn a_crates_own_cpuid_cache_is_found_and_trusted() {
    // cpufeatures-style: `init` runs cpuid and stores a bit; users test the static.
    let mut s = Synth::new();
    let (init, kernel) = (s.label("own::init"), s.label("own::kernel_avx2"));
    let (mut have, mut skip) = (s.a.create_label(), s.a.create_label());
    let a = s.function("main");
    a.movzx(eax, byte_ptr(OWN_CACHE)).unwrap();
    a.cmp(al, 0xff).unwrap();
    a.jne(have).unwrap();
    a.call(init).unwrap();
    a.set_label(&mut have).unwrap();
    a.test(al, al).unwrap();
    a.je(skip).unwrap();
    a.call(kernel).unwrap();
    a.set_label(&mut skip).unwrap();
    a.ret().unwrap();
    let a = s.function("own::init");
    a.mov(eax, 7).unwrap();
    a.xor(ecx, ecx).unwrap();
    a.cpuid().unwrap();
    a.shr(ebx, 5).unwrap();
    a.and(ebx, 1).unwrap();
    a.mov(byte_ptr(OWN_CACHE), bl).unwrap();
    a.mov(eax, ebx).unwrap();
    a.ret().unwrap();
    let audit = audit_generic(s, "own::kernel_avx2");
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    assert!(
        audit.detection_state.iter().any(|s| s == "own::STORAGE"),
        "{audit:#?}"
    );
}

#[test]
fn xgetbv_after_its_cpuid_check_is_guarded_inside_the_function() {
    for checked in [true, false] {
        let mut s = Synth::new();
        let mut done = s.a.create_label();
        let a = s.function("main");
        a.mov(eax, 1).unwrap();
        a.cpuid().unwrap();
        if checked {
            a.bt(ecx, 27).unwrap(); // OSXSAVE
            a.jae(done).unwrap();
        }
        a.xor(ecx, ecx).unwrap();
        a.xgetbv().unwrap();
        a.set_label(&mut done).unwrap();
        a.ret().unwrap();
        let audit = s.build().audit(&generic(), &[]);
        let xgetbv = finding(&audit, "main");
        if checked {
            assert_eq!(xgetbv.evidence, Evidence::GuardedInside, "{audit:#?}");
            assert!(!xgetbv.is_violation());
        } else {
            assert_eq!(violations(&audit), ["main"], "{audit:#?}");
        }
    }
}

/// aho-corasick's pattern: the AVX2 searcher object (and its vtable) is only built behind
/// the check; the method is reached through the vtable.
fn vtable_program(s: &mut Synth, also_unguarded: bool) {
    let (make, leak) = (s.label("own::make_searcher"), s.label("own::leak_searcher"));
    let a = s.function("main");
    a.call(make).unwrap();
    if also_unguarded {
        a.call(leak).unwrap();
    }
    a.mov(rax, qword_ptr(rdi)).unwrap();
    a.call(qword_ptr(rax + 24)).unwrap();
    a.ret().unwrap();
    let mut no = s.a.create_label();
    let a = s.function("own::make_searcher");
    skip_unless_detected(a, no);
    a.lea(rax, ptr(VTABLE)).unwrap();
    a.mov(qword_ptr(rdi), rax).unwrap();
    a.set_label(&mut no).unwrap();
    a.ret().unwrap();
    if also_unguarded {
        let a = s.function("own::leak_searcher");
        a.lea(rax, ptr(VTABLE)).unwrap();
        a.mov(qword_ptr(rdi), rax).unwrap();
        a.ret().unwrap();
    }
    kernels(s, "own::kernel_avx2");
}

#[test]
fn a_method_reached_only_through_a_vtable_built_behind_the_check_is_dispatched() {
    let mut s = Synth::new();
    vtable_program(&mut s, false);
    let audit = s
        .build()
        .audit(&generic(), &[(VTABLE + 24, "own::kernel_avx2")]);
    assert!(violations(&audit).is_empty(), "{audit:#?}");

    let mut s = Synth::new();
    vtable_program(&mut s, true);
    let audit = s
        .build()
        .audit(&generic(), &[(VTABLE + 24, "own::kernel_avx2")]);
    assert_eq!(violations(&audit), ["own::kernel_avx2"]);
}

#[test]
fn code_only_dead_code_references_is_not_evidence() {
    // Two functions calling each other, referenced by nothing else.
    let mut s = Synth::new();
    s.function("main").ret().unwrap();
    let (a_label, b_label) = (s.label("own::a"), s.label("own::b"));
    let a = s.function("own::a");
    a.vpaddd(zmm0, zmm1, zmm2).unwrap();
    a.call(b_label).unwrap();
    a.ret().unwrap();
    s.function("own::b").call(a_label).unwrap();
    s.a.ret().unwrap();
    let audit = s.build().audit(&generic(), &[]);
    assert_eq!(violations(&audit), ["own::a"]);
    assert_eq!(finding(&audit, "own::a").evidence, Evidence::Unexplained);
}

/// A function every variant's code would contain: AVX-512 (znver4/v4) and SSE4A (znver4).
fn unconditional(s: &mut Synth) {
    let a = s.function("main");
    a.vpaddd(zmm0, zmm1, zmm2).unwrap();
    a.vpaddd(ymm0, ymm1, ymm2).unwrap();
    // extrq xmm1, 8, 4 (SSE4A): AMD only.
    a.db(&[0x66, 0x0f, 0x78, 0xc1, 0x08, 0x04]).unwrap();
    a.ret().unwrap();
    s.function("own::kernel").vpaddd(zmm3, zmm4, zmm5).unwrap();
    s.a.ret().unwrap();
}

#[test]
fn each_level_accepts_exactly_its_own_features() {
    let mut s = Synth::new();
    unconditional(&mut s);
    let built = s.build();

    // A znver4 build passed off as generic: AVX-512, AVX2 and SSE4A all fail.
    let audit = built.audit(&generic(), &[]);
    let leak = finding(&audit, "main");
    assert!(leak.undispatched.contains_key("AVX512F"), "{leak:?}");
    assert!(leak.undispatched.contains_key("AVX2"), "{leak:?}");
    assert!(leak.undispatched.contains_key("SSE4A"), "{leak:?}");

    let v3 = built.audit(&level_of("x86-64-v3"), &[]);
    let leak = finding(&v3, "main");
    assert!(leak.undispatched.contains_key("AVX512F"), "{leak:?}");
    assert!(!leak.undispatched.contains_key("AVX2"), "{leak:?}");

    let v4 = built.audit(&level_of("x86-64-v4"), &[]);
    let leak = finding(&v4, "main");
    assert_eq!(
        leak.undispatched.keys().collect::<Vec<_>>(),
        ["SSE4A"],
        "{leak:?}"
    );

    let znver4 = built.audit(&level_of("znver4"), &[]);
    assert!(znver4.beyond_level.is_empty(), "{znver4:#?}");
    assert!(znver4.features["SSE4A"].in_level);
    assert_eq!(znver4.features["SSE4A"].instructions, 1);
    assert_eq!(znver4.top_class, IsaClass::Avx512);
    assert_eq!(znver4.own_top_class, 1, "own::kernel's AVX-512 instruction");
    assert_eq!(znver4.top_class_total, 2);
}

/// crc32fast's pattern: `new` checks the CPU and stores a kind in the object; `update`
/// branches on the stored kind. `with_detection` decides whether `new` is in the program.
fn type_state(s: &mut Synth, with_detection: bool) {
    let (new, update) = (s.label("typestate::Hasher::new"), s.label("other::update"));
    let a = s.function("main");
    if with_detection {
        a.call(new).unwrap();
    }
    a.call(update).unwrap();
    a.ret().unwrap();
    if with_detection {
        let mut no = s.a.create_label();
        let a = s.function("typestate::Hasher::new");
        a.mov(byte_ptr(rdi + 8), 0).unwrap();
        skip_unless_detected(a, no);
        a.mov(byte_ptr(rdi + 8), 1).unwrap();
        a.set_label(&mut no).unwrap();
        a.ret().unwrap();
    }
    // The dispatch inlined into another crate's function, as LTO does.
    let (fast, slow) = (
        s.label("typestate::kernel_avx2"),
        s.label("typestate::baseline"),
    );
    let mut baseline = s.a.create_label();
    let a = s.function("other::update");
    a.cmp(byte_ptr(rdi + 8), 0).unwrap();
    a.je(baseline).unwrap();
    a.call(fast).unwrap();
    a.ret().unwrap();
    a.set_label(&mut baseline).unwrap();
    a.call(slow).unwrap();
    a.ret().unwrap();
    s.function("typestate::kernel_avx2")
        .vpaddd(ymm0, ymm1, ymm2)
        .unwrap();
    s.a.ret().unwrap();
    s.function("typestate::baseline").add(rax, rbx).unwrap();
    s.a.ret().unwrap();
}

#[test]
fn a_crate_exemption_applies_only_with_the_crates_detection_code() {
    let mut s = Synth::new();
    type_state(&mut s, true);
    let audit = s.build().audit(&generic(), &[]);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    let evidence = &finding(&audit, "typestate::kernel_avx2").evidence;
    assert!(
        matches!(evidence, Evidence::CrateExemption { detection_in, .. } if detection_in == "typestate::Hasher::new"),
        "{evidence:?}"
    );

    let mut s = Synth::new();
    type_state(&mut s, false);
    let audit = s.build().audit(&generic(), &[]);
    assert_eq!(violations(&audit), ["typestate::kernel_avx2"]);
    assert!(matches!(
        finding(&audit, "typestate::kernel_avx2").evidence,
        Evidence::ExemptionWithoutEvidence { .. }
    ));
}

#[test]
fn without_an_exemption_type_state_dispatch_is_not_provable() {
    let mut s = Synth::new();
    type_state(&mut s, true);
    let built = s.build();
    let image_audit = |exemptions: &[CrateDispatch]| {
        let image = Image {
            code: vec![(CODE, &built.code)],
            function_symbols: built.symbols.clone(),
            data_sections: vec![DataSection {
                name: ".data".into(),
                address: DATA,
                end: DATA + 0x1000,
                called_by_loader: false,
            }],
            data_symbols: vec![(CACHE, 16, "std_detect::detect::cache::CACHE".into())],
            entry_points: vec![built.addresses["main"]],
            ..Image::default()
        };
        let program = Program::from_image(image).unwrap();
        let dispatch = dispatch::analyze(&program);
        super::audit(&program, &dispatch, &generic(), &[], exemptions)
    };
    assert_eq!(violations(&image_audit(&[])), ["typestate::kernel_avx2"]);
    assert!(violations(&image_audit(EXEMPTIONS)).is_empty());
}

//! Guard shapes inside one function: loops, cached and first-time checks, merged paths,
//! and which values count as detection-derived where paths meet.

use super::*;

#[test]
fn a_check_inside_a_loop_still_guards_its_arm() {
    // loop { if detected { kernel() } else { scalar() } }
    let mut s = Synth::new();
    let (kernel, scalar) = (s.label("own::kernel_avx512"), s.label("own::scalar"));
    let (mut top, mut slow, mut next) =
        (s.a.create_label(), s.a.create_label(), s.a.create_label());
    let a = s.function("main");
    a.mov(ecx, 8).unwrap();
    a.set_label(&mut top).unwrap();
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(slow).unwrap();
    a.call(kernel).unwrap();
    a.jmp(next).unwrap();
    a.set_label(&mut slow).unwrap();
    a.call(scalar).unwrap();
    a.set_label(&mut next).unwrap();
    a.dec(ecx).unwrap();
    a.jne(top).unwrap();
    a.ret().unwrap();
    kernels(&mut s, "own::kernel_avx512");
    let audit = s.build().audit(&generic(), &[]);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
}

#[test]
fn a_cached_result_and_a_first_time_check_both_guard_the_call() {
    // cpufeatures/sha2 shape: `if cache == 1 { fast }`; `if cache == 0xff { if init() {
    // fast } }`: two different checks lead to the same call, each decisive on its path.
    let mut s = Synth::new();
    let (init, kernel, scalar) = (
        s.label("own::init"),
        s.label("own::kernel_avx2"),
        s.label("own::scalar"),
    );
    let (mut fast, mut slow, mut first) =
        (s.a.create_label(), s.a.create_label(), s.a.create_label());
    let a = s.function("main");
    a.movzx(eax, byte_ptr(OWN_CACHE)).unwrap();
    a.cmp(al, 1).unwrap();
    a.je(fast).unwrap();
    a.cmp(al, 0xff).unwrap();
    a.je(first).unwrap();
    a.set_label(&mut slow).unwrap();
    a.call(scalar).unwrap();
    a.ret().unwrap();
    a.set_label(&mut first).unwrap();
    a.call(init).unwrap();
    a.test(al, al).unwrap();
    a.je(slow).unwrap();
    a.set_label(&mut fast).unwrap();
    a.jmp(kernel).unwrap();
    let a = s.function("own::init");
    a.mov(eax, 7).unwrap();
    a.cpuid().unwrap();
    a.and(ebx, 1).unwrap();
    a.mov(byte_ptr(OWN_CACHE), bl).unwrap();
    a.mov(eax, ebx).unwrap();
    a.ret().unwrap();
    kernels(&mut s, "own::kernel_avx2");
    let audit = s.build().audit(&generic(), &[]);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
}

#[test]
fn a_call_after_two_merged_checks_is_not_dispatched() {
    // `if a { x } else { y }; if b { } else { }; kernel()`: every path passes checks, but
    // none decides whether the kernel runs.
    let mut s = Synth::new();
    let (kernel, scalar) = (s.label("own::kernel_avx512"), s.label("own::scalar"));
    let (mut else1, mut join1, mut else2, mut join2) = (
        s.a.create_label(),
        s.a.create_label(),
        s.a.create_label(),
        s.a.create_label(),
    );
    let a = s.function("main");
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(else1).unwrap();
    a.call(scalar).unwrap();
    a.jmp(join1).unwrap();
    a.set_label(&mut else1).unwrap();
    a.call(scalar).unwrap();
    a.set_label(&mut join1).unwrap();
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 6).unwrap();
    a.jae(else2).unwrap();
    a.nop().unwrap();
    a.jmp(join2).unwrap();
    a.set_label(&mut else2).unwrap();
    a.nop().unwrap();
    a.set_label(&mut join2).unwrap();
    a.call(kernel).unwrap();
    a.ret().unwrap();
    kernels(&mut s, "own::kernel_avx512");
    let audit = s.build().audit(&generic(), &[]);
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
}

#[test]
fn a_value_detection_derived_on_only_one_path_is_not_a_check() {
    // `x = if arg { CACHE } else { OTHER }; if x & 32 { kernel() }`: where the paths meet,
    // the branch may test an unrelated static, so it proves nothing.
    let mut s = Synth::new();
    let kernel = s.label("own::kernel_avx512");
    let (mut other, mut join, mut skip) =
        (s.a.create_label(), s.a.create_label(), s.a.create_label());
    let a = s.function("main");
    a.test(rdi, rdi).unwrap();
    a.je(other).unwrap();
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.jmp(join).unwrap();
    a.set_label(&mut other).unwrap();
    a.mov(rax, qword_ptr(DATA + 0x800)).unwrap();
    a.set_label(&mut join).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(skip).unwrap();
    a.call(kernel).unwrap();
    a.set_label(&mut skip).unwrap();
    a.ret().unwrap();
    kernels(&mut s, "own::kernel_avx512");
    let audit = s.build().audit(&generic(), &[]);
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
}

#[test]
fn a_flag_a_check_chose_is_detection_derived() {
    // `let fast = if detected { true } else { false }; if fast { kernel() }`: the constants
    // are not detection state, but which one arrives is what the check decided.
    let mut s = Synth::new();
    let kernel = s.label("own::kernel_avx512");
    let (mut no, mut join, mut skip) = (s.a.create_label(), s.a.create_label(), s.a.create_label());
    let a = s.function("main");
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(no).unwrap();
    a.mov(ebx, 1).unwrap();
    a.jmp(join).unwrap();
    a.set_label(&mut no).unwrap();
    a.mov(ebx, 0).unwrap();
    a.set_label(&mut join).unwrap();
    a.test(bl, bl).unwrap();
    a.je(skip).unwrap();
    a.call(kernel).unwrap();
    a.set_label(&mut skip).unwrap();
    a.ret().unwrap();
    kernels(&mut s, "own::kernel_avx512");
    let audit = s.build().audit(&generic(), &[]);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
}

#[test]
fn a_register_both_paths_leave_alone_is_not_chosen_by_the_check() {
    // `if detected { scalar() } ; if arg { kernel() }`: rdi (preserved in rbx) is defined
    // before the check, the same on both paths, so the later branch is not a check.
    let mut s = Synth::new();
    let (kernel, scalar) = (s.label("own::kernel_avx512"), s.label("own::scalar"));
    let (mut join, mut skip) = (s.a.create_label(), s.a.create_label());
    let a = s.function("main");
    a.mov(rbx, rdi).unwrap();
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(join).unwrap();
    a.call(scalar).unwrap();
    a.set_label(&mut join).unwrap();
    a.test(rbx, rbx).unwrap();
    a.je(skip).unwrap();
    a.call(kernel).unwrap();
    a.set_label(&mut skip).unwrap();
    a.ret().unwrap();
    kernels(&mut s, "own::kernel_avx512");
    let audit = s.build().audit(&generic(), &[]);
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
}

/// mcp-rust-core's shape: `Kernels::for_isa` returns one of two static tables of kernel
/// pointers, chosen by `is_x86_feature_detected!`; callers call through the table.
fn kernel_tables(s: &mut Synth, fast_table_also_unguarded: bool) {
    let (for_isa, leak) = (s.label("own::for_isa"), s.label("own::leak_table"));
    let a = s.function("main");
    a.call(for_isa).unwrap();
    a.call(qword_ptr(rax + 8)).unwrap();
    if fast_table_also_unguarded {
        a.call(leak).unwrap();
        a.call(qword_ptr(rax + 8)).unwrap();
    }
    a.ret().unwrap();
    let mut scalar = s.a.create_label();
    let a = s.function("own::for_isa");
    a.mov(rax, qword_ptr(CACHE)).unwrap();
    a.bt(rax, 5).unwrap();
    a.jae(scalar).unwrap();
    a.lea(rax, ptr(FAST_TABLE)).unwrap();
    a.ret().unwrap();
    a.set_label(&mut scalar).unwrap();
    a.lea(rax, ptr(SCALAR_TABLE)).unwrap();
    a.ret().unwrap();
    if fast_table_also_unguarded {
        let a = s.function("own::leak_table");
        a.lea(rax, ptr(FAST_TABLE)).unwrap();
        a.ret().unwrap();
    }
    kernels(s, "own::kernel_avx512");
}

#[test]
fn a_kernel_table_chosen_behind_the_check_is_dispatched() {
    let pointers = [
        (FAST_TABLE + 8, "own::kernel_avx512"),
        (SCALAR_TABLE + 8, "own::scalar"),
    ];
    let mut s = Synth::new();
    kernel_tables(&mut s, false);
    let audit = s.build().audit(&generic(), &pointers);
    assert!(violations(&audit).is_empty(), "{audit:#?}");
    assert!(matches!(
        finding(&audit, "own::kernel_avx512").evidence,
        Evidence::Dispatched { .. }
    ));

    let mut s = Synth::new();
    kernel_tables(&mut s, true);
    let audit = s.build().audit(&generic(), &pointers);
    assert_eq!(violations(&audit), ["own::kernel_avx512"]);
}

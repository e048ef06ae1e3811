//! A shared library's CPU check through an imported `getauxval`: cpufeatures'
//! `getauxval_hwcap` is `mov w0, #16; b getauxval@plt`, a tail call into a PLT stub that
//! jumps through the GOT slot of the C library's function (the aarch64 Python module).

use super::super::super::program::plt::UNNAMED_STUB;
use super::*;

/// The GOT slot the stub jumps through.
const GOT_SLOT: u64 = DATA + 0x200;
/// `ldr x17, [x16, #lo12(GOT_SLOT)]`, then `br x17`: the stub's load and jump.
const LDR_X17_GOT: u32 = 0xF940_0000 | (((GOT_SLOT & 0xFFF) / 8) as u32) << 10 | 16 << 5 | 17;
const BR_X17: u32 = 0xD61F_0220;

/// `own::init` stores `own::hwcap()` in a static that `main` tests before the SHA-2 kernel.
/// `own::hwcap` ends in `mov x0, #argument` and a jump to `tail_target`'s function:
/// the stub (`"stub"`) or `own::other`, which returns something else.
fn shared_library(argument: u32, tail_target: &str, imported: &str) -> Audit {
    let mut arm = Arm::new(&[
        "main",
        "own::init",
        "own::hwcap",
        "own::kernel_sha",
        "own::other",
        UNNAMED_STUB,
    ]);
    arm.imports.insert(GOT_SLOT, imported.to_owned());
    let [init, hwcap, kernel, other, stub] = [
        "own::init",
        "own::hwcap",
        "own::kernel_sha",
        "own::other",
        UNNAMED_STUB,
    ]
    .map(|name| arm.address(name));
    let f = arm.function("main");
    f.bl(init).load_static(9, OWN_CACHE, false);
    let skip = f.at(5);
    f.tbz(9, 6, skip).bl(kernel).ret();
    arm.function("own::init")
        .bl(hwcap)
        .store_static(0, OWN_CACHE)
        .ret();
    let target = if tail_target == "stub" { stub } else { other };
    arm.function("own::hwcap").movz(0, argument).b(target);
    arm.function("own::kernel_sha").word(SHA256H).ret();
    arm.function("own::other").word(ADD_X0_X0_X1).ret();
    arm.function(UNNAMED_STUB)
        .adrp(16, GOT_SLOT)
        .word(LDR_X17_GOT)
        .word(BR_X17);
    arm.audit()
}

#[test]
fn a_tail_call_to_getauxval_through_the_plt_is_a_cpu_check() {
    assert_sha_dispatched_behind_own_cache(&shared_library(16, "stub", "getauxval"));
}

#[test]
fn the_stub_must_jump_to_getauxval_and_ask_for_hwcap() {
    // Another import behind the stub, the page size (AT_PAGESZ), or a tail call to a
    // function that returns no detection result: no check.
    for (argument, target, import) in [
        (16, "stub", "sysconf"),
        (6, "stub", "getauxval"),
        (16, "own::other", "getauxval"),
    ] {
        let audit = shared_library(argument, target, import);
        assert_eq!(
            violations(&audit),
            ["own::kernel_sha"],
            "{argument} {target} {import}"
        );
    }
}

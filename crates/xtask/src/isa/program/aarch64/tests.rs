//! The aarch64 decoding on words taken from real builds (llvm-objdump's reading of them in
//! the comments) and on one word of each extension the audit names.

use std::collections::BTreeSet;

use super::*;

/// `__aarch64_ldadd4_acq` as compiler-rt builds it, at its address in a devops build.
const OUTLINE_LDADD: [u32; 5] = [
    0xb000_0370, // adrp x16, 0x9d0000
    0x396c_c210, // ldrb w16, [x16, #2864]
    0x3400_0070, // cbz w16, +0xc
    0xb8a0_0020, // ldadda w0, w0, [x1]
    0xd65f_03c0, // ret
];

#[test]
fn the_outline_atomics_test_their_flag_before_the_lse_instruction() {
    let words: Vec<u8> = OUTLINE_LDADD.iter().flat_map(|w| w.to_le_bytes()).collect();
    let insns = decode_all(&words, 0x96_3160, &[]);
    assert_eq!(
        insns[0].value,
        Some((16, Value::Page(0x9d_0000))),
        "adrp names the page"
    );
    assert_eq!(insns[0].writes, 1 << 16);
    let load = insns[1].memory.unwrap();
    assert_eq!(
        load.address,
        Address::Base {
            register: 16,
            offset: 2864
        }
    );
    assert!(load.load && !load.store);
    assert_eq!(insns[1].writes, 1 << 16);
    assert_eq!(
        insns[2].flow,
        Flow::Branch {
            target: 0x96_3174,
            on: Condition::Register(16)
        }
    );
    assert_eq!(insns[2].reads, 1 << 16);
    assert_eq!(insns[3].features, ["lse"]);
    assert_eq!(insns[4].flow, Flow::Return);
    assert!(insns.iter().take(3).all(|i| i.features.is_empty()));

    let mut function = Function {
        name: "__aarch64_ldadd4_acq".into(),
        address: 0x96_3160,
        end: 0x96_3174,
        ..Function::default()
    };
    record_all(&mut function, &words, &[]);
    assert_eq!(function.instructions, 5);
    assert_eq!(function.extended.len(), 1);
    assert!(
        function
            .references
            .iter()
            .any(|r| r.kind == ReferenceKind::Memory && r.target == 0x9d_0b30),
        "adrp + ldrb read __aarch64_have_lse_atomics: {:?}",
        function.references
    );
}

#[test]
fn branches_calls_and_address_arithmetic() {
    let at = 0x1000;
    // bl +0x40
    assert_eq!(decode(0x9400_0010, at).flow, Flow::Call(0x1040));
    // b -4
    assert_eq!(decode(0x17ff_ffff, at).flow, Flow::Jump(0xffc));
    // b.ne +8
    let branch = decode(0x5400_0041, at);
    assert_eq!(
        branch.flow,
        Flow::Branch {
            target: 0x1008,
            on: Condition::Flags
        }
    );
    assert!(branch.reads_flags);
    // tbz x8, #5, +0x10
    assert_eq!(
        decode(0x3628_0088, at).flow,
        Flow::Branch {
            target: 0x1010,
            on: Condition::Register(8)
        }
    );
    // add x8, x8, #0x123
    assert_eq!(
        decode(0x9104_8d08, at).value,
        Some((
            8,
            Value::Offset {
                register: 8,
                offset: 0x123
            }
        ))
    );
    // mov x19, x0 copies the address along, and the value (taint)
    let copy = decode(0xaa00_03f3, at);
    assert_eq!(
        copy.value,
        Some((
            19,
            Value::Offset {
                register: 0,
                offset: 0
            }
        ))
    );
    assert_eq!((copy.reads, copy.writes), (1, 1 << 19));
    // mov x0, #16 (AT_HWCAP for getauxval)
    assert_eq!(decode(0xd280_0200, at).immediate, Some((0, 16)));
    // cmp x8, #1 sets the flags and writes no register
    let compare = decode(0xf100_051f, at);
    assert!(compare.writes_flags);
    assert_eq!((compare.reads, compare.writes), (1 << 8, 0));
    // str x0, [x9, #16]: x0 is a value read, x9 only the address
    let store = decode(0xf900_0920, at);
    assert_eq!(store.reads, 1);
    assert_eq!(
        store.memory.unwrap().address,
        Address::Base {
            register: 9,
            offset: 16
        }
    );
    assert!(store.memory.unwrap().store);
    // blr x8, br x16
    assert_eq!(decode(0xd63f_0100, at).flow, Flow::IndirectCall);
    assert_eq!(decode(0xd61f_0200, at).flow, Flow::IndirectJump);
}

#[test]
fn cpu_queries_are_id_registers_only() {
    // mrs x0, ID_AA64ISAR0_EL1
    assert!(decode(0xd538_0600, 0).queries_cpu);
    // mrs x0, TPIDR_EL0 (thread pointer, every TLS access)
    let thread_pointer = decode(0xd53b_d040, 0);
    assert!(!thread_pointer.queries_cpu && thread_pointer.features.is_empty());
    assert_eq!(thread_pointer.writes, 1);
}

/// One word per extension: `(word, feature)`; an empty feature means baseline.
const EXTENSIONS: &[(u32, &str, &str)] = &[
    (0xb8e0_0020, "lse", "ldaddal w0, w0, [x1]"),
    (0x88a0_7c41, "lse", "cas w0, w1, [x2]"),
    (0x4e28_4820, "aes", "aese v0.16b, v1.16b"),
    (0x0ee2_e020, "aes", "pmull v0.1q, v1.1d, v2.1d"),
    (0x0e22_e020, "", "pmull v0.8h, v1.8b, v2.8b (NEON)"),
    (0x5e02_4020, "sha2", "sha256h q0, q1, v2.4s"),
    (0x5e02_0020, "sha2", "sha1c q0, s1, v2.4s"),
    (0xce62_8020, "sha3", "sha512h q0, q1, v2.2d"),
    (0x9ac1_4c00, "crc", "crc32x w0, w0, x1"),
    (0x4e82_9420, "dotprod", "sdot v0.4s, v1.16b, v2.16b"),
    (0x2e82_8420, "rdm", "sqrdmlah v0.2s, v1.2s, v2.2s"),
    (0xf8bf_c020, "rcpc", "ldapr x0, [x1]"),
    (0x1e7e_0020, "jsconv", "fjcvtzs w0, d1"),
    (0x04a0_0000, "sve", "add z0.s, z0.s, z0.s"),
    (0xd503_477f, "sme", "smstart"),
    (0xd503_467f, "sme", "smstop"),
    (0xd53b_d0a0, "sme", "mrs x0, TPIDR2_EL0"),
    (0xd920_0800, "mte", "stg x0, [x0]"),
    (0xd53b_2400, "rand", "mrs x0, RNDR"),
    (0x1ee2_2820, "fp16", "fadd h0, h1, h2"),
    (0x1e62_2820, "", "fadd d0, d1, d2"),
    (0xd503_233f, "", "paciasp (hint: a NOP without PAuth)"),
    (0xd503_245f, "", "bti c (hint)"),
    (0xd503_201f, "", "nop"),
];

#[test]
fn each_extension_is_named_as_rustc_names_it() {
    for &(word, feature, text) in EXTENSIONS {
        let insn = decode(word, 0);
        assert!(insn.decoded, "{text}: {word:#010x} did not decode");
        let expected: &[&str] = if feature.is_empty() { &[] } else { &[feature] };
        assert_eq!(insn.features, expected, "{text}: {word:#010x}");
    }
}

#[test]
fn rustc_knows_every_feature_the_decoder_names() {
    // The names must be the compiler's, or a level silently loses a feature.
    let known = crate::isa::features::tests::rustc_feature_names("aarch64-unknown-linux-musl");
    let named: BTreeSet<&str> = EXTENSIONS
        .iter()
        .map(|(_, feature, _)| *feature)
        .chain([
            "paca", "pacg", "rcpc2", "fcma", "fhm", "frintts", "bf16", "flagm", "sb", "sm4",
        ])
        .filter(|f| !f.is_empty())
        .collect();
    let unknown: Vec<&&str> = named.iter().filter(|f| !known.contains(**f)).collect();
    assert!(unknown.is_empty(), "rustc does not know {unknown:?}");
}

#[test]
fn data_in_code_is_undecodable_and_counted() {
    // 0xffffffff is unallocated; it must not pass as an instruction.
    let insn = decode(0xffff_ffff, 0);
    assert!(!insn.decoded);
    assert_eq!(insn.flow, Flow::Stop);
    let mut function = Function {
        address: 0,
        end: 8,
        ..Function::default()
    };
    let bytes = [0xff, 0xff, 0xff, 0xff, 0xc0, 0x03, 0x5f, 0xd6];
    record_all(&mut function, &bytes, &[]);
    assert_eq!((function.instructions, function.undecodable), (1, 1));
    // Behind a `$d` mapping symbol the same word is data: neither an instruction nor
    // undecodable; `$x` starts the code again.
    let mut function = Function {
        address: 0,
        end: 8,
        ..Function::default()
    };
    record_all(&mut function, &bytes, &[(0, true), (4, false)]);
    assert_eq!((function.instructions, function.undecodable), (1, 0));
    // SVE-space constants in data (ring's tables) are not SVE instructions either.
    let mut function = Function {
        address: 0,
        end: 4,
        ..Function::default()
    };
    record_all(&mut function, &0x04a0_0000u32.to_le_bytes(), &[(0, true)]);
    assert!(function.extended.is_empty());
}

//! Tests of symbol names and crate attribution: demangling, [`crate_of`], and
//! [`owning_crates`]' two rules for code no Rust path names (ring's `ring_core_` symbols
//! aside): local labels belong to the one crate that references them, and unreferenced
//! ones to the crate of their neighbours on both sides.

use super::*;

#[test]
fn demangles_legacy_rust_symbols_without_hash() {
    assert_eq!(
        demangle("_ZN6memchr4arch6x86_644avx26memchr3One8find_raw17h0123456789abcdefE"),
        "memchr::arch::x86_64::avx2::memchr::One::find_raw"
    );
    assert_eq!(demangle("PyInit_mcp_rust_core"), "PyInit_mcp_rust_core");
}

#[test]
fn crate_of_names() {
    assert_eq!(crate_of("memchr::arch::x86_64::avx2::One::find"), "memchr");
    assert_eq!(
        crate_of("<aho_corasick::packed::teddy::Slim<2> as aho_corasick::SearcherT>::find"),
        "aho_corasick"
    );
    assert_eq!(
        crate_of("<&mut serde_json::Ser as core::fmt::Write>::f"),
        "serde_json"
    );
    assert_eq!(crate_of("core::ptr::drop_in_place<mcp::X>"), "core");
    assert_eq!(crate_of("memcpy"), "<C>");
    assert_eq!(
        crate_of("ring_core_0_17_14__aes_hw_ctr32_encrypt_blocks"),
        "ring"
    );
    assert_eq!(crate_of(NO_SYMBOL), "<C>");
}

#[test]
fn rejects_files_that_are_not_elf() {
    assert!(Program::load(b"definitely not an ELF file").is_err());
}

/// A program of functions laid out in order, 0x100 bytes each; each function is
/// `(name, [(index of the function it references, how)])`.
fn program(functions: &[(&str, &[(usize, ReferenceKind)])]) -> Program<'static> {
    let address = |index: usize| 0x1000 + 0x100 * index as u64;
    Program {
        functions: functions
            .iter()
            .enumerate()
            .map(|(index, (name, references))| Function {
                name: (*name).to_owned(),
                address: address(index),
                end: address(index + 1),
                references: references
                    .iter()
                    .map(|&(to, kind)| Reference {
                        site: address(index) + 4,
                        target: address(to) + 8,
                        kind,
                    })
                    .collect(),
                ..Function::default()
            })
            .collect(),
        data_sections: Vec::new(),
        data_pointers: Vec::new(),
        data_symbols: Vec::new(),
        entry_points: Vec::new(),
        arch: Default::default(),
        eh_frame: Default::default(),
        mapping: Vec::new(),
        code: Vec::new(),
    }
}

#[test]
fn owning_crates_attributes_prefixed_symbols_and_local_labels() {
    use ReferenceKind::{Address, Call, Jump, Memory};
    type Row<'a> = (
        &'a str,
        &'a [(&'a str, &'a [(usize, ReferenceKind)])],
        &'a [&'a str],
    );
    let rows: &[Row] = &[
        (
            "ring's C and assembly symbols carry its prefix",
            &[("ring_core_0_17_14__aes_hw_ctr32_encrypt_blocks", &[])],
            &["ring"],
        ),
        (
            "Rust paths keep their own crate whoever references them",
            &[("memchr::find", &[(1, Call)]), ("aho_corasick::find", &[])],
            &["memchr", "aho_corasick"],
        ),
        (
            "a local label called by one crate is that crate's",
            &[("ring::aead::seal", &[(1, Call)]), ("_aesni_encrypt4", &[])],
            &["ring", "ring"],
        ),
        (
            "a jump or a taken address refers as much as a call",
            &[
                ("ring::aead::seal", &[(1, Jump), (2, Address)]),
                ("_aesni_ctr32", &[]),
                ("_aesni_table", &[]),
            ],
            &["ring", "ring", "ring"],
        ),
        (
            "a chain of local labels inherits its entry point's crate, whatever the order",
            &[
                ("_inner", &[]),
                ("_outer", &[(0, Call)]),
                ("ring::aead::seal", &[(1, Call)]),
            ],
            &["ring", "ring", "ring"],
        ),
        (
            "labels referenced by two crates stay unattributed",
            &[
                ("ring::a", &[(2, Call)]),
                ("memchr::b", &[(2, Call)]),
                ("memcpy", &[]),
            ],
            &["ring", "memchr", "<C>"],
        ),
        (
            "a memory operand is not a reference that attributes",
            &[("ring::a", &[(1, Memory)]), ("_data_in_text", &[])],
            &["ring", "<C>"],
        ),
        (
            "an unreferenced label between one crate's functions is that crate's",
            &[
                ("ring::a", &[]),
                ("_unused", &[]),
                ("_unused2", &[]),
                ("ring::b", &[]),
            ],
            &["ring", "ring", "ring", "ring"],
        ),
        (
            "a label's reference to itself does not make it referenced",
            &[("ring::a", &[]), ("_loop", &[(1, Jump)]), ("ring::b", &[])],
            &["ring", "ring", "ring"],
        ),
        (
            "an unreferenced label between two crates stays unattributed",
            &[("ring::a", &[]), ("_unused", &[]), ("memchr::b", &[])],
            &["ring", "<C>", "memchr"],
        ),
        (
            "an unreferenced label with a neighbour on one side only stays unattributed",
            &[("_head", &[]), ("ring::a", &[]), ("_tail", &[])],
            &["<C>", "ring", "<C>"],
        ),
    ];
    for (rule, functions, expected) in rows {
        assert_eq!(owning_crates(&program(functions)), *expected, "{rule}");
    }
}

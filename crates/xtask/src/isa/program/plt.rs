//! Procedure linkage table stubs. A shared library calls an imported function (the C
//! library's `getauxval`) through a small stub in `.plt` that jumps through the function's
//! GOT slot. The section has no symbols, so [`stubs`] cuts it into one function per stub
//! and [`name_stubs`] names each one `<import>@plt` after the slot it loads, as objdump
//! does. [`super::super::dispatch`] then knows a call to `getauxval@plt` as a call to
//! `getauxval`.

use std::collections::BTreeMap;

use super::Function;
use super::ReferenceKind;
use crate::isa::features::Arch;

/// A stub whose GOT slot holds no import (or that loads none: lazy-binding x86-64 `.plt`
/// entries when `.plt.sec` holds the jumps).
pub const UNNAMED_STUB: &str = "<plt stub>";
/// The resolver stub at the start of a lazy-binding `.plt`.
pub const HEADER: &str = "<plt header>";

/// `(address, size, name)` function symbols for the stubs of the code section `section`:
/// the header, then one [`UNNAMED_STUB`] per entry. Layouts are the linkers' (GNU ld, lld):
/// aarch64 `.plt` has a 32-byte header and 16-byte entries, x86-64 `.plt` a 16-byte header
/// and 16-byte entries, x86-64 `.plt.sec` 16-byte entries only. Other sections: none.
pub fn stubs(arch: Arch, section: &str, address: u64, size: u64) -> Vec<(u64, u64, String)> {
    let (header, entry) = match (arch, section) {
        (Arch::Aarch64, ".plt") => (32, 16),
        (Arch::X86_64, ".plt") => (16, 16),
        (Arch::X86_64, ".plt.sec") => (0, 16),
        _ => return Vec::new(),
    };
    if size < header {
        return Vec::new();
    }
    let mut symbols = Vec::new();
    if header > 0 {
        symbols.push((address, header, HEADER.to_owned()));
    }
    let mut at = address + header;
    while at + entry <= address + size {
        symbols.push((at, entry, UNNAMED_STUB.to_owned()));
        at += entry;
    }
    symbols
}

/// Renames each [`UNNAMED_STUB`] that loads the GOT slot of an import (`imports`: slot →
/// symbol name, from the dynamic relocations) to `<import>@plt`.
pub fn name_stubs(functions: &mut [Function], imports: &BTreeMap<u64, String>) {
    for function in functions.iter_mut().filter(|f| f.name == UNNAMED_STUB) {
        let import = function
            .references
            .iter()
            .filter(|r| r.kind == ReferenceKind::Memory)
            .find_map(|r| imports.get(&r.target));
        if let Some(import) = import {
            function.name = format!("{import}@plt");
        }
    }
}

/// The imported function a PLT stub named by [`name_stubs`] jumps to.
pub fn import_of(name: &str) -> Option<&str> {
    name.strip_suffix("@plt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::program::Reference;

    #[test]
    fn cuts_aarch64_and_x86_64_sections_into_header_and_entries() {
        assert_eq!(
            stubs(Arch::Aarch64, ".plt", 0x1000, 64),
            [
                (0x1000, 32, HEADER.to_owned()),
                (0x1020, 16, UNNAMED_STUB.to_owned()),
                (0x1030, 16, UNNAMED_STUB.to_owned()),
            ]
        );
        assert_eq!(stubs(Arch::X86_64, ".plt", 0x2000, 48).len(), 3);
        assert_eq!(
            stubs(Arch::X86_64, ".plt.sec", 0x3000, 32),
            [
                (0x3000, 16, UNNAMED_STUB.to_owned()),
                (0x3010, 16, UNNAMED_STUB.to_owned()),
            ]
        );
        // Not a PLT, or too short to hold the header.
        assert!(stubs(Arch::Aarch64, ".text", 0x1000, 64).is_empty());
        assert!(stubs(Arch::Aarch64, ".plt.sec", 0x1000, 64).is_empty());
        assert!(stubs(Arch::Aarch64, ".plt", 0x1000, 16).is_empty());
    }

    #[test]
    fn names_a_stub_after_the_import_whose_slot_it_loads() {
        let stub = |address: u64, slot: u64, kind: ReferenceKind| Function {
            name: UNNAMED_STUB.to_owned(),
            address,
            end: address + 16,
            references: vec![Reference {
                site: address + 4,
                target: slot,
                kind,
            }],
            ..Function::default()
        };
        let mut functions = [
            stub(0x1020, 0x9008, ReferenceKind::Memory),
            stub(0x1030, 0x9010, ReferenceKind::Memory),
            // Takes the slot's address without loading it: not a jump through it.
            stub(0x1040, 0x9008, ReferenceKind::Address),
            Function {
                name: "own::f".into(),
                references: vec![Reference {
                    site: 0,
                    target: 0x9008,
                    kind: ReferenceKind::Memory,
                }],
                ..Function::default()
            },
        ];
        let imports = BTreeMap::from([(0x9008, "getauxval".to_owned())]);
        name_stubs(&mut functions, &imports);
        let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["getauxval@plt", UNNAMED_STUB, UNNAMED_STUB, "own::f"]
        );
        assert_eq!(import_of("getauxval@plt"), Some("getauxval"));
        assert_eq!(import_of("getauxval"), None);
    }
}

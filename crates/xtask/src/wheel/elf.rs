//! What an extension module needs from the system that loads it: its `NEEDED` libraries,
//! the newest symbol version it requires from each, and the symbols it exports. This is
//! what decides the wheel's manylinux tag and what `auditwheel show` checks.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use object::read::elf::{ElfFile64, FileHeader};
use object::{Endianness, Object, ObjectSymbol};

/// The shared libraries a manylinux wheel may expect on every system (the libraries of
/// PEP 599/600's policies that a Rust extension can link), by `NEEDED` name prefix.
const SYSTEM_LIBRARIES: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "librt.so.1",
    "libpthread.so.0",
    "libutil.so.1",
    "libresolv.so.2",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

/// musl's C library (and dynamic loader), by `NEEDED` name prefix: a module linking it is
/// for musllinux (PEP 656), not manylinux.
const MUSL_LIBC: &str = "libc.musl-";

/// Which C library a module is linked against, as far as the platform tag cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Libc {
    /// glibc, needing at least `2.<minor>` (0 when no symbol is versioned).
    Glibc { minor: u32 },
    /// musl (which versions no symbol: the tag takes the musl 1.2 floor).
    Musl,
}

/// The dynamic linking facts of one ELF shared library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linkage {
    /// `e_machine` (`object::elf::EM_X86_64`, `EM_AARCH64`, ...).
    pub machine: u16,
    /// `DT_NEEDED` entries, in file order.
    pub needed: Vec<String>,
    /// Per needed library, the versions its symbols are bound to (`GLIBC_2.14`, `GCC_3.0`).
    pub versions: BTreeMap<String, Vec<String>>,
    /// Defined global dynamic symbols.
    pub exports: Vec<String>,
}

impl Linkage {
    /// Reads the linkage of a 64-bit ELF file.
    pub fn read(data: &[u8]) -> Result<Linkage> {
        let file = ElfFile64::<Endianness>::parse(data).context("not a 64-bit ELF file")?;
        let endian = file.endian();
        let sections = file.elf_section_table();

        let dynamic = sections.dynamic_table(endian, data)?;
        let mut needed = Vec::new();
        for entry in dynamic.iter() {
            if entry.tag == object::elf::DT_NEEDED {
                let name = dynamic.string(entry).context("reading a DT_NEEDED name")?;
                needed.push(String::from_utf8_lossy(name).into_owned());
            }
        }

        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some((mut needs, link)) = sections.gnu_verneed(endian, data)? {
            let strings = sections.strings(endian, data, link)?;
            while let Some((need, mut auxes)) = needs.next()? {
                let library = String::from_utf8_lossy(need.file(endian, strings)?).into_owned();
                let list = versions.entry(library).or_default();
                while let Some(aux) = auxes.next()? {
                    list.push(String::from_utf8_lossy(aux.name(endian, strings)?).into_owned());
                }
                list.sort();
            }
        }

        let exports = file
            .dynamic_symbols()
            .filter(|s| s.is_definition() && s.is_global())
            .filter_map(|s| s.name().ok().map(str::to_owned))
            .collect();
        Ok(Linkage {
            machine: file.elf_header().e_machine(endian).0,
            needed,
            versions,
            exports,
        })
    }

    /// The newest `GLIBC_2.N` any symbol needs, as `N` (0 when none is versioned).
    pub fn glibc_minor(&self) -> Result<u32> {
        let mut newest = 0;
        for version in self.versions.values().flatten() {
            let Some(rest) = version.strip_prefix("GLIBC_") else {
                continue;
            };
            if rest == "PRIVATE" {
                bail!("the module uses GLIBC_PRIVATE symbols, which no manylinux policy allows");
            }
            let minor = rest
                .strip_prefix("2.")
                .and_then(|r| r.split('.').next())
                .and_then(|m| m.parse::<u32>().ok())
                .with_context(|| format!("unexpected glibc symbol version {version}"))?;
            newest = newest.max(minor);
        }
        Ok(newest)
    }

    /// The C library the module is linked against, and the newest glibc it needs.
    pub fn libc(&self) -> Result<Libc> {
        if self.needed.iter().any(|name| name.starts_with(MUSL_LIBC)) {
            return Ok(Libc::Musl);
        }
        Ok(Libc::Glibc {
            minor: self.glibc_minor()?,
        })
    }

    /// Fails unless every needed library is a manylinux/musllinux system library: no `libpython`
    /// (an extension module gets the interpreter's symbols from the process; linking
    /// libpython breaks statically linked interpreters and every other Python version).
    pub fn check_system_libraries(&self) -> Result<()> {
        let foreign: Vec<&String> = self
            .needed
            .iter()
            .filter(|name| {
                !SYSTEM_LIBRARIES.contains(&name.as_str()) && !name.starts_with(MUSL_LIBC)
            })
            .collect();
        if let Some(python) = foreign.iter().find(|n| n.starts_with("libpython")) {
            bail!(
                "the extension module links {python}: build it with PYO3_BUILD_EXTENSION_MODULE=1 \
                 (pyo3 links libpython otherwise)"
            );
        }
        if !foreign.is_empty() {
            bail!(
                "the extension module needs libraries no manylinux system guarantees: {}",
                foreign
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linkage(needed: &[&str], glibc: &[&str]) -> Linkage {
        Linkage {
            machine: object::elf::EM_X86_64.0,
            needed: needed.iter().map(|s| s.to_string()).collect(),
            versions: BTreeMap::from([(
                "libc.so.6".to_owned(),
                glibc.iter().map(|s| s.to_string()).collect(),
            )]),
            exports: vec![],
        }
    }

    #[test]
    fn the_newest_glibc_version_wins_and_private_is_refused() {
        let l = linkage(
            &["libc.so.6"],
            &["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.3.4"],
        );
        assert_eq!(l.glibc_minor().unwrap(), 17);
        assert_eq!(linkage(&[], &[]).glibc_minor().unwrap(), 0);
        let private = linkage(&["libc.so.6"], &["GLIBC_PRIVATE"]);
        assert!(
            private
                .glibc_minor()
                .unwrap_err()
                .to_string()
                .contains("GLIBC_PRIVATE")
        );
    }

    #[test]
    fn musl_modules_are_told_apart_from_glibc_ones() {
        let musl = linkage(&["libc.musl-x86_64.so.1"], &[]);
        musl.check_system_libraries().unwrap();
        assert_eq!(musl.libc().unwrap(), Libc::Musl);
        let glibc = linkage(&["libc.so.6"], &["GLIBC_2.28"]);
        assert_eq!(glibc.libc().unwrap(), Libc::Glibc { minor: 28 });
    }

    #[test]
    fn libpython_and_foreign_libraries_are_refused() {
        let ok = linkage(&["libgcc_s.so.1", "libc.so.6", "ld-linux-x86-64.so.2"], &[]);
        ok.check_system_libraries().unwrap();
        let python = linkage(&["libpython3.11.so.1.0", "libc.so.6"], &[]);
        let error = python.check_system_libraries().unwrap_err().to_string();
        assert!(error.contains("PYO3_BUILD_EXTENSION_MODULE"), "{error}");
        let ssl = linkage(&["libssl.so.3"], &[]);
        assert!(
            ssl.check_system_libraries()
                .unwrap_err()
                .to_string()
                .contains("libssl")
        );
    }

    #[test]
    fn reads_the_linkage_of_a_real_shared_library() {
        // The C library of the machine running the test is a 64-bit ELF shared library
        // that needs the dynamic loader and defines versioned symbols.
        let candidates = [
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/lib/aarch64-linux-gnu/libm.so.6",
        ];
        let Some(path) = candidates.iter().find(|p| std::path::Path::new(p).exists()) else {
            eprintln!("SKIPPED: no libm.so.6 at {candidates:?}");
            return;
        };
        let linkage = Linkage::read(&std::fs::read(path).unwrap()).unwrap();
        assert!(
            linkage.needed.iter().any(|n| n == "libc.so.6"),
            "{linkage:?}"
        );
        assert!(linkage.exports.iter().any(|s| s == "remainder"));
        // libm binds libc's GLIBC_PRIVATE symbols (it ships with libc), so only the
        // versions are checked here, not the manylinux refusal.
        let libc = &linkage.versions["libc.so.6"];
        assert!(libc.iter().any(|v| v.starts_with("GLIBC_2.")), "{libc:?}");
    }
}

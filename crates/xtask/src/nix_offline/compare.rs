//! Where two builds of one ELF binary differ: the Nix-built server against the one
//! `cargo xtask dist` built, which must be identical. A sha256 says only *that* they
//! differ; this says which sections, where, and shows the text around the first differing
//! byte (a build path, a time or a feature usually gives itself away there).

use anyhow::{Context, Result};
use object::{Object, ObjectSection};

/// One section whose contents or size differ between the two files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionDifference {
    pub name: String,
    /// Sizes in the first and second file (`None`: the section is missing there).
    pub sizes: (Option<u64>, Option<u64>),
    /// Offset inside the section of the first differing byte, when both have contents.
    pub first_offset: Option<u64>,
    /// Printable text around that byte in the first and second file.
    pub context: Option<(String, String)>,
}

/// What differs between two files that should be identical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub sizes: (u64, u64),
    /// File offset of the first differing byte (`None`: identical).
    pub first_offset: Option<u64>,
    /// How many bytes differ over the common length.
    pub differing_bytes: u64,
    /// Sections that differ, in the first file's order; empty when not ELF on both sides.
    pub sections: Vec<SectionDifference>,
}

impl Difference {
    pub fn identical(&self) -> bool {
        self.first_offset.is_none()
    }

    /// Readable lines for the run's report.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let Some(first) = self.first_offset else {
            return lines;
        };
        lines.push(format!(
            "sizes {} and {} bytes; {} differing bytes over the common length, the first at file offset {first:#x}",
            self.sizes.0, self.sizes.1, self.differing_bytes
        ));
        for section in &self.sections {
            let size = |s: Option<u64>| s.map_or_else(|| "missing".to_owned(), |s| s.to_string());
            let mut line = format!(
                "section {}: sizes {} / {}",
                section.name,
                size(section.sizes.0),
                size(section.sizes.1)
            );
            if let Some(offset) = section.first_offset {
                line.push_str(&format!(", first difference at +{offset:#x}"));
            }
            lines.push(line);
            if let Some((a, b)) = &section.context {
                lines.push(format!("    first:  {a:?}"));
                lines.push(format!("    second: {b:?}"));
            }
        }
        lines
    }
}

/// Compares two files byte by byte and, when both are ELF (or any format `object` reads),
/// section by section.
pub fn compare(first: &[u8], second: &[u8]) -> Result<Difference> {
    let common = first.len().min(second.len());
    let differing = first[..common]
        .iter()
        .zip(&second[..common])
        .filter(|(a, b)| a != b)
        .count() as u64;
    let first_offset = first_difference(first, second);
    let mut difference = Difference {
        sizes: (first.len() as u64, second.len() as u64),
        first_offset,
        differing_bytes: differing,
        sections: Vec::new(),
    };
    if first_offset.is_none() {
        return Ok(difference);
    }
    let (Ok(a), Ok(b)) = (object::File::parse(first), object::File::parse(second)) else {
        return Ok(difference);
    };
    for section in a.sections() {
        let name = section.name().context("reading a section name")?.to_owned();
        let other = b.section_by_name(&name);
        let data_a = section.data().unwrap_or_default();
        let data_b = other
            .as_ref()
            .and_then(|s| s.data().ok())
            .unwrap_or_default();
        let size_b = other.as_ref().map(|s| s.size());
        let offset = first_difference(data_a, data_b);
        if size_b == Some(section.size()) && offset.is_none() {
            continue;
        }
        difference.sections.push(SectionDifference {
            sizes: (Some(section.size()), size_b),
            first_offset: offset,
            context: offset.map(|at| (excerpt(data_a, at), excerpt(data_b, at))),
            name,
        });
    }
    for section in b.sections() {
        let name = section.name().context("reading a section name")?;
        if a.section_by_name(name).is_none() {
            difference.sections.push(SectionDifference {
                name: name.to_owned(),
                sizes: (None, Some(section.size())),
                first_offset: None,
                context: None,
            });
        }
    }
    Ok(difference)
}

/// Offset of the first byte where `a` and `b` differ, or where the shorter one ends.
fn first_difference(a: &[u8], b: &[u8]) -> Option<u64> {
    let common = a.len().min(b.len());
    a[..common]
        .iter()
        .zip(&b[..common])
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then_some(common))
        .map(|at| at as u64)
}

/// Up to 48 bytes either side of `at`, non-printable bytes as `.`.
fn excerpt(data: &[u8], at: u64) -> String {
    let at = usize::try_from(at).unwrap_or(usize::MAX).min(data.len());
    let start = at.saturating_sub(48);
    let end = (at + 48).min(data.len());
    data[start..end]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary: a real ELF file with a `.rodata` section.
    fn this_binary() -> Vec<u8> {
        std::fs::read(std::env::current_exe().expect("test binary path")).expect("read it")
    }

    #[test]
    fn identical_files_have_no_difference() {
        let data = this_binary();
        let difference = compare(&data, &data).unwrap();
        assert!(difference.identical());
        assert!(difference.lines().is_empty());
    }

    #[test]
    fn a_changed_string_is_found_in_its_section_with_its_text() {
        let data = this_binary();
        let file = object::File::parse(&*data).unwrap();
        let rodata = file.section_by_name(".rodata").expect("a .rodata section");
        let (start, size) = rodata.file_range().expect("file-backed");
        let marker = b"/cargo/registry/src/";
        let found = data[start as usize..(start + size) as usize]
            .windows(marker.len())
            .position(|w| w == marker)
            .map(|p| start as usize + p);
        // Some path string lies in .rodata of any Rust binary (panic locations); when this
        // one has no remapped path, any byte in the middle of .rodata does.
        let at = found.unwrap_or((start + size / 2) as usize);
        let mut changed = data.clone();
        changed[at] ^= 0x20;

        let difference = compare(&data, &changed).unwrap();
        assert!(!difference.identical());
        assert_eq!(difference.first_offset, Some(at as u64));
        assert_eq!(difference.differing_bytes, 1);
        assert_eq!(difference.sections.len(), 1, "{:?}", difference.sections);
        let section = &difference.sections[0];
        assert_eq!(section.name, ".rodata");
        assert_eq!(section.first_offset, Some(at as u64 - start));
        let (a, b) = section.context.clone().unwrap();
        assert_ne!(a, b);
        assert!(
            difference
                .lines()
                .iter()
                .any(|l| l.starts_with("section .rodata"))
        );
    }

    #[test]
    fn other_lengths_and_non_elf_files_still_compare() {
        let difference = compare(b"abcdef", b"abcxef-more").unwrap();
        assert_eq!(difference.first_offset, Some(3));
        assert_eq!(difference.differing_bytes, 1);
        assert_eq!(difference.sizes, (6, 11));
        assert!(difference.sections.is_empty());
        assert_eq!(first_difference(b"abc", b"abcd"), Some(3));
        assert_eq!(first_difference(b"abc", b"abc"), None);
    }
}

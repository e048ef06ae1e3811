//! The CIEs of an ELF file's `.eh_frame`: what the unwinder will be told about the
//! artifact's own frames. The audit needs one fact from it: whether any CIE carries the
//! 'G' augmentation (an MTE-tagged frame), the only case in which LLVM libunwind runs its
//! MTE `stg` re-tagging ([`super::exemption::UNWIND_GATED`]).
//!
//! A small walker rather than a DWARF library: it reads entry headers and CIE augmentation
//! strings only (the format is the LSB's `.eh_frame`: 4-byte length, or `0xffffffff` and an
//! 8-byte length; a zero length is a terminator; a 4-byte CIE id of 0 marks a CIE, anything
//! else is an FDE's backwards offset to its CIE). It checks that every entry fits the
//! section and that every FDE points at a CIE the walk found, so a CIE cannot hide inside
//! another entry's bytes.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

/// What the walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EhFrame {
    /// Augmentation string of each CIE (`zR`, `zPLR`, ...) and how many CIEs have it.
    pub augmentations: BTreeMap<String, usize>,
    pub fdes: usize,
    /// Zero-length entries (terminators), walked over: an unwinder using `.eh_frame_hdr`
    /// can still reach entries after one.
    pub terminators: usize,
}

impl EhFrame {
    pub fn cies(&self) -> usize {
        self.augmentations.values().sum()
    }

    /// CIEs whose augmentation has `letter` (`'G'`: MTE-tagged frames).
    pub fn cies_with(&self, letter: char) -> usize {
        self.augmentations
            .iter()
            .filter(|(augmentation, _)| augmentation.contains(letter))
            .map(|(_, count)| count)
            .sum()
    }

    /// `3 CIE(s) (zR ×2, zPLR ×1), 40 FDE(s)`, for reports.
    pub fn summary(&self) -> String {
        let augmentations: Vec<String> = self
            .augmentations
            .iter()
            .map(|(augmentation, count)| format!("\"{augmentation}\" ×{count}"))
            .collect();
        format!(
            "{} CIE(s) ({}), {} FDE(s)",
            self.cies(),
            augmentations.join(", "),
            self.fdes
        )
    }
}

/// Walks an `.eh_frame` section's bytes.
pub fn parse(section: &[u8], little_endian: bool) -> Result<EhFrame> {
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = section.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    };
    let mut frame = EhFrame::default();
    let mut cie_offsets = BTreeSet::new();
    let mut fde_targets = Vec::new();
    let mut at = 0usize;
    while at < section.len() {
        let length = word(at).with_context(|| {
            format!(
                "entry at offset {at:#x}: the section ends inside its length ({} byte(s) left)",
                section.len() - at
            )
        })?;
        if length == 0 {
            frame.terminators += 1;
            at += 4;
            continue;
        }
        let (content, length) = if length == u32::MAX {
            let (low, high) = word(at + 4).zip(word(at + 8)).with_context(|| {
                format!("entry at offset {at:#x}: the section ends inside its 64-bit length")
            })?;
            let (low, high) = (u64::from(low), u64::from(high));
            let length = if little_endian {
                low | high << 32
            } else {
                high | low << 32
            };
            (at + 12, length)
        } else {
            (at + 4, u64::from(length))
        };
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| content.checked_add(length))
            .filter(|&end| end <= section.len())
            .with_context(|| {
                format!(
                    "entry at offset {at:#x} claims {length} byte(s), but the section has {} \
                     after its header",
                    section.len().saturating_sub(content)
                )
            })?;
        let id = word(content)
            .filter(|_| end - content >= 4)
            .with_context(|| {
                format!("entry at offset {at:#x} is too short ({length} byte(s)) for its CIE id")
            })?;
        if id == 0 {
            // version (1 byte), then the NUL-terminated augmentation string.
            let augmentation = section[content + 4..end]
                .get(1..)
                .and_then(|rest| {
                    rest.split(|&b| b == 0)
                        .next()
                        .filter(|s| s.len() < rest.len())
                })
                .with_context(|| {
                    format!(
                        "CIE at offset {at:#x}: no NUL-terminated augmentation string inside its \
                         {length} byte(s)"
                    )
                })?;
            *frame
                .augmentations
                .entry(String::from_utf8_lossy(augmentation).into_owned())
                .or_default() += 1;
            cie_offsets.insert(at);
        } else {
            // The CIE pointer counts back from its own position to the CIE's start.
            let target = content.checked_sub(id as usize).with_context(|| {
                format!("FDE at offset {at:#x} points {id:#x} byte(s) back, before the section")
            })?;
            fde_targets.push((at, target));
            frame.fdes += 1;
        }
        at = end;
    }
    for (fde, target) in fde_targets {
        if !cie_offsets.contains(&target) {
            bail!("FDE at offset {fde:#x} points to offset {target:#x}, where no CIE starts");
        }
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 32-bit-length CIE with `augmentation`, as a linker writes it.
    fn cie(augmentation: &str) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0, 1]; // CIE id 0, version 1
        body.extend_from_slice(augmentation.as_bytes());
        body.push(0);
        body.extend_from_slice(&[4, 0x78, 30]); // code/data alignment, return register
        if augmentation.starts_with('z') {
            body.extend_from_slice(&[1, 0x1b]); // augmentation data: pointer encoding
        }
        while (body.len() + 4) % 8 != 0 {
            body.push(0); // DW_CFA_nop
        }
        entry(body)
    }

    /// An FDE at `at` whose CIE starts at `cie_at`.
    fn fde(at: usize, cie_at: usize) -> Vec<u8> {
        let pointer = (at + 4 - cie_at) as u32;
        let mut body = pointer.to_le_bytes().to_vec();
        body.extend_from_slice(&[0; 8]); // pc begin, pc range
        body.extend_from_slice(&[0, 0, 0, 0]); // augmentation length, nops
        entry(body)
    }

    fn entry(body: Vec<u8>) -> Vec<u8> {
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend(body);
        bytes
    }

    fn section(cies: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for augmentation in cies {
            let cie_at = bytes.len();
            bytes.extend(cie(augmentation));
            let at = bytes.len();
            bytes.extend(fde(at, cie_at));
        }
        bytes
    }

    #[test]
    fn counts_cies_by_augmentation_and_finds_mte_tagged_ones() {
        let plain = parse(&section(&["zR", "zPLR", "zR"]), true).unwrap();
        assert_eq!(plain.cies(), 3);
        assert_eq!(plain.fdes, 3);
        assert_eq!(plain.augmentations["zR"], 2);
        assert_eq!(plain.cies_with('G'), 0);
        assert_eq!(
            plain.summary(),
            "3 CIE(s) (\"zPLR\" ×1, \"zR\" ×2), 3 FDE(s)"
        );

        let tagged = parse(&section(&["zR", "zRG"]), true).unwrap();
        assert_eq!(tagged.cies_with('G'), 1);
    }

    #[test]
    fn walks_over_zero_terminators_and_reads_64_bit_lengths() {
        let mut bytes = section(&["zR"]);
        bytes.extend_from_slice(&[0; 4]); // a terminator, as crtend.o leaves one
        // A 64-bit-length CIE with 'G' after it: still found.
        let body = cie("zRG")[4..].to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend(body);
        bytes.extend_from_slice(&[0; 4]);
        let frame = parse(&bytes, true).unwrap();
        assert_eq!(frame.terminators, 2);
        assert_eq!(frame.cies(), 2);
        assert_eq!(frame.cies_with('G'), 1);
    }

    #[test]
    fn reads_big_endian_sections() {
        let mut bytes = cie("zRG");
        bytes[..4].reverse();
        let frame = parse(&bytes, false).unwrap();
        assert_eq!(frame.cies_with('G'), 1);
        assert_eq!(parse(&[], true).unwrap(), EhFrame::default());
    }

    #[test]
    fn malformed_sections_are_clear_errors() {
        let error = |bytes: &[u8]| format!("{:#}", parse(bytes, true).unwrap_err());
        let whole = section(&["zR"]);
        // Cut inside the FDE, inside a length, and right after a 64-bit length marker.
        assert!(error(&whole[..whole.len() - 3]).contains("claims"));
        assert!(error(&whole[..whole.len() - 2 - fde(0, 0).len()]).contains("claims"));
        let mut short_length = whole.clone();
        short_length.extend_from_slice(&[1, 0]);
        assert!(error(&short_length).contains("ends inside its length"));
        let mut long_marker = whole.clone();
        long_marker.extend_from_slice(&[0xff; 4]);
        long_marker.extend_from_slice(&[0; 4]);
        assert!(error(&long_marker).contains("64-bit length"));
        // An entry too short for its id, a CIE without a terminated augmentation.
        assert!(error(&entry(vec![0, 0])).contains("too short"));
        assert!(error(&entry(vec![0, 0, 0, 0, 1, b'z', b'R'])).contains("augmentation"));
        // A length near u64::MAX must not overflow.
        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(error(&huge).contains("claims"));
    }

    #[test]
    fn an_fde_must_point_at_a_cie_the_walk_found() {
        let mut bytes = section(&["zR"]);
        // An FDE pointing 8 bytes into the CIE, where a forged 'G' CIE could hide.
        let at = bytes.len();
        bytes.extend(fde(at, 8));
        assert!(format!("{:#}", parse(&bytes, true).unwrap_err()).contains("where no CIE starts"));
        // And one pointing before the section.
        let mut before = section(&["zR"]);
        let at = before.len();
        let mut stray = fde(at, 0);
        stray[4..8].copy_from_slice(&(at as u32 + 100).to_le_bytes());
        before.extend(stray);
        assert!(format!("{:#}", parse(&before, true).unwrap_err()).contains("before the section"));
    }
}

//! Instruction-set audit of x86-64 and aarch64 ELF artifacts.
//!
//! The rule: an artifact may execute exactly the instructions its variant's `target-cpu`
//! enables ([`Level`], derived from rustc), plus code that provably runs only after a
//! runtime CPU-feature check ([`dispatch`]: proven from the disassembly, for dependencies
//! and our own kernels alike — no list of names). Everything else beyond the level is a
//! violation, except in the reviewed crates of [`exemption`] when the artifact shows their
//! detection code (accepted with a warning). The rule and the reachability analysis are the
//! same on both architectures; decoding and the per-function guard analysis are not.
//!
//! - [`features`]: iced's CPUID features (or aarch64's rustc features), rustc's names for
//!   them, levels and classes.
//! - [`program`]: the ELF file as functions, instructions and references.
//! - `guard`: which instructions of a function run only behind a detection check.
//! - [`dispatch`]: which functions can only be entered through such a check.
//! - [`exemption`]: the few reviewed crates whose dispatch the disassembly cannot prove
//!   (type-state), accepted only where the artifact contains their detection code; and
//!   unwinder code gated by a CIE augmentation, accepted only where [`eh_frame`] shows the
//!   artifact has no such CIE.

mod cfg;
pub mod dispatch;
pub mod eh_frame;
pub mod exemption;
pub mod features;
mod guard;
pub mod program;

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use dispatch::{Dispatch, Reach};
pub use exemption::{CrateDispatch, TYPE_STATE_DISPATCH};
pub use features::{Arch, Feature, IsaClass, Level, classify, feature_name};
pub use program::{Program, crate_of, demangle};

/// The audit of one artifact against one level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    pub instructions: u64,
    /// Instructions per class (an instruction needing several features counts once, in its
    /// highest class).
    pub classes: BTreeMap<IsaClass, u64>,
    /// Per feature beyond the architectural baseline: how many instructions need it.
    pub features: BTreeMap<String, FeatureUse>,
    /// Functions with instructions beyond the level, dispatched or not.
    pub beyond_level: Vec<BeyondLevel>,
    /// The highest psABI class the level enables (`baseline` for generic builds).
    pub top_class: IsaClass,
    /// Instructions of `top_class` in our own crates' code outside dispatched code: the
    /// sign that the artifact was really built for its level.
    pub own_top_class: u64,
    /// The same over the whole artifact.
    pub top_class_total: u64,
    /// Statics found to hold CPU detection results.
    pub detection_state: Vec<String>,
    /// Functions that read detection state or query the CPU.
    pub detecting_functions: usize,
    /// Words in code the decoder cannot read (aarch64 only: data in code, or encodings newer
    /// than the decoder knows), so not audited.
    #[serde(default)]
    pub undecodable: u64,
    /// The functions holding them, with their counts.
    #[serde(default)]
    pub undecodable_in: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureUse {
    pub instructions: u64,
    /// The variant's level includes the feature.
    pub in_level: bool,
    /// Instructions in dispatched code.
    pub dispatched: u64,
}

/// A function using instructions beyond the level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeyondLevel {
    pub function: String,
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// Beyond-level features and their instruction counts.
    pub features: BTreeMap<String, u64>,
    /// Of those, the instructions outside dispatched code (non-empty: a violation).
    pub undispatched: BTreeMap<String, u64>,
    pub evidence: Evidence,
}

impl BeyondLevel {
    pub fn is_violation(&self) -> bool {
        !self.undispatched.is_empty()
    }
}

/// Why beyond-level code is or is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Evidence {
    /// The function is entered only behind detection checks in these functions.
    Dispatched { behind: Vec<String> },
    /// The function checks detection itself before the instructions that need it.
    GuardedInside,
    /// Not provable from the disassembly; accepted because the crate is a reviewed
    /// type-state dispatcher ([`exemption`]) and this function shows its detection code.
    CrateExemption {
        mechanism: String,
        detection_in: String,
    },
    /// The crate is a reviewed type-state dispatcher, but the artifact has none of its
    /// detection code: not accepted.
    ExemptionWithoutEvidence { mechanism: String },
    /// Runs only while unwinding a frame whose CIE has `augmentation`
    /// ([`exemption::UNWIND_GATED`]), and the artifact's `.eh_frame` has no such CIE.
    NoGatingFrames {
        mechanism: String,
        augmentation: char,
        eh_frame: String,
    },
    /// The same gate, but the artifact has CIEs with the letter: the code can run. Not
    /// accepted.
    GatingFramesPresent {
        augmentation: char,
        cies: usize,
        eh_frame: String,
    },
    /// Reachable without any detection check (or only partly guarded inside).
    Unconditional,
    /// Only referenced from code nothing reaches: no evidence either way.
    Unexplained,
}

/// Decodes `data` and audits it against `level`; `own_crates` are our crates' names with
/// underscores.
pub fn audit_elf(data: &[u8], level: &Level, own_crates: &[String]) -> Result<Audit> {
    let program = Program::load(data)?;
    if program.arch != level.arch {
        anyhow::bail!(
            "the file is {:?} code but the level is for {:?}",
            program.arch,
            level.arch
        );
    }
    let dispatch = dispatch::analyze(&program);
    Ok(audit(
        &program,
        &dispatch,
        level,
        own_crates,
        exemption::for_arch(program.arch),
    ))
}

/// Applies `level` to an analysed program, with `exemptions` for type-state dispatchers.
pub fn audit(
    program: &Program,
    dispatch: &Dispatch,
    level: &Level,
    own_crates: &[String],
    exemptions: &[CrateDispatch],
) -> Audit {
    let top_class = level.top_class();
    let mut result = Audit {
        top_class,
        detection_state: dispatch
            .detection_state
            .iter()
            .map(|(_, _, name)| name.clone())
            .collect(),
        detecting_functions: dispatch.detecting_functions.len(),
        ..Audit::default()
    };
    let owners = program::owning_crates(program);
    for (index, function) in program.functions.iter().enumerate() {
        result.instructions += function.instructions;
        if function.undecodable > 0 {
            result.undecodable += function.undecodable;
            *result
                .undecodable_in
                .entry(function.name.clone())
                .or_default() += function.undecodable;
        }
        let own = own_crates.iter().any(|c| *c == owners[index]);
        let mut beyond: BTreeMap<String, u64> = BTreeMap::new();
        let mut undispatched: BTreeMap<String, u64> = BTreeMap::new();
        let mut guarded_inside = false;
        for &(address, features) in &function.extended {
            let dispatched = dispatch.is_dispatched(index, address);
            let class = features
                .iter()
                .map(classify)
                .max()
                .unwrap_or(IsaClass::Baseline);
            *result.classes.entry(class).or_default() += 1;
            if class == top_class && !dispatched {
                result.top_class_total += 1;
                if own {
                    result.own_top_class += 1;
                }
            }
            for feature in features.iter().filter(|&f| !features::is_architectural(f)) {
                let name = feature_name(feature);
                let in_level = level.allows(feature);
                let entry = result.features.entry(name.clone()).or_default();
                entry.instructions += 1;
                entry.in_level = in_level;
                if dispatched {
                    entry.dispatched += 1;
                }
                if !in_level {
                    *beyond.entry(name.clone()).or_default() += 1;
                    if dispatched {
                        guarded_inside |=
                            !matches!(dispatch.reach[index], Reach::Dispatched { .. });
                    } else {
                        *undispatched.entry(name).or_default() += 1;
                    }
                }
            }
        }
        let baseline = function.instructions - function.extended.len() as u64;
        *result.classes.entry(IsaClass::Baseline).or_default() += baseline;
        if beyond.is_empty() {
            continue;
        }
        let crate_name = owners[index].as_str();
        // Unwinder code behind a CIE augmentation the artifact's unwind tables lack cannot
        // run; with such CIEs present it fails, whatever else is said for the crate.
        let gate = exemption::unwind_gate(crate_name, &function.name, &undispatched)
            .map(|gate| (gate, program.eh_frame.cies_with(gate.augmentation)));
        let gate_closed = match gate {
            Some((gate, 0)) => {
                undispatched.remove(gate.feature);
                Some(gate)
            }
            _ => None,
        };
        let exemption = exemptions.iter().find(|e| e.crate_name == crate_name);
        let evidence = match &dispatch.reach[index] {
            Reach::Dispatched { behind } => Evidence::Dispatched {
                behind: behind.clone(),
            },
            _ if let Some((gate, cies @ 1..)) = gate => Evidence::GatingFramesPresent {
                augmentation: gate.augmentation,
                cies,
                eh_frame: program.eh_frame.summary(),
            },
            _ if let Some(gate) = gate_closed
                && undispatched.is_empty() =>
            {
                Evidence::NoGatingFrames {
                    mechanism: gate.mechanism.to_owned(),
                    augmentation: gate.augmentation,
                    eh_frame: program.eh_frame.summary(),
                }
            }
            _ if guarded_inside && undispatched.is_empty() => Evidence::GuardedInside,
            _ if let Some(exemption) = exemption => {
                // The review covers the rest; a closed gate's part is said alongside.
                let mechanism = match gate_closed {
                    Some(gate) => format!(
                        "{}; {} only for unwind frames whose CIE has the '{}' augmentation, and \
                         .eh_frame has none ({}): {}",
                        exemption.mechanism,
                        gate.feature,
                        gate.augmentation,
                        program.eh_frame.summary(),
                        gate.mechanism
                    ),
                    None => exemption.mechanism.to_owned(),
                };
                match exemption::detection_evidence(program, dispatch, crate_name) {
                    Some(detection_in) => {
                        undispatched.clear();
                        Evidence::CrateExemption {
                            mechanism,
                            detection_in,
                        }
                    }
                    None => Evidence::ExemptionWithoutEvidence { mechanism },
                }
            }
            Reach::Unexplained => Evidence::Unexplained,
            _ => Evidence::Unconditional,
        };
        result.beyond_level.push(BeyondLevel {
            crate_name: crate_name.to_owned(),
            function: function.name.clone(),
            features: beyond,
            undispatched,
            evidence,
        });
    }
    result.classes.retain(|_, count| *count > 0);
    result
}

impl Audit {
    pub fn violations(&self) -> impl Iterator<Item = &BeyondLevel> {
        self.beyond_level.iter().filter(|b| b.is_violation())
    }

    pub fn dispatched(&self) -> impl Iterator<Item = &BeyondLevel> {
        self.beyond_level.iter().filter(|b| !b.is_violation())
    }

    pub fn count(&self, class: IsaClass) -> u64 {
        self.classes.get(&class).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;

//! The verdict on one artifact's instruction audit ([`judge`]): code beyond the variant's
//! level that no visible CPU check guards fails, once per crate; code accepted on review
//! warns; a variant above the baseline that shows no sign of its level fails (the Python
//! module) or warns (a server).

use std::collections::BTreeMap;

use super::{Finding, report};
use crate::dist::Artifact;
use crate::isa::{self, Audit, Evidence, IsaClass, Level};
use crate::metadata::Role;

/// The audit's verdict on one artifact: failures and warnings.
pub fn judge(artifact: &Artifact, level: &Level, audit: &Audit) -> (Vec<Finding>, Vec<Finding>) {
    let finding = |crate_name: &str, message: String| Finding {
        artifact: artifact.path.clone(),
        crate_name: crate_name.to_owned(),
        message,
    };
    let mut failures = Vec::new();
    let mut warnings = Vec::new();

    // Undispatched code beyond the level, one finding per crate.
    let mut per_crate: BTreeMap<&str, Vec<&isa::BeyondLevel>> = BTreeMap::new();
    for violation in audit.violations() {
        per_crate
            .entry(&violation.crate_name)
            .or_default()
            .push(violation);
    }
    for (crate_name, functions) in per_crate {
        let mut features: BTreeMap<&str, u64> = BTreeMap::new();
        for function in &functions {
            for (feature, count) in &function.undispatched {
                *features.entry(feature).or_default() += count;
            }
        }
        let names: Vec<String> = functions
            .iter()
            .map(|f| match f.evidence {
                Evidence::Unexplained => {
                    format!("`{}` (referenced only from dead code)", f.function)
                }
                _ => format!("`{}`", f.function),
            })
            .collect();
        let exemption_note = functions
            .iter()
            .find_map(|f| match &f.evidence {
                Evidence::ExemptionWithoutEvidence { .. } => Some(format!(
                    " ({crate_name} is a reviewed type-state dispatcher, but this artifact has \
                     none of its detection code, so the exemption does not apply)"
                )),
                Evidence::GatingFramesPresent {
                    augmentation,
                    cies,
                    eh_frame,
                } => Some(format!(
                    " (`{}` runs only for unwind frames whose CIE has the '{augmentation}' \
                     augmentation, but this artifact's .eh_frame has {cies} such CIE(s): \
                     {eh_frame})",
                    f.function
                )),
                _ => None,
            })
            .unwrap_or_default();
        failures.push(finding(
            crate_name,
            format!(
                "{} beyond {} outside runtime-dispatched code, in {} function(s) of {crate_name}: {}. \
                 Either a target-cpu/target-feature leaked into this variant, or the code is \
                 called without a CPU-feature check the audit can see \
                 (is_x86_feature_detected!/is_aarch64_feature_detected!, or a static holding a \
                 cpuid or getauxval(AT_HWCAP) result, tested before the call){exemption_note}",
                report::format_features(features.iter().map(|(f, c)| (*f, *c))),
                level,
                functions.len(),
                names.join(", ")
            ),
        ));
    }

    // Code accepted on review rather than proof: one warning per crate.
    let mut exempted: BTreeMap<&str, (Vec<&str>, &str, &str)> = BTreeMap::new();
    for function in &audit.beyond_level {
        if let Evidence::CrateExemption {
            mechanism,
            detection_in,
        } = &function.evidence
        {
            exempted
                .entry(&function.crate_name)
                .or_insert((Vec::new(), mechanism, detection_in))
                .0
                .push(&function.function);
        }
    }
    for (crate_name, (functions, mechanism, detection_in)) in exempted {
        warnings.push(finding(
            crate_name,
            format!(
                "{} function(s) of {crate_name} beyond {level} accepted as reviewed type-state \
                 dispatch, not proven from the disassembly ({mechanism}; detection code found \
                 in `{detection_in}`): {}",
                functions.len(),
                functions
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    // Code gated by a CIE augmentation the artifact's .eh_frame lacks: proven from the
    // unwind tables, on a reviewed reading of the unwinder's source.
    for function in &audit.beyond_level {
        if let Evidence::NoGatingFrames {
            mechanism,
            augmentation,
            eh_frame,
        } = &function.evidence
        {
            warnings.push(finding(
                &function.crate_name,
                format!(
                    "`{}` ({}) beyond {level} accepted: it runs only for unwind frames whose CIE \
                     has the '{augmentation}' augmentation, and this artifact's .eh_frame has \
                     none ({eh_frame}); {mechanism}",
                    function.function,
                    report::format_features(
                        function.features.iter().map(|(f, c)| (f.as_str(), *c))
                    ),
                ),
            ));
        }
    }

    // Words the decoder cannot read were not audited: say so, with where they are.
    if audit.undecodable > 0 {
        let mut places: Vec<(&String, &u64)> = audit.undecodable_in.iter().collect();
        places.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = places
            .iter()
            .take(5)
            .map(|(function, count)| format!("`{function}` ({count})"))
            .collect();
        warnings.push(finding(
            "",
            format!(
                "{} word(s) of code the decoder cannot read were not audited (data in code, \
                 or encodings newer than the decoder), in {} function(s): {}{}",
                audit.undecodable,
                places.len(),
                shown.join(", "),
                if places.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ),
        ));
    }

    // A variant above the baseline must show its level.
    if audit.top_class != IsaClass::Baseline {
        let class = report::class_name(audit.top_class);
        if audit.top_class_total == 0 {
            failures.push(finding(
                "",
                format!(
                    "built for {level} but no {class} instruction runs outside dispatched code; \
                     the variant's rustflags did not reach the build"
                ),
            ));
        } else if audit.own_top_class == 0 {
            let message = format!(
                "built for {level} but our own code has no {class} instruction outside \
                 dispatched code"
            );
            // The learning-store kernels live in the Python module; a server may
            // legitimately not have a loop the compiler vectorizes that wide.
            if artifact.role == Role::PythonModule {
                failures.push(finding(
                    "",
                    format!("{message}; the learning-store kernels were not vectorized for it"),
                ));
            } else {
                warnings.push(finding("", message));
            }
        }
    }
    (failures, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{BeyondLevel, FeatureUse};

    fn artifact(path: &str, role: &str) -> Artifact {
        serde_json::from_value(serde_json::json!({
            "path": path, "kind": "server-binary", "crate": "bash-god",
            "crate_version": "0.1.0", "role": role, "variant": "znver4",
            "target": "x86_64-unknown-linux-musl", "target_cpu": "znver4",
            "rustflags": [], "sha256": "00", "size": 1,
            "unstripped_path": null, "unstripped_sha256": null,
            "rustc_version": "rustc 1.95.0", "git_commit": "abc", "cargo_lock_sha256": "00"
        }))
        .unwrap()
    }

    fn beyond(
        function: &str,
        crate_name: &str,
        undispatched: u64,
        evidence: Evidence,
    ) -> BeyondLevel {
        BeyondLevel {
            function: function.into(),
            crate_name: crate_name.into(),
            features: [("AVX512F".to_owned(), 3)].into(),
            undispatched: if undispatched > 0 {
                [("AVX512F".to_owned(), undispatched)].into()
            } else {
                BTreeMap::new()
            },
            evidence,
        }
    }

    fn audit_with(beyond_level: Vec<BeyondLevel>, own_top_class: u64) -> Audit {
        Audit {
            instructions: 100,
            features: [(
                "AVX512F".to_owned(),
                FeatureUse {
                    instructions: 3,
                    in_level: false,
                    dispatched: 0,
                },
            )]
            .into(),
            beyond_level,
            top_class: IsaClass::Avx512,
            own_top_class,
            top_class_total: 10,
            ..Audit::default()
        }
    }

    #[test]
    fn undispatched_code_fails_once_per_crate_and_exemptions_warn() {
        let level = Level::new("x86-64-v3", ["avx2".to_owned()].into());
        let audit = audit_with(
            vec![
                beyond("leaky::a", "leaky", 3, Evidence::Unconditional),
                beyond("leaky::b", "leaky", 1, Evidence::Unexplained),
                beyond(
                    "memchr::find_avx512",
                    "memchr",
                    0,
                    Evidence::Dispatched {
                        behind: vec!["memchr::detect".into()],
                    },
                ),
                beyond(
                    "crc32fast::calculate_avx512",
                    "crc32fast",
                    0,
                    Evidence::CrateExemption {
                        mechanism: "State::new checks".into(),
                        detection_in: "flate2::Crc::new".into(),
                    },
                ),
            ],
            5,
        );
        let (failures, warnings) = judge(&artifact("x/bin/s", "server"), &level, &audit);
        assert_eq!(failures.len(), 1, "{failures:#?}");
        assert_eq!(failures[0].crate_name, "leaky");
        assert!(
            failures[0]
                .message
                .contains("AVX512F×4 beyond target-cpu=x86-64-v3")
        );
        assert!(
            failures[0]
                .message
                .contains("`leaky::b` (referenced only from dead code)")
        );
        assert_eq!(warnings.len(), 1, "{warnings:#?}");
        assert_eq!(warnings[0].crate_name, "crc32fast");
        assert!(warnings[0].message.contains("flate2::Crc::new"));
        // The message is one sentence, not a line-continuation accident.
        assert!(
            !warnings[0].message.contains("  "),
            "{}",
            warnings[0].message
        );
    }

    #[test]
    fn a_variant_must_show_its_level() {
        let level = Level::new("znver4", ["avx512f".to_owned()].into());
        let (failures, warnings) = judge(
            &artifact("z/lib/m.so", "python-module"),
            &level,
            &audit_with(vec![], 0),
        );
        assert!(warnings.is_empty());
        assert!(
            failures[0].message.contains("kernels were not vectorized"),
            "{failures:?}"
        );

        let (failures, warnings) = judge(
            &artifact("z/bin/s", "server"),
            &level,
            &audit_with(vec![], 0),
        );
        assert!(failures.is_empty(), "{failures:?}");
        assert!(warnings[0].message.contains("our own code has no AVX-512"));

        let mut nothing = audit_with(vec![], 0);
        nothing.top_class_total = 0;
        let (failures, _) = judge(&artifact("z/bin/s", "server"), &level, &nothing);
        assert!(
            failures[0]
                .message
                .contains("rustflags did not reach the build")
        );
    }
}

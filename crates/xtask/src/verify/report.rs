//! `dist/report.json`, `dist/report.md` (everything, in full) and the terminal summary
//! (one line per crate for findings and dispatched code, so what matters stays visible).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use super::{Finding, Report};
use crate::dist;
use crate::isa::{Evidence, IsaClass};

pub const JSON_FILE: &str = "report.json";
pub const MARKDOWN_FILE: &str = "report.md";

pub fn write(dist_dir: &Path, report: &Report) -> Result<()> {
    let json = serde_json::to_string_pretty(report).context("serializing the report")? + "\n";
    fs::write(dist_dir.join(JSON_FILE), json).context("writing report.json")?;
    fs::write(dist_dir.join(MARKDOWN_FILE), render_markdown(report))
        .context("writing report.md")?;
    Ok(())
}

pub fn class_name(class: IsaClass) -> &'static str {
    match class {
        IsaClass::Baseline => "x86-64-v1",
        IsaClass::V2 => "x86-64-v2",
        IsaClass::V3 => "x86-64-v3",
        IsaClass::Avx512 => "AVX-512",
        IsaClass::OtherExtension => "other-extension",
    }
}

/// `AVX2×12, SSE4_1×3`.
pub fn format_features<'a>(features: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    features
        .into_iter()
        .map(|(feature, count)| format!("{feature}×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per crate (findings without a crate stay one line each): `crate: first
/// message (and N more in M artifacts)`.
pub fn grouped(findings: &[Finding]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut per_crate: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for finding in findings {
        if finding.crate_name.is_empty() {
            lines.push(finding.to_string());
        } else {
            per_crate
                .entry(&finding.crate_name)
                .or_default()
                .push(finding);
        }
    }
    for (crate_name, list) in per_crate {
        let artifacts: BTreeSet<&str> = list.iter().map(|f| f.artifact.as_str()).collect();
        let first = truncate(&list[0].to_string(), 220);
        lines.push(if list.len() == 1 {
            format!("[{crate_name}] {first}")
        } else {
            format!(
                "[{crate_name}] {} finding(s) in {} artifact(s), first: {first}",
                list.len(),
                artifacts.len()
            )
        });
    }
    lines
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}… (report.md has it in full)")
}

/// Dispatched beyond-level code per crate: `(features, functions, artifacts)`.
type DispatchedByCrate<'a> =
    BTreeMap<&'a str, (BTreeMap<&'a str, u64>, BTreeSet<&'a str>, BTreeSet<&'a str>)>;

fn dispatched_by_crate(report: &Report) -> DispatchedByCrate<'_> {
    let mut by_crate: DispatchedByCrate = BTreeMap::new();
    for artifact in &report.artifacts {
        let Some(audit) = &artifact.audit else {
            continue;
        };
        for function in audit.dispatched() {
            let entry = by_crate.entry(&function.crate_name).or_default();
            for (feature, count) in &function.features {
                *entry.0.entry(feature).or_default() += count;
            }
            entry.1.insert(&function.function);
            entry.2.insert(&artifact.path);
        }
    }
    by_crate
}

/// The human-readable report.
pub fn render_markdown(report: &Report) -> String {
    let mut md = String::new();
    let verdict = if report.passed { "PASSED" } else { "FAILED" };
    md.push_str(&format!("# mcp-foundry dist verification: {verdict}\n\n"));
    md.push_str(&format!(
        "- git commit: `{}`\n- {}\n\n",
        report.git_commit, report.rustc_version
    ));
    md.push_str(
        "Rule: an artifact may use exactly the CPU features rustc enables for its variant's \
         `target-cpu`, plus code the disassembly proves runs only after a runtime CPU-feature \
         check (entered only through a branch on `cpuid`/`is_x86_feature_detected!` results on \
         x86-64, `getauxval(AT_HWCAP)`/`is_aarch64_feature_detected!` results on aarch64). \
         Instruction counts below are per instruction, an instruction counting once in its \
         highest class; aarch64 has no psABI levels, so its extensions count as `other`.\n\n",
    );
    md.push_str("## Artifacts\n\n");
    md.push_str(
        "| artifact | crate | variant | size | instructions | x86-64-v2 | x86-64-v3 | AVX-512 | \
         other | beyond level: dispatched / not | level's top class in own code | checks |\n",
    );
    md.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for artifact in &report.artifacts {
        let mut checks = Vec::new();
        if let Some(exports) = &artifact.exports {
            checks.push(format!("exports: {}", exports.join(" ")));
        }
        if let Some(is_static) = artifact.statically_linked {
            checks.push(if is_static { "static" } else { "DYNAMIC" }.to_owned());
        }
        let Some(audit) = &artifact.audit else {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | not audited | | | | | | | {} |\n",
                artifact.path,
                artifact.crate_name,
                artifact.variant,
                dist::human_size(artifact.size),
                checks.join("; ")
            ));
            continue;
        };
        let (mut dispatched, mut undispatched) = (0, 0);
        for function in &audit.beyond_level {
            let total: u64 = function.features.values().sum();
            let not: u64 = function.undispatched.values().sum();
            dispatched += total - not;
            undispatched += not;
        }
        let top = if audit.top_class == IsaClass::Baseline {
            "—".to_owned()
        } else {
            format!("{} ({})", audit.own_top_class, class_name(audit.top_class))
        };
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {dispatched} / {undispatched} | {top} | {} |\n",
            artifact.path,
            artifact.crate_name,
            artifact.variant,
            dist::human_size(artifact.size),
            audit.instructions,
            audit.count(IsaClass::V2),
            audit.count(IsaClass::V3),
            audit.count(IsaClass::Avx512),
            audit.count(IsaClass::OtherExtension),
            checks.join("; ")
        ));
    }

    md.push_str("\n## Features per artifact\n\n");
    md.push_str(
        "Every feature beyond the architecture's baseline, with its instruction count; `level` marks \
         features the variant's target-cpu enables, `beyond level` the others (with how many \
         of their instructions are runtime-dispatched).\n\n",
    );
    for artifact in &report.artifacts {
        let Some(audit) = &artifact.audit else {
            continue;
        };
        let (within, beyond): (Vec<_>, Vec<_>) =
            audit.features.iter().partition(|(_, usage)| usage.in_level);
        md.push_str(&format!(
            "- `{}` (target-cpu={}):\n  - level: {}\n  - beyond level: {}\n  - detection state: {} ({} functions read it or query the CPU)\n",
            artifact.path,
            artifact.target_cpu,
            none_if_empty(format_features(within.iter().map(|(f, u)| (f.as_str(), u.instructions)))),
            none_if_empty(
                beyond
                    .iter()
                    .map(|(f, u)| format!("{f}×{} ({} dispatched)", u.instructions, u.dispatched))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            none_if_empty(audit.detection_state.join(", ")),
            audit.detecting_functions,
        ));
    }

    md.push_str("\n## Runtime-dispatched code beyond the level (accepted)\n\n");
    let by_crate = dispatched_by_crate(report);
    if by_crate.is_empty() {
        md.push_str("none\n");
    }
    for (crate_name, (features, functions, artifacts)) in &by_crate {
        md.push_str(&format!(
            "### {crate_name}\n\n{} function(s) in {} artifact(s); features: {}\n\n",
            functions.len(),
            artifacts.len(),
            format_features(features.iter().map(|(f, c)| (*f, *c)))
        ));
        let mut rows: BTreeMap<&str, (String, BTreeSet<&str>)> = BTreeMap::new();
        for artifact in &report.artifacts {
            let Some(audit) = &artifact.audit else {
                continue;
            };
            for function in audit.dispatched().filter(|f| f.crate_name == *crate_name) {
                let evidence = match &function.evidence {
                    Evidence::Dispatched { behind } => format!(
                        "entered only behind checks in {}",
                        behind
                            .iter()
                            .map(|b| format!("`{b}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Evidence::GuardedInside => "checks the CPU itself first".to_owned(),
                    Evidence::CrateExemption {
                        mechanism,
                        detection_in,
                    } => format!(
                        "reviewed type-state dispatch, not proven ({mechanism}); detection \
                         code in `{detection_in}`"
                    ),
                    Evidence::NoGatingFrames {
                        mechanism,
                        augmentation,
                        eh_frame,
                    } => format!(
                        "runs only for unwind frames whose CIE has the '{augmentation}' \
                         augmentation; .eh_frame has none ({eh_frame}); {mechanism}"
                    ),
                    other => format!("{other:?}"),
                };
                rows.entry(&function.function)
                    .or_insert((evidence, BTreeSet::new()))
                    .1
                    .insert(&artifact.variant);
            }
        }
        for (function, (evidence, variants)) in rows {
            md.push_str(&format!(
                "- `{function}` ({}): {evidence}\n",
                variants.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        md.push('\n');
    }

    md.push_str("\n## Reproducibility\n\n");
    match &report.reproducibility {
        None => md.push_str("not checked (run `cargo xtask verify --rebuild`)\n"),
        Some(repro) => {
            md.push_str(&format!(
                "Rebuilt {} in `{}`; compared {} artifacts: {}\n",
                repro.crates.join(", "),
                repro.rebuild_directory,
                repro.compared,
                if repro.mismatches.is_empty() {
                    "all identical".to_owned()
                } else {
                    format!("{} differ", repro.mismatches.len())
                }
            ));
            for mismatch in &repro.mismatches {
                md.push_str(&format!("- {mismatch}\n"));
            }
        }
    }
    for (title, findings) in [
        ("Failures", &report.failures),
        ("Warnings", &report.warnings),
    ] {
        md.push_str(&format!("\n## {title}\n\n"));
        if findings.is_empty() {
            md.push_str("none\n");
        }
        for finding in findings {
            md.push_str(&format!("- {finding}\n"));
        }
    }
    md
}

fn none_if_empty(text: String) -> String {
    if text.is_empty() {
        "none".to_owned()
    } else {
        text
    }
}

pub fn print_summary(report: &Report) {
    eprintln!();
    eprintln!(
        "{:<44} {:>10} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9}",
        "artifact", "instrs", "v2", "v3", "avx512", "other", "disp.", "own-top"
    );
    for artifact in &report.artifacts {
        let Some(audit) = &artifact.audit else {
            eprintln!("{:<44} {:>10}", artifact.path, "not audited");
            continue;
        };
        let dispatched: u64 = audit
            .beyond_level
            .iter()
            .map(|f| f.features.values().sum::<u64>() - f.undispatched.values().sum::<u64>())
            .sum();
        eprintln!(
            "{:<44} {:>10} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9}",
            artifact.path,
            audit.instructions,
            audit.count(IsaClass::V2),
            audit.count(IsaClass::V3),
            audit.count(IsaClass::Avx512),
            audit.count(IsaClass::OtherExtension),
            dispatched,
            if audit.top_class == IsaClass::Baseline {
                "-".to_owned()
            } else {
                audit.own_top_class.to_string()
            }
        );
    }
    for (crate_name, (features, functions, artifacts)) in dispatched_by_crate(report) {
        eprintln!(
            "dispatched: [{crate_name}] {} in {} function(s), {} artifact(s): runtime-selected, accepted",
            features.keys().copied().collect::<Vec<_>>().join(", "),
            functions.len(),
            artifacts.len()
        );
    }
    if let Some(repro) = &report.reproducibility {
        eprintln!(
            "reproducibility: {} artifacts compared, {} mismatches",
            repro.compared,
            repro.mismatches.len()
        );
    }
    for line in grouped(&report.warnings) {
        eprintln!("warning: {line}");
    }
    for line in grouped(&report.failures) {
        eprintln!("FAILED: {line}");
    }
    eprintln!(
        "verify: {} (report.md lists everything in full)",
        if report.passed { "passed" } else { "FAILED" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(artifact: &str, crate_name: &str, message: &str) -> Finding {
        Finding {
            artifact: artifact.into(),
            crate_name: crate_name.into(),
            message: message.into(),
        }
    }

    #[test]
    fn markdown_report_shows_verdict_and_failures() {
        let report = Report {
            passed: false,
            git_commit: "abc".into(),
            rustc_version: "rustc 1.95.0".into(),
            failures: vec![finding(
                "generic/bin/x",
                "",
                "AVX512F×1 beyond target-cpu=generic",
            )],
            warnings: vec![],
            artifacts: vec![],
            reproducibility: None,
        };
        let md = render_markdown(&report);
        assert!(md.contains("FAILED"));
        assert!(md.contains("generic/bin/x: AVX512F×1 beyond target-cpu=generic"));
        assert!(md.contains("not checked"));
    }

    #[test]
    fn findings_are_grouped_per_crate_on_one_line() {
        let findings = vec![
            finding(
                "generic/bin/a",
                "simdutf8",
                "AVX2×3 beyond target-cpu=generic",
            ),
            finding(
                "generic/bin/b",
                "simdutf8",
                "AVX2×4 beyond target-cpu=generic",
            ),
            finding("znver4/bin/a", "simdutf8", "x"),
            finding("generic/bin/a", "", "not statically linked"),
        ];
        let lines = grouped(&findings);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], "generic/bin/a: not statically linked");
        assert!(
            lines[1].starts_with(
                "[simdutf8] 3 finding(s) in 3 artifact(s), first: generic/bin/a: AVX2×3"
            ),
            "{}",
            lines[1]
        );
    }
}

//! `cargo xtask verify [--rebuild]`: checks the artifacts `cargo xtask dist` produced.
//!
//! - integrity: every file's sha256 matches `dist/manifest.json`;
//! - instruction audit of the unstripped copies (see [`crate::isa`]): a generic artifact has
//!   no AVX-512 outside runtime-dispatched functions; an AVX-512 variant's Python module has
//!   AVX-512 in our own code (the learning-store kernels);
//! - exports: the Python module exports exactly `PyInit_<module>`;
//! - servers are statically linked (no interpreter, no needed libraries);
//! - with `--rebuild`: a second build in another absolute directory is bit-identical.
//!
//! Writes `dist/report.json` and `dist/report.md`; any failed rule is an error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::Object;
use serde::{Deserialize, Serialize};

use crate::dist::{self, ArtifactKind, DistRequest, Manifest, SourceInfo};
use crate::isa::{self, IsaClass, Violation};
use crate::metadata::{Role, Workspace};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// The dist directory to verify (default: `<workspace>/dist`).
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,
    /// Build everything again in a different absolute directory and compare sha256.
    #[arg(long)]
    pub rebuild: bool,
    /// With --rebuild: rebuild only this crate (repeatable; default: every crate in the
    /// manifest). For CI time budgets.
    #[arg(long = "rebuild-crate", value_name = "CRATE", requires = "rebuild")]
    pub rebuild_crates: Vec<String>,
    /// With --rebuild: rebuild only this variant (repeatable; default: every variant in the
    /// manifest). The build is the same in every variant but for `-C target-cpu`.
    #[arg(long = "rebuild-variant", value_name = "VARIANT", requires = "rebuild")]
    pub rebuild_variants: Vec<String>,
}

/// `dist/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub passed: bool,
    pub git_commit: String,
    pub rustc_version: String,
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    pub artifacts: Vec<ArtifactReport>,
    pub reproducibility: Option<Reproducibility>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactReport {
    pub path: String,
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub variant: String,
    pub target_cpu: String,
    pub kind: ArtifactKind,
    pub size: u64,
    pub sha256: String,
    pub instructions: u64,
    pub classes: BTreeMap<IsaClass, u64>,
    /// Beyond-baseline features and their instruction counts.
    pub features: BTreeMap<String, u64>,
    /// AVX-512 instructions in functions of our own crates.
    pub own_avx512: u64,
    /// Allow-listed functions using beyond-baseline instructions (generic variant only).
    pub allowed: Vec<AllowedUse>,
    pub violations: Vec<Violation>,
    pub exports: Option<Vec<String>>,
    pub statically_linked: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AllowedUse {
    pub function: String,
    pub why: String,
    pub features: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reproducibility {
    /// Crates rebuilt (a subset when `--rebuild-crate` was given).
    pub crates: Vec<String>,
    pub rebuild_directory: String,
    pub compared: usize,
    /// `path: reason` for every artifact that differs or is missing.
    pub mismatches: Vec<String>,
}

pub fn run(workspace: &Workspace, args: &VerifyArgs) -> Result<Report> {
    let dist_dir = args
        .dist
        .clone()
        .unwrap_or_else(|| workspace.root.join("dist"));
    let manifest = Manifest::load(&dist_dir)?;
    let mut report = audit(workspace, &dist_dir, &manifest)?;
    if args.rebuild {
        let reproducibility = rebuild(
            workspace,
            &manifest.restricted_to_variants(&args.rebuild_variants)?,
            &args.rebuild_crates,
        )?;
        for mismatch in &reproducibility.mismatches {
            report
                .failures
                .push(format!("not reproducible: {mismatch}"));
        }
        report.reproducibility = Some(reproducibility);
    }
    report.passed = report.failures.is_empty();
    write_report(&dist_dir, &report)?;
    print_summary(&report);
    if !report.passed {
        bail!(
            "verify found {} problem(s):\n  {}\n(details: {})",
            report.failures.len(),
            report.failures.join("\n  "),
            dist_dir.join("report.md").display()
        );
    }
    Ok(report)
}

/// Integrity, instruction audit, exports and linking checks of every artifact.
pub fn audit(workspace: &Workspace, dist_dir: &Path, manifest: &Manifest) -> Result<Report> {
    let mut report = Report {
        passed: false,
        git_commit: manifest.git_commit.clone(),
        rustc_version: manifest.rustc_version.clone(),
        failures: Vec::new(),
        warnings: Vec::new(),
        artifacts: Vec::new(),
        reproducibility: None,
    };
    let own_crates: Vec<String> = workspace
        .crates
        .iter()
        .map(|c| c.name.replace('-', "_"))
        .collect();
    let mut avx512_cpus: BTreeMap<String, bool> = BTreeMap::new();

    for artifact in &manifest.artifacts {
        let path = dist_dir.join(&artifact.path);
        let (sha256, size) = dist::hash_file(&path)
            .with_context(|| format!("{} is listed in the manifest", artifact.path))?;
        if sha256 != artifact.sha256 {
            report.failures.push(format!(
                "{}: sha256 {sha256} differs from the manifest's {}; the file changed after dist",
                artifact.path, artifact.sha256
            ));
        }
        if !artifact.kind.is_elf() {
            continue;
        }
        if artifact.kind == ArtifactKind::PythonExtension {
            // Same bytes as lib/lib<name>.so, audited there.
            let library = manifest.artifacts.iter().find(|a| {
                a.kind == ArtifactKind::SharedLibrary
                    && a.variant == artifact.variant
                    && a.crate_name == artifact.crate_name
            });
            if library.is_none_or(|library| library.sha256 != artifact.sha256) {
                report.failures.push(format!(
                    "{}: differs from the crate's lib/ shared library of the same variant",
                    artifact.path
                ));
            }
            continue;
        }

        let unstripped_relative = artifact
            .unstripped_path
            .as_deref()
            .with_context(|| format!("{}: the manifest lists no unstripped copy", artifact.path))?;
        let unstripped = fs::read(dist_dir.join(unstripped_relative))
            .with_context(|| format!("reading {unstripped_relative}"))?;
        let functions = isa::audit_elf(&unstripped)
            .with_context(|| format!("auditing {unstripped_relative}"))?;
        let totals = isa::totals(&functions);
        let own_avx512 = isa::own_avx512(&functions, &own_crates);
        let mut entry = ArtifactReport {
            path: artifact.path.clone(),
            crate_name: artifact.crate_name.clone(),
            variant: artifact.variant.clone(),
            target_cpu: artifact.target_cpu.clone(),
            kind: artifact.kind,
            size,
            sha256,
            instructions: totals.instructions,
            classes: totals.classes.clone(),
            features: totals.features.clone(),
            own_avx512,
            allowed: Vec::new(),
            violations: Vec::new(),
            exports: None,
            statically_linked: None,
        };

        if artifact.target_cpu == "generic" {
            entry.violations = isa::generic_violations(&functions);
            for violation in &entry.violations {
                report.failures.push(format!(
                    "{}: AVX-512 in a generic build, in `{}` ({}); a target-cpu leaked into \
                     the generic variant, or this is runtime-dispatched code missing from \
                     isa::GENERIC_ALLOW_LIST",
                    artifact.path,
                    violation.function,
                    format_features(&violation.features)
                ));
            }
            for warning in isa::generic_warnings(&functions) {
                report.warnings.push(format!(
                    "{}: `{}` uses {} beyond x86-64-v1 and is not on the allow-list",
                    artifact.path,
                    warning.function,
                    format_features(&warning.features)
                ));
            }
            entry.allowed = functions
                .iter()
                .filter(|f| f.classes.keys().any(|class| class.beyond_baseline()))
                .filter_map(|f| {
                    isa::allowed_by(&f.name, isa::GENERIC_ALLOW_LIST).map(|rule| AllowedUse {
                        function: f.name.clone(),
                        why: rule.why.to_owned(),
                        features: f.features.clone(),
                    })
                })
                .collect();
        } else {
            let has_avx512 = match avx512_cpus.get(&artifact.target_cpu) {
                Some(known) => *known,
                None => {
                    let known = target_cpu_has_avx512(&artifact.target, &artifact.target_cpu)?;
                    avx512_cpus.insert(artifact.target_cpu.clone(), known);
                    known
                }
            };
            if has_avx512 && own_avx512 == 0 {
                let message = format!(
                    "{}: built for {} (AVX-512) but our own code has no AVX-512 instruction",
                    artifact.path, artifact.target_cpu
                );
                // The learning-store kernels live in the Python module; a server may
                // legitimately not call them.
                if artifact.role == Role::PythonModule {
                    report.failures.push(format!(
                        "{message}; the learning-store kernels were not vectorized for it"
                    ));
                } else {
                    report.warnings.push(message);
                }
            }
        }

        let stripped = fs::read(&path).with_context(|| format!("reading {}", artifact.path))?;
        match artifact.kind {
            ArtifactKind::SharedLibrary => {
                let exports = exported_symbols(&stripped)?;
                let module = workspace
                    .crate_spec(&artifact.crate_name)
                    .ok()
                    .and_then(|spec| spec.python_module.clone())
                    .unwrap_or_else(|| artifact.crate_name.replace('-', "_"));
                for problem in exports_problems(&exports, &module) {
                    report
                        .failures
                        .push(format!("{}: {problem}", artifact.path));
                }
                entry.exports = Some(exports);
            }
            ArtifactKind::ServerBinary => {
                let is_static = statically_linked(&stripped)?;
                if !is_static {
                    report.failures.push(format!(
                        "{}: not statically linked (has an ELF interpreter or needed libraries)",
                        artifact.path
                    ));
                }
                entry.statically_linked = Some(is_static);
            }
            _ => {}
        }
        report.artifacts.push(entry);
    }
    Ok(report)
}

fn format_features(features: &BTreeMap<String, u64>) -> String {
    features
        .iter()
        .map(|(feature, count)| format!("{feature}×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether rustc enables `avx512f` for `target_cpu` on `target`.
fn target_cpu_has_avx512(target: &str, target_cpu: &str) -> Result<bool> {
    Ok(crate::cpu::target_features(target, target_cpu)?.contains("avx512f"))
}

/// Names of the dynamic symbols a shared library defines and exports, sorted.
pub fn exported_symbols(data: &[u8]) -> Result<Vec<String>> {
    let file = object::File::parse(data).context("reading the shared library")?;
    let mut names = Vec::new();
    for export in file.exports().context("reading the dynamic symbol table")? {
        let export = export.context("reading an exported symbol")?;
        match export.name() {
            object::read::NameOrOrdinal::Name(name) => {
                names.push(String::from_utf8_lossy(name).into_owned())
            }
            object::read::NameOrOrdinal::Ordinal(ordinal) => names.push(format!("#{ordinal}")),
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// What is wrong with a Python module's export list: the init function is missing or
/// anything else is exported.
pub fn exports_problems(exports: &[String], module: &str) -> Vec<String> {
    let init = format!("PyInit_{module}");
    let mut problems = Vec::new();
    if !exports.contains(&init) {
        problems.push(format!("does not export {init}; Python cannot import it"));
    }
    let unexpected: Vec<&String> = exports.iter().filter(|name| **name != init).collect();
    if !unexpected.is_empty() {
        problems.push(format!(
            "exports unexpected symbols: {}",
            unexpected
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    problems
}

/// No program interpreter and no needed shared libraries.
pub fn statically_linked(data: &[u8]) -> Result<bool> {
    let file = object::File::parse(data).context("reading the executable")?;
    let has_interpreter = file.section_by_name(".interp").is_some();
    let needed_libraries = file
        .import_libraries()
        .context("reading the needed libraries")?
        .count();
    let imported_symbols = file
        .imports()
        .context("reading the dynamic imports")?
        .count();
    Ok(!has_interpreter && needed_libraries == 0 && imported_symbols == 0)
}

/// Builds the manifest's crates again from a copy of the sources in another absolute
/// directory, then compares every artifact's sha256 (stripped and unstripped).
pub fn rebuild(
    workspace: &Workspace,
    manifest: &Manifest,
    only: &[String],
) -> Result<Reproducibility> {
    let base = workspace.target_dir.join("repro");
    let source_copy = base.join("mcp-foundry");
    if source_copy.exists() {
        fs::remove_dir_all(&source_copy)
            .with_context(|| format!("removing the previous copy {}", source_copy.display()))?;
    }
    fs::create_dir_all(&source_copy)?;
    dist::sources::copy_sources(
        &workspace.root,
        &manifest.git_commit,
        manifest.git_dirty,
        &source_copy,
    )?;

    let copy = Workspace::load_from(&source_copy)?;
    let crate_names = if only.is_empty() {
        manifest.crate_names()
    } else {
        only.to_vec()
    };
    for name in &crate_names {
        if !manifest.crate_names().contains(name) {
            bail!(
                "--rebuild-crate {name}: not in the manifest; crates in it: {}",
                manifest.crate_names().join(", ")
            );
        }
    }
    let variant_names: Vec<String> = manifest.variants.iter().map(|v| v.name.clone()).collect();
    let pyo3_python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let request = DistRequest {
        workspace: &copy,
        variants: copy.select_variants(&variant_names)?,
        crates: copy.select_shipped_crates(&crate_names)?,
        out: base.join("dist"),
        // Cached between runs: only what changed is rebuilt, in the new directory.
        target_base: base.join("target-dist"),
        source: SourceInfo {
            git_commit: manifest.git_commit.clone(),
            git_dirty: manifest.git_dirty,
            source_date_epoch: manifest.source_date_epoch,
            rustc_version: manifest.rustc_version.clone(),
            cargo_lock_sha256: manifest.cargo_lock_sha256.clone(),
            pyo3_python,
        },
    };
    eprintln!(
        "==> reproducibility: rebuilding {} in {}",
        crate_names.join(", "),
        source_copy.display()
    );
    let rebuilt = dist::build(&request)?;
    // Only the rebuilt crates are expected in the second manifest.
    let mut expected = manifest.clone();
    expected
        .artifacts
        .retain(|a| crate_names.contains(&a.crate_name));
    let mismatches = compare(&expected, &rebuilt);
    Ok(Reproducibility {
        crates: crate_names,
        rebuild_directory: source_copy.display().to_string(),
        compared: rebuilt.artifacts.len(),
        mismatches,
    })
}

/// Differences between the original manifest and a rebuild's, as `path: reason`. Artifacts of
/// the original that the rebuild did not build are reported as missing.
pub fn compare(original: &Manifest, rebuilt: &Manifest) -> Vec<String> {
    let first = dist::by_path(original);
    let second = dist::by_path(rebuilt);
    let mut mismatches = Vec::new();
    for (path, artifact) in &first {
        match second.get(path) {
            None => mismatches.push(format!("{path}: missing from the rebuild")),
            Some(again) => {
                if again.sha256 != artifact.sha256 {
                    mismatches.push(format!(
                        "{path}: sha256 {} != {}",
                        artifact.sha256, again.sha256
                    ));
                }
                if again.unstripped_sha256 != artifact.unstripped_sha256 {
                    mismatches.push(format!(
                        "{}: unstripped sha256 differs",
                        artifact.unstripped_path.as_deref().unwrap_or(path)
                    ));
                }
            }
        }
    }
    for path in second.keys().filter(|path| !first.contains_key(*path)) {
        mismatches.push(format!("{path}: only in the rebuild"));
    }
    mismatches
}

fn write_report(dist_dir: &Path, report: &Report) -> Result<()> {
    let json = serde_json::to_string_pretty(report).expect("report serializes") + "\n";
    fs::write(dist_dir.join("report.json"), json).context("writing report.json")?;
    fs::write(dist_dir.join("report.md"), render_markdown(report)).context("writing report.md")?;
    Ok(())
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
    md.push_str("## Artifacts\n\n");
    md.push_str("| artifact | crate | variant | size | instructions | x86-64-v2 | x86-64-v3 | AVX-512 | own AVX-512 | checks |\n");
    md.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---|\n");
    for artifact in &report.artifacts {
        let count = |class| artifact.classes.get(&class).copied().unwrap_or(0);
        let mut checks = Vec::new();
        if let Some(exports) = &artifact.exports {
            checks.push(format!("exports: {}", exports.join(" ")));
        }
        if let Some(is_static) = artifact.statically_linked {
            checks.push(if is_static {
                "static".to_owned()
            } else {
                "DYNAMIC".to_owned()
            });
        }
        if !artifact.violations.is_empty() {
            checks.push(format!(
                "{} AVX-512 violation(s)",
                artifact.violations.len()
            ));
        }
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            artifact.path,
            artifact.crate_name,
            artifact.variant,
            dist::human_size(artifact.size),
            artifact.instructions,
            count(IsaClass::V2),
            count(IsaClass::V3),
            count(IsaClass::Avx512),
            artifact.own_avx512,
            checks.join("; ")
        ));
    }
    md.push_str("\n## Instruction-set extensions per artifact\n\n");
    for artifact in &report.artifacts {
        md.push_str(&format!(
            "- `{}`: {}\n",
            artifact.path,
            format_features(&artifact.features)
        ));
    }
    md.push_str("\n## Runtime-dispatched code allowed in generic builds\n\n");
    let mut allowed: BTreeMap<&str, &str> = BTreeMap::new();
    for artifact in &report.artifacts {
        for use_ in &artifact.allowed {
            allowed.insert(&use_.function, &use_.why);
        }
    }
    if allowed.is_empty() {
        md.push_str("none\n");
    }
    for (function, why) in allowed {
        md.push_str(&format!("- `{function}`: {why}\n"));
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
    md.push_str("\n## Failures\n\n");
    if report.failures.is_empty() {
        md.push_str("none\n");
    }
    for failure in &report.failures {
        md.push_str(&format!("- {failure}\n"));
    }
    md.push_str("\n## Warnings\n\n");
    if report.warnings.is_empty() {
        md.push_str("none\n");
    }
    for warning in &report.warnings {
        md.push_str(&format!("- {warning}\n"));
    }
    md
}

fn print_summary(report: &Report) {
    eprintln!();
    eprintln!(
        "{:<48} {:>12} {:>8} {:>8} {:>8} {:>8}",
        "artifact", "instructions", "v2", "v3", "avx512", "own512"
    );
    for artifact in &report.artifacts {
        let count = |class| artifact.classes.get(&class).copied().unwrap_or(0);
        eprintln!(
            "{:<48} {:>12} {:>8} {:>8} {:>8} {:>8}",
            artifact.path,
            artifact.instructions,
            count(IsaClass::V2),
            count(IsaClass::V3),
            count(IsaClass::Avx512),
            artifact.own_avx512
        );
    }
    if let Some(repro) = &report.reproducibility {
        eprintln!(
            "reproducibility: {} artifacts compared, {} mismatches",
            repro.compared,
            repro.mismatches.len()
        );
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    eprintln!(
        "verify: {}",
        if report.passed { "passed" } else { "FAILED" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_must_be_exactly_the_init_function() {
        let good = vec!["PyInit_mcp_rust_core".to_owned()];
        assert!(exports_problems(&good, "mcp_rust_core").is_empty());
        let extra = vec![
            "PyInit_mcp_rust_core".to_owned(),
            "rust_eh_personality".to_owned(),
        ];
        let problems = exports_problems(&extra, "mcp_rust_core");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("rust_eh_personality"), "{problems:?}");
        let missing = exports_problems(&[], "mcp_rust_core");
        assert!(missing[0].contains("PyInit_mcp_rust_core"), "{missing:?}");
    }

    fn manifest(entries: &[(&str, &str)]) -> Manifest {
        let mut manifest: Manifest = serde_json::from_value(serde_json::json!({
            "schema_version": Manifest::SCHEMA_VERSION,
            "git_commit": "abc", "git_dirty": false, "source_date_epoch": 0,
            "rustc_version": "rustc 1.95.0", "cargo_lock_sha256": "00", "profile": "audit",
            "variants": [], "artifacts": []
        }))
        .unwrap();
        for (path, sha) in entries {
            manifest.artifacts.push(
                serde_json::from_value(serde_json::json!({
                    "path": path, "kind": "server-binary", "crate": "bash-god",
                    "crate_version": "0.1.0", "role": "server", "variant": "generic",
                    "target": "x86_64-unknown-linux-musl", "target_cpu": "generic",
                    "rustflags": [], "sha256": sha, "size": 1,
                    "unstripped_path": format!("u/{path}"), "unstripped_sha256": sha,
                    "rustc_version": "rustc 1.95.0", "git_commit": "abc", "cargo_lock_sha256": "00"
                }))
                .unwrap(),
            );
        }
        manifest
    }

    #[test]
    fn comparison_names_every_differing_file() {
        let first = manifest(&[
            ("generic/bin/a", "11"),
            ("generic/bin/b", "22"),
            ("generic/bin/c", "33"),
        ]);
        let second = manifest(&[
            ("generic/bin/a", "11"),
            ("generic/bin/b", "99"),
            ("generic/bin/d", "44"),
        ]);
        let mismatches = compare(&first, &second);
        assert_eq!(mismatches.len(), 4, "{mismatches:?}");
        assert!(mismatches[0].starts_with("generic/bin/b: sha256 22 != 99"));
        assert!(mismatches[1].starts_with("u/generic/bin/b: unstripped"));
        assert!(mismatches[2].starts_with("generic/bin/c: missing"));
        assert!(mismatches[3].starts_with("generic/bin/d: only in the rebuild"));
        assert!(compare(&first, &first).is_empty());
    }

    #[test]
    fn markdown_report_shows_verdict_and_failures() {
        let report = Report {
            passed: false,
            git_commit: "abc".into(),
            rustc_version: "rustc 1.95.0".into(),
            failures: vec!["generic/bin/x: AVX-512 in a generic build".into()],
            warnings: vec![],
            artifacts: vec![],
            reproducibility: None,
        };
        let md = render_markdown(&report);
        assert!(md.contains("FAILED"));
        assert!(md.contains("AVX-512 in a generic build"));
        assert!(md.contains("not checked"));
    }
}

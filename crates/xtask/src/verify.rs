//! `cargo xtask verify [--rebuild]`: checks the artifacts `cargo xtask dist` produced.
//!
//! - integrity: every file's sha256 matches `dist/manifest.json`;
//! - instruction audit of the unstripped copies ([`crate::isa`], x86-64 and aarch64): each
//!   artifact uses only the features its variant's `target-cpu` enables, except in code
//!   proven to run only after a runtime CPU-feature check; a variant above the baseline
//!   visibly uses its level (the Python module in our own code: the learning-store kernels);
//! - exports: the Python module exports exactly `PyInit_<module>` ([`linkage`]);
//! - servers are statically linked ([`linkage`]);
//! - every `dist/mcp-registry/<server>/server.json` (when `cargo xtask image` wrote them)
//!   passes the MCP registry's schema and publishing rules ([`server_json_findings`]);
//! - with `--rebuild`: a second build in another absolute directory is bit-identical
//!   ([`rebuild`]).
//!
//! Writes `dist/report.json` and `dist/report.md` ([`report`]); any failed rule is an error.

pub mod linkage;
pub mod rebuild;
pub mod report;
mod verdict;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::dist::{self, ArtifactKind, Manifest};
use crate::isa::{self, Arch, Audit, Level};
use crate::metadata::Workspace;

pub use linkage::{exported_symbols, exports_problems, statically_linked};
pub use rebuild::{Reproducibility, compare};
pub use verdict::judge;

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
    /// With --rebuild: rebuild only for this architecture (repeatable; default: every one in
    /// the manifest). A cross build costs as much as a native one.
    #[arg(long = "rebuild-arch", value_name = "ARCH", requires = "rebuild")]
    pub rebuild_architectures: Vec<String>,
}

/// `dist/report.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub passed: bool,
    pub git_commit: String,
    pub rustc_version: String,
    pub failures: Vec<Finding>,
    pub warnings: Vec<Finding>,
    pub artifacts: Vec<ArtifactReport>,
    pub reproducibility: Option<Reproducibility>,
}

/// One failed rule or warning, attributed to an artifact and (where it applies) a crate, so
/// the terminal can group them per crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub artifact: String,
    /// The crate whose code it concerns; empty when it concerns the artifact as a whole.
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.artifact, self.message)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactReport {
    pub path: String,
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub variant: String,
    pub target: String,
    pub target_cpu: String,
    pub kind: ArtifactKind,
    pub size: u64,
    pub sha256: String,
    /// The rustc target features of the variant's `target-cpu`: what the artifact may use.
    pub level: Vec<String>,
    /// The instruction audit; `None` where it does not apply (neither x86-64 nor aarch64).
    pub audit: Option<Audit>,
    pub exports: Option<Vec<String>>,
    pub statically_linked: Option<bool>,
}

pub fn run(workspace: &Workspace, args: &VerifyArgs) -> Result<Report> {
    let dist_dir = args
        .dist
        .clone()
        .unwrap_or_else(|| workspace.root.join("dist"));
    let manifest = Manifest::load(&dist_dir)?;
    let mut report = audit(workspace, &dist_dir, &manifest)?;
    report.warnings.extend(selection_warning(&manifest));
    // SBOM, provenance and embedded list agree with each binary (issue 14).
    let records = crate::provenance::check::dist_records(&dist_dir, &manifest);
    report.failures.extend(records);
    report.failures.extend(server_json_findings(&dist_dir)?);
    if args.rebuild {
        let reproducibility = rebuild::rebuild(
            workspace,
            &manifest
                .restricted_to_variants(&args.rebuild_variants)?
                .restricted_to_architectures(&args.rebuild_architectures)?,
            &args.rebuild_crates,
        )?;
        for mismatch in &reproducibility.mismatches {
            report.failures.push(Finding {
                artifact: mismatch.split(':').next().unwrap_or_default().to_owned(),
                crate_name: String::new(),
                message: format!("not reproducible: {mismatch}"),
            });
        }
        report.reproducibility = Some(reproducibility);
    }
    report.passed = report.failures.is_empty();
    report::write(&dist_dir, &report)?;
    report::print_summary(&report);
    if !report.passed {
        bail!(
            "verify found {} problem(s):\n  {}\n(details: {})",
            report.failures.len(),
            report::grouped(&report.failures).join("\n  "),
            dist_dir.join(report::MARKDOWN_FILE).display()
        );
    }
    Ok(report)
}

/// A warning when the manifest records a partial dist run: verify checks what is there, and
/// a passing report must not read as the whole matrix.
fn selection_warning(manifest: &Manifest) -> Option<Finding> {
    let selection = manifest.selection.as_ref()?;
    (!selection.is_complete()).then(|| Finding {
        artifact: Manifest::FILE_NAME.to_owned(),
        crate_name: String::new(),
        message: format!(
            "a {} dist: only what it holds is checked",
            selection.describe()
        ),
    })
}

/// Every `dist/mcp-registry/<server>/server.json` against the MCP registry's schema and
/// publishing rules ([`crate::image::registry::schema`]). `cargo xtask image` writes them
/// (after dist and verify in the README's order), so their absence is no failure.
pub fn server_json_findings(dist_dir: &Path) -> Result<Vec<Finding>> {
    use crate::image::registry::schema;
    let dir = dist_dir.join(crate::image::registry::REGISTRY_DIR);
    let Some(files) = schema::server_files(&dir)? else {
        eprintln!(
            "verify: no {} (`cargo xtask image` writes it): no server.json to check",
            dir.display()
        );
        return Ok(Vec::new());
    };
    let mut findings = Vec::new();
    for file in &files {
        if let Err(error) = schema::check_file(file) {
            let artifact = file.strip_prefix(dist_dir).unwrap_or(file);
            let server = file
                .parent()
                .and_then(Path::file_name)
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            findings.push(Finding {
                artifact: artifact.display().to_string(),
                crate_name: server,
                message: format!("{error:#}"),
            });
        }
    }
    eprintln!(
        "verify: {} of {} server.json file(s) in {} pass the MCP registry's schema {}",
        files.len() - findings.len(),
        files.len(),
        dir.display(),
        schema::SERVER_SCHEMA_VERSION
    );
    Ok(findings)
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
    let mut levels = Levels::default();

    for artifact in &manifest.artifacts {
        let path = dist_dir.join(&artifact.path);
        let (sha256, size) = dist::hash_file(&path)
            .with_context(|| format!("{} is listed in the manifest", artifact.path))?;
        let fail = |report: &mut Report, crate_name: &str, message: String| {
            report.failures.push(Finding {
                artifact: artifact.path.clone(),
                crate_name: crate_name.to_owned(),
                message,
            })
        };
        if sha256 != artifact.sha256 {
            fail(
                &mut report,
                "",
                format!(
                    "sha256 {sha256} differs from the manifest's {}; the file changed after dist",
                    artifact.sha256
                ),
            );
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
                    && a.target == artifact.target
            });
            if library.is_none_or(|library| library.sha256 != artifact.sha256) {
                fail(
                    &mut report,
                    "",
                    "differs from the crate's lib/ shared library of the same variant".into(),
                );
            }
            continue;
        }

        let level = levels.get(&artifact.target, &artifact.target_cpu, &artifact.rustflags)?;
        let mut entry = ArtifactReport {
            path: artifact.path.clone(),
            crate_name: artifact.crate_name.clone(),
            variant: artifact.variant.clone(),
            target: artifact.target.clone(),
            target_cpu: artifact.target_cpu.clone(),
            kind: artifact.kind,
            size,
            sha256,
            level: level.rustc_features.iter().cloned().collect(),
            audit: None,
            exports: None,
            statically_linked: None,
        };
        let unstripped_relative = artifact
            .unstripped_path
            .as_deref()
            .with_context(|| format!("{}: the manifest lists no unstripped copy", artifact.path))?;
        let unstripped = fs::read(dist_dir.join(unstripped_relative))
            .with_context(|| format!("reading {unstripped_relative}"))?;
        let architecture = elf_architecture(&unstripped)?;
        let decodable = Arch::of_target(&artifact.target);
        if !artifact.target.starts_with(&architecture) {
            fail(
                &mut report,
                "",
                format!(
                    "is a {architecture} ELF file but the manifest says target {}",
                    artifact.target
                ),
            );
        } else if decodable.is_some() {
            let audit = isa::audit_elf(&unstripped, &level, &own_crates)
                .with_context(|| format!("auditing {unstripped_relative}"))?;
            let (failures, warnings) = judge(artifact, &level, &audit);
            report.failures.extend(failures);
            report.warnings.extend(warnings);
            entry.audit = Some(audit);
        } else {
            report.warnings.push(Finding {
                artifact: artifact.path.clone(),
                crate_name: String::new(),
                message: format!(
                    "NOT AUDITED: the instruction audit decodes x86-64 and aarch64 only, so \
                     that this {architecture} build uses nothing beyond target-cpu={} ({}) is not \
                     checked; checked: sha256, ELF machine, static linking without \
                     interpreter (executables), exports (Python module)",
                    artifact.target_cpu,
                    level
                        .rustc_features
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
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
                    fail(&mut report, "", problem);
                }
                entry.exports = Some(exports);
            }
            ArtifactKind::ServerBinary => {
                let is_static = statically_linked(&stripped)?;
                if !is_static {
                    fail(
                        &mut report,
                        "",
                        "not statically linked (has an ELF interpreter or needed libraries)".into(),
                    );
                }
                entry.statically_linked = Some(is_static);
            }
            _ => {}
        }
        report.artifacts.push(entry);
    }
    Ok(report)
}

/// Levels per `(target, rustflags)`, asked of rustc once each: what the variant's own flags
/// enable (`-C target-cpu`, and any `-C target-feature`), so a new variant in the root table
/// needs nothing here.
#[derive(Default)]
struct Levels(BTreeMap<(String, Vec<String>), Level>);

impl Levels {
    fn get(&mut self, target: &str, target_cpu: &str, rustflags: &[String]) -> Result<Level> {
        let key = (target.to_owned(), rustflags.to_vec());
        if let Some(level) = self.0.get(&key) {
            return Ok(level.clone());
        }
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        let features = cpu_variants::features::Rustc::new(rustc, target)
            .target_features(rustflags)
            .with_context(|| {
                format!(
                    "asking rustc what rustflags [{}] enable for {target}",
                    rustflags.join(" ")
                )
            })?;
        let arch = Arch::of_target(target).unwrap_or_default();
        let level = Level::of_arch(arch, target_cpu, features);
        self.0.insert(key, level.clone());
        Ok(level)
    }
}

/// `x86_64`, `aarch64`, ... as in target triples.
fn elf_architecture(data: &[u8]) -> Result<String> {
    use object::Object;
    let file = object::File::parse(data).context("not an ELF file")?;
    Ok(match file.architecture() {
        object::Architecture::X86_64 => "x86_64".to_owned(),
        object::Architecture::Aarch64 => "aarch64".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::IsaClass;
    use iced_x86::CpuidFeature;

    #[test]
    fn a_partial_dist_is_reported_as_one() {
        let mut manifest = crate::dist::manifest::tests::manifest(Manifest::SCHEMA_VERSION, vec![]);
        // An older manifest says nothing about its selection.
        assert_eq!(selection_warning(&manifest), None);
        let mut selection = dist::Selection {
            variants: vec!["generic".into()],
            crates: vec!["devops".into()],
            architectures: vec!["x86_64".into()],
            ci_matrix: false,
            left_out: vec![],
        };
        manifest.selection = Some(selection.clone());
        assert_eq!(selection_warning(&manifest), None);
        selection.left_out = vec!["variant znver4".into()];
        manifest.selection = Some(selection);
        let warning = selection_warning(&manifest).unwrap();
        assert_eq!(warning.artifact, "manifest.json");
        assert!(
            warning.message.contains("partial, without variant znver4"),
            "{warning}"
        );
    }

    #[test]
    fn server_json_files_in_dist_are_checked_against_the_registry_schema() {
        let dist = tempfile::tempdir().unwrap();
        assert_eq!(server_json_findings(dist.path()).unwrap(), []);
        let registry = crate::image::registry::Registry {
            namespace: "io.github.example".into(),
            image_repository: "ghcr.io/example".into(),
        };
        let spec = crate::metadata::CrateSpec {
            name: "devops".into(),
            version: "0.3.1".into(),
            description: "Operations".into(),
            ..Default::default()
        };
        let written = registry
            .write_server_json(&spec, &dist.path().join("mcp-registry"))
            .unwrap();
        assert_eq!(server_json_findings(dist.path()).unwrap(), []);
        // A package without transport: named by file, server, pointer and rule.
        let mut server: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&written).unwrap()).unwrap();
        server["packages"][1]
            .as_object_mut()
            .unwrap()
            .remove("transport");
        fs::write(&written, server.to_string()).unwrap();
        let findings = server_json_findings(dist.path()).unwrap();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].artifact, "mcp-registry/devops/server.json");
        assert_eq!(findings[0].crate_name, "devops");
        assert!(
            findings[0]
                .message
                .contains("/packages/1: \"transport\" is a required property")
                && findings[0]
                    .message
                    .contains("#/definitions/Package/required"),
            "{}",
            findings[0].message
        );
    }

    #[test]
    fn each_variant_level_comes_from_its_own_rustflags() {
        let mut levels = Levels::default();
        let mut level = |cpu: &str| {
            let flags = vec!["-C".to_owned(), format!("target-cpu={cpu}")];
            levels
                .get("x86_64-unknown-linux-musl", cpu, &flags)
                .unwrap()
        };
        let v3 = level("x86-64-v3");
        assert!(v3.allows(CpuidFeature::AVX2) && v3.allows(CpuidFeature::FMA));
        assert!(!v3.allows(CpuidFeature::AVX512F));
        assert_eq!(v3.top_class(), IsaClass::V3);
        let v4 = level("x86-64-v4");
        assert!(v4.allows(CpuidFeature::AVX512BW));
        assert!(!v4.allows(CpuidFeature::SSE4A));
        assert_eq!(v4.top_class(), IsaClass::Avx512);
        let znver4 = level("znver4");
        assert!(znver4.allows(CpuidFeature::SSE4A));
        assert!(znver4.allows(CpuidFeature::AVX512_VNNI));
        let generic = levels
            .get("x86_64-unknown-linux-musl", "generic", &[])
            .unwrap();
        assert!(!generic.allows(CpuidFeature::SSE4_1));
        assert_eq!(generic.top_class(), IsaClass::Baseline);
        // A target-feature flag counts as much as a target-cpu.
        let flags = ["-C".to_owned(), "target-feature=+avx2".to_owned()];
        let plus_avx2 = levels
            .get("x86_64-unknown-linux-musl", "generic", &flags)
            .unwrap();
        assert!(plus_avx2.allows(CpuidFeature::AVX2));
    }
}

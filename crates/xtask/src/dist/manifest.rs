//! `dist/manifest.json` and the facts it records: what each artifact is, how it was built,
//! its sha256. Deterministic (no timestamps, sorted), so two identical builds give
//! identical manifests.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::metadata::Role;
use crate::process;

/// Facts about the source and toolchain every artifact of one dist run shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub git_commit: String,
    /// Uncommitted changes to tracked files were present.
    pub git_dirty: bool,
    /// Commit time of `git_commit`: the images' mtimes and `created` (the compilers get
    /// [`super::COMPILE_SOURCE_DATE_EPOCH`]).
    pub source_date_epoch: u64,
    /// `rustc -V`.
    pub rustc_version: String,
    /// sha256 of `Cargo.lock`.
    pub cargo_lock_sha256: String,
    /// Python interpreter pyo3 configures against (abi3, so only its presence matters).
    pub pyo3_python: String,
}

impl SourceInfo {
    /// Reads git, rustc and Cargo.lock facts for the workspace at `root`.
    pub fn collect(root: &Path) -> Result<SourceInfo> {
        let git = |args: &[&str]| process::output(Command::new("git").args(args).current_dir(root));
        let git_commit = git(&["rev-parse", "HEAD"]).context("dist needs a git checkout")?;
        let git_dirty = !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
        let epoch = git(&["log", "-1", "--format=%ct"])?;
        let source_date_epoch = epoch.parse().with_context(|| {
            format!("`git log -1 --format=%ct` printed {epoch:?}, not a number")
        })?;
        let rustc_version = process::output(Command::new("rustc").arg("-V").current_dir(root))?;
        let lock = fs::read(root.join("Cargo.lock")).with_context(|| {
            format!(
                "reading {}/Cargo.lock (dist builds with --locked; run `cargo generate-lockfile`)",
                root.display()
            )
        })?;
        let pyo3_python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        Ok(SourceInfo {
            git_commit,
            git_dirty,
            source_date_epoch,
            rustc_version,
            cargo_lock_sha256: sha256_hex(&lock),
            pyo3_python,
        })
    }
}

/// `dist/manifest.json`. Deterministic: no timestamps, sorted artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub git_commit: String,
    pub git_dirty: bool,
    pub source_date_epoch: u64,
    pub rustc_version: String,
    pub cargo_lock_sha256: String,
    /// How artifacts are built and stripped (each artifact names its own cargo profile).
    pub profile: String,
    /// What the run was asked to build (absent from manifests of older xtasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
    pub variants: Vec<ManifestVariant>,
    /// Sorted by `path`.
    pub artifacts: Vec<Artifact>,
}

/// What a dist run was asked to build. A partial run (`--variant`, `--crate`, `--arch`,
/// `--ci-matrix`) holds less than the workspace ships and says so here, so nobody takes its
/// directory for the full matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub variants: Vec<String>,
    pub crates: Vec<String>,
    pub architectures: Vec<String>,
    /// Variants with `ci-crates` were built for those crates only.
    pub ci_matrix: bool,
    /// What the workspace ships that the run was not asked for: `variant <name>`,
    /// `crate <name>`, `architecture <name>`.
    pub left_out: Vec<String>,
}

impl Selection {
    /// Every variant, shipped crate and architecture of the workspace, in full.
    pub fn is_complete(&self) -> bool {
        self.left_out.is_empty() && !self.ci_matrix
    }

    /// One line for people: `complete`, or what the run left out.
    pub fn describe(&self) -> String {
        let mut parts = self.left_out.clone();
        if self.ci_matrix {
            parts.push("crates outside ci-crates (--ci-matrix)".to_owned());
        }
        if parts.is_empty() {
            "complete".to_owned()
        } else {
            format!("partial, without {}", parts.join(", "))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestVariant {
    pub name: String,
    pub target_cpu: String,
    pub rustflags: Vec<String>,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A static server executable in `bin/`.
    ServerBinary,
    /// The Python module's cdylib in `lib/`.
    SharedLibrary,
    /// The same cdylib as `python/<module>/<module>.abi3.so`.
    PythonExtension,
    /// A `.py`/`.pyi`/marker file of the Python package.
    PythonSource,
}

impl ArtifactKind {
    /// Machine code the verify audit inspects.
    pub fn is_elf(self) -> bool {
        !matches!(self, ArtifactKind::PythonSource)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Relative to the dist directory, `/`-separated.
    pub path: String,
    pub kind: ArtifactKind,
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub crate_version: String,
    pub role: Role,
    pub variant: String,
    pub target: String,
    pub target_cpu: String,
    pub rustflags: Vec<String>,
    /// The cargo profile, with any `--config profile.*` overrides (see `dist::profile_for`).
    #[serde(default)]
    pub profile: String,
    pub sha256: String,
    pub size: u64,
    /// The same artifact with its symbol table, for the audit (ELF artifacts only).
    pub unstripped_path: Option<String>,
    pub unstripped_sha256: Option<String>,
    pub rustc_version: String,
    pub git_commit: String,
    pub cargo_lock_sha256: String,
}

impl Manifest {
    pub const FILE_NAME: &'static str = "manifest.json";
    pub const SCHEMA_VERSION: u32 = 2;

    pub fn load(dist: &Path) -> Result<Manifest> {
        let path = dist.join(Self::FILE_NAME);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading {}; run `cargo xtask dist` first", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid dist manifest", path.display()))?;
        if manifest.schema_version != Self::SCHEMA_VERSION {
            bail!(
                "{} has schema version {} but this xtask reads version {}; rerun `cargo xtask dist`",
                path.display(),
                manifest.schema_version,
                Self::SCHEMA_VERSION
            );
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> String {
        // invariant: plain strings, numbers and enums serialize infallibly.
        let mut text = serde_json::to_string_pretty(self).expect("manifest serializes");
        text.push('\n');
        text
    }

    /// The manifest of only the named variants' artifacts (all of them when `names` is
    /// empty), e.g. to rebuild one variant for the reproducibility check: the build is the
    /// same process in every variant, only `-C target-cpu` differs.
    pub fn restricted_to_variants(&self, names: &[String]) -> Result<Manifest> {
        if names.is_empty() {
            return Ok(self.clone());
        }
        for name in names {
            if !self.variants.iter().any(|v| &v.name == name) {
                bail!(
                    "variant `{name}` is not in the manifest; its variants: {}",
                    self.variants
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        let mut restricted = self.clone();
        restricted.variants.retain(|v| names.contains(&v.name));
        restricted.artifacts.retain(|a| names.contains(&a.variant));
        Ok(restricted)
    }

    /// The architectures of the manifest's artifacts, this machine's first.
    pub fn architectures(&self) -> Vec<String> {
        let mut architectures: Vec<String> = self
            .artifacts
            .iter()
            .map(|a| crate::cross::target_arch(&a.target).to_owned())
            .collect();
        architectures.sort_by_key(|arch| (arch != std::env::consts::ARCH, arch.clone()));
        architectures.dedup();
        architectures
    }

    /// The same manifest with only the artifacts built for `architectures` (all when empty).
    pub fn restricted_to_architectures(&self, architectures: &[String]) -> Result<Manifest> {
        for arch in architectures {
            if !self.architectures().contains(arch) {
                bail!(
                    "architecture `{arch}` is not in the manifest; its architectures: {}",
                    self.architectures().join(", ")
                );
            }
        }
        let mut restricted = self.clone();
        if !architectures.is_empty() {
            restricted.artifacts.retain(|a| {
                architectures
                    .iter()
                    .any(|arch| arch == crate::cross::target_arch(&a.target))
            });
        }
        Ok(restricted)
    }

    /// Crate names in the manifest, sorted, deduplicated.
    pub fn crate_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .artifacts
            .iter()
            .map(|a| a.crate_name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// `12.3 MiB` / `845.0 KiB` / `17 B`.
pub fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if value >= KIB * KIB {
        format!("{:.1} MiB", value / KIB / KIB)
    } else if value >= KIB {
        format!("{:.1} KiB", value / KIB)
    } else {
        format!("{bytes} B")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// sha256 and size of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((sha256_hex(&bytes), bytes.len() as u64))
}

/// Manifest artifacts indexed by path, for comparisons.
pub fn by_path(manifest: &Manifest) -> BTreeMap<&str, &Artifact> {
    manifest
        .artifacts
        .iter()
        .map(|a| (a.path.as_str(), a))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(17), "17 B");
        assert_eq!(human_size(865_280), "845.0 KiB");
        assert_eq!(human_size(12_897_485), "12.3 MiB");
    }

    pub(crate) fn artifact(path: &str) -> Artifact {
        Artifact {
            path: path.into(),
            kind: ArtifactKind::ServerBinary,
            crate_name: "bash-god".into(),
            crate_version: "0.1.0".into(),
            role: Role::Server,
            variant: "generic".into(),
            target: "x86_64-unknown-linux-musl".into(),
            target_cpu: "generic".into(),
            rustflags: vec![],
            profile: "audit".into(),
            sha256: "00".repeat(32),
            size: 42,
            unstripped_path: Some(format!("generic/unstripped/{path}")),
            unstripped_sha256: Some("11".repeat(32)),
            rustc_version: "rustc 1.95.0".into(),
            git_commit: "abc".into(),
            cargo_lock_sha256: "22".repeat(32),
        }
    }

    pub(crate) fn manifest(schema_version: u32, artifacts: Vec<Artifact>) -> Manifest {
        Manifest {
            schema_version,
            git_commit: "abc".into(),
            git_dirty: false,
            source_date_epoch: 1_700_000_000,
            rustc_version: "rustc 1.95.0".into(),
            cargo_lock_sha256: "22".repeat(32),
            profile: "audit".into(),
            selection: None,
            variants: vec![],
            artifacts,
        }
    }

    #[test]
    fn manifest_round_trips_and_names_fields_as_documented() {
        let manifest = manifest(
            Manifest::SCHEMA_VERSION,
            vec![artifact("generic/bin/bash-god")],
        );
        let json = manifest.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let first = &value["artifacts"][0];
        assert_eq!(first["crate"], "bash-god");
        assert_eq!(first["kind"], "server-binary");
        assert_eq!(first["role"], "server");
        assert_eq!(first["profile"], "audit");
        assert_eq!(first["size"], 42);
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.crate_names(), ["bash-god"]);
        assert_eq!(
            by_path(&back).keys().collect::<Vec<_>>(),
            [&"generic/bin/bash-god"]
        );
        // No wall-clock time in the manifest: two identical builds give identical manifests.
        assert!(!json.contains("time"), "{json}");
    }

    #[test]
    fn manifest_load_rejects_other_schema_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = manifest(99, vec![]);
        fs::write(dir.path().join(Manifest::FILE_NAME), manifest.to_json()).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
        manifest.schema_version = Manifest::SCHEMA_VERSION;
        fs::write(dir.path().join(Manifest::FILE_NAME), manifest.to_json()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), manifest);
        let missing = Manifest::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cargo xtask dist"), "{missing}");
    }

    #[test]
    fn a_manifest_restricted_to_a_variant_keeps_only_its_artifacts() {
        let variant = |name: &str| ManifestVariant {
            name: name.into(),
            target_cpu: name.into(),
            rustflags: vec![],
            description: String::new(),
        };
        let mut znver4 = artifact("znver4/bin/bash-god");
        znver4.variant = "znver4".into();
        let mut full = manifest(
            Manifest::SCHEMA_VERSION,
            vec![artifact("generic/bin/bash-god"), znver4],
        );
        full.variants = vec![variant("generic"), variant("znver4")];
        assert_eq!(full.restricted_to_variants(&[]).unwrap(), full);
        let generic = full
            .restricted_to_variants(&["generic".to_owned()])
            .unwrap();
        assert_eq!(generic.variants, [variant("generic")]);
        assert_eq!(
            by_path(&generic).keys().collect::<Vec<_>>(),
            [&"generic/bin/bash-god"]
        );
        let err = full
            .restricted_to_variants(&["x86-64-v3".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x86-64-v3") && err.contains("generic, znver4"),
            "{err}"
        );
    }
}

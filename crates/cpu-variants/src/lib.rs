//! The CPU variants of the workspace, parsed once.
//!
//! The variants are defined in one place, the `[workspace.metadata.mcp-foundry.variants]`
//! table of the root `Cargo.toml`:
//!
//! ```toml
//! [workspace.metadata.mcp-foundry.variants.znver4]
//! description = "AMD Zen 4 and newer"
//! target-cpu = "znver4"
//! rustflags = ["-C", "target-cpu=znver4"]
//! architectures = ["x86_64"]
//! ```
//!
//! This crate reads that table (from the manifest with [`from_manifest`], from the JSON of
//! `cargo metadata` with [`from_workspace_metadata`]) and derives, for a compilation target,
//! the target features a CPU needs to run each variant (see [`features`]): what
//! `rustc --print cfg` reports with the variant's rustflags, minus what it reports for the
//! target's baseline. Nothing here names a variant or a CPU feature of one; add a table entry
//! and every user follows.
//!
//! Build scripts use it as a build-dependency ([`build_script`]): build scripts never receive
//! a variant's RUSTFLAGS, so this code always runs on the build host, whatever the variant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod build_script;
pub mod choice;
#[cfg(test)]
mod choice_tests;
pub mod codegen;
pub mod features;

/// One CPU variant, e.g. `generic` or `znver4`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
// Unknown keys are allowed: Nix and xtask read the same table and may need keys of their own.
#[serde(rename_all = "kebab-case")]
pub struct Variant {
    /// The table key; also a directory name in the images (`/opt/mcp/<name>/`).
    #[serde(skip)]
    pub name: String,
    pub description: String,
    /// The `-C target-cpu` value, for reports (`generic` for the baseline).
    pub target_cpu: String,
    /// Extra rustflags of this variant's artifacts (never given to build scripts).
    #[serde(default)]
    pub rustflags: Vec<String>,
    /// Rust `target_arch` values (`x86_64`, `aarch64`, …) the variant can be built for.
    pub architectures: Vec<String>,
    /// `ci-crates`: the shipped crates `cargo xtask ci` builds in this variant (absent: every
    /// one). It bounds CI time on 2 cores; `cargo xtask dist` always builds every crate.
    #[serde(default)]
    pub ci_crates: Option<CiCrates>,
}

impl Variant {
    /// Whether the variant can be built for `target_arch`.
    pub fn supports(&self, target_arch: &str) -> bool {
        self.architectures.iter().any(|a| a == target_arch)
    }

    /// Whether `cargo xtask ci` builds `crate_name` in this variant for `target_arch`.
    pub fn ci_builds(&self, target_arch: &str, crate_name: &str) -> bool {
        self.ci_crates
            .as_ref()
            .is_none_or(|ci| ci.keeps(target_arch, crate_name))
    }
}

/// A variant's `ci-crates`: one list for every architecture (`ci-crates = ["a", "b"]`), or a
/// list per architecture (`ci-crates = { aarch64 = ["a"] }`; an architecture not named there
/// gets every crate).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of crate names, or a table of such lists by architecture"
)]
pub enum CiCrates {
    Everywhere(Vec<String>),
    ByArchitecture(BTreeMap<String, Vec<String>>),
}

impl CiCrates {
    /// Whether CI builds `crate_name` for `target_arch`.
    pub fn keeps(&self, target_arch: &str, crate_name: &str) -> bool {
        let list = match self {
            Self::Everywhere(list) => list,
            Self::ByArchitecture(by_arch) => match by_arch.get(target_arch) {
                Some(list) => list,
                None => return true,
            },
        };
        list.iter().any(|name| name == crate_name)
    }

    /// Every crate name the lists hold, for validation.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Self::Everywhere(list) => list.iter().map(String::as_str).collect(),
            Self::ByArchitecture(by_arch) => {
                by_arch.values().flatten().map(String::as_str).collect()
            }
        }
    }
}

/// Why the variants table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{var} is not set; cpu_variants::build_script must run inside a cargo build script")]
    Env { var: &'static str },
    #[error(
        "no workspace Cargo.toml (one with a [workspace] table) above {}", dir.display()
    )]
    NoWorkspace { dir: PathBuf },
    #[error("{origin} is not a valid variants table: {message}")]
    Invalid { origin: String, message: String },
    #[error(
        "{origin} defines no CPU variant; add a `[workspace.metadata.mcp-foundry.variants.<name>]` table to the root Cargo.toml"
    )]
    Empty { origin: String },
    #[error(
        "variant name {name:?} in {origin} is not usable as a directory name; use lowercase letters, digits, `-`, `_` and `.`"
    )]
    BadName { origin: String, name: String },
    #[error(
        "variant `{name}` in {origin} lists no architecture; add e.g. `architectures = [\"x86_64\"]`"
    )]
    NoArchitecture { origin: String, name: String },
    #[error("cannot run `{command}`: {source}; is the Rust toolchain installed?")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Rustc { command: String, stderr: String },
    #[error(
        "variant features {features:?} cannot be checked at run time on {arch} ({why}); teach the detection code about them or, if they are not CPU features, list them with the reason in cpu_variants::features::NOT_CPU_FEATURES"
    )]
    Undetectable {
        arch: String,
        features: Vec<String>,
        why: String,
    },
}

/// `[workspace.metadata]`, as far as this crate cares.
#[derive(Deserialize)]
struct WorkspaceMetadata {
    #[serde(rename = "mcp-foundry")]
    mcp_foundry: Option<FoundryMetadata>,
}

#[derive(Deserialize)]
struct FoundryMetadata {
    #[serde(default)]
    variants: BTreeMap<String, Variant>,
}

#[derive(Deserialize)]
struct Manifest {
    workspace: Option<ManifestWorkspace>,
}

#[derive(Deserialize)]
struct ManifestWorkspace {
    metadata: Option<WorkspaceMetadata>,
}

/// The variants of the workspace whose root manifest is `path`, sorted by name.
pub fn from_manifest(path: &Path) -> Result<Vec<Variant>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    from_manifest_text(&text, &path.display().to_string())
}

/// The variants in the text of a root `Cargo.toml`; `origin` names it in errors.
pub fn from_manifest_text(text: &str, origin: &str) -> Result<Vec<Variant>, Error> {
    let manifest: Manifest = toml::from_str(text).map_err(|e| Error::Invalid {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let metadata = manifest.workspace.and_then(|w| w.metadata);
    validate(metadata, origin)
}

/// The variants in the `[workspace.metadata]` table as JSON: the `metadata` field of
/// `cargo metadata --format-version 1` (`cargo_metadata::Metadata::workspace_metadata`).
/// `Value::Null` (no `[workspace.metadata]` at all) is the [`Error::Empty`] error.
pub fn from_workspace_metadata(metadata: &serde_json::Value) -> Result<Vec<Variant>, Error> {
    let origin = "the workspace metadata of `cargo metadata`";
    let metadata = if metadata.is_null() {
        None
    } else {
        Some(
            WorkspaceMetadata::deserialize(metadata).map_err(|e| Error::Invalid {
                origin: origin.to_owned(),
                message: e.to_string(),
            })?,
        )
    };
    validate(metadata, origin)
}

fn validate(metadata: Option<WorkspaceMetadata>, origin: &str) -> Result<Vec<Variant>, Error> {
    let table = metadata
        .and_then(|m| m.mcp_foundry)
        .map(|f| f.variants)
        .unwrap_or_default();
    if table.is_empty() {
        return Err(Error::Empty {
            origin: origin.to_owned(),
        });
    }
    let mut variants = Vec::with_capacity(table.len());
    for (name, mut variant) in table {
        let usable = !name.is_empty()
            && !name.starts_with('.')
            && name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
        if !usable {
            return Err(Error::BadName {
                origin: origin.to_owned(),
                name,
            });
        }
        if variant.architectures.is_empty() {
            return Err(Error::NoArchitecture {
                origin: origin.to_owned(),
                name,
            });
        }
        if let Some(CiCrates::ByArchitecture(by_arch)) = &variant.ci_crates
            && let Some(arch) = by_arch.keys().find(|arch| !variant.supports(arch))
        {
            return Err(Error::Invalid {
                origin: origin.to_owned(),
                message: format!(
                    "variant `{name}`: ci-crates names architecture `{arch}`, which is not in its \
                     architectures ({})",
                    variant.architectures.join(", ")
                ),
            });
        }
        variant.name = name;
        variants.push(variant);
    }
    Ok(variants)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
[workspace]
members = ["crates/*"]

[workspace.metadata.mcp-foundry.variants.generic]
description = "baseline"
target-cpu = "generic"
rustflags = []
architectures = ["x86_64", "aarch64"]

[workspace.metadata.mcp-foundry.variants.x86-64-v3]
description = "AVX2"
target-cpu = "x86-64-v3"
rustflags = ["-C", "target-cpu=x86-64-v3"]
architectures = ["x86_64"]
ci-crates = ["core"]

[workspace.metadata.other-tool]
anything = true
"#;

    #[test]
    fn reads_every_entry_of_the_table_sorted_by_name() {
        let variants = from_manifest_text(MANIFEST, "Cargo.toml").unwrap();
        let names: Vec<_> = variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["generic", "x86-64-v3"]);
        let v3 = &variants[1];
        assert_eq!(v3.target_cpu, "x86-64-v3");
        assert_eq!(v3.rustflags, ["-C", "target-cpu=x86-64-v3"]);
        assert!(v3.supports("x86_64") && !v3.supports("aarch64"));
        assert!(variants[0].supports("aarch64"));
    }

    #[test]
    fn the_json_of_cargo_metadata_gives_the_same_table() {
        let toml_value: toml::Table = MANIFEST.parse().unwrap();
        let metadata = serde_json::to_value(&toml_value["workspace"]["metadata"]).unwrap();
        assert_eq!(
            from_workspace_metadata(&metadata).unwrap(),
            from_manifest_text(MANIFEST, "Cargo.toml").unwrap()
        );
    }

    #[test]
    fn ci_crates_are_one_list_or_a_list_per_architecture() {
        let variants = from_manifest_text(MANIFEST, "Cargo.toml").unwrap();
        let (generic, v3) = (&variants[0], &variants[1]);
        assert!(generic.ci_builds("x86_64", "server") && generic.ci_builds("aarch64", "server"));
        assert!(v3.ci_builds("x86_64", "core") && !v3.ci_builds("x86_64", "server"));

        let by_arch = MANIFEST.replace(
            "architectures = [\"x86_64\", \"aarch64\"]",
            "architectures = [\"x86_64\", \"aarch64\"]\nci-crates = { aarch64 = [\"core\"] }",
        );
        let variants = from_manifest_text(&by_arch, "Cargo.toml").unwrap();
        let generic = &variants[0];
        assert!(
            generic.ci_builds("x86_64", "server"),
            "x86_64 is not named: every crate"
        );
        assert!(generic.ci_builds("aarch64", "core") && !generic.ci_builds("aarch64", "server"));
        let mut names = generic.ci_crates.as_ref().unwrap().names();
        names.sort_unstable();
        assert_eq!(names, ["core"]);

        let foreign_arch = by_arch.replace("{ aarch64 =", "{ riscv64 =");
        let err = from_manifest_text(&foreign_arch, "Cargo.toml").unwrap_err();
        assert!(err.to_string().contains("architecture `riscv64`"), "{err}");
        let not_a_list = MANIFEST.replace("ci-crates = [\"core\"]", "ci-crates = \"core\"");
        let err = from_manifest_text(&not_a_list, "Cargo.toml").unwrap_err();
        assert!(err.to_string().contains("table of such lists"), "{err}");
    }

    #[test]
    fn a_missing_table_says_where_to_add_it() {
        for text in ["[workspace]\nmembers = []\n", "[package]\nname = \"x\"\n"] {
            let err = from_manifest_text(text, "Cargo.toml").unwrap_err();
            assert!(matches!(err, Error::Empty { .. }), "{err}");
            assert!(
                err.to_string()
                    .contains("[workspace.metadata.mcp-foundry.variants.")
            );
        }
        assert!(matches!(
            from_workspace_metadata(&serde_json::Value::Null),
            Err(Error::Empty { .. })
        ));
        assert!(matches!(
            from_workspace_metadata(&serde_json::json!({"mcp-foundry": {}})),
            Err(Error::Empty { .. })
        ));
    }

    #[test]
    fn malformed_entries_are_errors_naming_the_problem() {
        let missing_cpu = MANIFEST.replace("target-cpu = \"x86-64-v3\"\n", "");
        let err = from_manifest_text(&missing_cpu, "Cargo.toml").unwrap_err();
        assert!(err.to_string().contains("target-cpu"), "{err}");

        let wrong_type = MANIFEST.replace("rustflags = []", "rustflags = \"-C x\"");
        let err = from_manifest_text(&wrong_type, "Cargo.toml").unwrap_err();
        assert!(err.to_string().contains("rustflags"), "{err}");

        let no_arch = MANIFEST.replace("architectures = [\"x86_64\"]\n", "architectures = []\n");
        let err = from_manifest_text(&no_arch, "Cargo.toml").unwrap_err();
        assert!(
            matches!(&err, Error::NoArchitecture { name, .. } if name == "x86-64-v3"),
            "{err}"
        );

        let bad_name = MANIFEST.replace("variants.generic]", "variants.\"../up\"]");
        let err = from_manifest_text(&bad_name, "Cargo.toml").unwrap_err();
        assert!(matches!(err, Error::BadName { .. }), "{err}");

        let err = from_manifest_text("not = [toml", "Cargo.toml").unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
        let err = from_manifest(Path::new("/nonexistent/Cargo.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/Cargo.toml"), "{err}");
    }

    #[test]
    fn the_workspace_table_parses() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let variants = from_manifest(&root).unwrap();
        // Every architecture the table names has a baseline variant (no rustflags), the
        // one the launcher falls back to on any CPU.
        for arch in variants.iter().flat_map(|v| &v.architectures) {
            assert!(
                variants
                    .iter()
                    .any(|v| v.supports(arch) && v.rustflags.is_empty()),
                "no baseline variant for {arch}"
            );
        }
    }
}

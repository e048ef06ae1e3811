//! The wheel's name, tags and core metadata, from the crate's `pyproject.toml` (the same
//! file `maturin build` reads, so both ways of building agree) and the crate version.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::elf::Libc;

#[derive(Debug, Deserialize)]
struct PyProject {
    project: Project,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Project {
    name: String,
    #[serde(default)]
    description: Option<String>,
    requires_python: String,
    #[serde(default)]
    dependencies: Vec<String>,
    #[serde(default)]
    license: Option<License>,
    #[serde(default)]
    classifiers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct License {
    text: String,
}

/// What the wheel says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The distribution name as written (`mcp-rust-core`).
    pub name: String,
    pub version: String,
    pub summary: Option<String>,
    pub requires_python: String,
    pub requires_dist: Vec<String>,
    pub license: Option<String>,
    pub classifiers: Vec<String>,
    /// The oldest CPython minor version (`9` for `>=3.9`): the abi3 tag `cp39-abi3`.
    pub python_minor: u32,
}

impl Metadata {
    /// Reads `pyproject.toml`'s `[project]` table; the version is the crate's.
    pub fn read(pyproject: &Path, crate_version: &str) -> Result<Metadata> {
        let text = std::fs::read_to_string(pyproject)
            .with_context(|| format!("reading {}", pyproject.display()))?;
        Metadata::parse(&text, crate_version).with_context(|| format!("in {}", pyproject.display()))
    }

    fn parse(text: &str, crate_version: &str) -> Result<Metadata> {
        let project = toml::from_str::<PyProject>(text)
            .context("pyproject.toml needs a [project] table with name and requires-python")?
            .project;
        Ok(Metadata {
            python_minor: oldest_python_minor(&project.requires_python)?,
            version: pep440_version(crate_version)?,
            name: project.name,
            summary: project.description,
            requires_python: project.requires_python,
            requires_dist: project.dependencies,
            license: project.license.map(|l| l.text),
            classifiers: project.classifiers,
        })
    }

    /// The name in file names (PEP 427: runs of `-_.` become `_`, lowercase).
    pub fn file_name(&self) -> String {
        let mut name = String::new();
        for c in self.name.chars() {
            if matches!(c, '-' | '_' | '.') {
                if !name.ends_with('_') {
                    name.push('_');
                }
            } else {
                name.push(c.to_ascii_lowercase());
            }
        }
        name
    }

    /// `<name>-<version>.dist-info`.
    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.file_name(), self.version)
    }

    /// The `METADATA` file (core metadata 2.1).
    pub fn metadata_file(&self) -> String {
        let mut text = format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
            self.name, self.version
        );
        if let Some(summary) = &self.summary {
            text.push_str(&format!("Summary: {summary}\n"));
        }
        if let Some(license) = &self.license {
            text.push_str(&format!("License: {license}\n"));
        }
        text.push_str(&format!("Requires-Python: {}\n", self.requires_python));
        for requirement in &self.requires_dist {
            text.push_str(&format!("Requires-Dist: {requirement}\n"));
        }
        for classifier in &self.classifiers {
            text.push_str(&format!("Classifier: {classifier}\n"));
        }
        text
    }

    /// The `WHEEL` file: not pure Python, one line per tag.
    pub fn wheel_file(&self, tags: &[String]) -> String {
        let mut text = String::from(
            "Wheel-Version: 1.0\nGenerator: mcp-foundry (cargo xtask dist)\nRoot-Is-Purelib: false\n",
        );
        for tag in tags {
            text.push_str(&format!("Tag: {tag}\n"));
        }
        text
    }
}

/// `9` for `>=3.9` (the only form an abi3 floor can take).
fn oldest_python_minor(requires_python: &str) -> Result<u32> {
    requires_python
        .trim()
        .strip_prefix(">=")
        .and_then(|v| v.trim().strip_prefix("3."))
        .and_then(|minor| minor.split('.').next())
        .and_then(|minor| minor.parse().ok())
        .with_context(|| {
            format!(
                "requires-python = {requires_python:?}: an abi3 wheel needs a floor like \">=3.9\""
            )
        })
}

/// The crate version as a PEP 440 version: plain `X.Y.Z` passes, pre-releases are refused
/// (cargo's `-alpha.1` has no unambiguous PEP 440 spelling here).
fn pep440_version(version: &str) -> Result<String> {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(version.to_owned())
    } else {
        bail!("crate version {version:?} is not a plain X.Y.Z release, which the wheel needs")
    }
}

/// The platform tags for modules linked against `libc` on `arch`. glibc: the PEP 600 tag,
/// plus the legacy PEP 599 alias old installers know, where one exists; glibc 2.17 is the
/// floor (Rust's standard library needs it). musl: the PEP 656 tag at musl 1.2, the floor
/// of Rust's musl targets.
pub fn platform_tags(libc: Libc, arch: &str) -> Vec<String> {
    match libc {
        Libc::Glibc { minor } => {
            let minor = minor.max(17);
            let mut tags = vec![format!("manylinux_2_{minor}_{arch}")];
            if minor == 17 {
                tags.push(format!("manylinux2014_{arch}"));
            }
            tags
        }
        Libc::Musl => vec![format!("musllinux_1_2_{arch}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYPROJECT: &str = r#"
[build-system]
requires = ["maturin>=1.9,<2"]

[project]
name = "mcp-rust-core"
description = "Kernels"
requires-python = ">=3.9"
dependencies = ["numpy>=1.21"]
license = { text = "MIT OR Apache-2.0" }
classifiers = ["Typing :: Typed"]
dynamic = ["version"]
"#;

    #[test]
    fn metadata_and_names_follow_pyproject() {
        let metadata = Metadata::parse(PYPROJECT, "0.1.0").unwrap();
        assert_eq!(metadata.file_name(), "mcp_rust_core");
        assert_eq!(metadata.dist_info(), "mcp_rust_core-0.1.0.dist-info");
        assert_eq!(metadata.python_minor, 9);
        assert_eq!(
            metadata.metadata_file(),
            "Metadata-Version: 2.1\nName: mcp-rust-core\nVersion: 0.1.0\nSummary: Kernels\n\
             License: MIT OR Apache-2.0\nRequires-Python: >=3.9\nRequires-Dist: numpy>=1.21\n\
             Classifier: Typing :: Typed\n"
        );
        let wheel = metadata.wheel_file(&["cp39-abi3-manylinux_2_17_x86_64".into()]);
        assert!(wheel.contains("Root-Is-Purelib: false\nTag: cp39-abi3-manylinux_2_17_x86_64\n"));
    }

    #[test]
    fn the_real_pyproject_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp-rust-core/pyproject.toml");
        let metadata = Metadata::read(&path, "1.2.3").unwrap();
        assert_eq!(metadata.file_name(), "mcp_rust_core");
        assert!(
            metadata
                .requires_dist
                .iter()
                .any(|d| d.starts_with("numpy"))
        );
    }

    #[test]
    fn bad_versions_and_floors_are_errors() {
        assert!(Metadata::parse(PYPROJECT, "0.1.0-alpha.1").is_err());
        let no_floor = PYPROJECT.replace(">=3.9", "~=3.9");
        assert!(
            format!("{:#}", Metadata::parse(&no_floor, "0.1.0").unwrap_err()).contains("floor")
        );
        assert!(Metadata::parse("[tool.x]\n", "0.1.0").is_err());
    }

    #[test]
    fn platform_tags_have_the_legacy_alias_only_at_2_17() {
        assert_eq!(
            platform_tags(Libc::Glibc { minor: 14 }, "x86_64"),
            ["manylinux_2_17_x86_64", "manylinux2014_x86_64"]
        );
        assert_eq!(
            platform_tags(Libc::Glibc { minor: 28 }, "aarch64"),
            ["manylinux_2_28_aarch64"]
        );
        assert_eq!(
            platform_tags(Libc::Musl, "x86_64"),
            ["musllinux_1_2_x86_64"]
        );
    }
}

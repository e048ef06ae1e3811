//! `cargo xtask verify --rebuild`: builds the manifest's crates again from a copy of the
//! sources in another absolute directory and compares every artifact's sha256.

use std::fs;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::dist::{self, DistRequest, Manifest, SourceInfo};
use crate::metadata::Workspace;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reproducibility {
    /// Crates rebuilt (a subset when `--rebuild-crate` was given).
    pub crates: Vec<String>,
    pub rebuild_directory: String,
    pub compared: usize,
    /// `path: reason` for every artifact that differs or is missing.
    pub mismatches: Vec<String>,
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
        architectures: manifest.architectures(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

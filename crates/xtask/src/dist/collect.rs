//! From cargo's outputs to `dist/`: each artifact is copied unstripped (for the audit) and
//! stripped (to ship) into a staging directory, hashed, and the staged variant directories
//! replace everything the previous run left in one step, manifest last.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::cargo::{CargoOutputs, Toolchain};
use super::manifest::{Artifact, ArtifactKind, Manifest, SourceInfo, hash_file};
use super::out_dir;
use super::{Job, python_package_dir};
use crate::metadata::{CrateSpec, Role};
use crate::process;

/// One artifact placed in staging, with the time its crate was ready after its job started.
#[derive(Debug, Clone)]
pub struct Built {
    pub artifact: Artifact,
    pub ready_after: Duration,
}

/// Copies one crate's outputs into `staging/<variant>/`: stripped into
/// `bin/`/`lib/`/`python/`, unstripped into `unstripped/`. Both copies carry
/// `dependency_list` (see [`crate::sbom`]).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site, in dist.rs; each argument is a distinct input of the copy"
)]
pub fn collect(
    job: &Job<'_>,
    spec: &CrateSpec,
    toolchain: &Toolchain,
    source: &SourceInfo,
    staging: &Path,
    outputs: &CargoOutputs,
    log_path: &Path,
    dependency_list: &[u8],
) -> Result<Vec<Built>> {
    let variant_dir = staging.join(super::artifact_dir(&job.variant.name, &job.target));
    let mut placed: Vec<(ArtifactKind, PathBuf, Option<PathBuf>)> = Vec::new();
    match spec.role {
        Role::Server | Role::Launcher => {
            for bin in &spec.bin_targets {
                let Some((_, built)) = outputs.executables.iter().find(|(name, _)| name == bin)
                else {
                    bail!(
                        "cargo reported no executable for binary `{bin}` of `{}` ({}); see {}",
                        spec.name,
                        job.variant.name,
                        log_path.display()
                    );
                };
                let unstripped = variant_dir.join("unstripped/bin").join(bin);
                copy_file(built, &unstripped)?;
                let shipped = variant_dir.join("bin").join(bin);
                strip(toolchain, &unstripped, &shipped)?;
                embed_both(toolchain, &[&unstripped, &shipped], dependency_list)?;
                placed.push((ArtifactKind::ServerBinary, shipped, Some(unstripped)));
            }
        }
        _ => {
            let Some(built) = &outputs.cdylib else {
                bail!(
                    "cargo reported no cdylib for `{}` ({}); its [lib] needs crate-type = \
                     [\"cdylib\", ...]; see {}",
                    spec.name,
                    job.variant.name,
                    log_path.display()
                );
            };
            let lib_name = spec.lib_target.as_deref().unwrap_or_default();
            let module = spec.python_module.as_deref().unwrap_or_default();
            let unstripped = variant_dir.join(format!("unstripped/lib/lib{lib_name}.so"));
            copy_file(built, &unstripped)?;
            let shipped = variant_dir.join(format!("lib/lib{lib_name}.so"));
            strip(toolchain, &unstripped, &shipped)?;
            embed_both(toolchain, &[&unstripped, &shipped], dependency_list)?;
            placed.push((
                ArtifactKind::SharedLibrary,
                shipped.clone(),
                Some(unstripped.clone()),
            ));

            let package = variant_dir.join("python").join(module);
            for source in python_sources(&python_package_dir(spec))? {
                let Some(name) = source.file_name() else {
                    continue;
                };
                let destination = package.join(name);
                copy_file(&source, &destination)?;
                placed.push((ArtifactKind::PythonSource, destination, None));
            }
            let extension = package.join(format!("{module}.abi3.so"));
            copy_file(&shipped, &extension)?;
            placed.push((ArtifactKind::PythonExtension, extension, Some(unstripped)));
        }
    }

    let relative = |path: &Path| -> Result<String> {
        Ok(path
            .strip_prefix(staging)
            .with_context(|| format!("{} is outside {}", path.display(), staging.display()))?
            .to_string_lossy()
            .into_owned())
    };
    let mut artifacts = Vec::new();
    for (kind, path, unstripped) in placed {
        let (sha256, size) = hash_file(&path)?;
        let (unstripped_path, unstripped_sha256) = match &unstripped {
            Some(file) => (Some(relative(file)?), Some(hash_file(file)?.0)),
            None => (None, None),
        };
        artifacts.push(Built {
            artifact: Artifact {
                path: relative(&path)?,
                kind,
                crate_name: spec.name.clone(),
                crate_version: spec.version.clone(),
                role: spec.role,
                variant: job.variant.name.clone(),
                target: job.target.clone(),
                target_cpu: job.variant.target_cpu.clone(),
                rustflags: job.variant.rustflags.clone(),
                profile: job.profile.to_owned(),
                sha256,
                size,
                unstripped_path,
                unstripped_sha256,
                rustc_version: source.rustc_version.clone(),
                git_commit: source.git_commit.clone(),
                cargo_lock_sha256: source.cargo_lock_sha256.clone(),
            },
            ready_after: outputs.ready_after.unwrap_or_default(),
        });
    }
    Ok(artifacts)
}

/// Files of the Python package directory (not recursive: the package is flat), sorted,
/// without byte-code caches.
fn python_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_none_or(|e| e != "pyc" && e != "so") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn strip(toolchain: &Toolchain, input: &Path, output: &Path) -> Result<()> {
    if let Some(parent) = output.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    process::output(
        Command::new(&toolchain.objcopy)
            .arg("--strip-all")
            .arg(input)
            .arg(output),
    )
    .map(drop)
}

/// Adds the dependency list after stripping (which would remove it: it is not loaded).
fn embed_both(toolchain: &Toolchain, files: &[&Path], dependency_list: &[u8]) -> Result<()> {
    for file in files {
        crate::sbom::embed(&toolchain.objcopy, file, dependency_list)?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

pub fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Replaces everything the previous run left in `out` (its variant directories, wheels,
/// reports, images, `server.json` files: see [`out_dir`]) with the staged variant
/// directories, and writes the manifest last: a `dist/` with a manifest is always complete
/// and consistent, and holds nothing the manifest does not describe. `all_variants` are the
/// workspace's variant names. The staging directory goes only after the manifest is
/// written, so an interrupted publication still leaves a directory [`out_dir`] recognises.
pub fn publish(
    out: &Path,
    staging: &Path,
    manifest: &Manifest,
    all_variants: &[&str],
) -> Result<()> {
    // Checked again: the directory may have changed while the run was building.
    let mut previous = out_dir::previous_run(out, all_variants)?;
    previous.retain(|path| path != staging);
    // The manifest first, so no manifest describes a half-replaced directory.
    previous.sort_by_key(|path| !path.ends_with(Manifest::FILE_NAME));
    out_dir::remove(&previous)?;
    for variant in &manifest.variants {
        let from = staging.join(&variant.name);
        let to = out.join(&variant.name);
        fs::rename(&from, &to)
            .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    }
    let path = out.join(Manifest::FILE_NAME);
    let temporary = out.join(out_dir::MANIFEST_TEMPORARY);
    fs::write(&temporary, manifest.to_json())
        .with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))?;
    remove_if_exists(staging)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_sources_skip_caches_and_built_modules() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "__init__.py",
            "__init__.pyi",
            "py.typed",
            "x.pyc",
            "m.abi3.so",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        fs::create_dir(dir.path().join("__pycache__")).unwrap();
        let names: Vec<String> = python_sources(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["__init__.py", "__init__.pyi", "py.typed"]);
    }

    /// A manifest of `variants` without artifacts.
    fn manifest_of(variants: &[&str]) -> Manifest {
        let variants: Vec<serde_json::Value> = variants
            .iter()
            .map(|name| {
                serde_json::json!({"name": name, "target_cpu": "generic", "rustflags": [],
                    "description": ""})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema_version": Manifest::SCHEMA_VERSION, "git_commit": "abc", "git_dirty": false,
            "source_date_epoch": 0, "rustc_version": "r", "cargo_lock_sha256": "00",
            "profile": "p", "variants": variants, "artifacts": []
        }))
        .unwrap()
    }

    #[test]
    fn publish_replaces_every_variant_directory_and_writes_the_manifest_last() {
        let out = tempfile::tempdir().unwrap();
        let staging = out.path().join(".staging");
        fs::create_dir_all(staging.join("generic/bin")).unwrap();
        fs::write(staging.join("generic/bin/new"), "new").unwrap();
        // A previous run's variants, one of which this run did not build.
        for old in ["generic", "znver4"] {
            fs::create_dir_all(out.path().join(old).join("bin")).unwrap();
            fs::write(out.path().join(old).join("bin/old"), "old").unwrap();
        }
        // What was made from the previous run's artifacts describes them, not the new ones.
        for derived in [
            "report.md",
            "SHA256SUMS",
            "images/demo/index.json",
            "mcp-registry/demo/server.json",
            "wheels/demo.whl",
        ] {
            let path = out.path().join(derived);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "stale").unwrap();
        }
        let manifest = manifest_of(&["generic"]);
        publish(out.path(), &staging, &manifest, &["generic", "znver4"]).unwrap();
        assert!(out.path().join("generic/bin/new").is_file());
        assert!(!out.path().join("generic/bin/old").exists());
        assert!(!out.path().join("znver4").exists());
        assert!(!staging.exists());
        assert_eq!(Manifest::load(out.path()).unwrap(), manifest);
        let mut left: Vec<String> = fs::read_dir(out.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["generic", "manifest.json"]);
    }

    #[test]
    fn publish_refuses_a_directory_that_gained_a_foreign_file_and_keeps_it() {
        let out = tempfile::tempdir().unwrap();
        let staging = out.path().join(".staging");
        fs::create_dir_all(staging.join("generic/bin")).unwrap();
        fs::write(out.path().join("notes.txt"), "mine").unwrap();
        let error = publish(
            out.path(),
            &staging,
            &manifest_of(&["generic"]),
            &["generic"],
        )
        .unwrap_err();
        assert!(error.to_string().contains("notes.txt"), "{error}");
        assert!(out.path().join("notes.txt").is_file());
        assert!(!out.path().join(Manifest::FILE_NAME).exists());
    }
}

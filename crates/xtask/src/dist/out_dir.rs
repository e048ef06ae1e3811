//! What in a dist directory belongs to a dist run, and the check that a directory is one.
//!
//! A dist directory holds one run's artifacts and everything made from them afterwards:
//! `manifest.json`, the variant directories, the wheels, and what `cargo xtask verify`,
//! `image` and `sign` add (reports, OCI layouts, `mcp-registry/*/server.json`, checksums).
//! Each of these describes the artifacts of that run, so a new run replaces all of them: an
//! image, a `server.json` or a variant directory of an older run (or of a wider `--variant`
//! / `--crate` / `--arch` selection) would otherwise sit next to artifacts it does not
//! describe, and `cargo xtask verify` would check it against them.
//!
//! Replacing means deleting, so it happens only in a directory that is a dist directory
//! (empty, or with `manifest.json`, or with the staging directory of an interrupted run) and
//! only to names an xtask command writes there; anything else stops the run before it
//! builds, with the directory untouched. Only the directory's own entries are ever removed
//! (a symbolic link as the link itself), never anything outside it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::manifest::Manifest;

/// Where a run assembles its artifacts before [`super::collect::publish`] moves them in.
pub const STAGING_DIR: &str = ".staging";
/// The manifest while it is written (renamed to `manifest.json` when complete).
pub const MANIFEST_TEMPORARY: &str = ".manifest.json.tmp";

/// The names xtask commands write at the top of a dist directory, besides the variant
/// directories and [`STAGING_DIR`].
pub fn derived_names() -> [&'static str; 9] {
    [
        Manifest::FILE_NAME,
        MANIFEST_TEMPORARY,
        crate::wheel::WHEELS_DIR,
        crate::verify::report::JSON_FILE,
        crate::verify::report::MARKDOWN_FILE,
        crate::image::IMAGES_DIR,
        crate::image::registry::REGISTRY_DIR,
        crate::sign::SUMS,
        crate::sign::SIGNATURE,
    ]
}

/// The entries of `out` that a new dist run replaces: everything in it, once it is known to
/// be a dist directory whose every entry an xtask command wrote. `variants` are the
/// workspace's variant names; those of the previous run's manifest count too (a variant
/// since removed from the table). Fails, touching nothing, when `out` is not a directory,
/// is not a dist directory, or holds anything else.
pub fn previous_run(out: &Path, variants: &[&str]) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(out) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(error).with_context(|| {
                format!(
                    "reading the dist output directory {} (--out must be a directory)",
                    out.display()
                )
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", out.display()))?;
        names.push(entry.file_name());
    }
    names.sort();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let is_dist = names
        .iter()
        .any(|name| name == Manifest::FILE_NAME || name == STAGING_DIR);
    if !is_dist {
        bail!(
            "{} is not empty and has no {}: it does not look like a `cargo xtask dist` output \
             directory, and dist replaces what is in one; give an empty or new directory with \
             --out",
            out.display(),
            Manifest::FILE_NAME
        );
    }
    let mut known: BTreeSet<String> = derived_names().iter().map(|&n| n.to_owned()).collect();
    known.insert(STAGING_DIR.to_owned());
    known.extend(variants.iter().map(|&n| n.to_owned()));
    known.extend(previous_variants(out));
    let (owned, foreign): (Vec<_>, Vec<_>) = names
        .into_iter()
        .partition(|name| name.to_str().is_some_and(|name| known.contains(name)));
    if !foreign.is_empty() {
        let listed: Vec<String> = foreign
            .iter()
            .map(|name| name.to_string_lossy().into_owned())
            .collect();
        bail!(
            "{} is a dist directory but also holds {}, which no xtask command writes there; \
             dist replaces the whole directory, so move them elsewhere or give another --out",
            out.display(),
            listed.join(", ")
        );
    }
    Ok(owned.into_iter().map(|name| out.join(name)).collect())
}

/// The variant directories the manifest in `out` names (its variants and the first
/// component of its artifacts' paths), read loosely: a manifest of another schema version
/// still names them. Nothing when there is no readable manifest.
fn previous_variants(out: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(out.join(Manifest::FILE_NAME)) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let list = |key: &str| value[key].as_array().cloned().unwrap_or_default();
    for variant in list("variants") {
        names.extend(variant["name"].as_str().map(str::to_owned));
    }
    for artifact in list("artifacts") {
        for key in ["path", "unstripped_path"] {
            let first = artifact[key].as_str().and_then(|p| p.split('/').next());
            names.extend(first.map(str::to_owned));
        }
    }
    names
}

/// Removes `entries` (from [`previous_run`]): a directory with its contents, a file or a
/// symbolic link itself.
pub fn remove(entries: &[PathBuf]) -> Result<()> {
    for path in entries {
        let metadata = match fs::symlink_metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        let removed = if metadata.is_dir() {
            fs::remove_dir_all(path)
        } else {
            fs::remove_file(path)
        };
        removed.with_context(|| format!("removing the previous run's {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn a_missing_or_empty_directory_has_nothing_to_replace() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            previous_run(&dir.path().join("new"), &[])
                .unwrap()
                .is_empty()
        );
        assert!(previous_run(dir.path(), &["generic"]).unwrap().is_empty());
    }

    #[test]
    fn a_directory_without_manifest_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        // Names dist would replace, but no manifest: somebody else's directory.
        write(&dir.path().join("images/photo.png"), "mine");
        write(&dir.path().join("notes.txt"), "mine");
        let error = previous_run(dir.path(), &["generic"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not look like"), "{error}");
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
        assert!(dir.path().join("images/photo.png").is_file());

        let file = dir.path().join("notes.txt");
        let error = format!("{:#}", previous_run(&file, &[]).unwrap_err());
        assert!(error.contains("must be a directory"), "{error}");
    }

    #[test]
    fn a_dist_directory_with_a_foreign_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join(Manifest::FILE_NAME), "{}");
        write(&dir.path().join("generic/bin/server"), "old");
        write(&dir.path().join("thesis.tex"), "mine");
        let error = previous_run(dir.path(), &["generic"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("thesis.tex"), "{error}");
        assert!(!error.contains("generic"), "{error}");
    }

    #[test]
    fn everything_a_dist_directory_holds_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // The previous run built `retired`, since removed from the variants table.
        let manifest = serde_json::json!({"variants": [{"name": "retired"}], "artifacts": [
            {"path": "retired/bin/s", "unstripped_path": "retired/unstripped/bin/s"}]});
        write(&dir.path().join(Manifest::FILE_NAME), &manifest.to_string());
        for name in derived_names()
            .into_iter()
            .filter(|&n| n != Manifest::FILE_NAME)
        {
            write(&dir.path().join(name).join("x"), "old");
        }
        for variant in ["generic", "retired"] {
            write(&dir.path().join(variant).join("bin/s"), "old");
        }
        let entries = previous_run(dir.path(), &["generic", "znver4"]).unwrap();
        assert_eq!(entries.len(), derived_names().len() + 2, "{entries:?}");
        remove(&entries).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_interrupted_first_run_is_a_dist_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join(STAGING_DIR).join("generic/bin/s"), "half");
        assert_eq!(
            previous_run(dir.path(), &[]).unwrap(),
            [dir.path().join(STAGING_DIR)]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_removed_not_what_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        write(&elsewhere.path().join("keep"), "keep");
        let out = dir.path().join("dist");
        write(&out.join(Manifest::FILE_NAME), "{}");
        std::os::unix::fs::symlink(elsewhere.path(), out.join("images")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path().join("keep"), out.join("report.md")).unwrap();
        remove(&previous_run(&out, &[]).unwrap()).unwrap();
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0);
        assert!(elsewhere.path().join("keep").is_file());
    }

    /// `--out` is where dist looks, refuses and (never here) replaces: a directory of
    /// someone else's files stops `cargo xtask dist` and `build` before any prerequisite or
    /// build, with its files left as they were.
    #[test]
    fn an_out_directory_that_is_not_a_dist_directory_is_refused_before_building() {
        let workspace = crate::metadata::Workspace::load().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::create_dir(out.path().join("images")).unwrap();
        std::fs::write(out.path().join("images/photo.png"), "mine").unwrap();
        let args = crate::dist::DistArgs {
            out: Some(out.path().to_owned()),
            ..Default::default()
        };
        let error = crate::dist::run(&workspace, &args).unwrap_err().to_string();
        assert!(error.contains("does not look like"), "{error}");
        assert!(error.contains(&out.path().display().to_string()), "{error}");

        let request = crate::dist::DistRequest {
            workspace: &workspace,
            variants: workspace.select_variants(&[]).unwrap(),
            crates: workspace.select_shipped_crates(&[]).unwrap(),
            architectures: vec![std::env::consts::ARCH.to_owned()],
            out: out.path().to_owned(),
            target_base: out.path().join("never-created"),
            source: crate::provenance::tests::sample("generic/bin/s", "generic", "00").0,
        };
        let error = crate::dist::build(&request).unwrap_err().to_string();
        assert!(error.contains("does not look like"), "{error}");
        let entries: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "nothing was added or removed");
        assert_eq!(
            std::fs::read_to_string(out.path().join("images/photo.png")).unwrap(),
            "mine"
        );
    }
}

//! A copy of the sources a dist is built from, in another directory: for the
//! reproducibility rebuild (`verify --rebuild`) and for benchmarks that edit a file.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::process;

/// Copies into `destination` the commit itself (`git archive`) when the tree was `clean`,
/// otherwise the working tree's tracked and untracked-but-not-ignored files as they are now.
pub fn copy_sources(root: &Path, commit: &str, dirty: bool, destination: &Path) -> Result<()> {
    fs::create_dir_all(destination)
        .with_context(|| format!("creating {}", destination.display()))?;
    if !dirty {
        let mut archive = Command::new("git")
            .args(["archive", "--format=tar", commit])
            .current_dir(root)
            .stdout(Stdio::piped())
            .spawn()
            .context("could not start `git archive`")?;
        let stdout = archive
            .stdout
            .take()
            .context("git archive's stdout is piped")?;
        process::run(
            Command::new("tar")
                .arg("-x")
                .arg("-C")
                .arg(destination)
                .stdin(Stdio::from(stdout)),
        )?;
        let status = archive.wait()?;
        if !status.success() {
            bail!("`git archive {commit}` failed ({status})");
        }
        return Ok(());
    }
    eprintln!(
        "note: the working tree has uncommitted changes; copying the working tree as it is now \
         (edits made since dist will show up as differences)"
    );
    let listing = process::output(
        Command::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .current_dir(root),
    )?;
    for relative in listing.split('\0').filter(|p| !p.is_empty()) {
        let from = root.join(relative);
        if !from.is_file() {
            continue; // deleted in the working tree
        }
        let to = destination.join(relative);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(&from, &to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn clean_trees_copy_the_commit_and_dirty_ones_the_working_files() {
        let repo = tempfile::tempdir().unwrap();
        git(repo.path(), &["init", "-q"]);
        fs::write(repo.path().join(".gitignore"), "ignored\n").unwrap();
        fs::write(repo.path().join("a.txt"), "committed").unwrap();
        git(repo.path(), &["add", "."]);
        git(repo.path(), &["commit", "-q", "-m", "one"]);
        let commit = process::output(
            Command::new("git")
                .args(["rev-parse", "HEAD"])
                .current_dir(repo.path()),
        )
        .unwrap();
        fs::write(repo.path().join("a.txt"), "edited").unwrap();
        fs::write(repo.path().join("new.txt"), "untracked").unwrap();
        fs::write(repo.path().join("ignored"), "ignored").unwrap();

        let clean = tempfile::tempdir().unwrap();
        copy_sources(repo.path(), &commit, false, clean.path()).unwrap();
        assert_eq!(
            fs::read_to_string(clean.path().join("a.txt")).unwrap(),
            "committed"
        );
        assert!(!clean.path().join("new.txt").exists());

        let dirty = tempfile::tempdir().unwrap();
        copy_sources(repo.path(), &commit, true, dirty.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dirty.path().join("a.txt")).unwrap(),
            "edited"
        );
        assert!(dirty.path().join("new.txt").is_file());
        assert!(!dirty.path().join("ignored").exists());
    }
}

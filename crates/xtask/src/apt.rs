//! Debian packages of one architecture (usually another than this machine's), fetched by
//! apt-get with a private state: its own package lists, cache and an empty dpkg status, so
//! the system's sources are used but nothing of the system's package state is read or
//! written, and the system's lock is neither needed nor taken. Used for what images and the
//! wheel tests need of another architecture: `image`'s static programs (one package each)
//! and the wheel test's emulated Python userland (packages with their dependencies).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process;

/// apt-get for one Debian architecture with its state in one directory.
#[derive(Debug, Clone)]
pub struct PrivateApt {
    state: PathBuf,
    debian_arch: String,
}

impl PrivateApt {
    /// apt-get for `debian_arch` (`arm64`) with its state in `state`, its package lists
    /// updated from the system's sources.
    pub fn update(state: &Path, debian_arch: &str) -> Result<PrivateApt> {
        for sub in ["lists/partial", "cache/archives/partial"] {
            let dir = state.join(sub);
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // An empty dpkg status: apt resolves every dependency, as for an empty system.
        let status = state.join("status");
        fs::write(&status, "").with_context(|| format!("writing {}", status.display()))?;
        let apt = PrivateApt {
            state: state.to_owned(),
            debian_arch: debian_arch.to_owned(),
        };
        process::run(&mut apt.command(&["update"]))?;
        Ok(apt)
    }

    /// apt-get with the private state and architecture, then `args`.
    fn command(&self, args: &[&str]) -> Command {
        let arch = &self.debian_arch;
        let mut command = Command::new("apt-get");
        command
            .arg("-q")
            .arg(format!(
                "-oDir::State::Lists={}",
                self.state.join("lists").display()
            ))
            .arg(format!(
                "-oDir::Cache={}",
                self.state.join("cache").display()
            ))
            .arg(format!(
                "-oDir::State::status={}",
                self.state.join("status").display()
            ))
            .arg(format!("-oAPT::Architecture={arch}"))
            .arg(format!("-oAPT::Architectures::={arch}"))
            .arg("-oDebug::NoLocking=1")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive");
        command
    }

    /// The `.deb` files of `packages` and everything they depend on (recommendations left
    /// out), sorted; they stay in the private cache until the caller removes them.
    pub fn download_with_dependencies(&self, packages: &[&str]) -> Result<Vec<PathBuf>> {
        let mut install = self.command(&[
            "install",
            "--download-only",
            "--yes",
            "--no-install-recommends",
        ]);
        install.args(packages);
        process::run(&mut install)?;
        let archives = self.state.join("cache/archives");
        let debs = debs_in(&archives)?;
        if debs.is_empty() {
            bail!("apt-get left no package in {}", archives.display());
        }
        Ok(debs)
    }

    /// The `.deb` of `package` alone (no dependencies), downloaded into the empty directory
    /// `into` (made afresh).
    pub fn download(&self, package: &str, into: &Path) -> Result<PathBuf> {
        let _ = fs::remove_dir_all(into);
        fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
        let qualified = format!("{package}:{}", self.debian_arch);
        process::run(self.command(&["download", &qualified]).current_dir(into))?;
        debs_in(into)?
            .into_iter()
            .next()
            .with_context(|| format!("apt-get download left no .deb in {}", into.display()))
    }
}

/// Unpacks `deb`'s files under `root` (maintainer scripts do not run).
pub fn unpack(deb: &Path, root: &Path) -> Result<()> {
    process::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root))
        .with_context(|| format!("unpacking {}", deb.display()))
}

fn debs_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut debs: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "deb"))
        .collect();
    debs.sort();
    Ok(debs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The other architecture's Debian name (this machine's packages would prove less).
    fn other_arch() -> &'static str {
        if std::env::consts::ARCH == "x86_64" {
            "arm64"
        } else {
            "amd64"
        }
    }

    /// Really downloads from the Debian archive (as the callers do): a small library with
    /// its dependencies, then one package alone; both unpack.
    #[test]
    fn packages_of_another_architecture_download_with_and_without_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let arch = other_arch();
        let apt = PrivateApt::update(&dir.path().join("apt"), arch).unwrap();

        let debs = apt.download_with_dependencies(&["libgcc-s1"]).unwrap();
        let names: Vec<String> = debs
            .iter()
            .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for package in ["libgcc-s1_", "libc6_"] {
            assert!(
                names
                    .iter()
                    .any(|n| n.starts_with(package) && n.ends_with(&format!("_{arch}.deb"))),
                "{package} of {arch} missing from {names:?}"
            );
        }

        let deb = apt
            .download("libgcc-s1", &dir.path().join("download"))
            .unwrap();
        let name = deb.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("libgcc-s1_") && name.ends_with(&format!("_{arch}.deb")),
            "{name}"
        );
        assert_eq!(
            debs_in(&dir.path().join("download")).unwrap(),
            std::slice::from_ref(&deb)
        );
        let root = dir.path().join("root");
        unpack(&deb, &root).unwrap();
        let triplet = if arch == "arm64" {
            "aarch64-linux-gnu"
        } else {
            "x86_64-linux-gnu"
        };
        assert!(
            root.join("lib")
                .join(triplet)
                .join("libgcc_s.so.1")
                .exists()
                || root
                    .join("usr/lib")
                    .join(triplet)
                    .join("libgcc_s.so.1")
                    .exists()
        );
    }

    #[test]
    fn an_unknown_package_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let apt = PrivateApt::update(&dir.path().join("apt"), other_arch()).unwrap();
        let error = apt
            .download("no-such-package-mcp-foundry", &dir.path().join("download"))
            .unwrap_err();
        assert!(format!("{error:#}").contains("apt-get"), "{error:#}");
        assert!(
            apt.download_with_dependencies(&["no-such-package-mcp-foundry"])
                .is_err()
        );
    }
}

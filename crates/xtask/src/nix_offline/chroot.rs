//! A Debian sid chroot with a Nix new enough for crane, for hosts whose own Nix is older.
//!
//! Created once with debootstrap from the Debian mirror apt already uses here (read from
//! the host's apt sources, so no mirror is written into this repository), then reused:
//! its /nix store keeps every build between runs. Paths the run needs (the checkout, its
//! git directory, rustup and cargo homes, the pinned sources) are bind-mounted at the
//! same paths inside, so every path means the same on both sides. Needs root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process;

/// `program` run chrooted into `root`, in `dir` (a path inside), with a clean environment
/// (HOME, LANG, a standard PATH) plus `env`: nothing of the caller's shell leaks in. Shared
/// by the Nix chroot and the wheel test's Debian chroots.
pub(crate) fn command_in_root(
    root: &Path,
    dir: &Path,
    env: &[(&str, &str)],
    program: impl AsRef<std::ffi::OsStr>,
) -> Command {
    let mut command = Command::new("chroot");
    command
        .arg(root)
        .args(["/usr/bin/env", "-i", "HOME=/root", "LANG=C.UTF-8"])
        .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    for (name, value) in env {
        command.arg(format!("{name}={value}"));
    }
    command
        .args(["/bin/sh", "-c", r#"cd "$0" && exec "$@""#])
        .arg(dir)
        .arg(program);
    command
}

/// What the substitute's packages are made of, plus Nix itself (nix/offline/pkgs.nix).
pub const DEBIAN_PACKAGES: &[&str] = &[
    "nix-bin",
    "git",
    "ca-certificates",
    "gcc",
    "libc6-dev",
    "musl-tools",
    "binutils",
    "make",
    "patch",
    "file",
    "xz-utils",
    "bzip2",
    "zstd",
    "rsync",
    "jq",
    "gawk",
    "patchelf",
    "procps",
    "python3",
    "python3-dev",
    "python3-numpy",
    "python3-pytest",
    "python3-hypothesis",
    "skopeo",
    "umoci",
    "qemu-user",
    "cargo-audit",
];

#[derive(Debug)]
pub struct Chroot {
    root: PathBuf,
}

impl Chroot {
    /// Creates the chroot if needed, installs the packages, mounts /proc, /dev, /sys.
    pub fn prepare(root: &Path) -> Result<Chroot> {
        if !is_root() {
            bail!(
                "the host's Nix is too old and setting up a chroot needs root; run as root, \
                 or install Nix >= {}",
                super::show(super::MIN_NIX)
            );
        }
        let chroot = Chroot {
            root: root.to_path_buf(),
        };
        if !root.join("usr/bin/apt-get").exists() {
            let mirror = debian_mirror()?;
            eprintln!(
                "nix-offline: debootstrap sid into {} from {mirror}",
                root.display()
            );
            fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
            process::run(
                Command::new("debootstrap")
                    .args(["--variant=minbase", "sid"])
                    .arg(root)
                    .arg(&mirror),
            )
            .context("debootstrap failed (apt-get install debootstrap)")?;
        }
        fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"))
            .context("copying /etc/resolv.conf into the chroot")?;
        chroot.mount_system()?;
        let missing: Vec<&str> = DEBIAN_PACKAGES
            .iter()
            .copied()
            .filter(|p| !chroot.has_package(p))
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "nix-offline: installing into the chroot: {}",
                missing.join(" ")
            );
            process::run(chroot.command("apt-get").args([
                "-o",
                "Acquire::Check-Valid-Until=false",
                "update",
            ]))?;
            process::run(
                chroot
                    .command("apt-get")
                    .args(["install", "-y", "--no-install-recommends"])
                    .args(&missing)
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )?;
        }
        Ok(chroot)
    }

    /// `program` run inside the chroot in `dir`, with a clean environment plus `env` (what
    /// Nix and the substitute see must not depend on the caller's shell).
    pub fn command_in(&self, dir: &Path, env: &[(&str, &str)], program: &str) -> Command {
        command_in_root(&self.root, dir, env, program)
    }

    fn command(&self, program: &str) -> Command {
        self.command_in(Path::new("/"), &[], program)
    }

    /// `path` inside the chroot, as the host sees it.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn has_package(&self, name: &str) -> bool {
        process::output(
            self.command("dpkg-query")
                .args(["-W", "-f=${Status}", name]),
        )
        .is_ok_and(|status| status.ends_with("ok installed"))
    }

    fn mount_system(&self) -> Result<()> {
        self.mount(&["-t", "proc", "proc"], "/proc")?;
        self.mount(&["--bind", "/dev"], "/dev")?;
        self.mount(&["--bind", "/dev/pts"], "/dev/pts")?;
        self.mount(&["-t", "tmpfs", "tmpfs"], "/dev/shm")?;
        self.mount(&["--bind", "/sys"], "/sys")
    }

    /// Bind-mounts each host path at the same path inside (read-write: cargo writes its
    /// home, the build writes the checkout's target directory).
    pub fn mount_paths(&self, paths: &[PathBuf]) -> Result<()> {
        for path in paths {
            let text = path
                .to_str()
                .with_context(|| format!("{} is not UTF-8", path.display()))?;
            self.mount(&["--bind", text], text)?;
        }
        Ok(())
    }

    fn mount(&self, how: &[&str], at: &str) -> Result<()> {
        let target = self.host_path(Path::new(at));
        fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
        if Command::new("mountpoint")
            .arg("-q")
            .arg(&target)
            .status()
            .is_ok_and(|s| s.success())
        {
            return Ok(());
        }
        process::run(Command::new("mount").args(how).arg(&target))
    }
}

fn is_root() -> bool {
    process::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid == "0")
}

/// The first Debian archive URI of the host's apt sources (deb822 or one-line format).
pub fn debian_mirror() -> Result<String> {
    let mut texts = Vec::new();
    for path in ["/etc/apt/sources.list"] {
        if let Ok(text) = fs::read_to_string(path) {
            texts.push(text);
        }
    }
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            if file
                .extension()
                .is_some_and(|e| e == "sources" || e == "list")
            {
                texts.push(fs::read_to_string(&file).unwrap_or_default());
            }
        }
    }
    texts
        .iter()
        .find_map(|text| mirror_in(text))
        .context("no Debian archive in the apt sources; debootstrap needs a mirror")
}

/// A `URIs:` or `deb URI suite` line naming a `/debian` archive (not `-security`).
pub fn mirror_in(text: &str) -> Option<String> {
    text.lines().map(str::trim).find_map(|line| {
        let uri = if let Some(rest) = line.strip_prefix("URIs:") {
            rest.split_whitespace().next()?
        } else if let Some(rest) = line.strip_prefix("deb ") {
            rest.split_whitespace().find(|w| w.contains("://"))?
        } else {
            return None;
        };
        uri.trim_end_matches('/')
            .ends_with("/debian")
            .then(|| uri.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_from_both_apt_formats() {
        let deb822 =
            "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let security = "URIs: http://mirror.example/debian-security\n";
        assert_eq!(mirror_in(security), None);
        let legacy = "deb [arch=amd64] http://mirror.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_in(legacy).as_deref(),
            Some("http://mirror.example/debian/")
        );
    }

    #[test]
    fn chroot_paths() {
        let chroot = Chroot {
            root: PathBuf::from("/var/sid"),
        };
        assert_eq!(
            chroot.host_path(Path::new("/nix/store/x")),
            PathBuf::from("/var/sid/nix/store/x")
        );
    }
}

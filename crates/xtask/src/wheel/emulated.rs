//! The wheel of another architecture than this machine's (aarch64, cross-built on x86_64),
//! installed and tested where it can run here: under `qemu-<arch>` user-mode emulation, with
//! that architecture's CPython and numpy from Debian. No binfmt_misc is needed (this machine
//! has none): the interpreter is started as `qemu-aarch64 -L <root> <root>/usr/bin/python3`,
//! and the FFI tests start their fresh interpreters the same way (`MCP_FOUNDRY_PYTHON_EMULATOR`,
//! read by `tests/ffi/ffi_support.py`).
//!
//! The userland is the host release's `python3` and `python3-numpy` of that architecture,
//! resolved and downloaded by apt with a private package list, cache and an empty dpkg
//! status (nothing of the system's package state is read or written), unpacked with
//! `dpkg-deb -x` under `target/wheel-python/<debian arch>/`, made once and reused (built in
//! `.partial`, stamped with what it was made from). The wheel goes in with the host's pip
//! (`--target`, `--platform` of the wheel's own tag, `--only-binary`), as does hypothesis;
//! numpy is Debian's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::apt::{self, PrivateApt};
use crate::process;

/// The Debian packages of the emulated userland: the interpreter and numpy (with their
/// dependencies, which apt adds).
pub const PACKAGES: &[&str] = &["python3", "python3-numpy"];

/// What the FFI tests import besides the standard library and numpy: pure-Python packages
/// (from `tests/ffi/requirements.txt`), installed by the host's pip for the emulated
/// interpreter.
pub const TEST_PACKAGES: &[&str] = &["hypothesis"];

/// The file in a finished userland recording what it was made from.
const STAMP: &str = ".mcp-foundry-emulated-python";

/// Debian's name of a Rust architecture.
pub fn debian_arch(arch: &str) -> Result<&'static str> {
    Ok(match arch {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        other => bail!("no Debian architecture is known for {other}"),
    })
}

/// A finished userland of one architecture.
#[derive(Debug, Clone)]
pub struct Userland {
    /// The directory qemu's `-L` points at (holds `usr/bin/python3`).
    pub root: PathBuf,
    /// `3.11`: the interpreter's version, for pip's `--python-version`.
    pub python_version: String,
}

impl Userland {
    /// The userland of `arch` under `cache_dir`, made unless a complete one of the same
    /// packages is there.
    pub fn prepare(cache_dir: &Path, arch: &str) -> Result<Userland> {
        let debian = debian_arch(arch)?;
        let dir = cache_dir.join(debian);
        let root = dir.join("root");
        let stamp = format!("arch {debian}\npackages {}\n", PACKAGES.join(" "));
        if fs::read_to_string(root.join(STAMP)).ok().as_deref() == Some(stamp.as_str()) {
            eprintln!(
                "--> Debian {debian} Python userland: cached at {}",
                root.display()
            );
        } else {
            unpack(&dir, debian, &stamp)?;
        }
        let python_version = python_version(&root)?;
        Ok(Userland {
            root,
            python_version,
        })
    }

    /// The interpreter, as a command under `qemu` (the emulator's `-L` is the root, so the
    /// interpreter's dynamic loader and libraries are the userland's).
    pub fn python(&self, qemu: &Path) -> Command {
        let mut command = Command::new(qemu);
        command
            .arg("-L")
            .arg(&self.root)
            .arg(self.root.join("usr/bin/python3"));
        command
    }

    /// The command prefix that starts a program of the userland (`MCP_FOUNDRY_PYTHON_EMULATOR`
    /// as JSON: the FFI tests start fresh interpreters with it).
    pub fn emulator_prefix(&self, qemu: &Path) -> Vec<String> {
        vec![
            qemu.display().to_string(),
            "-L".to_owned(),
            self.root.display().to_string(),
        ]
    }
}

/// Downloads and unpacks the userland into `dir/root` (via `dir/root.partial`), with apt's
/// private state in `dir/apt`.
fn unpack(dir: &Path, debian_arch: &str, stamp: &str) -> Result<()> {
    let fix = || {
        format!(
            "the {debian_arch} wheel test needs Debian's {} for {debian_arch}: apt-get with the \
             system's Debian sources and access to the Debian archive",
            PACKAGES.join(" and ")
        )
    };
    eprintln!(
        "--> fetching Debian's {} for {debian_arch}",
        PACKAGES.join(", ")
    );
    let apt = PrivateApt::update(&dir.join("apt"), debian_arch).with_context(fix)?;
    let debs = apt.download_with_dependencies(PACKAGES).with_context(fix)?;

    let partial = dir.join("root.partial");
    let root = dir.join("root");
    for stale in [&partial, &root] {
        if stale.exists() {
            fs::remove_dir_all(stale)
                .with_context(|| format!("removing the stale {}", stale.display()))?;
        }
    }
    for deb in &debs {
        apt::unpack(deb, &partial)?;
        fs::remove_file(deb).ok();
    }
    link_alternatives(&partial)?;
    fs::write(partial.join(STAMP), stamp).context("stamping the userland")?;
    fs::rename(&partial, &root)
        .with_context(|| format!("renaming {} to {}", partial.display(), root.display()))
}

/// The links dpkg's maintainer scripts would make and `dpkg-deb -x` does not: numpy loads
/// `libblas.so.3` and `liblapack.so.3`, which are alternatives
/// (`usr/lib/<triplet>/libblas.so.3` → `blas/libblas.so.3`).
fn link_alternatives(root: &Path) -> Result<()> {
    let lib = root.join("usr/lib");
    let Ok(entries) = fs::read_dir(&lib) else {
        return Ok(());
    };
    for triplet in entries.flatten().map(|e| e.path()) {
        if !triplet.to_string_lossy().ends_with("-linux-gnu") {
            continue;
        }
        for provider in ["blas", "lapack"] {
            let Ok(files) = fs::read_dir(triplet.join(provider)) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                let link = triplet.join(&name);
                if name.ends_with(".so.3") && !link.exists() && !link.is_symlink() {
                    std::os::unix::fs::symlink(Path::new(provider).join(&name), &link)
                        .with_context(|| format!("linking {}", link.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// `3.11` of the userland's `usr/bin/python3` (a link to `python3.11`).
fn python_version(root: &Path) -> Result<String> {
    let python = root.join("usr/bin/python3");
    let target =
        fs::read_link(&python).with_context(|| format!("reading the link {}", python.display()))?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    name.strip_prefix("python")
        .filter(|version| version.starts_with("3.") && version[2..].parse::<u32>().is_ok())
        .map(str::to_owned)
        .with_context(|| format!("{} links to {name}, not python3.N", python.display()))
}

/// The `qemu-<arch>` user-mode emulator on PATH.
pub fn qemu(arch: &str) -> Result<PathBuf> {
    let name = format!("qemu-{arch}");
    process::output(Command::new("sh").args(["-c", &format!("command -v {name}")]))
        .map(PathBuf::from)
        .with_context(|| {
            format!("{name} is needed to test the {arch} wheel: apt-get install qemu-user")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_map_to_debian_names() {
        assert_eq!(debian_arch("aarch64").unwrap(), "arm64");
        assert_eq!(debian_arch("x86_64").unwrap(), "amd64");
        assert!(debian_arch("riscv64gc").is_err());
    }

    #[test]
    fn alternatives_are_linked_and_the_version_read() {
        let root = tempfile::tempdir().unwrap();
        let triplet = root.path().join("usr/lib/aarch64-linux-gnu");
        fs::create_dir_all(triplet.join("blas")).unwrap();
        fs::write(triplet.join("blas/libblas.so.3"), "").unwrap();
        fs::write(triplet.join("blas/libblas.so.3.11.0"), "").unwrap();
        link_alternatives(root.path()).unwrap();
        assert_eq!(
            fs::read_link(triplet.join("libblas.so.3")).unwrap(),
            Path::new("blas/libblas.so.3")
        );
        assert!(!triplet.join("libblas.so.3.11.0").exists());
        // Again: the links are there, nothing fails.
        link_alternatives(root.path()).unwrap();

        fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("python3.11", root.path().join("usr/bin/python3")).unwrap();
        assert_eq!(python_version(root.path()).unwrap(), "3.11");
        fs::remove_file(root.path().join("usr/bin/python3")).unwrap();
        std::os::unix::fs::symlink("pypy", root.path().join("usr/bin/python3")).unwrap();
        assert!(python_version(root.path()).is_err());
    }

    /// Every package installed for the emulated tests is one the FFI tests declare.
    #[test]
    fn the_test_packages_are_the_ffi_tests_requirements() {
        let requirements =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ffi/requirements.txt");
        let text = fs::read_to_string(requirements).unwrap();
        for package in TEST_PACKAGES {
            assert!(
                text.lines().any(|line| line.trim() == *package),
                "{package} is not in tests/ffi/requirements.txt"
            );
        }
    }
}

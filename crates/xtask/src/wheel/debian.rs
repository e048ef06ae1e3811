//! CPython versions the host does not have, taken from the Debian releases that ship them:
//! one minimal `debootstrap` chroot per release under `target/`, made once and reused.
//!
//! The mirror is the one the host's apt already uses (read from its sources, so no mirror
//! is written into this repository). Nothing is mounted: the interpreter, venv and pip
//! need no /proc, so no mount can be left behind. A chroot is built in a `.partial`
//! directory and renamed when complete, so an interrupted bootstrap is never reused; a
//! stamp of what it was made from (release, packages) makes a changed list rebuild it.
//! Needs root (`chroot`, `debootstrap`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::nix_offline::chroot::{command_in_root, debian_mirror};
use crate::process;
use crate::timing::human;

/// A CPython version and the Debian release whose `python3` it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebianPython {
    pub version: &'static str,
    pub suite: &'static str,
}

/// The abi3 floor (`requires-python = ">=3.9"`) and the newest CPython we support.
pub const PYTHONS: &[DebianPython] = &[
    DebianPython {
        version: "3.9",
        suite: "bullseye",
    },
    DebianPython {
        version: "3.13",
        suite: "trixie",
    },
];

/// What each chroot holds besides the minimal base: the interpreter, `venv` (with the pip
/// it bootstraps), the CA set pip's downloads are checked against, and `nm` (the FFI tests
/// check what the module exports).
pub const PACKAGES: &[&str] = &["python3", "python3-venv", "ca-certificates", "binutils"];

/// The file in a finished chroot recording what it was made from.
const STAMP: &str = ".mcp-foundry-wheel-chroot";

/// A finished chroot holding one CPython.
#[derive(Debug, Clone)]
pub struct Chroot {
    pub root: PathBuf,
    pub python: DebianPython,
}

/// Whether this process can make and enter chroots.
pub fn is_root() -> bool {
    process::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid == "0")
}

/// Makes every missing chroot of [`PYTHONS`] in a background thread, with debootstrap's
/// output in `<cache_dir>/prepare.log` instead of the terminal. `cargo xtask ci` starts it
/// before its CPU-bound steps: a cold bootstrap is minutes of downloading and unpacking
/// (measured 4m57s + 3m11s), which then overlap clippy and the tests instead of adding to
/// the run. [`Chroot::prepare`] later finds them made (or makes them itself, loudly, if
/// this failed).
pub fn prepare_in_background(cache_dir: PathBuf) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        fs::create_dir_all(&cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        let log = cache_dir.join("prepare.log");
        for python in PYTHONS {
            let root = cache_dir.join(python.suite);
            let stamp = stamp_text(*python);
            if !is_complete(&root, &stamp) {
                bootstrap(&root, *python, &stamp, Some(&log))?;
            }
        }
        Ok(())
    })
}

impl Chroot {
    /// The chroot of `python` under `cache_dir`, made with debootstrap unless a complete
    /// one of the same release and packages is there. Says how long it took.
    pub fn prepare(cache_dir: &Path, python: DebianPython) -> Result<Chroot> {
        let root = cache_dir.join(python.suite);
        let stamp = stamp_text(python);
        let started = Instant::now();
        if is_complete(&root, &stamp) {
            eprintln!(
                "--> Debian {} chroot (CPython {}): cached at {}",
                python.suite,
                python.version,
                root.display()
            );
        } else {
            bootstrap(&root, python, &stamp, None)?;
            eprintln!(
                "--> Debian {} chroot (CPython {}) made in {}",
                python.suite,
                python.version,
                human(started.elapsed())
            );
        }
        // Name resolution and the CA set the host's own pip uses (a proxy's CA may be in
        // it), refreshed on every run since either may change.
        copy_into(&root, Path::new("/etc/resolv.conf"))?;
        if let Some(bundle) = host_ca_bundle() {
            copy_into(&root, &bundle)?;
        }
        Ok(Chroot { root, python })
    }

    /// `program args` run inside the chroot in the directory `dir` (a path inside), with a
    /// clean environment plus `env`, so nothing of the caller's Python setup leaks in.
    pub fn command(&self, dir: &Path, env: &[(&str, &str)], program: &Path) -> Command {
        let ca_bundle = host_ca_bundle().map(|bundle| bundle.display().to_string());
        let mut all: Vec<(&str, &str)> = ca_bundle
            .iter()
            .map(|bundle| ("PIP_CERT", bundle.as_str()))
            .collect();
        all.extend_from_slice(env);
        command_in_root(&self.root, dir, &all, program)
    }

    /// `N` of the glibc `2.N` of the release (its `libc6` package, read from dpkg's
    /// database without running anything inside).
    pub fn glibc_minor(&self) -> Result<u32> {
        let status = self.host_path(Path::new("/var/lib/dpkg/status"));
        let text =
            fs::read_to_string(&status).with_context(|| format!("reading {}", status.display()))?;
        libc6_minor(&text).with_context(|| format!("no libc6 version in {}", status.display()))
    }

    /// `path` inside the chroot, as the host sees it.
    pub fn host_path(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }
}

/// Whether `root` is a finished chroot made from `stamp` whose glibc is still the release's
/// own: every file of its `libc6` package matches dpkg's md5sums. (Chroots of an earlier
/// version of this code had the host's glibc copied in; such a chroot is made again, so the
/// oldest CPython is really tested on its release's glibc.)
fn is_complete(root: &Path, stamp: &str) -> bool {
    if fs::read_to_string(root.join(STAMP)).ok().as_deref() != Some(stamp) {
        return false;
    }
    match glibc_is_the_releases(root) {
        Ok(true) => true,
        Ok(false) => {
            eprintln!(
                "--> {}: its glibc is not the release's own (copied in by an older cargo \
                 xtask); making the chroot again",
                root.display()
            );
            false
        }
        Err(error) => {
            eprintln!(
                "--> {}: cannot check its glibc ({error:#}); making the chroot again",
                root.display()
            );
            false
        }
    }
}

/// Whether every file of the chroot's `libc6` package has the md5 dpkg recorded for it
/// (`md5sum --check` of `var/lib/dpkg/info/libc6:<arch>.md5sums`, run in the chroot's root).
fn glibc_is_the_releases(root: &Path) -> Result<bool> {
    let info = root.join("var/lib/dpkg/info");
    let sums = fs::read_dir(&info)
        .with_context(|| format!("reading {}", info.display()))?
        .filter_map(|entry| {
            entry
                .ok()
                .map(|e| e.file_name().to_string_lossy().into_owned())
        })
        .find(|name| {
            name.ends_with(".md5sums") && (name == "libc6.md5sums" || name.starts_with("libc6:"))
        })
        .with_context(|| format!("{} has no libc6 md5sums", info.display()))?;
    let status = Command::new("md5sum")
        .args(["--quiet", "--check"])
        .arg(Path::new("var/lib/dpkg/info").join(&sums))
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running md5sum (coreutils)")?;
    Ok(status.success())
}

fn stamp_text(python: DebianPython) -> String {
    format!("suite {}\npackages {}\n", python.suite, PACKAGES.join(" "))
}

/// `N` of the `Version: 2.N-...` of the `libc6` stanza of a dpkg status file.
fn libc6_minor(status: &str) -> Option<u32> {
    status
        .split("\n\n")
        .find(|stanza| stanza.lines().any(|line| line == "Package: libc6"))?
        .lines()
        .find_map(|line| line.strip_prefix("Version: "))?
        .strip_prefix("2.")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// debootstrap into `root.partial`, then rename it to `root` with its stamp.
/// debootstrap into `root`; its output goes to `log` when given, else to the terminal.
fn bootstrap(root: &Path, python: DebianPython, stamp: &str, log: Option<&Path>) -> Result<()> {
    if !is_root() {
        bail!(
            "making the Debian {} chroot for CPython {} needs root (chroot, debootstrap)",
            python.suite,
            python.version
        );
    }
    let mirror = debian_mirror()?;
    let partial = root.with_extension("partial");
    for stale in [root, partial.as_path()] {
        if stale.exists() {
            fs::remove_dir_all(stale)
                .with_context(|| format!("removing the stale chroot {}", stale.display()))?;
        }
    }
    eprintln!(
        "--> debootstrap {} (CPython {}) into {} from {mirror}",
        python.suite,
        python.version,
        partial.display()
    );
    fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .arg("--variant=minbase")
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(python.suite)
        .arg(&partial)
        .arg(&mirror);
    if let Some(log) = log {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        debootstrap.stdout(file.try_clone()?).stderr(file);
    }
    process::run(&mut debootstrap).with_context(|| {
        format!(
            "debootstrap of Debian {} failed (apt-get install debootstrap; the mirror is \
             the first Debian archive of the host's apt sources{})",
            python.suite,
            log.map(|l| format!("; its output is in {}", l.display()))
                .unwrap_or_default()
        )
    })?;
    // Downloaded packages are of no further use; the chroot stays small.
    let archives = partial.join("var/cache/apt/archives");
    if let Ok(entries) = fs::read_dir(&archives) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "deb") {
                fs::remove_file(entry.path()).ok();
            }
        }
    }
    fs::write(partial.join(STAMP), stamp).context("stamping the chroot")?;
    fs::rename(&partial, root)
        .with_context(|| format!("renaming {} to {}", partial.display(), root.display()))
}

/// The CA bundle the host's pip is told to use (`PIP_CERT`), if it is a file.
fn host_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("PIP_CERT")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute() && path.is_file())
}

/// Copies the host's `path` to the same path inside `root`.
fn copy_into(root: &Path, path: &Path) -> Result<()> {
    let inside = root.join(path.strip_prefix("/").unwrap_or(path));
    if let Some(parent) = inside.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    // resolv.conf may be a symlink in the chroot (to a resolver that is not running there).
    if inside.is_symlink() {
        fs::remove_file(&inside).with_context(|| format!("removing {}", inside.display()))?;
    }
    fs::copy(path, &inside)
        .map(drop)
        .with_context(|| format!("copying {} into {}", path.display(), root.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_releases_cover_the_abi3_floor_and_the_newest_python() {
        let minor = |p: &DebianPython| {
            p.version
                .strip_prefix("3.")
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        assert_eq!(minor(&PYTHONS[0]), 9);
        assert!(
            PYTHONS
                .windows(2)
                .all(|pair| minor(&pair[0]) < minor(&pair[1]))
        );
        let stamps: Vec<String> = PYTHONS.iter().map(|p| stamp_text(*p)).collect();
        assert!(stamps.windows(2).all(|pair| pair[0] != pair[1]));
    }

    /// A chroot whose libc6 files changed after dpkg recorded them is not reused.
    #[test]
    fn a_chroot_with_a_foreign_glibc_is_not_complete() {
        let root = tempfile::tempdir().unwrap();
        let info = root.path().join("var/lib/dpkg/info");
        fs::create_dir_all(&info).unwrap();
        fs::create_dir_all(root.path().join("lib")).unwrap();
        fs::write(root.path().join("lib/libc.so.6"), "release").unwrap();
        let md5 = process::output(
            Command::new("md5sum")
                .arg("lib/libc.so.6")
                .current_dir(root.path()),
        )
        .unwrap();
        fs::write(info.join("libc6:amd64.md5sums"), format!("{md5}\n")).unwrap();
        let stamp = stamp_text(PYTHONS[0]);
        assert!(!is_complete(root.path(), &stamp), "no stamp yet");
        fs::write(root.path().join(STAMP), &stamp).unwrap();
        assert!(is_complete(root.path(), &stamp));
        assert!(!is_complete(root.path(), "another stamp"));
        fs::write(root.path().join("lib/libc.so.6"), "the host's").unwrap();
        assert!(!glibc_is_the_releases(root.path()).unwrap());
        assert!(!is_complete(root.path(), &stamp));
    }

    #[test]
    fn glibc_versions_read() {
        let status = "Package: libc-bin\nVersion: 2.30-1\n\nPackage: libc6\nStatus: install ok \
                      installed\nVersion: 2.31-13+deb11u11\n\nPackage: zlib1g\nVersion: 1:1.2\n";
        assert_eq!(libc6_minor(status), Some(31));
        assert_eq!(libc6_minor("Package: zlib1g\nVersion: 1:1.2\n"), None);
    }

    #[test]
    fn commands_run_inside_with_a_clean_environment() {
        let chroot = Chroot {
            root: PathBuf::from("/cache/bullseye"),
            python: PYTHONS[0],
        };
        let command = chroot.command(
            Path::new("/w"),
            &[("A", "b")],
            Path::new("/w/venv/bin/python"),
        );
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(command.get_program(), "chroot");
        assert_eq!(args[0], "/cache/bullseye");
        assert_eq!(&args[1..3], ["/usr/bin/env", "-i"]);
        assert!(args.contains(&"A=b".to_owned()));
        assert_eq!(&args[args.len() - 2..], ["/w", "/w/venv/bin/python"]);
        assert_eq!(
            chroot.host_path(Path::new("/w/x.whl")),
            Path::new("/cache/bullseye/w/x.whl")
        );
    }
}

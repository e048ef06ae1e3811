//! The wheel installed the way users install it: `pip install` into a fresh venv of the
//! host's `python3` and of the oldest and newest CPython we support (from Debian chroots,
//! see [`super::debian`]), then the FFI tests (`tests/ffi`: import, the variant choice on
//! this CPU and on emulated ones, every kernel path, bad input) against the installed copy,
//! and `auditwheel show` on the file.
//!
//! Every interpreter gets the same work directory layout, copied in fresh: the wheel,
//! `ffi/` (the tests), `venv/` and an empty `scratch/` the tests run from, so only the
//! installed copy is importable. In a chroot, a static `qemu-x86_64` is put on PATH for the
//! emulated-CPU tests (the host's may be dynamically linked against the host's libraries).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use object::Endianness;
use object::read::elf::{ElfFile64, ProgramHeader};

use super::debian::{self, Chroot};
use super::emulated::{self, Userland};
use crate::process;

/// Environment variables of the FFI tests that would test something else than the wheel.
const CLEARED_ENV: &[&str] = &[
    "PYTHONPATH",
    "PYTHONHOME",
    "MCP_FOUNDRY_CDYLIB",
    "MCP_FOUNDRY_EXPECT_VARIANT",
    "MCP_RUST_CORE_VARIANT",
    "MCP_RUST_CORE_KERNELS",
];

/// Prints where the package was imported from and its `build_info()`, as JSON.
const IMPORT_REPORT: &str = "import json, sys, mcp_rust_core\n\
    print(json.dumps({'python': '%d.%d.%d' % sys.version_info[:3], \
    'file': mcp_rust_core.__file__, 'info': mcp_rust_core.build_info()}))";

/// One interpreter the wheel is installed into, and where it runs.
struct Interpreter {
    label: String,
    /// `None`: the host.
    chroot: Option<Chroot>,
    /// The interpreter, as seen where it runs.
    python: PathBuf,
    /// The work directory, as seen where the interpreter runs.
    work: PathBuf,
}

impl Interpreter {
    fn host_path(&self, path: &Path) -> PathBuf {
        match &self.chroot {
            Some(chroot) => chroot.host_path(path),
            None => path.to_owned(),
        }
    }

    /// `program` run in `dir` (both as seen where the interpreter runs).
    fn command(&self, dir: &Path, program: &Path) -> Command {
        match &self.chroot {
            Some(chroot) => chroot.command(dir, &[], program),
            None => {
                let mut command = Command::new(program);
                command.current_dir(dir);
                for name in CLEARED_ENV {
                    command.env_remove(name);
                }
                command
            }
        }
    }

    /// Copies the wheel and the tests into a fresh work directory; returns the wheel's
    /// path as the interpreter sees it.
    fn stage(&self, wheel: &Path, tests: &Path, qemu: Option<&Path>) -> Result<PathBuf> {
        let work = self.host_path(&self.work);
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("removing {}", work.display()))?;
        }
        std::fs::create_dir_all(work.join("scratch"))
            .with_context(|| format!("creating {}", work.display()))?;
        let name = wheel
            .file_name()
            .context("the wheel path has no file name")?;
        copy(wheel, &work.join(name))?;
        copy_dir(tests, &work.join("ffi"))?;
        if let Some(qemu) = qemu {
            let bin = self.host_path(Path::new("/usr/local/bin"));
            std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
            copy(qemu, &bin.join("qemu-x86_64"))?;
        }
        Ok(self.work.join(name))
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

/// Copies the files of `from` (not its subdirectories: `tests/ffi` is flat) into `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        if path.is_file() {
            copy(&path, &to.join(path.file_name().unwrap_or_default()))?;
        }
    }
    Ok(())
}

/// The interpreters to test with: the host's `python3`, then each Debian CPython (a loud
/// skip, not a pass, when this process cannot make chroots).
fn interpreters(target_dir: &Path) -> Result<Vec<Interpreter>> {
    let test_dir = target_dir.join("wheel-test");
    let mut found = vec![Interpreter {
        label: "host python3".to_owned(),
        chroot: None,
        python: PathBuf::from("python3"),
        work: test_dir.join("host"),
    }];
    if !debian::is_root() {
        eprintln!(
            "\n!!! wheel test under CPython {} SKIPPED: their Debian chroots need root !!!\n",
            debian::PYTHONS
                .iter()
                .map(|p| p.version)
                .collect::<Vec<_>>()
                .join(" and ")
        );
        return Ok(found);
    }
    for python in debian::PYTHONS {
        let chroot = Chroot::prepare(&target_dir.join("wheel-python"), *python)?;
        found.push(Interpreter {
            label: format!("CPython {} (Debian {})", python.version, python.suite),
            chroot: Some(chroot),
            python: PathBuf::from("/usr/bin/python3"),
            work: PathBuf::from("/wheel-test"),
        });
    }
    Ok(found)
}

/// Installs `wheel` under every interpreter of its architecture and runs `tests/ffi`
/// against it, then `auditwheel show`. Work directories live under `target_dir`. A wheel of
/// another architecture than this machine's is tested under qemu ([`super::emulated`]).
pub fn run(workspace_root: &Path, target_dir: &Path, wheel: &Path) -> Result<()> {
    let tests = workspace_root.join("tests/ffi");
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    let platform = platform_of(&name);
    let arch = arch_of_tag(&platform)
        .with_context(|| format!("{name} has no Linux platform tag with an architecture"))?;
    let tools = tools_venv(&target_dir.join("wheel-test/auditwheel"))?;
    if arch != std::env::consts::ARCH {
        run_emulated(target_dir, wheel, &tests, &tools, &arch)
            .with_context(|| format!("the {arch} wheel test under qemu-{arch} failed"))?;
        return auditwheel_show(&tools, wheel);
    }
    let interpreters = interpreters(target_dir)?;
    let needed = glibc_minor_of_tag(&platform);
    for chroot in interpreters.iter().filter_map(|i| i.chroot.as_ref()) {
        let (have, suite) = (chroot.glibc_minor()?, chroot.python.suite);
        if let Some(needed) = needed.filter(|needed| *needed > have) {
            bail!(
                "the wheel needs glibc 2.{needed}, but Debian {suite} (CPython {}) has 2.{have}: \
                 users of that release could not install it. The module must be linked against \
                 glibc {} (crate::cross::GLIBC_FLOOR); look for what raised its floor in \
                 `auditwheel show`",
                chroot.python.version,
                crate::cross::GLIBC_FLOOR
            );
        }
    }
    let mut qemu = None;
    for interpreter in &interpreters {
        if interpreter.chroot.is_some() && qemu.is_none() {
            qemu = Some(static_qemu(&target_dir.join("wheel-python"))?);
        }
        let label = &interpreter.label;
        eprintln!("--> wheel test: {label}");
        test_one(interpreter, wheel, &tests, qemu.as_deref())
            .with_context(|| format!("the wheel test under {label} failed"))?;
    }
    auditwheel_show(&tools, wheel)
}

/// The wheel of `arch` installed with the host's pip for an emulated Debian CPython of that
/// architecture, then its import and the FFI tests under `qemu-<arch>`.
fn run_emulated(
    target_dir: &Path,
    wheel: &Path,
    tests: &Path,
    tools: &Path,
    arch: &str,
) -> Result<()> {
    let qemu = emulated::qemu(arch)?;
    let userland = Userland::prepare(&target_dir.join("wheel-python"), arch)?;
    let work = target_dir.join("wheel-test").join(arch);
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    let (site, deps, scratch) = (work.join("site"), work.join("deps"), work.join("scratch"));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", work.display()))?;
    copy_dir(tests, &work.join("ffi"))?;
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    let platform = platform_of(&name);
    let pip = |target: &Path| {
        let mut command = Command::new(tools);
        process::pip_install(&mut command)
            .arg("--target")
            .arg(target)
            .args(["--only-binary=:all:", "--implementation", "cp"])
            .args(["--platform", &platform])
            .args(["--python-version", &userland.python_version]);
        command
    };
    // The wheel alone (its numpy is Debian's), then what the tests import.
    process::run(pip(&site).arg("--no-deps").arg(wheel))
        .context("pip install --target of the wheel for the emulated interpreter")?;
    process::run(pip(&deps).args(emulated::TEST_PACKAGES))
        .context("pip install --target of the FFI tests' requirements")?;

    let python_path = std::env::join_paths([&site, &deps]).context("joining PYTHONPATH")?;
    let emulator = serde_json::to_string(&userland.emulator_prefix(&qemu))?;
    let command = |args: &[&str]| {
        let mut command = userland.python(&qemu);
        command.args(args).current_dir(&scratch);
        for name in CLEARED_ENV {
            command.env_remove(name);
        }
        command
            .env("PYTHONPATH", &python_path)
            .env("PYTHONNOUSERSITE", "1")
            .env("MCP_FOUNDRY_PYTHON_EMULATOR", &emulator);
        command
    };
    eprintln!(
        "--> wheel test: CPython {} (Debian {}) under {}",
        userland.python_version,
        emulated::debian_arch(arch)?,
        qemu.display()
    );
    check_import_report(
        &process::output(&mut command(&["-c", IMPORT_REPORT]))?,
        &site,
    )?;
    let ffi = work.join("ffi");
    process::run(&mut command(&[
        "-m",
        "unittest",
        "discover",
        "-v",
        "-s",
        &ffi.to_string_lossy(),
    ]))
    .context("the FFI tests failed against the installed wheel")
}

/// Reads [`IMPORT_REPORT`]'s output, fails unless the package came from `installed` (not
/// from the sources or another copy), and prints what was loaded.
fn check_import_report(output: &str, installed: &Path) -> Result<()> {
    let report: serde_json::Value = serde_json::from_str(output.trim())
        .with_context(|| format!("reading the import report {output:?}"))?;
    let file = report["file"].as_str().unwrap_or_default();
    if !Path::new(file).starts_with(installed) {
        bail!(
            "mcp_rust_core was imported from {file}, not from the installation {}",
            installed.display()
        );
    }
    let info = &report["info"];
    eprintln!(
        "--> Python {}: imported {file}\n    variant {} (runnable here {}, installed {}), kernels {}",
        report["python"].as_str().unwrap_or("?"),
        info["variant"],
        info["variants_runnable"],
        info["variants_installed"],
        info["kernels"]
    );
    Ok(())
}

fn test_one(
    interpreter: &Interpreter,
    wheel: &Path,
    tests: &Path,
    qemu: Option<&Path>,
) -> Result<()> {
    let staged = interpreter.stage(wheel, tests, qemu.filter(|_| interpreter.chroot.is_some()))?;
    let work = &interpreter.work;
    let venv = work.join("venv");
    let python = venv.join("bin/python");
    let scratch = work.join("scratch");
    process::run(
        interpreter
            .command(work, &interpreter.python)
            .args(["-m", "venv"])
            .arg(&venv),
    )?;
    process::run(
        process::pip_install(&mut interpreter.command(work, &python))
            .arg(&staged)
            .arg("-r")
            .arg(work.join("ffi/requirements.txt")),
    )
    .context("pip install of the wheel and the tests' requirements")?;
    check_import_report(
        &process::output(
            interpreter
                .command(&scratch, &python)
                .args(["-c", IMPORT_REPORT]),
        )?,
        &venv,
    )?;
    process::run(
        interpreter
            .command(&scratch, &python)
            .args(["-m", "unittest", "discover", "-v", "-s"])
            .arg(work.join("ffi")),
    )
    .context("the FFI tests failed against the installed wheel")
}

/// [`run`] for every wheel in `dist_dir/wheels/` (the FFI step of `cargo xtask ci`). No
/// wheel is an error: `cargo xtask dist` writes one whenever it builds the baseline variant.
pub fn run_dist(workspace_root: &Path, dist_dir: &Path, target_dir: &Path) -> Result<()> {
    let wheels_dir = dist_dir.join(super::WHEELS_DIR);
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(&wheels_dir)
        .with_context(|| {
            format!(
                "reading {}: run `cargo xtask dist` (with the baseline variant) first",
                wheels_dir.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    wheels.sort();
    if wheels.is_empty() {
        bail!(
            "{} holds no wheel: run `cargo xtask dist` (with the baseline variant) first",
            wheels_dir.display()
        );
    }
    for wheel in &wheels {
        eprintln!("--> wheel install test: {}", wheel.display());
        run(workspace_root, target_dir, wheel)?;
    }
    Ok(())
}

/// Whether the ELF file at `path` runs without a dynamic loader.
fn is_static(path: &Path) -> Result<bool> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = ElfFile64::<Endianness>::parse(&*data)
        .with_context(|| format!("{} is not a 64-bit ELF file", path.display()))?;
    let endian = file.endian();
    Ok(!file
        .elf_program_headers()
        .iter()
        .any(|header| header.p_type(endian) == object::elf::PT_INTERP))
}

/// A statically linked `qemu-x86_64` to put into the chroots: the host's if it is static,
/// else the one of Debian's `qemu-user-static`, downloaded once into `cache_dir` with the
/// host's apt (from the same release as the host's `qemu-user`).
fn static_qemu(cache_dir: &Path) -> Result<PathBuf> {
    for name in ["qemu-x86_64-static", "qemu-x86_64"] {
        if let Ok(path) =
            process::output(Command::new("sh").args(["-c", &format!("command -v {name}")]))
            && is_static(Path::new(&path)).unwrap_or(false)
        {
            return Ok(PathBuf::from(path));
        }
    }
    let dir = cache_dir.join("qemu-user-static");
    let binary = dir.join("usr/bin/qemu-x86_64-static");
    if binary.is_file() {
        return Ok(binary);
    }
    eprintln!("--> fetching Debian's qemu-user-static for the emulated-CPU tests in the chroots");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    process::run(
        Command::new("apt-get")
            .args(["download", "qemu-user-static"])
            .current_dir(&dir),
    )
    .context(
        "apt-get download qemu-user-static (the emulated-CPU tests need a static qemu-x86_64)",
    )?;
    let deb = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download wrote no .deb")?;
    process::run(
        Command::new("sh")
            .arg("-c")
            .arg(r#"dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./usr/bin/qemu-x86_64-static"#)
            .args(["sh"])
            .arg(&deb)
            .arg(&dir),
    )
    .context("extracting qemu-x86_64-static")?;
    std::fs::remove_file(&deb).ok();
    if !is_static(&binary)? {
        bail!("{} is not statically linked", binary.display());
    }
    Ok(binary)
}

/// A venv of the host's `python3` at `venv` with auditwheel (and pip, which installs the
/// wheels of other architectures); returns its python.
fn tools_venv(venv: &Path) -> Result<PathBuf> {
    if !venv.join("bin/auditwheel").is_file() {
        process::run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
        process::run(
            process::pip_install(&mut Command::new(venv.join("bin/python"))).arg("auditwheel"),
        )
        .context("installing auditwheel")?;
    }
    Ok(venv.join("bin/python"))
}

/// Runs `auditwheel show` (from the tools venv of `python`) and checks it names the wheel's
/// own platform tag and finds nothing outside the policy.
fn auditwheel_show(python: &Path, wheel: &Path) -> Result<()> {
    let auditwheel = python.with_file_name("auditwheel");
    let report = process::output(Command::new(auditwheel).arg("show").arg(wheel))
        .context("auditwheel show")?;
    eprintln!("--> auditwheel show {}:\n{report}", wheel.display());
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    check_auditwheel_report(&report, &platform_of(&name))
}

/// The architecture of a Linux platform tag (`manylinux_2_17_aarch64` → `aarch64`).
fn arch_of_tag(platform: &str) -> Option<String> {
    let rest = platform
        .strip_prefix("manylinux_")
        .or_else(|| platform.strip_prefix("musllinux_"))?;
    let mut parts = rest.splitn(3, '_');
    let (major, minor, arch) = (parts.next()?, parts.next()?, parts.next()?);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor) && !arch.is_empty()).then(|| arch.to_owned())
}

/// The first platform tag of a wheel file name.
fn platform_of(file_name: &str) -> String {
    file_name
        .trim_end_matches(".whl")
        .rsplit('-')
        .next()
        .and_then(|tags| tags.split('.').next())
        .unwrap_or_default()
        .to_owned()
}

/// `N` of a `manylinux_2_N_<arch>` tag.
fn glibc_minor_of_tag(platform: &str) -> Option<u32> {
    platform
        .strip_prefix("manylinux_2_")?
        .split('_')
        .next()?
        .parse()
        .ok()
}

/// `auditwheel show` must confirm `platform` and report no library outside the policy.
fn check_auditwheel_report(report: &str, platform: &str) -> Result<()> {
    let text = report.split_whitespace().collect::<Vec<_>>().join(" ");
    if !text.contains(&format!(
        "consistent with the following platform tag: \"{platform}\""
    )) {
        bail!("auditwheel does not confirm the wheel's platform tag {platform}:\n{report}");
    }
    if text.contains("libpython") {
        bail!("auditwheel reports a libpython dependency:\n{report}");
    }
    if !text.contains("system-provided shared libraries") {
        bail!("auditwheel's report does not list the system libraries it checked:\n{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_tag_is_read_from_the_file_name() {
        assert_eq!(
            platform_of("mcp_rust_core-0.1.0-cp39-abi3-manylinux_2_28_x86_64.whl"),
            "manylinux_2_28_x86_64"
        );
        assert_eq!(
            platform_of("m-0.1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            "manylinux_2_17_x86_64"
        );
        assert_eq!(glibc_minor_of_tag("manylinux_2_34_x86_64"), Some(34));
        assert_eq!(
            arch_of_tag("manylinux_2_17_aarch64").as_deref(),
            Some("aarch64")
        );
        assert_eq!(
            arch_of_tag("manylinux_2_17_x86_64").as_deref(),
            Some("x86_64")
        );
        assert_eq!(
            arch_of_tag("musllinux_1_2_x86_64").as_deref(),
            Some("x86_64")
        );
        assert_eq!(arch_of_tag("manylinux2014_x86_64"), None);
        assert_eq!(arch_of_tag("macosx_11_0_arm64").as_deref(), None);
        assert_eq!(glibc_minor_of_tag("musllinux_1_2_x86_64"), None);
    }

    #[test]
    fn an_auditwheel_report_must_confirm_the_tag() {
        let report = "m.whl is consistent with the following platform tag:\n\
            \"manylinux_2_28_x86_64\".\n\nThe wheel references external versioned symbols in\n\
            system-provided shared libraries: libc.so.6 with versions {'GLIBC_2.28'}\n";
        check_auditwheel_report(report, "manylinux_2_28_x86_64").unwrap();
        assert!(check_auditwheel_report(report, "manylinux_2_17_x86_64").is_err());
        let python = format!("{report}\nlibpython3.11.so.1.0\n");
        assert!(check_auditwheel_report(&python, "manylinux_2_28_x86_64").is_err());
    }

    #[test]
    fn this_test_binary_is_not_static_and_the_check_reads_it() {
        let me = std::env::current_exe().unwrap();
        // Test binaries link the C library dynamically on glibc hosts.
        if cfg!(target_env = "gnu") {
            assert!(!is_static(&me).unwrap());
        }
        assert!(is_static(Path::new("/nonexistent")).is_err());
    }
}

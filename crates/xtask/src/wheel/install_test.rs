//! The wheel installed the way users install it: `pip install` into a fresh venv of the
//! oldest CPython the abi3 tag promises and of the newest we support, then the FFI tests
//! (`tests/ffi`: import, the variant choice on this CPU and on emulated ones, every kernel
//! path, bad input) against the installed copy, and `auditwheel show` on the file.
//!
//! The interpreters come from `MCP_FOUNDRY_WHEEL_PYTHONS` (comma-separated paths), else
//! `pythonX.Y` on PATH, else pyenv's versions directory. A missing one is an error that says
//! how to install it: the test must not pass by testing less.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process;

/// Explicit interpreters to test with, comma-separated.
pub const PYTHONS_ENV: &str = "MCP_FOUNDRY_WHEEL_PYTHONS";

/// The CPython versions every wheel is installed into: the abi3 floor and the newest.
pub const TESTED_VERSIONS: [&str; 2] = ["3.9", "3.13"];

/// Environment variables of the FFI tests that would test something else than the wheel.
const CLEARED_ENV: &[&str] = &[
    "PYTHONPATH",
    "PYTHONHOME",
    "MCP_FOUNDRY_CDYLIB",
    "MCP_FOUNDRY_EXPECT_VARIANT",
    "MCP_RUST_CORE_VARIANT",
    "MCP_RUST_CORE_KERNELS",
];

/// `major.minor` of the interpreter at `python`, if it runs.
fn version_of(python: &Path) -> Option<String> {
    let output = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// pyenv's versions directory: `$PYENV_ROOT/versions`, else `~/.pyenv/versions`.
fn pyenv_versions() -> Option<PathBuf> {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pyenv")))
        .map(|root| root.join("versions"))
}

/// Candidate interpreters for `version`, most explicit first.
fn candidates(version: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::env::var(PYTHONS_ENV)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    let name = format!("python{version}");
    if let Some(path) = std::env::var_os("PATH") {
        found.extend(std::env::split_paths(&path).map(|dir| dir.join(&name)));
    }
    if let Some(versions) = pyenv_versions()
        && let Ok(entries) = std::fs::read_dir(&versions)
    {
        let mut installs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix(version)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
            .map(|e| e.path().join("bin").join(&name))
            .collect();
        installs.sort();
        installs.reverse(); // the newest patch release first
        found.extend(installs);
    }
    found
}

/// An interpreter of CPython `version`, or an error saying how to get one.
pub fn find_python(version: &str) -> Result<PathBuf> {
    candidates(version)
        .into_iter()
        .find(|path| path.is_file() && version_of(path).as_deref() == Some(version))
        .with_context(|| {
            format!(
                "no Python {version} found, which the wheel test needs (the wheel promises \
                 CPython {} to {}); install it (`pyenv install {version}`, or your \
                 distribution's python{version}) or list interpreters in {PYTHONS_ENV}",
                TESTED_VERSIONS[0],
                TESTED_VERSIONS[TESTED_VERSIONS.len() - 1]
            )
        })
}

/// A fresh venv of `python` at `dir` with `packages` installed; returns its python.
fn fresh_venv(python: &Path, dir: &Path, packages: &[&std::ffi::OsStr]) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    process::run(Command::new(python).args(["-m", "venv"]).arg(dir))?;
    let venv_python = dir.join("bin/python");
    process::run(
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages),
    )?;
    Ok(venv_python)
}

/// Installs `wheel` under every tested Python and runs `tests/ffi` against it, then
/// `auditwheel show`. `work_dir` holds the venvs (recreated each time).
pub fn run(workspace_root: &Path, work_dir: &Path, wheel: &Path) -> Result<()> {
    let tests = workspace_root.join("tests/ffi");
    let requirements = tests.join("requirements.txt");
    let pythons: Vec<(&str, PathBuf)> = TESTED_VERSIONS
        .iter()
        .map(|version| find_python(version).map(|python| (*version, python)))
        .collect::<Result<_>>()?;
    for (version, python) in &pythons {
        eprintln!("--> wheel test: CPython {version} ({})", python.display());
        let venv = work_dir.join(format!("py{version}"));
        let venv_python = fresh_venv(
            python,
            &venv,
            &[wheel.as_os_str(), "-r".as_ref(), requirements.as_os_str()],
        )
        .with_context(|| format!("installing {} under Python {version}", wheel.display()))?;
        // Tests run from an empty directory so that only the installed copy is importable.
        let scratch = tempfile::tempdir().context("creating a scratch directory")?;
        let installed = process::output(
            Command::new(&venv_python)
                .args(["-c", "import mcp_rust_core; print(mcp_rust_core.__file__)"])
                .current_dir(scratch.path()),
        )?;
        if !Path::new(installed.trim()).starts_with(&venv) {
            bail!("Python {version} imported mcp_rust_core from {installed}, not from the venv");
        }
        let mut command = Command::new(&venv_python);
        command
            .args(["-m", "unittest", "discover", "-v", "-s"])
            .arg(&tests)
            .current_dir(scratch.path());
        for name in CLEARED_ENV {
            command.env_remove(name);
        }
        process::run(&mut command).with_context(|| {
            format!("the FFI tests failed against the wheel under Python {version}")
        })?;
    }
    let (_, newest) = &pythons[pythons.len() - 1];
    auditwheel_show(newest, &work_dir.join("auditwheel"), wheel)
}

/// [`run`] for every wheel in `dist_dir/wheels/` (the FFI step of `cargo xtask ci`); the
/// venvs live under `target_dir/wheel-test/`. No wheel is an error: `cargo xtask dist`
/// writes one whenever it builds the baseline variant.
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
        run(workspace_root, &target_dir.join("wheel-test"), wheel)?;
    }
    Ok(())
}

/// Runs `auditwheel show` and checks it names the wheel's own platform tag.
fn auditwheel_show(python: &Path, venv: &Path, wheel: &Path) -> Result<()> {
    let venv_python = fresh_venv(python, venv, &["auditwheel".as_ref()])?;
    let report = process::output(
        Command::new(venv_python.with_file_name("auditwheel"))
            .arg("show")
            .arg(wheel),
    )
    .context("auditwheel show")?;
    eprintln!("--> auditwheel show {}:\n{report}", wheel.display());
    let name = wheel.file_name().unwrap_or_default().to_string_lossy();
    let platform = name
        .trim_end_matches(".whl")
        .rsplit('-')
        .next()
        .and_then(|tags| tags.split('.').next())
        .unwrap_or_default()
        .to_owned();
    let consistent = report
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .contains(&format!(
            "consistent with the following platform tag: \"{platform}\""
        ));
    if !consistent {
        bail!("auditwheel does not confirm the wheel's platform tag {platform}:\n{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_version_is_an_error_with_the_fix() {
        let found = candidates("3.99");
        assert!(found.iter().all(|p| p.ends_with("python3.99")));
        assert!(
            find_python("3.99")
                .unwrap_err()
                .to_string()
                .contains("pyenv install 3.99")
        );
    }
}

//! How ci builds and runs the tests: clippy-driver compiles the workspace members of the
//! test build, so the clippy step's build is the tests' build.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use super::{cargo, cargo_in};
use crate::metadata::Workspace;
use crate::process;

/// The tests, built the way the clippy step built them when it ran (`linted`), so that
/// nothing is compiled twice.
pub(super) fn run_tests(workspace: &Workspace, linted: bool) -> Result<()> {
    let cargo_for = |subcommand: &[&str]| -> Result<Command> {
        if linted {
            clippy_build(&workspace.root, subcommand)
        } else {
            let mut command = cargo(workspace);
            command.args(subcommand);
            Ok(command)
        }
    };
    // nextest prints its own per-test lines and the final summary.
    process::run(cargo_for(&["nextest", "run"])?.args([
        "--workspace",
        "--all-features",
        "--locked",
        "--no-fail-fast",
    ]))?;
    // nextest does not run doctests.
    process::run(cargo_for(&["test"])?.args(["--workspace", "--all-features", "--locked", "--doc"]))
}

/// `cargo <subcommand...>` with clippy-driver as the compiler of the workspace members and
/// `-D warnings`: what `cargo clippy` sets up, but for a real build instead of a check.
/// The dependencies are then compiled once, for the tests, instead of a second time in
/// check mode for clippy, the larger part of a cold clippy run (BENCHMARKS.md, "CI time").
///
/// The price: clippy-driver compiles the members' test binaries with `--cfg clippy` (no
/// code here reads it), MIR optimisation off, and without the debug-build checks for
/// misaligned and null raw-pointer dereferences, which it turns off because `cargo clippy`
/// never generates code. Dependencies are compiled by rustc as before.
///
/// The wrapper is given as `--config`, so the tests' own cargo runs (dist's release builds)
/// do not inherit it. They do inherit `CLIPPY_ARGS`, which rustc ignores and cargo does not
/// track, so their outputs do not change.
pub(super) fn clippy_build(root: &Path, subcommand: &[&str]) -> Result<Command> {
    let driver = process::rustc_sysroot(root)?.join("bin/clippy-driver");
    if !driver.is_file() {
        bail!(
            "{} is missing; install the clippy component of the toolchain in \
             rust-toolchain.toml (`rustup component add clippy`)",
            driver.display()
        );
    }
    let mut command = cargo_in(root);
    command
        .args(subcommand)
        .arg("--config")
        .arg(format!(
            "build.rustc-workspace-wrapper={}",
            toml::Value::String(driver.to_string_lossy().into_owned())
        ))
        // clippy-driver's own argument channel (cargo-clippy's separator), tracked by cargo.
        .env("CLIPPY_ARGS", CLIPPY_ARGS.join("__CLIPPY_HACKERY__"));
    Ok(command)
}

/// What `cargo clippy -- <args>` would pass: every warning of rustc and clippy fails.
const CLIPPY_ARGS: [&str; 2] = ["-D", "warnings"];

#[cfg(test)]
mod tests {
    use super::*;

    /// The clippy build must fail on a clippy lint and on a rustc warning, and build the
    /// tests for real when the code is clean: a probe crate in all three states.
    #[test]
    fn the_clippy_build_denies_lints_and_builds_the_tests() {
        let workspace = Workspace::load().unwrap();
        let probe = tempfile::tempdir().unwrap();
        std::fs::copy(
            workspace.root.join("rust-toolchain.toml"),
            probe.path().join("rust-toolchain.toml"),
        )
        .unwrap();
        std::fs::write(
            probe.path().join("Cargo.toml"),
            "[package]\nname = \"lint-probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::create_dir(probe.path().join("src")).unwrap();
        let build = |body: &str| {
            std::fs::write(probe.path().join("src/lib.rs"), body).unwrap();
            let output = clippy_build(probe.path(), &["test"])
                .unwrap()
                .args(["--no-run", "--all-targets", "--offline"])
                .env("CARGO_TARGET_DIR", probe.path().join("target"))
                .output()
                .unwrap();
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        };
        let test = "#[test]\nfn one() { assert_eq!(super::one(), 1); }";
        let (ok, stderr) = build(&format!(
            "pub fn one() -> u32 {{ return 1; }}\n#[cfg(test)]\nmod tests {{ {test} }}\n"
        ));
        assert!(
            !ok && stderr.contains("clippy::needless_return"),
            "{stderr}"
        );
        let (ok, stderr) = build(&format!(
            "pub fn one() -> u32 {{ let unused = 2; 1 }}\n#[cfg(test)]\nmod tests {{ {test} }}\n"
        ));
        assert!(!ok && stderr.contains("unused_variables"), "{stderr}");
        let (ok, stderr) = build(&format!(
            "pub fn one() -> u32 {{ 1 }}\n#[cfg(test)]\nmod tests {{ {test} }}\n"
        ));
        assert!(ok, "{stderr}");
        let built = std::fs::read_dir(probe.path().join("target/debug/deps"))
            .unwrap()
            .filter_map(|entry| entry.ok())
            .any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.starts_with("lint_probe-") && !name.contains('.')
            });
        assert!(built, "the clean probe's test binary was not built");
    }
}

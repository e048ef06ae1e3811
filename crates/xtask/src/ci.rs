//! `cargo xtask ci`: the project's one test command. Every step prints a header, is timed,
//! and stops the run with a message naming the step when it fails. Builds happen once:
//! `dist` output is reused by `verify`, the FFI tests and the images.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::dist::{self, ArtifactKind, DistArgs, Manifest};
use crate::metadata::{Role, Workspace};
use crate::process;
use crate::verify::{self, VerifyArgs};

/// The steps of `cargo xtask ci`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiStep {
    /// `cargo fmt --all --check`
    Fmt,
    /// `cargo clippy --workspace --all-targets --all-features --locked -- -D warnings`
    Clippy,
    /// `cargo nextest run` (or `cargo test`) for the whole workspace
    Test,
    /// `cargo xtask dist`: the CI subset (or every shipped crate) in every variant
    Dist,
    /// `cargo xtask verify --rebuild` on the dist output
    Verify,
    /// tests/ffi against each variant's Python module
    Ffi,
    /// OCI images of every server and their smoke test
    Images,
    /// offline Nix checks (when nix-instantiate is installed)
    Nix,
    /// real-Nix offline build of the flake (when the pinned input sources are given)
    NixOffline,
}

impl CiStep {
    fn title(self) -> &'static str {
        match self {
            CiStep::Fmt => "format check",
            CiStep::Clippy => "clippy (-D warnings)",
            CiStep::Test => "tests",
            CiStep::Dist => "dist (every variant; CI subset unless --full-matrix)",
            CiStep::Verify => "verify (audit, exports, reproducibility)",
            CiStep::Ffi => "Python FFI tests per variant",
            CiStep::Images => "images + smoke test",
            CiStep::Nix => "Nix checks",
            CiStep::NixOffline => "Nix offline build (real Nix, crane, substitute nixpkgs)",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct CiArgs {
    /// Skip a step (repeatable); for local use, CI runs everything.
    #[arg(long, value_enum)]
    pub skip: Vec<CiStep>,
    /// Crates the reproducibility rebuild covers (repeatable). Default: the Python module
    /// crate(s): a second cold build of the whole matrix does not fit the CI budget on two
    /// cores (a cold mcp-rust-core rebuild takes ~5 min, a cold server ~9 min per variant).
    #[arg(long = "repro-crate", value_name = "CRATE")]
    pub repro_crates: Vec<String>,
    /// Build, audit and image every shipped crate. Default: the CI subset — the Python
    /// module, the launcher and the servers marked `ci-dist = true` in their
    /// `[package.metadata.mcp-foundry]` — because cold fat-LTO builds of every server in
    /// every variant do not fit a 2-core CI budget. `cargo xtask dist` always builds all.
    #[arg(long)]
    pub full_matrix: bool,
}

impl CiArgs {
    /// The crates the dist, verify and image steps cover.
    fn dist_crates(&self, workspace: &Workspace) -> Vec<String> {
        if self.full_matrix {
            return Vec::new(); // dist and image treat "none named" as "all".
        }
        workspace
            .shipped_crates()
            .filter(|c| c.ci_dist || matches!(c.role, Role::PythonModule | Role::Launcher))
            .map(|c| c.name.clone())
            .collect()
    }
}

/// Runs every step not skipped, failing fast.
pub fn run(workspace: &Workspace, args: &CiArgs) -> Result<()> {
    let started = Instant::now();
    let mut timings: Vec<(CiStep, Duration)> = Vec::new();
    for step in CiStep::value_variants().iter().copied() {
        if args.skip.contains(&step) {
            eprintln!("\n==> [ci] {} skipped (--skip)", step.title());
            continue;
        }
        eprintln!("\n==> [ci] {}", step.title());
        let step_started = Instant::now();
        run_step(workspace, args, step)
            .with_context(|| format!("ci step `{}` failed", step.title()))?;
        let elapsed = step_started.elapsed();
        eprintln!("==> [ci] {} passed in {}", step.title(), human(elapsed));
        timings.push((step, elapsed));
    }
    eprintln!(
        "\n==> [ci] all steps passed in {}",
        human(started.elapsed())
    );
    for (step, elapsed) in timings {
        eprintln!("    {:<28} {:>9}", step.title(), human(elapsed));
    }
    Ok(())
}

fn run_step(workspace: &Workspace, args: &CiArgs, step: CiStep) -> Result<()> {
    match step {
        CiStep::Fmt => process::run(cargo(workspace).args(["fmt", "--all", "--check"])),
        CiStep::Clippy => process::run(cargo(workspace).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])),
        CiStep::Test => run_tests(workspace),
        CiStep::Dist => {
            let crates = args.dist_crates(workspace);
            if !crates.is_empty() {
                eprintln!(
                    "note: CI subset {} (pass --full-matrix for every shipped crate)",
                    crates.join(", ")
                );
            }
            dist::run(
                workspace,
                &DistArgs {
                    crates,
                    ..DistArgs::default()
                },
            )
            .map(drop)
        }
        CiStep::Verify => verify::run(
            workspace,
            &VerifyArgs {
                dist: None,
                rebuild: true,
                rebuild_crates: if args.repro_crates.is_empty() {
                    workspace
                        .crates
                        .iter()
                        .filter(|c| c.role == Role::PythonModule)
                        .map(|c| c.name.clone())
                        .collect()
                } else {
                    args.repro_crates.clone()
                },
            },
        )
        .map(drop),
        CiStep::Ffi => run_ffi_tests(workspace),
        CiStep::Images => run_images(workspace, &args.dist_crates(workspace)),
        CiStep::Nix => {
            if process::on_path("nix-instantiate") {
                crate::nix_check::run(&workspace.root)
            } else {
                eprintln!("note: nix-instantiate is not on PATH; Nix checks SKIPPED");
                Ok(())
            }
        }
        CiStep::NixOffline => match crate::nix_offline::sources_from_env() {
            Ok(_) => crate::nix_offline::run(workspace, &Default::default()),
            Err(missing) => {
                eprintln!(
                    "\n!!! Nix offline build SKIPPED: {} not set (the pinned flake inputs' \
                     sources; CI cannot fetch them from GitHub). See NIX.md. !!!\n",
                    missing.join(", ")
                );
                Ok(())
            }
        },
    }
}

/// Runs `tests/ffi` once per variant against that variant's `dist/<variant>/python`.
fn run_ffi_tests(workspace: &Workspace) -> Result<()> {
    let tests = workspace.root.join("tests/ffi");
    if !tests.is_dir() {
        eprintln!(
            "\n!!! {} does not exist: the Python FFI tests were NOT run !!!\n",
            tests.display()
        );
        return Ok(());
    }
    let dist_dir = workspace.root.join("dist");
    let manifest = Manifest::load(&dist_dir)?;
    let extensions: Vec<_> = manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::PythonExtension && a.role == Role::PythonModule)
        .collect();
    if extensions.is_empty() {
        bail!("dist/manifest.json lists no Python extension module; run `cargo xtask dist`");
    }
    let python = ffi_venv(workspace)?;
    for extension in extensions {
        let missing =
            crate::cpu::missing_on_this_machine(&extension.target, &extension.target_cpu)?;
        if !missing.is_empty() {
            eprintln!(
                "\n!!! FFI tests of variant `{}` SKIPPED: this CPU lacks {} !!!\n",
                extension.variant,
                missing.join(", ")
            );
            continue;
        }
        eprintln!("--> FFI tests, variant {}", extension.variant);
        let package_root = dist_dir.join(&extension.variant).join("python");
        process::run(
            Command::new(&python)
                .args(["-m", "unittest", "discover", "-s"])
                .arg(&tests)
                .arg("-v")
                .current_dir(&workspace.root)
                .env("PYTHONPATH", &package_root)
                .env("MCP_FOUNDRY_EXPECT_VARIANT", &extension.variant)
                .env("MCP_FOUNDRY_CDYLIB", dist_dir.join(&extension.path)),
        )
        .with_context(|| format!("FFI tests failed for variant `{}`", extension.variant))?;
    }
    Ok(())
}

/// `target/ffi-venv` with numpy, created on first use; returns its python.
fn ffi_venv(workspace: &Workspace) -> Result<PathBuf> {
    let venv = workspace.target_dir.join("ffi-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".numpy-installed");
    if !ready.is_file() {
        eprintln!("--> creating {} with numpy", venv.display());
        process::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        process::run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "numpy",
        ]))?;
        std::fs::write(&ready, "").context("marking the FFI venv ready")?;
    }
    Ok(python)
}

/// `cargo xtask image --smoke` on the dist output.
fn run_images(workspace: &Workspace, dist_crates: &[String]) -> Result<()> {
    #[derive(Parser)]
    struct ImageCommand {
        #[command(flatten)]
        args: crate::image::ImageArgs,
    }
    let mut argv = vec!["image".to_owned(), "--smoke".to_owned()];
    for server in workspace
        .servers()
        .filter(|s| dist_crates.contains(&s.name))
    {
        argv.extend(["--crate".to_owned(), server.name.clone()]);
    }
    let command = ImageCommand::try_parse_from(argv).context("building the image arguments")?;
    crate::image::run(workspace, &command.args)
}

fn run_tests(workspace: &Workspace) -> Result<()> {
    if process::on_path("cargo-nextest") {
        // nextest prints its own per-test lines and the final summary.
        process::run(cargo(workspace).args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--locked",
            "--no-fail-fast",
        ]))?;
        // nextest does not run doctests.
        process::run(cargo(workspace).args([
            "test",
            "--workspace",
            "--all-features",
            "--locked",
            "--doc",
        ]))
    } else {
        eprintln!("note: cargo-nextest is not installed; running `cargo test` instead");
        process::run(cargo(workspace).args(["test", "--workspace", "--all-features", "--locked"]))
    }
}

/// `cargo` (the one running xtask) in the workspace root.
pub fn cargo(workspace: &Workspace) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(&workspace.root);
    command
}

/// `1m 23.4s` / `4.2s`.
pub fn human(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if seconds >= 60.0 {
        format!("{}m {:04.1}s", (seconds / 60.0).floor(), seconds % 60.0)
    } else {
        format!("{seconds:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_stopwatch() {
        assert_eq!(human(Duration::from_millis(4_240)), "4.2s");
        assert_eq!(human(Duration::from_millis(83_400)), "1m 23.4s");
    }
}

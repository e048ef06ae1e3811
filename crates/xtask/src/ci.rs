//! `cargo xtask ci`: the project's one test command. Every step prints a header, is timed,
//! and stops the run with a message naming the step when it fails. Builds happen once:
//! `dist` output is reused by `verify`, the FFI tests and the images.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;

use crate::metadata::Workspace;
use crate::process;

/// The steps of `cargo xtask ci`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiStep {
    /// `cargo fmt --all --check`
    Fmt,
    /// `cargo clippy --workspace --all-targets --all-features --locked -- -D warnings`
    Clippy,
    /// `cargo nextest run` (or `cargo test`) for the whole workspace
    Test,
}

impl CiStep {
    fn title(self) -> &'static str {
        match self {
            CiStep::Fmt => "format check",
            CiStep::Clippy => "clippy (-D warnings)",
            CiStep::Test => "tests",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct CiArgs {
    /// Skip a step (repeatable); for local use, CI runs everything.
    #[arg(long, value_enum)]
    pub skip: Vec<CiStep>,
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
        run_step(workspace, step).with_context(|| format!("ci step `{}` failed", step.title()))?;
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

fn run_step(workspace: &Workspace, step: CiStep) -> Result<()> {
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
    }
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

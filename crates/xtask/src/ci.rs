//! `cargo xtask ci`: the project's one test command. The prerequisites of every step are
//! checked (and installed where possible) first; every step prints a header, is timed, and
//! stops the run with a message naming the step when it fails; the per-step timing table is
//! printed at the end, also after a failure. Builds happen once: `dist` output is reused by
//! `verify`, the FFI tests and the images.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};

use crate::cpu;
use crate::disk;
use crate::dist::{self, ArtifactKind, DistArgs, Manifest};
use crate::metadata::{Role, Workspace};
use crate::prereq::{self, Needs, Use};
use crate::process;
use crate::timing::{Outcome, Steps};
use crate::verify::{self, VerifyArgs};

mod test_build;

use test_build::{clippy_build, run_tests};

/// The steps of `cargo xtask ci`, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiStep {
    /// `cargo fmt --all --check`
    Fmt,
    /// clippy with `-D warnings` on every target of every member, all features, as the
    /// members' compiler in the test build (see [`clippy_build`])
    Clippy,
    /// `cargo doc` of every member with rustdoc's warnings denied, as the flake's doc check
    Doc,
    /// `cargo hakari generate --diff` and `manage-deps --dry-run`: the workspace-hack is current
    Hakari,
    /// `cargo nextest run` and the doctests for the whole workspace
    Test,
    /// `cargo xtask dist`: every shipped crate in every variant and architecture, as far as
    /// the variants' `ci-crates` reach (all of it with `--full-matrix`)
    Dist,
    /// `cargo xtask verify --rebuild` on the dist output
    Verify,
    /// `cargo xtask emulate`: the cross-built (aarch64) binaries answer MCP under qemu-user
    Emulate,
    /// tests/ffi against each variant's Python module this CPU can run, then each wheel
    /// installed (x86_64: host, Debian 3.9 and 3.13; aarch64: under qemu-aarch64)
    Ffi,
    /// OCI images of every server and their smoke test
    Images,
    /// offline Nix checks
    Nix,
    /// real-Nix offline build of the flake (when the pinned input sources are given)
    NixOffline,
}

impl CiStep {
    fn title(self) -> &'static str {
        match self {
            CiStep::Fmt => "format check",
            CiStep::Clippy => "clippy (-D warnings), building the tests",
            CiStep::Doc => "docs (rustdoc --deny warnings)",
            CiStep::Hakari => "workspace-hack up to date",
            CiStep::Test => "tests",
            CiStep::Dist => {
                "dist (every shipped crate × variant × architecture; a variant with ci-crates: those)"
            }
            CiStep::Verify => "verify (audit, exports, reproducibility)",
            CiStep::Emulate => "other architectures under qemu (MCP handshake)",
            CiStep::Ffi => "Python FFI tests per variant and wheel",
            CiStep::Images => "images + smoke test",
            CiStep::Nix => "Nix checks",
            CiStep::NixOffline => "Nix offline build (real Nix, crane, substitute nixpkgs)",
        }
    }

    /// What the step needs installed.
    fn uses(self, workspace: &Workspace) -> Needs {
        let mut needs = Needs::new("ci", []);
        match self {
            CiStep::Fmt => needs.uses.insert(Use::Fmt),
            CiStep::Clippy => needs.uses.insert(Use::Clippy),
            CiStep::Doc => needs.uses.insert(Use::Doc),
            CiStep::Hakari => needs.uses.insert(Use::Hakari),
            CiStep::Test => needs.uses.insert(Use::Test),
            CiStep::Dist | CiStep::Verify => {
                let crates: Vec<_> = workspace.shipped_crates().collect();
                needs.add_dist(&crates);
                let variants: Vec<_> = workspace.variants.iter().collect();
                if let Ok(architectures) = dist::architectures(&variants, &[]) {
                    needs.add_architectures(&architectures);
                }
                true
            }
            CiStep::Emulate => needs.uses.insert(Use::Emulate),
            CiStep::Ffi => needs.uses.insert(Use::Ffi),
            CiStep::Images => {
                needs.uses.extend([Use::Image, Use::ImageSmoke]);
                true
            }
            CiStep::Nix => needs.uses.insert(Use::Nix),
            // Only when the pinned sources are given; otherwise the step says loudly that it
            // skips, and nothing is installed for it.
            CiStep::NixOffline => {
                if crate::nix_offline::sources_given()
                    && let Ok(offline) = crate::nix_offline::needs(workspace)
                {
                    needs.uses.extend(offline.uses);
                }
                true
            }
        };
        needs
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct CiArgs {
    /// Build every shipped crate in every variant and architecture, as `cargo xtask dist`
    /// does, instead of what the variants' `ci-crates` name (before a release; on 2 cores it
    /// costs a cold dependency build per further variant and architecture of each server).
    #[arg(long)]
    pub full_matrix: bool,
    /// Skip a step (repeatable); for local use, CI runs everything.
    #[arg(long, value_enum)]
    pub skip: Vec<CiStep>,
    /// Crates the reproducibility rebuild covers (repeatable). Default: the Python module
    /// and the first server. The server is rebuilt alone (`-p <server>`) and compared with
    /// the full dist, so the rebuild also proves that its bits do not depend on which other
    /// crates were built with it.
    #[arg(long = "repro-crate", value_name = "CRATE")]
    pub repro_crates: Vec<String>,
    /// Variants the reproducibility rebuild covers (repeatable). Default: the baseline
    /// variant only. The rebuild is a cold build in a fresh directory; the build process is
    /// the same in every variant but for `-C target-cpu`, so one variant proves it, and each
    /// further one would cost another cold build of the whole dependency tree.
    #[arg(long = "repro-variant", value_name = "VARIANT")]
    pub repro_variants: Vec<String>,
    /// Architectures the reproducibility rebuild covers (repeatable). Default: this
    /// machine's. A cross build goes through the same cargo invocation (plus the C
    /// toolchain's environment) and costs a cold build of the whole dependency tree again.
    #[arg(long = "repro-arch", value_name = "ARCH")]
    pub repro_architectures: Vec<String>,
}

impl CiArgs {
    fn repro_crates(&self, workspace: &Workspace) -> Vec<String> {
        if !self.repro_crates.is_empty() {
            return self.repro_crates.clone();
        }
        let modules = workspace
            .crates
            .iter()
            .filter(|c| c.role == Role::PythonModule);
        modules
            .chain(workspace.servers().take(1))
            .map(|c| c.name.clone())
            .collect()
    }

    fn repro_architectures(&self) -> Vec<String> {
        if self.repro_architectures.is_empty() {
            vec![std::env::consts::ARCH.to_owned()]
        } else {
            self.repro_architectures.clone()
        }
    }

    fn repro_variants(&self, workspace: &Workspace) -> Vec<String> {
        if !self.repro_variants.is_empty() {
            return self.repro_variants.clone();
        }
        workspace
            .variants
            .iter()
            .filter(|v| v.target_cpu == dist::BASELINE_CPU)
            .map(|v| v.name.clone())
            .take(1)
            .collect()
    }
}

/// Runs every step not skipped, failing fast; prints the timing table either way.
pub fn run(workspace: &Workspace, args: &CiArgs) -> Result<()> {
    let mut steps = Steps::new();
    let result = run_steps(workspace, args, &mut steps);
    let verdict = if result.is_ok() {
        "all steps passed"
    } else {
        "FAILED"
    };
    eprintln!(
        "\n{}",
        steps.table(&format!("==> [ci] {verdict}; step times:"))
    );
    result
}

fn run_steps(workspace: &Workspace, args: &CiArgs, steps: &mut Steps) -> Result<()> {
    let chosen: Vec<CiStep> = CiStep::value_variants()
        .iter()
        .copied()
        .filter(|step| !args.skip.contains(step))
        .collect();
    let mut needs = Needs::new("ci", []);
    for step in &chosen {
        needs.uses.extend(step.uses(workspace).uses);
    }
    disk::warn_if_short(&workspace.target_dir);
    eprintln!("==> [ci] prerequisites");
    steps.time("prerequisites", || prereq::ensure(&workspace.root, &needs))?;
    let mut wheel_chroots = (chosen.contains(&CiStep::Ffi) && crate::wheel::debian::is_root())
        .then(|| {
            eprintln!("==> [ci] the wheel test's Debian chroots are made in the background");
            crate::wheel::debian::prepare_in_background(workspace.target_dir.join("wheel-python"))
        });
    for step in CiStep::value_variants().iter().copied() {
        if step == CiStep::Ffi
            && let Some(handle) = wheel_chroots.take()
        {
            match handle.join() {
                Ok(Ok(())) => {}
                // The FFI step makes them itself and fails loudly if it cannot.
                Ok(Err(error)) => eprintln!("warning: background chroot set-up: {error:#}"),
                Err(_) => eprintln!("warning: the background chroot set-up panicked"),
            }
        }
        if !chosen.contains(&step) {
            eprintln!("\n==> [ci] {} SKIPPED (--skip)", step.title());
            steps.record(step.title(), Outcome::Skipped, Default::default());
            continue;
        }
        eprintln!("\n==> [ci] {}", step.title());
        let result = steps.time(step.title(), || run_step(workspace, args, step));
        let free = disk::free_bytes(&workspace.target_dir);
        if let Some(free) = free {
            steps.note_last(format!("{} free after", disk::human(free)));
        }
        result
            .map_err(|error| disk::explain_if_full(error, free))
            .with_context(|| format!("ci step `{}` failed", step.title()))?;
    }
    Ok(())
}

fn run_step(workspace: &Workspace, args: &CiArgs, step: CiStep) -> Result<()> {
    match step {
        CiStep::Fmt => process::run(cargo(workspace).args(["fmt", "--all", "--check"])),
        CiStep::Clippy => {
            process::run(clippy_build(&workspace.root, &["test"])?.args([
                "--no-run",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--locked",
            ]))?;
            // `cargo test` builds a binary outside cfg(test) only for a package with
            // integration tests; clippy --all-targets checks every binary both ways.
            process::run(clippy_build(&workspace.root, &["build"])?.args([
                "--workspace",
                "--bins",
                "--all-features",
                "--locked",
            ]))
        }
        CiStep::Doc => process::run(cargo(workspace).args(doc_args(workspace)).env(
            "CARGO_ENCODED_RUSTDOCFLAGS",
            RUSTDOCFLAGS.replace(' ', "\x1f"),
        )),
        CiStep::Hakari => check_workspace_hack(workspace),
        CiStep::Test => run_tests(workspace, !args.skip.contains(&CiStep::Clippy)),
        CiStep::Dist => dist::run(
            workspace,
            &DistArgs {
                ci_matrix: !args.full_matrix,
                ..DistArgs::default()
            },
        )
        .map(drop),
        CiStep::Verify => verify::run(
            workspace,
            &VerifyArgs {
                dist: None,
                rebuild: true,
                rebuild_crates: args.repro_crates(workspace),
                rebuild_variants: args.repro_variants(workspace),
                rebuild_architectures: args.repro_architectures(),
            },
        )
        .map(drop),
        CiStep::Emulate => crate::cross::emulate::run(workspace, &Default::default()).map(drop),
        CiStep::Ffi => run_ffi_tests(workspace),
        CiStep::Images => run_images(workspace),
        CiStep::Nix => crate::nix_check::run(&workspace.root),
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

/// The doc step's command line, after `cargo`: what the flake's doc check documents
/// (nix/checks.nix: the workspace with each Python module's feature, our crates only).
fn doc_args(workspace: &Workspace) -> Vec<String> {
    let mut args: Vec<String> = ["doc", "--no-deps", "--locked", "--workspace"]
        .map(str::to_owned)
        .into();
    for spec in &workspace.crates {
        if let Some(feature) = &spec.python_feature {
            args.extend(["--features".to_owned(), format!("{}/{feature}", spec.name)]);
        }
    }
    args
}

/// rustdoc's flags in the doc step: the same as the flake's doc check (nix/checks.nix), so a
/// broken intra-doc link fails here before it fails `nix flake check`. Passed encoded, which
/// cargo takes over RUSTDOCFLAGS, so a user's RUSTDOCFLAGS cannot change them.
const RUSTDOCFLAGS: &str = "--deny warnings";

/// The workspace-hack must be what `cargo hakari generate` makes of the current dependency
/// graph, and every member must depend on it; otherwise an artifact's bits would again
/// depend on which other crates were built with it.
fn check_workspace_hack(workspace: &Workspace) -> Result<()> {
    process::run(cargo(workspace).args(["hakari", "generate", "--diff"])).context(
        "crates/workspace-hack is out of date; run `cargo hakari generate` and commit the result",
    )?;
    process::run(cargo(workspace).args(["hakari", "manage-deps", "--dry-run"])).context(
        "a workspace member does not depend on workspace-hack; run `cargo hakari manage-deps`",
    )?;
    // Not `cargo hakari verify`: with unify-target-host = "none" it reports host-only
    // differences (syn for proc-macros) that reach no artifact. What matters is checked
    // here, per shipped crate and dist target (and by tests/feature_isolation.rs).
    let differences = dist::isolation::differences(workspace)?;
    if !differences.is_empty() {
        bail!(
            "dependency features depend on what is built together:\n  {}",
            differences.join("\n  ")
        );
    }
    Ok(())
}

/// Runs `tests/ffi` once per variant against that variant's `dist/<variant>/python`.
fn run_ffi_tests(workspace: &Workspace) -> Result<()> {
    let tests = workspace.root.join("tests/ffi");
    if !tests.is_dir() {
        bail!(
            "{} does not exist: there are no Python FFI tests to run",
            tests.display()
        );
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
    let mut ran = 0;
    for extension in &extensions {
        if crate::cross::is_foreign(&extension.target) {
            eprintln!(
                "--> {} ({}): tested through its wheel under qemu below",
                extension.path, extension.target
            );
            continue;
        }
        let support = cpu::support(&extension.target, &extension.target_cpu)?;
        if let Some(notice) =
            support.skip_notice(&format!("FFI tests of variant `{}`", extension.variant))
        {
            eprintln!("\n{notice}\n");
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
        ran += 1;
    }
    if ran == 0 {
        bail!("this CPU can run none of the Python module's variants; no FFI test ran");
    }
    // The SBOMs against the official CycloneDX schema, the provenance's shape (issue 14).
    eprintln!("--> supply-chain records of dist/ (tests/supply/check_records.py)");
    process::run(
        Command::new(&python)
            .arg(workspace.root.join("tests/supply/check_records.py"))
            .arg(&dist_dir),
    )
    .context("dist/'s SBOM or provenance records fail their formats")?;
    let crates: Vec<_> = workspace.shipped_crates().collect();
    let rebuild = workspace.target_dir.join("wheel-test/rebuilt");
    crate::wheel::check_reproducible(&dist_dir, &crates, &rebuild)?;
    crate::wheel::install_test::run_dist(&workspace.root, &dist_dir, &workspace.target_dir)
}

/// `target/ffi-venv` with numpy, created on first use; returns its python.
pub fn ffi_venv(workspace: &Workspace) -> Result<PathBuf> {
    let venv = workspace.target_dir.join("ffi-venv");
    let python = venv.join("bin/python");
    let requirements = workspace.root.join("tests/ffi/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    // The stamp holds the requirements it was made from: a changed list reinstalls.
    let stamp = venv.join(".requirements-installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!(
            "--> preparing {} with {}",
            venv.display(),
            requirements.display()
        );
        if !python.is_file() {
            process::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        }
        process::run(
            process::pip_install(&mut Command::new(&python))
                .arg("-r")
                .arg(&requirements),
        )?;
        std::fs::write(&stamp, &wanted).context("marking the FFI venv ready")?;
    }
    Ok(python)
}

/// `cargo xtask image --smoke` on the dist output.
fn run_images(workspace: &Workspace) -> Result<()> {
    #[derive(Parser)]
    struct ImageCommand {
        #[command(flatten)]
        args: crate::image::ImageArgs,
    }
    let command = ImageCommand::try_parse_from(["image", "--smoke"])
        .context("building the image arguments")?;
    crate::image::run(workspace, &command.args)
}

/// `cargo` (the one running xtask) in the workspace root.
pub fn cargo(workspace: &Workspace) -> Command {
    cargo_in(&workspace.root)
}

fn cargo_in(root: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(root);
    // A ci run builds each unit once: incremental caches would only cost disk (gigabytes
    // for the test build) and time. Whoever sets CARGO_INCREMENTAL keeps their choice.
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        command.env("CARGO_INCREMENTAL", "0");
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_declares_what_it_needs() {
        let workspace = Workspace::load().unwrap();
        // The Nix offline build needs nothing installed unless its sources are given.
        for step in CiStep::value_variants()
            .iter()
            .filter(|s| **s != CiStep::NixOffline)
        {
            assert!(
                !step.uses(&workspace).uses.is_empty(),
                "{step:?} declares no prerequisite use"
            );
        }
        let dist = CiStep::Dist.uses(&workspace).uses;
        assert!(dist.contains(&Use::DistMusl) && dist.contains(&Use::DistPython));
        let foreign = workspace
            .variants
            .iter()
            .flat_map(|v| &v.architectures)
            .any(|arch| arch != std::env::consts::ARCH);
        assert_eq!(dist.contains(&Use::DistCross), foreign);
    }

    #[test]
    fn the_doc_step_uses_the_flakes_rustdoc_flags() {
        let workspace = Workspace::load().unwrap();
        let checks = std::fs::read_to_string(workspace.root.join("nix/checks.nix")).unwrap();
        assert!(
            checks.contains(&format!("RUSTDOCFLAGS = \"{RUSTDOCFLAGS}\";")),
            "nix/checks.nix's doc check and ci's doc step must deny the same rustdoc warnings"
        );
        assert!(checks.contains("cargoDocExtraArgs = \"--no-deps\";"));
        assert!(checks.contains("cargoExtraArgs = \"--locked --workspace${pythonFeatures}\";"));
        assert!(checks.contains("\" --features ${n}/${workspace.crates.${n}.pythonFeature}\""));
        let args = doc_args(&workspace).join(" ");
        assert!(
            args.starts_with("doc --no-deps --locked --workspace"),
            "{args}"
        );
        let core = workspace
            .crates
            .iter()
            .find(|c| c.role == Role::PythonModule)
            .unwrap();
        let feature = core.python_feature.as_deref().unwrap();
        assert!(
            args.contains(&format!("--features {}/{feature}", core.name)),
            "{args}"
        );
        assert!(!args.contains("--all-features"), "{args}");
    }

    #[test]
    fn the_default_rebuild_covers_the_python_module_and_one_server_in_the_baseline() {
        let workspace = Workspace::load().unwrap();
        let mut args = CiArgs {
            full_matrix: false,
            skip: vec![],
            repro_crates: vec![],
            repro_variants: vec![],
            repro_architectures: vec![],
        };
        assert_eq!(args.repro_architectures(), [std::env::consts::ARCH]);
        let variants = args.repro_variants(&workspace);
        assert_eq!(variants.len(), 1);
        let baseline = workspace.variant(&variants[0]).unwrap();
        assert_eq!(baseline.target_cpu, dist::BASELINE_CPU);
        args.repro_variants = vec!["znver4".to_owned()];
        assert_eq!(args.repro_variants(&workspace), ["znver4"]);
        let crates = args.repro_crates(&workspace);
        let roles: Vec<Role> = crates
            .iter()
            .map(|name| workspace.crate_spec(name).unwrap().role)
            .collect();
        assert!(roles.contains(&Role::PythonModule) && roles.contains(&Role::Server));
        assert_eq!(crates.len(), 2);
    }
}

//! `cargo xtask nix-offline`: builds the real flake with real Nix (>= 2.31.2), the real
//! crane, rust-overlay and advisory-db at their pinned revisions, and the nixpkgs
//! substitute of `nix/offline/` (nixpkgs itself cannot be fetched here), all offline.
//!
//! The pinned inputs come from directories named by environment variables (this machine
//! and CI cannot reach GitHub): `CRANE_SRC`, `RUST_OVERLAY_SRC`, `FENIX_SRC`, `ADVISORY_DB_SRC`, and
//! `NIXPKGS_LIB_SRC` (a checkout of nixpkgs' `lib`, e.g. nix-community/nixpkgs.lib, which
//! the substitute needs and which is never committed here). Their narHashes must match
//! `flake.lock` for the inputs of the flake; Nix prints both.
//!
//! Steps: `nix build` of the Python module and one server in two variants and that server's
//! dispatch image (each output then inspected: the module links no libpython, the binaries
//! run when this CPU can, skopeo reads the image), `nix flake check`, and `nix develop -c
//! cargo xtask dist --crate <server> --variant <baseline> --arch <this machine's>`, and the
//! same dist on this host outside Nix (its own toolchain, C compiler and target directory).
//! Both binaries are compared with the Nix-built one (sha256, then where they differ:
//! [`compare`]): the dev shell's proves that the flake's dev shell builds what its packages
//! build, the host's that Nix and plain Cargo give one artifact. The inputs are locked once
//! to the local sources in a lock file of the run's own, so the flake keeps `self.rev` (see
//! `run`).
//!
//! When the host's Nix is older (Debian 12 ships 2.8), it runs as root in a Debian sid
//! chroot that it sets up itself ([`chroot`]), whose `nix-bin` is new enough.

pub(crate) mod chroot;
mod compare;
mod inspect;
mod stage;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::dist;
use crate::metadata::{Role, Workspace};
use crate::prereq::{Needs, Use};
use crate::process;

/// crane v0.23.4 (flake.lock) refuses older Nix.
pub const MIN_NIX: (u32, u32, u32) = (2, 31, 2);
/// The server whose packages, image and `cargo xtask dist` build the run covers.
pub(crate) const SERVER: &str = "bash-god";
/// The variants built: the portable one and one that needs a recent CPU (built on any
/// builder; only run where the CPU has its features).
const VARIANTS: [&str; 2] = ["generic", "znver4"];

/// The environment variables naming the pinned input sources, and the flake input each
/// overrides (`None`: not a flake input, staged into the substitute instead).
pub const SOURCE_VARS: [(&str, Option<&str>); 5] = [
    ("CRANE_SRC", Some("crane")),
    ("RUST_OVERLAY_SRC", Some("rust-overlay")),
    ("FENIX_SRC", Some("fenix")),
    ("ADVISORY_DB_SRC", Some("advisory-db")),
    ("NIXPKGS_LIB_SRC", None),
];

#[derive(Debug, Clone, Default, clap::Args)]
pub struct NixOfflineArgs {
    /// Where the Debian sid chroot lives when the host's Nix is too old
    /// (default: `<target-dir>/nix-offline/sid`).
    #[arg(long, value_name = "DIR")]
    pub chroot: Option<PathBuf>,
    /// Run only these steps (repeatable; default: all, in order).
    #[arg(long = "step", value_enum)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    Build,
    FlakeCheck,
    Develop,
}

/// What a run needs installed: the Nix offline build's tools, and what the host's own
/// `cargo xtask dist` of [`SERVER`] needs (the Develop step compares it with Nix's build).
pub fn needs(workspace: &Workspace) -> Result<Needs> {
    let server = workspace.crate_spec(SERVER)?;
    let mut needs = Needs::dist(&[server]);
    needs.task = "nix-offline".to_owned();
    needs.uses.insert(Use::NixOffline);
    Ok(needs)
}

/// Whether every pinned source is given: only then does ci run the Nix offline build (and
/// `cargo xtask setup` install its tools).
pub fn sources_given() -> bool {
    sources_from_env().is_ok()
}

/// The pinned sources, or the names of the variables that are not set.
pub fn sources_from_env() -> std::result::Result<Vec<(String, PathBuf)>, Vec<&'static str>> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (var, _) in SOURCE_VARS {
        match std::env::var_os(var) {
            Some(value) if !value.is_empty() => found.push((var.to_owned(), PathBuf::from(value))),
            _ => missing.push(var),
        }
    }
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(missing)
    }
}

/// How Nix commands run: the host's Nix, or the chroot's.
#[derive(Debug)]
pub enum Runner {
    Host,
    Chroot(chroot::Chroot),
}

impl Runner {
    /// A command that runs `program` with the Nix configuration of this run, in `dir`.
    pub fn command(&self, dir: &Path, program: &str) -> Command {
        self.command_with(dir, &[], program)
    }

    /// [`Runner::command`] with more environment (the chroot's is otherwise clean).
    pub fn command_with(&self, dir: &Path, env: &[(&str, &str)], program: &str) -> Command {
        match self {
            Runner::Host => {
                let mut command = Command::new(program);
                command
                    .current_dir(dir)
                    .envs(env.iter().copied())
                    .env("NIX_CONFIG", NIX_CONFIG)
                    .env_remove("NIX_PATH");
                command
            }
            Runner::Chroot(chroot) => {
                let mut all = vec![("NIX_CONFIG", NIX_CONFIG)];
                all.extend_from_slice(env);
                chroot.command_in(dir, &all, program)
            }
        }
    }
}

/// Offline, unsandboxed (the substitute's packages are host programs), no build users.
const NIX_CONFIG: &str = "experimental-features = nix-command flakes\n\
substituters =\n\
sandbox = false\n\
build-users-group =\n\
warn-dirty = false\n\
accept-flake-config = false";

pub fn run(workspace: &Workspace, args: &NixOfflineArgs) -> Result<()> {
    let sources = sources_from_env().map_err(|missing| {
        anyhow::anyhow!(
            "set {} to the source directories of the pinned inputs (flake.lock revisions)",
            missing.join(", ")
        )
    })?;
    for (var, dir) in &sources {
        if !dir.is_dir() {
            bail!("{var}={} is not a directory", dir.display());
        }
    }
    let root = &workspace.root;
    let work = workspace.target_dir.join("nix-offline");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let runner = match host_nix_version()? {
        Some(version) if version >= MIN_NIX => {
            eprintln!("nix-offline: using the host's Nix {}", show(version));
            Runner::Host
        }
        other => {
            eprintln!(
                "nix-offline: the host's Nix is {}; crane needs >= {}: using a Debian sid chroot",
                other.map_or_else(|| "absent".to_owned(), show),
                show(MIN_NIX)
            );
            let dir = args.chroot.clone().unwrap_or_else(|| work.join("sid"));
            Runner::Chroot(chroot::Chroot::prepare(&dir)?)
        }
    };
    let version = nix_version(&runner, Path::new("/"))?;
    if version < MIN_NIX {
        bail!("Nix {} is older than {}", show(version), show(MIN_NIX));
    }
    eprintln!("nix-offline: Nix {}", show(version));

    let staged = stage::prepare(workspace, &runner, &sources, &work)?;
    if let Runner::Chroot(chroot) = &runner {
        chroot.mount_paths(&staged.paths_to_share)?;
    }
    // The inputs are locked once to the local sources, into a lock file of our own that
    // every later command reads: given `--override-input` directly, Nix cannot write the
    // changed lock into the checkout and then treats the flake as dirty (no `self.rev`), so
    // every package embedded `dirty` instead of the commit `cargo xtask dist` embeds.
    let lock_file = work.join("flake.lock");
    let _ = std::fs::remove_file(&lock_file);
    process::run(
        runner
            .command(root, "nix")
            .args(["flake", "lock"])
            .args(overrides(&sources, &staged.nixpkgs))
            .arg("--output-lock-file")
            .arg(&lock_file),
    )
    .context("locking the flake inputs to the local sources")?;
    let overrides = locked_by(&lock_file);
    let steps = if args.steps.is_empty() {
        vec![Step::Build, Step::FlakeCheck, Step::Develop]
    } else {
        args.steps.clone()
    };

    let mut built = Vec::new();
    if steps.contains(&Step::Build) {
        for attr in build_attrs(workspace)? {
            let out = timed(&format!("nix build .#{attr}"), || {
                stdout_of(
                    runner
                        .command(root, "nix")
                        .args(["build", "--no-link", "--print-out-paths", "-L"])
                        .args(&overrides)
                        .arg(format!(".#{attr}")),
                )
            })?;
            built.push((attr, PathBuf::from(out)));
        }
        inspect::inspect(workspace, &runner, &built)?;
    }
    if steps.contains(&Step::FlakeCheck) {
        timed("nix flake check", || {
            process::run(
                runner
                    .command(root, "nix")
                    // Every failing check in one run, not only the first.
                    .args(["flake", "check", "-L", "--keep-going"])
                    .args(&overrides),
            )
        })?;
    }
    if steps.contains(&Step::Develop) {
        let shell_out = work.join("dist");
        let shell_args = dist_args(&shell_out);
        // The dev shell builds in a target directory of its own: its build scripts link
        // against the chroot's newer glibc, and cargo's fingerprints would let a later
        // host build reuse them ("GLIBC_2.39 not found").
        let shell_target = work.join("shell-target").display().to_string();
        timed(&format!("nix develop -c {}", shell_args.join(" ")), || {
            process::run(
                runner
                    .command_with(root, &[("CARGO_TARGET_DIR", &shell_target)], "nix")
                    .arg("develop")
                    .args(&overrides)
                    .arg("-c")
                    .args(&shell_args),
            )
        })?;
        // The same dist outside Nix, in a target directory of its own so that neither
        // build reuses the other's artifacts.
        let host_out = work.join("host-dist");
        let host_args = dist_args(&host_out);
        timed(
            &format!("{} (host, outside Nix)", host_args.join(" ")),
            || {
                // This xtask binary, so xtask is not rebuilt in the new target directory.
                let xtask = std::env::current_exe().context("locating the xtask binary")?;
                process::run(
                    Command::new(xtask)
                        .current_dir(root)
                        .args(&host_args[2..])
                        .env("CARGO_TARGET_DIR", work.join("host-target")),
                )
            },
        )?;
        let nix_binary = nix_built_server(workspace, &runner, &overrides)?;
        // Both, then one verdict: a difference in one must not hide the other's result.
        let shell = compare_with_dist(&nix_binary, &shell_out, "dev shell dist");
        let host = compare_with_dist(&nix_binary, &host_out, "host dist");
        shell.and(host)?;
    }
    eprintln!("nix-offline: all steps passed");
    Ok(())
}

/// The dist build compared with Nix's: only the baseline variant of the server, for this
/// machine's architecture (the other variants would double the run and are not compared;
/// dist would cross-build the baseline's other architectures, which needs zig and targets
/// the dev shell does not have).
fn dist_args(out: &Path) -> Vec<String> {
    vec![
        "cargo".to_owned(),
        "xtask".to_owned(),
        "dist".to_owned(),
        "--crate".to_owned(),
        SERVER.to_owned(),
        "--variant".to_owned(),
        VARIANTS[0].to_owned(),
        "--arch".to_owned(),
        std::env::consts::ARCH.to_owned(),
        "--out".to_owned(),
        out.display().to_string(),
    ]
}

/// `.#<python-module>-<variant>`, `.#<SERVER>-<variant>` and `.#<SERVER>-image`.
fn build_attrs(workspace: &Workspace) -> Result<Vec<String>> {
    for variant in VARIANTS {
        if !workspace.variants.iter().any(|v| v.name == variant) {
            bail!("Cargo.toml defines no variant `{variant}`, which nix-offline builds");
        }
    }
    if !workspace
        .crates
        .iter()
        .any(|c| c.name == SERVER && c.role == Role::Server)
    {
        bail!("the workspace has no server crate `{SERVER}`, which nix-offline builds");
    }
    // The server first: its baseline build is the one compared with `cargo xtask dist`.
    let mut attrs: Vec<String> = VARIANTS.iter().map(|v| format!("{SERVER}-{v}")).collect();
    attrs.push(format!("{SERVER}-image"));
    for spec in workspace
        .crates
        .iter()
        .filter(|c| c.role == Role::PythonModule)
    {
        attrs.extend(VARIANTS.iter().map(|v| format!("{}-{v}", spec.name)));
    }
    Ok(attrs)
}

/// The binary of the Nix-built baseline server (already built: this only looks it up).
fn nix_built_server(
    workspace: &Workspace,
    runner: &Runner,
    overrides: &[String],
) -> Result<PathBuf> {
    let attr = format!("{SERVER}-{}", VARIANTS[0]);
    let out = process::output(
        runner
            .command(&workspace.root, "nix")
            .args(["build", "--no-link", "--print-out-paths"])
            .args(overrides)
            .arg(format!(".#{attr}")),
    )?;
    Ok(runner_path(runner, Path::new(&out))
        .join("bin")
        .join(SERVER))
}

/// The Nix-built baseline server against the one a `cargo xtask dist` (`label`) wrote to
/// `dist_out`: the same source, toolchain, flags and profile must give the same bytes.
fn compare_with_dist(nix_binary: &Path, dist_out: &Path, label: &str) -> Result<()> {
    let baseline = VARIANTS[0];
    let manifest = dist::Manifest::load(dist_out)?;
    let artifact = manifest
        .artifacts
        .iter()
        .find(|a| a.crate_name == SERVER && a.variant == baseline)
        .with_context(|| format!("{}: no {SERVER} {baseline} artifact", dist_out.display()))?;
    let dist_binary = dist_out.join(&artifact.path);
    let (nix_sha, nix_size) = dist::hash_file(nix_binary)?;
    let (dist_sha, dist_size) = dist::hash_file(&dist_binary)?;
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    let difference = compare::compare(&read(nix_binary)?, &read(&dist_binary)?)?;
    eprintln!("nix-offline: {SERVER} {baseline}, nix build against {label}:");
    eprintln!(
        "  nix build:  {nix_sha}  {nix_size} bytes  {}",
        nix_binary.display()
    );
    eprintln!(
        "  {label}:  {dist_sha}  {dist_size} bytes  {}",
        dist_binary.display()
    );
    if difference.identical() {
        eprintln!("  IDENTICAL");
        return Ok(());
    }
    eprintln!("  DIFFERENT (nix build first, {label} second):");
    for line in difference.lines() {
        eprintln!("  {line}");
    }
    bail!(
        "nix build and {label} built different {SERVER} {baseline} binaries from one commit \
         (differences above); an artifact's bytes must depend on the crate, variant, target \
         and sources only (NIX.md, \"Two pipelines, one artifact\")"
    )
}

/// Runs `command` with its log on our stderr (builds are long) and returns its stdout.
fn stdout_of(command: &mut Command) -> Result<String> {
    let shown = process::display(command);
    let output = command
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!("`{shown}` failed ({})", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A store path as the host sees it (inside the chroot directory when there is one).
pub(crate) fn runner_path(runner: &Runner, path: &Path) -> PathBuf {
    match runner {
        Runner::Host => path.to_path_buf(),
        Runner::Chroot(chroot) => chroot.host_path(path),
    }
}

/// The flags that make a Nix command use the inputs locked in `lock_file` (written by
/// `nix flake lock --output-lock-file`): the lock file then needs no change, so the flake
/// keeps its `self.rev`.
fn locked_by(lock_file: &Path) -> Vec<String> {
    vec![
        "--reference-lock-file".to_owned(),
        lock_file.display().to_string(),
        // Nothing may be re-locked or fetched behind the lock file's back.
        "--no-update-lock-file".to_owned(),
    ]
}

/// `--override-input <input> path:<dir>` for every flake input given by a variable, and
/// nixpkgs by the staged substitute.
fn overrides(sources: &[(String, PathBuf)], nixpkgs: &Path) -> Vec<String> {
    let mut args = vec![
        "--override-input".to_owned(),
        "nixpkgs".to_owned(),
        format!("path:{}", nixpkgs.display()),
    ];
    for (var, dir) in sources {
        if let Some((_, Some(input))) = SOURCE_VARS.iter().find(|(v, _)| v == var) {
            args.extend([
                "--override-input".to_owned(),
                (*input).to_owned(),
                format!("path:{}", dir.display()),
            ]);
        }
    }
    args
}

fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("nix-offline: {what} ...");
    let start = Instant::now();
    let result = f().with_context(|| format!("{what} failed"));
    eprintln!(
        "nix-offline: {what}: {} in {:.0} s (shared machine: wall time, not a benchmark)",
        if result.is_ok() { "done" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    result
}

fn host_nix_version() -> Result<Option<(u32, u32, u32)>> {
    if !process::on_path("nix") {
        return Ok(None);
    }
    let text = process::output(Command::new("nix").arg("--version"))?;
    Ok(parse_nix_version(&text))
}

fn nix_version(runner: &Runner, root: &Path) -> Result<(u32, u32, u32)> {
    let text = process::output(runner.command(root, "nix").arg("--version"))?;
    parse_nix_version(&text).with_context(|| format!("cannot read a version in {text:?}"))
}

/// `nix (Nix) 2.34.8` -> (2, 34, 8).
pub fn parse_nix_version(text: &str) -> Option<(u32, u32, u32)> {
    let version = text.split_whitespace().last()?;
    let mut parts = version.split(['.', 'p', '-']).map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    Some((major, minor, patch))
}

fn show((major, minor, patch): (u32, u32, u32)) -> String {
    format!("{major}.{minor}.{patch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_versions() {
        assert_eq!(parse_nix_version("nix (Nix) 2.34.8"), Some((2, 34, 8)));
        assert_eq!(parse_nix_version("nix (Nix) 2.8.0"), Some((2, 8, 0)));
        assert_eq!(parse_nix_version("nix (Nix) 2.31"), Some((2, 31, 0)));
        assert_eq!(
            parse_nix_version("nix (Nix) 2.32pre20250101_abc"),
            Some((2, 32, 0))
        );
        assert_eq!(parse_nix_version("garbage"), None);
        assert!((2, 8, 0) < MIN_NIX && (2, 34, 8) >= MIN_NIX && (2, 31, 2) >= MIN_NIX);
    }

    #[test]
    fn the_dist_build_is_the_compared_one_only() {
        let args = dist_args(Path::new("/w/dist"));
        let joined = args.join(" ");
        assert!(joined.starts_with("cargo xtask dist "), "{joined}");
        assert!(joined.contains(&format!("--crate {SERVER}")), "{joined}");
        // Only the baseline variant, the one compare_with_dist reads.
        assert!(
            joined.contains(&format!("--variant {}", VARIANTS[0])),
            "{joined}"
        );
        assert_eq!(args.iter().filter(|a| *a == "--variant").count(), 1);
        // This machine's architecture only: no cross build (zig, foreign targets).
        assert!(
            joined.contains(&format!("--arch {}", std::env::consts::ARCH)),
            "{joined}"
        );
        assert!(joined.ends_with("--out /w/dist"), "{joined}");
    }

    /// The host dist in the Develop step needs what a dist of the server needs (musl C
    /// compiler, toolchain targets), not only the Nix tools.
    #[test]
    fn a_run_needs_the_servers_dist_and_the_nix_tools() {
        let workspace = Workspace::load().unwrap();
        let needs = needs(&workspace).unwrap();
        assert_eq!(needs.task, "nix-offline");
        for expected in [Use::NixOffline, Use::Dist, Use::DistMusl] {
            assert!(needs.uses.contains(&expected), "{expected:?}: {needs:?}");
        }
        // This machine's architecture only: no cross toolchain, no Python module.
        assert!(!needs.uses.contains(&Use::DistCross));
        assert!(!needs.uses.contains(&Use::DistPython));
    }

    #[test]
    fn builds_read_the_local_lock_file_and_override_nothing() {
        let args = locked_by(Path::new("/w/target/nix-offline/flake.lock"));
        assert_eq!(
            args,
            [
                "--reference-lock-file",
                "/w/target/nix-offline/flake.lock",
                "--no-update-lock-file"
            ]
        );
        // An override makes Nix drop self.rev: the packages would embed `dirty`.
        assert!(!args.iter().any(|a| a == "--override-input"));
    }

    #[test]
    fn overrides_cover_flake_inputs_only() {
        let sources = vec![
            ("CRANE_SRC".to_owned(), PathBuf::from("/in/crane")),
            ("NIXPKGS_LIB_SRC".to_owned(), PathBuf::from("/in/lib")),
        ];
        assert_eq!(
            overrides(&sources, Path::new("/stage/nixpkgs")),
            [
                "--override-input",
                "nixpkgs",
                "path:/stage/nixpkgs",
                "--override-input",
                "crane",
                "path:/in/crane"
            ]
        );
    }
}

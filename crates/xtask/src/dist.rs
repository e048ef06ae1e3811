//! `cargo xtask dist`: builds every shipped crate in every CPU variant and collects the
//! artifacts into `dist/<variant>/{bin,lib,python}` plus `dist/manifest.json`.
//!
//! Each crate × variant is built once with the `audit` profile (release code generation,
//! symbol table kept). The unstripped file goes to `dist/<variant>/unstripped/` for
//! `cargo xtask verify`'s per-function instruction audit; the shipped copy is stripped with
//! the toolchain's own `rust-objcopy --strip-all`. One build instead of a `release` build plus
//! an `audit` build halves the release-build time on small CI machines, and the audited
//! code is byte-for-byte the shipped code (only the symbol table differs).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ci::human;
use crate::metadata::{CrateSpec, Role, VariantSpec, Workspace};
use crate::process;

/// The cargo profile dist builds with (see the root Cargo.toml).
pub const PROFILE: &str = "audit";
/// The `target-cpu` of the portable variant.
pub const BASELINE_CPU: &str = "generic";
/// Where remapped source paths point, so no build machine path ends up in an artifact.
const REMAPPED_WORKSPACE: &str = "/mcp-foundry";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct DistArgs {
    /// Build only this CPU variant (repeatable; default: all variants).
    #[arg(long = "variant", value_name = "VARIANT")]
    pub variants: Vec<String>,
    /// Build only this shipped crate (repeatable; default: all servers and the Python module).
    #[arg(long = "crate", value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Output directory (default: `<workspace>/dist`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Facts about the source and toolchain every artifact of one dist run shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    pub git_commit: String,
    /// Uncommitted changes to tracked files were present.
    pub git_dirty: bool,
    /// Commit time of `git_commit`, used as `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: u64,
    /// `rustc -V`.
    pub rustc_version: String,
    /// sha256 of `Cargo.lock`.
    pub cargo_lock_sha256: String,
    /// Python interpreter pyo3 configures against (abi3, so only its presence matters).
    pub pyo3_python: String,
}

impl SourceInfo {
    /// Reads git, rustc and Cargo.lock facts for the workspace at `root`.
    pub fn collect(root: &Path) -> Result<SourceInfo> {
        let git = |args: &[&str]| process::output(Command::new("git").args(args).current_dir(root));
        let git_commit = git(&["rev-parse", "HEAD"]).context("dist needs a git checkout")?;
        let git_dirty = !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
        let epoch = git(&["log", "-1", "--format=%ct"])?;
        let source_date_epoch = epoch.parse().with_context(|| {
            format!("`git log -1 --format=%ct` printed {epoch:?}, not a number")
        })?;
        let rustc_version = process::output(Command::new("rustc").arg("-V").current_dir(root))?;
        let lock = fs::read(root.join("Cargo.lock")).with_context(|| {
            format!(
                "reading {}/Cargo.lock (dist builds with --locked; run `cargo generate-lockfile`)",
                root.display()
            )
        })?;
        let pyo3_python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        Ok(SourceInfo {
            git_commit,
            git_dirty,
            source_date_epoch,
            rustc_version,
            cargo_lock_sha256: sha256_hex(&lock),
            pyo3_python,
        })
    }
}

/// `dist/manifest.json`. Deterministic: no timestamps, sorted artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub git_commit: String,
    pub git_dirty: bool,
    pub source_date_epoch: u64,
    pub rustc_version: String,
    pub cargo_lock_sha256: String,
    pub profile: String,
    pub variants: Vec<ManifestVariant>,
    /// Sorted by `path`.
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestVariant {
    pub name: String,
    pub target_cpu: String,
    pub rustflags: Vec<String>,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A static server executable in `bin/`.
    ServerBinary,
    /// The Python module's cdylib in `lib/`.
    SharedLibrary,
    /// The same cdylib as `python/<module>/<module>.abi3.so`.
    PythonExtension,
    /// A `.py`/`.pyi`/marker file of the Python package.
    PythonSource,
}

impl ArtifactKind {
    /// Machine code the verify audit inspects.
    pub fn is_elf(self) -> bool {
        !matches!(self, ArtifactKind::PythonSource)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Relative to the dist directory, `/`-separated.
    pub path: String,
    pub kind: ArtifactKind,
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub crate_version: String,
    pub role: Role,
    pub variant: String,
    pub target: String,
    pub target_cpu: String,
    pub rustflags: Vec<String>,
    pub sha256: String,
    pub size: u64,
    /// The same artifact with its symbol table, for the audit (ELF artifacts only).
    pub unstripped_path: Option<String>,
    pub unstripped_sha256: Option<String>,
    pub rustc_version: String,
    pub git_commit: String,
    pub cargo_lock_sha256: String,
}

impl Manifest {
    pub const FILE_NAME: &'static str = "manifest.json";
    pub const SCHEMA_VERSION: u32 = 1;

    pub fn load(dist: &Path) -> Result<Manifest> {
        let path = dist.join(Self::FILE_NAME);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading {}; run `cargo xtask dist` first", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid dist manifest", path.display()))?;
        if manifest.schema_version != Self::SCHEMA_VERSION {
            bail!(
                "{} has schema version {} but this xtask reads version {}; rerun `cargo xtask dist`",
                path.display(),
                manifest.schema_version,
                Self::SCHEMA_VERSION
            );
        }
        Ok(manifest)
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serializes");
        text.push('\n');
        text
    }

    /// Crate names in the manifest, sorted, deduplicated.
    pub fn crate_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .artifacts
            .iter()
            .map(|a| a.crate_name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// One cargo invocation: every selected crate of one variant and target triple. Building
/// the servers together compiles their shared dependencies once and lets cargo run their
/// link-time optimizations in parallel.
#[derive(Debug, Clone)]
struct Job<'a> {
    specs: Vec<&'a CrateSpec>,
    variant: &'a VariantSpec,
    target: String,
}

impl Job<'_> {
    fn crate_names(&self) -> String {
        self.specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one `dist` run builds and where.
#[derive(Debug, Clone)]
pub struct DistRequest<'a> {
    pub workspace: &'a Workspace,
    pub variants: Vec<&'a VariantSpec>,
    pub crates: Vec<&'a CrateSpec>,
    pub out: PathBuf,
    /// Parent of the per-variant cargo target directories.
    pub target_base: PathBuf,
    pub source: SourceInfo,
}

/// `cargo xtask dist` with command-line arguments.
pub fn run(workspace: &Workspace, args: &DistArgs) -> Result<Manifest> {
    let request = DistRequest {
        workspace,
        variants: workspace.select_variants(&args.variants)?,
        crates: workspace.select_shipped_crates(&args.crates)?,
        out: args
            .out
            .clone()
            .unwrap_or_else(|| workspace.root.join("dist")),
        target_base: workspace.target_dir.join("dist"),
        source: SourceInfo::collect(&workspace.root)?,
    };
    build(&request)
}

/// Target triple of a crate's shipped artifact on `arch`.
pub fn target_triple(role: Role, arch: &str) -> String {
    match role {
        // Static binaries run in any container or distribution.
        Role::Server | Role::Launcher => format!("{arch}-unknown-linux-musl"),
        // Python loads extension modules with the system's C library.
        _ => format!("{arch}-unknown-linux-gnu"),
    }
}

/// The rustflags of one variant build: the variant's own flags plus path remapping.
/// Later `--remap-path-prefix` flags win in rustc, so the most specific prefix comes last.
pub fn rustflags(variant: &VariantSpec, remaps: &[(PathBuf, String)]) -> Vec<String> {
    let mut flags = variant.rustflags.clone();
    for (from, to) in remaps {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    flags
}

/// The builds for `arch`, variant by variant (each has its own target directory), one per
/// target triple. Variants not available on `arch` are skipped with a note.
fn plan<'a>(variants: &[&'a VariantSpec], crates: &[&'a CrateSpec], arch: &str) -> Vec<Job<'a>> {
    let mut jobs = Vec::new();
    for &variant in variants {
        if !variant.architectures.iter().any(|a| a == arch) {
            eprintln!(
                "note: variant `{}` is not available on {arch} (architectures: {}); skipped",
                variant.name,
                variant.architectures.join(", ")
            );
            continue;
        }
        for &spec in crates {
            // The launcher picks the best variant on the user's CPU, so it must run on any
            // CPU: it is built in the baseline variant only.
            if spec.role == Role::Launcher && variant.target_cpu != BASELINE_CPU {
                continue;
            }
            let target = target_triple(spec.role, arch);
            match jobs
                .iter_mut()
                .find(|job: &&mut Job<'a>| job.variant.name == variant.name && job.target == target)
            {
                Some(job) => job.specs.push(spec),
                None => jobs.push(Job {
                    specs: vec![spec],
                    variant,
                    target,
                }),
            }
        }
    }
    jobs
}

/// Builds the request, then swaps the results into `request.out` in one step.
pub fn build(request: &DistRequest<'_>) -> Result<Manifest> {
    let arch = std::env::consts::ARCH;
    let jobs = plan(&request.variants, &request.crates, arch);
    if jobs.is_empty() {
        bail!(
            "nothing to build: no selected variant supports this machine's architecture ({arch})"
        );
    }
    for spec in &request.crates {
        check_buildable(spec)?;
    }

    let toolchain = Toolchain::detect(&request.workspace.root)?;
    fs::create_dir_all(&request.out)
        .with_context(|| format!("creating {}", request.out.display()))?;
    // Everything is assembled here and moved into place only when all builds succeeded, so
    // a failed run never leaves a complete-looking partial `dist/`.
    let staging = request.out.join(".staging");
    remove_if_exists(&staging)?;
    let result = build_into(request, &jobs, &toolchain, &staging);
    let artifacts = match result {
        Ok(artifacts) => artifacts,
        Err(error) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(error);
        }
    };

    let manifest = Manifest {
        schema_version: Manifest::SCHEMA_VERSION,
        git_commit: request.source.git_commit.clone(),
        git_dirty: request.source.git_dirty,
        source_date_epoch: request.source.source_date_epoch,
        rustc_version: request.source.rustc_version.clone(),
        cargo_lock_sha256: request.source.cargo_lock_sha256.clone(),
        profile: format!(
            "{PROFILE} (release code generation), shipped copies stripped with rust-objcopy --strip-all"
        ),
        variants: request
            .variants
            .iter()
            .filter(|v| jobs.iter().any(|job| job.variant.name == v.name))
            .map(|v| ManifestVariant {
                name: v.name.clone(),
                target_cpu: v.target_cpu.clone(),
                rustflags: v.rustflags.clone(),
                description: v.description.clone(),
            })
            .collect(),
        artifacts: {
            let mut sorted: Vec<Artifact> =
                artifacts.into_iter().map(|built| built.artifact).collect();
            sorted.sort_by(|a, b| a.path.cmp(&b.path));
            sorted
        },
    };
    publish(request, &staging, &manifest)?;
    Ok(manifest)
}

/// Fails early, before any long build, when a crate cannot be built as its role requires.
fn check_buildable(spec: &CrateSpec) -> Result<()> {
    match spec.role {
        Role::Server | Role::Launcher if spec.bin_targets.is_empty() => bail!(
            "crate `{}` has role {} but no binary target; add src/main.rs",
            spec.name,
            spec.role
        ),
        Role::PythonModule => {
            let feature = spec.python_feature.as_deref().unwrap_or_default();
            if !spec.features.iter().any(|f| f == feature) {
                bail!(
                    "crate `{}` declares python-feature = {feature:?} but has no such feature in \
                     its [features]; add it (it enables the pyo3 bindings)",
                    spec.name
                );
            }
            if spec.lib_target.is_none() {
                bail!(
                    "crate `{}` has role python-module but no library target",
                    spec.name
                );
            }
            let package = python_package_dir(spec);
            if !package.join("__init__.py").is_file() {
                bail!(
                    "the Python package sources of `{}` are missing: expected {}/__init__.py \
                     (copied next to the extension module into dist/<variant>/python/)",
                    spec.name,
                    package.display()
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn python_package_dir(spec: &CrateSpec) -> PathBuf {
    spec.dir()
        .join("python")
        .join(spec.python_module.as_deref().unwrap_or_default())
}

#[derive(Debug)]
struct Toolchain {
    objcopy: PathBuf,
    cargo_home: PathBuf,
    rustup_home: PathBuf,
}

impl Toolchain {
    fn detect(root: &Path) -> Result<Toolchain> {
        let sysroot = process::output(
            Command::new("rustc")
                .args(["--print", "sysroot"])
                .current_dir(root),
        )?;
        let verbose = process::output(Command::new("rustc").arg("-vV").current_dir(root))?;
        let host = verbose
            .lines()
            .find_map(|line| line.strip_prefix("host: "))
            .context("`rustc -vV` printed no host line")?;
        let objcopy = Path::new(&sysroot).join(format!("lib/rustlib/{host}/bin/rust-objcopy"));
        if !objcopy.is_file() {
            bail!(
                "{} is missing; it ships with the Rust toolchain (reinstall the toolchain from \
                 rust-toolchain.toml)",
                objcopy.display()
            );
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cargo"));
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".rustup"));
        Ok(Toolchain {
            objcopy,
            cargo_home,
            rustup_home,
        })
    }
}

struct Built {
    artifact: Artifact,
    elapsed: Duration,
}

fn build_into(
    request: &DistRequest<'_>,
    jobs: &[Job<'_>],
    toolchain: &Toolchain,
    staging: &Path,
) -> Result<Vec<Built>> {
    let progress = ProgressBar::new(jobs.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:24} {pos}/{len} {msg}")
            .expect("static progress template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let mut built = Vec::new();
    for job in jobs {
        let label = format!("{} ({})", job.crate_names(), job.variant.name);
        progress.suspend(|| eprintln!("==> building {label} for {}", job.target));
        progress.set_message(label.clone());
        let started = Instant::now();
        let outputs = match cargo_build(request, job, toolchain, &progress) {
            Ok(outputs) => outputs,
            Err(error) => {
                progress.abandon_with_message(format!("{label} failed"));
                return Err(error);
            }
        };
        let elapsed = started.elapsed();
        let mut artifacts = Vec::new();
        for spec in &job.specs {
            let outputs = outputs
                .get(&spec.manifest_path)
                .cloned()
                .unwrap_or_default();
            artifacts.extend(collect(request, job, spec, toolchain, staging, &outputs)?);
        }
        for artifact in &mut artifacts {
            artifact.elapsed = elapsed;
        }
        progress.suspend(|| eprintln!("    built {label} in {}", human(elapsed)));
        built.extend(artifacts);
        progress.inc(1);
    }
    progress.finish_with_message("all builds done");
    print_summary(&built);
    Ok(built)
}

/// Files cargo produced for one crate.
#[derive(Debug, Default, Clone)]
struct CargoOutputs {
    executables: Vec<(String, PathBuf)>,
    cdylib: Option<PathBuf>,
}

fn cargo_build(
    request: &DistRequest<'_>,
    job: &Job<'_>,
    toolchain: &Toolchain,
    progress: &ProgressBar,
) -> Result<BTreeMap<PathBuf, CargoOutputs>> {
    let root = &request.workspace.root;
    let target_dir = request.target_base.join(&job.variant.name);
    let log_dir = target_dir.join("logs");
    fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let log_path = log_dir.join(format!("{}.log", job.target));
    let log =
        fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;

    let remaps = vec![
        (toolchain.rustup_home.clone(), "/rustup".to_owned()),
        (toolchain.cargo_home.clone(), "/cargo".to_owned()),
        (root.clone(), REMAPPED_WORKSPACE.to_owned()),
        (target_dir.clone(), format!("{REMAPPED_WORKSPACE}/target")),
    ];
    let flags = rustflags(job.variant, &remaps);

    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command
        .current_dir(root)
        .args([
            "build",
            "--locked",
            "--profile",
            PROFILE,
            "--target",
            &job.target,
        ])
        .args(["--message-format", "json-render-diagnostics"]);
    for spec in &job.specs {
        command.args(["--package", &spec.name]);
    }
    if job.specs.iter().all(|spec| spec.role == Role::PythonModule) {
        let features: Vec<String> = job
            .specs
            .iter()
            .map(|spec| {
                format!(
                    "{}/{}",
                    spec.name,
                    spec.python_feature.as_deref().unwrap_or_default()
                )
            })
            .collect();
        command.args(["--lib", "--features", &features.join(",")]);
        // pyo3 >= 0.26 links libpython (NEEDED + RPATH into this interpreter) unless told
        // that this is an extension module: the abi3 module must load in any CPython.
        command.env("PYO3_BUILD_EXTENSION_MODULE", "1");
    } else {
        command.arg("--bins");
    }
    command
        .env("CARGO_TARGET_DIR", &target_dir)
        // With `--target`, these flags reach only the artifacts, never build scripts or
        // proc-macros (which run here and must not contain e.g. AVX-512; cargo#4423).
        .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
        .env_remove("RUSTFLAGS")
        .env("MCP_FOUNDRY_VARIANT", &job.variant.name)
        .env("MCP_FOUNDRY_GIT_COMMIT", &request.source.git_commit)
        .env(
            "SOURCE_DATE_EPOCH",
            request.source.source_date_epoch.to_string(),
        )
        .env("PYO3_PYTHON", &request.source.pyo3_python)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    let shown = process::display(&command);
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;

    let mut outputs: BTreeMap<PathBuf, CargoOutputs> = BTreeMap::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's JSON messages")?;
        let Ok(message) = serde_json::from_str::<CargoMessage>(&line) else {
            continue;
        };
        if message.reason != "compiler-artifact" {
            continue;
        }
        if let Some(target) = &message.target {
            progress.set_message(format!(
                "{} ({}): {}",
                job.crate_names(),
                job.variant.name,
                target.name
            ));
        }
        let Some(manifest_path) = message.manifest_path.map(PathBuf::from) else {
            continue;
        };
        if !job
            .specs
            .iter()
            .any(|spec| spec.manifest_path == manifest_path)
        {
            continue;
        }
        let Some(target) = message.target else {
            continue;
        };
        let outputs = outputs.entry(manifest_path).or_default();
        if target.kind.iter().any(|k| k == "bin") {
            if let Some(executable) = message.executable {
                outputs.executables.push((target.name, executable));
            }
        } else if target.kind.iter().any(|k| k == "cdylib") {
            outputs.cdylib = message
                .filenames
                .into_iter()
                .find(|f| f.extension().is_some_and(|e| e == "so"));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        let log_text = fs::read_to_string(&log_path).unwrap_or_default();
        // Crates whose final artifacts cargo never reported are the ones that failed.
        let failed: Vec<&str> = job
            .specs
            .iter()
            .filter(|spec| {
                !outputs
                    .get(&spec.manifest_path)
                    .is_some_and(|o| o.is_complete(spec))
            })
            .map(|spec| spec.name.as_str())
            .collect();
        bail!(
            "building `{}` for variant `{}` ({}) failed ({status}).\ncommand: {shown}\n\
             cargo's output (full log: {}):\n{}",
            failed.join("`, `"),
            job.variant.name,
            job.target,
            log_path.display(),
            tail_without_progress(&log_text, 120)
        );
    }
    Ok(outputs)
}

impl CargoOutputs {
    fn is_complete(&self, spec: &CrateSpec) -> bool {
        match spec.role {
            Role::PythonModule => self.cdylib.is_some(),
            _ => spec
                .bin_targets
                .iter()
                .all(|bin| self.executables.iter().any(|(name, _)| name == bin)),
        }
    }
}

#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    manifest_path: Option<String>,
    target: Option<CargoTarget>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct CargoTarget {
    name: String,
    kind: Vec<String>,
}

/// The last `max_lines` lines of cargo's stderr without its `Compiling x` progress lines.
fn tail_without_progress(log: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| {
            let trimmed = line.trim_start();
            ![
                "Compiling ",
                "Downloaded ",
                "Downloading ",
                "Fresh ",
                "Blocking waiting",
                "Updating ",
            ]
            .iter()
            .any(|prefix| trimmed.starts_with(prefix))
        })
        .collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

/// Copies one job's outputs into `staging/<variant>/`: stripped into `bin/`/`lib/`/`python/`,
/// unstripped into `unstripped/`.
fn collect(
    request: &DistRequest<'_>,
    job: &Job<'_>,
    spec: &CrateSpec,
    toolchain: &Toolchain,
    staging: &Path,
    outputs: &CargoOutputs,
) -> Result<Vec<Built>> {
    let variant_dir = staging.join(&job.variant.name);
    let mut placed: Vec<(ArtifactKind, String, Option<String>)> = Vec::new();
    let relative = |path: &Path| -> String {
        path.strip_prefix(staging)
            .expect("artifacts are placed inside the staging directory")
            .to_string_lossy()
            .into_owned()
    };
    match spec.role {
        Role::Server | Role::Launcher => {
            for bin in &spec.bin_targets {
                let Some((_, built)) = outputs.executables.iter().find(|(name, _)| name == bin)
                else {
                    bail!(
                        "cargo reported no executable for binary `{bin}` of `{}` ({}); see the log in {}",
                        spec.name,
                        job.variant.name,
                        request
                            .target_base
                            .join(&job.variant.name)
                            .join("logs")
                            .display()
                    );
                };
                let unstripped = variant_dir.join("unstripped/bin").join(bin);
                copy_file(built, &unstripped)?;
                let shipped = variant_dir.join("bin").join(bin);
                strip(toolchain, &unstripped, &shipped)?;
                placed.push((
                    ArtifactKind::ServerBinary,
                    relative(&shipped),
                    Some(relative(&unstripped)),
                ));
            }
        }
        _ => {
            let Some(built) = &outputs.cdylib else {
                bail!(
                    "cargo reported no cdylib for `{}` ({}); its [lib] needs crate-type = [\"cdylib\", ...]",
                    spec.name,
                    job.variant.name
                );
            };
            let lib_name = spec.lib_target.as_deref().unwrap_or_default();
            let module = spec.python_module.as_deref().unwrap_or_default();
            let unstripped = variant_dir.join(format!("unstripped/lib/lib{lib_name}.so"));
            copy_file(built, &unstripped)?;
            let shipped = variant_dir.join(format!("lib/lib{lib_name}.so"));
            strip(toolchain, &unstripped, &shipped)?;
            placed.push((
                ArtifactKind::SharedLibrary,
                relative(&shipped),
                Some(relative(&unstripped)),
            ));

            let package = variant_dir.join("python").join(module);
            for source in python_sources(&python_package_dir(spec))? {
                let destination =
                    package.join(source.file_name().expect("listed files have names"));
                copy_file(&source, &destination)?;
                placed.push((ArtifactKind::PythonSource, relative(&destination), None));
            }
            let extension = package.join(format!("{module}.abi3.so"));
            copy_file(&shipped, &extension)?;
            placed.push((
                ArtifactKind::PythonExtension,
                relative(&extension),
                Some(relative(&unstripped)),
            ));
        }
    }

    let mut artifacts = Vec::new();
    for (kind, path, unstripped_path) in placed {
        let (sha256, size) = hash_file(&staging.join(&path))?;
        let unstripped_sha256 = match &unstripped_path {
            Some(path) => Some(hash_file(&staging.join(path))?.0),
            None => None,
        };
        artifacts.push(Built {
            artifact: Artifact {
                path,
                kind,
                crate_name: spec.name.clone(),
                crate_version: spec.version.clone(),
                role: spec.role,
                variant: job.variant.name.clone(),
                target: job.target.clone(),
                target_cpu: job.variant.target_cpu.clone(),
                rustflags: job.variant.rustflags.clone(),
                sha256,
                size,
                unstripped_path,
                unstripped_sha256,
                rustc_version: request.source.rustc_version.clone(),
                git_commit: request.source.git_commit.clone(),
                cargo_lock_sha256: request.source.cargo_lock_sha256.clone(),
            },
            elapsed: Duration::ZERO,
        });
    }
    Ok(artifacts)
}

/// Files of the Python package directory (not recursive: the package is flat), sorted,
/// without byte-code caches.
fn python_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_none_or(|e| e != "pyc" && e != "so") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn strip(toolchain: &Toolchain, input: &Path, output: &Path) -> Result<()> {
    if let Some(parent) = output.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    process::output(
        Command::new(&toolchain.objcopy)
            .arg("--strip-all")
            .arg(input)
            .arg(output),
    )
    .map(drop)
}

fn copy_file(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Replaces the variant directories of `out` with the staged ones and writes the manifest
/// last: a `dist/` with a manifest is always complete and consistent.
fn publish(request: &DistRequest<'_>, staging: &Path, manifest: &Manifest) -> Result<()> {
    let out = &request.out;
    for stale in [Manifest::FILE_NAME, "report.json", "report.md"] {
        let path = out.join(stale);
        if path.exists() {
            fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
        }
    }
    // Every variant directory goes, not only the rebuilt ones: what remains must match
    // the new manifest.
    for variant in &request.workspace.variants {
        remove_if_exists(&out.join(&variant.name))?;
    }
    for variant in &manifest.variants {
        let from = staging.join(&variant.name);
        let to = out.join(&variant.name);
        fs::rename(&from, &to)
            .with_context(|| format!("moving {} to {}", from.display(), to.display()))?;
    }
    remove_if_exists(staging)?;
    let path = out.join(Manifest::FILE_NAME);
    let temporary = out.join(".manifest.json.tmp");
    fs::write(&temporary, manifest.to_json())
        .with_context(|| format!("writing {}", temporary.display()))?;
    fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn print_summary(built: &[Built]) {
    eprintln!();
    eprintln!(
        "{:<8} {:<16} {:<44} {:>10} {:<14} {:>9}",
        "variant", "crate", "artifact", "size", "sha256", "build"
    );
    for item in built.iter().filter(|b| b.artifact.kind.is_elf()) {
        let artifact = &item.artifact;
        eprintln!(
            "{:<8} {:<16} {:<44} {:>10} {:<14} {:>9}",
            artifact.variant,
            artifact.crate_name,
            artifact.path,
            human_size(artifact.size),
            &artifact.sha256[..12],
            human(item.elapsed)
        );
    }
}

/// `12.3 MiB` / `845.0 KiB` / `17 B`.
pub fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if value >= KIB * KIB {
        format!("{:.1} MiB", value / KIB / KIB)
    } else if value >= KIB {
        format!("{:.1} KiB", value / KIB)
    } else {
        format!("{bytes} B")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// sha256 and size of a file.
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok((sha256_hex(&bytes), bytes.len() as u64))
}

/// Manifest artifacts indexed by path, for comparisons.
pub fn by_path(manifest: &Manifest) -> BTreeMap<&str, &Artifact> {
    manifest
        .artifacts
        .iter()
        .map(|a| (a.path.as_str(), a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant() -> VariantSpec {
        VariantSpec {
            name: "znver4".into(),
            description: "Zen 4".into(),
            target_cpu: "znver4".into(),
            rustflags: vec!["-C".into(), "target-cpu=znver4".into()],
            architectures: vec!["x86_64".into()],
        }
    }

    fn crate_spec(name: &str, role: Role) -> CrateSpec {
        CrateSpec {
            name: name.into(),
            version: "0.1.0".into(),
            description: String::new(),
            role,
            manifest_path: PathBuf::from(format!("/ws/crates/{name}/Cargo.toml")),
            python_module: None,
            python_feature: None,
            bin_targets: vec![name.into()],
            lib_target: None,
            features: vec![],
            ci_dist: false,
        }
    }

    #[test]
    fn plan_builds_the_launcher_for_the_baseline_only_and_skips_foreign_variants() {
        let generic = VariantSpec {
            name: "generic".into(),
            target_cpu: "generic".into(),
            rustflags: vec![],
            architectures: vec!["x86_64".into(), "aarch64".into()],
            ..variant()
        };
        let znver4 = variant();
        let server = crate_spec("bash-god", Role::Server);
        let launcher = crate_spec("mcp-launcher", Role::Launcher);
        let core = CrateSpec {
            lib_target: Some("mcp_rust_core".into()),
            ..crate_spec("mcp-rust-core", Role::PythonModule)
        };
        let jobs = plan(&[&generic, &znver4], &[&server, &launcher, &core], "x86_64");
        let names: Vec<_> = jobs
            .iter()
            .map(|job| format!("{}/{}/{}", job.variant.name, job.crate_names(), job.target))
            .collect();
        assert_eq!(
            names,
            [
                "generic/bash-god, mcp-launcher/x86_64-unknown-linux-musl",
                "generic/mcp-rust-core/x86_64-unknown-linux-gnu",
                "znver4/bash-god/x86_64-unknown-linux-musl",
                "znver4/mcp-rust-core/x86_64-unknown-linux-gnu",
            ]
        );
        let on_arm = plan(&[&generic, &znver4], &[&server], "aarch64");
        assert_eq!(on_arm.len(), 1);
        assert_eq!(on_arm[0].target, "aarch64-unknown-linux-musl");
    }

    #[test]
    fn servers_are_musl_and_the_python_module_is_gnu() {
        assert_eq!(
            target_triple(Role::Server, "x86_64"),
            "x86_64-unknown-linux-musl"
        );
        assert_eq!(
            target_triple(Role::PythonModule, "x86_64"),
            "x86_64-unknown-linux-gnu"
        );
    }

    #[test]
    fn rustflags_keep_variant_flags_and_remap_most_specific_last() {
        let flags = rustflags(
            &variant(),
            &[
                (PathBuf::from("/work/main"), "/mcp-foundry".into()),
                (
                    PathBuf::from("/work/main/target/dist/znver4"),
                    "/mcp-foundry/target".into(),
                ),
            ],
        );
        assert_eq!(
            flags,
            [
                "-C",
                "target-cpu=znver4",
                "--remap-path-prefix=/work/main=/mcp-foundry",
                "--remap-path-prefix=/work/main/target/dist/znver4=/mcp-foundry/target",
            ]
        );
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn artifact(path: &str) -> Artifact {
        Artifact {
            path: path.into(),
            kind: ArtifactKind::ServerBinary,
            crate_name: "bash-god".into(),
            crate_version: "0.1.0".into(),
            role: Role::Server,
            variant: "generic".into(),
            target: "x86_64-unknown-linux-musl".into(),
            target_cpu: "generic".into(),
            rustflags: vec![],
            sha256: "00".repeat(32),
            size: 42,
            unstripped_path: Some(format!("generic/unstripped/{path}")),
            unstripped_sha256: Some("11".repeat(32)),
            rustc_version: "rustc 1.95.0".into(),
            git_commit: "abc".into(),
            cargo_lock_sha256: "22".repeat(32),
        }
    }

    #[test]
    fn manifest_round_trips_and_names_fields_as_documented() {
        let manifest = Manifest {
            schema_version: Manifest::SCHEMA_VERSION,
            git_commit: "abc".into(),
            git_dirty: false,
            source_date_epoch: 1_700_000_000,
            rustc_version: "rustc 1.95.0".into(),
            cargo_lock_sha256: "22".repeat(32),
            profile: PROFILE.into(),
            variants: vec![],
            artifacts: vec![artifact("generic/bin/bash-god")],
        };
        let json = manifest.to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let first = &value["artifacts"][0];
        assert_eq!(first["crate"], "bash-god");
        assert_eq!(first["kind"], "server-binary");
        assert_eq!(first["role"], "server");
        assert_eq!(first["size"], 42);
        let back: Manifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.crate_names(), ["bash-god"]);
        // No wall-clock time in the manifest: two identical builds give identical manifests.
        assert!(!json.contains("time"), "{json}");
    }

    #[test]
    fn manifest_load_rejects_other_schema_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = Manifest {
            schema_version: 99,
            git_commit: "abc".into(),
            git_dirty: false,
            source_date_epoch: 0,
            rustc_version: String::new(),
            cargo_lock_sha256: String::new(),
            profile: PROFILE.into(),
            variants: vec![],
            artifacts: vec![],
        };
        fs::write(dir.path().join(Manifest::FILE_NAME), manifest.to_json()).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
        manifest.schema_version = Manifest::SCHEMA_VERSION;
        fs::write(dir.path().join(Manifest::FILE_NAME), manifest.to_json()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), manifest);
        let missing = Manifest::load(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cargo xtask dist"), "{missing}");
    }

    #[test]
    fn failure_output_drops_progress_lines() {
        let log = "   Compiling foo v1\nerror[E0308]: mismatched types\n  --> src/lib.rs:1:1\n   Compiling bar v2\nerror: aborting";
        assert_eq!(
            tail_without_progress(log, 2),
            "  --> src/lib.rs:1:1\nerror: aborting"
        );
    }
}

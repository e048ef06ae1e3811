//! `cargo xtask dist`: builds every shipped crate in every CPU variant and collects the
//! artifacts into `dist/<variant>/{bin,lib,python}` plus `dist/manifest.json`.
//!
//! Each crate × variant is built once, with its role's dist profile (release code generation,
//! symbol table kept; see [`profile_for`]). The unstripped file goes to
//! `dist/<variant>/unstripped/` for `cargo xtask verify`'s per-function instruction audit;
//! the shipped copy is stripped with the toolchain's own `rust-objcopy --strip-all`. One build
//! instead of a `release` build plus an `audit` build halves the release-build time, and the
//! audited code is byte-for-byte the shipped code (only the symbol table differs).
//!
//! Work is shared where it is the same work: one cargo invocation per variant × target
//! triple × profile builds all its crates together (shared dependencies compile once, in the
//! variant's own target directory). Two invocations of different variants run at once
//! ([`schedule`]), so one's serial fat-LTO link does not leave the other cores idle.
//!
//! - [`cargo`]: the `cargo build` command of a job and what its messages say it built;
//! - [`collect`]: from cargo's outputs to the staged `dist/` and its atomic publication;
//! - [`isolation`]: whether a crate's dependencies resolve the same alone and with others;
//! - [`job`]: one job's cargo build, then its stripped and staged artifacts;
//! - [`manifest`]: `manifest.json` and the source facts it records;
//! - [`out_dir`]: what in the output directory belongs to a run (all of it is replaced), and
//!   the refusal of a directory that is not a dist directory;
//! - [`planning`]: the architectures and jobs of a run, and where their artifacts go;
//! - [`schedule`]: which jobs run at once, sharing one jobserver;
//! - [`sources`]: a copy of the sources in another directory (rebuilds, benchmarks).

mod cargo;
pub(crate) mod collect;
pub mod isolation;
mod job;
pub mod manifest;
pub mod out_dir;
mod planning;
mod schedule;
pub mod sources;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use cargo::Toolchain;
pub use cargo::{COMPILE_SOURCE_DATE_EPOCH, rustflags};
use collect::Built;
pub use manifest::{
    Artifact, ArtifactKind, Manifest, ManifestVariant, Selection, SourceInfo, by_path, hash_file,
    human_size, sha256_hex,
};
use planning::plan;
pub use planning::{architectures, artifact_dir};

use crate::metadata::{CrateSpec, Role, VariantSpec, Workspace};
use crate::prereq;
use crate::provenance;
use crate::timing::{Steps, human};

/// The cargo profile of the Python module's dist builds (see the root Cargo.toml).
pub const PYTHON_MODULE_PROFILE: &str = "audit";
/// The cargo profile of the servers' and the launcher's dist builds.
pub const SERVER_PROFILE: &str = "audit";
/// The `target-cpu` of the portable variant.
pub const BASELINE_CPU: &str = "generic";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct DistArgs {
    /// Build only this CPU variant (repeatable; default: all variants).
    #[arg(long = "variant", value_name = "VARIANT")]
    pub variants: Vec<String>,
    /// Build only this shipped crate (repeatable; default: all servers, the launcher and
    /// the Python module).
    #[arg(long = "crate", value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Output directory (default: `<workspace>/dist`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Build only for this architecture (repeatable; default: every architecture a selected
    /// variant declares; other architectures than this machine's are cross-built, see
    /// `crate::cross`).
    #[arg(long = "arch", value_name = "ARCH")]
    pub architectures: Vec<String>,
    /// Build each variant only for the crates its `ci-crates` lists in the root Cargo.toml
    /// (all when it lists none), as `cargo xtask ci` does.
    #[arg(long)]
    pub ci_matrix: bool,
}

/// What one `dist` run builds and where.
#[derive(Debug, Clone)]
pub struct DistRequest<'a> {
    pub workspace: &'a Workspace,
    pub variants: Vec<&'a VariantSpec>,
    pub crates: Vec<&'a CrateSpec>,
    /// Architectures to build for (`x86_64`, `aarch64`), this machine's first; see
    /// [`architectures`].
    pub architectures: Vec<String>,
    pub out: PathBuf,
    /// The cargo target directory of dist builds, shared by every variant.
    pub target_base: PathBuf,
    pub source: SourceInfo,
}

/// How to build, beyond what to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Passed to cargo as `--config VALUE` (profile experiments of `cargo xtask bench`).
    pub cargo_config: Vec<String>,
    /// Build each variant only for its `ci-crates` ([`DistArgs::ci_matrix`]).
    pub ci_matrix: bool,
}

/// `cargo xtask dist` with command-line arguments.
pub fn run(workspace: &Workspace, args: &DistArgs) -> Result<Manifest> {
    let mut steps = Steps::new();
    let result = run_steps(workspace, args, &mut steps);
    eprintln!("\n{}", steps.table("dist steps:"));
    result
}

fn run_steps(workspace: &Workspace, args: &DistArgs, steps: &mut Steps) -> Result<Manifest> {
    let variants = workspace.select_variants(&args.variants)?;
    let crates = workspace.select_shipped_crates(&args.crates)?;
    let architectures = architectures(&variants, &args.architectures)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace.root.join("dist"));
    // Before the prerequisites: a directory dist may not replace stops the run at once.
    out_dir::previous_run(&out, &variant_names(workspace))?;
    let mut needs = prereq::Needs::dist(&crates);
    needs.add_architectures(&architectures);
    steps.time("prerequisites", || prereq::ensure(&workspace.root, &needs))?;
    let request = DistRequest {
        workspace,
        variants,
        crates,
        architectures,
        out,
        target_base: workspace.target_dir.join("dist"),
        source: SourceInfo::collect(&workspace.root)?,
    };
    let options = BuildOptions {
        ci_matrix: args.ci_matrix,
        ..BuildOptions::default()
    };
    build_with(&request, &options, steps)
}

/// Builds the request, then swaps the results into `request.out` in one step.
pub fn build(request: &DistRequest<'_>) -> Result<Manifest> {
    let mut steps = Steps::new();
    let result = build_with(request, &BuildOptions::default(), &mut steps);
    eprintln!("\n{}", steps.table("dist steps:"));
    result
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

/// The cargo profile a crate's dist build uses, by role.
pub fn profile_for(role: Role) -> &'static str {
    match role {
        Role::PythonModule => PYTHON_MODULE_PROFILE,
        _ => SERVER_PROFILE,
    }
}

/// One cargo invocation: every selected crate of one variant, target triple and profile.
/// Building the servers together compiles their shared dependencies once and lets cargo
/// run their code generation in parallel.
#[derive(Debug, Clone)]
pub(crate) struct Job<'a> {
    pub specs: Vec<&'a CrateSpec>,
    pub variant: &'a VariantSpec,
    pub target: String,
    pub profile: &'static str,
    /// Extra environment of the cargo invocation (the target's linker; a foreign target's C
    /// toolchain).
    pub env: Vec<(String, String)>,
    /// Rustflags after the variant's (the glibc floor's linker, see `crate::cross`).
    pub rustflags: Vec<String>,
}

impl Job<'_> {
    fn crate_names(&self) -> String {
        self.specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn label(&self) -> String {
        format!(
            "{} × {} ({}, {})",
            self.variant.name,
            self.crate_names(),
            self.target,
            self.profile
        )
    }
}

/// Each job's C compiler and linker for its target ([`crate::cross::toolchain_for`]).
fn set_target_toolchains(jobs: &mut [Job]) -> Result<()> {
    for job in jobs {
        let toolchain = crate::cross::toolchain_for(&job.target)?;
        job.env = toolchain.env;
        job.rustflags = toolchain.rustflags;
    }
    Ok(())
}

/// [`build`] with options, recording each step's wall time in `steps`.
pub fn build_with(
    request: &DistRequest<'_>,
    options: &BuildOptions,
    steps: &mut Steps,
) -> Result<Manifest> {
    let mut jobs = plan(&request.variants, &request.crates, &request.architectures);
    if options.ci_matrix {
        planning::keep_ci_crates(&mut jobs);
    }
    if jobs.is_empty() {
        bail!(
            "nothing to build: no selected variant supports the architectures {}",
            request.architectures.join(", ")
        );
    }
    let all_variants = variant_names(request.workspace);
    out_dir::previous_run(&request.out, &all_variants)?;
    set_target_toolchains(&mut jobs)?;
    for spec in &request.crates {
        check_buildable(spec)?;
    }
    let selection = planning::selection(request, options.ci_matrix)?;

    let toolchain = Toolchain::detect(&request.workspace.root)?;
    std::fs::create_dir_all(&request.out)
        .with_context(|| format!("creating {}", request.out.display()))?;
    // Everything is assembled here and moved into place only when all builds succeeded, so
    // a failed run never leaves a complete-looking partial `dist/`.
    let staging = request.out.join(out_dir::STAGING_DIR);
    collect::remove_if_exists(&staging)?;
    let built = match build_jobs(request, options, &jobs, &toolchain, steps) {
        Ok(built) => built,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    print_summary(&built);

    let profiles: Vec<&str> = {
        let mut names: Vec<&str> = jobs.iter().map(|job| job.profile).collect();
        names.sort();
        names.dedup();
        names
    };
    let mut profile = format!(
        "{} (release code generation, symbols kept), shipped copies stripped with \
         rust-objcopy --strip-all",
        profiles.join(", ")
    );
    if !options.cargo_config.is_empty() {
        profile.push_str(&format!("; overrides: {}", options.cargo_config.join(" ")));
    }
    let manifest = Manifest {
        schema_version: Manifest::SCHEMA_VERSION,
        git_commit: request.source.git_commit.clone(),
        git_dirty: request.source.git_dirty,
        source_date_epoch: request.source.source_date_epoch,
        rustc_version: request.source.rustc_version.clone(),
        cargo_lock_sha256: request.source.cargo_lock_sha256.clone(),
        profile,
        selection: Some(selection),
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
            let mut sorted: Vec<Artifact> = built.into_iter().map(|b| b.artifact).collect();
            sorted.sort_by(|a, b| a.path.cmp(&b.path));
            sorted
        },
    };
    if let Some(selection) = manifest.selection.as_ref().filter(|s| !s.is_complete()) {
        eprintln!(
            "NOTE: {} is a {} dist (recorded in its manifest)",
            request.out.display(),
            selection.describe()
        );
    }
    steps.time("publish", || {
        collect::publish(&request.out, &staging, &manifest, &all_variants)
    })?;
    eprintln!("wrote {}", request.out.join(Manifest::FILE_NAME).display());
    steps.time("wheel", || {
        crate::wheel::from_dist(&request.out, &manifest, &request.crates)
    })?;
    Ok(manifest)
}

/// The workspace's variant names: directories of a dist directory that a run replaces.
fn variant_names(workspace: &Workspace) -> Vec<&str> {
    workspace.variants.iter().map(|v| v.name.as_str()).collect()
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

/// Runs the jobs, two of different variants at a time ([`schedule`]), under one progress
/// display (the jobs building, elapsed, the last finished compilation unit), staging each
/// job's artifacts as soon as it is done.
fn build_jobs(
    request: &DistRequest<'_>,
    options: &BuildOptions,
    jobs: &[Job<'_>],
    toolchain: &Toolchain,
    steps: &mut Steps,
) -> Result<Vec<Built>> {
    let rustc_verbose = provenance::rustc_verbose(&request.workspace.root)?;
    let progress = ProgressBar::new(jobs.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos}/{len} {wide_msg}")
            // invariant: the template is a literal that parses.
            .expect("static progress template"),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let jobserver = schedule::jobserver()?;
    let workers = schedule::workers();
    eprintln!(
        "dist: {} job(s), {workers} at a time (jobs of one variant one after another)",
        jobs.len()
    );
    let shared_steps = std::sync::Mutex::new(std::mem::take(steps));
    let keys: Vec<&str> = jobs.iter().map(|job| job.variant.name.as_str()).collect();
    let context = job::JobContext {
        request,
        options,
        toolchain,
        rustc_verbose: &rustc_verbose,
        progress: &progress,
        jobserver: &jobserver,
        steps: &shared_steps,
        count: jobs.len(),
    };
    let result = schedule::run_all(&keys, workers, |index| context.run(index, &jobs[index]));
    *steps = shared_steps
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match result {
        Ok(built) => {
            progress.finish_and_clear();
            Ok(built.into_iter().flatten().collect())
        }
        Err(error) => {
            progress.abandon_with_message("a dist job failed");
            Err(error)
        }
    }
}

/// The final table: crate, variant, when it was ready within its job, shipped size.
fn print_summary(built: &[Built]) {
    eprintln!();
    eprintln!(
        "{:<16} {:<8} {:<44} {:>11} {:>10} {:<12}",
        "crate", "variant", "artifact", "ready after", "size", "sha256"
    );
    for item in built.iter().filter(|b| {
        matches!(
            b.artifact.kind,
            ArtifactKind::ServerBinary | ArtifactKind::SharedLibrary
        )
    }) {
        let artifact = &item.artifact;
        eprintln!(
            "{:<16} {:<8} {:<44} {:>11} {:>10} {:<12}",
            artifact.crate_name,
            artifact.variant,
            artifact.path,
            human(item.ready_after),
            human_size(artifact.size),
            &artifact.sha256[..12],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::planning::tests::crate_spec;
    use super::*;

    /// The Nix flake links its musl builds with rust-lld too (nix/packages.nix), so the two
    /// pipelines' servers come from the same linker.
    #[test]
    fn this_machines_musl_jobs_link_with_rust_lld() {
        let baseline = VariantSpec {
            name: "generic".into(),
            description: String::new(),
            target_cpu: BASELINE_CPU.into(),
            rustflags: vec![],
            architectures: vec![std::env::consts::ARCH.into()],
            ci_crates: None,
        };
        let server = crate_spec("s", Role::Server);
        let mut jobs = plan(&[&baseline], &[&server], &[std::env::consts::ARCH.into()]);
        set_target_toolchains(&mut jobs).unwrap();
        let job = jobs
            .iter()
            .find(|job| job.target.ends_with("-musl"))
            .expect("a server is built for musl");
        let variable = format!(
            "CARGO_TARGET_{}_LINKER",
            job.target.replace('-', "_").to_uppercase()
        );
        assert_eq!(job.env, [(variable, "rust-lld".to_owned())]);
        assert!(job.rustflags.is_empty());
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
    fn a_python_module_without_its_feature_or_sources_is_refused_before_building() {
        let dir = tempfile::tempdir().unwrap();
        let mut core = CrateSpec {
            manifest_path: dir.path().join("Cargo.toml"),
            python_module: Some("m".into()),
            python_feature: Some("python".into()),
            lib_target: Some("m".into()),
            ..crate_spec("m", Role::PythonModule)
        };
        let err = check_buildable(&core).unwrap_err().to_string();
        assert!(err.contains("no such feature"), "{err}");
        core.features = vec!["python".into()];
        let err = check_buildable(&core).unwrap_err().to_string();
        assert!(err.contains("__init__.py"), "{err}");
        std::fs::create_dir_all(dir.path().join("python/m")).unwrap();
        std::fs::write(dir.path().join("python/m/__init__.py"), "").unwrap();
        check_buildable(&core).unwrap();
        let server = CrateSpec {
            bin_targets: vec![],
            ..crate_spec("s", Role::Server)
        };
        assert!(check_buildable(&server).is_err());
    }
}

//! `cargo xtask bench build-profiles`: release-profile choices (LTO, codegen units) measured
//! side by side in one run, on a copy of the sources under `target/bench/`: a cold full dist,
//! an incremental dist after a one-line change in one server, artifact sizes, and the runtime
//! numbers of [`runtime`] on the artifacts each choice produced. Prints the table for
//! BENCHMARKS.md and, with `--write`, replaces the table there.
//!
//! Times are wall clock and CPU (user + system of every compiler process), with the CPU model
//! named: on a shared machine the wall times are inflated and only the CPU times and the
//! ratios between rows mean much; the final numbers belong to a quiet machine.

pub mod peers;
pub mod runtime;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::dist::{self, BuildOptions, DistRequest, SourceInfo, human_size};
use crate::metadata::{Role, Workspace};
use crate::timing::{Steps, human};
use crate::{ci, cpu, prereq};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchCommand {
    /// LTO × codegen-units choices: cold and incremental dist, sizes, runtime.
    BuildProfiles(ProfilesArgs),
    /// The runtime numbers (startup, tools/call p50, cosine_topk) of an existing dist/.
    Runtime(RuntimeArgs),
    /// The development server vs the reference MCP servers (PyPI git, npm filesystem).
    Peers(peers::PeersArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProfilesArgs {
    /// Only these choices (repeatable; default: all of them).
    #[arg(long = "choice", value_name = "NAME")]
    pub choices: Vec<String>,
    /// Build only these shipped crates (default: all, as `cargo xtask dist`).
    #[arg(long = "crate", value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Build only these variants (default: all).
    #[arg(long = "variant", value_name = "VARIANT")]
    pub variants: Vec<String>,
    /// Samples per runtime number.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Skip the cold build (reuse the previous run's target directories).
    #[arg(long)]
    pub warm: bool,
    /// Replace the build-profiles table in BENCHMARKS.md.
    #[arg(long)]
    pub write: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// The dist directory (default: `<workspace>/dist`).
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
}

/// One choice of code generation settings, applied to every dist profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub name: &'static str,
    /// The `lto` value as TOML: `"fat"`, `"thin"`, `false` (thin-local only), `"off"`.
    pub lto: &'static str,
    pub codegen_units: u32,
}

/// The choices compared.
pub const CHOICES: &[Choice] = &[
    Choice {
        name: "fat-cgu1",
        lto: "\"fat\"",
        codegen_units: 1,
    },
    Choice {
        name: "thin-cgu1",
        lto: "\"thin\"",
        codegen_units: 1,
    },
    Choice {
        name: "thin-cgu16",
        lto: "\"thin\"",
        codegen_units: 16,
    },
    Choice {
        name: "nolto-cgu16",
        lto: "false",
        codegen_units: 16,
    },
];

impl Choice {
    /// `--config` values applying this choice to every dist profile.
    pub fn cargo_config(&self) -> Vec<String> {
        let mut profiles = vec![
            dist::profile_for(Role::Server),
            dist::profile_for(Role::PythonModule),
        ];
        profiles.dedup();
        profiles
            .iter()
            .flat_map(|profile| {
                [
                    format!("profile.{profile}.lto={}", self.lto),
                    format!("profile.{profile}.codegen-units={}", self.codegen_units),
                ]
            })
            .collect()
    }
}

/// What one choice measured.
#[derive(Debug, Clone)]
pub struct ChoiceResult {
    pub choice: Choice,
    pub cold: Option<Measured>,
    pub incremental: Measured,
    /// `(role, size)` of every shipped ELF artifact (binaries, the shared library).
    pub sizes: Vec<(Role, u64)>,
    pub runtime: runtime::RuntimeReport,
}

/// Wall and CPU time of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub wall: Duration,
    pub cpu: Duration,
}

/// CPU time (user + system) of this process's waited-for children so far, from
/// `/proc/self/stat` (fields cutime and cstime, in USER_HZ = 100 ticks per second on Linux).
pub fn children_cpu_time() -> Duration {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    children_cpu_from_stat(&stat)
}

pub fn children_cpu_from_stat(stat: &str) -> Duration {
    // The command name (field 2) may contain spaces; fields after its `)` are plain.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): cutime is field 16, cstime field 17.
    let tick = |index: usize| fields.get(index - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = tick(16).unwrap_or(0) + tick(17).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn measure<T>(step: impl FnOnce() -> Result<T>) -> Result<(T, Measured)> {
    let cpu_before = children_cpu_time();
    let started = Instant::now();
    let value = step()?;
    Ok((
        value,
        Measured {
            wall: started.elapsed(),
            cpu: children_cpu_time().saturating_sub(cpu_before),
        },
    ))
}

pub fn run(workspace: &Workspace, args: &BenchArgs) -> Result<()> {
    match &args.command {
        BenchCommand::BuildProfiles(args) => build_profiles(workspace, args),
        BenchCommand::Peers(args) => peers::run(&workspace.root, args),
        BenchCommand::Runtime(args) => {
            let dist = args
                .dist
                .clone()
                .unwrap_or_else(|| workspace.root.join("dist"));
            let python = ci::ffi_venv(workspace)?;
            let report = runtime::measure(&dist, workspace, args.runs, &python)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}

fn build_profiles(workspace: &Workspace, args: &ProfilesArgs) -> Result<()> {
    let choices: Vec<Choice> = if args.choices.is_empty() {
        CHOICES.to_vec()
    } else {
        args.choices
            .iter()
            .map(|name| {
                CHOICES
                    .iter()
                    .copied()
                    .find(|c| c.name == name)
                    .with_context(|| {
                        let names: Vec<&str> = CHOICES.iter().map(|c| c.name).collect();
                        format!("unknown choice `{name}`; choices: {}", names.join(", "))
                    })
            })
            .collect::<Result<_>>()?
    };
    let crates = workspace.select_shipped_crates(&args.crates)?;
    let mut needs = prereq::Needs::dist(&crates);
    needs.uses.insert(prereq::Use::Ffi);
    needs.task = "bench build-profiles".to_owned();
    prereq::ensure(&workspace.root, &needs)?;
    let python = ci::ffi_venv(workspace)?;

    let base = workspace.target_dir.join("bench");
    let source = SourceInfo::collect(&workspace.root)?;
    let copy = base.join("src");
    if copy.exists() {
        fs::remove_dir_all(&copy).with_context(|| format!("removing {}", copy.display()))?;
    }
    dist::sources::copy_sources(&workspace.root, &source.git_commit, source.git_dirty, &copy)?;
    let copied = Workspace::load_from(&copy)?;
    let edited = copied
        .select_shipped_crates(&args.crates)?
        .into_iter()
        .find(|c| c.role == Role::Server)
        .context("the benchmark edits one server; select at least one")?
        .dir()
        .join("src/lib.rs");

    let mut results = Vec::new();
    for choice in choices {
        eprintln!(
            "\n==> bench: {} ({})",
            choice.name,
            choice.cargo_config().join(" ")
        );
        let request = DistRequest {
            workspace: &copied,
            variants: copied.select_variants(&args.variants)?,
            crates: copied.select_shipped_crates(&args.crates)?,
            // Profile choices are measured on this machine's own builds.
            architectures: vec![std::env::consts::ARCH.to_owned()],
            out: base.join(choice.name).join("dist"),
            target_base: base.join(choice.name).join("target"),
            source: source.clone(),
        };
        let options = BuildOptions {
            cargo_config: choice.cargo_config(),
            ..BuildOptions::default()
        };
        let build = || dist::build_with(&request, &options, &mut Steps::new());
        let cold = if args.warm {
            None
        } else {
            if request.target_base.exists() {
                fs::remove_dir_all(&request.target_base)?;
            }
            Some(measure(build)?.1)
        };
        let original =
            fs::read_to_string(&edited).with_context(|| format!("reading {}", edited.display()))?;
        fs::write(&edited, format!("{original}// bench: a one-line change\n"))?;
        let incremental = measure(build);
        fs::write(&edited, &original)?;
        let (manifest, incremental) = incremental?;
        let sizes = manifest
            .artifacts
            .iter()
            .filter(|a| {
                matches!(
                    a.kind,
                    dist::ArtifactKind::ServerBinary | dist::ArtifactKind::SharedLibrary
                )
            })
            .map(|a| (a.role, a.size))
            .collect();
        // The servers run against the checkout itself: the copy has no .git, and the
        // development server's git tools need one.
        let runtime = runtime::measure(&request.out, workspace, args.runs, &python)?;
        results.push(ChoiceResult {
            choice,
            cold,
            incremental,
            sizes,
            runtime,
        });
    }
    let edited_crate = edited
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let table = render(&results, &edited_crate, args.runs);
    println!("{table}");
    if args.write {
        write_table(
            &workspace.root.join("BENCHMARKS.md"),
            (TABLE_START, TABLE_END),
            &table,
        )?;
    }
    Ok(())
}

/// Start and end markers of the generated table in BENCHMARKS.md.
pub const TABLE_START: &str =
    "<!-- build-profiles: generated by `cargo xtask bench build-profiles --write` -->";
pub const TABLE_END: &str = "<!-- end of build-profiles -->";

/// Replaces the text between the `(start, end)` markers (which must exist, in that order)
/// with `table`.
pub fn write_table(
    path: &Path,
    (start_marker, end_marker): (&str, &str),
    table: &str,
) -> Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(start), Some(end)) = (text.find(start_marker), text.find(end_marker)) else {
        bail!(
            "{} lacks the markers {start_marker} … {end_marker}; add them where the table goes",
            path.display()
        );
    };
    if end < start {
        bail!(
            "{}: {end_marker} comes before {start_marker}; put the end marker after the start",
            path.display()
        );
    }
    let from = start + start_marker.len();
    let updated = format!("{}\n{table}{}", &text[..from], &text[end..]);
    fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// The markdown table: one row per choice.
pub fn render(results: &[ChoiceResult], edited_crate: &str, runs: usize) -> String {
    let mut text = format!(
        "Measured on {} ({} cores), {runs} samples per runtime number (median). \
         Times: wall / CPU (user + system).\n\n",
        cpu::this_cpu(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    text.push_str("| choice | cold dist | dist after a one-line change in ");
    text.push_str(edited_crate);
    text.push_str(" | servers and launcher (sum of sizes) | Python module (sum) | startup p50 | tools/call p50 | cosine_topk p50 |\n");
    text.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for result in results {
        let time = |m: &Measured| format!("{} / {}", human(m.wall), human(m.cpu));
        let sum = |module: bool| -> u64 {
            result
                .sizes
                .iter()
                .filter(|(role, _)| (*role == Role::PythonModule) == module)
                .map(|(_, size)| size)
                .sum()
        };
        let startup: Vec<String> = result
            .runtime
            .servers
            .iter()
            .map(|s| format!("{} {}: {}", s.server, s.variant, ms(s.startup)))
            .collect();
        let calls: Vec<String> = result
            .runtime
            .servers
            .iter()
            .flat_map(|s| {
                s.calls.iter().map(move |(tool, p50)| {
                    format!("{}.{tool} ({}): {}", s.server, s.variant, ms(*p50))
                })
            })
            .collect();
        let kernels: Vec<String> = result
            .runtime
            .kernels
            .iter()
            .map(|k| format!("{}: {}", k.variant, ms(k.p50)))
            .collect();
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            result.choice.name,
            result.cold.as_ref().map_or("not measured".to_owned(), time),
            time(&result.incremental),
            human_size(sum(false)),
            human_size(sum(true)),
            startup.join("<br>"),
            calls.join("<br>"),
            kernels.join("<br>"),
        ));
    }
    let skipped: Vec<&String> = results.iter().flat_map(|r| &r.runtime.skipped).collect();
    if !skipped.is_empty() {
        text.push_str(&format!("\nNot run on this CPU: {}\n", skipped.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_cpu_time_reads_cutime_and_cstime() {
        // pid (comm with ) and spaces) state ppid … utime stime cutime cstime …
        let stat = "42 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 250 50 20 0";
        assert_eq!(children_cpu_from_stat(stat), Duration::from_millis(3000));
        assert_eq!(children_cpu_from_stat("garbage"), Duration::ZERO);
        // This process has waited for children in no test so far, or some: never negative.
        let _ = children_cpu_time();
    }

    #[test]
    fn every_choice_overrides_lto_and_codegen_units_of_every_dist_profile() {
        for choice in CHOICES {
            let config = choice.cargo_config();
            assert!(
                config
                    .iter()
                    .any(|c| c.ends_with(&format!("lto={}", choice.lto)))
            );
            assert!(
                config
                    .iter()
                    .any(|c| c.ends_with(&format!("codegen-units={}", choice.codegen_units)))
            );
            for profile in [
                dist::profile_for(Role::Server),
                dist::profile_for(Role::PythonModule),
            ] {
                assert!(
                    config
                        .iter()
                        .any(|c| c.starts_with(&format!("profile.{profile}.")))
                );
            }
        }
    }

    #[test]
    fn the_table_replaces_only_the_marked_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("B.md");
        fs::write(
            &path,
            format!("before\n{TABLE_START}\nold\n{TABLE_END}\nafter\n"),
        )
        .unwrap();
        let markers = (TABLE_START, TABLE_END);
        write_table(&path, markers, "new\n").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("before\n{TABLE_START}\nnew\n{TABLE_END}\nafter\n")
        );
        fs::write(&path, "no markers").unwrap();
        assert!(write_table(&path, markers, "x").is_err());
        fs::write(&path, format!("{TABLE_END}\n{TABLE_START}\n")).unwrap();
        let err = write_table(&path, markers, "x").unwrap_err().to_string();
        assert!(err.contains("comes before"), "{err}");
    }
}

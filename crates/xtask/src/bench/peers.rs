//! `cargo xtask bench peers`: the development server side by side with the reference
//! servers users install instead (`mcp-server-git` from PyPI,
//! `@modelcontextprotocol/server-filesystem` from npm), on the same generated git tree,
//! over JSON-RPC on stdio ([`crate::mcp_client`]), in one run. Writes its section of
//! BENCHMARKS.md.
//!
//! The references are installed into `target/peer-bench/` (a venv and an npm prefix) at
//! pinned versions; nothing is installed globally. Each server is spawned `--spawns` times;
//! each spawn times `initialize` and then `--calls` calls of every row. Ratios are
//! reference / ours (above 1 means ours is faster or smaller).
//!
//! Ours is built as it ships: for the target triple `cargo xtask dist` builds servers for
//! (static musl), so start-up, speed and memory are those of the binary users run (a host
//! glibc build differs, notably in malloc's memory use: `--target` measures one).

mod fixture;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::mcp_client::Session;
use crate::{cpu, process};

/// The reference versions measured (bump deliberately, then rerun).
pub const MCP_SERVER_GIT_VERSION: &str = "2026.10.19";
pub const SERVER_FILESYSTEM_VERSION: &str = "2026.8.31";

/// Arguments of `cargo xtask bench peers`.
#[derive(Debug, Clone, clap::Args)]
pub struct PeersArgs {
    /// Spawns of each server.
    #[arg(long, default_value_t = 5)]
    pub spawns: usize,
    /// Calls of each row per spawn.
    #[arg(long, default_value_t = 100)]
    pub calls: usize,
    /// Cargo profile the development server is built with.
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Target triple the development server is built for. Default: the one `cargo xtask
    /// dist` ships servers for on this architecture (static musl).
    #[arg(long)]
    pub target: Option<String>,
    /// Use this development binary instead of building one.
    #[arg(long)]
    pub server: Option<PathBuf>,
    /// Replace the bench-peers table in BENCHMARKS.md (without it the table is only
    /// printed).
    #[arg(long)]
    pub write: bool,
}

/// One compared operation: our tool and arguments, the reference's.
struct Row {
    label: &'static str,
    ours: (&'static str, Value),
    theirs: (Peer, &'static str, Value),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Peer {
    Git,
    Filesystem,
}

/// Latencies of one side of a row, over all spawns.
#[derive(Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
        sorted[rank]
    }
}

struct Measured {
    startup: Samples,
    rows: Vec<Samples>,
    peak_rss_kib: u64,
}

/// Runs the benchmark.
pub fn run(root: &Path, args: &PeersArgs) -> Result<()> {
    if args.spawns == 0 || args.calls == 0 {
        bail!("--spawns and --calls must be at least 1");
    }
    let work = root.join("target/peer-bench");
    std::fs::create_dir_all(&work)?;
    let target = args.target.clone().unwrap_or_else(|| {
        crate::dist::target_triple(crate::metadata::Role::Server, std::env::consts::ARCH)
    });
    let ours = match &args.server {
        Some(path) => path.clone(),
        None => build_development(root, &args.profile, &target)?,
    };
    let (git_server, fs_server) = install_references(&work)?;
    let tree = fixture::create(&work.join("tree"))?;
    let rows = rows(&tree);

    let ours_command = || {
        let mut command = Command::new(&ours);
        command.args(["--root".as_ref(), tree.as_os_str()]);
        command.args(["--log-level", "error"]);
        command
    };
    let git_command = || {
        let mut command = Command::new(&git_server);
        command.arg("--repository").arg(&tree);
        command
    };
    let fs_command = || {
        let mut command = Command::new("node");
        command.arg(&fs_server).arg(&tree);
        command
    };
    let load_before = load_average();
    let ours_result = measure("development", ours_command, &rows, None, args)?;
    let git_result = measure("mcp-server-git", git_command, &rows, Some(Peer::Git), args)?;
    let fs_result = measure(
        "server-filesystem",
        fs_command,
        &rows,
        Some(Peer::Filesystem),
        args,
    )?;
    let load_after = load_average();

    let table = report(&rows, &ours_result, &git_result, &fs_result);
    let header = format!(
        "Measured {date} with `cargo xtask bench peers --spawns {spawns} --calls {calls} --write` \
         (development {built}; mcp-server-git {MCP_SERVER_GIT_VERSION}, \
         @modelcontextprotocol/server-filesystem {SERVER_FILESYSTEM_VERSION}, {python}, node {node}) \
         on {cpu}, {cores} cores, load average {load_before} before and {load_after} after. \
         Tree: {files} generated files in a git repository with {changed} files changed in the \
         working tree (`target/peer-bench/tree`).",
        date = process::output(Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC"))
            .unwrap_or_default(),
        spawns = args.spawns,
        calls = args.calls,
        built = match &args.server {
            Some(path) => format!("binary {}", path.display()),
            None => format!("built with `--profile {} --target {target}`", args.profile),
        },
        python = process::output(Command::new(work.join("venv/bin/python")).arg("--version"))
            .unwrap_or_default(),
        node = process::output(Command::new("node").arg("--version")).unwrap_or_default(),
        cpu = cpu::this_cpu(),
        cores = std::thread::available_parallelism().map_or(0, |n| n.get()),
        files = fixture::FILES,
        changed = fixture::CHANGED,
    );
    println!("{header}\n\n{table}");
    if args.write {
        super::write_table(
            &root.join("BENCHMARKS.md"),
            (SECTION_START, SECTION_END),
            &format!("{header}\n\n{table}"),
        )?;
        println!("wrote the table to BENCHMARKS.md");
    }
    Ok(())
}

fn rows(tree: &Path) -> Vec<Row> {
    let tree_str = tree.display().to_string();
    let read_target = tree.join(fixture::READ_TARGET).display().to_string();
    vec![
        Row {
            label: "`git_info` (status + 10 commits) vs `git_status`",
            ours: ("git_info", json!({"max_commits": 10})),
            theirs: (Peer::Git, "git_status", json!({"repo_path": tree_str})),
        },
        Row {
            label: "`list_files` glob vs `search_files` glob",
            ours: ("list_files", json!({"glob": "*.rs", "max": 20000})),
            theirs: (
                Peer::Filesystem,
                "search_files",
                json!({"path": tree_str, "pattern": "**/*.rs"}),
            ),
        },
        Row {
            label: "`read_file` vs `read_text_file`",
            ours: ("read_file", json!({"path": fixture::READ_TARGET})),
            theirs: (
                Peer::Filesystem,
                "read_text_file",
                json!({"path": read_target}),
            ),
        },
        Row {
            label: "`git_diff` vs `git_diff_unstaged`",
            ours: ("git_diff", json!({})),
            theirs: (
                Peer::Git,
                "git_diff_unstaged",
                json!({"repo_path": tree_str}),
            ),
        },
    ]
}

/// Spawns a server `spawns` times and times its rows; `peer` is `None` for ours (all
/// rows), else only the rows that peer serves.
fn measure(
    name: &str,
    command: impl Fn() -> Command,
    rows: &[Row],
    peer: Option<Peer>,
    args: &PeersArgs,
) -> Result<Measured> {
    let mut measured = Measured {
        startup: Samples::default(),
        rows: rows.iter().map(|_| Samples::default()).collect(),
        peak_rss_kib: 0,
    };
    for spawn in 0..args.spawns {
        eprintln!("{name}: spawn {}/{}", spawn + 1, args.spawns);
        let started = Instant::now();
        let mut session = Session::start(command())?;
        session
            .initialize()
            .with_context(|| format!("initializing {name}"))?;
        measured.startup.0.push(started.elapsed());
        for (row, samples) in rows.iter().zip(&mut measured.rows) {
            let (tool, arguments) = match peer {
                None => (row.ours.0, &row.ours.1),
                Some(peer) if peer == row.theirs.0 => (row.theirs.1, &row.theirs.2),
                Some(_) => continue,
            };
            for _ in 0..args.calls {
                let (elapsed, result) = session
                    .timed_call(tool, arguments)
                    .with_context(|| format!("benchmarking {name}"))?;
                if spawn == 0 && samples.0.is_empty() {
                    check_answer(name, tool, &result)?;
                }
                samples.0.push(elapsed);
            }
        }
        measured.peak_rss_kib = measured.peak_rss_kib.max(session.peak_rss_kib()?);
        if peer.is_none() {
            // Ours must exit cleanly on stdin EOF; a reference's exit is not ours to judge
            // (dropping the session kills it).
            session
                .finish()
                .with_context(|| format!("stopping {name}"))?;
        }
    }
    Ok(measured)
}

/// A call that answers nothing would time nothing: every first answer must have content.
fn check_answer(name: &str, tool: &str, result: &Value) -> Result<()> {
    let text = result["content"].to_string();
    if text.len() < 20 {
        bail!("{name} {tool} answered almost nothing ({text}); the benchmark tree is wrong");
    }
    Ok(())
}

fn report(rows: &[Row], ours: &Measured, git: &Measured, fs: &Measured) -> String {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let ratio = |theirs: Duration, ours: Duration| {
        format!(
            "{:.1}×",
            theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9)
        )
    };
    let mut table = String::from(
        "| | ours p50 (p90) | reference p50 (p90) | reference / ours (p50) |\n|---|---|---|---|\n",
    );
    let start = ours.startup.percentile(0.5);
    let _ = writeln!(
        table,
        "| spawn → `initialize` answered | {} ({}) | {} ({}) git, Python / {} ({}) filesystem, Node | {} / {} |",
        ms(start),
        ms(ours.startup.percentile(0.9)),
        ms(git.startup.percentile(0.5)),
        ms(git.startup.percentile(0.9)),
        ms(fs.startup.percentile(0.5)),
        ms(fs.startup.percentile(0.9)),
        ratio(git.startup.percentile(0.5), start),
        ratio(fs.startup.percentile(0.5), start),
    );
    for (index, row) in rows.iter().enumerate() {
        let theirs = match row.theirs.0 {
            Peer::Git => &git.rows[index],
            Peer::Filesystem => &fs.rows[index],
        };
        let ours = &ours.rows[index];
        let _ = writeln!(
            table,
            "| {} | {} ({}) | {} ({}) | {} |",
            row.label,
            ms(ours.percentile(0.5)),
            ms(ours.percentile(0.9)),
            ms(theirs.percentile(0.5)),
            ms(theirs.percentile(0.9)),
            ratio(theirs.percentile(0.5), ours.percentile(0.5)),
        );
    }
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let _ = writeln!(
        table,
        "| peak RSS (VmHWM, max over spawns) | {} | {} git / {} filesystem | {:.1}× / {:.1}× |",
        mib(ours.peak_rss_kib),
        mib(git.peak_rss_kib),
        mib(fs.peak_rss_kib),
        git.peak_rss_kib as f64 / ours.peak_rss_kib.max(1) as f64,
        fs.peak_rss_kib as f64 / ours.peak_rss_kib.max(1) as f64,
    );
    table
}

/// Markers of the generated section of BENCHMARKS.md.
const SECTION_START: &str = "<!-- bench-peers: generated by `cargo xtask bench peers` -->";
const SECTION_END: &str = "<!-- end of bench-peers -->";

fn build_development(root: &Path, profile: &str, target: &str) -> Result<PathBuf> {
    // The C compiler and linker dist would use for this target.
    let toolchain = crate::cross::toolchain_for(target)?;
    process::run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .current_dir(root)
            .envs(toolchain.env)
            .args([
                "build",
                "-p",
                "development",
                "--bin",
                "development",
                "--profile",
                profile,
                "--target",
                target,
            ]),
    )?;
    let dir = if profile == "dev" { "debug" } else { profile };
    Ok(root
        .join("target")
        .join(target)
        .join(dir)
        .join("development"))
}

/// Installs the pinned reference servers under `work` unless already there; returns the
/// git server's entry point and the filesystem server's script.
fn install_references(work: &Path) -> Result<(PathBuf, PathBuf)> {
    let venv = work.join("venv");
    let git_server = venv.join("bin/mcp-server-git");
    let pinned = format!("mcp-server-git=={MCP_SERVER_GIT_VERSION}");
    let python = venv.join("bin/python");
    let installed =
        process::output(Command::new(&python).args(["-m", "pip", "show", "mcp-server-git"]))
            .is_ok_and(|info| info.contains(&format!("Version: {MCP_SERVER_GIT_VERSION}")));
    if !installed {
        process::run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        process::run(process::pip_install(&mut Command::new(&python)).arg(&pinned))?;
    }
    let prefix = work.join("npm");
    let package = "@modelcontextprotocol/server-filesystem";
    let fs_server = prefix
        .join("node_modules")
        .join(package)
        .join("dist/index.js");
    let manifest = prefix
        .join("node_modules")
        .join(package)
        .join("package.json");
    let fs_installed = std::fs::read_to_string(&manifest)
        .is_ok_and(|text| text.contains(&format!("\"version\": \"{SERVER_FILESYSTEM_VERSION}\"")));
    if !fs_installed {
        process::run(
            Command::new("npm")
                .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg(format!("{package}@{SERVER_FILESYSTEM_VERSION}")),
        )?;
    }
    Ok((git_server, fs_server))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

//! The runtime numbers users feel, measured on the artifacts of a `dist/`: how long a server
//! takes from spawn to an answered `initialize`, the p50 of `tools/call` for two tools per
//! server, and the Python module's `cosine_topk`. Only builds this CPU can run are measured
//! ([`crate::cpu::support`]); the others are listed as skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cpu;
use crate::dist::{ArtifactKind, Manifest};
use crate::mcp_client::{Session, SmokeCall};
use crate::metadata::{Role, Workspace};
use crate::process;

/// Median of `samples` (sorted in place); zero when empty.
pub fn median(samples: &mut [Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort();
    samples[samples.len() / 2]
}

/// What was measured for one server build.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerTimes {
    pub server: String,
    pub variant: String,
    /// Spawn → `initialize` answered, median.
    pub startup: Duration,
    /// `(tool, p50)` for the tools called.
    pub calls: Vec<(String, Duration)>,
}

/// `cosine_topk` of one variant of the Python module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelTime {
    pub variant: String,
    pub p50: Duration,
}

/// Everything measured on one dist directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RuntimeReport {
    pub servers: Vec<ServerTimes>,
    pub kernels: Vec<KernelTime>,
    /// What this CPU could not run.
    pub skipped: Vec<String>,
}

/// Measures every server build and every variant of the Python module in `dist` that this
/// CPU runs. Servers get `--root <workspace root>`; each server's declared smoke call (its
/// `[package.metadata.mcp-foundry.smoke-call]`) is one of the two calls timed.
pub fn measure(
    dist: &Path,
    workspace: &Workspace,
    runs: usize,
    python: &Path,
) -> Result<RuntimeReport> {
    let manifest = Manifest::load(dist)?;
    let root = workspace.root.as_path();
    let declared: BTreeMap<&str, &SmokeCall> = workspace
        .crates
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.smoke_call.as_ref()?)))
        .collect();
    let mut report = RuntimeReport::default();
    for artifact in &manifest.artifacts {
        let runnable = cpu::support(&artifact.target, &artifact.target_cpu)?;
        match (artifact.kind, artifact.role) {
            (ArtifactKind::ServerBinary, Role::Server) => {
                if let Some(notice) = runnable.skip_notice(&artifact.path) {
                    report.skipped.push(notice);
                    continue;
                }
                let binary = dist.join(&artifact.path);
                eprintln!("    measuring {}", artifact.path);
                report.servers.push(ServerTimes {
                    server: artifact.crate_name.clone(),
                    variant: artifact.variant.clone(),
                    startup: startup(&binary, root, runs)?,
                    calls: tool_calls(
                        &binary,
                        root,
                        runs,
                        declared.get(artifact.crate_name.as_str()).copied(),
                    )?,
                });
            }
            (ArtifactKind::PythonExtension, Role::PythonModule) => {
                if let Some(notice) = runnable.skip_notice(&artifact.path) {
                    report.skipped.push(notice);
                    continue;
                }
                let package_root = dist.join(&artifact.variant).join("python");
                eprintln!("    measuring cosine_topk of {}", artifact.path);
                report.kernels.push(KernelTime {
                    variant: artifact.variant.clone(),
                    p50: cosine_topk(python, &package_root, runs)?,
                });
            }
            _ => {}
        }
    }
    Ok(report)
}

fn server_command(binary: &Path, root: &Path) -> Command {
    let mut command = Command::new(binary);
    command.arg("--root").arg(root).env("RUST_LOG", "error");
    command
}

/// Spawn → `initialize` answered, median of `runs` fresh processes.
pub fn startup(binary: &Path, root: &Path, runs: usize) -> Result<Duration> {
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let mut session = Session::start(server_command(binary, root))?;
        session
            .initialize()
            .with_context(|| format!("initializing {}", binary.display()))?;
        samples.push(started.elapsed());
        session.finish()?;
    }
    Ok(median(&mut samples))
}

/// The calls that may be benchmarked, in order of preference: the declared smoke call, then
/// read-only tools whose schema requires no argument (called with `{}`, against the root),
/// in `tools/list` order. [`tool_calls`] times the first two that answer without an error.
pub fn pick_calls(tools: &[Value], declared: Option<&SmokeCall>) -> Vec<SmokeCall> {
    let argument_free = tools
        .iter()
        .filter(|tool| tool["annotations"]["readOnlyHint"] == json!(true))
        .filter(|tool| {
            tool["inputSchema"]["required"]
                .as_array()
                .is_none_or(Vec::is_empty)
        })
        .filter_map(|tool| tool["name"].as_str())
        .filter(|name| declared.is_none_or(|d| d.tool != *name))
        .map(|name| SmokeCall {
            tool: name.to_owned(),
            arguments: json!({}),
        });
    declared.cloned().into_iter().chain(argument_free).collect()
}

/// How many calls each server is timed on.
const CALLS_TIMED: usize = 2;

/// p50 of `runs` calls of each picked call in one session (after one warm-up call each).
pub fn tool_calls(
    binary: &Path,
    root: &Path,
    runs: usize,
    declared: Option<&SmokeCall>,
) -> Result<Vec<(String, Duration)>> {
    let mut session = Session::start(server_command(binary, root))?;
    session.initialize()?;
    let listed = session.request("tools/list", json!({}))?;
    let calls = pick_calls(
        listed["tools"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        declared,
    );
    let mut results = Vec::new();
    for call in calls {
        if results.len() == CALLS_TIMED {
            break;
        }
        let time = |session: &mut Session| -> Result<Duration> {
            Ok(session.timed_call(&call.tool, &call.arguments)?.0)
        };
        // The warm-up call also shows whether `{}` is enough: a tool whose schema has no
        // required field may still need one of several (devops' check_endpoint: a url, or
        // host and port). The declared call must work.
        if let Err(error) = time(&mut session) {
            if declared.is_some_and(|d| d.tool == call.tool) {
                return Err(error.context("the declared smoke call failed"));
            }
            eprintln!("      not timed: {} with {{}} ({error:#})", call.tool);
            continue;
        }
        let mut samples = Vec::new();
        for _ in 0..runs.max(1) {
            samples.push(time(&mut session)?);
        }
        results.push((call.tool, median(&mut samples)));
    }
    if results.len() < CALLS_TIMED {
        bail!(
            "{} has fewer than {CALLS_TIMED} calls to time: declare one in \
             [package.metadata.mcp-foundry.smoke-call] or add a read-only tool that answers \
             `{{}}`",
            binary.display()
        );
    }
    session.finish()?;
    Ok(results)
}

/// The Python snippet timing `cosine_topk` (10 000 × 384 float32 rows, cache-resident, k = 10).
const COSINE_SCRIPT: &str = r#"
import json, sys, time
import numpy as np
import mcp_rust_core as m
runs = int(sys.argv[1])
rng = np.random.default_rng(0)
matrix = rng.standard_normal((10_000, 384), dtype=np.float32)
query = rng.standard_normal(384, dtype=np.float32)
m.cosine_topk(matrix, query, 10)
samples = []
for _ in range(runs):
    started = time.perf_counter()
    m.cosine_topk(matrix, query, 10)
    samples.append(time.perf_counter() - started)
samples.sort()
print(json.dumps({"p50": samples[len(samples) // 2]}))
"#;

/// p50 seconds of `cosine_topk` with the module under `package_root`.
pub fn cosine_topk(python: &Path, package_root: &Path, runs: usize) -> Result<Duration> {
    let output = process::output(
        Command::new(python)
            .args(["-c", COSINE_SCRIPT])
            .arg(runs.max(1).to_string())
            .env("PYTHONPATH", package_root),
    )?;
    let value: Value = serde_json::from_str(&output)
        .with_context(|| format!("the cosine benchmark printed {output:?}"))?;
    let seconds = value["p50"]
        .as_f64()
        .context("the cosine benchmark printed no p50")?;
    Ok(Duration::from_secs_f64(seconds))
}

/// `target/ffi-venv`'s python, for the kernel benchmark.
pub fn python(target_dir: &Path) -> PathBuf {
    target_dir.join("ffi-venv/bin/python")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_sample() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(5), ms(1), ms(3)]), ms(3));
        assert_eq!(median(&mut []), Duration::ZERO);
    }

    #[test]
    fn the_declared_call_then_read_only_argument_free_tools_are_picked() {
        let tools = vec![
            json!({"name": "w", "annotations": {"readOnlyHint": false}, "inputSchema": {}}),
            json!({"name": "a", "annotations": {"readOnlyHint": true}, "inputSchema": {"required": []}}),
            json!({"name": "needs", "annotations": {"readOnlyHint": true}, "inputSchema": {"required": ["path"]}}),
            json!({"name": "b", "annotations": {"readOnlyHint": true}, "inputSchema": {}}),
            json!({"name": "c", "annotations": {"readOnlyHint": true}, "inputSchema": {}}),
        ];
        let names =
            |calls: Vec<SmokeCall>| -> Vec<String> { calls.into_iter().map(|c| c.tool).collect() };
        assert_eq!(names(pick_calls(&tools, None)), ["a", "b", "c"]);
        let declared = SmokeCall {
            tool: "needs".into(),
            arguments: json!({"path": "."}),
        };
        let picked = pick_calls(&tools, Some(&declared));
        assert_eq!(picked[0], declared);
        assert_eq!(names(picked), ["needs", "a", "b", "c"]);
        // A declared argument-free tool is not timed twice.
        let declared_a = SmokeCall {
            tool: "a".into(),
            arguments: json!({}),
        };
        assert_eq!(
            names(pick_calls(&tools, Some(&declared_a))),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn a_fake_server_is_timed_end_to_end() {
        // A stand-in that answers initialize and three tools, any number of times; `bad`
        // answers `{}` with an error result, so the next tool is timed instead.
        let script = r#"
            while read line; do
              id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
              case "$line" in
                *'"initialize"'*) echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"serverInfo\":{\"name\":\"f\"}}}";;
                *'"tools/list"'*) echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"tools\":[{\"name\":\"bad\",\"annotations\":{\"readOnlyHint\":true},\"inputSchema\":{}},{\"name\":\"a\",\"annotations\":{\"readOnlyHint\":true},\"inputSchema\":{}},{\"name\":\"b\",\"annotations\":{\"readOnlyHint\":true},\"inputSchema\":{}}]}}";;
                *'"tools/call"'*'"bad"'*) echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"content\":[],\"isError\":true}}";;
                *'"tools/call"'*) echo "{\"jsonrpc\":\"2.0\",\"id\":$id,\"result\":{\"content\":[]}}";;
              esac
            done"#;
        let dir = tempfile::tempdir().unwrap();
        let server = dir.path().join("server");
        std::fs::write(&server, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&server, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(startup(&server, dir.path(), 3).unwrap() > Duration::ZERO);
        let calls = tool_calls(&server, dir.path(), 3, None).unwrap();
        let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }
}

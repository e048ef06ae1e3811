//! Property-based fuzzing of a server's JSON-RPC input, for every server's tests.
//!
//! [`fuzz_json_rpc`] serves a fresh [`Guarded`] wrapper of the server
//! in-process over the same newline-delimited framing as stdio, completes the handshake,
//! then sends a seeded random mix of adversarial input: raw bytes, invalid UTF-8, broken
//! and deeply nested JSON, huge numbers and strings, JSON-RPC with wrong versions, odd ids,
//! unknown and known methods with random params, duplicate `initialize`, cancellations
//! of unknown requests, responses nobody asked for, and `tools/call` of the server's real
//! tools with arguments built from their input schemas (well-typed, mistyped and
//! hostile values). After every case the server must still answer a `ping`, and
//! everything it wrote must be JSON. [`fuzz_binary`] does the same through a real binary's
//! stdin and stdout.
//!
//! A failure names the seed and the frames sent; rerun one case with
//! `MCP_FUZZ_SEED=<seed> MCP_FUZZ_CASES=1`, or widen the search with `MCP_FUZZ_CASES=5000`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rmcp::ServerHandler;
use rmcp::ServiceExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader};

use crate::{Guarded, Limits};

use super::fuzz_input::Generator;

/// How much to fuzz, and which tools to leave alone.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// Sessions to run (each a fresh server); `MCP_FUZZ_CASES` overrides.
    pub cases: u64,
    /// Seed of the first session (session `i` uses `seed + i`); `MCP_FUZZ_SEED` overrides.
    pub seed: u64,
    /// Messages per session after the handshake.
    pub frames: usize,
    /// Tools never called: those that reach the network or run commands.
    pub skip_tools: Vec<String>,
    /// Limits of the wrapped server; a short timeout keeps slow random calls cheap.
    pub limits: Limits,
}

impl Default for FuzzOptions {
    fn default() -> Self {
        Self {
            cases: 48,
            seed: 0x6d63_702d_6675_7a7a,
            frames: 12,
            skip_tools: Vec::new(),
            limits: Limits {
                tool_timeout: Duration::from_secs(10),
                ..Limits::default()
            },
        }
    }
}

impl FuzzOptions {
    /// These options with `MCP_FUZZ_CASES` / `MCP_FUZZ_SEED` applied.
    fn with_env_overrides(mut self) -> Self {
        let number = |name| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        if let Some(cases) = number("MCP_FUZZ_CASES") {
            self.cases = cases;
        }
        if let Some(seed) = number("MCP_FUZZ_SEED") {
            self.seed = seed;
        }
        self
    }
}

/// What a fuzzing run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FuzzReport {
    /// Sessions run.
    pub cases: u64,
    /// Messages sent after the handshakes.
    pub frames: u64,
    /// Lines the server wrote (all valid JSON).
    pub responses: u64,
    /// Tools that were called.
    pub tools_called: Vec<String>,
}

/// Upper bound for the server's answer to the liveness `ping`; reaching it is the failure
/// "the server hangs". Not a speed assertion.
const ALIVE_GUARD: Duration = Duration::from_secs(120);

/// Fuzzes `make_server()`s, each wrapped in [`Guarded`], in-process. Panics with the seed
/// and the input when a server stops answering or writes anything but JSON.
pub async fn fuzz_json_rpc<S, F>(make_server: F, options: FuzzOptions) -> FuzzReport
where
    S: ServerHandler + Clone,
    F: Fn() -> S,
{
    let options = options.with_env_overrides();
    let tools = tool_schemas(make_server(), &options.skip_tools).await;
    let mut report = FuzzReport::default();
    for case in 0..options.cases {
        let seed = options.seed.wrapping_add(case);
        let frames = Generator::new(seed, &tools).session(options.frames);
        let (server_io, client_io) = tokio::io::duplex(1 << 16);
        let server = Guarded::new(make_server(), options.limits);
        let serving = tokio::spawn(async move {
            if let Ok(running) = server.serve(server_io).await {
                let _ = running.waiting().await;
            }
        });
        let (read, write) = tokio::io::split(client_io);
        let outcome = run_session(BufReader::new(read), write, &frames, seed).await;
        serving.abort();
        record(&mut report, outcome, seed, &frames);
    }
    report.tools_called = tools.into_iter().map(|(name, _)| name).collect();
    report
}

/// The same through a real binary (`bin args...`), one process per session, over its
/// actual stdin and stdout.
pub async fn fuzz_binary(bin: &Path, args: &[&str], options: FuzzOptions) -> FuzzReport {
    let options = options.with_env_overrides();
    let tools: Vec<(String, Value)> = match crate::testing::TestServer::spawn(bin, args).await {
        Ok(server) => {
            let listed = server.list_tools().await.unwrap_or_default();
            let _ = server.shutdown().await;
            listed
                .into_iter()
                .filter(|tool| !options.skip_tools.iter().any(|skip| *skip == tool.name))
                .map(|tool| {
                    (
                        tool.name.to_string(),
                        Value::Object((*tool.input_schema).clone()),
                    )
                })
                .collect()
        }
        Err(error) => panic!("cannot start {}: {error:#}", bin.display()),
    };
    let mut report = FuzzReport::default();
    for case in 0..options.cases {
        let seed = options.seed.wrapping_add(case);
        let frames = Generator::new(seed, &tools).session(options.frames);
        let mut child = tokio::process::Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", bin.display()));
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            panic!("no stdio pipes to {}", bin.display());
        };
        let outcome = run_session(BufReader::new(stdout), stdin, &frames, seed).await;
        let _ = child.start_kill();
        record(&mut report, outcome, seed, &frames);
    }
    report.tools_called = tools.into_iter().map(|(name, _)| name).collect();
    report
}

/// What every server's `tests/fuzz.rs` runs: [`fuzz_binary`] on `bin` with a small fixture
/// tree as `--root` (a Rust file, a `Cargo.toml`, a log) and a 5 s tool timeout, calling
/// every tool but `skip_tools` (those that reach the network or sleep by design). Panics
/// as [`fuzz_binary`] does, or when no session ran or no tool was called.
pub async fn fuzz_server(bin: &Path, skip_tools: &[&str]) -> FuzzReport {
    let root = super::temp_tree(&[
        ("src/main.rs", "fn main() { if true { todo!() } }\n"),
        ("Cargo.toml", "[package]\nname = \"x\"\n"),
        ("app.log", "2024-01-01T00:00:00Z ERROR boom 7\n"),
    ])
    .unwrap_or_else(|error| panic!("cannot create the fixture tree: {error}"));
    let root_arg = root.path().to_string_lossy().into_owned();
    let args = [
        "--root",
        root_arg.as_str(),
        "--tool-timeout-secs",
        "5",
        "--log-level",
        "error",
    ];
    let options = FuzzOptions {
        cases: 16,
        skip_tools: skip_tools.iter().map(|name| (*name).to_owned()).collect(),
        ..FuzzOptions::default()
    };
    let report = fuzz_binary(bin, &args, options).await;
    assert!(report.cases > 0, "no fuzz session ran: {report:?}");
    assert!(
        !report.tools_called.is_empty(),
        "no tool was called: {report:?}"
    );
    eprintln!("{report:?}");
    report
}

fn record(report: &mut FuzzReport, outcome: Result<u64, String>, seed: u64, frames: &[Vec<u8>]) {
    match outcome {
        Ok(responses) => {
            report.cases += 1;
            report.frames += frames.len() as u64;
            report.responses += responses;
        }
        Err(failure) => {
            let shown: Vec<String> = frames
                .iter()
                .map(|frame| {
                    let text = String::from_utf8_lossy(frame);
                    let mut cut: String = text.chars().take(300).collect();
                    if cut.len() < text.len() {
                        cut.push_str(&format!("… ({} bytes)", frame.len()));
                    }
                    cut
                })
                .collect();
            panic!(
                "fuzz case with seed {seed} failed: {failure}\nrerun: MCP_FUZZ_SEED={seed} \
                 MCP_FUZZ_CASES=1\nframes sent after the handshake:\n{}",
                shown.join("\n")
            );
        }
    }
}

/// The tools of `server` (but `skip`) with their input schemas, from its own
/// `tools/list` answer in a one-off in-process session.
async fn tool_schemas<S: ServerHandler>(server: S, skip: &[String]) -> Vec<(String, Value)> {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let serving = tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let tools = match ().serve(client_io).await {
        Ok(client) => {
            let tools = client.list_all_tools().await.unwrap_or_default();
            let _ = client.cancel().await;
            tools
        }
        Err(error) => panic!("the server did not complete the MCP handshake: {error}"),
    };
    serving.abort();
    tools
        .into_iter()
        .filter(|tool| !skip.iter().any(|name| *name == tool.name))
        .map(|tool| {
            (
                tool.name.to_string(),
                Value::Object((*tool.input_schema).clone()),
            )
        })
        .collect()
}

/// One session: handshake, the frames, a liveness ping. Returns the lines the server wrote.
async fn run_session<R, W>(
    mut read: R,
    mut write: W,
    frames: &[Vec<u8>],
    seed: u64,
) -> Result<u64, String>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let alive_id = format!("fuzz-alive-{seed}");
    let handshake = [
        json!({"jsonrpc": "2.0", "id": "fuzz-init", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];
    let mut input = Vec::new();
    for message in handshake {
        input.extend_from_slice(message.to_string().as_bytes());
        input.push(b'\n');
    }
    for frame in frames {
        input.extend_from_slice(frame);
        input.push(b'\n');
    }
    let ping = json!({"jsonrpc": "2.0", "id": alive_id, "method": "ping"});
    input.extend_from_slice(format!("\n{ping}\n").as_bytes());
    // Written concurrently with reading: the server may answer (and fill the pipe) before
    // it has read everything. The pipe stays open until the reader is done: EOF would end
    // the session.
    let writer = async move {
        if let Err(error) = write.write_all(&input).await {
            return error;
        }
        let _ = write.flush().await;
        std::future::pending::<std::io::Error>().await
    };
    let reader = async {
        let mut responses = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            let read_bytes = read
                .read_line(&mut line)
                .await
                .map_err(|error| format!("reading the server's output failed: {error}"))?;
            if read_bytes == 0 {
                return Err("the server closed its output (it stopped serving)".to_owned());
            }
            let message: Value = serde_json::from_str(line.trim_end()).map_err(|error| {
                format!("the server wrote a line that is not JSON ({error}): {line:?}")
            })?;
            responses += 1;
            if message["id"] == alive_id {
                return if message.get("result").is_some() {
                    Ok(responses)
                } else {
                    Err(format!("the liveness ping was answered with {message}"))
                };
            }
        }
    };
    tokio::select! {
        outcome = tokio::time::timeout(ALIVE_GUARD, reader) => outcome
            .unwrap_or_else(|_| Err(format!("no answer to the liveness ping within {ALIVE_GUARD:?} (the server hangs)"))),
        error = writer => Err(format!("writing to the server failed (it stopped reading): {error}")),
    }
}

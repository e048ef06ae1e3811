//! A minimal MCP client over stdio: JSON-RPC lines through serde_json, for the image smoke
//! tests and the benchmarks. Not rmcp on purpose: xtask is the build driver and must not
//! depend on the runtime crates it builds and tests.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

pub use crate::metadata::SmokeCall;

/// Protocol version offered in `initialize`: the newest one that still has the handshake.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
/// Generous: under qemu's TCG a server starts ~10-50x slower than natively.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// What one MCP session showed.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub server_name: String,
    pub tool_count: usize,
    pub called: String,
    pub call_is_error: bool,
    pub stderr: String,
}

/// A server process spoken to in JSON-RPC lines over stdio.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    next_id: u64,
}

impl Session {
    pub fn start(mut command: Command) -> Result<Session> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {command:?}"))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let stderr_pipe = child.stderr.take().context("piped stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        Ok(Session {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
            next_id: 1,
        })
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// `initialize` and `notifications/initialized`; returns the initialize result.
    pub fn initialize(&mut self) -> Result<Value> {
        let init = self.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "cargo-xtask", "version": env!("CARGO_PKG_VERSION")}
            }),
        )?;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(init)
    }

    /// The error for a server that went away: its exit status and everything it logged.
    fn exited(&mut self, doing: &str) -> anyhow::Error {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        anyhow!(
            "the server exited ({status}) {doing}; stderr:\n{}",
            self.stderr()
        )
    }

    pub fn send(&mut self, message: &Value) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        if stdin.write_all(&line).and_then(|()| stdin.flush()).is_err() {
            return Err(self.exited(&format!("before reading {}", message["method"])));
        }
        Ok(())
    }

    /// Sends a request and waits for the response with its id; returns `result`, or the
    /// JSON-RPC error as an `Err`.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let line = match self.lines.recv_timeout(RESPONSE_TIMEOUT) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    bail!("no answer to {method} within {RESPONSE_TIMEOUT:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.exited(&format!("before answering {method}")));
                }
            };
            let message: Value = serde_json::from_str(&line)
                .with_context(|| format!("the server wrote a non-JSON line to stdout: {line:?}"))?;
            if message["id"] != json!(id) {
                continue; // a notification (e.g. logging) or an unrelated message
            }
            if let Some(error) = message.get("error") {
                return Err(anyhow!("{method} returned JSON-RPC error {error}"));
            }
            return message
                .get("result")
                .cloned()
                .with_context(|| format!("{method} answer lacks `result`: {line}"));
        }
    }

    /// `tools/call`, timed from writing the request to reading its answer. A tool error
    /// (`isError`) is an `Err`: benchmarks time successful calls only.
    pub fn timed_call(&mut self, tool: &str, arguments: &Value) -> Result<(Duration, Value)> {
        let started = Instant::now();
        let result = self.request("tools/call", json!({"name": tool, "arguments": arguments}))?;
        let elapsed = started.elapsed();
        if result["isError"] == json!(true) {
            bail!("tool {tool} failed on {arguments}: {result}");
        }
        Ok((elapsed, result))
    }

    /// The server's peak resident set size so far (`VmHWM` of `/proc/<pid>/status`), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_vm_hwm(&status).with_context(|| format!("no VmHWM line in {path}"))
    }

    /// Closes stdin and expects a clean exit.
    pub fn finish(mut self) -> Result<String> {
        drop(self.stdin.take());
        for _ in 0..(RESPONSE_TIMEOUT.as_millis() / 50) {
            if let Some(status) = self.child.try_wait()? {
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = reader.join();
                }
                if !status.success() {
                    bail!(
                        "the server exited with {status} on stdin EOF; stderr:\n{}",
                        self.stderr()
                    );
                }
                return Ok(self.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        bail!("the server did not exit within {RESPONSE_TIMEOUT:?} after stdin EOF")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `VmHWM:  1234 kB` line of `/proc/<pid>/status`, in KiB.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
}

/// The tool to call: the declared smoke call, else a read-only tool without required
/// arguments, called with `{}`.
pub fn pick_call(tools: &[Value], declared: Option<&SmokeCall>) -> Result<SmokeCall> {
    if let Some(call) = declared {
        if !tools.iter().any(|t| t["name"] == call.tool.as_str()) {
            bail!(
                "the declared smoke-call tool `{}` is not in tools/list",
                call.tool
            );
        }
        return Ok(call.clone());
    }
    let no_required = |tool: &Value| {
        tool["inputSchema"]["required"]
            .as_array()
            .is_none_or(Vec::is_empty)
    };
    let read_only = |tool: &Value| tool["annotations"]["readOnlyHint"] == json!(true);
    tools
        .iter()
        .find(|t| read_only(t) && no_required(t))
        .map(|t| SmokeCall {
            tool: t["name"].as_str().unwrap_or_default().to_owned(),
            arguments: json!({}),
        })
        .context(
            "no read-only tool without required arguments to call; declare one in \
             [package.metadata.mcp-foundry.smoke-call] (tool = \"...\", arguments = { ... })",
        )
}

/// initialize, notifications/initialized, tools/list, tools/call, then EOF and a clean exit.
pub fn mcp_session(command: Command, declared: Option<&SmokeCall>) -> Result<SessionReport> {
    let mut session = Session::start(command)?;
    let init = session.initialize()?;
    let server_name = init["serverInfo"]["name"]
        .as_str()
        .context("initialize result lacks serverInfo.name")?
        .to_owned();
    let listed = session.request("tools/list", json!({}))?;
    let tools = listed["tools"]
        .as_array()
        .context("tools/list result lacks `tools`")?
        .clone();
    if tools.is_empty() {
        bail!("the server lists no tools");
    }
    let call = pick_call(&tools, declared)?;
    let result = session.request(
        "tools/call",
        json!({"name": call.tool, "arguments": call.arguments}),
    )?;
    if result.get("content").is_none() && result.get("structuredContent").is_none() {
        bail!(
            "tools/call {} returned neither content nor structuredContent: {result}",
            call.tool
        );
    }
    let call_is_error = result["isError"] == json!(true);
    if call_is_error && declared.is_some() {
        bail!("the declared smoke call {} failed: {result}", call.tool);
    }
    let stderr = session.finish()?;
    Ok(SessionReport {
        server_name,
        tool_count: tools.len(),
        called: call.tool,
        call_is_error,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_call_wins_and_must_exist() {
        let tools = vec![json!({"name": "a", "inputSchema": {"type": "object"}})];
        let declared = SmokeCall {
            tool: "a".into(),
            arguments: json!({"x": 1}),
        };
        assert_eq!(pick_call(&tools, Some(&declared)).unwrap(), declared);
        let missing = SmokeCall {
            tool: "b".into(),
            arguments: json!({}),
        };
        assert!(
            pick_call(&tools, Some(&missing))
                .unwrap_err()
                .to_string()
                .contains("`b`")
        );
    }

    #[test]
    fn without_a_declaration_a_read_only_argument_free_tool_is_called() {
        let tools = vec![
            json!({"name": "write", "annotations": {"readOnlyHint": false}, "inputSchema": {}}),
            json!({"name": "needs", "annotations": {"readOnlyHint": true}, "inputSchema": {"required": ["path"]}}),
            json!({"name": "info", "annotations": {"readOnlyHint": true}, "inputSchema": {"required": []}}),
        ];
        assert_eq!(pick_call(&tools, None).unwrap().tool, "info");
        assert!(pick_call(&tools[..2], None).is_err());
    }

    /// A stand-in server written in the shell: answers by request id, like a real one.
    fn fake_server(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_session_runs_handshake_list_and_call() {
        let script = r#"
            read init; echo '{"jsonrpc":"2.0","method":"notifications/message","params":{}}'
            echo '{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"fake","version":"1"}}}'
            read initialized; read list
            echo '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"info","annotations":{"readOnlyHint":true},"inputSchema":{"type":"object"}}]}}'
            read call; echo '{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"ok"}]}}'
            echo logged >&2; read eof || exit 0"#;
        let report = mcp_session(fake_server(script), None).unwrap();
        assert_eq!(
            (
                report.server_name.as_str(),
                report.tool_count,
                report.called.as_str()
            ),
            ("fake", 1, "info")
        );
        assert!(!report.call_is_error);
        assert!(report.stderr.contains("logged"));
    }

    #[test]
    fn json_rpc_errors_and_early_exits_fail_the_session() {
        let error =
            r#"read init; echo '{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":"no"}}'"#;
        assert!(
            mcp_session(fake_server(error), None)
                .unwrap_err()
                .to_string()
                .contains("-32600")
        );
        let dies = "echo boom >&2; exit 3";
        let message = format!("{:#}", mcp_session(fake_server(dies), None).unwrap_err());
        assert!(message.contains("boom"), "{message}");
    }

    #[test]
    fn a_declared_call_that_fails_fails_the_session() {
        let script = r#"
            read init; echo '{"jsonrpc":"2.0","id":1,"result":{"serverInfo":{"name":"fake"}}}'
            read initialized; read list
            echo '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","inputSchema":{}}]}}'
            read call; echo '{"jsonrpc":"2.0","id":3,"result":{"isError":true,"content":[]}}'
            read eof || exit 0"#;
        let declared = SmokeCall {
            tool: "t".into(),
            arguments: json!({}),
        };
        assert!(
            mcp_session(fake_server(script), Some(&declared))
                .unwrap_err()
                .to_string()
                .contains("failed")
        );
    }

    #[test]
    fn timed_calls_fail_on_tool_errors_and_peak_rss_is_read() {
        let script = r#"
            read init; echo '{"jsonrpc":"2.0","id":1,"result":{"serverInfo":{"name":"fake"}}}'
            read initialized
            read call; echo '{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"ok"}]}}'
            read call; echo '{"jsonrpc":"2.0","id":3,"result":{"isError":true,"content":[]}}'
            read eof || exit 0"#;
        let mut session = Session::start(fake_server(script)).unwrap();
        session.initialize().unwrap();
        let (elapsed, result) = session.timed_call("t", &json!({})).unwrap();
        assert!(elapsed > Duration::ZERO);
        assert_eq!(result["content"][0]["text"], "ok");
        let err = session.timed_call("t", &json!({"x": 1})).unwrap_err();
        assert!(err.to_string().contains("tool t failed"), "{err}");
        // A shell uses at least some memory.
        assert!(session.peak_rss_kib().unwrap() > 0);
        session.finish().unwrap();
    }

    #[test]
    fn vm_hwm_is_parsed_in_kib() {
        let status = "Name:\tsh\nVmPeak:\t   9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234));
        assert_eq!(parse_vm_hwm("Name:\tsh\n"), None);
    }
}

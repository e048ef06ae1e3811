//! A minimal MCP client over stdio: newline-delimited JSON-RPC, one request at a time,
//! timed from the write of the request to the read of its response.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A spawned server, initialized.
pub struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    name: String,
    /// Spawn until the `initialize` response was read.
    pub startup: Duration,
}

impl Session {
    /// Spawns `command` and completes the MCP handshake.
    pub fn start(name: &str, mut command: Command) -> Result<Self> {
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {name}: {command:?}"))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?);
        let mut session = Self {
            child,
            stdin,
            stdout,
            next_id: 1,
            name: name.to_owned(),
            startup: Duration::ZERO,
        };
        session.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "cargo-xtask-bench-peers", "version": "1"}
            }),
        )?;
        session.startup = started.elapsed();
        session.notify("notifications/initialized")?;
        Ok(session)
    }

    fn notify(&mut self, method: &str) -> Result<()> {
        let line = json!({"jsonrpc": "2.0", "method": method}).to_string();
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// Sends one request and waits for its response (notifications in between are skipped).
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .with_context(|| format!("{} closed its input", self.name))?;
        let mut buffer = String::new();
        loop {
            buffer.clear();
            if self.stdout.read_line(&mut buffer)? == 0 {
                bail!("{} exited before answering {method}", self.name);
            }
            let Ok(message) = serde_json::from_str::<Value>(&buffer) else {
                continue; // not JSON-RPC (a stray print): not ours to time
            };
            if message.get("id") == Some(&json!(id)) {
                if let Some(error) = message.get("error") {
                    bail!("{} answered {method} with an error: {error}", self.name);
                }
                return Ok(message["result"].clone());
            }
        }
    }

    /// Calls a tool; a tool error fails the benchmark (errors are not what is measured).
    pub fn call(&mut self, tool: &str, arguments: &Value) -> Result<(Duration, Value)> {
        let started = Instant::now();
        let result = self.request("tools/call", json!({"name": tool, "arguments": arguments}))?;
        let elapsed = started.elapsed();
        if result.get("isError") == Some(&Value::Bool(true)) {
            bail!(
                "{} tool {tool} failed on {arguments}: {}",
                self.name,
                result["content"]
            );
        }
        Ok((elapsed, result))
    }

    /// Peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")
    }

    /// Closes stdin (the MCP way to stop a stdio server) and reaps the process.
    pub fn finish(mut self) -> Result<()> {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

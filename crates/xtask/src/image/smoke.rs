//! Runs a built image the way a container engine would, without one: `skopeo inspect` must
//! accept it, `umoci unpack` turns it into a runtime bundle, and the bundle's process (as
//! umoci derived it from the image config: args, env, user) runs chrooted into the rootfs.
//! Over its stdio we complete an MCP handshake, `tools/list` and one `tools/call`.
//!
//! The MCP client here is plain JSON-RPC lines through serde_json rather than rmcp: xtask
//! is the build driver and must not depend on the runtime crates it builds and tests.
//!
//! The dispatch image is also run under `qemu-x86_64 -cpu Haswell` (no AVX-512, no SSE4A):
//! the launcher must pick the generic build, and the generic build must answer MCP there.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LAUNCHER_BIN, VARIANTS_DIR};

/// Protocol version offered in `initialize`: the newest one that still has the handshake.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
/// Generous: under qemu's TCG a server starts ~10-50x slower than natively.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// The tool call a server declares for smoke tests in
/// `[package.metadata.mcp-foundry.smoke-call]`: `tool = "..."`, `arguments = { ... }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SmokeCall {
    pub tool: String,
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    json!({})
}

#[derive(Debug, Clone)]
pub struct SmokeTarget {
    pub layout_dir: PathBuf,
    pub tag: String,
    pub server: String,
    pub call: Option<SmokeCall>,
    /// For the dispatch image: the variants it contains (enables the qemu fallback check).
    pub dispatch_variants: Vec<String>,
}

/// What one MCP session showed.
#[derive(Debug, Clone)]
pub struct SessionReport {
    pub server_name: String,
    pub tool_count: usize,
    pub called: String,
    pub call_is_error: bool,
    pub stderr: String,
}

/// The process `umoci unpack` derived from the image config.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
}

pub fn smoke_image(target: &SmokeTarget) -> Result<String> {
    let reference = format!("{}:{}", target.layout_dir.display(), target.tag);
    let inspect = skopeo_inspect(&reference)?;
    if inspect["Architecture"] != "amd64" && inspect["Architecture"] != "arm64" {
        bail!(
            "skopeo reports architecture {} for {reference}",
            inspect["Architecture"]
        );
    }

    let work = tempfile::tempdir().context("creating a temporary directory for the bundle")?;
    let bundle = work.path().join("bundle");
    let process = umoci_unpack(&reference, &bundle)?;
    let rootfs = bundle.join("rootfs");
    if process.uid == 0 {
        bail!("the image runs as root; its config must name the non-root user");
    }

    let version = run_to_end(chroot_command(&rootfs, &process).arg("--version"))?;
    // `--version` names the variant the binary was built as (mcp-rust-core's build info).
    let running = version
        .lines()
        .find_map(|line| line.strip_prefix("variant:"))
        .map(str::trim)
        .with_context(|| format!("`--version` names no variant:\n{version}"))?
        .to_owned();
    if target.dispatch_variants.is_empty() && running != target.tag {
        bail!(
            "the {} image runs a binary built as variant {running}",
            target.tag
        );
    }
    let session = mcp_session(chroot_command(&rootfs, &process), target.call.as_ref())
        .context("MCP session with the chrooted entrypoint")?;
    let call_note = if session.call_is_error {
        " (isError)"
    } else {
        ""
    };
    let mut report = format!(
        "[{}] uid {} | {} tools | called {}{call_note} | {} ({running} build)",
        session.server_name,
        process.uid,
        session.tool_count,
        session.called,
        version.lines().next().unwrap_or_default(),
    );

    if !target.dispatch_variants.is_empty() {
        report.push_str(&check_dispatch_under_qemu(
            &rootfs,
            &target.server,
            &target.dispatch_variants,
            target.call.as_ref(),
        )?);
    }
    Ok(report)
}

pub fn skopeo_inspect(reference: &str) -> Result<Value> {
    let output = Command::new("skopeo")
        .args(["inspect", &format!("oci:{reference}")])
        .output()
        .context("cannot run skopeo (Debian package `skopeo`)")?;
    if !output.status.success() {
        bail!(
            "skopeo inspect oci:{reference} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("skopeo inspect printed invalid JSON")
}

/// `umoci unpack` (rootless when not root) and the process of the generated `config.json`.
pub fn umoci_unpack(reference: &str, bundle: &Path) -> Result<BundleProcess> {
    let mut command = Command::new("umoci");
    command.arg("unpack");
    if !running_as_root() {
        command.arg("--rootless");
    }
    let output = command
        .args(["--image", reference])
        .arg(bundle)
        .output()
        .context("cannot run umoci (Debian package `umoci`)")?;
    if !output.status.success() {
        bail!(
            "umoci unpack --image {reference} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let config_path = bundle.join("config.json");
    let config: Value = serde_json::from_slice(
        &std::fs::read(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .context("umoci wrote an invalid config.json")?;
    let process = &config["process"];
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    Ok(BundleProcess {
        args: strings(&process["args"]),
        env: strings(&process["env"]),
        uid: process["user"]["uid"].as_u64().unwrap_or(0) as u32,
        gid: process["user"]["gid"].as_u64().unwrap_or(0) as u32,
        cwd: process["cwd"].as_str().unwrap_or("/").to_owned(),
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `env -i <image env> chroot --userspec=uid:gid <rootfs> <args>`: the image's process with
/// only the image's environment, as the image's user.
fn chroot_command(rootfs: &Path, process: &BundleProcess) -> Command {
    let mut command = Command::new("env");
    // `env -i` empties PATH, so chroot is named by its host path.
    command
        .arg("-i")
        .args(&process.env)
        .arg(host_program("chroot"));
    command
        .arg(format!("--userspec={}:{}", process.uid, process.gid))
        .arg(rootfs)
        .args(&process.args)
        // chroot(1) starts in `/`, a container engine in the image's working directory, and
        // the servers refuse `/` as an implicit root: name the working directory instead.
        .args(["--root", &process.cwd]);
    command
}

/// `name` found on the host's PATH or in the sbin directories (not on every user's PATH).
fn host_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs a command to completion (with the response timeout) and returns its stdout.
fn run_to_end(command: &mut Command) -> Result<String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().context("piped stdout")?;
    let mut stderr = child.stderr.take().context("piped stderr")?;
    std::thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    let Ok((out, err)) = rx.recv_timeout(RESPONSE_TIMEOUT) else {
        let _ = child.kill();
        bail!("{command:?} did not finish within {RESPONSE_TIMEOUT:?}");
    };
    let status = child.wait()?;
    if !status.success() {
        bail!("{command:?} failed with {status}: {err}");
    }
    Ok(out)
}

/// A server process spoken to in JSON-RPC lines over stdio.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    next_id: u64,
}

impl Session {
    fn start(mut command: Command) -> Result<Session> {
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

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
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

    fn send(&mut self, message: &Value) -> Result<()> {
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
    fn request(&mut self, method: &str, params: Value) -> Result<Value> {
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

    /// Closes stdin and expects a clean exit.
    fn finish(mut self) -> Result<String> {
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
    let init = session.request(
        "initialize",
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "cargo-xtask-image-smoke", "version": env!("CARGO_PKG_VERSION")}
        }),
    )?;
    let server_name = init["serverInfo"]["name"]
        .as_str()
        .context("initialize result lacks serverInfo.name")?
        .to_owned();
    session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
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

/// Runs the dispatch image's launcher and generic build under a CPU without the other
/// variants' features, from the unpacked rootfs.
fn check_dispatch_under_qemu(
    rootfs: &Path,
    server: &str,
    variants: &[String],
    call: Option<&SmokeCall>,
) -> Result<String> {
    if !variants.iter().any(|v| v == "generic") {
        return Ok(String::new());
    }
    let launcher = rootfs.join("usr/local/bin").join(LAUNCHER_BIN);
    let variants_dir = rootfs.join(VARIANTS_DIR);
    // `program` (under qemu on a Haswell CPU, or natively) with the launcher's settings
    // pointing into the rootfs.
    let command = |on_haswell: bool, program: &Path| {
        let mut command = if on_haswell {
            let mut qemu = Command::new("qemu-x86_64");
            qemu.args(["-cpu", "Haswell"]).arg(program);
            qemu
        } else {
            Command::new(program)
        };
        command
            .env("MCP_FOUNDRY_SERVER", server)
            .env("MCP_FOUNDRY_VARIANTS_DIR", &variants_dir)
            .env("MCP_FOUNDRY_LAUNCHER_VERBOSE", "1")
            .env_remove("MCP_FOUNDRY_VARIANT");
        command
    };
    // The launcher execs the server natively (qemu-user does not follow execve), so this
    // checks the choice; the next session checks that the generic build runs on Haswell.
    let launched = mcp_session(command(true, &launcher), call)
        .context("MCP through the launcher under qemu -cpu Haswell")?;
    let chosen =
        launcher_choice(&launched.stderr).context("the launcher did not report its choice")?;
    if chosen != "generic" {
        bail!("under qemu -cpu Haswell the launcher chose {chosen}, expected generic");
    }
    let generic = variants_dir.join("generic").join(server);
    mcp_session(command(true, &generic), call)
        .context("MCP with the generic build under qemu -cpu Haswell")?;

    let native =
        mcp_session(command(false, &launcher), call).context("MCP through the launcher")?;
    Ok(format!(
        " | qemu Haswell: launcher chose generic, generic answers MCP | this CPU: launcher chose {}",
        launcher_choice(&native.stderr).unwrap_or("?")
    ))
}

/// The variant named in the launcher's verbose `running the <variant> build: ...` line.
fn launcher_choice(stderr: &str) -> Option<&str> {
    let prefix = format!("{LAUNCHER_BIN}: running the ");
    stderr
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.split(' ').next())
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
}

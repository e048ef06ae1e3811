//! The integration-test client every server's `tests/*.rs` shares (cargo feature `testing`).
//!
//! [`TestServer`] spawns the real server binary and talks to it with rmcp's own client over
//! the child-process transport, exactly as an MCP client would:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mcp_server_runtime::testing::TestServer;
//! // In a server crate's tests/*.rs: env!("CARGO_BIN_EXE_bash-god")
//! let bin = std::path::Path::new("target/debug/bash-god");
//! let server = TestServer::spawn(bin, &["--root", "."]).await?;
//! let tools = server.list_tools().await?;
//! let result = server.call("analyze_command", serde_json::json!({"command": "ls | grep x"})).await?;
//! assert_ne!(result.is_error, Some(true));
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::path::Path;

mod fuzz;
mod fuzz_input;

pub use fuzz::{FuzzOptions, FuzzReport, fuzz_binary, fuzz_json_rpc, fuzz_server};

use anyhow::Context as _;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest, ServerResult, Tool,
};
use rmcp::service::{PeerRequestOptions, RequestHandle, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceError, ServiceExt as _};

/// A running server binary with an initialized MCP client session.
///
/// The child's stderr is inherited, so its logs show up in the test output. Dropping a
/// `TestServer` without [`shutdown`](Self::shutdown) still kills the child.
pub struct TestServer {
    client: RunningService<RoleClient, ()>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("peer_info", &self.client.peer_info())
            .finish()
    }
}

/// A `tools/call` in flight, which can be awaited or cancelled.
#[derive(Debug)]
pub struct PendingCall {
    handle: RequestHandle<RoleClient>,
}

impl PendingCall {
    /// Waits for the result. JSON-RPC errors come back as `Err`.
    pub async fn result(self) -> Result<CallToolResult, ServiceError> {
        match self.handle.await_response().await? {
            ServerResult::CallToolResult(result) => Ok(result),
            _ => Err(ServiceError::UnexpectedResponse),
        }
    }

    /// Sends `notifications/cancelled` for this call.
    pub async fn cancel(self, reason: &str) -> Result<(), ServiceError> {
        self.handle.cancel(Some(reason.to_owned())).await
    }
}

impl TestServer {
    /// Starts `bin args...` and performs the MCP handshake.
    pub async fn spawn(bin: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut command = tokio::process::Command::new(bin);
        command.args(args);
        let transport = TokioChildProcess::new(command)
            .with_context(|| format!("cannot start server binary {}", bin.display()))?;
        let client = ()
            .serve(transport)
            .await
            .with_context(|| format!("MCP handshake with {} failed", bin.display()))?;
        Ok(Self { client })
    }

    /// The server's `initialize` answer (name, version, capabilities, instructions).
    pub fn server_info(&self) -> Option<rmcp::model::ServerPeerInfo> {
        self.client.peer_info().as_deref().cloned()
    }

    /// Every tool the server lists (all pages).
    pub async fn list_tools(&self) -> Result<Vec<Tool>, ServiceError> {
        self.client.list_all_tools().await
    }

    /// Calls `name` with `arguments` (a JSON object, or `null` for none) and waits.
    /// Tool failures come back as `Ok` with `is_error: Some(true)`, and so do arguments
    /// that do not match the input schema (rmcp reports those as tool errors so the model
    /// can correct itself); JSON-RPC errors (unknown tool: `-32602 tool not found`) as `Err`.
    pub async fn call(
        &self,
        name: &str,
        arguments: serde_json::Value,
    ) -> Result<CallToolResult, ServiceError> {
        self.start_call(name, arguments).await?.result().await
    }

    /// Sends a `tools/call` and returns without waiting, so the call can be cancelled.
    pub async fn start_call(
        &self,
        name: &str,
        arguments: serde_json::Value,
    ) -> Result<PendingCall, ServiceError> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        match arguments {
            serde_json::Value::Null => {}
            serde_json::Value::Object(map) => params = params.with_arguments(map),
            other => {
                return Err(ServiceError::McpError(rmcp::ErrorData::invalid_params(
                    format!(
                        "TestServer::call: tool arguments must be a JSON object or null, got {other}"
                    ),
                    None,
                )));
            }
        }
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = self
            .client
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await?;
        Ok(PendingCall { handle })
    }

    /// Closes the session: stdin is closed and the child is waited for (SIGTERM, then kill,
    /// if it does not exit on its own).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.client
            .cancel()
            .await
            .context("shutting down the test server")?;
        Ok(())
    }
}

/// Creates a FIFO (named pipe) at `path`, for tests that hand one to a tool where a regular
/// file is expected: nothing ever opens its other end, so a blocking open would hang.
pub fn make_fifo(path: &Path) -> std::io::Result<()> {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )?;
    Ok(())
}

/// Reads a server's stderr until the runtime logs the address `--transport http` bound
/// (`listening on http://ADDR/mcp`) and returns `ADDR`; keeps draining stderr afterwards
/// so the child never blocks on a full pipe. `None` if the server exits first.
pub async fn http_listen_addr(stderr: tokio::process::ChildStderr) -> Option<String> {
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split("/mcp").next().unwrap_or_default().to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Some(addr);
        }
    }
    None
}

/// What a test expects of one tool's annotations; `None` accepts any declared value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub idempotent: Option<bool>,
    pub open_world: Option<bool>,
}

impl Hints {
    /// A tool that only reads, locally: read-only, not destructive, closed world.
    pub const READ_ONLY_LOCAL: Self = Self {
        read_only: Some(true),
        destructive: Some(false),
        idempotent: None,
        open_world: Some(false),
    };
}

/// Asserts that `tools` (a `tools/list` answer) are exactly the tools named in `expected`
/// (in any order), and that each has a description, an output schema of type `object`
/// (tools return structured output), and all four annotation hints declared, with the
/// values `hints(name)` asks for.
pub fn assert_tool_list(tools: &[Tool], expected: &[&str], hints: impl Fn(&str) -> Hints) {
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort_unstable();
    let mut wanted = expected.to_vec();
    wanted.sort_unstable();
    assert_eq!(names, wanted, "tools/list names");
    for tool in tools {
        let name = tool.name.as_ref();
        assert!(
            tool.description
                .as_deref()
                .is_some_and(|d| !d.trim().is_empty()),
            "{name} has no description"
        );
        let output = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no output schema"));
        assert_eq!(
            output.get("type"),
            Some(&serde_json::json!("object")),
            "{name}'s output schema is not an object"
        );
        let declared = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no annotations"));
        let expected = hints(name);
        for (hint, value, want) in [
            ("readOnlyHint", declared.read_only_hint, expected.read_only),
            (
                "destructiveHint",
                declared.destructive_hint,
                expected.destructive,
            ),
            (
                "idempotentHint",
                declared.idempotent_hint,
                expected.idempotent,
            ),
            (
                "openWorldHint",
                declared.open_world_hint,
                expected.open_world,
            ),
        ] {
            let value = value.unwrap_or_else(|| panic!("{name} does not declare {hint}"));
            if let Some(want) = want {
                assert_eq!(value, want, "{name}'s {hint}");
            }
        }
    }
}

/// A temporary directory holding `files` (`relative path -> contents`; parent directories
/// are created; a path ending in `/` is an empty directory).
pub fn temp_tree(files: &[(&str, &str)]) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (path, contents) in files {
        let target = dir.path().join(path);
        if path.ends_with('/') {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, contents)?;
    }
    Ok(dir)
}

/// Asserts that the `## Tools` section of `README.md` in `crate_dir` (a server's
/// `env!("CARGO_MANIFEST_DIR")`) documents exactly `tools` (a `tools/list` answer of the real
/// binary). A documented tool is a `` ### `name {…}` `` heading or a `` | `name {…}` | ``
/// table row.
pub fn assert_readme_documents(tools: &[Tool], crate_dir: &str) {
    let readme = Path::new(crate_dir).join("README.md");
    let text = std::fs::read_to_string(&readme)
        .unwrap_or_else(|error| panic!("reading {}: {error}", readme.display()));
    let documented = readme_tools(&text);
    let served: BTreeSet<String> = tools.iter().map(|tool| tool.name.to_string()).collect();
    assert!(
        served == documented,
        "{}: `## Tools` documents {documented:?} but the server lists {served:?} (missing \
         from the README: {:?}; not served: {:?})",
        readme.display(),
        served.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&served).collect::<Vec<_>>(),
    );
}

/// The tool names a README's `## Tools` section documents.
fn readme_tools(readme: &str) -> BTreeSet<String> {
    let mut in_tools = false;
    let mut tools = BTreeSet::new();
    for line in readme.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            in_tools = heading.trim() == "Tools";
            continue;
        }
        if !in_tools {
            continue;
        }
        let rest = line
            .strip_prefix("### `")
            .or_else(|| line.strip_prefix("| `"));
        let Some(rest) = rest else { continue };
        let Some((name, after)) = rest.split_once(' ') else {
            continue;
        };
        if after.starts_with('{')
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            tools.insert(name.to_owned());
        }
    }
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_tool_parser_reads_both_styles() {
        let readme = "# x\n## Tools\n### `read_file {path}`\n| `run {cmd}` | a |\n| `sudo` `su` | rule |\n\
                      ## Other\n### `not_a_tool {x}`\n";
        let expected: BTreeSet<String> =
            ["read_file", "run"].iter().map(|s| s.to_string()).collect();
        assert_eq!(readme_tools(readme), expected);
    }
}

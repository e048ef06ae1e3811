//! A minimal server built on the runtime, used by the runtime's own integration tests
//! (`tests/runtime.rs`) and as a reference for server authors. Built only with the
//! `testing` feature; never shipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mcp_server_runtime::{Opened, ServerContext, ToolError, run_blocking};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};

#[derive(clap::Parser)]
#[command(
    name = "mcp-server-runtime-demo",
    about = "Demo MCP server of the mcp-server-runtime runtime"
)]
struct Args {
    #[command(flatten)]
    common: mcp_server_runtime::CommonArgs,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct EchoInput {
    /// Text to send back.
    text: String,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct EchoOutput {
    text: String,
    bytes: usize,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct PathInput {
    /// A path inside the server's roots (relative paths resolve against the first root).
    path: String,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct PathInfo {
    /// Canonical path.
    path: String,
    is_dir: bool,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct SpinStats {
    /// Spins that ended because their request was cancelled or timed out.
    stopped_by_cancel: u64,
}

#[derive(Clone)]
struct Demo {
    tool_router: ToolRouter<Self>,
    context: ServerContext,
    stopped_by_cancel: Arc<AtomicU64>,
}

#[tool_router]
impl Demo {
    fn new(context: ServerContext) -> Self {
        Self {
            tool_router: Self::tool_router(),
            context,
            stopped_by_cancel: Arc::default(),
        }
    }

    /// Returns the text and its size.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn echo(
        &self,
        Parameters(input): Parameters<EchoInput>,
    ) -> Result<Json<EchoOutput>, ToolError> {
        Ok(Json(EchoOutput {
            bytes: input.text.len(),
            text: input.text,
        }))
    }

    /// Resolves a path inside the roots.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn stat(
        &self,
        Parameters(input): Parameters<PathInput>,
    ) -> Result<Json<PathInfo>, ToolError> {
        // Opened beneath its root: the answer is about what was opened, not a name.
        let opened = self.context.roots.open(&input.path)?;
        Ok(Json(PathInfo {
            is_dir: matches!(opened, Opened::Dir(_)),
            path: opened.path().display().to_string(),
        }))
    }

    /// Busy work that runs until the request is cancelled or times out.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn spin(&self) -> Result<Json<SpinStats>, ToolError> {
        let stopped = self.stopped_by_cancel.clone();
        run_blocking(move |flag| {
            while !flag.is_cancelled() {
                std::thread::sleep(Duration::from_millis(2));
            }
            stopped.fetch_add(1, Ordering::SeqCst);
            Err(ToolError::cancelled())
        })
        .await
    }

    /// How many spins were stopped through their cancel flag.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn spin_stats(&self) -> Result<Json<SpinStats>, ToolError> {
        Ok(Json(SpinStats {
            stopped_by_cancel: self.stopped_by_cancel.load(Ordering::SeqCst),
        }))
    }

    /// Panics, to show a bug in one tool does not take the server down.
    #[tool(annotations(
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn boom(&self) -> Result<Json<SpinStats>, ToolError> {
        panic!("demo panic")
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Demo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("mcp-server-runtime-demo", env!("CARGO_PKG_VERSION")),
        )
    }
}

fn main() -> std::process::ExitCode {
    mcp_server_runtime::run_server(
        mcp_server_runtime::server_identity!(),
        |args: &Args| &args.common,
        |_args, ctx| Ok::<_, std::convert::Infallible>(Demo::new(ctx)),
    )
}

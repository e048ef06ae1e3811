//! The runtime every mcp-foundry MCP server is built on.
//!
//! A server crate is a `lib.rs` holding an rmcp [`ServerHandler`](rmcp::ServerHandler)
//! (tools declared with `#[tool_router]`/`#[tool]`) and a `main.rs` of a few lines:
//!
//! ```no_run
//! # use rmcp::{ServerHandler, model::ServerConfig};
//! # #[derive(Clone)] struct BashGod;
//! # impl ServerHandler for BashGod { fn get_info(&self) -> ServerConfig { ServerConfig::default() } }
//! # impl BashGod { fn new(_ctx: mcp_server_runtime::ServerContext, _allow_exec: bool) -> Self { BashGod } }
//! #[derive(clap::Parser)]
//! #[command(name = "bash-god", about)]
//! struct Args {
//!     #[command(flatten)]
//!     common: mcp_server_runtime::CommonArgs,
//!     #[arg(long)]
//!     allow_exec: bool,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     mcp_server_runtime::run_server(
//!         mcp_server_runtime::server_identity!(),
//!         |args: &Args| &args.common,
//!         |args, ctx| Ok::<_, std::convert::Infallible>(BashGod::new(ctx, args.allow_exec)),
//!     )
//! }
//! ```
//!
//! [`run_server`] parses the common options ([`CommonArgs`]: `--transport stdio|http`,
//! `--listen`, `--port`, `--root`, `--log-level`, `--max-output-bytes`,
//! `--tool-timeout-secs`, `--version`), logs to stderr, resolves the roots, and serves the
//! server wrapped in [`Guarded`], which enforces the [`Limits`] on every tool call
//! (timeout, `notifications/cancelled`, output cap, panics as `isError` results).
//!
//! Inside a tool:
//! - return `Result<Json<T>, ToolError>` (spelled out, see [`ToolResult`] for why):
//!   `Ok(rmcp::Json(value))` for structured output, or a [`ToolError`] (`invalid_input`,
//!   `not_found`, `denied`, `failed`, `timeout`) that the caller receives as an `isError`
//!   result;
//! - open every user-supplied path through the server's [`ServerContext::roots`]:
//!   [`Roots::open_file`], [`Roots::open_dir`] or [`Roots::open`] open beneath the root's
//!   descriptor, so a symlink swapped in cannot redirect them, and refuse FIFOs and devices
//!   without blocking (`?` converts a [`ConfineError`] into a `ToolError`);
//!   [`confine_path`] only checks a name, for messages and path-only APIs;
//! - run CPU- or IO-heavy work with [`run_blocking`], checking its [`CancelFlag`] in
//!   long loops so cancelled and timed-out calls stop early.
//!
//! Integration tests drive the real binary through `testing::TestServer` (cargo feature
//! `testing`).

mod guarded;
pub mod host;
mod http;
pub mod limits;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tool;
mod truncate;

// Servers reach the build facts and path confinement through the runtime, so a server crate
// depends on one crate for everything it shares with the others.
pub use build_info::{BUILD_INFO, BuildInfo, version_string};
pub use confined_fs::{
    ConfineError, ConfinedDir, ConfinedFile, DirEntry, EntryKind, Opened, Roots, confine_path,
    describe_kind,
};
pub use guarded::Guarded;
pub use http::{AUTH_TOKEN_ENV, HttpArgs};
pub use limits::Limits;
pub use runtime::{
    CommonArgs, RootsError, ServerContext, ServerIdentity, Transport, print_version, run_server,
    run_server_from, wants_version,
};
pub use tool::{
    CancelFlag, ToolError, ToolErrorKind, ToolResult, current_cancel_flag, round2, run_blocking,
};
pub use truncate::{HeadTail, truncate_middle, truncated_bytes, truncation_marker};

//! The devops MCP server binary: the shared runtime serves [`devops::Devops`].

use std::convert::Infallible;
use std::process::ExitCode;

#[derive(clap::Parser)]
#[command(name = "devops", about)]
struct Args {
    #[command(flatten)]
    common: mcp_rust_core::CommonArgs,
}

fn main() -> ExitCode {
    mcp_rust_core::run_server(
        mcp_rust_core::server_identity!(),
        |args: &Args| &args.common,
        |_, context| Ok::<_, Infallible>(devops::Devops::new(context)),
    )
}

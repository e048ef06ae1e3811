//! The devops MCP server binary: the shared runtime serves [`devops::Devops`].

use std::convert::Infallible;
use std::process::ExitCode;

#[derive(clap::Parser)]
#[command(name = "devops", about)]
struct Args {
    #[command(flatten)]
    common: mcp_server_runtime::CommonArgs,
}

fn main() -> ExitCode {
    mcp_server_runtime::run_server(
        mcp_server_runtime::server_identity!(),
        |args: &Args| &args.common,
        |_, context| Ok::<_, Infallible>(devops::Devops::new(context)),
    )
}

//! The `development` MCP server binary: everything lives in the library.

#[derive(clap::Parser)]
#[command(name = "development", about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: mcp_server_runtime::CommonArgs,
}

fn main() -> std::process::ExitCode {
    mcp_server_runtime::run_server(
        mcp_server_runtime::server_identity!(),
        |args: &Args| &args.common,
        |_args, ctx| Ok::<_, std::convert::Infallible>(development::Development::new(ctx)),
    )
}

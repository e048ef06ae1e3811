//! The `development` MCP server binary: everything lives in the library.

#[derive(clap::Parser)]
#[command(name = "development", about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: mcp_rust_core::CommonArgs,
}

fn main() -> std::process::ExitCode {
    mcp_rust_core::run_server(
        mcp_rust_core::server_identity!(),
        |args: &Args| &args.common,
        |_args, ctx| Ok::<_, std::convert::Infallible>(development::Development::new(ctx)),
    )
}

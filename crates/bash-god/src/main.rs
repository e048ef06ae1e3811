use std::path::PathBuf;

#[derive(clap::Parser)]
#[command(
    name = "bash-god",
    about = "MCP server for bash: analysis, rewrites and policy-guarded execution"
)]
struct Args {
    #[command(flatten)]
    common: mcp_server_runtime::CommonArgs,
    /// Enable execute_command (commands still pass the fixed policy first).
    #[arg(long)]
    allow_exec: bool,
    /// Snapshot file of the execution history, loaded at start and rewritten after each run.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    mcp_server_runtime::run_server(
        mcp_server_runtime::server_identity!(),
        |args: &Args| &args.common,
        |args, ctx| {
            let options = bash_god::Options {
                allow_exec: args.allow_exec,
                history: args.history.clone(),
            };
            bash_god::BashGod::new(ctx, &options)
        },
    )
}

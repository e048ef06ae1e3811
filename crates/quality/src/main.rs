//! The `quality` MCP server binary: parses the common options and serves the tools of `quality`.

use code_intel::walk::WalkOptions;
use quality::{Quality, WalkLimits};

#[derive(clap::Parser)]
#[command(
    name = "quality",
    about = "MCP server for code quality: line counts, complexity, issues and a scored report"
)]
struct Args {
    #[command(flatten)]
    common: mcp_server_runtime::CommonArgs,
    /// Stop every walk after this many files (the result says when it was hit).
    #[arg(long, default_value_t = WalkOptions::default().max_files)]
    max_files: usize,
    /// Stop every walk after reading this many bytes (the result says when it was hit).
    #[arg(long, default_value_t = WalkOptions::default().max_total_bytes)]
    max_bytes: u64,
}

fn main() -> std::process::ExitCode {
    mcp_server_runtime::run_server(
        mcp_server_runtime::server_identity!(),
        |args: &Args| &args.common,
        |args, context| {
            let limits = WalkLimits {
                max_files: args.max_files,
                max_bytes: args.max_bytes,
            };
            Ok::<_, std::convert::Infallible>(Quality::new(context, limits))
        },
    )
}

//! bash-god's binary: the sandbox helper hook, `--version` with the exec sandbox status, then the server.

use std::path::PathBuf;

#[derive(clap::Parser)]
#[command(
    name = "bash-god",
    about = "MCP server for bash: analysis, rewrites and sandboxed execution"
)]
struct Args {
    #[command(flatten)]
    common: mcp_server_runtime::CommonArgs,
    /// Enable execute_command: commands rated dangerous are refused, the rest run in a
    /// kernel sandbox (Landlock, seccomp, namespaces, rlimits).
    #[arg(long)]
    allow_exec: bool,
    /// Let executed commands use the network (default: no network at all).
    #[arg(long, requires = "allow_exec")]
    allow_network: bool,
    /// Run commands even where the kernel cannot contain them (no user namespaces, no
    /// Landlock): each result says which protections it had. Default: refuse to run.
    #[arg(long, requires = "allow_exec")]
    unsandboxed_exec: bool,
    /// Extra directory executed commands may read (repeatable), e.g. a toolchain in $HOME.
    #[arg(long = "exec-read-only", value_name = "DIR", requires = "allow_exec")]
    exec_read_only: Vec<PathBuf>,
    /// Snapshot file of the execution history, loaded at start and rewritten after each run.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    // The exec sandbox's helper is this binary re-executed: it must take over before anything.
    exec_sandbox::run_helper_if_requested();
    let identity = mcp_server_runtime::server_identity!();
    if wants_version() {
        // The version line, then what execute_command would get on this host.
        println!(
            "{}",
            mcp_server_runtime::version_string(identity.name, identity.version)
        );
        let executor = bash_god::exec::Executor::new(&bash_god::exec::ExecOptions::default());
        println!("exec sandbox: {}", executor.describe());
        return std::process::ExitCode::SUCCESS;
    }
    mcp_server_runtime::run_server(
        identity,
        |args: &Args| &args.common,
        |args, ctx| {
            let options = bash_god::Options {
                allow_exec: args.allow_exec,
                history: args.history.clone(),
                exec: bash_god::exec::ExecOptions {
                    network: args.allow_network,
                    unsandboxed: args.unsandboxed_exec,
                    read_only: args.exec_read_only.clone(),
                },
            };
            bash_god::BashGod::new(ctx, &options)
        },
    )
}

/// `--version`/`-V` anywhere before `--` (as the common runtime reads it).
fn wants_version() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--version" || arg == "-V")
}

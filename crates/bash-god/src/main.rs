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
    /// Journal file of the execution history: read at start, one line appended per run
    /// (created if missing).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Most executions the history keeps (the oldest go first).
    #[arg(long, value_name = "N", default_value_t = bash_god::history::Limits::default().max_entries)]
    history_max_entries: usize,
    /// Most bytes of executions (as journal lines) the history keeps.
    #[arg(long, value_name = "BYTES", default_value_t = bash_god::history::Limits::default().max_bytes)]
    history_max_bytes: u64,
}

fn main() -> std::process::ExitCode {
    // The exec sandbox's helper is this binary re-executed: it must take over before anything.
    exec_sandbox::run_helper_if_requested();
    // Every parse runs in this binary re-executed as a helper (see bash_god::parse::helper).
    bash_god::parse::helper::run_helper_if_requested();
    let identity = mcp_server_runtime::server_identity!();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if mcp_server_runtime::wants_version(&argv) {
        // The version line, then what execute_command would get on this host.
        let executor = bash_god::exec::Executor::new(&bash_god::exec::ExecOptions::default());
        let sandbox = format!("exec sandbox: {}", executor.describe());
        return mcp_server_runtime::print_version(identity, &[sandbox]);
    }
    mcp_server_runtime::run_server_from(
        identity,
        argv,
        |args: &Args| &args.common,
        |args, ctx| {
            let options = bash_god::Options {
                allow_exec: args.allow_exec,
                history: args.history.clone(),
                history_limits: bash_god::history::Limits {
                    max_entries: args.history_max_entries,
                    max_bytes: args.history_max_bytes,
                },
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

//! mcp-launcher: execs the best build of a server for this CPU (see the library docs).

use std::process::ExitCode;

fn main() -> ExitCode {
    let error = mcp_launcher::launch();
    eprintln!("{}: {error}", mcp_launcher::LAUNCHER_NAME);
    ExitCode::from(error.exit_code())
}

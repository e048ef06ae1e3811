//! The devops MCP server binary: the shared runtime serves [`devops::Devops`].

use std::path::PathBuf;
use std::process::ExitCode;

use devops::endpoint::{AddressPolicy, EndpointChecker, EndpointOptions};

#[derive(clap::Parser)]
#[command(name = "devops", about)]
struct Args {
    #[command(flatten)]
    common: mcp_server_runtime::CommonArgs,
    /// Which addresses check_endpoint may connect to: `any`, or `public-only` (refuses
    /// loopback, private, link-local and other non-public ranges, for every resolved address
    /// and every redirect). Default: `any` over stdio (the client is local), `public-only`
    /// over HTTP (clients may be remote and must not reach this host's networks).
    #[arg(long, value_enum)]
    endpoint_policy: Option<AddressPolicy>,
    /// PEM file of extra CA certificates check_endpoint trusts, besides the compiled-in
    /// Mozilla set (repeatable), e.g. a company CA.
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    mcp_server_runtime::run_server(
        mcp_server_runtime::server_identity!(),
        |args: &Args| &args.common,
        |args, context| {
            let policy = args
                .endpoint_policy
                .unwrap_or_else(|| AddressPolicy::default_for(args.common.transport));
            let checker = EndpointChecker::new(&EndpointOptions {
                policy,
                ca_files: args.ca_files.clone(),
            })?;
            tracing::info!(%policy, extra_ca_files = args.ca_files.len(), "check_endpoint policy");
            Ok::<_, devops::DevopsError>(devops::Devops::new(context, checker))
        },
    )
}

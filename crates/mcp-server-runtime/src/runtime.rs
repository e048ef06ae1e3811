//! The one function a server's `main` calls: CLI, logging, roots, transport, shutdown.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rmcp::ServerHandler;
use rmcp::ServiceExt as _;
use rmcp::service::ServerInitializeError;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::guarded::Guarded;
use crate::http::{HttpArgs, serve_http};
use crate::limits::Limits;
use build_info::version_string;
use confined_fs::Roots;

/// How the server talks to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// JSON-RPC over stdin/stdout (what desktop MCP clients spawn).
    Stdio,
    /// Streamable HTTP at `http://ADDR:PORT/mcp`.
    Http,
}

/// Options every server accepts. Flatten into the server's own `clap::Parser`:
/// `#[command(flatten)] common: mcp_server_runtime::CommonArgs`.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Transport to serve on.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,
    /// Address to listen on with `--transport http`. Anything but loopback exposes the
    /// server to the network and requires a bearer token (--auth-token-file).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub listen: IpAddr,
    /// TCP port for `--transport http` (0 picks a free one, logged at startup).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Directory file tools may touch (repeatable). Default: the current directory, unless
    /// that is `/`, your home directory or a directory above it (what a GUI client that was
    /// not given `--root` starts servers in): then the server refuses to start.
    #[arg(long = "root", value_name = "DIR")]
    pub roots: Vec<PathBuf>,
    /// Log filter for stderr: a level (error, warn, info, debug, trace) or tracing
    /// directives like `info,rmcp=warn`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
    /// Largest tool result in bytes; longer text is cut in the middle.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_OUTPUT_BYTES)]
    pub max_output_bytes: usize,
    /// Time limit of one tool call, in seconds.
    #[arg(long, default_value_t = Limits::DEFAULT_TOOL_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub tool_timeout_secs: u64,
    /// Tool calls running at once, all clients together; further calls are refused with
    /// an error asking to retry.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_CONCURRENT_CALLS, value_parser = parse_positive)]
    pub max_concurrent_calls: usize,
    /// HTTP transport security: allowed origins and hosts, bearer token, session cap.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Print version, CPU variant, target CPU, compiler and commit, then exit.
    #[arg(short = 'V', long = "version")]
    pub print_version: bool,
}

impl CommonArgs {
    /// The limits these options describe.
    pub fn limits(&self) -> Limits {
        Limits {
            max_output_bytes: self.max_output_bytes,
            tool_timeout: Duration::from_secs(self.tool_timeout_secs),
            max_concurrent_calls: self.max_concurrent_calls,
        }
    }

    /// The roots these options describe: the `--root`s, else the current directory unless
    /// it is too broad to be meant (see [`RootsError::ImplicitRootTooBroad`]).
    pub fn resolve_roots(&self) -> Result<Roots, RootsError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if self.roots.is_empty() {
            let roots = Roots::new([PathBuf::from(".")])?;
            if let Some(what) = too_broad(roots.first(), home.as_deref()) {
                return Err(RootsError::ImplicitRootTooBroad {
                    dir: roots.first().to_path_buf(),
                    what,
                });
            }
            Ok(roots)
        } else {
            let roots = Roots::new(self.roots.iter().cloned())?;
            for root in &roots {
                if let Some(what) = too_broad(root, home.as_deref()) {
                    tracing::warn!(
                        root = %root.display(),
                        "--root is {what}: every file this user can read is within reach of the client; \
                         pass the project directory instead"
                    );
                }
            }
            Ok(roots)
        }
    }
}

/// A count of at least 1, for options where 0 would stop the server from working.
fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(error) => Err(error.to_string()),
    }
}

/// Why the roots could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    /// A `--root` (or the current directory) is unusable.
    #[error(transparent)]
    Confine(#[from] crate::ConfineError),
    /// No `--root` was given and the current directory is `/`, the home directory or above
    /// it: where GUI clients start servers they were not told to start elsewhere. Serving
    /// it would expose far more than the project the user meant.
    #[error(
        "no --root given and the current directory {dir:?} is {what}; refusing to serve it. \
         Pass --root DIR (in an MCP client config: \"args\": [\"--root\", \"/path/to/project\"])"
    )]
    ImplicitRootTooBroad {
        /// The current directory.
        dir: PathBuf,
        /// "the file system root", "your home directory"...
        what: &'static str,
    },
}

/// `Some(description)` when the canonical `dir` is `/`, `home`, or a directory above `home`.
fn too_broad(dir: &Path, home: Option<&Path>) -> Option<&'static str> {
    if dir.parent().is_none() {
        return Some("the file system root");
    }
    let home = home.and_then(|home| home.canonicalize().ok())?;
    if dir == home {
        Some("your home directory")
    } else if home.starts_with(dir) {
        Some("a directory above your home directory")
    } else {
        None
    }
}

/// What a server gets to build itself from. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerContext {
    /// The only directories file tools may touch; pass paths through [`crate::confine_path`].
    pub roots: Arc<Roots>,
    /// Output and time limits (already enforced by the runtime; useful to size work).
    pub limits: Limits,
}

impl ServerContext {
    /// A context for tests and embedding: the given roots, default limits.
    pub fn new(roots: Roots) -> Self {
        Self {
            roots: Arc::new(roots),
            limits: Limits::default(),
        }
    }
}

/// Name and version of the server binary; build it with [`server_identity!`](crate::server_identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerIdentity {
    /// Crate (and binary) name.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// The [`ServerIdentity`] of the binary (else the crate) this macro is expanded in.
#[macro_export]
macro_rules! server_identity {
    () => {
        $crate::ServerIdentity {
            name: match option_env!("CARGO_BIN_NAME") {
                Some(name) => name,
                None => env!("CARGO_PKG_NAME"),
            },
            version: env!("CARGO_PKG_VERSION"),
        }
    };
}

/// Exit code for startup failures (bad `--root`, bad log filter, port in use...).
const EXIT_STARTUP: u8 = 2;

/// Prints the `--version` text to stdout: the version line, then `details` (a server's own
/// lines, e.g. bash-god's exec sandbox status), one per line. Returns the exit code.
pub fn print_version(identity: ServerIdentity, details: &[String]) -> ExitCode {
    write_version(&mut std::io::stdout().lock(), identity, details)
}

/// Writes the `--version` text to `out`. A reader that stopped reading (`--version | head
/// -1`: a broken pipe) is not an error; `println!` panicked there.
fn write_version(
    out: &mut impl std::io::Write,
    identity: ServerIdentity,
    details: &[String],
) -> ExitCode {
    let text = version_string(identity.name, identity.version);
    let written = std::iter::once(&text)
        .chain(details)
        .try_for_each(|line| writeln!(out, "{line}"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: writing the version to stdout: {error}", identity.name);
            ExitCode::from(EXIT_STARTUP)
        }
    }
}

/// Parses the command line, sets up logging to stderr, resolves the roots, builds the
/// server with `build` and serves it (wrapped in [`Guarded`]) until the client hangs up
/// (stdin EOF) or SIGTERM/SIGINT arrives.
///
/// Exit codes: 0 on a clean shutdown and for `--version`/`--help`, 2 for bad arguments or
/// startup failures (message on stderr), 1 when serving fails.
pub fn run_server<A, S, E>(
    identity: ServerIdentity,
    common: impl Fn(&A) -> &CommonArgs,
    build: impl FnOnce(&A, ServerContext) -> Result<S, E>,
) -> ExitCode
where
    A: clap::Parser,
    S: ServerHandler + Clone,
    E: Display,
{
    run_server_from(identity, std::env::args_os(), common, build)
}

/// [`run_server`] with explicit arguments (the first one is the program name).
pub fn run_server_from<A, S, E>(
    identity: ServerIdentity,
    argv: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    common: impl Fn(&A) -> &CommonArgs,
    build: impl FnOnce(&A, ServerContext) -> Result<S, E>,
) -> ExitCode
where
    A: clap::Parser,
    S: ServerHandler + Clone,
    E: Display,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    // Answer `--version` before full parsing so a server's required options cannot block it.
    if wants_version(&argv) {
        return print_version(identity, &[]);
    }
    let args = match A::try_parse_from(&argv) {
        Ok(args) => args,
        Err(error) => {
            // Prints help/usage to the right stream; exit code 0 for --help, 2 for misuse.
            let _ = error.print();
            return ExitCode::from(error.exit_code().clamp(0, 255) as u8);
        }
    };
    let common_args = common(&args).clone();
    if common_args.print_version {
        return print_version(identity, &[]);
    }
    if let Err(message) = init_logging(&common_args.log_level) {
        eprintln!("{}: {message}", identity.name);
        return ExitCode::from(EXIT_STARTUP);
    }
    let roots = match common_args.resolve_roots() {
        Ok(roots) => roots,
        Err(error) => {
            eprintln!("{}: {error}", identity.name);
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    let http_security = match common_args.transport {
        Transport::Http => match common_args.http.resolve(common_args.listen) {
            Ok(security) => Some(security),
            Err(message) => {
                eprintln!("{}: {message}", identity.name);
                return ExitCode::from(EXIT_STARTUP);
            }
        },
        Transport::Stdio => None,
    };
    let context = ServerContext {
        roots: Arc::new(roots),
        limits: common_args.limits(),
    };
    let server = match build(&args, context.clone()) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("{}: cannot start: {error}", identity.name);
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    let runtime = match runtime_builder(common_args.transport).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{}: cannot start the async runtime: {error}", identity.name);
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    tracing::info!(
        server = identity.name,
        version = identity.version,
        variant = crate::BUILD_INFO.variant,
        roots = ?context.roots.iter().collect::<Vec<_>>(),
        transport = ?common_args.transport,
        "starting"
    );
    let outcome = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        match http_security {
            None => serve_stdio(server, context.limits, shutdown).await,
            Some(security) => {
                let addr = SocketAddr::new(common_args.listen, common_args.port);
                serve_http(server, context.limits, addr, security, shutdown).await
            }
        }
    });
    // A blocked stdin read (tokio reads it on a blocking thread) would otherwise keep the
    // process alive after SIGTERM; tool work has been told to stop through its CancelFlag.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(()) => {
            tracing::info!("shut down cleanly");
            ExitCode::SUCCESS
        }
        Err(ServeError::Startup(message)) => {
            eprintln!("{}: {message}", identity.name);
            ExitCode::from(EXIT_STARTUP)
        }
        Err(ServeError::Serving(message)) => {
            tracing::error!("{message}");
            eprintln!("{}: {message}", identity.name);
            ExitCode::FAILURE
        }
    }
}

/// Why serving ended badly: before the server was reachable, or while serving.
#[derive(Debug)]
pub(crate) enum ServeError {
    Startup(String),
    Serving(String),
}

/// The scheduler for `transport`. Over stdio there is one client, and the protocol work
/// (framing, JSON, dispatch) is small: one thread does it with fewer hand-offs between
/// threads per message than a pool of workers, and starts faster. Tool work runs on the
/// blocking pool either way ([`crate::run_blocking`]), so timeouts, cancellation and
/// concurrent calls behave the same. HTTP serves many sessions at once: every core.
fn runtime_builder(transport: Transport) -> tokio::runtime::Builder {
    match transport {
        Transport::Stdio => tokio::runtime::Builder::new_current_thread(),
        Transport::Http => tokio::runtime::Builder::new_multi_thread(),
    }
}

/// Whether the command line (`argv[0]` first) asks for `--version`/`-V` before any `--`.
/// Servers answer it before full parsing, so required options cannot block it.
pub fn wants_version(argv: &[OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| arg == "--version" || arg == "-V")
}

/// Logs go to stderr only: stdout carries the protocol in stdio mode.
fn init_logging(filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|error| {
        format!("invalid --log-level/RUST_LOG {filter:?} ({error}); use e.g. info, debug or info,rmcp=warn")
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|error| format!("cannot set up logging: {error}"))
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!(
                "cannot install SIGTERM/SIGINT handlers; stop the server by closing stdin"
            );
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        tracing::info!("Ctrl-C received, shutting down");
    }
    shutdown.cancel();
}

async fn serve_stdio<S: ServerHandler>(
    server: S,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let guarded = Guarded::new(server, limits);
    // MCP clients start servers with pipes: those are read and written by the runtime's
    // own I/O driver (reopened non-blocking through /proc, so the inherited descriptors
    // keep their flags), not by a blocking-pool thread per read and write. Anything else
    // (a file, a terminal, no /proc) is served through the blocking handles.
    let running = tokio::select! {
        running = guarded.serve(rmcp::transport::stdio_pipes()) => running,
        () = shutdown.cancelled() => return Ok(()),
    };
    let running = match running {
        Ok(running) => running,
        // The client went away before (or while) initializing: nothing left to serve.
        Err(ServerInitializeError::ConnectionClosed(reason)) => {
            tracing::info!(%reason, "client closed the connection before initializing");
            return Ok(());
        }
        Err(error) => {
            return Err(ServeError::Serving(format!(
                "MCP handshake failed: {error}"
            )));
        }
    };
    let cancel_service = running.cancellation_token();
    tokio::select! {
        quit = running.waiting() => {
            match quit {
                Ok(reason) => tracing::info!(?reason, "client disconnected"),
                Err(error) => return Err(ServeError::Serving(format!("serve loop failed: {error}"))),
            }
        }
        () = shutdown.cancelled() => cancel_service.cancel(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    #[command(name = "demo")]
    struct DemoArgs {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn defaults_match_the_contract() {
        let args = DemoArgs::try_parse_from(["demo"]).unwrap().common;
        assert_eq!(args.transport, Transport::Stdio);
        assert_eq!(args.listen, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(args.port, 8080);
        assert!(args.roots.is_empty());
        assert_eq!(args.limits(), Limits::default());
    }

    #[test]
    fn options_parse() {
        let args = DemoArgs::try_parse_from([
            "demo",
            "--transport",
            "http",
            "--listen",
            "::1",
            "--port",
            "0",
            "--root",
            "/a",
            "--root",
            "/b",
            "--log-level",
            "debug",
            "--max-output-bytes",
            "100",
            "--tool-timeout-secs",
            "3",
        ])
        .unwrap()
        .common;
        assert_eq!(args.transport, Transport::Http);
        assert_eq!(args.listen.to_string(), "::1");
        assert_eq!(args.port, 0);
        assert_eq!(args.roots, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(args.log_level, "debug");
        assert_eq!(args.limits().max_output_bytes, 100);
        assert_eq!(args.limits().tool_timeout, Duration::from_secs(3));
    }

    #[test]
    fn slash_home_and_above_are_too_broad_to_be_an_implicit_root() {
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().canonicalize().unwrap();
        let project = home_path.join("project");
        std::fs::create_dir(&project).unwrap();
        let with_home = |dir: &Path| too_broad(dir, Some(&home_path));
        assert_eq!(with_home(Path::new("/")), Some("the file system root"));
        assert_eq!(
            too_broad(Path::new("/"), None),
            Some("the file system root")
        );
        assert_eq!(with_home(&home_path), Some("your home directory"));
        assert_eq!(
            with_home(home_path.parent().unwrap()),
            Some("a directory above your home directory")
        );
        assert_eq!(with_home(&project), None);
        assert_eq!(
            too_broad(&project, None),
            None,
            "no HOME: only / is refused"
        );
    }

    #[test]
    fn zero_timeout_is_rejected() {
        assert!(DemoArgs::try_parse_from(["demo", "--tool-timeout-secs", "0"]).is_err());
    }

    #[test]
    fn version_is_recognised_before_other_arguments_but_not_after_double_dash() {
        let argv = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(wants_version(&argv(&["demo", "--version"])));
        assert!(wants_version(&argv(&["demo", "--root", "/x", "-V"])));
        assert!(!wants_version(&argv(&["demo", "--", "--version"])));
        assert!(
            !wants_version(&argv(&["--version"])),
            "argv[0] is the program name"
        );
    }

    /// A stdout that fails every write with `kind`.
    struct FailingOut(std::io::ErrorKind);

    impl std::io::Write for FailingOut {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn version_output_survives_a_closed_reader_and_reports_other_write_errors() {
        let identity = ServerIdentity {
            name: "demo",
            version: "1.2.3",
        };
        let mut written = Vec::new();
        let details = ["exec sandbox: contained".to_owned()];
        assert_eq!(
            write_version(&mut written, identity, &details),
            ExitCode::SUCCESS
        );
        let text = String::from_utf8(written).unwrap();
        assert!(text.starts_with("demo 1.2.3"), "{text}");
        assert!(text.ends_with("\nexec sandbox: contained\n"), "{text}");
        let failing = |kind| write_version(&mut FailingOut(kind), identity, &details);
        // `demo --version | head -1`: the reader is gone.
        assert_eq!(failing(std::io::ErrorKind::BrokenPipe), ExitCode::SUCCESS);
        let full = failing(std::io::ErrorKind::StorageFull);
        assert_eq!(full, ExitCode::from(EXIT_STARTUP));
    }
}

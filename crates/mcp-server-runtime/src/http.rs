//! The streamable HTTP transport and what protects it.
//!
//! Every request to `/mcp` passes, in this order:
//! 1. **Origin** (the MCP transport spec: servers MUST validate it; a present and invalid
//!    Origin gets 403). Browsers send it; non-browser clients do not and pass. Allowed
//!    origins come from `--allowed-origin`; by default none, so no web page can drive the
//!    server, whatever DNS rebinding it tries.
//! 2. **Bearer token** (`--auth-token-file`, or `MCP_FOUNDRY_AUTH_TOKEN`): 401 without the
//!    right `Authorization: Bearer …`. Required to start on a non-loopback address.
//! 3. **Session cap** (`--max-sessions`): a new session beyond it gets 503.
//! 4. rmcp's own checks: the `Host` header (loopback names on a loopback address; the
//!    address itself on a specific one; `--allowed-host` names; on `0.0.0.0`/`::` without
//!    `--allowed-host`, any host, the token being the guard), and Origin again.
//!
//! Tool calls are then bounded by [`Limits::max_concurrent_calls`] across all sessions.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::ServerHandler;
use rmcp::transport::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::guarded::Guarded;
use crate::limits::Limits;

/// Environment variable holding the bearer token when no `--auth-token-file` is given.
pub const AUTH_TOKEN_ENV: &str = "MCP_FOUNDRY_AUTH_TOKEN";
/// Shortest token accepted: guessing must be hopeless.
const MIN_TOKEN_CHARS: usize = 16;
/// Loopback names every server on a loopback address answers to.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Options of `--transport http` (flattened into [`crate::CommonArgs`]).
#[derive(Debug, Clone, clap::Args)]
pub struct HttpArgs {
    /// Browser origin allowed to call the server over HTTP, e.g. `http://localhost:6274`
    /// (repeatable). A request carrying any other `Origin` header gets 403; requests
    /// without one (non-browser clients) pass.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Host name clients reach the server by, checked against the `Host` header
    /// (repeatable). Needed when listening on 0.0.0.0 or :: behind a name; loopback names
    /// are always accepted on a loopback address.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// File holding the bearer token clients must send as `Authorization: Bearer TOKEN`
    /// (at least 16 characters; surrounding whitespace is ignored). The token can also
    /// come from the MCP_FOUNDRY_AUTH_TOKEN environment variable. Required when --listen is
    /// not a loopback address.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Most HTTP sessions open at once; an `initialize` beyond it gets 503 until one
    /// closes (DELETE) or expires after 5 minutes idle.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: u32,
}

/// The checks, resolved once at start-up.
#[derive(Debug, Clone)]
pub(crate) struct HttpSecurity {
    origins: Vec<Origin>,
    origin_strings: Vec<String>,
    hosts: HostPolicy,
    token: Option<Arc<str>>,
    sessions: Arc<Semaphore>,
    max_sessions: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPolicy {
    /// Only these `Host` names.
    Only(Vec<String>),
    /// Any `Host` (listening on every address with no `--allowed-host`).
    Any,
}

impl HttpArgs {
    /// Checks the options against the listen address and reads the token.
    pub(crate) fn resolve(&self, listen: IpAddr) -> Result<HttpSecurity, String> {
        let origins = self
            .allowed_origins
            .iter()
            .map(|text| {
                Origin::parse(text).ok_or_else(|| {
                    format!(
                        "--allowed-origin {text:?} is not an origin; write scheme://host[:port], \
                         e.g. http://localhost:6274"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let token = self.token()?;
        if token.is_none() && !listen.is_loopback() {
            return Err(format!(
                "--listen {listen} is not a loopback address: anyone who can reach it could call \
                 every tool. Pass --auth-token-file FILE (or set {AUTH_TOKEN_ENV}); clients then \
                 send `Authorization: Bearer TOKEN`"
            ));
        }
        let extra = self.allowed_hosts.iter().cloned();
        let hosts = if listen.is_loopback() {
            HostPolicy::Only(
                LOOPBACK_HOSTS
                    .map(str::to_owned)
                    .into_iter()
                    .chain(extra)
                    .collect(),
            )
        } else if listen.is_unspecified() {
            if self.allowed_hosts.is_empty() {
                HostPolicy::Any
            } else {
                HostPolicy::Only(
                    LOOPBACK_HOSTS
                        .map(str::to_owned)
                        .into_iter()
                        .chain(extra)
                        .collect(),
                )
            }
        } else {
            HostPolicy::Only(std::iter::once(listen.to_string()).chain(extra).collect())
        };
        let max_sessions = self.max_sessions.max(1);
        Ok(HttpSecurity {
            origins,
            origin_strings: self.allowed_origins.clone(),
            hosts,
            token,
            sessions: Arc::new(Semaphore::new(max_sessions as usize)),
            max_sessions,
        })
    }

    fn token(&self) -> Result<Option<Arc<str>>, String> {
        let (token, source) = if let Some(file) = &self.auth_token_file {
            let text = std::fs::read_to_string(file).map_err(|error| {
                format!("cannot read --auth-token-file {}: {error}", file.display())
            })?;
            warn_if_readable_by_others(file);
            (text, format!("--auth-token-file {}", file.display()))
        } else if let Some(value) = std::env::var_os(AUTH_TOKEN_ENV) {
            let text = value
                .into_string()
                .map_err(|_| format!("{AUTH_TOKEN_ENV} is not valid UTF-8"))?;
            (text, AUTH_TOKEN_ENV.to_owned())
        } else {
            return Ok(None);
        };
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
            return Err(format!(
                "the token in {source} must be at least {MIN_TOKEN_CHARS} characters without \
                 spaces; generate one with e.g. `openssl rand -hex 32`"
            ));
        }
        Ok(Some(Arc::from(token)))
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(file: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(file)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %file.display(),
            "the auth token file is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_file: &std::path::Path) {}

/// A web origin, normalized: lower-case scheme and host, explicit port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(text: &str) -> Option<Self> {
        let uri: axum::http::Uri = text.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.trim_matches(['[', ']']).to_ascii_lowercase();
        let port = match (uri.port_u16(), scheme.as_str()) {
            (Some(port), _) => port,
            (None, "https") => 443,
            (None, "http") => 80,
            (None, _) => return None,
        };
        // An origin is scheme://host[:port] and nothing else.
        if uri
            .path_and_query()
            .is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty())
        {
            return None;
        }
        Some(Self { scheme, host, port })
    }
}

/// Serves `server` (wrapped in [`Guarded`]) at `http://addr/mcp` until `shutdown`.
pub(crate) async fn serve_http<S>(
    server: S,
    limits: Limits,
    addr: SocketAddr,
    security: HttpSecurity,
    shutdown: CancellationToken,
) -> Result<(), crate::runtime::ServeError>
where
    S: ServerHandler + Clone,
{
    use crate::runtime::ServeError;
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown.child_token())
        .with_allowed_origins(security.origin_strings.clone())
        .enforce_origin_validation();
    config = match &security.hosts {
        HostPolicy::Only(hosts) => config.with_allowed_hosts(hosts.clone()),
        HostPolicy::Any => {
            tracing::info!(
                "listening on every address without --allowed-host: the Host header is not checked \
                 (the bearer token is); pass --allowed-host NAME to check it"
            );
            config.disable_allowed_hosts()
        }
    };
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "listening on a non-loopback address; every request must carry the bearer token");
    }
    let call_slots = Arc::new(Semaphore::new(limits.max_concurrent_calls));
    let sessions = Arc::clone(&security.sessions);
    let max_sessions = security.max_sessions;
    let service = StreamableHttpService::new(
        move || {
            // Called once per new session (and per stateless request): the permit lives as
            // long as that session's service.
            let permit = Arc::clone(&sessions).try_acquire_owned().map_err(|_| {
                std::io::Error::other(format!(
                    "too many sessions: {max_sessions} are open; close one or retry later"
                ))
            })?;
            Ok(Guarded::new(server.clone(), limits)
                .with_call_slots(Arc::clone(&call_slots))
                .with_session_permit(permit))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new().nest_service("/mcp", service).layer(
        axum::middleware::from_fn_with_state(Arc::new(security), check_request),
    );
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
        ServeError::Startup(format!(
            "cannot listen on {addr} ({error}); pick another --port (0 = any free port) or --listen address"
        ))
    })?;
    let local = listener
        .local_addr()
        .map_err(|error| ServeError::Startup(format!("cannot read the bound address: {error}")))?;
    tracing::info!("listening on http://{local}/mcp");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|error| ServeError::Serving(format!("HTTP server failed: {error}")))
}

/// Origin, then token, then the session cap; see the module documentation.
async fn check_request(
    State(security): State<Arc<HttpSecurity>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = security.check(request.method(), request.headers()) {
        return refusal.into_response();
    }
    next.run(request).await
}

/// Why a request was turned away before reaching the MCP service.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// 403: a browser origin that is not allowed (the value as sent).
    Origin(String),
    /// 401: no token, or the wrong one.
    Token,
    /// 503: a new session while the cap is reached.
    Sessions(u32),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Origin(_) => StatusCode::FORBIDDEN,
            Self::Token => StatusCode::UNAUTHORIZED,
            Self::Sessions(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, extra) = match self {
            Self::Origin(origin) => (
                format!(
                    "Forbidden: Origin {origin:?} is not allowed; the operator can allow a \
                     browser client with --allowed-origin ORIGIN"
                ),
                None,
            ),
            Self::Token => (
                "Unauthorized: send `Authorization: Bearer TOKEN` with the server's token"
                    .to_owned(),
                Some((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"mcp\""),
                )),
            ),
            Self::Sessions(max) => (
                format!(
                    "Service Unavailable: {max} sessions are open, the most this server allows; \
                     close one (DELETE with its Mcp-Session-Id) or retry later"
                ),
                Some((header::RETRY_AFTER, HeaderValue::from_static("5"))),
            ),
        };
        let mut response = (status, message).into_response();
        if let Some((name, value)) = extra {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl HttpSecurity {
    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .ok()
                .and_then(Origin::parse)
                .is_some_and(|origin| self.origins.contains(&origin));
            if !allowed {
                tracing::warn!(
                    ?origin,
                    "refused a request from a browser origin that is not allowed"
                );
                return Err(Refusal::Origin(
                    String::from_utf8_lossy(origin.as_bytes()).into_owned(),
                ));
            }
        }
        if let Some(token) = &self.token {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim);
            if !presented.is_some_and(|presented| same_secret(presented, token)) {
                tracing::warn!("refused a request without the right bearer token");
                return Err(Refusal::Token);
            }
        }
        let opens_session = method == Method::POST && !headers.contains_key("mcp-session-id");
        if opens_session && self.sessions.available_permits() == 0 {
            tracing::warn!(
                max = self.max_sessions,
                "refused a new session: the session cap is reached"
            );
            return Err(Refusal::Sessions(self.max_sessions));
        }
        Ok(())
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn args() -> HttpArgs {
        HttpArgs {
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            auth_token_file: None,
            max_sessions: 4,
        }
    }

    fn with_token(mut args: HttpArgs) -> (HttpArgs, tempfile::NamedTempFile) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "0123456789abcdef0123\n").unwrap();
        args.auth_token_file = Some(file.path().to_path_buf());
        (args, file)
    }

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const ANY: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

    #[test]
    fn origins_are_normalized_and_compared_whole() {
        let parse = |text| Origin::parse(text);
        assert_eq!(
            parse("http://LOCALHOST:6274"),
            parse("http://localhost:6274")
        );
        assert_eq!(
            parse("https://example.com"),
            parse("https://example.com:443")
        );
        assert_ne!(parse("http://example.com"), parse("https://example.com"));
        assert_eq!(parse("http://[::1]:80"), parse("http://[::1]"));
        for bad in [
            "localhost",
            "null",
            "http://",
            "file:///etc",
            "http://a.com/path",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_non_loopback_address_needs_a_token() {
        let error = args().resolve(ANY).unwrap_err();
        assert!(error.contains("--auth-token-file"), "{error}");
        let error = args()
            .resolve(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
            .unwrap_err();
        assert!(error.contains("loopback"), "{error}");
        let (with, _file) = with_token(args());
        assert!(with.resolve(ANY).is_ok());
        assert!(
            args().resolve(LOCAL).is_ok(),
            "loopback without a token is allowed"
        );
    }

    #[test]
    fn short_or_unreadable_tokens_are_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "short\n").unwrap();
        let mut short = args();
        short.auth_token_file = Some(file.path().to_path_buf());
        assert!(short.resolve(LOCAL).unwrap_err().contains("at least 16"));
        let mut missing = args();
        missing.auth_token_file = Some("/definitely/not/here".into());
        assert!(missing.resolve(LOCAL).unwrap_err().contains("cannot read"));
    }

    #[test]
    fn host_policy_follows_the_listen_address() {
        let (with, _file) = with_token(args());
        assert_eq!(with.resolve(ANY).unwrap().hosts, HostPolicy::Any);
        let mut named = with.clone();
        named.allowed_hosts = vec!["mcp.example.org".into()];
        let HostPolicy::Only(hosts) = named.resolve(ANY).unwrap().hosts else {
            panic!("a named host is checked")
        };
        assert!(hosts.contains(&"mcp.example.org".to_owned()));
        let specific: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(
            with.resolve(specific).unwrap().hosts,
            HostPolicy::Only(vec!["192.0.2.7".into()]),
            "a specific address answers to itself, not to localhost"
        );
        let HostPolicy::Only(loopback) = args().resolve(LOCAL).unwrap().hosts else {
            panic!("loopback is checked")
        };
        assert_eq!(loopback, LOOPBACK_HOSTS.map(str::to_owned));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn checks_run_origin_then_token_then_session_cap() {
        let (mut with, _file) = with_token(args());
        with.allowed_origins = vec!["http://localhost:6274".into()];
        with.max_sessions = 1;
        let security = with.resolve(LOCAL).unwrap();
        let status =
            |pairs: &[(&'static str, &str)]| match security.check(&Method::POST, &headers(pairs)) {
                Ok(()) => StatusCode::OK,
                Err(response) => response.status(),
            };
        let good = "Bearer 0123456789abcdef0123";
        assert_eq!(
            status(&[("origin", "http://evil.example"), ("authorization", good)]),
            403
        );
        assert_eq!(
            status(&[("origin", "http://evil.example")]),
            403,
            "403 before 401"
        );
        assert_eq!(status(&[]), 401);
        assert_eq!(
            status(&[("authorization", "Bearer wrong-token-wrong-token")]),
            401
        );
        assert_eq!(status(&[("authorization", good)]), 200);
        assert_eq!(
            status(&[("origin", "http://localhost:6274"), ("authorization", good)]),
            200
        );
        let _held = Arc::clone(&security.sessions).try_acquire_owned().unwrap();
        assert_eq!(
            status(&[("authorization", good)]),
            503,
            "a new session over the cap"
        );
        assert_eq!(
            status(&[("authorization", good), ("mcp-session-id", "abc")]),
            200,
            "requests of open sessions still pass"
        );
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("abcd", "abc"));
    }
}

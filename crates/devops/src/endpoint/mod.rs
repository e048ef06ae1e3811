//! Endpoint checks: an HTTP(S) request with its redirect chain, or a TCP (optionally TLS)
//! connection, with a timing breakdown, TLS session and certificate details.
//!
//! The client is hyper's connection-level HTTP/1.1 over our own tokio-rustls stream, so each
//! phase (DNS, connect, TLS, first byte) is timed separately and the connection only ever
//! goes to an address the [`AddressPolicy`] has checked. Unreachable hosts, refused
//! connections, timeouts, untrusted certificates and redirect loops are results, not errors;
//! only invalid arguments are errors.

mod connect;
mod http;
pub mod policy;
pub mod tls;

#[cfg(test)]
mod test_servers;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

pub use policy::AddressPolicy;
pub use tls::{CertificateProblem, CertificateSummary, TlsReport, TlsTrust};

use crate::error::DevopsError;
use crate::metrics::round2;
use crate::text::truncate_chars;

pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;
pub const MAX_REDIRECTS: u32 = 20;
const MAX_URL_BYTES: usize = 4 * 1024;

/// Arguments of `check_endpoint`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckEndpointParams {
    // The doc comment is the tool schema's description, shown to clients as plain text.
    #[allow(rustdoc::bare_urls)]
    /// http:// or https:// URL to request, e.g. "https://example.com/health". Give either
    /// `url`, or `host` and `port` for a TCP check without HTTP.
    pub url: Option<String>,
    /// TCP check: host name or IP address (no scheme, path or port), e.g. "db.internal".
    pub host: Option<String>,
    /// TCP check: port, 1-65535.
    pub port: Option<u16>,
    /// TCP check only: also perform a TLS handshake and report the session and certificate
    /// (for TLS services that are not HTTP, e.g. SMTPS or LDAPS). Default false.
    #[serde(default)]
    pub tls: bool,
    /// HTTP method: GET (default) or HEAD.
    #[serde(default)]
    pub method: HttpMethod,
    /// Redirects to follow, 0-20 (default 5; 0 reports the first response as it is).
    pub max_redirects: Option<u32>,
    /// Budget for the whole check, every phase and redirect included, in milliseconds
    /// (default 10000, at most 60000).
    pub timeout_ms: Option<u64>,
    /// Continue over TLS whose certificate did not verify, like `curl -k`. The problem is
    /// still reported and `ok` stays false. Default false.
    #[serde(default)]
    pub insecure: bool,
}

/// The HTTP method of a check; both are safe and send no body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

/// What went wrong, in classes a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The host name did not resolve.
    Dns,
    /// The address is outside what the server's endpoint policy allows.
    Blocked,
    /// Nothing listens on the port (connection refused).
    Refused,
    /// The time budget ran out; the error names the phase.
    Timeout,
    /// No route to the host or network.
    Unreachable,
    /// The TLS handshake failed for a reason other than the certificate.
    Tls,
    /// The server's certificate did not verify (see `tls.problem`).
    Certificate,
    /// The peer did not answer with valid HTTP/1.x (or its response head was too large).
    Protocol,
    /// A redirect pointed back to a URL already visited.
    RedirectLoop,
    /// More redirects than `max_redirects`.
    TooManyRedirects,
    /// A redirect's Location is not a usable http(s) URL.
    BadRedirect,
    Other,
}

/// A failure with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Result of `check_endpoint`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EndpointReport {
    /// The URL (normalized) or host:port that was checked.
    pub target: String,
    /// True when everything worked: connected, TLS verified (if used) and, for URLs, a final
    /// status below 400.
    pub ok: bool,
    pub failure: Option<FailureKind>,
    pub error: Option<String>,
    /// Status of the last response (after redirects).
    pub status: Option<u16>,
    /// URL of the last request.
    pub final_url: Option<String>,
    /// The server's endpoint policy the check ran under.
    pub address_policy: AddressPolicy,
    /// One entry per connection: the first request, then each redirect followed.
    pub hops: Vec<Hop>,
    /// Wall time of the whole check.
    pub total_ms: f64,
    /// Things worth knowing that are not failures (e.g. a redirect from https to http).
    pub warnings: Vec<String>,
}

/// One connection and, for URLs, its request and response.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Hop {
    /// The URL requested (absent for TCP checks).
    pub url: Option<String>,
    pub host: String,
    pub port: u16,
    /// Every address the host resolved to (all were checked against the policy).
    pub resolved: Vec<String>,
    /// The address connected to (or last tried).
    pub address: Option<String>,
    pub timing: Timing,
    /// Present when TLS was used (https or `tls`), even if the handshake failed.
    pub tls: Option<TlsReport>,
    /// Present when an HTTP response head was received.
    pub http: Option<HttpResponse>,
    pub failure: Option<FailureKind>,
    pub error: Option<String>,
}

/// Duration of each phase in milliseconds; a phase that did not happen is absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Timing {
    /// Name resolution (absent for IP addresses).
    pub dns_ms: Option<f64>,
    /// TCP connection establishment (to the address that answered).
    pub connect_ms: Option<f64>,
    /// TLS handshake.
    pub tls_ms: Option<f64>,
    /// Request sent → response head received.
    pub first_byte_ms: Option<f64>,
    /// The whole hop, body included.
    pub total_ms: f64,
}

/// What the server answered.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HttpResponse {
    pub method: HttpMethod,
    pub status: u16,
    pub reason: Option<String>,
    /// "HTTP/1.1" or "HTTP/1.0".
    pub version: String,
    /// Headers of interest (content-type, location, server, cache-control,
    /// strict-transport-security, ...), lowercase names, values cut at 256 characters.
    pub headers: BTreeMap<String, String>,
    /// Headers in the response.
    pub header_count: usize,
    /// Body bytes read (at most 1 MiB are read).
    pub body_bytes: u64,
    /// The body was longer than what was read.
    pub body_truncated: bool,
    /// The first 512 characters of a text body.
    pub body_preview: Option<String>,
}

/// The validated target of a check.
#[derive(Debug, Clone)]
enum Target {
    Url(Url),
    Tcp {
        host: url::Host<String>,
        port: u16,
        tls: bool,
    },
}

/// Validated arguments of `check_endpoint`.
#[derive(Debug, Clone)]
pub struct EndpointRequest {
    target: Target,
    method: HttpMethod,
    max_redirects: u32,
    timeout: Duration,
    insecure: bool,
}

impl EndpointRequest {
    pub fn new(params: CheckEndpointParams) -> Result<Self, DevopsError> {
        let target = match (params.url, params.host, params.port) {
            (Some(url), None, None) => {
                if params.tls {
                    return Err(DevopsError::invalid(
                        "tls applies to host/port checks; for HTTPS pass an https:// url",
                    ));
                }
                Target::Url(parse_url(&url)?)
            }
            (None, Some(host), Some(port)) => Target::Tcp {
                host: parse_host(&host)?,
                port: nonzero_port(port)?,
                tls: params.tls,
            },
            (Some(_), _, _) => {
                return Err(DevopsError::invalid(
                    "give either url, or host and port, not both; the port of a URL goes \
                     into the URL (https://example.com:8443/health)",
                ));
            }
            (None, _, _) => {
                return Err(DevopsError::invalid(
                    "give url (e.g. \"https://example.com/health\") for an HTTP check, or \
                     host and port (e.g. \"db.internal\", 5432) for a TCP check",
                ));
            }
        };
        let timeout_ms = params.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(DevopsError::invalid(format!(
                "timeout_ms must be between 1 and {MAX_TIMEOUT_MS}, got {timeout_ms}"
            )));
        }
        let max_redirects = params.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS);
        if max_redirects > MAX_REDIRECTS {
            return Err(DevopsError::invalid(format!(
                "max_redirects must be between 0 and {MAX_REDIRECTS}, got {max_redirects}"
            )));
        }
        Ok(Self {
            target,
            method: params.method,
            max_redirects,
            timeout: Duration::from_millis(timeout_ms),
            insecure: params.insecure,
        })
    }

    /// The check's time budget.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn parse_url(text: &str) -> Result<Url, DevopsError> {
    let text = text.trim();
    if text.len() > MAX_URL_BYTES {
        return Err(DevopsError::invalid(format!(
            "url is {} bytes long; at most {MAX_URL_BYTES} are accepted",
            text.len()
        )));
    }
    let mut url = Url::parse(text).map_err(|e| {
        DevopsError::invalid(format!(
            "url {:?} is not a valid absolute URL ({e}); write it like \
             \"https://example.com/health\"",
            truncate_chars(text, 80)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DevopsError::invalid(format!(
            "url scheme {:?} is not supported; use http:// or https://",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DevopsError::invalid(
            "credentials in the url are not supported (they would be echoed in results); \
             check an endpoint that needs no authentication",
        ));
    }
    if url.port() == Some(0) {
        return Err(DevopsError::invalid(
            "the url's port must be between 1 and 65535",
        ));
    }
    url.set_fragment(None);
    Ok(url)
}

fn parse_host(text: &str) -> Result<url::Host<String>, DevopsError> {
    let text = text.trim();
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V4(v4) => url::Host::Ipv4(v4),
            IpAddr::V6(v6) => url::Host::Ipv6(v6),
        });
    }
    let invalid = |why: String| {
        DevopsError::invalid(format!(
            "host {:?} is not a bare host name or IP address ({why}); pass only the host, \
             and the port separately (or give a url instead)",
            truncate_chars(text, 80)
        ))
    };
    if text.is_empty() || text.len() > 253 {
        return Err(invalid("it must have 1 to 253 characters".to_owned()));
    }
    if text.contains(['/', '?', '#', '@', ':', '\\']) {
        return Err(invalid("no scheme, path, port or credentials".to_owned()));
    }
    url::Host::parse(text).map_err(|e| invalid(e.to_string()))
}

fn nonzero_port(port: u16) -> Result<u16, DevopsError> {
    if port == 0 {
        return Err(DevopsError::invalid("port must be between 1 and 65535"));
    }
    Ok(port)
}

/// Runs checks under one policy and trust store (both fixed when the server starts).
#[derive(Debug, Clone)]
pub struct EndpointChecker {
    policy: AddressPolicy,
    trust: TlsTrust,
    /// Tests refuse chosen loopback addresses to show that redirect hops are checked (every
    /// address a test server can listen on is non-public, so `PublicOnly` cannot show it).
    #[cfg(test)]
    also_refused: Vec<IpAddr>,
}

/// How the server's operator configured endpoint checks.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    pub policy: AddressPolicy,
    /// PEM files of extra trusted CAs.
    pub ca_files: Vec<PathBuf>,
}

impl EndpointChecker {
    pub fn new(options: &EndpointOptions) -> Result<Self, DevopsError> {
        Ok(Self {
            policy: options.policy,
            trust: TlsTrust::new(&options.ca_files)?,
            #[cfg(test)]
            also_refused: Vec::new(),
        })
    }

    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Why `address` may not be connected to, or `None`.
    fn refusal(&self, address: IpAddr) -> Option<&'static str> {
        #[cfg(test)]
        if self.also_refused.contains(&address) {
            return Some("refused by this test");
        }
        self.policy.refusal(address)
    }

    /// Runs the check within its time budget. Never fails: problems are in the report.
    pub async fn check(&self, request: &EndpointRequest) -> EndpointReport {
        let started = Instant::now();
        let deadline = started + request.timeout;
        let mut report = EndpointReport {
            target: String::new(),
            ok: false,
            failure: None,
            error: None,
            status: None,
            final_url: None,
            address_policy: self.policy,
            hops: Vec::new(),
            total_ms: 0.0,
            warnings: Vec::new(),
        };
        let failure = match &request.target {
            Target::Tcp { host, port, tls } => {
                report.target = authority(host, *port);
                let tls = tls.then_some(request.insecure);
                let (hop, outcome) = self.tcp_hop(host, *port, tls, deadline).await;
                report.hops.push(hop);
                outcome.err()
            }
            Target::Url(url) => {
                report.target = url.to_string();
                self.follow(url.clone(), request, deadline, &mut report)
                    .await
                    .err()
            }
        };
        if let Some(failure) = failure.or_else(|| untrusted_certificate(&report.hops)) {
            report.failure = Some(failure.kind);
            report.error = Some(if failure.kind == FailureKind::Timeout {
                format!("{} ({} ms)", failure.message, request.timeout.as_millis())
            } else {
                failure.message
            });
        }
        let bad_status = report.status.is_some_and(|status| status >= 400);
        report.ok = report.failure.is_none() && !bad_status;
        report.total_ms = elapsed_ms(started);
        report
    }

    /// Requests `url`, then each redirect target, until a final answer, a failure or a limit.
    async fn follow(
        &self,
        mut url: Url,
        request: &EndpointRequest,
        deadline: Instant,
        report: &mut EndpointReport,
    ) -> Result<(), Failure> {
        let mut method = request.method;
        let mut visited = HashSet::from([url.to_string()]);
        let mut followed = 0;
        loop {
            report.final_url = Some(url.to_string());
            let (hop, outcome) = self
                .http_hop(&url, method, request.insecure, deadline)
                .await;
            report.status = hop.http.as_ref().map(|http| http.status);
            report.hops.push(hop);
            let answer = outcome?;
            let Some(location) = answer.location.filter(|_| is_redirect(answer.status)) else {
                return Ok(());
            };
            if request.max_redirects == 0 {
                return Ok(());
            }
            if followed == request.max_redirects {
                return Err(Failure::new(
                    FailureKind::TooManyRedirects,
                    format!(
                        "stopped after {followed} redirects (max_redirects); the last one \
                         points to {}",
                        truncate_chars(&location, 200)
                    ),
                ));
            }
            let next = redirect_target(&url, &location)?;
            if url.scheme() == "https" && next.scheme() == "http" {
                report.warnings.push(format!(
                    "redirect from https to plain http: {} -> {next}",
                    url
                ));
            }
            if !visited.insert(next.to_string()) {
                return Err(Failure::new(
                    FailureKind::RedirectLoop,
                    format!("redirect loop: {url} redirects back to {next}, visited before"),
                ));
            }
            if answer.status == 303 {
                method = HttpMethod::Get;
            }
            followed += 1;
            url = next;
        }
    }
}

/// The absolute URL a Location header points to, if it is a usable http(s) URL.
fn redirect_target(base: &Url, location: &str) -> Result<Url, Failure> {
    let bad = |why: String| {
        Failure::new(
            FailureKind::BadRedirect,
            format!(
                "redirect Location {:?} {why}",
                truncate_chars(location, 200)
            ),
        )
    };
    let mut next = base
        .join(location)
        .map_err(|e| bad(format!("is not a valid URL ({e})")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(bad(format!(
            "uses the {} scheme; only http(s) is followed",
            next.scheme()
        )));
    }
    if next.port() == Some(0) {
        return Err(bad("has port 0".to_owned()));
    }
    // Never send credentials a server put into a redirect; fragments are not sent anyway.
    let _ = next.set_username("");
    let _ = next.set_password(None);
    next.set_fragment(None);
    Ok(next)
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// A certificate failure that did not stop the check (it ran with `insecure`).
fn untrusted_certificate(hops: &[Hop]) -> Option<Failure> {
    hops.iter().find_map(|hop| {
        let tls = hop.tls.as_ref().filter(|tls| !tls.verified)?;
        Some(Failure::new(
            FailureKind::Certificate,
            format!(
                "the certificate of {}:{} did not verify (the check continued because \
                 insecure was set): {}",
                hop.host,
                hop.port,
                tls.verification_error
                    .as_deref()
                    .unwrap_or("no certificate")
            ),
        ))
    })
}

/// `host:port`, with IPv6 addresses in brackets.
fn authority(host: &url::Host<String>, port: u16) -> String {
    format!("{host}:{port}")
}

fn elapsed_ms(since: Instant) -> f64 {
    round2(since.elapsed().as_secs_f64() * 1000.0)
}

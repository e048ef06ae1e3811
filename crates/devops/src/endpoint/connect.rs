//! One hop of a check: resolve, check every address against the policy, connect to a checked
//! address, and (for https or `tls`) perform the TLS handshake, timing each phase.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use super::http::{ResponseHead, exchange};
use super::tls::{Observed, TlsReport};
use super::{EndpointChecker, Failure, FailureKind, Hop, HttpMethod, Timing, elapsed_ms};

/// A byte stream to an endpoint: plain TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl EndpointChecker {
    /// Connects to `host:port` (with TLS when `tls` is `Some(insecure)`), then closes.
    pub(super) async fn tcp_hop(
        &self,
        host: &Host<String>,
        port: u16,
        tls: Option<bool>,
        deadline: Instant,
    ) -> (Hop, Result<(), Failure>) {
        let started = Instant::now();
        let mut hop = new_hop(None, host, port);
        let outcome = self
            .open(host, port, tls, deadline, &mut hop)
            .await
            .map(drop);
        finish(hop, started, outcome)
    }

    /// Connects for `url` and performs one request.
    pub(super) async fn http_hop(
        &self,
        url: &Url,
        method: HttpMethod,
        insecure: bool,
        deadline: Instant,
    ) -> (Hop, Result<ResponseHead, Failure>) {
        let started = Instant::now();
        // invariant: parse_url and redirect_target only accept http(s) URLs, which have a
        // host and a known default port.
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            let hop = new_hop(Some(url), &Host::Domain(String::new()), 0);
            let failure = Failure::new(FailureKind::Other, format!("{url} has no host or port"));
            return finish(hop, started, Err(failure));
        };
        let host = host.to_owned();
        let mut hop = new_hop(Some(url), &host, port);
        let tls = (url.scheme() == "https").then_some(insecure);
        let outcome = async {
            let stream = self.open(&host, port, tls, deadline, &mut hop).await?;
            exchange(stream, method, url, deadline, &mut hop).await
        }
        .await;
        finish(hop, started, outcome)
    }

    /// Resolution, policy check, TCP connect and optional TLS handshake, recorded in `hop`.
    async fn open(
        &self,
        host: &Host<String>,
        port: u16,
        tls: Option<bool>,
        deadline: Instant,
        hop: &mut Hop,
    ) -> Result<Box<dyn Io>, Failure> {
        let addresses = resolve(host, port, deadline, &mut hop.timing).await?;
        hop.resolved = addresses.iter().map(|a| a.ip().to_string()).collect();
        // Every address is checked before any is used: a name that resolves to one public and
        // one private address is refused rather than gambled on.
        for address in &addresses {
            if let Some(range) = self.refusal(address.ip()) {
                return Err(Failure::new(
                    FailureKind::Blocked,
                    format!(
                        "{host} resolves to {}, which is {range}; this server's endpoint policy \
                         ({}) only allows public addresses. The operator can allow private \
                         targets with --endpoint-policy any",
                        address.ip(),
                        self.policy
                    ),
                ));
            }
        }
        let tcp = connect(&addresses, deadline, hop).await?;
        let Some(insecure) = tls else {
            return Ok(Box::new(tcp));
        };
        let tls_started = Instant::now();
        let observed: Arc<Mutex<Option<Observed>>> = Arc::new(Mutex::new(None));
        let report_of = |observed: &Mutex<Option<Observed>>| {
            TlsReport::from_observed(
                observed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            )
        };
        let config = self
            .trust
            .client_config(insecure, observed.clone())
            .map_err(|e| Failure::new(FailureKind::Other, e.to_string()))?;
        let server_name = match host {
            Host::Domain(name) => ServerName::try_from(name.clone()).map_err(|e| {
                Failure::new(
                    FailureKind::Tls,
                    format!("{name} is not a valid TLS server name: {e}"),
                )
            })?,
            Host::Ipv4(ip) => ServerName::IpAddress((*ip).into()),
            Host::Ipv6(ip) => ServerName::IpAddress((*ip).into()),
        };
        let handshake = TlsConnector::from(Arc::new(config)).connect(server_name, tcp);
        match timeout_at(deadline, handshake).await {
            Ok(Ok(stream)) => {
                hop.timing.tls_ms = Some(elapsed_ms(tls_started));
                let mut report = report_of(&observed);
                report.record_session(stream.get_ref().1);
                hop.tls = Some(report);
                Ok(Box::new(stream))
            }
            Ok(Err(error)) => {
                let report = report_of(&observed);
                let failure = match (&report.verification_error, report.verified) {
                    (Some(why), false) => Failure::new(
                        FailureKind::Certificate,
                        format!("the certificate of {host} is not trusted: {why}"),
                    ),
                    _ => Failure::new(
                        FailureKind::Tls,
                        format!(
                            "TLS handshake with {host}:{port} failed: {error}{}",
                            if is_plaintext_answer(&error) {
                                " (the port seems to speak plain text; try http://)"
                            } else {
                                ""
                            }
                        ),
                    ),
                };
                hop.tls = Some(report);
                Err(failure)
            }
            Err(_) => {
                hop.tls = Some(report_of(&observed));
                Err(timed_out("during the TLS handshake"))
            }
        }
    }
}

fn new_hop(url: Option<&Url>, host: &Host<String>, port: u16) -> Hop {
    Hop {
        url: url.map(Url::to_string),
        host: host.to_string(),
        port,
        resolved: Vec::new(),
        address: None,
        timing: Timing::default(),
        tls: None,
        http: None,
        failure: None,
        error: None,
    }
}

fn finish<T>(
    mut hop: Hop,
    started: Instant,
    outcome: Result<T, Failure>,
) -> (Hop, Result<T, Failure>) {
    hop.timing.total_ms = elapsed_ms(started);
    if let Err(failure) = &outcome {
        hop.failure = Some(failure.kind);
        hop.error = Some(failure.message.clone());
    }
    (hop, outcome)
}

/// The addresses of `host`; an IP address is its own (and takes no lookup).
async fn resolve(
    host: &Host<String>,
    port: u16,
    deadline: Instant,
    timing: &mut Timing,
) -> Result<Vec<SocketAddr>, Failure> {
    let name = match host {
        Host::Ipv4(ip) => return Ok(vec![SocketAddr::new((*ip).into(), port)]),
        Host::Ipv6(ip) => return Ok(vec![SocketAddr::new((*ip).into(), port)]),
        Host::Domain(name) => name,
    };
    let started = Instant::now();
    let lookup = timeout_at(deadline, tokio::net::lookup_host((name.as_str(), port))).await;
    timing.dns_ms = Some(elapsed_ms(started));
    match lookup {
        Ok(Ok(addresses)) => {
            let mut addresses: Vec<SocketAddr> = addresses.collect();
            addresses.dedup();
            if addresses.is_empty() {
                Err(Failure::new(
                    FailureKind::Dns,
                    format!("{name} has no addresses"),
                ))
            } else {
                Ok(addresses)
            }
        }
        Ok(Err(e)) => Err(Failure::new(
            FailureKind::Dns,
            format!("cannot resolve {name}: {e}"),
        )),
        Err(_) => Err(timed_out(&format!("while resolving {name}"))),
    }
}

/// Tries the addresses in order until one accepts; records the last one tried.
async fn connect(
    addresses: &[SocketAddr],
    deadline: Instant,
    hop: &mut Hop,
) -> Result<TcpStream, Failure> {
    let mut last_failure = None;
    for address in addresses {
        hop.address = Some(address.to_string());
        let started = Instant::now();
        match timeout_at(deadline, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                hop.timing.connect_ms = Some(elapsed_ms(started));
                // Small requests: send them at once rather than waiting for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => {
                last_failure = Some(Failure::new(
                    classify_io(&error),
                    format!("connecting to {address} failed: {error}"),
                ));
            }
            Err(_) => return Err(timed_out(&format!("while connecting to {address}"))),
        }
    }
    // invariant: resolve never returns an empty list, so the loop ran at least once.
    Err(last_failure
        .unwrap_or_else(|| Failure::new(FailureKind::Other, "no address to connect to")))
}

/// The failure class of an I/O error.
pub(crate) fn classify_io(error: &io::Error) -> FailureKind {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => FailureKind::Refused,
        io::ErrorKind::TimedOut => FailureKind::Timeout,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            FailureKind::Unreachable
        }
        _ => FailureKind::Other,
    }
}

/// The budget ran out `during` a phase.
pub(crate) fn timed_out(during: &str) -> Failure {
    Failure::new(
        FailureKind::Timeout,
        format!("the time budget (timeout_ms) ran out {during}"),
    )
}

/// Whether a failed handshake looks like a plain-text (HTTP) server on the port.
fn is_plaintext_answer(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
            )
        })
}

//! Reachability checks: TCP connect time and, optionally, a minimal HTTP/1.1 GET over the same
//! socket. Failures (refused, timed out, no HTTP) are part of the result, not errors.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::error::DevopsError;
use crate::metrics::round2;
use crate::text::truncate_chars;

pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Bytes read while looking for the HTTP status line.
const MAX_STATUS_LINE_BYTES: usize = 8 * 1024;
const MAX_HTTP_PATH_BYTES: usize = 2 * 1024;

/// What went wrong when an endpoint could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The host name did not resolve.
    Dns,
    /// Nothing listens on the port (connection refused).
    Refused,
    /// No answer within the timeout.
    Timeout,
    /// No route to the host or network.
    Unreachable,
    /// The peer answered, but not with HTTP.
    Protocol,
    Other,
}

/// Result of `check_endpoint`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EndpointReport {
    pub host: String,
    pub port: u16,
    /// The address connected to (or last tried).
    pub address: Option<String>,
    /// Whether the TCP connection was established.
    pub reachable: bool,
    /// Time to establish the TCP connection.
    pub connect_ms: Option<f64>,
    pub failure: Option<FailureKind>,
    pub error: Option<String>,
    /// Present when `http_path` was given and the TCP connection succeeded.
    pub http: Option<HttpReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HttpReport {
    pub path: String,
    /// True for 2xx and 3xx statuses.
    pub ok: bool,
    pub status: Option<u16>,
    pub status_line: Option<String>,
    /// From sending the request to receiving the status line.
    pub latency_ms: Option<f64>,
    pub failure: Option<FailureKind>,
    pub error: Option<String>,
}

/// Validated arguments of `check_endpoint`.
#[derive(Debug, Clone)]
pub struct EndpointCheck {
    host: String,
    port: u16,
    timeout: Duration,
    http_path: Option<String>,
}

impl EndpointCheck {
    pub fn new(
        host: &str,
        port: u16,
        timeout_ms: Option<u64>,
        http_path: Option<&str>,
    ) -> Result<Self, DevopsError> {
        // Accept "[::1]" as well as "::1" for IPv6 literals.
        let host = host.trim();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.len() > 253 {
            return Err(DevopsError::invalid(
                "host must be a host name or IP address of 1 to 253 characters",
            ));
        }
        if host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@\\".contains(c))
        {
            return Err(DevopsError::invalid(format!(
                "host {host:?} is not a bare host name or IP address; pass only the host \
                 (no scheme, path or credentials) and the port separately"
            )));
        }
        if port == 0 {
            return Err(DevopsError::invalid("port must be between 1 and 65535"));
        }
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(DevopsError::invalid(format!(
                "timeout_ms must be between 1 and {MAX_TIMEOUT_MS}, got {timeout_ms}"
            )));
        }
        if let Some(path) = http_path
            && (!path.starts_with('/')
                || path.len() > MAX_HTTP_PATH_BYTES
                || !path.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(DevopsError::invalid(format!(
                "http_path {:?} must start with '/', be at most {MAX_HTTP_PATH_BYTES} bytes \
                 and contain only visible ASCII (percent-encode anything else)",
                truncate_chars(path, 80)
            )));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            timeout: Duration::from_millis(timeout_ms),
            http_path: http_path.map(str::to_owned),
        })
    }

    /// Resolves, connects (each phase bounded by the timeout), and optionally sends the GET.
    pub async fn run(&self) -> EndpointReport {
        let mut report = EndpointReport {
            host: self.host.clone(),
            port: self.port,
            address: None,
            reachable: false,
            connect_ms: None,
            failure: None,
            error: None,
            http: None,
        };
        let addresses = match self.resolve().await {
            Ok(addresses) => addresses,
            Err((kind, message)) => {
                report.failure = Some(kind);
                report.error = Some(message);
                return report;
            }
        };
        let deadline = Instant::now() + self.timeout;
        let mut stream = None;
        for address in addresses {
            report.address = Some(address.to_string());
            let remaining = deadline.saturating_duration_since(Instant::now());
            let started = Instant::now();
            match timeout(remaining, TcpStream::connect(address)).await {
                Ok(Ok(connected)) => {
                    report.connect_ms = Some(elapsed_ms(started));
                    stream = Some(connected);
                    break;
                }
                Ok(Err(e)) => {
                    report.failure = Some(classify(&e));
                    report.error = Some(format!("connecting to {address} failed: {e}"));
                }
                Err(_) => {
                    report.failure = Some(FailureKind::Timeout);
                    report.error = Some(format!(
                        "no TCP connection to {address} within {} ms",
                        self.timeout.as_millis()
                    ));
                    break;
                }
            }
        }
        let Some(stream) = stream else { return report };
        report.reachable = true;
        report.failure = None;
        report.error = None;
        if let Some(path) = &self.http_path {
            report.http = Some(self.http_get(stream, path).await);
        }
        report
    }

    async fn resolve(&self) -> Result<Vec<SocketAddr>, (FailureKind, String)> {
        let lookup = tokio::net::lookup_host((self.host.as_str(), self.port));
        match timeout(self.timeout, lookup).await {
            Ok(Ok(addresses)) => {
                let addresses: Vec<SocketAddr> = addresses.collect();
                if addresses.is_empty() {
                    Err((FailureKind::Dns, format!("{} has no addresses", self.host)))
                } else {
                    Ok(addresses)
                }
            }
            Ok(Err(e)) => Err((
                FailureKind::Dns,
                format!("cannot resolve {}: {e}", self.host),
            )),
            Err(_) => Err((
                FailureKind::Timeout,
                format!(
                    "resolving {} took longer than {} ms",
                    self.host,
                    self.timeout.as_millis()
                ),
            )),
        }
    }

    async fn http_get(&self, mut stream: TcpStream, path: &str) -> HttpReport {
        let mut report = HttpReport {
            path: path.to_owned(),
            ok: false,
            status: None,
            status_line: None,
            latency_ms: None,
            failure: None,
            error: None,
        };
        let host_header = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: mcp-foundry-devops/{}\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        let started = Instant::now();
        let exchange = async {
            stream.write_all(request.as_bytes()).await?;
            read_status_line(&mut stream).await
        };
        match timeout(self.timeout, exchange).await {
            Ok(Ok(line)) => {
                report.latency_ms = Some(elapsed_ms(started));
                match parse_status_line(&line) {
                    Some(status) => {
                        report.status = Some(status);
                        report.ok = (200..400).contains(&status);
                    }
                    None => {
                        report.failure = Some(FailureKind::Protocol);
                        report.error = Some(format!(
                            "the server did not answer with an HTTP status line (TLS-only \
                             endpoints are not supported); it sent {:?}",
                            truncate_chars(&line, 80)
                        ));
                    }
                }
                report.status_line = Some(truncate_chars(&line, 200));
            }
            Ok(Err(e)) => {
                report.failure = Some(classify(&e));
                report.error = Some(format!("HTTP exchange failed: {e}"));
            }
            Err(_) => {
                report.failure = Some(FailureKind::Timeout);
                report.error = Some(format!(
                    "no HTTP response within {} ms",
                    self.timeout.as_millis()
                ));
            }
        }
        report
    }
}

/// Reads until the first line break (or the byte cap) and returns that first line.
async fn read_status_line(stream: &mut TcpStream) -> io::Result<String> {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            if buffer.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection without answering",
                ));
            }
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = memchr::memchr(b'\n', &buffer) {
            buffer.truncate(end);
            break;
        }
        if buffer.len() >= MAX_STATUS_LINE_BYTES {
            break;
        }
    }
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

fn classify(error: &io::Error) -> FailureKind {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => FailureKind::Refused,
        io::ErrorKind::TimedOut => FailureKind::Timeout,
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            FailureKind::Unreachable
        }
        _ => FailureKind::Other,
    }
}

fn elapsed_ms(since: Instant) -> f64 {
    round2(since.elapsed().as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpSocket};

    const LOOPBACK: &str = "127.0.0.1";

    async fn check(port: u16, timeout_ms: u64, path: Option<&str>) -> EndpointReport {
        EndpointCheck::new(LOOPBACK, port, Some(timeout_ms), path)
            .unwrap()
            .run()
            .await
    }

    /// A port that was just free: bind, read the port, drop the listener.
    async fn closed_port() -> u16 {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn open_port_reports_connect_time() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let report = check(port, 2_000, None).await;
        assert!(report.reachable, "{report:?}");
        assert!(report.connect_ms.unwrap() >= 0.0);
        assert_eq!(
            report.address.as_deref(),
            Some(format!("127.0.0.1:{port}").as_str())
        );
        assert!(report.http.is_none());
    }

    #[tokio::test]
    async fn refused_port_is_a_result() {
        let report = check(closed_port().await, 2_000, Some("/")).await;
        assert!(!report.reachable);
        assert_eq!(report.failure, Some(FailureKind::Refused), "{report:?}");
        assert!(report.http.is_none());
    }

    #[tokio::test]
    async fn http_get_reads_status_and_sends_a_valid_request() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut chunk = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut chunk).await.unwrap();
                assert_ne!(n, 0, "client closed before finishing the request");
                request.extend_from_slice(&chunk[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(request).unwrap()
        });
        let report = check(port, 2_000, Some("/health?x=1")).await;
        let request = server.await.unwrap();
        assert!(
            request.starts_with("GET /health?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
        let http = report.http.unwrap();
        assert_eq!(http.status, Some(404));
        assert!(!http.ok);
        assert_eq!(http.status_line.as_deref(), Some("HTTP/1.1 404 Not Found"));
        assert!(http.latency_ms.is_some());
    }

    #[tokio::test]
    async fn silent_server_times_out_the_http_phase() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accept and hold the connection without ever answering.
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let report = check(port, 300, Some("/")).await;
        server.abort();
        assert!(report.reachable);
        let http = report.http.unwrap();
        assert_eq!(http.failure, Some(FailureKind::Timeout), "{http:?}");
        assert!(http.error.unwrap().contains("300 ms"));
    }

    #[tokio::test]
    async fn non_http_answer_is_a_protocol_failure() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
        });
        let http = check(port, 2_000, Some("/")).await.http.unwrap();
        assert_eq!(http.failure, Some(FailureKind::Protocol));
        assert_eq!(http.status, None);
    }

    #[tokio::test]
    async fn server_closing_without_answer_is_reported() {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
        });
        let http = check(port, 2_000, Some("/")).await.http.unwrap();
        assert!(http.error.unwrap().contains("failed"));
        assert!(!http.ok);
    }

    #[tokio::test]
    async fn full_backlog_times_out_the_connect() {
        // A listener that never accepts, with a backlog of 1: once its queue is full, Linux
        // drops further SYNs, so a connect hangs until our timeout.
        let socket = TcpSocket::new_v4().unwrap();
        socket
            .bind((LOOPBACK.parse::<std::net::IpAddr>().unwrap(), 0).into())
            .unwrap();
        let listener = socket.listen(1).unwrap();
        let address = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for _ in 0..16 {
            match timeout(Duration::from_millis(200), TcpStream::connect(address)).await {
                Ok(Ok(stream)) => held.push(stream),
                _ => break,
            }
        }
        let report = check(address.port(), 300, None).await;
        assert!(!report.reachable, "{report:?}");
        assert_eq!(report.failure, Some(FailureKind::Timeout), "{report:?}");
        drop(listener);
    }

    #[test]
    fn validates_arguments() {
        assert!(EndpointCheck::new("[::1]", 80, None, None).is_ok());
        let err = |h: &str, p: u16, t: Option<u64>, path: Option<&str>| {
            EndpointCheck::new(h, p, t, path).unwrap_err().to_string()
        };
        assert!(err("", 80, None, None).contains("host"));
        assert!(err("http://x", 80, None, None).contains("no scheme"));
        assert!(err("a b", 80, None, None).contains("host"));
        assert!(err("x", 0, None, None).contains("port"));
        assert!(err("x", 80, Some(0), None).contains("timeout_ms"));
        assert!(err("x", 80, Some(60_001), None).contains("timeout_ms"));
        assert!(err("x", 80, None, Some("health")).contains("http_path"));
        assert!(err("x", 80, None, Some("/a\r\nX: y")).contains("http_path"));
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(parse_status_line("HTTP/1.0 503"), Some(503));
        assert_eq!(parse_status_line("HTTP/2 999 nope"), None);
        assert_eq!(parse_status_line("SSH-2.0-x"), None);
    }
}

//! Local HTTP and HTTPS servers for the endpoint tests, answering with canned, slow, huge or
//! broken responses, and certificates made on the spot with rcgen (a test CA, leaves that are
//! valid, expired or for another host, and a self-signed leaf no one trusts).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// What the server does with a request (it is given the request target, e.g. "/a?b").
pub(super) enum Reply {
    /// Write these bytes, then close.
    Raw(Vec<u8>),
    /// Never answer; hold the connection open.
    Silent,
    /// Send `head`, then `chunk` every `every`, forever.
    Trickle {
        head: Vec<u8>,
        chunk: Vec<u8>,
        every: Duration,
    },
    /// A 200 with a body of `len` bytes, streamed.
    Huge(u64),
}

/// A complete response with a body and extra header lines.
pub(super) fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    Reply::Raw(text.into_bytes())
}

pub(super) fn redirect(status: &str, location: &str) -> Reply {
    response(status, &[("Location", location)], "")
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A running test server; dropping it stops it.
pub(super) struct Server {
    pub addr: SocketAddr,
    /// Request heads received, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// A plain HTTP server on 127.0.0.1.
pub(super) async fn http(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Server {
    start(Ipv4Addr::LOCALHOST.into(), None, Arc::new(handler)).await
}

/// A plain HTTP server on `ip` (any 127.x.y.z works on Linux).
pub(super) async fn http_on(
    ip: IpAddr,
    handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> Server {
    start(ip, None, Arc::new(handler)).await
}

/// An HTTPS server on 127.0.0.1 presenting `identity`.
pub(super) async fn https(
    identity: &Identity,
    handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> Server {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(identity.chain.clone(), identity.key.clone_key())
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    start(
        Ipv4Addr::LOCALHOST.into(),
        Some(acceptor),
        Arc::new(handler),
    )
    .await
}

async fn start(ip: IpAddr, tls: Option<TlsAcceptor>, handler: Handler) -> Server {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let (log, count) = (requests.clone(), connections.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let (handler, log, tls) = (handler.clone(), log.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    // A client that rejects the certificate aborts the handshake: not an error.
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(socket).await {
                            serve(stream, &handler, &log).await;
                        }
                    }
                    None => serve(socket, &handler, &log).await,
                }
            });
        }
    });
    Server {
        addr,
        requests,
        connections,
        task,
    }
}

/// Reads one request head, logs it and acts out the handler's reply.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    handler: &Handler,
    log: &Mutex<Vec<String>>,
) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        // Like real HTTP servers, answer bytes that cannot start a request (a TLS
        // ClientHello) with 400 instead of waiting for a request head that never comes.
        if !head[0].is_ascii_uppercase() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
    log.lock().unwrap().push(head);
    // Write errors mean the client went away (e.g. after its body limit): fine.
    match handler(&target) {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Trickle { head, chunk, every } => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(every).await;
                if stream.write_all(&chunk).await.is_err() || stream.flush().await.is_err() {
                    return;
                }
            }
        }
        Reply::Huge(len) => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'x'; 64 * 1024];
            let mut left = len;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                if stream.write_all(&block[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
        }
    }
}

/// A certificate chain and its key, for a test server.
pub(super) struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// A test certificate authority that issues server certificates.
pub(super) struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "mcp-foundry test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA's own certificate and key, to serve as if it were a leaf.
    pub fn as_identity(&self) -> Identity {
        Identity {
            chain: vec![self.issuer.der().clone()],
            key: private_key(self.issuer.key()),
        }
    }

    /// The CA certificate, to trust.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A server certificate for `names` valid from `days_from_now.0` to `.1` days from today.
    pub fn issue(&self, names: &[&str], valid_days: (i64, i64)) -> Identity {
        let key = KeyPair::generate().unwrap();
        let params = leaf_params(names, valid_days);
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            chain: vec![leaf.der().clone()],
            key: private_key(&key),
        }
    }
}

/// A self-signed server certificate for `names` that no trust store holds.
pub(super) fn self_signed(names: &[&str]) -> Identity {
    let key = KeyPair::generate().unwrap();
    let leaf = leaf_params(names, (-1, 30)).self_signed(&key).unwrap();
    Identity {
        chain: vec![leaf.der().clone()],
        key: private_key(&key),
    }
}

fn leaf_params(names: &[&str], (from, to): (i64, i64)) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, &names[0]);
    let (year, month, day) = days_from_today(from);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    let (year, month, day) = days_from_today(to);
    params.not_after = rcgen::date_time_ymd(year, month, day);
    params
}

/// The date `days` days from today (UTC), as year, month, day.
fn days_from_today(days: i64) -> (i32, u8, u8) {
    use chrono::Datelike as _;
    let today = chrono::Utc::now().date_naive();
    let date = if days >= 0 {
        today + chrono::Days::new(days.unsigned_abs())
    } else {
        today - chrono::Days::new(days.unsigned_abs())
    };
    (date.year(), date.month() as u8, date.day() as u8)
}

fn private_key(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

//! A local HTTPS server for the integration tests, with certificates made by rcgen: one
//! signed by a test CA the server under test is told to trust, or a self-signed one.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A certificate and its key.
pub struct Identity {
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

pub struct TestCa(CertifiedIssuer<'static, KeyPair>);

impl TestCa {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "integration test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A certificate for `name` that expires at midnight UTC `days + 1` days from today.
    pub fn issue(&self, name: &str, days: u64) -> Identity {
        let key = KeyPair::generate().unwrap();
        let certificate = leaf(name, days).signed_by(&key, &self.0).unwrap();
        identity(certificate.der().clone(), &key)
    }
}

pub fn self_signed(name: &str) -> Identity {
    let key = KeyPair::generate().unwrap();
    let certificate = leaf(name, 30).self_signed(&key).unwrap();
    identity(certificate.der().clone(), &key)
}

fn leaf(name: &str, days: u64) -> CertificateParams {
    use chrono::Datelike as _;
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    let end = chrono::Utc::now().date_naive() + chrono::Days::new(days + 1);
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    params
}

fn identity(certificate: CertificateDer<'static>, key: &KeyPair) -> Identity {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Identity { certificate, key }
}

/// Serves `204 No Content` over TLS on 127.0.0.1 to every connection; returns the port.
pub async fn serve(identity: Identity) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate], identity.key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(socket).await else {
                    return; // the client refused the certificate
                };
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

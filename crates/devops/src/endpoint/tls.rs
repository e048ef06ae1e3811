//! TLS for `check_endpoint`: trust anchors, a verifier that records what it was shown, and
//! the certificate summary (validity, days until expiry, names) of the server's leaf.
//!
//! Trust: the devops binary is built static and shipped in scratch OCI images, where no
//! system trust store exists, so Mozilla's CA set is compiled in (`webpki-roots`); an
//! operator adds private CAs with `--ca-file`. A failed verification (expired, wrong host,
//! unknown issuer) is a result with the reason, not an error; with `insecure` the check
//! continues over the unverified connection and still reports why it is not trusted.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore,
    SignatureScheme,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::error::DevopsError;
use crate::text::truncate_chars;

/// Most subject alternative names listed per certificate.
const MAX_LISTED_NAMES: usize = 20;

/// The trust anchors and crypto provider every TLS check uses; built once at startup.
#[derive(Debug, Clone)]
pub struct TlsTrust {
    verifier: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    /// How many anchors came from `--ca-file`s (reported at startup).
    pub extra_anchors: usize,
}

impl TlsTrust {
    /// Mozilla's roots plus every certificate in the PEM files `ca_files`.
    pub fn new(ca_files: &[impl AsRef<Path>]) -> Result<Self, DevopsError> {
        let mut extra = Vec::new();
        for file in ca_files {
            let file = file.as_ref();
            let certificates = CertificateDer::pem_file_iter(file)
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    DevopsError::invalid(format!(
                        "cannot read CA certificates from {}: {e}; pass a PEM file of \
                         CERTIFICATE blocks",
                        file.display()
                    ))
                })?;
            if certificates.is_empty() {
                return Err(DevopsError::invalid(format!(
                    "{} holds no PEM CERTIFICATE block",
                    file.display()
                )));
            }
            extra.extend(certificates);
        }
        Self::with_extra_anchors(extra)
    }

    /// Mozilla's roots plus `extra` trust anchors.
    pub fn with_extra_anchors(extra: Vec<CertificateDer<'static>>) -> Result<Self, DevopsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let extra_anchors = extra.len();
        for certificate in extra {
            roots.add(certificate).map_err(|e| {
                DevopsError::invalid(format!(
                    "a CA certificate cannot be used as a trust anchor: {e}"
                ))
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| DevopsError::Failed(format!("cannot set up TLS verification: {e}")))?;
        Ok(Self {
            verifier,
            provider,
            extra_anchors,
        })
    }

    /// A client configuration for one connection, with a verifier that records the server's
    /// certificate and the verification outcome in `observed`.
    pub(crate) fn client_config(
        &self,
        insecure: bool,
        observed: Arc<Mutex<Option<Observed>>>,
    ) -> Result<ClientConfig, DevopsError> {
        let verifier = Arc::new(RecordingVerifier {
            inner: self.verifier.clone(),
            insecure,
            observed,
        });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| DevopsError::Failed(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // Measure a full handshake every time; the client speaks HTTP/1.1 only.
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// What the verifier saw during one handshake.
#[derive(Debug)]
pub(crate) struct Observed {
    pub end_entity: CertificateDer<'static>,
    pub chain_length: usize,
    pub verdict: Result<(), rustls::Error>,
}

/// Delegates to the WebPKI verifier and writes down the leaf and the verdict, so a refused
/// certificate can still be described. Handshake signatures are always checked.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    insecure: bool,
    observed: Arc<Mutex<Option<Observed>>>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        let outcome = match &verdict {
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        };
        *self.observed.lock().unwrap_or_else(PoisonError::into_inner) = Some(Observed {
            end_entity: end_entity.clone().into_owned(),
            chain_length: 1 + intermediates.len(),
            verdict: outcome,
        });
        match verdict {
            Err(_) if self.insecure => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why a server certificate was not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateProblem {
    /// The certificate's notAfter has passed.
    Expired,
    /// The certificate's notBefore is in the future.
    NotYetValid,
    /// The certificate does not name the host that was asked for.
    WrongHost,
    /// The chain does not lead to a trusted root (self-signed, private CA, missing
    /// intermediate).
    UnknownIssuer,
    Revoked,
    /// A signature in the chain does not verify.
    BadSignature,
    /// The certificate is not for TLS server authentication.
    WrongPurpose,
    /// The server presents a CA certificate (basicConstraints CA:TRUE) as its own.
    CaUsedAsLeaf,
    Other,
}

impl CertificateProblem {
    pub(crate) fn of(error: &rustls::Error) -> Self {
        let rustls::Error::InvalidCertificate(error) = error else {
            return Self::Other;
        };
        if webpki_error(error) == Some(&webpki::Error::CaUsedAsEndEntity) {
            return Self::CaUsedAsLeaf;
        }
        match error {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Self::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Self::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Self::WrongHost
            }
            CertificateError::UnknownIssuer => Self::UnknownIssuer,
            CertificateError::Revoked => Self::Revoked,
            CertificateError::BadSignature => Self::BadSignature,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Self::WrongPurpose
            }
            _ => Self::Other,
        }
    }
}

/// The negotiated TLS session and the server's certificate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TlsReport {
    /// "TLS 1.3" or "TLS 1.2"; absent when the handshake failed.
    pub version: Option<String>,
    pub cipher_suite: Option<String>,
    /// Negotiated application protocol ("http/1.1"), if the server chose one.
    pub alpn: Option<String>,
    /// Whether the certificate chain verified for the host name.
    pub verified: bool,
    /// Why it did not verify.
    pub problem: Option<CertificateProblem>,
    pub verification_error: Option<String>,
    /// The server's (leaf) certificate, when it sent one.
    pub certificate: Option<CertificateSummary>,
}

/// What the server's leaf certificate says.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CertificateSummary {
    /// Subject distinguished name (RFC 4514).
    pub subject: String,
    pub issuer: String,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// Whole days until `not_after` (negative once expired).
    pub expires_in_days: i64,
    /// Subject alternative names: DNS names and IP addresses (first 20).
    pub names: Vec<String>,
    /// Certificates the server sent, the leaf included.
    pub chain_length: usize,
}

impl TlsReport {
    /// A report from what the verifier observed (if the handshake got that far).
    pub(crate) fn from_observed(observed: Option<Observed>) -> Self {
        let mut report = Self {
            version: None,
            cipher_suite: None,
            alpn: None,
            verified: false,
            problem: None,
            verification_error: None,
            certificate: None,
        };
        if let Some(observed) = observed {
            match &observed.verdict {
                Ok(()) => report.verified = true,
                Err(error) => {
                    report.problem = Some(CertificateProblem::of(error));
                    report.verification_error = Some(describe_tls_error(error));
                }
            }
            report.certificate = summarize(&observed.end_entity, observed.chain_length);
        }
        report
    }

    /// Fills in the negotiated parameters of an established session.
    pub(crate) fn record_session(&mut self, connection: &rustls::ClientConnection) {
        self.version = connection.protocol_version().map(version_name);
        self.cipher_suite = connection
            .negotiated_cipher_suite()
            .map(|suite| format!("{:?}", suite.suite()));
        self.alpn = connection
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
    }
}

fn version_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The WebPKI error rustls wrapped as `CertificateError::Other`, if that is what it is.
fn webpki_error(error: &CertificateError) -> Option<&webpki::Error> {
    match error {
        CertificateError::Other(other) => other.0.downcast_ref::<webpki::Error>(),
        _ => None,
    }
}

/// A rustls error in words a user can act on.
pub(crate) fn describe_tls_error(error: &rustls::Error) -> String {
    if let rustls::Error::InvalidCertificate(certificate_error) = error
        && webpki_error(certificate_error) == Some(&webpki::Error::CaUsedAsEndEntity)
    {
        return "the server presents a CA certificate (basicConstraints CA:TRUE) as its own; \
                WebPKI refuses that even when the CA is trusted. Serve a leaf certificate \
                (CA:FALSE) issued by that CA"
            .to_owned();
    }
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the certificate chain does not lead to a trusted root (self-signed, private CA \
             or missing intermediate); the operator can trust a private CA with --ca-file"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected,
            presented,
        }) => format!(
            "the certificate is not valid for {}; it names {}",
            expected.to_str(),
            if presented.is_empty() {
                "no host".to_owned()
            } else {
                truncate_chars(&presented.join(", "), 300)
            }
        ),
        other => format!("{other}"),
    }
}

/// Subject, issuer, validity and names of a DER certificate; `None` if it does not parse.
pub(crate) fn summarize(der: &[u8], chain_length: usize) -> Option<CertificateSummary> {
    let certificate = Certificate::from_der(der).ok()?;
    let tbs = certificate.tbs_certificate();
    let not_before = tbs.validity().not_before.to_unix_duration().as_secs();
    let not_after = tbs.validity().not_after.to_unix_duration().as_secs();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut names = Vec::new();
    if let Ok(Some((_, SubjectAltName(general_names)))) = tbs.get_extension::<SubjectAltName>() {
        for name in general_names.iter().take(MAX_LISTED_NAMES) {
            match name {
                GeneralName::DnsName(dns) => names.push(dns.to_string()),
                GeneralName::IpAddress(octets) => {
                    if let Some(ip) = ip_from_octets(octets.as_bytes()) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some(CertificateSummary {
        subject: truncate_chars(&tbs.subject().to_string(), 300),
        issuer: truncate_chars(&tbs.issuer().to_string(), 300),
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        expires_in_days: days_between(now, not_after),
        names,
        chain_length,
    })
}

fn ip_from_octets(octets: &[u8]) -> Option<std::net::IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(Into::into),
        16 => <[u8; 16]>::try_from(octets).ok().map(Into::into),
        _ => None,
    }
}

/// Whole days from `now` to `then` (Unix seconds), rounded towards minus infinity so that a
/// certificate that expired an hour ago reads -1, not 0.
fn days_between(now: u64, then: u64) -> i64 {
    let delta = i128::from(then) - i128::from(now);
    i64::try_from(delta.div_euclid(86_400)).unwrap_or(i64::MAX)
}

fn rfc3339(unix_secs: u64) -> String {
    i64::try_from(unix_secs)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || format!("{unix_secs} s after the epoch"),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_towards_the_past() {
        assert_eq!(days_between(0, 86_400 * 3 + 5), 3);
        assert_eq!(days_between(86_400, 86_400), 0);
        assert_eq!(days_between(3_600, 0), -1);
        assert_eq!(days_between(86_400 * 2 + 1, 0), -3);
    }

    #[test]
    fn summarizes_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["example.test".into(), "127.0.0.1".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "example.test");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let certificate = params.self_signed(&key).unwrap();
        let summary = summarize(certificate.der(), 1).unwrap();
        assert_eq!(summary.subject, "CN=example.test");
        assert_eq!(summary.issuer, "CN=example.test");
        assert_eq!(summary.not_before, "2020-01-01T00:00:00Z");
        assert_eq!(summary.not_after, "2021-01-01T00:00:00Z");
        assert!(summary.expires_in_days < -365, "{summary:?}");
        assert_eq!(summary.names, ["example.test", "127.0.0.1"]);
        assert!(summarize(b"not a certificate", 1).is_none());
    }

    #[test]
    fn ca_files_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        let err = TlsTrust::new(&[&empty]).unwrap_err().to_string();
        assert!(err.contains("no PEM CERTIFICATE"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = TlsTrust::new(&[&missing]).unwrap_err().to_string();
        assert!(err.contains("cannot read CA certificates"), "{err}");

        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.pem()).unwrap();
        assert_eq!(TlsTrust::new(&[&good]).unwrap().extra_anchors, 1);
        assert_eq!(TlsTrust::new(&[] as &[&Path]).unwrap().extra_anchors, 0);
    }
}

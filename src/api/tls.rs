//! TLS between agents (rustls): no certificate authority, only fingerprints. Every agent shows
//! its self-signed certificate; the handshake proves possession of its key, and the peer API
//! decides by fingerprint what a caller may do (session endpoints: anyone, who then proves the
//! passphrase; everything else: pinned peers only).

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};

/// SHA-256 of a DER certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

pub fn hex(fp: &[u8; 32]) -> String {
    fp.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// The handshake-signature checks every verifier here shares: the peer must hold the key of the
// certificate it shows, whatever is then decided about the certificate itself.
fn tls12(
    p: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_tls12_signature(message, cert, dss, &p.signature_verification_algorithms)
}

fn tls13(
    p: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    verify_tls13_signature(message, cert, dss, &p.signature_verification_algorithms)
}

fn schemes(p: &CryptoProvider) -> Vec<SignatureScheme> {
    p.signature_verification_algorithms.supported_schemes()
}

/// Accepts any client certificate at the TLS layer (after checking the handshake signature, so
/// the client holds the key); the application checks the fingerprint.
#[derive(Debug)]
struct AnyClientCert(Arc<CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(&self.0, message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(&self.0, message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes(&self.0)
    }
}

/// How a client judges the server's certificate.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// First contact: accept any certificate and remember its fingerprint; the PAKE then binds
    /// that fingerprint, so a man in the middle fails the exchange.
    Capture(Arc<Mutex<Option<[u8; 32]>>>),
    /// Only this fingerprint.
    Pinned([u8; 32]),
}

#[derive(Debug)]
struct ServerVerifier {
    trust: ServerTrust,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity);
        match &self.trust {
            ServerTrust::Capture(slot) => {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(fp);
                Ok(ServerCertVerified::assertion())
            }
            ServerTrust::Pinned(want) if *want == fp => Ok(ServerCertVerified::assertion()),
            ServerTrust::Pinned(want) => Err(rustls::Error::General(format!(
                "certificate fingerprint {} is not the pinned {}",
                hex(&fp),
                hex(want)
            ))),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls12(&self.provider, message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls13(&self.provider, message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes(&self.provider)
    }
}

/// A verifier that accepts any server certificate once the handshake signature checks out,
/// for callers that judge the certificate by its fingerprint afterwards (a joiner fetching the
/// LXD cluster certificate its join token names).
pub(crate) fn any_server_cert(provider: Arc<CryptoProvider>) -> Arc<dyn ServerCertVerifier> {
    Arc::new(ServerVerifier {
        trust: ServerTrust::Capture(Arc::new(Mutex::new(None))),
        provider,
    })
}

/// The peer API server's TLS config: our certificate, client certificates required.
pub fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let p = provider();
    rustls::ServerConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(AnyClientCert(p)))
        .with_single_cert(vec![cert], key)
}

/// A client TLS config presenting our certificate and judging the server by `trust`.
pub fn client_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    trust: ServerTrust,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let p = provider();
    rustls::ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerVerifier { trust, provider: p }))
        .with_client_auth_cert(vec![cert], key)
}

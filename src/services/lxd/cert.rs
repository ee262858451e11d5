//! The cluster certificate a joiner sends in `PUT /1.0/cluster`: fetched over TLS from an
//! address in the join token, and accepted only if its SHA-256 equals the token's fingerprint.
//! The token came over our pinned channel, so the fingerprint is the trust anchor; the TLS
//! layer itself trusts nothing (no CA, any name) and only proves the server holds the key.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use super::token::JoinToken;
use super::LxdError;

/// Lower-case hex SHA-256 of a DER certificate, as LXD prints fingerprints.
pub fn fingerprint_hex(der: &[u8]) -> String {
    use crate::api::tls::{fingerprint, hex};
    hex(&fingerprint(&CertificateDer::from(der)))
}

/// PEM of one DER certificate (64-character lines, trailing newline), as LXD writes it.
pub fn pem_encode(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// DER of the first certificate in `pem`.
pub fn pem_decode(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + pem[start..].find("-----END CERTIFICATE-----")?;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Check that `pem` is the certificate the token names.
pub fn check_certificate(token: &JoinToken, pem: &str) -> Result<(), LxdError> {
    let der = pem_decode(pem).ok_or_else(|| LxdError::Certificate {
        failures: vec!["the cluster certificate is not a PEM certificate".into()],
    })?;
    let got = fingerprint_hex(&der);
    if got != token.fingerprint {
        return Err(LxdError::Certificate {
            failures: vec![format!(
                "certificate fingerprint {got} is not the token's {}",
                token.fingerprint
            )],
        });
    }
    Ok(())
}

/// Connect to each of the token's addresses in turn and return `(address, PEM)` of the first
/// that serves the certificate the token names. The error lists every address and why.
pub async fn fetch_cluster_certificate(
    token: &JoinToken,
    timeout: Duration,
) -> Result<(String, String), LxdError> {
    let mut failures = Vec::new();
    for address in &token.addresses {
        match tokio::time::timeout(timeout, fetch_certificate(address)).await {
            Err(_) => failures.push(format!("{address}: no TLS handshake within {timeout:?}")),
            Ok(Err(e)) => failures.push(format!("{address}: {e}")),
            Ok(Ok(der)) => {
                let got = fingerprint_hex(&der);
                if got == token.fingerprint {
                    return Ok((address.clone(), pem_encode(&der)));
                }
                failures.push(format!(
                    "{address} serves certificate {got}, not the token's {}",
                    token.fingerprint
                ));
            }
        }
    }
    if failures.is_empty() {
        failures.push("the token lists no address".into());
    }
    Err(LxdError::Certificate { failures })
}

/// The DER leaf certificate served at `address` (`host:port`, `[v6]:port`).
pub async fn fetch_certificate(address: &str) -> Result<Vec<u8>, String> {
    let (host, port) = split_host_port(address)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a host name or address: {e}"))?;
    let provider = crate::api::tls::provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(crate::api::tls::any_server_cert(provider))
        .with_no_client_auth();
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let (_, conn) = tls.get_ref();
    conn.peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| "the server sent no certificate".to_string())
}

fn split_host_port(address: &str) -> Result<(&str, u16), String> {
    let bad = || format!("address {address:?} is not host:port");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_fingerprint() {
        let der: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        let pem = pem_encode(&der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(pem_decode(&pem).unwrap(), der);
        assert_eq!(fingerprint_hex(b"").len(), 64);
        assert_eq!(
            fingerprint_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(pem_decode("garbage").is_none());
        assert!(pem_decode("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----").is_none());
    }

    #[test]
    fn certificate_must_match_the_token() {
        let der = b"not really a certificate".to_vec();
        let mut token = JoinToken {
            server_name: "m2".into(),
            fingerprint: fingerprint_hex(&der),
            addresses: vec!["127.0.0.1:1".into()],
            secret: "s".into(),
            expires_at: None,
        };
        check_certificate(&token, &pem_encode(&der)).unwrap();
        token.fingerprint = "0".repeat(64);
        let err = check_certificate(&token, &pem_encode(&der)).unwrap_err();
        assert!(err.to_string().contains("not the token's"), "{err}");
        assert!(check_certificate(&token, "nope").is_err());
    }

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("10.0.0.1:8443").unwrap(),
            ("10.0.0.1", 8443)
        );
        assert_eq!(
            split_host_port("[fd00::1]:8443").unwrap(),
            ("fd00::1", 8443)
        );
        assert!(split_host_port("10.0.0.1").is_err());
        assert!(split_host_port(":8443").is_err());
        assert!(split_host_port("h:99999").is_err());
    }

    #[tokio::test]
    async fn unreachable_addresses_are_all_named() {
        let token = JoinToken {
            server_name: "m2".into(),
            fingerprint: "0".repeat(64),
            addresses: vec!["127.0.0.1:1".into(), "bogus".into()],
            secret: "s".into(),
            expires_at: None,
        };
        let err = fetch_cluster_certificate(&token, Duration::from_secs(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("127.0.0.1:1: connecting"), "{err}");
        assert!(err.contains("\"bogus\" is not host:port"), "{err}");
    }
}

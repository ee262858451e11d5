//! This agent's identity: a self-signed ECDSA P-256 certificate and its key, created once in
//! the state directory and never regenerated, since peers pin its fingerprint.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::files::write_atomic;
use super::fingerprint::Fingerprint;

pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a usable PEM {what}: {reason}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{key} does not belong to the certificate in {cert}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error(
        "{present} exists but {missing} does not; refusing to make a new identity over half \
         of an old one (move {present} away to start afresh)"
    )]
    Incomplete { present: PathBuf, missing: PathBuf },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

impl Identity {
    /// Load `cert.pem` and `key.pem` from `state_dir`, or create both if neither exists.
    pub fn load_or_create(state_dir: &Path) -> Result<Identity, IdentityError> {
        let cert_path = state_dir.join(CERT_FILE);
        let key_path = state_dir.join(KEY_FILE);
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => Identity::load(&cert_path, &key_path),
            (false, false) => Identity::create(state_dir, &cert_path, &key_path),
            (true, false) => Err(IdentityError::Incomplete {
                present: cert_path,
                missing: key_path,
            }),
            (false, true) => Err(IdentityError::Incomplete {
                present: key_path,
                missing: cert_path,
            }),
        }
    }

    /// A fresh identity that is never written anywhere (tests, throw-away lab agents).
    pub fn generate() -> Result<Identity, IdentityError> {
        let (cert_pem, key_pem) = generate_pem()?;
        let cert =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("rcgen writes valid PEM");
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("rcgen writes valid PEM");
        Ok(Identity::from_parts(cert, key))
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    fn from_parts(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> Identity {
        let fingerprint = Fingerprint::of_der(&cert);
        Identity {
            cert,
            key,
            fingerprint,
        }
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Identity, IdentityError> {
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let cert =
            CertificateDer::from_pem_slice(&cert_pem).map_err(|e| IdentityError::Corrupt {
                path: cert_path.to_path_buf(),
                what: "certificate",
                reason: e.to_string(),
            })?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| IdentityError::Corrupt {
            path: key_path.to_path_buf(),
            what: "private key",
            reason: e.to_string(),
        })?;
        // Catch a key from another identity (or a damaged one) now, with both paths named,
        // rather than as a TLS handshake failure on some peer later.
        rustls::sign::CertifiedKey::from_der(
            vec![cert.clone()],
            key.clone_key(),
            &rustls::crypto::ring::default_provider(),
        )
        .map_err(|e| IdentityError::Mismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Identity::from_parts(cert, key))
    }

    fn create(
        state_dir: &Path,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Identity, IdentityError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|source| IdentityError::Write {
                path: state_dir.to_path_buf(),
                source,
            })?;
        let (cert_pem, key_pem) = generate_pem()?;
        // Key first: a crash between the two leaves a key without a certificate, which
        // load_or_create reports instead of silently replacing.
        for (path, pem, mode) in [(key_path, &key_pem, 0o600), (cert_path, &cert_pem, 0o644)] {
            write_atomic(path, pem.as_bytes(), mode).map_err(|source| IdentityError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        Identity::load(cert_path, key_path)
    }
}

fn generate_pem() -> Result<(String, String), IdentityError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec!["microcloud".to_string()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "microcloud agent");
    // Validity stays at rcgen's far-future default: peers pin the fingerprint, and an expiry
    // would only break a cluster years later with nobody to re-pin.
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn exists(path: &Path) -> Result<bool, IdentityError> {
    path.try_exists().map_err(|source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    fs::read(path).map_err(|source| IdentityError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = Identity::load_or_create(&state).unwrap();
        let cert_before = fs::read(state.join(CERT_FILE)).unwrap();
        let b = Identity::load_or_create(&state).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), Fingerprint::of_der(b.cert_der()));
        assert_eq!(fs::read(state.join(CERT_FILE)).unwrap(), cert_before);
        assert_eq!(mode(&state.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&state.join(CERT_FILE)), 0o644);
        assert_ne!(a.fingerprint(), Identity::generate().unwrap().fingerprint());
    }

    #[test]
    fn half_an_identity_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let err = Identity::load_or_create(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key.pem exists but") && err.contains("cert.pem"),
            "{err}"
        );
        assert!(!dir.path().join(CERT_FILE).exists(), "nothing regenerated");
    }

    #[test]
    fn corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        fs::write(dir.path().join(CERT_FILE), "garbage").unwrap();
        let err = Identity::load_or_create(dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cert.pem") && err.contains("certificate"),
            "{err}"
        );
    }

    #[test]
    fn a_key_from_another_identity_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        Identity::load_or_create(a.path()).unwrap();
        Identity::load_or_create(b.path()).unwrap();
        fs::copy(b.path().join(KEY_FILE), a.path().join(KEY_FILE)).unwrap();
        let err = Identity::load_or_create(a.path()).unwrap_err();
        assert!(matches!(err, IdentityError::Mismatch { .. }), "{err}");
    }
}

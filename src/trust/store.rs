//! The pinned peers: certificates this agent trusts on the peer API, by fingerprint, kept in
//! `trust.json` in the state directory and rewritten atomically on every change.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::write_atomic;
use super::fingerprint::Fingerprint;

pub const TRUST_FILE: &str = "trust.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The agent that ran the session we joined.
    Initiator,
    /// An agent that joined through our session.
    Joiner,
    /// A cluster member learned from another member, not through a session of our own.
    Member,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedPeer {
    pub fingerprint: Fingerprint,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("cannot read trust store {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("trust store {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write trust store {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    peers: Vec<PinnedPeer>,
}

#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    peers: Vec<PinnedPeer>,
}

impl TrustStore {
    /// Load `trust.json` from `state_dir`; a missing file is an empty store (nothing is
    /// written until the first pin).
    pub fn open(state_dir: &Path) -> Result<TrustStore, TrustStoreError> {
        let path = state_dir.join(TRUST_FILE);
        let peers = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<TrustFile>(&bytes)
                    .map_err(|source| TrustStoreError::Corrupt {
                        path: path.clone(),
                        source,
                    })?
                    .peers
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(TrustStoreError::Read { path, source }),
        };
        Ok(TrustStore { path, peers })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Pin a peer, replacing any entry with the same fingerprint. Written before returning,
    /// so a peer is never trusted in memory only.
    pub fn pin(
        &mut self,
        fingerprint: Fingerprint,
        name: &str,
        role: Role,
    ) -> Result<(), TrustStoreError> {
        let peer = PinnedPeer {
            fingerprint,
            name: name.to_string(),
            role,
        };
        let mut peers = self.peers.clone();
        match peers.iter_mut().find(|p| p.fingerprint == peer.fingerprint) {
            Some(p) => *p = peer,
            None => peers.push(peer),
        }
        self.save(peers)
    }

    /// Returns whether it was pinned.
    pub fn remove(&mut self, fp: &Fingerprint) -> Result<bool, TrustStoreError> {
        if !self.is_pinned(fp) {
            return Ok(false);
        }
        let peers = self
            .peers
            .iter()
            .filter(|p| p.fingerprint != *fp)
            .cloned()
            .collect();
        self.save(peers)?;
        Ok(true)
    }

    pub fn is_pinned(&self, fp: &Fingerprint) -> bool {
        self.get(fp).is_some()
    }

    pub fn get(&self, fp: &Fingerprint) -> Option<&PinnedPeer> {
        self.peers.iter().find(|p| p.fingerprint == *fp)
    }

    pub fn list(&self) -> &[PinnedPeer] {
        &self.peers
    }

    /// Memory changes only once the file is written, so a failed write leaves both agreeing.
    fn save(&mut self, peers: Vec<PinnedPeer>) -> Result<(), TrustStoreError> {
        let file = TrustFile { peers };
        let mut json = serde_json::to_vec_pretty(&file).expect("plain data serialises");
        json.push(b'\n');
        write_atomic(&self.path, &json, 0o600).map_err(|source| TrustStoreError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.peers = file.peers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::from_bytes([n; 32])
    }

    #[test]
    fn round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = TrustStore::open(dir.path()).unwrap();
        assert!(s.list().is_empty());
        assert!(!dir.path().join(TRUST_FILE).exists());
        s.pin(fp(1), "alpha", Role::Initiator).unwrap();
        s.pin(fp(2), "beta", Role::Joiner).unwrap();
        s.pin(fp(2), "beta2", Role::Member).unwrap();

        let again = TrustStore::open(dir.path()).unwrap();
        assert_eq!(again.list(), s.list());
        assert_eq!(again.list().len(), 2);
        assert_eq!(again.get(&fp(2)).unwrap().name, "beta2");
        let mode = fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(s.path()).unwrap();
        assert!(
            text.contains(&"01".repeat(32)) && text.contains("\"initiator\""),
            "{text}"
        );
    }

    #[test]
    fn remove() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = TrustStore::open(dir.path()).unwrap();
        s.pin(fp(1), "alpha", Role::Joiner).unwrap();
        assert!(s.is_pinned(&fp(1)));
        assert!(s.remove(&fp(1)).unwrap());
        assert!(!s.remove(&fp(1)).unwrap());
        assert!(!TrustStore::open(dir.path()).unwrap().is_pinned(&fp(1)));
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TRUST_FILE), "{not json").unwrap();
        let err = TrustStore::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("trust.json") && err.contains("corrupt"),
            "{err}"
        );
    }

    #[test]
    fn failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = TrustStore::open(&dir.path().join("missing-dir")).unwrap();
        let err = s.pin(fp(1), "a", Role::Joiner).unwrap_err();
        assert!(err.to_string().contains("missing-dir"), "{err}");
        assert!(s.list().is_empty());
    }
}

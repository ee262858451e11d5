//! Join tokens (pure, time and randomness passed in): what the initiator hands a selected
//! joiner over the pinned channel. Single use, expiring, and bound to the certificate they
//! were issued for.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use super::fingerprint::{base64url, Fingerprint};

/// 256 bits: not guessable within any number of requests an attacker could make.
const TOKEN_BYTES: usize = 32;

/// A token as it travels: 43 characters of unpadded base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debug output ends up in logs; a token in a log is a token anyone reading it can use.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}…)", &self.0[..self.0.len().min(4)])
    }
}

/// What a redeemed token proves: the initiator chose this certificate within the TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRecord {
    pub fingerprint: Fingerprint,
    pub issued: Instant,
    pub expires: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown join token")]
    Unknown,
    #[error("join token was already used")]
    AlreadyUsed,
    #[error("join token expired {} s ago", .0.as_secs())]
    Expired(Duration),
    #[error("join token was revoked")]
    Revoked,
    #[error(
        "join token was issued to certificate {}, presented by {}",
        issued_to.short(),
        presented.short()
    )]
    WrongHolder {
        issued_to: Fingerprint,
        presented: Fingerprint,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Unused,
    Used,
    Revoked,
}

#[derive(Debug, Clone)]
struct Entry {
    record: JoinRecord,
    state: Use,
}

/// Tokens are kept by their SHA-256 so that the table (in memory or a dump of it) holds
/// nothing that can be presented, and a lookup's timing depends on the hash, not the secret.
#[derive(Debug, Default)]
pub struct TokenStore {
    entries: HashMap<[u8; 32], Entry>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenStore {
    pub fn new() -> TokenStore {
        TokenStore::default()
    }

    pub fn issue<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        fingerprint: Fingerprint,
        ttl: Duration,
        rng: &mut R,
    ) -> Token {
        let mut raw = [0u8; TOKEN_BYTES];
        rng.fill_bytes(&mut raw);
        let token = Token(base64url(&raw));
        self.entries.insert(
            key(&token.0),
            Entry {
                record: JoinRecord {
                    fingerprint,
                    issued: now,
                    expires: now + ttl,
                },
                state: Use::Unused,
            },
        );
        token
    }

    /// Spend `token` for the peer whose certificate is `presented`. A wrong holder does not
    /// spend it: the rightful joiner can still use it.
    pub fn redeem(
        &mut self,
        now: Instant,
        token: &str,
        presented: &Fingerprint,
    ) -> Result<JoinRecord, TokenError> {
        let e = self
            .entries
            .get_mut(&key(token))
            .ok_or(TokenError::Unknown)?;
        if e.record.fingerprint != *presented {
            return Err(TokenError::WrongHolder {
                issued_to: e.record.fingerprint,
                presented: *presented,
            });
        }
        match e.state {
            Use::Used => return Err(TokenError::AlreadyUsed),
            Use::Revoked => return Err(TokenError::Revoked),
            Use::Unused => {}
        }
        if now >= e.record.expires {
            return Err(TokenError::Expired(now - e.record.expires));
        }
        e.state = Use::Used;
        Ok(e.record.clone())
    }

    /// Revoke every token not yet used (the session was aborted); returns how many.
    pub fn revoke_unused(&mut self) -> usize {
        let mut n = 0;
        for e in self.entries.values_mut() {
            if e.state == Use::Unused {
                e.state = Use::Revoked;
                n += 1;
            }
        }
        n
    }

    /// Forget tokens past their expiry; afterwards they read as `Unknown`. Returns how many.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| now < e.record.expires);
        before - self.entries.len()
    }

    /// Tokens issued and neither used, revoked nor expired at `now`.
    pub fn outstanding(&self, now: Instant) -> usize {
        self.entries
            .values()
            .filter(|e| e.state == Use::Unused && now < e.record.expires)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const TTL: Duration = Duration::from_secs(300);

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::from_bytes([n; 32])
    }

    fn setup() -> (Instant, TokenStore, StdRng) {
        (Instant::now(), TokenStore::new(), StdRng::seed_from_u64(1))
    }

    #[test]
    fn tokens_are_random_base64url_and_not_logged() {
        let (t, mut store, mut rng) = setup();
        let a = store.issue(t, fp(1), TTL, &mut rng);
        let b = store.issue(t, fp(1), TTL, &mut rng);
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 43);
        assert!(a
            .as_str()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(!format!("{a:?}").contains(a.as_str()));
        assert_eq!(store.outstanding(t), 2);
    }

    #[test]
    fn single_use() {
        let (t, mut store, mut rng) = setup();
        let tok = store.issue(t, fp(1), TTL, &mut rng);
        let rec = store.redeem(t, tok.as_str(), &fp(1)).unwrap();
        assert_eq!(rec.fingerprint, fp(1));
        assert_eq!(rec.expires, t + TTL);
        assert_eq!(
            store.redeem(t, tok.as_str(), &fp(1)),
            Err(TokenError::AlreadyUsed)
        );
        assert_eq!(store.outstanding(t), 0);
    }

    #[test]
    fn expiry() {
        let (t, mut store, mut rng) = setup();
        let tok = store.issue(t, fp(1), TTL, &mut rng);
        let late = t + TTL + Duration::from_secs(5);
        assert_eq!(
            store.redeem(late, tok.as_str(), &fp(1)),
            Err(TokenError::Expired(Duration::from_secs(5)))
        );
        // Valid up to the last instant before expiry.
        let tok2 = store.issue(t, fp(1), TTL, &mut rng);
        assert!(store
            .redeem(t + TTL - Duration::from_nanos(1), tok2.as_str(), &fp(1))
            .is_ok());
        assert_eq!(store.purge_expired(late), 2);
        assert_eq!(
            store.redeem(late, tok.as_str(), &fp(1)),
            Err(TokenError::Unknown)
        );
    }

    #[test]
    fn bound_to_its_holder() {
        let (t, mut store, mut rng) = setup();
        let tok = store.issue(t, fp(1), TTL, &mut rng);
        let err = store.redeem(t, tok.as_str(), &fp(2)).unwrap_err();
        assert_eq!(
            err,
            TokenError::WrongHolder {
                issued_to: fp(1),
                presented: fp(2)
            }
        );
        assert!(err.to_string().contains(&fp(2).short()));
        // The thief's attempt did not spend it.
        assert!(store.redeem(t, tok.as_str(), &fp(1)).is_ok());
    }

    #[test]
    fn revoke_unused() {
        let (t, mut store, mut rng) = setup();
        let used = store.issue(t, fp(1), TTL, &mut rng);
        let a = store.issue(t, fp(2), TTL, &mut rng);
        let _b = store.issue(t, fp(3), TTL, &mut rng);
        store.redeem(t, used.as_str(), &fp(1)).unwrap();
        assert_eq!(store.revoke_unused(), 2);
        assert_eq!(store.revoke_unused(), 0);
        assert_eq!(
            store.redeem(t, a.as_str(), &fp(2)),
            Err(TokenError::Revoked)
        );
    }

    #[test]
    fn garbage_is_unknown() {
        let (t, mut store, mut rng) = setup();
        let tok = store.issue(t, fp(1), TTL, &mut rng);
        let mut near = tok.as_str().to_string();
        near.pop();
        for g in [
            "",
            "not a token",
            &near,
            &"A".repeat(10_000),
            "\u{0}\u{ffff}",
        ] {
            assert_eq!(store.redeem(t, g, &fp(1)), Err(TokenError::Unknown));
        }
    }
}

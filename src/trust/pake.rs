//! The password-authenticated key exchange between a joiner and the initiator: SPAKE2 with both
//! certificate fingerprints as identities, HKDF over the shared key and the whole transcript,
//! key confirmation in both directions, and the verification code both screens show.
//!
//! Two round trips, the joiner committing first:
//!
//! 1. J → I: `commit = SHA-256(PROTOCOL, "commit", msg_j)`; I → J: `msg_i`.
//! 2. J → I: `msg_j`, `confirm_j`; I checks `msg_j` against the commitment and the tag, then
//!    answers `confirm_i`, which J checks.
//!
//! The commitment is what makes the verification code worth comparing. Without it (the joiner
//! sending `msg_j` in the clear first), a man in the middle who knows the passphrase could pick
//! `msg_i` after seeing `msg_j`: grind about 10^6 candidate `msg_i` offline until the joiner's
//! code equals the one it already fixed with the real initiator. Now `msg_i` is fixed before
//! `msg_j` is revealed, a joiner run answers exactly one `msg_i`, and the two codes the operators
//! compare are independent: equal with probability 10^-6 per attempt, and each attempt is a run
//! of `microcloud join` the operator starts.
//!
//! Guessing: a fake joiner gets one online guess per exchange (the initiator checks `confirm_j`
//! and counts failures); a fake initiator gets one online guess per joiner run (it sees one
//! `confirm_j`, made with the `msg_i` it sent); a passive capture gives no offline test.

use std::fmt;
use std::str::FromStr;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::fingerprint::Fingerprint;
use super::passphrase::normalise;

/// Domain separation for every hash, KDF and MAC in the exchange; bump it with any change to
/// the transcript layout so old and new agents fail loudly instead of disagreeing silently.
const PROTOCOL: &[u8] = b"microcloud trust v2";

/// Length of the joiner's commitment (a SHA-256 digest).
pub const COMMIT_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PakeError {
    #[error(
        "key confirmation failed: the passphrase is wrong, or the other side is not the \
         machine whose certificate we saw, e.g. a fake initiator (these cannot be told apart)"
    )]
    WrongPassphrase,
    #[error(
        "the joiner's key-exchange message does not match the commitment it sent first \
         (the exchange was tampered with)"
    )]
    CommitMismatch,
    #[error("this key exchange has already answered an initiator message; start a new one")]
    AlreadyUsed,
    #[error("malformed key-exchange message: {0}")]
    Malformed(String),
}

/// The six-digit code both operators compare. Equal on both sides exactly when both used the
/// same passphrase and saw the same two certificates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct VerificationCode(u32);

impl VerificationCode {
    pub fn value(&self) -> u32 {
        self.0
    }
}

impl fmt::Display for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

impl FromStr for VerificationCode {
    type Err = PakeError;

    /// Accepts `123 456` and `123456`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PakeError::Malformed(format!(
                "verification code {s:?} is not six digits"
            )));
        }
        digits
            .parse()
            .map(VerificationCode)
            .map_err(|e| PakeError::Malformed(e.to_string()))
    }
}

impl Serialize for VerificationCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VerificationCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Everything derived from the SPAKE2 key. Only the MAC tags ever leave this module; the keys
/// themselves are dropped with the struct.
struct Derived {
    transcript: Vec<u8>,
    k_confirm_i: [u8; 32],
    k_confirm_j: [u8; 32],
    code: VerificationCode,
}

fn push_lp(out: &mut Vec<u8>, part: &[u8]) {
    // Length prefixes make the concatenation unambiguous: no two different field splits give
    // the same bytes.
    let len = u32::try_from(part.len()).expect("transcript part under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
}

fn transcript(fp_i: &Fingerprint, fp_j: &Fingerprint, msg_i: &[u8], msg_j: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(4 * 5 + PROTOCOL.len() + 64 + msg_i.len() + msg_j.len());
    for part in [PROTOCOL, fp_i.as_bytes(), fp_j.as_bytes(), msg_i, msg_j] {
        push_lp(&mut t, part);
    }
    t
}

fn derive(key: &[u8], transcript: Vec<u8>) -> Derived {
    let hk = Hkdf::<Sha256>::new(Some(PROTOCOL), key);
    let expand = |label: &[u8], out: &mut [u8]| {
        hk.expand_multi_info(&[label, &transcript], out)
            .expect("HKDF output length is far below its limit");
    };
    let mut k_confirm_i = [0u8; 32];
    let mut k_confirm_j = [0u8; 32];
    let mut code = [0u8; 8];
    expand(b"confirm initiator", &mut k_confirm_i);
    expand(b"confirm joiner", &mut k_confirm_j);
    expand(b"verification code", &mut code);
    // 64 bits reduced mod 10^6: the bias is below 2^-44, invisible next to a 20-bit code.
    let code = VerificationCode((u64::from_be_bytes(code) % 1_000_000) as u32);
    Derived {
        transcript,
        k_confirm_i,
        k_confirm_j,
        code,
    }
}

fn mac(key: &[u8; 32], transcript: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(transcript);
    m
}

fn spake_ids(fp_i: &Fingerprint, fp_j: &Fingerprint) -> (Identity, Identity) {
    (
        Identity::new(fp_i.as_bytes()),
        Identity::new(fp_j.as_bytes()),
    )
}

fn malformed(what: &str, e: spake2::Error) -> PakeError {
    PakeError::Malformed(format!("{what}: {e}"))
}

/// The joiner's commitment to `msg_j`. The certificates need not be in it: they are in the
/// transcript every key and tag is derived from.
fn commitment(msg_j: &[u8]) -> [u8; COMMIT_LEN] {
    let mut t = Vec::with_capacity(4 * 3 + PROTOCOL.len() + 6 + msg_j.len());
    for part in [PROTOCOL, b"commit", msg_j] {
        push_lp(&mut t, part);
    }
    Sha256::digest(&t).into()
}

fn tag(key: &[u8; 32], transcript: &[u8]) -> Vec<u8> {
    mac(key, transcript).finalize().into_bytes().to_vec()
}

/// The joiner's half of an exchange, before it has seen the initiator's message.
pub struct JoinerPake {
    /// Taken by the first `respond`: one joiner run answers exactly one `msg_i`.
    spake: Option<Spake2<Ed25519Group>>,
    fp_i: Fingerprint,
    fp_j: Fingerprint,
    msg_j: Vec<u8>,
}

impl fmt::Debug for JoinerPake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinerPake")
            .field("fp_i", &self.fp_i)
            .field("fp_j", &self.fp_j)
            .field("used", &self.spake.is_none())
            .finish_non_exhaustive()
    }
}

impl JoinerPake {
    /// `fp_i` is the certificate the initiator presented in the TLS handshake, `fp_j` our own.
    /// The passphrase is normalised here, so callers pass what the operator typed. Returns the
    /// state and the commitment to send first; `msg_j` stays here until `respond`.
    ///
    /// SPAKE2's secret scalar comes from the OS RNG inside `spake2`: its RNG hook speaks
    /// `rand_core` 0.6, which this crate does not depend on.
    pub fn start(
        passphrase: &str,
        fp_i: &Fingerprint,
        fp_j: &Fingerprint,
    ) -> (JoinerPake, Vec<u8>) {
        let (id_i, id_j) = spake_ids(fp_i, fp_j);
        let pw = Password::new(normalise(passphrase).as_bytes());
        let (spake, msg_j) = Spake2::<Ed25519Group>::start_b(&pw, &id_i, &id_j);
        let commit = commitment(&msg_j).to_vec();
        let state = JoinerPake {
            spake: Some(spake),
            fp_i: *fp_i,
            fp_j: *fp_j,
            msg_j,
        };
        (state, commit)
    }

    /// The initiator's message arrived: finish SPAKE2 and return `msg_j` (revealed only now),
    /// our confirmation tag, and the state that checks the initiator's tag. Works once per
    /// run: a second call is `AlreadyUsed`, whatever the first one returned.
    pub fn respond(&mut self, msg_i: &[u8]) -> Result<(Vec<u8>, Vec<u8>, JoinerAwait), PakeError> {
        let spake = self.spake.take().ok_or(PakeError::AlreadyUsed)?;
        let key = spake
            .finish(msg_i)
            .map_err(|e| malformed("initiator message", e))?;
        let d = derive(&key, transcript(&self.fp_i, &self.fp_j, msg_i, &self.msg_j));
        let confirm_j = tag(&d.k_confirm_j, &d.transcript);
        Ok((self.msg_j.clone(), confirm_j, JoinerAwait(d)))
    }
}

/// The joiner after proving itself, waiting for the initiator's tag.
pub struct JoinerAwait(Derived);

impl fmt::Debug for JoinerAwait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinerAwait { .. }")
    }
}

impl JoinerAwait {
    /// Check the initiator's confirmation; on success return the code to show.
    pub fn finish(self, confirm_i: &[u8]) -> Result<VerificationCode, PakeError> {
        let d = self.0;
        mac(&d.k_confirm_i, &d.transcript)
            .verify_slice(confirm_i)
            .map_err(|_| PakeError::WrongPassphrase)?;
        Ok(d.code)
    }
}

/// The initiator's side: it has no state before the joiner's commitment arrives.
pub struct InitiatorPake;

impl InitiatorPake {
    /// `fp_i` is our own certificate, `fp_j` the client certificate the joiner presented,
    /// `commit` the joiner's first message. Returns the pending state and our SPAKE2 message,
    /// fixed before we learn `msg_j`. A commitment of the wrong length is `Malformed`.
    pub fn begin(
        passphrase: &str,
        fp_i: &Fingerprint,
        fp_j: &Fingerprint,
        commit: &[u8],
    ) -> Result<(InitiatorPending, Vec<u8>), PakeError> {
        let commit: [u8; COMMIT_LEN] = commit.try_into().map_err(|_| {
            PakeError::Malformed(format!(
                "commitment is {} bytes, expected {COMMIT_LEN}",
                commit.len()
            ))
        })?;
        let (id_i, id_j) = spake_ids(fp_i, fp_j);
        let pw = Password::new(normalise(passphrase).as_bytes());
        let (spake, msg_i) = Spake2::<Ed25519Group>::start_a(&pw, &id_i, &id_j);
        let pending = InitiatorPending {
            spake,
            fp_i: *fp_i,
            fp_j: *fp_j,
            msg_i: msg_i.clone(),
            commit,
        };
        Ok((pending, msg_i))
    }
}

/// The initiator waiting for the joiner's opened commitment and its confirmation.
pub struct InitiatorPending {
    spake: Spake2<Ed25519Group>,
    fp_i: Fingerprint,
    fp_j: Fingerprint,
    msg_i: Vec<u8>,
    commit: [u8; COMMIT_LEN],
}

impl fmt::Debug for InitiatorPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InitiatorPending")
            .field("fp_i", &self.fp_i)
            .field("fp_j", &self.fp_j)
            .finish_non_exhaustive()
    }
}

impl InitiatorPending {
    /// Check `msg_j` against the commitment (`CommitMismatch`), finish SPAKE2, check the
    /// joiner's tag (`WrongPassphrase`); on success return our tag and the code to show.
    pub fn finish(
        self,
        msg_j: &[u8],
        confirm_j: &[u8],
    ) -> Result<(Vec<u8>, VerificationCode), PakeError> {
        if commitment(msg_j) != self.commit {
            return Err(PakeError::CommitMismatch);
        }
        let key = self
            .spake
            .finish(msg_j)
            .map_err(|e| malformed("joiner message", e))?;
        let d = derive(&key, transcript(&self.fp_i, &self.fp_j, &self.msg_i, msg_j));
        mac(&d.k_confirm_j, &d.transcript)
            .verify_slice(confirm_j)
            .map_err(|_| PakeError::WrongPassphrase)?;
        Ok((tag(&d.k_confirm_i, &d.transcript), d.code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u8) -> Fingerprint {
        Fingerprint::from_bytes([n; 32])
    }

    #[test]
    fn code_display_and_parse() {
        let c = VerificationCode(7042);
        assert_eq!(c.to_string(), "007 042");
        assert_eq!("007 042".parse::<VerificationCode>().unwrap(), c);
        assert_eq!("007042".parse::<VerificationCode>().unwrap(), c);
        for bad in ["", "12345", "1234567", "12a 456", "+12 456"] {
            assert!(bad.parse::<VerificationCode>().is_err(), "{bad:?}");
        }
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"007 042\"");
    }

    #[test]
    fn transcript_is_unambiguous() {
        // Moving a byte from one field to the next must change the transcript.
        let a = transcript(&fp(1), &fp(2), b"ab", b"c");
        let b = transcript(&fp(1), &fp(2), b"a", b"bc");
        assert_ne!(a, b);
    }

    #[test]
    fn the_commitment_binds_the_message() {
        let (joiner, commit) = JoinerPake::start("pw", &fp(1), &fp(2));
        assert_eq!(commit.len(), COMMIT_LEN);
        assert_eq!(commit, commitment(&joiner.msg_j));
        let mut other = joiner.msg_j.clone();
        other[9] ^= 1;
        assert_ne!(commit, commitment(&other));
        // The commitment hides msg_j: it is not a prefix, suffix or copy of it.
        assert!(!joiner
            .msg_j
            .windows(8)
            .any(|w| commit.windows(8).any(|c| c == w)));
    }

    /// The initiator's first step with the passphrase `pass` between fp(1) and fp(2).
    fn begin_ok(pass: &str, commit: &[u8]) -> (InitiatorPending, Vec<u8>) {
        InitiatorPake::begin(pass, &fp(1), &fp(2), commit).unwrap()
    }

    #[test]
    fn hostile_messages_are_errors_not_panics() {
        let (i, j) = (fp(1), fp(2));
        // Commitments of the wrong length.
        for bad in [&[][..], &[0u8; 31], &[0u8; 33], &[0xff; 1000]] {
            assert!(matches!(
                InitiatorPake::begin("pw pw pw", &i, &j, bad),
                Err(PakeError::Malformed(_))
            ));
        }
        // msg_j that does not open the commitment, whatever its shape: a mismatch, never a panic.
        let (mut joiner, commit) = JoinerPake::start("pw pw pw", &i, &j);
        let mut valid_b = joiner.msg_j.clone();
        valid_b.truncate(20);
        let mut wrong_side = joiner.msg_j.clone();
        wrong_side[0] = b'A';
        for msg in [
            vec![],
            vec![0x42],
            vec![0u8; 33],
            vec![0xff; 1000],
            valid_b,
            wrong_side,
        ] {
            let (pending, _) = begin_ok("pw pw pw", &commit);
            assert_eq!(
                pending.finish(&msg, &[0; 32]).unwrap_err(),
                PakeError::CommitMismatch,
                "{msg:?}"
            );
        }
        // A hostile joiner can commit to hostile bytes: those open the commitment and are then
        // malformed (or decode to a useless point); none may panic.
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0x42], vec![0u8; 33], vec![0xff; 1000]];
        let mut wrong_side = JoinerPake::start("pw", &i, &j).0.msg_j;
        wrong_side[0] = b'A';
        cases.push(wrong_side);
        for msg in cases {
            let (pending, _) = begin_ok("pw pw pw", &commitment(&msg));
            assert!(
                matches!(pending.finish(&msg, &[0; 32]), Err(PakeError::Malformed(_))),
                "{msg:?}"
            );
        }
        for n in (0..=255u8).step_by(15) {
            let msg = [&[0x42u8][..], &[n; 32]].concat();
            let (pending, _) = begin_ok("pw pw pw", &commitment(&msg));
            assert!(pending.finish(&msg, &[0; 32]).is_err());
        }
        // The joiner facing a hostile initiator message.
        assert!(matches!(
            joiner.respond(&[0x41, 1, 2]),
            Err(PakeError::Malformed(_))
        ));
        // ... which used up the run.
        let (_, msg_i) = begin_ok("pw pw pw", &commit);
        assert_eq!(joiner.respond(&msg_i).unwrap_err(), PakeError::AlreadyUsed);
    }

    #[test]
    fn confirmation_tags_are_checked_whole() {
        let (i, j) = (fp(1), fp(2));
        for cut in [1usize, 31] {
            let (mut joiner, commit) = JoinerPake::start("pw", &i, &j);
            let (pending, msg_i) = InitiatorPake::begin("pw", &i, &j, &commit).unwrap();
            let (msg_j, mut confirm_j, _) = joiner.respond(&msg_i).unwrap();
            confirm_j.truncate(32 - cut);
            assert_eq!(
                pending.finish(&msg_j, &confirm_j).unwrap_err(),
                PakeError::WrongPassphrase
            );
        }
        let (mut joiner, commit) = JoinerPake::start("pw", &i, &j);
        let (pending, msg_i) = InitiatorPake::begin("pw", &i, &j, &commit).unwrap();
        let (msg_j, confirm_j, wait) = joiner.respond(&msg_i).unwrap();
        let (mut confirm_i, _) = pending.finish(&msg_j, &confirm_j).unwrap();
        confirm_i[0] ^= 1;
        assert_eq!(
            wait.finish(&confirm_i).unwrap_err(),
            PakeError::WrongPassphrase
        );
    }
}

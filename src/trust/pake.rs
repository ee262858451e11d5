//! The password-authenticated key exchange between a joiner and the initiator: SPAKE2 with both
//! certificate fingerprints as identities, HKDF over the shared key and the whole transcript,
//! key confirmation in both directions, and the verification code both screens show.
//!
//! The joiner speaks first (`msg_j`); the initiator answers with its SPAKE2 message and a MAC
//! that proves it knew the passphrase (`confirm_i`); the joiner checks it before proving its
//! own knowledge (`confirm_j`). So a fake initiator never receives anything it could test a
//! guess against offline, and a fake joiner gets exactly one guess per attempt.

use std::fmt;
use std::str::FromStr;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};

use super::fingerprint::Fingerprint;
use super::passphrase::normalise;

/// Domain separation for every hash, KDF and MAC in the exchange; bump it with any change to
/// the transcript layout so old and new agents fail loudly instead of disagreeing silently.
const PROTOCOL: &[u8] = b"microcloud trust v1";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PakeError {
    #[error(
        "key confirmation failed: the passphrase is wrong, or the other side is not the \
         machine whose certificate we saw (these cannot be told apart)"
    )]
    WrongPassphrase,
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

/// The joiner's half of an exchange in progress.
pub struct JoinerPake {
    spake: Spake2<Ed25519Group>,
    fp_i: Fingerprint,
    fp_j: Fingerprint,
    msg_j: Vec<u8>,
}

impl fmt::Debug for JoinerPake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinerPake")
            .field("fp_i", &self.fp_i)
            .field("fp_j", &self.fp_j)
            .finish_non_exhaustive()
    }
}

impl JoinerPake {
    /// `fp_i` is the certificate the initiator presented in the TLS handshake, `fp_j` our own.
    /// The passphrase is normalised here, so callers pass what the operator typed.
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
        let state = JoinerPake {
            spake,
            fp_i: *fp_i,
            fp_j: *fp_j,
            msg_j: msg_j.clone(),
        };
        (state, msg_j)
    }

    /// Check the initiator's confirmation; on success return ours and the code to show.
    pub fn finish(
        self,
        msg_i: &[u8],
        confirm_i: &[u8],
    ) -> Result<(Vec<u8>, VerificationCode), PakeError> {
        let key = self
            .spake
            .finish(msg_i)
            .map_err(|e| malformed("initiator message", e))?;
        let d = derive(&key, transcript(&self.fp_i, &self.fp_j, msg_i, &self.msg_j));
        mac(&d.k_confirm_i, &d.transcript)
            .verify_slice(confirm_i)
            .map_err(|_| PakeError::WrongPassphrase)?;
        let confirm_j = mac(&d.k_confirm_j, &d.transcript)
            .finalize()
            .into_bytes()
            .to_vec();
        Ok((confirm_j, d.code))
    }
}

/// The initiator's side: it answers in one step, so it has no state before `respond`.
pub struct InitiatorPake;

impl InitiatorPake {
    /// `fp_i` is our own certificate, `fp_j` the client certificate the joiner presented.
    /// Returns the pending state, our SPAKE2 message and our confirmation tag.
    pub fn respond(
        passphrase: &str,
        fp_i: &Fingerprint,
        fp_j: &Fingerprint,
        msg_j: &[u8],
    ) -> Result<(InitiatorPending, Vec<u8>, Vec<u8>), PakeError> {
        let (id_i, id_j) = spake_ids(fp_i, fp_j);
        let pw = Password::new(normalise(passphrase).as_bytes());
        let (spake, msg_i) = Spake2::<Ed25519Group>::start_a(&pw, &id_i, &id_j);
        let key = spake
            .finish(msg_j)
            .map_err(|e| malformed("joiner message", e))?;
        let d = derive(&key, transcript(fp_i, fp_j, &msg_i, msg_j));
        let confirm_i = mac(&d.k_confirm_i, &d.transcript)
            .finalize()
            .into_bytes()
            .to_vec();
        Ok((InitiatorPending(d), msg_i, confirm_i))
    }
}

/// The initiator waiting for the joiner's confirmation.
pub struct InitiatorPending(Derived);

impl fmt::Debug for InitiatorPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitiatorPending { .. }")
    }
}

impl InitiatorPending {
    pub fn verify(self, confirm_j: &[u8]) -> Result<VerificationCode, PakeError> {
        let d = self.0;
        mac(&d.k_confirm_j, &d.transcript)
            .verify_slice(confirm_j)
            .map_err(|_| PakeError::WrongPassphrase)?;
        Ok(d.code)
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
    fn hostile_messages_are_errors_not_panics() {
        let (i, j) = (fp(1), fp(2));
        let mut valid_b = JoinerPake::start("pw pw pw", &i, &j).1;
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0x42], vec![0u8; 33], vec![0xff; 1000]];
        // A valid message claiming to come from the wrong side.
        let mut wrong_side = JoinerPake::start("pw", &i, &j).1;
        wrong_side[0] = b'A';
        cases.push(wrong_side);
        valid_b.truncate(20);
        cases.push(valid_b);
        for msg in cases {
            let r = InitiatorPake::respond("pw pw pw", &i, &j, &msg);
            assert!(matches!(r, Err(PakeError::Malformed(_))), "{msg:?}");
        }
        // Right side byte and length but arbitrary bytes: some decode to points (a useless key),
        // some do not (an error); none may panic.
        for n in (0..=255u8).step_by(15) {
            let msg = [&[0x42u8][..], &[n; 32]].concat();
            let _ = InitiatorPake::respond("pw pw pw", &i, &j, &msg);
        }
        let (joiner, _) = JoinerPake::start("pw", &i, &j);
        assert!(matches!(
            joiner.finish(&[0x41, 1, 2], &[0; 32]),
            Err(PakeError::Malformed(_))
        ));
    }

    #[test]
    fn confirmation_tags_are_checked_whole() {
        let (i, j) = (fp(1), fp(2));
        for cut in [1usize, 31] {
            let (joiner, msg_j) = JoinerPake::start("pw", &i, &j);
            let (_, msg_i, mut confirm_i) = InitiatorPake::respond("pw", &i, &j, &msg_j).unwrap();
            confirm_i.truncate(32 - cut);
            assert_eq!(
                joiner.finish(&msg_i, &confirm_i).unwrap_err(),
                PakeError::WrongPassphrase
            );
        }
        let (joiner, msg_j) = JoinerPake::start("pw", &i, &j);
        let (pending, msg_i, confirm_i) = InitiatorPake::respond("pw", &i, &j, &msg_j).unwrap();
        let (mut confirm_j, _) = joiner.finish(&msg_i, &confirm_i).unwrap();
        confirm_j[0] ^= 1;
        assert_eq!(
            pending.verify(&confirm_j).unwrap_err(),
            PakeError::WrongPassphrase
        );
    }
}

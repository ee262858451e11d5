//! Trust between agents: identities, passphrase sessions, the PAKE exchange, join tokens and
//! the pinned-peer store.

pub mod fingerprint;
pub mod pake;
pub mod passphrase;
pub mod ratelimit;
pub mod session;

pub use fingerprint::{Fingerprint, FingerprintError};
pub use pake::{InitiatorPake, InitiatorPending, JoinerPake, PakeError, VerificationCode};
pub use passphrase::PassphraseError;
pub use ratelimit::RateLimiter;
pub use session::{
    JoinerState, JoinerStatus, JoinerView, Session, SessionError, SessionEvent,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT,
};

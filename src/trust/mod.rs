//! Trust between agents: identities, passphrase sessions, the PAKE exchange, join tokens and
//! the pinned-peer store.
//!
//! Layout: `identity` and `store` touch the state directory (through `files`); everything else
//! is pure, with time passed in. `pake` is the cryptography of one exchange, `session` the
//! initiator's bookkeeping around many of them (`ratelimit`, attempt limits, the joiner table),
//! `token` what the initiator hands selected joiners afterwards.

mod files;
pub mod fingerprint;
pub mod identity;
pub mod pake;
pub mod passphrase;
pub mod ratelimit;
pub mod session;
pub mod store;
pub mod token;

pub use fingerprint::{Fingerprint, FingerprintError};
pub use identity::{Identity, IdentityError};
pub use pake::{
    InitiatorPake, InitiatorPending, JoinerAwait, JoinerPake, PakeError, VerificationCode,
};
pub use passphrase::PassphraseError;
pub use ratelimit::RateLimiter;
pub use session::{
    JoinerState, JoinerStatus, JoinerView, Session, SessionError, SessionEvent,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT, MAX_PENDING, MAX_PENDING_PER_SOURCE, PENDING_TIMEOUT,
};
pub use store::{PinnedPeer, Role, TrustStore, TrustStoreError};
pub use token::{JoinRecord, Token, TokenError, TokenStore};

//! Trust between agents: identities, passphrase sessions, the PAKE exchange, join tokens and
//! the pinned-peer store.

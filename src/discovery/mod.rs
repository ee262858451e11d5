//! Discovery: the host's own mDNS/DNS-SD (RFC 6762/6763) on raw multicast sockets, scoped
//! through netlink to the link-local subnet.
//!
//! `scope` decides which interfaces and peers count (pure); `socket` is the I/O edge.
//!
//! The pure mDNS core touches no socket, clock or netlink: `codec` (packets), `txt` and
//! `records` (what we advertise), `responder` and `browser` (state machines). The driver owns one
//! `Responder` and one `Browser` per (interface, address family), feeds them parsed packets with
//! the facts only it knows (arrival interface, whether the source is on-link, whether the packet
//! is our own loopback copy) and the current `Instant`, sends what `poll` returns and sleeps
//! until `next_deadline`. Randomness comes from an injected `StdRng`, so tests run the machines
//! on a fake clock with a fixed seed.

pub mod browser;
pub mod codec;
pub mod engine;
pub mod io;
pub mod name;
pub mod peers;
pub mod records;
pub mod responder;
pub mod scope;
pub mod socket;
pub mod txt;

pub use browser::{Browser, BrowserConfig, BrowserEvent, ResolvedPeer};
pub use codec::{Message, ParseError, Question, RData, Record};
pub use io::{Dest, Incoming, Outgoing, MDNS_PORT};
pub use name::DnsName;
pub use records::HostIdentity;
pub use responder::{Responder, ResponderEvent, ResponderState};
pub use txt::{PeerState, PeerTxt};

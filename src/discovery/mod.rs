//! Discovery: the host's own mDNS/DNS-SD (RFC 6762/6763) on raw multicast sockets, scoped
//! through netlink to the link-local subnet.
//!
//! `scope` decides which interfaces and peers count (pure); `socket` is the I/O edge.

pub mod scope;
pub mod socket;

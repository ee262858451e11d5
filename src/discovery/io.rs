//! What the mDNS state machines take in and give out: parsed packets with the facts only the
//! socket layer knows, and packets to send with their destination.

use std::net::SocketAddr;

use super::codec::Message;

/// The mDNS port; responses from any other source port are not mDNS (RFC 6762 §6).
pub const MDNS_PORT: u16 = 5353;

/// A parsed packet that arrived on the state machine's interface.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub msg: Message,
    pub src: SocketAddr,
    /// Sent to 224.0.0.251 / ff02::fb rather than to one of our unicast addresses.
    pub dst_is_multicast: bool,
    /// The source lies in a subnet of the arrival interface (IPv6 link-local: always),
    /// as the driver computed from netlink (RFC 6762 §11).
    pub src_on_link: bool,
    /// Our own multicast looped back (source is one of our addresses); ignored so we never
    /// conflict with ourselves.
    pub from_self: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// The mDNS group of the machine's family, port 5353, on its interface.
    Multicast,
    Unicast(SocketAddr),
}

/// A packet to send now, already split to fit the machine's size budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub dest: Dest,
    pub msg: Message,
}

//! The agent's local API: request/response types shared by the server (in `microcloudd`) and
//! the client (in `microcloud`), over a unix socket only root can open.

pub mod client;
pub mod disks;
pub mod https;
pub mod local_trust;
pub mod lxd;
pub mod peer;
pub mod server;
pub mod tls;

use serde::{Deserialize, Serialize};

/// Where `microcloudd` listens and `microcloud` connects by default.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/microcloud/control.socket";

/// One address a peer was seen with, and the local interface it was seen on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerAddress {
    pub address: String,
    pub interface: String,
}

/// A discovered peer: untrusted information, as advertised over mDNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Service instance name (the host's name).
    pub name: String,
    pub host_id: Option<String>,
    pub version: Option<String>,
    pub fingerprint: Option<String>,
    /// `free`, `init` (initiator with an open session) or `member:<cluster>`.
    pub state: Option<String>,
    pub services: Vec<String>,
    /// The peer API port from its SRV record.
    pub port: u16,
    pub addresses: Vec<PeerAddress>,
    /// At least one address lies in a subnet configured on the interface it was seen on.
    pub in_scope: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeersResponse {
    pub peers: Vec<Peer>,
}

/// An API error body: what failed, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    /// A stable machine-readable category (`wrong_passphrase`, `no_session`, ...), when useful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

//! The preseed schema: MicroCloud's field names and types, every level strict about unknown
//! keys so a typo fails loudly instead of being ignored (user-pain §6).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preseed {
    #[serde(default)]
    pub initiator: Option<String>,
    #[serde(default)]
    pub initiator_address: Option<String>,
    #[serde(default)]
    pub lookup_subnet: Option<String>,
    /// Seconds; default 60.
    #[serde(default)]
    pub lookup_timeout: Option<u64>,
    #[serde(default)]
    pub session_passphrase: Option<String>,
    /// Seconds; default 3600.
    #[serde(default)]
    pub session_timeout: Option<u64>,
    #[serde(default)]
    pub systems: Vec<System>,
    #[serde(default)]
    pub ovn: Option<Ovn>,
    #[serde(default)]
    pub ceph: Option<Ceph>,
    #[serde(default)]
    pub storage: Option<StorageFilters>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub ovn_uplink_interface: Option<String>,
    #[serde(default)]
    pub ovn_underlay_ip: Option<String>,
    #[serde(default)]
    pub storage: Option<SystemStorage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemStorage {
    #[serde(default)]
    pub local: Option<DiskChoice>,
    #[serde(default)]
    pub ceph: Vec<DiskChoice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskChoice {
    pub path: String,
    #[serde(default)]
    pub wipe: bool,
    #[serde(default)]
    pub encrypt: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ovn {
    #[serde(default)]
    pub ipv4_gateway: Option<String>,
    #[serde(default)]
    pub ipv4_range: Option<String>,
    #[serde(default)]
    pub ipv6_gateway: Option<String>,
    #[serde(default)]
    pub dns_servers: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ceph {
    #[serde(default)]
    pub cephfs: bool,
    #[serde(default)]
    pub internal_network: Option<String>,
    #[serde(default)]
    pub public_network: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFilters {
    #[serde(default)]
    pub local: Vec<DiskFilter>,
    #[serde(default)]
    pub ceph: Vec<DiskFilter>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskFilter {
    pub find: String,
    #[serde(default)]
    pub find_min: Option<u64>,
    #[serde(default)]
    pub find_max: Option<u64>,
    #[serde(default)]
    pub wipe: bool,
    #[serde(default)]
    pub encrypt: bool,
}

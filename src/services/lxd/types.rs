//! The LXD objects we read and write, with only the fields we use. Keys and casing are LXD
//! 5.0's (checked against a running 5.0.2); newer LXD keeps them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /1.0`.
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    /// Server config. Values are strings in 5.0, `any` in newer LXD, so kept as JSON.
    #[serde(default, deserialize_with = "nullable")]
    pub config: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub api_extensions: Vec<String>,
    #[serde(default)]
    pub environment: Environment,
}

impl Server {
    /// A server config value as a string (`None` when unset or empty).
    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Names of the storage drivers this LXD can use (`environment.storage_supported_drivers`).
    pub fn storage_driver_names(&self) -> Vec<&str> {
        self.environment
            .storage_supported_drivers
            .iter()
            .map(|d| d.name.as_str())
            .collect()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Environment {
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub server_clustered: bool,
    #[serde(default)]
    pub server_version: String,
    /// Addresses LXD listens on over HTTPS.
    #[serde(default, deserialize_with = "nullable")]
    pub addresses: Vec<String>,
    /// PEM of the server's (or, when clustered, the cluster's) certificate.
    #[serde(default)]
    pub certificate: String,
    #[serde(default)]
    pub certificate_fingerprint: String,
    #[serde(default, deserialize_with = "nullable")]
    pub storage_supported_drivers: Vec<StorageDriverInfo>,
}

/// One entry of `storage_supported_drivers`. LXD 5.0 sends the Go field names (`Name`,
/// `Version`, `Remote`); the lower-case aliases cover a future rename.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct StorageDriverInfo {
    #[serde(rename = "Name", alias = "name")]
    pub name: String,
    #[serde(rename = "Version", alias = "version", default)]
    pub version: String,
    #[serde(rename = "Remote", alias = "remote", default)]
    pub remote: bool,
}

/// `GET /1.0/cluster`.
#[derive(Debug, Clone, Deserialize)]
pub struct Cluster {
    #[serde(default)]
    pub server_name: String,
    #[serde(default)]
    pub enabled: bool,
    /// Member-specific keys a joiner must provide (per-member `source` of existing pools…).
    #[serde(default, deserialize_with = "nullable")]
    pub member_config: Vec<MemberConfigKey>,
}

/// `ClusterMemberConfigKey`: one member-specific key, in `GET /1.0/cluster` and in a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberConfigKey {
    /// `storage-pool` or `network`.
    pub entity: String,
    pub name: String,
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

impl MemberConfigKey {
    /// A `storage-pool/<pool>/<key>=<value>` entry.
    pub fn storage_pool(pool: &str, key: &str, value: &str) -> Self {
        Self::new("storage-pool", pool, key, value)
    }

    /// A `network/<network>/<key>=<value>` entry.
    pub fn network(network: &str, key: &str, value: &str) -> Self {
        Self::new("network", network, key, value)
    }

    fn new(entity: &str, name: &str, key: &str, value: &str) -> Self {
        MemberConfigKey {
            entity: entity.into(),
            name: name.into(),
            key: key.into(),
            value: value.into(),
            description: String::new(),
        }
    }
}

/// `PUT /1.0/cluster` to join an existing cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterJoin {
    pub server_name: String,
    pub enabled: bool,
    /// This member's own `host:port` in the cluster.
    pub server_address: String,
    /// An existing member's `host:port`.
    pub cluster_address: String,
    /// PEM of the cluster certificate, checked against the token's fingerprint.
    pub cluster_certificate: String,
    /// The base64 token as issued, on LXD with `explicit_trust_token`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_token: String,
    /// Where older LXD (5.0) takes the same token: it decodes a token given as password.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_password: String,
    pub member_config: Vec<MemberConfigKey>,
}

/// `GET /1.0/cluster/members?recursion=1`, one entry.
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub server_name: String,
    #[serde(default)]
    pub url: String,
    /// `Online`, `Offline`, `Evacuated`, … as LXD spells it.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, deserialize_with = "nullable")]
    pub roles: Vec<String>,
    #[serde(default)]
    pub database: bool,
}

impl Member {
    pub fn is_online(&self) -> bool {
        self.status.eq_ignore_ascii_case("online")
    }
}

/// `GET /1.0/storage-pools[/<name>]`. With `?target=` the `config` is that member's.
#[derive(Debug, Clone, Deserialize)]
pub struct StoragePool {
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
    /// `Pending`, `Created`, `Errored`, `Unknown`.
    #[serde(default)]
    pub status: String,
    /// Members the pool is defined on (pending or created).
    #[serde(default, deserialize_with = "nullable")]
    pub locations: Vec<String>,
}

/// `POST /1.0/storage-pools[?target=]`.
#[derive(Debug, Clone, Serialize)]
pub struct StoragePoolsPost {
    pub name: String,
    pub driver: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub config: BTreeMap<String, String>,
}

/// `GET /1.0/networks[/<name>]`: also lists unmanaged host interfaces (`managed: false`).
#[derive(Debug, Clone, Deserialize)]
pub struct Network {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub managed: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub locations: Vec<String>,
}

/// `POST /1.0/networks[?target=]`.
#[derive(Debug, Clone, Serialize)]
pub struct NetworksPost {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub config: BTreeMap<String, String>,
}

/// A device of a profile: `type` and its keys, all strings.
pub type Device = BTreeMap<String, String>;

/// `GET /1.0/profiles/<name>`. Round-tripped through `PUT`, so every field we do not model is
/// kept in `extra` and sent back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub config: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub devices: BTreeMap<String, Device>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Go sends `null` for an empty slice or map; read it as empty.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Status of a storage pool or network that exists everywhere it is defined.
pub const STATUS_CREATED: &str = "Created";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_as_lxd_5_0_sends_it() {
        let s: Server = serde_json::from_value(json!({
            "config": {"core.https_address": "127.0.0.1:18443", "cluster.https_address": ""},
            "api_extensions": ["clustering", "clustering_join_token"],
            "api_status": "stable",
            "environment": {"server_name": "vm", "server_clustered": false,
                "server_version": "5.0.2", "firewall": "nftables",
                "storage_supported_drivers": [
                    {"Name": "dir", "Version": "1", "Remote": false},
                    {"Name": "lvm", "Version": "2.03.16(2)", "Remote": false},
                    {"name": "btrfs", "version": "6.2", "remote": false}]}
        }))
        .unwrap();
        assert_eq!(s.config_str("core.https_address"), Some("127.0.0.1:18443"));
        assert_eq!(s.config_str("cluster.https_address"), None);
        assert_eq!(s.storage_driver_names(), ["dir", "lvm", "btrfs"]);
        assert_eq!(
            crate::services::lxd::choose_local_driver(s.storage_driver_names()),
            Some(crate::services::lxd::LocalDriver::Btrfs)
        );
    }

    #[test]
    fn profile_round_trips_unknown_fields() {
        let v = json!({"name": "default", "description": "Default LXD profile",
            "config": {}, "devices": {"root": {"type": "disk", "path": "/", "pool": "local"}},
            "used_by": [], "project": "default"});
        let p: Profile = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.extra.get("project"), Some(&json!("default")));
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }

    #[test]
    fn go_nulls_are_empty() {
        // An unmanaged interface as LXD 5.0.2 lists it.
        let n: Network = serde_json::from_value(json!({"config": {}, "description": "",
            "name": "lo", "type": "loopback", "used_by": [], "managed": false, "status": "",
            "locations": null}))
        .unwrap();
        assert!(n.locations.is_empty());
        let p: StoragePool = serde_json::from_value(json!({"name": "local", "driver": "dir",
            "config": null, "used_by": null, "status": "Pending", "locations": null}))
        .unwrap();
        assert!(p.config.is_empty() && p.locations.is_empty());
    }

    #[test]
    fn member_status() {
        let m: Member = serde_json::from_value(json!({"server_name": "m1",
            "url": "https://127.0.0.1:18443", "status": "Online",
            "roles": ["database-leader", "database"], "database": true}))
        .unwrap();
        assert!(m.is_online());
        assert_eq!(m.roles.len(), 2);
    }
}

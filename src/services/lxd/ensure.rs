//! The idempotent layer the bootstrap executor calls: each helper reads the current state,
//! does nothing when it is already as asked, and otherwise makes the one change needed,
//! returning [`Outcome`]. A state it may not silently change (clustered under another name, a
//! pool with another driver, a profile device the operator set differently) is an
//! [`LxdError::Conflict`] naming the object, what is there and what was asked.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::services::Outcome;

use super::cert::{check_certificate, fetch_cluster_certificate};
use super::token::{IssuedToken, JoinToken};
use super::types::{
    ClusterJoin, Device, MemberConfigKey, NetworksPost, StoragePoolsPost, STATUS_CREATED,
};
use super::{LxdClient, LxdError};

/// Extension that allows `source.wipe` on a pending pool.
pub const EXT_SOURCE_WIPE: &str = "storage_pool_source_wipe";

/// Everything a joiner sends in `PUT /1.0/cluster`, checked before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    pub server_name: String,
    /// This member's `host:port` in the cluster (becomes its `cluster.https_address`).
    pub server_address: String,
    pub token: JoinToken,
    /// The member the certificate came from, which LXD contacts to join.
    pub cluster_address: String,
    /// PEM of the cluster certificate; its fingerprint must be the token's.
    pub cluster_certificate: String,
    pub member_config: Vec<MemberConfigKey>,
}

impl JoinSpec {
    /// Decode `encoded_token` and fetch the cluster certificate from the token's addresses
    /// (from this host's network, which is what a joiner's daemon does).
    pub async fn fetch(
        server_name: &str,
        server_address: &str,
        encoded_token: &str,
        member_config: Vec<MemberConfigKey>,
        timeout: Duration,
    ) -> Result<JoinSpec, LxdError> {
        let token = JoinToken::decode(encoded_token)?;
        let (cluster_address, cluster_certificate) =
            fetch_cluster_certificate(&token, timeout).await?;
        Ok(JoinSpec {
            server_name: server_name.into(),
            server_address: server_address.into(),
            token,
            cluster_address,
            cluster_certificate,
            member_config,
        })
    }
}

/// One member's part of a pool or network: its name and its member-specific keys.
pub type MemberKeys<'a> = (&'a str, BTreeMap<String, String>);

impl LxdClient {
    /// Set these server config keys where they differ.
    pub async fn ensure_server_config(
        &self,
        keys: &BTreeMap<String, String>,
    ) -> Result<Outcome, LxdError> {
        let server = self.server().await?;
        let diff: BTreeMap<String, String> = keys
            .iter()
            .filter(|(k, v)| server.config_str(k).unwrap_or("") != v.as_str())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if diff.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        self.patch_server_config(&diff).await?;
        Ok(Outcome::Changed)
    }

    /// Make this LXD the first member of a cluster named by `server_name`, reachable at
    /// `address` (`host:port`): sets `cluster.https_address`, and `core.https_address` when
    /// LXD does not listen yet (an existing listener such as `[::]:8443` is kept), then enables
    /// clustering. Already clustered under this name: nothing to do; under another: conflict.
    pub async fn ensure_clustered(
        &self,
        server_name: &str,
        address: &str,
    ) -> Result<Outcome, LxdError> {
        let cluster = self.cluster().await?;
        if cluster.enabled {
            return self.same_member(&cluster.server_name, server_name);
        }
        let server = self.server().await?;
        let mut keys = BTreeMap::new();
        if server.config_str("cluster.https_address") != Some(address) {
            keys.insert("cluster.https_address".to_string(), address.to_string());
        }
        if server.config_str("core.https_address").is_none() {
            keys.insert("core.https_address".to_string(), address.to_string());
        }
        if !keys.is_empty() {
            self.patch_server_config(&keys).await?;
        }
        self.enable_clustering(server_name).await?;
        Ok(Outcome::Changed)
    }

    fn same_member(&self, current: &str, wanted: &str) -> Result<Outcome, LxdError> {
        if current == wanted {
            Ok(Outcome::Unchanged)
        } else {
            Err(LxdError::Conflict(format!(
                "LXD at {} is already a cluster member named {current:?}, not {wanted:?}",
                self.socket().display()
            )))
        }
    }

    /// Join the cluster described by `join`, unless this LXD is already a member under that
    /// name. The certificate is checked against the token first, and the token must be for
    /// this name (LXD would refuse later, with a vaguer message).
    pub async fn ensure_joined(&self, join: &JoinSpec) -> Result<Outcome, LxdError> {
        let cluster = self.cluster().await?;
        if cluster.enabled {
            return self.same_member(&cluster.server_name, &join.server_name);
        }
        if join.token.server_name != join.server_name {
            return Err(LxdError::Token(format!(
                "the token is for {:?}, this member joins as {:?}",
                join.token.server_name, join.server_name
            )));
        }
        check_certificate(&join.token, &join.cluster_certificate)?;
        self.join_cluster(&ClusterJoin {
            server_name: join.server_name.clone(),
            enabled: true,
            server_address: join.server_address.clone(),
            cluster_address: join.cluster_address.clone(),
            cluster_certificate: join.cluster_certificate.clone(),
            cluster_token: join.token.encode(),
            member_config: join.member_config.clone(),
        })
        .await?;
        Ok(Outcome::Changed)
    }

    /// A fresh join token for `server_name`, after revoking any it still has pending (a re-run
    /// must not leave old secrets valid); `None` if it is a member already.
    pub async fn fresh_join_token(
        &self,
        server_name: &str,
    ) -> Result<Option<IssuedToken>, LxdError> {
        if self
            .members()
            .await?
            .iter()
            .any(|m| m.server_name == server_name)
        {
            return Ok(None);
        }
        self.revoke_join_tokens_for(server_name).await?;
        self.issue_join_token(server_name).await.map(Some)
    }

    /// Revoke every pending token issued for `server_name`; how many there were.
    pub async fn revoke_join_tokens_for(&self, server_name: &str) -> Result<usize, LxdError> {
        let mut n = 0;
        for t in self.pending_join_tokens().await? {
            if t.token.server_name == server_name {
                self.revoke_join_token(&t.operation_id).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Define pool `name` as pending on `member` with its `source` (and `source.wipe` when
    /// `wipe`, which needs the `storage_pool_source_wipe` extension). Done already when the
    /// pool is created, or pending there with the same source.
    pub async fn ensure_pool_pending_on(
        &self,
        member: &str,
        name: &str,
        driver: &str,
        source: &str,
        wipe: bool,
    ) -> Result<Outcome, LxdError> {
        let mut config = BTreeMap::from([("source".to_string(), source.to_string())]);
        if wipe {
            self.require_extension(EXT_SOURCE_WIPE, &format!("wiping {source} for pool {name}"))
                .await?;
            config.insert("source.wipe".into(), "true".into());
        }
        if let Some(pool) = self.storage_pool(name, None).await? {
            if pool.driver != driver {
                return Err(LxdError::Conflict(format!(
                    "storage pool {name:?} exists with driver {:?}, not {driver:?}",
                    pool.driver
                )));
            }
            if pool.locations.iter().any(|l| l == member) {
                if pool.status == STATUS_CREATED {
                    return Ok(Outcome::Unchanged);
                }
                let mine = self.storage_pool(name, Some(member)).await?;
                let have = mine.as_ref().and_then(|p| p.config.get("source"));
                if have.map(String::as_str) == Some(source) {
                    return Ok(Outcome::Unchanged);
                }
                return Err(LxdError::Conflict(format!(
                    "storage pool {name:?} is already pending on {member} with source {:?}, not {source:?}",
                    have.map(String::as_str).unwrap_or("")
                )));
            }
        }
        let post = StoragePoolsPost {
            name: name.into(),
            driver: driver.into(),
            description: String::new(),
            config,
        };
        self.create_storage_pool(&post, Some(member)).await?;
        Ok(Outcome::Changed)
    }

    /// Create pool `name` cluster-wide (after it is pending on every member), or on a
    /// standalone LXD. Done when its status is `Created`; an `Errored` attempt is retried.
    pub async fn ensure_pool_created(
        &self,
        name: &str,
        driver: &str,
        config: &BTreeMap<String, String>,
        description: &str,
    ) -> Result<Outcome, LxdError> {
        if let Some(pool) = self.storage_pool(name, None).await? {
            if pool.driver != driver {
                return Err(LxdError::Conflict(format!(
                    "storage pool {name:?} exists with driver {:?}, not {driver:?}",
                    pool.driver
                )));
            }
            if pool.status == STATUS_CREATED {
                return Ok(Outcome::Unchanged);
            }
        }
        let post = StoragePoolsPost {
            name: name.into(),
            driver: driver.into(),
            description: description.into(),
            config: config.clone(),
        };
        self.create_storage_pool(&post, None).await?;
        Ok(Outcome::Changed)
    }

    /// A local pool on every member: pending with each member's `source`, then created.
    pub async fn ensure_local_pool(
        &self,
        name: &str,
        driver: &str,
        sources: &[(&str, &str)],
        description: &str,
    ) -> Result<Outcome, LxdError> {
        let mut outcome = Outcome::Unchanged;
        for (member, source) in sources {
            outcome = outcome.and(
                self.ensure_pool_pending_on(member, name, driver, source, false)
                    .await?,
            );
        }
        let created = self
            .ensure_pool_created(name, driver, &BTreeMap::new(), description)
            .await?;
        Ok(outcome.and(created))
    }

    /// Define network `name` of type `kind` as pending on `member` with its member-specific
    /// keys (none for a bridge; `parent` for a physical uplink).
    pub async fn ensure_network_pending_on(
        &self,
        member: &str,
        name: &str,
        kind: &str,
        member_config: &BTreeMap<String, String>,
    ) -> Result<Outcome, LxdError> {
        if let Some(net) = self.network(name, None).await? {
            self.check_network(&net, name, kind)?;
            if net.locations.iter().any(|l| l == member) {
                return Ok(Outcome::Unchanged);
            }
        }
        let post = NetworksPost {
            name: name.into(),
            kind: kind.into(),
            description: String::new(),
            config: member_config.clone(),
        };
        self.create_network(&post, Some(member)).await?;
        Ok(Outcome::Changed)
    }

    /// Create network `name` cluster-wide with `config`. Done when it is `Created`.
    pub async fn ensure_network_created(
        &self,
        name: &str,
        kind: &str,
        config: &BTreeMap<String, String>,
        description: &str,
    ) -> Result<Outcome, LxdError> {
        if let Some(net) = self.network(name, None).await? {
            self.check_network(&net, name, kind)?;
            if net.status == STATUS_CREATED {
                return Ok(Outcome::Unchanged);
            }
        }
        let post = NetworksPost {
            name: name.into(),
            kind: kind.into(),
            description: description.into(),
            config: config.clone(),
        };
        self.create_network(&post, None).await?;
        Ok(Outcome::Changed)
    }

    /// A network on every member: pending with each member's keys, then created with `config`.
    pub async fn ensure_network(
        &self,
        name: &str,
        kind: &str,
        members: &[MemberKeys<'_>],
        config: &BTreeMap<String, String>,
        description: &str,
    ) -> Result<Outcome, LxdError> {
        let mut outcome = Outcome::Unchanged;
        for (member, keys) in members {
            outcome = outcome.and(
                self.ensure_network_pending_on(member, name, kind, keys)
                    .await?,
            );
        }
        let created = self
            .ensure_network_created(name, kind, config, description)
            .await?;
        Ok(outcome.and(created))
    }

    fn check_network(
        &self,
        net: &super::types::Network,
        name: &str,
        kind: &str,
    ) -> Result<(), LxdError> {
        if !net.managed {
            return Err(LxdError::Conflict(format!(
                "network {name:?} is a host interface ({}), not an LXD-managed network",
                net.kind
            )));
        }
        if net.kind != kind {
            return Err(LxdError::Conflict(format!(
                "network {name:?} exists with type {:?}, not {kind:?}",
                net.kind
            )));
        }
        Ok(())
    }

    /// The `default` profile with root on `root_pool` and eth0 on `network` (§4.5). Other
    /// devices and config are kept; a `root` or `eth0` the operator set differently is a
    /// conflict rather than silently replaced.
    pub async fn ensure_default_profile(
        &self,
        root_pool: &str,
        network: &str,
    ) -> Result<Outcome, LxdError> {
        let devices = BTreeMap::from([
            ("root".to_string(), root_device(root_pool)),
            ("eth0".to_string(), nic_device(network)),
        ]);
        self.ensure_profile_devices("default", &devices, false)
            .await
    }

    /// Make profile `name` carry `devices`. A device is satisfied when it has every wanted key
    /// with the wanted value (extra keys such as a root `size` are kept). A present device that
    /// differs is replaced only with `replace`.
    pub async fn ensure_profile_devices(
        &self,
        name: &str,
        devices: &BTreeMap<String, Device>,
        replace: bool,
    ) -> Result<Outcome, LxdError> {
        let mut profile = self
            .profile(name)
            .await?
            .ok_or_else(|| LxdError::Conflict(format!("profile {name:?} does not exist in LXD")))?;
        let mut changed = false;
        for (dev_name, want) in devices {
            match profile.devices.get(dev_name) {
                Some(have) if satisfies(have, want) => {}
                Some(have) if !replace => {
                    return Err(LxdError::Conflict(format!(
                        "profile {name:?} already has device {dev_name:?} = {}, not {}",
                        show(have),
                        show(want)
                    )))
                }
                _ => {
                    profile.devices.insert(dev_name.clone(), want.clone());
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(Outcome::Unchanged);
        }
        self.put_profile(&profile).await?;
        Ok(Outcome::Changed)
    }
}

/// `{type: disk, path: /, pool}`.
pub fn root_device(pool: &str) -> Device {
    Device::from([
        ("type".into(), "disk".into()),
        ("path".into(), "/".into()),
        ("pool".into(), pool.into()),
    ])
}

/// `{type: nic, name: eth0, network}`.
pub fn nic_device(network: &str) -> Device {
    Device::from([
        ("type".into(), "nic".into()),
        ("name".into(), "eth0".into()),
        ("network".into(), network.into()),
    ])
}

/// Whether `have` carries every key of `want` with the same value.
pub fn satisfies(have: &Device, want: &Device) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

fn show(d: &Device) -> String {
    let parts: Vec<String> = d.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_satisfaction() {
        let want = root_device("local");
        let mut have = want.clone();
        assert!(satisfies(&have, &want));
        have.insert("size".into(), "10GiB".into());
        assert!(satisfies(&have, &want), "extra keys are fine");
        have.insert("pool".into(), "remote".into());
        assert!(!satisfies(&have, &want));
        assert!(!satisfies(&Device::new(), &nic_device("lxdbr0")));
        assert_eq!(show(&nic_device("br")), "{name=eth0, network=br, type=nic}");
    }

    #[test]
    fn outcomes_combine() {
        assert_eq!(
            Outcome::Unchanged.and(Outcome::Unchanged),
            Outcome::Unchanged
        );
        assert_eq!(Outcome::Unchanged.and(Outcome::Changed), Outcome::Changed);
        assert!(Outcome::Changed.and(Outcome::Unchanged).changed());
    }
}

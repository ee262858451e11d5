//! Idempotent creation of the cluster-wide LXD objects: the `local` storage pool and the
//! network (each pending per member, then created), and the `default` profile's devices.
//! Same rules as `ensure`: look first, change only what differs, report [`Outcome`], and
//! refuse with [`LxdError::Conflict`] what may not be changed silently.

use std::collections::BTreeMap;

use serde_json::json;

use crate::services::Outcome;

use super::ensure::EXT_SOURCE_WIPE;
use super::types::{Device, Network, NetworksPost, StoragePoolsPost, STATUS_CREATED};
use super::{LxdClient, LxdError};

/// One member's part of a pool or network: its name and its member-specific keys.
pub type MemberKeys<'a> = (&'a str, BTreeMap<String, String>);

impl LxdClient {
    /// Define pool `name` as pending on `member` with its `source` (and `source.wipe` when
    /// `wipe`, which needs the `storage_pool_source_wipe` extension). Done already when the
    /// pool is created, or pending there with the same source. The description goes here too:
    /// LXD 5.0 keeps the pending definition's and ignores the final create's.
    pub async fn ensure_pool_pending_on(
        &self,
        member: &str,
        name: &str,
        driver: &str,
        description: &str,
        source: &str,
        wipe: bool,
    ) -> Result<Outcome, LxdError> {
        // An empty source lets LXD choose (a dir pool in its own directory).
        let mut config = BTreeMap::new();
        if !source.is_empty() {
            config.insert("source".to_string(), source.to_string());
        }
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
                if source.is_empty() || have.map(String::as_str) == Some(source) {
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
            description: description.into(),
            config,
        };
        self.create_storage_pool(&post, Some(member)).await?;
        Ok(Outcome::Changed)
    }

    /// Create pool `name` cluster-wide (after it is pending on every member), or on a
    /// standalone LXD. Done when its status is `Created` with this description; an `Errored`
    /// attempt is retried. LXD 5.0 drops the description of a clustered create, so it is
    /// set afterwards when it differs.
    pub async fn ensure_pool_created(
        &self,
        name: &str,
        driver: &str,
        config: &BTreeMap<String, String>,
        description: &str,
    ) -> Result<Outcome, LxdError> {
        let mut outcome = Outcome::Unchanged;
        let existing = self.storage_pool(name, None).await?;
        if let Some(pool) = &existing {
            if pool.driver != driver {
                return Err(LxdError::Conflict(format!(
                    "storage pool {name:?} exists with driver {:?}, not {driver:?}",
                    pool.driver
                )));
            }
        }
        let pool = match existing {
            Some(pool) if pool.status == STATUS_CREATED => pool,
            _ => {
                let post = StoragePoolsPost {
                    name: name.into(),
                    driver: driver.into(),
                    description: description.into(),
                    config: config.clone(),
                };
                self.create_storage_pool(&post, None).await?;
                outcome = Outcome::Changed;
                self.storage_pool(name, None).await?.ok_or_else(|| {
                    LxdError::Conflict(format!("storage pool {name:?} vanished after creation"))
                })?
            }
        };
        if pool.description != description {
            self.patch_storage_pool(name, &json!({ "description": description }))
                .await?;
            outcome = Outcome::Changed;
        }
        Ok(outcome)
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
                self.ensure_pool_pending_on(member, name, driver, description, source, false)
                    .await?,
            );
        }
        let created = self
            .ensure_pool_created(name, driver, &BTreeMap::new(), description)
            .await?;
        Ok(outcome.and(created))
    }

    /// Define network `name` of type `kind` as pending on `member` with its member-specific
    /// keys (none for a bridge; `parent` for a physical uplink). The description goes here
    /// too, as for pools.
    pub async fn ensure_network_pending_on(
        &self,
        member: &str,
        name: &str,
        kind: &str,
        description: &str,
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
            description: description.into(),
            config: member_config.clone(),
        };
        self.create_network(&post, Some(member)).await?;
        Ok(Outcome::Changed)
    }

    /// Create network `name` cluster-wide with `config`. Done when it is `Created` with this
    /// description (set afterwards when LXD dropped it, as for pools).
    pub async fn ensure_network_created(
        &self,
        name: &str,
        kind: &str,
        config: &BTreeMap<String, String>,
        description: &str,
    ) -> Result<Outcome, LxdError> {
        let mut outcome = Outcome::Unchanged;
        let existing = self.network(name, None).await?;
        if let Some(net) = &existing {
            self.check_network(net, name, kind)?;
        }
        let net = match existing {
            Some(net) if net.status == STATUS_CREATED => net,
            _ => {
                let post = NetworksPost {
                    name: name.into(),
                    kind: kind.into(),
                    description: description.into(),
                    config: config.clone(),
                };
                self.create_network(&post, None).await?;
                outcome = Outcome::Changed;
                self.network(name, None).await?.ok_or_else(|| {
                    LxdError::Conflict(format!("network {name:?} vanished after creation"))
                })?
            }
        };
        if net.description != description {
            self.patch_network(name, &json!({ "description": description }))
                .await?;
            outcome = Outcome::Changed;
        }
        Ok(outcome)
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
                self.ensure_network_pending_on(member, name, kind, description, keys)
                    .await?,
            );
        }
        let created = self
            .ensure_network_created(name, kind, config, description)
            .await?;
        Ok(outcome.and(created))
    }

    fn check_network(&self, net: &Network, name: &str, kind: &str) -> Result<(), LxdError> {
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

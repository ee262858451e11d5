//! The bootstrap sequence (pure): a [`Plan`] becomes the ordered list of steps the executor
//! carries out — clustering on the initiator, one join per joiner, the `local` pool pending on
//! each member then created, the network likewise, then the `default` profile. Each step names
//! the host it concerns, so progress and failures say where they happened. Joins are not run in
//! parallel: LXD 5.0 hangs on concurrent joins now and then (2 in 6 tries with two at once), and
//! gains nothing when it does not (1.02 s against 1.0 s in sequence).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::services::lxd::LocalDriver;

/// LXD's cluster (and HTTPS API) port.
pub const LXD_CLUSTER_PORT: u16 = 8443;

/// One step of the bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Set the initiator's cluster address and enable clustering under its name.
    EnableClustering { member: String, address: String },
    /// Issue a token for `member` and have its daemon join its LXD with it.
    Join { member: String, address: String },
    /// Define the local pool on `member` with its disk.
    PoolPending {
        member: String,
        pool: String,
        driver: String,
        source: String,
        wipe: bool,
    },
    /// Create the local pool cluster-wide.
    PoolCreate { pool: String, driver: String },
    /// Define the network on `member`.
    NetworkPending {
        member: String,
        network: String,
        kind: String,
    },
    /// Create the network cluster-wide.
    NetworkCreate { network: String, kind: String },
    /// Root on the pool (if any) and eth0 on the network in the `default` profile.
    Profile {
        root_pool: Option<String>,
        network: String,
    },
}

impl Step {
    /// The host a step happens on (cluster-wide steps run through the initiator).
    pub fn host<'a>(&'a self, plan: &'a Plan) -> &'a str {
        match self {
            Step::EnableClustering { member, .. }
            | Step::Join { member, .. }
            | Step::PoolPending { member, .. }
            | Step::NetworkPending { member, .. } => member,
            _ => &plan.initiator,
        }
    }

    /// A short name for progress lines and errors.
    pub fn what(&self) -> String {
        match self {
            Step::EnableClustering { address, .. } => {
                format!("enabling LXD clustering on {address}")
            }
            Step::Join { address, .. } => format!("joining the LXD cluster as {address}"),
            Step::PoolPending {
                pool,
                driver,
                source,
                ..
            } if source.is_empty() => format!("defining storage pool {pool} ({driver})"),
            Step::PoolPending {
                pool,
                driver,
                source,
                wipe,
                ..
            } => format!(
                "defining storage pool {pool} ({driver} on {source}{})",
                if *wipe { ", wiping it" } else { "" }
            ),
            Step::PoolCreate { pool, .. } => format!("creating storage pool {pool}"),
            Step::NetworkPending { network, kind, .. } => {
                format!("defining network {network} ({kind})")
            }
            Step::NetworkCreate { network, .. } => format!("creating network {network}"),
            Step::Profile { .. } => "configuring the default profile".into(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what())
    }
}

/// `IP:8443`, bracketed for IPv6.
pub fn cluster_address(ip: &str) -> Result<String, String> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, LXD_CLUSTER_PORT).to_string())
}

/// The steps that carry out `plan`, in order.
pub fn steps(plan: &Plan) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    let mut addresses = BTreeMap::new();
    for m in &plan.members {
        let a = cluster_address(&m.address).map_err(|e| format!("{}: {e}", m.name))?;
        addresses.insert(m.name.as_str(), a);
    }
    let Some(first) = plan.members.first() else {
        return Err("the plan has no members".into());
    };
    if first.name != plan.initiator {
        return Err(format!(
            "the plan's first member is {}, not the initiator {}",
            first.name, plan.initiator
        ));
    }
    out.push(Step::EnableClustering {
        member: first.name.clone(),
        address: addresses[first.name.as_str()].clone(),
    });
    for m in &plan.members[1..] {
        out.push(Step::Join {
            member: m.name.clone(),
            address: addresses[m.name.as_str()].clone(),
        });
    }
    let pool = plan.profile_root_pool.clone();
    if let (Some(driver), Some(pool)) = (&plan.local_pool_driver, &pool) {
        let takes_disk = LocalDriver::from_name(driver).is_none_or(LocalDriver::takes_disk);
        for m in &plan.members {
            let (source, wipe) = match &m.local_disk {
                Some(d) if takes_disk => (d.path.clone(), d.wipe),
                // dir: the pool is a directory of the member's LXD.
                _ if !takes_disk => (String::new(), false),
                _ => {
                    return Err(format!(
                        "{}: the plan has a {driver} pool but no disk for this member",
                        m.name
                    ))
                }
            };
            out.push(Step::PoolPending {
                member: m.name.clone(),
                pool: pool.clone(),
                driver: driver.clone(),
                source,
                wipe,
            });
        }
        out.push(Step::PoolCreate {
            pool: pool.clone(),
            driver: driver.clone(),
        });
    }
    for m in &plan.members {
        out.push(Step::NetworkPending {
            member: m.name.clone(),
            network: plan.network.clone(),
            kind: plan.network_type.clone(),
        });
    }
    out.push(Step::NetworkCreate {
        network: plan.network.clone(),
        kind: plan.network_type.clone(),
    });
    out.push(Step::Profile {
        root_pool: plan.local_pool_driver.as_ref().and(pool),
        network: plan.network.clone(),
    });
    Ok(out)
}

/// The member-specific keys a joiner must bring for objects that exist already (a re-run that
/// adds a member after the pool was created): `source` of the local pool from the plan.
pub fn join_member_config(
    plan: &Plan,
    member: &str,
    existing: &[crate::services::lxd::MemberConfigKey],
) -> Vec<crate::services::lxd::MemberConfigKey> {
    let disk = plan
        .members
        .iter()
        .find(|m| m.name == member)
        .and_then(|m| m.local_disk.as_ref());
    existing
        .iter()
        .filter_map(|k| {
            let ours = k.entity == "storage-pool"
                && Some(&k.name) == plan.profile_root_pool.as_ref()
                && k.key == "source";
            let disk = disk.filter(|_| ours)?;
            let mut k = k.clone();
            k.value = disk.path.clone();
            Some(k)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::plan::{ChosenDisk, MemberPlan};

    fn plan(disks: bool) -> Plan {
        let member = |n: &str, a: &str, d: &str| MemberPlan {
            name: n.into(),
            address: a.into(),
            local_disk: disks.then(|| ChosenDisk {
                path: format!("/dev/disk/by-id/{d}"),
                name: d.into(),
                size: Some(1 << 30),
                wipe: d == "vdc",
                destroys: vec![],
            }),
        };
        Plan {
            initiator: "m1".into(),
            members: vec![
                member("m1", "10.0.0.1", "vdb"),
                member("m2", "fd00::2", "vdc"),
            ],
            local_pool_driver: disks.then(|| "btrfs".into()),
            network: "lxdbr0".into(),
            network_type: "bridge".into(),
            profile_root_pool: disks.then(|| "local".into()),
            warnings: vec![],
        }
    }

    #[test]
    fn order_is_cluster_joins_pool_network_profile() {
        let p = plan(true);
        let s = steps(&p).unwrap();
        let hosts: Vec<&str> = s.iter().map(|x| x.host(&p)).collect();
        assert_eq!(
            hosts,
            ["m1", "m2", "m1", "m2", "m1", "m1", "m2", "m1", "m1"]
        );
        assert_eq!(
            s[0],
            Step::EnableClustering {
                member: "m1".into(),
                address: "10.0.0.1:8443".into()
            }
        );
        assert_eq!(
            s[1],
            Step::Join {
                member: "m2".into(),
                address: "[fd00::2]:8443".into()
            }
        );
        match &s[3] {
            Step::PoolPending { source, wipe, .. } => {
                assert_eq!(source, "/dev/disk/by-id/vdc");
                assert!(*wipe);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s[4], Step::PoolCreate { .. }));
        assert!(matches!(s[7], Step::NetworkCreate { .. }));
        assert_eq!(
            s[8],
            Step::Profile {
                root_pool: Some("local".into()),
                network: "lxdbr0".into()
            }
        );
        assert!(s[3].what().contains("wiping"), "{}", s[3]);
    }

    #[test]
    fn without_disks_there_is_no_pool_and_no_root() {
        let p = plan(false);
        let s = steps(&p).unwrap();
        assert!(!s
            .iter()
            .any(|x| matches!(x, Step::PoolPending { .. } | Step::PoolCreate { .. })));
        assert_eq!(
            s.last().unwrap(),
            &Step::Profile {
                root_pool: None,
                network: "lxdbr0".into()
            }
        );
    }

    #[test]
    fn a_dir_pool_takes_no_disk() {
        let mut p = plan(false);
        p.local_pool_driver = Some("dir".into());
        p.profile_root_pool = Some("local".into());
        let s = steps(&p).unwrap();
        let pending: Vec<&Step> = s
            .iter()
            .filter(|x| matches!(x, Step::PoolPending { .. }))
            .collect();
        assert_eq!(pending.len(), 2);
        for x in pending {
            match x {
                Step::PoolPending { source, wipe, .. } => assert!(source.is_empty() && !wipe),
                _ => unreachable!(),
            }
            assert_eq!(x.what(), "defining storage pool local (dir)");
        }
    }

    #[test]
    fn bad_plans_are_refused_with_the_member() {
        let mut p = plan(true);
        p.members[1].address = "nope".into();
        assert!(steps(&p).unwrap_err().starts_with("m2:"));
        let mut p = plan(true);
        p.members[1].local_disk = None;
        assert!(steps(&p)
            .unwrap_err()
            .contains("m2: the plan has a btrfs pool"));
        let mut p = plan(true);
        p.initiator = "m2".into();
        assert!(steps(&p).unwrap_err().contains("not the initiator"));
    }

    #[test]
    fn a_late_joiner_brings_its_pool_source() {
        let p = plan(true);
        let existing = vec![
            crate::services::lxd::MemberConfigKey {
                entity: "storage-pool".into(),
                name: "local".into(),
                key: "source".into(),
                value: String::new(),
                description: String::new(),
            },
            crate::services::lxd::MemberConfigKey {
                entity: "storage-pool".into(),
                name: "other".into(),
                key: "source".into(),
                value: String::new(),
                description: String::new(),
            },
        ];
        let c = join_member_config(&p, "m2", &existing);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].value, "/dev/disk/by-id/vdc");
    }
}

//! The bootstrap plan (pure): from every selected host's inventory and the operator's answers
//! (or a preseed), what the cluster will be — each member's address and local disk (eligible
//! disks only; a disk carrying data only with `wipe` consent for that disk), the pool driver,
//! the network and the profile. `microcloud init --dry-run` prints it; the executor follows it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::filter;
use crate::inventory::model::Disk;
use crate::inventory::rules::disk::{disk_reasons, wipe_would_clear};
use crate::inventory::{DiskPolicy, Inventory};
use crate::preseed::schema::{DiskChoice, DiskFilter};
use crate::services::lxd::{choose_common_driver, LocalDriver};

pub const LOCAL_POOL: &str = "local";
/// Without OVN the network is a managed bridge per member, named as LXD names its own (MicroCloud
/// falls back to a fan bridge, which needs the Ubuntu fan module). Not `default`: an interface
/// of that name would clash with the kernel's `net.*.conf.default` sysctls.
pub const NETWORK: &str = "lxdbr0";
pub const NETWORK_TYPE: &str = "bridge";

/// What the planner knows about one selected host.
#[derive(Debug, Clone)]
pub struct HostInput {
    pub name: String,
    pub address: IpAddr,
    pub inventory: Inventory,
    /// Storage drivers this host's LXD supports; empty when unknown.
    pub drivers: Vec<String>,
    /// The host's disk allow-list (its own config).
    pub policy: DiskPolicy,
    /// The disk the cluster's `local` pool already uses on this member (a re-run): it stays
    /// the member's disk whatever its signatures now say, and is never wiped.
    pub pool_source: Option<String>,
}

/// How the local disks are chosen.
#[derive(Debug, Clone, Default)]
pub struct LocalChoice {
    /// Per host name: an explicit disk (`systems[].storage.local`).
    pub explicit: BTreeMap<String, DiskChoice>,
    /// For hosts without an explicit disk, tried in order (`storage.local`).
    pub filters: Vec<DiskFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenDisk {
    /// The stable path LXD will be given.
    pub path: String,
    pub name: String,
    pub size: Option<u64>,
    /// The operator consented to wiping it; `destroys` says what is on it now.
    pub wipe: bool,
    pub destroys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPlan {
    pub name: String,
    pub address: String,
    pub local_disk: Option<ChosenDisk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub initiator: String,
    pub members: Vec<MemberPlan>,
    /// `None`: no local pool (no host has a disk for it).
    pub local_pool_driver: Option<String>,
    pub network: String,
    /// `bridge` until OVN is built.
    pub network_type: String,
    /// The default profile: root disk on this pool (if any), eth0 on `network`.
    pub profile_root_pool: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{host}: {message}")]
    Host { host: String, message: String },
    #[error("{0}")]
    Plan(String),
}

fn host_err(host: &str, message: impl Into<String>) -> PlanError {
    PlanError::Host {
        host: host.to_string(),
        message: message.into(),
    }
}

/// Whether `d` may be used, with or without consent to wipe it.
fn usable(d: &Disk, policy: &DiskPolicy, wipe: bool) -> Result<ChosenDisk, Vec<String>> {
    let reasons = disk_reasons(d, policy);
    if reasons.is_empty() || (wipe && wipe_would_clear(d, policy)) {
        return Ok(ChosenDisk {
            path: d.stable_path.clone(),
            name: d.name.clone(),
            size: d.size,
            wipe: wipe && !reasons.is_empty(),
            destroys: reasons,
        });
    }
    Err(reasons)
}

fn choose_explicit(h: &HostInput, c: &DiskChoice) -> Result<ChosenDisk, PlanError> {
    let d = h
        .inventory
        .disks
        .iter()
        .find(|d| d.answers_to(&c.path))
        .ok_or_else(|| host_err(&h.name, format!("disk {} not found on this host", c.path)))?;
    usable(d, &h.policy, c.wipe).map_err(|reasons| {
        let hint = if !c.wipe && wipe_would_clear(d, &h.policy) {
            " (set wipe: true for this disk to erase it)"
        } else {
            ""
        };
        host_err(
            &h.name,
            format!(
                "disk {} cannot be used: {}{hint}",
                c.path,
                reasons.join("; ")
            ),
        )
    })
}

/// The disk the pool already has on `h`: named as the inventory names it when found.
fn existing_pool_disk(h: &HostInput, src: &str) -> ChosenDisk {
    let d = h.inventory.disks.iter().find(|d| d.answers_to(src));
    ChosenDisk {
        path: src.to_string(),
        name: d.map_or_else(|| src.to_string(), |d| d.name.clone()),
        size: d.and_then(|d| d.size),
        wipe: false,
        destroys: vec![],
    }
}

/// Pick a local disk per host. Returns per host the choice, or None.
fn choose_local(
    hosts: &[HostInput],
    local: &LocalChoice,
) -> Result<Vec<Option<ChosenDisk>>, PlanError> {
    let parsed: Vec<filter::Expr> = local
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            filter::parse(&f.find)
                .map_err(|e| PlanError::Plan(format!("storage.local[{i}].find: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let mut taken_per_filter = vec![0u64; parsed.len()];
    let mut out = Vec::new();
    for h in hosts {
        if let Some(src) = &h.pool_source {
            out.push(Some(existing_pool_disk(h, src)));
            continue;
        }
        if let Some(c) = local.explicit.get(&h.name) {
            out.push(Some(choose_explicit(h, c)?));
            continue;
        }
        let mut chosen = None;
        'filters: for (i, (f, e)) in local.filters.iter().zip(&parsed).enumerate() {
            for d in &h.inventory.disks {
                if filter::matches(e, d) {
                    if let Ok(c) = usable(d, &h.policy, f.wipe) {
                        taken_per_filter[i] += 1;
                        chosen = Some(c);
                        break 'filters;
                    }
                }
            }
        }
        out.push(chosen);
    }
    // Members whose disk the existing pool fixed count as matched (a re-run plans as the first).
    let fixed = hosts.iter().filter(|h| h.pool_source.is_some()).count() as u64;
    for (i, f) in local.filters.iter().enumerate() {
        let n = taken_per_filter[i] + fixed;
        let min = f.find_min.unwrap_or(1);
        if n < min {
            return Err(PlanError::Plan(format!(
                "storage.local[{i}] ({:?}) matched a usable disk on {n} host(s), find_min is {min}",
                f.find
            )));
        }
        if let Some(max) = f.find_max {
            if n > max {
                return Err(PlanError::Plan(format!(
                    "storage.local[{i}] ({:?}) matched on {n} host(s), find_max is {max}",
                    f.find
                )));
            }
        }
    }
    Ok(out)
}

/// The best driver every member supports (hosts that report nothing do not constrain; with
/// none known, the most preferred).
pub fn common_driver(hosts: &[HostInput]) -> Option<String> {
    let known: Vec<&[String]> = hosts
        .iter()
        .map(|h| h.drivers.as_slice())
        .filter(|d| !d.is_empty())
        .collect();
    if known.is_empty() {
        return Some(LocalDriver::PREFERENCE[0].as_str().to_string());
    }
    choose_common_driver(&known).map(|d| d.as_str().to_string())
}

/// Build the plan. `hosts[0]` is the initiator.
pub fn plan(hosts: &[HostInput], local: &LocalChoice) -> Result<Plan, PlanError> {
    let Some(initiator) = hosts.first() else {
        return Err(PlanError::Plan("no hosts to plan for".into()));
    };
    let mut names = std::collections::BTreeSet::new();
    for h in hosts {
        if !names.insert(&h.name) {
            return Err(host_err(&h.name, "listed twice"));
        }
    }
    for name in local.explicit.keys() {
        if !names.contains(name) {
            return Err(host_err(
                name,
                "has a local disk in the preseed but is not selected",
            ));
        }
    }
    let disks = choose_local(hosts, local)?;
    let with_disk = disks.iter().filter(|d| d.is_some()).count();
    let mut warnings = Vec::new();
    let want_local = !local.explicit.is_empty()
        || !local.filters.is_empty()
        || hosts.iter().any(|h| h.pool_source.is_some());
    if want_local && with_disk != hosts.len() {
        let missing: Vec<&str> = hosts
            .iter()
            .zip(&disks)
            .filter(|(_, d)| d.is_none())
            .map(|(h, _)| h.name.as_str())
            .collect();
        return Err(PlanError::Plan(format!(
            "no usable local disk on {}: every member needs one for the local pool",
            missing.join(", ")
        )));
    }
    let driver = if with_disk == hosts.len() && with_disk > 0 {
        match common_driver(hosts) {
            Some(d) if d != "dir" => Some(d),
            Some(d) => {
                warnings.push(
                    "no block-device storage driver (zfs, btrfs, lvm) on every member: the local \
                     pool uses dir (a directory of each member's LXD); the chosen disks stay unused"
                        .into(),
                );
                Some(d)
            }
            None => {
                warnings
                    .push("no storage driver every member's LXD supports: no local pool".into());
                None
            }
        }
    } else {
        if !want_local {
            warnings.push("no local disks chosen: no local pool".into());
        }
        None
    };
    // A dir pool lives in LXD's own directory: no disk is used, so none is wiped.
    let uses_disks = driver
        .as_deref()
        .and_then(LocalDriver::from_name)
        .is_some_and(LocalDriver::takes_disk);
    for (h, d) in hosts.iter().zip(&disks).filter(|_| uses_disks) {
        if let Some(d) = d.as_ref().filter(|d| d.wipe) {
            warnings.push(format!(
                "{}: {} will be wiped ({})",
                h.name,
                d.path,
                d.destroys.join("; ")
            ));
        }
    }
    let members = hosts
        .iter()
        .zip(disks)
        .map(|(h, d)| MemberPlan {
            name: h.name.clone(),
            address: h.address.to_string(),
            local_disk: if uses_disks { d } else { None },
        })
        .collect();
    Ok(Plan {
        initiator: initiator.name.clone(),
        members,
        profile_root_pool: driver.as_ref().map(|_| LOCAL_POOL.to_string()),
        local_pool_driver: driver,
        network: NETWORK.to_string(),
        network_type: NETWORK_TYPE.to_string(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::model::Signature;

    fn disk(name: &str) -> Disk {
        Disk {
            stable_path: format!("/dev/disk/by-id/virtio-{name}"),
            links: vec![format!("/dev/disk/by-id/virtio-{name}")],
            bus: Some("virtio".into()),
            eligible: true,
            ..Disk::example(name)
        }
    }

    fn with_fs(mut d: Disk) -> Disk {
        d.signatures.push(Signature::example("ext4", "filesystem"));
        d
    }

    fn host(name: &str, i: u8, disks: Vec<Disk>) -> HostInput {
        HostInput {
            name: name.into(),
            address: IpAddr::from([10, 0, 0, i]),
            inventory: Inventory {
                disks,
                ..Default::default()
            },
            drivers: vec!["btrfs".into(), "dir".into(), "lvm".into()],
            policy: DiskPolicy::default(),
            pool_source: None,
        }
    }

    fn filt(find: &str, wipe: bool) -> DiskFilter {
        DiskFilter {
            find: find.into(),
            find_min: None,
            find_max: None,
            wipe,
            encrypt: false,
        }
    }

    #[test]
    fn filters_choose_one_eligible_disk_per_host_and_the_best_common_driver() {
        let hosts = vec![
            host("m1", 1, vec![disk("vdb"), disk("vdc")]),
            host("m2", 2, vec![with_fs(disk("vdb")), disk("vdc")]),
        ];
        let p = plan(
            &hosts,
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![filt("size > 5GiB", false)],
            },
        )
        .unwrap();
        assert_eq!(p.local_pool_driver.as_deref(), Some("btrfs"));
        let picks: Vec<&str> = p
            .members
            .iter()
            .map(|m| m.local_disk.as_ref().unwrap().name.as_str())
            .collect();
        assert_eq!(
            picks,
            ["vdb", "vdc"],
            "m2's vdb carries ext4 and needs wipe consent"
        );
        assert_eq!(p.profile_root_pool.as_deref(), Some("local"));
        assert_eq!(
            p.members[0].local_disk.as_ref().unwrap().path,
            "/dev/disk/by-id/virtio-vdb"
        );
    }

    #[test]
    fn a_disk_with_data_is_used_only_with_wipe_for_that_disk() {
        let hosts = vec![host("m1", 1, vec![with_fs(disk("vdb"))])];
        let mut explicit = BTreeMap::new();
        explicit.insert(
            "m1".to_string(),
            DiskChoice {
                path: "/dev/vdb".into(),
                wipe: false,
                encrypt: false,
            },
        );
        let e = plan(
            &hosts,
            &LocalChoice {
                explicit: explicit.clone(),
                filters: vec![],
            },
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("m1: disk /dev/vdb cannot be used")
                && msg.contains("ext4")
                && msg.contains("wipe: true"),
            "{msg}"
        );
        explicit.get_mut("m1").unwrap().wipe = true;
        let p = plan(
            &hosts,
            &LocalChoice {
                explicit,
                filters: vec![],
            },
        )
        .unwrap();
        let d = p.members[0].local_disk.as_ref().unwrap();
        assert!(d.wipe && d.destroys.iter().any(|r| r.contains("ext4")));
        assert!(p.warnings.iter().any(|w| w.contains("will be wiped")));
        // A filter without wipe never picks it; with wipe it does.
        let e = plan(
            &hosts,
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![filt("size > 1GiB", false)],
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("find_min"), "{e}");
        assert!(plan(
            &hosts,
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![filt("size > 1GiB", true)]
            }
        )
        .is_ok());
    }

    #[test]
    fn mounted_disks_are_never_chosen_even_with_wipe() {
        let mut d = with_fs(disk("vdb"));
        d.mounts.push("/srv".into());
        let hosts = vec![host("m1", 1, vec![d])];
        let mut explicit = BTreeMap::new();
        explicit.insert(
            "m1".to_string(),
            DiskChoice {
                path: "vdb".into(),
                wipe: true,
                encrypt: false,
            },
        );
        let e = plan(
            &hosts,
            &LocalChoice {
                explicit,
                filters: vec![],
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("mounted at /srv"), "{e}");
    }

    #[test]
    fn every_member_needs_a_disk_and_limits_hold() {
        let hosts = vec![host("m1", 1, vec![disk("vdb")]), host("m2", 2, vec![])];
        let e = plan(
            &hosts,
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![filt("size > 1GiB", false)],
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("no usable local disk on m2"), "{e}");
        let hosts = vec![
            host("m1", 1, vec![disk("vdb")]),
            host("m2", 2, vec![disk("vdb")]),
        ];
        let mut f = filt("size > 1GiB", false);
        f.find_max = Some(1);
        let e = plan(
            &hosts,
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![f],
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("find_max is 1"), "{e}");
        let e = plan(
            &hosts,
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![filt("colour == x", false)],
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("storage.local[0].find"), "{e}");
    }

    #[test]
    fn a_rerun_keeps_the_disks_the_pool_already_uses_without_wiping() {
        // The pool's btrfs now sits on each member's disk: ineligible for a fresh choice.
        let mut used = disk("vdb");
        used.signatures
            .push(Signature::example("btrfs", "filesystem"));
        let mut hosts = vec![
            host("m1", 1, vec![used.clone()]),
            host("m2", 2, vec![used.clone()]),
        ];
        let choice = LocalChoice {
            explicit: Default::default(),
            filters: vec![filt("size > 1GiB", false)],
        };
        assert!(plan(&hosts, &choice).is_err());
        for h in &mut hosts {
            h.pool_source = Some("/dev/vdb".into());
        }
        let p = plan(&hosts, &choice).unwrap();
        for m in &p.members {
            let d = m.local_disk.as_ref().unwrap();
            assert_eq!(
                (d.path.as_str(), d.name.as_str(), d.wipe),
                ("/dev/vdb", "vdb", false)
            );
        }
        assert_eq!(p.local_pool_driver.as_deref(), Some("btrfs"));
    }

    #[test]
    fn no_disks_means_no_local_pool_and_dir_only_hosts_get_a_warning() {
        let hosts = vec![host("m1", 1, vec![disk("vdb")])];
        let p = plan(&hosts, &LocalChoice::default()).unwrap();
        assert_eq!(p.local_pool_driver, None);
        assert!(p.members[0].local_disk.is_none());
        let mut h = host("m1", 1, vec![disk("vdb")]);
        h.drivers = vec!["dir".into()];
        let p = plan(
            &[h],
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![filt("size > 1GiB", false)],
            },
        )
        .unwrap();
        assert_eq!(p.local_pool_driver.as_deref(), Some("dir"));
        assert_eq!(p.profile_root_pool.as_deref(), Some("local"));
        assert!(p.members[0].local_disk.is_none(), "a dir pool uses no disk");
        assert!(p.warnings[0].contains("uses dir"), "{:?}", p.warnings);
        let mut h = host("m1", 1, vec![disk("vdb")]);
        h.drivers = vec!["ceph".into()];
        let p = plan(
            &[h],
            &LocalChoice {
                explicit: Default::default(),
                filters: vec![filt("size > 1GiB", false)],
            },
        )
        .unwrap();
        assert_eq!(p.local_pool_driver, None);
        assert!(
            p.warnings[0].contains("no storage driver"),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn driver_preference() {
        let mut a = host("a", 1, vec![]);
        let mut b = host("b", 2, vec![]);
        a.drivers = vec!["zfs".into(), "btrfs".into()];
        b.drivers = vec!["btrfs".into(), "zfs".into(), "lvm".into()];
        assert_eq!(
            common_driver(&[a.clone(), b.clone()]).as_deref(),
            Some("zfs")
        );
        b.drivers = vec!["lvm".into(), "btrfs".into()];
        assert_eq!(common_driver(&[a, b]).as_deref(), Some("btrfs"));
    }
}

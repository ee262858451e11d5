//! NIC probe: an rtnetlink snapshot for links, addresses and routes, enriched with sysfs
//! (driver, PCI address, speed, SR-IOV) and udev (ID_PATH, hwdb vendor/model).

use std::path::Path;

use super::sysfs::{attr, attr_u64, link_name, resolve};
use super::udev::UdevDevice;
use super::SysRoot;
use crate::inventory::model::{
    AddressFact, BondInfo, BridgeInfo, Nic, NicKind, SriovInfo, Verdict, VlanInfo,
};
use crate::net::link::LinkFacts;
use crate::net::snapshot::Snapshot;

/// What sysfs says about a netdev.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NicSysfs {
    /// `/sys/class/net/X/device` exists: backed by a real (or virtual-hardware) device.
    pub has_device: bool,
    pub driver: Option<String>,
    pub pci_address: Option<String>,
    pub speed_mbps: Option<u32>,
    pub sriov: Option<SriovInfo>,
}

/// Read the sysfs facts of netdev `name`.
pub fn read_sysfs(root: &SysRoot, name: &str) -> NicSysfs {
    let dir = root.sys.join("class/net").join(name);
    let device = dir.join("device");
    let has_device = device.exists();
    let speed_mbps = attr(&dir.join("speed"))
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|s| *s > 0 && *s < i64::from(u32::MAX))
        .map(|s| s as u32);
    let sriov = attr_u64(&device.join("sriov_totalvfs")).map(|total| SriovInfo {
        total_vfs: total as u32,
        num_vfs: attr_u64(&device.join("sriov_numvfs")).unwrap_or(0) as u32,
    });
    NicSysfs {
        has_device,
        driver: has_device
            .then(|| link_name(&device.join("driver")))
            .flatten(),
        pci_address: has_device.then(|| pci_address(&device)).flatten(),
        speed_mbps,
        sriov,
    }
}

/// The PCI address behind a netdev's `device` link. virtio NICs hang off a `virtioN` device
/// whose parent is the PCI function, so step past it (LXD's algorithm).
fn pci_address(device: &Path) -> Option<String> {
    let mut dev = resolve(device)?;
    if link_name(&dev.join("subsystem")).as_deref() == Some("virtio") {
        dev = dev.parent()?.to_path_buf();
    }
    (link_name(&dev.join("subsystem")).as_deref() == Some("pci"))
        .then(|| dev.file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten()
}

pub fn kind_of(link: &LinkFacts, sys: &NicSysfs) -> NicKind {
    if link.loopback {
        return NicKind::Loopback;
    }
    match link.info_kind.as_deref() {
        Some("vlan") => NicKind::Vlan,
        Some("bond") => NicKind::Bond,
        Some("bridge") => NicKind::Bridge,
        Some("veth") => NicKind::Veth,
        Some(_) => NicKind::Other,
        None if sys.has_device => NicKind::Physical,
        None => NicKind::Other,
    }
}

/// Build one NIC from its link facts, the rest of the snapshot (for names of related links),
/// sysfs and udev. Pure: the I/O happened before.
pub fn assemble(
    link: &LinkFacts,
    snap: &Snapshot,
    sys: NicSysfs,
    udev: Option<&UdevDevice>,
) -> Nic {
    let kind = kind_of(link, &sys);
    let address_details: Vec<AddressFact> = snap
        .addresses_of(link.index)
        .map(|a| AddressFact {
            cidr: a.cidr(),
            family: a.family,
            scope: a.scope.clone(),
        })
        .collect();
    let mut default_route: Vec<_> = snap
        .default_routes
        .iter()
        .filter(|r| r.oif == link.index)
        .map(|r| r.family)
        .collect();
    default_route.dedup();
    let vlan = link.vlan_id.map(|id| VlanInfo {
        id,
        parent: link
            .link_index
            .filter(|_| !link.link_in_other_netns)
            .and_then(|i| snap.name_of(i))
            .map(str::to_string),
        protocol: link.vlan_protocol.clone(),
    });
    let bond = (kind == NicKind::Bond).then(|| BondInfo {
        mode: link.bond_mode.clone(),
        members: snap.ports_of(link.index),
    });
    let bridge = (kind == NicKind::Bridge).then(|| BridgeInfo {
        ports: snap.ports_of(link.index),
    });
    let prop = |k: &str| udev.and_then(|u| u.prop(k)).map(str::to_string);
    Nic {
        name: link.name.clone(),
        ifindex: link.index,
        kind,
        link_kind: link.info_kind.clone(),
        mac: link.mac.clone(),
        permanent_mac: link.permanent_mac.clone(),
        mtu: link.mtu,
        state: if link.up { "up" } else { "down" }.to_string(),
        oper_state: link.oper_state.clone(),
        carrier: link.carrier,
        broadcast: link.broadcast,
        multicast: link.multicast,
        link_type: link.link_type.clone(),
        // A speed read while the link is down is stale or -1.
        speed_mbps: sys.speed_mbps.filter(|_| link.lower_up),
        driver: prop("ID_NET_DRIVER").or(sys.driver),
        pci_address: sys.pci_address,
        vendor: prop("ID_VENDOR_FROM_DATABASE"),
        model: prop("ID_MODEL_FROM_DATABASE"),
        id_path: prop("ID_PATH"),
        addresses: address_details.iter().map(|a| a.cidr.clone()).collect(),
        address_details,
        default_route,
        vlan,
        bond,
        bridge,
        controller: link
            .controller_index
            .and_then(|i| snap.name_of(i))
            .map(str::to_string),
        sriov: sys.sriov,
        uplink: Verdict::default(),
    }
}

/// Every NIC of this network namespace, ordered by ifindex.
pub async fn probe_nics(root: &SysRoot) -> anyhow::Result<Vec<Nic>> {
    let snap = Snapshot::take().await?;
    Ok(nics_from_snapshot(root, &snap))
}

pub fn nics_from_snapshot(root: &SysRoot, snap: &Snapshot) -> Vec<Nic> {
    // udevd sees only the initial network namespace and keys its database by ifindex: inside
    // another namespace an entry with our ifindex describes some other host interface.
    let use_udev = root.use_udev && in_initial_netns(root);
    snap.links
        .values()
        .map(|link| {
            let sys = read_sysfs(root, &link.name);
            let udev = use_udev
                .then(|| super::udev::net_device(&link.name))
                .flatten();
            let udev = udev.filter(|u| u.initialized);
            assemble(link, snap, sys, udev.as_ref())
        })
        .collect()
}

/// Whether this process shares the network namespace of PID 1.
fn in_initial_netns(root: &SysRoot) -> bool {
    let ns = |p: &str| std::fs::read_link(root.proc.join(p)).ok();
    match (ns("self/ns/net"), ns("1/ns/net")) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

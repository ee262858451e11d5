//! The inventory's plain data: every NIC and disk fact as probed, and the verdicts the rules add.
//!
//! These structs are the JSON contract of `microcloud inventory --format json` and of the daemon's
//! API. Unknown facts are `None` (serialised as `null`), never guessed.

use serde::{Deserialize, Serialize};

/// Everything one host knows about its hardware.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub hostname: Option<String>,
    pub nics: Vec<Nic>,
    pub disks: Vec<Disk>,
    /// Facts the probe could not read, host-wide (e.g. no udev database). Per-device problems
    /// sit on the device itself.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The disk allow-list the verdicts were made under, so a planner elsewhere judges alike.
    #[serde(default)]
    pub allow_disk: Vec<String>,
}

/// What kind of link a NIC is, from its rtnetlink link-info kind and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicKind {
    Physical,
    Vlan,
    Bond,
    Bridge,
    Veth,
    Loopback,
    Other,
}

impl NicKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NicKind::Physical => "physical",
            NicKind::Vlan => "vlan",
            NicKind::Bond => "bond",
            NicKind::Bridge => "bridge",
            NicKind::Veth => "veth",
            NicKind::Loopback => "loopback",
            NicKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Inet,
    Inet6,
}

/// One address configured on an interface, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressFact {
    /// `10.0.0.5/24` or `fd42::5/64`.
    pub cidr: String,
    pub family: Family,
    /// `global`, `link`, `host`, `site` or a number.
    pub scope: String,
}

impl AddressFact {
    pub fn is_global(&self) -> bool {
        self.scope == "global"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VlanInfo {
    pub id: u16,
    /// Name of the lower device; `None` when it lives in another namespace or is unknown.
    pub parent: Option<String>,
    /// `802.1Q` or `802.1ad`.
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondInfo {
    /// Kernel bonding mode name (`balance-rr`, `active-backup`, `802.3ad`, ...).
    pub mode: Option<String>,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeInfo {
    pub ports: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SriovInfo {
    pub total_vfs: u32,
    pub num_vfs: u32,
}

/// A yes/no verdict with every reason for a "no" (empty exactly when eligible).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verdict {
    pub eligible: bool,
    pub reasons: Vec<String>,
}

impl Verdict {
    pub fn from_reasons(reasons: Vec<String>) -> Self {
        Verdict {
            eligible: reasons.is_empty(),
            reasons,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub name: String,
    pub ifindex: u32,
    pub kind: NicKind,
    /// The raw rtnetlink link-info kind (`veth`, `tun`, `vxlan`, ...), when the kernel gave one.
    pub link_kind: Option<String>,
    pub mac: Option<String>,
    pub permanent_mac: Option<String>,
    pub mtu: Option<u32>,
    /// Administrative state: `up` or `down` (IFF_UP).
    pub state: String,
    /// RFC 2863 operational state as the kernel reports it (`up`, `down`, `lowerlayerdown`, ...).
    pub oper_state: String,
    pub carrier: Option<bool>,
    pub broadcast: bool,
    pub multicast: bool,
    /// Link-layer type (`ether`, `loopback`, `none`, ...).
    pub link_type: String,
    /// Mbit/s; `None` when the driver does not know (virtio, link down).
    pub speed_mbps: Option<u32>,
    pub driver: Option<String>,
    pub pci_address: Option<String>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// udev ID_PATH (`pci-0000:00:03.0`).
    pub id_path: Option<String>,
    pub addresses: Vec<String>,
    pub address_details: Vec<AddressFact>,
    /// Address families for which this interface carries a default route.
    pub default_route: Vec<Family>,
    pub vlan: Option<VlanInfo>,
    pub bond: Option<BondInfo>,
    pub bridge: Option<BridgeInfo>,
    /// The bond or bridge this interface is enslaved to.
    pub controller: Option<String>,
    pub sriov: Option<SriovInfo>,
    /// Whether microcloud may use this NIC as the OVN uplink, and why not.
    pub uplink: Verdict,
}

/// A signature libblkid found: a filesystem, RAID/LVM member, swap, crypto header or partition
/// table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `ext4`, `xfs`, `btrfs`, `swap`, `LVM2_member`, `gpt`, `dos`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `filesystem`, `raid`, `crypto`, `other`, or `partition_table`.
    pub usage: Option<String>,
    pub uuid: Option<String>,
    pub label: Option<String>,
    /// Byte offset of the signature's magic, when known (wipefs-style probing).
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Kernel name when the kernel has a node for it (`loop3p1`, `sda1`).
    pub name: Option<String>,
    pub path: Option<String>,
    pub number: Option<u32>,
    /// Start in bytes from the beginning of the disk.
    pub start: Option<u64>,
    pub size: Option<u64>,
    /// GPT type GUID or MBR type code.
    pub part_type: Option<String>,
    pub part_uuid: Option<String>,
    pub part_name: Option<String>,
    pub signatures: Vec<Signature>,
    pub mounts: Vec<String>,
    pub swap: bool,
    pub holders: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionTable {
    /// `gpt` or `dos`.
    #[serde(rename = "type")]
    pub kind: String,
    pub uuid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskKind {
    Disk,
    Loop,
    Zram,
    Ram,
    Cdrom,
    DeviceMapper,
    Md,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Kernel name (`sda`, `nvme0n1`, `loop3`).
    pub name: String,
    pub path: String,
    /// The most stable name: by-id wwn, other by-id, by-path, then the /dev node.
    pub stable_path: String,
    /// Every /dev/disk/by-* link that points at this disk.
    pub links: Vec<String>,
    /// `major:minor`.
    pub devnum: String,
    pub kind: DiskKind,
    pub bus: Option<String>,
    pub size: Option<u64>,
    pub logical_sector_size: Option<u32>,
    pub physical_sector_size: Option<u32>,
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub rotational: Option<bool>,
    pub removable: Option<bool>,
    pub read_only: Option<bool>,
    pub partition_table: Option<PartitionTable>,
    pub partitions: Vec<Partition>,
    pub signatures: Vec<Signature>,
    /// libblkid saw several conflicting signatures and could not decide: treated as in use.
    pub ambiguous: bool,
    pub mounts: Vec<String>,
    pub swap: bool,
    pub holders: Vec<String>,
    /// A path of a multipath map (DM_MULTIPATH_DEVICE_PATH=1): use the map, not the path.
    pub multipath_member: bool,
    /// Whether the udev database had an initialised entry for this disk.
    pub udev: bool,
    /// Facts that could not be read, each naming what and why.
    pub probe_errors: Vec<String>,
    pub eligible: bool,
    pub reasons: Vec<String>,
}

impl Disk {
    /// Whether `path` names this disk: its kernel name, `/dev` path, stable path or a link.
    pub fn answers_to(&self, path: &str) -> bool {
        self.name == path
            || self.path == path
            || self.stable_path == path
            || self.links.iter().any(|l| l == path)
    }
}

/// Fixtures for tests elsewhere in the crate: one blank disk and one signature that each test
/// adjusts, instead of a full literal per test module.
#[cfg(test)]
impl Disk {
    /// A blank 10 GiB whole disk `name` (512-byte sectors, non-rotational, known to udev) with
    /// nothing on it, known only by its `/dev` path.
    pub(crate) fn example(name: &str) -> Disk {
        Disk {
            name: name.into(),
            path: format!("/dev/{name}"),
            stable_path: format!("/dev/{name}"),
            links: vec![],
            devnum: "8:0".into(),
            kind: DiskKind::Disk,
            bus: None,
            size: Some(10 << 30),
            logical_sector_size: Some(512),
            physical_sector_size: Some(512),
            model: None,
            vendor: None,
            serial: None,
            wwn: None,
            rotational: Some(false),
            removable: Some(false),
            read_only: Some(false),
            partition_table: None,
            partitions: vec![],
            signatures: vec![],
            ambiguous: false,
            mounts: vec![],
            swap: false,
            holders: vec![],
            multipath_member: false,
            udev: true,
            probe_errors: vec![],
            eligible: false,
            reasons: vec![],
        }
    }
}

#[cfg(test)]
impl Signature {
    /// A signature of `kind` with `usage` (`filesystem`, `raid`, ...) and nothing else known.
    pub(crate) fn example(kind: &str, usage: &str) -> Signature {
        Signature {
            kind: kind.into(),
            usage: Some(usage.into()),
            uuid: None,
            label: None,
            offset: None,
        }
    }
}

//! What a lab should look like (`LabSpec`, `HostSpec`) and the pure addressing plan derived from it.
//!
//! Every name and address is a function of the prefix and a host's position, so a lab can be
//! re-attached from its prefix alone and parallel labs never share a subnet.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::LabError;

/// The bridges a host can be linked to. Each lives in the lab's hub namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bridge {
    /// The cluster network: every host's `eth0`, IPv4 + IPv6.
    Cluster,
    /// A second addressed network, for "an agent with two links" (`eth1`).
    Second,
    /// DESIGN §7's uplink: a link without addresses (`eth2`), for OVN's uplink later.
    Uplink,
}

impl Bridge {
    pub const ALL: [Bridge; 3] = [Bridge::Cluster, Bridge::Second, Bridge::Uplink];

    /// Small number used in MACs and hub port names.
    pub fn id(self) -> u8 {
        match self {
            Bridge::Cluster => 0,
            Bridge::Second => 1,
            Bridge::Uplink => 2,
        }
    }

    /// The bridge's name inside the hub namespace.
    pub fn hub_name(self) -> String {
        format!("br{}", self.id())
    }

    /// The host end's interface name: fixed per bridge so tests can name it without looking.
    pub fn ifname(self) -> String {
        format!("eth{}", self.id())
    }

    /// Offset added to a subnet index to form the third IPv4 octet, keeping the cluster and
    /// second networks' subnets apart. `None`: the bridge carries no addresses.
    fn subnet_base(self) -> Option<u8> {
        match self {
            Bridge::Cluster => Some(0),
            Bridge::Second => Some(128),
            Bridge::Uplink => None,
        }
    }
}

/// One host: a network namespace with links into the hub's bridges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSpec {
    /// `[a-z0-9]`, may contain `-` but not start with it; the namespace is `<prefix>-<name>`.
    pub name: String,
    /// Subnet index (0..=127) on the cluster bridge; hosts with different indexes share the
    /// bridge (one link-local segment) but not an IPv4/ULA subnet.
    pub subnet: u8,
    /// A second link `eth1` into the second bridge, in this subnet index (0..=127).
    pub second_link: Option<u8>,
    /// An unaddressed link `eth2` into the uplink bridge.
    pub uplink: bool,
    /// Loop disks to attach (sparse files under the host's lab directory).
    #[serde(default)]
    pub disks: usize,
    /// Size of each loop disk in bytes.
    #[serde(default)]
    pub disk_size: u64,
}

impl HostSpec {
    pub fn new(name: impl Into<String>) -> Self {
        HostSpec {
            name: name.into(),
            subnet: 0,
            second_link: None,
            uplink: false,
            disks: 0,
            disk_size: 0,
        }
    }

    pub fn subnet(mut self, subnet: u8) -> Self {
        self.subnet = subnet;
        self
    }

    pub fn second_link(mut self, subnet: u8) -> Self {
        self.second_link = Some(subnet);
        self
    }

    pub fn uplink(mut self) -> Self {
        self.uplink = true;
        self
    }

    /// `n` loop disks of `size` bytes each (sparse: only what is written takes space), listed
    /// by [`Host::disks`](super::Host::disks) and allow-listed for this host only.
    pub fn disks(mut self, n: usize, size: u64) -> Self {
        self.disks = n;
        self.disk_size = size;
        self
    }

    /// The links this host gets, with the subnet index of each addressed one.
    pub(crate) fn links(&self) -> Vec<(Bridge, Option<u8>)> {
        let mut links = vec![(Bridge::Cluster, Some(self.subnet))];
        if let Some(s) = self.second_link {
            links.push((Bridge::Second, Some(s)));
        }
        if self.uplink {
            links.push((Bridge::Uplink, None));
        }
        links
    }
}

/// A whole lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// `[a-z0-9]{1,12}`, unique per concurrently running lab. No `-`, so that `<prefix>-`
    /// identifies this lab's namespaces exactly.
    pub prefix: String,
    pub hosts: Vec<HostSpec>,
    /// Add `224.0.0.0/4 dev eth0` in every host, for one-shot multicast tools that send without
    /// choosing an interface. Our daemon does not need it.
    pub multicast_route: bool,
}

impl LabSpec {
    pub fn new(prefix: impl Into<String>) -> Self {
        LabSpec {
            prefix: prefix.into(),
            hosts: Vec::new(),
            multicast_route: false,
        }
    }

    /// `n` hosts named `micro01`, `micro02`, … (the seed's names) on cluster subnet 0.
    pub fn with_hosts(prefix: impl Into<String>, n: usize) -> Self {
        let mut spec = LabSpec::new(prefix);
        spec.hosts = (1..=n)
            .map(|i| HostSpec::new(format!("micro{i:02}")))
            .collect();
        spec
    }

    pub fn host(mut self, host: HostSpec) -> Self {
        self.hosts.push(host);
        self
    }

    pub fn multicast_route(mut self, on: bool) -> Self {
        self.multicast_route = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), LabError> {
        let bad = |m: String| Err(LabError::Spec(m));
        if !valid_prefix(&self.prefix) {
            return bad(format!(
                "prefix {:?} must be 1-12 characters of [a-z0-9]",
                self.prefix
            ));
        }
        if self.hosts.is_empty() || self.hosts.len() > MAX_HOSTS {
            return bad(format!(
                "a lab has 1..={MAX_HOSTS} hosts, not {}",
                self.hosts.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for h in &self.hosts {
            let ok = !h.name.is_empty()
                && h.name.len() <= 32
                && !h.name.starts_with('-')
                && h.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok || h.name == HUB {
                return bad(format!(
                    "host name {:?} must be [a-z0-9-]{{1,32}} and not {HUB:?}",
                    h.name
                ));
            }
            if !seen.insert(h.name.as_str()) {
                return bad(format!("host name {:?} appears twice", h.name));
            }
            if h.subnet > 127 || h.second_link.is_some_and(|s| s > 127) {
                return bad(format!("host {}: subnet indexes are 0..=127", h.name));
            }
            if h.disks > MAX_DISKS || (h.disks > 0 && h.disk_size < 1 << 20) {
                return bad(format!(
                    "host {}: at most {MAX_DISKS} loop disks of at least 1 MiB",
                    h.name
                ));
            }
        }
        Ok(())
    }
}

/// Host indexes are the last IPv4 octet.
pub const MAX_HOSTS: usize = 254;

/// Loop disks per host: enough for local + Ceph disks, few enough that a typo cannot exhaust
/// the machine's loop devices.
pub const MAX_DISKS: usize = 16;

/// Name of the hub namespace's suffix: `<prefix>-hub`.
pub const HUB: &str = "hub";

pub(crate) fn valid_prefix(p: &str) -> bool {
    (1..=12).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The lab's second IPv4 octet (and the ULA's `fdXX`): FNV-1a of the prefix, so parallel labs
/// almost never share subnets and a lab's addresses are known from its prefix.
pub fn lab_octet(prefix: &str) -> u8 {
    let h = prefix.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    1 + (h % 254) as u8
}

/// Addresses of one host link, all derived from (lab octet, bridge, subnet, host index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkAddrs {
    pub bridge: Bridge,
    /// Interface name inside the host.
    pub ifname: String,
    /// Port name in the hub (the veth's other end).
    pub hub_port: String,
    pub mac: String,
    /// Subnet index on this bridge, `None` for the uplink.
    pub subnet: Option<u8>,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    /// From the fixed MAC with `addrgenmode eui64`, so known without asking the kernel.
    pub link_local: Ipv6Addr,
}

impl LinkAddrs {
    pub(crate) fn plan(octet: u8, index: u16, bridge: Bridge, subnet: Option<u8>) -> Self {
        let [hi, lo] = index.to_be_bytes();
        let id = bridge.id();
        let mac = format!("02:6c:{octet:02x}:{id:02x}:{hi:02x}:{lo:02x}");
        // EUI-64 of 02:6c:KK:LL:HH:II with the universal/local bit flipped.
        let link_local = Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            0x006c,
            u16::from(octet) << 8 | 0xff,
            0xfe00 | u16::from(id),
            index,
        );
        let third = bridge.subnet_base().zip(subnet).map(|(base, s)| base + s);
        LinkAddrs {
            bridge,
            ifname: bridge.ifname(),
            hub_port: format!("h{index}e{id}"),
            mac,
            subnet,
            v4: third.map(|t| Ipv4Addr::new(10, octet, t, lo)),
            v6: third.map(|t| {
                Ipv6Addr::new(
                    0xfd00 | u16::from(octet),
                    0,
                    0,
                    u16::from(t),
                    0,
                    0,
                    0,
                    index,
                )
            }),
            link_local,
        }
    }
}

/// IPv4 and ULA prefix lengths.
pub const V4_PREFIX: u8 = 24;
pub const V6_PREFIX: u8 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_prefix_bridge_subnet_and_index() {
        let k = lab_octet("t1");
        let a = LinkAddrs::plan(k, 5, Bridge::Cluster, Some(1));
        assert_eq!(a.v4, Some(Ipv4Addr::new(10, k, 1, 5)));
        assert_eq!(
            a.v6.unwrap().segments(),
            [0xfd00 | u16::from(k), 0, 0, 1, 0, 0, 0, 5]
        );
        assert_eq!(a.ifname, "eth0");
        let b = LinkAddrs::plan(k, 5, Bridge::Second, Some(0));
        assert_eq!(b.v4, Some(Ipv4Addr::new(10, k, 128, 5)));
        assert_eq!(b.ifname, "eth1");
        let u = LinkAddrs::plan(k, 5, Bridge::Uplink, None);
        assert_eq!((u.v4, u.v6), (None, None));
        assert_ne!(a.link_local, b.link_local);
        assert_eq!(a.mac, format!("02:6c:{k:02x}:00:00:05"));
        assert_eq!(a.link_local.to_string(), format!("fe80::6c:{k:x}ff:fe00:5"));
    }

    #[test]
    fn octet_is_stable_and_spreads() {
        assert_eq!(lab_octet("abc"), lab_octet("abc"));
        let distinct: std::collections::BTreeSet<u8> =
            (0..40).map(|i| lab_octet(&format!("t{i}"))).collect();
        assert!(distinct.len() > 30, "{distinct:?}");
        assert!((0..1000).all(|i| lab_octet(&format!("p{i}")) != 0));
    }

    #[test]
    fn validation() {
        assert!(LabSpec::with_hosts("ok1", 3).validate().is_ok());
        assert!(LabSpec::with_hosts("has-dash", 1).validate().is_err());
        assert!(LabSpec::with_hosts("Upper", 1).validate().is_err());
        assert!(LabSpec::with_hosts("x", 0).validate().is_err());
        assert!(LabSpec::new("x")
            .host(HostSpec::new("hub"))
            .validate()
            .is_err());
        assert!(LabSpec::new("x")
            .host(HostSpec::new("a"))
            .host(HostSpec::new("a"))
            .validate()
            .is_err());
        assert!(LabSpec::new("x")
            .host(HostSpec::new("a").subnet(200))
            .validate()
            .is_err());
    }
}

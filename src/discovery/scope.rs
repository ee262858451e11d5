//! Scope rules (pure): which interfaces mDNS runs on, with which addresses, and whether a peer
//! seen on an interface lies on that interface's link (DESIGN §4, RFC 6762 §11).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use glob::Pattern;

use crate::net::link::LinkFacts;
use crate::net::snapshot::Snapshot;
use crate::net::subnet::{is_ipv6_link_local, on_link, Prefix};

/// Container, VM and overlay plumbing left out unless the operator allows it by name.
const DEFAULT_DENY: &[&str] = &[
    "docker*",
    "br-*",
    "virbr*",
    "lxdbr*",
    "cni*",
    "flannel*",
    "cali*",
    "vxlan*",
    "genev_sys_*",
    "vxlan_sys_*",
    "ovs-system",
    "br-int",
    "ovn*",
    "tun*",
    "tap*",
    "wg*",
    "lxcbr*",
    "kube-*",
];
/// Link kinds that never carry a LAN: tunnels, overlays, VPNs.
const DENY_KINDS: &[&str] = &[
    "tun",
    "wireguard",
    "vxlan",
    "geneve",
    "gre",
    "gretap",
    "ipip",
    "sit",
    "ip6tnl",
    "openvswitch",
    "dummy",
    "ifb",
    "nlmon",
    "vrf",
];

/// Operator's interface choices (`mdns-allow-interface`, `mdns-deny-interface`).
#[derive(Debug, Clone, Default)]
pub struct InterfacePolicy {
    pub allow: Vec<Pattern>,
    pub deny: Vec<Pattern>,
}

impl InterfacePolicy {
    pub fn new<S: AsRef<str>>(allow: &[S], deny: &[S]) -> Result<Self, glob::PatternError> {
        let p = |v: &[S]| {
            v.iter()
                .map(|s| Pattern::new(s.as_ref()))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(InterfacePolicy {
            allow: p(allow)?,
            deny: p(deny)?,
        })
    }
}

/// One interface mDNS runs on, with the addresses it may announce and the prefixes that define
/// its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceScope {
    pub index: u32,
    pub name: String,
    /// Usable (non-tentative) IPv4 addresses with their prefixes.
    pub v4: Vec<Prefix>,
    /// Usable IPv6 addresses, link-local included.
    pub v6: Vec<Prefix>,
}

impl IfaceScope {
    pub fn v4_addrs(&self) -> Vec<Ipv4Addr> {
        self.v4
            .iter()
            .filter_map(|p| match p.addr {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .collect()
    }

    pub fn v6_addrs(&self) -> Vec<Ipv6Addr> {
        self.v6
            .iter()
            .filter_map(|p| match p.addr {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect()
    }

    /// Whether `peer` is on this interface's link. The caller must only ask for addresses
    /// learned on this interface (that is what makes fe80:: meaningful here).
    pub fn on_link(&self, peer: IpAddr) -> bool {
        let prefixes = if peer.is_ipv4() { &self.v4 } else { &self.v6 };
        on_link(prefixes, peer)
    }

    /// An address of ours on this interface (`from_self` detection of looped-back packets).
    pub fn is_own(&self, a: IpAddr) -> bool {
        self.v4.iter().chain(&self.v6).any(|p| p.addr == a)
    }
}

/// The decision for every interface: used, or left out and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeDecision {
    pub used: BTreeMap<u32, IfaceScope>,
    pub excluded: Vec<(String, String)>,
}

fn why_excluded(link: &LinkFacts, snap: &Snapshot, policy: &InterfacePolicy) -> Option<String> {
    let name = link.name.as_str();
    if policy.deny.iter().any(|p| p.matches(name)) {
        return Some("denied by mdns-deny-interface".into());
    }
    if link.loopback {
        return Some("loopback".into());
    }
    if !link.up {
        return Some("administratively down".into());
    }
    if !link.multicast {
        return Some("no multicast".into());
    }
    if link.point_to_point {
        return Some("point-to-point link".into());
    }
    let allowed = policy.allow.iter().any(|p| p.matches(name));
    if !policy.allow.is_empty() && !allowed {
        return Some("not in mdns-allow-interface".into());
    }
    if !allowed {
        if let Some(kind) = link.info_kind.as_deref().filter(|k| DENY_KINDS.contains(k)) {
            return Some(format!(
                "{kind} link (tunnel, overlay or virtual); allow it with mdns-allow-interface"
            ));
        }
        if DEFAULT_DENY
            .iter()
            .any(|p| Pattern::new(p).is_ok_and(|p| p.matches(name)))
        {
            return Some("container or VM plumbing; allow it with mdns-allow-interface".into());
        }
        if link.controller_index.is_some() {
            let c = link
                .controller_index
                .and_then(|i| snap.name_of(i))
                .unwrap_or("?");
            return Some(format!("enslaved to {c}: discovery runs on {c} instead"));
        }
    }
    None
}

/// Which interfaces discovery runs on, from a netlink snapshot.
pub fn decide(snap: &Snapshot, policy: &InterfacePolicy) -> ScopeDecision {
    let mut d = ScopeDecision::default();
    for link in snap.links.values() {
        if let Some(why) = why_excluded(link, snap, policy) {
            d.excluded.push((link.name.clone(), why));
            continue;
        }
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in snap.addresses_of(link.index).filter(|a| !a.tentative) {
            let p = Prefix::new(a.address, a.prefix_len);
            match a.address {
                IpAddr::V4(_) => v4.push(p),
                IpAddr::V6(_) => v6.push(p),
            }
        }
        if v4.is_empty() && v6.is_empty() {
            d.excluded
                .push((link.name.clone(), "no usable address".into()));
            continue;
        }
        v4.sort();
        v6.sort();
        d.used.insert(
            link.index,
            IfaceScope {
                index: link.index,
                name: link.name.clone(),
                v4,
                v6,
            },
        );
    }
    d
}

/// Per-interface change between two decisions, for reconciling sockets and state machines.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reconcile {
    pub added: Vec<u32>,
    pub removed: Vec<u32>,
    /// Same interface, different addresses: re-announce (and goodbye for vanished addresses).
    pub changed: Vec<u32>,
}

pub fn reconcile(old: &BTreeMap<u32, IfaceScope>, new: &BTreeMap<u32, IfaceScope>) -> Reconcile {
    let mut r = Reconcile::default();
    for (i, s) in new {
        match old.get(i) {
            None => r.added.push(*i),
            Some(o) if o != s => r.changed.push(*i),
            _ => {}
        }
    }
    r.removed = old
        .keys()
        .filter(|i| !new.contains_key(i))
        .copied()
        .collect();
    r
}

/// Whether a peer whose `addrs` were learned on `iface` belongs to that interface's subnet.
///
/// A routable address must lie inside a prefix configured on the interface. Link-local IPv6
/// addresses prove only that the peer shares the layer-2 segment, which a host on another subnet
/// of the same switch also does, so they count only on an interface that has no routable
/// address at all (a link-local-only network).
pub fn peer_in_scope(iface: &IfaceScope, addrs: &[IpAddr]) -> bool {
    let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(v6) if is_ipv6_link_local(v6));
    let routable_here = iface
        .v4
        .iter()
        .chain(&iface.v6)
        .any(|p| !link_local(&p.addr));
    addrs.iter().any(|a| {
        if link_local(a) {
            !routable_here
        } else {
            iface.on_link(*a)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::model::Family;
    use crate::net::link::AddrFacts;

    fn link(index: u32, name: &str) -> LinkFacts {
        LinkFacts {
            index,
            name: name.into(),
            up: true,
            multicast: true,
            broadcast: true,
            link_type: "ether".into(),
            ..Default::default()
        }
    }

    fn addr(index: u32, a: &str, len: u8, tentative: bool) -> AddrFacts {
        let address: IpAddr = a.parse().unwrap();
        AddrFacts {
            index,
            address,
            prefix_len: len,
            family: if address.is_ipv4() {
                Family::Inet
            } else {
                Family::Inet6
            },
            scope: "global".into(),
            tentative,
        }
    }

    fn snap(links: Vec<LinkFacts>, addrs: Vec<AddrFacts>) -> Snapshot {
        Snapshot {
            links: links.into_iter().map(|l| (l.index, l)).collect(),
            addresses: addrs,
            default_routes: vec![],
        }
    }

    #[test]
    fn uses_up_multicast_addressed_links_and_says_why_not_for_the_rest() {
        let mut lo = link(1, "lo");
        lo.loopback = true;
        let mut down = link(3, "eth1");
        down.up = false;
        let mut wg = link(4, "wg0");
        wg.info_kind = Some("wireguard".into());
        wg.multicast = true;
        let mut port = link(6, "eth2");
        port.controller_index = Some(7);
        let mut br = link(7, "br0");
        br.info_kind = Some("bridge".into());
        let s = snap(
            vec![
                lo,
                link(2, "eth0"),
                down,
                wg,
                link(5, "docker0"),
                port,
                br,
                link(8, "eth3"),
            ],
            vec![
                addr(1, "127.0.0.1", 8, false),
                addr(2, "10.0.0.5", 24, false),
                addr(2, "fe80::1", 64, false),
                addr(2, "fd00::5", 64, true),
                addr(4, "10.9.0.1", 24, false),
                addr(5, "172.17.0.1", 16, false),
                addr(7, "10.1.0.1", 24, false),
            ],
        );
        let d = decide(&s, &InterfacePolicy::default());
        assert_eq!(d.used.keys().copied().collect::<Vec<_>>(), vec![2, 7]);
        let eth0 = &d.used[&2];
        assert_eq!(eth0.v4_addrs(), vec![Ipv4Addr::new(10, 0, 0, 5)]);
        // The tentative address is left out until DAD finishes.
        assert_eq!(
            eth0.v6_addrs(),
            vec!["fe80::1".parse::<Ipv6Addr>().unwrap()]
        );
        let why: BTreeMap<_, _> = d.excluded.into_iter().collect();
        assert_eq!(why["lo"], "loopback");
        assert_eq!(why["eth1"], "administratively down");
        assert!(why["wg0"].contains("wireguard"));
        assert!(why["docker0"].contains("container"));
        assert!(why["eth2"].contains("enslaved to br0"));
        assert_eq!(why["eth3"], "no usable address");
    }

    #[test]
    fn allow_overrides_defaults_and_deny_wins() {
        let s = snap(
            vec![link(2, "docker0"), link(3, "eth0")],
            vec![
                addr(2, "172.17.0.1", 16, false),
                addr(3, "10.0.0.1", 24, false),
            ],
        );
        let d = decide(&s, &InterfacePolicy::new(&["docker0"], &[]).unwrap());
        assert_eq!(d.used.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert!(d
            .excluded
            .iter()
            .any(|(n, w)| n == "eth0" && w.contains("not in")));
        let d = decide(&s, &InterfacePolicy::new(&[], &["eth*"]).unwrap());
        assert!(d.used.is_empty());
    }

    #[test]
    fn reconcile_reports_added_removed_changed() {
        let one = |addr: &str| {
            let s = snap(vec![link(2, "eth0")], vec![self::addr(2, addr, 24, false)]);
            decide(&s, &InterfacePolicy::default()).used
        };
        let a = one("10.0.0.1");
        let b = one("10.0.0.2");
        assert_eq!(reconcile(&BTreeMap::new(), &a).added, vec![2]);
        assert_eq!(reconcile(&a, &b).changed, vec![2]);
        assert_eq!(reconcile(&a, &BTreeMap::new()).removed, vec![2]);
        assert_eq!(reconcile(&a, &a), Reconcile::default());
    }

    #[test]
    fn peers_are_in_scope_only_inside_the_interface_subnets() {
        let s = snap(
            vec![link(2, "eth0")],
            vec![
                addr(2, "10.0.0.5", 24, false),
                addr(2, "fe80::1", 64, false),
            ],
        );
        let eth0 = &decide(&s, &InterfacePolicy::default()).used[&2];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(peer_in_scope(eth0, &[ip("10.0.0.9")]));
        assert!(!peer_in_scope(eth0, &[ip("10.0.1.9")]));
        // Sharing the segment is not sharing the subnet.
        assert!(!peer_in_scope(eth0, &[ip("10.0.1.9"), ip("fe80::9")]));
        assert!(!peer_in_scope(eth0, &[ip("fd00::9")]));
        let s = snap(vec![link(3, "eth1")], vec![addr(3, "fe80::1", 64, false)]);
        let eth1 = &decide(&s, &InterfacePolicy::default()).used[&3];
        assert!(
            peer_in_scope(eth1, &[ip("fe80::9")]),
            "link-local-only network"
        );
    }
}

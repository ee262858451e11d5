//! Which NICs may serve as the OVN uplink (DESIGN §3): physical, bond or VLAN (a bridge too),
//! broadcast-capable, not enslaved, administratively up, and carrying no global address or
//! default route (a bridge may carry addresses: LXD attaches to it through a veth).

use crate::inventory::model::{Family, Nic, NicKind};

/// Every reason `nic` cannot be the uplink; empty means eligible.
pub fn uplink_reasons(nic: &Nic) -> Vec<String> {
    let mut reasons = Vec::new();
    match nic.kind {
        NicKind::Physical | NicKind::Bond | NicKind::Vlan | NicKind::Bridge => {}
        // Nothing else about a loopback interface matters.
        NicKind::Loopback => return vec!["loopback interface".to_string()],
        NicKind::Veth => reasons.push(
            "veth (one end of a virtual pair) is not an uplink kind: use a physical NIC, bond, VLAN or bridge"
                .to_string(),
        ),
        NicKind::Other => reasons.push(format!(
            "link kind {} is not an uplink kind: use a physical NIC, bond, VLAN or bridge",
            nic.link_kind.as_deref().unwrap_or("unknown")
        )),
    }
    if !nic.broadcast || nic.link_type != "ether" {
        reasons.push(format!(
            "not a broadcast Ethernet link (link type {}{})",
            nic.link_type,
            if nic.broadcast { "" } else { ", no broadcast" }
        ));
    }
    if let Some(controller) = &nic.controller {
        reasons.push(format!(
            "enslaved to {controller}: a bond or bridge member cannot be used on its own, consider {controller}"
        ));
    }
    if nic.state != "up" {
        reasons.push(format!(
            "administratively down (bring it up with: ip link set {} up)",
            nic.name
        ));
    }
    if nic.kind != NicKind::Bridge {
        let global: Vec<&str> = nic
            .address_details
            .iter()
            .filter(|a| a.is_global())
            .map(|a| a.cidr.as_str())
            .collect();
        if !global.is_empty() {
            reasons.push(format!(
                "carries global address {}: it serves host networking, an uplink must be unaddressed",
                global.join(", ")
            ));
        }
        if !nic.default_route.is_empty() {
            let fams: Vec<&str> = nic
                .default_route
                .iter()
                .map(|f| match f {
                    Family::Inet => "IPv4",
                    Family::Inet6 => "IPv6",
                })
                .collect();
            reasons.push(format!("carries the {} default route", fams.join(" and ")));
        }
    }
    reasons
}

/// Eligible uplinks best first: carrier before no carrier, then faster, then by name.
pub fn rank_uplinks(nics: &[Nic]) -> Vec<&Nic> {
    let mut eligible: Vec<&Nic> = nics.iter().filter(|n| n.uplink.eligible).collect();
    eligible.sort_by(|a, b| {
        let carrier = |n: &Nic| n.carrier == Some(true);
        carrier(b)
            .cmp(&carrier(a))
            .then(b.speed_mbps.unwrap_or(0).cmp(&a.speed_mbps.unwrap_or(0)))
            .then(a.name.cmp(&b.name))
    });
    eligible
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::model::{AddressFact, Verdict};

    fn nic(name: &str, kind: NicKind) -> Nic {
        Nic {
            name: name.into(),
            ifindex: 2,
            kind,
            link_kind: None,
            mac: Some("52:54:00:00:00:01".into()),
            permanent_mac: None,
            mtu: Some(1500),
            state: "up".into(),
            oper_state: "up".into(),
            carrier: Some(true),
            broadcast: true,
            multicast: true,
            link_type: "ether".into(),
            speed_mbps: None,
            driver: None,
            pci_address: None,
            vendor: None,
            model: None,
            id_path: None,
            addresses: vec![],
            address_details: vec![],
            default_route: vec![],
            vlan: None,
            bond: None,
            bridge: None,
            controller: None,
            sriov: None,
            uplink: Verdict::default(),
        }
    }

    fn addr(n: &mut Nic, cidr: &str, family: Family, scope: &str) {
        n.addresses.push(cidr.into());
        n.address_details.push(AddressFact {
            cidr: cidr.into(),
            family,
            scope: scope.into(),
        });
    }

    #[test]
    fn unaddressed_physical_bond_vlan_bridge_are_eligible() {
        for k in [
            NicKind::Physical,
            NicKind::Bond,
            NicKind::Vlan,
            NicKind::Bridge,
        ] {
            assert!(uplink_reasons(&nic("x", k)).is_empty(), "{k:?}");
        }
    }

    #[test]
    fn link_local_ipv6_does_not_count_as_an_address() {
        let mut n = nic("eth1", NicKind::Physical);
        addr(&mut n, "fe80::1/64", Family::Inet6, "link");
        assert!(uplink_reasons(&n).is_empty());
    }

    #[test]
    fn loopback_is_refused() {
        let mut n = nic("lo", NicKind::Loopback);
        n.link_type = "loopback".into();
        n.broadcast = false;
        n.state = "down".into();
        assert_eq!(uplink_reasons(&n), vec!["loopback interface"]);
    }

    #[test]
    fn veth_and_other_kinds_are_refused_by_kind() {
        let r = uplink_reasons(&nic("veth0", NicKind::Veth));
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("veth"), "{r:?}");
        let mut t = nic("tun0", NicKind::Other);
        t.link_kind = Some("tun".into());
        let r = uplink_reasons(&t);
        assert!(r[0].contains("link kind tun"), "{r:?}");
    }

    #[test]
    fn non_broadcast_link_is_refused() {
        let mut n = nic("wg0", NicKind::Physical);
        n.broadcast = false;
        n.link_type = "none".into();
        let r = uplink_reasons(&n);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].contains("link type none") && r[0].contains("no broadcast"),
            "{r:?}"
        );
    }

    #[test]
    fn enslaved_port_is_refused_and_names_its_controller() {
        let mut n = nic("eth1", NicKind::Physical);
        n.controller = Some("bond0".into());
        let r = uplink_reasons(&n);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("enslaved to bond0"), "{r:?}");
    }

    #[test]
    fn admin_down_is_refused_with_the_fix() {
        let mut n = nic("eth2", NicKind::Physical);
        n.state = "down".into();
        let r = uplink_reasons(&n);
        assert_eq!(
            r,
            vec!["administratively down (bring it up with: ip link set eth2 up)"]
        );
    }

    #[test]
    fn no_carrier_is_not_a_refusal_but_ranks_last() {
        let mut a = nic("a", NicKind::Physical);
        a.carrier = Some(false);
        let mut b = nic("b", NicKind::Physical);
        b.speed_mbps = Some(1000);
        let mut c = nic("c", NicKind::Physical);
        c.speed_mbps = Some(10000);
        let mut all = vec![a, b, c];
        for n in &mut all {
            n.uplink = Verdict::from_reasons(uplink_reasons(n));
        }
        let ranked: Vec<&str> = rank_uplinks(&all).iter().map(|n| n.name.as_str()).collect();
        assert_eq!(ranked, vec!["c", "b", "a"]);
    }

    #[test]
    fn global_address_and_default_route_are_refused() {
        let mut n = nic("eth0", NicKind::Physical);
        addr(&mut n, "10.0.0.5/24", Family::Inet, "global");
        addr(&mut n, "fd42::5/64", Family::Inet6, "global");
        n.default_route = vec![Family::Inet];
        let r = uplink_reasons(&n);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].contains("10.0.0.5/24, fd42::5/64"), "{r:?}");
        assert_eq!(r[1], "carries the IPv4 default route");
    }

    #[test]
    fn bridge_may_carry_addresses() {
        let mut n = nic("br0", NicKind::Bridge);
        addr(&mut n, "10.0.0.5/24", Family::Inet, "global");
        n.default_route = vec![Family::Inet];
        assert!(uplink_reasons(&n).is_empty());
    }

    #[test]
    fn every_reason_is_listed_not_just_the_first() {
        let mut n = nic("veth9", NicKind::Veth);
        n.state = "down".into();
        n.controller = Some("br0".into());
        addr(&mut n, "192.0.2.1/24", Family::Inet, "global");
        assert_eq!(uplink_reasons(&n).len(), 4);
    }
}

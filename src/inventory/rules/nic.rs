//! Which NICs may serve as the OVN uplink (DESIGN §3): physical, bond or VLAN (a bridge too),
//! broadcast-capable, not enslaved, administratively up, and carrying no global address or
//! default route (a bridge may carry addresses: LXD attaches to it through a veth).

use crate::inventory::model::{Family, Nic, NicKind};

/// Every reason `nic` cannot be the uplink; empty means eligible.
pub fn uplink_reasons(nic: &Nic) -> Vec<String> {
    let mut reasons = Vec::new();
    match nic.kind {
        NicKind::Physical | NicKind::Bond | NicKind::Vlan | NicKind::Bridge => {}
        NicKind::Loopback => reasons.push("loopback interface".to_string()),
        NicKind::Veth => reasons.push(
            "veth (one end of a virtual pair) is not an uplink kind: use a physical NIC, bond, VLAN or bridge"
                .to_string(),
        ),
        NicKind::Other => reasons.push(format!(
            "link kind {} is not an uplink kind: use a physical NIC, bond, VLAN or bridge",
            nic.link_kind.as_deref().unwrap_or("unknown")
        )),
    }
    if nic.kind != NicKind::Loopback && (!nic.broadcast || nic.link_type != "ether") {
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

//! Validation of the preseed fields for services microcloud does not set up yet (OVN, Ceph):
//! they are checked now, with field paths, and reported as not applied, so a preseed written
//! for MicroCloud fails early on mistakes instead of being half-honoured later.

use std::net::IpAddr;

use super::{Preseed, PreseedError};

fn cidr(path: &str, s: &str) -> Result<(IpAddr, u8), PreseedError> {
    let bad = || {
        PreseedError::new(
            path,
            format!("{s:?} is not a CIDR address (like 192.0.2.1/24)"),
        )
    };
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    if len > if ip.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok((ip, len))
}

fn ip(path: &str, s: &str) -> Result<IpAddr, PreseedError> {
    s.trim()
        .parse()
        .map_err(|_| PreseedError::new(path, format!("{s:?} is not an IP address")))
}

fn in_prefix(net: (IpAddr, u8), a: IpAddr) -> bool {
    crate::net::subnet::Prefix::new(net.0, net.1).contains(a)
}

impl Preseed {
    /// Check the OVN and Ceph parts. Returns notes for the operator about what is validated
    /// but not applied yet.
    pub fn check_services(&self) -> Result<Vec<String>, PreseedError> {
        let mut notes = Vec::new();
        let uplinks = self
            .systems
            .iter()
            .filter(|s| s.ovn_uplink_interface.is_some())
            .count();
        if uplinks != 0 && uplinks != self.systems.len() {
            let i = self
                .systems
                .iter()
                .position(|s| s.ovn_uplink_interface.is_none())
                .unwrap_or(0);
            return Err(PreseedError::new(
                format!("systems[{i}].ovn_uplink_interface"),
                "set it on every system or on none",
            ));
        }
        let underlays = self
            .systems
            .iter()
            .filter(|s| s.ovn_underlay_ip.is_some())
            .count();
        if underlays != 0 && underlays != self.systems.len() {
            let i = self
                .systems
                .iter()
                .position(|s| s.ovn_underlay_ip.is_none())
                .unwrap_or(0);
            return Err(PreseedError::new(
                format!("systems[{i}].ovn_underlay_ip"),
                "set it on every system or on none",
            ));
        }
        for (i, s) in self.systems.iter().enumerate() {
            if let Some(u) = &s.ovn_underlay_ip {
                ip(&format!("systems[{i}].ovn_underlay_ip"), u)?;
            }
        }
        if let Some(o) = &self.ovn {
            let gw4 = o
                .ipv4_gateway
                .as_deref()
                .map(|g| cidr("ovn.ipv4_gateway", g))
                .transpose()?;
            if let Some((g, _)) = gw4 {
                if !g.is_ipv4() {
                    return Err(PreseedError::new(
                        "ovn.ipv4_gateway",
                        "must be an IPv4 address",
                    ));
                }
            }
            match (&gw4, &o.ipv4_range) {
                (Some(_), None) => {
                    return Err(PreseedError::new(
                        "ovn.ipv4_range",
                        "required with ipv4_gateway",
                    ))
                }
                (None, Some(_)) => {
                    return Err(PreseedError::new(
                        "ovn.ipv4_gateway",
                        "required with ipv4_range",
                    ))
                }
                (Some(net), Some(r)) => {
                    let (a, b) = r.split_once('-').ok_or_else(|| {
                        PreseedError::new(
                            "ovn.ipv4_range",
                            format!("{r:?} is not a range like 192.0.2.100-192.0.2.254"),
                        )
                    })?;
                    let (a, b) = (ip("ovn.ipv4_range", a)?, ip("ovn.ipv4_range", b)?);
                    if !in_prefix(*net, a) || !in_prefix(*net, b) || a > b {
                        return Err(PreseedError::new(
                            "ovn.ipv4_range",
                            "must be an ascending range inside the gateway's subnet",
                        ));
                    }
                    if (a..=b).contains(&net.0) {
                        return Err(PreseedError::new(
                            "ovn.ipv4_range",
                            "must not include the gateway",
                        ));
                    }
                }
                (None, None) => {}
            }
            if let Some(g) = &o.ipv6_gateway {
                let (g, _) = cidr("ovn.ipv6_gateway", g)?;
                if !g.is_ipv6() {
                    return Err(PreseedError::new(
                        "ovn.ipv6_gateway",
                        "must be an IPv6 address",
                    ));
                }
            }
            if let Some(d) = &o.dns_servers {
                for s in d.split(',') {
                    ip("ovn.dns_servers", s)?;
                }
            }
            notes.push(
                "ovn: validated, not applied yet (this version sets up a managed bridge instead)"
                    .into(),
            );
        } else if uplinks > 0 {
            return Err(PreseedError::new(
                "ovn.ipv4_gateway",
                "ovn_uplink_interface is set but no OVN gateway is",
            ));
        }
        let ceph_disks = self
            .systems
            .iter()
            .any(|s| s.storage.as_ref().is_some_and(|st| !st.ceph.is_empty()))
            || self.storage.as_ref().is_some_and(|s| !s.ceph.is_empty());
        if let Some(c) = &self.ceph {
            for (path, v) in [
                ("ceph.internal_network", &c.internal_network),
                ("ceph.public_network", &c.public_network),
            ] {
                if let Some(v) = v {
                    cidr(path, v)?;
                    if !ceph_disks {
                        return Err(PreseedError::new(
                            path,
                            "needs Ceph disks (systems[].storage.ceph or storage.ceph)",
                        ));
                    }
                }
            }
        }
        if let Some(st) = &self.storage {
            for (kind, filters) in [("local", &st.local), ("ceph", &st.ceph)] {
                for (i, f) in filters.iter().enumerate() {
                    let path = format!("storage.{kind}[{i}]");
                    crate::cluster::filter::parse(&f.find)
                        .map_err(|e| PreseedError::new(format!("{path}.find"), e.message))?;
                    if let (Some(min), Some(max)) = (f.find_min, f.find_max) {
                        if max < min {
                            return Err(PreseedError::new(
                                format!("{path}.find_max"),
                                "smaller than find_min",
                            ));
                        }
                    }
                    if kind == "ceph" && f.find_min == Some(0) {
                        return Err(PreseedError::new(
                            format!("{path}.find_min"),
                            "must be at least 1",
                        ));
                    }
                }
            }
        }
        if ceph_disks || self.ceph.is_some() {
            notes.push(
                "ceph: validated, not applied yet (the remote pool comes with Ceph support)".into(),
            );
        }
        Ok(notes)
    }
}

#[cfg(test)]
mod tests {
    use crate::preseed::parse;

    const BASE: &str = "initiator: a\nlookup_subnet: 10.0.0.0/24\nsession_passphrase: p\n";

    fn check(extra: &str) -> Result<Vec<String>, crate::preseed::PreseedError> {
        parse(&format!("{BASE}{extra}")).unwrap().check_services()
    }

    #[test]
    fn a_full_microcloud_ovn_and_ceph_preseed_is_validated_and_reported_as_not_applied() {
        let notes = check(
            "systems:\n- {name: a, ovn_uplink_interface: eth1, storage: {ceph: [{path: /dev/sdb}]}}\n- {name: b, ovn_uplink_interface: eth1}\n\
             ovn: {ipv4_gateway: 192.0.2.1/24, ipv4_range: 192.0.2.100-192.0.2.254, ipv6_gateway: '2001:db8::1/64', dns_servers: '192.0.2.1,2001:db8::1'}\n\
             ceph: {cephfs: true, internal_network: 10.0.1.0/24}\n",
        )
        .unwrap();
        assert!(notes
            .iter()
            .any(|n| n.starts_with("ovn: validated, not applied")));
        assert!(notes
            .iter()
            .any(|n| n.starts_with("ceph: validated, not applied")));
    }

    #[test]
    fn service_field_errors_carry_paths() {
        let cases: &[(&str, &str)] = &[
            ("systems:\n- {name: a, ovn_uplink_interface: eth1}\n- {name: b}\novn: {ipv4_gateway: 192.0.2.1/24, ipv4_range: 192.0.2.10-192.0.2.20}\n", "systems[1].ovn_uplink_interface"),
            ("systems:\n- {name: a, ovn_underlay_ip: x}\n", "systems[0].ovn_underlay_ip"),
            ("systems: [{name: a}]\novn: {ipv4_gateway: 192.0.2.1/24}\n", "ovn.ipv4_range"),
            ("systems: [{name: a}]\novn: {ipv4_range: 192.0.2.10-192.0.2.20}\n", "ovn.ipv4_gateway"),
            ("systems: [{name: a}]\novn: {ipv4_gateway: 192.0.2.1/24, ipv4_range: 192.0.3.10-192.0.3.20}\n", "ovn.ipv4_range"),
            ("systems: [{name: a}]\novn: {ipv4_gateway: 192.0.2.1/24, ipv4_range: 192.0.2.1-192.0.2.20}\n", "ovn.ipv4_range"),
            ("systems: [{name: a}]\novn: {ipv6_gateway: 192.0.2.1/24}\n", "ovn.ipv6_gateway"),
            ("systems: [{name: a}]\novn: {dns_servers: 'x,y'}\n", "ovn.dns_servers"),
            ("systems: [{name: a, ovn_uplink_interface: eth1}]\n", "ovn.ipv4_gateway"),
            ("systems: [{name: a}]\nceph: {internal_network: 10.0.1.0/24}\n", "ceph.internal_network"),
            ("systems: [{name: a}]\nceph: {public_network: nope}\n", "ceph.public_network"),
            ("systems: [{name: a}]\nstorage: {local: [{find: 'colour == red'}]}\n", "storage.local[0].find"),
            ("systems: [{name: a}]\nstorage: {local: [{find: 'size > 1GiB', find_min: 3, find_max: 2}]}\n", "storage.local[0].find_max"),
            ("systems: [{name: a}]\nstorage: {ceph: [{find: 'size > 1GiB', find_min: 0}]}\n", "storage.ceph[0].find_min"),
        ];
        for (doc, path) in cases {
            let e = check(doc).unwrap_err();
            assert_eq!(&e.path, path, "{doc}: {e}");
        }
    }
}

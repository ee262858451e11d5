//! The records we advertise for one interface: service PTR, SRV, TXT, host A/AAAA and the DNS-SD
//! enumeration PTR, with the TTLs and cache-flush bits RFC 6762 §10 asks for.

use std::net::IpAddr;

use super::codec::{RData, Record, TYPE_A, TYPE_AAAA, TYPE_SRV, TYPE_TXT};
use super::name::{DnsName, NameError};
use super::txt::PeerTxt;

/// Our DNS-SD service type (DESIGN §4).
pub const SERVICE_TYPE: &str = "_microcloud._tcp.local";
/// DNS-SD service type enumeration name (RFC 6763 §9).
pub const SERVICES_ENUM: &str = "_services._dns-sd._udp.local";
/// TTL of records that carry a host name or address (RFC 6762 §10).
pub const TTL_HOST: u32 = 120;
/// TTL of the others (service PTR, TXT).
pub const TTL_OTHER: u32 = 4500;

pub fn service_type() -> DnsName {
    // Constant text that is known to be valid.
    DnsName::from_dotted(SERVICE_TYPE).unwrap_or_default()
}

pub fn services_enum() -> DnsName {
    DnsName::from_dotted(SERVICES_ENUM).unwrap_or_default()
}

/// What this host advertises. `host_name` is one label (`<host>.local.`); `instance` is the
/// DNS-SD instance label and may hold spaces, dots or UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostIdentity {
    pub host_name: String,
    pub instance: String,
    pub port: u16,
    pub txt: PeerTxt,
}

impl HostIdentity {
    pub fn host_fqdn(&self) -> Result<DnsName, NameError> {
        DnsName::from_labels([self.host_name.as_bytes(), b"local"])
    }

    pub fn instance_fqdn(&self) -> Result<DnsName, NameError> {
        service_type().prepend(self.instance.as_bytes())
    }

    /// Checks that both names fit the wire limits, so record building cannot fail later.
    pub fn validate(&self) -> Result<(), NameError> {
        self.host_fqdn()?;
        self.instance_fqdn()?;
        Ok(())
    }
}

/// One of our records and whether we own it alone (probed, cache-flush) or share it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRecord {
    pub record: Record,
    pub unique: bool,
}

/// Builds the record set for one interface. Only that interface's addresses are included
/// (RFC 6762 §6.2, §14). Fails only on names over the wire limits.
pub fn build(id: &HostIdentity, addrs: &[IpAddr]) -> Result<Vec<OwnRecord>, NameError> {
    let svc = service_type();
    let inst = id.instance_fqdn()?;
    let host = id.host_fqdn()?;
    let shared = |name: DnsName, data| OwnRecord {
        record: Record {
            name,
            cache_flush: false,
            ttl: TTL_OTHER,
            data,
        },
        unique: false,
    };
    let unique = |name: DnsName, ttl, data| OwnRecord {
        record: Record {
            name,
            cache_flush: true,
            ttl,
            data,
        },
        unique: true,
    };
    let mut out = vec![
        shared(svc.clone(), RData::Ptr(inst.clone())),
        shared(services_enum(), RData::Ptr(svc)),
        unique(
            inst.clone(),
            TTL_HOST,
            RData::Srv {
                priority: 0,
                weight: 0,
                port: id.port,
                target: host.clone(),
            },
        ),
        unique(inst, TTL_OTHER, RData::Txt(id.txt.encode())),
    ];
    let mut seen = Vec::new();
    for a in addrs {
        if seen.contains(a) {
            continue;
        }
        seen.push(*a);
        let data = match a {
            IpAddr::V4(v4) => RData::A(*v4),
            IpAddr::V6(v6) => RData::Aaaa(*v6),
        };
        out.push(unique(host.clone(), TTL_HOST, data));
    }
    Ok(out)
}

/// Records to add as additionals to an answer (RFC 6763 §12): a service PTR brings the SRV,
/// TXT and addresses; an SRV brings the addresses.
pub fn additionals_for(answer: &Record, own: &[OwnRecord]) -> Vec<Record> {
    let (inst, host) = match &answer.data {
        RData::Ptr(target) if answer.name == service_type() => {
            let host = own.iter().find_map(|r| match &r.record.data {
                RData::Srv { target: h, .. } if r.record.name == *target => Some(h.clone()),
                _ => None,
            });
            (Some(target.clone()), host)
        }
        RData::Srv { target, .. } => (None, Some(target.clone())),
        _ => return Vec::new(),
    };
    own.iter()
        .map(|r| &r.record)
        .filter(|r| {
            let rt = r.rtype();
            (inst.as_ref() == Some(&r.name) && (rt == TYPE_SRV || rt == TYPE_TXT))
                || (host.as_ref() == Some(&r.name) && (rt == TYPE_A || rt == TYPE_AAAA))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> HostIdentity {
        HostIdentity {
            host_name: "node1".into(),
            instance: "node1".into(),
            port: 9443,
            txt: PeerTxt::default(),
        }
    }

    #[test]
    fn record_set_ttls_and_flags() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fe80::1".parse().unwrap()];
        let set = build(&id(), &addrs).unwrap();
        assert_eq!(set.len(), 6);
        for r in &set {
            assert_eq!(r.unique, r.record.cache_flush);
            let expected = match r.record.rtype() {
                TYPE_SRV | TYPE_A | TYPE_AAAA => TTL_HOST,
                _ => TTL_OTHER,
            };
            assert_eq!(r.record.ttl, expected, "{:?}", r.record);
        }
        assert_eq!(set[1].record.name, services_enum());
        // The service PTR brings SRV, TXT and both addresses along.
        assert_eq!(additionals_for(&set[0].record, &set).len(), 4);
        assert_eq!(additionals_for(&set[2].record, &set).len(), 2);
    }

    #[test]
    fn oversized_names_are_refused() {
        let mut i = id();
        i.instance = "x".repeat(64);
        assert!(build(&i, &[]).is_err());
    }
}

//! Preseed validation (pure). Every error names the field path. This part decides the trust
//! session: which role this host plays and whom to expect.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{Preseed, PreseedError};
use crate::net::subnet::Prefix;

pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default port of the peer API, used when `initiator_address` carries none.
pub const DEFAULT_PEER_PORT: u16 = 9443;

/// This host's part in the session the preseed describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Open the session and wait for these hosts (by name).
    Initiator { joiners: Vec<String> },
    /// Join the initiator, found by name through discovery or at an address.
    Joiner {
        initiator: Option<String>,
        initiator_address: Option<SocketAddr>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPlan {
    pub role: Role,
    pub passphrase: Option<String>,
    pub lookup_timeout: Duration,
    pub session_timeout: Duration,
    pub lookup_subnet: Option<Prefix>,
}

fn parse_cidr(path: &str, s: &str) -> Result<Prefix, PreseedError> {
    let bad = || {
        PreseedError::new(
            path,
            format!("{s:?} is not a CIDR subnet (like 10.0.0.0/24)"),
        )
    };
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len: u8 = l.parse().map_err(|_| bad())?;
    if len > if addr.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok(Prefix::new(addr, len))
}

fn parse_addr(path: &str, s: &str) -> Result<SocketAddr, PreseedError> {
    s.parse::<SocketAddr>()
        .or_else(|_| {
            s.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, DEFAULT_PEER_PORT))
        })
        .map_err(|_| PreseedError::new(path, format!("{s:?} is not an IP address")))
}

impl Preseed {
    /// Check the session fields and decide this host's role. `own_name` is the name this host
    /// advertises; `own_addrs` its addresses (for `initiator_address` mode).
    pub fn session_plan(
        &self,
        own_name: &str,
        own_addrs: &[IpAddr],
    ) -> Result<SessionPlan, PreseedError> {
        if self.systems.is_empty() {
            return Err(PreseedError::new("systems", "no systems listed"));
        }
        let mut names = BTreeSet::new();
        for (i, s) in self.systems.iter().enumerate() {
            if s.name.trim().is_empty() {
                return Err(PreseedError::new(format!("systems[{i}].name"), "missing"));
            }
            if !names.insert(s.name.as_str()) {
                return Err(PreseedError::new(
                    format!("systems[{i}].name"),
                    format!("{:?} is listed twice", s.name),
                ));
            }
        }
        let unicast = match (&self.initiator, &self.initiator_address) {
            (Some(_), Some(_)) => {
                return Err(PreseedError::new(
                    "initiator_address",
                    "give either initiator or initiator_address, not both",
                ))
            }
            (None, None) => {
                return Err(PreseedError::new(
                    "initiator",
                    "missing: name the initiator (or give initiator_address)",
                ))
            }
            (Some(_), None) => false,
            (None, Some(_)) => true,
        };
        let lookup_subnet = match (&self.lookup_subnet, unicast) {
            (Some(s), false) => Some(parse_cidr("lookup_subnet", s)?),
            (None, false) => {
                return Err(PreseedError::new(
                    "lookup_subnet",
                    "required with initiator (multicast discovery)",
                ))
            }
            (Some(_), true) => {
                return Err(PreseedError::new(
                    "lookup_subnet",
                    "cannot be used with initiator_address",
                ))
            }
            (None, true) => None,
        };
        let initiator_address = match &self.initiator_address {
            Some(a) => Some(parse_addr("initiator_address", a)?),
            None => None,
        };
        let mut addrs = Vec::new();
        for (i, s) in self.systems.iter().enumerate() {
            let path = format!("systems[{i}].address");
            match (&s.address, unicast) {
                (Some(_), false) => {
                    return Err(PreseedError::new(path, "only used with initiator_address"))
                }
                (None, true) => {
                    return Err(PreseedError::new(path, "required with initiator_address"))
                }
                (Some(a), true) => addrs.push((i, parse_addr(&path, a)?.ip())),
                (None, false) => {}
            }
        }
        let passphrase = self
            .session_passphrase
            .clone()
            .filter(|p| !p.trim().is_empty());
        if self.systems.len() > 1 && passphrase.is_none() {
            return Err(PreseedError::new(
                "session_passphrase",
                "required when more than one system is listed",
            ));
        }
        let secs = |path: &str, v: Option<u64>, d: Duration| match v {
            Some(0) => Err(PreseedError::new(path, "must be at least 1 second")),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(d),
        };
        let lookup_timeout = secs(
            "lookup_timeout",
            self.lookup_timeout,
            DEFAULT_LOOKUP_TIMEOUT,
        )?;
        let session_timeout = secs(
            "session_timeout",
            self.session_timeout,
            DEFAULT_SESSION_TIMEOUT,
        )?;
        if session_timeout > DEFAULT_SESSION_TIMEOUT {
            return Err(PreseedError::new("session_timeout", "at most 3600 seconds"));
        }

        // Which listed system is the initiator, and which one are we?
        let initiator_idx = match (&self.initiator, initiator_address) {
            (Some(n), _) => self.systems.iter().position(|s| &s.name == n),
            (None, Some(a)) => addrs.iter().find(|(_, ip)| *ip == a.ip()).map(|(i, _)| *i),
            _ => None,
        };
        let me = self
            .systems
            .iter()
            .position(|s| s.name == own_name)
            .or_else(|| {
                addrs
                    .iter()
                    .find(|(_, ip)| own_addrs.contains(ip))
                    .map(|(i, _)| *i)
            });
        let Some(me) = me else {
            return Err(PreseedError::new(
                "systems",
                format!("this host ({own_name}) is not listed"),
            ));
        };
        let i_am_initiator = Some(me) == initiator_idx
            || initiator_address.is_some_and(|a| own_addrs.contains(&a.ip()));
        let role = if i_am_initiator {
            Role::Initiator {
                joiners: self
                    .systems
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != me)
                    .map(|(_, s)| s.name.clone())
                    .collect(),
            }
        } else {
            if self.initiator.is_some() && initiator_idx.is_none() {
                return Err(PreseedError::new(
                    "initiator",
                    format!(
                        "{:?} is not among systems",
                        self.initiator.as_deref().unwrap_or("")
                    ),
                ));
            }
            Role::Joiner {
                initiator: self.initiator.clone(),
                initiator_address,
            }
        };
        Ok(SessionPlan {
            role,
            passphrase,
            lookup_timeout,
            session_timeout,
            lookup_subnet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preseed::parse;

    const OK: &str = "initiator: micro01\nlookup_subnet: 10.0.0.0/24\nsession_passphrase: a b c d\nsystems:\n- name: micro01\n- name: micro02\n- name: micro03\n";

    fn err(doc: &str) -> PreseedError {
        match parse(doc) {
            Err(e) => e,
            Ok(p) => p.session_plan("micro01", &[]).unwrap_err(),
        }
    }

    #[test]
    fn roles_from_a_multicast_preseed() {
        let p = parse(OK).unwrap();
        let plan = p.session_plan("micro01", &[]).unwrap();
        assert_eq!(
            plan.role,
            Role::Initiator {
                joiners: vec!["micro02".into(), "micro03".into()]
            }
        );
        assert_eq!(plan.lookup_timeout, DEFAULT_LOOKUP_TIMEOUT);
        assert_eq!(plan.passphrase.as_deref(), Some("a b c d"));
        let plan = p.session_plan("micro02", &[]).unwrap();
        assert_eq!(
            plan.role,
            Role::Joiner {
                initiator: Some("micro01".into()),
                initiator_address: None
            }
        );
    }

    #[test]
    fn roles_from_a_unicast_preseed() {
        let doc = "initiator_address: 10.0.0.1\nsession_passphrase: x y z w\nsystems:\n- {name: a, address: 10.0.0.1}\n- {name: b, address: 10.0.0.2}\n";
        let p = parse(doc).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(matches!(
            p.session_plan("whatever", &[ip("10.0.0.1")]).unwrap().role,
            Role::Initiator { .. }
        ));
        let plan = p.session_plan("b", &[ip("10.0.0.2")]).unwrap();
        assert_eq!(
            plan.role,
            Role::Joiner {
                initiator: None,
                initiator_address: Some("10.0.0.1:9443".parse().unwrap())
            }
        );
    }

    #[test]
    fn unknown_keys_and_bad_types_name_their_path() {
        let e = err("initiator: a\nsystems:\n- name: a\n  storag: {}\n");
        assert_eq!(e.path, "systems[0].storag");
        assert!(e.message.contains("storag"), "{e}");
        let e = err("lookup_timeout: soon\n");
        assert_eq!(e.path, "lookup_timeout");
        let e = err("sesion_passphrase: x\n");
        assert!(e.message.contains("sesion_passphrase"), "{e}");
    }

    #[test]
    fn validation_matrix() {
        let cases: &[(&str, &str)] = &[
            ("initiator: a\nlookup_subnet: 10.0.0.0/24\n", "systems"),
            ("lookup_subnet: 10.0.0.0/24\nsystems: [{name: micro01}]\n", "initiator"),
            ("initiator: micro01\ninitiator_address: 10.0.0.1\nsystems: [{name: micro01}]\n", "initiator_address"),
            ("initiator: micro01\nsystems: [{name: micro01}]\n", "lookup_subnet"),
            ("initiator: micro01\nlookup_subnet: 10.0.0.0/33\nsystems: [{name: micro01}]\n", "lookup_subnet"),
            ("initiator_address: 10.0.0.1\nlookup_subnet: 10.0.0.0/24\nsystems: [{name: micro01, address: 10.0.0.1}]\n", "lookup_subnet"),
            ("initiator: micro01\nlookup_subnet: 10.0.0.0/24\nsystems: [{name: micro01}, {name: micro02}]\n", "session_passphrase"),
            ("initiator: micro01\nlookup_subnet: 10.0.0.0/24\nsystems: [{name: micro01}, {name: micro01}]\nsession_passphrase: p\n", "systems[1].name"),
            ("initiator: micro01\nlookup_subnet: 10.0.0.0/24\nsystems: [{name: micro01}, {name: ''}]\nsession_passphrase: p\n", "systems[1].name"),
            ("initiator: micro01\nlookup_subnet: 10.0.0.0/24\nsystems: [{name: micro01, address: 10.0.0.1}]\n", "systems[0].address"),
            ("initiator_address: 10.0.0.1\nsystems: [{name: micro01}]\n", "systems[0].address"),
            ("initiator_address: nowhere\nsystems: [{name: micro01, address: 10.0.0.1}]\n", "initiator_address"),
            ("initiator: micro01\nlookup_subnet: 10.0.0.0/24\nlookup_timeout: 0\nsystems: [{name: micro01}]\n", "lookup_timeout"),
            ("initiator: micro01\nlookup_subnet: 10.0.0.0/24\nsession_timeout: 7200\nsystems: [{name: micro01}]\n", "session_timeout"),
            ("initiator: micro09\nlookup_subnet: 10.0.0.0/24\nsystems: [{name: micro02}]\n", "systems"),
        ];
        for (doc, path) in cases {
            let e = err(doc);
            assert_eq!(&e.path, path, "{doc}: {e}");
        }
    }

    #[test]
    fn full_microcloud_example_parses() {
        let doc = r#"
initiator: micro01
lookup_subnet: 10.0.0.0/24
session_passphrase: correct horse battery staple
systems:
- name: micro01
  ovn_uplink_interface: eth1
- name: micro02
  ovn_uplink_interface: eth1
  storage:
    local: {path: /dev/disk/by-id/nvme-A, wipe: true}
    ceph:
      - {path: /dev/disk/by-id/nvme-B, wipe: true, encrypt: true}
ovn:
  ipv4_gateway: 192.0.2.1/24
  ipv4_range: 192.0.2.100-192.0.2.254
  dns_servers: 192.0.2.1
ceph:
  cephfs: true
  internal_network: 10.0.1.0/24
storage:
  local:
    - {find: "device_id == *disk1", find_min: 2, find_max: 2, wipe: true}
  ceph:
    - {find: "size > 10GiB && type == nvme", find_min: 2, wipe: true}
"#;
        let p = parse(doc).unwrap();
        assert_eq!(p.systems.len(), 2);
        assert!(p.session_plan("micro02", &[]).is_ok());
    }
}

//! Subnet maths: which addresses lie inside a prefix configured on an interface (RFC 6762 §11).

use std::net::{IpAddr, Ipv6Addr};

/// An address with its prefix length, as configured on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn new(addr: IpAddr, len: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Prefix {
            addr,
            len: len.min(max),
        }
    }

    /// Whether `other` lies inside this prefix (same family only).
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.addr, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// fe80::/10: on-link on whichever interface it arrives (with that interface as its scope).
pub fn is_ipv6_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// Whether `peer` is on the link described by `prefixes` (the interface's configured addresses).
/// An IPv6 link-local address is on-link by definition; the caller has already tied it to the
/// interface it arrived on.
pub fn on_link(prefixes: &[Prefix], peer: IpAddr) -> bool {
    if let IpAddr::V6(v6) = peer {
        if is_ipv6_link_local(&v6) {
            return true;
        }
    }
    prefixes.iter().any(|p| p.contains(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix::new(a.parse().unwrap(), l.parse().unwrap())
    }

    #[test]
    fn v4_containment() {
        assert!(p("10.0.0.5/24").contains("10.0.0.200".parse().unwrap()));
        assert!(!p("10.0.0.5/24").contains("10.0.1.1".parse().unwrap()));
        assert!(p("10.0.0.5/0").contains("192.168.1.1".parse().unwrap()));
        assert!(p("10.0.0.5/32").contains("10.0.0.5".parse().unwrap()));
        assert!(!p("10.0.0.5/32").contains("10.0.0.6".parse().unwrap()));
    }

    #[test]
    fn v6_containment_and_families_do_not_mix() {
        assert!(p("fd42::1/64").contains("fd42::ffff".parse().unwrap()));
        assert!(!p("fd42::1/64").contains("fd43::1".parse().unwrap()));
        assert!(!p("10.0.0.1/8").contains("fd42::1".parse().unwrap()));
        assert!(p("::/0").contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn link_local_is_always_on_link() {
        assert!(on_link(&[], "fe80::1".parse().unwrap()));
        assert!(!on_link(&[], "fd42::1".parse().unwrap()));
        assert!(on_link(&[p("192.0.2.1/24")], "192.0.2.9".parse().unwrap()));
    }
}

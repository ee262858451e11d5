//! The peer table (pure): every peer the browsers resolved, merged across interfaces and
//! families by host id, with the addresses each interface saw and whether it is in scope.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use super::browser::Browser;
use super::scope::{peer_in_scope, IfaceScope};
use crate::api::{Peer, PeerAddress};
use crate::net::subnet::is_ipv6_link_local;

/// Merge what each (interface, browser) resolved into one list, sorted by name. Our own
/// advertisement (same host id) is left out.
pub fn peer_list(
    now: Instant,
    own_host_id: &str,
    browsers: &[(&IfaceScope, &Browser)],
) -> Vec<Peer> {
    let mut by_key: BTreeMap<String, Peer> = BTreeMap::new();
    for (scope, browser) in browsers {
        for p in browser.peers(now) {
            let host_id = p.txt.host_id.clone();
            if host_id.as_deref() == Some(own_host_id) {
                continue;
            }
            let key = host_id
                .clone()
                .unwrap_or_else(|| format!("name:{}", p.instance));
            let entry = by_key.entry(key).or_insert_with(|| Peer {
                name: p.instance.clone(),
                host_id,
                version: p.txt.version.clone(),
                fingerprint: p.txt.fingerprint.clone(),
                state: p.txt.state.as_ref().map(ToString::to_string),
                services: p.txt.services.clone(),
                port: p.port,
                addresses: Vec::new(),
                in_scope: false,
            });
            entry.in_scope |= peer_in_scope(scope, &p.addresses);
            for a in &p.addresses {
                let address = match a {
                    // A link-local address means nothing without the interface it was seen on.
                    IpAddr::V6(v6) if is_ipv6_link_local(v6) => format!("{v6}%{}", scope.name),
                    other => other.to_string(),
                };
                let pa = PeerAddress {
                    address,
                    interface: scope.name.clone(),
                };
                if !entry.addresses.contains(&pa) {
                    entry.addresses.push(pa);
                }
            }
        }
    }
    let mut v: Vec<Peer> = by_key.into_values().collect();
    for p in &mut v {
        p.addresses.sort();
    }
    v.sort_by(|a, b| a.name.cmp(&b.name).then(a.host_id.cmp(&b.host_id)));
    v
}

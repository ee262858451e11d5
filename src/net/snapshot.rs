//! One consistent rtnetlink dump of links, addresses and default routes for this network
//! namespace, held as owned facts.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::{Handle, RouteMessageBuilder};

use super::link::{
    parse_address, parse_default_route, parse_link, AddrFacts, DefaultRoute, LinkFacts,
};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("opening a netlink route socket: {0}")]
    Connect(#[source] std::io::Error),
    #[error("dumping {what} over netlink: {source}")]
    Dump {
        what: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
}

/// Collect one netlink dump, naming it in the error.
async fn dump<T>(
    what: &'static str,
    stream: impl futures_util::Stream<Item = Result<T, rtnetlink::Error>>,
) -> Result<Vec<T>, SnapshotError> {
    stream
        .try_collect()
        .await
        .map_err(|source| SnapshotError::Dump { what, source })
}

/// Links by ifindex, every address, and the default routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub links: BTreeMap<u32, LinkFacts>,
    pub addresses: Vec<AddrFacts>,
    pub default_routes: Vec<DefaultRoute>,
}

impl Snapshot {
    /// Dump everything over a fresh connection whose driver task lives only as long as the dump.
    pub async fn take() -> Result<Snapshot, SnapshotError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(SnapshotError::Connect)?;
        let driver = tokio::spawn(conn);
        let result = Self::take_with(&handle).await;
        driver.abort();
        result
    }

    pub async fn take_with(handle: &Handle) -> Result<Snapshot, SnapshotError> {
        // One socket can run only one dump at a time (EBUSY otherwise): run them in turn.
        let links = dump("links", handle.link().get().execute()).await?;
        let addrs = dump("addresses", handle.address().get().execute()).await?;
        let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes4 = dump("IPv4 routes", handle.route().get(v4).execute()).await;
        let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
        let routes6 = dump("IPv6 routes", handle.route().get(v6).execute()).await;
        let mut snap = Snapshot {
            links: links
                .iter()
                .filter_map(parse_link)
                .map(|l| (l.index, l))
                .collect(),
            addresses: addrs.iter().filter_map(parse_address).collect(),
            default_routes: Vec::new(),
        };
        // A host without IPv6 (or with routes hidden) still has an inventory: route dumps that
        // fail only lose the default-route fact.
        for routes in [routes4, routes6].into_iter().flatten() {
            snap.default_routes
                .extend(routes.iter().flat_map(parse_default_route));
        }
        Ok(snap)
    }

    pub fn name_of(&self, index: u32) -> Option<&str> {
        self.links.get(&index).map(|l| l.name.as_str())
    }

    /// Links enslaved to `index`, by name.
    pub fn ports_of(&self, index: u32) -> Vec<String> {
        self.links
            .values()
            .filter(|l| l.controller_index == Some(index))
            .map(|l| l.name.clone())
            .collect()
    }

    pub fn addresses_of(&self, index: u32) -> impl Iterator<Item = &AddrFacts> {
        self.addresses.iter().filter(move |a| a.index == index)
    }
}

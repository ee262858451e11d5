//! Keeps a netlink snapshot current from link, address and route events (no polling): every
//! burst of events, debounced, triggers one fresh dump, published on a `watch` channel.
//!
//! Re-dumping instead of applying each event keeps the state exact even when the kernel drops
//! events on a socket overrun; a dump of a host's links and addresses costs well under 1 ms.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rtnetlink::MulticastGroup;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::snapshot::{Snapshot, SnapshotError};

/// The default quiet period after the last event before re-dumping: long enough to fold the
/// burst of messages one `ip` command causes, short enough that a new address is announced
/// promptly.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(150);

/// A running watcher: the latest snapshot, and a task that ends on cancellation or error.
pub struct NetWatch {
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    pub task: tokio::task::JoinHandle<Result<(), SnapshotError>>,
}

/// Subscribe to link/address/route events, take the first snapshot, and keep it current.
pub async fn start(
    debounce: Duration,
    cancel: CancellationToken,
) -> Result<NetWatch, SnapshotError> {
    let (conn, handle, mut events) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
    ])
    .map_err(SnapshotError::Connect)?;
    let driver = tokio::spawn(conn);
    // Subscribed before the first dump, so nothing that happens after it is missed.
    let first = match Snapshot::take_with(&handle).await {
        Ok(s) => s,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    let (tx, rx) = watch::channel(Arc::new(first));
    let task = tokio::spawn(async move {
        let result = loop {
            tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                ev = events.next() => {
                    if ev.is_none() {
                        // The connection died; the caller treats this as fatal.
                        break Err(SnapshotError::Connect(std::io::Error::other(
                            "netlink event socket closed",
                        )));
                    }
                }
            }
            // Fold the rest of the burst.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(debounce) => break,
                    ev = events.next() => if ev.is_none() { break },
                }
            }
            match Snapshot::take_with(&handle).await {
                Ok(s) => {
                    let changed = **tx.borrow() != s;
                    if changed {
                        tracing::debug!(
                            links = s.links.len(),
                            addresses = s.addresses.len(),
                            "network changed"
                        );
                        tx.send_replace(Arc::new(s));
                    }
                }
                Err(e) => break Err(e),
            }
        };
        driver.abort();
        result
    });
    Ok(NetWatch {
        snapshots: rx,
        task,
    })
}

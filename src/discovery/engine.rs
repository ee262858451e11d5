//! The discovery driver (I/O edge): owns the two sockets and one responder + browser per
//! (interface, family), reconciles them against the netlink snapshot, feeds them packets and
//! time, sends what they return, and publishes the peer table. It sleeps until the earliest
//! state-machine deadline or the next packet; nothing wakes it periodically.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::browser::{Browser, BrowserConfig};
use super::codec;
use super::io::{Dest as MachineDest, Incoming, Outgoing};
use super::peers::peer_list;
use super::records::HostIdentity;
use super::responder::{Responder, ResponderEvent};
use super::scope::{self, IfaceScope, InterfacePolicy};
use super::socket::{Dest, McastSocket, Received, MAX_PACKET};
use super::txt::{PeerState, PeerTxt, PROTOCOL_VERSION};
use crate::api::Peer;
use crate::daemon::trust::Advertised;
use crate::inventory::model::Family;
use crate::net::snapshot::Snapshot;

/// What this host advertises and where discovery may run.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub name: String,
    pub host_id: String,
    pub version: String,
    pub port: u16,
    pub services: Vec<String>,
    pub policy: InterfacePolicy,
    /// Trust state advertised in TXT (`st`, `fp`); kept current from the trust service.
    pub state: PeerState,
    pub fingerprint: Option<String>,
}

impl EngineConfig {
    fn apply(&mut self, adv: &Advertised) {
        self.state = adv.state.clone();
        self.fingerprint = Some(adv.fingerprint.clone());
    }

    fn identity(&self) -> HostIdentity {
        HostIdentity {
            host_name: self.name.clone(),
            instance: self.name.clone(),
            port: self.port,
            txt: PeerTxt {
                protocol: Some(PROTOCOL_VERSION.to_string()),
                version: Some(self.version.clone()),
                host_id: Some(self.host_id.clone()),
                fingerprint: self.fingerprint.clone(),
                state: Some(self.state.clone()),
                services: self.services.clone(),
                unknown: Vec::new(),
            },
        }
    }
}

/// The state machines of one (interface, family).
struct Link {
    responder: Option<Responder>,
    browser: Browser,
}

struct Iface {
    scope: IfaceScope,
    links: BTreeMap<FamilyKey, Link>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FamilyKey {
    V4,
    V6,
}

impl FamilyKey {
    fn family(self) -> Family {
        match self {
            FamilyKey::V4 => Family::Inet,
            FamilyKey::V6 => Family::Inet6,
        }
    }
}

/// Counters for what was dropped, for diagnosis.
#[derive(Debug, Default)]
struct Drops {
    malformed: u64,
    unknown_interface: u64,
}

struct Engine {
    cfg: EngineConfig,
    v4: Option<Arc<McastSocket>>,
    v6: Option<Arc<McastSocket>>,
    ifaces: BTreeMap<u32, Iface>,
    drops: Drops,
    rng: StdRng,
    /// (interface, family) pairs whose failure was already logged: logged once, not per packet.
    failed: std::collections::BTreeSet<(String, FamilyKey)>,
}

fn open(family: Family) -> Option<Arc<McastSocket>> {
    match McastSocket::open(family) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            tracing::warn!(
                ?family,
                "mDNS socket unavailable, this family is skipped: {e}"
            );
            None
        }
    }
}

/// Run discovery until cancelled; fails only if neither family can open a socket.
pub async fn run(
    cfg: EngineConfig,
    mut snaps: watch::Receiver<Arc<Snapshot>>,
    mut advertised: watch::Receiver<Advertised>,
    peers_tx: watch::Sender<Vec<Peer>>,
    mut refresh: mpsc::Receiver<()>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let v4 = open(Family::Inet);
    let v6 = open(Family::Inet6);
    if v4.is_none() && v6.is_none() {
        anyhow::bail!("neither the IPv4 nor the IPv6 mDNS socket could be opened on port 5353");
    }
    let mut cfg = cfg;
    cfg.apply(&advertised.borrow_and_update());
    let mut e = Engine {
        cfg,
        v4,
        v6,
        ifaces: BTreeMap::new(),
        drops: Drops::default(),
        rng: StdRng::from_os_rng(),
        failed: Default::default(),
    };
    let snap = snaps.borrow_and_update().clone();
    e.reconcile(Instant::now(), &snap).await;
    loop {
        e.flush(Instant::now()).await;
        let peers = peer_list(Instant::now(), &e.cfg.host_id, &e.browsers());
        peers_tx.send_if_modified(|cur| {
            if *cur != peers {
                *cur = peers;
                true
            } else {
                false
            }
        });
        let deadline = e.next_deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = snaps.changed() => {
                if r.is_err() { break; }
                let snap = snaps.borrow_and_update().clone();
                e.reconcile(Instant::now(), &snap).await;
            }
            r = advertised.changed() => {
                if r.is_err() { break; }
                let adv = advertised.borrow_and_update().clone();
                e.cfg.apply(&adv);
                let (now, txt) = (Instant::now(), e.cfg.identity().txt);
                for i in e.ifaces.values_mut() {
                    for l in i.links.values_mut() {
                        if let Some(r) = l.responder.as_mut() {
                            r.set_txt(now, txt.clone());
                        }
                    }
                }
            }
            Some(()) = refresh.recv() => {
                // A fresh browse: forget what was cached and ask right away.
                let now = Instant::now();
                let shared = [FamilyKey::V4, FamilyKey::V6]
                    .map(|f| e.socket(f).is_some_and(|s| s.other_stack()));
                for i in e.ifaces.values_mut() {
                    for (fam, l) in i.links.iter_mut() {
                        let cfg = browser_config(Some(Duration::ZERO), shared[*fam as usize]);
                        l.browser = Browser::new(now, cfg, StdRng::from_rng(&mut e.rng));
                    }
                }
            }
            r = recv(e.v4.clone()) => e.dispatch(FamilyKey::V4, r),
            r = recv(e.v6.clone()) => e.dispatch(FamilyKey::V6, r),
            _ = sleep_until(deadline) => {}
        }
    }
    e.goodbye_all(Instant::now()).await;
    tracing::info!(
        malformed = e.drops.malformed,
        unknown_interface = e.drops.unknown_interface,
        "discovery stopped"
    );
    Ok(())
}

/// The first query asks for unicast replies (RFC 6762 §5.4), which responders send at once
/// instead of waiting out the one-multicast-per-second limit; not when another stack shares port
/// 5353 here, because a unicast reply would reach only one of the two sockets
/// (reference/mdns.md §3.2).
fn browser_config(first_query_delay: Option<Duration>, other_stack: bool) -> BrowserConfig {
    BrowserConfig {
        first_query_delay,
        qu_first: !other_stack,
        ..BrowserConfig::default()
    }
}

/// One datagram with its own buffer, so the future borrows nothing from the engine.
async fn recv(sock: Option<Arc<McastSocket>>) -> std::io::Result<(Received, Vec<u8>)> {
    match sock {
        Some(s) => {
            let mut buf = vec![0u8; MAX_PACKET];
            let rx = s.recv(&mut buf).await?;
            buf.truncate(rx.len);
            Ok((rx, buf))
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Engine {
    fn socket(&self, fam: FamilyKey) -> Option<Arc<McastSocket>> {
        match fam {
            FamilyKey::V4 => self.v4.clone(),
            FamilyKey::V6 => self.v6.clone(),
        }
    }

    fn browsers(&self) -> Vec<(&IfaceScope, &Browser)> {
        self.ifaces
            .values()
            .flat_map(|i| i.links.values().map(move |l| (&i.scope, &l.browser)))
            .collect()
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.ifaces
            .values()
            .flat_map(|i| i.links.values())
            .flat_map(|l| {
                [
                    l.responder.as_ref().and_then(Responder::next_deadline),
                    l.browser.next_deadline(),
                ]
            })
            .flatten()
            .min()
    }

    /// Bring the per-interface machines in line with the netlink snapshot.
    async fn reconcile(&mut self, now: Instant, snap: &Snapshot) {
        let decision = scope::decide(snap, &self.cfg.policy);
        let old: BTreeMap<u32, IfaceScope> = self
            .ifaces
            .iter()
            .map(|(i, s)| (*i, s.scope.clone()))
            .collect();
        let diff = scope::reconcile(&old, &decision.used);
        for idx in &diff.removed {
            if let Some(mut iface) = self.ifaces.remove(idx) {
                tracing::info!(interface = %iface.scope.name, "leaving interface");
                for (fam, link) in iface.links.iter_mut() {
                    if let Some(r) = link.responder.as_mut() {
                        let out = r.shutdown(now);
                        // The interface may be gone already; a failed goodbye is expected then.
                        self.send_all(*idx, &iface.scope.name, *fam, out, true)
                            .await;
                    }
                    if let Some(s) = self.socket(*fam) {
                        s.leave(*idx);
                    }
                }
            }
        }
        for idx in diff.added.iter().chain(&diff.changed) {
            let scope = decision.used[idx].clone();
            self.set_up(now, scope);
        }
    }

    /// Create or update the machines of one interface for the families it has addresses in.
    fn set_up(&mut self, now: Instant, scope: IfaceScope) {
        let idx = scope.index;
        let all_addrs: Vec<IpAddr> = scope
            .v4_addrs()
            .into_iter()
            .map(IpAddr::V4)
            .chain(scope.v6_addrs().into_iter().map(IpAddr::V6))
            .collect();
        let span = tracing::info_span!("iface", name = %scope.name, index = idx);
        let _g = span.enter();
        let want = [
            (FamilyKey::V4, !scope.v4.is_empty()),
            (FamilyKey::V6, !scope.v6.is_empty()),
        ];
        let identity = self.cfg.identity();
        let mut iface = self.ifaces.remove(&idx).unwrap_or_else(|| Iface {
            scope: scope.clone(),
            links: BTreeMap::new(),
        });
        iface.scope = scope.clone();
        for (fam, wanted) in want {
            if !wanted {
                if iface.links.remove(&fam).is_some() {
                    if let Some(s) = self.socket(fam) {
                        s.leave(idx);
                    }
                }
                continue;
            }
            if let Some(link) = iface.links.get_mut(&fam) {
                if let Some(r) = link.responder.as_mut() {
                    r.set_addresses(now, all_addrs.clone());
                }
                continue;
            }
            let Some(sock) = self.socket(fam) else {
                continue;
            };
            if let Err(e) = sock.join(idx) {
                if self.failed.insert((scope.name.clone(), fam)) {
                    tracing::warn!(family = ?fam, "cannot join the mDNS group on {}: {e}", scope.name);
                }
                continue;
            }
            tracing::info!(family = ?fam, addresses = ?all_addrs, "discovery running");
            let responder = match Responder::new(
                now,
                identity.clone(),
                all_addrs.clone(),
                StdRng::from_rng(&mut self.rng),
            ) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!("cannot advertise as {:?}: {e}", identity.instance);
                    None
                }
            };
            let cfg = browser_config(None, sock.other_stack());
            let browser = Browser::new(now, cfg, StdRng::from_rng(&mut self.rng));
            iface.links.insert(fam, Link { responder, browser });
        }
        if !iface.links.is_empty() {
            self.ifaces.insert(idx, iface);
        }
    }

    /// Parse one datagram and hand it to the machines of its interface and family.
    fn dispatch(&mut self, fam: FamilyKey, r: std::io::Result<(Received, Vec<u8>)>) {
        let (rx, buf) = match r {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(family = ?fam, "mDNS receive failed: {e}");
                return;
            }
        };
        // Ours if it comes from any of our addresses: two of our interfaces on one link must
        // not take each other's records for a conflict.
        let src_ip = rx.src.ip();
        let from_self = rx.src.port() == super::socket::MDNS_PORT
            && self.ifaces.values().any(|i| i.scope.is_own(src_ip));
        let Some(iface) = self.ifaces.get_mut(&rx.ifindex) else {
            self.drops.unknown_interface += 1;
            return;
        };
        let Some(link) = iface.links.get_mut(&fam) else {
            self.drops.unknown_interface += 1;
            return;
        };
        let msg = match codec::parse(&buf) {
            Ok(m) => m,
            Err(e) => {
                self.drops.malformed += 1;
                link.browser.note_parse_error(&e);
                tracing::debug!(interface = %iface.scope.name, src = %rx.src, "dropped malformed packet: {e}");
                return;
            }
        };
        let pkt = Incoming {
            msg,
            src: rx.src,
            dst_is_multicast: rx.to_group,
            src_on_link: iface.scope.on_link(src_ip),
            from_self,
        };
        let now = Instant::now();
        if let Some(r) = link.responder.as_mut() {
            r.handle_packet(now, &pkt);
        }
        link.browser.handle_packet(now, &pkt);
    }

    /// Send whatever the machines have due now.
    async fn flush(&mut self, now: Instant) {
        let mut work = Vec::new();
        for (idx, iface) in self.ifaces.iter_mut() {
            for (fam, link) in iface.links.iter_mut() {
                let mut out = Vec::new();
                if let Some(r) = link.responder.as_mut() {
                    out.extend(r.poll(now));
                    for ev in r.take_events() {
                        match ev {
                            ResponderEvent::Renamed {
                                host_name,
                                instance,
                            } => tracing::warn!(
                                interface = %iface.scope.name,
                                "name conflict on the LAN: now advertising as {instance} ({host_name}.local)"
                            ),
                        }
                    }
                }
                out.extend(link.browser.poll(now));
                if !out.is_empty() {
                    work.push((*idx, iface.scope.name.clone(), *fam, out));
                }
            }
        }
        for (idx, name, fam, out) in work {
            self.send_all(idx, &name, fam, out, false).await;
        }
    }

    async fn send_all(
        &mut self,
        idx: u32,
        name: &str,
        fam: FamilyKey,
        out: Vec<Outgoing>,
        quiet: bool,
    ) {
        for o in out {
            let bytes = match codec::encode(&o.msg) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(interface = name, "cannot encode an mDNS packet: {e}");
                    continue;
                }
            };
            let dest = match o.dest {
                MachineDest::Multicast => Dest::Group,
                MachineDest::Unicast(a) => Dest::Unicast(a),
            };
            let Some(sock) = self.socket(fam) else {
                continue;
            };
            if let Err(e) = sock.send(&bytes, idx, dest).await {
                if !quiet && self.failed.insert((name.to_string(), fam)) {
                    tracing::warn!(interface = name, family = ?fam.family(), "mDNS send failed: {e}");
                }
            }
        }
    }

    /// Goodbye (TTL 0) for everything we advertised, on every interface.
    async fn goodbye_all(&mut self, now: Instant) {
        let mut work = Vec::new();
        for (idx, iface) in self.ifaces.iter_mut() {
            for (fam, link) in iface.links.iter_mut() {
                if let Some(r) = link.responder.as_mut() {
                    work.push((*idx, iface.scope.name.clone(), *fam, r.shutdown(now)));
                }
            }
        }
        for (idx, name, fam, out) in work {
            let span = tracing::debug_span!("goodbye", interface = %name);
            self.send_all(idx, &name, fam, out, true)
                .instrument(span)
                .await;
        }
    }
}

//! The mDNS browser for one (interface, address family): continuous PTR queries for our service
//! with the RFC 6762 §5.2 back-off and known answers, a cache honouring TTLs, goodbyes and
//! cache-flush, queries for missing SRV/TXT/addresses, and the resolved peers with events.
//!
//! Pure like the responder: `handle_packet` and `poll` take `now`, `next_deadline` says when to
//! call `poll` again. Everything refused is counted, never fatal.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use super::codec::{self, Message, ParseError, Question, RData, Record};
use super::codec::{TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV, TYPE_TXT};
use super::io::{Dest, Incoming, Outgoing, MDNS_PORT};
use super::name::DnsName;
use super::records::service_type;
use super::txt::PeerTxt;

mod cache;
use cache::{Cache, Inserted};

/// §5.2: the second query comes ≥ 1 s after the first, then intervals double up to an hour.
const FIRST_INTERVAL: Duration = Duration::from_secs(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Queries for a missing SRV/TXT/address: at once, then after 1, 2 and 4 s, then give up
/// until the piece is missing anew.
const MISSING_TRIES: u8 = 4;
/// Bounds memory under a flood of answers for names we asked about.
const CACHE_CAP: usize = 4096;

#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// Delay before the first query; `None` = random 20–120 ms (§5.2). The CLI's one-shot
    /// discovery may choose zero.
    pub first_query_delay: Option<Duration>,
    /// Ask for unicast replies in the first query (§5.4). Off when another mDNS stack may hold
    /// port 5353 beside us and steal the unicast reply.
    pub qu_first: bool,
    /// Payload budget per packet.
    pub budget: usize,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        Self {
            first_query_delay: None,
            qu_first: true,
            budget: codec::BUDGET_V6,
        }
    }
}

/// A peer with everything needed to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPeer {
    /// The instance label (UTF-8, lossy).
    pub instance: String,
    pub instance_name: DnsName,
    /// SRV target.
    pub host: DnsName,
    pub port: u16,
    pub txt: PeerTxt,
    pub addresses: Vec<IpAddr>,
    /// When the newest of its records arrived.
    pub last_seen: Instant,
}

impl ResolvedPeer {
    fn same_content(&self, other: &ResolvedPeer) -> bool {
        (&self.host, self.port, &self.txt, &self.addresses)
            == (&other.host, other.port, &other.txt, &other.addresses)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserEvent {
    Added(ResolvedPeer),
    Updated(ResolvedPeer),
    Removed { instance_name: DnsName },
}

/// Everything dropped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserCounters {
    pub malformed: u64,
    pub bad_opcode_rcode: u64,
    pub bad_source_port: u64,
    pub off_link_unicast: u64,
    pub from_self: u64,
    pub cache_full: u64,
    pub queries_sent: u64,
}

pub struct Browser {
    service: DnsName,
    config: BrowserConfig,
    cache: Cache,
    next_query: Instant,
    interval: Duration,
    sent_first: bool,
    /// (name, type) → (next attempt, attempts made).
    missing: HashMap<(DnsName, u16), (Instant, u8)>,
    peers: BTreeMap<DnsName, ResolvedPeer>,
    events: Vec<BrowserEvent>,
    counters: BrowserCounters,
    rng: StdRng,
}

impl Browser {
    pub fn new(now: Instant, config: BrowserConfig, mut rng: StdRng) -> Self {
        let delay = config
            .first_query_delay
            .unwrap_or_else(|| Duration::from_millis(rng.random_range(20..=120)));
        Self {
            service: service_type(),
            config,
            cache: Cache::new(CACHE_CAP),
            next_query: now + delay,
            interval: FIRST_INTERVAL,
            sent_first: false,
            missing: HashMap::new(),
            peers: BTreeMap::new(),
            events: Vec::new(),
            counters: BrowserCounters::default(),
            rng,
        }
    }

    pub fn counters(&self) -> &BrowserCounters {
        &self.counters
    }

    pub fn take_events(&mut self) -> Vec<BrowserEvent> {
        std::mem::take(&mut self.events)
    }

    /// Peers fully resolved (PTR, SRV, TXT and at least one address) at `now`.
    pub fn peers(&self, now: Instant) -> Vec<ResolvedPeer> {
        self.resolve(now).into_values().collect()
    }

    /// The driver reports packets it could not parse here, so all drops are counted in one place.
    pub fn note_parse_error(&mut self, err: &ParseError) {
        if err.is_bad_opcode_rcode() {
            self.counters.bad_opcode_rcode += 1;
        } else {
            self.counters.malformed += 1;
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [Some(self.next_query), self.cache.next_event()]
            .into_iter()
            .chain(
                self.missing
                    .values()
                    .filter(|(_, tries)| *tries < MISSING_TRIES)
                    .map(|(t, _)| Some(*t)),
            )
            .flatten()
            .min()
    }

    pub fn handle_packet(&mut self, now: Instant, pkt: &Incoming) {
        if pkt.from_self {
            self.counters.from_self += 1;
            return;
        }
        if !pkt.msg.is_response {
            return;
        }
        if pkt.src.port() != MDNS_PORT {
            self.counters.bad_source_port += 1;
            return;
        }
        // §11: a unicast response is only believed from a source on this link.
        if !pkt.dst_is_multicast && !pkt.src_on_link {
            self.counters.off_link_unicast += 1;
            return;
        }
        let mut records: Vec<&Record> =
            pkt.msg.answers.iter().chain(&pkt.msg.additionals).collect();
        // SRV before addresses, so an address is kept when its SRV came in the same packet.
        records.sort_by_key(|r| match r.rtype() {
            TYPE_PTR => 0,
            TYPE_SRV | TYPE_TXT => 1,
            _ => 2,
        });
        for r in records {
            if !self.relevant(now, r) {
                continue;
            }
            let jitter = self.rng.random_range(0..=20);
            if self.cache.insert(now, r, jitter) == Inserted::Full {
                self.counters.cache_full += 1;
            }
        }
        self.update_peers(now);
    }

    fn relevant(&self, now: Instant, r: &Record) -> bool {
        match &r.data {
            RData::Ptr(target) => r.name == self.service && target.is_child_of(&self.service),
            RData::Srv { .. } | RData::Txt(_) => r.name.is_child_of(&self.service),
            RData::A(_) | RData::Aaaa(_) => self
                .cache
                .live(now)
                .any(|e| matches!(&e.record.data, RData::Srv { target, .. } if *target == r.name)),
            _ => false,
        }
    }

    /// Queries due at `now`; also expires the cache and emits events for what went away.
    pub fn poll(&mut self, now: Instant) -> Vec<Outgoing> {
        self.cache.expire(now);
        let mut questions: Vec<Question> = Vec::new();
        let mut ask = |name: &DnsName, qtype: u16, qu: bool| {
            if !questions
                .iter()
                .any(|q| q.name == *name && q.qtype == qtype)
            {
                questions.push(Question {
                    name: name.clone(),
                    qtype,
                    unicast_response: qu,
                });
            }
        };
        if self.next_query <= now {
            ask(
                &self.service,
                TYPE_PTR,
                !self.sent_first && self.config.qu_first,
            );
            self.sent_first = true;
            self.next_query = now + self.interval;
            self.interval = (self.interval * 2).min(MAX_INTERVAL);
        }
        for e in self.cache.entries_mut() {
            if e.next_refresh().is_some_and(|t| t <= now) {
                e.refreshes += 1;
                ask(&e.record.name, e.record.rtype(), false);
            }
            // Several refresh points may have passed while we slept: skip to the next ahead.
            while e.next_refresh().is_some_and(|t| t <= now) {
                e.refreshes += 1;
            }
        }
        for ((name, qtype), (at, tries)) in self.missing.iter_mut() {
            if *at <= now && *tries < MISSING_TRIES {
                ask(name, *qtype, false);
                *tries += 1;
                *at = now + FIRST_INTERVAL * (1 << (*tries - 1));
            }
        }
        self.update_peers(now);
        if questions.is_empty() {
            return Vec::new();
        }
        let mut msg = Message::query();
        // §7.1: list what we already know that is still in the first half of its life.
        msg.answers = self
            .cache
            .live(now)
            .filter(|e| e.fresh(now))
            .filter(|e| {
                questions
                    .iter()
                    .any(|q| q.name == e.record.name && q.qtype == e.record.rtype())
            })
            .map(|e| Record {
                cache_flush: false,
                ttl: e.remaining(now),
                ..e.record.clone()
            })
            .collect();
        msg.questions = questions;
        self.counters.queries_sent += 1;
        codec::split(&msg, self.config.budget)
            .unwrap_or_else(|_| vec![msg])
            .into_iter()
            .map(|msg| Outgoing {
                dest: Dest::Multicast,
                msg,
            })
            .collect()
    }

    fn resolve(&self, now: Instant) -> BTreeMap<DnsName, ResolvedPeer> {
        let mut out = BTreeMap::new();
        for ptr in self.cache.find(now, &self.service, TYPE_PTR) {
            let RData::Ptr(inst) = &ptr.record.data else {
                continue;
            };
            let newest =
                |name: &DnsName, t: u16| self.cache.find(now, name, t).max_by_key(|e| e.received);
            let (Some(srv), Some(txt)) = (newest(inst, TYPE_SRV), newest(inst, TYPE_TXT)) else {
                continue;
            };
            let (RData::Srv { target, port, .. }, RData::Txt(strings)) =
                (&srv.record.data, &txt.record.data)
            else {
                continue;
            };
            let addrs: Vec<_> = self
                .cache
                .find(now, target, TYPE_A)
                .chain(self.cache.find(now, target, TYPE_AAAA))
                .collect();
            let mut addresses: Vec<IpAddr> = addrs
                .iter()
                .filter_map(|e| match e.record.data {
                    RData::A(a) => Some(IpAddr::V4(a)),
                    RData::Aaaa(a) => Some(IpAddr::V6(a)),
                    _ => None,
                })
                .collect();
            if addresses.is_empty() {
                continue;
            }
            addresses.sort();
            let last_seen = [ptr, srv, txt]
                .into_iter()
                .chain(addrs)
                .map(|e| e.received)
                .max()
                .unwrap_or(now);
            out.insert(
                inst.clone(),
                ResolvedPeer {
                    instance: String::from_utf8_lossy(inst.first_label().unwrap_or_default())
                        .into_owned(),
                    instance_name: inst.clone(),
                    host: target.clone(),
                    port: *port,
                    txt: PeerTxt::decode(strings),
                    addresses,
                    last_seen,
                },
            );
        }
        out
    }

    /// Recomputes the resolved set, emits events for the differences and schedules queries for
    /// the pieces of known instances that are still missing (RFC 6763 §12).
    fn update_peers(&mut self, now: Instant) {
        let fresh = self.resolve(now);
        for (name, peer) in &fresh {
            match self.peers.get(name) {
                None => self.events.push(BrowserEvent::Added(peer.clone())),
                Some(old) if !old.same_content(peer) => {
                    self.events.push(BrowserEvent::Updated(peer.clone()))
                }
                Some(_) => {}
            }
        }
        for name in self.peers.keys().filter(|n| !fresh.contains_key(*n)) {
            self.events.push(BrowserEvent::Removed {
                instance_name: name.clone(),
            });
        }
        self.peers = fresh;

        let mut wanted: Vec<(DnsName, u16)> = Vec::new();
        for ptr in self.cache.find(now, &self.service, TYPE_PTR) {
            let RData::Ptr(inst) = &ptr.record.data else {
                continue;
            };
            for t in [TYPE_SRV, TYPE_TXT] {
                if self.cache.find(now, inst, t).next().is_none() {
                    wanted.push((inst.clone(), t));
                }
            }
            for srv in self.cache.find(now, inst, TYPE_SRV) {
                if let RData::Srv { target, .. } = &srv.record.data {
                    let has_addr = self.cache.find(now, target, TYPE_A).next().is_some()
                        || self.cache.find(now, target, TYPE_AAAA).next().is_some();
                    if !has_addr {
                        wanted.push((target.clone(), TYPE_A));
                        wanted.push((target.clone(), TYPE_AAAA));
                    }
                }
            }
        }
        self.missing.retain(|k, _| wanted.contains(k));
        for w in wanted {
            self.missing.entry(w).or_insert((now, 0));
        }
    }
}

//! The mDNS responder for one (interface, address family): probes our unique names, announces,
//! answers queries, defends and renames on conflict, says goodbye (RFC 6762 §6–§10).
//!
//! Pure: time comes in as `now`, packets in through `handle_packet`, packets out of `poll`;
//! `next_deadline` says when `poll` next has work, and is `None` when idle (§8.3 forbids
//! periodic announcements, so an idle responder never wakes up).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use super::codec::{self, Message, Question, RData, Record, TYPE_ANY};
use super::io::{Dest, Incoming, Outgoing, MDNS_PORT};
use super::name::{DnsName, NameError};
use super::records::{self, HostIdentity, OwnRecord};
use super::txt::PeerTxt;

mod answer;

const PROBE_INTERVAL: Duration = Duration::from_millis(250);
const PROBES: u8 = 3;
const ANNOUNCEMENTS: u8 = 2;
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// Minimum spacing of one record's multicasts on one interface (§6), and for probe answers.
const RATE_LIMIT: Duration = Duration::from_secs(1);
const PROBE_RATE_LIMIT: Duration = Duration::from_millis(250);
/// The loser of a simultaneous probe waits this long before probing again (§8.2).
const TIEBREAK_BACKOFF: Duration = Duration::from_secs(1);
/// §8.1: 15 conflicts within 10 s → wait 5 s before each further probe.
const CONFLICT_WINDOW: Duration = Duration::from_secs(10);
const CONFLICT_BURST: usize = 15;
const CONFLICT_BACKOFF: Duration = Duration::from_secs(5);
/// §6.7: legacy unicast answers carry at most this TTL.
const LEGACY_TTL: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponderState {
    Probing,
    Announcing,
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponderEvent {
    /// A conflict forced a new name; the driver should log it and tell the operator.
    Renamed { host_name: String, instance: String },
}

/// What the responder refused or suppressed, for diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponderCounters {
    pub from_self: u64,
    pub bad_source_port: u64,
    pub off_link: u64,
    pub conflicts: u64,
    pub tiebreaks_lost: u64,
    pub known_answer_suppressed: u64,
    pub rate_limited: u64,
}

#[derive(Debug)]
struct Pending {
    due: Instant,
    dest: Dest,
    answers: Vec<Record>,
    additionals: Vec<Record>,
    probe_answer: bool,
}

pub struct Responder {
    identity: HostIdentity,
    base_host: String,
    base_instance: String,
    host_renames: u32,
    instance_renames: u32,
    addrs: Vec<IpAddr>,
    own: Vec<OwnRecord>,
    state: ResponderState,
    /// Probes or announcements sent in the current phase.
    step: u8,
    next_step: Option<Instant>,
    pending: Vec<Pending>,
    /// Packets to send at the next poll (goodbyes, legacy replies), and since when.
    outbox: Vec<Outgoing>,
    outbox_since: Option<Instant>,
    last_multicast: HashMap<(DnsName, RData), Instant>,
    conflicts: VecDeque<Instant>,
    announced: bool,
    events: Vec<ResponderEvent>,
    counters: ResponderCounters,
    budget: usize,
    rng: StdRng,
}

impl Responder {
    /// Starts probing at `now` plus a random 0–250 ms (§8.1). `addrs` are the addresses of this
    /// responder's interface only.
    pub fn new(
        now: Instant,
        identity: HostIdentity,
        addrs: Vec<IpAddr>,
        mut rng: StdRng,
    ) -> Result<Self, NameError> {
        let own = records::build(&identity, &addrs)?;
        let first = now + Duration::from_millis(rng.random_range(0..=250));
        Ok(Self {
            base_host: identity.host_name.clone(),
            base_instance: identity.instance.clone(),
            identity,
            host_renames: 1,
            instance_renames: 1,
            addrs,
            own,
            state: ResponderState::Probing,
            step: 0,
            next_step: Some(first),
            pending: Vec::new(),
            outbox: Vec::new(),
            outbox_since: None,
            last_multicast: HashMap::new(),
            conflicts: VecDeque::new(),
            announced: false,
            events: Vec::new(),
            counters: ResponderCounters::default(),
            budget: codec::BUDGET_V6,
            rng,
        })
    }

    /// Payload budget per packet (default fits IPv6's minimum MTU).
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    pub fn state(&self) -> ResponderState {
        self.state
    }

    /// The identity in use, renamed if a conflict forced it.
    pub fn identity(&self) -> &HostIdentity {
        &self.identity
    }

    pub fn counters(&self) -> &ResponderCounters {
        &self.counters
    }

    pub fn take_events(&mut self) -> Vec<ResponderEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.own.iter().map(|r| &r.record)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        [self.outbox_since, self.next_step]
            .into_iter()
            .chain(self.pending.iter().map(|p| Some(p.due)))
            .flatten()
            .min()
    }

    /// Packets due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut out = std::mem::take(&mut self.outbox);
        self.outbox_since = None;
        while self.next_step.is_some_and(|t| t <= now) {
            self.step_phase(now, &mut out);
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due <= now);
        self.pending = later;
        for p in due {
            self.send_pending(now, p, &mut out);
        }
        out
    }

    fn step_phase(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        match self.state {
            ResponderState::Probing if self.step < PROBES => {
                out.extend(self.split(Dest::Multicast, self.probe()));
                self.step += 1;
                self.next_step = Some(now + PROBE_INTERVAL);
            }
            ResponderState::Probing => {
                self.state = ResponderState::Announcing;
                self.step = 0;
                self.next_step = Some(now);
            }
            ResponderState::Announcing => {
                let mut msg = Message::response();
                msg.answers = self.records().cloned().collect();
                self.mark_multicast(now, &msg);
                out.extend(self.split(Dest::Multicast, msg));
                self.announced = true;
                self.step += 1;
                if self.step < ANNOUNCEMENTS {
                    self.next_step = Some(now + ANNOUNCE_INTERVAL);
                } else {
                    self.state = ResponderState::Running;
                    self.next_step = None;
                }
            }
            ResponderState::Running | ResponderState::Stopped => self.next_step = None,
        }
    }

    /// §8.1: one QU question of type ANY per unique name, the proposed records in Authority.
    fn probe(&self) -> Message {
        let mut msg = Message::query();
        for name in self.unique_names() {
            msg.questions.push(Question {
                name: name.clone(),
                qtype: TYPE_ANY,
                unicast_response: true,
            });
        }
        msg.authorities = self
            .own
            .iter()
            .filter(|r| r.unique)
            .map(|r| Record {
                cache_flush: false,
                ..r.record.clone()
            })
            .collect();
        msg
    }

    fn unique_names(&self) -> Vec<&DnsName> {
        let mut names: Vec<&DnsName> = Vec::new();
        for r in self.own.iter().filter(|r| r.unique) {
            if !names.contains(&&r.record.name) {
                names.push(&r.record.name);
            }
        }
        names
    }

    fn split(&self, dest: Dest, msg: Message) -> Vec<Outgoing> {
        codec::split(&msg, self.budget)
            .unwrap_or_else(|_| vec![msg])
            .into_iter()
            .map(|msg| Outgoing {
                dest: dest.clone(),
                msg,
            })
            .collect()
    }

    fn mark_multicast(&mut self, now: Instant, msg: &Message) {
        for r in msg.answers.iter().chain(&msg.additionals) {
            self.last_multicast
                .insert((r.name.clone(), r.data.clone()), now);
        }
    }

    fn multicast_within(&self, r: &Record, now: Instant, window: Duration) -> bool {
        self.last_multicast
            .get(&(r.name.clone(), r.data.clone()))
            .is_some_and(|t| now.saturating_duration_since(*t) < window)
    }

    fn send_pending(&mut self, now: Instant, mut p: Pending, out: &mut Vec<Outgoing>) {
        if p.dest == Dest::Multicast {
            let limit = if p.probe_answer {
                PROBE_RATE_LIMIT
            } else {
                RATE_LIMIT
            };
            let before = p.answers.len();
            p.answers.retain(|r| !self.multicast_within(r, now, limit));
            p.additionals
                .retain(|r| !self.multicast_within(r, now, limit));
            self.counters.rate_limited += (before - p.answers.len()) as u64;
        }
        if p.answers.is_empty() {
            return;
        }
        let mut msg = Message::response();
        msg.answers = p.answers;
        msg.additionals = p.additionals;
        if p.dest == Dest::Multicast {
            self.mark_multicast(now, &msg);
        }
        out.extend(self.split(p.dest, msg));
    }

    /// Feeds one packet that arrived on this responder's interface and family.
    pub fn handle_packet(&mut self, now: Instant, pkt: &Incoming) {
        if self.state == ResponderState::Stopped {
            return;
        }
        if pkt.from_self {
            self.counters.from_self += 1;
            return;
        }
        if pkt.msg.is_response {
            self.handle_response(now, pkt);
        } else {
            self.handle_query(now, pkt);
        }
    }

    fn handle_response(&mut self, now: Instant, pkt: &Incoming) {
        if pkt.src.port() != MDNS_PORT {
            self.counters.bad_source_port += 1;
            return;
        }
        if !pkt.dst_is_multicast && !pkt.src_on_link {
            self.counters.off_link += 1;
            return;
        }
        let msg = &pkt.msg;
        let mut conflict: Option<DnsName> = None;
        for theirs in msg.answers.iter().chain(&msg.additionals) {
            // §7.4: someone else just multicast the answer we were about to give.
            for p in self
                .pending
                .iter_mut()
                .filter(|p| p.dest == Dest::Multicast)
            {
                p.answers
                    .retain(|r| !(r.same_rr(theirs) && theirs.ttl >= r.ttl / 2));
            }
            if theirs.ttl == 0 || conflict.is_some() {
                continue;
            }
            let unique_name = self
                .own
                .iter()
                .any(|o| o.unique && o.record.name == theirs.name);
            if !unique_name || self.own.iter().any(|o| o.record.same_rr(theirs)) {
                continue;
            }
            // While probing any answer for the name means it is taken (§8.1); afterwards only
            // a record of a type we hold with other rdata is a conflict (§9).
            let same_type = self.own.iter().any(|o| {
                o.unique && o.record.name == theirs.name && o.record.rtype() == theirs.rtype()
            });
            if self.state == ResponderState::Probing || same_type {
                conflict = Some(theirs.name.clone());
            }
        }
        if let Some(name) = conflict {
            self.on_conflict(now, &name);
        }
    }

    fn on_conflict(&mut self, now: Instant, name: &DnsName) {
        self.counters.conflicts += 1;
        self.conflicts.push_back(now);
        while self
            .conflicts
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > CONFLICT_WINDOW)
        {
            self.conflicts.pop_front();
        }
        self.pending.clear();
        if self.state == ResponderState::Probing {
            let old = self.own.clone();
            if self.identity.host_fqdn().is_ok_and(|h| h == *name) {
                self.host_renames += 1;
                self.identity.host_name = format!("{}-{}", self.base_host, self.host_renames);
            } else {
                self.instance_renames += 1;
                self.identity.instance =
                    format!("{}-{}", self.base_instance, self.instance_renames);
            }
            match records::build(&self.identity, &self.addrs) {
                Ok(own) => self.own = own,
                // The suffix pushed a name past the wire limits: nothing sane left to probe.
                Err(_) => {
                    self.state = ResponderState::Stopped;
                    self.next_step = None;
                    return;
                }
            }
            if self.announced {
                // The shared PTR to our old instance name is ours alone to withdraw.
                let gone = self.goodbyes_for_removed(&old);
                self.queue(now, gone);
            }
            self.events.push(ResponderEvent::Renamed {
                host_name: self.identity.host_name.clone(),
                instance: self.identity.instance.clone(),
            });
        }
        self.state = ResponderState::Probing;
        self.step = 0;
        let delay = if self.conflicts.len() >= CONFLICT_BURST {
            CONFLICT_BACKOFF
        } else {
            Duration::from_millis(self.rng.random_range(0..=250))
        };
        self.next_step = Some(now + delay);
    }

    fn queue(&mut self, now: Instant, out: Vec<Outgoing>) {
        if !out.is_empty() {
            self.outbox.extend(out);
            self.outbox_since.get_or_insert(now);
        }
    }

    fn goodbyes_for_removed(&self, old: &[OwnRecord]) -> Vec<Outgoing> {
        let gone: Vec<Record> = old
            .iter()
            .filter(|o| !self.own.iter().any(|n| n.record.same_rr(&o.record)))
            .map(|o| Record {
                ttl: 0,
                ..o.record.clone()
            })
            .collect();
        if gone.is_empty() {
            return Vec::new();
        }
        let mut msg = Message::response();
        msg.answers = gone;
        self.split(Dest::Multicast, msg)
    }

    /// New addresses for this interface: goodbye for the ones that went, and a new round of
    /// announcements when something was added (§8.4; names we own need no new probe).
    pub fn set_addresses(&mut self, now: Instant, addrs: Vec<IpAddr>) {
        self.addrs = addrs;
        self.rebuild(now);
    }

    /// New TXT content (e.g. the state changed): re-announced like any rdata change.
    pub fn set_txt(&mut self, now: Instant, txt: PeerTxt) {
        self.identity.txt = txt;
        self.rebuild(now);
    }

    fn rebuild(&mut self, now: Instant) {
        let Ok(own) = records::build(&self.identity, &self.addrs) else {
            return;
        };
        let old = std::mem::replace(&mut self.own, own);
        if !matches!(
            self.state,
            ResponderState::Announcing | ResponderState::Running
        ) {
            return;
        }
        let gone = self.goodbyes_for_removed(&old);
        self.queue(now, gone);
        let added = self
            .own
            .iter()
            .any(|n| !old.iter().any(|o| o.record.same_rr(&n.record)));
        if added {
            self.pending.clear();
            self.state = ResponderState::Announcing;
            self.step = 0;
            self.next_step = Some(now);
        }
    }

    /// Goodbye (§10.1): every record we announced, TTL 0. The responder is done afterwards.
    pub fn shutdown(&mut self, _now: Instant) -> Vec<Outgoing> {
        let mut out = std::mem::take(&mut self.outbox);
        if self.announced && self.state != ResponderState::Stopped {
            let mut msg = Message::response();
            msg.answers = self
                .records()
                .map(|r| Record {
                    ttl: 0,
                    ..r.clone()
                })
                .collect();
            out.extend(self.split(Dest::Multicast, msg));
        }
        self.state = ResponderState::Stopped;
        self.next_step = None;
        self.pending.clear();
        self.outbox_since = None;
        out
    }
}

//! Answering queries (RFC 6762 §5–§7): which of our records match, known-answer suppression,
//! QU and legacy-unicast replies, answer delays, the per-record rate limit, and the probe
//! tiebreak (§8.2) while we are still probing.

use std::time::{Duration, Instant};

use rand::Rng;

use super::{
    Pending, Responder, ResponderState, LEGACY_TTL, PROBE_RATE_LIMIT, RATE_LIMIT, TIEBREAK_BACKOFF,
};
use crate::discovery::codec::{Message, Record, TYPE_ANY};
use crate::discovery::io::{Dest, Incoming, MDNS_PORT};
use crate::discovery::records;

impl Responder {
    pub(super) fn handle_query(&mut self, now: Instant, pkt: &Incoming) {
        let msg = &pkt.msg;
        let legacy = pkt.src.port() != MDNS_PORT;
        // §11/§5.5: an off-link querier cannot hear unicast; answer by multicast only if
        // it asked the group, otherwise drop.
        if !pkt.src_on_link && (!pkt.dst_is_multicast || legacy) {
            self.counters.off_link += 1;
            return;
        }
        // §7.2: known answers in any query (continuations included) prune what is pending.
        for p in self
            .pending
            .iter_mut()
            .filter(|p| p.dest == Dest::Multicast)
        {
            p.answers.retain(|r| {
                !msg.answers
                    .iter()
                    .any(|k| k.same_rr(r) && k.ttl >= r.ttl / 2)
            });
        }
        let is_probe = !msg.authorities.is_empty();
        if is_probe && self.state == ResponderState::Probing {
            self.tiebreak(now, msg);
            return;
        }
        if !matches!(
            self.state,
            ResponderState::Announcing | ResponderState::Running
        ) {
            return;
        }
        let mut unicast = Vec::new();
        let mut multicast = Vec::new();
        let mut suppressed = 0;
        for q in &msg.questions {
            for o in &self.own {
                let r = &o.record;
                if q.name != r.name || (q.qtype != TYPE_ANY && q.qtype != r.rtype()) {
                    continue;
                }
                if msg
                    .answers
                    .iter()
                    .any(|k| k.same_rr(r) && k.ttl >= r.ttl / 2)
                {
                    suppressed += 1;
                    continue;
                }
                // §5.4: QU is answered by unicast only if the record went out by multicast
                // recently enough (¼ TTL) for the other listeners' caches to be warm.
                let wants_unicast = legacy || !pkt.dst_is_multicast || q.unicast_response;
                let fresh =
                    self.multicast_within(r, now, Duration::from_secs(u64::from(r.ttl) / 4));
                let target = if wants_unicast && pkt.src_on_link && (legacy || fresh) {
                    &mut unicast
                } else {
                    &mut multicast
                };
                if !target.iter().any(|x: &Record| x.same_rr(r)) {
                    target.push(r.clone());
                }
            }
        }
        self.counters.known_answer_suppressed += suppressed;
        if legacy {
            self.legacy_reply(now, pkt, unicast);
            return;
        }
        for (answers, dest) in [
            (unicast, Dest::Unicast(pkt.src)),
            (multicast, Dest::Multicast),
        ] {
            self.schedule(now, msg, answers, dest, is_probe);
        }
    }

    /// §8.2: compare our proposed records for a name with theirs; the lexicographically
    /// later set wins, the loser waits 1 s and probes again.
    fn tiebreak(&mut self, now: Instant, msg: &Message) {
        for name in self.unique_names() {
            let theirs: Vec<&Record> = msg.authorities.iter().filter(|r| r.name == *name).collect();
            if theirs.is_empty() {
                continue;
            }
            let ours: Vec<&Record> = self
                .own
                .iter()
                .filter(|o| o.unique && o.record.name == *name)
                .map(|o| &o.record)
                .collect();
            if compare_sets(&ours, &theirs) == std::cmp::Ordering::Less {
                self.counters.tiebreaks_lost += 1;
                self.pending.clear();
                self.step = 0;
                self.next_step = Some(now + TIEBREAK_BACKOFF);
                return;
            }
        }
    }

    fn legacy_reply(&mut self, now: Instant, pkt: &Incoming, answers: Vec<Record>) {
        if answers.is_empty() {
            return;
        }
        // §6.7: echo id and question, no cache-flush, TTL at most 10 s.
        let cap = |r: &Record| Record {
            cache_flush: false,
            ttl: r.ttl.min(LEGACY_TTL),
            ..r.clone()
        };
        let mut msg = Message::response();
        msg.id = pkt.msg.id;
        msg.questions = pkt.msg.questions.clone();
        msg.additionals = self
            .additionals(&answers, &pkt.msg)
            .iter()
            .map(cap)
            .collect();
        msg.answers = answers.iter().map(cap).collect();
        let out = self.split(Dest::Unicast(pkt.src), msg);
        self.queue(now, out);
    }

    fn additionals(&self, answers: &[Record], query: &Message) -> Vec<Record> {
        let mut extra: Vec<Record> = Vec::new();
        for a in answers {
            for r in records::additionals_for(a, &self.own) {
                let known = query
                    .answers
                    .iter()
                    .any(|k| k.same_rr(&r) && k.ttl >= r.ttl / 2);
                let dup = answers.iter().chain(&extra).any(|x| x.same_rr(&r));
                if !known && !dup {
                    extra.push(r);
                }
            }
        }
        extra
    }

    fn schedule(
        &mut self,
        now: Instant,
        query: &Message,
        mut answers: Vec<Record>,
        dest: Dest,
        probe_answer: bool,
    ) {
        if dest == Dest::Multicast {
            let limit = if probe_answer {
                PROBE_RATE_LIMIT
            } else {
                RATE_LIMIT
            };
            let before = answers.len();
            answers.retain(|r| !self.multicast_within(r, now, limit));
            self.counters.rate_limited += (before - answers.len()) as u64;
            // Already on its way in a pending multicast answer: nothing to add.
            answers.retain(|r| {
                !self
                    .pending
                    .iter()
                    .any(|p| p.dest == Dest::Multicast && p.answers.iter().any(|x| x.same_rr(r)))
            });
        }
        if answers.is_empty() {
            return;
        }
        let all_unique = answers
            .iter()
            .all(|a| self.own.iter().any(|o| o.unique && o.record.same_rr(a)));
        // §6: shared answers wait 20–120 ms, a TC query 400–500 ms for the rest of its known
        // answers (§7.2); unique answers go at once.
        let delay_ms = if query.truncated {
            self.rng.random_range(400..=500)
        } else if all_unique {
            0
        } else {
            self.rng.random_range(20..=120)
        };
        let due = now + Duration::from_millis(delay_ms);
        let additionals = self.additionals(&answers, query);
        if dest == Dest::Multicast {
            if let Some(p) = self
                .pending
                .iter_mut()
                .find(|p| p.dest == Dest::Multicast && p.due <= due)
            {
                p.answers.extend(answers);
                for a in additionals {
                    if !p
                        .answers
                        .iter()
                        .chain(&p.additionals)
                        .any(|x| x.same_rr(&a))
                    {
                        p.additionals.push(a);
                    }
                }
                p.probe_answer |= probe_answer;
                return;
            }
        }
        self.pending.push(Pending {
            due,
            dest,
            answers,
            additionals,
            probe_answer,
        });
    }
}

/// §8.2 ordering of two record sets: sorted by (class, type, rdata bytes), compared pairwise;
/// a set that runs out first is earlier.
fn compare_sets(ours: &[&Record], theirs: &[&Record]) -> std::cmp::Ordering {
    let key = |r: &&Record| (r.rtype(), r.data.canonical_bytes());
    let mut a: Vec<_> = ours.iter().map(key).collect();
    let mut b: Vec<_> = theirs.iter().map(key).collect();
    a.sort();
    b.sort();
    a.cmp(&b)
}

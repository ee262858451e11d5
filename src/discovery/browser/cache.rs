//! The browser's record cache: TTLs, goodbyes (§10.1), cache-flush (§10.2) and the refresh
//! points at 80–95 % of a record's lifetime (§5.2).

use std::time::{Duration, Instant};

use crate::discovery::codec::Record;
use crate::discovery::name::DnsName;

/// A goodbye or a flushed record lingers this long before deletion (§10.1, §10.2).
const GRACE: Duration = Duration::from_secs(1);
/// Refresh queries go out at 80, 85, 90 and 95 % of the TTL, plus up to 2 % jitter.
const REFRESH_PERCENT: [u32; 4] = [80, 85, 90, 95];

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub record: Record,
    pub received: Instant,
    pub expires: Instant,
    /// Refresh queries already sent for this reception.
    pub refreshes: usize,
    /// Jitter for the refresh points, in tenths of a percent (0–20).
    pub jitter: u32,
}

impl Entry {
    /// Seconds left, as a known answer would state them.
    pub fn remaining(&self, now: Instant) -> u32 {
        self.expires.saturating_duration_since(now).as_secs() as u32
    }

    /// Whether the record is still in the first half of its life (§7.1 known answers).
    pub fn fresh(&self, now: Instant) -> bool {
        u64::from(self.remaining(now)) * 2 > u64::from(self.record.ttl)
    }

    pub fn next_refresh(&self) -> Option<Instant> {
        let pct = *REFRESH_PERCENT.get(self.refreshes)?;
        let ttl_ms = u64::from(self.record.ttl) * 1000;
        let at = self.received
            + Duration::from_millis(ttl_ms * u64::from(pct * 10 + self.jitter) / 1000);
        // A record already condemned (goodbye, flush) is not worth asking for.
        (at < self.expires).then_some(at)
    }
}

#[derive(Debug)]
pub(super) struct Cache {
    entries: Vec<Entry>,
    cap: usize,
}

/// What an insertion did, so the caller can count records it had to refuse.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Inserted {
    New,
    Refreshed,
    Goodbye,
    Full,
}

impl Cache {
    pub fn new(cap: usize) -> Self {
        Self {
            entries: Vec::new(),
            cap,
        }
    }

    pub fn insert(&mut self, now: Instant, rec: &Record, jitter: u32) -> Inserted {
        if rec.ttl == 0 {
            for e in self.entries.iter_mut().filter(|e| e.record.same_rr(rec)) {
                e.expires = e.expires.min(now + GRACE);
            }
            return Inserted::Goodbye;
        }
        if rec.cache_flush {
            // Records of the same set received within the last second belong to the same
            // burst and stay (§10.2).
            for e in self.entries.iter_mut().filter(|e| {
                e.record.name == rec.name
                    && e.record.rtype() == rec.rtype()
                    && !e.record.same_rr(rec)
                    && now.saturating_duration_since(e.received) > GRACE
            }) {
                e.expires = e.expires.min(now + GRACE);
            }
        }
        let expires = now + Duration::from_secs(u64::from(rec.ttl));
        if let Some(e) = self.entries.iter_mut().find(|e| e.record.same_rr(rec)) {
            e.record = rec.clone();
            e.received = now;
            e.expires = expires;
            e.refreshes = 0;
            e.jitter = jitter;
            return Inserted::Refreshed;
        }
        if self.entries.len() >= self.cap {
            return Inserted::Full;
        }
        self.entries.push(Entry {
            record: rec.clone(),
            received: now,
            expires,
            refreshes: 0,
            jitter,
        });
        Inserted::New
    }

    pub fn expire(&mut self, now: Instant) {
        self.entries.retain(|e| e.expires > now);
    }

    pub fn live(&self, now: Instant) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.expires > now)
    }

    pub fn find<'a, 'n>(
        &'a self,
        now: Instant,
        name: &'n DnsName,
        rtype: u16,
    ) -> impl Iterator<Item = &'a Entry> + use<'a, 'n> {
        self.live(now)
            .filter(move |e| e.record.name == *name && e.record.rtype() == rtype)
    }

    pub fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut()
    }

    pub fn next_event(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|e| [Some(e.expires), e.next_refresh()])
            .flatten()
            .min()
    }
}

//! Per-source rate limiting of key-exchange attempts (pure, time passed in): a token bucket per
//! source, with a bounded table so a flood of sources cannot grow memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const DEFAULT_BURST: u32 = 3;
pub const DEFAULT_REFILL: Duration = Duration::from_secs(2);
pub const DEFAULT_MAX_SOURCES: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    /// When the last whole token was added (or the bucket was created full). Refills are
    /// counted in whole intervals from here, so the arithmetic is exact and deterministic.
    refilled_at: Instant,
    last_seen: Instant,
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    burst: u32,
    refill: Duration,
    max_sources: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter::new(DEFAULT_BURST, DEFAULT_REFILL, DEFAULT_MAX_SOURCES)
    }
}

/// The unit one bucket is kept for. One IPv6 host usually owns a whole /64, so per-address
/// buckets would give it 2^64 of them; IPv4-mapped addresses are the IPv4 host they map.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(seg.into())
            }
        },
    }
}

impl RateLimiter {
    pub fn new(burst: u32, refill: Duration, max_sources: usize) -> RateLimiter {
        RateLimiter {
            burst: burst.max(1),
            refill: refill.max(Duration::from_millis(1)),
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Take one attempt for `ip`; `Err(retry_after)` when its bucket is empty.
    pub fn check(&mut self, now: Instant, ip: IpAddr) -> Result<(), Duration> {
        let key = source_key(ip);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_sources {
            self.make_room(now);
        }
        let (burst, refill) = (self.burst, self.refill);
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            refilled_at: now,
            last_seen: now,
        });
        b.last_seen = b.last_seen.max(now);
        Self::refill(b, now, burst, refill);
        if b.tokens == 0 {
            let since = now.saturating_duration_since(b.refilled_at);
            return Err(refill.saturating_sub(since));
        }
        b.tokens -= 1;
        Ok(())
    }

    pub fn sources(&self) -> usize {
        self.buckets.len()
    }

    fn refill(b: &mut Bucket, now: Instant, burst: u32, refill: Duration) {
        if b.tokens >= burst {
            b.refilled_at = now;
            return;
        }
        let elapsed = now.saturating_duration_since(b.refilled_at);
        let whole = (elapsed.as_nanos() / refill.as_nanos()).min(u128::from(burst)) as u32;
        if whole == 0 {
            return;
        }
        b.tokens = (b.tokens + whole).min(burst);
        b.refilled_at = if b.tokens >= burst {
            now
        } else {
            b.refilled_at + refill * whole
        };
    }

    /// Drop buckets that have refilled completely (forgetting them changes nothing); if none
    /// has, drop the one seen longest ago. An attacker rotating sources can thereby reset a
    /// quiet source's bucket, which is why the session also caps attempts in total.
    fn make_room(&mut self, now: Instant) {
        let (burst, refill) = (self.burst, self.refill);
        self.buckets.retain(|_, b| {
            Self::refill(b, now, burst, refill);
            b.tokens < burst
        });
        if self.buckets.len() >= self.max_sources {
            if let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last_seen)
                .map(|(k, _)| *k)
            {
                self.buckets.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn burst_then_one_every_two_seconds() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::default();
        let ip = v4(1);
        for _ in 0..3 {
            assert_eq!(rl.check(t0, ip), Ok(()));
        }
        assert_eq!(rl.check(t0, ip), Err(Duration::from_secs(2)));
        let t = t0 + Duration::from_millis(500);
        assert_eq!(rl.check(t, ip), Err(Duration::from_millis(1500)));
        let t = t0 + Duration::from_secs(2);
        assert_eq!(rl.check(t, ip), Ok(()));
        assert_eq!(rl.check(t, ip), Err(Duration::from_secs(2)));
        // Partial intervals are kept, not lost, when a token is added.
        let t = t0 + Duration::from_millis(4500);
        assert_eq!(rl.check(t, ip), Ok(()));
        assert_eq!(rl.check(t, ip), Err(Duration::from_millis(1500)));
        // A long pause refills to the burst, never beyond it.
        let t = t0 + Duration::from_secs(600);
        for _ in 0..3 {
            assert_eq!(rl.check(t, ip), Ok(()));
        }
        assert!(rl.check(t, ip).is_err());
    }

    #[test]
    fn sources_are_isolated() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::default();
        for _ in 0..3 {
            rl.check(t0, v4(1)).unwrap();
        }
        assert!(rl.check(t0, v4(1)).is_err());
        for _ in 0..3 {
            assert_eq!(rl.check(t0, v4(2)), Ok(()));
        }
    }

    #[test]
    fn ipv6_hosts_share_a_bucket_per_64_and_mapped_v4_is_v4() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::default();
        for host in 1..=3u16 {
            let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, host));
            rl.check(t0, ip).unwrap();
        }
        let other_host = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 9, 9, 9, 9));
        assert!(rl.check(t0, other_host).is_err());
        let other_net = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(rl.check(t0, other_net).is_ok());

        for _ in 0..3 {
            rl.check(t0, v4(7)).unwrap();
        }
        let mapped = match v4(7) {
            IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_mapped()),
            IpAddr::V6(_) => unreachable!(),
        };
        assert!(rl.check(t0, mapped).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(3, Duration::from_secs(2), 16);
        for n in 0..1000 {
            rl.check(t0 + Duration::from_millis(n as u64), v4(n))
                .unwrap();
            assert!(rl.sources() <= 16);
        }
    }

    #[test]
    fn refilled_sources_are_evicted_before_limited_ones() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(3, Duration::from_secs(100), 4);
        // The oldest entry is an exhausted source...
        for _ in 0..3 {
            rl.check(t0, v4(0)).unwrap();
        }
        // ...followed by three that used one attempt each.
        for n in 1..=3 {
            rl.check(t0 + Duration::from_millis(n as u64), v4(n))
                .unwrap();
        }
        // By now those three are full again (forgetting them is free) but the first has
        // only one attempt back; a newcomer must not evict it.
        let t = t0 + Duration::from_secs(150);
        rl.check(t, v4(9)).unwrap();
        assert_eq!(rl.sources(), 2);
        assert_eq!(rl.check(t, v4(0)), Ok(()));
        assert_eq!(rl.check(t, v4(0)), Err(Duration::from_secs(50)));
    }
}

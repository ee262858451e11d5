//! Browser state machine on a fake clock (query back-off, known answers, TTLs, goodbyes,
//! cache-flush, resolution, drops), and a responder wired to a browser through encode/parse.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use microcloud::discovery::codec::{self, Message, RData, Record, TYPE_A, TYPE_PTR, TYPE_SRV};
use microcloud::discovery::records::service_type;
use microcloud::discovery::{
    Browser, BrowserConfig, BrowserEvent, Dest, DnsName, HostIdentity, Incoming, Outgoing,
    ParseError, PeerState, PeerTxt, Responder,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn inst() -> DnsName {
    service_type().prepend(b"peer one").unwrap()
}

fn host() -> DnsName {
    DnsName::from_dotted("peer1.local").unwrap()
}

fn rec(name: DnsName, ttl: u32, cache_flush: bool, data: RData) -> Record {
    Record {
        name,
        cache_flush,
        ttl,
        data,
    }
}

fn a(addr: &str, ttl: u32) -> Record {
    rec(host(), ttl, true, RData::A(addr.parse().unwrap()))
}

/// A full answer: PTR with SRV, TXT and A as additionals.
fn full(ttl_ptr: u32, ttl_host: u32) -> Message {
    let mut m = Message::response();
    m.answers
        .push(rec(service_type(), ttl_ptr, false, RData::Ptr(inst())));
    m.additionals = vec![
        rec(
            inst(),
            ttl_host,
            true,
            RData::Srv {
                priority: 0,
                weight: 0,
                port: 9443,
                target: host(),
            },
        ),
        rec(
            inst(),
            4500,
            true,
            RData::Txt(vec![b"pv=1".to_vec(), b"st=free".to_vec()]),
        ),
        a("10.0.0.2", ttl_host),
    ];
    m
}

fn from(msg: Message) -> Incoming {
    Incoming {
        msg,
        src: "10.0.0.2:5353".parse().unwrap(),
        dst_is_multicast: true,
        src_on_link: true,
        from_self: false,
    }
}

fn browser(t0: Instant) -> Browser {
    Browser::new(t0, BrowserConfig::default(), StdRng::seed_from_u64(9))
}

fn run(b: &mut Browser, until: Instant) -> Vec<(Instant, Outgoing)> {
    let mut out = Vec::new();
    while let Some(d) = b.next_deadline().filter(|d| *d <= until) {
        out.extend(b.poll(d).into_iter().map(|o| (d, o)));
    }
    out
}

#[test]
fn queries_back_off_1_2_4_8_seconds_and_only_the_first_is_qu() {
    let t0 = Instant::now();
    let mut b = browser(t0);
    let q = run(&mut b, t0 + ms(20_000));
    assert!(q[0].0 - t0 >= ms(20) && q[0].0 - t0 <= ms(120));
    let gaps: Vec<_> = q.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert_eq!(gaps, vec![ms(1000), ms(2000), ms(4000), ms(8000)]);
    assert!(q[0].1.msg.questions[0].unicast_response);
    assert!(q[1..]
        .iter()
        .all(|(_, o)| !o.msg.questions[0].unicast_response));
    assert_eq!(q[0].1.msg.questions[0].qtype, TYPE_PTR);
    assert_eq!(q[0].1.dest, Dest::Multicast);
}

#[test]
fn resolves_from_ptr_with_additionals_and_lists_known_answers_next_time() {
    let t0 = Instant::now();
    let mut b = Browser::new(
        t0,
        BrowserConfig {
            first_query_delay: Some(Duration::ZERO),
            ..BrowserConfig::default()
        },
        StdRng::seed_from_u64(1),
    );
    assert_eq!(b.poll(t0).len(), 1);
    b.handle_packet(t0 + ms(30), &from(full(4500, 120)));
    let ev = b.take_events();
    let [BrowserEvent::Added(p)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(p.instance, "peer one");
    assert_eq!((p.port, p.host.clone()), (9443, host()));
    assert_eq!(p.addresses, vec!["10.0.0.2".parse::<IpAddr>().unwrap()]);
    assert_eq!(p.txt.state, Some(PeerState::Free));
    // Second query, 1 s after the first: our PTR as a known answer with its remaining TTL.
    let out = run(&mut b, t0 + ms(1000));
    let m = &out[0].1.msg;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, RData::Ptr(inst()));
    assert!(!m.answers[0].cache_flush);
    assert!(m.answers[0].ttl >= 4498 && m.answers[0].ttl < 4500);
}

#[test]
fn ttl_expiry_removes_the_peer_after_refresh_queries() {
    let t0 = Instant::now();
    let mut b = browser(t0);
    b.handle_packet(t0, &from(full(4500, 10)));
    b.take_events();
    let out = run(&mut b, t0 + ms(9990));
    // Refresh queries for the 10 s SRV and A at 80–95 % of their life.
    let refresh = out
        .iter()
        .filter(|(t, o)| *t >= t0 + ms(8000) && o.msg.questions.iter().any(|q| q.qtype == TYPE_A))
        .count();
    assert!(refresh >= 3, "{refresh}");
    assert!(b.take_events().is_empty());
    run(&mut b, t0 + ms(10_000));
    assert_eq!(
        b.take_events(),
        vec![BrowserEvent::Removed {
            instance_name: inst()
        }]
    );
    assert!(b.peers(t0 + ms(10_000)).is_empty());
}

#[test]
fn goodbye_removes_after_one_second() {
    let t0 = Instant::now();
    let mut b = browser(t0);
    b.handle_packet(t0, &from(full(4500, 120)));
    let mut bye = Message::response();
    bye.answers
        .push(rec(service_type(), 0, false, RData::Ptr(inst())));
    b.handle_packet(t0 + ms(5000), &from(bye));
    assert_eq!(b.peers(t0 + ms(5999)).len(), 1);
    run(&mut b, t0 + ms(6000));
    assert!(b.peers(t0 + ms(6000)).is_empty());
    assert!(matches!(
        b.take_events().last(),
        Some(BrowserEvent::Removed { .. })
    ));
}

#[test]
fn cache_flush_replaces_older_records_a_second_later() {
    let t0 = Instant::now();
    let mut b = browser(t0);
    b.handle_packet(t0, &from(full(4500, 120)));
    // Same burst (< 1 s apart): both addresses stand.
    let mut m = Message::response();
    m.answers.push(a("10.0.0.3", 120));
    b.handle_packet(t0 + ms(500), &from(m.clone()));
    run(&mut b, t0 + ms(3000));
    assert_eq!(b.peers(t0 + ms(3000))[0].addresses.len(), 2);
    // Later: a flush of 10.0.0.4 condemns the others, which go 1 s later.
    let mut m = Message::response();
    m.answers.push(a("10.0.0.4", 120));
    b.handle_packet(t0 + ms(5000), &from(m));
    assert_eq!(b.peers(t0 + ms(5500))[0].addresses.len(), 3);
    run(&mut b, t0 + ms(6000));
    let addrs = &b.peers(t0 + ms(6000))[0].addresses;
    assert_eq!(addrs, &vec!["10.0.0.4".parse::<IpAddr>().unwrap()]);
    assert!(matches!(
        b.take_events().last(),
        Some(BrowserEvent::Updated(_))
    ));
}

#[test]
fn asks_for_missing_pieces() {
    let t0 = Instant::now();
    let mut b = browser(t0);
    let mut m = Message::response();
    m.answers
        .push(rec(service_type(), 4500, false, RData::Ptr(inst())));
    b.handle_packet(t0, &from(m));
    assert_eq!(b.next_deadline(), Some(t0));
    let q = &b.poll(t0)[0].msg;
    let types: Vec<u16> = q.questions.iter().map(|q| q.qtype).collect();
    assert!(
        types.contains(&TYPE_SRV) && types.contains(&16),
        "{types:?}"
    );
    // SRV and TXT arrive without an address: now the address is asked for.
    let mut m = full(4500, 120);
    m.additionals.pop();
    b.handle_packet(t0 + ms(10), &from(m));
    let q = &b.poll(t0 + ms(10))[0].msg;
    assert!(q
        .questions
        .iter()
        .any(|q| q.name == host() && q.qtype == TYPE_A));
    // Retries back off and stop after four attempts; nothing spins.
    let out = run(&mut b, t0 + ms(60_000));
    assert!(out.len() < 12, "{}", out.len());
}

#[test]
fn drops_and_counts_bad_sources() {
    let t0 = Instant::now();
    let mut b = browser(t0);
    let mut pkt = from(full(4500, 120));
    pkt.src = "10.0.0.2:40000".parse().unwrap();
    b.handle_packet(t0, &pkt);
    let mut pkt = from(full(4500, 120));
    pkt.dst_is_multicast = false;
    pkt.src_on_link = false;
    b.handle_packet(t0, &pkt);
    b.note_parse_error(&ParseError::BadOpcode(2));
    b.note_parse_error(&ParseError::CountsPastEnd);
    let c = b.counters();
    assert_eq!(
        (
            c.bad_source_port,
            c.off_link_unicast,
            c.bad_opcode_rcode,
            c.malformed
        ),
        (1, 1, 1, 1)
    );
    assert!(b.peers(t0).is_empty());
    // Off-link but multicast is link-local by definition (§11): accepted.
    pkt.dst_is_multicast = true;
    b.handle_packet(t0, &pkt);
    assert_eq!(b.peers(t0).len(), 1);
}

fn deliver(o: &Outgoing, src: &str) -> Incoming {
    let bytes = codec::encode(&o.msg).unwrap();
    Incoming {
        msg: codec::parse(&bytes).unwrap(),
        src: src.parse().unwrap(),
        dst_is_multicast: o.dest == Dest::Multicast,
        src_on_link: true,
        from_self: false,
    }
}

/// Runs a responder (10.0.0.1) and a browser (10.0.0.2) against each other until `until`,
/// returning when the browser first resolved a peer.
fn wire(r: &mut Responder, b: &mut Browser, until: Instant) -> Option<Instant> {
    let mut resolved = None;
    loop {
        let next = [r.next_deadline(), b.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let Some(now) = next.filter(|t| *t <= until) else {
            return resolved;
        };
        for o in r.poll(now) {
            b.handle_packet(now, &deliver(&o, "10.0.0.1:5353"));
        }
        for o in b.poll(now) {
            r.handle_packet(now, &deliver(&o, "10.0.0.2:5353"));
        }
        if resolved.is_none() && !b.peers(now).is_empty() {
            resolved = Some(now);
        }
    }
}

fn identity() -> HostIdentity {
    HostIdentity {
        host_name: "node1".into(),
        instance: "node1".into(),
        port: 9443,
        txt: PeerTxt {
            protocol: Some("1".into()),
            host_id: Some("abc".into()),
            services: vec!["lxd".into()],
            ..PeerTxt::default()
        },
    }
}

#[test]
fn end_to_end_warm_peer_resolves_within_150_ms() {
    let t0 = Instant::now();
    let addrs: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fe80::1".parse().unwrap()];
    let mut r = Responder::new(t0, identity(), addrs.clone(), StdRng::seed_from_u64(3)).unwrap();
    // Warm: the responder has long finished announcing.
    while let Some(d) = r.next_deadline() {
        r.poll(d);
    }
    let start = t0 + ms(10_000);
    let mut b = Browser::new(
        start,
        BrowserConfig {
            first_query_delay: Some(Duration::ZERO),
            ..BrowserConfig::default()
        },
        StdRng::seed_from_u64(4),
    );
    let at = wire(&mut r, &mut b, start + ms(2000)).expect("resolved");
    assert!(at - start <= ms(150), "{:?}", at - start);
    let p = &b.peers(at)[0];
    assert_eq!(p.port, 9443);
    assert_eq!(p.host, DnsName::from_dotted("node1.local").unwrap());
    let mut want = addrs;
    want.sort();
    assert_eq!(p.addresses, want);
    assert_eq!(p.txt, identity().txt);
    // The responder's answer to the second query is suppressed by the known answers.
    assert!(r.counters().known_answer_suppressed >= 1);
}

#[test]
fn end_to_end_cold_start_is_seen_within_one_second() {
    let t0 = Instant::now();
    let mut r = Responder::new(
        t0,
        identity(),
        vec!["10.0.0.1".parse().unwrap()],
        StdRng::seed_from_u64(8),
    )
    .unwrap();
    let mut b = browser(t0);
    let at = wire(&mut r, &mut b, t0 + ms(5000)).expect("resolved");
    assert!(at - t0 < ms(1000), "{:?}", at - t0);
}

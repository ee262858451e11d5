//! Responder state machine on a fake clock: probe/announce timing, answers (delays, QU, legacy
//! unicast, known-answer suppression, rate limit), conflicts and tiebreaks, goodbyes.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use microcloud::discovery::codec::{self, Message, Question, RData, Record, TYPE_A, TYPE_PTR};
use microcloud::discovery::records::{service_type, TTL_OTHER};
use microcloud::discovery::{
    Dest, DnsName, HostIdentity, Incoming, Outgoing, PeerTxt, Responder, ResponderEvent,
    ResponderState,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn identity() -> HostIdentity {
    HostIdentity {
        host_name: "node1".into(),
        instance: "node1".into(),
        port: 9443,
        txt: PeerTxt {
            protocol: Some("1".into()),
            ..PeerTxt::default()
        },
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn responder(t0: Instant, seed: u64) -> Responder {
    Responder::new(
        t0,
        identity(),
        vec![ip("10.0.0.1")],
        StdRng::seed_from_u64(seed),
    )
    .unwrap()
}

/// Polls at every deadline up to `until`, returning what went out and when.
fn run(r: &mut Responder, until: Instant) -> Vec<(Instant, Outgoing)> {
    let mut out = Vec::new();
    while let Some(d) = r.next_deadline().filter(|d| *d <= until) {
        out.extend(r.poll(d).into_iter().map(|o| (d, o)));
    }
    out
}

/// A responder that has probed and announced, at t0 + 5 s.
fn running() -> (Responder, Instant, Instant) {
    let t0 = Instant::now();
    let mut r = responder(t0, 1);
    run(&mut r, t0 + ms(5000));
    assert_eq!(r.state(), ResponderState::Running);
    (r, t0, t0 + ms(5000))
}

fn query(questions: &[(&DnsName, u16, bool)]) -> Message {
    let mut m = Message::query();
    for (name, qtype, qu) in questions {
        m.questions.push(Question {
            name: (*name).clone(),
            qtype: *qtype,
            unicast_response: *qu,
        });
    }
    m
}

fn from(msg: Message, src: &str) -> Incoming {
    Incoming {
        msg,
        src: src.parse().unwrap(),
        dst_is_multicast: true,
        src_on_link: true,
        from_self: false,
    }
}

fn host() -> DnsName {
    DnsName::from_dotted("node1.local").unwrap()
}

fn instance() -> DnsName {
    service_type().prepend(b"node1").unwrap()
}

#[test]
fn probes_then_announces_within_one_second_and_then_sleeps() {
    let t0 = Instant::now();
    let mut r = responder(t0, 42);
    let sent = run(&mut r, t0 + ms(10_000));
    let probes: Vec<_> = sent.iter().filter(|(_, o)| !o.msg.is_response).collect();
    let announces: Vec<_> = sent.iter().filter(|(_, o)| o.msg.is_response).collect();
    assert_eq!(probes.len(), 3);
    assert!(probes[0].0 - t0 <= ms(250));
    assert_eq!(probes[1].0 - probes[0].0, ms(250));
    assert_eq!(probes[2].0 - probes[1].0, ms(250));
    // Host and service probed together: one ANY QU question per name, records in Authority.
    let p = &probes[0].1.msg;
    assert_eq!(p.questions.len(), 2);
    assert!(p
        .questions
        .iter()
        .all(|q| q.qtype == 255 && q.unicast_response));
    assert_eq!(p.authorities.len(), 3);
    assert_eq!(announces.len(), 2);
    assert_eq!(announces[0].0 - probes[2].0, ms(250));
    assert!(announces[0].0 - t0 < ms(1000));
    assert_eq!(announces[1].0 - announces[0].0, ms(1000));
    let a = &announces[0].1.msg;
    assert_eq!((a.id, a.authoritative, a.questions.len()), (0, true, 0));
    assert_eq!(a.answers.len(), 5);
    for rec in &a.answers {
        // Cache-flush on unique records only; the shared PTRs never carry it.
        assert_eq!(rec.cache_flush, rec.rtype() != TYPE_PTR, "{rec:?}");
    }
    assert_eq!(r.state(), ResponderState::Running);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn shared_answer_waits_20_to_120_ms_and_brings_additionals() {
    let (mut r, _, now) = running();
    r.handle_packet(
        now,
        &from(
            query(&[(&service_type(), TYPE_PTR, false)]),
            "10.0.0.2:5353",
        ),
    );
    let due = r.next_deadline().unwrap();
    assert!(
        due - now >= ms(20) && due - now <= ms(120),
        "{:?}",
        due - now
    );
    assert!(r.poll(due - ms(1)).is_empty());
    let out = r.poll(due);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dest, Dest::Multicast);
    let m = &out[0].msg;
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, RData::Ptr(instance()));
    // SRV, TXT and A as additionals (RFC 6763 §12).
    assert_eq!(m.additionals.len(), 3);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn unique_answer_is_immediate() {
    let (mut r, _, now) = running();
    r.handle_packet(
        now,
        &from(query(&[(&host(), TYPE_A, false)]), "10.0.0.2:5353"),
    );
    assert_eq!(r.next_deadline(), Some(now));
    let out = r.poll(now);
    assert_eq!(
        out[0].msg.answers[0].data,
        RData::A("10.0.0.1".parse().unwrap())
    );
}

#[test]
fn qu_is_unicast_while_fresh_and_multicast_after_a_quarter_ttl() {
    let (mut r, t0, now) = running();
    r.handle_packet(
        now,
        &from(query(&[(&host(), TYPE_A, true)]), "10.0.0.2:5353"),
    );
    let out = r.poll(now);
    assert_eq!(out[0].dest, Dest::Unicast("10.0.0.2:5353".parse().unwrap()));
    // A has TTL 120: after 30 s without a multicast of it, QU gets a multicast answer.
    let later = t0 + ms(40_000);
    r.handle_packet(
        later,
        &from(query(&[(&host(), TYPE_A, true)]), "10.0.0.2:5353"),
    );
    assert_eq!(r.poll(later)[0].dest, Dest::Multicast);
}

#[test]
fn off_link_querier_gets_multicast_or_nothing() {
    let (mut r, _, now) = running();
    let mut pkt = from(query(&[(&host(), TYPE_A, true)]), "192.168.9.9:5353");
    pkt.src_on_link = false;
    r.handle_packet(now, &pkt);
    assert_eq!(r.poll(now)[0].dest, Dest::Multicast);
    // A direct unicast query from off-link is dropped (§5.5).
    pkt.dst_is_multicast = false;
    r.handle_packet(now + ms(2000), &pkt);
    assert!(r.poll(now + ms(2000)).is_empty());
    assert_eq!(r.counters().off_link, 1);
}

#[test]
fn legacy_unicast_reply_echoes_id_and_question() {
    let (mut r, _, now) = running();
    let mut q = query(&[(&host(), TYPE_A, false)]);
    q.id = 0x1234;
    r.handle_packet(now, &from(q.clone(), "10.0.0.2:40000"));
    let out = r.poll(now);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].dest,
        Dest::Unicast("10.0.0.2:40000".parse().unwrap())
    );
    let m = &out[0].msg;
    assert_eq!(m.id, 0x1234);
    assert_eq!(m.questions, q.questions);
    assert!(m.answers.iter().all(|a| a.ttl <= 10 && !a.cache_flush));
}

#[test]
fn known_answers_suppress_only_when_ttl_is_at_least_half() {
    let (mut r, _, now) = running();
    let ptr = |ttl| Record {
        name: service_type(),
        cache_flush: false,
        ttl,
        data: RData::Ptr(instance()),
    };
    let mut q = query(&[(&service_type(), TYPE_PTR, false)]);
    q.answers = vec![ptr(TTL_OTHER / 2)];
    r.handle_packet(now, &from(q.clone(), "10.0.0.2:5353"));
    assert_eq!(r.next_deadline(), None);
    assert_eq!(r.counters().known_answer_suppressed, 1);
    q.answers = vec![ptr(TTL_OTHER / 2 - 1)];
    r.handle_packet(now, &from(q, "10.0.0.2:5353"));
    assert!(r.next_deadline().is_some());
}

#[test]
fn a_record_is_multicast_at_most_once_per_second() {
    let (mut r, _, now) = running();
    let q = query(&[(&service_type(), TYPE_PTR, false)]);
    r.handle_packet(now, &from(q.clone(), "10.0.0.2:5353"));
    let mut sent = run(&mut r, now + ms(300));
    r.handle_packet(now + ms(300), &from(q.clone(), "10.0.0.3:5353"));
    sent.extend(run(&mut r, now + ms(1500)));
    assert_eq!(sent.len(), 1);
    // After a second the record may go out again.
    r.handle_packet(now + ms(1500), &from(q, "10.0.0.3:5353"));
    assert_eq!(run(&mut r, now + ms(2000)).len(), 1);
}

#[test]
fn tc_query_waits_400_to_500_ms() {
    let (mut r, _, now) = running();
    let mut q = query(&[(&service_type(), TYPE_PTR, false)]);
    q.truncated = true;
    r.handle_packet(now, &from(q, "10.0.0.2:5353"));
    let due = r.next_deadline().unwrap();
    assert!(due - now >= ms(400) && due - now <= ms(500));
}

fn conflicting_srv(name: DnsName) -> Message {
    let mut m = Message::response();
    m.answers.push(Record {
        name,
        cache_flush: true,
        ttl: 120,
        data: RData::Srv {
            priority: 0,
            weight: 0,
            port: 1,
            target: DnsName::from_dotted("other.local").unwrap(),
        },
    });
    m
}

#[test]
fn conflict_while_probing_renames_and_probes_again() {
    let t0 = Instant::now();
    let mut r = responder(t0, 3);
    let first = r.next_deadline().unwrap();
    r.poll(first);
    r.handle_packet(
        first + ms(10),
        &from(conflicting_srv(instance()), "10.0.0.9:5353"),
    );
    assert_eq!(
        r.take_events(),
        vec![ResponderEvent::Renamed {
            host_name: "node1".into(),
            instance: "node1-2".into()
        }]
    );
    let sent = run(&mut r, t0 + ms(5000));
    let ann = sent.iter().find(|(_, o)| o.msg.is_response).unwrap();
    let renamed = service_type().prepend(b"node1-2").unwrap();
    assert!(ann
        .1
        .msg
        .answers
        .iter()
        .any(|a| a.data == RData::Ptr(renamed.clone())));
    assert_eq!(sent.iter().filter(|(_, o)| !o.msg.is_response).count(), 3);

    // A conflicting address for the host name renames the host.
    let mut m = Message::response();
    m.answers.push(Record {
        name: host(),
        cache_flush: true,
        ttl: 120,
        data: RData::A("10.0.0.77".parse().unwrap()),
    });
    let mut r = responder(t0, 3);
    r.handle_packet(t0, &from(m, "10.0.0.77:5353"));
    assert_eq!(r.identity().host_name, "node1-2");
}

#[test]
fn conflict_after_announcing_goes_back_to_probing() {
    let (mut r, _, now) = running();
    r.handle_packet(now, &from(conflicting_srv(instance()), "10.0.0.9:5353"));
    assert_eq!(r.state(), ResponderState::Probing);
    assert!(r.take_events().is_empty());
    // Identical records from someone else are no conflict; neither are goodbyes.
    let (mut r, _, now) = running();
    let mut same = Message::response();
    same.answers = r.records().cloned().collect();
    r.handle_packet(now, &from(same, "10.0.0.9:5353"));
    let mut bye = conflicting_srv(instance());
    bye.answers[0].ttl = 0;
    r.handle_packet(now, &from(bye, "10.0.0.9:5353"));
    assert_eq!(r.state(), ResponderState::Running);
}

#[test]
fn many_conflicts_slow_probing_to_five_seconds() {
    let t0 = Instant::now();
    let mut r = responder(t0, 3);
    for i in 0..15 {
        let name = r.identity().instance.clone();
        let inst = service_type().prepend(name.as_bytes()).unwrap();
        r.handle_packet(
            t0 + ms(i * 100),
            &from(conflicting_srv(inst), "10.0.0.9:5353"),
        );
    }
    let at = t0 + ms(1400);
    assert_eq!(r.next_deadline(), Some(at + ms(5000)));
    assert_eq!(r.identity().instance, "node1-16");
}

fn their_probe(addr: &str) -> Message {
    let mut m = query(&[(&host(), 255, true)]);
    m.authorities.push(Record {
        name: host(),
        cache_flush: false,
        ttl: 120,
        data: RData::A(addr.parse().unwrap()),
    });
    m
}

#[test]
fn simultaneous_probe_tiebreak_both_ways() {
    let t0 = Instant::now();
    // Theirs is later (10.0.0.200 > 10.0.0.1): we lose, wait 1 s and probe again.
    let mut r = responder(t0, 5);
    let first = r.next_deadline().unwrap();
    r.poll(first);
    r.handle_packet(
        first + ms(5),
        &from(their_probe("10.0.0.200"), "10.0.0.200:5353"),
    );
    assert_eq!(r.next_deadline(), Some(first + ms(1005)));
    assert_eq!(r.counters().tiebreaks_lost, 1);
    // Theirs is earlier: we win and keep our schedule.
    let mut r = responder(t0, 5);
    r.poll(first);
    r.handle_packet(
        first + ms(5),
        &from(their_probe("10.0.0.0"), "10.0.0.0:5353"),
    );
    assert_eq!(r.next_deadline(), Some(first + ms(250)));
    // Our own probe looped back, even unflagged, ties and changes nothing.
    let mut r = responder(t0, 5);
    let own = r.poll(first).remove(0).msg;
    let mut echo = from(own.clone(), "10.0.0.1:5353");
    r.handle_packet(first, &echo);
    echo.from_self = true;
    r.handle_packet(first, &echo);
    assert_eq!(r.next_deadline(), Some(first + ms(250)));
    assert_eq!(r.counters().from_self, 1);
}

#[test]
fn probes_from_others_are_answered_once_running() {
    let (mut r, _, now) = running();
    r.handle_packet(now, &from(their_probe("10.0.0.200"), "10.0.0.200:5353"));
    let out = r.poll(now);
    assert_eq!(out.len(), 1);
    assert!(out[0].msg.answers.iter().any(|a| a.rtype() == TYPE_A));
}

#[test]
fn shutdown_says_goodbye_with_ttl_zero() {
    let (mut r, _, now) = running();
    let out = r.shutdown(now);
    let answers: Vec<_> = out.iter().flat_map(|o| o.msg.answers.clone()).collect();
    assert_eq!(answers.len(), 5);
    assert!(answers.iter().all(|a| a.ttl == 0));
    assert_eq!(r.next_deadline(), None);
    // Nothing was announced yet: nothing to withdraw.
    let t0 = Instant::now();
    assert!(responder(t0, 1).shutdown(t0).is_empty());
}

#[test]
fn address_change_says_goodbye_and_announces_again() {
    let (mut r, _, now) = running();
    r.set_addresses(now, vec![ip("10.0.0.5")]);
    let sent = run(&mut r, now + ms(5000));
    let bye = &sent[0].1.msg;
    assert_eq!(bye.answers.len(), 1);
    assert_eq!(bye.answers[0].ttl, 0);
    assert_eq!(bye.answers[0].data, RData::A("10.0.0.1".parse().unwrap()));
    let announcements: Vec<_> = sent.iter().skip(1).collect();
    assert_eq!(announcements.len(), 2);
    assert!(announcements[0]
        .1
        .msg
        .answers
        .iter()
        .any(|a| a.data == RData::A("10.0.0.5".parse().unwrap())));
    assert_eq!(announcements[1].0 - announcements[0].0, ms(1000));
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn everything_sent_encodes_within_budget() {
    let (mut r, _, now) = running();
    r.handle_packet(
        now,
        &from(
            query(&[(&service_type(), 255, false), (&host(), 255, false)]),
            "10.0.0.2:5353",
        ),
    );
    for (_, o) in run(&mut r, now + ms(1000)) {
        let bytes = codec::encode(&o.msg).unwrap();
        assert!(bytes.len() <= codec::BUDGET_V6);
        assert_eq!(codec::parse(&bytes).unwrap(), o.msg);
    }
    let _: SocketAddr = "10.0.0.2:5353".parse().unwrap();
}

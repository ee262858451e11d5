//! Codec tests: round trips of every record kind, and hostile input that must be refused
//! without a panic (compression loops, forward pointers, counts past the end, long labels and
//! names, truncated rdata, random and mutated bytes).

use std::net::{Ipv4Addr, Ipv6Addr};

use microcloud::discovery::codec::{self, Message, ParseError, Question, RData, Record};
use microcloud::discovery::DnsName;

fn n(s: &str) -> DnsName {
    DnsName::from_dotted(s).unwrap()
}

fn rec(name: DnsName, ttl: u32, cache_flush: bool, data: RData) -> Record {
    Record {
        name,
        cache_flush,
        ttl,
        data,
    }
}

fn sample() -> Message {
    let svc = n("_microcloud._tcp.local");
    let inst = svc.prepend("Rack 3. Node «ü»".as_bytes()).unwrap();
    let host = n("node-1.local");
    let mut m = Message::response();
    m.answers = vec![
        rec(svc.clone(), 4500, false, RData::Ptr(inst.clone())),
        rec(
            inst.clone(),
            120,
            true,
            RData::Srv {
                priority: 0,
                weight: 0,
                port: 9443,
                target: host.clone(),
            },
        ),
        rec(
            inst.clone(),
            4500,
            true,
            RData::Txt(vec![b"pv=1".to_vec(), b"id=abc".to_vec(), b"flag".to_vec()]),
        ),
    ];
    m.additionals = vec![
        rec(
            host.clone(),
            120,
            true,
            RData::A(Ipv4Addr::new(10, 0, 0, 1)),
        ),
        rec(host.clone(), 120, true, RData::Aaaa(Ipv6Addr::LOCALHOST)),
        rec(
            host.clone(),
            120,
            true,
            RData::Nsec {
                next: host.clone(),
                types: vec![1, 28],
            },
        ),
        rec(
            host,
            120,
            false,
            RData::Other {
                rtype: 13,
                data: vec![3, b'x', b'8', b'6', 5, b'l', b'i', b'n', b'u', b'x'],
            },
        ),
    ];
    m
}

#[test]
fn round_trip_every_record_kind() {
    let m = sample();
    let bytes = codec::encode(&m).unwrap();
    assert_eq!(codec::parse(&bytes).unwrap(), m);
    // The instance label keeps its dot, space and UTF-8 as one label.
    let back = codec::parse(&bytes).unwrap();
    assert_eq!(back.answers[1].name.labels().len(), 4);
    assert_eq!(
        back.answers[1].name.first_label().unwrap(),
        "Rack 3. Node «ü»".as_bytes()
    );
}

#[test]
fn round_trip_query_with_qu_and_known_answers() {
    let mut q = Message::query();
    q.truncated = true;
    q.questions = vec![
        Question {
            name: n("_microcloud._tcp.local"),
            qtype: codec::TYPE_PTR,
            unicast_response: true,
        },
        Question {
            name: n("node-1.local"),
            qtype: codec::TYPE_ANY,
            unicast_response: false,
        },
    ];
    q.answers = sample().answers[..1].to_vec();
    q.authorities = sample().additionals[..1].to_vec();
    let bytes = codec::encode(&q).unwrap();
    assert_eq!(codec::parse(&bytes).unwrap(), q);
}

#[test]
fn compression_shrinks_repeated_names() {
    let m = sample();
    let bytes = codec::encode(&m).unwrap();
    let uncompressed: usize = m
        .answers
        .iter()
        .chain(&m.additionals)
        .map(|r| r.name.wire_len() + 10 + r.data.canonical_bytes().len())
        .sum::<usize>()
        + 12;
    assert!(
        bytes.len() < uncompressed - 60,
        "{} vs {uncompressed}",
        bytes.len()
    );
}

#[test]
fn names_compare_case_insensitively_after_parse() {
    let mut m = Message::response();
    m.answers = vec![rec(
        n("NODE-1.Local"),
        120,
        true,
        RData::A(Ipv4Addr::new(1, 2, 3, 4)),
    )];
    let back = codec::parse(&codec::encode(&m).unwrap()).unwrap();
    assert_eq!(back.answers[0].name, n("node-1.local"));
    assert_eq!(back.answers[0].name.to_string(), "NODE-1.Local");
}

#[test]
fn empty_txt_reads_as_no_strings() {
    let mut m = Message::response();
    m.answers = vec![rec(n("a.local"), 10, false, RData::Txt(vec![]))];
    let bytes = codec::encode(&m).unwrap();
    // An empty TXT goes out as one zero byte, never a zero-length rdata (RFC 6763 §6.1).
    assert_eq!(&bytes[bytes.len() - 3..], &[0, 1, 0]);
    assert_eq!(codec::parse(&bytes).unwrap(), m);
}

#[test]
fn split_respects_budget_and_sets_tc_on_queries() {
    let mut q = Message::query();
    q.questions = vec![Question {
        name: n("_microcloud._tcp.local"),
        qtype: codec::TYPE_PTR,
        unicast_response: false,
    }];
    let svc = n("_microcloud._tcp.local");
    for i in 0..80 {
        let inst = svc
            .prepend(format!("host number {i:03}").as_bytes())
            .unwrap();
        q.answers
            .push(rec(svc.clone(), 4000, false, RData::Ptr(inst)));
    }
    let parts = codec::split(&q, 512).unwrap();
    assert!(parts.len() > 2);
    let total: usize = parts.iter().map(|p| p.answers.len()).sum();
    assert_eq!(total, 80);
    for (i, p) in parts.iter().enumerate() {
        assert!(codec::encode(p).unwrap().len() <= 512);
        assert_eq!(p.truncated, i + 1 < parts.len());
        assert_eq!(p.questions.is_empty(), i > 0);
    }
    // Responses split the same way but never carry TC (RFC 6762 §18.5).
    let mut r = Message::response();
    r.answers = q.answers.clone();
    assert!(codec::split(&r, codec::BUDGET_V6)
        .unwrap()
        .iter()
        .all(|p| !p.truncated && codec::encode(p).unwrap().len() <= codec::BUDGET_V6));
}

#[test]
fn opcode_and_rcode_are_their_own_error() {
    let mut bytes = codec::encode(&sample()).unwrap();
    bytes[2] |= 0x08 << 1; // opcode 2
    assert!(codec::parse(&bytes).unwrap_err().is_bad_opcode_rcode());
    let mut bytes = codec::encode(&sample()).unwrap();
    bytes[3] |= 0x03;
    assert_eq!(codec::parse(&bytes), Err(ParseError::BadRcode(3)));
}

#[test]
fn z_bit_is_ignored() {
    let mut bytes = codec::encode(&sample()).unwrap();
    bytes[3] |= 0x40;
    assert_eq!(codec::parse(&bytes).unwrap(), sample());
}

fn header(qd: u16, an: u16) -> Vec<u8> {
    let mut h = vec![0, 0, 0x84, 0];
    for c in [qd, an, 0, 0] {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

#[test]
fn malformed_corpus_is_refused() {
    let mut corpus: Vec<(&str, Vec<u8>)> = Vec::new();
    corpus.push(("empty", vec![]));
    corpus.push(("short header", vec![0; 11]));
    // A pointer to itself, and two pointers to each other.
    let mut p = header(1, 0);
    p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    corpus.push(("self pointer", p));
    let mut p = header(1, 0);
    p.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
    corpus.push(("pointer loop", p));
    let mut p = header(1, 0);
    p.extend_from_slice(&[0xc0, 40, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    corpus.push(("forward pointer", p));
    let mut p = header(1, 0);
    p.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
    corpus.push(("pointer past end", p));
    corpus.push(("counts past end", header(0xffff, 0xffff)));
    let mut p = header(2, 0);
    p.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
    corpus.push(("second question missing", p));
    let mut p = header(1, 0);
    p.push(64);
    p.extend_from_slice(&[b'a'; 64]);
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    corpus.push(("label of 64", p));
    let mut p = header(1, 0);
    for _ in 0..5 {
        p.push(60);
        p.extend_from_slice(&[b'a'; 60]);
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    corpus.push(("name over 255", p));
    let mut p = header(0, 1);
    p.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 10, 0]);
    corpus.push(("truncated A rdata", p));
    let mut p = header(0, 1);
    p.extend_from_slice(&[
        1, b'a', 0, 0, 33, 0, 1, 0, 0, 0, 120, 0, 8, 0, 0, 0, 0, 0x24, 0xc3, 5, b'x',
    ]);
    corpus.push(("SRV target runs out of rdata", p));
    let mut p = header(0, 1);
    p.extend_from_slice(&[
        1, b'a', 0, 0, 47, 0, 1, 0, 0, 0, 120, 0, 4, 0xc0, 0x40, 0, 1,
    ]);
    corpus.push(("NSEC with a bad pointer", p));
    let mut p = header(0, 1);
    p.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1, 0, 0, 0, 120, 0, 0]);
    corpus.push(("zero-length A", p));
    let mut p = header(0, 1);
    p.extend_from_slice(&[
        1, b'a', 0, 0, 16, 0, 1, 0, 0, 0, 120, 0, 5, 9, b'k', b'=', b'v',
    ]);
    corpus.push(("TXT string longer than rdata", p));
    corpus.push(("too large", vec![0; 9001]));
    for (what, bytes) in corpus {
        assert!(codec::parse(&bytes).is_err(), "{what} was accepted");
    }
}

/// xorshift: a deterministic byte source so the stress test is the same on every run.
struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check_round_trip(bytes: &[u8]) {
    if let Ok(m) = codec::parse(bytes) {
        if let Ok(again) = codec::encode(&m) {
            assert_eq!(codec::parse(&again).as_ref(), Ok(&m), "re-parse differs");
        }
    }
}

#[test]
fn stress_random_and_mutated_packets_never_panic() {
    let mut rng = Xs(0x9e37_79b9_7f4a_7c15);
    let seeds = [codec::encode(&sample()).unwrap(), {
        let mut q = Message::query();
        q.questions.push(Question {
            name: n("_microcloud._tcp.local"),
            qtype: codec::TYPE_PTR,
            unicast_response: true,
        });
        q.answers = sample().answers;
        codec::encode(&q).unwrap()
    }];
    for i in 0..20_000u32 {
        let mut bytes = seeds[i as usize % 2].clone();
        match i % 4 {
            // one to four random bytes changed
            0 | 1 => {
                for _ in 0..=(rng.next() % 4) {
                    let at = rng.next() as usize % bytes.len();
                    bytes[at] = rng.next() as u8;
                }
            }
            // cut short
            2 => bytes.truncate(rng.next() as usize % bytes.len()),
            // pure noise, sometimes with a plausible header
            _ => {
                let len = rng.next() as usize % 200;
                bytes = (0..len).map(|_| rng.next() as u8).collect();
                if len > 12 {
                    bytes[2] = 0x84;
                    bytes[3] = 0;
                    bytes[4..12].copy_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1]);
                }
            }
        }
        check_round_trip(&bytes);
    }
    // Every single-byte value at every position of the sample.
    let base = seeds[0].clone();
    for at in 0..base.len() {
        for v in [0u8, 1, 0x3f, 0x40, 0x7f, 0xc0, 0xff] {
            let mut bytes = base.clone();
            bytes[at] = v;
            check_round_trip(&bytes);
        }
    }
}

//! mDNS message codec: owned `Message`/`Record` types over `simple-dns`, a parser that survives
//! any bytes, an encoder with name compression and a splitter that keeps packets under a budget.
//!
//! `simple-dns` does the wire work; this layer adds what mDNS needs around it: the header checks
//! of RFC 6762 §18, plausibility checks before `simple-dns` allocates, and owned values whose names
//! compare case-insensitively so the state machines can keep them.

use std::net::{Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::{self, RData as SdRData};
use simple_dns::{Label, Name, Packet, PacketFlag, Question as SdQuestion, ResourceRecord};
use simple_dns::{CLASS, QCLASS, QTYPE, TYPE};

use super::name::DnsName;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_NSEC: u16 = 47;
pub const TYPE_ANY: u16 = 255;

/// Largest mDNS payload we send or accept: 9000 bytes minus IPv6 and UDP headers (RFC 6762 §17).
pub const MAX_PACKET: usize = 9000 - 48;
/// Payload budget for a 1500-byte MTU over IPv4 (1500 - 20 - 8).
pub const BUDGET_V4: usize = 1472;
/// Payload budget that fits IPv6's minimum MTU (1280 - 40 - 8).
pub const BUDGET_V6: usize = 1232;

const HEADER_LEN: usize = 12;
/// Smallest question on the wire: a 2-byte pointer (or root) plus type and class.
const MIN_QUESTION: usize = 5;
/// Smallest record: root name, type, class, TTL, rdlength.
const MIN_RECORD: usize = 11;
/// The Z bit, which `simple-dns` rejects but RFC 6762 §18.8 says to ignore on receipt.
const Z_BIT: u8 = 0x40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: DnsName,
    pub qtype: u16,
    /// The QU bit (RFC 6762 §5.4).
    pub unicast_response: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ptr(DnsName),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: DnsName,
    },
    /// TXT strings; empty strings are dropped on both sides so "no strings", one empty string
    /// and a zero-length rdata all read the same (RFC 6763 §6.1).
    Txt(Vec<Vec<u8>>),
    Nsec {
        next: DnsName,
        types: Vec<u16>,
    },
    /// Any other type, rdata uncompressed.
    Other {
        rtype: u16,
        data: Vec<u8>,
    },
}

impl RData {
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv { .. } => TYPE_SRV,
            RData::Txt(_) => TYPE_TXT,
            RData::Nsec { .. } => TYPE_NSEC,
            RData::Other { rtype, .. } => *rtype,
        }
    }

    /// Uncompressed rdata bytes, the form the probe tiebreak compares (RFC 6762 §8.2).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        fn name(out: &mut Vec<u8>, n: &DnsName) {
            for l in n.labels() {
                out.push(l.len() as u8);
                out.extend_from_slice(l);
            }
            out.push(0);
        }
        let mut out = Vec::new();
        match self {
            RData::A(a) => out.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => out.extend_from_slice(&a.octets()),
            RData::Ptr(n) => name(&mut out, n),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                for v in [priority, weight, port] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                name(&mut out, target);
            }
            RData::Txt(strings) if strings.is_empty() => out.push(0),
            RData::Txt(strings) => {
                for s in strings {
                    out.push(s.len().min(255) as u8);
                    out.extend_from_slice(&s[..s.len().min(255)]);
                }
            }
            // Other rdata can only fail to convert when over 65535 bytes, which parse never
            // yields; an empty comparison key is then harmless.
            RData::Nsec { .. } | RData::Other { .. } => {
                if let Ok(rd) = to_sd_rdata(self) {
                    out = raw_rdata(rd)
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: DnsName,
    /// The cache-flush bit (RFC 6762 §10.2): set on unique records.
    pub cache_flush: bool,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    pub fn rtype(&self) -> u16 {
        self.data.rtype()
    }

    /// Same name and rdata, whatever the TTL and cache-flush bit.
    pub fn same_rr(&self, other: &Record) -> bool {
        self.name == other.name && self.data == other.data
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub id: u16,
    pub is_response: bool,
    pub authoritative: bool,
    /// TC: in a query, more known answers follow (RFC 6762 §7.2).
    pub truncated: bool,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
}

impl Message {
    /// An mDNS response header: id 0, QR and AA set (RFC 6762 §18).
    pub fn response() -> Self {
        Self {
            is_response: true,
            authoritative: true,
            ..Self::default()
        }
    }

    pub fn query() -> Self {
        Self::default()
    }

    pub fn record_count(&self) -> usize {
        self.answers.len() + self.authorities.len() + self.additionals.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("packet of {0} bytes is shorter than a DNS header")]
    TooShort(usize),
    #[error("packet of {0} bytes is larger than any mDNS packet")]
    TooLarge(usize),
    /// Non-zero OPCODE: silently ignored per RFC 6762 §18.3.
    #[error("non-zero opcode {0}")]
    BadOpcode(u8),
    /// Non-zero RCODE: silently ignored per RFC 6762 §18.11.
    #[error("non-zero rcode {0}")]
    BadRcode(u8),
    #[error("section counts need more bytes than the packet has")]
    CountsPastEnd,
    #[error("malformed packet: {0}")]
    Malformed(String),
}

impl ParseError {
    /// True for well-formed packets that mDNS says to ignore, as opposed to garbage.
    pub fn is_bad_opcode_rcode(&self) -> bool {
        matches!(self, ParseError::BadOpcode(_) | ParseError::BadRcode(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot encode: {0}")]
    Wire(String),
    #[error("encoded packet of {0} bytes exceeds the mDNS maximum")]
    TooLarge(usize),
}

/// Parses one mDNS packet. Never panics; every malformed input is an `Err`.
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() < HEADER_LEN {
        return Err(ParseError::TooShort(bytes.len()));
    }
    if bytes.len() > MAX_PACKET {
        return Err(ParseError::TooLarge(bytes.len()));
    }
    let opcode = (bytes[2] >> 3) & 0x0f;
    if opcode != 0 {
        return Err(ParseError::BadOpcode(opcode));
    }
    let rcode = bytes[3] & 0x0f;
    if rcode != 0 {
        return Err(ParseError::BadRcode(rcode));
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
    // simple-dns reserves capacity for every announced item, so 4 × 65535 claimed records
    // in a 12-byte packet would cost megabytes before failing: refuse what cannot fit.
    let needed = count(4) * MIN_QUESTION + (count(6) + count(8) + count(10)) * MIN_RECORD;
    if needed > bytes.len() - HEADER_LEN {
        return Err(ParseError::CountsPastEnd);
    }
    let mut owned;
    let bytes = if bytes[3] & Z_BIT != 0 {
        owned = bytes.to_vec();
        owned[3] &= !Z_BIT;
        &owned[..]
    } else {
        bytes
    };
    let packet = Packet::parse(bytes).map_err(|e| ParseError::Malformed(e.to_string()))?;
    from_packet(&packet)
}

fn from_packet(p: &Packet<'_>) -> Result<Message, ParseError> {
    let mut msg = Message {
        id: p.id(),
        is_response: p.has_flags(PacketFlag::RESPONSE),
        authoritative: p.has_flags(PacketFlag::AUTHORITATIVE_ANSWER),
        truncated: p.has_flags(PacketFlag::TRUNCATION),
        ..Message::default()
    };
    for q in &p.questions {
        // Only the Internet class means anything on mDNS; other questions are skipped.
        if !matches!(q.qclass, QCLASS::CLASS(CLASS::IN) | QCLASS::ANY) {
            continue;
        }
        msg.questions.push(Question {
            name: from_sd_name(&q.qname)?,
            qtype: q.qtype.into(),
            unicast_response: q.unicast_response,
        });
    }
    for (src, dst) in [
        (&p.answers, &mut msg.answers),
        (&p.name_servers, &mut msg.authorities),
        (&p.additional_records, &mut msg.additionals),
    ] {
        for rr in src {
            if let Some(r) = from_sd_record(rr)? {
                dst.push(r);
            }
        }
    }
    Ok(msg)
}

fn from_sd_name(n: &Name<'_>) -> Result<DnsName, ParseError> {
    DnsName::from_labels(n.as_bytes()).map_err(|e| ParseError::Malformed(e.to_string()))
}

/// `None` for records mDNS has no use for: other classes and EDNS OPT pseudo-records.
fn from_sd_record(rr: &ResourceRecord<'_>) -> Result<Option<Record>, ParseError> {
    let rtype = u16::from(rr.rdata.type_code());
    if rr.class != CLASS::IN || rtype == TYPE_OPT {
        return Ok(None);
    }
    let empty = |t: u16| ParseError::Malformed(format!("empty rdata for type {t}"));
    let data = match &rr.rdata {
        SdRData::A(a) => RData::A(Ipv4Addr::from(a.address)),
        SdRData::AAAA(a) => RData::Aaaa(Ipv6Addr::from(a.address)),
        SdRData::PTR(p) => RData::Ptr(from_sd_name(&p.0)?),
        SdRData::SRV(s) => RData::Srv {
            priority: s.priority,
            weight: s.weight,
            port: s.port,
            target: from_sd_name(&s.target)?,
        },
        // simple-dns keeps TXT strings private; iter_raw drops empty strings and strings
        // starting with `=`, both of which RFC 6763 §6.4 says to ignore anyway.
        SdRData::TXT(t) => RData::Txt(
            t.iter_raw()
                .map(|(k, v)| {
                    let mut s = k.to_vec();
                    if let Some(v) = v {
                        s.push(b'=');
                        s.extend_from_slice(v);
                    }
                    s
                })
                .collect(),
        ),
        SdRData::NSEC(n) => RData::Nsec {
            next: from_sd_name(&n.next_name)?,
            types: n.types().map(u16::from).collect(),
        },
        SdRData::Empty(t) => match u16::from(*t) {
            TYPE_TXT => RData::Txt(Vec::new()),
            t @ (TYPE_A | TYPE_AAAA | TYPE_PTR | TYPE_SRV | TYPE_NSEC) => return Err(empty(t)),
            t => RData::Other {
                rtype: t,
                data: Vec::new(),
            },
        },
        other => RData::Other {
            rtype,
            data: raw_rdata(other.clone()),
        },
    };
    Ok(Some(Record {
        name: from_sd_name(&rr.name)?,
        cache_flush: rr.cache_flush,
        ttl: rr.ttl,
        data,
    }))
}

/// The uncompressed rdata of a record type we do not model, taken from a one-record packet
/// because simple-dns does not expose rdata writing on its own.
fn raw_rdata(rd: SdRData<'_>) -> Vec<u8> {
    let mut p = Packet::new_reply(0);
    p.answers.push(ResourceRecord::new(
        Name::new_unchecked(""),
        CLASS::IN,
        0,
        rd,
    ));
    // header, root name (1), type, class, ttl, rdlength (10)
    p.build_bytes_vec()
        .ok()
        .and_then(|b| b.get(HEADER_LEN + 11..).map(<[u8]>::to_vec))
        .unwrap_or_default()
}

fn to_sd_name(n: &DnsName) -> Name<'_> {
    let labels: Vec<Label<'_>> = n
        .labels()
        .iter()
        .map(|l| Label::new_unchecked(&l[..]))
        .collect();
    Name::new_with_labels(&labels)
}

fn to_sd_rdata(d: &RData) -> Result<SdRData<'_>, EncodeError> {
    let wire = |e: simple_dns::SimpleDnsError| EncodeError::Wire(e.to_string());
    Ok(match d {
        RData::A(a) => SdRData::A(rdata::A::from(*a)),
        RData::Aaaa(a) => SdRData::AAAA(rdata::AAAA::from(*a)),
        RData::Ptr(n) => SdRData::PTR(rdata::PTR(to_sd_name(n))),
        RData::Srv {
            priority,
            weight,
            port,
            target,
        } => SdRData::SRV(rdata::SRV {
            priority: *priority,
            weight: *weight,
            port: *port,
            target: to_sd_name(target),
        }),
        RData::Txt(strings) => {
            let mut txt = rdata::TXT::new();
            for s in strings.iter().filter(|s| !s.is_empty()) {
                txt.add_char_string(simple_dns::CharacterString::new(s).map_err(wire)?);
            }
            SdRData::TXT(txt)
        }
        RData::Nsec { next, types } => {
            let types: Vec<TYPE> = types.iter().map(|t| TYPE::from(*t)).collect();
            SdRData::NSEC(rdata::NSEC::from_types(to_sd_name(next), &types))
        }
        RData::Other { rtype, data } => {
            SdRData::NULL(*rtype, rdata::NULL::new(data).map_err(wire)?)
        }
    })
}

fn to_sd_record(r: &Record) -> Result<ResourceRecord<'_>, EncodeError> {
    Ok(
        ResourceRecord::new(to_sd_name(&r.name), CLASS::IN, r.ttl, to_sd_rdata(&r.data)?)
            .with_cache_flush(r.cache_flush),
    )
}

/// Encodes with name compression. Fails rather than emit a packet over 9000 bytes.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut p = Packet::new_query(msg.id);
    let mut flags = PacketFlag::empty();
    if msg.is_response {
        flags |= PacketFlag::RESPONSE;
    }
    if msg.authoritative {
        flags |= PacketFlag::AUTHORITATIVE_ANSWER;
    }
    if msg.truncated {
        flags |= PacketFlag::TRUNCATION;
    }
    p.set_flags(flags);
    for q in &msg.questions {
        let qtype = QTYPE::try_from(q.qtype).unwrap_or(QTYPE::TYPE(TYPE::Unknown(q.qtype)));
        p.questions.push(SdQuestion::new(
            to_sd_name(&q.name),
            qtype,
            QCLASS::CLASS(CLASS::IN),
            q.unicast_response,
        ));
    }
    for (src, dst) in [
        (&msg.answers, &mut p.answers),
        (&msg.authorities, &mut p.name_servers),
        (&msg.additionals, &mut p.additional_records),
    ] {
        for r in src {
            dst.push(to_sd_record(r)?);
        }
    }
    if p.questions.len() > usize::from(u16::MAX)
        || [&p.answers, &p.name_servers, &p.additional_records]
            .iter()
            .any(|s| s.len() > usize::from(u16::MAX))
    {
        return Err(EncodeError::TooLarge(usize::MAX));
    }
    let bytes = p
        .build_bytes_vec_compressed()
        .map_err(|e| EncodeError::Wire(e.to_string()))?;
    if bytes.len() > MAX_PACKET {
        return Err(EncodeError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Splits `msg` into messages whose encoding fits `budget` bytes (capped at the mDNS maximum),
/// keeping record order: questions and authorities go in the first packet, then answers, then
/// additionals. A record too big for the budget travels alone (RFC 6762 §17). For queries every
/// packet but the last carries TC, so responders wait for the rest of the known answers (§7.2).
pub fn split(msg: &Message, budget: usize) -> Result<Vec<Message>, EncodeError> {
    let budget = budget.clamp(HEADER_LEN + MIN_RECORD, MAX_PACKET);
    if encode(msg)?.len() <= budget {
        return Ok(vec![msg.clone()]);
    }
    let empty = || Message {
        id: msg.id,
        is_response: msg.is_response,
        authoritative: msg.authoritative,
        ..Message::default()
    };
    let mut first = empty();
    first.questions = msg.questions.clone();
    first.authorities = msg.authorities.clone();
    let mut out = Vec::new();
    let mut cur = first;
    let items = msg
        .answers
        .iter()
        .map(|r| (true, r))
        .chain(msg.additionals.iter().map(|r| (false, r)));
    for (is_answer, r) in items {
        let section = |m: &mut Message| {
            if is_answer {
                m.answers.push(r.clone())
            } else {
                m.additionals.push(r.clone())
            }
        };
        let mut trial = cur.clone();
        section(&mut trial);
        if encode(&trial)?.len() <= budget
            || trial.record_count() == 1 && trial.questions.is_empty()
        {
            cur = trial;
            continue;
        }
        if cur.record_count() > 0 || !cur.questions.is_empty() {
            out.push(std::mem::replace(&mut cur, empty()));
        }
        section(&mut cur);
    }
    out.push(cur);
    if !msg.is_response {
        let last = out.len() - 1;
        for (i, m) in out.iter_mut().enumerate() {
            m.truncated = i < last || msg.truncated;
        }
    }
    Ok(out)
}

//! Our service's TXT record (DESIGN §4): what a peer says about itself before any trust exists.
//! Encoding to TXT strings and decoding per RFC 6763 §6. Never carries a secret.

use std::fmt;

/// Protocol version we speak; a peer with another `pv` is shown but not offered.
pub const PROTOCOL_VERSION: &str = "1";

/// Where a host stands, as it advertises it (`st=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    /// Not in a cluster, no session open.
    Free,
    /// Running `init` with an open session.
    Initiator,
    /// Member of the named cluster.
    Member(String),
    /// A value this version does not know, kept for display.
    Unknown(String),
}

impl PeerState {
    fn parse(v: &str) -> Self {
        match v {
            "free" => PeerState::Free,
            "init" => PeerState::Initiator,
            _ => match v.strip_prefix("member:") {
                Some(name) if !name.is_empty() => PeerState::Member(name.to_string()),
                _ => PeerState::Unknown(v.to_string()),
            },
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerState::Free => f.write_str("free"),
            PeerState::Initiator => f.write_str("init"),
            PeerState::Member(c) => write!(f, "member:{c}"),
            PeerState::Unknown(s) => f.write_str(s),
        }
    }
}

/// The TXT keys of our service. Every field is optional on decode: a missing key is `None`,
/// never a guess.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerTxt {
    /// `pv`: protocol version.
    pub protocol: Option<String>,
    /// `v`: software version.
    pub version: Option<String>,
    /// `id`: stable host id.
    pub host_id: Option<String>,
    /// `fp`: short certificate fingerprint (hex).
    pub fingerprint: Option<String>,
    /// `st`: state.
    pub state: Option<PeerState>,
    /// `svc`: services offered (lxd, ovn, ceph), in the order given.
    pub services: Vec<String>,
    /// Keys this version does not know, first occurrence only, lower-cased; `None` for a boolean
    /// key (present without `=`).
    pub unknown: Vec<(String, Option<Vec<u8>>)>,
}

impl PeerTxt {
    /// TXT strings in a fixed order, each `key=value`. Values that would overflow a TXT string
    /// are cut at 200 bytes (a peer would rather see a short value than none).
    pub fn encode(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut put = |k: &str, v: &str| {
            let mut s = format!("{k}=").into_bytes();
            s.extend_from_slice(&v.as_bytes()[..v.len().min(200)]);
            out.push(s);
        };
        if let Some(v) = &self.protocol {
            put("pv", v);
        }
        if let Some(v) = &self.version {
            put("v", v);
        }
        if let Some(v) = &self.host_id {
            put("id", v);
        }
        if let Some(v) = &self.fingerprint {
            put("fp", v);
        }
        if let Some(v) = &self.state {
            put("st", &v.to_string());
        }
        if !self.services.is_empty() {
            put("svc", &self.services.join(","));
        }
        for (k, v) in &self.unknown {
            let mut s = k.as_bytes().to_vec();
            if let Some(v) = v {
                s.push(b'=');
                s.extend_from_slice(v);
            }
            if !k.is_empty() && s.len() <= 255 {
                out.push(s);
            }
        }
        out
    }

    /// Decodes TXT strings per RFC 6763 §6: keys are case-insensitive, the first occurrence of a
    /// key wins, strings starting with `=` are ignored, values are bytes (non-UTF-8 values of our
    /// keys read as missing).
    pub fn decode<S: AsRef<[u8]>>(strings: &[S]) -> Self {
        let mut txt = PeerTxt::default();
        let mut seen: Vec<String> = Vec::new();
        for s in strings {
            let s = s.as_ref();
            let (key, value) = match s.iter().position(|&b| b == b'=') {
                Some(0) => continue,
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None if s.is_empty() => continue,
                None => (s, None),
            };
            // Keys are printable US-ASCII (RFC 6763 §6.4); anything else is not a key.
            if !key.iter().all(|b| (0x20..=0x7e).contains(b)) {
                continue;
            }
            let key = String::from_utf8_lossy(key).to_ascii_lowercase();
            if seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            let text = value
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_string);
            match key.as_str() {
                "pv" => txt.protocol = text,
                "v" => txt.version = text,
                "id" => txt.host_id = text,
                "fp" => txt.fingerprint = text,
                "st" => txt.state = text.as_deref().map(PeerState::parse),
                "svc" => {
                    txt.services = text
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                }
                _ => txt.unknown.push((key, value.map(<[u8]>::to_vec))),
            }
        }
        txt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> PeerTxt {
        PeerTxt {
            protocol: Some(PROTOCOL_VERSION.into()),
            version: Some("0.1.0".into()),
            host_id: Some("3f9a".into()),
            fingerprint: Some("ab12cd34".into()),
            state: Some(PeerState::Member("prod".into())),
            services: vec!["lxd".into(), "ovn".into(), "ceph".into()],
            unknown: vec![],
        }
    }

    #[test]
    fn round_trip() {
        let enc = ours().encode();
        assert_eq!(enc[0], b"pv=1");
        assert!(enc.contains(&b"st=member:prod".to_vec()));
        assert!(enc.contains(&b"svc=lxd,ovn,ceph".to_vec()));
        assert_eq!(PeerTxt::decode(&enc), ours());
    }

    #[test]
    fn rfc6763_rules() {
        let strings: Vec<&[u8]> = vec![
            b"=ignored",
            b"ID=first",
            b"id=second",
            b"St=init",
            b"flag",
            b"",
            b"pv=",
            b"fp=\xff\xfe",
        ];
        let t = PeerTxt::decode(&strings);
        assert_eq!(t.host_id.as_deref(), Some("first"));
        assert_eq!(t.state, Some(PeerState::Initiator));
        assert_eq!(t.protocol.as_deref(), Some(""));
        assert_eq!(t.fingerprint, None);
        assert_eq!(t.version, None);
        assert!(t.services.is_empty());
        assert_eq!(t.unknown, vec![("flag".to_string(), None)]);
    }

    #[test]
    fn states() {
        assert_eq!(PeerState::parse("free"), PeerState::Free);
        assert_eq!(
            PeerState::parse("member:"),
            PeerState::Unknown("member:".into())
        );
        assert_eq!(
            PeerState::parse("later"),
            PeerState::Unknown("later".into())
        );
    }
}

//! `DnsName`: an owned domain name kept as raw labels, compared ASCII-case-insensitively.
//!
//! Labels are kept as bytes rather than dotted text because a DNS-SD instance label may hold
//! dots, spaces and UTF-8 (RFC 6763 §4.3); splitting text at dots would change the name.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Longest label on the wire (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;
/// Longest name on the wire, length bytes and terminating zero included.
pub const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty label")]
    EmptyLabel,
    #[error("label of {0} bytes is longer than 63")]
    LabelTooLong(usize),
    #[error("name of {0} bytes is longer than 255")]
    NameTooLong(usize),
}

/// A domain name as a list of labels. Equality, ordering and hashing ignore ASCII case
/// (RFC 6762 §16); the original spelling is kept for display and for the wire.
#[derive(Clone, Default)]
pub struct DnsName {
    labels: Vec<Vec<u8>>,
}

impl DnsName {
    /// The root name (no labels).
    pub fn root() -> Self {
        Self::default()
    }

    /// Builds a name from raw labels, checking the wire limits.
    pub fn from_labels<I, L>(labels: I) -> Result<Self, NameError>
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut out = Vec::new();
        for label in labels {
            let label = label.as_ref();
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL {
                return Err(NameError::LabelTooLong(label.len()));
            }
            out.push(label.to_vec());
        }
        let name = Self { labels: out };
        let len = name.wire_len();
        if len > MAX_NAME {
            return Err(NameError::NameTooLong(len));
        }
        Ok(name)
    }

    /// Splits plain dotted text such as `_microcloud._tcp.local.` at every dot. No escapes:
    /// use [`DnsName::prepend`] to add a label that contains dots.
    pub fn from_dotted(text: &str) -> Result<Self, NameError> {
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.is_empty() {
            return Ok(Self::root());
        }
        Self::from_labels(text.split('.'))
    }

    /// This name with `label` in front, e.g. an instance label before a service type.
    pub fn prepend(&self, label: &[u8]) -> Result<Self, NameError> {
        Self::from_labels(std::iter::once(label).chain(self.labels.iter().map(Vec::as_slice)))
    }

    pub fn labels(&self) -> &[Vec<u8>] {
        &self.labels
    }

    pub fn first_label(&self) -> Option<&[u8]> {
        self.labels.first().map(Vec::as_slice)
    }

    /// The name without its first label (the root stays the root).
    pub fn parent(&self) -> DnsName {
        Self {
            labels: self.labels.iter().skip(1).cloned().collect(),
        }
    }

    /// True when `self` is exactly one label below `parent`.
    pub fn is_child_of(&self, parent: &DnsName) -> bool {
        self.labels.len() == parent.labels.len() + 1 && self.parent() == *parent
    }

    /// Length on the wire without compression.
    pub fn wire_len(&self) -> usize {
        self.labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1
    }

    fn lower_labels(&self) -> impl Iterator<Item = impl Iterator<Item = u8> + '_> + '_ {
        self.labels
            .iter()
            .map(|l| l.iter().map(|b| b.to_ascii_lowercase()))
    }
}

impl PartialEq for DnsName {
    fn eq(&self, other: &Self) -> bool {
        self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl Eq for DnsName {}

impl Hash for DnsName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.labels.len());
        for label in self.lower_labels() {
            // A separator keeps ["ab","c"] and ["a","bc"] apart.
            for b in label {
                state.write_u8(b);
            }
            state.write_u8(0xff);
        }
    }
}

impl Ord for DnsName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.lower_labels()
            .map(Iterator::collect::<Vec<u8>>)
            .cmp(other.lower_labels().map(Iterator::collect::<Vec<u8>>))
    }
}

impl PartialOrd for DnsName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Presentation form: dots between labels, `\.` and `\\` inside them (RFC 6763 §4.3).
impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            let text = String::from_utf8_lossy(label);
            for c in text.chars() {
                match c {
                    '.' => f.write_str("\\.")?,
                    '\\' => f.write_str("\\\\")?,
                    c => write!(f, "{c}")?,
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DnsName({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn case_insensitive_equality_and_hash() {
        let a = DnsName::from_dotted("Host-1.LOCAL.").unwrap();
        let b = DnsName::from_dotted("host-1.local").unwrap();
        assert_eq!(a, b);
        let set: HashSet<_> = [a.clone()].into_iter().collect();
        assert!(set.contains(&b));
        assert_eq!(a.to_string(), "Host-1.LOCAL");
    }

    #[test]
    fn labels_with_dots_survive() {
        let svc = DnsName::from_dotted("_microcloud._tcp.local").unwrap();
        let inst = svc.prepend(b"My.Host (2)").unwrap();
        assert_eq!(inst.labels().len(), 4);
        assert!(inst.is_child_of(&svc));
        assert_eq!(inst.to_string(), "My\\.Host (2)._microcloud._tcp.local");
    }

    #[test]
    fn limits() {
        assert_eq!(
            DnsName::from_labels([vec![b'a'; 64]]),
            Err(NameError::LabelTooLong(64))
        );
        let long: Vec<Vec<u8>> = (0..5).map(|_| vec![b'a'; 60]).collect();
        assert!(matches!(
            DnsName::from_labels(long),
            Err(NameError::NameTooLong(_))
        ));
        assert_eq!(DnsName::from_dotted("a..b"), Err(NameError::EmptyLabel));
    }
}

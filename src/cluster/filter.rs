//! The preseed's disk filter language (MicroCloud's `find:` strings, LXD `shared/filter` style),
//! parsed and evaluated over our disk facts. Pure.
//!
//! Grammar: `expr := term ('||' term)*`, `term := factor ('&&' factor)*`,
//! `factor := '!' factor | '(' expr ')' | field op value`, `op := == != < > <= >=`.
//! String comparisons are case-insensitive with `*` as a wildcard (MicroCloud's tests rely on
//! `device_id == *disk1`); `size` accepts byte suffixes (`10GiB`, `500MB`).

use crate::inventory::model::{Disk, DiskKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disk filter {filter:?}: {message}")]
pub struct FilterError {
    pub filter: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: String,
        op: Op,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// Fields a filter may name, and what they read.
pub const FIELDS: &[&str] = &[
    "id",
    "device",
    "device_id",
    "device_path",
    "model",
    "vendor",
    "serial",
    "wwn",
    "type",
    "size",
    "rotational",
    "removable",
    "read_only",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Op(Op),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        let two = s.get(i..i + 2).unwrap_or("");
        match (c, two) {
            (c, _) if c.is_whitespace() => i += 1,
            (_, "&&") => (out.push(Tok::And), i += 2).1,
            (_, "||") => (out.push(Tok::Or), i += 2).1,
            (_, "==") => (out.push(Tok::Op(Op::Eq)), i += 2).1,
            (_, "!=") => (out.push(Tok::Op(Op::Ne)), i += 2).1,
            (_, "<=") => (out.push(Tok::Op(Op::Le)), i += 2).1,
            (_, ">=") => (out.push(Tok::Op(Op::Ge)), i += 2).1,
            ('<', _) => (out.push(Tok::Op(Op::Lt)), i += 1).1,
            ('>', _) => (out.push(Tok::Op(Op::Gt)), i += 1).1,
            ('!', _) => (out.push(Tok::Not), i += 1).1,
            ('(', _) => (out.push(Tok::Open), i += 1).1,
            (')', _) => (out.push(Tok::Close), i += 1).1,
            ('\'' | '"', _) => {
                let end = s[i + 1..].find(c).ok_or("unterminated quote")?;
                out.push(Tok::Word(s[i + 1..i + 1 + end].to_string()));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !(b[i] as char).is_whitespace()
                    && !"()<>=!&|".contains(b[i] as char)
                {
                    i += 1;
                }
                if start == i {
                    return Err(format!("unexpected {c:?}"));
                }
                out.push(Tok::Word(s[start..i].to_string()));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let mut l = self.term()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            l = Expr::Or(Box::new(l), Box::new(self.term()?));
        }
        Ok(l)
    }
    fn term(&mut self) -> Result<Expr, String> {
        let mut l = self.factor()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            l = Expr::And(Box::new(l), Box::new(self.factor()?));
        }
        Ok(l)
    }
    fn factor(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Tok::Not) => Ok(Expr::Not(Box::new(self.factor()?))),
            Some(Tok::Open) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("missing ')'".into()),
                }
            }
            Some(Tok::Word(field)) => {
                let field = field.to_ascii_lowercase();
                if !FIELDS.contains(&field.as_str()) {
                    return Err(format!(
                        "unknown field {field:?} (known: {})",
                        FIELDS.join(", ")
                    ));
                }
                let op = match self.next() {
                    Some(Tok::Op(op)) => op,
                    _ => return Err(format!("expected a comparison after {field:?}")),
                };
                let value = match self.next() {
                    Some(Tok::Word(v)) => v,
                    _ => return Err(format!("expected a value after {field:?}")),
                };
                Ok(Expr::Cmp { field, op, value })
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("unexpected end".into()),
        }
    }
}

/// Parse a `find:` string.
pub fn parse(filter: &str) -> Result<Expr, FilterError> {
    let err = |message: String| FilterError {
        filter: filter.to_string(),
        message,
    };
    if filter.trim().is_empty() {
        return Err(err("empty filter".into()));
    }
    let mut p = Parser {
        toks: lex(filter).map_err(err)?,
        pos: 0,
    };
    let e = p.expr().map_err(err)?;
    if p.pos < p.toks.len() {
        return Err(err(format!("unexpected {:?}", p.toks[p.pos])));
    }
    Ok(e)
}

/// `10GiB`, `500MB`, `1073741824` → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    Some((n * mult) as u64)
}

/// Case-insensitive match with `*` wildcards.
fn glob_eq(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    glob::Pattern::new(&p).map_or(p == t, |g| g.matches(&t))
}

fn field_text(d: &Disk, field: &str) -> Option<String> {
    let id = || {
        d.links
            .iter()
            .find(|l| l.starts_with("/dev/disk/by-id/"))
            .map(|l| l.trim_start_matches("/dev/disk/by-id/").to_string())
    };
    match field {
        "id" | "device" => Some(d.name.clone()),
        "device_id" => id(),
        "device_path" => d
            .links
            .iter()
            .find(|l| l.starts_with("/dev/disk/by-path/"))
            .map(|l| l.trim_start_matches("/dev/disk/by-path/").to_string()),
        "model" => d.model.clone(),
        "vendor" => d.vendor.clone(),
        "serial" => d.serial.clone(),
        "wwn" => d.wwn.clone(),
        "type" => Some(match (d.kind, d.bus.as_deref()) {
            (DiskKind::Disk, Some(bus)) => bus.to_string(),
            (k, _) => format!("{k:?}").to_ascii_lowercase(),
        }),
        "rotational" => d.rotational.map(|b| b.to_string()),
        "removable" => d.removable.map(|b| b.to_string()),
        "read_only" => d.read_only.map(|b| b.to_string()),
        _ => None,
    }
}

/// Whether disk `d` matches. Unknown facts never match (except through `!=`).
pub fn matches(e: &Expr, d: &Disk) -> bool {
    match e {
        Expr::And(a, b) => matches(a, d) && matches(b, d),
        Expr::Or(a, b) => matches(a, d) || matches(b, d),
        Expr::Not(a) => !matches(a, d),
        Expr::Cmp { field, op, value } if field == "size" => {
            let (Some(have), Some(want)) = (d.size, parse_size(value)) else {
                return false;
            };
            match op {
                Op::Eq => have == want,
                Op::Ne => have != want,
                Op::Lt => have < want,
                Op::Gt => have > want,
                Op::Le => have <= want,
                Op::Ge => have >= want,
            }
        }
        Expr::Cmp { field, op, value } => {
            let have = field_text(d, field);
            match op {
                Op::Eq => have.is_some_and(|h| glob_eq(value, &h)),
                Op::Ne => !have.is_some_and(|h| glob_eq(value, &h)),
                // Ordering on text is rarely meant; compare as strings for completeness.
                Op::Lt => have.is_some_and(|h| h.as_str() < value.as_str()),
                Op::Gt => have.is_some_and(|h| h.as_str() > value.as_str()),
                Op::Le => have.is_some_and(|h| h.as_str() <= value.as_str()),
                Op::Ge => have.is_some_and(|h| h.as_str() >= value.as_str()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn disk(name: &str, size: u64) -> Disk {
        Disk {
            links: vec![format!("/dev/disk/by-id/virtio-lxd_{name}")],
            bus: Some("nvme".into()),
            size: Some(size),
            logical_sector_size: None,
            physical_sector_size: None,
            model: Some("Samsung SSD".into()),
            serial: Some("S123".into()),
            eligible: true,
            ..Disk::example(name)
        }
    }

    fn m(f: &str, d: &Disk) -> bool {
        matches(&parse(f).unwrap(), d)
    }

    #[test]
    fn microcloud_examples() {
        let d = disk("disk1", 20 << 30);
        assert!(m("device_id == *disk1", &d));
        assert!(!m("device_id == *disk2", &d));
        assert!(m("size > 10GiB && type == nvme", &d));
        assert!(!m("size > 30GiB && type == nvme", &d));
        assert!(m("model == 'samsung ssd'", &d));
        assert!(m("!(size < 1GiB) || serial == x", &d));
        assert!(m("rotational == false", &d));
    }

    #[test]
    fn bad_filters_say_why() {
        for (f, want) in [
            ("", "empty"),
            ("colour == red", "unknown field"),
            ("size >", "expected a value"),
            ("(size > 1", "missing ')'"),
            ("model == 'x", "unterminated"),
            ("size > 1 size", "unexpected"),
        ] {
            let e = parse(f).unwrap_err();
            assert!(e.to_string().contains(want), "{f:?}: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10GiB"), Some(10 << 30));
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("42"), Some(42));
        assert_eq!(parse_size("1.5GiB"), Some(3 << 29));
        assert_eq!(parse_size("ten"), None);
    }
}

//! `microcloud init` without a preseed: which disk of each member the `local` pool uses. The
//! candidates are every member's usable disks and those only content stands in the way of
//! (offered for wiping, each confirmed by typing `wipe`); `--local-disk MEMBER=DISK` answers
//! without a terminal.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context};

use crate::api::local_trust::MemberInventory;
use crate::cluster::plan::LocalChoice;
use crate::inventory::rules::disk::{disk_reasons, wipe_would_clear};
use crate::inventory::{format_size, DiskPolicy};
use crate::preseed::schema::DiskChoice;

/// One disk the operator may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub member: String,
    pub path: String,
    pub name: String,
    pub size: Option<u64>,
    /// Empty when the disk is blank; else what a wipe would erase.
    pub erases: Vec<String>,
}

/// Every member's candidates, members in order.
pub fn candidates(members: &[MemberInventory]) -> anyhow::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for m in members {
        let policy = DiskPolicy::new(&m.inventory.allow_disk)
            .with_context(|| format!("{}: its allow-list", m.name))?;
        for d in &m.inventory.disks {
            let reasons = disk_reasons(d, &policy);
            if reasons.is_empty() || wipe_would_clear(d, &policy) {
                out.push(Candidate {
                    member: m.name.clone(),
                    path: d.stable_path.clone(),
                    name: d.name.clone(),
                    size: d.size,
                    erases: reasons,
                });
            }
        }
    }
    Ok(out)
}

/// `1,4,7` (one row per member), `none`, or empty (no answer yet) → the rows chosen.
pub fn parse_rows(
    line: &str,
    cands: &[Candidate],
    members: &[String],
) -> Result<Vec<usize>, String> {
    let line = line.trim();
    if line.eq_ignore_ascii_case("none") {
        return Ok(vec![]);
    }
    let mut rows = Vec::new();
    for part in line.split([',', ' ']).filter(|p| !p.is_empty()) {
        let k: usize = part
            .parse()
            .map_err(|_| format!("{part:?} is not a row number"))?;
        if k == 0 || k > cands.len() {
            return Err(format!("no row {k} (rows 1 to {})", cands.len()));
        }
        rows.push(k - 1);
    }
    for m in members {
        match rows.iter().filter(|r| cands[**r].member == *m).count() {
            0 => return Err(format!("no disk chosen for {m}: every member needs one")),
            1 => {}
            _ => return Err(format!("more than one disk chosen for {m}")),
        }
    }
    Ok(rows)
}

/// `MEMBER=DISK` flags → explicit choices (never wiping: that takes a preseed or the prompt).
pub fn from_flags(flags: &[String]) -> anyhow::Result<LocalChoice> {
    let mut explicit = BTreeMap::new();
    for f in flags {
        let (m, d) = f
            .split_once('=')
            .filter(|(m, d)| !m.is_empty() && !d.is_empty())
            .with_context(|| format!("--local-disk {f:?}: expected MEMBER=DISK"))?;
        let choice = DiskChoice {
            path: d.to_string(),
            wipe: false,
            encrypt: false,
        };
        if explicit.insert(m.to_string(), choice).is_some() {
            bail!("--local-disk names {m} twice");
        }
    }
    Ok(LocalChoice {
        explicit,
        filters: vec![],
    })
}

/// Ask on the terminal (its lines come from `lines`); an empty choice means no local pool.
pub async fn ask(
    members: &[MemberInventory],
    lines: &mut tokio::sync::mpsc::Receiver<String>,
) -> anyhow::Result<LocalChoice> {
    let cands = candidates(members)?;
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let mut err = std::io::stderr();
    let lacking: Vec<&str> = names
        .iter()
        .filter(|n| !cands.iter().any(|c| &c.member == *n))
        .map(String::as_str)
        .collect();
    if !lacking.is_empty() {
        writeln!(
            err,
            "No local pool: no usable disk on {} (`microcloud inventory` there says why).",
            lacking.join(", ")
        )?;
        return Ok(LocalChoice::default());
    }
    writeln!(err, "\nDisks for the local storage pool (one per member):")?;
    for (i, c) in cands.iter().enumerate() {
        let note = if c.erases.is_empty() {
            String::new()
        } else {
            format!("   WIPE: {}", c.erases.join("; "))
        };
        writeln!(
            err,
            " {:>2}  {:<16} {:<40} {:>9}{note}",
            i + 1,
            c.member,
            c.path,
            c.size.map_or("-".into(), format_size)
        )?;
    }
    loop {
        write!(
            err,
            "Rows to use (e.g. 1,3,5), or `none` for no local pool: "
        )?;
        err.flush()?;
        let Some(line) = lines.recv().await else {
            bail!("standard input closed before the disks were chosen");
        };
        let rows = match parse_rows(&line, &cands, &names) {
            Ok(r) => r,
            Err(e) => {
                writeln!(err, "{e}")?;
                continue;
            }
        };
        let mut explicit = BTreeMap::new();
        for r in rows {
            let c = &cands[r];
            let wipe = !c.erases.is_empty();
            if wipe {
                write!(
                    err,
                    "{} on {} holds {}. Type `wipe` to erase it: ",
                    c.path,
                    c.member,
                    c.erases.join("; ")
                )?;
                err.flush()?;
                let answer = lines.recv().await.unwrap_or_default();
                if answer.trim() != "wipe" {
                    bail!("{} on {} not wiped: nothing was changed", c.path, c.member);
                }
            }
            explicit.insert(
                c.member.clone(),
                DiskChoice {
                    path: c.path.clone(),
                    wipe,
                    encrypt: false,
                },
            );
        }
        return Ok(LocalChoice {
            explicit,
            filters: vec![],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(member: &str, name: &str) -> Candidate {
        Candidate {
            member: member.into(),
            path: format!("/dev/{name}"),
            name: name.into(),
            size: None,
            erases: vec![],
        }
    }

    #[test]
    fn one_row_per_member() {
        let cands = vec![c("a", "vdb"), c("a", "vdc"), c("b", "vdb")];
        let names = vec!["a".to_string(), "b".to_string()];
        assert_eq!(parse_rows("2,3", &cands, &names).unwrap(), vec![1, 2]);
        assert_eq!(parse_rows(" 1 3 ", &cands, &names).unwrap(), vec![0, 2]);
        assert!(parse_rows("none", &cands, &names).unwrap().is_empty());
        assert!(parse_rows("1", &cands, &names)
            .unwrap_err()
            .contains("no disk chosen for b"));
        assert!(parse_rows("1,2,3", &cands, &names)
            .unwrap_err()
            .contains("more than one disk chosen for a"));
        assert!(parse_rows("4", &cands, &names)
            .unwrap_err()
            .contains("no row 4"));
        assert!(parse_rows("x", &cands, &names).is_err());
    }

    #[test]
    fn flags() {
        let l = from_flags(&["m1=/dev/vdb".into(), "m2=vdc".into()]).unwrap();
        assert_eq!(l.explicit["m2"].path, "vdc");
        assert!(!l.explicit["m1"].wipe);
        assert!(from_flags(&["m1".into()])
            .unwrap_err()
            .to_string()
            .contains("MEMBER=DISK"));
        assert!(from_flags(&["m1=a".into(), "m1=b".into()]).is_err());
    }
}

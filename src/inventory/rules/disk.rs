//! Which disks may back a storage pool (DESIGN §3): only a disk that carries nothing at all.
//! Every refusal says what is on the disk, so the operator knows what a wipe would destroy.

use glob::Pattern;

use crate::inventory::model::{Disk, DiskKind, Signature};

/// Below this a disk cannot hold a useful pool (stratisd uses the same floor).
pub const MIN_DISK_SIZE: u64 = 1 << 30;

/// The operator's disk allow-list (`--allow-disk GLOB`, or `allow-disk` in the config).
///
/// Empty: every real disk is considered and virtual ones (loop, zram, ram) are refused.
/// Non-empty: only the disks it names are considered, virtual ones included.
#[derive(Debug, Clone, Default)]
pub struct DiskPolicy {
    allow: Vec<Pattern>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid --allow-disk pattern {pattern:?}: {source}")]
pub struct PatternError {
    pattern: String,
    source: glob::PatternError,
}

impl DiskPolicy {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let allow = patterns
            .iter()
            .map(|p| {
                Pattern::new(p.as_ref()).map_err(|source| PatternError {
                    pattern: p.as_ref().to_string(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(DiskPolicy { allow })
    }

    pub fn is_restricted(&self) -> bool {
        !self.allow.is_empty()
    }

    /// Whether a pattern names the disk by kernel name, /dev path or one of its stable links.
    pub fn names(&self, disk: &Disk) -> bool {
        self.allow.iter().any(|p| {
            p.matches(&disk.name)
                || p.matches(&disk.path)
                || disk.links.iter().any(|l| p.matches(l))
        })
    }

    fn patterns(&self) -> String {
        let v: Vec<&str> = self.allow.iter().map(Pattern::as_str).collect();
        v.join(", ")
    }
}

fn describe_signature(sig: &Signature) -> String {
    let what = match (sig.kind.as_str(), sig.usage.as_deref()) {
        ("LVM2_member", _) => "an LVM physical volume (LVM2_member)".to_string(),
        ("linux_raid_member", _) => "an md RAID member (linux_raid_member)".to_string(),
        ("crypto_LUKS", _) => "a LUKS encrypted volume".to_string(),
        ("swap", _) => "a swap signature".to_string(),
        ("zfs_member", _) => "a ZFS pool member (zfs_member)".to_string(),
        ("ceph_bluestore", _) => "a Ceph BlueStore OSD".to_string(),
        (t, Some("partition_table")) => format!("a {t} partition table signature"),
        (t, Some("filesystem")) => format!("a {t} filesystem"),
        (t, Some(u)) => format!("a {t} signature ({u})"),
        (t, None) => format!("a {t} signature"),
    };
    let mut extra = Vec::new();
    if let Some(l) = &sig.label {
        extra.push(format!("label {l:?}"));
    }
    if let Some(u) = &sig.uuid {
        extra.push(format!("UUID {u}"));
    }
    if let Some(o) = sig.offset {
        if o != 0 {
            extra.push(format!("at offset {o}"));
        }
    }
    if extra.is_empty() {
        what
    } else {
        format!("{what} ({})", extra.join(", "))
    }
}

fn human(bytes: u64) -> String {
    crate::inventory::format_size(bytes)
}

/// Every reason `disk` cannot back a storage pool; empty means eligible.
pub fn disk_reasons(disk: &Disk, policy: &DiskPolicy) -> Vec<String> {
    let mut r = Vec::new();
    let named = policy.names(disk);
    match disk.kind {
        DiskKind::Loop | DiskKind::Zram | DiskKind::Ram if !named => {
            let what = match disk.kind {
                DiskKind::Loop => "loop device",
                DiskKind::Zram => "zram device",
                _ => "RAM disk",
            };
            r.push(format!(
                "{what}: virtual, used only when named with --allow-disk {}",
                disk.name
            ));
        }
        _ if policy.is_restricted() && !named => {
            r.push(format!("not in the disk allow-list ({})", policy.patterns()));
        }
        DiskKind::Cdrom => r.push("CD-ROM drive".to_string()),
        DiskKind::DeviceMapper => {
            r.push("device-mapper device (LVM, crypt or multipath map): choose the disk beneath it".into())
        }
        DiskKind::Md => r.push("md RAID array: choose its member disks instead".into()),
        _ => {}
    }
    if disk.multipath_member {
        r.push("path of a multipath map: use the dm-mpath device instead".into());
    }
    if disk.read_only == Some(true) {
        r.push("read-only".into());
    }
    match disk.size {
        Some(0) => r.push("empty (size 0: no medium?)".into()),
        Some(s) if s < MIN_DISK_SIZE => r.push(format!(
            "too small: {} (at least {})",
            human(s),
            human(MIN_DISK_SIZE)
        )),
        None => r.push("size unknown".into()),
        _ => {}
    }
    if !disk.probe_errors.is_empty() {
        r.push(format!(
            "contents unknown, refusing a disk that could not be read: {}",
            disk.probe_errors.join("; ")
        ));
    }
    if disk.ambiguous {
        r.push(format!(
            "libblkid found conflicting signatures (ambiguous probe); inspect with: wipefs --no-act {}",
            disk.path
        ));
    }
    if let Some(pt) = &disk.partition_table {
        let names: Vec<String> = disk
            .partitions
            .iter()
            .map(|p| {
                p.name
                    .clone()
                    .or_else(|| p.number.map(|n| format!("#{n}")))
                    .unwrap_or_else(|| "?".into())
            })
            .collect();
        if names.is_empty() {
            r.push(format!("has an empty {} partition table", pt.kind));
        } else {
            r.push(format!(
                "has a {} partition table with {} partition{}: {}",
                pt.kind,
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ));
        }
    } else if !disk.partitions.is_empty() {
        r.push(format!("has {} partitions", disk.partitions.len()));
    }
    for sig in &disk.signatures {
        // A table's own magics (primary, backup header, protective MBR) are reported above; a
        // table magic without a readable table (a lone backup GPT header) is reported here.
        if disk.partition_table.is_some() && sig.usage.as_deref() == Some("partition_table") {
            continue;
        }
        r.push(format!("carries {}", describe_signature(sig)));
    }
    for m in &disk.mounts {
        r.push(format!("mounted at {m}"));
    }
    if disk.swap {
        r.push("in use as swap".into());
    }
    if !disk.holders.is_empty() {
        r.push(format!(
            "held by {} (device-mapper, LVM, md or bcache)",
            disk.holders.join(", ")
        ));
    }
    for p in &disk.partitions {
        let pname = p
            .name
            .clone()
            .or_else(|| p.number.map(|n| format!("#{n}")))
            .unwrap_or_else(|| "?".into());
        for sig in &p.signatures {
            r.push(format!("partition {pname} carries {}", describe_signature(sig)));
        }
        for m in &p.mounts {
            r.push(format!("partition {pname} is mounted at {m}"));
        }
        if p.swap {
            r.push(format!("partition {pname} is in use as swap"));
        }
        if !p.holders.is_empty() {
            r.push(format!("partition {pname} is held by {}", p.holders.join(", ")));
        }
    }
    r
}

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

    /// The patterns as given.
    pub fn pattern_strings(&self) -> Vec<String> {
        self.allow.iter().map(|p| p.as_str().to_string()).collect()
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
        (t, Some("partition_table")) => format!("partition-table signature {t}"),
        (t, Some("filesystem")) => format!("filesystem {t}"),
        (t, Some(u)) => format!("signature {t} ({u})"),
        (t, None) => format!("signature {t}"),
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
            r.push(format!(
                "not in the disk allow-list ({})",
                policy.patterns()
            ));
        }
        DiskKind::Cdrom => r.push("CD-ROM drive".to_string()),
        DiskKind::DeviceMapper => r.push(
            "device-mapper device (LVM, crypt or multipath map): choose the disk beneath it".into(),
        ),
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
            r.push(format!(
                "partition {pname} carries {}",
                describe_signature(sig)
            ));
        }
        for m in &p.mounts {
            r.push(format!("partition {pname} is mounted at {m}"));
        }
        if p.swap {
            r.push(format!("partition {pname} is in use as swap"));
        }
        if !p.holders.is_empty() {
            r.push(format!(
                "partition {pname} is held by {}",
                p.holders.join(", ")
            ));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::model::{Partition, PartitionTable};

    fn disk(name: &str, kind: DiskKind) -> Disk {
        Disk {
            kind,
            ..Disk::example(name)
        }
    }

    fn sig(kind: &str, usage: &str) -> Signature {
        Signature::example(kind, usage)
    }

    fn part(name: &str, n: u32) -> Partition {
        Partition {
            name: Some(name.into()),
            path: Some(format!("/dev/{name}")),
            number: Some(n),
            start: Some(1 << 20),
            size: Some(1 << 30),
            part_type: None,
            part_uuid: None,
            part_name: None,
            signatures: vec![],
            mounts: vec![],
            swap: false,
            holders: vec![],
        }
    }

    fn none() -> DiskPolicy {
        DiskPolicy::default()
    }

    fn only(r: Vec<String>) -> String {
        assert_eq!(r.len(), 1, "{r:?}");
        r.into_iter().next().unwrap()
    }

    #[test]
    fn blank_disk_is_eligible() {
        assert!(disk_reasons(&disk("sdb", DiskKind::Disk), &none()).is_empty());
    }

    #[test]
    fn virtual_disks_need_the_allow_list() {
        for (name, kind, what) in [
            ("loop3", DiskKind::Loop, "loop device"),
            ("zram0", DiskKind::Zram, "zram device"),
            ("ram0", DiskKind::Ram, "RAM disk"),
        ] {
            let d = disk(name, kind);
            let r = only(disk_reasons(&d, &none()));
            assert!(
                r.starts_with(what) && r.contains(&format!("--allow-disk {name}")),
                "{r}"
            );
            assert!(disk_reasons(&d, &DiskPolicy::new(&[name]).unwrap()).is_empty());
        }
    }

    #[test]
    fn allow_list_restricts_real_disks_and_matches_paths_and_links() {
        let mut d = disk("sdb", DiskKind::Disk);
        d.links = vec!["/dev/disk/by-id/wwn-0x5000".into()];
        let r = only(disk_reasons(&d, &DiskPolicy::new(&["sdc"]).unwrap()));
        assert_eq!(r, "not in the disk allow-list (sdc)");
        for p in ["sd?", "/dev/sdb", "/dev/disk/by-id/wwn-*"] {
            assert!(
                disk_reasons(&d, &DiskPolicy::new(&[p]).unwrap()).is_empty(),
                "{p}"
            );
        }
        assert!(DiskPolicy::new(&["[bad"])
            .unwrap_err()
            .to_string()
            .contains("[bad"));
    }

    #[test]
    fn cdrom_dm_md_multipath_and_read_only_are_refused() {
        assert_eq!(
            only(disk_reasons(&disk("sr0", DiskKind::Cdrom), &none())),
            "CD-ROM drive"
        );
        assert!(
            only(disk_reasons(&disk("dm-0", DiskKind::DeviceMapper), &none()))
                .contains("device-mapper")
        );
        assert!(only(disk_reasons(&disk("md0", DiskKind::Md), &none())).contains("md RAID array"));
        let mut d = disk("sdc", DiskKind::Disk);
        d.multipath_member = true;
        assert!(only(disk_reasons(&d, &none())).contains("multipath"));
        let mut d = disk("sdd", DiskKind::Disk);
        d.read_only = Some(true);
        assert_eq!(only(disk_reasons(&d, &none())), "read-only");
    }

    #[test]
    fn size_rules() {
        let mut d = disk("sde", DiskKind::Disk);
        d.size = Some(0);
        assert!(only(disk_reasons(&d, &none())).contains("size 0"));
        d.size = Some(100 << 20);
        assert_eq!(
            only(disk_reasons(&d, &none())),
            "too small: 100.0 MiB (at least 1.0 GiB)"
        );
        d.size = None;
        assert_eq!(only(disk_reasons(&d, &none())), "size unknown");
    }

    #[test]
    fn unreadable_and_ambiguous_disks_are_refused() {
        let mut d = disk("vda", DiskKind::Disk);
        d.probe_errors = vec!["opening /dev/vda: Operation not permitted".into()];
        assert!(only(disk_reasons(&d, &none())).contains("contents unknown"));
        let mut d = disk("sdf", DiskKind::Disk);
        d.ambiguous = true;
        assert!(only(disk_reasons(&d, &none())).contains("wipefs --no-act /dev/sdf"));
    }

    #[test]
    fn filesystem_signature_names_type_label_and_uuid() {
        let mut d = disk("sdg", DiskKind::Disk);
        let mut s = sig("ext4", "filesystem");
        s.label = Some("data".into());
        s.uuid = Some("1234".into());
        d.signatures.push(s);
        assert_eq!(
            only(disk_reasons(&d, &none())),
            "carries filesystem ext4 (label \"data\", UUID 1234)"
        );
    }

    #[test]
    fn member_signatures_say_what_they_belong_to() {
        for (t, u, want) in [
            ("LVM2_member", "raid", "LVM physical volume"),
            ("linux_raid_member", "raid", "md RAID member"),
            ("crypto_LUKS", "crypto", "LUKS"),
            ("swap", "other", "swap signature"),
            ("zfs_member", "filesystem", "ZFS pool member"),
            ("ceph_bluestore", "other", "Ceph BlueStore"),
        ] {
            let mut d = disk("sdh", DiskKind::Disk);
            d.signatures.push(sig(t, u));
            let r = only(disk_reasons(&d, &none()));
            assert!(r.contains(want), "{t}: {r}");
        }
    }

    #[test]
    fn partition_tables_count_their_partitions() {
        let mut d = disk("sdi", DiskKind::Disk);
        d.partition_table = Some(PartitionTable {
            kind: "dos".into(),
            uuid: None,
        });
        d.signatures.push(sig("dos", "partition_table"));
        assert_eq!(
            only(disk_reasons(&d, &none())),
            "has an empty dos partition table"
        );
        d.partition_table = Some(PartitionTable {
            kind: "gpt".into(),
            uuid: None,
        });
        d.signatures = vec![
            sig("gpt", "partition_table"),
            sig("PMBR", "partition_table"),
        ];
        d.partitions = vec![part("sdi1", 1), part("sdi2", 2)];
        assert_eq!(
            only(disk_reasons(&d, &none())),
            "has a gpt partition table with 2 partitions: sdi1, sdi2"
        );
    }

    #[test]
    fn lone_table_magic_is_reported_with_its_offset() {
        let mut d = disk("sdj", DiskKind::Disk);
        let mut s = sig("gpt", "partition_table");
        s.offset = Some((10 << 30) - 512);
        d.signatures.push(s);
        let r = only(disk_reasons(&d, &none()));
        assert!(
            r.contains("partition-table signature gpt") && r.contains("at offset"),
            "{r}"
        );
    }

    #[test]
    fn partition_contents_are_named() {
        let mut d = disk("sdk", DiskKind::Disk);
        d.partition_table = Some(PartitionTable {
            kind: "gpt".into(),
            uuid: None,
        });
        let mut p = part("sdk1", 1);
        p.signatures.push(sig("xfs", "filesystem"));
        p.mounts.push("/srv".into());
        p.holders.push("dm-3".into());
        let mut q = part("sdk2", 2);
        q.name = None;
        q.swap = true;
        d.partitions = vec![p, q];
        let r = disk_reasons(&d, &none());
        assert_eq!(r.len(), 5, "{r:?}");
        assert!(r.contains(&"partition sdk1 carries filesystem xfs".to_string()));
        assert!(r.contains(&"partition sdk1 is mounted at /srv".to_string()));
        assert!(r.contains(&"partition sdk1 is held by dm-3".to_string()));
        assert!(r.contains(&"partition #2 is in use as swap".to_string()));
    }

    #[test]
    fn mounts_swap_and_holders_on_the_whole_disk() {
        let mut d = disk("sdl", DiskKind::Disk);
        d.mounts = vec!["/mnt/a".into()];
        d.swap = true;
        d.holders = vec!["dm-0".into()];
        let r = disk_reasons(&d, &none());
        assert_eq!(
            r,
            vec![
                "mounted at /mnt/a".to_string(),
                "in use as swap".to_string(),
                "held by dm-0 (device-mapper, LVM, md or bcache)".to_string()
            ]
        );
    }
}

/// Whether wiping `disk` would make it eligible: everything it is refused for is content (a
/// partition table, signatures, an ambiguous probe), nothing that a wipe cannot or must not
/// touch (mounted, swap, held, read-only, too small, virtual and not allowed, unreadable).
pub fn wipe_would_clear(disk: &Disk, policy: &DiskPolicy) -> bool {
    let busy_partition = disk
        .partitions
        .iter()
        .any(|p| !p.mounts.is_empty() || p.swap || !p.holders.is_empty());
    if busy_partition {
        return false;
    }
    let mut blank = disk.clone();
    blank.partition_table = None;
    blank.partitions.clear();
    blank.signatures.clear();
    blank.ambiguous = false;
    disk_reasons(&blank, policy).is_empty()
}

#[cfg(test)]
mod wipe_tests {
    use super::*;
    use crate::inventory::model::{Partition, PartitionTable};

    fn base() -> Disk {
        let mut d = Disk::example("sdz");
        d.signatures.push(Signature::example("ext4", "filesystem"));
        d
    }

    #[test]
    fn content_can_be_wiped_but_use_cannot() {
        let p = DiskPolicy::default();
        let d = base();
        assert!(!disk_reasons(&d, &p).is_empty());
        assert!(wipe_would_clear(&d, &p));
        let mut mounted = base();
        mounted.mounts.push("/srv".into());
        assert!(!wipe_would_clear(&mounted, &p));
        let mut ro = base();
        ro.read_only = Some(true);
        assert!(!wipe_would_clear(&ro, &p));
        let mut parted = base();
        parted.partition_table = Some(PartitionTable {
            kind: "gpt".into(),
            uuid: None,
        });
        let part: Partition = serde_json::from_value(serde_json::json!({
            "name": "sdz1", "path": "/dev/sdz1", "number": 1, "start": 1048576, "size": 1048576,
            "part_type": null, "part_uuid": null, "part_name": null, "signatures": [],
            "mounts": [], "swap": true, "holders": []
        }))
        .unwrap();
        parted.partitions.push(part.clone());
        assert!(!wipe_would_clear(&parted, &p), "active swap on a partition");
        parted.partitions[0].swap = false;
        assert!(wipe_would_clear(&parted, &p));
    }
}

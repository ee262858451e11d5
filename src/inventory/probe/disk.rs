//! Disk probe: enumerates whole disks (udev, else sysfs) and assembles each one's facts from
//! udev properties, sysfs, libblkid, mountinfo and /proc/swaps. No subprocesses, no waiting;
//! every device is opened read-only.

use std::cmp::Ordering;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::blkid::{self, Contents, TableEntry};
use super::block::{self, SysfsDisk, SysfsPartition};
use super::links;
use super::mounts::{DevNode, MountTable};
use super::udev::UdevDevice;
use super::SysRoot;
use crate::inventory::model::{Disk, DiskKind, Partition};

/// A whole disk found by enumeration, before its facts are read.
struct Candidate {
    name: String,
    /// Its sysfs directory.
    dir: PathBuf,
    udev: Option<UdevDevice>,
}

/// Probe every whole disk of the host. Returns the disks (unjudged) and host-wide warnings.
pub fn probe_disks(root: &SysRoot) -> (Vec<Disk>, Vec<String>) {
    let (mounts, mut warnings) = MountTable::read(&root.proc);
    let candidates = enumerate(root, &mut warnings);
    let mut disks: Vec<Disk> = candidates
        .iter()
        .filter_map(|c| probe_one(root, c, &mounts))
        .collect();
    disks.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    warnings.extend(udev_warnings(root, &disks));
    (disks, warnings)
}

fn enumerate(root: &SysRoot, warnings: &mut Vec<String>) -> Vec<Candidate> {
    if root.use_udev {
        match super::udev::block_devices() {
            Ok(devs) => {
                let v: Vec<Candidate> = devs
                    .into_iter()
                    .filter(|d| d.devtype.as_deref() == Some("disk"))
                    .map(|d| Candidate {
                        name: d.sysname.clone(),
                        dir: d.syspath.clone(),
                        udev: Some(d),
                    })
                    .collect();
                if !v.is_empty() {
                    return v;
                }
            }
            Err(e) => warnings.push(format!(
                "udev could not enumerate block devices ({e}); listed {} instead",
                root.sys.join("class/block").display()
            )),
        }
    }
    match block::list_disks(&root.sys) {
        Ok(v) => v
            .into_iter()
            .map(|(name, dir)| Candidate {
                name,
                dir,
                udev: None,
            })
            .collect(),
        Err(e) => {
            warnings.push(format!(
                "{}: cannot list block devices: {e}",
                root.sys.join("class/block").display()
            ));
            Vec::new()
        }
    }
}

/// Decode udev's `\xNN` escaping (`ID_MODEL_ENC`), which keeps the spaces `ID_MODEL` replaces.
pub fn decode_udev_enc(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

/// Identity facts: udev's when it has them, sysfs's otherwise.
struct Identity {
    model: Option<String>,
    vendor: Option<String>,
    serial: Option<String>,
    wwn: Option<String>,
    bus: Option<String>,
}

fn identity(udev: Option<&UdevDevice>, sys: &SysfsDisk) -> Identity {
    let prop = |k: &str| udev.and_then(|u| u.prop(k)).map(str::to_string);
    let enc = |k: &str| {
        udev.and_then(|u| u.prop(k))
            .map(decode_udev_enc)
            .filter(|s| !s.is_empty())
    };
    Identity {
        model: enc("ID_MODEL_ENC")
            .or_else(|| prop("ID_MODEL"))
            .or_else(|| sys.model.clone()),
        vendor: enc("ID_VENDOR_ENC")
            .or_else(|| prop("ID_VENDOR"))
            .or_else(|| sys.vendor.clone()),
        serial: prop("ID_SERIAL_SHORT")
            .or_else(|| prop("ID_SERIAL"))
            .or_else(|| sys.serial.clone()),
        wwn: prop("ID_WWN_WITH_EXTENSION")
            .or_else(|| prop("ID_WWN"))
            .or_else(|| sys.wwn.clone()),
        bus: prop("ID_BUS").or_else(|| sys.bus.clone()),
    }
}

fn probe_one(root: &SysRoot, c: &Candidate, mounts: &MountTable) -> Option<Disk> {
    let sys = block::read_disk(&c.dir);
    let devnum = sys.devnum.clone()?;
    if sys.hidden {
        return None;
    }
    // Only an initialised entry carries udev's own properties; otherwise they are the uevent's.
    let udev = c.udev.as_ref().filter(|u| u.initialized);
    let cdrom = udev.and_then(|u| u.prop("ID_CDROM")) == Some("1") || sys.scsi_cdrom;
    let kind = block::kind_of(&c.name, cdrom);
    let size = sys.size;
    // Detached loop devices are placeholders (loop0..loop7 exist on most hosts): not disks.
    if kind == DiskKind::Loop && !sys.loop_attached && size.unwrap_or(0) == 0 {
        return None;
    }
    let path = format!("/dev/{}", c.name);
    let links = match udev {
        Some(u) => links::filter_devlinks(&u.devlinks()),
        None => links::scan_links(&root.dev, &c.name),
    };
    let id = identity(udev, &sys);

    let node = root.dev.join(&c.name);
    let mut probe_errors = Vec::new();
    let mut contents = Contents::default();
    let mut disk_file = None;
    // Size 0: no medium or an unconfigured device; there is nothing to read.
    if size.unwrap_or(0) > 0 {
        match blkid::open(&node).and_then(|f| blkid::probe(&f, &node, 0, 0).map(|c| (f, c))) {
            Ok((f, c)) => {
                contents = c;
                disk_file = Some(f);
            }
            Err(e) => probe_errors.push(e.to_string()),
        }
    }

    let kernel_parts = block::read_partitions(&c.dir);
    let mut partitions = merge_partitions(&contents.entries, &kernel_parts);
    let mut ambiguous = contents.ambiguous;
    for p in &mut partitions {
        match probe_partition(root, p, disk_file.as_ref(), &node) {
            Ok(Some(pc)) => {
                p.signatures = pc.signatures;
                // The model has no per-partition flag; a collision inside a partition leaves the
                // disk's contents just as undecided.
                ambiguous |= pc.ambiguous;
            }
            Ok(None) => {}
            Err(e) => probe_errors.push(e.to_string()),
        }
        if let Some(name) = &p.name {
            let pnode = DevNode::new(&root.dev, name);
            let pdevnum = kernel_parts
                .iter()
                .find(|k| &k.name == name)
                .and_then(|k| k.devnum.as_deref());
            p.mounts = mounts.mount_points(pdevnum.unwrap_or("-"), &pnode);
            p.swap = mounts.is_swap(&pnode);
        }
    }

    let dnode = DevNode::new(&root.dev, &c.name);
    Some(Disk {
        stable_path: links::stable_path(&links, &path),
        name: c.name.clone(),
        path,
        links,
        mounts: mounts.mount_points(&devnum, &dnode),
        swap: mounts.is_swap(&dnode),
        devnum,
        kind,
        bus: id.bus,
        size,
        logical_sector_size: sys.logical_sector_size,
        physical_sector_size: sys.physical_sector_size,
        model: id.model,
        vendor: id.vendor,
        serial: id.serial,
        wwn: id.wwn,
        rotational: sys.rotational,
        removable: sys.removable,
        read_only: sys.read_only,
        partition_table: contents.partition_table,
        partitions,
        signatures: contents.signatures,
        ambiguous,
        holders: sys.holders,
        multipath_member: udev.and_then(|u| u.prop("DM_MULTIPATH_DEVICE_PATH")) == Some("1"),
        udev: udev.is_some(),
        probe_errors,
        eligible: false,
        reasons: Vec::new(),
    })
}

/// Probe a partition's contents: through its own node when the kernel made one (a separate page
/// cache, the one mkfs wrote through), else as a region of the open whole disk.
fn probe_partition(
    root: &SysRoot,
    p: &Partition,
    disk_file: Option<&File>,
    disk_node: &Path,
) -> Result<Option<Contents>, blkid::ContentError> {
    if let Some(name) = &p.name {
        let node = root.dev.join(name);
        if node.exists() {
            let f = blkid::open(&node)?;
            return blkid::probe(&f, &node, 0, 0).map(Some);
        }
    }
    match (disk_file, p.start, p.size) {
        (Some(f), Some(start), Some(size)) if size > 0 => {
            blkid::probe(f, disk_node, start, size).map(Some)
        }
        _ => Ok(None),
    }
}

/// Join libblkid's reading of the table with the kernel's partition nodes, by number (by start
/// when libblkid gave no number). Either side alone still yields a partition.
pub fn merge_partitions(table: &[TableEntry], kernel: &[SysfsPartition]) -> Vec<Partition> {
    let mut used = vec![false; kernel.len()];
    let mut out: Vec<Partition> = table
        .iter()
        .map(|t| {
            let k = kernel.iter().enumerate().find(|(i, k)| {
                !used[*i]
                    && match t.number {
                        Some(n) => k.number == Some(n),
                        None => k.start == Some(t.start),
                    }
            });
            let k = k.map(|(i, k)| {
                used[i] = true;
                k
            });
            Partition {
                name: k.map(|k| k.name.clone()),
                path: k.map(|k| format!("/dev/{}", k.name)),
                number: t.number.or_else(|| k.and_then(|k| k.number)),
                start: Some(t.start),
                size: Some(t.size),
                part_type: t.part_type.clone(),
                part_uuid: t.part_uuid.clone(),
                part_name: t.part_name.clone(),
                signatures: Vec::new(),
                mounts: Vec::new(),
                swap: false,
                holders: k.map(|k| k.holders.clone()).unwrap_or_default(),
            }
        })
        .collect();
    for (k, _) in kernel.iter().zip(&used).filter(|(_, u)| !**u) {
        out.push(Partition {
            name: Some(k.name.clone()),
            path: Some(format!("/dev/{}", k.name)),
            number: k.number,
            start: k.start,
            size: k.size,
            part_type: None,
            part_uuid: None,
            part_name: None,
            signatures: Vec::new(),
            mounts: Vec::new(),
            swap: false,
            holders: k.holders.clone(),
        });
    }
    out.sort_by_key(|p| (p.number.is_none(), p.number, p.start));
    out
}

/// Host-wide notes on what udev could not provide.
fn udev_warnings(root: &SysRoot, disks: &[Disk]) -> Vec<String> {
    if !root.use_udev {
        return vec![
            "udev not consulted: disk IDs and bus come from sysfs, links from /dev/disk".into(),
        ];
    }
    let mut w = Vec::new();
    if !super::udev::udevd_running() {
        w.push(
            "udevd is not running (no /run/udev/control): its database may be stale or empty, \
             so disk IDs and links may be missing"
                .to_string(),
        );
    }
    let missing: Vec<&str> = disks
        .iter()
        .filter(|d| !d.udev)
        .map(|d| d.name.as_str())
        .collect();
    if !disks.is_empty() && missing.len() == disks.len() {
        w.push(
            "the udev database has no block devices: disk facts come from sysfs only \
             (run `udevadm trigger --subsystem-match=block && udevadm settle`)"
                .to_string(),
        );
    } else if !missing.is_empty() {
        w.push(format!(
            "no udev database entry for {} (added before udevd started?): IDs from sysfs, \
             links from /dev/disk; `udevadm trigger --subsystem-match=block` fixes this",
            missing.join(", ")
        ));
    }
    w
}

/// `loop2` before `loop10`: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut v = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                v.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        v
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let o = match (x, y) {
            ((true, x), (true, y)) => x
                .trim_start_matches('0')
                .len()
                .cmp(&y.trim_start_matches('0').len())
                .then_with(|| x.trim_start_matches('0').cmp(y.trim_start_matches('0'))),
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ca.len().cmp(&cb.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;

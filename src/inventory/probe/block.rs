//! Block-device facts from sysfs alone: which entries are whole disks, their sizes, queue
//! attributes, identity attributes and holders, their partition children, and their kind.

use std::path::{Path, PathBuf};

use super::sysfs::{attr, attr_bool, attr_u64, dir_names, link_name};
use crate::inventory::model::DiskKind;

/// sysfs counts `size` and partition `start` in 512-byte units whatever the sector size.
const SYSFS_SECTOR: u64 = 512;

/// Whole-disk entries of `sys/class/block`: those without a `partition` file. Sorted by name.
pub fn list_disks(sys: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let class = sys.join("class/block");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&class)?
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                class.join(e.file_name()),
            )
        })
        .filter(|(_, dir)| !dir.join("partition").exists())
        .collect();
    v.sort();
    Ok(v)
}

/// What sysfs says about one whole disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysfsDisk {
    /// `major:minor` from `dev`; `None` for entries without a node (multipath path nodes).
    pub devnum: Option<String>,
    /// NVMe native-multipath path node (`nvme0c0n1`): the namespace head is the disk.
    pub hidden: bool,
    pub size: Option<u64>,
    pub logical_sector_size: Option<u32>,
    pub physical_sector_size: Option<u32>,
    pub rotational: Option<bool>,
    pub removable: Option<bool>,
    pub read_only: Option<bool>,
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    /// Subsystem of the parent device (`scsi`, `nvme`, `virtio`), when it has one.
    pub bus: Option<String>,
    /// SCSI peripheral type 5: a CD/DVD drive.
    pub scsi_cdrom: bool,
    /// A loop device with a backing file attached.
    pub loop_attached: bool,
    pub holders: Vec<String>,
}

fn u32_attr(p: &Path) -> Option<u32> {
    attr_u64(p).and_then(|v| u32::try_from(v).ok())
}

/// Read the sysfs facts of the disk whose sysfs directory is `dir`.
pub fn read_disk(dir: &Path) -> SysfsDisk {
    let dev = dir.join("device");
    let first = |paths: &[PathBuf]| paths.iter().find_map(|p| attr(p));
    SysfsDisk {
        devnum: attr(&dir.join("dev")),
        hidden: attr_bool(&dir.join("hidden")).unwrap_or(false),
        size: attr_u64(&dir.join("size")).map(|s| s * SYSFS_SECTOR),
        logical_sector_size: u32_attr(&dir.join("queue/logical_block_size")),
        physical_sector_size: u32_attr(&dir.join("queue/physical_block_size")),
        rotational: attr_bool(&dir.join("queue/rotational")),
        removable: attr_bool(&dir.join("removable")),
        read_only: attr_bool(&dir.join("ro")),
        model: attr(&dev.join("model")),
        // virtio exposes its PCI-style vendor id (`0x1af4`) here, which is not a vendor name.
        vendor: attr(&dev.join("vendor")).filter(|v| !v.starts_with("0x")),
        serial: first(&[dev.join("serial"), dir.join("serial")]),
        wwn: first(&[dir.join("wwid"), dev.join("wwid")]),
        bus: link_name(&dev.join("subsystem")),
        scsi_cdrom: attr(&dev.join("type")).as_deref() == Some("5"),
        loop_attached: dir.join("loop/backing_file").exists(),
        holders: dir_names(&dir.join("holders")),
    }
}

/// A partition the kernel has a node for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysfsPartition {
    pub name: String,
    pub number: Option<u32>,
    pub devnum: Option<String>,
    /// Bytes from the start of the disk.
    pub start: Option<u64>,
    pub size: Option<u64>,
    pub holders: Vec<String>,
}

/// Partition children of a disk's sysfs directory: subdirectories with a `partition` file.
pub fn read_partitions(dir: &Path) -> Vec<SysfsPartition> {
    let mut v: Vec<SysfsPartition> = dir_names(dir)
        .into_iter()
        .filter_map(|name| {
            let p = dir.join(&name);
            let number = u32_attr(&p.join("partition"))?;
            Some(SysfsPartition {
                number: Some(number),
                devnum: attr(&p.join("dev")),
                start: attr_u64(&p.join("start")).map(|s| s * SYSFS_SECTOR),
                size: attr_u64(&p.join("size")).map(|s| s * SYSFS_SECTOR),
                holders: dir_names(&p.join("holders")),
                name,
            })
        })
        .collect();
    v.sort_by_key(|p| (p.number, p.name.clone()));
    v
}

/// The kind of a disk from its kernel name, with udev's or SCSI's word on optical drives.
pub fn kind_of(name: &str, cdrom: bool) -> DiskKind {
    let numbered = |prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    };
    if numbered("loop") {
        DiskKind::Loop
    } else if numbered("zram") {
        DiskKind::Zram
    } else if numbered("ram") {
        DiskKind::Ram
    } else if numbered("dm-") {
        DiskKind::DeviceMapper
    } else if numbered("md") || name.starts_with("md_") {
        DiskKind::Md
    } else if cdrom || numbered("sr") {
        DiskKind::Cdrom
    } else {
        DiskKind::Disk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_of("loop0", false), DiskKind::Loop);
        assert_eq!(kind_of("loop12", false), DiskKind::Loop);
        assert_eq!(kind_of("zram0", false), DiskKind::Zram);
        assert_eq!(kind_of("ram3", false), DiskKind::Ram);
        assert_eq!(kind_of("dm-2", false), DiskKind::DeviceMapper);
        assert_eq!(kind_of("md127", false), DiskKind::Md);
        assert_eq!(kind_of("sr0", false), DiskKind::Cdrom);
        assert_eq!(kind_of("sdb", true), DiskKind::Cdrom);
        assert_eq!(kind_of("sda", false), DiskKind::Disk);
        assert_eq!(kind_of("nvme0n1", false), DiskKind::Disk);
        assert_eq!(kind_of("vda", false), DiskKind::Disk);
        // Names that merely start like a virtual device are real disks.
        assert_eq!(kind_of("ramdisk", false), DiskKind::Disk);
        assert_eq!(kind_of("mdx", false), DiskKind::Disk);
    }
}

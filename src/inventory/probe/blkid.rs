//! What libblkid finds on a device or a region of it: a collision-checked safeprobe, the
//! partition list, and (via `blkid_scan`) every magic the way `wipefs --no-act` finds them.
//! Devices are only ever opened read-only.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use libblkid_rs::{BlkidProbe, BlkidSafeprobeRet, BlkidSublks, BlkidSublksFlags};

use super::blkid_scan;
use crate::inventory::model::{PartitionTable, Signature};

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{}: cannot open read-only: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: libblkid {step} failed: {detail}", path.display())]
    Blkid {
        path: PathBuf,
        step: &'static str,
        detail: String,
    },
}

/// One entry of the partition table as libblkid reads it from the disk itself (so it is known
/// even when the kernel made no partition nodes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableEntry {
    pub number: Option<u32>,
    /// Bytes from the start of the disk.
    pub start: u64,
    pub size: u64,
    pub part_type: Option<String>,
    pub part_uuid: Option<String>,
    pub part_name: Option<String>,
}

/// Everything libblkid says about one device or region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    pub signatures: Vec<Signature>,
    pub partition_table: Option<PartitionTable>,
    pub entries: Vec<TableEntry>,
    /// The safeprobe saw colliding signatures and refused to pick one.
    pub ambiguous: bool,
}

/// Open a block device (or image file) for probing. `O_NONBLOCK` as libblkid itself does, so
/// an empty removable drive answers at once instead of waiting for a medium.
pub fn open(path: &Path) -> Result<File, ContentError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|source| ContentError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Probe `size` bytes at `offset` of the open `file` (both 0: the whole device). `path` only
/// names the device in errors.
pub fn probe(file: &File, path: &Path, offset: u64, size: u64) -> Result<Contents, ContentError> {
    let err = |step: &'static str| {
        let path = path.to_path_buf();
        move |e: libblkid_rs::BlkidErr| ContentError::Blkid {
            path,
            step,
            detail: e.to_string(),
        }
    };
    let mut out = Contents::default();
    {
        let mut pr = BlkidProbe::new().map_err(err("probe allocation"))?;
        pr.set_device(file.as_raw_fd(), offset as i64, size as i64)
            .map_err(err("set_device"))?;
        pr.enable_superblocks(true)
            .map_err(err("enable_superblocks"))?;
        pr.set_superblock_flags(BlkidSublksFlags::new(vec![
            BlkidSublks::Label,
            BlkidSublks::Uuid,
            BlkidSublks::Type,
            BlkidSublks::Usage,
            BlkidSublks::Magic,
        ]))
        .map_err(err("set_superblock_flags"))?;
        pr.enable_partitions(true)
            .map_err(err("enable_partitions"))?;
        match pr.do_safeprobe().map_err(err("safeprobe"))? {
            BlkidSafeprobeRet::Success => {
                let get = |k: &str| pr.lookup_value(k).ok().filter(|v| !v.is_empty());
                if let Some(kind) = get("TYPE") {
                    out.signatures.push(Signature {
                        kind,
                        usage: get("USAGE"),
                        uuid: get("UUID"),
                        label: get("LABEL"),
                        offset: get("SBMAGIC_OFFSET").and_then(|o| o.parse().ok()),
                    });
                }
                if let Some(kind) = get("PTTYPE") {
                    out.partition_table = Some(PartitionTable {
                        kind,
                        uuid: get("PTUUID"),
                    });
                }
            }
            BlkidSafeprobeRet::None => {}
            BlkidSafeprobeRet::Ambiguous => out.ambiguous = true,
        }
        // The binary partition API probes on its own, independent of the safeprobe's outcome;
        // no list means no table.
        if let Ok(mut list) = pr.get_partitions() {
            if out.partition_table.is_none() {
                if let Ok(t) = list.get_table() {
                    out.partition_table = t.get_type().ok().map(|kind| PartitionTable {
                        kind,
                        uuid: t.get_id().ok().filter(|s| !s.is_empty()),
                    });
                }
            }
            let n = list.number_of_partitions().unwrap_or(0);
            for i in 0..n {
                let Ok(p) = list.get_partition(i) else {
                    continue;
                };
                let part_type = p.get_type_string().ok().filter(|s| !s.is_empty()).or_else(
                    // MBR entries have a numeric type and no string.
                    || Some(format!("0x{:02x}", p.get_type())).filter(|_| p.get_type() != 0),
                );
                let start = *p.get_start().bytes().as_ref();
                let psize = *p.get_size().bytes().as_ref();
                out.entries.push(TableEntry {
                    number: p.get_partno().ok(),
                    start: u64::try_from(start).unwrap_or(0),
                    size: u64::try_from(psize).unwrap_or(0),
                    part_type,
                    // MBR "UUIDs" (`1234abcd-01`) do not parse as UUIDs: the binding drops them.
                    part_uuid: p.get_uuid().ok().flatten().map(|u| u.to_string()),
                    part_name: p.get_name().ok().flatten().filter(|s| !s.is_empty()),
                });
            }
        }
    }
    // The safeprobe stops at the first valid signature of each chain and ignores table magics it
    // does not trust (a backup GPT header without its primary); wipefs-style probing finds them.
    let found =
        blkid_scan::scan(file.as_raw_fd(), offset, size).map_err(|detail| ContentError::Blkid {
            path: path.to_path_buf(),
            step: "signature scan",
            detail,
        })?;
    for sig in found {
        merge_signature(&mut out.signatures, sig);
    }
    Ok(out)
}

/// Add `sig` unless the same type at the same offset is already there; fill in what the first
/// report lacked.
pub fn merge_signature(sigs: &mut Vec<Signature>, sig: Signature) {
    let same = sigs.iter_mut().find(|s| {
        s.kind == sig.kind && (s.offset == sig.offset || s.offset.is_none() || sig.offset.is_none())
    });
    match same {
        Some(s) => {
            s.usage = s.usage.take().or(sig.usage);
            s.uuid = s.uuid.take().or(sig.uuid);
            s.label = s.label.take().or(sig.label);
            s.offset = s.offset.or(sig.offset);
        }
        None => sigs.push(sig),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(kind: &str, offset: Option<u64>) -> Signature {
        Signature {
            kind: kind.into(),
            usage: None,
            uuid: None,
            label: None,
            offset,
        }
    }

    #[test]
    fn merge_dedups_by_type_and_offset() {
        let mut v = vec![Signature {
            uuid: Some("u".into()),
            ..sig("ext4", Some(1080))
        }];
        merge_signature(
            &mut v,
            Signature {
                usage: Some("filesystem".into()),
                ..sig("ext4", Some(1080))
            },
        );
        merge_signature(&mut v, sig("gpt", Some(512)));
        merge_signature(&mut v, sig("gpt", Some(1 << 20)));
        merge_signature(&mut v, sig("gpt", Some(512)));
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].usage.as_deref(), Some("filesystem"));
        assert_eq!(v[0].uuid.as_deref(), Some("u"));
    }

    #[test]
    fn zeroed_image_has_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let f = open(&img).unwrap();
        let c = probe(&f, &img, 0, 0).unwrap();
        assert_eq!(c, Contents::default());
    }

    #[test]
    fn swap_magic_in_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("img");
        let mut data = vec![0u8; 1 << 20];
        // A v1 swap header's magic sits at the end of the first page.
        data[4086..4096].copy_from_slice(b"SWAPSPACE2");
        data[1024] = 1; // version 1
        data[1028..1032].copy_from_slice(&255u32.to_le_bytes()); // last page
        std::fs::write(&img, &data).unwrap();
        let f = open(&img).unwrap();
        let c = probe(&f, &img, 0, 0).unwrap();
        assert!(
            c.signatures
                .iter()
                .any(|s| s.kind == "swap" && s.offset == Some(4086)),
            "{c:?}"
        );
    }

    #[test]
    fn open_error_names_the_path() {
        let e = open(Path::new("/nonexistent/disk")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/disk: cannot open read-only"));
    }
}

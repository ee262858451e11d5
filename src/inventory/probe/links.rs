//! Persistent names of a disk: its /dev/disk/by-id and by-path links (from udev's DEVLINKS, or
//! by scanning /dev/disk when there is no udev database) and the one to show as stable path.

use std::path::{Component, Path, PathBuf};

const LINK_DIRS: [&str; 2] = ["by-id", "by-path"];

/// The by-id and by-path entries of udev's DEVLINKS, sorted.
pub fn filter_devlinks(devlinks: &[String]) -> Vec<String> {
    let mut v: Vec<String> = devlinks
        .iter()
        .filter(|l| {
            LINK_DIRS
                .iter()
                .any(|d| l.starts_with(&format!("/dev/disk/{d}/")))
        })
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Without a udev entry: the symlinks under `dev_root/disk/by-{id,path}` that point at
/// `dev_root/<name>`, named as the host sees them (`/dev/disk/by-id/...`). Sorted.
pub fn scan_links(dev_root: &Path, name: &str) -> Vec<String> {
    let node = dev_root.join(name);
    let mut v = Vec::new();
    for d in LINK_DIRS {
        let dir = dev_root.join("disk").join(d);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let Ok(target) = std::fs::read_link(e.path()) else {
                continue;
            };
            // Resolved lexically: the node itself need not exist (fake trees), and udev's links
            // are relative (`../../sda`).
            if normalize(&dir.join(target)) == node {
                v.push(format!("/dev/disk/{d}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    v.sort();
    v
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// by-id names derived from what is on the disk (an LVM PV's UUID, an md array, a dm map)
/// rather than from the hardware: they change when the disk is wiped.
fn content_derived(id: &str) -> bool {
    [
        "lvm-pv-uuid-",
        "md-uuid-",
        "md-name-",
        "dm-name-",
        "dm-uuid-",
    ]
    .iter()
    .any(|p| id.starts_with(p))
}

/// Rank of a link; lower is more stable.
fn rank(link: &str) -> u8 {
    if let Some(id) = link.strip_prefix("/dev/disk/by-id/") {
        if id.starts_with("wwn-") {
            0
        } else if id.starts_with("nvme-eui.") {
            1
        } else if content_derived(id) {
            4
        } else if id.starts_with("nvme-nvme.") {
            // Built from the controller's vendor/model fields; the serial-based name is better.
            3
        } else {
            2
        }
    } else if link.starts_with("/dev/disk/by-path/") {
        5
    } else {
        6
    }
}

/// The most stable name among `links`: by-id wwn, then NVMe EUI, other hardware by-id,
/// by-path, and finally `node`. Ties break by name so the choice is deterministic.
pub fn stable_path(links: &[String], node: &str) -> String {
    links
        .iter()
        .filter(|l| rank(l) < 6)
        .min_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)))
        .cloned()
        .unwrap_or_else(|| node.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn preference_order() {
        let all = s(&[
            "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
            "/dev/disk/by-id/lvm-pv-uuid-abc",
            "/dev/disk/by-id/ata-Samsung_SSD_123",
            "/dev/disk/by-id/wwn-0x5002538e40a1b2c3",
        ]);
        assert_eq!(
            stable_path(&all, "/dev/sda"),
            "/dev/disk/by-id/wwn-0x5002538e40a1b2c3"
        );
        assert_eq!(
            stable_path(&all[..3], "/dev/sda"),
            "/dev/disk/by-id/ata-Samsung_SSD_123"
        );
        assert_eq!(
            stable_path(&all[..2], "/dev/sda"),
            "/dev/disk/by-id/lvm-pv-uuid-abc"
        );
        assert_eq!(
            stable_path(&all[..1], "/dev/sda"),
            "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"
        );
        assert_eq!(stable_path(&[], "/dev/sda"), "/dev/sda");
    }

    #[test]
    fn nvme_preference_is_deterministic() {
        let links = s(&[
            "/dev/disk/by-id/nvme-nvme.8086-5048-494e-00000001",
            "/dev/disk/by-id/nvme-INTEL_SSDPE2KX_PHLJ123",
            "/dev/disk/by-id/nvme-eui.0100000000000000",
        ]);
        assert_eq!(
            stable_path(&links, "/dev/nvme0n1"),
            "/dev/disk/by-id/nvme-eui.0100000000000000"
        );
        assert_eq!(
            stable_path(&links[..2], "/dev/nvme0n1"),
            "/dev/disk/by-id/nvme-INTEL_SSDPE2KX_PHLJ123"
        );
        let mut rev = links.clone();
        rev.reverse();
        assert_eq!(stable_path(&rev, "x"), stable_path(&links, "x"));
        let two = s(&["/dev/disk/by-id/scsi-b", "/dev/disk/by-id/scsi-a"]);
        assert_eq!(stable_path(&two, "x"), "/dev/disk/by-id/scsi-a");
    }

    #[test]
    fn devlinks_filtered_to_id_and_path() {
        let v = filter_devlinks(&s(&[
            "/dev/disk/by-uuid/1234",
            "/dev/disk/by-path/virtio-pci-0000:00:05.0",
            "/dev/disk/by-diskseq/3",
            "/dev/disk/by-id/virtio-SERIAL",
        ]));
        assert_eq!(
            v,
            s(&[
                "/dev/disk/by-id/virtio-SERIAL",
                "/dev/disk/by-path/virtio-pci-0000:00:05.0"
            ])
        );
    }

    #[test]
    fn scanned_links_resolve_relative_targets() {
        let t = tempfile::tempdir().unwrap();
        let dev = t.path().join("dev");
        std::fs::create_dir_all(dev.join("disk/by-id")).unwrap();
        std::fs::create_dir_all(dev.join("disk/by-path")).unwrap();
        std::os::unix::fs::symlink("../../sda", dev.join("disk/by-id/wwn-0x1")).unwrap();
        std::os::unix::fs::symlink("../../sdb", dev.join("disk/by-id/wwn-0x2")).unwrap();
        std::os::unix::fs::symlink("../../sda", dev.join("disk/by-path/pci-1")).unwrap();
        assert_eq!(
            scan_links(&dev, "sda"),
            s(&["/dev/disk/by-id/wwn-0x1", "/dev/disk/by-path/pci-1"])
        );
        assert!(scan_links(&dev, "sdc").is_empty());
    }
}

//! Tests of the disk probe's assembly over a fake sysfs/proc/dev tree (no udev, no root).

use super::*;
use crate::inventory::model::Inventory;
use crate::inventory::{judge, DiskPolicy};

fn put(base: &Path, rel: &str, content: &str) {
    let p = base.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn mkdir(base: &Path, rel: &str) {
    std::fs::create_dir_all(base.join(rel)).unwrap();
}

fn link(base: &Path, rel: &str, target: &str) {
    let p = base.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, p).unwrap();
}

/// A host with: sda (2 partitions, one mounted with a space in its path, one swap, one held by
/// dm-0), sdb (btrfs mounted under an anonymous device number, no /dev node), a detached loop0,
/// an attached loop1, an NVMe multipath path node, an entry without `dev`, and an empty sr0.
fn fake_host() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let b = t.path();
    let sda = "sys/class/block/sda";
    put(b, &format!("{sda}/dev"), "8:0\n");
    put(b, &format!("{sda}/size"), "4194304\n");
    put(b, &format!("{sda}/queue/logical_block_size"), "512\n");
    put(b, &format!("{sda}/queue/physical_block_size"), "4096\n");
    put(b, &format!("{sda}/queue/rotational"), "1\n");
    put(b, &format!("{sda}/removable"), "0\n");
    put(b, &format!("{sda}/ro"), "0\n");
    put(b, &format!("{sda}/device/model"), "QEMU HARDDISK   \n");
    put(b, &format!("{sda}/device/vendor"), "ATA     \n");
    put(b, &format!("{sda}/wwid"), "naa.5000c500a1b2c3d4\n");
    mkdir(b, &format!("{sda}/holders"));
    put(b, &format!("{sda}/sda1/partition"), "1\n");
    put(b, &format!("{sda}/sda1/dev"), "8:1\n");
    put(b, &format!("{sda}/sda1/start"), "2048\n");
    put(b, &format!("{sda}/sda1/size"), "1048576\n");
    put(b, &format!("{sda}/sda1/holders/dm-0"), "");
    put(b, &format!("{sda}/sda2/partition"), "2\n");
    put(b, &format!("{sda}/sda2/dev"), "8:2\n");
    put(b, &format!("{sda}/sda2/start"), "1050624\n");
    put(b, &format!("{sda}/sda2/size"), "2048\n");
    // The whole disk as a sparse image: libblkid probes regular files too.
    mkdir(b, "dev");
    std::fs::File::create(b.join("dev/sda"))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    link(b, "dev/disk/by-id/wwn-0x5000c500a1b2c3d4", "../../sda");
    link(b, "dev/disk/by-id/ata-QEMU_HARDDISK_QM00001", "../../sda");
    link(b, "dev/disk/by-path/pci-0000:00:1f.2-ata-1", "../../sda");
    link(b, "dev/disk/by-path/pci-0000:00:1f.2-ata-2", "../../sdb");

    put(b, "sys/class/block/sdb/dev", "8:16\n");
    put(b, "sys/class/block/sdb/size", "8388608\n");
    put(b, "sys/class/block/sdb/ro", "1\n");

    put(b, "sys/class/block/loop0/dev", "7:0\n");
    put(b, "sys/class/block/loop0/size", "0\n");
    put(b, "sys/class/block/loop1/dev", "7:1\n");
    put(b, "sys/class/block/loop1/size", "2048\n");
    put(b, "sys/class/block/loop1/loop/backing_file", "/tmp/img\n");
    put(b, "sys/class/block/nvme0c0n1/hidden", "1\n");
    put(b, "sys/class/block/nvme0c0n1/dev", "259:9\n");
    put(b, "sys/class/block/nodev/size", "100\n");
    put(b, "sys/class/block/sr0/dev", "11:0\n");
    put(b, "sys/class/block/sr0/size", "0\n");

    let dev = b.join("dev");
    put(
        b,
        "proc/self/mountinfo",
        &format!(
            "22 1 254:0 / / rw - ext4 /dev/vda rw\n\
             30 22 8:1 / /srv/data\\040x rw shared:3 - ext4 {}/sda1 rw\n\
             31 22 0:45 / /srv/pool rw - btrfs /dev/sdb rw\n",
            dev.display()
        ),
    );
    put(
        b,
        "proc/swaps",
        "Filename\tType\tSize\tUsed\tPriority\n/dev/sda2 partition 1020 0 -2\n",
    );
    t
}

#[test]
fn sysfs_fallback_assembly() {
    let t = fake_host();
    let root = SysRoot::fake(t.path());
    let (disks, warnings) = probe_disks(&root);
    let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["loop1", "sda", "sdb", "sr0"], "{disks:#?}");
    assert!(warnings.iter().any(|w| w.contains("udev not consulted")));

    let sda = &disks[1];
    assert_eq!(sda.path, "/dev/sda");
    assert_eq!(sda.devnum, "8:0");
    assert_eq!(sda.kind, DiskKind::Disk);
    assert_eq!(sda.size, Some(2 << 30));
    assert_eq!(sda.logical_sector_size, Some(512));
    assert_eq!(sda.physical_sector_size, Some(4096));
    assert_eq!(sda.rotational, Some(true));
    assert_eq!(sda.removable, Some(false));
    assert_eq!(sda.read_only, Some(false));
    assert_eq!(sda.model.as_deref(), Some("QEMU HARDDISK"));
    assert_eq!(sda.vendor.as_deref(), Some("ATA"));
    assert_eq!(sda.serial, None);
    assert_eq!(sda.wwn.as_deref(), Some("naa.5000c500a1b2c3d4"));
    assert_eq!(sda.bus, None);
    assert!(!sda.udev);
    assert_eq!(
        sda.links,
        [
            "/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001",
            "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4",
            "/dev/disk/by-path/pci-0000:00:1f.2-ata-1",
        ]
    );
    assert_eq!(sda.stable_path, "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4");
    assert!(sda.probe_errors.is_empty(), "{:?}", sda.probe_errors);
    assert!(sda.signatures.is_empty());
    assert_eq!(sda.partition_table, None);
    assert!(sda.mounts.is_empty());
    assert!(!sda.swap);

    assert_eq!(sda.partitions.len(), 2);
    let (p1, p2) = (&sda.partitions[0], &sda.partitions[1]);
    assert_eq!(p1.name.as_deref(), Some("sda1"));
    assert_eq!(p1.path.as_deref(), Some("/dev/sda1"));
    assert_eq!(p1.number, Some(1));
    assert_eq!(p1.start, Some(2048 * 512));
    assert_eq!(p1.size, Some(1048576 * 512));
    assert_eq!(p1.mounts, ["/srv/data x"]);
    assert_eq!(p1.holders, ["dm-0"]);
    assert!(!p1.swap);
    assert_eq!(p2.number, Some(2));
    assert!(p2.swap);
    assert!(p2.mounts.is_empty());

    let sdb = &disks[2];
    // btrfs: the mount's device number is anonymous, the source names the disk.
    assert_eq!(sdb.mounts, ["/srv/pool"]);
    assert_eq!(sdb.read_only, Some(true));
    assert_eq!(sdb.stable_path, "/dev/disk/by-path/pci-0000:00:1f.2-ata-2");
    assert_eq!(sdb.probe_errors.len(), 1);
    assert!(
        sdb.probe_errors[0].contains("/dev/sdb: cannot open read-only"),
        "{:?}",
        sdb.probe_errors
    );

    assert_eq!(disks[0].kind, DiskKind::Loop);
    assert_eq!(disks[0].size, Some(1 << 20));
    assert_eq!(disks[3].kind, DiskKind::Cdrom);
    assert_eq!(disks[3].stable_path, "/dev/sr0");

    let mut inv = Inventory {
        disks,
        ..Default::default()
    };
    judge(&mut inv, &DiskPolicy::default());
    let sda = &inv.disks[1];
    assert!(!sda.eligible);
    let all = sda.reasons.join("\n");
    assert!(
        all.contains("partition sda1 is mounted at /srv/data x"),
        "{all}"
    );
    assert!(all.contains("partition sda2 is in use as swap"), "{all}");
    assert!(all.contains("partition sda1 is held by dm-0"), "{all}");
    let sdb = inv.disks[2].reasons.join("\n");
    assert!(sdb.contains("mounted at /srv/pool"), "{sdb}");
    assert!(sdb.contains("contents unknown"), "{sdb}");
    assert!(inv.disks[0].reasons.join("\n").contains("loop device"));
}

#[test]
fn partitions_merge_by_number_and_keep_either_side() {
    let table = vec![
        TableEntry {
            number: Some(1),
            start: 1 << 20,
            size: 10 << 20,
            part_type: Some("0fc63daf-8483-4772-8e79-3d69d8477de4".into()),
            part_uuid: Some("u1".into()),
            part_name: Some("data".into()),
        },
        TableEntry {
            number: Some(2),
            start: 11 << 20,
            size: 5 << 20,
            ..Default::default()
        },
    ];
    let kernel = vec![
        SysfsPartition {
            name: "loop3p1".into(),
            number: Some(1),
            devnum: Some("259:0".into()),
            start: Some(1 << 20),
            size: Some(10 << 20),
            holders: vec!["dm-1".into()],
        },
        SysfsPartition {
            name: "loop3p5".into(),
            number: Some(5),
            ..Default::default()
        },
    ];
    let m = merge_partitions(&table, &kernel);
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].name.as_deref(), Some("loop3p1"));
    assert_eq!(m[0].part_name.as_deref(), Some("data"));
    assert_eq!(m[0].holders, ["dm-1"]);
    // In the table only: no kernel node (no `partx -a` yet).
    assert_eq!(m[1].name, None);
    assert_eq!(m[1].number, Some(2));
    assert_eq!(m[1].start, Some(11 << 20));
    // Kernel only.
    assert_eq!(m[2].name.as_deref(), Some("loop3p5"));
    assert_eq!(m[2].number, Some(5));
}

#[test]
fn udev_enc_decoding() {
    assert_eq!(
        decode_udev_enc("Samsung\\x20SSD\\x20860\\x20\\x20"),
        "Samsung SSD 860"
    );
    assert_eq!(decode_udev_enc("plain"), "plain");
    assert_eq!(decode_udev_enc("bad\\xZZ"), "bad\\xZZ");
    assert_eq!(decode_udev_enc("cut\\x2"), "cut\\x2");
}

#[test]
fn natural_order() {
    let mut v = vec![
        "loop10", "sda", "loop2", "nvme1n1", "nvme0n10", "nvme0n2", "loop1",
    ];
    v.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(
        v,
        ["loop1", "loop2", "loop10", "nvme0n2", "nvme0n10", "nvme1n1", "sda"]
    );
}

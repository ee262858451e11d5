//! Privileged disk-probe tests on loop devices backed by sparse files: each test builds one kind
//! of content, probes the real host through the library and checks eligibility, the reason text
//! and the facts against `lsblk` / `wipefs`. Every test owns its loop device, so they run in
//! parallel; the guard detaches it (and unmounts, swaps off, removes the PV) even on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ensure_udevd, privileged, run};
use microcloud::inventory::model::{Disk, Inventory};
use microcloud::inventory::probe::{disk::probe_disks, SysRoot};
use microcloud::inventory::{judge, probe_host, DiskPolicy, ProbeOptions};

const SIZE: u64 = 2 << 30;
/// LVM must see loop devices whatever the host's devices file says.
const LVM_CONFIG: &str = "devices { use_devicesfile = 0 }";

/// A loop device over a sparse file in its own temporary directory.
struct LoopDev {
    path: String,
    name: String,
    dir: tempfile::TempDir,
    mounts: Vec<PathBuf>,
    swap: bool,
    pv: bool,
}

impl LoopDev {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("disk.img");
        run(
            "truncate",
            &["-s", &SIZE.to_string(), img.to_str().unwrap()],
        );
        // `-f --show` finds and attaches in one step, so parallel tests never share a device.
        let path = run("losetup", &["-f", "--show", img.to_str().unwrap()])
            .trim()
            .to_string();
        let name = path.trim_start_matches("/dev/").to_string();
        LoopDev {
            path,
            name,
            dir,
            mounts: Vec::new(),
            swap: false,
            pv: false,
        }
    }

    /// `/dev/loopNpK`
    fn part(&self, n: u32) -> String {
        format!("{}p{n}", self.path)
    }

    /// Give the kernel nodes for the partitions on the disk (this kernel does not scan tables).
    fn partx_add(&self) {
        run("partx", &["-a", &self.path]);
        settle();
    }

    fn mount(&mut self, what: &str) -> PathBuf {
        let mp = self.dir.path().join(format!("mnt{}", self.mounts.len()));
        std::fs::create_dir(&mp).unwrap();
        run("mount", &[what, mp.to_str().unwrap()]);
        self.mounts.push(mp.clone());
        mp
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        // Best effort and never panicking: this also runs while a failed test unwinds.
        let quiet = |cmd: &str, args: &[&str]| {
            let _ = Command::new(cmd).args(args).output();
        };
        for m in self.mounts.iter().rev() {
            quiet("umount", &[m.to_str().unwrap_or_default()]);
        }
        if self.swap {
            quiet("swapoff", &[&self.path]);
        }
        if self.pv {
            quiet(
                "pvremove",
                &["-ff", "-y", "--config", LVM_CONFIG, &self.path],
            );
        }
        // Partitions added with partx outlive a detach when the loop device has no partscan flag.
        quiet("partx", &["-d", &self.path]);
        quiet("losetup", &["-d", &self.path]);
    }
}

fn settle() {
    let _ = Command::new("udevadm")
        .args(["settle", "--timeout=30"])
        .status();
}

/// Skip (or fail under MICROCLOUD_TEST_PRIVILEGED=1) without root; make sure udevd runs.
fn setup(test: &str) -> Option<LoopDev> {
    if !privileged(test) {
        return None;
    }
    ensure_udevd();
    Some(LoopDev::new())
}

/// Probe the host, judge with `allow` as the disk allow-list, and return the disk `name`.
fn probe(name: &str, allow: &[&str]) -> Disk {
    let (disks, _warnings) = probe_disks(&SysRoot::default());
    let mut inv = Inventory {
        disks,
        ..Default::default()
    };
    judge(&mut inv, &DiskPolicy::new(allow).unwrap());
    inv.disks
        .into_iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} missing from the probe"))
}

/// Probe with the loop device allow-listed and check the basic facts against lsblk.
fn probe_allowed(l: &LoopDev) -> Disk {
    settle();
    let d = probe(&l.name, &[l.name.as_str()]);
    cross_check_lsblk(l, &d);
    d
}

fn lsblk(path: &str) -> serde_json::Value {
    let out = run("lsblk", &["-J", "-b", "-O", path]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("lsblk JSON");
    v["blockdevices"][0].clone()
}

/// lsblk prints sizes as numbers with -b, older versions as strings.
fn num(v: &serde_json::Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn cross_check_lsblk(l: &LoopDev, d: &Disk) {
    let j = lsblk(&l.path);
    assert_eq!(d.size, num(&j["size"]), "size vs lsblk: {j}");
    assert_eq!(d.size, Some(SIZE));
    assert_eq!(d.devnum, j["maj:min"].as_str().unwrap());
    assert_eq!(d.logical_sector_size, num(&j["log-sec"]).map(|v| v as u32));
    assert_eq!(d.physical_sector_size, num(&j["phy-sec"]).map(|v| v as u32));
    let children = j["children"].as_array().cloned().unwrap_or_default();
    let kernel_parts: Vec<_> = d.partitions.iter().filter(|p| p.name.is_some()).collect();
    assert_eq!(
        kernel_parts.len(),
        children.len(),
        "partitions vs lsblk: {j}"
    );
    for c in &children {
        let name = c["name"].as_str().unwrap();
        let p = kernel_parts
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} from lsblk not in {:?}", d.partitions));
        assert_eq!(p.size, num(&c["size"]), "size of {name}");
    }
}

fn reasons(d: &Disk) -> String {
    d.reasons.join("\n")
}

/// Not eligible, and for each group of words one reason contains them all. Words, not whole
/// sentences, so the rules' phrasing can evolve without breaking what these tests pin down:
/// that the reason names what is on the disk.
fn assert_refused_for(d: &Disk, groups: &[&[&str]]) {
    assert!(!d.eligible, "{} should not be eligible: {d:#?}", d.name);
    for words in groups {
        assert!(
            d.reasons
                .iter()
                .any(|r| words.iter().all(|w| r.contains(w))),
            "no reason of {} contains all of {words:?}:\n{}",
            d.name,
            reasons(d)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn blank_disk_is_eligible_only_when_allow_listed() {
    let Some(l) = setup("blank_disk_is_eligible_only_when_allow_listed") else {
        return;
    };
    settle();
    let opts = ProbeOptions {
        disk_policy: DiskPolicy::new(&[l.path.as_str()]).unwrap(),
        root: SysRoot::default(),
    };
    let inv = probe_host(&opts).await;
    let d = inv.disks.iter().find(|d| d.name == l.name).unwrap();
    assert!(d.eligible, "{d:#?}");
    assert!(d.reasons.is_empty());
    assert!(d.signatures.is_empty() && d.partitions.is_empty() && d.partition_table.is_none());
    assert!(d.probe_errors.is_empty());
    assert!(
        d.udev,
        "udevd runs, the loop device should have a database entry"
    );
    assert_eq!(d.stable_path, l.path);
    cross_check_lsblk(&l, d);

    let d = probe(&l.name, &[]);
    assert_refused_for(&d, &[&["loop", "--allow-disk"]]);
}

fn filesystem_case(test: &str, mkfs: &[&str], fstype: &str) {
    let Some(l) = setup(test) else { return };
    let mut args: Vec<&str> = mkfs[1..].to_vec();
    args.push(&l.path);
    run(mkfs[0], &args);
    let d = probe_allowed(&l);
    assert_refused_for(&d, &[&["carries", fstype]]);
    let sig = d.signatures.iter().find(|s| s.kind == fstype).unwrap();
    assert_eq!(sig.usage.as_deref(), Some("filesystem"));
    let uuid = run("blkid", &["-p", "-s", "UUID", "-o", "value", &l.path]);
    assert_eq!(sig.uuid.as_deref(), Some(uuid.trim()));
    assert!(!d.ambiguous);
}

#[test]
fn ext4_disk() {
    filesystem_case("ext4_disk", &["mkfs.ext4", "-q", "-F"], "ext4");
}

#[test]
fn xfs_disk() {
    filesystem_case("xfs_disk", &["mkfs.xfs", "-q", "-f"], "xfs");
}

#[test]
fn btrfs_disk() {
    filesystem_case("btrfs_disk", &["mkfs.btrfs", "-q", "-f"], "btrfs");
}

#[test]
fn swap_signature() {
    let Some(l) = setup("swap_signature") else {
        return;
    };
    run("mkswap", &[&l.path]);
    let d = probe_allowed(&l);
    assert_refused_for(&d, &[&["carries", "swap"]]);
    assert!(!d.swap, "not active: {d:#?}");
}

#[test]
fn active_swap() {
    let Some(mut l) = setup("active_swap") else {
        return;
    };
    run("mkswap", &[&l.path]);
    run("swapon", &[&l.path]);
    l.swap = true;
    let d = probe_allowed(&l);
    assert!(d.swap);
    assert_refused_for(&d, &[&["carries", "swap"], &["in use as swap"]]);
}

#[test]
fn gpt_with_two_partitions() {
    let Some(l) = setup("gpt_with_two_partitions") else {
        return;
    };
    run(
        "sgdisk",
        &[
            "-n",
            "1:0:+100M",
            "-c",
            "1:alpha",
            "-n",
            "2:0:+200M",
            &l.path,
        ],
    );
    l.partx_add();
    let d = probe_allowed(&l);
    let (p1, p2) = (format!("{}p1", l.name), format!("{}p2", l.name));
    assert_refused_for(&d, &[&["gpt", "2 partitions", &p1, &p2]]);
    assert_eq!(d.partition_table.as_ref().unwrap().kind, "gpt");
    assert_eq!(d.partitions.len(), 2);
    assert_eq!(d.partitions[0].part_name.as_deref(), Some("alpha"));
    assert_eq!(d.partitions[0].start, Some(1 << 20));
    assert_eq!(d.partitions[1].size, Some(200 << 20));
    assert!(d.partitions.iter().all(|p| p.signatures.is_empty()));
    // Primary header, backup header and protective MBR, as wipefs lists them.
    let offsets: Vec<u64> = d
        .signatures
        .iter()
        .filter(|s| s.kind == "gpt")
        .filter_map(|s| s.offset)
        .collect();
    assert_eq!(offsets, [512, SIZE - 512], "{:?}", d.signatures);
}

#[test]
fn empty_mbr_table() {
    let Some(l) = setup("empty_mbr_table") else {
        return;
    };
    run("parted", &["-s", &l.path, "mklabel", "msdos"]);
    let d = probe_allowed(&l);
    assert_refused_for(&d, &[&["empty", "dos", "partition table"]]);
    assert!(d.partitions.is_empty());
}

#[test]
fn lvm_physical_volume() {
    let Some(mut l) = setup("lvm_physical_volume") else {
        return;
    };
    run("pvcreate", &["-ff", "-y", "--config", LVM_CONFIG, &l.path]);
    l.pv = true;
    let d = probe_allowed(&l);
    assert_refused_for(&d, &[&["LVM", "LVM2_member"]]);
}

#[test]
fn mounted_filesystem() {
    let Some(mut l) = setup("mounted_filesystem") else {
        return;
    };
    run("mkfs.ext4", &["-q", "-F", &l.path]);
    let path = l.path.clone();
    let mp = l.mount(&path);
    let d = probe_allowed(&l);
    let mp = mp.to_str().unwrap();
    assert_eq!(d.mounts, [mp]);
    assert_refused_for(&d, &[&["carries", "ext4"], &["mounted at", mp]]);
}

/// Two valid superblocks (ext4 at 1 KiB, a btrfs one copied in at 64 KiB): libblkid's
/// safeprobe refuses to choose, which must count as "in use", and the scan still names both.
#[test]
fn ambiguous_signatures_count_as_in_use() {
    let Some(l) = setup("ambiguous_signatures_count_as_in_use") else {
        return;
    };
    run("mkfs.ext4", &["-q", "-F", &l.path]);
    let other = l.dir.path().join("btrfs.img");
    let other = other.to_str().unwrap();
    run("truncate", &["-s", "1G", other]);
    run("mkfs.btrfs", &["-q", "-f", other]);
    run(
        "dd",
        &[
            &format!("if={other}"),
            &format!("of={}", l.path),
            "bs=4096",
            "skip=16",
            "seek=16",
            "count=1",
            "conv=notrunc,fsync",
            "status=none",
        ],
    );
    let d = probe_allowed(&l);
    assert!(d.ambiguous, "{d:#?}");
    let kinds: Vec<&str> = d.signatures.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["ext4", "btrfs"]);
    assert_refused_for(
        &d,
        &[&["ambiguous"], &["carries", "ext4"], &["carries", "btrfs"]],
    );
}

/// btrfs mounts carry an anonymous `0:N` device number: only the mount source names the disk.
#[test]
fn mounted_btrfs_found_by_source() {
    let Some(mut l) = setup("mounted_btrfs_found_by_source") else {
        return;
    };
    run("mkfs.btrfs", &["-q", "-f", &l.path]);
    let path = l.path.clone();
    let mp = l.mount(&path);
    let d = probe_allowed(&l);
    let mp = mp.to_str().unwrap();
    assert_eq!(d.mounts, [mp]);
    assert_refused_for(&d, &[&["carries", "btrfs"], &["mounted at", mp]]);
}

#[test]
fn filesystem_on_a_partition_only() {
    let Some(mut l) = setup("filesystem_on_a_partition_only") else {
        return;
    };
    run("sgdisk", &["-n", "1:0:0", &l.path]);
    l.partx_add();
    run("mkfs.ext4", &["-q", "-F", &l.part(1)]);
    let part = l.part(1);
    let mp = l.mount(&part);
    let d = probe_allowed(&l);
    let p1 = format!("{}p1", l.name);
    assert!(
        d.signatures.iter().all(|s| s.kind != "ext4"),
        "{:?}",
        d.signatures
    );
    let mp = mp.to_str().unwrap();
    assert_refused_for(
        &d,
        &[
            &["partition", &p1, "ext4"],
            &["partition", &p1, "mounted at", mp],
        ],
    );
}

#[test]
fn lone_backup_gpt_header() {
    let Some(l) = setup("lone_backup_gpt_header") else {
        return;
    };
    run("sgdisk", &["-o", &l.path]);
    run(
        "dd",
        &[
            "if=/dev/zero",
            &format!("of={}", l.path),
            "bs=1M",
            "count=1",
            "conv=notrunc,fsync",
            "status=none",
        ],
    );
    let d = probe_allowed(&l);
    // No readable table, only the backup header's magic at the last sector.
    assert!(d.partition_table.is_none(), "{d:#?}");
    let backup = SIZE - 512;
    assert_refused_for(&d, &[&["carries", "gpt", &format!("offset {backup}")]]);
    let wipefs: serde_json::Value =
        serde_json::from_str(&run("wipefs", &["--no-act", "--json", &l.path])).unwrap();
    let theirs: Vec<(String, u64)> = wipefs["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let off = s["offset"].as_str().unwrap();
            (
                s["type"].as_str().unwrap().to_string(),
                u64::from_str_radix(off.trim_start_matches("0x"), 16).unwrap(),
            )
        })
        .collect();
    let ours: Vec<(String, u64)> = d
        .signatures
        .iter()
        .map(|s| (s.kind.clone(), s.offset.unwrap()))
        .collect();
    assert_eq!(ours, theirs);
}

/// A disk that cannot be opened is reported with the error and refused; the probe goes on.
#[test]
fn unreadable_disk_is_refused_not_fatal() {
    let Some(l) = setup("unreadable_disk_is_refused_not_fatal") else {
        return;
    };
    settle();
    // Whatever real disk this host cannot open (on the lab VM, /dev/vda gives EPERM).
    let (disks, _) = probe_disks(&SysRoot::default());
    for d in disks.iter().filter(|d| !d.probe_errors.is_empty()) {
        assert!(
            d.probe_errors[0].starts_with(&d.path),
            "{:?}",
            d.probe_errors
        );
    }
    // Deterministically: the real sysfs, but a /dev without nodes.
    let empty_dev = tempfile::tempdir().unwrap();
    let root = SysRoot {
        dev: empty_dev.path().to_path_buf(),
        use_udev: false,
        ..SysRoot::default()
    };
    let (disks, _) = probe_disks(&root);
    let mut inv = Inventory {
        disks,
        ..Default::default()
    };
    judge(&mut inv, &DiskPolicy::new(&[l.name.as_str()]).unwrap());
    let d = inv.disks.iter().find(|d| d.name == l.name).unwrap();
    let node = Path::new(empty_dev.path()).join(&l.name);
    assert_eq!(d.probe_errors.len(), 1, "{d:#?}");
    assert!(d.probe_errors[0].contains(&format!(
        "{}: cannot open read-only: No such file or directory",
        node.display()
    )));
    assert_refused_for(d, &[&["contents unknown", "cannot open"]]);
    assert!(inv.disks.len() > 1, "other disks are still listed");
}

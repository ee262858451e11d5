//! Privileged: lab hosts as machines — each host's own `/run`, `/var/lib` and `/etc` (and a
//! `/sys` of its network namespace), loop disks attached, allow-listed and found by the
//! inventory, all of it gone after drop, a panic or `down_stale`; and two hosts' LXDs forming a
//! cluster.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use microcloud::lab::{attached_under, HostSpec, Lab, LabSpec};
use serde_json::Value;

const GIB: u64 = 1 << 30;

fn prefix(tag: &str) -> String {
    let p = format!("{tag}{}", std::process::id() % 100_000);
    Lab::down_stale(&p).unwrap();
    p
}

/// Mount points at or below `dir` in this (the machine's) mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// Nothing of the lab left on the machine: loop disks, mounts, namespaces.
fn assert_gone(prefix: &str, dir: &Path) {
    assert_eq!(attached_under(dir), vec![], "loop disks left attached");
    assert_eq!(mounts_under(dir), Vec::<String>::new(), "mounts left");
    assert_eq!(
        microcloud::lab::netns::list(&format!("{prefix}-")),
        Vec::<String>::new()
    );
}

#[test]
fn hosts_have_their_own_run_var_lib_and_etc() {
    if !common::privileged("hosts_have_their_own_run_var_lib_and_etc") {
        return;
    }
    let p = prefix("mf");
    let started = Instant::now();
    let lab = Lab::up(
        LabSpec::new(&p)
            .host(HostSpec::new("micro01").disks(2, GIB))
            .host(HostSpec::new("micro02")),
    )
    .unwrap();
    eprintln!("2 hosts, 2 loop disks: up in {:.2?}", started.elapsed());
    let (a, b) = (&lab["micro01"], &lab["micro02"]);
    let tag = format!("lab-{p}");

    // Written in one host: seen there by every later command, not in the other nor outside.
    for path in [
        "/etc/microcloud/mark",
        "/var/lib/microcloud/mark",
        "/var/lib/lxd/mark",
        "/var/lib/mark",
        "/etc/mark",
        "/run/mark",
    ] {
        let file = format!("{path}-{tag}");
        a.sh(&format!("echo {tag} > {file}")).unwrap();
        assert_eq!(a.sh(&format!("cat {file}")).unwrap().trim(), tag, "{file}");
        assert!(
            b.sh(&format!("test ! -e {file}")).is_ok(),
            "{file} leaks to micro02"
        );
        assert!(!Path::new(&file).exists(), "{file} leaks to the machine");
    }
    assert!(a
        .fs_dir()
        .join("etc-microcloud")
        .join(format!("mark-{tag}"))
        .exists());

    // /run is the host's own tmpfs, yet shows the machine's udev database and netns files.
    assert_eq!(a.sh("findmnt -n -o FSTYPE /run").unwrap().trim(), "tmpfs");
    assert!(a
        .sh("test -d /run/udev/data && test -e /run/udev/control")
        .is_ok());
    assert!(a.sh(&format!("test -e /run/netns/{}", b.netns())).is_ok());
    // /sys is the network namespace's, with the cgroup tree LXD needs.
    assert_eq!(
        a.sh("ls /sys/class/net")
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["eth0", "lo"]
    );
    assert!(a
        .sh("test -d /sys/fs/cgroup && ls /sys/fs/cgroup | grep -q .")
        .is_ok());
    // The working directory carries over into the host.
    let mut pwd = Command::new("pwd");
    pwd.current_dir("/usr/share");
    let out = a.wrap(&pwd).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "/usr/share");

    // Loop disks: attached, backed under the host's directory, allow-listed for it only.
    assert_eq!(a.disks().len(), 2);
    assert!(b.disks().is_empty());
    let attached = attached_under(lab.dir());
    assert_eq!(attached.len(), 2, "{attached:?}");
    for d in a.disks() {
        assert!(
            attached.contains(&(d.device.clone(), d.file.clone())),
            "{d:?}"
        );
        assert!(d.file.starts_with(lab.dir().join("hosts/micro01")));
        assert!(d.device.exists(), "{d:?}");
    }
    let conf = a.sh("cat /etc/microcloud/microcloudd.yaml").unwrap();
    for d in a.disks() {
        assert!(conf.contains(&d.device.display().to_string()), "{conf}");
    }
    assert!(b.sh("test ! -e /etc/microcloud/microcloudd.yaml").is_ok());
    let args = a.allow_disk_args();
    assert_eq!(args.len(), 4);
    assert_eq!(args[0], "--allow-disk");

    let dir = lab.dir().to_path_buf();
    let started = Instant::now();
    lab.teardown().unwrap();
    eprintln!("torn down in {:.2?}", started.elapsed());
    assert_gone(&p, &dir);
    assert!(!dir.exists());
}

#[test]
fn inventory_in_a_host_offers_its_loop_disks() {
    if !common::privileged("inventory_in_a_host_offers_its_loop_disks") {
        return;
    }
    common::ensure_udevd();
    let p = prefix("mi");
    let lab = Lab::up(LabSpec::new(&p).host(HostSpec::new("micro01").disks(2, GIB))).unwrap();
    let h = &lab["micro01"];
    let _ = Command::new("udevadm")
        .args(["settle", "--timeout=30"])
        .status();
    let mut cmd = Command::new(common::bin("microcloud"));
    cmd.args(["inventory", "--format", "json"])
        .args(h.allow_disk_args());
    let out = h.wrap(&cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inv: Value = serde_json::from_slice(&out.stdout).unwrap();
    for d in h.disks() {
        let disk = inv["disks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == d.name().as_str())
            .unwrap_or_else(|| panic!("{} not in the inventory: {inv}", d.name()));
        assert_eq!(disk["eligible"], true, "{disk}");
        assert_eq!(disk["size"], GIB, "{disk}");
    }
    // The host's own microcloudd.yaml allow-lists them too: no flags needed.
    let mut cmd = Command::new(common::bin("microcloud"));
    cmd.args(["inventory", "--local", "--format", "json"]);
    let out = h.wrap(&cmd).output().unwrap();
    let inv: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = h.disks().iter().map(|d| d.name()).collect();
    let offered = inv["disks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| {
            x["eligible"] == true && names.contains(&x["name"].as_str().unwrap().to_string())
        })
        .count();
    assert_eq!(offered, 2, "{inv}");
}

#[test]
fn a_panic_or_a_crash_still_frees_mounts_and_disks() {
    if !common::privileged("a_panic_or_a_crash_still_frees_mounts_and_disks") {
        return;
    }
    let p = prefix("mp");
    let dir = microcloud::lab::lab_dir(&p);
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::up(LabSpec::new(&p).host(HostSpec::new("a").disks(2, GIB))).unwrap();
        // A mount made inside the host, on one of its disks, like LXD's storage pool.
        let h = &lab["a"];
        let dev = h.disks()[0].device.display().to_string();
        h.sh(&format!(
            "mkfs.ext4 -q {dev} && mkdir -p /var/lib/pool && mount {dev} /var/lib/pool"
        ))
        .unwrap();
        panic!("the test failed");
    });
    assert!(result.is_err());
    assert_gone(&p, &dir);
    assert!(
        dir.join("hosts/a/log").is_dir(),
        "logs are kept after a panic"
    );
    Lab::down_stale(&p).unwrap();
    assert!(!dir.exists());

    // A persisted lab whose owner is gone: down_stale finds its disks by backing file.
    let mut lab = Lab::up(LabSpec::new(&p).host(HostSpec::new("a").disks(1, GIB))).unwrap();
    lab.persist();
    drop(lab);
    assert_eq!(attached_under(&dir).len(), 1);
    assert!(!mounts_under(&dir).is_empty());
    let again = Lab::open(&p).unwrap();
    assert!(
        again["a"].sh("test -d /run/udev").is_ok(),
        "reopened hosts keep their namespace"
    );
    drop(again);
    Lab::down_stale(&p).unwrap();
    assert_gone(&p, &dir);
    assert!(!dir.exists());
}

#[test]
fn two_hosts_lxd_form_a_cluster() {
    if !common::privileged("two_hosts_lxd_form_a_cluster") {
        return;
    }
    let p = prefix("mx");
    let lab = Lab::up(LabSpec::with_hosts(&p, 2)).unwrap();
    let (a, b) = (&lab["micro01"], &lab["micro02"]);
    let started = Instant::now();
    let (la, lb) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.start_lxd());
        let tb = s.spawn(|| b.start_lxd());
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let (_la, _lb) = (la.unwrap(), lb.unwrap());
    eprintln!("two LXDs ready in {:.2?}", started.elapsed());
    // Each host has its own LXD: distinct certificates, state under its own /var/lib/lxd.
    assert!(
        a.fs_dir().join("lxd/server.crt").exists() && b.fs_dir().join("lxd/server.crt").exists()
    );
    assert_ne!(
        std::fs::read(a.fs_dir().join("lxd/server.crt")).unwrap(),
        std::fs::read(b.fs_dir().join("lxd/server.crt")).unwrap()
    );

    let started = Instant::now();
    a.lxc([
        "config",
        "set",
        "core.https_address",
        &format!("{}:8443", a.addr_v4()),
    ])
    .unwrap();
    a.lxc(["cluster", "enable", "micro01"]).unwrap();
    let token = a.lxc(["cluster", "add", "micro02", "--quiet"]).unwrap();
    let preseed = format!(
        "cluster:\n  enabled: true\n  server_name: micro02\n  server_address: \"{}:8443\"\n  cluster_token: {}\n",
        b.addr_v4(),
        token.trim()
    );
    b.lxd_preseed(&preseed).unwrap();
    eprintln!("2-member LXD cluster formed in {:.2?}", started.elapsed());
    for h in [a, b] {
        let members: Value =
            serde_json::from_str(&h.lxc(["cluster", "list", "--format", "json"]).unwrap()).unwrap();
        let members = members.as_array().unwrap();
        assert_eq!(members.len(), 2, "{members:?}");
        assert!(
            members.iter().all(|m| m["status"] == "Online"),
            "{members:?}"
        );
    }
}

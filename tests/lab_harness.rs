//! Privileged: the lab harness itself — addresses as planned (checked against `ip -j addr`),
//! reachability over IPv4, ULA and link-local, the second link's own subnet, processes and
//! namespaces gone after drop (also after a panic), stale labs, the CLI, and 32-host bring-up.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use microcloud::lab::{netns, Bridge, Host, HostSpec, Lab, LabSpec};
use serde_json::Value;

const T: Duration = Duration::from_secs(2);

/// A prefix unique to this test and process, so labs from parallel tests and runs never meet.
fn prefix(tag: &str) -> String {
    let p = format!("{tag}{}", std::process::id() % 100_000);
    Lab::down_stale(&p).unwrap();
    p
}

/// 4 hosts on cluster subnet 0 and a 5th on subnet 1 of the same bridge.
fn four_and_one(tag: &str) -> Lab {
    Lab::up(LabSpec::with_hosts(prefix(tag), 4).host(HostSpec::new("other").subnet(1))).unwrap()
}

fn lab_netns(prefix: &str) -> Vec<String> {
    netns::list(&format!("{prefix}-"))
}

fn pid_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its parent) is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// `(address/prefixlen, scope, tentative)` of every address on `ifname`, from `ip -j addr`.
fn addrs(h: &Host, ifname: &str) -> BTreeSet<(String, String)> {
    let v: Value =
        serde_json::from_str(&h.ip(&format!("-j addr show dev {ifname}")).unwrap()).unwrap();
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert!(
                a.get("tentative").is_none(),
                "{}: {a} is still tentative (DAD not off)",
                h.name()
            );
            (
                format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]),
                a["scope"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn set(items: &[(String, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(a, s)| (a.clone(), s.to_string()))
        .collect()
}

#[test]
fn addresses_are_as_planned() {
    if !common::privileged("addresses_are_as_planned") {
        return;
    }
    let lab = four_and_one("ad");
    let k = lab.octet();
    for h in lab.hosts() {
        let i = h.index();
        let s = if h.name() == "other" { 1 } else { 0 };
        assert_eq!(h.netns(), format!("{}-{}", lab.prefix(), h.name()));
        assert_eq!(h.addr_v4().to_string(), format!("10.{k}.{s}.{i}"));
        assert_eq!(
            h.addr_v6().segments(),
            [0xfd00 | u16::from(k), 0, 0, s, 0, 0, 0, i]
        );
        let want = set(&[
            (format!("{}/24", h.addr_v4()), "global"),
            (format!("{}/64", h.addr_v6()), "global"),
            (format!("{}/64", h.link_local_v6()), "link"),
        ]);
        assert_eq!(addrs(h, "eth0"), want, "{}", h.name());
        let up = h.ip("-j link show dev lo").unwrap();
        assert!(up.contains("\"UP\""), "{}: lo is not up: {up}", h.name());
        assert_eq!(
            h.sh("cat /proc/sys/net/ipv6/conf/eth0/accept_dad")
                .unwrap()
                .trim(),
            "0"
        );
        assert!(h.state_dir().is_dir() && h.log_dir().is_dir());
    }
    let hub = common::run(
        "ip",
        &[
            "-n",
            lab.hub_netns(),
            "-j",
            "-d",
            "link",
            "show",
            "dev",
            "br0",
        ],
    );
    let hub: Value = serde_json::from_str(&hub).unwrap();
    assert_eq!(
        hub[0]["linkinfo"]["info_data"]["mcast_snooping"], 0,
        "{hub}"
    );
    let ports = common::run(
        "ip",
        &[
            "-n",
            lab.hub_netns(),
            "-br",
            "link",
            "show",
            "master",
            "br0",
        ],
    );
    assert_eq!(ports.lines().count(), 5, "{ports}");
}

#[test]
fn same_subnet_hosts_reach_each_other() {
    if !common::privileged("same_subnet_hosts_reach_each_other") {
        return;
    }
    let lab = four_and_one("re");
    let four = &lab.hosts()[..4];
    for a in four {
        for b in four.iter().filter(|b| b.name() != a.name()) {
            let seen = a.tcp_check(b, b.addr_v4().into(), T).unwrap();
            assert_eq!(
                seen.ip(),
                IpAddr::from(a.addr_v4()),
                "{} → {} v4",
                a.name(),
                b.name()
            );
            let seen = a.tcp_check(b, b.addr_v6().into(), T).unwrap();
            assert_eq!(
                seen.ip(),
                IpAddr::from(a.addr_v6()),
                "{} → {} ULA",
                a.name(),
                b.name()
            );
            let seen = a.tcp_check(b, b.link_local_v6().into(), T).unwrap();
            assert_eq!(
                seen.ip(),
                IpAddr::from(a.link_local_v6()),
                "{} → {} link-local",
                a.name(),
                b.name()
            );
        }
    }
    // The 5th host shares the segment (link-local works) but not the subnets (no route).
    let (a, other) = (&lab["micro01"], &lab["other"]);
    assert!(a.tcp_check(other, other.link_local_v6().into(), T).is_ok());
    assert!(a.tcp_check(other, other.addr_v4().into(), T).is_err());
    assert!(a.tcp_check(other, other.addr_v6().into(), T).is_err());
}

#[test]
fn second_link_and_uplink() {
    if !common::privileged("second_link_and_uplink") {
        return;
    }
    let p = prefix("sl");
    let lab = Lab::up(
        LabSpec::new(&p)
            .host(HostSpec::new("a").second_link(0).uplink())
            .host(HostSpec::new("b").second_link(0))
            .host(HostSpec::new("c"))
            .multicast_route(true),
    )
    .unwrap();
    let k = lab.octet();
    let (a, b, c) = (&lab["a"], &lab["b"], &lab["c"]);
    let a1 = a.link(Bridge::Second).unwrap();
    assert_eq!(a1.ifname, "eth1");
    assert_eq!(a1.v4.unwrap().to_string(), format!("10.{k}.128.1"));
    let want = set(&[
        (format!("{}/24", a1.v4.unwrap()), "global"),
        (format!("{}/64", a1.v6.unwrap()), "global"),
        (format!("{}/64", a1.link_local), "link"),
    ]);
    assert_eq!(addrs(a, "eth1"), want);
    // Its own subnet: reachable over eth1's addresses from b, which has eth1 too; not from c.
    let b1 = b.link(Bridge::Second).unwrap();
    let seen = a.tcp_check(b, b1.v4.unwrap().into(), T).unwrap();
    assert_eq!(seen.ip(), IpAddr::from(a1.v4.unwrap()));
    let seen = a.tcp_check(b, b1.link_local.into(), T).unwrap();
    assert_eq!(seen.ip(), IpAddr::from(a1.link_local));
    assert!(c.tcp_check(b, b1.v4.unwrap().into(), T).is_err());
    assert!(
        c.tcp_check(b, b1.link_local.into(), T).is_err(),
        "c has no link on the second bridge"
    );
    // The uplink carries no addresses but its link-local, and only a has one.
    let up = a.link(Bridge::Uplink).unwrap();
    assert_eq!(
        addrs(a, "eth2"),
        set(&[(format!("{}/64", up.link_local), "link")])
    );
    assert!(b.link(Bridge::Uplink).is_none() && b.ip("link show dev eth2").is_err());
    let routes = a.ip("route show 224.0.0.0/4").unwrap();
    assert!(routes.contains("dev eth0"), "{routes}");
}

#[test]
fn processes_and_namespaces_are_gone_after_drop() {
    if !common::privileged("processes_and_namespaces_are_gone_after_drop") {
        return;
    }
    let p = prefix("dr");
    let lab = Lab::up(LabSpec::with_hosts(&p, 2)).unwrap();
    let h = &lab["micro01"];

    // A process that exits on SIGTERM: terminate returns its status; its output is in its log.
    let mut quick = h
        .spawn(Command::new("sh").args([
            "-c",
            "echo started; ip -br addr show dev eth0; exec sleep 600",
        ]))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = quick.terminate(T).unwrap();
    assert!(!status.success());
    assert!(
        quick.log().contains("started") && quick.log().contains(&h.addr_v4().to_string()),
        "{}",
        quick.log()
    );
    assert!(h.logs().contains("started"));

    // One that ignores SIGTERM: terminate times out (a finding), drop still kills it.
    let mut stubborn = h
        .spawn(Command::new("sh").args([
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ]))
        .unwrap();
    while !stubborn.log().contains("ready") {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(stubborn.terminate(Duration::from_millis(300)).is_err());
    stubborn.set_grace(Duration::from_millis(100));
    let stubborn_pid = stubborn.pid();
    drop(stubborn);
    assert!(!pid_alive(stubborn_pid));

    // Processes the lab knows nothing about: a LabProcess kept past the lab, and a daemonised
    // grandchild started through `sh`.
    let kept = lab["micro02"]
        .spawn(Command::new("sleep").arg("600"))
        .unwrap();
    let orphan: u32 = h
        .sh("setsid sleep 600 >/dev/null 2>&1 & echo $!")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(kept.pid()) && pid_alive(orphan));
    assert_eq!(lab_netns(&p).len(), 3);
    let dir = lab.dir().to_path_buf();
    drop(lab);
    assert!(
        !pid_alive(kept.pid()),
        "process spawned in the lab survived it"
    );
    assert!(!pid_alive(orphan), "daemonised process survived the lab");
    assert_eq!(lab_netns(&p), Vec::<String>::new());
    assert!(!dir.exists());
    drop(kept);
}

#[test]
fn a_panic_still_tears_down() {
    if !common::privileged("a_panic_still_tears_down") {
        return;
    }
    let p = prefix("pa");
    let pid = std::sync::Mutex::new(0);
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::up(LabSpec::with_hosts(&p, 3)).unwrap();
        let proc = lab["micro03"]
            .spawn(Command::new("sh").args(["-c", "echo doomed; exec sleep 600"]))
            .unwrap();
        *pid.lock().unwrap() = proc.pid();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(lab_netns(&p).len(), 4);
        panic!("the test failed");
    });
    assert!(result.is_err());
    assert!(!pid_alive(*pid.lock().unwrap()));
    assert_eq!(lab_netns(&p), Vec::<String>::new());
    // The logs survive for diagnosis; down_stale clears them.
    let dir = microcloud::lab::lab_dir(&p);
    let log = std::fs::read_dir(dir.join("hosts/micro03/log"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(std::fs::read_to_string(log).unwrap().contains("doomed"));
    Lab::down_stale(&p).unwrap();
    assert!(!dir.exists());
}

#[test]
fn persisted_labs_are_reopened_and_downed() {
    if !common::privileged("persisted_labs_are_reopened_and_downed") {
        return;
    }
    let p = prefix("st");
    let mut lab = Lab::up(LabSpec::with_hosts(&p, 2)).unwrap();
    lab.persist();
    let v4 = lab["micro02"].addr_v4();
    drop(lab);
    assert_eq!(
        lab_netns(&p).len(),
        3,
        "a persisted lab outlives its handle"
    );
    assert!(matches!(
        Lab::up(LabSpec::with_hosts(&p, 1)),
        Err(microcloud::lab::LabError::InUse { .. })
    ));
    let again = Lab::open(&p).unwrap();
    assert_eq!(again["micro02"].addr_v4(), v4);
    assert!(again["micro01"]
        .tcp_check(&again["micro02"], v4.into(), T)
        .is_ok());
    assert!(Lab::list()
        .iter()
        .any(|l| l.prefix == p && l.hosts == 2 && l.attachable));
    drop(again);
    // Leftovers of a crashed run: processes inside too.
    let _ = common::run(
        "ip",
        &[
            "netns",
            "exec",
            &format!("{p}-micro01"),
            "sh",
            "-c",
            "setsid sleep 600 >/dev/null 2>&1 &",
        ],
    );
    assert_eq!(Lab::down_stale(&p).unwrap(), 3);
    assert_eq!(lab_netns(&p), Vec::<String>::new());
    assert!(netns::pids(&[format!("{p}-micro01")]).is_empty());
    assert!(Lab::open(&p).is_err());
}

#[test]
fn cli_up_exec_list_down() {
    if !common::privileged("cli_up_exec_list_down") {
        return;
    }
    let p = prefix("cl");
    let bin = env!("CARGO_BIN_EXE_microcloud-lab");
    let out = common::run(
        bin,
        &[
            "up",
            "--prefix",
            &p,
            "--hosts",
            "2",
            "--other-subnet",
            "1",
            "--second-link",
            "--format",
            "json",
        ],
    );
    let lab: Value = serde_json::from_str(&out).unwrap();
    let hosts = lab["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[2]["links"][0]["subnet"], 1);
    assert_eq!(hosts[0]["links"][1]["ifname"], "eth1");
    let addr = common::run(
        bin,
        &[
            "exec", "--prefix", &p, "micro03", "--", "ip", "-br", "addr", "show", "dev", "eth0",
        ],
    );
    assert!(
        addr.contains(hosts[2]["links"][0]["v4"].as_str().unwrap()),
        "{addr}"
    );
    let status = Command::new(bin)
        .args([
            "exec", "--prefix", &p, "micro01", "--", "sh", "-c", "exit 3",
        ])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    let list: Value =
        serde_json::from_str(&common::run(bin, &["list", "--format", "json"])).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["prefix"] == p.as_str() && l["hosts"] == 3));
    let table = common::run(bin, &["show", "--prefix", &p]);
    assert!(
        table.contains("micro03") && table.contains(&format!("{p}-micro03")),
        "{table}"
    );
    common::run(bin, &["down", "--prefix", &p]);
    assert_eq!(lab_netns(&p), Vec::<String>::new());
}

#[test]
fn thirty_two_hosts() {
    if !common::privileged("thirty_two_hosts") {
        return;
    }
    let p = prefix("big");
    let started = Instant::now();
    let lab = Lab::up(LabSpec::with_hosts(&p, 32)).unwrap();
    let up = started.elapsed();
    assert_eq!(lab_netns(&p).len(), 33);
    let (first, last) = (&lab["micro01"], &lab["micro32"]);
    assert!(first
        .tcp_check(last, last.link_local_v6().into(), T)
        .is_ok());
    assert!(last.tcp_check(first, first.addr_v4().into(), T).is_ok());
    let started = Instant::now();
    lab.teardown().unwrap();
    eprintln!(
        "lab of 32 hosts: up in {up:.2?}, torn down in {:.2?}",
        started.elapsed()
    );
    assert_eq!(lab_netns(&p), Vec::<String>::new());
}

//! Privileged: the NIC probe inside a real network namespace (veths with and without addresses,
//! one set down, a bridge with a port), run through the real CLI and cross-checked against
//! `ip -j -d addr`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// A network namespace deleted on drop, even when the test fails.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mct-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        common::run("ip", &["netns", "add", &name]);
        Netns(name)
    }

    fn ip(&self, args: &str) -> String {
        let mut a = vec!["-n", self.0.as_str()];
        a.extend(args.split_whitespace());
        common::run("ip", &a)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn lab() -> Netns {
    let ns = Netns::new("nic");
    ns.ip("link set lo up");
    ns.ip("link add va0 type veth peer name va1");
    ns.ip("addr add 10.99.0.1/24 dev va0");
    ns.ip("addr add fd99::1/64 dev va0 nodad");
    ns.ip("link set va0 mtu 1400");
    ns.ip("link set va0 up");
    ns.ip("link set va1 up");
    ns.ip("link add vb0 type veth peer name vb1");
    ns.ip("link add br0 type bridge");
    ns.ip("link set vb1 master br0");
    ns.ip("link set vb1 up");
    ns.ip("link set br0 up");
    // vb0 stays down.
    ns
}

fn inventory(ns: &Netns) -> Value {
    let bin = common::bin("microcloud");
    let out = common::run(
        "ip",
        &[
            "netns",
            "exec",
            &ns.0,
            bin.to_str().unwrap(),
            "inventory",
            "--format",
            "json",
        ],
    );
    serde_json::from_str(&out).expect("inventory JSON")
}

fn by_name(inv: &Value) -> BTreeMap<String, Value> {
    inv["nics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_string(), n.clone()))
        .collect()
}

fn reasons(n: &Value) -> Vec<String> {
    n["uplink"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn eligibility_and_reasons_in_a_namespace() {
    if !common::privileged("eligibility_and_reasons_in_a_namespace") {
        return;
    }
    let ns = lab();
    let nics = by_name(&inventory(&ns));
    let names: Vec<&str> = nics.keys().map(String::as_str).collect();
    assert_eq!(names, vec!["br0", "lo", "va0", "va1", "vb0", "vb1"]);

    assert_eq!(reasons(&nics["lo"]), vec!["loopback interface"]);
    assert_eq!(nics["lo"]["kind"], "loopback");

    let va0 = &nics["va0"];
    assert_eq!(va0["kind"], "veth");
    let r = reasons(va0);
    assert_eq!(r.len(), 2, "{r:?}");
    assert!(r[0].starts_with("veth"), "{r:?}");
    assert!(
        r[1].contains("10.99.0.1/24") && r[1].contains("fd99::1/64"),
        "{r:?}"
    );

    let r = reasons(&nics["va1"]);
    assert_eq!(
        r.len(),
        1,
        "an unaddressed veth is refused for its kind only: {r:?}"
    );

    let vb0 = &nics["vb0"];
    assert_eq!(vb0["state"], "down");
    assert!(reasons(vb0)
        .iter()
        .any(|r| r.contains("administratively down") && r.contains("ip link set vb0 up")));

    let vb1 = &nics["vb1"];
    assert_eq!(vb1["controller"], "br0");
    assert!(reasons(vb1).iter().any(|r| r.contains("enslaved to br0")));

    let br0 = &nics["br0"];
    assert_eq!(br0["kind"], "bridge");
    assert_eq!(br0["bridge"]["ports"], serde_json::json!(["vb1"]));
    assert_eq!(br0["uplink"]["eligible"], true, "{br0}");
    assert!(reasons(br0).is_empty());

    // Inside a namespace udevd's database describes other interfaces: nothing from it.
    assert!(nics.values().all(|n| n["id_path"].is_null()));
}

#[test]
fn facts_match_ip_addr() {
    if !common::privileged("facts_match_ip_addr") {
        return;
    }
    let ns = lab();
    let nics = by_name(&inventory(&ns));
    let ip: Value = serde_json::from_str(&ns.ip("-j -d addr")).unwrap();
    let ip = ip.as_array().unwrap();
    assert_eq!(ip.len(), nics.len());
    for link in ip {
        let name = link["ifname"].as_str().unwrap();
        let ours = &nics[name];
        assert_eq!(ours["ifindex"], link["ifindex"], "{name} ifindex");
        assert_eq!(ours["mtu"], link["mtu"], "{name} mtu");
        let mac = link["address"]
            .as_str()
            .filter(|m| *m != "00:00:00:00:00:00");
        assert_eq!(ours["mac"].as_str(), mac, "{name} mac");
        let up = link["flags"].as_array().unwrap().iter().any(|f| f == "UP");
        assert_eq!(
            ours["state"],
            if up { "up" } else { "down" },
            "{name} state"
        );
        let mut theirs: Vec<String> = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        let mut mine: Vec<String> = ours["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        theirs.sort();
        mine.sort();
        assert_eq!(mine, theirs, "{name} addresses");
        let kind = link["linkinfo"]["info_kind"].as_str();
        assert_eq!(ours["link_kind"].as_str(), kind, "{name} kind");
        let scopes: Vec<&str> = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["scope"].as_str().unwrap())
            .collect();
        for (a, s) in ours["address_details"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&scopes)
        {
            assert_eq!(a["scope"].as_str().unwrap(), *s, "{name} scope");
        }
    }
    assert_eq!(nics["va0"]["mtu"], 1400);
}

//! Privileged, in the lab: real `microcloudd` agents in network namespaces on one bridge find
//! each other over real multicast; off-subnet agents are not offered; a two-link agent answers
//! on each link with that link's addresses; address and link changes are followed without a
//! restart; SIGTERM sends goodbyes.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use microcloud::lab::{Host, HostSpec, Lab, LabProcess, LabSpec};
use serde_json::Value;

fn socket(h: &Host) -> String {
    h.state_dir().join("control.socket").display().to_string()
}

fn agent(h: &Host) -> LabProcess {
    let mut cmd = Command::new(common::bin("microcloudd"));
    cmd.arg("--state-dir")
        .arg(h.state_dir().join("state"))
        .args(["--control-socket", &socket(h), "--name", h.name()])
        .env("RUST_LOG", "microcloud=debug");
    let p = h.spawn(&cmd).expect("start microcloudd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&socket(h)).exists() {
        assert!(
            Instant::now() < deadline,
            "microcloudd on {} never became ready:\n{}",
            h.name(),
            p.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

/// `microcloud discover` in host `h`; `args` are extra flags.
fn discover(h: &Host, args: &[&str]) -> (bool, Value) {
    let out = Command::new(common::bin("microcloud"))
        .args([
            "--control-socket",
            &socket(h),
            "discover",
            "--format",
            "json",
        ])
        .args(args)
        .output()
        .expect("run microcloud discover");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "discover output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// The current table (no fresh browse), out-of-scope sightings included.
fn table(h: &Host) -> Vec<Value> {
    discover(h, &["--expect", "0", "--wait", "0", "--all"]).1["peers"]
        .as_array()
        .unwrap()
        .clone()
}

fn names(peers: &[Value], in_scope: bool) -> BTreeSet<String> {
    peers
        .iter()
        .filter(|p| p["in_scope"] == in_scope)
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn peer<'a>(peers: &'a [Value], name: &str) -> Option<&'a Value> {
    peers.iter().find(|p| p["name"] == name)
}

fn addrs_on(p: &Value, iface: &str) -> BTreeSet<String> {
    p["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["interface"] == iface)
        .map(|a| a["address"].as_str().unwrap().to_string())
        .collect()
}

/// Poll `h`'s table until `ok` holds, or fail with `what` and the lab's logs.
fn until(
    lab: &Lab,
    h: &Host,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let t = table(h);
        if ok(&t) {
            return t;
        }
        if Instant::now() > deadline {
            panic!(
                "{what} within {timeout:?} on {}; table: {t:#?}\nlogs:\n{}",
                h.name(),
                lab.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn four_agents_find_each_other_and_the_off_subnet_one_is_not_offered() {
    if !common::privileged("four_agents_find_each_other_and_the_off_subnet_one_is_not_offered") {
        return;
    }
    let lab =
        Lab::up(LabSpec::with_hosts("disc4", 4).host(HostSpec::new("other").subnet(1))).unwrap();
    let _agents: Vec<LabProcess> = lab.hosts().iter().map(agent).collect();
    let h1 = &lab["micro01"];
    let (ok, v) = discover(h1, &["--expect", "3", "--wait", "10"]);
    assert!(ok, "discover --expect 3 failed: {v}\n{}", lab.logs());
    let peers = v["peers"].as_array().unwrap();
    let want: BTreeSet<String> = ["micro02", "micro03", "micro04"].map(String::from).into();
    assert_eq!(names(peers, true), want, "{v:#}");
    assert!(
        names(peers, false).is_empty(),
        "without --all nothing out of scope: {v:#}"
    );
    for p in peers {
        let name = p["name"].as_str().unwrap();
        let h = &lab[name];
        let seen = addrs_on(p, "eth0");
        assert!(seen.contains(&h.addr_v4().to_string()), "{name}: {seen:?}");
        assert!(seen.contains(&h.addr_v6().to_string()), "{name}: {seen:?}");
        assert_eq!(p["port"], 9443);
        assert_eq!(p["state"], "free");
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(p["host_id"].as_str().unwrap().len(), 32);
    }
    // The off-subnet agent shows only with --all, and never as in scope.
    let t = until(
        &lab,
        h1,
        "the off-subnet agent shows with --all",
        Duration::from_secs(5),
        |t| peer(t, "other").is_some(),
    );
    assert_eq!(peer(&t, "other").unwrap()["in_scope"], false);
    // And it sees none of the four as in scope either.
    let (_, v) = discover(&lab["other"], &["--expect", "0", "--wait", "0"]);
    assert!(v["peers"].as_array().unwrap().is_empty(), "{v:#}");
}

#[test]
fn a_two_link_agent_answers_on_each_link_with_that_links_address() {
    if !common::privileged("a_two_link_agent_answers_on_each_link_with_that_links_address") {
        return;
    }
    // dual: eth0 on the cluster subnet and eth1 on the second network. near: cluster subnet
    // only. far: another subnet of the cluster bridge plus the second network.
    let lab = Lab::up(
        LabSpec::new("disc2")
            .host(HostSpec::new("dual").second_link(0))
            .host(HostSpec::new("near"))
            .host(HostSpec::new("far").subnet(2).second_link(0)),
    )
    .unwrap();
    let _agents: Vec<LabProcess> = lab.hosts().iter().map(agent).collect();
    let dual = &lab["dual"];
    let dual_eth0 = dual.links()[0].v4.unwrap().to_string();
    let dual_eth1 = dual.links()[1].v4.unwrap().to_string();
    let t = until(
        &lab,
        &lab["near"],
        "near sees dual",
        Duration::from_secs(10),
        |t| peer(t, "dual").is_some_and(|p| p["in_scope"] == true),
    );
    let seen = addrs_on(peer(&t, "dual").unwrap(), "eth0");
    assert!(
        seen.contains(&dual_eth0) && !seen.contains(&dual_eth1),
        "near saw {seen:?}"
    );
    let t = until(
        &lab,
        &lab["far"],
        "far sees dual on eth1",
        Duration::from_secs(10),
        |t| {
            peer(t, "dual")
                .is_some_and(|p| p["in_scope"] == true && !addrs_on(p, "eth1").is_empty())
        },
    );
    let on_eth1 = addrs_on(peer(&t, "dual").unwrap(), "eth1");
    assert!(on_eth1.contains(&dual_eth1), "far saw {on_eth1:?}");
    assert!(
        !on_eth1.contains(&dual_eth0),
        "eth1 answers must not carry eth0's address: {on_eth1:?}"
    );
}

#[test]
fn address_and_link_changes_are_followed_and_sigterm_says_goodbye() {
    if !common::privileged("address_and_link_changes_are_followed_and_sigterm_says_goodbye") {
        return;
    }
    let lab = Lab::up(LabSpec::with_hosts("discch", 3)).unwrap();
    let mut agents: Vec<LabProcess> = lab.hosts().iter().map(agent).collect();
    let (h1, h2) = (&lab["micro01"], &lab["micro02"]);
    until(&lab, h1, "both peers found", Duration::from_secs(10), |t| {
        names(t, true).len() == 2
    });

    // A new address is announced without a restart...
    let extra = format!("10.{}.0.102", lab.octet());
    h2.ip(&format!("addr add {extra}/24 dev eth0")).unwrap();
    until(
        &lab,
        h1,
        "the added address is announced",
        Duration::from_secs(5),
        |t| peer(t, "micro02").is_some_and(|p| addrs_on(p, "eth0").contains(&extra)),
    );
    // ...and a removed one is withdrawn with a goodbye.
    h2.ip(&format!("addr del {extra}/24 dev eth0")).unwrap();
    until(
        &lab,
        h1,
        "the removed address is withdrawn",
        Duration::from_secs(5),
        |t| peer(t, "micro02").is_some_and(|p| !addrs_on(p, "eth0").contains(&extra)),
    );

    // Link down: micro02 leaves the interface (it no longer sees anyone); up: it comes back
    // and is announced again.
    h2.ip("link set eth0 down").unwrap();
    until(
        &lab,
        h2,
        "micro02 leaves its downed link",
        Duration::from_secs(5),
        |t| t.is_empty(),
    );
    h2.ip("link set eth0 up").unwrap();
    until(
        &lab,
        h2,
        "micro02 rediscovers after link up",
        Duration::from_secs(10),
        |t| names(t, true).len() == 2,
    );

    // SIGTERM: goodbyes make the others drop micro03 at once, not after the 120 s TTL.
    let mut h3 = agents.pop().unwrap();
    let status = h3.terminate(Duration::from_secs(5)).unwrap();
    assert!(
        status.success(),
        "microcloudd exit on SIGTERM: {status}\n{}",
        h3.log()
    );
    until(
        &lab,
        h1,
        "micro03 dropped after its goodbye",
        Duration::from_secs(3),
        |t| peer(t, "micro03").is_none(),
    );
}

//! Privileged: the interop tooling itself, proven against two mDNS stacks we did not write —
//! avahi-daemon (tests/interop/avahi.sh: per-host config and services, private D-Bus for
//! avahi-browse) and python-zeroconf (tests/interop/zeroconf_{browse,publish}.py) — in a lab of
//! three hosts: python-zeroconf resolves avahi's `_microcloud._tcp` service, avahi-browse sees
//! python-zeroconf's. Anything that holds for these tools against avahi holds against any
//! conforming responder, which is what the agent tests at the bottom (ignored until the
//! discovery engine lands; see "AGENT HOOK") rely on.
//!
//! Needs `scripts/install-deps` (avahi-daemon, avahi-utils, dbus, PyPI zeroconf).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use microcloud::lab::{Host, Lab, LabProcess, LabSpec};
use serde_json::Value;

/// Service type every tool here defaults to (DESIGN §4).
const SERVICE: &str = "_microcloud._tcp";

/// A prefix unique to this test and process (labs of parallel tests never meet).
fn prefix(tag: &str) -> String {
    let p = format!("{tag}{}", std::process::id() % 100_000);
    Lab::down_stale(&p).unwrap();
    p
}

fn interop(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(file)
}

/// The real interpreter behind `python3` (or `$MICROCLOUD_PYTHON`): skips pyenv's shim script,
/// whose start-up cost would blur timings, and fails early with a hint if zeroconf is missing.
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let py = std::env::var("MICROCLOUD_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(&py)
            .args(["-c", "import sys, zeroconf; print(sys.executable)"])
            .output()
            .unwrap_or_else(|e| panic!("running {py}: {e}"));
        assert!(
            out.status.success(),
            "{py} cannot import zeroconf (run scripts/install-deps): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// A 32-hex-digit host id for a test publisher, like the agent's `id=` TXT value.
fn fake_id(n: u8) -> String {
    format!(
        "{:032x}",
        0x6d63_6c6f_7564_0000_0000_0000_0000_0000u128 | u128::from(n)
    )
}

/// avahi-daemon in `host` (tests/interop/avahi.sh daemon), optionally with a private bus for
/// avahi-browse, publishing one `_microcloud._tcp` service per `(name, port, txt)`.
fn spawn_avahi(host: &Host, dbus: bool, services: &[(&str, u16, &[String])]) -> LabProcess {
    let mut cmd = Command::new(interop("avahi.sh"));
    cmd.arg("daemon").arg("--dir").arg(avahi_dir(host)).args([
        "--host-name",
        host.name(),
        "--type",
        SERVICE,
    ]);
    if dbus {
        cmd.arg("--dbus");
    }
    for (name, port, txt) in services {
        cmd.args(["--service", name, "--port", &port.to_string()]);
        for t in *txt {
            cmd.args(["--txt", t]);
        }
    }
    host.spawn(&cmd).unwrap()
}

fn avahi_dir(host: &Host) -> PathBuf {
    host.state_dir().join("avahi")
}

/// One `=` (resolved) line of `avahi-browse -rtp`.
#[derive(Debug, Clone)]
struct AvahiResolved {
    iface: String,
    proto: String,
    name: String,
    host: String,
    address: String,
    port: u16,
    txt: Vec<String>,
}

fn parse_avahi_browse(out: &str) -> Vec<AvahiResolved> {
    out.lines()
        .filter(|l| l.starts_with("=;"))
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(10, ';').collect();
            (f.len() == 10).then(|| AvahiResolved {
                iface: f[1].into(),
                proto: f[2].into(),
                name: f[3].into(),
                host: f[6].into(),
                address: f[7].into(),
                port: f[8].parse().unwrap_or(0),
                txt: f[9]
                    .split("\" \"")
                    .map(|t| t.trim_matches('"').to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
            })
        })
        .collect()
}

/// Run `avahi-browse -rtp` in `host` (whose avahi was started with `dbus`) until `want` names
/// are all resolved or `within` passes; the last resolved lines either way.
fn avahi_browse_until(host: &Host, want: &[&str], within: Duration) -> Vec<AvahiResolved> {
    let deadline = Instant::now() + within;
    let dir = avahi_dir(host);
    let bus = host
        .command(interop("avahi.sh").to_str().unwrap())
        .arg("wait-bus")
        .arg("--dir")
        .arg(&dir)
        .args(["--timeout", &within.as_secs().max(1).to_string()])
        .output()
        .unwrap();
    assert!(
        bus.status.success(),
        "{}: {}\n{}",
        host.name(),
        String::from_utf8_lossy(&bus.stderr),
        host.logs()
    );
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let out = host
            .command(interop("avahi.sh").to_str().unwrap())
            .arg("browse")
            .arg("--dir")
            .arg(&dir)
            .args(["--type", SERVICE, "--timeout"])
            .arg(format!("{:.1}", left.as_secs_f64().clamp(0.5, 5.0)))
            .output()
            .unwrap();
        let found = parse_avahi_browse(&String::from_utf8_lossy(&out.stdout));
        if want.iter().all(|w| found.iter().any(|r| r.name == *w)) || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// tests/interop/zeroconf_browse.py in `host`: its JSON document.
fn zeroconf_browse(host: &Host, expect: usize, timeout: Duration) -> Value {
    let out = host
        .command(python())
        .arg(interop("zeroconf_browse.py"))
        .arg(format!("{SERVICE}.local."))
        .args(["--expect", &expect.to_string(), "--timeout"])
        .arg(timeout.as_secs_f64().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "zeroconf_browse.py in {}: {e}: {stdout}\n{}",
            host.name(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// tests/interop/zeroconf_publish.py in `host`, publishing `name` with the host's eth0
/// addresses; returns once it printed its `ready` line (registered: probed and announced).
fn spawn_zeroconf_publisher(host: &Host, name: &str, port: u16, txt: &[String]) -> LabProcess {
    let mut cmd = Command::new(python());
    cmd.arg(interop("zeroconf_publish.py"))
        .args(["--type", &format!("{SERVICE}.local."), "--name", name])
        .args(["--port", &port.to_string()])
        .args(["--address", &host.addr_v4().to_string()])
        .args(["--address", &host.addr_v6().to_string()]);
    for t in txt {
        cmd.args(["--txt", t]);
    }
    host.spawn(&cmd).unwrap()
}

fn wait_ready(p: &mut LabProcess, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if p.log().contains("\"ready\": true") {
            return;
        }
        assert!(p.is_running(), "{} exited: {}", p.label(), p.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} not ready within {within:?}: {}", p.label(), p.log());
}

fn txt(id: &str) -> Vec<String> {
    [
        "pv=1",
        "v=0.0.0-interop",
        &format!("id={id}"),
        "st=free",
        "svc=lxd,ovn",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn zeroconf_and_avahi_see_each_other() {
    if !common::privileged("zeroconf_and_avahi_see_each_other") {
        return;
    }
    let started = Instant::now();
    let _ = python();
    let lab = Lab::up(LabSpec::with_hosts(prefix("iot"), 3)).unwrap();
    let (a, b, c) = (&lab["micro01"], &lab["micro02"], &lab["micro03"]);
    let (id_a, id_c) = (fake_id(1), fake_id(3));

    // A: avahi publishes micro01 (and gets a private bus for avahi-browse);
    // C: python-zeroconf publishes micro03. Both start now and probe in parallel.
    let mut avahi = spawn_avahi(a, true, &[("micro01", 9443, &txt(&id_a))]);
    let mut publisher = spawn_zeroconf_publisher(c, "micro03", 9443, &txt(&id_c));

    // B: python-zeroconf resolves both (avahi needs ~1.6 s to probe host then service).
    let doc = zeroconf_browse(b, 2, Duration::from_secs(8));
    assert!(avahi.is_running(), "avahi exited:\n{}", avahi.log());
    let services = doc["services"].as_array().unwrap();
    let by_name = |n: &str| {
        services
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("{n} not resolved by zeroconf: {doc}\n{}", lab.logs()))
    };
    let s = by_name("micro01");
    assert_eq!(s["port"], 9443, "{s}");
    assert_eq!(s["server"], "micro01.local.", "{s}");
    let addrs: Vec<&str> = s["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(addrs.contains(&a.addr_v4().to_string().as_str()), "{s}");
    assert!(addrs.contains(&a.addr_v6().to_string().as_str()), "{s}");
    for other in [b, c] {
        assert!(
            !addrs.contains(&other.addr_v4().to_string().as_str()),
            "{s}"
        );
    }
    let props = &s["properties"];
    assert_eq!(props["pv"], "1", "{s}");
    assert_eq!(props["id"], id_a.as_str(), "{s}");
    assert_eq!(props["st"], "free", "{s}");
    assert_eq!(props["svc"], "lxd,ovn", "{s}");
    let z = by_name("micro03");
    assert_eq!(z["properties"]["id"], id_c.as_str(), "{z}");

    // A: avahi-browse over the private bus resolves python-zeroconf's micro03.
    wait_ready(&mut publisher, Duration::from_secs(5));
    let found = avahi_browse_until(a, &["micro03"], Duration::from_secs(6));
    let v4: Vec<&AvahiResolved> = found
        .iter()
        .filter(|r| r.name == "micro03" && r.proto == "IPv4")
        .collect();
    assert!(
        !v4.is_empty(),
        "avahi-browse did not resolve micro03: {found:?}\n{}",
        lab.logs()
    );
    for r in &v4 {
        assert_eq!(r.iface, "eth0", "{r:?}");
        assert_eq!(r.host, "micro03.local", "{r:?}");
        assert_eq!(r.address, c.addr_v4().to_string(), "{r:?}");
        assert_eq!(r.port, 9443, "{r:?}");
        for t in txt(&id_c) {
            assert!(r.txt.contains(&t), "{t} missing in {r:?}");
        }
    }
    // avahi also sees its own static service over the bus.
    assert!(found.iter().any(|r| r.name == "micro01"), "{found:?}");

    // Goodbyes on SIGTERM from both (the bench and agent tests rely on clean stops).
    publisher.terminate(Duration::from_secs(3)).unwrap();
    assert!(
        publisher.log().contains("\"stopped\": true"),
        "{}",
        publisher.log()
    );
    avahi.terminate(Duration::from_secs(3)).unwrap();
    drop(lab);
    eprintln!(
        "zeroconf_and_avahi_see_each_other: {:.2?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// The interop tests of issue 3 for our own agent, with the tools proven above. If the daemon's
// flags change, only `spawn_agent` changes.
// ---------------------------------------------------------------------------------------------

/// `microcloudd` in `host`, named after it, its state and control socket in the host's state dir.
fn spawn_agent(host: &Host) -> LabProcess {
    let state = host.state_dir().join("agent");
    std::fs::create_dir_all(&state).unwrap();
    let mut cmd = Command::new(common::bin("microcloudd"));
    cmd.arg("--state-dir")
        .arg(&state)
        .arg("--control-socket")
        .arg(state.join("control.socket"))
        .args(["--name", host.name()]);
    host.spawn(&cmd).unwrap()
}

/// `microcloud discover --expect N --wait SECS --format json` in `host`, against its own agent.
fn agent_discover(host: &Host, expect: usize, wait: u64) -> Value {
    let sock = host.state_dir().join("agent/control.socket");
    let out = host
        .command(common::bin("microcloud").to_str().unwrap())
        .arg("--control-socket")
        .arg(&sock)
        .args(["discover", "--expect", &expect.to_string()])
        .args(["--wait", &wait.to_string(), "--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "discover in {} failed: {stdout}{}",
        host.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

fn assert_agent_txt(props: &Value, what: &str) {
    assert_eq!(props["pv"], "1", "{what}");
    assert!(props["v"].as_str().is_some_and(|v| !v.is_empty()), "{what}");
    let id = props["id"].as_str().unwrap_or_default();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "id {id:?}: {what}"
    );
    assert_eq!(props["st"], "free", "{what}");
    let svc = props["svc"].as_str().unwrap_or_default();
    assert!(
        svc.is_empty() || svc.split(',').all(|s| ["lxd", "ovn", "ceph"].contains(&s)),
        "svc {svc:?}: {what}"
    );
}

/// Issue 3: python-zeroconf in a lab host resolves every agent's service with the right
/// address, port and TXT.
#[test]
fn zeroconf_resolves_every_agent() {
    if !common::privileged("zeroconf_resolves_every_agent") {
        return;
    }
    let lab = Lab::up(LabSpec::with_hosts(prefix("iza"), 5)).unwrap();
    let agents: Vec<LabProcess> = lab.hosts()[..4].iter().map(spawn_agent).collect();
    let browser = &lab["micro05"];
    let doc = zeroconf_browse(browser, 4, Duration::from_secs(8));
    assert_eq!(doc["complete"], true, "{doc}\n{}", lab.logs());
    for h in &lab.hosts()[..4] {
        let s = doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == h.name())
            .unwrap_or_else(|| panic!("{} not resolved: {doc}", h.name()));
        assert_eq!(s["port"], 9443, "{s}");
        assert_eq!(s["server"], format!("{}.local.", h.name()), "{s}");
        let addrs: Vec<&str> = s["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(addrs.contains(&h.addr_v4().to_string().as_str()), "{s}");
        assert!(addrs.contains(&h.addr_v6().to_string().as_str()), "{s}");
        for other in lab.hosts().iter().filter(|o| o.name() != h.name()) {
            assert!(
                !addrs.contains(&other.addr_v4().to_string().as_str()),
                "{s}"
            );
        }
        assert_agent_txt(&s["properties"], &s.to_string());
    }
    drop(agents);
}

/// Issue 3 / reference mdns.md T15: avahi-daemon (no system D-Bus) beside an agent in one host
/// keeps working, the agent still finds its peers, and avahi-browse over a private bus sees every
/// agent, the local one included.
#[test]
fn avahi_beside_an_agent_sees_the_agents() {
    if !common::privileged("avahi_beside_an_agent_sees_the_agents") {
        return;
    }
    let lab = Lab::up(LabSpec::with_hosts(prefix("iav"), 3)).unwrap();
    let a = &lab["micro01"];
    let mut avahi = spawn_avahi(a, true, &[]);
    let _agents: Vec<LabProcess> = lab.hosts().iter().map(spawn_agent).collect();
    let found = avahi_browse_until(
        a,
        &["micro01", "micro02", "micro03"],
        Duration::from_secs(8),
    );
    for h in lab.hosts() {
        let r = found
            .iter()
            .find(|r| r.name == h.name() && r.proto == "IPv4")
            .unwrap_or_else(|| {
                panic!(
                    "avahi-browse misses {}: {found:?}\n{}",
                    h.name(),
                    lab.logs()
                )
            });
        assert_eq!(r.address, h.addr_v4().to_string(), "{r:?}");
        assert_eq!(r.port, 9443, "{r:?}");
        assert!(r.txt.iter().any(|t| t == "pv=1"), "{r:?}");
    }
    let peers = agent_discover(a, 2, 5);
    let names: Vec<&str> = peers["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in_scope"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"micro02") && names.contains(&"micro03"),
        "{peers}"
    );
    assert!(
        avahi.is_running(),
        "avahi died beside the agent:\n{}",
        avahi.log()
    );
}

//! Privileged, end to end in the lab: each host a machine with its own LXD, microcloudd and
//! loop disk; `microcloud preseed` with the same YAML on every host forms the cluster. Checked
//! through LXD's API on every member: three members ONLINE, the `local` btrfs pool on each
//! member's disk, the bridge, the default profile. A disk carrying a filesystem is refused
//! without `wipe: true` for it (and nothing changes); a second run changes nothing; a joiner
//! whose daemon dies mid-join gives a clear error naming it, the others are told, and a re-run
//! converges.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use microcloud::lab::{Host, HostSpec, Lab, LabProcess, LabSpec};
use serde_json::Value;

const PASS: &str = "correct horse battery staple";
const GIB: u64 = 1 << 30;

fn prefix(tag: &str) -> String {
    let p = format!("{tag}{}", std::process::id() % 100_000);
    Lab::down_stale(&p).unwrap();
    p
}

fn lxd_installed(test: &str) -> bool {
    if std::process::Command::new("lxd")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    if std::env::var("MICROCLOUD_TEST_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{test}: `lxd` is not installed (scripts/install-deps installs it)");
    }
    eprintln!("skipping {test}: `lxd` is not installed");
    false
}

/// A lab of `n` hosts with one 2 GiB disk each, LXD and microcloudd running in every host.
struct Cloud {
    lab: Lab,
    lxds: Vec<LabProcess>,
    agents: Vec<Option<LabProcess>>,
}

impl Cloud {
    fn up(tag: &str, n: usize) -> Cloud {
        common::ensure_udevd();
        let mut spec = LabSpec::new(prefix(tag));
        for i in 1..=n {
            spec = spec.host(HostSpec::new(format!("micro{i:02}")).disks(1, 2 * GIB));
        }
        let lab = Lab::up(spec).unwrap();
        let lxds = std::thread::scope(|s| {
            let ts: Vec<_> = lab
                .hosts()
                .iter()
                .map(|h| s.spawn(move || h.start_lxd().unwrap()))
                .collect();
            ts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let agents = lab
            .hosts()
            .iter()
            .map(|h| Some(h.start_agent(&common::bin("microcloudd"), &[]).unwrap()))
            .collect();
        Cloud { lab, lxds, agents }
    }

    fn host(&self, i: usize) -> &Host {
        &self.lab.hosts()[i]
    }

    fn disk(&self, i: usize) -> String {
        self.host(i).disks()[0].device.display().to_string()
    }

    /// The preseed every host runs; `extra` goes under each system (by index).
    fn preseed(&self, systems_extra: &[(usize, String)]) -> String {
        let mut y = format!(
            "initiator: micro01\nlookup_subnet: 10.{}.0.0/24\nlookup_timeout: 30\n\
             session_passphrase: {PASS}\nsystems:\n",
            self.lab.octet()
        );
        for (i, h) in self.lab.hosts().iter().enumerate() {
            y.push_str(&format!("- name: {}\n", h.name()));
            for (_, e) in systems_extra.iter().filter(|(j, _)| *j == i) {
                y.push_str(e);
            }
        }
        y.push_str("storage:\n  local:\n  - find: size > 1GiB\n");
        y
    }

    /// `microcloud preseed --format json` on every host at once; outputs by host index.
    fn run_preseed(&self, yaml: &str) -> Vec<Output> {
        std::thread::scope(|s| {
            let ts: Vec<_> = self
                .lab
                .hosts()
                .iter()
                .map(|h| {
                    s.spawn(move || {
                        let mut child = h
                            .wrap(&std::process::Command::new(common::bin("microcloud")))
                            .args(["preseed", "--format", "json"])
                            .stdin(Stdio::piped())
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped())
                            .spawn()
                            .unwrap();
                        child
                            .stdin
                            .take()
                            .unwrap()
                            .write_all(yaml.as_bytes())
                            .unwrap();
                        child.wait_with_output().unwrap()
                    })
                })
                .collect();
            ts.into_iter().map(|t| t.join().unwrap()).collect()
        })
    }

    /// `lxc query PATH` on host `i`, as JSON.
    fn query(&self, i: usize, path: &str) -> Value {
        let out = self.host(i).lxc(["query", path]).unwrap();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{path}: {e}: {out}"))
    }

    fn logs(&self) -> String {
        self.lab.logs()
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        // Agents first (they hold LXD connections), then LXD, then the lab.
        self.agents.clear();
        self.lxds.clear();
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Everything the issue asks for, read from LXD on member `i`.
fn assert_cluster(c: &Cloud, i: usize, n: usize) {
    let members = c.query(i, "/1.0/cluster/members?recursion=1");
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), n, "{members:?}");
    for (k, m) in members.iter().enumerate() {
        assert_eq!(m["status"], "Online", "{m}");
        let h = c
            .lab
            .hosts()
            .iter()
            .find(|h| h.name() == m["server_name"])
            .unwrap_or_else(|| panic!("unknown member {m}"));
        assert_eq!(
            m["url"],
            format!("https://{}:8443", h.addr_v4()),
            "{k}: {m}"
        );
    }
    let pool = c.query(i, "/1.0/storage-pools/local");
    assert_eq!(pool["driver"], "btrfs");
    assert_eq!(pool["status"], "Created");
    assert_eq!(pool["locations"].as_array().unwrap().len(), n);
    for (k, h) in c.lab.hosts().iter().enumerate() {
        let mine = c.query(i, &format!("/1.0/storage-pools/local?target={}", h.name()));
        assert_eq!(
            mine["config"]["volatile.initial_source"],
            c.disk(k),
            "{}: {mine}",
            h.name()
        );
    }
    let net = c.query(i, "/1.0/networks/lxdbr0");
    assert_eq!(net["type"], "bridge");
    assert_eq!(net["managed"], true);
    assert_eq!(net["status"], "Created");
    let profile = c.query(i, "/1.0/profiles/default");
    let d = &profile["devices"];
    assert_eq!(d["root"]["pool"], "local", "{profile}");
    assert_eq!(d["root"]["path"], "/");
    assert_eq!(d["eth0"]["network"], "lxdbr0", "{profile}");
    assert_eq!(d["eth0"]["type"], "nic");
}

/// Every host's run succeeded; otherwise all of their outputs and the lab's logs.
fn assert_all_ok(c: &Cloud, outs: &[Output]) {
    if outs.iter().all(|o| o.status.success()) {
        return;
    }
    let all: Vec<String> = c
        .lab
        .hosts()
        .iter()
        .zip(outs)
        .map(|(h, o)| format!("=== {}: {}", h.name(), text(o)))
        .collect();
    panic!("{}\n{}", all.join("\n"), c.logs());
}

fn report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[test]
fn three_hosts_from_a_preseed_wipe_only_with_consent_and_a_rerun_changes_nothing() {
    let t = "three_hosts_from_a_preseed";
    if !common::privileged(t) || !lxd_installed(t) {
        return;
    }
    let started = Instant::now();
    let c = Cloud::up("bs", 3);
    eprintln!("lab with LXD and agents up in {:.1?}", started.elapsed());
    // micro03's only disk carries a filesystem.
    common::run("mkfs.ext4", &["-q", &c.disk(2)]);
    common::run("udevadm", &["settle"]);

    // Without consent: refused, naming the host, and nothing changed anywhere.
    let outs = c.run_preseed(&c.preseed(&[]));
    let init = &outs[0];
    assert!(!init.status.success(), "{}", text(init));
    assert!(
        text(init).contains("no usable local disk on micro03"),
        "{}",
        text(init)
    );
    for o in &outs[1..] {
        assert!(!o.status.success(), "a joiner must hear of it: {}", text(o));
        assert!(
            text(o).contains("no usable local disk on micro03"),
            "{}",
            text(o)
        );
    }
    assert_eq!(c.query(0, "/1.0/cluster")["enabled"], false);
    let fs = common::run("blkid", &["-p", "-o", "value", "-s", "TYPE", &c.disk(2)]);
    assert_eq!(fs.trim(), "ext4");

    // With `wipe: true` for that disk only.
    let wipe = format!(
        "  storage:\n    local:\n      path: {}\n      wipe: true\n",
        c.disk(2)
    );
    let yaml = c.preseed(&[(2, wipe)]);
    let t0 = Instant::now();
    let outs = c.run_preseed(&yaml);
    let took = t0.elapsed();
    assert_all_ok(&c, &outs);
    eprintln!("bootstrap of 3 hosts: {took:.1?}");
    let r = report(&outs[0]);
    let steps = r["report"]["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["changed"] == true), "{r}");
    assert!(
        steps
            .iter()
            .any(|s| s["step"] == "pool-pending" && s["host"] == "micro03" && s["wipe"] == true),
        "{r}"
    );
    for o in &outs[1..] {
        let v = report(o);
        assert_eq!(v["bootstrap"]["ok"], true, "{v}");
        assert_eq!(v["bootstrap"]["initiator"], "micro01");
    }
    for i in 0..3 {
        assert_cluster(&c, i, 3);
    }
    let fs = common::run("blkid", &["-p", "-o", "value", "-s", "TYPE", &c.disk(2)]);
    assert_eq!(fs.trim(), "btrfs");

    // Again: the same end state, nothing changed.
    let outs = c.run_preseed(&yaml);
    for o in &outs {
        assert!(o.status.success(), "{}", text(o));
    }
    let r = report(&outs[0]);
    let steps = r["report"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12, "{r}");
    assert!(steps.iter().all(|s| s["changed"] == false), "{r}");
    for i in 0..3 {
        assert_cluster(&c, i, 3);
    }

    // Once micro03 has been told the bootstrap ended, its initiator may no longer wipe there.
    let body = format!("{{\"path\":\"{}\"}}", c.disk(2));
    let out = c
        .host(0)
        .run(
            "curl",
            [
                "-sS",
                "--unix-socket",
                microcloud::lab::AGENT_SOCKET,
                "-X",
                "POST",
                "-d",
                &body,
                "-H",
                "Content-Type: application/json",
                "http://microcloudd/1.0/session/members/micro03/disks/wipe",
            ],
        )
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("has ended"), "{answer}");
    assert!(answer.contains("403"), "{answer}");
    let fs = common::run("blkid", &["-p", "-o", "value", "-s", "TYPE", &c.disk(2)]);
    assert_eq!(fs.trim(), "btrfs");
}

#[test]
fn a_joiner_daemon_killed_mid_join_is_named_the_others_are_told_and_a_rerun_converges() {
    let t = "a_joiner_daemon_killed_mid_join";
    if !common::privileged(t) || !lxd_installed(t) {
        return;
    }
    let mut c = Cloud::up("bk", 3);
    let yaml = c.preseed(&[]);
    let mut victim = c.agents[1].take().unwrap();
    let log = victim.log_path().to_path_buf();
    let outs = std::thread::scope(|s| {
        let run = s.spawn(|| c.run_preseed(&yaml));
        // Kill micro02's daemon as soon as the initiator's join request reaches it.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let l = std::fs::read_to_string(&log).unwrap_or_default();
            if l.contains("joining the LXD cluster") {
                break;
            }
            assert!(Instant::now() < deadline, "no join request reached micro02");
            std::thread::sleep(Duration::from_millis(2));
        }
        victim.kill().unwrap();
        run.join().unwrap()
    });
    let init = text(&outs[0]);
    assert!(!outs[0].status.success(), "{init}");
    assert!(init.contains("micro02: joining the LXD cluster"), "{init}");
    assert!(init.contains("run `microcloud init` again"), "{init}");
    assert!(!outs[1].status.success(), "{}", text(&outs[1]));
    assert!(
        text(&outs[1]).contains("microcloudd"),
        "the joiner says its daemon is gone: {}",
        text(&outs[1])
    );
    let told = text(&outs[2]);
    assert!(!outs[2].status.success(), "{told}");
    assert!(told.contains("bootstrap failed on micro01"), "{told}");
    assert!(told.contains("micro02"), "{told}");
    // No join token is left valid for a member that did not join.
    let members: Vec<String> = c
        .query(0, "/1.0/cluster/members")
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    let ops = c.query(0, "/1.0/operations?recursion=1");
    let pending_tokens = ops["running"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|o| o["class"] == "token")
                .filter(|o| !members.iter().any(|m| o["metadata"]["serverName"] == *m))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(pending_tokens, 0, "{ops}");

    // Restart micro02's daemon and run again everywhere: converges.
    drop(victim);
    c.agents[1] = Some(
        c.host(1)
            .start_agent(&common::bin("microcloudd"), &[])
            .unwrap(),
    );
    let outs = c.run_preseed(&yaml);
    assert_all_ok(&c, &outs);
    for i in 0..3 {
        assert_cluster(&c, i, 3);
    }
}

#[test]
fn an_operator_bootstraps_two_hosts_interactively_and_confirms_a_wipe() {
    let t = "an_operator_bootstraps_interactively";
    if !common::privileged(t) || !lxd_installed(t) {
        return;
    }
    let c = Cloud::up("bi", 2);
    // micro02's disk carries ext4: offered only for wiping, with a typed confirmation.
    common::run("mkfs.ext4", &["-q", &c.disk(1)]);
    common::run("udevadm", &["settle"]);
    let mut init = c
        .host(0)
        .wrap(&std::process::Command::new(common::bin("microcloud")));
    init.args(["init", "--session-passphrase", PASS]);
    let mut pty = rexpect::session::spawn_command(init, Some(60_000)).expect("init in a pty");
    pty.exp_string(PASS).expect("passphrase shown");
    let exe = common::bin("microcloud");
    let exe = exe.to_str().unwrap();
    let joiner = std::thread::scope(|s| {
        let j = s.spawn(|| c.host(1).run(exe, ["join", "--passphrase", PASS]).unwrap());
        pty.exp_regex(r"\s1\s+micro02\s").expect("micro02 listed");
        pty.send_line("1").unwrap();
        pty.exp_string("Disks for the local storage pool")
            .expect("asked for disks");
        let (_, row) = pty
            .exp_regex(r"\s(\d+)\s+micro01\s+\S+")
            .expect("micro01's disk offered");
        let r1 = row.split_whitespace().next().unwrap().to_string();
        let (_, row) = pty
            .exp_regex(r"\s(\d+)\s+micro02\s+\S+\s+\S+ \S+\s+WIPE: [^\n]*ext4")
            .expect("micro02's disk offered for wiping, saying what is on it");
        let r2 = row.split_whitespace().next().unwrap().to_string();
        pty.exp_string("Rows to use").unwrap();
        pty.send_line(&r1).unwrap();
        pty.exp_string("no disk chosen for micro02")
            .expect("one disk per member");
        pty.send_line(&format!("{r1},{r2}")).unwrap();
        pty.exp_string("Type `wipe` to erase it").unwrap();
        pty.send_line("wipe").unwrap();
        pty.exp_string("Bootstrap complete")
            .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
        j.join().unwrap()
    });
    assert!(joiner.status.success(), "{}", text(&joiner));
    assert!(
        String::from_utf8_lossy(&joiner.stdout).contains("2 member(s) in the LXD cluster"),
        "{}",
        text(&joiner)
    );
    for i in 0..2 {
        assert_cluster(&c, i, 2);
    }
}

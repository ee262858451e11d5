//! Privileged, in the lab: `microcloud init --dry-run` gathers every selected member's inventory
//! over the pinned channel and plans a local disk per member; a disk carrying a filesystem is
//! used only with `wipe: true`, and a dry run changes nothing.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use microcloud::lab::{Host, Lab, LabProcess, LabSpec};

const PASS: &str = "correct horse battery staple";

/// A sparse file on a loop device, detached on drop.
struct Loop {
    dev: String,
    _dir: tempfile::TempDir,
}

impl Loop {
    fn new() -> Loop {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("disk.img");
        common::run("truncate", &["-s", "2G", f.to_str().unwrap()]);
        let dev = common::run("losetup", &["-f", "--show", f.to_str().unwrap()])
            .trim()
            .to_string();
        Loop { dev, _dir: dir }
    }
    fn name(&self) -> &str {
        self.dev.trim_start_matches("/dev/")
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn state(h: &Host) -> PathBuf {
    h.state_dir().join("agent")
}

fn socket(h: &Host) -> String {
    state(h).join("control.socket").display().to_string()
}

fn agent(h: &Host, disk: &Loop) -> LabProcess {
    std::fs::create_dir_all(state(h)).unwrap();
    let mut cmd = Command::new(common::bin("microcloudd"));
    cmd.arg("--state-dir")
        .arg(state(h))
        .args(["--control-socket", &socket(h), "--name", h.name()]);
    // The daemon's allow-list names exactly this host's disk.
    let cfg = h.state_dir().join("microcloudd.yaml");
    std::fs::write(&cfg, format!("allow-disk: [{}]\n", disk.name())).unwrap();
    cmd.arg("--config").arg(&cfg);
    let p = h.spawn(&cmd).expect("start microcloudd");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(&socket(h)).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} not ready:\n{}",
            h.name(),
            p.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn cli(h: &Host, args: &[&str]) -> std::thread::JoinHandle<Output> {
    let mut cmd = Command::new(common::bin("microcloud"));
    cmd.args(["--control-socket", &socket(h)]).args(args);
    std::thread::spawn(move || cmd.output().expect("run microcloud"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn dry_run(lab: &Lab, wipe: bool) -> Output {
    let preseed = lab.dir().join(format!("preseed-{wipe}.yaml"));
    std::fs::write(
        &preseed,
        format!(
            "initiator: micro01\nlookup_subnet: 10.{}.0.0/24\nlookup_timeout: 20\nsession_passphrase: {PASS}\n\
             systems:\n- name: micro01\n- name: micro02\nstorage:\n  local:\n  - find: size > 1GiB\n    wipe: {wipe}\n",
            lab.octet()
        ),
    )
    .unwrap();
    let p = preseed.to_str().unwrap();
    let init = cli(
        &lab["micro01"],
        &["init", "--preseed", p, "--dry-run", "--format", "json"],
    );
    let join = cli(&lab["micro02"], &["init", "--preseed", p]);
    let j = join.join().unwrap();
    assert!(j.status.success(), "joiner: {}", text(&j));
    init.join().unwrap()
}

#[test]
fn dry_run_plans_a_disk_per_member_and_wipes_only_with_consent() {
    if !common::privileged("dry_run_plans_a_disk_per_member_and_wipes_only_with_consent") {
        return;
    }
    common::ensure_udevd();
    let (d1, d2) = (Loop::new(), Loop::new());
    common::run("mkfs.ext4", &["-q", &d2.dev]);
    common::run("udevadm", &["settle"]);
    let lab = Lab::up(LabSpec::with_hosts("plan", 2)).unwrap();
    let _a = agent(&lab["micro01"], &d1);
    let _b = agent(&lab["micro02"], &d2);

    // Without consent micro02's only disk (ext4) cannot be planned.
    let o = dry_run(&lab, false);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("no usable local disk on micro02"),
        "{}",
        text(&o)
    );
    // Restart the agents' sessions: a new init opens a new session.
    let o = dry_run(&lab, true);
    assert!(o.status.success(), "{}\n{}", text(&o), lab.logs());
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let members = plan["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let disk = |i: usize| &members[i]["local_disk"];
    assert_eq!(disk(0)["name"], d1.name());
    assert_eq!(disk(0)["wipe"], false);
    assert_eq!(disk(1)["name"], d2.name());
    assert_eq!(disk(1)["wipe"], true);
    assert!(disk(1)["destroys"].to_string().contains("ext4"), "{plan}");
    assert_eq!(members[1]["address"], lab["micro02"].addr_v4().to_string());
    // A dry run changes nothing: the filesystem is still there.
    let fs = common::run("blkid", &["-p", "-o", "value", "-s", "TYPE", &d2.dev]);
    assert_eq!(fs.trim(), "ext4");
}

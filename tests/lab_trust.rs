//! Privileged, in the lab: trust sessions between real agents. One initiator and three joiners
//! complete a session from a preseed and interactively (a pty plays the operator); a wrong
//! passphrase fails clearly and leaves the session open; an attacker host can neither join
//! without the passphrase nor impersonate the initiator; aborting the initiator stops every
//! joiner with the reason; afterwards only pinned certificates may call the peer API.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use microcloud::api::https::{PeerCallError, PeerClient};
use microcloud::api::tls::{client_config, ServerTrust};
use microcloud::lab::{Host, Lab, LabProcess, LabSpec};
use microcloud::trust::Identity;

const PASS: &str = "correct horse battery staple";

fn state(h: &Host) -> PathBuf {
    h.state_dir().join("agent")
}

fn socket(h: &Host) -> String {
    state(h).join("control.socket").display().to_string()
}

fn agent(h: &Host) -> LabProcess {
    std::fs::create_dir_all(state(h)).unwrap();
    let mut cmd = Command::new(common::bin("microcloudd"));
    cmd.arg("--state-dir")
        .arg(state(h))
        .args(["--control-socket", &socket(h), "--name", h.name()]);
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

/// `microcloud <args>` against host `h`'s agent, in the background.
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

fn join(h: &Host, pass: &str) -> std::thread::JoinHandle<Output> {
    cli(
        h,
        &[
            "join",
            "--passphrase",
            pass,
            "--lookup-timeout",
            "15",
            "--session-timeout",
            "30",
        ],
    )
}

fn lab(prefix: &str, n: usize) -> (Lab, Vec<LabProcess>) {
    // A run killed midway leaves its lab behind; this test's prefix is its own.
    Lab::down_stale(prefix).unwrap();
    let lab = Lab::up(LabSpec::with_hosts(prefix, n)).unwrap();
    let agents = lab.hosts().iter().map(agent).collect();
    (lab, agents)
}

#[test]
fn one_initiator_three_joiners_from_one_preseed() {
    if !common::privileged("one_initiator_three_joiners_from_one_preseed") {
        return;
    }
    let (lab, _agents) = lab("trpre", 4);
    let preseed = lab.dir().join("preseed.yaml");
    let subnet = format!("10.{}.0.0/24", lab.octet());
    std::fs::write(
        &preseed,
        format!(
            "initiator: micro01\nlookup_subnet: {subnet}\nlookup_timeout: 20\nsession_passphrase: {PASS}\n\
             systems:\n- name: micro01\n- name: micro02\n- name: micro03\n- name: micro04\n"
        ),
    )
    .unwrap();
    let p = preseed.to_str().unwrap();
    // The same command and file on every host.
    let runs: Vec<_> = lab
        .hosts()
        .iter()
        .map(|h| {
            cli(
                h,
                &["init", "--trust-only", "--preseed", p, "--format", "json"],
            )
        })
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    for (h, o) in lab.hosts().iter().zip(&outs) {
        assert!(
            o.status.success(),
            "{}: {}\n{}",
            h.name(),
            text(o),
            lab.logs()
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&outs[0].stdout).unwrap();
    let members = report["members"].as_array().unwrap();
    let mut names: Vec<&str> = members
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["micro02", "micro03", "micro04"]);
    // Each joiner saw the code the initiator shows for it, and pinned the initiator.
    let init_fp = Identity::load_or_create(&state(&lab["micro01"]))
        .unwrap()
        .fingerprint()
        .to_string();
    for (h, o) in lab.hosts().iter().zip(&outs).skip(1) {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["state"], "selected", "{}", h.name());
        assert_eq!(v["initiator_fingerprint"], init_fp.as_str());
        let row = members.iter().find(|m| m["name"] == h.name()).unwrap();
        assert_eq!(row["code"], v["code"], "{}: codes differ", h.name());
    }
}

#[test]
fn interactive_operator_selects_in_a_pty_and_a_leaver_disappears() {
    if !common::privileged("interactive_operator_selects_in_a_pty_and_a_leaver_disappears") {
        return;
    }
    let (lab, _agents) = lab("trpty", 5);
    let mut cmd = Command::new(common::bin("microcloud"));
    cmd.args([
        "--control-socket",
        &socket(&lab["micro01"]),
        "init",
        "--trust-only",
        "--session-passphrase",
        PASS,
    ]);
    let mut pty = rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn init in a pty");
    pty.exp_string(PASS).expect("passphrase shown");
    let joins: Vec<_> = ["micro02", "micro03", "micro04"]
        .iter()
        .map(|n| join(&lab[*n], PASS))
        .collect();
    // micro05 joins, then gives up: it must vanish from the operator's list.
    let mut leaver = Command::new(common::bin("microcloud"));
    leaver.args([
        "--control-socket",
        &socket(&lab["micro05"]),
        "join",
        "--passphrase",
        PASS,
    ]);
    let mut leaver = leaver.stderr(std::process::Stdio::piped()).spawn().unwrap();
    // Rows appear in the order joiners prove the passphrase: read them with their numbers.
    let mut rows = std::collections::BTreeMap::new();
    while rows.len() < 4 {
        let (_, m) = pty
            .exp_regex(r"\s(\d+)\s+(micro0[2345])\s")
            .unwrap_or_else(|e| panic!("joiners not listed ({rows:?}): {e}\n{}", lab.logs()));
        let mut it = m.split_whitespace();
        let (num, name) = (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        );
        rows.insert(name, num);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(leaver.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = leaver.wait().unwrap();
    assert!(!st.success());
    pty.exp_string("micro05 left")
        .expect("the leaver disappears");
    // The leaver's row cannot be chosen any more; the operator then picks the three others.
    pty.send_line(&rows["micro05"]).unwrap();
    pty.exp_string("no longer here")
        .expect("a departed joiner is refused");
    let pick = ["micro02", "micro03", "micro04"]
        .map(|n| rows[n].clone())
        .join(",");
    pty.send_line(&pick).unwrap();
    pty.exp_string("Trust established with 3 host(s)")
        .expect("report");
    for j in joins {
        let o = j.join().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("Trusted by micro01"), "{}", text(&o));
    }
}

#[test]
fn wrong_passphrase_attacker_and_abort() {
    if !common::privileged("wrong_passphrase_attacker_and_abort") {
        return;
    }
    let (lab, _agents) = lab("trbad", 4);
    let (init, j2, j3, evil) = (
        &lab["micro01"],
        &lab["micro02"],
        &lab["micro03"],
        &lab["micro04"],
    );
    // The initiator waits for micro02, micro03 and a host that never comes, then gives up.
    let initiator = cli(
        init,
        &[
            "init",
            "--trust-only",
            "--session-passphrase",
            PASS,
            "--select",
            "micro02",
            "--select",
            "micro03",
            "--select",
            "ghost",
            "--lookup-timeout",
            "8",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));

    // A wrong guess fails with a clear message and does not end the session.
    let o = join(j2, "wrong horse battery staple").join().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    // The attacker without the passphrase cannot join either...
    let o = join(evil, "guess guess guess guess").join().unwrap();
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    // ...nor impersonate the initiator: with its own session (and certificate) it cannot
    // complete the exchange with a joiner that holds the real passphrase.
    let fake = cli(
        evil,
        &[
            "init",
            "--trust-only",
            "--session-passphrase",
            "evil evil evil evil",
            "--select",
            "micro03",
            "--lookup-timeout",
            "4",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let evil_addr = evil.addr_v4().to_string();
    let o = cli(
        j3,
        &[
            "join",
            "--passphrase",
            PASS,
            "--initiator-address",
            &evil_addr,
        ],
    )
    .join()
    .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("wrong passphrase") && text(&o).contains("not the real initiator"),
        "{}",
        text(&o)
    );
    assert!(!fake.join().unwrap().status.success());

    // The real session is still open: both joiners get in with the right passphrase, then the
    // initiator gives up on "ghost" and every joiner is told why.
    let named = |h| {
        cli(
            h,
            &[
                "join",
                "--passphrase",
                PASS,
                "--initiator",
                "micro01",
                "--lookup-timeout",
                "15",
            ],
        )
    };
    let (a, b) = (named(j2), named(j3));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let i = initiator.join().unwrap();
    assert!(!i.status.success());
    assert!(text(&i).contains("ghost did not join"), "{}", text(&i));
    for o in [a, b] {
        assert!(!o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("ghost did not join"),
            "joiner not told why: {}",
            text(&o)
        );
    }
}

#[test]
fn only_pinned_certificates_may_call_the_peer_api() {
    if !common::privileged("only_pinned_certificates_may_call_the_peer_api") {
        return;
    }
    let (lab, _agents) = lab("trpin", 2);
    let (i, j) = (&lab["micro01"], &lab["micro02"]);
    let run = cli(
        i,
        &[
            "init",
            "--trust-only",
            "--session-passphrase",
            PASS,
            "--select",
            "micro02",
            "--lookup-timeout",
            "15",
        ],
    );
    let o = join(j, PASS).join().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(run.join().unwrap().status.success());

    let addr = std::net::SocketAddr::new(i.addr_v4().into(), 9443);
    let init_fp = *Identity::load_or_create(&state(i))
        .unwrap()
        .fingerprint()
        .as_bytes();
    let pinned = Identity::load_or_create(&state(j)).unwrap();
    let stranger = Identity::generate().unwrap();
    let call = move |who: &Identity| {
        let cfg = client_config(
            who.cert_der().clone(),
            who.key_der(),
            ServerTrust::Pinned(init_fp),
        )
        .unwrap();
        let client = PeerClient::new(addr, Arc::new(cfg));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.get::<serde_json::Value>("/1.0/hello"))
    };
    let ok = j.in_netns(|| call(&pinned)).unwrap();
    assert_eq!(ok.unwrap()["name"], "micro01");
    match j.in_netns(|| call(&stranger)).unwrap() {
        Err(PeerCallError::Status {
            status, message, ..
        }) => {
            assert_eq!(status.as_u16(), 403);
            assert!(message.contains("not trusted"), "{message}");
        }
        other => panic!("an unpinned certificate got {other:?}"),
    }
    // The join record travelled to the joiner over the pinned channel; it is single use and
    // bound to the joiner's certificate.
    let token = {
        let c = microcloud::api::client::Client::new(socket(j));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(c.get::<serde_json::Value>("/1.0/join/record"))
            .expect("the joiner holds a join record")["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let redeem = move |who: &Identity, token: &str| {
        let cfg = client_config(
            who.cert_der().clone(),
            who.key_der(),
            ServerTrust::Pinned(init_fp),
        )
        .unwrap();
        let client = PeerClient::new(addr, Arc::new(cfg));
        let body = serde_json::json!({ "token": token });
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.post::<_, serde_json::Value>("/1.0/join-record/redeem", &body))
    };
    let status = |r: Result<serde_json::Value, PeerCallError>| match r {
        Err(PeerCallError::Status { status, .. }) => status.as_u16(),
        Ok(_) => 200,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        status(j.in_netns(|| redeem(&stranger, &token)).unwrap()),
        403,
        "a stranger cannot spend it"
    );
    assert_eq!(status(j.in_netns(|| redeem(&pinned, &token)).unwrap()), 200);
    assert_eq!(
        status(j.in_netns(|| redeem(&pinned, &token)).unwrap()),
        410,
        "single use"
    );

    // And the joiner refuses an initiator whose certificate is not the pinned one.
    let wrong = client_config(
        pinned.cert_der().clone(),
        pinned.key_der(),
        ServerTrust::Pinned([7; 32]),
    )
    .unwrap();
    let r = j
        .in_netns(|| {
            let c = PeerClient::new(addr, Arc::new(wrong));
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(c.get::<serde_json::Value>("/1.0/hello"))
        })
        .unwrap();
    assert!(matches!(r, Err(PeerCallError::Tls { .. })), "{r:?}");
}

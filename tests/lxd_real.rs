//! Privileged: the LXD driver against a real LXD 5.0 (Debian's `lxd` package), each daemon in
//! its own lab network namespace with its own `LXD_DIR`, so bridges, dnsmasq and nftables
//! rules never touch the machine. One host: server info, clustering, a join token whose
//! fingerprint is the served certificate's, a `dir` pool (pending then final), a bridge, the
//! default profile, and a second pass of every `ensure_*` changing nothing. Two hosts: the
//! second joins the first through the client, with the certificate checked against the token.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use microcloud::lab::{Host, Lab, LabProcess, LabSpec};
use microcloud::services::lxd::cert::{fetch_certificate, fingerprint_hex};
use microcloud::services::lxd::{
    choose_local_driver, root_device, JoinSpec, LocalDriver, LxdClient, LxdError, MemberConfigKey,
};
use microcloud::services::Outcome::{Changed, Unchanged};

/// Whether LXD is installed; without it the test skips unless CI demands it.
fn lxd_installed(test: &str) -> bool {
    if Command::new("lxd").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var("MICROCLOUD_TEST_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{test}: `lxd` is not installed (apt-get install -y lxd lxd-client nftables)");
    }
    eprintln!("skipping {test}: `lxd` is not installed");
    false
}

fn prefix(tag: &str) -> String {
    let p = format!("{tag}{}", std::process::id() % 100_000);
    Lab::down_stale(&p).unwrap();
    p
}

/// One LXD daemon inside a lab host. Drop shuts it down, kills it if it lingers, unmounts what
/// LXD mounted under its directory (`shmounts`, `devlxd`) and removes the directory — also
/// when the test failed. The lab, dropped after, takes the namespace with dnsmasq, the bridge
/// and the nftables rules.
struct Lxd {
    dir: PathBuf,
    client: LxdClient,
    process: Option<LabProcess>,
}

impl Lxd {
    async fn start(host: &Host) -> Lxd {
        let dir = tempfile::Builder::new()
            .prefix("microcloud-lxd-")
            .tempdir()
            .unwrap()
            .keep();
        let lxd_dir = dir.join("lxd");
        std::fs::create_dir(&lxd_dir).unwrap();
        let mut cmd = Command::new("lxd");
        cmd.args(["--group", "root", "--logfile"])
            .arg(dir.join("lxd.log"))
            .env("LXD_DIR", &lxd_dir);
        let process = host.spawn(&cmd).unwrap();
        let client = LxdClient::new(lxd_dir.join("unix.socket"));
        let lxd = Lxd {
            dir,
            client,
            process: Some(process),
        };
        if let Err(e) = lxd.client.wait_ready(Duration::from_secs(30)).await {
            panic!("{e}\n{}", lxd.log());
        }
        lxd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("lxd.log")).unwrap_or_default()
    }

    /// A directory outside `LXD_DIR` (LXD refuses pool sources inside it).
    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Lxd {
    fn drop(&mut self) {
        let _ = Command::new("lxd")
            .args(["shutdown", "--timeout", "10"])
            .env("LXD_DIR", self.dir.join("lxd"))
            .output();
        drop(self.process.take());
        unmount_under(&self.dir);
        if std::thread::panicking() {
            eprintln!("LXD log ({}):\n{}", self.dir.display(), self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Lazily unmount every mount point below `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Run a future on a fresh runtime inside `host`'s network namespace (TLS to a lab address).
fn in_host<F: std::future::Future + Send>(host: &Host, f: F) -> F::Output
where
    F::Output: Send,
{
    host.in_netns(|| runtime().block_on(f)).unwrap()
}

/// A free TCP port on 127.0.0.1 inside `host`.
fn free_port(host: &Host) -> u16 {
    host.in_netns(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    })
    .unwrap()
}

fn conflict(r: Result<microcloud::services::Outcome, LxdError>) -> String {
    match r {
        Err(e @ LxdError::Conflict(_)) => e.to_string(),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn single_host_bootstrap_objects_are_idempotent() {
    if !common::privileged("lxd_real::single_host") || !lxd_installed("lxd_real::single_host") {
        return;
    }
    let lab = Lab::up(LabSpec::with_hosts(prefix("lxdone"), 1)).unwrap();
    let host = &lab["micro01"];
    runtime().block_on(single_host(host));
}

async fn single_host(host: &Host) {
    let t0 = Instant::now();
    let lxd = Lxd::start(host).await;
    let c = &lxd.client;
    let started = t0.elapsed();

    // Server info and what it supports.
    let server = c.server().await.unwrap();
    assert!(!server.environment.server_clustered);
    assert!(server.environment.server_version.starts_with("5."));
    assert!(c.has_extension("clustering_join_token").await.unwrap());
    assert!(!c.has_extension("no_such_extension").await.unwrap());
    let drivers = server.storage_driver_names();
    assert!(drivers.contains(&"dir"), "{drivers:?}");
    let best = choose_local_driver(drivers.iter().copied()).unwrap();
    eprintln!(
        "LXD {} supports {drivers:?}: local pool would use {best}",
        server.environment.server_version
    );

    // Clustering.
    let address = format!("127.0.0.1:{}", free_port(host));
    assert_eq!(c.ensure_clustered("m1", &address).await.unwrap(), Changed);
    assert_eq!(c.ensure_clustered("m1", &address).await.unwrap(), Unchanged);
    let msg = conflict(c.ensure_clustered("other", &address).await);
    assert!(msg.contains("\"m1\", not \"other\""), "{msg}");
    let server = c.server().await.unwrap();
    assert!(server.environment.server_clustered);
    assert_eq!(
        server.config_str("core.https_address"),
        Some(address.as_str())
    );
    assert_eq!(
        server.config_str("cluster.https_address"),
        Some(address.as_str())
    );
    let members = c.members().await.unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].server_name, "m1");
    assert_eq!(members[0].url, format!("https://{address}"));
    assert!(members[0].is_online(), "{members:?}");
    assert!(
        members[0].roles.iter().any(|r| r == "database"),
        "{members:?}"
    );

    // A join token, its fingerprint the certificate served at its address.
    let issued = c.fresh_join_token("m2").await.unwrap().unwrap();
    let token = microcloud::services::lxd::JoinToken::decode(&issued.encoded()).unwrap();
    assert_eq!(token, issued.token);
    assert_eq!(token.server_name, "m2");
    assert_eq!(token.addresses, std::slice::from_ref(&address));
    assert!(token.expires_at.is_some());
    let served = in_host(host, fetch_certificate(&token.addresses[0])).unwrap();
    assert_eq!(fingerprint_hex(&served), token.fingerprint);
    assert_eq!(
        server.environment.certificate_fingerprint,
        token.fingerprint
    );
    let pending = c.pending_join_tokens().await.unwrap();
    assert_eq!(pending, std::slice::from_ref(&issued));
    // Again: the old token is revoked, one fresh one remains.
    let again = c.fresh_join_token("m2").await.unwrap().unwrap();
    assert_ne!(again.operation_id, issued.operation_id);
    assert_ne!(again.token.secret, issued.token.secret);
    assert_eq!(c.pending_join_tokens().await.unwrap(), [again]);
    assert_eq!(c.revoke_join_tokens_for("m2").await.unwrap(), 1);
    assert!(c.pending_join_tokens().await.unwrap().is_empty());
    assert!(
        c.fresh_join_token("m1").await.unwrap().is_none(),
        "m1 is a member"
    );
    c.revoke_join_token("no-such-operation").await.unwrap();

    // Storage pool `local`: pending on m1 with its source, then created.
    let source = lxd.scratch("pool-local").display().to_string();
    let other = lxd.scratch("pool-other").display().to_string();
    let dir = LocalDriver::Dir.as_str();
    let desc = LocalDriver::Dir.description();
    assert_eq!(
        c.ensure_pool_pending_on("m1", "local", dir, &desc, &source, false)
            .await
            .unwrap(),
        Changed
    );
    assert_eq!(
        c.ensure_pool_pending_on("m1", "local", dir, &desc, &source, false)
            .await
            .unwrap(),
        Unchanged
    );
    let msg = conflict(
        c.ensure_pool_pending_on("m1", "local", dir, &desc, &other, false)
            .await,
    );
    assert!(msg.contains("already pending on m1"), "{msg}");
    let msg = conflict(
        c.ensure_pool_pending_on("m1", "local", "btrfs", &desc, &source, false)
            .await,
    );
    assert!(msg.contains("driver \"dir\""), "{msg}");
    assert_eq!(
        c.storage_pool("local", None).await.unwrap().unwrap().status,
        "Pending"
    );
    if !c.has_extension("storage_pool_source_wipe").await.unwrap() {
        let err = c
            .ensure_pool_pending_on("m1", "wiped", dir, "", &other, true)
            .await
            .unwrap_err();
        assert!(matches!(err, LxdError::MissingExtension { .. }), "{err:?}");
    }
    assert_eq!(
        c.ensure_pool_created("local", dir, &BTreeMap::new(), &desc)
            .await
            .unwrap(),
        Changed
    );
    assert_eq!(
        c.ensure_pool_created("local", dir, &BTreeMap::new(), &desc)
            .await
            .unwrap(),
        Unchanged
    );
    let pool = c.storage_pool("local", None).await.unwrap().unwrap();
    assert_eq!(
        (pool.status.as_str(), pool.driver.as_str()),
        ("Created", "dir")
    );
    assert_eq!(pool.locations, ["m1"]);
    assert_eq!(pool.description, desc);
    let mine = c.storage_pool("local", Some("m1")).await.unwrap().unwrap();
    assert_eq!(mine.config.get("source"), Some(&source));
    assert!(c
        .storage_pools()
        .await
        .unwrap()
        .iter()
        .any(|p| p.name == "local"));
    assert_eq!(
        c.ensure_local_pool("local", dir, &[("m1", &source)], &desc)
            .await
            .unwrap(),
        Unchanged
    );

    // A managed bridge (needs nftables or iptables in the host).
    let net = "mcbr0";
    let config = BTreeMap::from([
        ("ipv4.address".to_string(), "10.254.99.1/24".to_string()),
        ("ipv4.nat".to_string(), "true".to_string()),
        ("ipv6.address".to_string(), "none".to_string()),
    ]);
    let members = [("m1", BTreeMap::new())];
    let net_start = Instant::now();
    assert_eq!(
        c.ensure_network(net, "bridge", &members, &config, "Bridge for tests")
            .await
            .unwrap(),
        Changed
    );
    let net_took = net_start.elapsed();
    assert_eq!(
        c.ensure_network(net, "bridge", &members, &config, "Bridge for tests")
            .await
            .unwrap(),
        Unchanged
    );
    let n = c.network(net, None).await.unwrap().unwrap();
    assert_eq!(
        (n.status.as_str(), n.kind.as_str(), n.managed),
        ("Created", "bridge", true)
    );
    assert_eq!(n.config.get("ipv4.address"), config.get("ipv4.address"));
    host.ip(&format!("link show dev {net}")).unwrap();
    let msg = conflict(
        c.ensure_network_created("lo", "bridge", &BTreeMap::new(), "")
            .await,
    );
    assert!(msg.contains("host interface"), "{msg}");
    let msg = conflict(
        c.ensure_network_created(net, "macvlan", &BTreeMap::new(), "")
            .await,
    );
    assert!(msg.contains("type \"bridge\""), "{msg}");
    assert_eq!(n.description, "Bridge for tests");
    assert!(c
        .networks()
        .await
        .unwrap()
        .iter()
        .any(|n| n.name == net && n.managed));

    // The default profile: root on `local`, eth0 on the bridge; other content kept.
    let before = c.profile("default").await.unwrap().unwrap();
    assert_eq!(
        c.ensure_default_profile("local", net).await.unwrap(),
        Changed
    );
    assert_eq!(
        c.ensure_default_profile("local", net).await.unwrap(),
        Unchanged
    );
    let p = c.profile("default").await.unwrap().unwrap();
    assert_eq!(p.description, before.description);
    assert_eq!(p.devices["root"], root_device("local"));
    assert_eq!(p.devices["eth0"]["network"], net);
    assert_eq!(p.devices["eth0"]["type"], "nic");
    let msg = conflict(c.ensure_default_profile("remote", net).await);
    assert!(msg.contains("device \"root\""), "{msg}");
    let mut replace = BTreeMap::new();
    replace.insert("root".to_string(), root_device("local"));
    assert_eq!(
        c.ensure_profile_devices("default", &replace, true)
            .await
            .unwrap(),
        Unchanged
    );

    // Server config.
    let keys = BTreeMap::from([("user.microcloud".to_string(), "test".to_string())]);
    assert_eq!(c.ensure_server_config(&keys).await.unwrap(), Changed);
    assert_eq!(c.ensure_server_config(&keys).await.unwrap(), Unchanged);

    // The whole second pass, once more in one go: nothing changes.
    let second = Instant::now();
    let outcomes = [
        c.ensure_clustered("m1", &address).await.unwrap(),
        c.ensure_local_pool("local", dir, &[("m1", &source)], &desc)
            .await
            .unwrap(),
        c.ensure_network(net, "bridge", &members, &config, "Bridge for tests")
            .await
            .unwrap(),
        c.ensure_default_profile("local", net).await.unwrap(),
        c.ensure_server_config(&keys).await.unwrap(),
    ];
    assert!(outcomes.iter().all(|o| *o == Unchanged), "{outcomes:?}");
    eprintln!(
        "timings: LXD ready {started:?}, bridge {net_took:?}, idempotent pass {:?}, total {:?}",
        second.elapsed(),
        t0.elapsed()
    );
}

#[test]
fn second_member_joins_with_a_token() {
    if !common::privileged("lxd_real::join") || !lxd_installed("lxd_real::join") {
        return;
    }
    let lab = Lab::up(LabSpec::with_hosts(prefix("lxdtwo"), 2)).unwrap();
    runtime().block_on(two_members(&lab["micro01"], &lab["micro02"]));
}

async fn two_members(h1: &Host, h2: &Host) {
    let t0 = Instant::now();
    let (l1, l2) = tokio::join!(Lxd::start(h1), Lxd::start(h2));
    let (c1, c2) = (&l1.client, &l2.client);
    let a1 = format!("{}:8443", h1.addr_v4());
    let a2 = format!("{}:8443", h2.addr_v4());
    assert_eq!(c1.ensure_clustered("micro01", &a1).await.unwrap(), Changed);

    // The first member's pool is pending for the joiner through member config, as on join.
    let s1 = l1.scratch("pool").display().to_string();
    let s2 = l2.scratch("pool").display().to_string();
    let dir = "dir";
    assert_eq!(
        c1.ensure_pool_pending_on("micro01", "local", dir, "", &s1, false)
            .await
            .unwrap(),
        Changed
    );
    assert_eq!(
        c1.ensure_pool_created("local", dir, &BTreeMap::new(), "")
            .await
            .unwrap(),
        Changed
    );
    let required = c1.cluster().await.unwrap().member_config;
    assert!(
        required
            .iter()
            .any(|k| k.entity == "storage-pool" && k.name == "local" && k.key == "source"),
        "{required:?}"
    );

    let issued = c1.fresh_join_token("micro02").await.unwrap().unwrap();
    let member_config = vec![MemberConfigKey::storage_pool("local", "source", &s2)];
    // The joiner fetches the certificate from its own namespace, as its daemon would.
    let spec = in_host(
        h2,
        JoinSpec::fetch(
            "micro02",
            &a2,
            &issued.encoded(),
            member_config,
            Duration::from_secs(5),
        ),
    )
    .unwrap();
    assert_eq!(spec.cluster_address, a1);

    // A token for another name, and a certificate not the token's, are refused before LXD.
    let mut wrong = spec.clone();
    wrong.server_name = "micro03".into();
    let err = c2.ensure_joined(&wrong).await.unwrap_err();
    assert!(
        err.to_string().contains("the token is for \"micro02\""),
        "{err}"
    );
    let mut forged = spec.clone();
    forged.cluster_certificate = l2_certificate(c2).await;
    let err = c2.ensure_joined(&forged).await.unwrap_err();
    assert!(matches!(err, LxdError::Certificate { .. }), "{err:?}");

    let join_start = Instant::now();
    assert_eq!(c2.ensure_joined(&spec).await.unwrap(), Changed);
    let join_took = join_start.elapsed();
    assert_eq!(c2.ensure_joined(&spec).await.unwrap(), Unchanged);
    assert!(
        c1.pending_join_tokens().await.unwrap().is_empty(),
        "token used up"
    );

    for c in [c1, c2] {
        let members = c.members().await.unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.server_name.as_str()).collect();
        assert_eq!(names, ["micro01", "micro02"]);
        assert!(members.iter().all(|m| m.is_online()), "{members:?}");
    }
    let pool = c2
        .storage_pool("local", Some("micro02"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pool.config.get("source"), Some(&s2));
    assert_eq!(pool.status, "Created");
    assert!(c1.fresh_join_token("micro02").await.unwrap().is_none());

    // A dir pool without a source (the fallback when no block driver is shared): LXD picks
    // each member's directory; pending again is a no-op.
    for m in ["micro01", "micro02"] {
        let r = c1.ensure_pool_pending_on(
            m,
            "dirpool",
            "dir",
            "Local storage on a directory",
            "",
            false,
        );
        assert_eq!(r.await.unwrap(), Changed);
        let r = c1.ensure_pool_pending_on(
            m,
            "dirpool",
            "dir",
            "Local storage on a directory",
            "",
            false,
        );
        assert_eq!(r.await.unwrap(), Unchanged);
    }
    let desc = "Local storage on a directory";
    let none = BTreeMap::new();
    assert_eq!(
        c1.ensure_pool_created("dirpool", "dir", &none, desc)
            .await
            .unwrap(),
        Changed
    );
    let p = c1
        .storage_pool("dirpool", Some("micro02"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.status, "Created");
    assert!(
        p.config
            .get("source")
            .is_some_and(|s| s.contains("dirpool")),
        "{p:?}"
    );

    let joined = c2.server().await.unwrap();
    assert_eq!(
        joined.config_str("cluster.https_address"),
        Some(a2.as_str())
    );
    eprintln!(
        "joiner core.https_address after join: {:?}",
        joined.config_str("core.https_address")
    );
    eprintln!("timings: join {join_took:?}, total {:?}", t0.elapsed());
}

/// The joiner's own (standalone) certificate: a valid PEM that is not the cluster's.
async fn l2_certificate(c: &LxdClient) -> String {
    c.server().await.unwrap().environment.certificate
}

//! `microcloudd`: its subsystems (inventory kept fresh from udev and netlink, the netlink
//! watcher, mDNS discovery, the local API) run as tasks that stop together on SIGTERM; if one
//! dies the daemon stops the rest and exits non-zero so systemd restarts it.

pub mod identity;
pub mod trust;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch, RwLock};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::server::ApiState;
use crate::config::{AgentConfig, DiscoveryConfig, ServicesConfig};
use crate::discovery::engine::{self, EngineConfig};
use crate::discovery::scope::InterfacePolicy;
use crate::inventory::{probe_host, DiskPolicy, ProbeOptions};
use crate::net::snapshot::Snapshot;

/// Default port of the peer API (advertised in SRV).
pub const DEFAULT_PEER_PORT: u16 = 9443;
/// Quiet period after a udev or netlink event before the inventory is probed again.
const INVENTORY_DEBOUNCE: Duration = Duration::from_millis(250);
/// How long subsystems get to finish (goodbye packets) after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, clap::Parser)]
#[command(
    name = "microcloudd",
    version,
    about = "microcloud host agent: keeps this host's hardware inventory current, advertises the \
host with mDNS on its link-local subnets, and serves the local API"
)]
pub struct DaemonArgs {
    /// Config file (YAML; keys are the long flag names).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the agent's identity and records.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/microcloud")]
    pub state_dir: PathBuf,

    /// The local API's unix socket (mode 0600, root only).
    #[arg(long, value_name = "PATH", default_value = crate::api::DEFAULT_CONTROL_SOCKET)]
    pub control_socket: PathBuf,

    #[command(flatten)]
    pub discovery: DiscoveryConfig,

    #[command(flatten)]
    pub services: ServicesConfig,
}

type Task = (&'static str, anyhow::Result<()>);

/// Run the daemon until a termination signal arrives or a subsystem fails.
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let cfg = AgentConfig::load(args.config.as_deref())?
        .merged_discovery(&args.discovery)
        .merged_services(&args.services);
    let disk_policy = DiskPolicy::new(&cfg.inventory.allow_disk)?;
    let d = &cfg.discovery;
    let iface_policy = InterfacePolicy::new(&d.mdns_allow_interface, &d.mdns_deny_interface)
        .context("invalid mdns-allow-interface or mdns-deny-interface pattern")?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating state directory {}", args.state_dir.display()))?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let cancel = CancellationToken::new();

    let net = crate::net::watch::start(crate::net::watch::DEFAULT_DEBOUNCE, cancel.child_token())
        .await
        .context("starting the netlink watcher")?;
    let (udev_tx, udev_rx) = mpsc::channel(1);
    // Without udevd (containers) the inventory still follows netlink; disks then refresh only
    // on restart, which the log says.
    let _monitor = match crate::inventory::monitor::start(udev_tx) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!("udev monitor unavailable, disk changes are not followed: {e}");
            None
        }
    };
    let probe_opts = ProbeOptions {
        disk_policy,
        ..Default::default()
    };
    let inv = probe_host(&probe_opts).await;
    tracing::info!(
        nics = inv.nics.len(),
        disks = inv.disks.len(),
        usable_disks = inv.disks.iter().filter(|d| d.eligible).count(),
        "inventory probed"
    );
    let identity = crate::trust::Identity::load_or_create(&args.state_dir)?;
    let store = crate::trust::TrustStore::open(&args.state_dir)?;
    let name = identity::name(d.name.as_deref());
    let (trust, advertised) = trust::TrustService::new(name.clone(), identity, store);
    let peer_bind = peer_bind_address(d.peer_address.as_deref(), d.peer_port)?;
    let peer_port = peer_bind.map_or(d.peer_port.unwrap_or(DEFAULT_PEER_PORT), |a| a.port());
    let peer_listener = match peer_bind {
        Some(a) => tokio::net::TcpListener::bind(a)
            .await
            .with_context(|| format!("binding the peer API on {a}"))?,
        None => bind_peer_api(peer_port).await?,
    };
    let peer_tls =
        crate::api::tls::server_config(trust.identity.cert_der().clone(), trust.identity.key_der())
            .context("setting up the peer API's TLS")?;
    let (peers_tx, peers_rx) = watch::channel(Vec::new());
    let (refresh_tx, refresh_rx) = mpsc::channel(4);
    let state = Arc::new(ApiState {
        inventory: RwLock::new(Arc::new(inv)),
        peers: peers_rx,
        refresh: refresh_tx,
        trust: trust.clone(),
        lxd_socket: cfg.services.lxd_socket.clone(),
        bootstrap_result: std::sync::Mutex::new(None),
        probe: probe_opts.clone(),
    });
    let listener = crate::api::server::bind(&args.control_socket).with_context(|| {
        format!(
            "binding the control socket {}",
            args.control_socket.display()
        )
    })?;

    let engine_cfg = EngineConfig {
        name,
        host_id: identity::host_id(&args.state_dir)?,
        version: env!("CARGO_PKG_VERSION").to_string(),
        port: peer_port,
        services: identity::services(),
        policy: iface_policy,
        state: crate::discovery::txt::PeerState::Free,
        fingerprint: None,
    };
    tracing::info!(
        name = %engine_cfg.name,
        host_id = %engine_cfg.host_id,
        fingerprint = %trust.fingerprint(),
        "identity"
    );

    let mut tasks: JoinSet<Task> = JoinSet::new();
    {
        let (state, cancel) = (state.clone(), cancel.child_token());
        tasks.spawn(async move {
            (
                "api",
                crate::api::server::serve(listener, state, cancel)
                    .await
                    .map_err(Into::into),
            )
        });
    }
    {
        let (state, snaps, cancel) = (state.clone(), net.snapshots.clone(), cancel.child_token());
        tasks.spawn(async move {
            (
                "inventory",
                refresh_inventory(probe_opts, state, udev_rx, snaps, cancel).await,
            )
        });
    }
    {
        let (snaps, cancel) = (net.snapshots.clone(), cancel.child_token());
        tasks.spawn(async move {
            let r = engine::run(engine_cfg, snaps, advertised, peers_tx, refresh_rx, cancel).await;
            ("discovery", r)
        });
    }
    {
        let router = crate::api::peer::router(trust.clone(), state.clone());
        let cancel = cancel.child_token();
        tasks.spawn(async move {
            let r =
                crate::api::https::serve(peer_listener, Arc::new(peer_tls), router, cancel).await;
            ("peer API", r.map_err(Into::into))
        });
    }
    let net_task = net.task;
    tasks.spawn(async move {
        let r = match net_task.await {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::anyhow!("netlink watcher panicked: {e}")),
        };
        ("netlink", r)
    });

    notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(socket = %args.control_socket.display(), "microcloudd ready");

    let mut failure: Option<anyhow::Error> = None;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        Some(done) = tasks.join_next() => {
            failure = Some(match done {
                Ok((name, Ok(()))) => anyhow::anyhow!("subsystem {name} stopped unexpectedly"),
                Ok((name, Err(e))) => e.context(format!("subsystem {name} failed")),
                Err(e) => anyhow::anyhow!("a subsystem panicked: {e}"),
            });
        }
    }
    notify(&[sd_notify::NotifyState::Stopping]);
    cancel.cancel();
    let drain = async {
        while let Some(done) = tasks.join_next().await {
            if let Ok((name, Err(e))) = done {
                tracing::warn!("{name} failed while stopping: {e:#}");
            }
        }
    };
    if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
        tracing::warn!("subsystems did not stop within {STOP_GRACE:?}");
    }
    let _ = std::fs::remove_file(&args.control_socket);
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `--peer-address`: `IP` (with `--peer-port` or the default port) or `IP:PORT`.
fn peer_bind_address(
    addr: Option<&str>,
    port: Option<u16>,
) -> anyhow::Result<Option<std::net::SocketAddr>> {
    let Some(a) = addr else { return Ok(None) };
    if let Ok(sa) = a.parse::<std::net::SocketAddr>() {
        return Ok(Some(sa));
    }
    let ip: std::net::IpAddr = a
        .parse()
        .with_context(|| format!("--peer-address {a:?} is not IP or IP:PORT"))?;
    Ok(Some(std::net::SocketAddr::new(
        ip,
        port.unwrap_or(DEFAULT_PEER_PORT),
    )))
}

/// Listen on the peer API port, IPv6 and IPv4 on one socket where the host allows it.
async fn bind_peer_api(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
    match tokio::net::TcpListener::bind(v6).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(e).with_context(|| format!("peer API port {port} is in use (another microcloudd?); choose one with --peer-port"))
        }
        // No IPv6 on this host: IPv4 only.
        Err(_) => tokio::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, port))
            .await
            .with_context(|| format!("binding the peer API on port {port}")),
    }
}

/// Re-probe after udev events and after network changes, debounced.
async fn refresh_inventory(
    opts: ProbeOptions,
    state: Arc<ApiState>,
    mut udev: mpsc::Receiver<()>,
    mut snaps: watch::Receiver<Arc<Snapshot>>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let mut udev_open = true;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            ev = udev.recv(), if udev_open => if ev.is_none() { udev_open = false; continue },
            r = snaps.changed() => if r.is_err() { return Ok(()) },
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(INVENTORY_DEBOUNCE) => {}
        }
        let inv = probe_host(&opts).await;
        tracing::debug!(
            nics = inv.nics.len(),
            disks = inv.disks.len(),
            "inventory refreshed"
        );
        *state.inventory.write().await = Arc::new(inv);
    }
}

/// Tell systemd about a state change; a no-op outside systemd.
fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

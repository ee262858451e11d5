//! `microcloudd`'s process shape (mini-redis style): load config, start, tell systemd we are
//! ready, run until SIGTERM or SIGINT, tell systemd we are stopping, exit cleanly.

use std::path::PathBuf;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use crate::config::AgentConfig;
use crate::inventory::{probe_host, DiskPolicy, ProbeOptions};

#[derive(Debug, clap::Parser)]
#[command(
    name = "microcloudd",
    version,
    about = "microcloud host agent: probes this host's hardware and (later) advertises it to peers"
)]
pub struct DaemonArgs {
    /// Config file (YAML; keys are the long flag names of `microcloud`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the agent's identity and records.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/microcloud")]
    pub state_dir: PathBuf,
}

/// Run the daemon until a termination signal arrives.
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let cfg = AgentConfig::load(args.config.as_deref())?;
    let policy = DiskPolicy::new(&cfg.inventory.allow_disk)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating state directory {}", args.state_dir.display()))?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;

    let inv = probe_host(&ProbeOptions {
        disk_policy: policy,
        ..Default::default()
    })
    .await;
    tracing::info!(
        nics = inv.nics.len(),
        uplinks = inv.nics.iter().filter(|n| n.uplink.eligible).count(),
        disks = inv.disks.len(),
        usable_disks = inv.disks.iter().filter(|d| d.eligible).count(),
        "inventory probed"
    );
    for w in &inv.warnings {
        tracing::warn!("{w}");
    }

    notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(state_dir = %args.state_dir.display(), "microcloudd ready");
    let sig = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = sig, "shutting down");
    notify(&[sd_notify::NotifyState::Stopping]);
    Ok(())
}

/// Tell systemd about a state change; a no-op outside systemd.
fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

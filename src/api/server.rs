//! The local API server: axum over a unix socket created with mode 0600 (root only).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch, RwLock};
use tokio_util::sync::CancellationToken;

use super::{Peer, PeersResponse};
use crate::inventory::Inventory;

/// What the API serves; owned by the daemon, updated by its subsystems.
pub struct ApiState {
    pub inventory: RwLock<Arc<Inventory>>,
    pub peers: watch::Receiver<Vec<Peer>>,
    /// Ask discovery to start a fresh browse (empty cache, query now).
    pub refresh: mpsc::Sender<()>,
    pub trust: Arc<crate::daemon::trust::TrustService>,
    /// LXD's socket when configured (`lxd-socket`); else found where LXD usually puts it.
    pub lxd_socket: Option<std::path::PathBuf>,
    /// On a joiner: how the initiator's last bootstrap ended.
    pub bootstrap_result: std::sync::Mutex<Option<super::lxd::BootstrapResult>>,
    /// How this host is probed (for a fresh inventory on demand).
    pub probe: crate::inventory::ProbeOptions,
}

impl ApiState {
    /// Probe now and keep the result. Planning uses this rather than the cached inventory: a
    /// filesystem written a moment ago must count (udev events may lag, and do not cross
    /// network namespaces), because whether a disk is wiped depends on it.
    pub async fn fresh_inventory(&self) -> Arc<Inventory> {
        let inv = Arc::new(crate::inventory::probe_host(&self.probe).await);
        *self.inventory.write().await = inv.clone();
        inv
    }
}

#[derive(Debug, Deserialize)]
struct PeersQuery {
    #[serde(default)]
    all: bool,
}

async fn inventory(State(s): State<Arc<ApiState>>) -> Json<Inventory> {
    Json((**s.inventory.read().await).clone())
}

async fn peers(State(s): State<Arc<ApiState>>, Query(q): Query<PeersQuery>) -> Json<PeersResponse> {
    let peers = s
        .peers
        .borrow()
        .iter()
        .filter(|p| q.all || p.in_scope)
        .cloned()
        .collect();
    Json(PeersResponse { peers })
}

async fn refresh(State(s): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let _ = s.refresh.try_send(());
    Json(serde_json::json!({}))
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/1.0/inventory", get(inventory))
        .route("/1.0/peers", get(peers))
        .route("/1.0/peers/refresh", post(refresh))
        .merge(super::local_trust::routes())
        .merge(super::lxd::local_routes())
        .merge(super::disks::local_routes())
        .with_state(state)
}

/// Bind the control socket: parent directory 0700, socket 0600, a stale socket replaced.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let l = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Serve until cancelled.
pub async fn serve(
    listener: UnixListener,
    state: Arc<ApiState>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

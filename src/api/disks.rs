//! Wiping a disk on request, for a pool the operator consented to erase it for, and asking udev
//! to look at a pool's disk again while LXD waits for it (`nudge`): locally
//! (`POST /1.0/disks/wipe` on the control socket), for the initiator this host joined (the same
//! path on the peer API), and the initiator's proxy to a selected joiner. The host decides for
//! itself on a fresh probe: only content may be erased (signatures, a partition table), never a
//! disk in use or outside its allow-list.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::https::Caller;
use super::lxd::{forward, require_initiator, LxdApiError};
use super::server::ApiState;
use crate::inventory::rules::disk::{disk_reasons, wipe_would_clear};
use crate::inventory::DiskPolicy;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WipeRequest {
    /// The disk, as the plan names it (stable path, `/dev` path or kernel name).
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WipeResponse {
    /// False when the disk was blank already.
    pub changed: bool,
    /// What was on it.
    pub erased: Vec<String>,
}

fn refuse(status: StatusCode, msg: String, kind: &'static str) -> LxdApiError {
    LxdApiError(status, msg, kind)
}

/// Wipe `path` on this host if, on a fresh probe, all that stands in its way is content.
async fn wipe_here(s: &ApiState, path: &str) -> Result<WipeResponse, LxdApiError> {
    let host = &s.trust.name;
    let inv = s.fresh_inventory().await;
    let policy = DiskPolicy::new(&inv.allow_disk).map_err(|e| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{host}: {e}"),
            "config",
        )
    })?;
    let disk = inv
        .disks
        .iter()
        .find(|d| d.answers_to(path))
        .ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                format!("{host}: no disk {path} on this host"),
                "no_disk",
            )
        })?;
    let reasons = disk_reasons(disk, &policy);
    if reasons.is_empty() {
        return Ok(WipeResponse {
            changed: false,
            erased: vec![],
        });
    }
    if !wipe_would_clear(disk, &policy) {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!(
                "{host}: refusing to wipe {path}: {} (wiping erases content, it never takes a disk \
                 from what uses it)",
                reasons.join("; ")
            ),
            "not_wipeable",
        ));
    }
    tracing::warn!(host = %host, disk = %disk.path, erased = ?reasons, "wiping disk with consent");
    let d = disk.clone();
    tokio::task::spawn_blocking(move || crate::services::wipe::wipe(&d))
        .await
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), "internal"))?
        .map_err(|e| refuse(StatusCode::CONFLICT, format!("{host}: {e}"), "wipe_failed"))?;
    let after = s.fresh_inventory().await;
    if let Some(d) = after.disks.iter().find(|d| d.answers_to(path)) {
        let left = disk_reasons(d, &policy);
        if !left.is_empty() {
            return Err(refuse(
                StatusCode::CONFLICT,
                format!(
                    "{host}: {path} still not usable after wiping: {}",
                    left.join("; ")
                ),
                "wipe_failed",
            ));
        }
    }
    Ok(WipeResponse {
        changed: true,
        erased: reasons,
    })
}

/// Ask udev to look at `path` again (a synthetic `change` uevent). LXD waits up to 10 s for
/// udev's `/dev/disk/by-uuid` link after formatting a pool's disk, and udev sometimes misses
/// the format when it lands while an earlier event for that disk is being processed.
async fn nudge_here(s: &ApiState, path: &str) -> Result<NudgeResponse, LxdApiError> {
    let host = &s.trust.name;
    let inv = s.inventory.read().await.clone();
    let disk = inv
        .disks
        .iter()
        .find(|d| d.answers_to(path))
        .ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                format!("{host}: no disk {path} on this host"),
                "no_disk",
            )
        })?;
    let uevent = format!("/sys/class/block/{}/uevent", disk.name);
    std::fs::write(&uevent, "change").map_err(|e| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{host}: writing {uevent}: {e}"),
            "nudge_failed",
        )
    })?;
    tracing::debug!(disk = %disk.path, "asked udev to look at the disk again");
    Ok(NudgeResponse {})
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NudgeResponse {}

async fn local_nudge(
    State(s): State<Arc<ApiState>>,
    Json(r): Json<WipeRequest>,
) -> Result<Json<NudgeResponse>, LxdApiError> {
    nudge_here(&s, &r.path).await.map(Json)
}

async fn peer_nudge(
    State(s): State<Arc<ApiState>>,
    Extension(c): Extension<Caller>,
    Json(r): Json<WipeRequest>,
) -> Result<Json<NudgeResponse>, LxdApiError> {
    require_initiator(&s, &c, true)?;
    nudge_here(&s, &r.path).await.map(Json)
}

async fn proxy_nudge(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Json(r): Json<WipeRequest>,
) -> Result<Json<NudgeResponse>, LxdApiError> {
    let doing = format!("nudging udev about {}", r.path);
    forward(
        &s,
        &name,
        "/1.0/disks/nudge",
        &r,
        Duration::from_secs(5),
        &doing,
    )
    .await
}

async fn local_wipe(
    State(s): State<Arc<ApiState>>,
    Json(r): Json<WipeRequest>,
) -> Result<Json<WipeResponse>, LxdApiError> {
    wipe_here(&s, &r.path).await.map(Json)
}

async fn peer_wipe(
    State(s): State<Arc<ApiState>>,
    Extension(c): Extension<Caller>,
    Json(r): Json<WipeRequest>,
) -> Result<Json<WipeResponse>, LxdApiError> {
    require_initiator(&s, &c, true)?;
    wipe_here(&s, &r.path).await.map(Json)
}

async fn proxy_wipe(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Json(r): Json<WipeRequest>,
) -> Result<Json<WipeResponse>, LxdApiError> {
    let doing = format!("wiping {}", r.path);
    forward(
        &s,
        &name,
        "/1.0/disks/wipe",
        &r,
        Duration::from_secs(120),
        &doing,
    )
    .await
}

pub fn local_routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/1.0/disks/wipe", post(local_wipe))
        .route("/1.0/session/members/{name}/disks/wipe", post(proxy_wipe))
        .route("/1.0/disks/nudge", post(local_nudge))
        .route("/1.0/session/members/{name}/disks/nudge", post(proxy_nudge))
}

pub fn peer_routes(api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/1.0/disks/wipe", post(peer_wipe))
        .route("/1.0/disks/nudge", post(peer_nudge))
        .with_state(api)
}

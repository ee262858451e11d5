//! The daemon's LXD endpoints: what this host's LXD is (`GET /1.0/lxd`, local and for the pinned
//! initiator), joining it to a cluster on the initiator's request (`POST /1.0/lxd/join`, peer
//! API, initiator only), the initiator's proxies to a selected joiner over the pinned channel,
//! and the bootstrap result the initiator tells each joiner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::https::Caller;
use super::server::ApiState;
use super::ApiError;
use crate::services::lxd::{JoinSpec, LxdClient, LxdError, MemberConfigKey};
use crate::trust::Fingerprint;

/// How long an LXD join may take on the joiner (dqlite replication included).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a joiner waits for the cluster certificate from the token's addresses.
const CERT_TIMEOUT: Duration = Duration::from_secs(15);

/// What a host's LXD is, as the planner and the executor need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LxdFacts {
    /// The agent's (host's) name.
    pub host: String,
    /// The unix socket the agent reached LXD on.
    pub socket: String,
    pub version: String,
    pub clustered: bool,
    /// The member name when clustered.
    pub member_name: Option<String>,
    /// Storage drivers LXD can use here.
    pub drivers: Vec<String>,
}

/// The initiator asks a joiner to join its LXD to the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LxdJoinRequest {
    /// The member name, which must be the joiner's own name.
    pub server_name: String,
    /// The joiner's cluster address (`IP:PORT`).
    pub server_address: String,
    /// LXD's join token (base64), issued for `server_name`.
    pub token: String,
    /// Member-specific keys of pools and networks that exist already.
    #[serde(default)]
    pub member_config: Vec<MemberConfigKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LxdJoinResponse {
    /// False when this LXD was a member under that name already.
    pub changed: bool,
}

/// How the bootstrap ended, as the initiator tells each joiner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapResult {
    pub initiator: String,
    pub ok: bool,
    pub message: String,
}

/// An error: status, message, and a machine-readable kind.
pub struct LxdApiError(pub StatusCode, pub String, pub &'static str);

impl IntoResponse for LxdApiError {
    fn into_response(self) -> Response {
        let body = ApiError {
            error: self.1,
            kind: Some(self.2.to_string()),
        };
        (self.0, Json(body)).into_response()
    }
}

fn lxd_error(host: &str, doing: &str, e: LxdError) -> LxdApiError {
    let (status, kind) = match &e {
        LxdError::NoSocket { .. }
        | LxdError::NotRunning { .. }
        | LxdError::Connect { .. }
        | LxdError::NotReady { .. } => (StatusCode::SERVICE_UNAVAILABLE, "lxd_unavailable"),
        LxdError::Conflict(_) => (StatusCode::CONFLICT, "lxd_conflict"),
        LxdError::Token(_) | LxdError::Certificate { .. } => (StatusCode::BAD_REQUEST, "lxd_token"),
        _ => (StatusCode::BAD_GATEWAY, "lxd_failed"),
    };
    LxdApiError(status, format!("{host}: {doing}: {e}"), kind)
}

/// Read this host's LXD facts.
pub async fn facts(host: &str, socket: Option<&std::path::Path>) -> Result<LxdFacts, LxdError> {
    let c = LxdClient::discover(socket)?;
    let server = c.server().await?;
    let env = &server.environment;
    Ok(LxdFacts {
        host: host.to_string(),
        socket: c.socket().display().to_string(),
        version: env.server_version.clone(),
        clustered: env.server_clustered,
        member_name: env.server_clustered.then(|| env.server_name.clone()),
        drivers: server
            .storage_driver_names()
            .into_iter()
            .map(str::to_string)
            .collect(),
    })
}

async fn local_facts(State(s): State<Arc<ApiState>>) -> Result<Json<LxdFacts>, LxdApiError> {
    let name = &s.trust.name;
    facts(name, s.lxd_socket.as_deref())
        .await
        .map(Json)
        .map_err(|e| lxd_error(name, "reading LXD", e))
}

/// Only the initiator of this host's current join may read or drive its LXD; with `changes`,
/// only until it has told how the bootstrap ended. A pin alone is not enough: an initiator of
/// long ago must not wipe disks here today. The caller's certificate is the one the passphrase
/// exchange bound. The join may still read `verified` for a moment after the initiator selected
/// this host (this host learns it by long-poll): the initiator asking is the selection.
pub(super) fn require_initiator(
    s: &ApiState,
    c: &Caller,
    changes: bool,
) -> Result<(), LxdApiError> {
    let fp = Fingerprint::from_bytes(c.fingerprint);
    let forbid = |why: String| Err(LxdApiError(StatusCode::FORBIDDEN, why, "not_initiator"));
    let name = &s.trust.name;
    let current = s.trust.join_view().filter(|v| {
        matches!(v.state.as_str(), "selected" | "verified")
            && v.initiator_fingerprint
                .eq_ignore_ascii_case(&fp.to_string())
    });
    let Some(view) = current else {
        return forbid(format!(
            "{name} has not joined a session of certificate {}: run `microcloud join` on \
             {name} first",
            fp.short()
        ));
    };
    if changes {
        if let Some(r) = s
            .bootstrap_result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return forbid(format!(
                "the bootstrap by {} has ended ({}); run `microcloud join` on {name} again to \
                 take part in another",
                view.initiator, r.message
            ));
        }
    }
    Ok(())
}

async fn peer_facts(
    State(s): State<Arc<ApiState>>,
    Extension(c): Extension<Caller>,
) -> Result<Json<LxdFacts>, LxdApiError> {
    require_initiator(&s, &c, false)?;
    local_facts(State(s)).await
}

async fn peer_join(
    State(s): State<Arc<ApiState>>,
    Extension(c): Extension<Caller>,
    Json(r): Json<LxdJoinRequest>,
) -> Result<Json<LxdJoinResponse>, LxdApiError> {
    require_initiator(&s, &c, true)?;
    let name = s.trust.name.clone();
    if r.server_name != name {
        return Err(LxdApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "{name}: asked to join as {:?}, but this host is {name:?}",
                r.server_name
            ),
            "wrong_name",
        ));
    }
    let span = tracing::info_span!("lxd_join", host = %name, address = %r.server_address);
    join_here(&s, &name, &r).instrument(span).await.map(Json)
}

/// This host's half of a join: the certificate checked against the token, then LXD joined.
async fn join_here(
    s: &ApiState,
    name: &str,
    r: &LxdJoinRequest,
) -> Result<LxdJoinResponse, LxdApiError> {
    tracing::info!("joining the LXD cluster");
    let lxd = LxdClient::discover(s.lxd_socket.as_deref())
        .map_err(|e| lxd_error(name, "finding LXD", e))?
        .with_operation_timeout(JOIN_TIMEOUT);
    let spec = JoinSpec::fetch(
        &r.server_name,
        &r.server_address,
        &r.token,
        r.member_config.clone(),
        CERT_TIMEOUT,
    )
    .await
    .map_err(|e| {
        lxd_error(
            name,
            "checking the cluster certificate against the token",
            e,
        )
    })?;
    let outcome = lxd
        .ensure_joined(&spec)
        .await
        .map_err(|e| lxd_error(name, "joining the LXD cluster", e))?;
    tracing::info!(changed = outcome.changed(), "joined the LXD cluster");
    Ok(LxdJoinResponse {
        changed: outcome.changed(),
    })
}

async fn peer_result(
    State(s): State<Arc<ApiState>>,
    Extension(c): Extension<Caller>,
    Json(r): Json<BootstrapResult>,
) -> Result<Json<serde_json::Value>, LxdApiError> {
    require_initiator(&s, &c, false)?;
    if r.ok {
        tracing::info!(initiator = %r.initiator, "bootstrap finished: {}", r.message);
    } else {
        tracing::warn!(initiator = %r.initiator, "bootstrap failed: {}", r.message);
    }
    *s.bootstrap_result.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    Ok(Json(serde_json::json!({})))
}

async fn local_result(State(s): State<Arc<ApiState>>) -> Json<Option<BootstrapResult>> {
    Json(
        s.bootstrap_result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    )
}

/// A selected joiner of this host's session: its peer address and certificate.
fn selected(s: &ApiState, name: &str) -> Result<(SocketAddr, Fingerprint), LxdApiError> {
    let view = s.trust.session_view().ok_or(LxdApiError(
        StatusCode::NOT_FOUND,
        "no session on this host: run `microcloud init` first".into(),
        "no_session",
    ))?;
    view.joiners
        .iter()
        .find(|j| j.name == name && j.state == crate::trust::JoinerState::Selected)
        .map(|j| {
            (
                SocketAddr::new(j.source, crate::daemon::DEFAULT_PEER_PORT),
                j.fingerprint,
            )
        })
        .ok_or_else(|| {
            LxdApiError(
                StatusCode::NOT_FOUND,
                format!("{name} is not a selected member of this host's session"),
                "unknown_member",
            )
        })
}

fn peer_failed(name: &str, doing: &str, e: impl std::fmt::Display) -> LxdApiError {
    LxdApiError(
        StatusCode::BAD_GATEWAY,
        format!("{name}: {doing}: {e}"),
        "peer_failed",
    )
}

/// Forward `body` to selected joiner `name`'s peer API at `path` over the pinned channel,
/// waiting up to `timeout`; a failure says what was being done there.
pub(super) async fn forward<B: Serialize, T: DeserializeOwned>(
    s: &ApiState,
    name: &str,
    path: &str,
    body: &B,
    timeout: Duration,
    doing: &str,
) -> Result<Json<T>, LxdApiError> {
    let (addr, fp) = selected(s, name)?;
    let c = s
        .trust
        .pinned_client(addr, &fp)
        .map_err(|e| peer_failed(name, "connecting", e))?
        .with_timeout(timeout);
    c.post(path, body)
        .await
        .map(Json)
        .map_err(|e| peer_failed(name, doing, e))
}

async fn proxy_facts(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
) -> Result<Json<LxdFacts>, LxdApiError> {
    let (addr, fp) = selected(&s, &name)?;
    let c = s
        .trust
        .pinned_client(addr, &fp)
        .map_err(|e| peer_failed(&name, "connecting", e))?;
    c.get("/1.0/lxd")
        .await
        .map(Json)
        .map_err(|e| peer_failed(&name, "reading its LXD", e))
}

async fn proxy_join(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Json(r): Json<LxdJoinRequest>,
) -> Result<Json<LxdJoinResponse>, LxdApiError> {
    let timeout = JOIN_TIMEOUT + Duration::from_secs(20);
    forward(
        &s,
        &name,
        "/1.0/lxd/join",
        &r,
        timeout,
        "joining the LXD cluster",
    )
    .await
}

async fn proxy_result(
    State(s): State<Arc<ApiState>>,
    Path(name): Path<String>,
    Json(r): Json<BootstrapResult>,
) -> Result<Json<serde_json::Value>, LxdApiError> {
    let doing = "telling it the bootstrap result";
    let timeout = Duration::from_secs(10);
    forward(&s, &name, "/1.0/bootstrap/result", &r, timeout, doing).await
}

/// The local API's LXD routes.
pub fn local_routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/1.0/lxd", get(local_facts))
        .route("/1.0/bootstrap/result", get(local_result))
        .route("/1.0/session/members/{name}/lxd", get(proxy_facts))
        .route("/1.0/session/members/{name}/lxd/join", post(proxy_join))
        .route(
            "/1.0/session/members/{name}/bootstrap/result",
            post(proxy_result),
        )
}

/// The peer API's LXD routes (the initiator only).
pub fn peer_routes(api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/1.0/lxd", get(peer_facts))
        .route("/1.0/lxd/join", post(peer_join))
        .route("/1.0/bootstrap/result", post(peer_result))
        .with_state(api)
}

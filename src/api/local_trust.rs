//! Local API endpoints for trust: the initiator's operator opens, watches, selects and ends a
//! session; the joiner's operator joins and follows the initiator's decision.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::server::ApiState;
use super::{ApiError, Peer};
use crate::daemon::trust::{by_name, JoinError, JoinView, SessionView};
use crate::trust::{Fingerprint, SessionError};

pub struct LocalError(StatusCode, String, Option<&'static str>);

impl IntoResponse for LocalError {
    fn into_response(self) -> Response {
        let body = ApiError {
            error: self.1,
            kind: self.2.map(str::to_string),
        };
        (self.0, Json(body)).into_response()
    }
}

impl From<SessionError> for LocalError {
    fn from(e: SessionError) -> Self {
        let (status, kind) = match e {
            SessionError::NoSession => (StatusCode::NOT_FOUND, "no_session"),
            SessionError::UnknownJoiner(_) => (StatusCode::NOT_FOUND, "unknown_joiner"),
            SessionError::Ended(_) | SessionError::Expired | SessionError::TooManyAttempts => {
                (StatusCode::GONE, "session_ended")
            }
            _ => (StatusCode::BAD_REQUEST, "other"),
        };
        LocalError(status, e.to_string(), Some(kind))
    }
}

impl From<JoinError> for LocalError {
    fn from(e: JoinError) -> Self {
        let status = match e {
            JoinError::WrongPassphrase(_) => StatusCode::UNAUTHORIZED,
            JoinError::NoSession(_) => StatusCode::NOT_FOUND,
            JoinError::Ended { .. } => StatusCode::GONE,
            JoinError::Unreachable(_) => StatusCode::BAD_GATEWAY,
            JoinError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            JoinError::Other(_) => StatusCode::BAD_REQUEST,
        };
        let kind = e.kind();
        LocalError(status, e.to_string(), Some(kind))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenRequest {
    pub passphrase: Option<String>,
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenResponse {
    pub passphrase: String,
    pub name: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SelectRequest {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub fingerprints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndRequest {
    pub reason: String,
    #[serde(default)]
    pub abort: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JoinRequest {
    pub passphrase: String,
    /// `IP` or `IP:PORT` of the initiator; otherwise it is found with discovery.
    pub initiator_address: Option<String>,
    /// The initiator's name, when discovery may find several.
    pub initiator: Option<String>,
    pub lookup_timeout_secs: Option<u64>,
    /// Only consider initiators with an address in this subnet (a preseed's `lookup_subnet`).
    #[serde(default)]
    pub lookup_subnet: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub fingerprint: String,
}

fn ok() -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}

async fn identity(State(s): State<Arc<ApiState>>) -> Json<Identity> {
    Json(Identity {
        name: s.trust.name.clone(),
        fingerprint: s.trust.fingerprint().to_string(),
    })
}

async fn open(
    State(s): State<Arc<ApiState>>,
    Json(r): Json<OpenRequest>,
) -> Result<Json<OpenResponse>, LocalError> {
    let timeout = Duration::from_secs(r.timeout_secs.unwrap_or(3600).clamp(1, 3600));
    let passphrase = s
        .trust
        .open_session(r.passphrase, timeout)
        .map_err(|e| LocalError(StatusCode::CONFLICT, e, Some("session_open")))?;
    Ok(Json(OpenResponse {
        passphrase,
        name: s.trust.name.clone(),
        fingerprint: s.trust.fingerprint().to_string(),
    }))
}

async fn view(State(s): State<Arc<ApiState>>) -> Result<Json<SessionView>, LocalError> {
    s.trust.session_view().map(Json).ok_or(LocalError(
        StatusCode::NOT_FOUND,
        "no session on this host".into(),
        Some("no_session"),
    ))
}

fn resolve(s: &ApiState, r: &SelectRequest) -> Result<Vec<Fingerprint>, LocalError> {
    let joiners = s
        .trust
        .session_view()
        .map(|v| v.joiners)
        .unwrap_or_default();
    let names = by_name(&joiners);
    let mut out = Vec::new();
    for n in &r.names {
        // Names are what a joiner claims: when two verified joiners claim the same one, a
        // selection by name could pick the impostor, so it is refused.
        let claimants = joiners
            .iter()
            .filter(|j| &j.name == n && j.state != crate::trust::JoinerState::Rejected)
            .count();
        if claimants > 1 {
            return Err(LocalError(
                StatusCode::CONFLICT,
                format!("{claimants} joiners claim the name {n:?}: select by fingerprint after comparing codes"),
                Some("ambiguous"),
            ));
        }
        let fp = names.get(n).ok_or_else(|| {
            LocalError(
                StatusCode::NOT_FOUND,
                format!("no verified joiner named {n:?}"),
                Some("unknown_joiner"),
            )
        })?;
        out.push(*fp);
    }
    for f in &r.fingerprints {
        let fp: Fingerprint = f.parse().map_err(|e| {
            LocalError(
                StatusCode::BAD_REQUEST,
                format!("fingerprint {f:?}: {e}"),
                None,
            )
        })?;
        out.push(fp);
    }
    Ok(out)
}

async fn select(
    State(s): State<Arc<ApiState>>,
    Json(r): Json<SelectRequest>,
) -> Result<Json<serde_json::Value>, LocalError> {
    let fps = resolve(&s, &r)?;
    s.trust.select(&fps)?;
    Ok(ok())
}

async fn reject(
    State(s): State<Arc<ApiState>>,
    Json(r): Json<SelectRequest>,
) -> Result<Json<serde_json::Value>, LocalError> {
    let fps = resolve(&s, &r)?;
    s.trust.reject(&fps)?;
    Ok(ok())
}

async fn end(
    State(s): State<Arc<ApiState>>,
    Json(r): Json<EndRequest>,
) -> Result<Json<serde_json::Value>, LocalError> {
    s.trust.end_session(&r.reason, r.abort)?;
    Ok(ok())
}

/// Find the initiator among discovered peers: in scope, advertising an open session, and
/// named `name` if given. Waits for discovery up to `timeout`.
async fn find_initiator(
    s: &ApiState,
    name: Option<&str>,
    subnet: Option<crate::net::subnet::Prefix>,
    timeout: Duration,
) -> Result<SocketAddr, LocalError> {
    let in_subnet = |ip: &IpAddr| subnet.is_none_or(|p| p.contains(*ip));
    let mut peers = s.peers.clone();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let found: Vec<Peer> = peers
            .borrow()
            .iter()
            .filter(|p| p.in_scope && p.state.as_deref() == Some("init"))
            .filter(|p| name.is_none_or(|n| p.name == n))
            .filter(|p| {
                p.addresses
                    .iter()
                    .any(|a| a.address.parse().is_ok_and(|ip| in_subnet(&ip)))
            })
            .cloned()
            .collect();
        match found.as_slice() {
            [one] => {
                let ip = one
                    .addresses
                    .iter()
                    .filter_map(|a| a.address.parse::<IpAddr>().ok())
                    .filter(|ip| in_subnet(ip))
                    .min_by_key(|ip| !ip.is_ipv4())
                    .ok_or_else(|| {
                        LocalError(
                            StatusCode::BAD_GATEWAY,
                            format!("initiator {} has no usable address", one.name),
                            Some("unreachable"),
                        )
                    })?;
                return Ok(SocketAddr::new(ip, one.port));
            }
            [] => {}
            many => {
                let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
                return Err(LocalError(
                    StatusCode::CONFLICT,
                    format!(
                        "several initiators have open sessions ({}): name one with --initiator",
                        names.join(", ")
                    ),
                    Some("ambiguous"),
                ));
            }
        }
        if tokio::time::timeout_at(deadline, peers.changed())
            .await
            .is_err()
        {
            let what = name.map_or("an initiator".to_string(), |n| format!("initiator {n}"));
            return Err(LocalError(
                StatusCode::NOT_FOUND,
                format!("no open session found: {what} did not appear on this host's subnets within {} s (run `microcloud init` there, or give --initiator-address)", timeout.as_secs()),
                Some("no_session"),
            ));
        }
    }
}

fn parse_prefix(s: &str) -> Option<crate::net::subnet::Prefix> {
    let (a, l) = s.split_once('/')?;
    Some(crate::net::subnet::Prefix::new(
        a.parse().ok()?,
        l.parse().ok()?,
    ))
}

async fn join(
    State(s): State<Arc<ApiState>>,
    Json(r): Json<JoinRequest>,
) -> Result<Json<JoinView>, LocalError> {
    let addr = match &r.initiator_address {
        Some(a) => a
            .parse::<SocketAddr>()
            .or_else(|_| {
                a.parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, crate::daemon::DEFAULT_PEER_PORT))
            })
            .map_err(|_| {
                LocalError(
                    StatusCode::BAD_REQUEST,
                    format!("initiator address {a:?} is not IP or IP:PORT"),
                    None,
                )
            })?,
        None => {
            let t = Duration::from_secs(r.lookup_timeout_secs.unwrap_or(60));
            let subnet = match &r.lookup_subnet {
                Some(sn) => Some(parse_prefix(sn).ok_or_else(|| {
                    LocalError(
                        StatusCode::BAD_REQUEST,
                        format!("lookup subnet {sn:?} is not a CIDR subnet"),
                        None,
                    )
                })?),
                None => None,
            };
            find_initiator(&s, r.initiator.as_deref(), subnet, t).await?
        }
    };
    // A result from an earlier bootstrap must not answer for this one.
    *s.bootstrap_result.lock().unwrap_or_else(|p| p.into_inner()) = None;
    Ok(Json(s.trust.join(addr, &r.passphrase).await?))
}

async fn join_view(State(s): State<Arc<ApiState>>) -> Result<Json<JoinView>, LocalError> {
    s.trust.join_view().map(Json).ok_or(LocalError(
        StatusCode::NOT_FOUND,
        "not joining".into(),
        None,
    ))
}

async fn join_record(
    State(s): State<Arc<ApiState>>,
) -> Result<Json<crate::daemon::trust::JoinRecordResponse>, LocalError> {
    s.trust
        .own_join_record()
        .map(|token| Json(crate::daemon::trust::JoinRecordResponse { token }))
        .ok_or(LocalError(
            StatusCode::NOT_FOUND,
            "no join record (not selected yet?)".into(),
            None,
        ))
}

async fn join_leave(State(s): State<Arc<ApiState>>) -> Result<Json<serde_json::Value>, LocalError> {
    s.trust.leave_join().await?;
    Ok(ok())
}

/// One selected member's inventory, fetched over the pinned channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberInventory {
    pub name: String,
    pub address: String,
    pub fingerprint: String,
    pub inventory: crate::inventory::Inventory,
}

/// The inventories of this host and of every selected joiner, for planning the cluster.
async fn inventories(
    State(s): State<Arc<ApiState>>,
) -> Result<Json<Vec<MemberInventory>>, LocalError> {
    let view = s.trust.session_view().ok_or(LocalError(
        StatusCode::NOT_FOUND,
        "no session on this host: run `microcloud init` first".into(),
        Some("no_session"),
    ))?;
    let mut out = vec![MemberInventory {
        name: s.trust.name.clone(),
        address: String::new(),
        fingerprint: s.trust.fingerprint().to_string(),
        inventory: (*s.fresh_inventory().await).clone(),
    }];
    // By name, so plans, progress and joins come in the same order on every run.
    let mut selected: Vec<_> = view
        .joiners
        .into_iter()
        .filter(|j| j.state == crate::trust::JoinerState::Selected)
        .collect();
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    let fetches = selected.iter().map(|j| {
        let addr = SocketAddr::new(j.source, crate::daemon::DEFAULT_PEER_PORT);
        let trust = s.trust.clone();
        async move {
            let client = trust.pinned_client(addr, &j.fingerprint)?;
            let inv: crate::inventory::Inventory = client
                .get("/1.0/inventory")
                .await
                .map_err(|e| JoinError::Other(format!("{}: reading its inventory: {e}", j.name)))?;
            Ok::<_, JoinError>(MemberInventory {
                name: j.name.clone(),
                address: j.source.to_string(),
                fingerprint: j.fingerprint.to_string(),
                inventory: inv,
            })
        }
    });
    for r in futures_util::future::join_all(fetches).await {
        out.push(r?);
    }
    Ok(Json(out))
}

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/1.0/identity", get(identity))
        .route("/1.0/session", post(open).get(view))
        .route("/1.0/session/select", post(select))
        .route("/1.0/session/reject", post(reject))
        .route("/1.0/session/end", post(end))
        .route("/1.0/join", post(join).get(join_view))
        .route("/1.0/join/leave", post(join_leave))
        .route("/1.0/join/record", get(join_record))
        .route("/1.0/session/inventories", get(inventories))
}

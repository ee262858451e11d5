//! The peer API (HTTPS, port 9443): the session endpoints a joiner calls during the exchange,
//! and endpoints for pinned peers only. Every request carries the caller's certificate
//! fingerprint from the TLS handshake.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::https::Caller;
use super::ApiError;
use crate::daemon::trust::{
    b64, unb64, ConfirmRequest, ConfirmResponse, JoinRecordResponse, PakeRequest, PakeResponse,
    RedeemRequest, RedeemResponse, SessionInfo, TrustService,
};
use crate::trust::{Fingerprint, JoinerStatus, SessionError, TokenError};

/// An error response: status and a message for the joiner's operator.
pub struct PeerError(StatusCode, String);

impl IntoResponse for PeerError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(ApiError {
                error: self.1,
                kind: None,
            }),
        )
            .into_response()
    }
}

impl From<SessionError> for PeerError {
    fn from(e: SessionError) -> Self {
        let status = match &e {
            SessionError::NoSession | SessionError::UnknownJoiner(_) => StatusCode::NOT_FOUND,
            SessionError::Ended(_) | SessionError::Expired | SessionError::TooManyAttempts => {
                StatusCode::GONE
            }
            SessionError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            SessionError::WrongPassphrase | SessionError::CommitMismatch => {
                StatusCode::UNAUTHORIZED
            }
            SessionError::Rejected(_) => StatusCode::FORBIDDEN,
            SessionError::Malformed(_) => StatusCode::BAD_REQUEST,
        };
        PeerError(status, e.to_string())
    }
}

fn fp(c: &Caller) -> Fingerprint {
    Fingerprint::from_bytes(c.fingerprint)
}

/// Refuse a caller whose certificate this host has not pinned.
fn require_pinned(t: &TrustService, c: &Caller) -> Result<(), PeerError> {
    if t.is_pinned(&fp(c)) {
        return Ok(());
    }
    Err(PeerError(
        StatusCode::FORBIDDEN,
        format!("certificate {} is not trusted by {}", fp(c).short(), t.name),
    ))
}

async fn session_info(State(t): State<Arc<TrustService>>) -> Json<SessionInfo> {
    let open = t.session_view().is_some_and(|v| v.open);
    Json(SessionInfo {
        name: t.name.clone(),
        open,
    })
}

async fn pake(
    State(t): State<Arc<TrustService>>,
    Extension(c): Extension<Caller>,
    Json(req): Json<PakeRequest>,
) -> Result<Json<PakeResponse>, PeerError> {
    let commit = unb64(&req.commit).map_err(|e| PeerError(StatusCode::BAD_REQUEST, e))?;
    let msg_i = t.pake(c.addr, fp(&c), &req.name, &commit)?;
    Ok(Json(PakeResponse { msg: b64(&msg_i) }))
}

async fn confirm(
    State(t): State<Arc<TrustService>>,
    Extension(c): Extension<Caller>,
    Json(req): Json<ConfirmRequest>,
) -> Result<Json<ConfirmResponse>, PeerError> {
    let msg = unb64(&req.msg).map_err(|e| PeerError(StatusCode::BAD_REQUEST, e))?;
    let tag = unb64(&req.confirm).map_err(|e| PeerError(StatusCode::BAD_REQUEST, e))?;
    let (confirm_i, code) = t.confirm(c.addr, fp(&c), &msg, &tag)?;
    Ok(Json(ConfirmResponse {
        confirm: b64(&confirm_i),
        code: code.to_string(),
    }))
}

#[derive(Debug, Deserialize)]
struct Wait {
    #[serde(default)]
    wait: u64,
}

/// The joiner's long-poll: answers at once when the status is final, otherwise when it changes
/// or after `wait` seconds (at most 30).
async fn status(
    State(t): State<Arc<TrustService>>,
    Extension(c): Extension<Caller>,
    Query(w): Query<Wait>,
) -> Json<JoinerStatus> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(w.wait.min(30));
    loop {
        let changed = t.changed.notified();
        let s = t.status(&fp(&c));
        let waiting = matches!(s, JoinerStatus::Pending | JoinerStatus::Verified { .. });
        if !waiting || tokio::time::Instant::now() >= deadline {
            return Json(s);
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Json(t.status(&fp(&c)));
        }
    }
}

async fn leave(
    State(t): State<Arc<TrustService>>,
    Extension(c): Extension<Caller>,
) -> Result<Json<serde_json::Value>, PeerError> {
    t.leave(fp(&c))?;
    Ok(Json(serde_json::json!({})))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub name: String,
    pub fingerprint: String,
}

/// For pinned peers only: proves the pinned channel works (and is refused to anyone else).
async fn hello(
    State(t): State<Arc<TrustService>>,
    Extension(c): Extension<Caller>,
) -> Result<Json<Hello>, PeerError> {
    require_pinned(&t, &c)?;
    Ok(Json(Hello {
        name: t.name.clone(),
        fingerprint: t.fingerprint().to_string(),
    }))
}

/// A selected joiner fetches its join record once, over the pinned channel.
async fn join_record(
    State(t): State<Arc<TrustService>>,
    Extension(c): Extension<Caller>,
) -> Result<Json<JoinRecordResponse>, PeerError> {
    match t.take_join_record(&fp(&c)) {
        Some(tok) => Ok(Json(JoinRecordResponse {
            token: tok.as_str().to_string(),
        })),
        None => {
            require_pinned(&t, &c)?;
            Err(PeerError(
                StatusCode::NOT_FOUND,
                "no join record waiting for this host (already fetched?)".into(),
            ))
        }
    }
}

/// Spend a join record: single use, bound to the certificate it was issued to, expiring.
async fn redeem(
    State(t): State<Arc<TrustService>>,
    Extension(c): Extension<Caller>,
    Json(r): Json<RedeemRequest>,
) -> Result<Json<RedeemResponse>, PeerError> {
    require_pinned(&t, &c)?;
    let rec = t.redeem_join_record(&fp(&c), &r.token).map_err(|e| {
        let status = match e {
            TokenError::Unknown | TokenError::WrongHolder { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::GONE,
        };
        PeerError(status, e.to_string())
    })?;
    Ok(Json(RedeemResponse {
        fingerprint: rec.fingerprint.to_string(),
        expires_in_secs: rec
            .expires
            .saturating_duration_since(std::time::Instant::now())
            .as_secs(),
    }))
}

/// A pinned peer (the initiator planning the cluster) reads this host's inventory.
async fn inventory(
    State(api): State<Arc<super::server::ApiState>>,
    Extension(c): Extension<Caller>,
) -> Result<Json<crate::inventory::Inventory>, PeerError> {
    require_pinned(&api.trust, &c)?;
    Ok(Json((*api.fresh_inventory().await).clone()))
}

pub fn router(trust: Arc<TrustService>, api: Arc<super::server::ApiState>) -> Router {
    let api_for_lxd = api.clone();
    let pinned = Router::new()
        .route("/1.0/inventory", get(inventory))
        .with_state(api);
    Router::new()
        .route("/1.0/session", get(session_info))
        .route("/1.0/session/pake", post(pake))
        .route("/1.0/session/confirm", post(confirm))
        .route("/1.0/session/status", get(status))
        .route("/1.0/session/leave", post(leave))
        .route("/1.0/hello", get(hello))
        .route("/1.0/join-record", get(join_record))
        .route("/1.0/join-record/redeem", post(redeem))
        .with_state(trust)
        .merge(pinned)
        .merge(super::lxd::peer_routes(api_for_lxd.clone()))
        .merge(super::disks::peer_routes(api_for_lxd))
}

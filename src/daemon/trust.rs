//! The daemon's trust service: the initiator's session (driven by the local API, answered on
//! the peer API) and the joiner's side of the exchange, plus the pinned-peer store that decides
//! who may call the peer API once a session is over.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::api::https::{PeerCallError, PeerClient};
use crate::api::tls::{client_config, ServerTrust};
use crate::discovery::txt::PeerState;
use crate::trust::identity::Identity;
use crate::trust::store::{Role as PinRole, TrustStore};
use crate::trust::{
    Fingerprint, JoinRecord, JoinerPake, JoinerStatus, JoinerView, PakeError, Session,
    SessionError, SessionEvent, Token, TokenError, TokenStore, VerificationCode,
};

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("bad base64: {e}"))
}

/// What discovery advertises about our trust state (TXT `st` and `fp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub state: PeerState,
    pub fingerprint: String,
}

/// The joiner's progress, as the local API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinView {
    pub initiator: String,
    pub initiator_fingerprint: String,
    pub address: String,
    pub code: String,
    /// `verified` (waiting for the operator), `selected`, `rejected` or `ended`.
    pub state: String,
    pub reason: Option<String>,
}

/// Why a join failed, in the categories the joiner's operator must be able to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("wrong passphrase: the initiator at {0} could not confirm the key (or it is not the real initiator)")]
    WrongPassphrase(SocketAddr),
    #[error("no open session on {0}: run `microcloud init` there first")]
    NoSession(SocketAddr),
    #[error("the session on {addr} has ended: {reason}")]
    Ended { addr: SocketAddr, reason: String },
    #[error("initiator unreachable: {0}")]
    Unreachable(String),
    #[error("too many attempts from this host; retry in a few seconds ({0})")]
    RateLimited(String),
    #[error("{0}")]
    Other(String),
}

impl JoinError {
    pub fn kind(&self) -> &'static str {
        match self {
            JoinError::WrongPassphrase(_) => "wrong_passphrase",
            JoinError::NoSession(_) => "no_session",
            JoinError::Ended { .. } => "session_ended",
            JoinError::Unreachable(_) => "unreachable",
            JoinError::RateLimited(_) => "rate_limited",
            JoinError::Other(_) => "other",
        }
    }

    fn from_call(addr: SocketAddr, e: PeerCallError) -> Self {
        match e {
            PeerCallError::Unreachable { .. } | PeerCallError::Tls { .. } => {
                JoinError::Unreachable(e.to_string())
            }
            PeerCallError::Status {
                status, message, ..
            } => match status.as_u16() {
                401 => JoinError::WrongPassphrase(addr),
                404 => JoinError::NoSession(addr),
                410 => JoinError::Ended {
                    addr,
                    reason: message,
                },
                429 => JoinError::RateLimited(message),
                _ => JoinError::Other(format!("{addr}: {message}")),
            },
            PeerCallError::Protocol { .. } => JoinError::Other(e.to_string()),
        }
    }
}

struct Joining {
    view: JoinView,
    addr: SocketAddr,
    initiator_fp: Fingerprint,
    stop: Arc<Notify>,
}

pub struct TrustService {
    pub name: String,
    pub identity: Identity,
    pub store: Mutex<TrustStore>,
    session: Mutex<Option<Session>>,
    /// Woken whenever a joiner's status may have changed (long-polls wait on it).
    pub changed: Notify,
    events: Mutex<Vec<SessionEvent>>,
    joining: Mutex<Option<Joining>>,
    advertised: watch::Sender<Advertised>,
    /// Join records issued to selected joiners (initiator side): single use, expiring.
    tokens: Mutex<TokenStore>,
    /// The token each selected joiner may fetch, once, over the pinned channel.
    to_deliver: Mutex<BTreeMap<Fingerprint, Token>>,
    /// Our own join record from the initiator (joiner side), for the bootstrap.
    join_record: Mutex<Option<String>>,
}

/// How long a join record stays valid: long enough for a slow bootstrap, short enough that a
/// leaked one is soon worthless.
pub const JOIN_RECORD_TTL: Duration = Duration::from_secs(30 * 60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The initiator's view of its session for the local API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionView {
    pub open: bool,
    pub end_reason: Option<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub joiners: Vec<JoinerView>,
    pub events: Vec<SessionEvent>,
}

impl TrustService {
    pub fn new(
        name: String,
        identity: Identity,
        store: TrustStore,
    ) -> (Arc<Self>, watch::Receiver<Advertised>) {
        let (tx, rx) = watch::channel(Advertised {
            state: PeerState::Free,
            fingerprint: identity.fingerprint().short(),
        });
        let svc = Arc::new(TrustService {
            name,
            identity,
            store: Mutex::new(store),
            session: Mutex::new(None),
            changed: Notify::new(),
            events: Mutex::new(Vec::new()),
            joining: Mutex::new(None),
            advertised: tx,
            tokens: Mutex::new(TokenStore::new()),
            to_deliver: Mutex::new(BTreeMap::new()),
            join_record: Mutex::new(None),
        });
        (svc, rx)
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    fn advertise(&self, state: PeerState) {
        self.advertised.send_modify(|a| a.state = state);
    }

    // ---- initiator -------------------------------------------------------------------------

    /// Open a session; the passphrase is generated unless given. Refused while one is open.
    pub fn open_session(
        &self,
        passphrase: Option<String>,
        timeout: Duration,
    ) -> Result<String, String> {
        let mut s = lock(&self.session);
        let now = Instant::now();
        if s.as_mut().is_some_and(|s| s.is_open(now)) {
            return Err("a session is already open on this host".into());
        }
        let pass = match passphrase {
            Some(p) => crate::trust::passphrase::validate_custom(&p).map_err(|e| e.to_string())?,
            None => crate::trust::passphrase::generate(&mut rand::rng()),
        };
        *s = Some(Session::open(
            now,
            self.fingerprint(),
            &pass,
            timeout,
            crate::trust::DEFAULT_MAX_ATTEMPTS,
        ));
        lock(&self.events).clear();
        self.advertise(PeerState::Initiator);
        Ok(pass)
    }

    /// Run `f` on the open session, collecting its events; `NoSession` if there is none.
    fn with_session<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        let mut guard = lock(&self.session);
        let s = guard.as_mut().ok_or(SessionError::NoSession)?;
        let r = f(s);
        let evs = s.take_events();
        let ended = !s.is_open(Instant::now());
        drop(guard);
        if !evs.is_empty() {
            for e in &evs {
                tracing::info!(event = ?e, "session");
            }
            lock(&self.events).extend(evs);
        }
        if ended {
            self.advertise(PeerState::Free);
        }
        self.changed.notify_waiters();
        r
    }

    pub fn session_view(&self) -> Option<SessionView> {
        let mut guard = lock(&self.session);
        let s = guard.as_mut()?;
        let now = Instant::now();
        s.expire(now);
        let (attempts, max_attempts) = s.attempts();
        let evs = s.take_events();
        let view = SessionView {
            open: s.is_open(now),
            end_reason: s.end_reason(),
            attempts,
            max_attempts,
            joiners: s.joiners(),
            events: Vec::new(),
        };
        drop(guard);
        let mut all = lock(&self.events);
        all.extend(evs);
        Some(SessionView {
            events: all.clone(),
            ..view
        })
    }

    /// First round trip: the joiner's commitment in, our SPAKE2 message out.
    pub fn pake(
        &self,
        source: SocketAddr,
        fp_j: Fingerprint,
        name: &str,
        commit: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        self.with_session(|s| s.begin(Instant::now(), source.ip(), fp_j, name, commit))
    }

    /// Second round trip: the joiner's SPAKE2 message and tag in, our tag and the code out.
    pub fn confirm(
        &self,
        source: SocketAddr,
        fp_j: Fingerprint,
        msg_j: &[u8],
        confirm_j: &[u8],
    ) -> Result<(Vec<u8>, VerificationCode), SessionError> {
        self.with_session(|s| s.confirm(Instant::now(), source.ip(), fp_j, msg_j, confirm_j))
    }

    pub fn leave(&self, fp_j: Fingerprint) -> Result<(), SessionError> {
        self.with_session(|s| s.leave(fp_j))
    }

    pub fn status(&self, fp_j: &Fingerprint) -> JoinerStatus {
        match lock(&self.session).as_mut() {
            Some(s) => {
                s.expire(Instant::now());
                s.status(fp_j)
            }
            None => JoinerStatus::Ended {
                reason: "no session is open on the initiator".into(),
            },
        }
    }

    /// The operator picked these joiners: pin them as members-to-be.
    pub fn select(&self, fps: &[Fingerprint]) -> Result<(), SessionError> {
        let views = self.with_session(|s| {
            for fp in fps {
                s.select(*fp)?;
            }
            Ok(s.joiners())
        })?;
        let mut store = lock(&self.store);
        let (mut tokens, mut deliver) = (lock(&self.tokens), lock(&self.to_deliver));
        for v in views.iter().filter(|v| fps.contains(&v.fingerprint)) {
            if let Err(e) = store.pin(v.fingerprint, &v.name, PinRole::Joiner) {
                tracing::error!("cannot record trust in {}: {e}", v.name);
            }
            let t = tokens.issue(
                Instant::now(),
                v.fingerprint,
                JOIN_RECORD_TTL,
                &mut rand::rng(),
            );
            deliver.insert(v.fingerprint, t);
        }
        Ok(())
    }

    /// Hand a selected joiner its join record, once; only over the pinned channel.
    pub fn take_join_record(&self, caller: &Fingerprint) -> Option<Token> {
        if !self.is_pinned(caller) {
            return None;
        }
        lock(&self.to_deliver).remove(caller)
    }

    /// Spend a join record presented by `caller` (single use, bound to its certificate).
    pub fn redeem_join_record(
        &self,
        caller: &Fingerprint,
        token: &str,
    ) -> Result<JoinRecord, TokenError> {
        lock(&self.tokens).redeem(Instant::now(), token, caller)
    }

    /// The join record this host received as a joiner.
    pub fn own_join_record(&self) -> Option<String> {
        lock(&self.join_record).clone()
    }

    pub fn reject(&self, fps: &[Fingerprint]) -> Result<(), SessionError> {
        self.with_session(|s| {
            for fp in fps {
                s.reject(*fp)?;
            }
            Ok(())
        })
    }

    /// End the session: `abort` tells every joiner the reason; otherwise the selected ones stay.
    pub fn end_session(&self, reason: &str, abort: bool) -> Result<(), SessionError> {
        self.with_session(|s| {
            if abort {
                s.abort(reason);
            } else {
                s.close(reason);
            }
            Ok(())
        })?;
        if abort {
            let n = lock(&self.tokens).revoke_unused();
            lock(&self.to_deliver).clear();
            if n > 0 {
                tracing::info!(revoked = n, "revoked unused join records");
            }
        }
        self.advertise(PeerState::Free);
        Ok(())
    }

    pub fn is_pinned(&self, fp: &Fingerprint) -> bool {
        lock(&self.store).is_pinned(fp)
    }

    // ---- joiner ----------------------------------------------------------------------------

    /// A client for a pinned peer: its certificate must be `fp`.
    pub fn pinned_client(
        &self,
        addr: SocketAddr,
        fp: &Fingerprint,
    ) -> Result<PeerClient, JoinError> {
        self.client(addr, ServerTrust::Pinned(*fp.as_bytes()))
    }

    fn client(&self, addr: SocketAddr, trust: ServerTrust) -> Result<PeerClient, JoinError> {
        let cfg = client_config(
            self.identity.cert_der().clone(),
            self.identity.key_der(),
            trust,
        )
        .map_err(|e| JoinError::Other(format!("TLS setup: {e}")))?;
        Ok(PeerClient::new(addr, Arc::new(cfg)).with_timeout(Duration::from_secs(10)))
    }

    /// Run the exchange with the initiator at `addr`. On success the joiner waits (in the
    /// background) for the operator's choice; `join_view` reports it.
    pub async fn join(
        self: &Arc<Self>,
        addr: SocketAddr,
        passphrase: &str,
    ) -> Result<JoinView, JoinError> {
        if let Some(j) = lock(&self.joining).as_ref() {
            if j.view.state == "verified" {
                return Err(JoinError::Other(format!(
                    "already joining {} ({})",
                    j.view.initiator, j.addr
                )));
            }
        }
        // First contact learns the initiator's certificate from the handshake; the PAKE binds
        // it, so whoever answered must also know the passphrase.
        let slot = Arc::new(Mutex::new(None));
        let info: SessionInfo = self
            .client(addr, ServerTrust::Capture(slot.clone()))?
            .get("/1.0/session")
            .await
            .map_err(|e| JoinError::from_call(addr, e))?;
        let Some(fp_i) = *lock(&slot) else {
            return Err(JoinError::Other(format!("{addr} presented no certificate")));
        };
        let fp_i = Fingerprint::from_bytes(fp_i);
        if !info.open {
            return Err(JoinError::NoSession(addr));
        }
        let pinned = self.client(addr, ServerTrust::Pinned(*fp_i.as_bytes()))?;
        // Two round trips (see `trust::pake`): commit to our SPAKE2 message, learn the
        // initiator's, then reveal ours with our tag and check the initiator's tag.
        let (mut pake, commit) = JoinerPake::start(passphrase, &fp_i, &self.fingerprint());
        let resp: PakeResponse = pinned
            .post(
                "/1.0/session/pake",
                &PakeRequest {
                    name: self.name.clone(),
                    commit: b64(&commit),
                },
            )
            .await
            .map_err(|e| JoinError::from_call(addr, e))?;
        let msg_i = unb64(&resp.msg).map_err(JoinError::Other)?;
        let (msg_j, confirm_j, await_i) = pake
            .respond(&msg_i)
            .map_err(|e| JoinError::Other(e.to_string()))?;
        let resp: ConfirmResponse = pinned
            .post(
                "/1.0/session/confirm",
                &ConfirmRequest {
                    msg: b64(&msg_j),
                    confirm: b64(&confirm_j),
                },
            )
            .await
            .map_err(|e| JoinError::from_call(addr, e))?;
        let confirm_i = unb64(&resp.confirm).map_err(JoinError::Other)?;
        let code = match await_i.finish(&confirm_i) {
            Ok(code) => code,
            Err(PakeError::WrongPassphrase) => return Err(JoinError::WrongPassphrase(addr)),
            Err(e) => return Err(JoinError::Other(e.to_string())),
        };
        let view = JoinView {
            initiator: info.name.clone(),
            initiator_fingerprint: fp_i.to_string(),
            address: addr.to_string(),
            code: code.to_string(),
            state: "verified".into(),
            reason: None,
        };
        let stop = Arc::new(Notify::new());
        *lock(&self.joining) = Some(Joining {
            view: view.clone(),
            addr,
            initiator_fp: fp_i,
            stop: stop.clone(),
        });
        let me = self.clone();
        tokio::spawn(async move { me.follow(pinned, info.name, fp_i, stop).await });
        Ok(view)
    }

    /// Long-poll the initiator until the operator decides or the session ends.
    async fn follow(
        self: Arc<Self>,
        client: PeerClient,
        name: String,
        fp_i: Fingerprint,
        stop: Arc<Notify>,
    ) {
        let client = client.with_timeout(Duration::from_secs(40));
        let mut failures = 0;
        loop {
            let r = tokio::select! {
                _ = stop.notified() => return,
                r = client.get::<JoinerStatus>("/1.0/session/status?wait=30") => r,
            };
            let (state, reason) = match r {
                Ok(JoinerStatus::Selected) => ("selected", None),
                Ok(JoinerStatus::Rejected) => (
                    "rejected",
                    Some("the initiator's operator did not select this host".to_string()),
                ),
                Ok(JoinerStatus::Ended { reason }) => ("ended", Some(reason)),
                Ok(JoinerStatus::Unknown) => (
                    "ended",
                    Some("the initiator no longer knows this host".to_string()),
                ),
                Ok(_) => continue,
                Err(e) => {
                    failures += 1;
                    if failures < 5 {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    (
                        "ended",
                        Some(format!("lost contact with the initiator: {e}")),
                    )
                }
            };
            if state == "selected" {
                if let Err(e) = lock(&self.store).pin(fp_i, &name, PinRole::Initiator) {
                    tracing::error!("cannot record trust in {name}: {e}");
                }
                // The join record travels only now, over the channel pinned on both ends.
                match client.get::<JoinRecordResponse>("/1.0/join-record").await {
                    Ok(r) => *lock(&self.join_record) = Some(r.token),
                    Err(e) => tracing::warn!("could not fetch the join record from {name}: {e}"),
                }
            }
            if let Some(j) = lock(&self.joining).as_mut() {
                j.view.state = state.into();
                j.view.reason = reason;
            }
            self.changed.notify_waiters();
            return;
        }
    }

    pub fn join_view(&self) -> Option<JoinView> {
        lock(&self.joining).as_ref().map(|j| j.view.clone())
    }

    /// The joiner gives up: tell the initiator so it drops us from its table.
    pub async fn leave_join(&self) -> Result<(), JoinError> {
        let Some(j) = lock(&self.joining).take() else {
            return Ok(());
        };
        j.stop.notify_waiters();
        let client = self.client(j.addr, ServerTrust::Pinned(*j.initiator_fp.as_bytes()))?;
        let _: serde_json::Value = client
            .post("/1.0/session/leave", &serde_json::json!({}))
            .await
            .map_err(|e| JoinError::from_call(j.addr, e))?;
        Ok(())
    }
}

// ---- peer API messages ------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRecordResponse {
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedeemRequest {
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedeemResponse {
    pub fingerprint: String,
    pub expires_in_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub name: String,
    pub open: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PakeRequest {
    pub name: String,
    /// The joiner's commitment to its SPAKE2 message (base64).
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PakeResponse {
    /// The initiator's SPAKE2 message (base64).
    pub msg: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmRequest {
    /// The joiner's SPAKE2 message, opening its commitment (base64).
    pub msg: String,
    /// The joiner's confirmation tag (base64).
    pub confirm: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmResponse {
    /// The initiator's confirmation tag (base64).
    pub confirm: String,
    pub code: String,
}

/// Names of joiners by fingerprint, for selecting by name (a preseed selects by host name).
pub fn by_name(joiners: &[JoinerView]) -> BTreeMap<String, Fingerprint> {
    joiners
        .iter()
        .map(|j| (j.name.clone(), j.fingerprint))
        .collect()
}

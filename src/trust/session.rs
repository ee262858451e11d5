//! The initiator's passphrase session (pure state machine, time passed in): it answers key
//! exchanges, counts and rate-limits attempts, keeps the table of verified joiners the operator
//! selects from, and records why it ended so every joiner can be told.
//!
//! An exchange is two round trips (see `pake`): `begin` takes the joiner's commitment and
//! answers `msg_i`; `confirm` takes `msg_j` and `confirm_j` and answers `confirm_i`. Only
//! `confirm` can test a guess, so only failures there count towards the session's limit; an
//! exchange that never reaches it handed out nothing. Both steps are rate-limited per source,
//! and exchanges waiting between them are bounded in number and expire after
//! `PENDING_TIMEOUT`, so abandoned first steps cannot fill memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use super::pake::{InitiatorPake, InitiatorPending, PakeError, VerificationCode};
use super::passphrase::normalise;
use super::ratelimit::{source_key, RateLimiter};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);
pub const DEFAULT_MAX_ATTEMPTS: u32 = 25;
/// Joiner names are host names: they end up in LXD member names and in the operator's terminal,
/// so anything else (control characters above all) is refused rather than displayed.
pub const MAX_NAME_LEN: usize = 253;
/// How long an exchange may wait between its two steps (an honest joiner takes milliseconds).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(60);
/// Exchanges waiting for their second step, per source (see `ratelimit::source_key`) and in
/// all; past either bound the oldest one is dropped. A dropped exchange handed out nothing but
/// `msg_i`, so it is not counted as an attempt.
pub const MAX_PENDING_PER_SOURCE: usize = 4;
pub const MAX_PENDING: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("no session is open on the initiator")]
    NoSession,
    #[error("the session has ended: {0}")]
    Ended(String),
    #[error("the session has expired")]
    Expired,
    #[error(
        "too many attempts from this address; retry in {} s",
        retry_after.as_secs_f64().ceil()
    )]
    RateLimited { retry_after: Duration },
    #[error("the session ended after too many failed attempts")]
    TooManyAttempts,
    #[error(
        "wrong passphrase: key confirmation failed (the attempt was counted; the session \
         stays open)"
    )]
    WrongPassphrase,
    #[error(
        "the joiner's key-exchange message does not match the commitment it sent first: the \
         exchange was tampered with (the attempt was counted; the session stays open)"
    )]
    CommitMismatch,
    #[error("no joiner with certificate {} in this session", .0.short())]
    UnknownJoiner(Fingerprint),
    #[error("the initiator's operator rejected the machine with certificate {}", .0.short())]
    Rejected(Fingerprint),
    #[error("malformed request: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinerState {
    Verified,
    Selected,
    Rejected,
}

/// One row of the operator's table. Only joiners that completed key confirmation appear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinerView {
    pub fingerprint: Fingerprint,
    pub name: String,
    pub source: IpAddr,
    pub code: VerificationCode,
    pub state: JoinerState,
}

/// What a joiner's long-poll is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum JoinerStatus {
    Pending,
    Verified { code: VerificationCode },
    Selected,
    Rejected,
    Ended { reason: String },
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SessionEvent {
    JoinerVerified {
        fingerprint: Fingerprint,
        name: String,
        source: IpAddr,
        code: VerificationCode,
    },
    JoinerLeft {
        fingerprint: Fingerprint,
        name: String,
    },
    /// An attempt failed at the second step: a wrong confirmation or an opened commitment
    /// that does not match.
    AttemptFailed {
        fingerprint: Fingerprint,
        name: String,
        source: IpAddr,
        attempts: u32,
        max_attempts: u32,
    },
    Ended {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Everyone, selected or not, is told the reason.
    Aborted(String),
    /// The operator finished: selected joiners stay selected, the others are told the reason.
    Closed(String),
    Expired(Duration),
    TooManyAttempts(u32),
}

impl End {
    fn reason(&self) -> String {
        match self {
            End::Aborted(r) | End::Closed(r) => r.clone(),
            End::Expired(t) => format!("the session timed out after {}", human(*t)),
            End::TooManyAttempts(n) => format!("too many failed attempts ({n})"),
        }
    }

    fn error(&self) -> SessionError {
        match self {
            End::Aborted(r) | End::Closed(r) => SessionError::Ended(r.clone()),
            End::Expired(_) => SessionError::Expired,
            End::TooManyAttempts(_) => SessionError::TooManyAttempts,
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[derive(Debug)]
struct Pending {
    exchange: InitiatorPending,
    name: String,
    source: IpAddr,
    since: Instant,
}

#[derive(Debug)]
pub struct Session {
    own: Fingerprint,
    passphrase: String,
    timeout: Duration,
    deadline: Instant,
    max_attempts: u32,
    /// Second steps that failed (wrong tag or commitment mismatch): each was one guess.
    failures: u32,
    /// Per-source limits on the first and on the second step, in separate buckets so an honest
    /// exchange costs one token of each.
    limiter: RateLimiter,
    limiter_confirm: RateLimiter,
    end: Option<End>,
    pending: HashMap<Fingerprint, Pending>,
    /// In order of verification, which is the order the operator saw them appear.
    joiners: Vec<JoinerView>,
    events: Vec<SessionEvent>,
}

fn check_name(name: &str) -> Result<(), SessionError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(64).collect();
        Err(SessionError::Malformed(format!(
            "joiner name {shown:?} is not a host name (1-{MAX_NAME_LEN} of A-Z a-z 0-9 . - _)"
        )))
    }
}

fn session_error(e: PakeError) -> SessionError {
    match e {
        PakeError::WrongPassphrase => SessionError::WrongPassphrase,
        PakeError::CommitMismatch => SessionError::CommitMismatch,
        PakeError::Malformed(m) => SessionError::Malformed(m),
        PakeError::AlreadyUsed => SessionError::Malformed(e.to_string()),
    }
}

impl Session {
    /// `own` is the initiator's certificate fingerprint: it is bound into every exchange.
    /// The passphrase is stored normalised (see `passphrase::normalise`).
    pub fn open(
        now: Instant,
        own: Fingerprint,
        passphrase: &str,
        timeout: Duration,
        max_attempts: u32,
    ) -> Session {
        Session {
            own,
            passphrase: normalise(passphrase),
            timeout,
            deadline: now + timeout,
            max_attempts: max_attempts.max(1),
            failures: 0,
            limiter: RateLimiter::default(),
            limiter_confirm: RateLimiter::default(),
            end: None,
            pending: HashMap::new(),
            joiners: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Use `limiter`'s settings for both steps (each step gets its own copy).
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Session {
        self.limiter_confirm = limiter.clone();
        self.limiter = limiter;
        self
    }

    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }

    pub fn own_fingerprint(&self) -> Fingerprint {
        self.own
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// (failed attempts, limit).
    pub fn attempts(&self) -> (u32, u32) {
        (self.failures, self.max_attempts)
    }

    /// Exchanges waiting for their second step.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Why the session ended, if it has.
    pub fn end_reason(&self) -> Option<String> {
        self.end.as_ref().map(End::reason)
    }

    /// End the session if its time is up; true if this call ended it. The daemon calls this
    /// from a timer as well as before each request, so the operator hears about it on time.
    /// It also drops exchanges that waited more than `PENDING_TIMEOUT` for their second step.
    pub fn expire(&mut self, now: Instant) -> bool {
        self.pending
            .retain(|_, p| now.saturating_duration_since(p.since) < PENDING_TIMEOUT);
        if self.end.is_none() && now >= self.deadline {
            self.finish(End::Expired(self.timeout));
            return true;
        }
        false
    }

    pub fn is_open(&self, now: Instant) -> bool {
        self.end.is_none() && now < self.deadline
    }

    /// First step of an exchange from the joiner with client certificate `fp_j`, reached from
    /// `source`: takes its commitment, returns `msg_i`. Nothing here can test a guess, so it
    /// is not counted; it is rate-limited, and the exchange it leaves waiting is bounded.
    pub fn begin(
        &mut self,
        now: Instant,
        source: IpAddr,
        fp_j: Fingerprint,
        name: &str,
        commit: &[u8],
    ) -> Result<Vec<u8>, SessionError> {
        self.expire(now);
        self.check_open()?;
        check_name(name)?;
        if self.state_of(&fp_j) == Some(JoinerState::Rejected) {
            return Err(SessionError::Rejected(fp_j));
        }
        self.limiter
            .check(now, source)
            .map_err(|retry_after| SessionError::RateLimited { retry_after })?;
        let (exchange, msg_i) = InitiatorPake::begin(&self.passphrase, &self.own, &fp_j, commit)
            .map_err(session_error)?;
        // A joiner starting over (a retry after a typo, a restarted CLI) replaces what it had:
        // an old table row would show a code that is now stale.
        self.pending.remove(&fp_j);
        self.remove_row(&fp_j);
        self.make_room(source);
        self.pending.insert(
            fp_j,
            Pending {
                exchange,
                name: name.to_string(),
                source,
                since: now,
            },
        );
        Ok(msg_i)
    }

    /// Second step: the joiner opens its commitment (`msg_j`) and proves the passphrase
    /// (`confirm_j`). On success it joins the table as verified and we return `confirm_i` and
    /// the code. A mismatch or a wrong tag is a counted attempt; past the limit the session
    /// ends. Either way the exchange is over: one guess per exchange.
    pub fn confirm(
        &mut self,
        now: Instant,
        source: IpAddr,
        fp_j: Fingerprint,
        msg_j: &[u8],
        confirm_j: &[u8],
    ) -> Result<(Vec<u8>, VerificationCode), SessionError> {
        self.expire(now);
        self.check_open()?;
        self.limiter_confirm
            .check(now, source)
            .map_err(|retry_after| SessionError::RateLimited { retry_after })?;
        let Pending {
            exchange,
            name,
            source,
            ..
        } = self
            .pending
            .remove(&fp_j)
            .ok_or(SessionError::UnknownJoiner(fp_j))?;
        let (confirm_i, code) = match exchange.finish(msg_j, confirm_j) {
            Ok(x) => x,
            Err(e @ (PakeError::WrongPassphrase | PakeError::CommitMismatch)) => {
                self.failures += 1;
                self.failed(fp_j, name, source);
                if self.failures >= self.max_attempts {
                    self.finish(End::TooManyAttempts(self.failures));
                }
                return Err(session_error(e));
            }
            // Bytes that open the commitment but are no SPAKE2 message: no key, no guess.
            Err(e) => return Err(session_error(e)),
        };
        self.joiners.push(JoinerView {
            fingerprint: fp_j,
            name: name.clone(),
            source,
            code,
            state: JoinerState::Verified,
        });
        self.events.push(SessionEvent::JoinerVerified {
            fingerprint: fp_j,
            name,
            source,
            code,
        });
        Ok((confirm_i, code))
    }

    pub fn joiners(&self) -> Vec<JoinerView> {
        self.joiners.clone()
    }

    pub fn selected(&self) -> Vec<JoinerView> {
        self.joiners
            .iter()
            .filter(|j| j.state == JoinerState::Selected)
            .cloned()
            .collect()
    }

    pub fn select(&mut self, fp: Fingerprint) -> Result<(), SessionError> {
        self.set_state(fp, JoinerState::Selected)
    }

    pub fn reject(&mut self, fp: Fingerprint) -> Result<(), SessionError> {
        self.set_state(fp, JoinerState::Rejected)
    }

    /// The joiner went away (its CLI exited, its long-poll dropped): it leaves the table, and
    /// an exchange it had not finished is dropped (uncounted: it handed out no tag).
    pub fn leave(&mut self, fp: Fingerprint) -> Result<(), SessionError> {
        self.check_open()?;
        let pending = self.pending.remove(&fp);
        let had_row = self.remove_row(&fp);
        if pending.is_none() && !had_row {
            return Err(SessionError::UnknownJoiner(fp));
        }
        Ok(())
    }

    /// End the session for everyone, selected joiners included, with a reason they are shown.
    /// Ending an ended session keeps the first reason.
    pub fn abort(&mut self, reason: impl Into<String>) {
        self.finish(End::Aborted(reason.into()));
    }

    /// End the session normally once the operator has chosen: selected joiners keep their
    /// status, every other one is told `reason`.
    pub fn close(&mut self, reason: impl Into<String>) {
        self.finish(End::Closed(reason.into()));
    }

    pub fn status(&self, fp: &Fingerprint) -> JoinerStatus {
        let state = self.state_of(fp);
        match (&self.end, state) {
            (Some(End::Closed(_)), Some(JoinerState::Selected)) => JoinerStatus::Selected,
            (Some(end), _) => JoinerStatus::Ended {
                reason: end.reason(),
            },
            (None, Some(JoinerState::Selected)) => JoinerStatus::Selected,
            (None, Some(JoinerState::Rejected)) => JoinerStatus::Rejected,
            (None, Some(JoinerState::Verified)) => JoinerStatus::Verified {
                code: self.row(fp).map(|j| j.code).expect("state_of found a row"),
            },
            (None, None) if self.pending.contains_key(fp) => JoinerStatus::Pending,
            (None, None) => JoinerStatus::Unknown,
        }
    }

    pub fn take_events(&mut self) -> Vec<SessionEvent> {
        std::mem::take(&mut self.events)
    }

    fn check_open(&self) -> Result<(), SessionError> {
        match &self.end {
            Some(end) => Err(end.error()),
            None => Ok(()),
        }
    }

    fn finish(&mut self, end: End) {
        if self.end.is_some() {
            return;
        }
        // Pending exchanges hold key material that can no longer be used for anything.
        self.pending.clear();
        self.events.push(SessionEvent::Ended {
            reason: end.reason(),
        });
        self.end = Some(end);
    }

    fn failed(&mut self, fp: Fingerprint, name: String, source: IpAddr) {
        self.events.push(SessionEvent::AttemptFailed {
            fingerprint: fp,
            name,
            source,
            attempts: self.failures,
            max_attempts: self.max_attempts,
        });
    }

    /// Before adding an exchange from `source`: drop the oldest waiting ones past the bounds.
    fn make_room(&mut self, source: IpAddr) {
        let key = source_key(source);
        loop {
            let mine = self
                .pending
                .iter()
                .filter(|(_, p)| source_key(p.source) == key);
            let (count, oldest) = (
                mine.clone().count(),
                mine.min_by_key(|(_, p)| p.since).map(|(fp, _)| *fp),
            );
            match oldest {
                Some(fp) if count >= MAX_PENDING_PER_SOURCE => self.pending.remove(&fp),
                _ => break,
            };
        }
        while self.pending.len() >= MAX_PENDING {
            let Some(fp) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.since)
                .map(|(fp, _)| *fp)
            else {
                break;
            };
            self.pending.remove(&fp);
        }
    }

    fn row(&self, fp: &Fingerprint) -> Option<&JoinerView> {
        self.joiners.iter().find(|j| j.fingerprint == *fp)
    }

    fn state_of(&self, fp: &Fingerprint) -> Option<JoinerState> {
        self.row(fp).map(|j| j.state)
    }

    fn remove_row(&mut self, fp: &Fingerprint) -> bool {
        let Some(i) = self.joiners.iter().position(|j| j.fingerprint == *fp) else {
            return false;
        };
        let j = self.joiners.remove(i);
        self.events.push(SessionEvent::JoinerLeft {
            fingerprint: j.fingerprint,
            name: j.name,
        });
        true
    }

    fn set_state(&mut self, fp: Fingerprint, state: JoinerState) -> Result<(), SessionError> {
        self.check_open()?;
        let j = self
            .joiners
            .iter_mut()
            .find(|j| j.fingerprint == fp)
            .ok_or(SessionError::UnknownJoiner(fp))?;
        j.state = state;
        Ok(())
    }
}

//! The initiator's session driven through its public API by simulated joiners: attempt
//! counting and the limit, rate limiting, expiry, abort and close, the joiner table.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use microcloud::trust::ratelimit::RateLimiter;
use microcloud::trust::{
    Fingerprint, JoinerPake, JoinerState, JoinerStatus, Session, SessionError, SessionEvent,
    VerificationCode,
};

const PASS: &str = "abandon ability able about";
const I: Fingerprint = Fingerprint::from_bytes([0xaa; 32]);

fn fp(n: u8) -> Fingerprint {
    Fingerprint::from_bytes([n; 32])
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

fn open(now: Instant, max_attempts: u32) -> Session {
    // No rate limit unless a test asks for one: the counting tests fire many attempts at once.
    Session::open(now, I, PASS, Duration::from_secs(600), max_attempts)
        .with_rate_limiter(RateLimiter::new(1000, Duration::from_millis(1), 1024))
}

/// A joiner with certificate `fp(n)` at `ip(n)` typing `typed`. Ok(code) when both sides
/// confirmed; Err(where it failed).
fn join(s: &mut Session, now: Instant, n: u8, typed: &str) -> Result<VerificationCode, String> {
    let (joiner, msg_j) = JoinerPake::start(typed, &I, &fp(n));
    let (msg_i, confirm_i) = s
        .begin(now, ip(n), fp(n), &format!("host{n}"), &msg_j)
        .map_err(|e| format!("begin: {e:?}"))?;
    let (confirm_j, code_j) = joiner
        .finish(&msg_i, &confirm_i)
        .map_err(|e| format!("joiner finish: {e:?}"))?;
    let code_i = s
        .confirm(now, fp(n), &confirm_j)
        .map_err(|e| format!("confirm: {e:?}"))?;
    assert_eq!(code_i, code_j);
    Ok(code_i)
}

fn ended_events(s: &mut Session) -> Vec<String> {
    s.take_events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::Ended { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn verified_joiners_appear_in_the_table_in_order() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let c1 = join(&mut s, t, 1, PASS).unwrap();
    // Typed differently, same normal form.
    let c2 = join(&mut s, t, 2, "  Abandon ability  ABLE about ").unwrap();
    let table = s.joiners();
    assert_eq!(table.len(), 2);
    assert_eq!((table[0].fingerprint, table[0].code), (fp(1), c1));
    assert_eq!((table[1].name.as_str(), table[1].source), ("host2", ip(2)));
    assert_eq!(table[1].code, c2);
    assert!(table.iter().all(|j| j.state == JoinerState::Verified));
    assert_eq!(s.status(&fp(1)), JoinerStatus::Verified { code: c1 });
    assert_eq!(s.status(&fp(9)), JoinerStatus::Unknown);
    // Successful joiners give their attempt back.
    assert_eq!(s.attempts(), (0, 25));
    let verified = s
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, SessionEvent::JoinerVerified { .. }))
        .count();
    assert_eq!(verified, 2);
}

#[test]
fn pending_joiners_are_not_in_the_table() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let (_, msg_j) = JoinerPake::start(PASS, &I, &fp(1));
    s.begin(t, ip(1), fp(1), "host1", &msg_j).unwrap();
    assert!(s.joiners().is_empty());
    assert_eq!(s.status(&fp(1)), JoinerStatus::Pending);
    assert_eq!(s.attempts(), (1, 25));
}

#[test]
fn wrong_passphrase_fails_on_the_joiner_and_the_session_stays_open() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let err = join(&mut s, t, 1, "abandon ability able abut").unwrap_err();
    assert!(err.starts_with("joiner finish: WrongPassphrase"), "{err}");
    assert!(s.is_open(t));
    // The retry replaces the failed exchange and succeeds; the failed one stays counted.
    join(&mut s, t, 1, PASS).unwrap();
    assert_eq!(s.attempts(), (1, 25));
    assert_eq!(s.joiners().len(), 1);
}

#[test]
fn a_forged_confirmation_is_a_counted_wrong_passphrase_and_drops_the_exchange() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let (_, msg_j) = JoinerPake::start("guess guess guess", &I, &fp(1));
    s.begin(t, ip(1), fp(1), "host1", &msg_j).unwrap();
    assert_eq!(
        s.confirm(t, fp(1), &[0u8; 32]),
        Err(SessionError::WrongPassphrase)
    );
    assert_eq!(
        s.confirm(t, fp(1), &[0u8; 32]),
        Err(SessionError::UnknownJoiner(fp(1)))
    );
    assert_eq!(s.attempts(), (1, 25));
    assert!(s.take_events().iter().any(|e| matches!(
        e,
        SessionEvent::AttemptFailed {
            attempts: 1,
            max_attempts: 25,
            ..
        }
    )));
}

#[test]
fn confirm_for_an_unknown_joiner_is_its_own_error() {
    let t = Instant::now();
    let mut s = open(t, 25);
    assert_eq!(
        s.confirm(t, fp(5), b"whatever"),
        Err(SessionError::UnknownJoiner(fp(5)))
    );
    assert_eq!(s.attempts(), (0, 25));
}

#[test]
fn attempts_are_limited_per_session_and_the_operator_is_told() {
    let t = Instant::now();
    let mut s = open(t, 5);
    // An attacker without the passphrase: each begin is one guess it could check.
    for n in 1..=5 {
        let (_, msg_j) = JoinerPake::start("wrong guess", &I, &fp(n));
        s.begin(t, ip(n), fp(n), "evil", &msg_j).unwrap();
    }
    assert!(s.is_open(t));
    let (_, msg_j) = JoinerPake::start("wrong guess", &I, &fp(6));
    assert_eq!(
        s.begin(t, ip(6), fp(6), "evil", &msg_j),
        Err(SessionError::TooManyAttempts)
    );
    assert!(!s.is_open(t));
    assert_eq!(ended_events(&mut s), ["too many failed attempts (5)"]);
    // Even the right passphrase is refused now, with the same distinct error.
    assert_eq!(
        join(&mut s, t, 7, PASS).unwrap_err(),
        "begin: TooManyAttempts"
    );
    assert_eq!(
        s.status(&fp(7)),
        JoinerStatus::Ended {
            reason: "too many failed attempts (5)".into()
        }
    );
}

#[test]
fn the_session_ends_as_soon_as_the_limit_of_failures_is_settled() {
    let t = Instant::now();
    let mut s = open(t, 3);
    for n in 1..=3 {
        let (_, msg_j) = JoinerPake::start("wrong guess", &I, &fp(n));
        s.begin(t, ip(n), fp(n), "evil", &msg_j).unwrap();
    }
    for n in 1..=2 {
        assert_eq!(
            s.confirm(t, fp(n), &[1; 32]),
            Err(SessionError::WrongPassphrase)
        );
    }
    assert!(s.is_open(t));
    assert_eq!(
        s.confirm(t, fp(3), &[1; 32]),
        Err(SessionError::WrongPassphrase)
    );
    assert!(!s.is_open(t));
    assert_eq!(ended_events(&mut s), ["too many failed attempts (3)"]);
}

#[test]
fn retries_count_but_successes_do_not() {
    let t = Instant::now();
    let mut s = open(t, 3);
    for _ in 0..2 {
        assert!(join(&mut s, t, 1, "typo typo typo").is_err());
    }
    // Two failures out of three; many honest joiners still fit.
    for n in 2..=10 {
        join(&mut s, t, n, PASS).unwrap();
    }
    assert_eq!(s.attempts(), (2, 3));
    assert!(s.is_open(t));
}

#[test]
fn attempts_are_rate_limited_per_source_without_counting() {
    let t = Instant::now();
    let mut s = Session::open(t, I, PASS, Duration::from_secs(600), 25);
    for _ in 0..3 {
        let (_, msg_j) = JoinerPake::start("x", &I, &fp(1));
        s.begin(t, ip(1), fp(1), "host1", &msg_j).unwrap();
    }
    let (_, msg_j) = JoinerPake::start("x", &I, &fp(1));
    assert_eq!(
        s.begin(t, ip(1), fp(1), "host1", &msg_j),
        Err(SessionError::RateLimited {
            retry_after: Duration::from_secs(2)
        })
    );
    assert_eq!(s.attempts(), (3, 25));
    // Another source is not affected, and the first one may try again later.
    join(&mut s, t, 2, PASS).unwrap();
    join(&mut s, t + Duration::from_secs(2), 1, PASS).unwrap();
}

#[test]
fn malformed_messages_and_names_are_errors_that_do_not_count() {
    let t = Instant::now();
    let mut s = open(t, 25);
    for bad in [&b""[..], b"B", &[0x42; 40]] {
        assert!(matches!(
            s.begin(t, ip(1), fp(1), "host1", bad),
            Err(SessionError::Malformed(_))
        ));
    }
    let (_, msg_j) = JoinerPake::start(PASS, &I, &fp(1));
    for name in ["", "host\x1b[2Jevil", "a b", &"x".repeat(300)] {
        assert!(matches!(
            s.begin(t, ip(1), fp(1), name, &msg_j),
            Err(SessionError::Malformed(_))
        ));
    }
    assert_eq!(s.attempts(), (0, 25));
    assert!(s.is_open(t));
}

#[test]
fn the_session_expires() {
    let t = Instant::now();
    let mut s = Session::open(t, I, PASS, Duration::from_secs(60), 25);
    let code = join(&mut s, t, 1, PASS).unwrap();
    let late = t + Duration::from_secs(60);
    assert!(s.is_open(t + Duration::from_secs(59)));
    assert!(!s.is_open(late));
    assert_eq!(join(&mut s, late, 2, PASS).unwrap_err(), "begin: Expired");
    assert_eq!(s.select(fp(1)), Err(SessionError::Expired));
    assert!(!s.expire(late), "already ended");
    assert_eq!(ended_events(&mut s), ["the session timed out after 1 min"]);
    let status = s.status(&fp(1));
    assert_ne!(status, JoinerStatus::Verified { code });
    assert!(matches!(status, JoinerStatus::Ended { .. }));
}

#[test]
fn expire_reports_the_moment_it_ends_the_session() {
    let t = Instant::now();
    let mut s = Session::open(t, I, PASS, Duration::from_secs(90), 25);
    assert!(!s.expire(t + Duration::from_secs(89)));
    assert!(s.expire(t + Duration::from_secs(90)));
    assert_eq!(s.end_reason().unwrap(), "the session timed out after 90 s");
}

#[test]
fn abort_ends_everything_with_the_reason() {
    let t = Instant::now();
    let mut s = open(t, 25);
    join(&mut s, t, 1, PASS).unwrap();
    join(&mut s, t, 2, PASS).unwrap();
    s.select(fp(1)).unwrap();
    let (_, msg_j) = JoinerPake::start(PASS, &I, &fp(3));
    s.begin(t, ip(3), fp(3), "host3", &msg_j).unwrap();
    s.take_events();

    s.abort("initiator aborted the setup: disk probe failed");
    s.abort("a second reason is ignored");
    let reason = "initiator aborted the setup: disk probe failed".to_string();
    let ended = SessionError::Ended(reason.clone());
    assert_eq!(ended_events(&mut s), std::slice::from_ref(&reason));
    let (_, msg_j) = JoinerPake::start(PASS, &I, &fp(4));
    assert_eq!(
        s.begin(t, ip(4), fp(4), "host4", &msg_j),
        Err(ended.clone())
    );
    assert_eq!(s.confirm(t, fp(3), b"x"), Err(ended.clone()));
    assert_eq!(s.select(fp(2)), Err(ended.clone()));
    assert_eq!(s.reject(fp(2)), Err(ended.clone()));
    assert_eq!(s.leave(fp(2)), Err(ended.clone()));
    for n in 1..=4 {
        assert_eq!(
            s.status(&fp(n)),
            JoinerStatus::Ended {
                reason: reason.clone()
            }
        );
    }
    assert!(ended.to_string().contains("disk probe failed"));
}

#[test]
fn close_keeps_selected_joiners_and_ends_the_rest() {
    let t = Instant::now();
    let mut s = open(t, 25);
    join(&mut s, t, 1, PASS).unwrap();
    join(&mut s, t, 2, PASS).unwrap();
    s.select(fp(1)).unwrap();
    assert_eq!(s.selected().len(), 1);
    s.close("the initiator finished without this machine");
    assert_eq!(s.status(&fp(1)), JoinerStatus::Selected);
    assert_eq!(
        s.status(&fp(2)),
        JoinerStatus::Ended {
            reason: "the initiator finished without this machine".into()
        }
    );
}

#[test]
fn select_reject_and_leave() {
    let t = Instant::now();
    let mut s = open(t, 25);
    join(&mut s, t, 1, PASS).unwrap();
    join(&mut s, t, 2, PASS).unwrap();
    s.select(fp(1)).unwrap();
    s.reject(fp(2)).unwrap();
    assert_eq!(s.status(&fp(1)), JoinerStatus::Selected);
    assert_eq!(s.status(&fp(2)), JoinerStatus::Rejected);
    assert_eq!(s.select(fp(9)), Err(SessionError::UnknownJoiner(fp(9))));
    // A rejected machine cannot come back in the same session.
    assert_eq!(
        join(&mut s, t, 2, PASS).unwrap_err(),
        format!("begin: {:?}", SessionError::Rejected(fp(2)))
    );
    s.take_events();

    s.leave(fp(1)).unwrap();
    assert_eq!(s.joiners().len(), 1);
    assert_eq!(s.status(&fp(1)), JoinerStatus::Unknown);
    assert_eq!(
        s.take_events(),
        [SessionEvent::JoinerLeft {
            fingerprint: fp(1),
            name: "host1".into()
        }]
    );
    assert_eq!(s.leave(fp(1)), Err(SessionError::UnknownJoiner(fp(1))));
}

#[test]
fn a_joiner_starting_over_loses_its_row_until_it_confirms_again() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let first = join(&mut s, t, 1, PASS).unwrap();
    s.select(fp(1)).unwrap();
    let (_, msg_j) = JoinerPake::start(PASS, &I, &fp(1));
    s.begin(t, ip(1), fp(1), "host1", &msg_j).unwrap();
    // The old code is stale: the operator must not select on it.
    assert!(s.joiners().is_empty());
    assert_eq!(s.status(&fp(1)), JoinerStatus::Pending);
    let second = join(&mut s, t, 1, PASS).unwrap();
    assert_ne!(first, second);
    assert_eq!(s.joiners()[0].state, JoinerState::Verified);
}

#[test]
fn errors_read_well() {
    let msgs = [
        SessionError::NoSession.to_string(),
        SessionError::RateLimited {
            retry_after: Duration::from_millis(1500),
        }
        .to_string(),
        SessionError::UnknownJoiner(fp(0xab)).to_string(),
        SessionError::WrongPassphrase.to_string(),
    ];
    assert_eq!(msgs[0], "no session is open on the initiator");
    assert!(msgs[1].contains("retry in 2 s"), "{}", msgs[1]);
    assert!(msgs[2].contains("abababababab"), "{}", msgs[2]);
    assert!(msgs[3].starts_with("wrong passphrase"), "{}", msgs[3]);
}

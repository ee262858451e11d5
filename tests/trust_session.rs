//! The initiator's session driven through its public API by simulated joiners: attempt
//! counting and the limit (failures at the second step only), commitment mismatches, rate
//! limiting of both steps, bounded and expiring half-done exchanges, expiry, abort and close,
//! the joiner table.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use microcloud::trust::ratelimit::RateLimiter;
use microcloud::trust::{
    Fingerprint, JoinerPake, JoinerState, JoinerStatus, Session, SessionError, SessionEvent,
    VerificationCode, MAX_PENDING, MAX_PENDING_PER_SOURCE, PENDING_TIMEOUT,
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

/// A joiner with certificate `fp(n)` at `ip(n)` typing `typed`, both round trips. Ok(code)
/// when both sides confirmed; Err(where it failed).
fn join(s: &mut Session, now: Instant, n: u8, typed: &str) -> Result<VerificationCode, String> {
    let (mut joiner, commit) = JoinerPake::start(typed, &I, &fp(n));
    let msg_i = s
        .begin(now, ip(n), fp(n), &format!("host{n}"), &commit)
        .map_err(|e| format!("begin: {e:?}"))?;
    let (msg_j, confirm_j, wait) = joiner
        .respond(&msg_i)
        .map_err(|e| format!("joiner respond: {e:?}"))?;
    let (confirm_i, code_i) = s
        .confirm(now, ip(n), fp(n), &msg_j, &confirm_j)
        .map_err(|e| format!("confirm: {e:?}"))?;
    let code_j = wait
        .finish(&confirm_i)
        .map_err(|e| format!("joiner finish: {e:?}"))?;
    assert_eq!(code_i, code_j);
    Ok(code_i)
}

/// The first round trip only: the joiner's state after it answered, and what it would send
/// in the second one (`msg_j`, `confirm_j`).
fn first_step(s: &mut Session, now: Instant, n: u8, typed: &str) -> (Vec<u8>, Vec<u8>) {
    let (mut joiner, commit) = JoinerPake::start(typed, &I, &fp(n));
    let msg_i = s
        .begin(now, ip(n), fp(n), &format!("host{n}"), &commit)
        .unwrap();
    let (msg_j, confirm_j, _) = joiner.respond(&msg_i).unwrap();
    (msg_j, confirm_j)
}

fn failed_events(s: &mut Session) -> Vec<u32> {
    s.take_events()
        .into_iter()
        .filter_map(|e| match e {
            SessionEvent::AttemptFailed { attempts, .. } => Some(attempts),
            _ => None,
        })
        .collect()
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
    let (_, commit) = JoinerPake::start(PASS, &I, &fp(1));
    s.begin(t, ip(1), fp(1), "host1", &commit).unwrap();
    assert!(s.joiners().is_empty());
    assert_eq!(s.status(&fp(1)), JoinerStatus::Pending);
    // Nothing was handed out that a guess could be tested against: not an attempt.
    assert_eq!(s.attempts(), (0, 25));
    assert_eq!(s.pending_count(), 1);
}

#[test]
fn wrong_passphrase_fails_at_the_initiator_and_the_session_stays_open() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let err = join(&mut s, t, 1, "abandon ability able abut").unwrap_err();
    assert!(err.starts_with("confirm: WrongPassphrase"), "{err}");
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
    let (msg_j, _) = first_step(&mut s, t, 1, "guess guess guess");
    assert_eq!(
        s.confirm(t, ip(1), fp(1), &msg_j, &[0u8; 32]),
        Err(SessionError::WrongPassphrase)
    );
    // One guess per exchange: the second try finds nothing to test against.
    assert_eq!(
        s.confirm(t, ip(1), fp(1), &msg_j, &[0u8; 32]),
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
        s.confirm(t, ip(5), fp(5), b"msg", b"whatever"),
        Err(SessionError::UnknownJoiner(fp(5)))
    );
    assert_eq!(s.attempts(), (0, 25));
}

#[test]
fn attempts_are_limited_per_session_and_the_operator_is_told() {
    let t = Instant::now();
    let mut s = open(t, 5);
    // First steps alone test nothing and cost nothing.
    for n in 1..=40 {
        let (_, commit) = JoinerPake::start("wrong guess", &I, &fp(n));
        s.begin(t, ip(n), fp(n), "evil", &commit).unwrap();
    }
    assert_eq!(s.attempts(), (0, 5));
    // An attacker without the passphrase: each second step is one guess.
    for n in 1..=4 {
        assert_eq!(
            join(&mut s, t, n, "wrong guess").unwrap_err(),
            "confirm: WrongPassphrase"
        );
    }
    assert!(s.is_open(t));
    assert_eq!(
        join(&mut s, t, 5, "wrong guess").unwrap_err(),
        "confirm: WrongPassphrase"
    );
    assert!(!s.is_open(t));
    let (_, commit) = JoinerPake::start("wrong guess", &I, &fp(6));
    assert_eq!(
        s.begin(t, ip(6), fp(6), "evil", &commit),
        Err(SessionError::TooManyAttempts)
    );
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
    let steps: Vec<_> = (1..=4)
        .map(|n| first_step(&mut s, t, n, "wrong guess"))
        .collect();
    for (n, (msg_j, confirm_j)) in (1..=2).zip(&steps) {
        assert_eq!(
            s.confirm(t, ip(n), fp(n), msg_j, confirm_j),
            Err(SessionError::WrongPassphrase)
        );
    }
    assert!(s.is_open(t));
    assert_eq!(
        s.confirm(t, ip(3), fp(3), &steps[2].0, &steps[2].1),
        Err(SessionError::WrongPassphrase)
    );
    assert!(!s.is_open(t));
    assert_eq!(ended_events(&mut s), ["too many failed attempts (3)"]);
    // The exchange still waiting is gone with the session.
    assert_eq!(
        s.confirm(t, ip(4), fp(4), &steps[3].0, &steps[3].1),
        Err(SessionError::TooManyAttempts)
    );
    assert_eq!(s.pending_count(), 0);
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
        let (_, commit) = JoinerPake::start("x", &I, &fp(1));
        s.begin(t, ip(1), fp(1), "host1", &commit).unwrap();
    }
    let (_, commit) = JoinerPake::start("x", &I, &fp(1));
    assert_eq!(
        s.begin(t, ip(1), fp(1), "host1", &commit),
        Err(SessionError::RateLimited {
            retry_after: Duration::from_secs(2)
        })
    );
    assert_eq!(s.attempts(), (0, 25));
    // Another source is not affected, and the first one may try again later.
    join(&mut s, t, 2, PASS).unwrap();
    join(&mut s, t + Duration::from_secs(2), 1, PASS).unwrap();
}

#[test]
fn the_second_step_is_rate_limited_per_source_too() {
    let t = Instant::now();
    let mut s = Session::open(t, I, PASS, Duration::from_secs(600), 25);
    // Four exchanges begun from four sources, finished from one address (the limiter keys on
    // the source of each request).
    let steps: Vec<_> = (1..=4).map(|n| first_step(&mut s, t, n, PASS)).collect();
    for (n, (msg_j, confirm_j)) in (1..=3).zip(&steps) {
        s.confirm(t, ip(9), fp(n), msg_j, confirm_j).unwrap();
    }
    let (msg_j, confirm_j) = &steps[3];
    assert_eq!(
        s.confirm(t, ip(9), fp(4), msg_j, confirm_j),
        Err(SessionError::RateLimited {
            retry_after: Duration::from_secs(2)
        })
    );
    // Refused before it was looked at: the exchange still waits and completes later.
    assert_eq!(s.status(&fp(4)), JoinerStatus::Pending);
    let later = t + Duration::from_secs(2);
    s.confirm(later, ip(9), fp(4), msg_j, confirm_j).unwrap();
    assert_eq!(s.joiners().len(), 4);
    assert_eq!(s.attempts(), (0, 25));
}

#[test]
fn a_commitment_mismatch_is_detected_and_counted() {
    let t = Instant::now();
    let mut s = open(t, 2);
    // The joiner committed to one msg_j; a different one arrives in the second step (a man in
    // the middle swapping messages, or a joiner trying to choose after seeing msg_i).
    let (mut joiner, commit) = JoinerPake::start(PASS, &I, &fp(1));
    let msg_i = s.begin(t, ip(1), fp(1), "host1", &commit).unwrap();
    let (_, confirm_j, _) = joiner.respond(&msg_i).unwrap();
    let (mut other, _) = JoinerPake::start(PASS, &I, &fp(1));
    let (other_msg_j, _, _) = other.respond(&msg_i).unwrap();
    assert_eq!(
        s.confirm(t, ip(1), fp(1), &other_msg_j, &confirm_j),
        Err(SessionError::CommitMismatch)
    );
    assert_eq!(s.attempts(), (1, 2));
    assert_eq!(failed_events(&mut s), [1]);
    // The exchange is over; nothing else can be tried against it.
    assert_eq!(s.status(&fp(1)), JoinerStatus::Unknown);
    assert!(s.is_open(t));
    // It counts towards the limit like a wrong passphrase.
    let (mut joiner, commit) = JoinerPake::start(PASS, &I, &fp(2));
    let msg_i = s.begin(t, ip(2), fp(2), "host2", &commit).unwrap();
    let (mut msg_j, confirm_j, _) = joiner.respond(&msg_i).unwrap();
    msg_j[1] ^= 1;
    assert_eq!(
        s.confirm(t, ip(2), fp(2), &msg_j, &confirm_j),
        Err(SessionError::CommitMismatch)
    );
    assert!(!s.is_open(t));
    assert_eq!(ended_events(&mut s), ["too many failed attempts (2)"]);
    let msg = SessionError::CommitMismatch.to_string();
    assert!(
        msg.contains("commitment") && msg.contains("counted"),
        "{msg}"
    );
}

#[test]
fn half_done_exchanges_expire_uncounted() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let (msg_j, confirm_j) = first_step(&mut s, t, 1, PASS);
    let (msg_j2, confirm_j2) = first_step(&mut s, t + Duration::from_secs(30), 2, PASS);
    assert_eq!(s.pending_count(), 2);
    assert!(!s.expire(t + PENDING_TIMEOUT - Duration::from_millis(1)));
    assert_eq!(s.pending_count(), 2);
    let late = t + PENDING_TIMEOUT;
    assert!(!s.expire(late), "the session itself is still open");
    assert_eq!(s.pending_count(), 1);
    assert_eq!(s.status(&fp(1)), JoinerStatus::Unknown);
    assert_eq!(
        s.confirm(late, ip(1), fp(1), &msg_j, &confirm_j),
        Err(SessionError::UnknownJoiner(fp(1)))
    );
    // The younger one is still within its time; and confirm itself drops stale ones.
    s.confirm(late, ip(2), fp(2), &msg_j2, &confirm_j2).unwrap();
    let (msg_j3, confirm_j3) = first_step(&mut s, late, 3, PASS);
    assert_eq!(
        s.confirm(late + PENDING_TIMEOUT, ip(3), fp(3), &msg_j3, &confirm_j3),
        Err(SessionError::UnknownJoiner(fp(3)))
    );
    assert_eq!(s.attempts(), (0, 25));
    assert!(failed_events(&mut s).is_empty());
    // A joiner that leaves between the steps is dropped, uncounted, too.
    first_step(&mut s, late, 4, PASS);
    s.leave(fp(4)).unwrap();
    assert_eq!(s.pending_count(), 0);
    assert_eq!(s.attempts(), (0, 25));
}

#[test]
fn half_done_exchanges_are_bounded_per_source_and_in_all() {
    let t = Instant::now();
    let mut s = open(t, 25);
    let any_commit = [7u8; 32];
    // One source with many certificates: only the newest few wait.
    for n in 1..=20u8 {
        let at = t + Duration::from_millis(u64::from(n));
        s.begin(at, ip(1), fp(n), "evil", &any_commit).unwrap();
    }
    assert_eq!(s.pending_count(), MAX_PENDING_PER_SOURCE);
    assert_eq!(s.status(&fp(1)), JoinerStatus::Unknown);
    assert_eq!(s.status(&fp(20)), JoinerStatus::Pending);
    // Its flood does not push out another source's exchange.
    let now = t + Duration::from_millis(30);
    let (msg_j, confirm_j) = first_step(&mut s, now, 50, PASS);
    for n in 21..=40u8 {
        s.begin(now, ip(1), fp(n), "evil", &any_commit).unwrap();
    }
    assert_eq!(s.status(&fp(50)), JoinerStatus::Pending);
    s.confirm(now, ip(50), fp(50), &msg_j, &confirm_j).unwrap();

    // Many sources: the total is capped, oldest dropped first, nothing counted.
    for k in 0..(MAX_PENDING as u16 + 50) {
        let fp_k = Fingerprint::from_bytes({
            let mut b = [0x55u8; 32];
            b[..2].copy_from_slice(&k.to_be_bytes());
            b
        });
        let src = IpAddr::V4(Ipv4Addr::new(10, 1, (k >> 8) as u8, k as u8));
        let at = now + Duration::from_millis(1 + u64::from(k));
        s.begin(at, src, fp_k, "evil", &any_commit).unwrap();
        assert!(s.pending_count() <= MAX_PENDING);
    }
    assert_eq!(s.pending_count(), MAX_PENDING);
    assert_eq!(s.status(&fp(40)), JoinerStatus::Unknown, "oldest dropped");
    assert_eq!(s.attempts(), (0, 25));
    assert!(s.is_open(now));
    // All of it goes away after PENDING_TIMEOUT.
    s.expire(now + Duration::from_secs(1) + PENDING_TIMEOUT);
    assert_eq!(s.pending_count(), 0);
}

#[test]
fn malformed_messages_and_names_are_errors_that_do_not_count() {
    let t = Instant::now();
    let mut s = open(t, 25);
    for bad in [&b""[..], b"B", &[0x42; 31], &[0x42; 33], &[0x42; 64]] {
        assert!(matches!(
            s.begin(t, ip(1), fp(1), "host1", bad),
            Err(SessionError::Malformed(_))
        ));
    }
    let (_, commit) = JoinerPake::start(PASS, &I, &fp(1));
    for name in ["", "host\x1b[2Jevil", "a b", &"x".repeat(300)] {
        assert!(matches!(
            s.begin(t, ip(1), fp(1), name, &commit),
            Err(SessionError::Malformed(_))
        ));
    }
    assert_eq!(s.pending_count(), 0);
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
    let (_, commit) = JoinerPake::start(PASS, &I, &fp(3));
    s.begin(t, ip(3), fp(3), "host3", &commit).unwrap();
    s.take_events();

    s.abort("initiator aborted the setup: disk probe failed");
    s.abort("a second reason is ignored");
    let reason = "initiator aborted the setup: disk probe failed".to_string();
    let ended = SessionError::Ended(reason.clone());
    assert_eq!(ended_events(&mut s), std::slice::from_ref(&reason));
    let (_, commit) = JoinerPake::start(PASS, &I, &fp(4));
    assert_eq!(
        s.begin(t, ip(4), fp(4), "host4", &commit),
        Err(ended.clone())
    );
    assert_eq!(s.confirm(t, ip(3), fp(3), b"x", b"x"), Err(ended.clone()));
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
    let (_, commit) = JoinerPake::start(PASS, &I, &fp(1));
    s.begin(t, ip(1), fp(1), "host1", &commit).unwrap();
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
        SessionError::CommitMismatch.to_string(),
    ];
    assert_eq!(msgs[0], "no session is open on the initiator");
    assert!(msgs[1].contains("retry in 2 s"), "{}", msgs[1]);
    assert!(msgs[2].contains("abababababab"), "{}", msgs[2]);
    assert!(msgs[3].starts_with("wrong passphrase"), "{}", msgs[3]);
    assert!(msgs[4].contains("tampered"), "{}", msgs[4]);
}

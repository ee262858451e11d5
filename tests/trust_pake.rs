//! The key exchange end to end with real certificates: both sides agree exactly when they used
//! the same passphrase and saw the same two certificates; a man in the middle, with or without
//! the passphrase, cannot make the two operators see the same code; and one who knows the
//! passphrase can no longer choose the initiator's message after seeing the joiner's.

use std::collections::HashSet;

use microcloud::trust::{
    Fingerprint, Identity, InitiatorPake, JoinerPake, PakeError, VerificationCode,
};

const PASS: &str = "abandon ability able about";

struct Ids {
    i: Fingerprint,
    j: Fingerprint,
    m: Fingerprint,
}

fn ids() -> Ids {
    let fp = || Identity::generate().unwrap().fingerprint();
    Ids {
        i: fp(),
        j: fp(),
        m: fp(),
    }
}

/// How one exchange ended. The initiator checks first (`confirm_j`); the joiner checks
/// `confirm_i` only if the initiator accepted.
#[derive(Debug)]
struct Outcome {
    initiator: Result<VerificationCode, PakeError>,
    joiner: Option<Result<VerificationCode, PakeError>>,
}

/// One exchange in which the joiner believes the pair is `j_view` = (initiator, joiner) and
/// the initiator believes `i_view`, messages relayed unchanged.
fn exchange(
    j_pass: &str,
    j_view: (Fingerprint, Fingerprint),
    i_pass: &str,
    i_view: (Fingerprint, Fingerprint),
) -> Outcome {
    let (mut joiner, commit) = JoinerPake::start(j_pass, &j_view.0, &j_view.1);
    let (pending, msg_i) = InitiatorPake::begin(i_pass, &i_view.0, &i_view.1, &commit).unwrap();
    let (msg_j, confirm_j, wait) = joiner.respond(&msg_i).unwrap();
    match pending.finish(&msg_j, &confirm_j) {
        Ok((confirm_i, code)) => Outcome {
            initiator: Ok(code),
            joiner: Some(wait.finish(&confirm_i)),
        },
        Err(e) => Outcome {
            initiator: Err(e),
            joiner: None,
        },
    }
}

/// Both sides confirmed; the code they agree on.
fn agreed(o: Outcome) -> VerificationCode {
    let code = o.initiator.unwrap();
    assert_eq!(o.joiner.unwrap().unwrap(), code);
    code
}

#[test]
fn same_passphrase_and_certificates_agree() {
    let x = ids();
    let code = agreed(exchange(PASS, (x.i, x.j), PASS, (x.i, x.j)));
    assert_eq!(code.to_string().len(), 7);
}

#[test]
fn passphrases_are_normalised_on_both_sides() {
    let x = ids();
    agreed(exchange(
        " Abandon  ability able ABOUT\n",
        (x.i, x.j),
        "abandon ability able about",
        (x.i, x.j),
    ));
}

#[test]
fn wrong_passphrase_is_caught_by_the_initiator_which_reveals_no_tag() {
    let x = ids();
    let o = exchange("abandon ability able abut", (x.i, x.j), PASS, (x.i, x.j));
    assert_eq!(o.initiator.unwrap_err(), PakeError::WrongPassphrase);
    assert!(o.joiner.is_none(), "the initiator sent no confirmation");
    let msg = PakeError::WrongPassphrase.to_string();
    assert!(msg.contains("passphrase is wrong") && msg.contains("cannot be told apart"));
    assert!(msg.contains("fake initiator"), "{msg}");
}

#[test]
fn a_relaying_man_in_the_middle_fails_for_every_view_it_can_create() {
    // M terminates TLS on both sides, so the joiner sees M's server certificate and the
    // initiator sees M's client certificate (it cannot present J's or I's without their
    // keys). Whatever views result, messages relayed between two different views fail.
    let x = ids();
    let views = [(x.i, x.j), (x.m, x.j), (x.i, x.m), (x.m, x.m), (x.j, x.i)];
    for jv in views {
        for iv in views {
            let o = exchange(PASS, jv, PASS, iv);
            if jv == iv {
                agreed(o);
            } else {
                assert_eq!(
                    o.initiator,
                    Err(PakeError::WrongPassphrase),
                    "{jv:?} / {iv:?}"
                );
                assert!(o.joiner.is_none());
            }
        }
    }
}

#[test]
fn a_man_in_the_middle_who_knows_the_passphrase_shows_different_codes() {
    // The passphrase leaked (a preseed file): M runs one full exchange with each side.
    // Both complete, which is why the operators compare codes, and the codes differ.
    // (Each pair collides with probability 10^-6; three independent runs must all differ.)
    let x = ids();
    for _ in 0..3 {
        let j_code = agreed(exchange(PASS, (x.m, x.j), PASS, (x.m, x.j)));
        let i_code = agreed(exchange(PASS, (x.i, x.m), PASS, (x.i, x.m)));
        assert_ne!(j_code, i_code);
    }
}

/// The attack the commitment stops. M knows the passphrase. It first completes an exchange
/// with the real initiator, as a joiner, which fixes the code the initiator's operator sees.
/// Then, posing as the initiator to the real joiner, it would like to pick `msg_i` so that the
/// joiner's code equals that one. With `msg_j` sent in the clear first, it could try ~10^6
/// candidate `msg_i` offline. Now:
/// - the joiner's first message is a commitment, from which M cannot compute any code;
/// - a joiner run answers one `msg_i` only, so M gets one try per run of `microcloud join`;
/// - across runs the joiner's code is fresh each time (a fresh `msg_j`), independent of the
///   code M fixed with the initiator: over many runs the codes match only by chance.
#[test]
fn a_man_in_the_middle_who_knows_the_passphrase_cannot_grind_the_joiners_code() {
    let x = ids();
    // M as a joiner to the real initiator: the code the initiator's operator sees.
    let i_code = agreed(exchange(PASS, (x.i, x.m), PASS, (x.i, x.m)));

    // A single joiner run: M sees only the commitment before it must choose msg_i.
    let (mut joiner, commit) = JoinerPake::start(PASS, &x.m, &x.j);
    let candidates: Vec<_> = (0..8)
        .map(|_| InitiatorPake::begin(PASS, &x.m, &x.j, &commit).unwrap())
        .collect();
    let mut candidates = candidates.into_iter();
    let (pending, msg_i) = candidates.next().unwrap();
    let (msg_j, confirm_j, wait) = joiner.respond(&msg_i).unwrap();
    // Every further msg_i is refused by this run, whatever it is.
    for (_, other) in candidates {
        assert_eq!(joiner.respond(&other).unwrap_err(), PakeError::AlreadyUsed);
    }
    assert_eq!(joiner.respond(&msg_i).unwrap_err(), PakeError::AlreadyUsed);
    // The one msg_i M did send completes (it knows the passphrase); that code is whatever
    // it is. M cannot swap in msg_j from another run either: the commitment binds it.
    let (confirm_i, j_code) = pending.finish(&msg_j, &confirm_j).unwrap();
    assert_eq!(wait.finish(&confirm_i).unwrap(), j_code);
    let (_, other_commit) = JoinerPake::start(PASS, &x.m, &x.j);
    let (pending, _) = InitiatorPake::begin(PASS, &x.m, &x.j, &other_commit).unwrap();
    assert_eq!(
        pending.finish(&msg_j, &confirm_j).unwrap_err(),
        PakeError::CommitMismatch
    );

    // Many runs, a different msg_i each time (M's best strategy is no better than any other:
    // msg_i is fixed before msg_j is known). The joiner's codes are fresh and match the
    // initiator's only by chance: expected 300 / 10^6 = 3 * 10^-4 matches; more than 1 would
    // happen with probability about 5 * 10^-8. (300 runs keep the debug build under 20 s;
    // the old attack needed ~10^6 tries, all offline against one joiner run.)
    const RUNS: usize = 300;
    let mut codes = HashSet::new();
    let mut msgs_i = HashSet::new();
    let mut matches = 0;
    for _ in 0..RUNS {
        let (mut joiner, commit) = JoinerPake::start(PASS, &x.m, &x.j);
        let (pending, msg_i) = InitiatorPake::begin(PASS, &x.m, &x.j, &commit).unwrap();
        let (msg_j, confirm_j, wait) = joiner.respond(&msg_i).unwrap();
        let (confirm_i, code) = pending.finish(&msg_j, &confirm_j).unwrap();
        assert_eq!(wait.finish(&confirm_i).unwrap(), code);
        msgs_i.insert(msg_i);
        codes.insert(code);
        matches += usize::from(code == i_code);
    }
    assert_eq!(msgs_i.len(), RUNS);
    assert!(
        matches <= 1,
        "{matches} of {RUNS} runs matched the initiator's code"
    );
    // Fresh codes: 300 draws from 10^6 repeat with probability about 0.04; fewer distinct
    // codes would mean M (or anything) could steer them.
    assert!(codes.len() >= RUNS - 3, "{} distinct codes", codes.len());
}

#[test]
fn an_impostor_initiator_without_the_passphrase_cannot_confirm() {
    // The joiner proves first, so the impostor gets one tag: one online guess per joiner run,
    // and it cannot produce the tag the joiner checks.
    let x = ids();
    let (mut joiner, commit) = JoinerPake::start(PASS, &x.m, &x.j);
    let (pending, msg_i) = InitiatorPake::begin("some guess here", &x.m, &x.j, &commit).unwrap();
    let (msg_j, confirm_j, wait) = joiner.respond(&msg_i).unwrap();
    assert_eq!(
        pending.finish(&msg_j, &confirm_j).unwrap_err(),
        PakeError::WrongPassphrase
    );
    // Whatever it answers instead, the joiner refuses it.
    for forged in [vec![0u8; 32], confirm_j.clone(), vec![]] {
        let (mut joiner, commit) = JoinerPake::start(PASS, &x.m, &x.j);
        let (_, msg_i) = InitiatorPake::begin("some guess here", &x.m, &x.j, &commit).unwrap();
        let (_, _, wait) = joiner.respond(&msg_i).unwrap();
        assert_eq!(
            wait.finish(&forged).unwrap_err(),
            PakeError::WrongPassphrase
        );
    }
    assert_eq!(
        wait.finish(&confirm_j).unwrap_err(),
        PakeError::WrongPassphrase
    );
}

#[test]
fn an_impostor_joiner_cannot_forge_a_confirmation() {
    let x = ids();
    let (mut joiner, commit) = JoinerPake::start("some guess here", &x.i, &x.m);
    let (pending, msg_i) = InitiatorPake::begin(PASS, &x.i, &x.m, &commit).unwrap();
    let (msg_j, _, _) = joiner.respond(&msg_i).unwrap();
    // Replaying bytes it saw, or any other bytes, does not verify.
    assert_eq!(
        pending.finish(&msg_j, &msg_i[..32]).unwrap_err(),
        PakeError::WrongPassphrase
    );
}

#[test]
fn tampering_with_any_message_fails() {
    let x = ids();
    // Flip a bit in the commitment on the way to the initiator.
    let (mut joiner, mut commit) = JoinerPake::start(PASS, &x.i, &x.j);
    commit[5] ^= 1;
    let (pending, msg_i) = InitiatorPake::begin(PASS, &x.i, &x.j, &commit).unwrap();
    let (msg_j, confirm_j, _) = joiner.respond(&msg_i).unwrap();
    assert_eq!(
        pending.finish(&msg_j, &confirm_j).unwrap_err(),
        PakeError::CommitMismatch
    );
    // Flip a bit in msg_i on the way to the joiner.
    let (mut joiner, commit) = JoinerPake::start(PASS, &x.i, &x.j);
    let (pending, mut msg_i) = InitiatorPake::begin(PASS, &x.i, &x.j, &commit).unwrap();
    msg_i[7] ^= 1;
    if let Ok((msg_j, confirm_j, _)) = joiner.respond(&msg_i) {
        assert_eq!(
            pending.finish(&msg_j, &confirm_j).unwrap_err(),
            PakeError::WrongPassphrase
        );
    }
    // Flip a bit in msg_j on the way back: it no longer opens the commitment.
    let (mut joiner, commit) = JoinerPake::start(PASS, &x.i, &x.j);
    let (pending, msg_i) = InitiatorPake::begin(PASS, &x.i, &x.j, &commit).unwrap();
    let (mut msg_j, confirm_j, _) = joiner.respond(&msg_i).unwrap();
    msg_j[3] ^= 1;
    assert_eq!(
        pending.finish(&msg_j, &confirm_j).unwrap_err(),
        PakeError::CommitMismatch
    );
    // Flip a bit in confirm_i on the way back.
    let (mut joiner, commit) = JoinerPake::start(PASS, &x.i, &x.j);
    let (pending, msg_i) = InitiatorPake::begin(PASS, &x.i, &x.j, &commit).unwrap();
    let (msg_j, confirm_j, wait) = joiner.respond(&msg_i).unwrap();
    let (mut confirm_i, _) = pending.finish(&msg_j, &confirm_j).unwrap();
    confirm_i[0] ^= 0x80;
    assert_eq!(
        wait.finish(&confirm_i).unwrap_err(),
        PakeError::WrongPassphrase
    );
}

#[test]
fn reflecting_messages_back_is_refused() {
    let x = ids();
    // The joiner's commitment reflected as msg_i: not a SPAKE2 message.
    let (mut joiner, commit) = JoinerPake::start(PASS, &x.i, &x.j);
    assert!(matches!(
        joiner.respond(&commit),
        Err(PakeError::Malformed(_))
    ));
    // The initiator's msg_i reflected as msg_j: does not open the commitment.
    let (_, commit) = JoinerPake::start(PASS, &x.i, &x.j);
    let (pending, msg_i) = InitiatorPake::begin(PASS, &x.i, &x.j, &commit).unwrap();
    assert_eq!(
        pending.finish(&msg_i, &[0; 32]).unwrap_err(),
        PakeError::CommitMismatch
    );
}

#[test]
fn every_session_has_fresh_commitments_codes_and_tags() {
    let x = ids();
    let mut codes = HashSet::new();
    let mut tags = HashSet::new();
    let mut commits = HashSet::new();
    for _ in 0..20 {
        let (mut joiner, commit) = JoinerPake::start(PASS, &x.i, &x.j);
        let (pending, msg_i) = InitiatorPake::begin(PASS, &x.i, &x.j, &commit).unwrap();
        let (msg_j, confirm_j, wait) = joiner.respond(&msg_i).unwrap();
        let (confirm_i, code) = pending.finish(&msg_j, &confirm_j).unwrap();
        assert_eq!(wait.finish(&confirm_i).unwrap(), code);
        commits.insert(commit);
        codes.insert(code);
        tags.insert(confirm_i);
        tags.insert(confirm_j);
    }
    // 20 draws from 10^6: a repeat has probability about 2 * 10^-4, so allow one.
    assert!(codes.len() >= 19, "{codes:?}");
    assert_eq!(tags.len(), 40);
    assert_eq!(commits.len(), 20);
}

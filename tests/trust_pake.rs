//! The key exchange end to end with real certificates: both sides agree exactly when they used
//! the same passphrase and saw the same two certificates; a man in the middle, with or without
//! the passphrase, cannot make the two operators see the same code.

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

/// One exchange in which the joiner believes the pair is `j_view` = (initiator, joiner) and
/// the initiator believes `i_view`, messages relayed unchanged. Returns the joiner's result and,
/// if the joiner got as far as confirming, the initiator's.
#[allow(clippy::type_complexity)]
fn exchange(
    j_pass: &str,
    j_view: (Fingerprint, Fingerprint),
    i_pass: &str,
    i_view: (Fingerprint, Fingerprint),
) -> (
    Result<VerificationCode, PakeError>,
    Option<Result<VerificationCode, PakeError>>,
) {
    let (joiner, msg_j) = JoinerPake::start(j_pass, &j_view.0, &j_view.1);
    let (pending, msg_i, confirm_i) =
        InitiatorPake::respond(i_pass, &i_view.0, &i_view.1, &msg_j).unwrap();
    match joiner.finish(&msg_i, &confirm_i) {
        Ok((confirm_j, code_j)) => (Ok(code_j), Some(pending.verify(&confirm_j))),
        Err(e) => (Err(e), None),
    }
}

#[test]
fn same_passphrase_and_certificates_agree() {
    let x = ids();
    let (j, i) = exchange(PASS, (x.i, x.j), PASS, (x.i, x.j));
    let code = j.unwrap();
    assert_eq!(i.unwrap().unwrap(), code);
    assert_eq!(code.to_string().len(), 7);
}

#[test]
fn passphrases_are_normalised_on_both_sides() {
    let x = ids();
    let (j, i) = exchange(
        " Abandon  ability able ABOUT\n",
        (x.i, x.j),
        "abandon ability able about",
        (x.i, x.j),
    );
    assert_eq!(j.unwrap(), i.unwrap().unwrap());
}

#[test]
fn wrong_passphrase_is_caught_by_the_joiner_before_it_reveals_anything() {
    let x = ids();
    let (j, i) = exchange("abandon ability able abut", (x.i, x.j), PASS, (x.i, x.j));
    assert_eq!(j.unwrap_err(), PakeError::WrongPassphrase);
    assert!(i.is_none(), "the joiner sent no confirmation");
    let msg = PakeError::WrongPassphrase.to_string();
    assert!(msg.contains("passphrase is wrong") && msg.contains("cannot be told apart"));
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
            let (j, i) = exchange(PASS, jv, PASS, iv);
            if jv == iv {
                assert_eq!(j.unwrap(), i.unwrap().unwrap());
            } else {
                assert_eq!(j, Err(PakeError::WrongPassphrase), "{jv:?} / {iv:?}");
                assert!(i.is_none());
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
        let (j_code, m_as_i) = exchange(PASS, (x.m, x.j), PASS, (x.m, x.j));
        let (m_as_j, i_code) = exchange(PASS, (x.i, x.m), PASS, (x.i, x.m));
        let (j_code, i_code) = (j_code.unwrap(), i_code.unwrap().unwrap());
        assert_eq!(m_as_i.unwrap().unwrap(), j_code);
        assert_eq!(m_as_j.unwrap(), i_code);
        assert_ne!(j_code, i_code);
    }
}

#[test]
fn an_impostor_initiator_without_the_passphrase_gets_no_confirmation() {
    let x = ids();
    let (j, i) = exchange(PASS, (x.m, x.j), "some guess here", (x.m, x.j));
    assert_eq!(j, Err(PakeError::WrongPassphrase));
    assert!(i.is_none());
}

#[test]
fn an_impostor_joiner_cannot_forge_a_confirmation() {
    let x = ids();
    let (_, msg_j) = JoinerPake::start("some guess here", &x.i, &x.m);
    let (pending, _, confirm_i) = InitiatorPake::respond(PASS, &x.i, &x.m, &msg_j).unwrap();
    // Replaying the initiator's own tag, or any other bytes, does not verify.
    assert_eq!(
        pending.verify(&confirm_i).unwrap_err(),
        PakeError::WrongPassphrase
    );
}

#[test]
fn tampering_with_either_message_fails() {
    let x = ids();
    // Flip a bit in msg_j on the way to the initiator.
    let (joiner, mut msg_j) = JoinerPake::start(PASS, &x.i, &x.j);
    msg_j[5] ^= 1;
    if let Ok((_, msg_i, confirm_i)) = InitiatorPake::respond(PASS, &x.i, &x.j, &msg_j) {
        assert!(joiner.finish(&msg_i, &confirm_i).is_err());
    }
    // Flip a bit in msg_i on the way back.
    let (joiner, msg_j) = JoinerPake::start(PASS, &x.i, &x.j);
    let (_, mut msg_i, confirm_i) = InitiatorPake::respond(PASS, &x.i, &x.j, &msg_j).unwrap();
    msg_i[7] ^= 1;
    assert!(joiner.finish(&msg_i, &confirm_i).is_err());
}

#[test]
fn reflecting_the_joiners_message_back_is_malformed() {
    let x = ids();
    let (joiner, msg_j) = JoinerPake::start(PASS, &x.i, &x.j);
    assert!(matches!(
        joiner.finish(&msg_j, &[0; 32]),
        Err(PakeError::Malformed(_))
    ));
}

#[test]
fn every_session_has_fresh_codes_and_tags() {
    let x = ids();
    let mut codes = HashSet::new();
    let mut tags = HashSet::new();
    for _ in 0..20 {
        let (joiner, msg_j) = JoinerPake::start(PASS, &x.i, &x.j);
        let (_, msg_i, confirm_i) = InitiatorPake::respond(PASS, &x.i, &x.j, &msg_j).unwrap();
        let (confirm_j, code) = joiner.finish(&msg_i, &confirm_i).unwrap();
        codes.insert(code);
        tags.insert(confirm_i);
        tags.insert(confirm_j);
    }
    // 20 draws from 10^6: a repeat has probability about 2 * 10^-4, so allow one.
    assert!(codes.len() >= 19, "{codes:?}");
    assert_eq!(tags.len(), 40);
}

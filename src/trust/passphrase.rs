//! Session passphrases: generating them from the shipped word list, and the one normal form both
//! sides reduce typed text to before it reaches the key exchange.

use std::sync::LazyLock;

use rand::{CryptoRng, Rng};

const WORDLIST: &str = include_str!("../../data/wordlist.txt");

/// Words in a generated passphrase. 4 × log2(2048) = 44 bits: enough against an attacker who
/// gets one online guess per attempt and at most `DEFAULT_MAX_ATTEMPTS` attempts per session.
pub const WORDS: usize = 4;

/// Shortest operator-given passphrase, in characters after normalising. A floor against "foo",
/// not a strength meter: the attempt limit is what makes short passphrases survivable.
pub const MIN_CUSTOM_CHARS: usize = 8;

static LIST: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    WORDLIST
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect()
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassphraseError {
    #[error("the session passphrase is empty")]
    Empty,
    #[error(
        "the session passphrase is {len} characters long; use at least {min} \
         (or let microcloud generate one)"
    )]
    TooShort { len: usize, min: usize },
}

/// The word list in use, in order.
pub fn words() -> &'static [&'static str] {
    &LIST
}

/// Four words drawn independently and uniformly from the list, joined by single spaces.
pub fn generate<R: Rng + CryptoRng + ?Sized>(rng: &mut R) -> String {
    let list = words();
    (0..WORDS)
        .map(|_| list[rng.random_range(0..list.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Trim, collapse runs of whitespace to one space, lower-case. Both sides apply this, so a
/// stray double space or a capital from a phone keyboard does not cost a failed attempt.
pub fn normalise(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Check an operator-given passphrase (flag or preseed) and return its normal form.
pub fn validate_custom(s: &str) -> Result<String, PassphraseError> {
    let n = normalise(s);
    let len = n.chars().count();
    if len == 0 {
        Err(PassphraseError::Empty)
    } else if len < MIN_CUSTOM_CHARS {
        Err(PassphraseError::TooShort {
            len,
            min: MIN_CUSTOM_CHARS,
        })
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn list_is_2048_distinct_lower_case_words() {
        assert_eq!(words().len(), 2048);
        let set: HashSet<_> = words().iter().collect();
        assert_eq!(set.len(), 2048);
        assert!(words()
            .iter()
            .all(|w| normalise(w) == *w && !w.contains(' ')));
    }

    #[test]
    fn generated_passphrase_is_four_list_words_in_normal_form() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let p = generate(&mut rng);
            assert_eq!(normalise(&p), p);
            let parts: Vec<_> = p.split(' ').collect();
            assert_eq!(parts.len(), WORDS);
            assert!(parts.iter().all(|w| words().contains(w)), "{p}");
            assert!(validate_custom(&p).is_ok());
            seen.insert(p);
        }
        assert_eq!(seen.len(), 200, "200 draws of 44 bits should not repeat");
    }

    #[test]
    fn normalise_forgives_spacing_and_case() {
        let want = "abandon ability able about";
        for typed in [
            "abandon ability able about",
            "  abandon ability able about\n",
            "abandon  ability\table   about",
            "Abandon ABILITY able About",
        ] {
            assert_eq!(normalise(typed), want, "{typed:?}");
        }
        assert_ne!(normalise("abandon ability able abut"), want);
    }

    #[test]
    fn custom_passphrases_need_some_length() {
        assert_eq!(validate_custom("   "), Err(PassphraseError::Empty));
        assert_eq!(
            validate_custom("foo"),
            Err(PassphraseError::TooShort { len: 3, min: 8 })
        );
        // Collapsed whitespace does not count towards the length.
        assert!(validate_custom("a  b  c  d").is_err());
        assert_eq!(
            validate_custom(" Correct  Horse ").unwrap(),
            "correct horse"
        );
        let msg = validate_custom("foo").unwrap_err().to_string();
        assert!(msg.contains("at least 8"), "{msg}");
    }
}

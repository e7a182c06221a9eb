//! The strength rule for a new keystore's passphrase (the newcomer's H18), for the CLI
//! (`serment id new`, `recover`, `device link`, ...) and the patient's page (an identity created
//! there, a keystore file exported from it). The estimator is native only: built for wasm32
//! (the page) the rule is the length alone, since zxcvbn's lists would nearly triple the page's
//! WebAssembly module (docs/THREAT_MODEL.md says so: OPEN).
//!
//! A stolen keystore file is attacked offline, each guess paying the keystore's Argon2id (64 MiB,
//! t=3 by default; PROTOCOL.md §5). The rule refuses what such an attacker tries first: fewer
//! than [`MIN_PASSPHRASE_CHARS`] characters, or a passphrase that zxcvbn (Dropbox's estimator:
//! common passwords, dictionary words, names, dates, keyboard patterns, sequences, repeats, and
//! the caller's context such as the handle) puts at 10^8 guesses or fewer (its score below
//! `Three`). NIST SP 800-63B §3.1.1.2 asks that new secrets be checked against such lists.

/// The shortest passphrase accepted for a new keystore, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// The weakest accepted zxcvbn score: `Three`, more than 10^8 guesses.
#[cfg(not(target_arch = "wasm32"))]
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Why `passphrase` is refused for a new keystore, or `None` if it is accepted. `context`
/// (the handle, the display name) counts as guessable. The message says what to do and never
/// contains the passphrase.
pub fn weakness(passphrase: &str, context: &[&str]) -> Option<String> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Some(format!(
            "use a passphrase of at least {MIN_PASSPHRASE_CHARS} characters"
        ));
    }
    estimated_weakness(passphrase, context)
}

/// The page's build: the length rule only (see the module documentation).
#[cfg(target_arch = "wasm32")]
fn estimated_weakness(_passphrase: &str, _context: &[&str]) -> Option<String> {
    None
}

#[cfg(not(target_arch = "wasm32"))]
fn estimated_weakness(passphrase: &str, context: &[&str]) -> Option<String> {
    let estimate = zxcvbn::zxcvbn(passphrase, context);
    if estimate.score() >= MIN_SCORE {
        return None;
    }
    let why = estimate
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    Some(format!(
        "this passphrase is too easy to guess: about 10^{:.1} guesses, when a stolen keystore \
         must resist more than 10^8{why}. Use four or more unrelated words, or a longer \
         passphrase of your own",
        estimate.guesses_log10()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_short_and_contextual_passphrases_are_refused_and_words_accepted() {
        for weak in [
            "1234567",
            "12345678",
            "password1",
            "azertyuiop",
            "aaaaaaaaaaaa",
        ] {
            let why = weakness(weak, &[]);
            assert!(why.is_some(), "{weak} accepted");
            let why = why.unwrap_or_default();
            assert!(!why.contains(weak), "the passphrase in the message: {why}");
        }
        assert!(weakness("labo-biomed2024", &["labo-biomed"]).is_some());
        for strong in [
            "test passphrase 0123",
            "correct horse battery staple",
            "mauve-otter-27-grille",
        ] {
            assert_eq!(weakness(strong, &[]), None, "{strong}");
        }
    }
}

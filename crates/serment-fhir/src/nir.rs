//! French NIR / INS-NIR control-key check.
//!
//! The NIR ("numéro d'inscription au répertoire", social-security number) is the
//! identifier carried by the French INS ("identité nationale de santé") under the
//! OID `1.2.250.1.213.1.4.8` (INS-NIR; `.10` and `.11` are the test and demo OIDs).
//! Its value is 13 characters followed by a 2-digit control key:
//!
//! ```text
//! S YY MM DD CCC OOO KK
//! │ │  │  │  │   │   └ control key = 97 − (13-character number mod 97)
//! │ │  │  │  │   └ order number
//! │ │  │  │  └ commune (INSEE code)
//! │ │  │  └ department of birth ("2A" / "2B" for Corsica)
//! │ │  └ month of birth
//! │ └ year of birth
//! └ sex
//! ```
//!
//! For Corsica the department "2A" is replaced by "19" and "2B" by "18" before the
//! number is reduced modulo 97. Only the structure and the key are checked here,
//! not the meaning of each field (month 20–42 or 99, sex 3/4/7/8 all exist).

use serde::{Deserialize, Serialize};

/// OID (as a FHIR `urn:oid:` system) of the production INS-NIR identifier.
pub const OID_INS_NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
/// OID (as a FHIR `urn:oid:` system) of the INS-NIR test identifier (INS-NIR-TEST).
pub const OID_INS_NIR_TEST: &str = "urn:oid:1.2.250.1.213.1.4.10";
/// OID (as a FHIR `urn:oid:` system) of the INS-NIR demo identifier (INS-NIR-DEMO).
pub const OID_INS_NIR_DEMO: &str = "urn:oid:1.2.250.1.213.1.4.11";

/// Outcome of [`check_nir`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NirCheck {
    /// 15 well-formed characters whose last two digits are the correct control key.
    Valid,
    /// Well-formed, but the control key does not match the first 13 characters.
    WrongKey {
        /// The key computed from the first 13 characters (1..=97).
        expected: u8,
        /// The key written in the value (its last two digits, 0..=99).
        found: u8,
    },
    /// Not a NIR at all; the string says why (human-readable, English).
    Malformed(String),
}

impl NirCheck {
    /// `true` only for [`NirCheck::Valid`].
    #[must_use]
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid)
    }
}

/// Human label of an INS-NIR identifier system, or `None` if `system` is not one of
/// [`OID_INS_NIR`], [`OID_INS_NIR_TEST`], [`OID_INS_NIR_DEMO`].
#[must_use]
pub fn ins_nir_label(system: &str) -> Option<&'static str> {
    match system {
        OID_INS_NIR => Some("INS-NIR"),
        OID_INS_NIR_TEST => Some("INS-NIR-TEST"),
        OID_INS_NIR_DEMO => Some("INS-NIR-DEMO"),
        _ => None,
    }
}

/// Checks the structure and the control key of a NIR (INS-NIR value).
///
/// Expects exactly 15 ASCII characters, no spaces: 5 digits, a department of two
/// digits or `2A`/`2B` (case-insensitive), 6 digits, then the 2-digit key. Never
/// panics, whatever the string.
///
/// ```
/// use serment_fhir::{check_nir, NirCheck};
/// assert_eq!(check_nir("255082A00400194"), NirCheck::Valid);
/// assert_eq!(
///     check_nir("189079912345678"),
///     NirCheck::WrongKey { expected: 37, found: 78 }
/// );
/// assert!(matches!(check_nir("1 89"), NirCheck::Malformed(_)));
/// ```
#[must_use]
pub fn check_nir(value: &str) -> NirCheck {
    if !value.is_ascii() {
        return NirCheck::Malformed("contains non-ASCII characters".to_owned());
    }
    let bytes = value.as_bytes();
    if bytes.len() != 15 {
        return NirCheck::Malformed(format!("expected 15 characters, found {}", bytes.len()));
    }
    let mut number: u64 = 0;
    for (pos, &b) in bytes.iter().take(13).enumerate() {
        let digit = match (pos, b) {
            (_, b'0'..=b'9') => u64::from(b - b'0'),
            // Department "2A" → "19", "2B" → "18": the '2' before becomes '1'.
            (6, b'A' | b'a') if bytes.get(5) == Some(&b'2') => 9,
            (6, b'B' | b'b') if bytes.get(5) == Some(&b'2') => 8,
            _ => {
                return NirCheck::Malformed(format!(
                    "unexpected character {:?} at position {}",
                    char::from(b),
                    pos + 1
                ));
            }
        };
        // Corsica: the department's leading '2' counts as '1'.
        let digit = if pos == 5 && matches!(bytes.get(6), Some(b'A' | b'a' | b'B' | b'b')) {
            1
        } else {
            digit
        };
        number = number * 10 + digit;
    }
    let mut found: u8 = 0;
    for (i, &b) in bytes.iter().skip(13).enumerate() {
        if !b.is_ascii_digit() {
            return NirCheck::Malformed(format!(
                "control key must be 2 digits, found {:?} at position {}",
                char::from(b),
                14 + i
            ));
        }
        found = found * 10 + (b - b'0');
    }
    // number < 10^13, so number % 97 < 97 and the key is 1..=97: fits in u8.
    let expected = u8::try_from(97 - number % 97).unwrap_or(u8::MAX);
    if expected == found {
        NirCheck::Valid
    } else {
        NirCheck::WrongKey { expected, found }
    }
}

/// Computes the 2-digit control key of the first 13 characters of a NIR
/// (`2A`/`2B` allowed), or `None` if `first13` is not 13 such characters.
///
/// ```
/// assert_eq!(serment_fhir::nir_key("1890799123456"), Some(37));
/// ```
#[must_use]
pub fn nir_key(first13: &str) -> Option<u8> {
    match check_nir(&format!("{first13}00")) {
        NirCheck::WrongKey { expected, .. } => Some(expected),
        // Key 00 never matches (keys are 1..=97), so Valid cannot happen here.
        NirCheck::Valid | NirCheck::Malformed(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ans_example_has_wrong_key() {
        assert_eq!(
            check_nir("189079912345678"),
            NirCheck::WrongKey {
                expected: 37,
                found: 78
            }
        );
        assert_eq!(check_nir("189079912345637"), NirCheck::Valid);
    }

    #[test]
    fn corsica_departments() {
        // 2A counts as 19, 2B as 18.
        let key_2a = nir_key("1671119004123").unwrap();
        assert_eq!(
            check_nir(&format!("167112A004123{key_2a:02}")),
            NirCheck::Valid
        );
        assert_eq!(
            check_nir(&format!("167112a004123{key_2a:02}")),
            NirCheck::Valid
        );
        let key_2b = nir_key("1671118004123").unwrap();
        assert_eq!(
            check_nir(&format!("167112B004123{key_2b:02}")),
            NirCheck::Valid
        );
        assert_ne!(key_2a, key_2b);
        // A letter anywhere else, or after a department not starting with 2, is malformed.
        assert!(matches!(
            check_nir("167113A00412300"),
            NirCheck::Malformed(_)
        ));
        assert!(matches!(
            check_nir("1A7112000412300"),
            NirCheck::Malformed(_)
        ));
        assert!(matches!(
            check_nir("167112C00412300"),
            NirCheck::Malformed(_)
        ));
    }

    #[test]
    fn malformed_values() {
        for v in [
            "",
            "18907991234567",
            "1890799123456780",
            "1 89 07 99 123 456 78",
        ] {
            assert!(matches!(check_nir(v), NirCheck::Malformed(_)), "{v:?}");
        }
        assert!(matches!(
            check_nir("1890799123456é7"),
            NirCheck::Malformed(_)
        ));
        assert!(matches!(
            check_nir("18907991234567X"),
            NirCheck::Malformed(_)
        ));
        assert_eq!(nir_key("12"), None);
    }

    #[test]
    fn labels() {
        assert_eq!(ins_nir_label(OID_INS_NIR), Some("INS-NIR"));
        assert_eq!(ins_nir_label(OID_INS_NIR_TEST), Some("INS-NIR-TEST"));
        assert_eq!(ins_nir_label(OID_INS_NIR_DEMO), Some("INS-NIR-DEMO"));
        assert_eq!(ins_nir_label("urn:oid:1.2.250.1.213.1.4.9"), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = check_nir(&s);
            let _ = nir_key(&s);
        }

        #[test]
        fn never_panics_on_nir_like(s in "[0-9AaBb ]{0,17}") {
            let _ = check_nir(&s);
        }

        #[test]
        fn computed_key_is_valid_and_others_are_not(
            head in "[12][0-9]{4}",
            dept in "([0-9]{2}|2A|2B)",
            tail in "[0-9]{6}",
            wrong in 0u8..100,
        ) {
            let first13 = format!("{head}{dept}{tail}");
            let key = nir_key(&first13).unwrap();
            prop_assert!((1..=97).contains(&key));
            prop_assert_eq!(check_nir(&format!("{first13}{key:02}")), NirCheck::Valid);
            if wrong != key {
                prop_assert_eq!(
                    check_nir(&format!("{first13}{wrong:02}")),
                    NirCheck::WrongKey { expected: key, found: wrong }
                );
            }
        }
    }
}

//! `docs/THREAT_MODEL.md`'s "Checks removed on purpose" table is the evidence that each check
//! has a test that fails without it: each row has its own number (review R13: two branches
//! merged with the same M39/M40 for different checks, which made the table ambiguous).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

/// The label of an M-row (`| M12 (issue 15) | ...` -> `M12`, `| M17b ...` -> `M17b`), if `line`
/// is one.
fn m_label(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("| M")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let suffix = rest
        .get(digits..)?
        .bytes()
        .take_while(u8::is_ascii_lowercase)
        .count();
    line.get(2..3 + digits + suffix)
}

#[test]
fn threat_model_m_rows_have_unique_numbers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/THREAT_MODEL.md");
    let text = std::fs::read_to_string(path).expect("docs/THREAT_MODEL.md");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dup = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(label) = m_label(line)
            && let Some(first) = seen.insert(label, n + 1)
        {
            dup.push(format!("{label}: lines {first} and {}", n + 1));
        }
    }
    assert!(
        seen.len() >= 40,
        "the table was not found ({} rows)",
        seen.len()
    );
    assert!(
        dup.is_empty(),
        "M-rows sharing a number (take the next free one): {dup:?}"
    );
}

#[test]
fn m_label_reads_numbers_and_suffixes_only() {
    assert_eq!(m_label("| M12 (issue 15) | x |"), Some("M12"));
    assert_eq!(m_label("| M17b (issue 16, re-run) | x |"), Some("M17b"));
    assert_eq!(m_label("| M1 | x |"), Some("M1"));
    assert_eq!(m_label("| Metadata | x |"), None);
    assert_eq!(m_label("| # | check removed |"), None);
}

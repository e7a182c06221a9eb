//! Every wire and disk format of the workspace starts with its own 4-byte magic (PROTOCOL.md,
//! each format's box): that is what lets a reader refuse an object of another kind before it
//! parses a field. Review REVIEW3 S4 found three collisions (the claim had the keystore's `SRMK`,
//! the provisional escrow the team key wrap's `SRME`, the provisional record and the recovery
//! escrow both `SRMQ`).
//!
//! The test reads every `*MAGIC*` constant of every crate's `src/` (so a new format is covered
//! without editing this file), checks the list names the formats we know, and asserts the magics
//! are distinct.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(file:line, constant name, magic)` of every `const ..MAGIC..: .. = b"XXXX";` line.
fn magic_constants() -> Vec<(String, String, String)> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for c in std::fs::read_dir(&crates).unwrap() {
        let src = c.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim_start();
            let Some(rest) = l
                .strip_prefix("pub const ")
                .or_else(|| l.strip_prefix("pub(crate) const "))
                .or_else(|| l.strip_prefix("const "))
            else {
                continue;
            };
            let name = rest.split(':').next().unwrap_or("").trim();
            if !name.contains("MAGIC") {
                continue;
            }
            let Some(start) = rest.find("b\"") else {
                continue;
            };
            let magic: String = rest[start + 2..]
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            found.push((format!("{}:{}", f.display(), n + 1), name.to_owned(), magic));
        }
    }
    found
}

#[test]
fn every_format_magic_of_the_workspace_is_distinct() {
    let found = magic_constants();
    let mut by_magic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (at, name, magic) in &found {
        assert_eq!(magic.len(), 4, "{name} at {at}: a magic is 4 bytes");
        by_magic
            .entry(magic.as_str())
            .or_default()
            .push(format!("{name} ({at})"));
    }
    let clashes: Vec<_> = by_magic.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(clashes.is_empty(), "format magics used twice: {clashes:#?}");
    // The scan must see the formats we know, or it is broken and the check above asserts nothing.
    for known in [
        "SRMK", "SRMJ", "SRMF", "SRMQ", "SRME", "SRMW", "SRMD", "SRML", "SRMC", "SRMT", "SRMG",
        "SRMP", "SRMZ", "SRMS",
    ] {
        assert!(
            found.iter().any(|(_, _, m)| m == known),
            "no MAGIC constant {known} found: {found:?}"
        );
    }
}

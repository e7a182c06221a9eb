//! `docs/CONFIG.md` is generated from the one `Config` definition (issue 18 item 4) and checked
//! here. After changing a setting, regenerate it with
//! `SERMENT_BLESS=1 cargo test -p serment-server --test config_reference`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use serment_server::Config;
use serment_server::config::reference::{SETTINGS, markdown};

#[test]
fn every_config_field_has_one_reference_entry() {
    let fields: BTreeSet<String> = serde_json::to_value(Config::default())
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let keys: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    let documented: BTreeSet<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    assert_eq!(keys.len(), documented.len(), "a key is listed twice");
    assert_eq!(fields, documented, "Config fields and SETTINGS differ");
    for s in SETTINGS {
        assert!(!s.bounds().is_empty(), "{} has no bounds", s.key);
        assert!(!s.doc.is_empty() && !s.unit.is_empty(), "{}", s.key);
        // Every key is a TOML key the parser accepts, with its default value.
        let toml_value = match s.default_text().as_str() {
            "(none)" => continue,
            v => v.to_owned(),
        };
        Config::from_toml(&format!("{} = {toml_value}\n", s.key))
            .unwrap_or_else(|e| panic!("{}: {e}", s.key));
    }
}

#[test]
fn config_md_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/CONFIG.md");
    let expected = markdown();
    if std::env::var_os("SERMENT_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/CONFIG.md is out of date: run `SERMENT_BLESS=1 cargo test -p serment-server --test config_reference`"
    );
}

#[test]
fn a_bad_witness_list_says_what_is_expected() {
    let err = Config::from_toml("witnesses = \"abc\"\n").unwrap_err();
    assert!(
        err.to_string().contains("C2SP witness verifier keys"),
        "{err}"
    );
    let err = Config {
        witnesses: vec!["not-a-key".into()],
        ..Config::default()
    }
    .validate()
    .unwrap_err();
    assert!(
        err.to_string().contains("<name>+<key id hex>+<base64 key>"),
        "{err}"
    );
}

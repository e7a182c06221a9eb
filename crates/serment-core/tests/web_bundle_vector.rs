//! The web bundle vector (PROTOCOL.md §11.3 kind 8, `tests/vectors/web-bundle.json`): a bundle of
//! three small assets, its manifest and bundle hash, and the log entry carrying it, signed by the
//! log key of seed `03`×32 (the §11.10 test log); and negative cases (a flipped asset byte, a
//! renamed asset, an extra asset, a flipped signature, another log key), each with its verdict.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test web_bundle_vector`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use serment_core::log::bundle::{WebBundle, bundle_hash, manifest};
use serment_core::log::entry::{EntryKind, LogEntry, Payload, Subject, encode_entry};
use serment_core::log::tree::leaf_hash;

fn file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/web-bundle.json")
}

fn assets() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (
            "/".to_owned(),
            b"<!doctype html><script type=\"module\" src=\"/assets/app.js\"></script>".to_vec(),
        ),
        (
            "/assets/app.js".to_owned(),
            b"new Worker('/assets/worker.js', { type: 'module' });\n".to_vec(),
        ),
        (
            "/assets/worker.js".to_owned(),
            b"self.onmessage = () => {};\n".to_vec(),
        ),
    ])
}

fn generate() -> Value {
    let a = assets();
    let log = SigningKey::from_bytes(&[3; 32]);
    let hash = bundle_hash(&a).unwrap();
    let payload = WebBundle::sign(&log, &hash, "0.1.0").unwrap();
    let entry = encode_entry(EntryKind::Bundle, 1_700_000_001, None, &payload).unwrap();
    json!({
        "description": "PROTOCOL.md §11.3 kind 8: a web bundle, its manifest and hash, and its log entry signed by the log key of seed 03x32",
        "log_seed": hex::encode([3u8; 32]),
        "log_public_key": hex::encode(log.verifying_key().to_bytes()),
        "server_version": "0.1.0",
        "logged_at": 1_700_000_001u64,
        "assets": a.iter().map(|(p, b)| json!({ "path": p, "text": String::from_utf8(b.clone()).unwrap() })).collect::<Vec<_>>(),
        "manifest": manifest(&a).unwrap(),
        "bundle_hash": hex::encode(hash),
        "payload": hex::encode(&payload),
        "entry": hex::encode(&entry),
        "leaf_hash": hex::encode(leaf_hash(&entry)),
        "negative": [
            { "case": "an asset byte flipped", "mutate": "flip_asset", "path": "/assets/worker.js", "expect": "other_hash" },
            { "case": "an asset renamed", "mutate": "rename_asset", "path": "/assets/worker.js", "to": "/assets/worker2.js", "expect": "other_hash" },
            { "case": "an asset added", "mutate": "add_asset", "path": "/assets/extra.js", "expect": "other_hash" },
            { "case": "the entry's signature flipped", "mutate": "flip_signature", "expect": "bad_signature" },
            { "case": "verified with another log key (seed 04x32)", "mutate": "other_log_key", "expect": "bad_signature" }
        ]
    })
}

fn load_assets(v: &Value) -> BTreeMap<String, Vec<u8>> {
    v["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_owned(),
                a["text"].as_str().unwrap().as_bytes().to_vec(),
            )
        })
        .collect()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn web_bundle_vector() {
    let path = file();
    if std::env::var_os("SERMENT_REGEN_VECTORS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&generate()).unwrap() + "\n",
        )
        .unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // The file is what this implementation computes from its inputs...
    assert_eq!(
        v,
        generate(),
        "regenerate only after a deliberate format change"
    );
    // ...and its values check on their own.
    let a = load_assets(&v);
    assert_eq!(manifest(&a).unwrap(), v["manifest"].as_str().unwrap());
    let hash = bundle_hash(&a).unwrap();
    assert_eq!(hex::encode(hash), v["bundle_hash"].as_str().unwrap());
    let entry_bytes = unhex(&v["entry"]);
    assert_eq!(
        hex::encode(leaf_hash(&entry_bytes)),
        v["leaf_hash"].as_str().unwrap()
    );
    let e = LogEntry::decode(&entry_bytes).unwrap();
    assert_eq!(e.kind, EntryKind::Bundle);
    assert_eq!(e.subject(), Subject::WebBundle);
    assert_eq!(e.payload_bytes, unhex(&v["payload"]));
    let Payload::Bundle(b) = &e.payload else {
        panic!("not a bundle")
    };
    let log_key: [u8; 32] = unhex(&v["log_public_key"]).try_into().unwrap();
    b.verify(&log_key).unwrap();
    assert_eq!(b.bundle_hash, hash);
    assert_eq!(b.server_version, v["server_version"].as_str().unwrap());

    for n in v["negative"].as_array().unwrap() {
        let case = n["case"].as_str().unwrap();
        let mut a = load_assets(&v);
        let mut payload = unhex(&v["payload"]);
        let mut key = log_key;
        match n["mutate"].as_str().unwrap() {
            "flip_asset" => a.get_mut(n["path"].as_str().unwrap()).unwrap()[0] ^= 1,
            "rename_asset" => {
                let b = a.remove(n["path"].as_str().unwrap()).unwrap();
                a.insert(n["to"].as_str().unwrap().to_owned(), b);
            }
            "add_asset" => {
                a.insert(n["path"].as_str().unwrap().to_owned(), Vec::new());
            }
            "flip_signature" => *payload.last_mut().unwrap() ^= 1,
            "other_log_key" => {
                key = SigningKey::from_bytes(&[4; 32]).verifying_key().to_bytes();
            }
            m => panic!("unknown mutation {m}"),
        }
        let got = if bundle_hash(&a).unwrap() != b.bundle_hash {
            "other_hash"
        } else {
            match WebBundle::decode(&payload).and_then(|b| b.verify(&key)) {
                Ok(()) => "ok",
                Err(serment_core::Error::BadSignature { .. }) => "bad_signature",
                Err(e) => panic!("{case}: {e}"),
            }
        };
        assert_eq!(got, n["expect"].as_str().unwrap(), "{case}");
    }
}

//! The erasure tombstone vector (PROTOCOL.md §11.3 kind 9, `tests/vectors/erasure.json`): a
//! tombstone for document `07`×16, reason 2 (sent in error), signed by the device of test seed
//! `02`×32 (the §11.10 device), in a log entry chained after a wrap entry at index 5; and negative
//! cases (signature flipped, another device's key, reason 0 and 5, version 2, suite 2, truncated,
//! a trailing byte), each with its verdict.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test erasure_vector`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serment_core::identity::DeviceSecret;
use serment_core::ids::DocId;
use serment_core::log::entry::{EntryKind, LogEntry, Payload, PrevLink, Subject, encode_entry};
use serment_core::log::erasure::{Erasure, ErasureReason};
use serment_core::log::tree::leaf_hash;

fn file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/erasure.json")
}

const AT: u64 = 1_700_000_100;
const LOGGED_AT: u64 = 1_700_000_101;

fn prev() -> PrevLink {
    PrevLink {
        index: 5,
        leaf_hash: [0x11; 32],
    }
}

fn generate() -> Value {
    let dev = DeviceSecret::from_test_seed(&[2; 32]);
    let doc = DocId::from_bytes([7; 16]);
    let payload = Erasure::sign(&doc, ErasureReason::SentInError, &dev, AT);
    let entry = encode_entry(EntryKind::Erasure, LOGGED_AT, Some(prev()), &payload).unwrap();
    json!({
        "description": "PROTOCOL.md §11.3 kind 9: an erasure tombstone for document 07x16, reason 2 (sent-in-error), signed by the device of test seed 02x32 over sig_input(\"log-erasure\", all bytes before the signature), in an entry whose previous entry of the same document is index 5 (leaf hash 11x32)",
        "device_test_seed": hex::encode([2u8; 32]),
        "device_signing_public_key": hex::encode(dev.signing_public_key()),
        "device_id": dev.id().to_string(),
        "doc_id": doc.to_string(),
        "reason": 2,
        "reason_name": "sent-in-error",
        "at": AT,
        "logged_at": LOGGED_AT,
        "prev_index": 5,
        "prev_hash": hex::encode([0x11u8; 32]),
        "payload": hex::encode(&payload),
        "entry": hex::encode(&entry),
        "leaf_hash": hex::encode(leaf_hash(&entry)),
        "negative": [
            { "case": "the signature flipped", "mutate": "flip_last", "expect": "bad_signature" },
            { "case": "the doc id flipped (signed bytes changed)", "mutate": "flip", "offset": 8, "expect": "bad_signature" },
            { "case": "verified with another device's key (test seed 03x32)", "mutate": "other_device", "expect": "wrong_signer" },
            { "case": "reason 0", "mutate": "set", "offset": 24, "value": 0, "expect": "invalid_field" },
            { "case": "reason 5", "mutate": "set", "offset": 24, "value": 5, "expect": "invalid_field" },
            { "case": "format version 2", "mutate": "set", "offset": 5, "value": 2, "expect": "unsupported" },
            { "case": "suite 2", "mutate": "set", "offset": 7, "value": 2, "expect": "unsupported" },
            { "case": "magic SRMX (a removal's)", "mutate": "set", "offset": 3, "value": 88, "expect": "bad_magic" },
            { "case": "truncated by one byte", "mutate": "truncate", "expect": "truncated" },
            { "case": "one trailing byte", "mutate": "extend", "expect": "trailing_bytes" }
        ]
    })
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn verdict(r: serment_core::Result<()>) -> &'static str {
    use serment_core::Error;
    match r {
        Ok(()) => "ok",
        Err(Error::BadSignature { .. }) => "bad_signature",
        Err(Error::WrongSigner { .. }) => "wrong_signer",
        Err(Error::InvalidField { .. }) => "invalid_field",
        Err(Error::UnsupportedVersion { .. } | Error::UnsupportedSuite { .. }) => "unsupported",
        Err(Error::BadMagic { .. }) => "bad_magic",
        Err(Error::Truncated { .. }) => "truncated",
        Err(Error::TrailingBytes { .. }) => "trailing_bytes",
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

#[test]
fn erasure_vector() {
    let path = file();
    if std::env::var_os("SERMENT_REGEN_VECTORS").is_some() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&generate()).unwrap() + "\n",
        )
        .unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        v,
        generate(),
        "regenerate only after a deliberate format change"
    );
    let entry_bytes = unhex(&v["entry"]);
    assert_eq!(
        hex::encode(leaf_hash(&entry_bytes)),
        v["leaf_hash"].as_str().unwrap()
    );
    let e = LogEntry::decode(&entry_bytes).unwrap();
    assert_eq!(e.kind, EntryKind::Erasure);
    assert_eq!(e.logged_at, LOGGED_AT);
    assert_eq!(e.prev, Some(prev()));
    let doc = DocId::from_hex(v["doc_id"].as_str().unwrap()).unwrap();
    assert_eq!(e.subject(), Subject::Document(doc));
    assert_eq!(e.payload_bytes, unhex(&v["payload"]));
    let Payload::Erasure(t) = &e.payload else {
        panic!("not an erasure")
    };
    let key: [u8; 32] = unhex(&v["device_signing_public_key"]).try_into().unwrap();
    t.verify(&key).unwrap();
    assert_eq!(t.doc_id, doc);
    assert_eq!(t.reason.code(), 2);
    assert_eq!(t.reason.name(), v["reason_name"].as_str().unwrap());
    assert_eq!(
        t.requester_device.to_string(),
        v["device_id"].as_str().unwrap()
    );
    assert_eq!(t.at, AT);

    for n in v["negative"].as_array().unwrap() {
        let case = n["case"].as_str().unwrap();
        let mut p = unhex(&v["payload"]);
        let mut k = key;
        match n["mutate"].as_str().unwrap() {
            "flip_last" => *p.last_mut().unwrap() ^= 1,
            "flip" => p[n["offset"].as_u64().unwrap() as usize] ^= 1,
            "set" => p[n["offset"].as_u64().unwrap() as usize] = n["value"].as_u64().unwrap() as u8,
            "other_device" => k = DeviceSecret::from_test_seed(&[3; 32]).signing_public_key(),
            "truncate" => {
                p.pop();
            }
            "extend" => p.push(0),
            m => panic!("unknown mutation {m}"),
        }
        let got = verdict(Erasure::decode(&p).and_then(|t| t.verify(&k)));
        assert_eq!(got, n["expect"].as_str().unwrap(), "{case}");
    }
}

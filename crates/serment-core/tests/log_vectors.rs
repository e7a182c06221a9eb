//! Test vectors of the transparency log (PROTOCOL.md §11.10): a log entry and a checkpoint made
//! from fixed seeds. The test re-derives both and checks that PROTOCOL.md shows exactly these
//! bytes, so the document and the code cannot drift apart.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::{EntryKind, LogEntry, encode_entry};
use serment_core::log::note::{Checkpoint, KEY_TYPE_ED25519, NoteSigner, SignedCheckpoint};
use serment_core::log::tree::{self, MemoryTree};

fn vectors() -> (String, String, String, String) {
    let id = IdentitySecret::from_seed(&[1; 32]);
    let dev = DeviceSecret::from_test_seed(&[2; 32]);
    let record = id.sign_device_record("alice", &dev, 1_700_000_000).unwrap();
    let entry = encode_entry(EntryKind::Device, 1_700_000_001, None, &record).unwrap();
    LogEntry::decode(&entry).unwrap();
    let mut t = MemoryTree::new();
    t.push_entry(&entry).unwrap();
    let log = NoteSigner::new("serment.log/test-vector", KEY_TYPE_ED25519, &[3; 32]).unwrap();
    let note = log
        .sign_checkpoint(&Checkpoint {
            origin: "serment.log/test-vector".into(),
            size: 1,
            root: t.root_at(1).unwrap(),
        })
        .unwrap()
        .encode()
        .unwrap();
    let s = SignedCheckpoint::parse(&note).unwrap();
    s.verify_log_signature(&log.verifier()).unwrap();
    (
        hex::encode(&entry),
        hex::encode(tree::leaf_hash(&entry)),
        note,
        log.verifier().encode(),
    )
}

#[test]
fn protocol_md_shows_the_log_vectors() {
    let (entry, leaf, note, vkey) = vectors();
    if std::env::var_os("SERMENT_PRINT_LOG_VECTORS").is_some() {
        println!("ENTRY {entry}\nLEAF {leaf}\nVKEY {vkey}\nNOTE\n{note}");
    }
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md"),
    )
    .unwrap();
    let flat: String = doc.split_whitespace().collect();
    for (what, v) in [("entry", &entry), ("leaf hash", &leaf), ("vkey", &vkey)] {
        assert!(
            flat.contains(v.as_str()),
            "PROTOCOL.md §11.10 lacks the {what} vector {v}"
        );
    }
    assert!(
        doc.contains(&note),
        "PROTOCOL.md §11.10 lacks the checkpoint note:\n{note}"
    );
}

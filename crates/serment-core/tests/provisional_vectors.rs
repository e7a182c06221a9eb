//! Vectors of provisional recipients (PROTOCOL.md §15.5): a record (log entry kind 10), its
//! escrow, a claim code and a claim (kind 11) from fixed seeds, with negative cases, each with the
//! error it must give.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test provisional_vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serment_core::identity::DeviceSecret;
use serment_core::log::entry::{EntryKind, LogEntry, Payload, encode_entry};
use serment_core::log::history::ChainEntry;
use serment_core::provisional::{
    Claim, ClaimCode, Contact, ProvisionalRecord, contact_key, open_escrow, replay_provisional,
    seal_escrow,
};
use serment_core::{Error, KeyId};

fn file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/provisional.json")
}

const CONTACT: &str = "email:ana@patients.example,ins:185057800608491";
const CREATED_AT: u64 = 1_800_000_000;
const CLAIMED_AT: u64 = 1_800_000_600;

struct Inputs {
    lab: DeviceSecret,
    prov: DeviceSecret,
    claimant: DeviceSecret,
    code: ClaimCode,
    share: [u8; 32],
    tag: [u8; 32],
}

fn inputs() -> Inputs {
    let key = contact_key(&[6; 32]);
    Inputs {
        lab: DeviceSecret::from_test_seed_hybrid(&[1; 32]),
        prov: DeviceSecret::from_test_seed_hybrid(&[2; 32]),
        claimant: DeviceSecret::from_test_seed_hybrid(&[3; 32]),
        code: ClaimCode::from_secret([4; 16]),
        share: [5; 32],
        tag: Contact::parse(CONTACT).unwrap().tag(&key),
    }
}

fn build() -> Value {
    let i = inputs();
    let record = ProvisionalRecord::sign(&i.prov, &i.tag, &i.lab, CREATED_AT).unwrap();
    let escrow = seal_escrow(&i.prov, &i.code, &i.share).unwrap();
    let claim = Claim::sign(&i.prov, "ana", &i.claimant, CLAIMED_AT).unwrap();
    let flip = |b: &[u8], at: usize| {
        let mut v = b.to_vec();
        v[at] ^= 1;
        hex::encode(v)
    };
    // A claim signed by another key than the record's: accepted alone, refused in the chain.
    let other = DeviceSecret::from_test_seed_hybrid(&[7; 32]);
    let foreign_claim = Claim::sign(&other, "ana", &i.claimant, CLAIMED_AT).unwrap();
    json!({
        "inputs": {
            "lab_device_seed": hex::encode([1u8; 32]),
            "provisional_seed": hex::encode([2u8; 32]),
            "claimant_device_seed": hex::encode([3u8; 32]),
            "claim_secret": hex::encode([4u8; 16]),
            "server_share": hex::encode(i.share),
            "lab_identity_seed": hex::encode([6u8; 32]),
            "contact": CONTACT,
            "created_at": CREATED_AT,
            "claimed_at": CLAIMED_AT,
            "claimant_handle": "ana",
        },
        "claim_code": i.code.display().as_str(),
        "lookup": hex::encode(i.code.lookup()),
        "contact_tag": hex::encode(i.tag),
        "provisional_id": i.prov.id().to_string(),
        "record": hex::encode(&record),
        "escrow": hex::encode(&escrow),
        "claim": hex::encode(&claim),
        "negative": [
            { "what": "record", "case": "lab signature byte flipped", "bytes": flip(&record, record.len() - 1), "error": "bad_signature" },
            { "what": "record", "case": "contact tag byte flipped", "bytes": flip(&record, 4 + 2 + 2 + 32 + 32 + 1216), "error": "bad_signature" },
            { "what": "record", "case": "relabelled suite 2", "bytes": flip(&record, 7), "error": "unsupported_suite" },
            { "what": "escrow", "case": "sealed byte flipped", "bytes": flip(&escrow, 60), "error": "decrypt" },
            { "what": "escrow", "case": "provisional id byte flipped (the AEAD's associated data)", "bytes": flip(&escrow, 10), "error": "decrypt" },
            { "what": "claim", "case": "provisional signature byte flipped", "bytes": flip(&claim, claim.len() - 65), "error": "bad_signature" },
            { "what": "claim", "case": "device signature byte flipped", "bytes": flip(&claim, claim.len() - 1), "error": "bad_signature" },
            { "what": "chain", "case": "claim by another key than the record's", "bytes": hex::encode(&foreign_claim), "error": "history" },
            { "what": "claim_code", "case": "one character changed", "code": typo(i.code.display().as_str()), "error": "invalid_field" },
        ],
    })
}

fn typo(code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    c[0] = if c[0] == 'A' { 'B' } else { 'A' };
    c.into_iter().collect()
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::BadSignature { .. } => "bad_signature",
        Error::UnsupportedSuite { .. } => "unsupported_suite",
        Error::Decrypt => "decrypt",
        Error::History { .. } => "history",
        Error::InvalidField { .. } => "invalid_field",
        _ => "other",
    }
}

fn chain(entries: &[(EntryKind, &[u8])]) -> Vec<ChainEntry> {
    let mut out: Vec<ChainEntry> = Vec::new();
    for (i, (k, payload)) in entries.iter().enumerate() {
        let prev = out.last().map(ChainEntry::link);
        let bytes = encode_entry(*k, CREATED_AT, prev, payload).unwrap();
        out.push(ChainEntry {
            index: i as u64,
            entry: LogEntry::decode(&bytes).unwrap(),
            bytes,
        });
    }
    out
}

#[test]
fn provisional_vectors_match_and_negative_cases_fail() {
    let built = build();
    if std::env::var("SERMENT_REGEN_VECTORS").as_deref() == Ok("1") {
        std::fs::write(file(), serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file()).unwrap()).unwrap();
    assert_eq!(
        v, built,
        "tests/vectors/provisional.json differs from what the code makes"
    );

    let h = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
    let i = inputs();
    // The record: decodes, names the provisional recipient, as a kind-10 entry too.
    let record = ProvisionalRecord::decode_verified(&h("record")).unwrap();
    assert_eq!(
        record.id().to_string(),
        v["provisional_id"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(record.contact_tag),
        v["contact_tag"].as_str().unwrap()
    );
    assert_eq!(record.lab_device(), i.lab.id());
    let claim_bytes = h("claim");
    let c = chain(&[
        (EntryKind::Provisional, &h("record")),
        (EntryKind::Claim, &claim_bytes),
    ]);
    assert!(matches!(c[0].entry.payload, Payload::Provisional(_)));
    let st = replay_provisional(&c).unwrap();
    let (claim, _) = st.claim.unwrap();
    assert_eq!(claim.handle, "ana");
    assert_eq!(claim.device_id(), i.claimant.id());
    // A second claim is refused.
    let c2 = chain(&[
        (EntryKind::Provisional, &h("record")),
        (EntryKind::Claim, &claim_bytes),
        (EntryKind::Claim, &claim_bytes),
    ]);
    assert!(matches!(
        replay_provisional(&c2),
        Err(Error::History { .. })
    ));
    // The escrow opens with the code and the share only.
    let code = ClaimCode::parse(v["claim_code"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(code.lookup()), v["lookup"].as_str().unwrap());
    let share: [u8; 32] = hex::decode(v["inputs"]["server_share"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let opened = open_escrow(&h("escrow"), &code, &share).unwrap();
    assert_eq!(
        opened.id(),
        KeyId::from_hex(v["provisional_id"].as_str().unwrap()).unwrap()
    );

    for n in v["negative"].as_array().unwrap() {
        let want = n["error"].as_str().unwrap();
        let bytes = || hex::decode(n["bytes"].as_str().unwrap()).unwrap();
        let got = match n["what"].as_str().unwrap() {
            "record" => ProvisionalRecord::decode_verified(&bytes()).map(|_| ()),
            "escrow" => open_escrow(&bytes(), &code, &share).map(|_| ()),
            "claim" => Claim::decode_verified(&bytes()).map(|_| ()),
            "chain" => {
                let b = bytes();
                replay_provisional(&chain(&[
                    (EntryKind::Provisional, &h("record")),
                    (EntryKind::Claim, &b),
                ]))
                .map(|_| ())
            }
            "claim_code" => ClaimCode::parse(n["code"].as_str().unwrap()).map(|_| ()),
            w => panic!("unknown vector kind {w}"),
        };
        match got {
            Ok(()) => panic!("negative case {n} was accepted"),
            Err(e) => assert_eq!(kind(&e), want, "{n}: {e}"),
        }
    }
}

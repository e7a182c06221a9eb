//! Vectors of care teams (PROTOCOL.md §12.6): a creation change (log entry kind 7), its epoch id,
//! the epoch secret wrapped to the creator's device, a DEK wrapped to the epoch (§7 with a team
//! recipient), and negative cases, each with the error it must give.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test team_vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::{EntryKind, LogEntry, Payload, encode_entry};
use serment_core::team::{
    EpochSecret, TeamChange, TeamChangeBody, TeamKeyWrap, TeamOp, TeamRole, epoch_id,
    unwrap_epoch_secret, wrap_epoch_secret,
};
use serment_core::wrap::{Recipient, WrappedKey, unwrap_dek_for_epoch, wrap_dek};
use serment_core::{DocId, Error};
use zeroize::Zeroizing;

const TEAM: &str = "cardio-chu";

fn file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/team.json")
}

struct Inputs {
    dev: DeviceSecret,
    secret: EpochSecret,
    change: Vec<u8>,
}

fn inputs() -> Inputs {
    let id = IdentitySecret::from_seed(&[1; 32]);
    let dev = DeviceSecret::from_test_seed_hybrid(&[2; 32]);
    let secret = EpochSecret::from_test_seed(&[4; 32]).unwrap();
    let change = TeamChange::sign(
        &TeamChangeBody {
            team: TEAM.into(),
            epoch: 1,
            op: TeamOp::Create,
            member: "alice".into(),
            member_identity: id.public_key(),
            role: TeamRole::Admin,
            epoch_key: secret.public().clone(),
            signer: "alice".into(),
            at: 1_700_000_000,
        },
        &dev,
    )
    .unwrap();
    Inputs {
        dev,
        secret,
        change,
    }
}

fn generate() -> Value {
    let i = inputs();
    let eid = epoch_id(TEAM, 1, i.secret.public());
    let key_wrap = wrap_epoch_secret(
        &i.secret,
        TEAM,
        1,
        &Recipient::from_device(&i.dev),
        &i.dev,
        &mut ChaCha20Rng::from_seed([0x99; 32]),
    )
    .unwrap();
    let dek = Zeroizing::new([0x42; 32]);
    let doc = DocId::from_bytes([0x05; 16]);
    let dek_wrap = wrap_dek(
        &dek,
        &doc,
        1,
        &[0x33; 32],
        &i.secret.recipient(TEAM, 1),
        &i.dev,
        &mut ChaCha20Rng::from_seed([0x98; 32]),
    )
    .unwrap();
    let entry = encode_entry(EntryKind::Team, 1_700_000_001, None, &i.change).unwrap();
    json!({
        "description": "A care team (PROTOCOL.md §12): creation of team `cardio-chu` by `alice` (identity seed 0x01.., hybrid device test seed 0x02..), epoch 1 whose X-Wing key is DeriveKeyPair(0x04..), at 1700000000; the log entry (kind 7, logged_at 1700000001, no predecessor); the epoch id; the epoch secret wrapped to alice's device (HPKE randomness ChaCha20Rng seed 0x99..); a DEK 0x42.. of document 0x05.. version 1 (header hash 0x33..) wrapped to the epoch (ChaCha20Rng seed 0x98..)",
        "team": TEAM,
        "epoch_public_key": hex::encode(i.secret.public().as_bytes()),
        "epoch_secret": hex::encode(i.secret.seed().as_ref()),
        "change": hex::encode(&i.change),
        "entry": hex::encode(&entry),
        "epoch_id": eid.to_string(),
        "key_wrap": hex::encode(&key_wrap),
        "key_wrap_info": hex::encode(
            [b"serment/v1/team-key".as_slice(), &[0, 0, 3, TEAM.len() as u8], TEAM.as_bytes(), &1u32.to_be_bytes(), i.dev.id().as_bytes()].concat()
        ),
        "dek": hex::encode(dek.as_ref()),
        "dek_wrap": hex::encode(&dek_wrap),
        "negative": [
            {"name": "change signature flipped", "flip": i.change.len() - 1, "expect": "bad_signature"},
            {"name": "change suite 1", "flip": 7, "xor": 2, "expect": "unsupported_suite"},
            {"name": "change op 9", "flip": 4 + 2 + 2 + 1 + TEAM.len() + 4, "xor": 8, "expect": "invalid_field"},
            {"name": "change epoch_key flipped", "flip": 200, "expect": "bad_signature"},
            {"name": "key wrap epoch_id flipped", "what": "key_wrap", "flip": 4 + 2 + 2 + 1 + TEAM.len() + 4, "expect": "team"},
            {"name": "key wrap ciphertext flipped", "what": "key_wrap", "flip": 4 + 2 + 2 + 1 + TEAM.len() + 4 + 96 + 1120, "expect": "decrypt"},
        ],
    })
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::BadSignature { .. } => "bad_signature",
        Error::UnsupportedSuite { .. } => "unsupported_suite",
        Error::InvalidField { .. } => "invalid_field",
        Error::Team { .. } => "team",
        Error::Decrypt => "decrypt",
        _ => "other",
    }
}

#[test]
fn team_vector_matches_the_implementation() {
    let v = generate();
    if std::env::var_os("SERMENT_REGEN_VECTORS").is_some() {
        std::fs::write(file(), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(file()).unwrap()).unwrap();
    assert_eq!(
        stored, v,
        "team.json differs from what the code produces today"
    );
}

fn h(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap()).unwrap()
}

#[test]
fn team_vector_verifies_opens_and_its_negatives_fail() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file()).unwrap()).unwrap();
    let i = inputs();
    // The entry decodes as a kind-7 team change about `cardio-chu`, its signature checked.
    let e = LogEntry::decode(&h(&v, "entry")).unwrap();
    let Payload::Team(c) = &e.payload else {
        panic!("not a team change")
    };
    assert_eq!(c.body.op, TeamOp::Create);
    assert_eq!(c.body.epoch, 1);
    assert_eq!(c.signer_device(), i.dev.id());
    assert_eq!(
        c.body.epoch_key.as_bytes().as_slice(),
        h(&v, "epoch_public_key")
    );
    let eid = epoch_id(TEAM, 1, &c.body.epoch_key);
    assert_eq!(eid.to_string(), v["epoch_id"].as_str().unwrap());
    // The key wrap opens to the logged epoch key on alice's device.
    let kw = TeamKeyWrap::decode(&h(&v, "key_wrap")).unwrap();
    kw.verify_signature(&i.dev.signing_public_key()).unwrap();
    let secret = unwrap_epoch_secret(&kw, &i.dev, TEAM, 1, &c.body.epoch_key).unwrap();
    assert_eq!(secret.seed().as_slice(), h(&v, "epoch_secret"));
    // The DEK wrap to the epoch opens with that secret.
    let dw = WrappedKey::decode(&h(&v, "dek_wrap")).unwrap();
    dw.verify_signature(&i.dev.signing_public_key()).unwrap();
    assert_eq!(dw.recipient, eid);
    let dek = unwrap_dek_for_epoch(&dw, &eid, &secret).unwrap();
    assert_eq!(dek.as_slice(), h(&v, "dek"));
    // Served for epoch 2, or against another key, the same wrap is refused.
    let other = EpochSecret::from_test_seed(&[5; 32]).unwrap();
    assert!(matches!(
        unwrap_epoch_secret(&kw, &i.dev, TEAM, 2, &c.body.epoch_key),
        Err(Error::Team { .. })
    ));
    assert!(matches!(
        unwrap_epoch_secret(&kw, &i.dev, TEAM, 1, other.public()),
        Err(Error::Team { .. })
    ));
    for n in v["negative"].as_array().unwrap() {
        let what = n["what"].as_str().unwrap_or("change");
        let mut b = h(&v, what);
        let at = n["flip"].as_u64().unwrap() as usize;
        b[at] ^= n["xor"].as_u64().unwrap_or(1) as u8;
        let got = match what {
            "change" => TeamChange::decode_verified(&b).map(|_| ()),
            _ => TeamKeyWrap::decode(&b)
                .and_then(|w| unwrap_epoch_secret(&w, &i.dev, TEAM, 1, &c.body.epoch_key))
                .map(|_| ()),
        };
        let e = got.expect_err(n["name"].as_str().unwrap());
        assert_eq!(
            error_name(&e),
            n["expect"].as_str().unwrap(),
            "{}: {e:?}",
            n["name"]
        );
    }
}

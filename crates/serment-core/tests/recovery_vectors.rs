//! Vectors of recovery (PROTOCOL.md §4.2): a recovery code from fixed bytes as shown, the escrow it
//! seals (fixed salt and nonce, floor parameters) for a fixed identity and recovery device, a
//! recovery log entry (kind 12), and negative cases, each with the error it must give.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test recovery_vectors`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serment_core::Error;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::keystore::KdfParams;
use serment_core::log::entry::{EntryKind, LogEntry, Payload, Recovery, encode_entry};
use serment_core::recovery::{
    EscrowSecrets, RecoveryCode, escrow_params, open_escrow, seal_escrow_with,
};

const HANDLE: &str = "patient-demo";

fn file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/recovery.json")
}

fn inputs() -> (RecoveryCode, EscrowSecrets, Vec<u8>) {
    let code = RecoveryCode::from_bytes(*b"serment-recovery");
    let secrets = EscrowSecrets {
        identity: IdentitySecret::from_seed(&[0x11; 32]),
        device: DeviceSecret::from_test_seed_hybrid(&[0x22; 32]),
    };
    let new_device = DeviceSecret::from_test_seed_hybrid(&[0x33; 32]);
    let entry = Recovery::sign(
        HANDLE,
        &secrets.identity,
        &secrets.device.id(),
        &new_device.id(),
        1_796_000_000,
    )
    .unwrap();
    (code, secrets, entry)
}

fn generate() -> Value {
    let (code, secrets, entry) = inputs();
    let escrow = seal_escrow_with(
        &code,
        HANDLE,
        &secrets,
        KdfParams::FLOOR,
        [0x44; 16],
        [0x55; 12],
    )
    .unwrap();
    json!({
        "description": "PROTOCOL.md §4.2: a recovery code, its escrow, and a recovery entry (kind 12)",
        "code_bytes_hex": hex::encode(code.secret()),
        "code": code.display().as_str(),
        "handle": HANDLE,
        "identity_seed_hex": hex::encode([0x11u8; 32]),
        "recovery_device_id": secrets.device.id().to_string(),
        "kdf": {"m_cost_kib": 19456, "t_cost": 2, "p_cost": 1},
        "salt_hex": hex::encode([0x44u8; 16]),
        "nonce_hex": hex::encode([0x55u8; 12]),
        "escrow_hex": hex::encode(&escrow),
        "recovery_entry_payload_hex": hex::encode(&entry),
        "negative": [
            {"what": "t_cost 1 (byte 15 = 0x01)", "offset": 15, "value": 1, "error": "weak_kdf"},
            {"what": "suite 2 (byte 7 = 0x02)", "offset": 7, "value": 2, "error": "unsupported_suite"},
            {"what": "version 2 (byte 5 = 0x02)", "offset": 5, "value": 2, "error": "unsupported_version"},
            {"what": "salt flipped (byte 20 xor 1)", "offset": 20, "value": null, "error": "keystore_decrypt"},
            {"what": "tag flipped (last byte xor 1)", "offset": -1, "value": null, "error": "keystore_decrypt"}
        ]
    })
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::WeakKdf { .. } => "weak_kdf",
        Error::UnsupportedSuite { .. } => "unsupported_suite",
        Error::UnsupportedVersion { .. } => "unsupported_version",
        Error::KeystoreDecrypt => "keystore_decrypt",
        _ => "other",
    }
}

#[test]
fn recovery_vectors() {
    if std::env::var("SERMENT_REGEN_VECTORS").is_ok() {
        std::fs::write(
            file(),
            serde_json::to_string_pretty(&generate()).unwrap() + "\n",
        )
        .unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file()).unwrap()).unwrap();
    assert_eq!(v, generate(), "the vectors no longer match the code");
    // The code parses back from its display; the escrow opens to the inputs.
    let code = RecoveryCode::parse(v["code"].as_str().unwrap()).unwrap();
    assert_eq!(hex::encode(code.secret()), v["code_bytes_hex"]);
    let escrow = hex::decode(v["escrow_hex"].as_str().unwrap()).unwrap();
    assert_eq!(escrow_params(&escrow).unwrap(), KdfParams::FLOOR);
    let s = open_escrow(&code, HANDLE, &escrow).unwrap();
    assert_eq!(hex::encode(*s.identity.to_seed()), v["identity_seed_hex"]);
    assert_eq!(s.device.id().to_string(), v["recovery_device_id"]);
    assert!(matches!(
        open_escrow(&code, "another-handle", &escrow),
        Err(Error::KeystoreDecrypt)
    ));
    for n in v["negative"].as_array().unwrap() {
        let mut bad = escrow.clone();
        let off = n["offset"].as_i64().unwrap();
        let i = if off < 0 { bad.len() - 1 } else { off as usize };
        match n["value"].as_u64() {
            Some(x) => bad[i] = x as u8,
            None => bad[i] ^= 1,
        }
        let e = open_escrow(&code, HANDLE, &bad).unwrap_err();
        assert_eq!(error_name(&e), n["error"], "{}", n["what"]);
    }
    // The recovery entry: signature, fields, and its subject is the handle.
    let payload = hex::decode(v["recovery_entry_payload_hex"].as_str().unwrap()).unwrap();
    let r = Recovery::decode_verified(&payload).unwrap();
    assert_eq!(r.handle, HANDLE);
    assert_eq!(r.recovery_device.to_string(), v["recovery_device_id"]);
    let e =
        LogEntry::decode(&encode_entry(EntryKind::Recovery, 1, None, &payload).unwrap()).unwrap();
    assert!(matches!(e.payload, Payload::Recovery(_)));
    let mut forged = payload.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(matches!(
        Recovery::decode_verified(&forged),
        Err(Error::BadSignature { .. })
    ));
}

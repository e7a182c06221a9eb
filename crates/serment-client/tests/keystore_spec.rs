//! PROTOCOL.md §9 `KeystorePayload` matches what the client writes (issue 10 §6): the layout is
//! parsed out of the document, and a freshly written keystore is decrypted and decoded by it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use serment_client::keystore::Keystore;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::keystore::KdfParams;
use zeroize::Zeroizing;

/// `(field, size)` of `KeystorePayload` in PROTOCOL.md; size `None` for the variable tail.
fn documented_layout() -> Vec<(String, Option<usize>)> {
    let md = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md"),
    )
    .unwrap();
    let start = md
        .find("\nKeystorePayload {\n")
        .expect("§9 KeystorePayload")
        + 1;
    md[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('}'))
        .map(|l| {
            let mut w = l.split("//").next().unwrap().split_whitespace();
            let field = w.next().unwrap().to_owned();
            let ty = w.next().unwrap();
            let size = match ty {
                "u16" => Some(2),
                "u32" => Some(4),
                t => t.trim_matches(['[', ']']).parse().ok(),
            };
            (field, size)
        })
        .collect()
}

#[test]
fn keystore_plaintext_follows_protocol_section_9() {
    let layout = documented_layout();
    let names: Vec<&str> = layout.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "payload_version",
            "identity_seed",
            "device_signing",
            "device_encryption",
            "device_hybrid",
            "state_len",
            "state"
        ]
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ks.srmk");
    let pass = "spec passphrase 0123";
    let ks = Keystore::create(
        &path,
        Zeroizing::new(pass.to_owned()),
        "spec-user",
        "Spec User",
        KdfParams::FLOOR,
    )
    .unwrap();
    let file = std::fs::read(&path).unwrap();
    let payload = serment_core::keystore::open(pass.as_bytes(), &file).unwrap();

    // Walk the payload field by field, as documented.
    let mut at = 0usize;
    let mut field = |size: usize| {
        let f = &payload[at..at + size];
        at += size;
        f.to_vec()
    };
    let mut values = std::collections::BTreeMap::new();
    let mut state_len = None;
    for (name, size) in &layout {
        let size = size.or(state_len).expect("only `state` is variable");
        let v = field(size);
        if name == "state_len" {
            state_len = Some(u32::from_be_bytes(v.clone().try_into().unwrap()) as usize);
        }
        values.insert(name.clone(), v);
    }
    assert_eq!(at, payload.len(), "no trailing byte");
    assert_eq!(
        values["payload_version"],
        [0, 2],
        "a new device has a hybrid key"
    );
    let seed: [u8; 32] = values["identity_seed"].clone().try_into().unwrap();
    assert_eq!(IdentitySecret::from_seed(&seed).id(), ks.identity.id());
    let sign: [u8; 32] = values["device_signing"].clone().try_into().unwrap();
    let enc: [u8; 32] = values["device_encryption"].clone().try_into().unwrap();
    let hybrid: [u8; 32] = values["device_hybrid"].clone().try_into().unwrap();
    let device = DeviceSecret::from_secrets(&sign, &enc)
        .unwrap()
        .with_hybrid_secret(&hybrid)
        .unwrap();
    assert_eq!(device.id(), ks.device.id());
    assert_eq!(device.hybrid_public_key(), ks.device.hybrid_public_key());
    assert!(device.hybrid_public_key().is_some());
    assert_eq!(
        device.encryption_public_key(),
        ks.device.encryption_public_key()
    );
    let state: serde_json::Value = serde_json::from_slice(&values["state"]).unwrap();
    for key in ["handle", "display_name", "contacts", "logs"] {
        assert!(state.get(key).is_some(), "state lacks {key}: {state}");
    }
    assert_eq!(state["handle"], "spec-user");
}

/// The page's keystore (issue 13 §3): the imported file's bytes open as the file does, a wrong
/// passphrase is the one uniform error, the payload round-trips, and a keystore held in memory
/// writes no file.
#[test]
fn a_keystore_opened_from_bytes_and_its_payload_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keystore.srmk");
    let ks = Keystore::create(
        &path,
        Zeroizing::new("page passphrase 0123".into()),
        "patient-page",
        "Patient",
        KdfParams::FLOOR,
    )
    .unwrap();
    let file = std::fs::read(&path).unwrap();
    let opened =
        Keystore::open_bytes(&file, Zeroizing::new("page passphrase 0123".into())).unwrap();
    assert_eq!(opened.handle(), "patient-page");
    assert_eq!(opened.device.id(), ks.device.id());
    assert_eq!(opened.identity.public_key(), ks.identity.public_key());
    assert!(matches!(
        Keystore::open_bytes(&file, Zeroizing::new("wrong passphrase 0123".into())),
        Err(serment_client::ClientError::Keystore(
            serment_core::Error::KeystoreDecrypt
        ))
    ));
    let payload = opened.payload().unwrap();
    let resumed = Keystore::from_payload(&payload).unwrap();
    assert_eq!(resumed.device.id(), ks.device.id());
    assert_eq!(*resumed.payload().unwrap(), *payload);
    // Saving a keystore held in memory touches no file.
    std::fs::remove_file(&path).unwrap();
    resumed.save().unwrap();
    assert!(!path.exists());
    // A truncated payload is refused.
    assert!(Keystore::from_payload(&payload[..payload.len() - 1]).is_err());
}

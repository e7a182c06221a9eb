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

/// A held team state of `epochs` epochs of `members` members each (64-byte handles), as a team
/// admin who adds members and rotates the epoch repeatedly makes every member keep (review R7).
fn held_team(epochs: u32, members: usize) -> serment_client::team_state::HeldTeam {
    use serment_client::team_state::{HeldEpoch, HeldMember, HeldTeam};
    let handles: Vec<String> = (0..members).map(|i| format!("{i:0>64}")).collect();
    HeldTeam {
        head: format!("{}:{}", u64::from(epochs) * 2, "ab".repeat(32)),
        changes: epochs as usize * 2,
        members: handles
            .iter()
            .map(|h| HeldMember {
                handle: h.clone(),
                identity_key: "cd".repeat(32),
                admin: false,
            })
            .collect(),
        removed: Vec::new(),
        epochs: (0..epochs)
            .map(|e| HeldEpoch {
                epoch: e,
                key: "A".repeat(1622),
                opened_at: u64::from(e) * 2,
                signers: vec!["ef".repeat(32)],
                members: handles.clone(),
            })
            .collect(),
    }
}

#[test]
fn a_team_with_many_epochs_keeps_the_keystore_under_the_bound() {
    use serment_client::keystore::MAX_HELD_TEAM_STATE_LEN;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("ks.srmk");
    let pass = "spec passphrase 0123";
    let mut ks = Keystore::create(
        &path,
        Zeroizing::new(pass.to_owned()),
        "spec-user",
        "Spec User",
        KdfParams::FLOOR,
    )
    .unwrap();
    // A small team is held (incremental verification); 400 epochs x 100 members (~3 MB) is
    // not: only its head, and its next verification replays the whole chain.
    let small = held_team(3, 4);
    ks.set_team_state("small", small.clone());
    let big = held_team(400, 100);
    assert!(serde_json::to_vec(&big).unwrap().len() > MAX_HELD_TEAM_STATE_LEN);
    ks.set_team_state("big", big.clone());
    assert_eq!(ks.team_state("small"), Some(&small));
    assert!(ks.team_state("big").is_none());
    assert_eq!(ks.team_head("big"), Some(big.head.as_str()));
    ks.save().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(
        len < 2 * MAX_HELD_TEAM_STATE_LEN as u64,
        "keystore of {len} bytes"
    );
    let back = Keystore::open(&path, Zeroizing::new(pass.to_owned())).unwrap();
    assert_eq!(back.team_head("big"), Some(big.head.as_str()));
    assert_eq!(back.team_state("small"), Some(&small));

    // Many teams each just under the bound, together past the keystore's limit: the held
    // states are dropped as a cache (heads kept), and the save still succeeds.
    let mut ks = back;
    let near = held_team(25, 100);
    let near_len = serde_json::to_vec(&near).unwrap().len();
    assert!(near_len <= MAX_HELD_TEAM_STATE_LEN);
    let teams = (serment_client::keystore::MAX_KEYSTORE_LEN as usize / near_len) + 2;
    for i in 0..teams {
        ks.set_team_state(&format!("t{i}"), near.clone());
    }
    ks.save().unwrap();
    let back = Keystore::open(&path, Zeroizing::new(pass.to_owned())).unwrap();
    assert!(back.team_state("t0").is_none());
    assert_eq!(back.team_head("t0"), Some(near.head.as_str()));
    assert!(std::fs::metadata(&path).unwrap().len() <= serment_client::keystore::MAX_KEYSTORE_LEN);
}

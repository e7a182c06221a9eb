//! Vectors of social recovery (PROTOCOL.md §4.3): a secret split 2-of-3 (blahaj, GF(256)), its
//! escrow and escrow hash, a share wrapped to a contact's device, the four log entries (kinds
//! 13-16) with the request id, and negative cases each with its error; plus an entry of an
//! unknown kind, which a client refuses (§11.3, REVIEW3 S17).
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test social_recovery_vectors`.
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
use serment_core::Error;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::PrevLink;
use serment_core::log::entry::{EntryKind, LogEntry, Payload, Subject, encode_entry};
use serment_core::log::history::{ChainEntry, KeyHistory, check_chain};
use serment_core::log::social::{
    Contact, ContactsBody, RecoveryApproval, RecoveryContacts, RecoveryVeto, SocialRecoveryRequest,
    replay_social,
};
use serment_core::recovery::EscrowSecrets;
use serment_core::social::{
    Share, ShareContext, ShareWrap, SocialSecret, contacts_hash, escrow_hash, open_social_escrow,
    seal_social_escrow_with, sign_fetch, unwrap_share, verify_fetch, wrap_share,
};
use serment_core::wrap::Recipient;

const HANDLE: &str = "patient-demo";
const AT: u64 = 1_796_000_000;

fn file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/social-recovery.json")
}

struct Inputs {
    secret: SocialSecret,
    identity: IdentitySecret,
    recovery_device: DeviceSecret,
    owner_device: DeviceSecret,
    contacts: Vec<(String, DeviceSecret)>,
    new_device: DeviceSecret,
}

fn inputs() -> Inputs {
    Inputs {
        secret: SocialSecret::from_bytes([0x66; 32]),
        identity: IdentitySecret::from_seed(&[0x11; 32]),
        recovery_device: DeviceSecret::from_test_seed_hybrid(&[0x22; 32]),
        owner_device: DeviceSecret::from_test_seed_hybrid(&[0x23; 32]),
        contacts: vec![
            (
                "gp-demo".into(),
                DeviceSecret::from_test_seed_hybrid(&[0x44; 32]),
            ),
            (
                "relative-demo".into(),
                DeviceSecret::from_test_seed_hybrid(&[0x45; 32]),
            ),
            (
                "friend-demo".into(),
                DeviceSecret::from_test_seed_hybrid(&[0x46; 32]),
            ),
        ],
        new_device: DeviceSecret::from_test_seed_hybrid(&[0x33; 32]),
    }
}

fn generate() -> Value {
    let i = inputs();
    let shares = i
        .secret
        .split(2, 3, &mut ChaCha20Rng::from_seed([0x77; 32]))
        .unwrap();
    let escrow = seal_social_escrow_with(
        &i.secret,
        HANDLE,
        &EscrowSecrets {
            identity: IdentitySecret::from_seed(&[0x11; 32]),
            device: DeviceSecret::from_test_seed_hybrid(&[0x22; 32]),
        },
        [0x55; 12],
    )
    .unwrap();
    let contacts: Vec<Contact> = i
        .contacts
        .iter()
        .map(|(h, d)| Contact {
            handle: h.clone(),
            devices: vec![d.id()],
        })
        .collect();
    let entry13 = RecoveryContacts::sign(
        &ContactsBody {
            handle: HANDLE,
            recovery_device: i.recovery_device.id(),
            threshold: 2,
            waiting_period: 259_200,
            escrow_hash: escrow_hash(&escrow),
            contacts: &contacts,
            at: AT,
        },
        &i.identity,
    )
    .unwrap();
    let ch = contacts_hash(&entry13);
    let wrap = wrap_share(
        &shares[0],
        ShareContext {
            handle: HANDLE,
            contacts_hash: &ch,
            request_id: &[0; 16],
        },
        &Recipient::from_device(&i.contacts[0].1),
        &i.owner_device,
        &mut ChaCha20Rng::from_seed([0x78; 32]),
    )
    .unwrap();
    let entry14 = SocialRecoveryRequest::sign(HANDLE, &ch, &i.new_device, AT + 10).unwrap();
    let req = SocialRecoveryRequest::decode_verified(&entry14).unwrap();
    let entry15 = RecoveryApproval::sign(
        HANDLE,
        &req.id,
        &i.new_device.id(),
        "gp-demo",
        &i.contacts[0].1,
        AT + 20,
    )
    .unwrap();
    let entry16 = RecoveryVeto::sign(HANDLE, &req.id, &i.owner_device, AT + 30).unwrap();
    let unknown = encode_entry(EntryKind::Device, 1, None, b"anything").unwrap();
    let mut unknown_kind = unknown.clone();
    unknown_kind[8] = 200;
    json!({
        "description": "PROTOCOL.md §4.3: social recovery of `patient-demo` (identity seed 0x11.., social recovery device test seed 0x22.., owner device 0x23..) by 2 of 3 contacts gp-demo (device 0x44..), relative-demo (0x45..), friend-demo (0x46..); secret 0x66.. split with ChaCha20Rng seed 0x77..; escrow nonce 0x55..; share 1 wrapped to gp-demo's device by the owner device (HPKE randomness ChaCha20Rng seed 0x78..); request by new device 0x33.., approval by gp-demo, veto by the owner device",
        "handle": HANDLE,
        "secret_hex": hex::encode(i.secret.as_bytes()),
        "threshold": 2,
        "shares_hex": shares.iter().map(|s| hex::encode(s.as_bytes())).collect::<Vec<_>>(),
        "escrow_hex": hex::encode(&escrow),
        "escrow_hash_hex": hex::encode(escrow_hash(&escrow)),
        "identity_seed_hex": hex::encode([0x11u8; 32]),
        "recovery_device_id": i.recovery_device.id().to_string(),
        "contacts_entry_hex": hex::encode(&entry13),
        "contacts_hash_hex": hex::encode(ch),
        "share_wrap_hex": hex::encode(&wrap),
        "request_entry_hex": hex::encode(&entry14),
        "request_id_hex": hex::encode(req.id),
        "approval_entry_hex": hex::encode(&entry15),
        "veto_entry_hex": hex::encode(&entry16),
        "fetch_at": AT + 100,
        "fetch_signature_hex": hex::encode(sign_fetch(&i.new_device, &req.id, AT + 100)),
        "unknown_kind_entry_hex": hex::encode(&unknown_kind),
        "negative": [
            {"what": "escrow: suite 3 (byte 7)", "on": "escrow", "offset": 7, "value": 3, "error": "unsupported_suite"},
            {"what": "escrow: a ciphertext byte flipped", "on": "escrow", "offset": 30, "value": null, "error": "keystore_decrypt"},
            {"what": "contacts entry: threshold 1", "on": "contacts", "offset": 4 + 4 + 1 + HANDLE.len() + 64, "value": 1, "error": "invalid_field"},
            {"what": "contacts entry: signature flipped", "on": "contacts", "offset": -1, "value": null, "error": "bad_signature"},
            {"what": "request: suite 1", "on": "request", "offset": 7, "value": 1, "error": "unsupported_suite"},
            {"what": "request: new device key changed", "on": "request", "offset": 4 + 4 + 1 + HANDLE.len() + 32, "value": null, "error": "bad_signature"},
            {"what": "approval: request id changed", "on": "approval", "offset": 4 + 4 + 1 + HANDLE.len(), "value": null, "error": "bad_signature"},
            {"what": "veto: signature flipped", "on": "veto", "offset": -1, "value": null, "error": "bad_signature"}
        ]
    })
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::UnsupportedSuite { .. } => "unsupported_suite",
        Error::UnsupportedVersion { .. } => "unsupported_version",
        Error::KeystoreDecrypt => "keystore_decrypt",
        Error::BadSignature { .. } => "bad_signature",
        Error::InvalidField { .. } => "invalid_field",
        _ => "other",
    }
}

fn hx(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap()).unwrap()
}

#[test]
fn social_recovery_vectors() {
    if std::env::var("SERMENT_REGEN_VECTORS").is_ok() {
        std::fs::write(
            file(),
            serde_json::to_string_pretty(&generate()).unwrap() + "\n",
        )
        .unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(file()).unwrap()).unwrap();
    assert_eq!(v, generate(), "the vectors no longer match the code");
    let i = inputs();

    // Any 2 of the 3 shares give the secret back; one does not.
    let shares: Vec<Vec<u8>> = v["shares_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| hex::decode(s.as_str().unwrap()).unwrap())
        .collect();
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let two = [
            Share::from_bytes(&shares[a]).unwrap(),
            Share::from_bytes(&shares[b]).unwrap(),
        ];
        assert_eq!(
            hex::encode(SocialSecret::combine(2, &two).unwrap().as_bytes()),
            v["secret_hex"]
        );
    }
    assert!(SocialSecret::combine(2, &[Share::from_bytes(&shares[2]).unwrap()]).is_err());

    // The escrow opens under the secret, to the inputs; its hash is the entry's.
    let escrow = hx(&v, "escrow_hex");
    let s = open_social_escrow(&i.secret, HANDLE, &escrow).unwrap();
    assert_eq!(hex::encode(*s.identity.to_seed()), v["identity_seed_hex"]);
    assert_eq!(s.device.id().to_string(), v["recovery_device_id"]);
    assert!(open_social_escrow(&i.secret, "another-handle", &escrow).is_err());

    let c13 = hx(&v, "contacts_entry_hex");
    let c = RecoveryContacts::decode_verified(&c13).unwrap();
    assert_eq!(hex::encode(c.escrow_hash), v["escrow_hash_hex"]);
    assert_eq!((c.threshold, c.contacts.len()), (2, 3));
    assert_eq!(c.position("relative-demo"), Some(1));
    let ch: [u8; 32] = hx(&v, "contacts_hash_hex").try_into().unwrap();
    assert_eq!(contacts_hash(&c13), ch);

    // The share wrap: signed by the owner device, opens for gp-demo's device to share 1.
    let w = ShareWrap::decode(&hx(&v, "share_wrap_hex")).unwrap();
    w.verify_signature(&i.owner_device.signing_public_key())
        .unwrap();
    let ctx = ShareContext {
        handle: HANDLE,
        contacts_hash: &ch,
        request_id: &[0; 16],
    };
    let got = unwrap_share(&w, ctx, &i.contacts[0].1).unwrap();
    assert_eq!(got.as_bytes()[..], shares[0][..]);
    assert!(unwrap_share(&w, ctx, &i.contacts[1].1).is_err());

    // The four entries, as one social chain.
    let req = SocialRecoveryRequest::decode_verified(&hx(&v, "request_entry_hex")).unwrap();
    assert_eq!(hex::encode(req.id), v["request_id_hex"]);
    assert_eq!(req.device_id(), i.new_device.id());
    // The fetch proof (REVIEW4 T1): by the request's key, for this request and time only.
    let at = v["fetch_at"].as_u64().unwrap();
    let sig = hx(&v, "fetch_signature_hex");
    verify_fetch(&req.signing_key, &req.id, at, &sig).unwrap();
    assert!(verify_fetch(&req.signing_key, &req.id, at + 1, &sig).is_err());
    assert!(verify_fetch(&req.signing_key, &[0; 16], at, &sig).is_err());
    assert!(verify_fetch(&i.contacts[0].1.signing_public_key(), &req.id, at, &sig).is_err());
    let items = [
        (EntryKind::RecoveryContacts, c13.clone()),
        (EntryKind::RecoveryRequest, hx(&v, "request_entry_hex")),
        (EntryKind::RecoveryApproval, hx(&v, "approval_entry_hex")),
        (EntryKind::RecoveryVeto, hx(&v, "veto_entry_hex")),
    ];
    // The social chain starts at log index 1: the handle's first device record, at 0, made
    // the identity key current.
    let keys = key_history(&i.identity);
    let mut chain: Vec<ChainEntry> = Vec::new();
    for (n, (k, p)) in items.iter().enumerate() {
        let bytes = encode_entry(*k, AT + n as u64, chain.last().map(ChainEntry::link), p).unwrap();
        chain.push(ChainEntry {
            index: 1 + n as u64,
            entry: LogEntry::decode(&bytes).unwrap(),
            bytes,
        });
    }
    check_chain(&chain, &Subject::Social(HANDLE.into())).unwrap();
    // Their subject is not the handle's key history (S17).
    assert!(check_chain(&chain, &Subject::Handle(HANDLE.into())).is_err());
    let st = replay_social(HANDLE, &chain, Some(&keys)).unwrap();
    assert!(st.forged_contacts.is_empty());
    let r = st.request(&req.id).unwrap();
    assert!(r.current_contacts);
    assert_eq!(r.approvals.len(), 1);
    assert_eq!(r.approvals[0].1.device_id(), i.contacts[0].1.id());
    assert_eq!(r.vetoes.len(), 1);
    assert_eq!(r.vetoes[0].1.device_id(), i.owner_device.id());
    assert!(matches!(
        chain[2].entry.payload,
        Payload::RecoveryApproval(_)
    ));
    // An approval before its request breaks the chain's replay.
    let mut swapped: Vec<ChainEntry> = Vec::new();
    for (n, (k, p)) in [&items[0], &items[2], &items[1]].iter().enumerate() {
        let bytes = encode_entry(*k, AT, swapped.last().map(ChainEntry::link), p).unwrap();
        swapped.push(ChainEntry {
            index: 1 + n as u64,
            entry: LogEntry::decode(&bytes).unwrap(),
            bytes,
        });
    }
    assert!(matches!(
        replay_social(HANDLE, &swapped, Some(&keys)),
        Err(Error::History { .. })
    ));

    // REVIEW5 U16: a contacts entry self-signed by another key, logged after the request (what
    // only a hostile server logs), is never the current one: the request stays on the current
    // set, and the forged entry is reported. Without the handle's key history every contacts
    // entry is unproven.
    let forged = RecoveryContacts::sign(
        &ContactsBody {
            handle: HANDLE,
            recovery_device: i.new_device.id(),
            threshold: 2,
            waiting_period: 86_400,
            escrow_hash: [7; 32],
            contacts: &c.contacts,
            at: AT,
        },
        &IdentitySecret::from_seed(&[0x99; 32]),
    )
    .unwrap();
    let mut with_forged = chain.clone();
    let bytes = encode_entry(
        EntryKind::RecoveryContacts,
        AT + 9,
        with_forged.last().map(ChainEntry::link),
        &forged,
    )
    .unwrap();
    with_forged.push(ChainEntry {
        index: 1 + items.len() as u64,
        entry: LogEntry::decode(&bytes).unwrap(),
        bytes,
    });
    let st = replay_social(HANDLE, &with_forged, Some(&keys)).unwrap();
    assert_eq!(st.forged_contacts, vec![1 + items.len() as u64]);
    assert_eq!(st.contacts.as_ref().map(|c| c.0), Some(1));
    assert!(st.request(&req.id).unwrap().current_contacts);
    let st = replay_social(HANDLE, &chain, None).unwrap();
    assert!(st.contacts.is_none());
    assert_eq!(st.forged_contacts, vec![1]);

    // An entry of an unknown kind is refused (§11.3), never skipped.
    assert!(matches!(
        LogEntry::decode(&hx(&v, "unknown_kind_entry_hex")),
        Err(Error::InvalidField {
            field: "log entry kind",
            ..
        })
    ));

    for n in v["negative"].as_array().unwrap() {
        let key = match n["on"].as_str().unwrap() {
            "escrow" => "escrow_hex",
            "contacts" => "contacts_entry_hex",
            "request" => "request_entry_hex",
            "approval" => "approval_entry_hex",
            _ => "veto_entry_hex",
        };
        let mut bad = hx(&v, key);
        let off = n["offset"].as_i64().unwrap();
        let at = if off < 0 { bad.len() - 1 } else { off as usize };
        match n["value"].as_u64() {
            Some(x) => bad[at] = x as u8,
            None => bad[at] ^= 1,
        }
        let e = match n["on"].as_str().unwrap() {
            "escrow" => open_social_escrow(&i.secret, HANDLE, &bad).map(|_| ()),
            "contacts" => RecoveryContacts::decode_verified(&bad).map(|_| ()),
            "request" => SocialRecoveryRequest::decode_verified(&bad).map(|_| ()),
            "approval" => RecoveryApproval::decode_verified(&bad).map(|_| ()),
            _ => RecoveryVeto::decode_verified(&bad).map(|_| ()),
        }
        .unwrap_err();
        assert_eq!(error_name(&e), n["error"], "{}", n["what"]);
        if key == "escrow_hex" {
            assert_ne!(hex::encode(escrow_hash(&bad)), v["escrow_hash_hex"]);
        }
    }
}

/// The key history of [`HANDLE`]: `identity` current from log index 0 (its first device
/// record), nothing else the social replay reads.
fn key_history(identity: &IdentitySecret) -> KeyHistory {
    KeyHistory {
        handle: HANDLE.into(),
        identity_key: identity.public_key(),
        identity_keys: vec![identity.public_key()],
        identity_since: vec![0],
        devices: vec![],
        retired: vec![],
        head: PrevLink {
            index: 0,
            leaf_hash: [0; 32],
        },
        hybrid_since: vec![],
        recoveries: vec![],
    }
}

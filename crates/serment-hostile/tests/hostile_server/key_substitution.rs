//! Key substitution in the directory: the server presents another identity key (and devices it
//! controls) for a contact the client has pinned.

use serde_json::json;
use serment_client::ClientError;
use serment_client::contacts;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_hostile::harness::b64;

use crate::common::*;

/// A record for `handle` signed by an identity the server controls.
fn forged_record(handle: &str) -> (Vec<u8>, DeviceSecret) {
    let ident = IdentitySecret::generate();
    let dev = DeviceSecret::generate();
    (
        ident
            .sign_device_record(handle, &dev, 1_700_000_000)
            .unwrap(),
        dev,
    )
}

#[test]
fn key_substitution_for_a_pinned_recipient_is_refused_before_sealing() {
    let mut w = World::new();
    let (rec, _) = forged_record(PATIENT);
    let dir = format!("GET /v1/directory/{PATIENT}");
    for records in [vec![b64(&rec)], {
        // The real records plus the server's: a mixed answer is refused too.
        let real = w.h.last(&dir).json()["records"].clone();
        let mut v: Vec<String> = serde_json::from_value(real).unwrap();
        v.push(b64(&rec));
        v
    }] {
        w.h.clear_hooks();
        let served = records.clone();
        w.h.on_response(&dir, move |ex| {
            ex.set_json(&json!({ "handle": PATIENT, "records": served }));
        });
        let before = w.h.exchanges().len();
        let e = w
            .lab
            .put(b"{}".as_slice(), meta(b"{}", "x"), &[PATIENT.to_owned()])
            .unwrap_err();
        assert!(
            matches!(&e, ClientError::KeySubstitution { handle, .. } if handle == PATIENT),
            "{e:?}"
        );
        // Nothing was sealed or uploaded for the substituted key.
        let after: Vec<_> = w.h.exchanges().into_iter().skip(before).collect();
        assert!(
            after
                .iter()
                .all(|x| !x.matches("POST /v1/blobs") && !x.matches("POST /v1/documents"))
        );
    }
    // The pin itself is unchanged: the honest directory works again.
    w.h.clear_hooks();
    w.put(b"{}", "ok", &[PATIENT]);
}

#[test]
fn key_substitution_of_the_author_is_refused_when_reading() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "obs", &[PATIENT]);
    // The server claims the lab's device is one of its own, and backs it with a directory answer
    // for the lab's handle signed by its own identity.
    let (rec, dev) = forged_record(LAB);
    let fake = dev.id().to_string();
    w.h.on_response(&version_route(&r.doc_id, 1), move |ex| {
        let mut j = ex.json();
        j["author_device"] = json!(fake);
        ex.set_json(&j);
    });
    w.h.on_response(&format!("GET /v1/directory/{LAB}"), move |ex| {
        ex.set_json(&json!({ "handle": LAB, "records": [b64(&rec)] }));
    });
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(matches!(e, ClientError::KeySubstitution { .. }), "{e:?}");
}

#[test]
fn key_substitution_on_first_contact_shows_another_fingerprint() {
    // Trust on first use alone cannot detect a substitution on the very first contact; the
    // transparency log of issue 6 does: the directory must name the keys of the handle's proven
    // key history, so a forged directory answer is refused even on first contact. The
    // out-of-band fingerprint comparison of `serment contact verify` remains as a second check.
    let w = World::new();
    let real = contacts::fetch(&w.lab.api, PATIENT, None)
        .unwrap()
        .fingerprint();
    let (rec, _) = forged_record(PATIENT);
    let forged = contacts::Contact {
        handle: PATIENT.into(),
        identity_id: serment_core::identity::DeviceRecord::decode_verified(&rec)
            .unwrap()
            .identity_id(),
        devices: Vec::new(),
    };
    assert_ne!(forged.fingerprint(), real);
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&rec)] }));
    });
    let mut gp = w.gp;
    let e = contacts::add(&gp.api, &mut gp.ks, PATIENT).unwrap_err();
    assert!(
        matches!(&e, ClientError::KeySubstitution { handle, .. } if handle == PATIENT),
        "{e:?}"
    );
}

// An old key replayed after a rotation: `tests/transparency_log.rs`,
// `old_key_replayed_with_its_old_proof_after_rotation_is_refused` (issue 6).

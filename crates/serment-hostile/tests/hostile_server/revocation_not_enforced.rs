//! Revocation not enforced: a removed recipient keeps reading later versions, or a revoked device
//! keeps receiving keys. Every version has a fresh DEK wrapped only for the recipients its author
//! chose (PROTOCOL.md §6, §7), so leaving a reader out of version 2 revokes it from version 2
//! whatever the server does. A revoked device (a revocation entry in the transparency log,
//! PROTOCOL.md §11.3) is never offered a key again, whatever the directory says. Removing a
//! recipient from a version already delivered cannot take back a DEK it holds: the removal is
//! recorded in the log (see `tests/transparency_log.rs`), and new versions leave it out (above).

use serment_core::Error;
use serment_core::stream::StreamKey;
use serment_core::wrap::{self, WrappedKey};

use serde_json::json;
use serment_client::ClientError;
use serment_client::keystore::Keystore;
use serment_client::vault::Session;
use serment_core::keystore::KdfParams;
use serment_hostile::harness::b64;
use zeroize::Zeroizing;

use crate::common::*;

#[test]
fn revocation_recipient_left_out_of_a_new_version_cannot_read_it() {
    let mut w = World::new();
    let v1 = b"{\"shared\":\"with the GP\"}".to_vec();
    let v2 = b"{\"after\":\"the GP was removed\"}".to_vec();
    let r1 = w.put(&v1, "suivi", &[PATIENT, GP]);
    let only_patient = w.lab.recipients(&[PATIENT.to_owned()]).unwrap();
    let r2 = w
        .lab
        .put_version(
            v2.as_slice(),
            meta(&v2, "suivi"),
            r1.doc_id,
            2,
            &only_patient,
        )
        .unwrap();
    // The server keeps serving version 2 to the GP, with the GP's version-1 wrap.
    let gp_dev = w.gp.ks.device.id();
    let old_wrap = stored_wrap(&w.h, &r1.doc_id, 1, &gp_dev);
    let blob2 = w.blob(&r2);
    let doc = r1.doc_id;
    let ow = old_wrap.clone();
    let b2 = blob2.clone();
    let author = w.lab.ks.device.id().to_string();
    w.h.on_response(&version_route(&doc, 2), move |ex| {
        ex.status = 200;
        ex.set_json(
            &serde_json::json!({ "doc_id": doc.to_string(), "doc_version": 2,
            "author_device": author, "author_identity": "00".repeat(32), "blob_id": "00".repeat(32),
            "size": 1, "created_at": 0, "log_size": 0,
            "wrap": serment_hostile::harness::b64(&ow) }),
        );
    });
    w.h.on_response(&blob_route(&doc, 2), move |ex| {
        ex.status = 200;
        ex.set_body(b2.clone());
    });
    let e = read_to_file(&w.h, &mut w.gp, &doc, Some(2)).unwrap_err();
    assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
    // Even a GP that keeps version 1's DEK and ignores every check cannot decrypt version 2.
    let ow = WrappedKey::decode(&old_wrap).unwrap();
    let dek1 = wrap::unwrap_dek(&ow, &w.gp.ks.device).unwrap();
    let p2 = Parts::split(&blob2);
    let h2 = serment_core::document::Header::decode(&p2.header).unwrap();
    let key = StreamKey::new(&dek1, h2.suite, h2.nonce_prefix, h2.hash(), h2.chunks()).unwrap();
    let mut c0 = p2.chunks[0].clone();
    assert_eq!(key.open_chunk(0, &mut c0), Err(Error::Decrypt));
    // The patient reads version 2.
    w.h.clear_hooks();
    assert_eq!(read(&mut w.patient, &doc, Some(2)).unwrap().0, v2);
}

#[test]
fn revocation_revoked_device_still_offered_as_recipient() {
    let mut w = World::new();
    // The patient enrols a phone (same identity), then revokes it (a logged revocation).
    let mut ks = Keystore::create(
        &w.h.root().join("homes/patient-phone/keystore.srmk"),
        Zeroizing::new("passphrase of the phone".into()),
        PATIENT,
        "Patient, phone",
        KdfParams::FLOOR,
    )
    .unwrap();
    ks.identity = w.patient.ks.identity.clone();
    let phone = Session::register(ks, w.h.url()).unwrap();
    let phone_dev = phone.ks.device.id();
    let phone_record = phone.ks.own_record().unwrap();
    let r = w.put(b"{\"before\":1}", "x", &[PATIENT]);
    assert!(
        r.recipients.contains(&phone_dev),
        "the phone was a recipient before"
    );
    w.patient.revoke_device(&phone_dev).unwrap();
    // The server keeps offering the revoked phone in the patient's directory entry.
    let real = w.patient.ks.own_record().unwrap();
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&real), b64(&phone_record)] }));
    });
    let before = w.h.exchanges().len();
    let e = w
        .lab
        .put(b"{}".as_slice(), meta(b"{}", "x"), &[PATIENT.to_owned()])
        .unwrap_err();
    assert!(matches!(e, ClientError::KeySubstitution { .. }), "{e:?}");
    assert!(
        w.h.exchanges()
            .iter()
            .skip(before)
            .all(|x| !x.matches("POST /v1/documents")),
        "nothing committed"
    );
    // With the honest directory the revoked phone gets no wrap.
    w.h.clear_hooks();
    let r = w.put(b"{\"after\":1}", "y", &[PATIENT]);
    assert!(!r.recipients.contains(&phone_dev), "{:?}", r.recipients);
}

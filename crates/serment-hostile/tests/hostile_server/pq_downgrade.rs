//! Post-quantum downgrade (issue 15, PROTOCOL.md §4, §7, §7.1): a device that advertised an X-Wing
//! key in the log gets hybrid wraps only. A server (or a sharer) that strips the hybrid key from
//! the device's record, relabels a hybrid wrap as classical, swaps its suite id, or damages either
//! part of its X-Wing ciphertext (ML-KEM-768, X25519) is caught, each by a named check.

use serment_client::ClientError;
use serment_client::contacts;
use serment_client::keystore::Keystore;
use serment_client::vault::Session;
use serment_core::keystore::KdfParams;
use serment_core::wrap::{self, Recipient, WrapKem, WrappedKey};
use serment_core::{DocId, Error};
use serment_hostile::harness::{Hostile, b64};
use zeroize::Zeroizing;

use crate::common::*;

/// A party whose device has no X-Wing key, as every device before issue 15.
fn classical_party(h: &Hostile, handle: &str) -> Session {
    let mut ks = Keystore::create(
        &h.keystore_path(handle),
        Zeroizing::new(format!("passphrase of {handle}")),
        handle,
        &format!("Display name of {handle}"),
        KdfParams::FLOOR,
    )
    .unwrap();
    ks.use_classical_device_for_tests();
    ks.save().unwrap();
    Session::register(ks, h.url()).unwrap()
}

/// A lab (hybrid) and a patient registered with a classical device; they pin each other.
fn classical_patient_world() -> (Hostile, Session, Session) {
    let h = Hostile::new();
    let mut lab = h.party(LAB);
    let mut patient = classical_party(&h, PATIENT);
    contacts::add(&lab.api, &mut lab.ks, PATIENT).unwrap();
    contacts::add(&patient.api, &mut patient.ks, LAB).unwrap();
    (h, lab, patient)
}

fn put(lab: &mut Session, content: &[u8], title: &str) -> DocId {
    lab.put(content, meta(content, title), &[PATIENT.to_owned()])
        .unwrap()
        .doc_id
}

/// The lab, turned against the patient (or an old client), wraps a version's DEK to the patient's
/// device with X25519 alone, signs it, and the server logs it as any wrap.
fn add_classical_wrap(h: &Hostile, lab: &mut Session, patient: &Session, doc: &DocId) {
    let own = WrappedKey::decode(&stored_wrap(h, doc, 1, &lab.ks.device.id())).unwrap();
    let dek = wrap::unwrap_dek(&own, &lab.ks.device).unwrap();
    let to = Recipient {
        device_id: patient.ks.device.id(),
        encryption_key: patient.ks.device.encryption_public_key(),
        hybrid_key: None,
    };
    let w = wrap::wrap_dek(
        &dek,
        doc,
        1,
        &own.header_hash,
        &to,
        &lab.ks.device,
        &mut serment_core::rng::os_rng(),
    )
    .unwrap();
    assert_eq!(WrappedKey::decode(&w).unwrap().kem, WrapKem::X25519);
    lab.api.add_wraps(doc, 1, &[w]).unwrap();
}

/// Classical wraps made before the upgrade stay readable; after `id upgrade`, new documents are
/// wrapped with X-Wing, and a classical wrap logged after the upgrade is refused on read
/// (`wrap::check_not_downgraded`, called by `Session::get`).
#[test]
fn pq_downgrade_classical_wrap_after_the_upgrade_is_refused_on_read() {
    let (h, mut lab, mut patient) = classical_patient_world();
    let before = put(&mut lab, b"{\"resourceType\":\"Observation\"}", "before");
    let (_, r) = read(&mut patient, &before, Some(1)).unwrap();
    assert_eq!(r.kem, WrapKem::X25519, "sealed before the upgrade");

    let (since, added) = patient.upgrade_device().unwrap();
    assert!(added && since > 0);
    // Sealed before: still readable, classical.
    let (_, r) = read(&mut patient, &before, Some(1)).unwrap();
    assert_eq!(r.kem, WrapKem::X25519);
    // Sealed after: the lab's client took the upgraded record from the log, so X-Wing.
    let after = put(&mut lab, b"{\"resourceType\":\"Observation\"}", "after");
    let (_, r) = read(&mut patient, &after, Some(1)).unwrap();
    assert_eq!(r.kem, WrapKem::XWing);

    // A third document the lab seals for itself only, then wraps classically to the patient.
    let c = b"{\"resourceType\":\"DiagnosticReport\"}";
    let doc = lab.put(&c[..], meta(c, "forced"), &[]).unwrap().doc_id;
    add_classical_wrap(&h, &mut lab, &patient, &doc);
    let e = read_to_file(&h, &mut patient, &doc, Some(1)).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::Downgrade(_)),
        "a classical wrap logged after the upgrade must be refused: {e:?}"
    );
}

/// A device created with an X-Wing key accepts no classical wrap at all.
#[test]
fn pq_downgrade_classical_wrap_to_a_device_created_hybrid_is_refused() {
    let mut w = World::new();
    let c = b"{\"resourceType\":\"Observation\"}";
    let doc = w.lab.put(&c[..], meta(c, "self"), &[]).unwrap().doc_id;
    add_classical_wrap(&w.h, &mut w.lab, &w.patient, &doc);
    let e = read_to_file(&w.h, &mut w.patient, &doc, Some(1)).unwrap_err();
    assert!(matches!(integrity(&e), Error::Downgrade(_)), "{e:?}");
}

/// The server serves the device's older record (without its hybrid key) in the directory after
/// the upgrade: the sharer's client compares the directory with the proven key history, where the
/// upgrade record replaced it (`contacts::add`), and refuses before sealing anything.
#[test]
fn pq_downgrade_stripped_hybrid_key_in_the_directory_is_refused() {
    let (h, mut lab, mut patient) = classical_patient_world();
    let old_record = patient.ks.own_record().unwrap();
    patient.upgrade_device().unwrap();
    let route = format!("GET /v1/directory/{PATIENT}");
    h.on_response(&route, move |ex| {
        let mut j = ex.json();
        j["records"] = serde_json::json!([b64(&old_record)]);
        ex.set_json(&j);
    });
    let c = b"{\"resourceType\":\"Observation\"}";
    let e = lab
        .put(&c[..], meta(c, "x"), &[PATIENT.to_owned()])
        .unwrap_err();
    assert!(
        matches!(e, ClientError::KeySubstitution { .. }),
        "the stripped record must be refused: {e:?}"
    );
    assert_eq!(e.exit_code(), 4);
}

/// The server relabels the patient's hybrid wrap as classical (suite 1, keeping the X25519 half
/// of the X-Wing ciphertext so that the length is right): the suite id is under the sharer's
/// signature (`WrappedKey::verify_signature`).
#[test]
fn pq_downgrade_wrap_relabelled_classical_by_the_server_is_refused() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "x", &[PATIENT]);
    let hybrid = stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id());
    assert_eq!(hybrid.len(), WrappedKey::HYBRID_LEN);
    let mut relabelled = hybrid.clone();
    relabelled[6..8].copy_from_slice(&1u16.to_be_bytes());
    let enc = WrappedKey::PREFIX_LEN;
    relabelled.drain(enc..enc + 1088);
    assert_eq!(relabelled.len(), WrappedKey::LEN);
    serve_wrap(&w.h, &r.doc_id, 1, relabelled);
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::BadSignature { what: "key wrap" }),
        "{e:?}"
    );
}

/// The server swaps the suite id of the hybrid wrap (3 to 1, and to 2) without touching the rest:
/// the wrap's length is fixed by its suite (`WrappedKey::decode`).
#[test]
fn pq_downgrade_wrap_suite_id_swapped_is_refused() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "x", &[PATIENT]);
    let hybrid = stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id());
    for (suite, expect) in [(1u16, "trailing"), (2, "suite"), (0, "suite")] {
        let mut b = hybrid.clone();
        b[6..8].copy_from_slice(&suite.to_be_bytes());
        w.h.clear_hooks();
        serve_wrap(&w.h, &r.doc_id, 1, b);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        let ok = match integrity(&e) {
            Error::TrailingBytes { .. } => expect == "trailing",
            Error::UnsupportedSuite { suite: s, .. } => expect == "suite" && *s == suite,
            _ => false,
        };
        assert!(ok, "suite {suite}: {e:?}");
    }
}

/// The server flips a byte in, or truncates, each part of the X-Wing ciphertext (`enc` = ML-KEM-768
/// ciphertext [1088] || X25519 ephemeral key [32]): the signature covers `enc`
/// (`WrappedKey::verify_signature`), and a short part is a truncated wrap (`WrappedKey::decode`).
#[test]
fn pq_downgrade_hybrid_ciphertext_flipped_or_truncated_in_each_part_is_refused() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "x", &[PATIENT]);
    let hybrid = stored_wrap(&w.h, &r.doc_id, 1, &w.patient.ks.device.id());
    let enc = WrappedKey::PREFIX_LEN;
    let x25519 = enc + 1088;
    for (part, at) in [("ML-KEM-768", enc + 517), ("X25519", x25519 + 9)] {
        let mut b = hybrid.clone();
        b[at] ^= 0x01;
        w.h.clear_hooks();
        serve_wrap(&w.h, &r.doc_id, 1, b);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert!(
            matches!(integrity(&e), Error::BadSignature { what: "key wrap" }),
            "{part} flipped: {e:?}"
        );
    }
    for (part, range) in [
        ("ML-KEM-768", x25519 - 100..x25519),
        ("X25519", x25519 + 16..x25519 + 32),
    ] {
        let mut b = hybrid.clone();
        b.drain(range);
        w.h.clear_hooks();
        serve_wrap(&w.h, &r.doc_id, 1, b);
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert!(
            matches!(integrity(&e), Error::Truncated { .. }),
            "{part} truncated: {e:?}"
        );
    }
    w.h.clear_hooks();
    read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap();
}

//! Rollback, freshness and forks: an older version replayed as a newer one, the latest version
//! hidden, the access list rolled back, different views for different readers. Replays of sealed
//! data are detected today (the header binds document id and version); hiding and forking need the
//! transparency log of issue 6 and are marked OPEN.

use serde_json::json;
use serment_core::Error;

use crate::common::*;

fn two_versions(w: &mut World) -> (serment_core::DocId, Vec<u8>, Vec<u8>) {
    let v1 = b"{\"glucose\":5.1}".to_vec();
    let v2 = b"{\"glucose\":9.8,\"corrected\":true}".to_vec();
    let r1 = w.put(&v1, "glycemie", &[PATIENT]);
    let recipients = w.lab.recipients(&[PATIENT.to_owned()]).unwrap();
    w.lab
        .put_version(
            v2.as_slice(),
            meta(&v2, "glycemie"),
            r1.doc_id,
            2,
            &recipients,
        )
        .unwrap();
    (r1.doc_id, v1, v2)
}

#[test]
fn rollback_older_version_replayed_as_the_newer_one() {
    let mut w = World::new();
    let (doc, _v1, v2) = two_versions(&mut w);
    // Record version 1's genuine answers, then replay them for version 2.
    read(&mut w.patient, &doc, Some(1)).unwrap();
    let old_version = w.h.last(&version_route(&doc, 1));
    let old_blob = w.h.last(&blob_route(&doc, 1));
    w.h.replay(&version_route(&doc, 2), &old_version);
    w.h.replay(&blob_route(&doc, 2), &old_blob);
    let e = read_to_file(&w.h, &mut w.patient, &doc, Some(2)).unwrap_err();
    assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
    // Only the blob replayed: the wrap of version 2 is bound to version 2's header.
    w.h.clear_hooks();
    w.h.replay(&blob_route(&doc, 2), &old_blob);
    let e = read_to_file(&w.h, &mut w.patient, &doc, Some(2)).unwrap_err();
    assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
    w.h.clear_hooks();
    assert_eq!(read(&mut w.patient, &doc, Some(2)).unwrap().0, v2);
}

#[test]
#[ignore = "OPEN until issue 6 (transparency log): the client cannot yet tell that the server hid the latest version"]
fn rollback_latest_version_hidden() {
    let mut w = World::new();
    let (doc, _v1, v2) = two_versions(&mut w);
    let hidden = doc.to_string();
    w.h.on_response("GET /v1/documents", move |ex| {
        let mut j = ex.json();
        j["documents"]
            .as_array_mut()
            .unwrap()
            .retain(|d| !(d["doc_id"] == json!(hidden) && d["doc_version"] == json!(2)));
        ex.set_json(&j);
    });
    // Needed: reading the latest version either yields version 2 or fails with a freshness error
    // (the log's checkpoint lists version 2).
    match read(&mut w.patient, &doc, None) {
        Ok((out, _)) => assert_eq!(out, v2, "the server rolled the document back undetected"),
        Err(e) => assert_eq!(e.code(), "integrity"),
    }
}

#[test]
#[ignore = "OPEN until issue 6 (transparency log, access receipts): the access list is whatever the server says"]
fn rollback_access_list_rolled_back() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT, GP]);
    read(&mut w.gp, &r.doc_id, Some(1)).unwrap();
    let before = w.patient.accesses(&r.doc_id).unwrap().len();
    assert!(before >= 2);
    // The server drops the GP's reads from the list it shows the patient.
    w.h.on_response(&format!("GET /v1/documents/{}/accesses", r.doc_id), |ex| {
        let mut j = ex.json();
        j["accesses"].as_array_mut().unwrap().clear();
        ex.set_json(&j);
    });
    // Needed: the client detects the shrunken list (signed receipts in the log).
    assert!(
        w.patient.accesses(&r.doc_id).is_err(),
        "access list rolled back undetected"
    );
}

#[test]
#[ignore = "OPEN until issue 6 (transparency log, gossip/witness): a fork needs checkpoints compared across clients"]
fn forks_different_views_for_different_readers() {
    let mut w = World::new();
    let (doc, _v1, v2) = two_versions(&mut w);
    let patient_dev = w.patient.ks.device.id();
    let hidden = doc.to_string();
    // The patient sees only version 1; nobody else is affected.
    w.h.on_response("GET /v1/documents", move |ex| {
        if ex.device == Some(patient_dev) {
            let mut j = ex.json();
            j["documents"]
                .as_array_mut()
                .unwrap()
                .retain(|d| !(d["doc_id"] == json!(hidden) && d["doc_version"] == json!(2)));
            ex.set_json(&j);
        }
    });
    match read(&mut w.patient, &doc, None) {
        Ok((out, _)) => assert_eq!(out, v2, "the patient was shown a forked history undetected"),
        Err(e) => assert_eq!(e.code(), "integrity"),
    }
}

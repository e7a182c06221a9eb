//! Injection and context binding: a document planted under a key the server chose, two
//! documents' bodies swapped, patient A's document served under patient B's id, a document moved
//! into a context another party can read.

use serde_json::json;
use serment_client::ClientError;
use serment_client::contacts;
use serment_core::Error;

use crate::common::*;

#[test]
fn injection_document_planted_under_a_key_the_server_chose() {
    let mut w = World::new();
    let real = w.put(b"{\"real\":true}", "real", &[PATIENT]);
    // The server's own device ("mallory", registered like anyone) seals a document under a DEK
    // it chose, for the patient, and uploads it.
    let mut mallory = w.h.party("mallory");
    contacts::add(&mallory.api, &mut mallory.ks, PATIENT).unwrap();
    let planted = mallory
        .put(
            b"{\"planted\":true}".as_slice(),
            meta(b"{\"planted\":true}", "planted"),
            &[PATIENT.to_owned()],
        )
        .unwrap();
    // 1. As mallory's: the patient pinned no such author.
    let e = read_to_file(&w.h, &mut w.patient, &planted.doc_id, Some(1)).unwrap_err();
    assert!(matches!(e, ClientError::UnknownAuthor(_)), "{e:?}");
    // 2. The server rewrites its database so the document claims the lab's device and identity.
    let lab_dev = w.lab.ks.device.id().to_string();
    let lab_ident = w.lab.ks.identity.id().to_string();
    w.h.sql_exec(&format!(
        "UPDATE documents SET author_device = '{lab_dev}', author_identity = '{lab_ident}' WHERE doc_id = '{}'",
        planted.doc_id
    ));
    let e = read_to_file(&w.h, &mut w.patient, &planted.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            // The wrap's sharer (the real author) is not the claimed author and not a device
            // of the reader's own identity (PROTOCOL.md §4.1): refused there, or at the
            // document's signature.
            Error::WrongSigner {
                what: "document" | "key wrap",
                ..
            }
        ),
        "{e:?}"
    );
    // 3. The planted blob and wrap served under the real document's id.
    let planted_blob = w.blob(&planted);
    let planted_wrap = stored_wrap(&w.h, &planted.doc_id, 1, &w.patient.ks.device.id());
    serve_blob(&w.h, &real.doc_id, 1, planted_blob);
    serve_wrap(&w.h, &real.doc_id, 1, planted_wrap);
    let e = read_to_file(&w.h, &mut w.patient, &real.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::WrongSigner {
                // the planted wrap's sharer is not this document's author (§4.1 check) or
                // the document signature does not match
                what: "document" | "key wrap",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn injection_two_documents_bodies_swapped() {
    let mut w = World::new();
    let a = w.put(b"{\"doc\":\"A\"}", "a", &[PATIENT]);
    let b = w.put(b"{\"doc\":\"B\"}", "b", &[PATIENT]);
    // In storage: the server swaps the two blobs' bytes.
    let (ba, bb) = (w.h.blob_bytes(&a.blob_id), w.h.blob_bytes(&b.blob_id));
    w.h.set_blob_bytes(&a.blob_id, &bb);
    w.h.set_blob_bytes(&b.blob_id, &ba);
    for d in [&a.doc_id, &b.doc_id] {
        let e = read_to_file(&w.h, &mut w.patient, d, Some(1)).unwrap_err();
        assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
    }
    w.h.set_blob_bytes(&a.blob_id, &ba);
    w.h.set_blob_bytes(&b.blob_id, &bb);
    // In the database: blob ids swapped.
    let sw = |x: &str, d: &serment_core::DocId| {
        w.h.sql_exec(&format!(
            "UPDATE documents SET blob_id = '{x}' WHERE doc_id = '{d}'"
        ))
    };
    sw(&b.blob_id, &a.doc_id);
    sw(&a.blob_id, &b.doc_id);
    let e = read_to_file(&w.h, &mut w.patient, &a.doc_id, Some(1)).unwrap_err();
    assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
    sw(&a.blob_id, &a.doc_id);
    sw(&b.blob_id, &b.doc_id);
    // Both body and wrap of B served as A: the sealed header names B.
    let wb = stored_wrap(&w.h, &b.doc_id, 1, &w.patient.ks.device.id());
    serve_blob(&w.h, &a.doc_id, 1, bb);
    serve_wrap(&w.h, &a.doc_id, 1, wb);
    let e = read_to_file(&w.h, &mut w.patient, &a.doc_id, Some(1)).unwrap_err();
    assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
    w.h.clear_hooks();
    assert_eq!(
        read_to_file(&w.h, &mut w.patient, &a.doc_id, Some(1)).unwrap(),
        b"{\"doc\":\"A\"}"
    );
}

#[test]
fn injection_patient_a_document_served_under_patient_b_id() {
    let mut w = World::new();
    let mut patient_b = w.h.party("patient-b");
    contacts::add(&w.lab.api, &mut w.lab.ks, "patient-b").unwrap();
    contacts::add(&patient_b.api, &mut patient_b.ks, LAB).unwrap();
    let x = w.put(b"{\"patient\":\"A\",\"hba1c\":9.1}", "A", &[PATIENT, GP]);
    let y = w.put(
        b"{\"patient\":\"B\",\"hba1c\":5.2}",
        "B",
        &[GP, "patient-b"],
    );
    // Only the GP's view is forged: asked for B's report, it gets all of A's (A's blob and the
    // GP's genuine wrap for A).
    let gp_dev = w.gp.ks.device.id();
    let xb = w.blob(&x);
    let xw = stored_wrap(&w.h, &x.doc_id, 1, &gp_dev);
    w.h.on_response(&blob_route(&y.doc_id, 1), move |ex| {
        if ex.device == Some(gp_dev) {
            ex.set_body(xb.clone());
        }
    });
    w.h.on_response(&version_route(&y.doc_id, 1), move |ex| {
        if ex.device == Some(gp_dev) {
            let mut j = ex.json();
            j["wrap"] = json!(serment_hostile::harness::b64(&xw));
            ex.set_json(&j);
        }
    });
    let e = read_to_file(&w.h, &mut w.gp, &y.doc_id, Some(1)).unwrap_err();
    assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
    // Patient B's own view is untouched.
    let (b_content, _) = read(&mut patient_b, &y.doc_id, Some(1)).unwrap();
    assert_eq!(b_content, b"{\"patient\":\"B\",\"hba1c\":5.2}");
}

#[test]
fn injection_document_moved_into_a_context_another_party_can_read() {
    let mut w = World::new();
    // E is for the patient only; D is shared later with the GP.
    let e_doc = w.put(b"{\"private\":\"psychiatry\"}", "e", &[PATIENT]);
    let d_doc = w.put(b"{\"routine\":\"lipids\"}", "d", &[PATIENT]);
    // When the lab fetches its own wrap of D to re-wrap it for the GP, the server hands it the
    // lab's wrap of E instead, so that the GP would receive E's key.
    let lab_dev = w.lab.ks.device.id();
    let e_wrap = stored_wrap(&w.h, &e_doc.doc_id, 1, &lab_dev);
    serve_wrap(&w.h, &d_doc.doc_id, 1, e_wrap);
    let before = w.h.exchanges().len();
    let err = w
        .lab
        .share(&d_doc.doc_id, Some(1), &[GP.to_owned()])
        .unwrap_err();
    assert!(
        matches!(integrity(&err), Error::ContextMismatch(_)),
        "{err:?}"
    );
    assert!(
        w.h.exchanges()
            .iter()
            .skip(before)
            .all(|x| !x.path.ends_with("/wraps")),
        "no wrap was sent"
    );
    // The server hands mallory (who pinned the lab) the patient's wrap: it is addressed to
    // another device and sealed to another key.
    w.h.clear_hooks();
    let mut mallory = w.h.party("mallory");
    contacts::add(&mallory.api, &mut mallory.ks, LAB).unwrap();
    let pw = stored_wrap(&w.h, &e_doc.doc_id, 1, &w.patient.ks.device.id());
    let blob = w.blob(&e_doc);
    let doc = e_doc.doc_id;
    let lab_s = lab_dev.to_string();
    w.h.on_response(&version_route(&doc, 1), move |ex| {
        // The real server refuses mallory (403): the hostile one answers as if it could read.
        ex.status = 200;
        ex.set_json(
            &json!({ "doc_id": doc.to_string(), "doc_version": 1, "author_device": lab_s,
            "author_identity": "00".repeat(32), "blob_id": "00".repeat(32), "size": 1, "created_at": 0,
            "log_size": 0, "wrap": serment_hostile::harness::b64(&pw) }),
        );
    });
    w.h.on_response(&blob_route(&doc, 1), move |ex| {
        ex.status = 200;
        ex.content_type = Some("application/octet-stream".into());
        ex.set_body(blob.clone());
    });
    let err = read_to_file(&w.h, &mut mallory, &doc, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&err),
            Error::ContextMismatch("the key wrap is for another device")
        ),
        "{err:?}"
    );
}

#[test]
fn injection_wrap_bound_to_another_sealing_of_the_same_version() {
    // The lab sealed the same document id and version twice (a retried upload: the first blob was
    // stored, the commit was lost). The server pairs the committed wrap with the other sealing:
    // document id and version agree, only the header hash tells them apart (PROTOCOL.md §7).
    let mut w = World::new();
    let body = content(100_000, 5);
    let r = w.put(&body, "retry", &[PATIENT]);
    let recipients = w.lab.recipients(&[PATIENT.to_owned()]).unwrap();
    let mut other = Vec::new();
    serment_core::document::seal(
        serment_core::document::SealInput {
            doc_id: r.doc_id,
            doc_version: 1,
            author: &w.lab.ks.device,
            recipients: &recipients,
            metadata: meta(&body, "retry"),
        },
        body.as_slice(),
        &mut other,
    )
    .unwrap();
    w.lab.api.upload_blob(&mut other.as_slice()).unwrap();
    serve_blob(&w.h, &r.doc_id, 1, other);
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::ContextMismatch("the key wrap is bound to another sealed header")
        ),
        "{e:?}"
    );
}

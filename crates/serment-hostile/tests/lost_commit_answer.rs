//! A one-request inline commit whose answer never reaches the client (PROTOCOL.md §8.3): the
//! server committed the version, the client saw a failure. What must hold: the version is whole
//! and readable, a retry of the same version is refused (never a second copy), and the client's
//! log pin and later commits are unaffected.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use serment_client::ClientError;
use serment_client::contacts;
use serment_core::DocId;
use serment_core::document::Metadata;
use serment_hostile::harness::Hostile;

const LAB: &str = "labo-biomed";
const PATIENT: &str = "patient-7f3a";

fn meta(content: &[u8]) -> Metadata {
    Metadata {
        content_length: content.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        title: Some("t".into()),
        ..Metadata::default()
    }
}

#[test]
fn commit_answer_lost_after_the_commit() {
    let h = Hostile::new();
    let mut lab = h.party(LAB);
    let mut patient = h.party(PATIENT);
    contacts::add(&lab.api, &mut lab.ks, PATIENT).unwrap();
    contacts::add(&patient.api, &mut patient.ks, LAB).unwrap();
    let recipients = lab.recipients(&[PATIENT.to_owned()]).unwrap();
    // The proxy forwards the commit, then loses its answer (a gateway error instead).
    h.on_response("POST /v1/documents", |ex| {
        ex.status = 502;
        ex.set_json(&serde_json::json!({
            "error": { "code": "bad_gateway", "message": "upstream connection reset" }
        }));
    });
    let doc = DocId::random().unwrap();
    let c = b"{\"resourceType\":\"Observation\",\"v\":1}";
    let e = lab
        .put_version(c.as_slice(), meta(c), doc, 1, &recipients)
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Server { status: 502, .. }),
        "{e:?}"
    );
    h.clear_hooks();
    // The version was committed all the same, whole: the patient reads and verifies it.
    let mut out = Vec::new();
    patient.get(&doc, Some(1), &mut out).unwrap();
    assert_eq!(out, c);
    // Retrying the same version is refused (409), whatever the content: never a second copy.
    let e = lab
        .put_version(c.as_slice(), meta(c), doc, 1, &recipients)
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Server { status: 409, .. }),
        "{e:?}"
    );
    // The next version commits and is checked against the pin as usual (the lost commit's
    // entries are simply part of the log the client now proves consistent).
    let c2 = b"{\"resourceType\":\"Observation\",\"v\":2}";
    lab.put_version(c2.as_slice(), meta(c2), doc, 2, &recipients)
        .unwrap();
    let mut out = Vec::new();
    patient.get(&doc, Some(2), &mut out).unwrap();
    assert_eq!(out, c2);
    let t = serment_client::log::trust(&patient.api, &patient.ks).unwrap();
    let report = serment_client::log::verify_log(&patient.api, &t).unwrap();
    assert!(report.verified(), "{report:?}");
    patient.audit(&doc).unwrap();
}

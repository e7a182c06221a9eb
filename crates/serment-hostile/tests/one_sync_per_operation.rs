//! Issue 13 §1: a session syncs its log view once per operation. `get` without a version used
//! to fetch the checkpoint twice (once for the freshness check of the listing, once before the
//! wrap); it now relies on the checkpoint the freshness check accepted, and the checks it makes
//! (the wrap's inclusion proof against that checkpoint) are unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use serment_client::ClientError;
use serment_client::contacts;
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

fn checkpoint_fetches(h: &Hostile, since: usize) -> usize {
    h.exchanges()
        .iter()
        .skip(since)
        .filter(|e| e.matches("GET /v1/log/checkpoint"))
        .count()
}

#[test]
fn get_fetches_the_checkpoint_once() {
    let h = Hostile::new();
    let mut lab = h.party(LAB);
    let mut patient = h.party(PATIENT);
    contacts::add(&lab.api, &mut lab.ks, PATIENT).unwrap();
    contacts::add(&patient.api, &mut patient.ks, LAB).unwrap();
    let c = b"{\"resourceType\":\"Observation\",\"v\":1}";
    let r = lab
        .put(c.as_slice(), meta(c), &[PATIENT.to_owned()])
        .unwrap();

    // The latest version: listing, proven document history, wrap, blob; one checkpoint.
    let before = h.exchanges().len();
    let mut out = Vec::new();
    patient.get(&r.doc_id, None, &mut out).unwrap();
    assert_eq!(out, c);
    assert_eq!(checkpoint_fetches(&h, before), 1);
    // A named version: one checkpoint too.
    let before = h.exchanges().len();
    let mut out = Vec::new();
    patient.get(&r.doc_id, Some(1), &mut out).unwrap();
    assert_eq!(out, c);
    assert_eq!(checkpoint_fetches(&h, before), 1);

    // The checkpoint reused is the one the wrap is proven against: a wrap proof against another
    // tree size is still refused.
    let pattern = format!("GET /v1/documents/{}/versions/1", r.doc_id);
    h.on_response(&pattern, |ex| {
        let mut j = ex.json();
        j["log_size"] = (j["log_size"].as_u64().unwrap() + 1).into();
        ex.set_json(&j);
    });
    let e = patient.get(&r.doc_id, None, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(e, ClientError::Log(serment_core::Error::BadInclusionProof)),
        "{e:?}"
    );
}

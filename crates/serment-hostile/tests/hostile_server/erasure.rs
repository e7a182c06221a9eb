//! Erasure that stays erased, and only by its author (issue 12 §5, PROTOCOL.md §11.3.2,
//! THREAT_MODEL.md): a tombstone the server made up (here: the operator edits its own database
//! so that a recipient's erasure is accepted and logged) is refused by every client, exit 4; a
//! server that answers `erased` with no tombstone in the log is withholding, exit 4; a recipient
//! cannot erase; an honest erasure reads as erased, exit 6.

use serment_client::ClientError;
use serment_client::log::verify_log_pinned;
use serment_client::vault::Session;
use serment_core::DocId;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::{EntryKind, Revocation};
use serment_core::log::erasure::{Erasure, ErasureReason};
use serment_hostile::harness::Hostile;

use crate::care_teams::operator_append_device;
use crate::common::*;

const AT: u64 = 1_800_000_000;

/// The server answers `erased` for every version (its database may well say so).
fn answer_erased(h: &Hostile) {
    h.on_response("GET /v1/documents/*/versions/*", |ex| {
        ex.status = 410;
        ex.set_json(&serde_json::json!({
            "error": { "code": "erased", "message": "document erased (reason 1)" }
        }));
    });
}

/// Every reader refuses the tombstone as a log error (exit 4), never "erased" (exit 6), and
/// `verify-log` names the erasure.
fn refused_by_every_reader(w: &mut World, doc: &DocId) {
    for (who, s) in [("patient", &mut w.patient), ("gp", &mut w.gp)] {
        let s: &mut Session = s;
        for v in [None, Some(1)] {
            let e = read(s, doc, v).unwrap_err();
            assert!(matches!(e, ClientError::Log(_)), "{who} {v:?}: {e:?}");
            assert_eq!(e.exit_code(), 4, "{who} {v:?}: {e}");
        }
    }
    let report = verify_log_pinned(&w.patient.api, &w.patient.ks).unwrap();
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("an erasure by a device of neither the document's author")),
        "{:?}",
        report.errors
    );
}

/// Review R1: the log operator makes an identity key of its own, logs a device record carrying
/// the author's handle under it (a record only proves its own signature) and a tombstone signed
/// by that device. The author's proven key history does not hold that device (its replay breaks
/// on an identity key it never rotated to): every reader reports a log error, not an erasure
/// by the author.
#[test]
fn a_tombstone_from_a_device_the_server_certified_under_the_authors_handle_is_refused() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "cr", &[GP, PATIENT]);
    read(&mut w.patient, &r.doc_id, None).unwrap();
    read(&mut w.gp, &r.doc_id, None).unwrap();
    let operator = IdentitySecret::generate();
    let fake = DeviceSecret::generate();
    let fake_id = fake.id().to_string();
    let rec = operator.sign_device_record(LAB, &fake, AT).unwrap();
    operator_append_device(&w.h, &format!("h:{LAB}"), EntryKind::Device, &rec, &fake_id);
    let t = Erasure::sign(&r.doc_id, ErasureReason::PatientRequest, &fake, AT);
    operator_append_device(
        &w.h,
        &format!("d:{}", r.doc_id),
        EntryKind::Erasure,
        &t,
        &fake_id,
    );
    answer_erased(&w.h);
    refused_by_every_reader(&mut w, &r.doc_id);
}

/// Review R1: a device the author linked, then revoked (stolen), signs a tombstone that the
/// operator logs. Its record is the author's own, but it is not a current device of the author
/// at the tombstone's index: refused.
#[test]
fn a_tombstone_from_a_revoked_device_of_the_author_is_refused() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "cr", &[GP, PATIENT]);
    read(&mut w.patient, &r.doc_id, None).unwrap();
    read(&mut w.gp, &r.doc_id, None).unwrap();
    let stolen = DeviceSecret::generate();
    let stolen_id = stolen.id().to_string();
    let rec = w
        .lab
        .ks
        .identity
        .sign_device_record(LAB, &stolen, AT)
        .unwrap();
    operator_append_device(
        &w.h,
        &format!("h:{LAB}"),
        EntryKind::Device,
        &rec,
        &stolen_id,
    );
    let rev = Revocation::sign(LAB, &w.lab.ks.identity, &stolen.id(), AT).unwrap();
    operator_append_device(&w.h, &format!("h:{LAB}"), EntryKind::Revocation, &rev, "");
    let t = Erasure::sign(&r.doc_id, ErasureReason::SentInError, &stolen, AT);
    operator_append_device(
        &w.h,
        &format!("d:{}", r.doc_id),
        EntryKind::Erasure,
        &t,
        &stolen_id,
    );
    answer_erased(&w.h);
    refused_by_every_reader(&mut w, &r.doc_id);
}

#[test]
fn a_tombstone_the_server_accepts_from_a_recipient_is_refused_by_every_client() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "cr", &[GP, PATIENT]);
    read(&mut w.patient, &r.doc_id, None).unwrap();
    // The operator makes the GP (a recipient) the document's author in its own database, so the
    // server accepts the GP's tombstone and logs it, proofs and all.
    let gp_dev = w.gp.ks.device.id();
    let n = w.h.sql_exec(&format!(
        "UPDATE documents SET author_identity = \
         (SELECT identity_id FROM devices WHERE device_id = '{gp_dev}') WHERE doc_id = '{}'",
        r.doc_id
    ));
    assert_eq!(n, 1);
    w.gp.erase(&r.doc_id, ErasureReason::PatientRequest)
        .unwrap();
    for (who, s) in [("patient", &mut w.patient), ("lab", &mut w.lab)] {
        let e = read(s, &r.doc_id, None).unwrap_err();
        assert_eq!(e.exit_code(), 4, "{who}: {e}");
        assert!(matches!(e, ClientError::Log(_)), "{who}: {e:?}");
        assert!(e.to_string().contains("forged"), "{who}: {e}");
        let e = read(s, &r.doc_id, Some(1)).unwrap_err();
        assert_eq!(e.exit_code(), 4, "{who} v1: {e}");
    }
    let report = verify_log_pinned(&w.patient.api, &w.patient.ks).unwrap();
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("neither the document's author")),
        "{:?}",
        report.errors
    );
}

#[test]
fn erased_without_a_tombstone_in_the_log_is_withholding() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "cr", &[PATIENT]);
    w.h.on_response("GET /v1/documents/*/versions/*", |ex| {
        ex.status = 410;
        ex.set_json(&serde_json::json!({
            "error": { "code": "erased", "message": "document erased (reason 1)" }
        }));
    });
    let e = read(&mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert!(matches!(e, ClientError::Withheld(_)), "{e:?}");
    w.h.clear_hooks();
    read(&mut w.patient, &r.doc_id, Some(1)).unwrap();
}

#[test]
fn a_recipient_cannot_erase_and_the_author_can() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "cr", &[GP, PATIENT]);
    let e = w.gp.erase(&r.doc_id, ErasureReason::Other).unwrap_err();
    assert!(
        matches!(&e, ClientError::Server { status: 403, .. }),
        "{e:?}"
    );
    read(&mut w.patient, &r.doc_id, None).unwrap();
    w.lab.erase(&r.doc_id, ErasureReason::SentInError).unwrap();
    for s in [&mut w.patient, &mut w.gp] {
        let e = read(s, &r.doc_id, None).unwrap_err();
        assert_eq!(e.exit_code(), 6, "{e}");
        assert!(
            matches!(e, ClientError::Erased { reason_code: 2, .. }),
            "{e:?}"
        );
    }
    assert!(w.h.all_blobs().iter().all(|(id, _)| *id != r.blob_id));
}

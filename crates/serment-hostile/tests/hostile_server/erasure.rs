//! Erasure that stays erased, and only by its author (issue 12 §5, PROTOCOL.md §11.3.2,
//! THREAT_MODEL.md): a tombstone the server made up (here: the operator edits its own database
//! so that a recipient's erasure is accepted and logged) is refused by every client, exit 4; a
//! server that answers `erased` with no tombstone in the log is withholding, exit 4; a recipient
//! cannot erase; an honest erasure reads as erased, exit 6.

use serment_client::ClientError;
use serment_client::log::verify_log_pinned;
use serment_core::log::erasure::ErasureReason;

use crate::common::*;

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

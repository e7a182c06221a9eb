//! Social recovery (PROTOCOL.md §4.3) as a hostile server shows it to its readers (REVIEW5 U16,
//! U2, U3, U9): a contacts entry it signs itself, a chain it truncates, a veto it hides from a
//! contact, a log time it puts in the future. Each reaches the reader as an error or a warning,
//! never as silence.

use serde_json::json;
use serment_client::ClientError;
use serment_client::log::verify_log_pinned;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::EntryKind;
use serment_core::log::social::{ContactsBody, RecoveryContacts, SocialRecoveryRequest};
use serment_core::social::MIN_WAITING_PERIOD as WAIT;

use crate::care_teams::{operator_append_at, operator_append_device};
use crate::common::{PATIENT, World};
use crate::social_recovery::{integrity_msg, name_contacts, request};

fn social_subject() -> String {
    format!("s:{PATIENT}")
}

fn pending_ids(w: &mut World) -> Vec<String> {
    w.patient
        .pending_recovery_requests(PATIENT)
        .unwrap()
        .into_iter()
        .map(|p| p.request_id)
        .collect()
}

/// The hostile server's social chain of the patient cut to its first `keep` entries, for
/// every reader until the hooks are cleared.
fn serve_truncated(w: &World, keep: usize) {
    w.h.on_response(&format!("GET /v1/log/social/{PATIENT}"), move |x| {
        let mut v = x.json();
        let kept: Vec<serde_json::Value> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .take(keep)
            .cloned()
            .collect();
        v["entries"] = json!(kept);
        x.set_json(&v);
    });
}

fn is_truncation(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Log(serment_core::Error::History { reason }) if reason.contains("truncated")
    )
}

/// REVIEW5 U16: a contacts entry self-signed by a key of the server's (the honest server refuses
/// it; a hostile one logs it) used to become "the current contacts entry" for every reader, so
/// that every request on the real set was stale and the owner's warning went silent.
#[test]
fn social_recovery_forged_contacts_entry_does_not_hide_a_request() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, WAIT);
    let (_path, id) = request(&w.h, "stranger-machine");
    assert_eq!(pending_ids(&mut w), vec![id.clone()]);
    let real = w.patient.recovery_contacts().unwrap().unwrap().1;
    let forged = RecoveryContacts::sign(
        &ContactsBody {
            handle: PATIENT,
            recovery_device: DeviceSecret::generate().id(),
            threshold: real.threshold,
            waiting_period: WAIT,
            escrow_hash: [0; 32],
            contacts: &real.contacts,
            at: serment_client::now_secs(),
        },
        &IdentitySecret::generate(),
    )
    .unwrap();
    let idx = operator_append_device(
        &w.h,
        &social_subject(),
        EntryKind::RecoveryContacts,
        &forged,
        "",
    );
    // The request on the real set is still pending, and the forged entry is reported.
    assert_eq!(
        pending_ids(&mut w),
        vec![id],
        "the forged contacts entry hid the pending request"
    );
    let o = w.patient.own_social_status().unwrap();
    assert_eq!(o.forged_contacts, vec![idx]);
    assert_eq!(o.contacts.unwrap().identity_key, real.identity_key);
    let e = w.patient.recovery_contacts().unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e:?}");
    // Any auditor's verify-log names it.
    let report = verify_log_pinned(&w.patient.api, &w.patient.ks).unwrap();
    assert!(
        report.errors.iter().any(|e| e.contains(&format!(
            "social recovery of {PATIENT}: the recovery contacts entry at log index {idx}"
        ))),
        "{:?}",
        report.errors
    );
}

/// REVIEW5 U2: the owner's client pins the head of her social chain it verified; a server that
/// then serves a chain cut before it (or none at all) to hide a pending request is refused
/// rather than believed.
#[test]
fn social_recovery_request_hidden_from_the_owner_by_a_truncated_chain_is_refused() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, WAIT);
    let (_path, id) = request(&w.h, "stranger-machine");
    // The owner's device sees the request once: its head is pinned.
    assert_eq!(pending_ids(&mut w), vec![id.clone()]);
    // The server now serves the chain cut before the request.
    serve_truncated(&w, 1);
    let e = w.patient.pending_recovery_requests(PATIENT).unwrap_err();
    assert!(
        is_truncation(&e),
        "a truncated chain must be refused: {e:?}"
    );
    assert_eq!(e.exit_code(), 4);
    // Or no chain at all ("no entries" is not believed once a head is pinned).
    w.h.clear_hooks();
    w.h.on_request(&format!("GET /v1/log/social/{PATIENT}"), |x| {
        x.answered = true;
        x.status = 404;
        x.set_json(&json!({ "error": { "code": "not_found", "message": "no entries" } }));
    });
    let e = w.patient.pending_recovery_requests(PATIENT).unwrap_err();
    assert!(is_truncation(&e), "a 404 must be refused: {e:?}");
    w.h.clear_hooks();
    assert_eq!(pending_ids(&mut w), vec![id]);
}

/// REVIEW5 U2, what remains: a request logged after the owner's last read is a tail the server
/// can leave out of what it serves her; only a verifiable map (or a witness that audits each
/// subject's chain) makes it visible.
#[test]
#[ignore = "OPEN: needs the verifiable map (REVIEW5 U2): a tail after the owner's last read"]
fn social_recovery_request_logged_after_the_owners_last_read_cannot_be_hidden() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, WAIT);
    assert!(pending_ids(&mut w).is_empty());
    let (_path, id) = request(&w.h, "stranger-machine");
    serve_truncated(&w, 1);
    match w.patient.pending_recovery_requests(PATIENT) {
        Ok(p) => assert!(
            p.iter().any(|p| p.request_id == id),
            "the request was hidden"
        ),
        Err(e) => assert_eq!(e.exit_code(), 4, "{e:?}"),
    }
}

/// REVIEW5 U3: a contact shown the chain without the owner's veto (its tail) approves; once its
/// approval is logged, after the veto, the chain up to it is whole: the contact's client sees the
/// veto before its approval and says so, loudly.
#[test]
fn social_recovery_veto_hidden_from_a_contact_is_detected() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, WAIT);
    let (_path, id) = request(&w.h, "stranger-machine");
    assert!(w.patient.veto_recovery(&id).unwrap().vetoed);
    let with_veto = w.h.sql(&format!(
        "SELECT idx FROM log_entries WHERE subject = '{}'",
        social_subject()
    ));
    let n = with_veto.len();
    assert_eq!(n, 3, "contacts, request, veto");
    // The server hides the veto (the tail) from the GP, and takes the approval anyway.
    w.h.on_response(&format!("GET /v1/log/social/{PATIENT}"), move |x| {
        let mut v = x.json();
        let entries = v["entries"].as_array().unwrap().clone();
        if entries.len() == n {
            v["entries"] = json!(entries[..n - 1].to_vec());
            x.set_json(&v);
        }
    });
    w.h.sql_exec(&format!(
        "UPDATE social_requests SET vetoed = 0 WHERE request_id = '{id}'"
    ));
    let e = w.gp.approve_recovery(PATIENT, &id).unwrap_err();
    assert!(integrity_msg(&e).contains("VETOED"), "{e:?}");
    assert_eq!(e.exit_code(), 4);
}

/// REVIEW5 U9: the envelope's `logged_at` is the server's word; a request logged "next year"
/// must not show the owner a deadline next year while the escrow is served after the waiting
/// period. The view counts from the earlier of the log time and the request's own signed time,
/// and flags the log time.
#[test]
fn social_recovery_request_logged_in_the_future_is_flagged_to_the_owner() {
    let mut w = World::new();
    let (_relative, _friend) = name_contacts(&mut w, WAIT);
    let chain = w
        .patient
        .api
        .proven_social_chain(&mut w.patient.ks, PATIENT)
        .unwrap();
    let ch = serment_core::social::contacts_hash(&chain[0].entry.payload_bytes);
    let device = DeviceSecret::generate();
    let now = serment_client::now_secs();
    let req = SocialRecoveryRequest::sign(PATIENT, &ch, &device, now).unwrap();
    operator_append_at(
        &w.h,
        &social_subject(),
        EntryKind::RecoveryRequest,
        &req,
        &device.id().to_string(),
        now + 365 * 86_400,
    );
    let pending = w.patient.pending_recovery_requests(PATIENT).unwrap();
    assert_eq!(pending.len(), 1);
    assert!(
        pending[0].ready_at <= now + WAIT,
        "the deadline shown follows the server's future log time: {} > {}",
        pending[0].ready_at,
        now + WAIT
    );
    assert!(pending[0].logged_in_future);
}

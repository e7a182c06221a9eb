//! Unsigned membership and device changes: the server adds a device to a user's directory entry
//! (in its database) and then uses it to request keys. A device record counts only if the pinned
//! identity key signed it for that handle (PROTOCOL.md §4).

use serde_json::json;
use serment_client::ClientError;
use serment_client::contacts;
use serment_core::Error;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_hostile::harness::b64;

use crate::common::*;

#[test]
fn unsigned_device_added_by_the_server_gets_no_key() {
    let mut w = World::new();
    // The server inserts a device it controls under the patient's handle and identity id.
    let mallory_ident = IdentitySecret::generate();
    let mallory_dev = DeviceSecret::generate();
    let rec = mallory_ident
        .sign_device_record(PATIENT, &mallory_dev, 1_800_000_000)
        .unwrap();
    let patient_ident = w.patient.ks.identity.id().to_string();
    w.h.sql_exec(&format!(
        "INSERT INTO devices (device_id, identity_id, handle, record, created_at) VALUES ('{}', '{patient_ident}', '{PATIENT}', {}, 1800000000)",
        mallory_dev.id(),
        w.h.bytes_literal(&rec)
    ));
    let served = w.h.call(
        axum::http::Method::GET,
        &format!("/v1/directory/{PATIENT}"),
        None,
        Vec::new(),
    );
    assert!(
        String::from_utf8_lossy(&served.1).contains(&b64(&rec)),
        "the server serves the added device"
    );
    let e = w
        .lab
        .put(b"{}".as_slice(), meta(b"{}", "x"), &[PATIENT.to_owned()])
        .unwrap_err();
    assert!(matches!(e, ClientError::KeySubstitution { .. }), "{e:?}");
    // The added device holds no wrap, so it has nothing to request a key with.
    let n = w.h.sql(&format!(
        "SELECT COUNT(*) FROM wraps WHERE recipient_device = '{}'",
        mallory_dev.id()
    ));
    assert_eq!(n[0][0].1.as_deref(), Some(b"0".as_slice()));
}

#[test]
fn unsigned_device_record_with_the_pinned_identity_key_is_refused() {
    let mut w = World::new();
    // A record that names the patient's identity key but carries the server's own device keys:
    // the identity signature no longer verifies.
    let real = w.patient.ks.own_record().unwrap();
    let mallory_dev = DeviceSecret::generate();
    let mut forged = real.clone();
    let keys_at = 4 + 2 + 2 + 1 + PATIENT.len() + 32;
    forged[keys_at..keys_at + 32].copy_from_slice(&mallory_dev.signing_public_key());
    forged[keys_at + 32..keys_at + 64].copy_from_slice(&mallory_dev.encryption_public_key());
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&real), b64(&forged)] }));
    });
    let e = w
        .lab
        .put(b"{}".as_slice(), meta(b"{}", "x"), &[PATIENT.to_owned()])
        .unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::BadSignature {
                what: "device record"
            }
        ),
        "{e:?}"
    );
}

#[test]
fn unsigned_membership_record_signed_for_another_handle_is_refused() {
    let mut w = World::new();
    // The patient's identity legitimately signed a device for another handle; the server lists
    // it under the patient's handle to slip it into the recipients.
    let other_dev = DeviceSecret::generate();
    let other = w
        .patient
        .ks
        .identity
        .sign_device_record("patient-alt", &other_dev, 1_800_000_000)
        .unwrap();
    let real = w.patient.ks.own_record().unwrap();
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        ex.set_json(&json!({ "handle": PATIENT, "records": [b64(&real), b64(&other)] }));
    });
    let e = w
        .lab
        .put(b"{}".as_slice(), meta(b"{}", "x"), &[PATIENT.to_owned()])
        .unwrap_err();
    assert!(matches!(integrity(&e), Error::ContextMismatch(_)), "{e:?}");
}

#[test]
fn unsigned_device_used_to_request_keys_gets_nothing_it_can_open() {
    let mut w = World::new();
    let r = w.put(b"{\"secret\":1}", "x", &[PATIENT]);
    // The server's device logs in (it is registered under its own handle) and asks for the key.
    let mut mallory = w.h.party("mallory");
    contacts::add(&mallory.api, &mut mallory.ks, LAB).unwrap();
    // Refused as not shared with it (403 `not_shared`, exit 6), never a key.
    let e = read_to_file(&w.h, &mut mallory, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::NotShared(_)
                | ClientError::Server {
                    status: 403 | 404,
                    ..
                }
        ),
        "{e:?}"
    );
}

/// Closed by issue 16 (PROTOCOL.md §12): the server adds a member to a care team in its own
/// tables, without an admin's signed, logged change. The sharer's verified view does not hold
/// the member, and the member's device gets no key that opens the team's wraps.
#[test]
fn unsigned_membership_care_team_member_added_by_the_server() {
    let mut w = World::new();
    w.lab.team_new("cardio-chu").unwrap();
    w.lab.team_add("cardio-chu", GP, false).unwrap();
    let r = w.put(b"{\"team\":1}", "t", &[]);
    w.lab.share_to_team(&r.doc_id, 1, "cardio-chu").unwrap();
    let mut mallory = w.h.party("mallory");
    contacts::add(&mallory.api, &mut mallory.ks, LAB).unwrap();
    w.h.sql_exec(
        "INSERT INTO team_members (team, handle, admin) VALUES ('cardio-chu', 'mallory', 1)",
    );
    // The server now lists mallory and serves her the team's wrap.
    assert_eq!(mallory.team_list().unwrap(), vec!["cardio-chu".to_owned()]);
    let view = w.lab.verify_team("cardio-chu").unwrap().unwrap();
    assert!(
        !view.state.is_member("mallory"),
        "the sharer's verified view"
    );
    let e = read_to_file(&w.h, &mut mallory, &r.doc_id, Some(1)).unwrap_err();
    assert!(matches!(e.exit_code(), 4 | 6), "{e:?}");
}

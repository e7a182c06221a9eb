//! Devices (issue 16 §1, PROTOCOL.md §4.1): a server that relays the pairing of a second device
//! and tampers with it — substitutes the new device's keys, replays a message of an earlier
//! pairing, changes the finish — and a server that serves a device record the identity did not
//! sign, to be wrapped to. Each must be refused with nothing enrolled and nothing wrapped.

use std::time::Duration;

use serde_json::json;
use serment_client::ClientError;
use serment_client::device::{self, Joined};
use serment_client::transport::Transport;
use serment_core::Error;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::keystore::KdfParams;
use serment_core::pairing::{self, PairingCode};
use serment_hostile::harness::b64;
use zeroize::Zeroizing;

use crate::common::*;

const WAIT: Duration = Duration::from_secs(20);

/// Runs `device join` for `code` in a thread (it polls the relay while the linking device works).
fn join_in_thread(
    w: &World,
    name: &str,
    code: String,
) -> (
    std::path::PathBuf,
    std::thread::JoinHandle<Result<Joined, ClientError>>,
) {
    let path = w.h.keystore_path(name);
    let p = path.clone();
    let url = w.h.url().to_owned();
    let t = std::thread::spawn(move || {
        device::join(
            &p,
            Zeroizing::new("passphrase of the phone".into()),
            KdfParams::FLOOR,
            &url,
            &Transport::default(),
            &code,
            WAIT,
        )
    });
    (path, t)
}

fn devices_in_log(w: &mut World) -> usize {
    w.patient
        .device_list()
        .unwrap()
        .iter()
        .filter(|d| d.active)
        .count()
}

fn is_pairing_refusal(e: &ClientError) -> bool {
    matches!(e, ClientError::Integrity(Error::Pairing(_)))
}

#[test]
fn devices_pairing_happy_path_through_the_proxy() {
    // The control: the same flow, untampered, enrols and catches up.
    let mut w = World::new();
    let r = w.put(b"older result", "older", &[PATIENT]);
    let pending = w.patient.link_start().unwrap();
    let (_, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    let out = w.patient.link_finish(pending, WAIT).unwrap();
    assert_eq!(out.caught_up, 1);
    let mut phone = t.join().unwrap().unwrap().session;
    let (bytes, _) = read(&mut phone, &r.doc_id, None).unwrap();
    assert_eq!(bytes, b"older result");
    assert_eq!(devices_in_log(&mut w), 2);
}

#[test]
fn devices_pairing_join_with_substituted_keys_is_refused_nothing_enrolled() {
    let mut w = World::new();
    let pending = w.patient.link_start().unwrap();
    let slot = pending.code.slot().to_owned();
    // The server answers the hello itself with keys it holds, guessing the password (it knows
    // the slot, not the secret digits), in place of the new device's join.
    let (_, hello) = {
        let st = w.patient.api.pairing_show(&slot).unwrap();
        ((), serment_client::api::b64d(&st.hello, "hello").unwrap())
    };
    let guess = PairingCode::parse(&format!("{slot}0000000000")).unwrap();
    let mallory = DeviceSecret::generate();
    let (forged_join, forged) = pairing::Join::start(&guess, &hello, &mallory).unwrap();
    let forged_b64 = b64(&forged);
    w.h.on_request("POST /v1/pairing/*/join", move |ex| {
        ex.request = serde_json::to_vec(&json!({ "message": forged_b64 })).unwrap();
    });
    // The server keeps its side of the forged join and waits for a finish it could open (it
    // would hold the identity key).
    let (url, s2) = (w.h.url().to_owned(), slot.clone());
    let attacker = std::thread::spawn(move || {
        let api = serment_client::api::Api::new(&url).unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            let st = api.pairing_show(&s2).unwrap();
            if let Some(f) = st.finish {
                let f = serment_client::api::b64d(&f, "finish").unwrap();
                return forged_join.open_finish(&f).is_ok();
            }
            if st.aborted {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    });
    let (path, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    let e = w.patient.link_finish(pending, WAIT).unwrap_err();
    assert!(is_pairing_refusal(&e), "{e:?}");
    let je = t.join().unwrap().unwrap_err();
    assert!(is_pairing_refusal(&je), "{je:?}");
    assert!(!path.exists(), "a keystore was written");
    assert!(
        !attacker.join().unwrap(),
        "the server opened the finish: it holds the identity key"
    );
    w.h.clear_hooks();
    assert_eq!(devices_in_log(&mut w), 1, "a device was enrolled");
    let n = w.h.sql(&format!(
        "SELECT COUNT(*) FROM devices WHERE device_id = '{}'",
        mallory.id()
    ));
    assert_eq!(n[0][0].1.as_deref(), Some(b"0".as_slice()));
}

#[test]
fn devices_pairing_replayed_join_of_an_earlier_pairing_is_refused() {
    let mut w = World::new();
    // An earlier, completed pairing: the server kept its join.
    let first = w.patient.link_start().unwrap();
    let (_, t) = join_in_thread(&w, "phone", first.code.display().to_string());
    w.patient.link_finish(first, WAIT).unwrap();
    t.join().unwrap().unwrap();
    let old_join = w.h.last("POST /v1/pairing/*/join").request.clone();
    // A second pairing: the server replays the old join in place of the new one.
    let second = w.patient.link_start().unwrap();
    w.h.on_request("POST /v1/pairing/*/join", move |ex| {
        ex.request = old_join.clone();
    });
    let (path, t) = join_in_thread(&w, "tablet", second.code.display().to_string());
    let e = w.patient.link_finish(second, WAIT).unwrap_err();
    assert!(is_pairing_refusal(&e), "{e:?}");
    assert!(is_pairing_refusal(&t.join().unwrap().unwrap_err()));
    assert!(!path.exists());
    w.h.clear_hooks();
    assert_eq!(
        devices_in_log(&mut w),
        2,
        "only the first pairing enrolled a device"
    );
}

#[test]
fn devices_pairing_replayed_or_changed_finish_is_refused_by_the_new_device() {
    let mut w = World::new();
    let first = w.patient.link_start().unwrap();
    let (_, t) = join_in_thread(&w, "phone", first.code.display().to_string());
    w.patient.link_finish(first, WAIT).unwrap();
    t.join().unwrap().unwrap();
    let old = w.h.last("GET /v1/pairing/*").json();
    let old_finish = old["finish"].as_str().unwrap().to_owned();
    // Second pairing: every poll of the new device is answered with the old finish.
    let second = w.patient.link_start().unwrap();
    w.h.on_response("GET /v1/pairing/*", move |ex| {
        let mut v = ex.json();
        if v["join"].is_string() {
            v["finish"] = json!(old_finish);
            ex.set_json(&v);
        }
    });
    let (path, t) = join_in_thread(&w, "tablet", second.code.display().to_string());
    let je = t.join().unwrap().unwrap_err();
    assert!(is_pairing_refusal(&je), "{je:?}");
    assert!(
        !path.exists(),
        "the new device kept a keystore from a replayed finish"
    );
}

#[test]
fn devices_pairing_code_is_single_use() {
    let w = World::new();
    let mut patient = w.patient;
    let p = patient.link_start().unwrap();
    let slot = p.code.slot().to_owned();
    let st = patient.api.pairing_show(&slot).unwrap();
    let hello = serment_client::api::b64d(&st.hello, "hello").unwrap();
    let dev = DeviceSecret::generate();
    let (_, m1) = pairing::Join::start(&p.code, &hello, &dev).unwrap();
    patient.api.pairing_join(&slot, &m1).unwrap();
    // A second join on the same slot, even a byte-identical replay, is refused.
    let e = patient.api.pairing_join(&slot, &m1).unwrap_err();
    assert!(
        matches!(e, ClientError::Server { status: 409, .. }),
        "{e:?}"
    );
}

#[test]
fn devices_record_not_signed_by_the_identity_gets_no_wrap() {
    let mut w = World::new();
    // The patient has two devices (linked), then the server serves a third record under the
    // patient's handle and identity key, with keys it holds, signed by another identity key.
    let pending = w.patient.link_start().unwrap();
    let (_, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    w.patient.link_finish(pending, WAIT).unwrap();
    t.join().unwrap().unwrap();
    let mallory = DeviceSecret::generate();
    let mut forged = IdentitySecret::generate()
        .sign_device_record(PATIENT, &mallory, 1_800_000_000)
        .unwrap();
    // Claim the patient's identity key (the signature no longer verifies).
    forged[4 + 2 + 2 + 1 + PATIENT.len()..4 + 2 + 2 + 1 + PATIENT.len() + 32]
        .copy_from_slice(&w.patient.ks.identity.public_key());
    let forged_b64 = b64(&forged);
    w.h.on_response(&format!("GET /v1/directory/{PATIENT}"), move |ex| {
        let mut v = ex.json();
        v["records"].as_array_mut().unwrap().push(json!(forged_b64));
        ex.set_json(&v);
    });
    let e = w
        .lab
        .put(b"{}".as_slice(), meta(b"{}", "x"), &[PATIENT.to_owned()])
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Integrity(Error::BadSignature { .. })
                | ClientError::KeySubstitution { .. }
        ),
        "{e:?}"
    );
    let n = w.h.sql(&format!(
        "SELECT COUNT(*) FROM wraps WHERE recipient_device = '{}'",
        mallory.id()
    ));
    assert_eq!(n[0][0].1.as_deref(), Some(b"0".as_slice()));
}

#[test]
fn devices_catch_up_wrap_from_a_device_outside_the_identity_is_refused() {
    // A catch-up wrap (sharer not the author) is accepted by a reader only from a current
    // device of its own identity in the proven key history: the GP (another identity), holding
    // a wrap, may not add one for the patient (server), and a wrap whose sharer is the GP is
    // refused by the reader.
    let mut w = World::new();
    let r = w.put(b"shared result", "shared", &[PATIENT, GP]);
    // The GP re-wraps its DEK for the patient's device and posts it as a "catch-up".
    let (_, own) = w.gp.api.version(&r.doc_id, 1).unwrap();
    let wk = serment_core::wrap::WrappedKey::decode(&own).unwrap();
    let dek = serment_core::wrap::unwrap_dek(&wk, &w.gp.ks.device).unwrap();
    let patient_rec = w.patient.ks.own_device_record().unwrap();
    let nw = serment_core::wrap::wrap_dek(
        &dek,
        &r.doc_id,
        1,
        &wk.header_hash,
        &serment_core::wrap::Recipient::from(&patient_rec),
        &w.gp.ks.device,
        &mut serment_core::rng::os_rng(),
    )
    .unwrap();
    let e =
        w.gp.api
            .add_wraps(&r.doc_id, 1, std::slice::from_ref(&nw))
            .unwrap_err();
    assert!(
        matches!(e, ClientError::Server { status: 403, .. }),
        "{e:?}"
    );
    // The server serves that wrap to the patient anyway, in place of the author's.
    let nw_b64 = b64(&nw);
    w.h.on_response("GET /v1/documents/*/versions/*", move |ex| {
        let mut v = ex.json();
        v["wrap"] = json!(nw_b64);
        ex.set_json(&v);
    });
    let e = read(&mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Integrity(Error::WrongSigner { .. } | Error::ContextMismatch(_))
        ),
        "{e:?}"
    );
}

/// Wraps and logged device entries of the whole server (to show that nothing was added).
fn wraps_and_device_entries(w: &World) -> (String, String) {
    let count = |q: &str| String::from_utf8(w.h.sql(q)[0][0].1.clone().unwrap()).unwrap();
    (
        count("SELECT COUNT(*) FROM wraps"),
        count("SELECT COUNT(*) FROM log_entries WHERE kind = 1"),
    )
}

/// Key confirmation before catch-up (PROTOCOL.md §4.1): the relay flips a byte of the finish.
/// The new device refuses it and so never registers the record it carried (its confirmation);
/// the linking device, waiting for that record in the log, gives up at the code's expiry with
/// nothing logged and no re-wrap (before the confirmation step, it had already logged the
/// record and re-wrapped every document for keys the new device then discarded).
#[test]
fn devices_pairing_tampered_finish_gets_no_confirmation_nothing_logged_nothing_wrapped() {
    let mut w = World::new();
    w.put(b"older result", "older", &[PATIENT]);
    let before = wraps_and_device_entries(&w);
    // The finish as the relay serves it to the new device (the linking device's post is signed).
    w.h.on_response("GET /v1/pairing/*", |ex| {
        let mut v = ex.json();
        if let Some(m) = v["finish"].as_str() {
            let mut b = serment_client::api::b64d(m, "finish").unwrap();
            let last = b.len() - 1;
            b[last] ^= 1;
            v["finish"] = json!(b64(&b));
            ex.set_json(&v);
        }
    });
    let pending = w.patient.link_start().unwrap();
    let (path, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    let e = w
        .patient
        .link_finish(pending, Duration::from_secs(3))
        .unwrap_err();
    assert!(is_pairing_refusal(&e), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    let je = t.join().unwrap().unwrap_err();
    assert!(is_pairing_refusal(&je), "{je:?}");
    assert!(!path.exists(), "a keystore was written");
    w.h.clear_hooks();
    assert_eq!(
        wraps_and_device_entries(&w),
        before,
        "something was logged or wrapped"
    );
    assert_eq!(devices_in_log(&mut w), 1, "a device was enrolled");
}

/// The relay swallows the new device's confirmation (its registration, which comes after the
/// finish, answered 201 without reaching the server): the linking device never sees the record
/// in the log and re-wraps nothing; the new device, whose record is not in the log, keeps no
/// keystore. (A registration before the finish, as the linking device made before the
/// confirmation step, goes through.)
#[test]
fn devices_pairing_absent_confirmation_nothing_logged_nothing_wrapped() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut w = World::new();
    w.put(b"older result", "older", &[PATIENT]);
    let before = wraps_and_device_entries(&w);
    let finished = std::sync::Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    w.h.on_request("POST /v1/pairing/*/finish", move |_| {
        f.store(true, Ordering::SeqCst)
    });
    w.h.on_request("POST /v1/devices", move |ex| {
        if finished.load(Ordering::SeqCst) {
            ex.status = 201;
            ex.set_json(&json!({ "device_id": "", "identity_id": "", "handle": PATIENT }));
            ex.answered = true;
        }
    });
    let pending = w.patient.link_start().unwrap();
    let (path, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    let e = w
        .patient
        .link_finish(pending, Duration::from_secs(3))
        .unwrap_err();
    assert!(is_pairing_refusal(&e), "{e:?}");
    assert!(
        t.join().unwrap().is_err(),
        "the new device joined without being logged"
    );
    assert!(!path.exists(), "a keystore was kept");
    w.h.clear_hooks();
    assert_eq!(
        wraps_and_device_entries(&w),
        before,
        "something was logged or wrapped"
    );
    assert_eq!(devices_in_log(&mut w), 1, "a device was enrolled");
}

/// Attack F6 (hostile review): a member device that held a team's epoch key is revoked. The
/// epoch must not be used again: a sharer who is not an admin is refused until an admin opens a
/// new epoch, an admin's share opens one itself (wrapped to the current devices only), and the
/// revoked device — put back by the server, which clears its `revoked` flag — holds no key of it.
#[test]
fn team_epoch_whose_key_reached_a_revoked_device_is_not_used_again() {
    const TEAM: &str = "cardio-chu";
    // The patient links a phone first, so the team's epoch-1 key is wrapped to both devices.
    let (mut w, mut phone, phone_path) = patient_with_phone();
    let phone_id = phone.ks.device.id();
    w.lab.team_new(TEAM).unwrap();
    w.lab.team_add(TEAM, GP, false).unwrap();
    let added = w.lab.team_add(TEAM, PATIENT, false).unwrap();
    assert_eq!(added.keys_wrapped, 2, "the patient's two devices");
    let before = w.put(b"before the revocation", "before", &[]);
    w.lab.share_to_team(&before.doc_id, 1, TEAM).unwrap();
    assert_eq!(
        read(&mut phone, &before.doc_id, Some(1)).unwrap().0,
        b"before the revocation"
    );

    // The phone is lost: the patient revokes it.
    w.patient.revoke_and_rotate(&phone_id, &[]).unwrap();

    // The GP (a member, not an admin) may not share with epoch 1 any more.
    let g =
        w.gp.put(&b"gp note"[..], meta(b"gp note", "gp"), &[])
            .unwrap();
    let e =
        w.gp.share_to_team(&g.doc_id, g.doc_version, TEAM)
            .unwrap_err();
    assert!(
        matches!(e, ClientError::TeamKeyRevoked { epoch: 1, .. }),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 6);

    // The lab (an admin) shares: its client opens epoch 2 first, for the current devices only.
    let after = w.put(b"after the revocation", "after", &[]);
    let (epoch, _) = w.lab.share_to_team(&after.doc_id, 1, TEAM).unwrap();
    assert_eq!(epoch, 2);
    let phone_keys = w.h.sql(&format!(
        "SELECT epoch FROM team_key_wraps WHERE team = '{TEAM}' AND device_id = '{phone_id}'"
    ));
    assert_eq!(phone_keys.len(), 1, "the phone holds the epoch-1 key only");
    // The server puts the phone back: it logs in again, is served the version, and cannot
    // open it.
    w.h.sql_exec(&format!(
        "UPDATE devices SET revoked = 0 WHERE device_id = '{phone_id}'"
    ));
    drop(phone);
    let ks = serment_client::keystore::Keystore::open(
        &phone_path,
        Zeroizing::new("passphrase of the phone".into()),
    )
    .unwrap();
    let mut phone = serment_client::vault::Session::connect(ks, None).unwrap();
    let e = read(&mut phone, &after.doc_id, Some(1)).unwrap_err();
    // Withheld (F12): the log shows the patient a member at epoch 2, and no key is served.
    assert!(
        matches!(
            e,
            ClientError::NotShared(_) | ClientError::Withheld(_) | ClientError::Integrity(_)
        ),
        "{e:?}"
    );
    // The GP, still a member, reads it.
    assert_eq!(
        read(&mut w.gp, &after.doc_id, Some(1)).unwrap().0,
        b"after the revocation"
    );
}

/// The patient with a linked phone (its session and keystore path), as the revocation tests
/// need it.
fn patient_with_phone() -> (World, serment_client::vault::Session, std::path::PathBuf) {
    let mut w = World::new();
    let pending = w.patient.link_start().unwrap();
    let (path, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    w.patient.link_finish(pending, WAIT).unwrap();
    let phone = t.join().unwrap().unwrap().session;
    (w, phone, path)
}

/// Attack F14 (hostile review): the thief of the phone, holding its copy of the identity key,
/// certifies a hidden device of their own before the owner revokes the phone. The owner's
/// revocation rotates the identity key and re-certifies only the devices the owner keeps: the
/// hidden one is retired with the phone, can no longer log in, and a document sent afterwards is
/// not wrapped to it.
#[test]
fn revocation_does_not_recertify_a_device_the_thief_certified() {
    let (mut w, phone, _) = patient_with_phone();
    let hidden = DeviceSecret::generate();
    let rec = phone
        .ks
        .identity
        .sign_device_record(PATIENT, &hidden, serment_client::now_secs())
        .unwrap();
    phone.api.register_device(&rec).unwrap();
    assert_eq!(
        devices_in_log(&mut w),
        3,
        "the hidden device is current before the revocation"
    );

    let out = w
        .patient
        .revoke_and_rotate(&phone.ks.device.id(), &[])
        .unwrap();
    assert_eq!(out.kept, vec![w.patient.ks.device.id()]);
    assert_eq!(out.dropped, vec![hidden.id()]);
    assert_eq!(devices_in_log(&mut w), 1);
    // The lab's next document goes to the patient's one current device, never the hidden one.
    let r = w.put(b"after the theft", "after", &[PATIENT]);
    let wrapped_to = |d: serment_core::KeyId| {
        w.h.sql(&format!(
            "SELECT recipient_device FROM wraps WHERE doc_id = '{}' AND recipient_device = '{d}'",
            r.doc_id
        ))
        .len()
    };
    assert_eq!(wrapped_to(w.patient.ks.device.id()), 1);
    assert_eq!(wrapped_to(hidden.id()), 0, "a wrap to the thief's device");
    assert_eq!(
        read(&mut w.patient, &r.doc_id, None).unwrap().0,
        b"after the theft"
    );
}

/// Attack F13 (hostile review): the server (or the network) drops the request that revokes a
/// device. Revoking is one request (the rotation that retires it), so a dropped request leaves
/// nothing half done: before, the revocation was logged and the rotation dropped, and the
/// revoked phone kept the current identity key, with which it could certify a new device.
#[test]
fn revocation_is_one_request_nothing_half_done_when_it_is_dropped() {
    let (mut w, phone, _) = patient_with_phone();
    let phone_id = phone.ks.device.id();
    let identity_before = w.patient.ks.identity.id();
    w.h.on_request("POST /v1/log/rotations", |ex| {
        ex.status = 500;
        ex.set_json(&json!({ "error": { "code": "internal", "message": "dropped" } }));
        ex.answered = true;
    });
    let e = w.patient.revoke_and_rotate(&phone_id, &[]).unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e:?}");
    w.h.clear_hooks();
    // Nothing happened: the identity key did not change, no entry was logged, the phone is
    // still a current device, so the owner sees it and can try again.
    assert_eq!(w.patient.ks.identity.id(), identity_before);
    assert_eq!(devices_in_log(&mut w), 2);
    let out = w.patient.revoke_and_rotate(&phone_id, &[]).unwrap();
    assert_eq!(devices_in_log(&mut w), 1);
    // The phone's copy of the old identity key certifies nothing any more.
    let rogue = DeviceSecret::generate();
    let rec = phone
        .ks
        .identity
        .sign_device_record(PATIENT, &rogue, serment_client::now_secs())
        .unwrap();
    assert!(phone.api.register_device(&rec).is_err());
    assert_ne!(out.identity_id, identity_before);
}

#[test]
fn devices_catch_up_wrap_to_another_recipient_is_an_integrity_error_not_skipped() {
    // R6: during the link's catch-up, the server answers the patient's wrap request with the
    // GP's wrap of the same version (neither this device nor a team epoch it verified): the
    // catch-up stops with an integrity error instead of counting the version as "skipped".
    let mut w = World::new();
    let r = w.put(b"shared result", "shared", &[PATIENT, GP]);
    let (_, gp_wrap) = w.gp.api.version(&r.doc_id, 1).unwrap();
    let gp_b64 = b64(&gp_wrap);
    w.h.on_response("GET /v1/documents/*/versions/*", move |ex| {
        if ex.status == 200 {
            let mut v = ex.json();
            v["wrap"] = json!(gp_b64);
            ex.set_json(&v);
        }
    });
    let pending = w.patient.link_start().unwrap();
    let (_, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    let e = w.patient.link_finish(pending, WAIT).unwrap_err();
    let _ = t.join();
    assert!(
        matches!(e, ClientError::Integrity(Error::ContextMismatch(_))),
        "{e:?}"
    );
}

#[test]
fn devices_catch_up_409_without_a_logged_wrap_is_an_integrity_error_not_skipped() {
    // R6: the server refuses the catch-up wrap with 409 ("already wrapped") although the new
    // device holds no wrap of the version: the log proves none, so the catch-up fails.
    let mut w = World::new();
    let _r = w.put(b"patient result", "mine", &[PATIENT]);
    w.h.on_request("POST /v1/documents/*/versions/*/wraps", |ex| {
        ex.status = 409;
        ex.set_json(&json!({ "error": { "code": "conflict", "message": "already wrapped" } }));
        ex.answered = true;
    });
    let pending = w.patient.link_start().unwrap();
    let (_, t) = join_in_thread(&w, "phone", pending.code.display().to_string());
    let e = w.patient.link_finish(pending, WAIT).unwrap_err();
    let _ = t.join();
    assert!(
        matches!(e, ClientError::Integrity(Error::ContextMismatch(_))),
        "{e:?}"
    );
}

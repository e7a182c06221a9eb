//! Care teams and linked devices (issue 16 §1 "a new device reads what was sent before it",
//! PROTOCOL.md §12.3 "Hand-over"): a member's newly linked device is handed the team's epoch
//! keys by the linking device, with no admin action; the server stores such a hand-over only
//! from a current member's device to another current device of the same identity, and the
//! receiving client accepts a team key only from an admin device of that epoch or, while its
//! handle is a member, a current device of its own identity.

use std::time::Duration;

use serde_json::json;
use serment_client::ClientError;
use serment_client::device::{self, LinkOutcome};
use serment_client::transport::Transport;
use serment_client::vault::Session;
use serment_core::Error;
use serment_core::keystore::KdfParams;
use serment_core::team::wrap_epoch_secret;
use serment_core::wrap::Recipient;
use serment_hostile::harness::{Hostile, b64};
use zeroize::Zeroizing;

use crate::common::*;

const TEAM: &str = "cardio-chu";
const WAIT: Duration = Duration::from_secs(20);

/// Links a new device named `name` to `s`'s identity (`device link` / `device join`).
fn link(h: &Hostile, s: &mut Session, name: &str) -> (Session, LinkOutcome) {
    let pending = s.link_start().unwrap();
    let path = h.keystore_path(name);
    let url = h.url().to_owned();
    let code = pending.code.display().to_string();
    let t = std::thread::spawn(move || {
        device::join(
            &path,
            Zeroizing::new("passphrase of the new device".into()),
            KdfParams::FLOOR,
            &url,
            &Transport::default(),
            &code,
            WAIT,
        )
    });
    let out = s.link_finish(pending, WAIT).unwrap();
    (t.join().unwrap().unwrap().session, out)
}

/// The lab's team with the GP and the patient, and a document shared with it at epoch 1.
fn team_world() -> (World, serment_core::DocId) {
    let mut w = World::new();
    w.lab.team_new(TEAM).unwrap();
    w.lab.team_add(TEAM, GP, false).unwrap();
    w.lab.team_add(TEAM, PATIENT, false).unwrap();
    let r = w.put(b"{\"shared\":\"before the phone\"}", "e1", &[]);
    w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    (w, r.doc_id)
}

/// A wrap of `s`'s epoch-1 key of the team to `to`, made by `s`'s device.
fn epoch1_wrap_by(s: &mut Session, to: &Session) -> Vec<u8> {
    let team = s.verify_team(TEAM).unwrap().unwrap();
    let e1 = team.state.epochs[0].clone();
    let secret = s.team_epoch_secret(&team, &e1).unwrap();
    let rec = to.ks.own_device_record().unwrap();
    wrap_epoch_secret(
        &secret,
        TEAM,
        1,
        &Recipient::from(&rec),
        &s.ks.device,
        &mut serment_core::rng::os_rng(),
    )
    .unwrap()
}

/// The server serves `wrap` as the only team key of whoever asks.
fn serve_team_keys(w: &World, wrap: Vec<u8>) {
    w.h.on_response(&format!("GET /v1/teams/{TEAM}/keys"), move |ex| {
        ex.set_json(&json!({ "keys": [b64(&wrap)] }));
    });
}

fn is_team_error(e: &ClientError) -> bool {
    matches!(e, ClientError::Integrity(Error::Team { .. }))
}

/// The server's answer to `from` handing `wrap` on.
fn post_handover(from: &Session, wrap: &[u8]) -> u16 {
    match from.post_team_key_wraps(TEAM, &[wrap.to_vec()]) {
        Ok(_) => 201,
        Err(ClientError::Server { status, .. }) => status,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn team_linked_device_reads_team_documents_shared_before_it() {
    let (mut w, d1) = team_world();
    let (mut phone, out) = link(&w.h, &mut w.gp, "gp-phone");
    assert_eq!(out.team_keys, 1, "the epoch-1 key handed over: {out:?}");
    // The team document is read through the team, not re-wrapped by the catch-up.
    assert_eq!(out.caught_up, 0, "{out:?}");
    let (bytes, _) = read(&mut phone, &d1, Some(1)).unwrap();
    assert_eq!(bytes, b"{\"shared\":\"before the phone\"}");
    // On demand again: nothing new is stored.
    let again = w.gp.catch_up_device(&phone.ks.device.id()).unwrap();
    assert_eq!(again.team_keys, 0);
}

#[test]
fn team_key_handed_on_by_another_identitys_device_is_refused() {
    let (mut w, d1) = team_world();
    let (mut phone, _) = link(&w.h, &mut w.gp, "gp-phone");
    // The patient, a member holding the epoch-1 key, wraps it to the GP's phone; the server
    // serves that wrap as the phone's key. The key is right, the signature good: the sharer is
    // neither an admin device of the epoch nor a device of the GP.
    let forged = epoch1_wrap_by(&mut w.patient, &phone);
    serve_team_keys(&w, forged.clone());
    let e = read(&mut phone, &d1, Some(1)).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    // The server refuses to store it: the phone is not a device of the patient.
    w.h.clear_hooks();
    assert_eq!(post_handover(&w.patient, &forged), 403);
}

#[test]
fn team_key_handed_on_by_a_revoked_device_is_refused() {
    let (mut w, d1) = team_world();
    let (mut tablet, _) = link(&w.h, &mut w.gp, "gp-tablet");
    let (mut phone, _) = link(&w.h, &mut w.gp, "gp-phone");
    let by_tablet = epoch1_wrap_by(&mut tablet, &phone);
    // The control: while the tablet is a current device of the GP, its hand-over is accepted.
    serve_team_keys(&w, by_tablet.clone());
    assert_eq!(
        read(&mut phone, &d1, Some(1)).unwrap().0,
        b"{\"shared\":\"before the phone\"}"
    );
    // The tablet is revoked (the phone kept): the same wrap is refused.
    w.gp.revoke_and_rotate(&tablet.ks.device.id(), &[phone.ks.device.id()])
        .unwrap();
    let e = read(&mut phone, &d1, Some(1)).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
    assert_eq!(e.exit_code(), 4);
    // And the revoked tablet cannot hand anything on any more.
    w.h.clear_hooks();
    let rec = phone.ks.own_device_record().unwrap();
    assert!(tablet.hand_over_team_keys(&rec).is_err());
}

#[test]
fn team_key_handed_on_for_a_team_the_handle_left_is_refused() {
    let (mut w, _) = team_world();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    let (mut phone, out) = link(&w.h, &mut w.patient, "patient-phone");
    assert_eq!(
        out.team_keys, 0,
        "a removed member hands nothing on: {out:?}"
    );
    // Her first device still holds the epoch-1 key; handed on to her phone, the server refuses
    // it, and a phone served it anyway refuses it too.
    let wrap = epoch1_wrap_by(&mut w.patient, &phone);
    assert_eq!(post_handover(&w.patient, &wrap), 403);
    serve_team_keys(&w, wrap);
    let team = phone.verify_team(TEAM).unwrap().unwrap();
    let e1 = team.state.epochs[0].clone();
    let e = phone.team_epoch_secret(&team, &e1).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
    assert_eq!(e.exit_code(), 4);
}

/// Hostile review F12: a team key the log says this device should hold (its handle was a
/// member at that epoch), withheld by the server, is withheld data (exit 4), not "not shared".
#[test]
fn team_key_withheld_by_the_server_is_reported_as_withheld() {
    let (mut w, d1) = team_world();
    w.h.on_response(&format!("GET /v1/teams/{TEAM}/keys"), |ex| {
        ex.set_json(&json!({ "keys": [] }));
    });
    let e = read(&mut w.gp, &d1, Some(1)).unwrap_err();
    assert!(matches!(e, ClientError::Withheld(_)), "{e:?}");
    assert_eq!(e.exit_code(), 4);
}

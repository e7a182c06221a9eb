//! Care teams (issue 16, PROTOCOL.md §12): membership the server cannot change, old epoch keys it
//! cannot replay, removals it cannot drop from a view a client already verified, changes a
//! removed admin cannot make.

use serde_json::json;
use serment_client::ClientError;
use serment_core::Error;
use serment_hostile::harness::b64;

use crate::common::*;

const TEAM: &str = "cardio-chu";

/// The lab's team with the GP and the patient, and a document shared with it at epoch 1.
fn team_world() -> (World, serment_core::DocId) {
    let mut w = World::new();
    w.lab.team_new(TEAM).unwrap();
    w.lab.team_add(TEAM, GP, false).unwrap();
    w.lab.team_add(TEAM, PATIENT, false).unwrap();
    let r = w.put(b"{\"epoch\":1}", "e1", &[]);
    w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    (w, r.doc_id)
}

fn is_team_error(e: &ClientError) -> bool {
    matches!(e, ClientError::Integrity(Error::Team { .. }))
}

#[test]
fn care_team_members_read_and_a_removed_member_cannot_read_a_new_document() {
    let (mut w, d1) = team_world();
    let (bytes, _) = read(&mut w.gp, &d1, Some(1)).unwrap();
    assert_eq!(bytes, b"{\"epoch\":1}");
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    let (epoch, _) = w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    assert_eq!(epoch, 2);
    assert_eq!(
        read(&mut w.gp, &r.doc_id, Some(1)).unwrap().0,
        b"{\"epoch\":2}"
    );
    let e = read(&mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(matches!(e.exit_code(), 4 | 6), "{e:?}");
}

#[test]
fn team_old_epoch_key_replayed_by_the_server_is_refused() {
    let (mut w, _) = team_world();
    // The GP's epoch-1 key, kept by the server, relabelled as epoch 2 after the patient's removal.
    let old = w.h.sql(&format!(
        "SELECT wrap FROM team_key_wraps WHERE team = '{TEAM}' AND epoch = 1 AND device_id = '{}'",
        w.gp.ks.device.id()
    ));
    let mut old = old[0][0].1.clone().unwrap();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    let at = 4 + 2 + 2 + 1 + TEAM.len() + 3;
    old[at] = 2;
    w.h.on_response(&format!("GET /v1/teams/{TEAM}/keys"), move |ex| {
        ex.set_json(&json!({ "keys": [b64(&old)] }));
    });
    let e = read(&mut w.gp, &r.doc_id, Some(1)).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
}

#[test]
fn team_removal_dropped_from_the_log_view_is_refused() {
    let (mut w, _) = team_world();
    w.lab.team_remove(TEAM, PATIENT).unwrap();
    // The server now shows the lab the chain without the removal (and so the old epoch, whose
    // key the patient holds): the head the lab verified is gone.
    w.h.on_response(&format!("GET /v1/log/team/{TEAM}"), |ex| {
        let mut v = ex.json();
        v["entries"].as_array_mut().unwrap().pop();
        ex.set_json(&v);
    });
    let r = w.put(b"{\"epoch\":2}", "e2", &[]);
    let e = w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap_err();
    assert!(is_team_error(&e), "{e:?}");
}

#[test]
fn team_change_by_a_removed_admin_is_refused() {
    let mut w = World::new();
    w.lab.team_new(TEAM).unwrap();
    w.lab.team_add(TEAM, GP, true).unwrap();
    serment_client::contacts::add(&w.gp.api, &mut w.gp.ks, PATIENT).unwrap();
    w.lab.team_remove(TEAM, GP).unwrap();
    let e = w.gp.team_add(TEAM, PATIENT, false).unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Input(_) | ClientError::Server { status: 409, .. }
        ),
        "{e:?}"
    );
    // Signed and posted anyway (a client that skips its own check): the log refuses it, and
    // the team is unchanged for the lab.
    assert!(
        !w.lab
            .verify_team(TEAM)
            .unwrap()
            .unwrap()
            .state
            .is_member(PATIENT)
    );
}

//! Care teams at the HTTP level (PROTOCOL.md §12): changes are replayed before they are logged,
//! team keys reach member devices, one wrap shares a document with a team, removal opens a new
//! epoch and ends the removed member's access.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use serment_core::DocId;
use serment_core::log::entry::{EntryKind, LogEntry};
use serment_core::team::{
    EpochSecret, TeamChange, TeamChangeBody, TeamKeyWrap, TeamOp, TeamRole, epoch_id,
    unwrap_epoch_secret, wrap_epoch_secret,
};
use serment_core::wrap::{WrappedKey, unwrap_dek_for_epoch};

const TEAM: &str = "cardio-chu";

fn change(
    signer: &User,
    op: TeamOp,
    member: &User,
    role: TeamRole,
    epoch: u32,
    key: &EpochSecret,
) -> Vec<u8> {
    TeamChange::sign(
        &TeamChangeBody {
            team: TEAM.into(),
            epoch,
            op,
            member: member.handle.clone(),
            member_identity: member.identity.public_key(),
            role,
            epoch_key: key.public().clone(),
            signer: signer.handle.clone(),
            at: 1_800_000_000,
        },
        &signer.device,
    )
    .unwrap()
}

fn key_wrap(key: &EpochSecret, epoch: u32, to: &User, by: &User) -> String {
    b64(&wrap_epoch_secret(
        key,
        TEAM,
        epoch,
        &to.recipient(),
        &by.device,
        &mut serment_core::rng::os_rng(),
    )
    .unwrap())
}

async fn post_change(
    srv: &TestServer,
    token: &str,
    c: &[u8],
    wraps: Vec<String>,
) -> (StatusCode, Value) {
    srv.post(
        &format!("/v1/teams/{TEAM}/changes"),
        Some(token),
        json!({ "change": b64(c), "key_wraps": wraps }),
    )
    .await
}

#[tokio::test]
async fn team_changes_keys_shares_and_removal() {
    let srv = TestServer::new().await;
    let (alice, bob, carol) = (User::new("alice"), User::new("bob"), User::new("carol"));
    let ta = srv.enroll(&alice).await;
    let tb = srv.enroll(&bob).await;
    let _tc = srv.enroll(&carol).await;
    let k1 = EpochSecret::generate().unwrap();

    // Creation and an add, each with its key wraps.
    let c = change(&alice, TeamOp::Create, &alice, TeamRole::Admin, 1, &k1);
    let (s, v) = post_change(&srv, &ta, &c, vec![key_wrap(&k1, 1, &alice, &alice)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = post_change(&srv, &ta, &c, vec![]).await;
    assert_eq!(s, StatusCode::CONFLICT, "a second creation: {v}");
    let c = change(&alice, TeamOp::Add, &bob, TeamRole::Member, 1, &k1);
    let (s, v) = post_change(&srv, &ta, &c, vec![key_wrap(&k1, 1, &bob, &alice)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // A non-admin's change does not replay; a change posted by another device than its signer
    // is refused.
    let c = change(&bob, TeamOp::Add, &carol, TeamRole::Member, 1, &k1);
    let (s, v) = post_change(&srv, &tb, &c, vec![]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a current admin"),
        "{v}"
    );
    let c = change(&alice, TeamOp::Add, &carol, TeamRole::Member, 1, &k1);
    let (s, _) = post_change(&srv, &tb, &c, vec![]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The chain with proofs: two kind-7 entries, the second linked to the first.
    let (s, h) = srv.get(&format!("/v1/log/team/{TEAM}"), None).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let entries = h["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let e1 = LogEntry::decode(&unb64(entries[1]["entry"].as_str().unwrap())).unwrap();
    assert_eq!(e1.kind, EntryKind::Team);
    assert_eq!(
        e1.prev.unwrap().index,
        entries[0]["index"].as_u64().unwrap()
    );
    let (_, t) = srv.get("/v1/teams", Some(&tb)).await;
    assert_eq!(t["teams"], json!([TEAM]));

    // Alice shares a document with the team: her own wrap in the commit, one wrap to the epoch.
    let team_r = k1.recipient(TEAM, 1);
    let doc = DocId::from_bytes([9; 16]);
    let (blob, sealed) = {
        let alice_r = alice.recipient();
        let mut out = Vec::new();
        let sealed = serment_core::document::seal(
            serment_core::document::SealInput {
                doc_id: doc,
                doc_version: 1,
                author: &alice.device,
                recipients: &[team_r.clone(), alice_r],
                metadata: serment_core::document::Metadata {
                    content_length: 5,
                    ..Default::default()
                },
            },
            b"hello".as_slice(),
            &mut out,
        )
        .unwrap();
        (out, sealed)
    };
    let (s, v) = commit(&srv, &ta, doc, 1, blob, vec![wrap_of(&sealed, &alice)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let team_wrap = sealed
        .wraps
        .iter()
        .find(|(r, _)| *r == team_r.device_id)
        .unwrap()
        .1
        .clone();
    let uri = format!("/v1/documents/{doc}/versions/1/team-wraps");
    let (s, v) = srv
        .post(
            &uri,
            Some(&tb),
            json!({"team": TEAM, "wrap": b64(&team_wrap)}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "only the author device shares: {v}"
    );
    let (s, v) = srv
        .post(
            &uri,
            Some(&ta),
            json!({"team": TEAM, "wrap": b64(&team_wrap)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Bob reads it through the team: the served wrap is the team wrap, his key opens it.
    let (s, v) = srv
        .get(&format!("/v1/documents/{doc}/versions/1"), Some(&tb))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let served = WrappedKey::decode(&unb64(v["wrap"].as_str().unwrap())).unwrap();
    assert_eq!(served.recipient, epoch_id(TEAM, 1, k1.public()));
    let (_, keys) = srv.get(&format!("/v1/teams/{TEAM}/keys"), Some(&tb)).await;
    let kw = TeamKeyWrap::decode(&unb64(keys["keys"][0].as_str().unwrap())).unwrap();
    let secret = unwrap_epoch_secret(&kw, &bob.device, TEAM, 1, k1.public()).unwrap();
    unwrap_dek_for_epoch(&served, &served.recipient, &secret).unwrap();

    // Bob is removed: epoch 2, wrapped to alice only. The team wrap to epoch 1 is refused now,
    // and Bob no longer gets the version.
    let k2 = EpochSecret::generate().unwrap();
    let c = change(&alice, TeamOp::Remove, &bob, TeamRole::Member, 2, &k2);
    let (s, v) = post_change(&srv, &ta, &c, vec![key_wrap(&k2, 2, &alice, &alice)]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv
        .get(&format!("/v1/documents/{doc}/versions/1"), Some(&tb))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, t) = srv.get("/v1/teams", Some(&tb)).await;
    assert_eq!(t["teams"], json!([]));
    let (s, v) = srv
        .post(
            &uri,
            Some(&ta),
            json!({"team": TEAM, "wrap": b64(&team_wrap)}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a wrap to an old epoch: {v}");
    // A key wrap of another epoch's key is refused with the change.
    let k3 = EpochSecret::generate().unwrap();
    let c = change(&alice, TeamOp::Rotate, &alice, TeamRole::Admin, 3, &k3);
    let (s, v) = post_change(&srv, &ta, &c, vec![key_wrap(&k2, 2, &alice, &alice)]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

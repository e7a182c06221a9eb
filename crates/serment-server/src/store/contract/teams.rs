//! The care-team half of the contract: the checks a team write makes under the log lock, so
//! that what the handler replayed or read before is still true when the entry is appended
//! (THREAT_MODEL.md: F7, F10 of the hostile review).
#![allow(clippy::unwrap_used)]

use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::{DocId, KeyId};

use super::{Harness, job};
use crate::store::log_service::NewTeamChange;
use crate::store::{MetaStore, NewDevice, Registered, StoreError};

fn change<'a>(
    signer: &KeyId,
    head: Option<u64>,
    replayed_at: u64,
    epoch: u32,
) -> NewTeamChange<'a> {
    NewTeamChange {
        team: "race",
        change: b"a team change",
        signer_device: *signer,
        expected_head: head,
        replayed_at,
        handles: vec!["mal".into()],
        epoch,
        epoch_id: format!("epoch-{epoch}"),
        members: vec![("mal".into(), true)],
        key_wraps: Vec::new(),
        now: 9,
    }
}

/// Registers a new device of `identity` for `handle`; returns its id.
async fn device_of(m: &dyn MetaStore, handle: &str, identity: &IdentitySecret, n: u64) -> KeyId {
    let device = DeviceSecret::generate();
    let record = identity.sign_device_record(handle, &device, n).unwrap();
    let r = m
        .register_device(&NewDevice {
            device_id: device.id(),
            identity_id: identity.id(),
            handle,
            record: &record,
            created_at: n,
        })
        .await
        .unwrap();
    assert_eq!(r, Registered::Created);
    device.id()
}

/// A change replayed before a revocation of its signer's handle is refused when appended after
/// it (F7), and the team stays usable; a wrap to an epoch a change closed meanwhile is refused
/// (F10).
pub(crate) async fn team_races(h: &dyn Harness) {
    let m = h.meta();
    let identity = IdentitySecret::generate();
    let a = (device_of(&*m, "mal", &identity, 1).await, identity.id());
    let at = m.log_size().await.unwrap();
    let head = m
        .append_team_change(&change(&a.0, None, at, 1))
        .await
        .unwrap();

    // A second device of mal's, then: the handler replays at `at` (the device is current),
    // the device is revoked, then the change it signed reaches the append.
    let b = device_of(&*m, "mal", &identity, 2).await;
    let at = m.log_size().await.unwrap();
    m.revoke_device("mal", &a.1, &b, b"rev", 10).await.unwrap();
    assert!(
        matches!(
            m.append_team_change(&change(&b, Some(head), at, 2)).await,
            Err(StoreError::Conflict(_))
        ),
        "a change replayed before its signer's revocation is refused"
    );
    assert_eq!(
        m.team_epoch("race").await.unwrap(),
        Some((1, "epoch-1".to_owned())),
        "nothing of it was stored"
    );
    // The team is still usable: a change replayed on the log as it stands is appended.
    let at = m.log_size().await.unwrap();
    let doc = DocId::random().unwrap();
    m.commit_version(job(doc, 1, a, &[a.0])).await.unwrap();
    let head = m
        .append_team_change(&change(&a.0, Some(head), at, 2))
        .await
        .unwrap();
    assert_eq!(m.log_size().await.unwrap(), head + 1);

    // F10: the handler read epoch 1 as current before the change to epoch 2 was appended.
    let a_id = a.0;
    assert!(
        matches!(
            m.add_team_wrap(&doc, 1, "race", "epoch-1", &a_id, b"wrap", 11)
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a wrap to a closed epoch is refused"
    );
    m.add_team_wrap(&doc, 1, "race", "epoch-2", &a_id, b"wrap", 11)
        .await
        .unwrap();
}

/// The team key hand-over (PROTOCOL.md §12.3): stored only from a current member's handle to its
/// own current devices, in one transaction, and idempotent.
pub(crate) async fn team_key_handover(h: &dyn Harness) {
    let m = h.meta();
    let identity = IdentitySecret::generate();
    let a = device_of(&*m, "mal", &identity, 1).await;
    let b = device_of(&*m, "mal", &identity, 2).await;
    let other = IdentitySecret::generate();
    let x = device_of(&*m, "eve", &other, 3).await;
    let at = m.log_size().await.unwrap();
    m.append_team_change(&change(&a, None, at, 1))
        .await
        .unwrap();
    let to = |d: &KeyId| vec![(1u32, d.to_string(), b"a team key wrap".to_vec())];

    // To another current device of the member's own handle: stored once.
    assert_eq!(
        m.hand_over_team_keys("race", "mal", &to(&b)).await.unwrap(),
        1
    );
    assert_eq!(
        m.hand_over_team_keys("race", "mal", &to(&b)).await.unwrap(),
        0
    );
    assert_eq!(
        m.team_key_wraps("race", &b).await.unwrap(),
        vec![b"a team key wrap".to_vec()]
    );
    // To a device of another handle: refused, nothing stored.
    assert!(matches!(
        m.hand_over_team_keys("race", "mal", &to(&x)).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(m.team_key_wraps("race", &x).await.unwrap().is_empty());
    // From a handle that is not a member: refused.
    assert!(matches!(
        m.hand_over_team_keys("race", "eve", &to(&x)).await,
        Err(StoreError::Forbidden(_))
    ));
    // To a revoked device of the member: refused.
    m.revoke_device("mal", &identity.id(), &b, b"rev", 10)
        .await
        .unwrap();
    let c = device_of(&*m, "mal", &identity, 4).await;
    assert!(matches!(
        m.hand_over_team_keys(
            "race",
            "mal",
            &[
                (1, b.to_string(), b"w".to_vec()),
                (1, c.to_string(), b"w".to_vec())
            ]
        )
        .await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(
        m.team_key_wraps("race", &c).await.unwrap().is_empty(),
        "nothing of a refused hand-over is stored"
    );
}

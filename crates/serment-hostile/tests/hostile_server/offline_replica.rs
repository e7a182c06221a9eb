//! The offline replica against a server that brings an erased document back (issue 12 §4-§5,
//! PROTOCOL.md §14): the operator keeps a copy of a document's rows, the author erases it, the
//! operator puts the rows back, so the server lists and serves the erased document again, with
//! valid proofs of its wraps. A `sync` checks the document's proven chain before it stores a new
//! document, and confirms each tombstone appended since the last sync for a document it holds:
//! the erased document is named as erased, never stored, and deleted if held.

use serment_client::vault::PutResult;
use serment_client::{ClientError, contacts};
use serment_core::log::erasure::ErasureReason;

use crate::common::*;

const KEPT: &[u8] = b"{\"resourceType\":\"Observation\",\"n\":1}";
const ERASED: &[u8] = b"{\"resourceType\":\"Observation\",\"n\":2}";

/// The lab erases `r`; the operator had kept its rows and puts them back.
fn erase_and_restore(w: &mut World, r: &PutResult) {
    let d = r.doc_id.to_string();
    w.h.sql_exec(&format!(
        "CREATE TABLE keep_blobs AS SELECT * FROM blobs WHERE blob_id = '{}'; \
         CREATE TABLE keep_docs AS SELECT * FROM documents WHERE doc_id = '{d}'; \
         CREATE TABLE keep_wraps AS SELECT * FROM wraps WHERE doc_id = '{d}'",
        r.blob_id
    ));
    w.lab.erase(&r.doc_id, ErasureReason::SentInError).unwrap();
    w.h.sql_exec(
        "INSERT INTO blobs SELECT * FROM keep_blobs; \
         INSERT INTO documents SELECT * FROM keep_docs; \
         INSERT INTO wraps SELECT * FROM keep_wraps",
    );
    assert!(
        w.gp.list().unwrap().iter().any(|v| v.doc_id == d),
        "the server lists the erased document again"
    );
}

#[test]
fn a_document_restored_after_its_erasure_is_not_stored_in_the_replica() {
    let mut w = World::new();
    let kept = w.put(KEPT, "kept", &[GP]);
    let r = w.put(ERASED, "erased", &[GP]);
    let d = r.doc_id.to_string();
    erase_and_restore(&mut w, &r);
    let dir = tempfile::tempdir().unwrap();
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert_eq!(rep.erased, vec![d.clone()], "{rep:?}");
    assert!(
        rep.manifest.versions.values().all(|v| v.doc_id != d),
        "{rep:?}"
    );
    assert!(rep.manifest.erased.contains(&d));
    assert_eq!(rep.added, vec![format!("{}/1", kept.doc_id)], "{rep:?}");
    // Never stored later either, while the server keeps serving it.
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert!(rep.added.is_empty() && rep.kept == 1, "{rep:?}");
    assert!(rep.manifest.erased.contains(&d));
}

/// The same restore, of a document the replica already holds: the tombstone appended since the
/// last sync names it, its proven chain confirms it, and the next sync deletes it.
#[test]
fn a_held_document_restored_after_its_erasure_is_removed_from_the_replica() {
    let mut w = World::new();
    let kept = w.put(KEPT, "kept", &[GP]);
    let r = w.put(ERASED, "erased", &[GP]);
    let d = r.doc_id.to_string();
    let dir = tempfile::tempdir().unwrap();
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert_eq!(rep.added.len(), 2, "{rep:?}");
    erase_and_restore(&mut w, &r);
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert_eq!(rep.erased, vec![d.clone()], "{rep:?}");
    assert!(
        rep.manifest.versions.values().all(|v| v.doc_id != d),
        "{rep:?}"
    );
    assert!(
        rep.manifest
            .versions
            .contains_key(&format!("{}/1", kept.doc_id))
    );
    assert!(!dir.path().join(format!("{d}-v1.srpl")).exists());
}

/// A document shared with a care team (PROTOCOL.md §12.3) is synced like any other, and opens
/// offline: the team's chain and epoch key, verified at sync, are replayed with the rest, even
/// though the keystore's held team state moved on after the recording.
#[test]
fn a_document_shared_with_a_care_team_opens_offline() {
    const TEAM: &str = "cardio-offline";
    let mut w = World::new();
    w.lab.team_new(TEAM).unwrap();
    w.lab.team_add(TEAM, GP, false).unwrap();
    let r = w.put(b"{\"team\":1}", "team report", &[]);
    w.lab.share_to_team(&r.doc_id, 1, TEAM).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert_eq!(rep.added, vec![format!("{}/1", r.doc_id)], "{rep:?}");
    // The team changes after the sync: the GP's held team state moves on.
    w.lab.team_add(TEAM, PATIENT, false).unwrap();
    let r2 = w.put(b"{\"team\":2}", "after", &[]);
    w.lab.share_to_team(&r2.doc_id, 1, TEAM).unwrap();
    read(&mut w.gp, &r2.doc_id, None).unwrap();
    let out = dir.path().join("out.json");
    let got =
        serment_client::replica::get_offline(w.gp.ks, dir.path(), &r.doc_id, None, &out, false)
            .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"{\"team\":1}");
    assert_eq!(got.result.author, LAB);
}

/// The GP's keystore, opened again from its file (an offline read consumes one).
fn gp_keystore(w: &World) -> serment_client::keystore::Keystore {
    serment_client::keystore::Keystore::open(
        &w.h.keystore_path(GP),
        zeroize::Zeroizing::new(format!("passphrase of {GP}")),
    )
    .unwrap()
}

/// Review S5: one version this device cannot verify -- its blob altered by the server, or sealed
/// by an author it has not pinned (the normal first contact) -- is refused and not stored, and
/// does not stop the sync: the good version uploaded with it is stored and opens offline, the
/// manifest is written, and the refusals are named (document, version, check, code). The next
/// sync refuses them again (never stored) and keeps the rest.
#[test]
fn a_version_that_does_not_verify_is_refused_and_the_rest_is_synced() {
    let mut w = World::new();
    // The patient pins the GP and sends it a document; the GP has not pinned the patient.
    contacts::add(&w.patient.api, &mut w.patient.ks, GP).unwrap();
    let stranger = w
        .patient
        .put(
            &b"{\"from\":\"patient\"}"[..],
            meta(b"{\"from\":\"patient\"}", "first contact"),
            &[GP.to_owned()],
        )
        .unwrap();
    let bad = w.put(b"{\"n\":\"altered\"}", "altered", &[GP]);
    let good = w.put(KEPT, "good", &[GP]);
    let mut blob = w.blob(&bad);
    let n = blob.len() - 20;
    blob[n] ^= 1;
    serve_blob(&w.h, &bad.doc_id, 1, blob);

    let dir = tempfile::tempdir().unwrap();
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert_eq!(rep.added, vec![format!("{}/1", good.doc_id)], "{rep:?}");
    let mut refused: Vec<(String, Option<u32>, &str, &str)> = rep
        .refused
        .iter()
        .map(|x| (x.doc_id.clone(), x.doc_version, x.check.name(), x.code))
        .collect();
    refused.sort();
    let mut want = vec![
        (bad.doc_id.to_string(), Some(1), "open", "integrity"),
        (
            stranger.doc_id.to_string(),
            Some(1),
            "open",
            "unknown_author",
        ),
    ];
    want.sort();
    assert_eq!(refused, want, "{rep:?}");
    assert!(rep.refused.iter().all(|x| x.exit_code == 4), "{rep:?}");
    for d in [&bad.doc_id, &stranger.doc_id] {
        assert!(!dir.path().join(format!("{d}-v1.srpl")).exists(), "{d}");
        assert!(
            rep.manifest
                .versions
                .values()
                .all(|v| v.doc_id != d.to_string())
        );
    }

    // The next sync: the same two refused again, the good one kept, still readable offline.
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert!(rep.added.is_empty() && rep.kept == 1, "{rep:?}");
    assert_eq!(rep.refused.len(), 2, "{rep:?}");
    let out = dir.path().join("good.json");
    let ks = gp_keystore(&w);
    let got = serment_client::replica::get_offline(ks, dir.path(), &good.doc_id, None, &out, false)
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), KEPT);
    assert_eq!(got.result.author, LAB);
    // Not invented offline either.
    let ks = gp_keystore(&w);
    let e = serment_client::replica::get_offline(
        ks,
        dir.path(),
        &bad.doc_id,
        None,
        &dir.path().join("bad.out"),
        false,
    )
    .unwrap_err();
    assert!(matches!(e, ClientError::NotInReplica(_)), "{e:?}");
}

/// Review S5 (2c): the author removes the GP as the recipient of a document the replica holds
/// (kind 5); the server no longer lists it and refuses the GP its log (403). The sync keeps it
/// (PROTOCOL.md §14: the device keeps what it verified), names it as kept though unlisted and
/// not checked for an erasure, and syncs the document uploaded since.
#[test]
fn a_held_document_the_device_was_removed_from_is_kept_and_the_sync_goes_on() {
    let mut w = World::new();
    let r = w.put(KEPT, "removed later", &[GP]);
    let dir = tempfile::tempdir().unwrap();
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert_eq!(rep.added.len(), 1, "{rep:?}");
    let gp_device = w.gp.ks.device.id();
    w.lab.remove_recipient(&r.doc_id, 1, &gp_device).unwrap();
    assert!(
        w.gp.list()
            .unwrap()
            .iter()
            .all(|v| v.doc_id != r.doc_id.to_string()),
        "no longer listed"
    );
    let later = w.put(ERASED, "later", &[GP]);
    let rep = w.gp.sync_replica(dir.path()).unwrap();
    assert_eq!(rep.added, vec![format!("{}/1", later.doc_id)], "{rep:?}");
    assert!(rep.refused.is_empty(), "{rep:?}");
    assert_eq!(rep.unlisted_kept.len(), 1, "{rep:?}");
    assert_eq!(rep.unlisted_kept[0].doc_id, r.doc_id.to_string());
    assert!(!rep.unlisted_kept[0].erasure_checked, "{rep:?}");
    assert!(
        rep.manifest
            .versions
            .contains_key(&format!("{}/1", r.doc_id)),
        "{rep:?}"
    );
    let out = dir.path().join("kept.json");
    serment_client::replica::get_offline(w.gp.ks, dir.path(), &r.doc_id, None, &out, false)
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), KEPT);
}

//! The offline replica against a server that brings an erased document back (issue 12 §4-§5,
//! PROTOCOL.md §14): the operator keeps a copy of a document's rows, the author erases it, the
//! operator puts the rows back, so the server lists and serves the erased document again, with
//! valid proofs of its wraps. A `sync` checks the document's proven chain before it stores a new
//! document, and confirms each tombstone appended since the last sync for a document it holds:
//! the erased document is named as erased, never stored, and deleted if held.

use serment_client::vault::PutResult;
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

//! Unit tests of the SQLite backend: expiry, single use and caps.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
use serment_core::identity::{DeviceSecret, IdentitySecret};

use super::*;

async fn db_with_device() -> (Db, KeyId, std::path::PathBuf) {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let dir = std::env::temp_dir().join(format!("serment-db-{}", hex::encode(r)));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::open(&dir.join("serment.db")).await.unwrap();
    let identity = IdentitySecret::generate();
    let device = DeviceSecret::generate();
    let record = identity.sign_device_record("x", &device, 1).unwrap();
    db.register_device(&NewDevice {
        device_id: device.id(),
        identity_id: identity.id(),
        handle: "x",
        record: &record,
        created_at: 1,
    })
    .await
    .unwrap();
    (db, device.id(), dir)
}

#[tokio::test]
async fn challenges_expire_are_single_use_and_capped() {
    let (db, dev, dir) = db_with_device().await;
    db.insert_challenge("c1", &dev, 160, 100).await.unwrap();
    assert!(
        !db.take_challenge("c1", &dev, 160).await.unwrap(),
        "expired"
    );
    assert!(
        !db.take_challenge("c1", &dev, 100).await.unwrap(),
        "consumed"
    );
    db.insert_challenge("c2", &dev, 160, 100).await.unwrap();
    assert!(db.take_challenge("c2", &dev, 159).await.unwrap());
    assert!(
        !db.take_challenge("c2", &dev, 100).await.unwrap(),
        "single use"
    );
    for i in 0..40u64 {
        db.insert_challenge(&format!("k{i}"), &dev, 200 + i, 100)
            .await
            .unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM challenges")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, MAX_CHALLENGES_PER_DEVICE);
    assert!(
        db.take_challenge("k39", &dev, 100).await.unwrap(),
        "newest kept"
    );
    assert!(
        !db.take_challenge("k0", &dev, 100).await.unwrap(),
        "oldest dropped"
    );
    db.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_challenge_table_is_bounded_in_all() {
    let (db, dev, dir) = db_with_device().await;
    // One device keeps at most MAX_CHALLENGES_PER_DEVICE; with a total cap of 5, five remain.
    for i in 0..10u64 {
        db.insert_challenge_capped(&format!("t{i}"), &dev, 200 + i, 100, 5)
            .await
            .unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM challenges")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 5);
    assert!(
        db.take_challenge("t9", &dev, 100).await.unwrap(),
        "newest kept"
    );
    assert!(
        !db.take_challenge("t0", &dev, 100).await.unwrap(),
        "oldest dropped"
    );
    db.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sessions_expire() {
    let (db, dev, dir) = db_with_device().await;
    db.create_session("t1", &dev, 1000, 100).await.unwrap();
    assert!(db.session_device("t1", 999).await.unwrap().is_some());
    assert!(db.session_device("t1", 1000).await.unwrap().is_none());
    assert!(db.session_device("t2", 100).await.unwrap().is_none());
    // Expired sessions are purged when a new one is created.
    db.create_session("t2", &dev, 5000, 2000).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    db.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// Registers one more device under its own identity; returns (device id, identity id).
async fn another_device(db: &Db, handle: &str) -> (KeyId, KeyId) {
    let identity = IdentitySecret::generate();
    let device = DeviceSecret::generate();
    let record = identity.sign_device_record(handle, &device, 1).unwrap();
    db.register_device(&NewDevice {
        device_id: device.id(),
        identity_id: identity.id(),
        handle,
        record: &record,
        created_at: 1,
    })
    .await
    .unwrap();
    (device.id(), identity.id())
}

fn job(doc: serment_core::DocId, v: u32, author: (KeyId, KeyId), to: &[KeyId]) -> CommitJob {
    let bytes = format!("sealed {doc} v{v}").into_bytes();
    CommitJob {
        doc_id: doc,
        doc_version: v,
        author_device: author.0.to_string(),
        author_identity: author.1.to_string(),
        blob_id: crate::store::BlobId::of(&bytes),
        inline: Some(bytes),
        created_at: 7,
        wraps: to
            .iter()
            .map(|r| crate::store::NewWrap {
                recipient: *r,
                sharer: author.0,
                bytes: format!("wrap for {r} of {doc} v{v}").into_bytes(),
            })
            .collect(),
    }
}

/// One batch holding an accepted commit, a duplicate of it, another identity's version of the
/// same document, an unknown recipient and a second version: each job gets its own verdict, the
/// accepted ones are chained and proven against the batch's one checkpoint, and the refused ones
/// leave nothing behind.
#[tokio::test]
async fn a_batch_decides_each_commit_on_its_own() {
    use serment_core::log::entry::{EntryKind, PrevLink, encode_entry};
    use serment_core::log::note::SignedCheckpoint;
    use serment_core::log::tree;

    let (db, _, dir) = db_with_device().await;
    let lab = another_device(&db, "lab").await;
    let other = another_device(&db, "other").await;
    let patient = another_device(&db, "patient").await;
    let stranger = KeyId::from_hex(&"ab".repeat(32)).unwrap();
    let doc = serment_core::DocId::random().unwrap();
    let size0 = db.log_size().await.unwrap();
    let jobs = vec![
        job(doc, 1, lab, &[lab.0, patient.0]),
        job(doc, 1, lab, &[lab.0]),
        job(doc, 2, other, &[other.0]),
        job(serment_core::DocId::random().unwrap(), 1, lab, &[stranger]),
        job(doc, 2, lab, &[lab.0, patient.0]),
        // The first job sent again, identical (a retry that caught up with it).
        job(doc, 1, lab, &[patient.0, lab.0]),
    ];
    let out = commit_batch::commit_batch(&db.writer, &db.log, &jobs)
        .await
        .unwrap();
    assert!(
        matches!(out[1], Err(StoreError::Conflict(_))),
        "{:?}",
        out[1]
    );
    assert!(
        matches!(out[2], Err(StoreError::Forbidden(_))),
        "{:?}",
        out[2]
    );
    assert!(
        matches!(out[3], Err(StoreError::UnknownDevice(_))),
        "{:?}",
        out[3]
    );
    let (a, e) = match (&out[0], &out[4]) {
        (Ok(a), Ok(e)) => (a, e),
        other => panic!("{other:?}"),
    };
    match &out[5] {
        Ok(r) => {
            assert!(r.replayed && !a.replayed);
            // The first send's entries, in the retry's wrap order.
            let idx: Vec<u64> = r.proven.iter().map(|(e, _)| e.index).collect();
            assert_eq!(idx, [a.proven[1].0.index, a.proven[0].0.index]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.size, size0 + 4);
    let note = SignedCheckpoint::parse(&a.note).unwrap().checkpoint;
    assert_eq!(note.size, size0 + 4);
    let payloads = jobs[0].wraps.iter().chain(&jobs[4].wraps).map(|w| &w.bytes);
    let mut prev: Option<PrevLink> = None;
    for (i, ((entry, proof), payload)) in a.proven.iter().chain(&e.proven).zip(payloads).enumerate()
    {
        assert_eq!(entry.index, size0 + i as u64);
        tree::verify_inclusion(&entry.entry, entry.index, note.size, &note.root, proof).unwrap();
        // The document's chain runs through both versions, oldest first.
        assert_eq!(
            entry.entry,
            encode_entry(EntryKind::Wrap, 7, prev, payload).unwrap()
        );
        prev = Some(PrevLink {
            index: entry.index,
            leaf_hash: tree::leaf_hash(&entry.entry),
        });
    }
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(versions, 2);
    let wraps: Vec<i64> = sqlx::query_scalar("SELECT log_idx FROM wraps ORDER BY log_idx")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let expected: Vec<i64> = (0..4).map(|i| (size0 + i) as i64).collect();
    assert_eq!(wraps, expected);
    // The stored checkpoint is the one the batch returned, and the stored tree agrees.
    assert_eq!(db.log_note(None).await.unwrap().unwrap(), *a.note);
    let proof = db.log_inclusion(size0 + 3, note.size).await.unwrap();
    assert_eq!(proof, e.proven[1].1);
    // A batch where every job is refused writes nothing, not even a checkpoint.
    let checkpoints = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM log_checkpoints")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    };
    let before = checkpoints().await;
    let out = commit_batch::commit_batch(&db.writer, &db.log, &jobs[1..2])
        .await
        .unwrap();
    assert!(matches!(out[..], [Err(StoreError::Conflict(_))]), "{out:?}");
    assert_eq!(checkpoints().await, before);
    assert_eq!(db.log_size().await.unwrap(), note.size);
    db.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

/// A document's chain head comes from the log, not from the `documents` table: after an
/// operator deletes a document's rows, a new commit of that id still links to the subject's last
/// entry (the chain stays whole, and the audit shows what happened).
#[tokio::test]
async fn chain_heads_come_from_the_log() {
    use serment_core::log::entry::{EntryKind, PrevLink, encode_entry};
    use serment_core::log::tree;

    let (db, _, dir) = db_with_device().await;
    let lab = another_device(&db, "lab").await;
    let doc = serment_core::DocId::random().unwrap();
    let first = db.commit_version(job(doc, 1, lab, &[lab.0])).await.unwrap();
    let (last, _) = first.proven.last().unwrap();
    for t in ["wraps", "documents"] {
        sqlx::query(&format!("DELETE FROM {t} WHERE doc_id = ?"))
            .bind(doc.to_string())
            .execute(&db.writer)
            .await
            .unwrap();
    }
    let again = job(doc, 1, lab, &[lab.0]);
    let payload = again.wraps[0].bytes.clone();
    let second = db.commit_version(again).await.unwrap();
    let (entry, _) = &second.proven[0];
    let prev = PrevLink {
        index: last.index,
        leaf_hash: tree::leaf_hash(&last.entry),
    };
    assert_eq!(
        entry.entry,
        encode_entry(EntryKind::Wrap, 7, Some(prev), &payload).unwrap()
    );
    db.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

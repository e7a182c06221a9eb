//! The metadata half of the contract: one async fn per use case, each run on every backend.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::{EntryKind, PrevLink, Receipt, Subject, encode_entry};
use serment_core::log::note::SignedCheckpoint;
use serment_core::log::tree;
use serment_core::{DocId, KeyId};

use super::{Harness, device, job};
use crate::store::{
    AccessKind, BlobId, NewAccess, NewDevice, NewProvisional, NewWrap, Registered, RotatedDevice,
    StoreError,
};

/// Challenges expire, are single use, and are capped per device and in all.
pub(crate) async fn challenges(h: &dyn Harness) {
    let m = h.meta();
    let (dev, _) = device(&*m, "x").await;
    m.insert_challenge("c1", &dev, 160, 100).await.unwrap();
    assert!(!m.take_challenge("c1", &dev, 160).await.unwrap(), "expired");
    assert!(
        !m.take_challenge("c1", &dev, 100).await.unwrap(),
        "consumed"
    );
    m.insert_challenge("c2", &dev, 160, 100).await.unwrap();
    let other = KeyId::from_hex(&"ab".repeat(32)).unwrap();
    assert!(
        !m.take_challenge("c2", &other, 100).await.unwrap(),
        "other device"
    );
    assert!(m.take_challenge("c2", &dev, 159).await.unwrap());
    assert!(
        !m.take_challenge("c2", &dev, 100).await.unwrap(),
        "single use"
    );
    for i in 0..40u64 {
        m.insert_challenge(&format!("k{i}"), &dev, 200 + i, 100)
            .await
            .unwrap();
    }
    assert_eq!(
        h.count("challenges").await,
        crate::store::MAX_CHALLENGES_PER_DEVICE
    );
    assert!(
        m.take_challenge("k39", &dev, 100).await.unwrap(),
        "newest kept"
    );
    assert!(
        !m.take_challenge("k0", &dev, 100).await.unwrap(),
        "oldest dropped"
    );
    // With a total cap of 5, five remain, the ones closest to expiry dropped first.
    for i in 0..10u64 {
        m.insert_challenge_capped(&format!("t{i}"), &dev, 300 + i, 100, 5)
            .await
            .unwrap();
    }
    assert_eq!(h.count("challenges").await, 5);
    assert!(
        m.take_challenge("t9", &dev, 100).await.unwrap(),
        "newest kept"
    );
    assert!(
        !m.take_challenge("t0", &dev, 100).await.unwrap(),
        "oldest dropped"
    );
    // A challenge for a device that is not registered is refused by the store.
    assert!(m.insert_challenge("c3", &other, 160, 100).await.is_err());
}

/// Sessions expire and expired ones are purged when a new one is created.
pub(crate) async fn sessions(h: &dyn Harness) {
    let m = h.meta();
    let (dev, ident) = device(&*m, "x").await;
    m.create_session("t1", &dev, 1000, 100).await.unwrap();
    let row = m.session_device("t1", 999).await.unwrap().unwrap();
    assert_eq!((row.device_id, row.identity_id), (dev, ident));
    assert!(m.session_device("t1", 1000).await.unwrap().is_none());
    assert!(
        m.session_device("t2", 100).await.unwrap().is_none(),
        "missing row"
    );
    m.create_session("t2", &dev, 5000, 2000).await.unwrap();
    assert_eq!(h.count("sessions").await, 1);
    // A duplicate token hash is refused.
    assert!(m.create_session("t2", &dev, 5000, 2000).await.is_err());
}

/// Registration: created, idempotent, conflicts; the directory; revocation and rotation.
pub(crate) async fn directory(h: &dyn Harness) {
    let m = h.meta();
    let identity = IdentitySecret::generate();
    let dev = DeviceSecret::generate();
    let record = identity.sign_device_record("alice", &dev, 1).unwrap();
    let new = |record: &'static [u8], id: KeyId, ident: KeyId, handle: &'static str| NewDevice {
        device_id: id,
        identity_id: ident,
        handle,
        record,
        created_at: 1,
    };
    let record: &'static [u8] = Vec::leak(record);
    let size0 = m.log_size().await.unwrap();
    assert_eq!(
        m.register_device(&new(record, dev.id(), identity.id(), "alice"))
            .await
            .unwrap(),
        Registered::Created
    );
    assert_eq!(
        m.log_size().await.unwrap(),
        size0 + 1,
        "the record is logged"
    );
    assert_eq!(
        m.register_device(&new(record, dev.id(), identity.id(), "alice"))
            .await
            .unwrap(),
        Registered::Unchanged
    );
    let other_record: &'static [u8] = b"another record";
    assert!(matches!(
        m.register_device(&new(other_record, dev.id(), identity.id(), "alice"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // The handle stays with its first identity.
    let mallory = IdentitySecret::generate();
    let mdev = DeviceSecret::generate();
    assert!(matches!(
        m.register_device(&new(record, mdev.id(), mallory.id(), "alice"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        m.directory("alice").await.unwrap().unwrap(),
        vec![record.to_vec()]
    );
    assert!(
        m.directory("nobody").await.unwrap().is_none(),
        "missing row"
    );
    let row = m.device(&dev.id()).await.unwrap().unwrap();
    assert_eq!(row.record, record);
    assert!(m.device(&mdev.id()).await.unwrap().is_none());
    assert!(!m.device_revoked(&dev.id()).await.unwrap());

    // A second device, then its revocation.
    let dev2 = DeviceSecret::generate();
    let record2: &'static [u8] = Vec::leak(identity.sign_device_record("alice", &dev2, 2).unwrap());
    m.register_device(&new(record2, dev2.id(), identity.id(), "alice"))
        .await
        .unwrap();
    m.create_session("s2", &dev2.id(), 1000, 1).await.unwrap();
    let idx = m
        .revoke_device("alice", &identity.id(), &dev2.id(), b"rev", 5)
        .await
        .unwrap();
    assert_eq!(idx + 1, m.log_size().await.unwrap());
    assert!(m.device_revoked(&dev2.id()).await.unwrap());
    assert!(m.device(&dev2.id()).await.unwrap().is_none());
    assert!(
        m.session_device("s2", 2).await.unwrap().is_none(),
        "sessions end"
    );
    assert_eq!(m.directory("alice").await.unwrap().unwrap().len(), 1);
    assert!(matches!(
        m.revoke_device("alice", &identity.id(), &dev2.id(), b"r", 5)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            m.register_device(&new(record2, dev2.id(), identity.id(), "alice"))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a revoked device cannot come back"
    );

    // Rotation: the handle follows the new identity, kept devices are re-certified.
    let next = IdentitySecret::generate();
    let recert = next.sign_device_record("alice", &dev, 3).unwrap();
    let keep = [RotatedDevice {
        device_id: dev.id(),
        record: recert.clone(),
    }];
    let (old_id, new_id) = (identity.id(), next.id());
    let before = m.log_size().await.unwrap();
    let idx = m
        .rotate_identity("alice", &old_id, &new_id, b"rotation", &keep, 6)
        .await
        .unwrap();
    assert_eq!(idx, vec![before, before + 1]);
    assert_eq!(
        m.device(&dev.id()).await.unwrap().unwrap().identity_id,
        new_id
    );
    assert_eq!(m.directory("alice").await.unwrap().unwrap(), vec![recert]);
    let rec = m
        .log_device_record(&dev.id(), before + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.index, before + 1);
    assert!(
        matches!(
            m.rotate_identity("alice", &old_id, &new_id, b"again", &keep, 7)
                .await,
            Err(StoreError::Conflict(_))
        ),
        "the handle is no longer bound to the old identity"
    );
    let size = m.log_size().await.unwrap();
    let subject = m
        .log_subject(&Subject::Handle("alice".into()), size)
        .await
        .unwrap();
    assert_eq!(
        subject.len(),
        5,
        "record, record, revocation, rotation, record"
    );
}

/// Each job of one batch gets its own verdict; the accepted ones are chained and proven against
/// the batch's one checkpoint; the refused ones leave nothing behind.
pub(crate) async fn batch(h: &dyn Harness) {
    let m = h.meta();
    let lab = device(&*m, "lab").await;
    let other = device(&*m, "other").await;
    let patient = device(&*m, "patient").await;
    let stranger = KeyId::from_hex(&"ab".repeat(32)).unwrap();
    let doc = DocId::random().unwrap();
    let size0 = m.log_size().await.unwrap();
    let jobs = vec![
        job(doc, 1, lab, &[lab.0, patient.0]),
        job(doc, 1, lab, &[lab.0]),
        job(doc, 2, other, &[other.0]),
        job(DocId::random().unwrap(), 1, lab, &[stranger]),
        job(doc, 2, lab, &[lab.0, patient.0]),
        // The first job sent again, identical (a retry that caught up with it).
        job(doc, 1, lab, &[patient.0, lab.0]),
    ];
    let out = h.batch(&jobs).await.unwrap();
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
        assert_eq!(
            entry.entry,
            encode_entry(EntryKind::Wrap, 7, prev, payload).unwrap()
        );
        prev = Some(PrevLink {
            index: entry.index,
            leaf_hash: tree::leaf_hash(&entry.entry),
        });
    }
    assert_eq!(h.count("documents").await, 2);
    assert_eq!(h.count("wraps").await, 4);
    assert_eq!(m.log_note(None).await.unwrap().unwrap(), *a.note);
    assert_eq!(
        m.log_inclusion(size0 + 3, note.size).await.unwrap(),
        e.proven[1].1
    );
    // A batch where every job is refused writes nothing, not even a checkpoint.
    let before = h.count("log_checkpoints").await;
    let out = h.batch(&jobs[1..2]).await.unwrap();
    assert!(matches!(out[..], [Err(StoreError::Conflict(_))]), "{out:?}");
    assert_eq!(h.count("log_checkpoints").await, before);
    assert_eq!(m.log_size().await.unwrap(), note.size);
    // Through the queue: a retry of a stored commit is answered with its stored entries.
    let again = m
        .commit_version(job(doc, 2, lab, &[lab.0, patient.0]))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.proven[0].0.index, e.proven[0].0.index);
}

/// A document's chain head comes from the log, not from the `documents` table.
pub(crate) async fn chain_heads(h: &dyn Harness) {
    let m = h.meta();
    let lab = device(&*m, "lab").await;
    let doc = DocId::random().unwrap();
    let first = m.commit_version(job(doc, 1, lab, &[lab.0])).await.unwrap();
    let (last, _) = first.proven.last().unwrap();
    for t in ["wraps", "documents"] {
        h.delete_doc_rows(t, &doc.to_string()).await;
    }
    let again = job(doc, 1, lab, &[lab.0]);
    let payload = again.wraps[0].bytes.clone();
    let second = m.commit_version(again).await.unwrap();
    let prev = PrevLink {
        index: last.index,
        leaf_hash: tree::leaf_hash(&last.entry),
    };
    assert_eq!(
        second.proven[0].0.entry,
        encode_entry(EntryKind::Wrap, 7, Some(prev), &payload).unwrap()
    );
}

/// Versions, wraps, participants, accesses, recipient removal, and their failures.
pub(crate) async fn documents(h: &dyn Harness) {
    let m = h.meta();
    let lab = device(&*m, "lab").await;
    let patient = device(&*m, "patient").await;
    let nurse = device(&*m, "nurse").await;
    let doc = DocId::random().unwrap();
    let j = job(doc, 1, lab, &[lab.0, patient.0]);
    let blob = j.blob_id.clone();
    let inline = j.inline.clone().unwrap();
    m.commit_version(j).await.unwrap();
    assert_eq!(m.blob_inline(&blob).await.unwrap().unwrap(), inline);
    assert_eq!(m.blob_size(&blob).await.unwrap(), Some(inline.len() as u64));
    let missing = BlobId::of(b"nothing");
    assert!(
        m.blob_size(&missing).await.unwrap().is_none(),
        "missing row"
    );
    assert!(
        m.blob_inline(&missing).await.unwrap().is_none(),
        "missing row"
    );
    let v = m.version(&doc, 1).await.unwrap().unwrap();
    assert_eq!((v.doc_version, v.blob_id.as_str()), (1, blob.as_str()));
    assert_eq!(v.size, inline.len() as u64);
    assert!(m.version(&doc, 2).await.unwrap().is_none(), "missing row");
    let (l, p, n) = (lab.0, patient.0, nurse.0);
    assert_eq!(m.readable_versions(&p, &patient.1).await.unwrap().len(), 1);
    assert!(m.readable_versions(&n, &nurse.1).await.unwrap().is_empty());
    assert!(m.wrap_for(&doc, 1, &p).await.unwrap().is_some());
    assert!(m.wrap_for(&doc, 1, &n).await.unwrap().is_none());
    let (_, idx) = m.wrap_with_index(&doc, 1, &p).await.unwrap().unwrap();
    let entry = m.log_entry(idx.unwrap()).await.unwrap().unwrap();
    assert!(!entry.is_empty());
    assert_eq!(
        m.is_participant(&doc, &p, &patient.1).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        m.is_participant(&doc, &l, &lab.1).await.unwrap(),
        Some(true)
    );
    assert_eq!(
        m.is_participant(&doc, &n, &nurse.1).await.unwrap(),
        Some(false)
    );
    let none = DocId::random().unwrap();
    assert_eq!(m.is_participant(&none, &n, &nurse.1).await.unwrap(), None);

    // Sharing later: add a wrap, then refuse a second wrap for the same recipient, an unknown
    // recipient, and more than MAX_WRAPS.
    let wrap = |r: KeyId| NewWrap {
        recipient: r,
        sharer: lab.0,
        bytes: format!("late wrap for {r}").into_bytes(),
    };
    let idx = m.add_wraps(&doc, 1, &[wrap(nurse.0)], 9).await.unwrap();
    assert_eq!(idx.len(), 1);
    assert!(matches!(
        m.add_wraps(&doc, 1, &[wrap(nurse.0)], 9).await,
        Err(StoreError::Conflict(_))
    ));
    let stranger = KeyId::from_hex(&"cd".repeat(32)).unwrap();
    assert!(matches!(
        m.add_wraps(&doc, 1, &[wrap(stranger)], 9).await,
        Err(StoreError::UnknownDevice(_))
    ));
    let many: Vec<NewWrap> = (0..crate::store::MAX_WRAPS)
        .map(|_| wrap(nurse.0))
        .collect();
    assert!(matches!(
        m.add_wraps(&doc, 1, &many, 9).await,
        Err(StoreError::TooManyWraps)
    ));

    // Accesses: recorded and logged; a receipt nonce is accepted once.
    let size = m.log_size().await.unwrap();
    let access = |receipt| NewAccess {
        doc_id: doc,
        doc_version: 1,
        device_id: patient.0,
        what: AccessKind::Wrap,
        now: 11,
        receipt,
    };
    let idx = m.record_access(&access(None)).await.unwrap();
    assert_eq!(idx, size);
    let receipt = Receipt {
        at: 10,
        nonce: [7; 16],
        signature: [1; 64],
    };
    m.record_access(&access(Some(receipt))).await.unwrap();
    assert!(matches!(
        m.record_access(&access(Some(receipt))).await,
        Err(StoreError::Conflict(_))
    ));
    let rows = m.accesses(&doc).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0].handle.as_str(), rows[0].what.as_str()),
        ("patient", "wrap")
    );
    assert!(m.accesses(&none).await.unwrap().is_empty());

    // Removal of a recipient: logged once, then a conflict.
    m.remove_recipient(&doc, 1, &n, b"removal", 12)
        .await
        .unwrap();
    assert!(m.wrap_for(&doc, 1, &n).await.unwrap().is_none());
    assert!(matches!(
        m.remove_recipient(&doc, 1, &n, b"removal", 12).await,
        Err(StoreError::Conflict(_))
    ));
}

/// Pending uploads: recorded, counted per uploader, cleared by a commit, collected when stale.
pub(crate) async fn pending_uploads(h: &dyn Harness) {
    let m = h.meta();
    let lab = device(&*m, "lab").await;
    let up = lab.0;
    let someone_else = DeviceSecret::generate().id();
    let (a, b) = (BlobId::of(b"a"), BlobId::of(b"b"));
    m.record_blob(&a, 10, 100, &up).await.unwrap();
    m.record_blob(&b, 20, 200, &up).await.unwrap();
    m.record_blob(&a, 10, 300, &someone_else).await.unwrap();
    assert_eq!(m.pending_uploads(&up).await.unwrap(), (2, 30));
    assert_eq!(m.pending_uploads(&someone_else).await.unwrap(), (0, 0));
    // The second upload of `a` kept its first uploader but restarted its age (300).
    assert!(m.stale_pending_blobs(150, 10).await.unwrap().is_empty());
    assert_eq!(
        m.stale_pending_blobs(350, 10).await.unwrap(),
        vec![b.clone(), a.clone()]
    );
    assert_eq!(
        m.stale_pending_blobs(250, 1).await.unwrap(),
        vec![b.clone()]
    );
    // A commit referencing `b` makes it committed: no longer pending, never collected.
    let mut j = job(DocId::random().unwrap(), 1, lab, &[lab.0]);
    j.blob_id = b.clone();
    j.inline = None;
    m.commit_version(j).await.unwrap();
    assert_eq!(m.pending_uploads(&up).await.unwrap(), (1, 10));
    assert!(!m.mark_blob_deleting(&b, 1000).await.unwrap(), "committed");
    assert!(
        !m.mark_blob_deleting(&a, 250).await.unwrap(),
        "not stale yet"
    );
    assert!(m.mark_blob_deleting(&a, 350).await.unwrap());
    assert!(m.mark_blob_deleting(&a, 0).await.unwrap(), "stays marked");
    // Marked: listed for the collector whatever its age, no longer a blob to commit, and an
    // upload of the same bytes is a conflict until the row is gone.
    assert_eq!(m.stale_pending_blobs(0, 10).await.unwrap(), vec![a.clone()]);
    assert!(m.blob_size(&a).await.unwrap().is_none());
    assert!(matches!(
        m.record_blob(&a, 10, 400, &up).await,
        Err(StoreError::Conflict(_))
    ));
    let mut refused = job(DocId::random().unwrap(), 1, lab, &[lab.0]);
    refused.blob_id = a.clone();
    refused.inline = None;
    assert!(matches!(
        m.commit_version(refused).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(!m.forget_deleted_blob(&b).await.unwrap(), "not marked");
    assert!(m.forget_deleted_blob(&a).await.unwrap());
    assert!(!m.forget_deleted_blob(&a).await.unwrap(), "missing row");
    assert!(m.blob_size(&a).await.unwrap().is_none());
    assert_eq!(m.blob_size(&b).await.unwrap(), Some(20));
    // A commit naming a blob that has no row is refused too (the collector won the race).
    let mut gone = job(DocId::random().unwrap(), 1, lab, &[lab.0]);
    gone.blob_id = a.clone();
    gone.inline = None;
    assert!(matches!(
        m.commit_version(gone).await,
        Err(StoreError::Conflict(_))
    ));
    // Once the row is gone, the same bytes can be uploaded again.
    m.record_blob(&a, 10, 500, &up).await.unwrap();
    assert_eq!(m.blob_size(&a).await.unwrap(), Some(10));
}

/// Log reads, proofs, cosignatures and the checkpoint compare-and-swap.
pub(crate) async fn log(h: &dyn Harness) {
    let m = h.meta();
    let lab = device(&*m, "lab").await;
    let doc = DocId::random().unwrap();
    let c1 = m.commit_version(job(doc, 1, lab, &[lab.0])).await.unwrap();
    let old = SignedCheckpoint::parse(&c1.note).unwrap().checkpoint;
    // The commit proves its checkpoint consistent with the size the client last saw, in the
    // batch's own transaction (PROTOCOL.md §8.3 `log_from`).
    let mut j2 = job(doc, 2, lab, &[lab.0]);
    j2.log_from = Some(old.size);
    let c2 = m.commit_version(j2).await.unwrap();
    let new = SignedCheckpoint::parse(&c2.note).unwrap().checkpoint;
    assert!(!c2.consistency.is_empty());
    tree::verify_consistency(old.size, &old.root, new.size, &new.root, &c2.consistency).unwrap();
    assert_eq!(c1.consistency, Vec::<tree::Hash>::new(), "none asked");
    let size = m.log_size().await.unwrap();
    assert_eq!(size, new.size);
    let latest = SignedCheckpoint::parse(&m.log_note(None).await.unwrap().unwrap()).unwrap();
    assert_eq!(latest.checkpoint, new);
    latest
        .verify_log_signature(&m.log_signer().verifier())
        .unwrap();
    assert!(
        m.log_note(Some(size + 1)).await.unwrap().is_none(),
        "missing row"
    );
    let proof = m.log_consistency(old.size, new.size).await.unwrap();
    tree::verify_consistency(old.size, &old.root, new.size, &new.root, &proof).unwrap();
    assert_eq!(proof, c2.consistency);
    let entries = m.log_entries(0, size).await.unwrap();
    assert_eq!(entries.len() as u64, size);
    for (i, e) in entries.iter().enumerate() {
        let p = m.log_inclusion(i as u64, size).await.unwrap();
        tree::verify_inclusion(e, i as u64, size, &new.root, &p).unwrap();
        assert_eq!(m.log_entry(i as u64).await.unwrap().as_ref(), Some(e));
    }
    assert!(m.log_entry(size).await.unwrap().is_none(), "missing row");
    assert!(m.log_inclusion(size, size).await.is_err());
    let subject = m.log_subject(&Subject::Document(doc), size).await.unwrap();
    assert_eq!(subject.len(), 2);
    let rec = m.log_device_record(&lab.0, size).await.unwrap().unwrap();
    assert_eq!(rec.index, 0);
    assert!(
        m.log_device_record(&DeviceSecret::generate().id(), size)
            .await
            .unwrap()
            .is_none()
    );

    // Cosignatures: first line per (witness, key id) kept; shown on the note.
    assert_eq!(m.log_cosignature_count(size).await.unwrap(), 0);
    m.log_add_cosignature(size, "w1", 1, "— w1 AAAA")
        .await
        .unwrap();
    m.log_add_cosignature(size, "w1", 1, "— w1 BBBB")
        .await
        .unwrap();
    m.log_add_cosignature(size, "w1", 2, "— w1 CCCC")
        .await
        .unwrap();
    assert_eq!(m.log_cosignature_count(size).await.unwrap(), 2);
    assert!(
        m.log_add_cosignature(size + 9, "w1", 1, "— w1 DDDD")
            .await
            .is_err(),
        "no such size"
    );

    // The compare-and-swap: a writer that read an older tree cannot publish.
    assert!(matches!(
        h.publish_stale(size - 1).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(m.log_size().await.unwrap(), size);
}

/// The addresses of provisional recipients left unclaimed are erased once older than the
/// retention (the newcomer's H19); younger ones stay.
pub(crate) async fn unclaimed_addresses(h: &dyn Harness) {
    let m = h.meta();
    let (lab_device, lab_identity) = device(&*m, "lab").await;
    let mut ids = Vec::new();
    for (n, created) in [(1u8, 1_000u64), (2, 5_000)] {
        let id = DeviceSecret::generate().id();
        let (lookup, share, escrow, record) = ([n; 32], [n; 32], [n; 64], [n; 40]);
        m.create_provisional(&NewProvisional {
            id,
            lab_identity,
            lab_device,
            contact_tag: hex::encode([n; 32]),
            lookup: hex::encode(lookup),
            email: &format!("patient{n}@example.org"),
            server_share: &share,
            escrow: &escrow,
            record: &record,
            now: created,
        })
        .await
        .unwrap();
        ids.push(id);
    }
    assert_eq!(
        m.erase_unclaimed_addresses(1_000).await.unwrap(),
        0,
        "none older"
    );
    assert_eq!(m.erase_unclaimed_addresses(2_000).await.unwrap(), 1);
    assert_eq!(
        m.erase_unclaimed_addresses(2_000).await.unwrap(),
        0,
        "erased once"
    );
    let old = m.provisional(&ids[0]).await.unwrap().unwrap();
    let young = m.provisional(&ids[1]).await.unwrap().unwrap();
    assert_eq!(old.email, "", "the old address must be erased");
    assert_eq!(
        young.email, "patient2@example.org",
        "a younger address stays"
    );
    assert_eq!(old.server_share, vec![1u8; 32], "only the address goes");
}

//! The operator tampers with the stored bytes themselves, on whichever storage the hostile server
//! runs (`serment_hostile::storage`: SQLite + a directory, or PostgreSQL + an S3 bucket): a blob
//! in the object store and a blob committed inline in the database, each with one bit flipped,
//! are refused as integrity failures; put back, they read again. The same test proves that the
//! harness runs on the backend the environment names, so the other storage-touching tests of
//! this suite do too.

use serment_core::document::Header;
use serment_hostile::harness::DbKind;

use crate::common::*;

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty())
}

#[test]
fn storage_tampering_a_flipped_bit_in_an_object_or_an_inline_row_is_refused() {
    let sqlite = std::env::var("SERMENT_TEST_SERVER_BACKEND").as_deref() == Ok("sqlite");
    let pg = !sqlite && env_set("SERMENT_TEST_DATABASE_URL");
    let s3 = !sqlite && env_set("SERMENT_TEST_S3") && env_set("AWS_ENDPOINT_URL");
    let mut w = World::new();
    let want = if pg { DbKind::Postgres } else { DbKind::Sqlite };
    assert_eq!(w.h.db_kind(), want);
    assert_eq!(w.h.blobs_in_bucket(), s3);
    assert_eq!(w.h.data_dir().join("serment.db").exists(), !pg);

    // 300 KiB is past the 256 KiB a commit may carry inline: uploaded to the blob store.
    let big = content(300 * 1024, 1);
    let small = content(2 * 1024, 2);
    let rb = w.put(&big, "big", &[PATIENT]);
    let rs = w.put(&small, "small", &[PATIENT]);
    let inline = |id: &str| {
        let rows = w.h.sql(&format!(
            "SELECT COUNT(*) FROM blobs WHERE blob_id = '{id}' AND data IS NOT NULL"
        ));
        rows[0][0].1.as_deref() == Some(b"1".as_slice())
    };
    assert!(!inline(&rb.blob_id), "the big blob went to the blob store");
    assert!(inline(&rs.blob_id), "the small blob was committed inline");
    let stored: Vec<String> = w.h.all_blobs().into_iter().map(|(id, _)| id).collect();
    assert!(stored.contains(&rb.blob_id) && stored.contains(&rs.blob_id));

    for (r, plain) in [(&rb, &big), (&rs, &small)] {
        let original = w.h.blob_bytes(&r.blob_id);
        // One bit of the first chunk's ciphertext, just past the sealed header.
        let at = Header::LEN + 5;
        w.h.tamper_blob(&r.blob_id, |b| b[at] ^= 0x01);
        assert_ne!(
            w.h.blob_bytes(&r.blob_id),
            original,
            "the tampering is stored"
        );
        let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
        assert_eq!(e.exit_code(), 4, "{e:?}");
        integrity(&e);
        w.h.set_blob_bytes(&r.blob_id, &original);
        let (back, _) = read(&mut w.patient, &r.doc_id, Some(1)).unwrap();
        assert_eq!(&back, plain);
    }
}

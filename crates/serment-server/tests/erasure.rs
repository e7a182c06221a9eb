//! Erasure (PROTOCOL.md §11.3.2, issue 12 §5): the author's tombstone deletes every version's
//! wraps, rows and blobs in one transaction with its log entry (kind 9); afterwards every route
//! of the document answers 410 `erased`, `ls` omits it, and its log stays readable to the author
//! and former recipients. Runs on PostgreSQL when `SERMENT_TEST_DATABASE_URL` is set (unless
//! `SERMENT_TEST_SERVER_BACKEND=sqlite`), on SQLite otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use serment_core::DocId;
use serment_core::log::entry::{EntryKind, LogEntry, Payload};
use serment_core::log::erasure::{Erasure, ErasureReason};

fn erase_body(who: &User, doc: DocId, reason: ErasureReason) -> Value {
    json!({ "erasure": b64(&Erasure::sign(&doc, reason, &who.device, 1_700_000_500)) })
}

fn uri(doc: DocId, rest: &str) -> String {
    format!("/v1/documents/{doc}{rest}")
}

#[tokio::test]
async fn erasure_deletes_every_version_and_keeps_the_tombstone() {
    let srv = TestServer::new().await;
    let (alice, bob, carol) = (User::new("alice"), User::new("bob"), User::new("carol"));
    let ta = srv.enroll(&alice).await;
    let tb = srv.enroll(&bob).await;
    let tc = srv.enroll(&carol).await;
    let doc = DocId::random().unwrap();
    let (blob1, s1) = seal_for(&alice, doc, 1, &[&bob], b"version one");
    let (blob2, s2) = seal_for(&alice, doc, 2, &[&bob], b"version two");
    let (s, v) = commit(&srv, &ta, doc, 1, blob1, all_wraps(&s1)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = commit(&srv, &ta, doc, 2, blob2, all_wraps(&s2)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A second document of alice's stays untouched.
    let other = DocId::random().unwrap();
    let (blob3, s3) = seal_for(&alice, other, 1, &[&bob], b"another document");
    let (s, v) = commit(&srv, &ta, other, 1, blob3, all_wraps(&s3)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(count_files(&srv.data.join("blobs")), 3);

    // A recipient (not the author) may not erase, nor may anyone else.
    let (s, v) = srv
        .post(
            &uri(doc, "/erase"),
            Some(&tb),
            erase_body(&bob, doc, ErasureReason::Other),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = srv
        .post(
            &uri(doc, "/erase"),
            Some(&tc),
            erase_body(&carol, doc, ErasureReason::Other),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // A tombstone must be the caller's, for this document.
    let (s, v) = srv
        .post(
            &uri(doc, "/erase"),
            Some(&ta),
            erase_body(&bob, doc, ErasureReason::Other),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = srv
        .post(
            &uri(doc, "/erase"),
            Some(&ta),
            erase_body(&alice, other, ErasureReason::Other),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let nowhere = DocId::random().unwrap();
    let (s, v) = srv
        .post(
            &uri(nowhere, "/erase"),
            Some(&ta),
            erase_body(&alice, nowhere, ErasureReason::Other),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    let (s, v) = srv
        .post(
            &uri(doc, "/erase"),
            Some(&ta),
            erase_body(&alice, doc, ErasureReason::SentInError),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let idx = v["log_indices"][0].as_u64().unwrap();
    let (s, v) = srv
        .get(
            &format!("/v1/log/entries?start={idx}&end={}", idx + 1),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let e = LogEntry::decode(&unb64(v["entries"][0].as_str().unwrap())).unwrap();
    assert_eq!(e.kind, EntryKind::Erasure);
    let Payload::Erasure(t) = e.payload else {
        panic!("not a tombstone")
    };
    assert_eq!(t.doc_id, doc);
    assert_eq!(t.reason, ErasureReason::SentInError);
    assert!(
        e.prev.is_some(),
        "the tombstone chains after the document's entries"
    );

    // The blobs of both versions are gone; the other document's stays.
    assert_eq!(count_files(&srv.data.join("blobs")), 1);
    for (token, who) in [(&ta, "author"), (&tb, "recipient")] {
        for v in [1, 2] {
            let (s, body) = srv
                .get(&uri(doc, &format!("/versions/{v}")), Some(token))
                .await;
            assert_eq!(s, StatusCode::GONE, "{who} v{v}: {body}");
            assert_eq!(body["error"]["code"], "erased", "{body}");
            let (s, _) = srv
                .get(&uri(doc, &format!("/versions/{v}/blob")), Some(token))
                .await;
            assert_eq!(s, StatusCode::GONE, "{who} blob v{v}");
        }
        let (s, list) = srv.get("/v1/documents", Some(token)).await;
        assert_eq!(s, StatusCode::OK);
        let ids: Vec<&str> = list["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["doc_id"].as_str().unwrap())
            .collect();
        assert!(!ids.contains(&doc.to_string().as_str()), "{who}: {ids:?}");
        assert!(ids.contains(&other.to_string().as_str()), "{who}: {ids:?}");
        // The document's log stays readable, the tombstone last.
        let (s, h) = srv.get(&uri(doc, "/log"), Some(token)).await;
        assert_eq!(s, StatusCode::OK, "{who}: {h}");
        let last = h["entries"].as_array().unwrap().last().unwrap()["index"].as_u64();
        assert_eq!(last, Some(idx), "{who}");
    }
    let (s, _) = srv.get(&uri(doc, "/log"), Some(&tc)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a stranger reads nothing of it");

    // Nothing comes back: no new version, no new wrap, no second tombstone.
    let (blob4, s4) = seal_for(&alice, doc, 3, &[&bob], b"version three");
    let (s, v) = commit(&srv, &ta, doc, 3, blob4, all_wraps(&s4)).await;
    assert_eq!(s, StatusCode::GONE, "{v}");
    let (_, s1b) = seal_for(&alice, doc, 1, &[&carol], b"version one");
    let (s, v) = srv
        .post(
            &uri(doc, "/versions/1/wraps"),
            Some(&ta),
            json!({ "wraps": [wrap_of(&s1b, &carol)] }),
        )
        .await;
    assert_eq!(s, StatusCode::GONE, "{v}");
    let (s, v) = srv
        .post(
            &uri(doc, "/erase"),
            Some(&ta),
            erase_body(&alice, doc, ErasureReason::Other),
        )
        .await;
    assert_eq!(s, StatusCode::GONE, "{v}");
}

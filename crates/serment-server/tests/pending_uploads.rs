//! Uploads that no commit references (issue 10 §2): a per-device quota (429 `pending_quota`) and a
//! garbage collector that deletes them, row and file, after `pending_upload_grace_secs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use serment_core::DocId;
use serment_server::{Config, Server};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn server(cfg: impl FnOnce(Config) -> Config) -> (Server, TestServer) {
    let dir = TempDir::new("pending");
    let data = dir.path().join("data");
    let server = Server::open(cfg(test_config(&data))).await.unwrap();
    let srv = TestServer {
        router: server.router(),
        dir,
        data,
    };
    (server, srv)
}

fn blob_path(srv: &TestServer, id: &str) -> std::path::PathBuf {
    srv.data.join("blobs").join(&id[..2]).join(id)
}

#[tokio::test]
async fn pending_uploads_are_capped_per_device() {
    let (_server, srv) = server(|c| Config {
        max_pending_uploads: 2,
        ..c
    })
    .await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    let tb = srv.enroll(&bob).await;
    let doc_id = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob], b"report");
    let (s, first) = srv.upload(&ta, blob).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, v) = srv.upload(&ta, vec![1u8; 2000]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A third pending upload is refused, with a code and a message that says what to do.
    let (s, v) = srv.upload(&ta, vec![2u8; 2000]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "pending_quota");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("commit"),
        "{v}"
    );
    // Another device has its own quota.
    let (s, v) = srv.upload(&tb, vec![2u8; 2000]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Committing one frees a slot.
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            json!({ "doc_id": doc_id.to_string(), "doc_version": 1, "blob_id": first["blob_id"],
                    "wraps": all_wraps(&sealed) }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv.upload(&ta, vec![2u8; 2000]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// An upload with its `Content-Length` declared (as any HTTP/1.1 client sends it).
async fn upload_declared(
    srv: &TestServer,
    token: &str,
    bytes: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let req = authorize(
        axum::http::Request::post("/v1/blobs"),
        "POST",
        "/v1/blobs",
        token,
        None,
    )
    .header("content-type", "application/octet-stream")
    .header("content-length", bytes.len())
    .body(axum::body::Body::from(bytes))
    .unwrap();
    let (s, b) = srv.send(req).await;
    (s, serde_json::from_slice(&b).unwrap())
}

#[tokio::test]
async fn pending_byte_quota_uses_the_declared_length() {
    let (_server, srv) = server(|c| Config {
        max_pending_upload_bytes: 5000,
        ..c
    })
    .await;
    let alice = User::new("alice");
    let ta = srv.enroll(&alice).await;
    let (s, _) = upload_declared(&srv, &ta, vec![1u8; 3000]).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = upload_declared(&srv, &ta, vec![2u8; 3000]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "pending_quota");
    let (s, _) = upload_declared(&srv, &ta, vec![3u8; 1000]).await;
    assert_eq!(s, StatusCode::CREATED);
    // Over the byte quota, no upload is accepted.
    let (s, _) = upload_declared(&srv, &ta, vec![4u8; 1500]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn unreferenced_uploads_are_collected_after_the_grace_period() {
    let grace = 3600;
    let (server, srv) = server(|c| Config {
        pending_upload_grace_secs: grace,
        ..c
    })
    .await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;

    // Committed: kept forever.
    let doc_id = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob], &[5u8; 1000]);
    let (s, v) = commit(&srv, &ta, doc_id, 1, blob, all_wraps(&sealed)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let committed = v["blob_id"].as_str().unwrap().to_owned();
    // Uploaded, never committed.
    let orphan_id = DocId::random().unwrap();
    let (orphan, orphan_sealed) = seal_for(&alice, orphan_id, 1, &[&bob], &[6u8; 1000]);
    let (s, v) = srv.upload(&ta, orphan).await;
    assert_eq!(s, StatusCode::CREATED);
    let orphan_blob = v["blob_id"].as_str().unwrap().to_owned();
    assert!(blob_path(&srv, &orphan_blob).exists());

    // Within the grace period nothing is collected.
    assert_eq!(server.collect_garbage(now() + grace - 60).await.unwrap(), 0);
    assert!(blob_path(&srv, &orphan_blob).exists());
    // After it, the orphan goes (row and file), the committed blob stays.
    assert_eq!(server.collect_garbage(now() + grace + 60).await.unwrap(), 1);
    assert!(!blob_path(&srv, &orphan_blob).exists());
    assert!(blob_path(&srv, &committed).exists());
    assert_eq!(server.collect_garbage(now() + grace + 60).await.unwrap(), 0);
    // The committed version still reads; the orphan can no longer be committed.
    let (s, v) = srv
        .get(&format!("/v1/documents/{doc_id}/versions/1"), Some(&ta))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            json!({ "doc_id": orphan_id.to_string(), "doc_version": 1, "blob_id": orphan_blob,
                    "wraps": all_wraps(&orphan_sealed) }),
        )
        .await;
    assert!(s.is_client_error(), "{s} {v}");
    // Uploading bytes a commit references again is not a new pending upload.
    let again = std::fs::read(blob_path(&srv, &committed)).unwrap();
    let (s, v) = srv.upload(&ta, again).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["blob_id"], committed, "re-upload of committed bytes");
    assert_eq!(
        server.collect_garbage(now() + grace + 60).await.unwrap(),
        0,
        "bytes a commit references are never pending again"
    );
    assert!(blob_path(&srv, &committed).exists());
}

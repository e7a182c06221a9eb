//! RFC 9421 request signatures at the router (PROTOCOL.md §8.2): a bearer request needs a valid
//! signature by the token's device, fresh (`created` within 300 s), with a nonce never seen, and
//! covering `content-digest` when it has a body; a body that does not match its digest is never
//! processed or stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::Value;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A GET of `/v1/documents` signed by `device` with `created` and `nonce`.
fn signed_get(
    device: &serment_core::identity::DeviceSecret,
    token: &str,
    created: u64,
    nonce: &str,
) -> Request<Body> {
    let auth = format!("Bearer {token}");
    let h = serment_core::httpsig::sign(
        device,
        &serment_core::httpsig::Request {
            method: "GET",
            path: "/v1/documents",
            query: None,
            authorization: &auth,
            content_digest: None,
        },
        created,
        nonce,
    )
    .unwrap();
    Request::get("/v1/documents")
        .header(header::AUTHORIZATION, auth)
        .header("signature-input", h.signature_input)
        .header("signature", h.signature)
        .body(Body::empty())
        .unwrap()
}

async fn status_and_message(srv: &TestServer, req: Request<Body>) -> (StatusCode, String) {
    let (s, b) = srv.send(req).await;
    let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
    (s, v["error"]["message"].as_str().unwrap_or("").to_owned())
}

#[tokio::test]
async fn signature_freshness_nonce_and_signer_are_enforced() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;
    let n = now();

    // Fresh and new: accepted once.
    let nonce = "AAAAAAAAAAAAAAAAAAAAAA";
    let (s, m) = status_and_message(&srv, signed_get(&alice.device, &ta, n, nonce)).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let (s, m) = status_and_message(&srv, signed_get(&alice.device, &ta, n, nonce)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(m.contains("already used"), "{m}");

    // Stale by more than 300 s, or from the future by more than 60 s (F11: future-dated rows
    // are what would fill the replay cache).
    for created in [n - 301, n + 301, n + 61, 0] {
        let (s, m) = status_and_message(
            &srv,
            signed_get(&alice.device, &ta, created, "BBBBBBBBBBBBBBBBBBBBBB"),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "created {created}");
        assert!(m.contains("300 s"), "{m}");
    }
    // Within the window: fine.
    let (s, _) = status_and_message(
        &srv,
        signed_get(&alice.device, &ta, n - 250, "CCCCCCCCCCCCCCCCCCCCCC"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = status_and_message(
        &srv,
        signed_get(&alice.device, &ta, n + 50, "FFFFFFFFFFFFFFFFFFFFFF"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);

    // Alice's token signed by Bob's key: the keyid names another device.
    let (s, m) = status_and_message(
        &srv,
        signed_get(&bob.device, &ta, n, "DDDDDDDDDDDDDDDDDDDDDD"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(m.contains("keyid"), "{m}");

    // The token alone, and a signature without the token's header value it covered.
    let req = Request::get("/v1/documents")
        .header(header::AUTHORIZATION, format!("Bearer {ta}"))
        .body(Body::empty())
        .unwrap();
    let (s, m) = status_and_message(&srv, req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(m.contains("signature is required"), "{m}");
    let mut req = signed_get(&alice.device, &ta, n, "EEEEEEEEEEEEEEEEEEEEEE");
    let again = req.headers()["signature"].clone();
    req.headers_mut().append("signature", again);
    let (s, _) = status_and_message(&srv, req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "two Signature headers");
}

#[tokio::test]
async fn bodies_are_bound_by_content_digest() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let ta = srv.enroll(&alice).await;
    let body = br#"{"wraps":[]}"#.to_vec();
    let uri = format!("/v1/documents/{}/versions/1/wraps", "ab".repeat(16));

    // A POST whose signature does not cover content-digest: 401.
    let mut b = Request::post(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {ta}"))
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in signature_headers("POST", &uri, &ta, None) {
        b = b.header(k, v);
    }
    let (s, m) = status_and_message(&srv, b.body(Body::from(body.clone())).unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(m.contains("content-digest"), "{m}");

    // Signed over one body, another sent: the digest check refuses it before any handler.
    let b = authorize(Request::post(&uri), "POST", &uri, &ta, Some(&body))
        .header(header::CONTENT_TYPE, "application/json");
    let (s, b2) = srv
        .send(b.body(Body::from(br#"{"wraps":[1]}"#.to_vec())).unwrap())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&b2).unwrap();
    assert_eq!(v["error"]["code"], "digest_mismatch");

    // A blob upload declaring a digest its body does not have: refused, nothing stored.
    let blob = vec![7u8; 4096];
    let before = count_files(&srv.data.join("blobs"));
    let req = authorize(
        Request::post("/v1/blobs"),
        "POST",
        "/v1/blobs",
        &ta,
        Some(&[1u8]),
    )
    .header(header::CONTENT_TYPE, "application/octet-stream")
    .body(Body::from(blob.clone()))
    .unwrap();
    let (s, b2) = srv.send(req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&b2).unwrap();
    assert_eq!(v["error"]["code"], "digest_mismatch");
    assert_eq!(count_files(&srv.data.join("blobs")), before);
    assert_eq!(count_files(&srv.data.join("tmp")), 0);
    // The same upload with its true digest is stored under that SHA-256.
    let req = authorize(
        Request::post("/v1/blobs"),
        "POST",
        "/v1/blobs",
        &ta,
        Some(&blob),
    )
    .header(header::CONTENT_TYPE, "application/octet-stream")
    .body(Body::from(blob.clone()))
    .unwrap();
    let (s, b2) = srv.send(req).await;
    assert_eq!(s, StatusCode::CREATED);
    let v: Value = serde_json::from_slice(&b2).unwrap();
    use sha2::Digest as _;
    assert_eq!(v["blob_id"], hex::encode(sha2::Sha256::digest(&blob)));
}

//! Router-level tests of the happy paths and authorisation (PROTOCOL.md §8).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::json;
use serment_core::DocId;
use serment_core::document::{OpenInput, open};

#[tokio::test]
async fn healthz_and_openapi() {
    let srv = TestServer::new().await;
    let (s, v) = srv.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert!(v["max_blob_bytes"].as_u64().unwrap() > 0);
    let (s, v) = srv.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(v["paths"]["/v1/documents/{doc_id}/accesses"].is_object());
    let (s, v) = srv.get("/v1/nope", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn register_and_directory() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let body = json!({ "record": b64(&alice.record) });
    let (s, v) = srv.post("/v1/devices", None, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["device_id"], alice.device_id());
    assert_eq!(v["identity_id"], alice.identity.id().to_string());
    assert_eq!(v["handle"], "alice");
    // Idempotent retry of the very same record.
    let (s, _) = srv.post("/v1/devices", None, body).await;
    assert_eq!(s, StatusCode::OK);

    // A second device of the same identity joins the handle.
    let alice2 = User::with_identity("alice", alice.identity.clone());
    let (s, _) = srv
        .post(
            "/v1/devices",
            None,
            json!({ "record": b64(&alice2.record) }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    // Another identity cannot take the handle.
    let mallory = User::new("alice");
    let (s, v) = srv
        .post(
            "/v1/devices",
            None,
            json!({ "record": b64(&mallory.record) }),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "conflict");

    // The same device re-signed with another creation time is a different record: conflict.
    let again = alice
        .identity
        .sign_device_record("alice", &alice.device, 1_800_000_000)
        .unwrap();
    let (s, _) = srv
        .post("/v1/devices", None, json!({ "record": b64(&again) }))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, v) = srv.get("/v1/directory/alice", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["handle"], "alice");
    let records: Vec<Vec<u8>> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| unb64(r.as_str().unwrap()))
        .collect();
    assert_eq!(records.len(), 2);
    assert!(records.contains(&alice.record));
    assert!(records.contains(&alice2.record));

    let (s, v) = srv.get("/v1/directory/bob", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");
    let (s, v) = srv.get("/v1/directory/Alice", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "bad_request");
}

#[tokio::test]
async fn login_flow_and_bearer_auth() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let bob = User::new("bob");

    // Unknown device: no challenge.
    let (s, v) = srv
        .post(
            "/v1/auth/challenge",
            None,
            json!({ "device_id": alice.device_id() }),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    let token = srv.enroll(&alice).await;
    srv.enroll(&bob).await;

    // A challenge signed by the wrong device fails, and is consumed.
    let (_, v) = srv
        .post(
            "/v1/auth/challenge",
            None,
            json!({ "device_id": alice.device_id() }),
        )
        .await;
    let challenge: [u8; 32] = unb64(v["challenge"].as_str().unwrap()).try_into().unwrap();
    let wrong = serment_core::auth::sign_challenge(&bob.device, &challenge);
    let req = json!({ "device_id": alice.device_id(), "challenge": b64(&challenge), "signature": b64(&wrong) });
    let (s, v) = srv.post("/v1/auth/token", None, req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"]["code"], "unauthorized");
    let good = serment_core::auth::sign_challenge(&alice.device, &challenge);
    let req = json!({ "device_id": alice.device_id(), "challenge": b64(&challenge), "signature": b64(&good) });
    let (s, _) = srv.post("/v1/auth/token", None, req.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a challenge is single use");

    // Challenge for Alice used by Bob's device id: refused.
    let (_, v) = srv
        .post(
            "/v1/auth/challenge",
            None,
            json!({ "device_id": alice.device_id() }),
        )
        .await;
    let c2: [u8; 32] = unb64(v["challenge"].as_str().unwrap()).try_into().unwrap();
    let sig = serment_core::auth::sign_challenge(&bob.device, &c2);
    let req =
        json!({ "device_id": bob.device_id(), "challenge": b64(&c2), "signature": b64(&sig) });
    let (s, _) = srv.post("/v1/auth/token", None, req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Bearer auth.
    let (s, v) = srv.get("/v1/documents", Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({ "documents": [] }));
    for bad in [
        None,
        Some(b64(&[0u8; 32])),
        Some("not-base64!".to_owned()),
        Some(format!("{token}=")),
        Some(b64(&[1u8; 31])),
    ] {
        let (s, v) = srv.get("/v1/documents", bad.as_deref()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(v["error"]["code"], "unauthorized");
    }
    let req = Request::get("/v1/documents")
        .header(header::AUTHORIZATION, format!("Basic {token}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(srv.send(req).await.0, StatusCode::UNAUTHORIZED);
    let mut b =
        Request::get("/v1/documents").header(header::AUTHORIZATION, format!("bearer {token}"));
    for (k, v) in signature_headers_for(
        "GET",
        "/v1/documents",
        &token,
        &format!("bearer {token}"),
        None,
    ) {
        b = b.header(k, v);
    }
    let req = b.body(Body::empty()).unwrap();
    assert_eq!(
        srv.send(req).await.0,
        StatusCode::OK,
        "scheme is case-insensitive"
    );
}

#[tokio::test]
async fn commit_fetch_and_accesses() {
    let srv = TestServer::new().await;
    let alice = User::new("dr.martin");
    let bob = User::new("patient-42");
    let carol = User::new("carol");
    let ta = srv.enroll(&alice).await;
    let tb = srv.enroll(&bob).await;
    let tc = srv.enroll(&carol).await;

    let doc_id = DocId::random().unwrap();
    let content = b"Hemoglobin 13.5 g/dL".repeat(1000);
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob], &content);
    let (s, v) = commit(&srv, &ta, doc_id, 1, blob.clone(), all_wraps(&sealed)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["doc_id"], doc_id.to_string());
    assert_eq!(v["doc_version"], 1);
    assert_eq!(v["author_device"], alice.device_id());
    assert_eq!(v["author_identity"], alice.identity.id().to_string());
    assert_eq!(v["size"], blob.len());

    // Listing: the author and the recipient see it; carol does not.
    for t in [&ta, &tb] {
        let (s, v) = srv.get("/v1/documents", Some(t)).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["documents"].as_array().unwrap().len(), 1);
        assert_eq!(v["documents"][0]["doc_id"], doc_id.to_string());
    }
    let (_, v) = srv.get("/v1/documents", Some(&tc)).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 0);

    // Bob fetches his own wrap and the blob, then opens the document.
    let base = format!("/v1/documents/{doc_id}/versions/1");
    let (s, v) = srv.get(&base, Some(&tb)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["wrap"], wrap_of(&sealed, &bob));
    let uri = format!("{base}/blob");
    let req = authorize(Request::get(&uri), "GET", &uri, &tb, None)
        .body(Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(srv.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
    assert_eq!(
        resp.headers()[header::CONTENT_LENGTH],
        blob.len().to_string().as_str()
    );
    let got = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(got.as_ref(), blob.as_slice());
    let wrap = unb64(v["wrap"].as_str().unwrap());
    let mut plain = Vec::new();
    open(
        OpenInput {
            device: &bob.device,
            wrap: &wrap,
            author_signing_key: &alice.device.signing_public_key(),
            expected: Some((doc_id, 1)),
        },
        got.as_ref(),
        &mut plain,
    )
    .unwrap();
    assert_eq!(plain, content);

    // Carol holds no wrap: 403 `not_shared` everywhere, and nothing recorded for her.
    let (s, v) = srv.get(&base, Some(&tc)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "not_shared");
    let (s, v) = srv.get(&format!("{base}/blob"), Some(&tc)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "not_shared");
    let (s, v) = srv
        .get(&format!("/v1/documents/{doc_id}/accesses"), Some(&tc))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "not_shared");
    // Unknown version or document: 404.
    let (s, _) = srv
        .get(&format!("/v1/documents/{doc_id}/versions/2"), Some(&tb))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let other = DocId::random().unwrap();
    let (s, _) = srv
        .get(&format!("/v1/documents/{other}/accesses"), Some(&tb))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The author reads its own wrap too.
    let (s, v) = srv.get(&base, Some(&ta)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["wrap"], wrap_of(&sealed, &alice));

    // Accesses: visible to the author and to the recipient, in order.
    for t in [&ta, &tb] {
        let (s, v) = srv
            .get(&format!("/v1/documents/{doc_id}/accesses"), Some(t))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let acc = v["accesses"].as_array().unwrap();
        assert_eq!(acc.len(), 3, "{v}");
        assert_eq!(acc[0]["device_id"], bob.device_id());
        assert_eq!(acc[0]["handle"], "patient-42");
        assert_eq!(acc[0]["what"], "wrap");
        assert_eq!(acc[0]["doc_version"], 1);
        assert!(acc[0]["at"].as_u64().unwrap() > 1_700_000_000);
        assert_eq!(acc[1]["what"], "blob");
        assert_eq!(acc[2]["device_id"], alice.device_id());
        assert_eq!(acc[2]["what"], "wrap");
    }
}

#[tokio::test]
async fn versions_authorship_and_added_wraps() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let carol = User::new("carol");
    let ta = srv.enroll(&alice).await;
    let tb = srv.enroll(&bob).await;
    let tc = srv.enroll(&carol).await;
    let doc_id = DocId::random().unwrap();

    // Sealed for bob and carol, but carol's wrap is held back.
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob, &carol], b"v1");
    let first = vec![wrap_of(&sealed, &alice), wrap_of(&sealed, &bob)];
    let (s, v) = commit(&srv, &ta, doc_id, 1, blob.clone(), first.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // The identical commit again (a retry): 200, the same entries, nothing written.
    let (s, again) = commit(&srv, &ta, doc_id, 1, blob.clone(), first.clone()).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["log_indices"], v["log_indices"]);
    // The same version with other content: 409.
    let (s, v) = commit(&srv, &ta, doc_id, 1, blob, first[..1].to_vec()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "conflict");

    // Only the author adds recipients.
    let wraps_url = format!("/v1/documents/{doc_id}/versions/1/wraps");
    let add = json!({ "wraps": [wrap_of(&sealed, &carol)] });
    let (s, v) = srv.post(&wraps_url, Some(&tb), add.clone()).await;
    // Refused either way: 400 when the wrap's sharer is not the calling device (a non-author
    // may add wraps of its own only, for its identity's devices: PROTOCOL.md §4.1), 403 else.
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::BAD_REQUEST,
        "{s} {v}"
    );
    let (s, v) = srv.post(&wraps_url, Some(&ta), add.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["added"], 1);
    let (s, v) = srv
        .get(&format!("/v1/documents/{doc_id}/versions/1"), Some(&tc))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["wrap"], wrap_of(&sealed, &carol));
    // Adding the same recipient twice: 409.
    let (s, _) = srv.post(&wraps_url, Some(&ta), add).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // A wrap for another version cannot be added here.
    let (blob2, sealed2) = seal_for(&alice, doc_id, 2, &[&bob, &carol], b"v2");
    let (s, v) = srv
        .post(
            &wraps_url,
            Some(&ta),
            json!({ "wraps": [wrap_of(&sealed2, &carol)] }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_record");

    // Version 2 by the author.
    let (s, v) = commit(&srv, &ta, doc_id, 2, blob2, all_wraps(&sealed2)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, v) = srv.get("/v1/documents", Some(&tb)).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 2);

    // Bob cannot commit a version of Alice's document, even with a valid blob of his own.
    let (blob3, sealed3) = seal_for(&bob, doc_id, 3, &[], b"forged");
    let (s, v) = commit(&srv, &tb, doc_id, 3, blob3, all_wraps(&sealed3)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // A second device of Alice's identity counts as the author.
    let alice2 = User::with_identity("alice", alice.identity.clone());
    let ta2 = srv.enroll(&alice2).await;
    let (s, v) = srv
        .get(&format!("/v1/documents/{doc_id}/versions/2"), Some(&ta2))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["wrap"].is_null());
    // ...but only the author device may share (§7).
    let (s, v) = srv
        .post(
            &format!("/v1/documents/{doc_id}/versions/2/wraps"),
            Some(&ta2),
            json!({ "wraps": [wrap_of(&sealed2, &carol)] }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = srv
        .get(&format!("/v1/documents/{doc_id}/accesses"), Some(&ta2))
        .await;
    assert_eq!(s, StatusCode::OK);
}

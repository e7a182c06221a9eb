//! Hostile and malformed input: every client mistake is a 4xx with a stable code, and nothing is
//! left on disk or in the database by a refused or broken upload.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use serment_core::DocId;

async fn blob_rows(srv: &TestServer) -> i64 {
    let url = format!("sqlite://{}", srv.data.join("serment.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

fn assert_no_blob_files(srv: &TestServer) {
    assert_eq!(count_files(&srv.data.join("tmp")), 0, "tmp/ not empty");
    assert_eq!(count_files(&srv.data.join("blobs")), 0, "blobs/ not empty");
}

#[tokio::test]
async fn garbage_in_every_json_field() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let token = srv.enroll(&alice).await;
    let t = Some(token.as_str());
    let record = b64(&alice.record);
    let mut flipped = alice.record.clone();
    flipped[20] ^= 1;
    let dev = alice.device_id();
    let doc = DocId::random().unwrap().to_string();
    let blob = "ab".repeat(32);
    let wrap_url = format!("/v1/documents/{doc}/versions/1/wraps");

    let cases: Vec<(&str, Option<&str>, String, &str)> = vec![
        // syntax, shape
        ("/v1/devices", None, "{".into(), "bad_request"),
        ("/v1/devices", None, "[]".into(), "bad_request"),
        ("/v1/devices", None, "null".into(), "bad_request"),
        ("/v1/devices", None, "{}".into(), "bad_request"),
        ("/v1/devices", None, r#"{"record":5}"#.into(), "bad_request"),
        (
            "/v1/devices",
            None,
            json!({"record": record, "x": 1}).to_string(),
            "bad_request",
        ),
        // record
        ("/v1/devices", None, r#"{"record":"!!"}"#.into(), "invalid_base64"),
        ("/v1/devices", None, r#"{"record":"AR"}"#.into(), "invalid_base64"),
        (
            "/v1/devices",
            None,
            json!({"record": format!("{record}=")}).to_string(),
            "invalid_base64",
        ),
        (
            "/v1/devices",
            None,
            json!({"record": format!(" {record}")}).to_string(),
            "invalid_base64",
        ),
        (
            "/v1/devices",
            None,
            json!({"record": b64(b"garbage")}).to_string(),
            "invalid_record",
        ),
        (
            "/v1/devices",
            None,
            json!({"record": b64(&flipped)}).to_string(),
            "invalid_record",
        ),
        // challenge
        (
            "/v1/auth/challenge",
            None,
            r#"{"device_id":"../x"}"#.into(),
            "bad_request",
        ),
        (
            "/v1/auth/challenge",
            None,
            json!({"device_id": dev.to_uppercase()}).to_string(),
            "bad_request",
        ),
        ("/v1/auth/challenge", None, r#"{"device_id":42}"#.into(), "bad_request"),
        // token
        (
            "/v1/auth/token",
            None,
            json!({"device_id": dev, "challenge": "AAAA", "signature": b64(&[0; 64])}).to_string(),
            "bad_request",
        ),
        (
            "/v1/auth/token",
            None,
            json!({"device_id": dev, "challenge": b64(&[0; 32]), "signature": format!("{} ", b64(&[0; 64]))}).to_string(),
            "invalid_base64",
        ),
        (
            "/v1/auth/token",
            None,
            json!({"device_id": dev, "challenge": format!("{}==", b64(&[0; 32])), "signature": b64(&[0; 64])}).to_string(),
            "invalid_base64",
        ),
        (
            "/v1/auth/token",
            None,
            json!({"device_id": "zz", "challenge": b64(&[0; 32]), "signature": b64(&[0; 64])})
                .to_string(),
            "bad_request",
        ),
        // commit
        (
            "/v1/documents",
            t,
            json!({"doc_id": "zz", "doc_version": 1, "blob_id": blob, "wraps": ["AA"]}).to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": "../../x", "doc_version": 1, "blob_id": blob, "wraps": ["AA"]})
                .to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": "1", "blob_id": blob, "wraps": ["AA"]})
                .to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": -1, "blob_id": blob, "wraps": ["AA"]}).to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": 0, "blob_id": blob, "wraps": ["AA"]}).to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": 4_294_967_296u64, "blob_id": blob, "wraps": ["AA"]})
                .to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": 1, "blob_id": "../../etc/passwd", "wraps": ["AA"]})
                .to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": 1, "blob_id": blob, "wraps": "AA"}).to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": 1, "blob_id": blob, "wraps": []}).to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": 1, "blob_id": blob, "wraps": vec!["AA"; 1025]})
                .to_string(),
            "bad_request",
        ),
        (
            "/v1/documents",
            t,
            json!({"doc_id": doc, "doc_version": 1, "blob_id": blob, "wraps": ["AA"]}).to_string(),
            "bad_request", // no such blob
        ),
        // add wraps
        (&wrap_url, t, r#"{"wraps":[1]}"#.into(), "bad_request"),
        (&wrap_url, t, r#"{"wrap":[]}"#.into(), "bad_request"),
    ];
    for (uri, token, body, code) in cases {
        let (s, v) = srv
            .json_raw(Method::POST, uri, token, Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {body}: {v}");
        assert_eq!(v["error"]["code"], code, "{uri} {body}: {v}");
        assert!(v["error"]["message"].is_string());
    }
}

#[tokio::test]
async fn commit_checks_header_and_wraps() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let dave = User::new("dave"); // never registered
    let ta = srv.enroll(&alice).await;
    let tb = srv.enroll(&bob).await;
    let doc_id = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob], b"x");
    let (s, v) = srv.upload(&ta, blob.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    let blob_id = v["blob_id"].as_str().unwrap().to_owned();
    let body = |doc: String, ver: u32, wraps: Vec<String>| json!({"doc_id": doc, "doc_version": ver, "blob_id": blob_id, "wraps": wraps});
    let expect = async |token: &str, b: Value, status: StatusCode, code: &str| {
        let (s, v) = srv.post("/v1/documents", Some(token), b).await;
        assert_eq!(s, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
    };
    let wraps = all_wraps(&sealed);
    let other_doc = DocId::random().unwrap().to_string();
    let bad = StatusCode::BAD_REQUEST;
    expect(
        &ta,
        body(other_doc, 1, wraps.clone()),
        bad,
        "invalid_record",
    )
    .await;
    expect(
        &ta,
        body(doc_id.to_string(), 2, wraps.clone()),
        bad,
        "invalid_record",
    )
    .await;
    // Bob presents Alice's blob as his own.
    expect(
        &tb,
        body(doc_id.to_string(), 1, wraps.clone()),
        bad,
        "invalid_record",
    )
    .await;
    // Tampered wrap signature.
    let mut w = unb64(&wraps[0]);
    *w.last_mut().unwrap() ^= 1;
    expect(
        &ta,
        body(doc_id.to_string(), 1, vec![b64(&w)]),
        bad,
        "invalid_record",
    )
    .await;
    // Garbage wrap.
    expect(
        &ta,
        body(doc_id.to_string(), 1, vec![b64(&[7; 276])]),
        bad,
        "invalid_record",
    )
    .await;
    // Duplicate recipient.
    let dup = vec![wraps[0].clone(), wraps[0].clone()];
    expect(&ta, body(doc_id.to_string(), 1, dup), bad, "bad_request").await;
    // Wrap made for another sealing of the same doc and version (other header).
    let (_, resealed) = seal_for(&alice, doc_id, 1, &[&bob], b"x");
    expect(
        &ta,
        body(doc_id.to_string(), 1, all_wraps(&resealed)),
        bad,
        "invalid_record",
    )
    .await;
    // Unregistered recipient.
    let (blob_d, sealed_d) = seal_for(&alice, doc_id, 1, &[&dave], b"x");
    let (_, v) = srv.upload(&ta, blob_d).await;
    let b = json!({"doc_id": doc_id.to_string(), "doc_version": 1, "blob_id": v["blob_id"], "wraps": all_wraps(&sealed_d)});
    expect(&ta, b, bad, "bad_request").await;
    // A blob too short to hold a header.
    let (_, v) = srv.upload(&ta, b"short".to_vec()).await;
    let b = json!({"doc_id": doc_id.to_string(), "doc_version": 1, "blob_id": v["blob_id"], "wraps": wraps});
    expect(&ta, b, bad, "invalid_record").await;
    // Nothing was committed by any of the above.
    let (_, v) = srv.get("/v1/documents", Some(&ta)).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 0);
    // And the right request still works.
    let (s, _) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            body(doc_id.to_string(), 1, wraps),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

/// One bad wrap signature among many (issue 14 §2): the wraps' signatures are verified in one
/// batch, which fails; the one-by-one fallback then refuses the offending wrap with its own error
/// (M130), whichever position it holds, and nothing is committed. The same wraps unaltered
/// commit.
#[tokio::test]
async fn one_bad_wrap_signature_among_many_is_refused_with_its_own_error() {
    let srv = TestServer::new().await;
    let lab = User::new("lab");
    let tl = srv.enroll(&lab).await;
    let readers: Vec<User> = (0..5).map(|i| User::new(&format!("reader{i}"))).collect();
    for r in &readers {
        srv.enroll(r).await;
    }
    let to: Vec<&User> = readers.iter().collect();
    let doc_id = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&lab, doc_id, 1, &to, b"potassium 4.1 mmol/L");
    let wraps = all_wraps(&sealed);
    assert_eq!(wraps.len(), 6);
    let body = |w: Vec<String>| json!({"doc_id": doc_id.to_string(), "doc_version": 1, "blob": b64(&blob), "wraps": w});
    for bad in [0, 3, 5] {
        let mut w = wraps.clone();
        let mut bytes = unb64(&w[bad]);
        let at = bytes.len() - 40; // inside the signature's R
        bytes[at] ^= 0x01;
        w[bad] = b64(&bytes);
        let (s, v) = srv.post("/v1/documents", Some(&tl), body(w)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["code"], "invalid_record", "{v}");
        assert_eq!(
            v["error"]["message"],
            format!("wraps[{bad}]: key wrap: signature verification failed"),
            "{v}"
        );
    }
    let (_, v) = srv.get("/v1/documents", Some(&tl)).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 0, "{v}");
    let (s, v) = srv.post("/v1/documents", Some(&tl), body(wraps)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn wrong_content_types_are_415() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let token = srv.enroll(&alice).await;
    for ct in [
        Some("text/plain"),
        None,
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut b = Request::post("/v1/devices");
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let body = json!({"record": b64(&alice.record)}).to_string();
        let (s, v) = srv.send(b.body(Body::from(body)).unwrap()).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        let v: Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(v["error"]["code"], "unsupported_media_type");
    }
    for ct in [Some("application/json"), None] {
        let mut b = authorize(
            Request::post("/v1/blobs"),
            "POST",
            "/v1/blobs",
            &token,
            None,
        );
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let (s, v) = srv.send(b.body(Body::from("{}")).unwrap()).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let v: Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(v["error"]["code"], "unsupported_media_type");
    }
    assert_no_blob_files(&srv);
}

#[tokio::test]
async fn oversized_json_is_413() {
    let srv = TestServer::new().await;
    let big = json!({"record": "A".repeat(2 * 1024 * 1024)}).to_string();
    // With Content-Length (refused by the limit layer before reading), with a body but no
    // declared length, and streamed in chunks.
    for declared in [true, false] {
        let mut b = Request::post("/v1/devices").header(header::CONTENT_TYPE, "application/json");
        if declared {
            b = b.header(header::CONTENT_LENGTH, big.len());
        }
        let (s, v) = srv.send(b.body(Body::from(big.clone())).unwrap()).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        let v: Value = serde_json::from_slice(&v).unwrap();
        assert_eq!(v["error"]["code"], "payload_too_large", "{declared}");
    }
    let chunks: Vec<Result<Bytes, std::io::Error>> = big
        .into_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let req = Request::post("/v1/devices")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (s, v) = srv.send(req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn blob_over_the_limit_leaves_nothing() {
    let srv = TestServer::sqlite().await;
    let alice = User::new("alice");
    let token = srv.enroll(&alice).await;
    let over = vec![0x5a; TEST_MAX_BLOB as usize + 1];
    // Declared length over the limit: refused before reading.
    let req = authorize(
        Request::post("/v1/blobs"),
        "POST",
        "/v1/blobs",
        &token,
        None,
    )
    .header(header::CONTENT_TYPE, "application/octet-stream")
    .header(header::CONTENT_LENGTH, over.len())
    .body(Body::from(over.clone()))
    .unwrap();
    let (s, v) = srv.send(req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    // No declared length, one body over the limit.
    let (s, v) = srv.upload(&token, over.clone()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(v["error"]["code"], "payload_too_large");
    // Streamed without a length: cut off once the limit is crossed.
    let chunks: Vec<Result<Bytes, std::io::Error>> = over
        .chunks(10_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let req = authorize(
        Request::post("/v1/blobs"),
        "POST",
        "/v1/blobs",
        &token,
        None,
    )
    .header(header::CONTENT_TYPE, "application/octet-stream")
    .body(Body::from_stream(futures_util::stream::iter(chunks)))
    .unwrap();
    let (s, v) = srv.send(req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert_no_blob_files(&srv);
    assert_eq!(blob_rows(&srv).await, 0);
    // Exactly at the limit is accepted.
    let (s, v) = srv.upload(&token, over[1..].to_vec()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["size"], TEST_MAX_BLOB);
    assert_eq!(count_files(&srv.data.join("blobs")), 1);
    assert_eq!(blob_rows(&srv).await, 1);
}

#[tokio::test]
async fn upload_cut_halfway_leaves_nothing() {
    let srv = TestServer::sqlite().await;
    let alice = User::new("alice");
    let token = srv.enroll(&alice).await;
    let stream = futures_util::stream::iter(vec![
        Ok(Bytes::from(vec![1u8; 30_000])),
        Ok(Bytes::from(vec![2u8; 30_000])),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ]);
    let req = authorize(
        Request::post("/v1/blobs"),
        "POST",
        "/v1/blobs",
        &token,
        None,
    )
    .header(header::CONTENT_TYPE, "application/octet-stream")
    .body(Body::from_stream(stream))
    .unwrap();
    let (s, v) = srv.send(req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    assert_no_blob_files(&srv);
    assert_eq!(blob_rows(&srv).await, 0);
}

#[tokio::test]
async fn unauthenticated_upload_is_401() {
    let srv = TestServer::new().await;
    let req = Request::post("/v1/blobs")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(vec![0u8; 100]))
        .unwrap();
    let (s, _) = srv.send(req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_no_blob_files(&srv);
}

#[tokio::test]
async fn path_traversal_is_refused() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let token = srv.enroll(&alice).await;
    let t = Some(token.as_str());
    let before = count_files(srv.dir.path());
    let doc = DocId::random().unwrap();
    let cases = [
        ("/v1/directory/..%2F..%2Fetc%2Fpasswd", None),
        ("/v1/directory/..", None),
        ("/v1/directory/%2E%2E", None),
        ("/v1/directory/a%00b", None),
        ("/v1/documents/..%2Fx/versions/1", t),
        ("/v1/documents/..%2F..%2Fblobs/accesses", t),
        ("/v1/documents/%2E%2E/versions/1/blob", t),
        (&*format!("/v1/documents/{doc}/versions/..%2F1/blob"), t),
        (&*format!("/v1/documents/{doc}/versions/01"), t),
        (&*format!("/v1/documents/{doc}/versions/0"), t),
        (&*format!("/v1/documents/{doc}/versions/-1/blob"), t),
        (
            &*format!(
                "/v1/documents/{}/versions/1",
                doc.to_string().to_uppercase()
            ),
            t,
        ),
    ];
    for (uri, token) in cases {
        let (s, v) = srv.get(uri, token).await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND,
            "{uri}: {s}"
        );
        assert!(v["error"]["code"].is_string(), "{uri}");
    }
    for uri in [
        "/v1/directory/../x",
        "/v1/documents/../../x/versions/1/blob",
    ] {
        let (s, _) = srv.get(uri, t).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}");
    }
    // A registered handle cannot carry a path either: the record itself refuses it.
    assert!(
        alice
            .identity
            .sign_device_record("../x", &alice.device, 1)
            .is_err()
    );
    // Nothing new outside the data directory, nothing new inside apart from the database files.
    assert_eq!(count_files(srv.dir.path()), before);
    assert!(std::fs::read_dir(srv.dir.path()).unwrap().count() == 1);
}

/// Inline commits (PROTOCOL.md §8.3): exactly one of `blob_id` and `blob`, the same header checks
/// as for an uploaded blob, a size cap, nothing stored when refused; and the stored bytes are the
/// ones served, under their SHA-256.
#[tokio::test]
async fn inline_commit_is_checked_like_an_upload() {
    let srv = TestServer::sqlite().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;
    let doc_id = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob], b"inline");
    let wraps = all_wraps(&sealed);
    let body = |extra: Value| {
        let mut b = json!({"doc_id": doc_id.to_string(), "doc_version": 1, "wraps": wraps});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let expect = async |b: Value, status: StatusCode, code: &str| {
        let (s, v) = srv.post("/v1/documents", Some(&ta), b).await;
        assert_eq!(s, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
    };
    let bad = StatusCode::BAD_REQUEST;
    expect(body(json!({})), bad, "bad_request").await;
    expect(
        body(json!({"blob": b64(&blob), "blob_id": "ab".repeat(32)})),
        bad,
        "bad_request",
    )
    .await;
    expect(body(json!({"blob": "not base64!"})), bad, "invalid_base64").await;
    expect(body(json!({"blob": b64(b"short")})), bad, "invalid_record").await;
    let mut flipped = blob.clone();
    flipped[10] ^= 1; // the document id in the header
    expect(body(json!({"blob": b64(&flipped)})), bad, "invalid_record").await;
    let mut huge = blob.clone();
    huge.resize(256 * 1024 + 1, 0);
    expect(
        body(json!({"blob": b64(&huge)})),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_eq!(
        blob_rows(&srv).await,
        0,
        "nothing stored by a refused commit"
    );
    // The honest inline commit, with its own-write proofs.
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            body(json!({"blob": b64(&blob), "log_from": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob));
    assert_eq!(v["blob_id"], id.as_str());
    assert_eq!(v["size"], blob.len());
    assert_eq!(v["log"]["entries"].as_array().unwrap().len(), wraps.len());
    assert_eq!(v["log"]["consistency"].as_array().unwrap().len(), 0);
    assert_no_blob_files(&srv);
    let uri = format!("/v1/documents/{doc_id}/versions/1/blob");
    let req = authorize(Request::get(&uri), "GET", &uri, &ta, None)
        .body(Body::empty())
        .unwrap();
    let (s, got) = srv.send(req).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, blob);
    // log_from beyond the log: refused after the commit, which stands.
    let doc2 = DocId::random().unwrap();
    let (blob2, sealed2) = seal_for(&alice, doc2, 1, &[&bob], b"second");
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            json!({"doc_id": doc2.to_string(), "doc_version": 1, "blob": b64(&blob2),
                   "wraps": all_wraps(&sealed2), "log_from": 1_000_000}),
        )
        .await;
    assert_eq!(s, bad, "{v}");
    let (_, v) = srv.get("/v1/documents", Some(&ta)).await;
    assert_eq!(v["documents"].as_array().unwrap().len(), 2);
}

/// An identical retry of a committed version is answered 200 with the original entries; a retry
/// with anything different is 409 and writes nothing.
#[tokio::test]
async fn identical_commit_retry_is_answered_with_the_original_entries() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;
    let doc_id = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&alice, doc_id, 1, &[&bob], b"retry");
    let wraps = all_wraps(&sealed);
    let body = |blob: &[u8], wraps: &[String]| {
        json!({"doc_id": doc_id.to_string(), "doc_version": 1, "blob": b64(blob),
               "wraps": wraps, "log_from": 0})
    };
    let (s, first) = srv
        .post("/v1/documents", Some(&ta), body(&blob, &wraps))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again) = srv
        .post("/v1/documents", Some(&ta), body(&blob, &wraps))
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["log_indices"], first["log_indices"]);
    assert_eq!(
        again["log"]["entries"].as_array().unwrap().len(),
        wraps.len()
    );
    for (a, b) in again["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .zip(first["log"]["entries"].as_array().unwrap())
    {
        assert_eq!(a["entry"], b["entry"]);
    }
    // Another sealing of the same version, or a wrap left out: a real conflict.
    let (blob2, sealed2) = seal_for(&alice, doc_id, 1, &[&bob], b"retry");
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            body(&blob2, &all_wraps(&sealed2)),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = srv
        .post("/v1/documents", Some(&ta), body(&blob, &wraps[..1]))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (_, size) = srv.get("/v1/log/checkpoint", None).await;
    let note = size["checkpoint"].as_str().unwrap();
    assert!(
        note.lines().nth(1).unwrap().parse::<u64>().unwrap()
            == first["log"]["entries"].as_array().unwrap().last().unwrap()["index"]
                .as_u64()
                .unwrap()
                + 1,
        "nothing appended by the retries: {note}"
    );
}

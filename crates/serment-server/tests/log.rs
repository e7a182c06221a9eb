//! The transparency log at the HTTP level (PROTOCOL.md §11): entries and checkpoint agree, the
//! routes answer with valid proofs, access receipts are checked, revocations take effect.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use serde_json::{Value, json};
use serment_core::DocId;
use serment_core::log::entry::{AccessWhat, EntryKind, LogEntry, Receipt, Revocation};
use serment_core::log::note::{SignedCheckpoint, VerifierKey};
use serment_core::log::tree::{self, MemoryTree};

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| unb64(h.as_str().unwrap()).try_into().unwrap())
        .collect()
}

async fn get_with_receipt(
    srv: &TestServer,
    uri: &str,
    token: &str,
    receipt: &Receipt,
) -> (StatusCode, Value) {
    let req = authorize(Request::get(uri), "GET", uri, token, None)
        .header("serment-receipt", b64(&receipt.encode()))
        .body(Body::empty())
        .unwrap();
    let (s, b) = srv.send(req).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn log_matches_its_checkpoint_and_receipts_are_enforced() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    let tb = srv.enroll(&bob).await;
    let (_, key) = srv.get("/v1/log/key", None).await;
    let vkey = VerifierKey::parse(key["vkey"].as_str().unwrap()).unwrap();
    let origin = key["origin"].as_str().unwrap().to_owned();

    let doc = DocId::from_bytes([7; 16]);
    let (blob, sealed) = seal_for(&alice, doc, 1, &[&bob], b"hello");
    let (s, v) = commit(&srv, &ta, doc, 1, blob, all_wraps(&sealed)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["log_indices"].as_array().unwrap().len(), 2);

    let uri = format!("/v1/documents/{doc}/versions/1");
    // A receipt signed by another device, or for another document, is refused.
    let wrong = Receipt::sign(&alice.device, &origin, &doc, 1, AccessWhat::Wrap, now()).unwrap();
    assert_eq!(
        get_with_receipt(&srv, &uri, &tb, &wrong).await.0,
        StatusCode::BAD_REQUEST
    );
    let other_doc = Receipt::sign(
        &bob.device,
        &origin,
        &DocId::from_bytes([8; 16]),
        1,
        AccessWhat::Wrap,
        now(),
    )
    .unwrap();
    assert_eq!(
        get_with_receipt(&srv, &uri, &tb, &other_doc).await.0,
        StatusCode::BAD_REQUEST
    );
    let stale = Receipt::sign(
        &bob.device,
        &origin,
        &doc,
        1,
        AccessWhat::Wrap,
        now() - 3600,
    )
    .unwrap();
    assert_eq!(
        get_with_receipt(&srv, &uri, &tb, &stale).await.0,
        StatusCode::BAD_REQUEST
    );
    // A good one is logged, once.
    let good = Receipt::sign(&bob.device, &origin, &doc, 1, AccessWhat::Wrap, now()).unwrap();
    let (s, v) = get_with_receipt(&srv, &uri, &tb, &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["wrap_entry"]["index"].is_u64());
    assert_eq!(
        get_with_receipt(&srv, &uri, &tb, &good).await.0,
        StatusCode::CONFLICT
    );

    // The latest checkpoint is signed by the log key and its root is the tree of every entry.
    let (_, c) = srv.get("/v1/log/checkpoint", None).await;
    let note = SignedCheckpoint::parse(c["checkpoint"].as_str().unwrap()).unwrap();
    note.verify_log_signature(&vkey).unwrap();
    let size = note.checkpoint.size;
    assert_eq!(size, 5, "2 devices, 2 wraps, 1 access");
    let (_, e) = srv
        .get(&format!("/v1/log/entries?start=0&end={size}"), None)
        .await;
    let mut t = MemoryTree::new();
    for (i, b) in e["entries"].as_array().unwrap().iter().enumerate() {
        let bytes = unb64(b.as_str().unwrap());
        let entry = LogEntry::decode(&bytes).unwrap();
        if i == 4 {
            assert_eq!(entry.kind, EntryKind::Access);
        }
        t.push_entry(&bytes).unwrap();
        let (_, p) = srv
            .get(&format!("/v1/log/proof?index={i}&size={size}"), None)
            .await;
        tree::verify_inclusion(
            &bytes,
            i as u64,
            size,
            &note.checkpoint.root,
            &hashes(&p["proof"]),
        )
        .unwrap();
    }
    assert_eq!(t.root_at(size).unwrap(), note.checkpoint.root);
    let (_, old) = srv.get("/v1/log/checkpoint?size=2", None).await;
    let old = SignedCheckpoint::parse(old["checkpoint"].as_str().unwrap()).unwrap();
    let (_, p) = srv
        .get(&format!("/v1/log/consistency?from=2&to={size}"), None)
        .await;
    tree::verify_consistency(
        2,
        &old.checkpoint.root,
        size,
        &note.checkpoint.root,
        &hashes(&p["proof"]),
    )
    .unwrap();
    // Out-of-range requests are 400, not panics.
    assert_eq!(
        srv.get(&format!("/v1/log/proof?index={size}&size={size}"), None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        srv.get("/v1/log/consistency?from=9&to=2", None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        srv.get("/v1/log/entries?start=0&end=5000", None).await.0,
        StatusCode::BAD_REQUEST
    );
    // Histories carry proofs.
    let (_, h) = srv.get("/v1/log/identity/bob", None).await;
    assert_eq!(h["entries"].as_array().unwrap().len(), 1);
    let (s, h) = srv
        .get(&format!("/v1/documents/{doc}/log"), Some(&tb))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["entries"].as_array().unwrap().len(), 3);
    assert_eq!(h["devices"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_revoked_device_leaves_the_directory_and_cannot_log_in() {
    let srv = TestServer::new().await;
    let id = serment_core::identity::IdentitySecret::generate();
    let laptop = User::with_identity("carol", id.clone());
    let phone = User::with_identity("carol", id.clone());
    let tl = srv.enroll(&laptop).await;
    srv.enroll(&phone).await;
    let rev = Revocation::sign("carol", &id, &phone.key_id(), now()).unwrap();
    // Another identity may not revoke it.
    let mallory = User::new("mallory");
    let tm = srv.enroll(&mallory).await;
    let (s, _) = srv
        .post(
            "/v1/log/revocations",
            Some(&tm),
            json!({ "revocation": b64(&rev) }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = srv
        .post(
            "/v1/log/revocations",
            Some(&tl),
            json!({ "revocation": b64(&rev) }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, d) = srv.get("/v1/directory/carol", None).await;
    assert_eq!(d["records"].as_array().unwrap().len(), 1);
    // A revoked device is told so (the revocation is public in the log), not "unknown".
    let (s, v) = srv
        .post(
            "/v1/auth/challenge",
            None,
            json!({ "device_id": phone.device_id() }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "device_revoked", "{v}");
    // Nor can it register again (its record is unchanged, but revoked).
    let (s, v) = srv
        .post("/v1/devices", None, json!({ "record": b64(&phone.record) }))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("revoked"),
        "{v}"
    );
    let (_, h) = srv.get("/v1/log/identity/carol", None).await;
    assert_eq!(h["entries"].as_array().unwrap().len(), 3);
}

/// Red team 1 and 2: a cosignature can neither replace the log's own signature (a "witness"
/// named after the origin), nor overwrite a real witness's line (another key under its name),
/// nor push the served note past the parser's 32 lines (no 500).
#[tokio::test]
async fn cosignatures_cannot_strip_overwrite_or_overflow_the_note() {
    use serment_core::log::note::{KEY_TYPE_COSIGNATURE_V1, MAX_SIGNATURES, NoteSigner};
    let srv = TestServer::new().await;
    let (_, key) = srv.get("/v1/log/key", None).await;
    let vkey = VerifierKey::parse(key["vkey"].as_str().unwrap()).unwrap();
    let origin = key["origin"].as_str().unwrap().to_owned();
    let (_, c) = srv.get("/v1/log/checkpoint", None).await;
    let cp = SignedCheckpoint::parse(c["checkpoint"].as_str().unwrap())
        .unwrap()
        .checkpoint;
    let post = |w: &NoteSigner| {
        let line = w.cosign(&cp, now()).unwrap().line();
        json!({"vkey": w.verifier().encode(), "size": cp.size, "cosignature": line})
    };

    // Named after the origin: refused, and the log's signature still verifies.
    let fake_log = NoteSigner::new(&origin, KEY_TYPE_COSIGNATURE_V1, &[1; 32]).unwrap();
    let (s, v) = srv
        .post("/v1/log/cosignatures", None, post(&fake_log))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, c) = srv.get("/v1/log/checkpoint", None).await;
    SignedCheckpoint::parse(c["checkpoint"].as_str().unwrap())
        .unwrap()
        .verify_log_signature(&vkey)
        .unwrap();

    // The real witness, then an impostor key under its name: both kept, the real line verifies.
    let real = NoteSigner::new("witness.example/w1", KEY_TYPE_COSIGNATURE_V1, &[2; 32]).unwrap();
    let fake = NoteSigner::new("witness.example/w1", KEY_TYPE_COSIGNATURE_V1, &[3; 32]).unwrap();
    assert_eq!(
        srv.post("/v1/log/cosignatures", None, post(&real)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        srv.post("/v1/log/cosignatures", None, post(&fake)).await.0,
        StatusCode::CREATED
    );
    // Re-posting the real witness's key later does not replace its first line either.
    assert_eq!(
        srv.post("/v1/log/cosignatures", None, post(&real)).await.0,
        StatusCode::CREATED
    );
    // Junk witnesses, more than a note can carry.
    for i in 0..(MAX_SIGNATURES as u8 + 8) {
        let w = NoteSigner::new(
            &format!("junk.example/{i}"),
            KEY_TYPE_COSIGNATURE_V1,
            &[i + 10; 32],
        )
        .unwrap();
        assert_eq!(
            srv.post("/v1/log/cosignatures", None, post(&w)).await.0,
            StatusCode::CREATED
        );
    }
    let (s, c) = srv.get("/v1/log/checkpoint", None).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let note = SignedCheckpoint::parse(c["checkpoint"].as_str().unwrap()).unwrap();
    assert_eq!(note.signatures.len(), MAX_SIGNATURES);
    note.verify_log_signature(&vkey).unwrap();
    assert_eq!(
        note.cosigned_by(&[real.verifier()]),
        1,
        "earliest witness kept"
    );
    assert_eq!(note.signatures.first().unwrap().name, origin);
}

/// Red team 2: with `witnesses` configured, only those keys' cosignatures are accepted.
#[tokio::test]
async fn configured_witnesses_are_the_only_ones_accepted() {
    use serment_core::log::note::{KEY_TYPE_COSIGNATURE_V1, NoteSigner};
    use serment_server::{Config, Server};
    let real = NoteSigner::new("witness.example/w1", KEY_TYPE_COSIGNATURE_V1, &[2; 32]).unwrap();
    let other = NoteSigner::new("witness.example/w2", KEY_TYPE_COSIGNATURE_V1, &[4; 32]).unwrap();
    let dir = TempDir::new("wit");
    let data = dir.path().join("data");
    let cfg = Config {
        witnesses: vec![real.verifier().encode()],
        ..test_config(&data)
    };
    let server = Server::open(cfg).await.unwrap();
    let srv = TestServer {
        router: server.router(),
        dir,
        data,
    };
    let (_, c) = srv.get("/v1/log/checkpoint", None).await;
    let cp = SignedCheckpoint::parse(c["checkpoint"].as_str().unwrap())
        .unwrap()
        .checkpoint;
    let post = |w: &NoteSigner| {
        let line = w.cosign(&cp, now()).unwrap().line();
        json!({"vkey": w.verifier().encode(), "size": cp.size, "cosignature": line})
    };
    assert_eq!(
        srv.post("/v1/log/cosignatures", None, post(&other)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        srv.post("/v1/log/cosignatures", None, post(&real)).await.0,
        StatusCode::CREATED
    );
    let bad = Config {
        witnesses: vec!["nonsense".into()],
        ..test_config(&srv.dir.path().join("never"))
    };
    assert!(bad.validate().is_err());
}

/// Red team 4: a size, start or end beyond the log (up to 2^64 - 1) is a JSON 400, never a 500,
/// and a version read with a bad `?size=` is refused before its access is logged.
#[tokio::test]
async fn sizes_beyond_the_log_are_400_and_log_nothing() {
    let srv = TestServer::new().await;
    let alice = User::new("alice");
    let ta = srv.enroll(&alice).await;
    let doc = DocId::from_bytes([9; 16]);
    let (blob, sealed) = seal_for(&alice, doc, 1, &[], b"hello");
    let (s, v) = commit(&srv, &ta, doc, 1, blob, all_wraps(&sealed)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let before = srv.get("/v1/log/checkpoint", None).await.1;
    let big = 1u64 << 63;
    let max = u64::MAX;
    for uri in [
        format!("/v1/log/checkpoint?size={big}"),
        format!("/v1/log/checkpoint?size={max}"),
        "/v1/log/checkpoint?size=100000".to_owned(),
        format!("/v1/log/entries?start={big}&end={big}"),
        format!("/v1/log/entries?start=0&end={}", 5),
        format!("/v1/log/proof?index=0&size={big}"),
        format!("/v1/log/consistency?from=0&to={big}"),
        format!("/v1/log/identity/alice?size={big}"),
        format!("/v1/documents/{doc}/log?size={big}"),
        format!("/v1/documents/{doc}/versions/1?size={big}"),
        format!("/v1/documents/{doc}/versions/1?size=100000"),
    ] {
        let (s, v) = srv.get(&uri, Some(&ta)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert!(v.is_object(), "{uri}: {v}");
    }
    // Nothing was appended by the refused reads.
    assert_eq!(srv.get("/v1/log/checkpoint", None).await.1, before);
    let (s, v) = srv
        .get(&format!("/v1/documents/{doc}/versions/1?size=1"), Some(&ta))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// Red team 5: a malformed query string and a wrong method get the API's JSON error.
#[tokio::test]
async fn query_rejections_and_405_are_json() {
    let srv = TestServer::new().await;
    for uri in [
        "/v1/log/checkpoint?size=18446744073709551616",
        "/v1/log/checkpoint?size=abc",
        "/v1/log/checkpoint?nope=1",
        "/v1/log/entries?start=0",
        "/v1/log/proof?index=-1&size=1",
    ] {
        let (s, v) = srv.get(uri, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["code"], "bad_request", "{uri}: {v}");
    }
    let req = Request::delete("/v1/log/checkpoint")
        .body(Body::empty())
        .unwrap();
    let resp = {
        use tower::ServiceExt as _;
        srv.router.clone().oneshot(req).await.unwrap()
    };
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(resp.headers().contains_key(header::ALLOW), "{resp:?}");
    let b = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");
}

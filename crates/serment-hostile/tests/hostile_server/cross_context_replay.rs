//! Cross-context replay of a signature or a ciphertext: a login challenge signature, a chunk and a
//! wrap, each moved into another context. Signatures are domain-separated (PROTOCOL.md §3), chunks
//! are bound to their header and position (§5), wraps to their document, version, header and
//! recipient (§7).

use axum::http::Method;
use serde_json::{Value, json};
use serment_client::api::b64d;
use serment_core::Error;
use serment_core::sign::{self, Context};

use crate::common::*;

#[test]
fn cross_context_replay_login_signature_is_useless_elsewhere() {
    let mut w = World::new();
    let r = w.put(b"{}", "x", &[PATIENT]);
    // The hostile server picks the "challenge": 32 bytes of its choosing (here a header hash it
    // would like signed).
    let blob = w.blob(&r);
    let chosen =
        serment_core::document::Header::decode(&blob[..serment_core::document::Header::LEN])
            .unwrap()
            .hash();
    w.h.on_response("POST /v1/auth/challenge", move |ex| {
        ex.set_json(
            &json!({ "challenge": serment_hostile::harness::b64(&chosen), "expires_in": 60 }),
        );
    });
    // The patient logs in again: the real server refuses the swapped challenge, but the proxy has
    // the patient's signature over it.
    let _ = w.patient.api.login(&w.patient.ks.device);
    let req: Value = serde_json::from_slice(&w.h.last("POST /v1/auth/token").request).unwrap();
    let sig = b64d(req["signature"].as_str().unwrap(), "sig").unwrap();
    let pk = w.patient.ks.device.signing_public_key();
    let dev = w.patient.ks.device.id();
    let mut body = chosen.to_vec();
    body.extend_from_slice(dev.as_bytes());
    assert!(sign::verify(&pk, Context::Auth, &body, &sig, "t").is_ok());
    for ctx in [Context::Document, Context::Wrap, Context::DeviceRecord] {
        for b in [&body[..], &chosen[..]] {
            assert!(
                sign::verify(&pk, ctx, b, &sig, "t").is_err(),
                "{ctx:?} accepted a login signature"
            );
        }
    }
    // Used as a document trailer signature, it fails the document check.
    let mut forged = blob.clone();
    let n = forged.len();
    forged[n - 64..].copy_from_slice(&sig);
    w.h.clear_hooks();
    serve_blob(&w.h, &r.doc_id, 1, forged);
    let e = read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(integrity(&e), Error::BadSignature { what: "document" }),
        "{e:?}"
    );
}

#[test]
fn cross_context_replay_login_challenge_replayed_by_a_network_attacker() {
    let w = World::new();
    // A network attacker replays a captured token request: challenges are single use.
    let captured = w.h.last("POST /v1/auth/token");
    assert_eq!(captured.status, 200);
    let (status, body) = w.h.call(
        Method::POST,
        "/v1/auth/token",
        None,
        captured.request.clone(),
    );
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    // Replayed for another device id: the signature covers the device id.
    let mut req: Value = serde_json::from_slice(&captured.request).unwrap();
    let (_, c) = w.h.call(
        Method::POST,
        "/v1/auth/challenge",
        None,
        json!({ "device_id": w.gp.ks.device.id().to_string() })
            .to_string()
            .into_bytes(),
    );
    let c: Value = serde_json::from_slice(&c).unwrap();
    req["device_id"] = json!(w.gp.ks.device.id().to_string());
    req["challenge"] = c["challenge"].clone();
    let (status, _) = w.h.call(
        Method::POST,
        "/v1/auth/token",
        None,
        req.to_string().into_bytes(),
    );
    assert_eq!(status, 401);
}

#[test]
fn cross_context_replay_chunk_moved_into_another_document() {
    let mut w = World::new();
    let a = w.put(&content(150_000, 1), "a", &[PATIENT]);
    let b = w.put(&content(150_000, 2), "b", &[PATIENT]);
    let pa = Parts::split(&w.blob(&a));
    let pb = Parts::split(&w.blob(&b));
    for i in 0..pa.chunks.len() {
        let mut q = pa.clone();
        q.chunks[i] = pb.chunks[i].clone();
        w.h.clear_hooks();
        serve_blob(&w.h, &a.doc_id, 1, q.join());
        let e = read_to_file(&w.h, &mut w.patient, &a.doc_id, Some(1)).unwrap_err();
        assert!(matches!(integrity(&e), Error::Decrypt), "chunk {i}: {e:?}");
    }
}

#[test]
fn cross_context_replay_wrap_moved_to_another_document_or_recipient() {
    let mut w = World::new();
    let a = w.put(b"{\"a\":1}", "a", &[PATIENT, GP]);
    let b = w.put(b"{\"b\":2}", "b", &[PATIENT, GP]);
    let pdev = w.patient.ks.device.id();
    // The patient's wrap of B served for A.
    serve_wrap(&w.h, &a.doc_id, 1, stored_wrap(&w.h, &b.doc_id, 1, &pdev));
    let e = read_to_file(&w.h, &mut w.patient, &a.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::ContextMismatch("the key wrap is for another document or version")
        ),
        "{e:?}"
    );
    // The GP's wrap of A served to the patient.
    w.h.clear_hooks();
    serve_wrap(
        &w.h,
        &a.doc_id,
        1,
        stored_wrap(&w.h, &a.doc_id, 1, &w.gp.ks.device.id()),
    );
    let e = read_to_file(&w.h, &mut w.patient, &a.doc_id, Some(1)).unwrap_err();
    assert!(
        matches!(
            integrity(&e),
            Error::ContextMismatch("the key wrap is for another device")
        ),
        "{e:?}"
    );
}

// Log entries replayed across contexts (an access receipt replayed, or reflected as another
// device's): `tests/transparency_log.rs`, `audit_access_receipt_replayed_is_refused` and
// `audit_access_reflected_as_another_device_is_refused` (issue 6).

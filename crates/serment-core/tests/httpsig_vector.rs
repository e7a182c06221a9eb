//! The request-signature vector (PROTOCOL.md §8.2, `tests/vectors/http-signature.json`): a fixed
//! device key, two requests (a GET with a query, a POST with a JSON body), fixed `created` and
//! nonces → the RFC 9530 `Content-Digest`, the RFC 9421 signature base, `Signature-Input` and
//! `Signature`. A second implementation re-derives them from the inputs alone; this test checks
//! the file against the code, and that each signature verifies and fails once altered.
//!
//! Regenerate (after a deliberate format change only) with
//! `SERMENT_REGEN_VECTORS=1 cargo test -p serment-core --test httpsig_vector`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serment_core::httpsig::{self, Request};
use serment_core::identity::DeviceSecret;

const FILE: &str = "http-signature.json";
const SEED: [u8; 32] = [0x07; 32];
/// 2026-01-01T00:00:00Z.
const CREATED: u64 = 1_767_225_600;

fn path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(FILE)
}

struct Case {
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    body: Option<&'static str>,
    nonce: &'static str,
}

const CASES: [Case; 2] = [
    Case {
        method: "GET",
        path: "/v1/documents/00112233445566778899aabbccddeeff/versions/1",
        query: Some("size=12"),
        body: None,
        nonce: "AAECAwQFBgcICQoLDA0ODw",
    },
    Case {
        method: "POST",
        path: "/v1/documents/00112233445566778899aabbccddeeff/versions/1/wraps",
        query: None,
        body: Some("{\"wraps\":[\"AAAA\"]}"),
        nonce: "EBESExQVFhcYGRobHB0eHw",
    },
];

fn generate() -> Value {
    let device = DeviceSecret::from_test_seed(&SEED);
    // A bearer token: 32 bytes of 0x11, base64url (PROTOCOL.md §8.2).
    let authorization = format!("Bearer {}", "ERERERERERERERERERERERERERERERERERERERERERE");
    let cases: Vec<Value> = CASES
        .iter()
        .map(|c| {
            let digest = c.body.map(|b| httpsig::content_digest(b.as_bytes()));
            let req = Request {
                method: c.method,
                path: c.path,
                query: c.query,
                authorization: &authorization,
                content_digest: digest.as_deref(),
            };
            let params = httpsig::Params {
                created: CREATED,
                nonce: c.nonce.to_owned(),
                keyid: device.id().to_string(),
            };
            let h = httpsig::sign(&device, &req, CREATED, c.nonce).unwrap();
            json!({
                "method": c.method,
                "path": c.path,
                "query": c.query,
                "authorization": authorization,
                "body": c.body,
                "created": CREATED,
                "nonce": c.nonce,
                "content_digest": digest,
                "signature_base": httpsig::signature_base(&req, &params).unwrap(),
                "signature_input": h.signature_input,
                "signature": h.signature,
            })
        })
        .collect();
    json!({
        "what": "RFC 9421 request signatures (PROTOCOL.md §8.2); Content-Digest per RFC 9530",
        "device_seed": hex::encode(SEED),
        "device_signing_public_key": hex::encode(device.signing_public_key()),
        "keyid": device.id().to_string(),
        "cases": cases,
    })
}

#[test]
fn http_signature_vector_matches_the_implementation() {
    let generated = generate();
    if std::env::var_os("SERMENT_REGEN_VECTORS").is_some() {
        std::fs::write(
            path(),
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    let file: Value = serde_json::from_slice(&std::fs::read(path()).unwrap()).unwrap();
    assert_eq!(
        file, generated,
        "{FILE} differs from what the code produces"
    );
}

#[test]
fn http_signature_vector_verifies_and_binds_every_component() {
    let v: Value = serde_json::from_slice(&std::fs::read(path()).unwrap()).unwrap();
    let pk: [u8; 32] = hex::decode(v["device_signing_public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    for c in v["cases"].as_array().unwrap() {
        let s = |k: &str| c[k].as_str().map(str::to_owned);
        let (method, path, query, auth, digest) = (
            s("method").unwrap(),
            s("path").unwrap(),
            s("query"),
            s("authorization").unwrap(),
            s("content_digest"),
        );
        if let Some(body) = s("body") {
            assert_eq!(
                digest.as_deref(),
                Some(httpsig::content_digest(body.as_bytes()).as_str())
            );
        }
        let req = Request {
            method: &method,
            path: &path,
            query: query.as_deref(),
            authorization: &auth,
            content_digest: digest.as_deref(),
        };
        let parsed =
            httpsig::parse(&s("signature_input").unwrap(), &s("signature").unwrap()).unwrap();
        assert_eq!(parsed.keyid(), v["keyid"]);
        assert_eq!(parsed.created(), c["created"].as_u64().unwrap());
        assert_eq!(parsed.nonce(), c["nonce"]);
        httpsig::verify(&pk, &req, &parsed).unwrap();
        // The base starts as every Serment request base does, and ends with the parameters.
        let base = s("signature_base").unwrap();
        assert!(base.starts_with(&format!("\"@method\": {method}\n\"@path\": {path}\n")));
        assert!(base.ends_with("tag=\"serment-v1\""));
        // Each covered component is bound.
        let other_query = Some("size=13");
        for (what, changed) in [
            (
                "method",
                Request {
                    method: "PUT",
                    ..req
                },
            ),
            (
                "path",
                Request {
                    path: "/v1/documents",
                    ..req
                },
            ),
            (
                "query",
                Request {
                    query: other_query,
                    ..req
                },
            ),
            (
                "authorization",
                Request {
                    authorization: "Bearer x",
                    ..req
                },
            ),
        ] {
            assert!(httpsig::verify(&pk, &changed, &parsed).is_err(), "{what}");
        }
    }
}

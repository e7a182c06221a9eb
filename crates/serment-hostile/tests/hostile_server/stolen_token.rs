//! A stolen bearer token is useless (issue 10 §2, PROTOCOL.md §8.2): every authenticated request
//! is signed with the device key (RFC 9421). A network attacker who captured one of the client's
//! requests (token, signature headers, body) replays it from another connection, with the same
//! signature headers and with the token alone: both are 401, and neither fetch is recorded as an
//! access, in the table or in the transparency log.

use axum::http::{HeaderMap, Method};

use crate::common::*;

fn count(w: &World, table: &str) -> u64 {
    let rows = w.h.sql(&format!("SELECT COUNT(*) AS n FROM {table}"));
    let n = rows[0][0].1.clone().unwrap();
    String::from_utf8(n).unwrap().parse().unwrap()
}

fn token_only(captured: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        captured.get("authorization").unwrap().clone(),
    );
    h
}

#[test]
fn stolen_token_replayed_request_and_bare_token_are_refused_and_not_logged() {
    let mut w = World::new();
    let r = w.put(b"{\"resourceType\":\"Observation\"}", "x", &[PATIENT]);
    read_to_file(&w.h, &mut w.patient, &r.doc_id, Some(1)).unwrap();
    let accesses = count(&w, "accesses");
    let log = count(&w, "log_entries");
    assert!(accesses >= 2, "the patient's read was recorded");

    // The patient's signed fetches of the wrap and of the blob, as captured on the wire.
    for pattern in [
        "GET /v1/documents/*/versions/*",
        "GET /v1/documents/*/versions/*/blob",
    ] {
        let captured = w.h.last(pattern);
        assert_eq!(captured.status, 200, "{pattern}");
        assert!(captured.request_headers.contains_key("signature"));
        // 1. Replayed verbatim (same token, same signature, same nonce): a replay.
        let (s, body) = w.h.call_with_headers(
            Method::GET,
            &captured.path,
            &captured.request_headers,
            Vec::new(),
        );
        assert_eq!(s, 401, "{pattern}: {}", String::from_utf8_lossy(&body));
        assert!(
            String::from_utf8_lossy(&body).contains("already used"),
            "{}",
            String::from_utf8_lossy(&body)
        );
        // 2. The token alone.
        let (s, body) = w.h.call_with_headers(
            Method::GET,
            &captured.path,
            &token_only(&captured.request_headers),
            Vec::new(),
        );
        assert_eq!(s, 401, "{pattern}: {}", String::from_utf8_lossy(&body));
        // 3. The captured signature moved to another path (the list of documents).
        let (s, _) = w.h.call_with_headers(
            Method::GET,
            "/v1/documents",
            &captured.request_headers,
            Vec::new(),
        );
        assert_eq!(s, 401, "{pattern}: signature moved to another path");
    }
    // A signed commit replayed with another body: the digest no longer matches (400) or, with a
    // recomputed digest, the signature does not (401). Nothing is stored either way.
    let commit = w.h.last("POST /v1/documents");
    let mut other = commit.request.clone();
    other.push(b' ');
    let (s, _) = w.h.call_with_headers(
        Method::POST,
        "/v1/documents",
        &commit.request_headers,
        other.clone(),
    );
    assert_eq!(s, 400, "body changed under its Content-Digest");
    let mut h = commit.request_headers.clone();
    h.insert(
        "content-digest",
        serment_core::httpsig::content_digest(&other)
            .parse()
            .unwrap(),
    );
    let (s, _) =
        w.h.call_with_headers(Method::POST, "/v1/documents", &h, other);
    assert_eq!(s, 401, "recomputed digest is not covered by the signature");

    assert_eq!(count(&w, "accesses"), accesses, "no access recorded");
    assert_eq!(count(&w, "log_entries"), log, "nothing appended to the log");
    // The victim's audit is clean: no access it did not co-sign.
    w.patient.audit(&r.doc_id).unwrap();
}

//! The device-pairing relay's bounds (PROTOCOL.md §4.1; hostile review F2): a hello is sized to
//! the SPAKE2 message it carries, and one device holds a few live slots at most, so that one
//! logged-in device cannot fill the metadata store with pairing rows.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

#[tokio::test]
async fn pairing_hellos_are_small_and_live_slots_per_device_are_capped() {
    let srv = TestServer::new().await;
    let (eve, bob) = (User::new("eve"), User::new("bob"));
    let te = srv.enroll(&eve).await;
    let tb = srv.enroll(&bob).await;
    // A 300 KiB hello (the attack) and a 2 KiB one are refused; nothing is stored.
    for len in [300 * 1024, 2048] {
        let (s, v) = srv
            .post(
                "/v1/pairing",
                Some(&te),
                json!({"slot": "100000", "hello": b64(&vec![1u8; len])}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{len}: {v}");
    }
    let (s, _) = srv.get("/v1/pairing/100000", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Three live slots, then 409 for this device; another device still opens one.
    let hello = b64(&[2u8; 40]);
    for slot in ["100001", "100002", "100003"] {
        let (s, v) = srv
            .post(
                "/v1/pairing",
                Some(&te),
                json!({"slot": slot, "hello": hello}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = srv
        .post(
            "/v1/pairing",
            Some(&te),
            json!({"slot": "100004", "hello": hello}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 live pairing slots"),
        "{v}"
    );
    let (s, _) = srv.get("/v1/pairing/100004", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the refused slot was not opened");
    let (s, v) = srv
        .post(
            "/v1/pairing",
            Some(&tb),
            json!({"slot": "100004", "hello": hello}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

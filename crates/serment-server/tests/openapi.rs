//! The OpenAPI 3.1 document served at `/openapi.json` is kept in `docs/openapi.json`, so that a
//! change to a request or response type (crates/serment-api, shared by server and clients) shows
//! up as a diff of the published contract. After a deliberate API change, regenerate it with
//! `SERMENT_BLESS=1 cargo test -p serment-server --test openapi`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use axum::http::StatusCode;
use common::TestServer;

#[tokio::test]
async fn openapi_json_matches_docs() {
    let srv = TestServer::new().await;
    let (s, served) = srv.get("/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let rendered = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("SERMENT_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_default();
    assert!(
        kept == served,
        "docs/openapi.json differs from the served document: run \
         `SERMENT_BLESS=1 cargo test -p serment-server --test openapi` and review the diff"
    );
    // Every schema the paths name is defined once, under components.
    let schemas = served["components"]["schemas"].as_object().unwrap();
    for name in [
        "CommitRequest",
        "VersionSummary",
        "VersionResponse",
        "HistoryResponse",
        "ProvenEntry",
        "ErrorBody",
    ] {
        assert!(
            schemas.contains_key(name),
            "components.schemas lacks {name}"
        );
    }
}

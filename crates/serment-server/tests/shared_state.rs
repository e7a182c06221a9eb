//! Issue 11 §4: the state that must be shared works across instances. Two servers on one
//! PostgreSQL schema (each with its own data directory, the same log key), as behind a load
//! balancer: a signed request captured from instance 1 and replayed to instance 2 is refused
//! with 401 and logs nothing; the login burst limit holds when the attempts alternate between
//! the instances.
//!
//! Needs `SERMENT_TEST_DATABASE_URL`: skipped with a message without it, failing when `CI=true`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{
    TempDir, TestServer, User, all_wraps, b64, commit, postgres_schema_url, seal_for,
    signature_headers, test_config,
};
use serde_json::json;
use serment_core::DocId;
use serment_server::{Config, Server};

/// Two servers on one fresh schema, sharing the log key; `tweak` adjusts both configs.
async fn two_instances(tweak: impl Fn(&mut Config)) -> Option<(TestServer, TestServer)> {
    let Some(url) = postgres_schema_url() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but SERMENT_TEST_DATABASE_URL is not set: two-instance tests cannot run"
            );
        }
        eprintln!(
            "skipped: set SERMENT_TEST_DATABASE_URL=postgres://… to run the two-instance tests"
        );
        return None;
    };
    let open = |dir: TempDir| {
        let url = url.clone();
        let tweak = &tweak;
        async move {
            let data = dir.path().join("data");
            let mut config = Config {
                database_url: Some(url),
                ..test_config(&data)
            };
            tweak(&mut config);
            let server = Server::open(config).await.unwrap();
            let router = server.router();
            TestServer { dir, data, router }
        }
    };
    let one = open(TempDir::new("inst1")).await;
    // The second instance shares the log key (from a file here; SERMENT_LOG_KEY in production).
    let dir2 = TempDir::new("inst2");
    let data2 = dir2.path().join("data");
    std::fs::create_dir_all(&data2).unwrap();
    std::fs::copy(one.data.join("log.key"), data2.join("log.key")).unwrap();
    let two = open(dir2).await;
    Some((one, two))
}

#[tokio::test]
async fn two_instances_signed_request_replayed_to_the_other_instance_is_refused_and_not_logged() {
    let Some((one, two)) = two_instances(|_| {}).await else {
        return;
    };
    let alice = User::new("alice");
    let token = one.enroll(&alice).await;
    let doc = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&alice, doc, 1, &[], b"lab result");
    let (s, v) = commit(&one, &token, doc, 1, blob, all_wraps(&sealed)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // One signed request (a read that records an access and appends a log entry), captured.
    let uri = format!("/v1/documents/{doc}/versions/1");
    let mut headers = signature_headers("GET", &uri, &token, None);
    headers.push(("authorization", format!("Bearer {token}")));
    let request = || {
        let mut b = Request::get(&uri);
        for (k, v) in &headers {
            b = b.header(*k, v);
        }
        b.body(Body::empty()).unwrap()
    };
    let (s, body) = one.send(request()).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let size_before = two.get("/v1/log/checkpoint", None).await;
    let (s, accesses_before) = two
        .get(&format!("/v1/documents/{doc}/accesses"), Some(&token))
        .await;
    assert_eq!(s, StatusCode::OK);

    // The same bytes to the other instance: the nonce was recorded in the shared database.
    let (s, body) = two.send(request()).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        String::from_utf8_lossy(&body).contains("replay"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // And to the first one, again.
    let (s, _) = one.send(request()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Nothing logged: the checkpoint and the access list are as before.
    assert_eq!(two.get("/v1/log/checkpoint", None).await, size_before);
    let (_, accesses_after) = two
        .get(&format!("/v1/documents/{doc}/accesses"), Some(&token))
        .await;
    assert_eq!(
        accesses_after["accesses"].as_array().map(Vec::len),
        accesses_before["accesses"].as_array().map(Vec::len)
    );
    assert!(
        accesses_before["accesses"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
}

#[tokio::test]
async fn two_instances_login_burst_limit_holds_across_instances() {
    const LIMIT: u32 = 5;
    let Some((one, two)) = two_instances(|c| c.auth_requests_per_minute = LIMIT).await else {
        return;
    };
    let mallory = User::new("mallory");
    let (s, v) = one
        .post(
            "/v1/devices",
            None,
            json!({ "record": b64(&mallory.record) }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Challenges for one device, alternating between the instances: the budget is shared.
    let mut statuses = Vec::new();
    for i in 0..(2 * LIMIT) {
        let srv = if i % 2 == 0 { &one } else { &two };
        let req = Request::post("/v1/auth/challenge")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({ "device_id": mallory.device_id() }).to_string(),
            ))
            .unwrap();
        let resp = tower::ServiceExt::oneshot(srv.router.clone(), req)
            .await
            .unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().contains_key(header::RETRY_AFTER));
        }
        statuses.push(resp.status().as_u16());
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, LIMIT as usize, "{statuses:?}");
    assert!(
        statuses[LIMIT as usize..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
}

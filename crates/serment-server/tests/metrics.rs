//! `GET /metrics` (issue 11 §4): gated by `metrics_token` (404 unset, 401 without the right
//! bearer), Prometheus text whose counters move with the traffic, labelled by route template so
//! that no document id, blob id, device id or handle reaches the output.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{TempDir, TestServer, User, all_wraps, commit, seal_for, test_config};
use serment_core::DocId;
use serment_server::Server;
use serment_server::config::MetricsToken;

const TOKEN: &str = "metrics-scraper-secret-0123456789";

async fn server(token: Option<&str>) -> TestServer {
    let dir = TempDir::new("metrics");
    let data = dir.path().join("data");
    let mut config = test_config(&data);
    config.metrics_token = token.map(MetricsToken::new);
    let server = Server::open(config).await.unwrap();
    let router = server.router();
    TestServer { dir, data, router }
}

async fn scrape(srv: &TestServer, bearer: Option<&str>) -> (StatusCode, String) {
    let mut b = Request::get("/metrics");
    if let Some(t) = bearer {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let (s, body) = srv.send(b.body(Body::empty()).unwrap()).await;
    (s, String::from_utf8(body).unwrap())
}

/// The value of the sample whose line starts with `name{` and holds every label of `labels`
/// (0 when absent).
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_are_gated_by_the_token() {
    let off = server(None).await;
    assert_eq!(scrape(&off, Some(TOKEN)).await.0, StatusCode::NOT_FOUND);
    let on = server(Some(TOKEN)).await;
    assert_eq!(scrape(&on, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(&on, Some("metrics-scraper-secret-0123456788"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(scrape(&on, Some("short")).await.0, StatusCode::UNAUTHORIZED);
    let (s, text) = scrape(&on, Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(text.contains("serment_log_entries"), "{text}");
    // A token too short or with spaces is refused at startup.
    let dir = TempDir::new("metrics-bad");
    let mut config = test_config(&dir.path().join("data"));
    config.metrics_token = Some(MetricsToken::new("too short"));
    assert!(Server::open(config).await.is_err());
    // And never printed.
    assert!(!format!("{:?}", MetricsToken::new(TOKEN)).contains(TOKEN));
}

#[tokio::test]
async fn metrics_move_with_traffic_and_name_no_id_or_handle() {
    let srv = server(Some(TOKEN)).await;
    let (_, before) = scrape(&srv, Some(TOKEN)).await;
    let commits = |t: &str| {
        sample(
            t,
            "serment_http_requests_total",
            &[
                r#"route="/v1/documents""#,
                r#"method="POST""#,
                r#"status="201""#,
            ],
        )
    };
    let reads = |t: &str| {
        sample(
            t,
            "serment_http_requests_total",
            &[
                r#"route="/v1/documents/{doc_id}/versions/{v}""#,
                r#"status="200""#,
            ],
        )
    };

    let alice = User::new("alice-metrics-handle");
    let token = srv.enroll(&alice).await;
    let mut docs = Vec::new();
    for _ in 0..3 {
        let doc = DocId::random().unwrap();
        let (blob, sealed) = seal_for(&alice, doc, 1, &[], b"potassium 4.1 mmol/L");
        let (s, v) = commit(&srv, &token, doc, 1, blob, all_wraps(&sealed)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let (s, _) = srv
            .get(&format!("/v1/documents/{doc}/versions/1"), Some(&token))
            .await;
        assert_eq!(s, StatusCode::OK);
        docs.push((doc, v["blob_id"].as_str().map(str::to_owned)));
    }
    let (s, _) = srv.get("/v1/no/such/route/deadbeef", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, after) = scrape(&srv, Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    // Counters are per process (other tests may run beside this one): at least ours moved.
    assert!(commits(&after) >= commits(&before) + 3.0, "{after}");
    assert!(reads(&after) >= reads(&before) + 3.0, "{after}");
    assert!(
        sample(
            &after,
            "serment_http_requests_total",
            &[r#"route="unmatched""#]
        ) >= 1.0
    );
    assert!(
        sample(
            &after,
            "serment_http_request_duration_seconds_count",
            &[r#"route="/v1/documents""#]
        ) >= 3.0,
        "{after}"
    );
    assert!(
        sample(&after, "serment_commit_batch_jobs_count", &[]) >= 3.0,
        "{after}"
    );
    assert!(sample(&after, "serment_log_entries", &[]) >= 4.0, "{after}");
    assert!(sample(&after, "serment_blob_bytes", &[]) > 0.0, "{after}");
    assert!(
        sample(&after, "serment_blob_upload_bytes_total", &[]) > 0.0,
        "{after}"
    );
    assert!(
        sample(&after, "serment_db_pool_max_connections", &[]) >= 1.0,
        "{after}"
    );

    // No id, handle or raw path in the output.
    let mut secrets = vec![
        alice.handle.clone(),
        alice.device_id(),
        token.clone(),
        "deadbeef".to_owned(),
    ];
    for (doc, blob) in &docs {
        secrets.push(doc.to_string());
        secrets.extend(blob.clone());
    }
    for s in secrets {
        assert!(!after.contains(&s), "{s} leaked into /metrics");
    }
}

/// REVIEW5 U6 (3): a backup loop that fails is visible to the site's alerting on `/metrics`:
/// its failures in a row, when it was last up to date, and the lag since (computed at the
/// scrape, so it grows even if the loop is stuck).
#[tokio::test]
async fn a_failing_backup_loop_is_on_the_metrics() {
    use serment_server::backup::{Backup, Target};
    let dir = TempDir::new("metrics-backup");
    let data = dir.path().join("data");
    let mut config = test_config(&data);
    config.metrics_token = Some(MetricsToken::new(TOKEN));
    let server = Server::open(config).await.unwrap();
    let router = server.router();
    // A file where the target's directory should be: every increment fails.
    let target_dir = dir.path().join("backup");
    std::fs::write(&target_dir, b"not a directory").unwrap();
    let target = Target::parse(&format!("file://{}", target_dir.display())).unwrap();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let task = tokio::spawn(
        server.backup_loop(Backup::new(target), std::time::Duration::from_millis(100)),
    );
    let srv = TestServer { dir, data, router };
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (s, text) = scrape(&srv, Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        sample(&text, "serment_backup_consecutive_failures", &[]) >= 2.0,
        "{text}"
    );
    let at = sample(&text, "serment_backup_up_to_date_timestamp_seconds", &[]);
    assert!(at >= start as f64 && at <= start as f64 + 1.0, "{text}");
    assert!(
        sample(&text, "serment_backup_lag_seconds", &[]) >= 1.0,
        "{text}"
    );
    task.abort();
}

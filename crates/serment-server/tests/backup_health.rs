//! `GET /healthz` and `GET /healthz/backup` with a `serve --backup-url` loop (REVIEW5 U6 (3)).
//! In a process of its own: the backup gauges of `/metrics` are process-wide, and the loops here
//! would move them under `metrics.rs`'s own backup test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use axum::http::StatusCode;
use common::{TempDir, TestServer, test_config};
use serment_server::Server;

/// Log lines written by `tracing` while the test runs.
#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// REVIEW5 U6 (3): a backup loop that lags past its limit shows on `GET /healthz` (`degraded`,
/// still 200: clients read their limits there and a load balancer must not drop the service)
/// and on `GET /healthz/backup` (503, for the site's monitoring), and `serve` warns once, not
/// at every tick. A loop that keeps up stays `ok`; no loop is `off` (503 on the backup probe).
#[tokio::test]
async fn a_lagging_backup_degrades_healthz_and_is_warned_once() {
    use serment_server::backup::{Backup, Target};
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    // current-thread runtime: the loop's task runs on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let tick = std::time::Duration::from_millis(100);
    let limit = std::time::Duration::from_secs(1);

    let dir = TempDir::new("health-backup");
    let data = dir.path().join("data");
    let server = Server::open(test_config(&data)).await.unwrap();
    let router = server.router();
    // A file where the target's directory should be: every increment fails.
    let bad = dir.path().join("backup");
    std::fs::write(&bad, b"not a directory").unwrap();
    let bad = Target::parse(&format!("file://{}", bad.display())).unwrap();
    let good_dir = TempDir::new("health-backup-good");
    let good_data = good_dir.path().join("data");
    let good_server = Server::open(test_config(&good_data)).await.unwrap();
    let good_router = good_server.router();
    let good = Target::parse(&format!("file://{}", good_dir.path().join("b").display())).unwrap();
    let srv = TestServer { dir, data, router };
    let good_srv = TestServer {
        dir: good_dir,
        data: good_data,
        router: good_router,
    };

    // No backup loop: no `backup` field, `ok`; the backup probe says `off` with 503.
    let (s, v) = srv.get("/healthz", None).await;
    assert_eq!(
        (s, &v["status"]),
        (StatusCode::OK, &serde_json::json!("ok")),
        "{v}"
    );
    assert!(v.get("backup").is_none(), "{v}");
    let (s, v) = srv.get("/healthz/backup", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["state"], "off", "{v}");

    let task = tokio::spawn(server.backup_loop_with(Backup::new(bad), tick, limit));
    let good_task = tokio::spawn(good_server.backup_loop_with(Backup::new(good), tick, limit));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (s, v) = srv.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["backup"]["state"], "ok", "{v}");
    assert_eq!(v["backup"]["max_lag_seconds"], 1, "{v}");

    tokio::time::sleep(std::time::Duration::from_millis(2600)).await;
    let (s, v) = srv.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "degraded", "{v}");
    assert_eq!(v["backup"]["state"], "lagging", "{v}");
    assert!(v["backup"]["lag_seconds"].as_u64().unwrap() >= 2, "{v}");
    assert!(
        v["backup"]["consecutive_failures"].as_u64().unwrap() >= 2,
        "{v}"
    );
    assert!(v["max_blob_bytes"].as_u64().unwrap() > 0, "{v}");
    let (s, v) = srv.get("/healthz/backup", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["state"], "lagging", "{v}");
    // The loop that keeps up stays `ok`.
    let (s, v) = good_srv.get("/healthz", None).await;
    assert_eq!(
        (s, &v["status"]),
        (StatusCode::OK, &serde_json::json!("ok")),
        "{v}"
    );
    let (s, v) = good_srv.get("/healthz/backup", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "ok", "{v}");
    task.abort();
    good_task.abort();

    // One warning for the lag, not one per tick (the failures themselves are errors).
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("BACKUP LAGGING").count(), 1, "{text}");
}

//! Database statements per request (issue 14 §2): the document commit (`POST /v1/documents`, the
//! inline blob and `log_from` of the ingest benchmark) and the document read (`GET
//! /v1/documents/{id}/versions/{v}`), counted on both drivers, SQLite and PostgreSQL.
//!
//! sqlx reports every statement it runs as a `tracing` event of target `sqlx::query`; a layer
//! installed as the process's subscriber counts them between the request and its answer. The
//! counts are exact: a statement added to either path fails this test, which prints the
//! statements it saw (the fix is to fold the new read into an existing query, or to change the
//! expected count here with a reason in the commit message). Transaction control (`BEGIN`,
//! `COMMIT`) is not a statement here.
//!
//! One test function in its own binary, because the subscriber is process-wide. PostgreSQL needs
//! `SERMENT_TEST_DATABASE_URL`: skipped with a message without it, failing when `CI=true`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use serment_core::DocId;
use serment_server::{Config, Server};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// The statements seen, by their summary (the start of their SQL).
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

impl Statements {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Summary(String);

impl tracing::field::Visit for Summary {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "summary" {
            value.clone_into(&mut self.0);
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" && self.0.is_empty() {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            let mut s = Summary(String::new());
            event.record(&mut s);
            self.0.lock().unwrap().push(s.0);
        }
    }
}

/// The statement counts of one driver: a commit and a read.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    commit: usize,
    read: usize,
}

/// Commits a 3-recipient version inline and reads it as a recipient, counting the statements
/// of each request.
async fn count(config: Config, seen: &Statements) -> Counts {
    let data = config.data_dir.clone();
    let server = Server::open(config).await.unwrap();
    let srv = TestServer {
        dir: TempDir(data.parent().unwrap().to_owned()),
        data,
        router: server.router(),
    };
    let (lab, patient, gp) = (User::new("lab"), User::new("patient"), User::new("gp"));
    let lab_t = srv.enroll(&lab).await;
    let patient_t = srv.enroll(&patient).await;
    srv.enroll(&gp).await;
    // A first document, so that the log has a history to prove consistency from.
    let doc = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&lab, doc, 1, &[&patient, &gp], &[7u8; 4096]);
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&lab_t),
            json!({ "doc_id": doc.to_string(), "doc_version": 1, "blob": b64(&blob),
                    "wraps": all_wraps(&sealed), "log_from": 0 }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let from = v["log_indices"][2].as_u64().unwrap() + 1;

    // The ingest benchmark's request: inline blob, three wraps, proofs from the last size seen.
    let doc = DocId::random().unwrap();
    let (blob, sealed) = seal_for(&lab, doc, 1, &[&patient, &gp], &[8u8; 4096]);
    let body = json!({ "doc_id": doc.to_string(), "doc_version": 1, "blob": b64(&blob),
                       "wraps": all_wraps(&sealed), "log_from": from });
    seen.take();
    let (s, v) = srv.post("/v1/documents", Some(&lab_t), body).await;
    let commit = seen.take();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(!v["log"]["consistency"].as_array().unwrap().is_empty());

    // A recipient's read: the version, its wrap, the wrap's entry proven, the access recorded.
    let uri = format!("/v1/documents/{doc}/versions/1");
    seen.take();
    let (s, v) = srv.get(&uri, Some(&patient_t)).await;
    let read = seen.take();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v["wrap"].is_string() && v["wrap_entry"]["proof"].is_array(),
        "{v}"
    );
    assert_eq!(
        v["log_size"],
        v["access_index"].as_u64().unwrap() + 1,
        "{v}"
    );
    println!("commit: {} statements: {commit:#?}", commit.len());
    println!("read: {} statements: {read:#?}", read.len());
    Counts {
        commit: commit.len(),
        read: read.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_read_make_a_fixed_number_of_statements() {
    let seen = Statements::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(seen.clone()))
        .unwrap();

    let dir = TempDir::new("qc");
    let sqlite = count(sqlite_test_config(&dir.path().join("data")), &seen).await;
    // The commit (13, 17 before issue 14 §2): the session and the request nonce (2; the
    // nonces of the requests waiting at one moment share that one insert); the batch's checks
    // of the documents, erasures, recipients and blob, in one `UNION ALL` query (1, was 4);
    // the log's size, frontier and chain heads (3); the blob, version and wrap rows (3); the
    // log's nodes, entries, head and checkpoint (4). The consistency proof from `log_from` is
    // computed by the batch from the nodes it holds (was 1 more statement per request, after
    // the commit; a batch whose clients saw older sizes reads the missing nodes once, with its
    // inclusion proofs'). With N commits in a batch, the 11 batch statements are shared by
    // the N.
    // The read (13, 16 before issue 14 §2): the session and the request nonce (2); the
    // version, the reader's wrap (own or team's) and its entry, in one query (1, was 2); the
    // access's transaction (9); the inclusion proof's nodes (1). The log size comes from the
    // access's own checkpoint and the wrap's entry from the first query (2 fewer).
    assert_eq!(
        sqlite,
        Counts {
            commit: 13,
            read: 13
        },
        "SQLite"
    );

    let Some(url) = postgres_schema_url() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but SERMENT_TEST_DATABASE_URL is not set: the PostgreSQL counts cannot run"
            );
        }
        eprintln!("SERMENT_TEST_DATABASE_URL is not set: PostgreSQL statement counts skipped");
        return;
    };
    let dir = TempDir::new("qc-pg");
    let postgres = count(
        Config {
            database_url: Some(url),
            ..sqlite_test_config(&dir.path().join("data"))
        },
        &seen,
    )
    .await;
    // The same SQL (written once for both drivers), and per write transaction two more: the
    // log lock (`SELECT size FROM log_head … FOR UPDATE`, which SQLite's `BEGIN IMMEDIATE`
    // takes) and the `COMMIT`, which sqlx logs as a statement on PostgreSQL.
    assert_eq!(
        postgres,
        Counts {
            commit: 15,
            read: 15
        },
        "PostgreSQL"
    );
}

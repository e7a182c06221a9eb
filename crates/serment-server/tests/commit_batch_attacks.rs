//! Red-team tests of the batched, inline commit path (PROTOCOL.md §8.3, §11.3): concurrent
//! conflicting commits get their own status in a busy batch, `log_from` edge values, malformed
//! inline blobs, a request dropped mid-commit, and a failing job that must not poison a batch.
//! After each, the whole log is re-checked from the database: every checkpoint's root matches the
//! entries, every subject's chain is whole, and every wrap row points at its own entry.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use serment_core::DocId;
use serment_core::document::Header;
use serment_core::log::entry::{EntryKind, LogEntry, Payload, Subject};
use serment_core::log::note::{SignedCheckpoint, VerifierKey};
use serment_core::log::tree::{self, Hash, MemoryTree};
use sqlx::Row as _;

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| unb64(h.as_str().unwrap()).try_into().unwrap())
        .collect()
}

async fn vkey(srv: &TestServer) -> VerifierKey {
    let (_, key) = srv.get("/v1/log/key", None).await;
    VerifierKey::parse(key["vkey"].as_str().unwrap()).unwrap()
}

async fn db(srv: &TestServer) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", srv.data.join("serment.db").display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}

/// Re-checks the whole log from the database; returns its size.
async fn check_log(srv: &TestServer) -> u64 {
    let vk = vkey(srv).await;
    let pool = db(srv).await;
    let rows =
        sqlx::query("SELECT idx, kind, subject, entry, leaf_hash FROM log_entries ORDER BY idx")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut t = MemoryTree::new();
    let mut heads: HashMap<String, (u64, Hash)> = HashMap::new();
    let mut entries: Vec<Vec<u8>> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let idx: i64 = r.get("idx");
        assert_eq!(idx as usize, i, "log indices are contiguous");
        let bytes: Vec<u8> = r.get("entry");
        let leaf: Vec<u8> = r.get("leaf_hash");
        assert_eq!(
            leaf,
            tree::leaf_hash(&bytes).to_vec(),
            "stored leaf hash of {i}"
        );
        let e = LogEntry::decode(&bytes).unwrap();
        let kind: i64 = r.get("kind");
        assert_eq!(kind, e.kind as u8 as i64);
        let key = match e.subject() {
            Subject::Handle(h) => format!("h:{h}"),
            Subject::Document(d) => format!("d:{d}"),
            Subject::Team(t) => format!("t:{t}"),
            Subject::WebBundle => "w:bundle".to_owned(),
            Subject::Provisional(p) => format!("p:{p}"),
            Subject::Social(h) => format!("s:{h}"),
        };
        let subject: String = r.get("subject");
        assert_eq!(subject, key, "subject column of entry {i}");
        let prev = e.prev.map(|p| (p.index, p.leaf_hash));
        assert_eq!(
            prev,
            heads.get(&key).copied(),
            "chain of {key} at entry {i}"
        );
        heads.insert(key, (i as u64, tree::leaf_hash(&bytes)));
        t.push_entry(&bytes).unwrap();
        entries.push(bytes);
    }
    let size = entries.len() as u64;
    let cps = sqlx::query("SELECT size, note FROM log_checkpoints ORDER BY size")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!cps.is_empty());
    let mut last = 0;
    for r in &cps {
        let s: i64 = r.get("size");
        let note: String = r.get("note");
        let cp = SignedCheckpoint::parse(&note).unwrap();
        cp.verify_log_signature(&vk).unwrap();
        assert_eq!(cp.checkpoint.size, s as u64);
        assert!(cp.checkpoint.size <= size, "checkpoint beyond the log");
        assert_eq!(
            cp.checkpoint.root,
            t.root_at(cp.checkpoint.size).unwrap(),
            "root of checkpoint {s}"
        );
        last = s as u64;
    }
    assert_eq!(last, size, "the latest size has a checkpoint");
    // Every wrap row points at its own wrap entry; every document subject has a version row.
    let wraps = sqlx::query("SELECT doc_id, recipient_device, wrap, log_idx FROM wraps")
        .fetch_all(&pool)
        .await
        .unwrap();
    for w in &wraps {
        let idx: i64 = w.get("log_idx");
        let e = LogEntry::decode(&entries[idx as usize]).unwrap();
        assert_eq!(e.kind, EntryKind::Wrap);
        let bytes: Vec<u8> = w.get("wrap");
        assert_eq!(e.payload_bytes, bytes);
        let doc: String = w.get("doc_id");
        assert_eq!(
            e.subject(),
            Subject::Document(DocId::from_hex(&doc).unwrap())
        );
        if let Payload::Wrap(k) = &e.payload {
            let r: String = w.get("recipient_device");
            assert_eq!(k.recipient.to_string(), r);
        }
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM log_entries WHERE subject LIKE 'd:%' AND substr(subject, 3) NOT IN \
         (SELECT doc_id FROM documents)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "log entries of a document never committed");
    let dangling: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM documents WHERE blob_id NOT IN (SELECT blob_id FROM blobs)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(dangling, 0);
    pool.close().await;
    size
}

/// Checks a 201 answer's own-write proofs (`log_from` given).
fn check_proof(v: &Value, vk: &VerifierKey, pinned: Option<(u64, Hash)>) {
    let log = &v["log"];
    let cp = SignedCheckpoint::parse(log["checkpoint"].as_str().unwrap()).unwrap();
    cp.verify_log_signature(vk).unwrap();
    let (size, root) = (cp.checkpoint.size, cp.checkpoint.root);
    let idx = v["log_indices"].as_array().unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(idx.len(), entries.len());
    for (i, e) in idx.iter().zip(entries) {
        assert_eq!(e["index"], *i);
        let bytes = unb64(e["entry"].as_str().unwrap());
        tree::verify_inclusion(
            &bytes,
            i.as_u64().unwrap(),
            size,
            &root,
            &hashes(&e["proof"]),
        )
        .unwrap();
    }
    if let Some((from, old_root)) = pinned {
        assert_eq!(log["from"], from);
        tree::verify_consistency(from, &old_root, size, &root, &hashes(&log["consistency"]))
            .unwrap();
    }
}

async fn latest(srv: &TestServer) -> (u64, Hash) {
    let (_, c) = srv.get("/v1/log/checkpoint", None).await;
    let cp = SignedCheckpoint::parse(c["checkpoint"].as_str().unwrap()).unwrap();
    (cp.checkpoint.size, cp.checkpoint.root)
}

fn inline_body(doc: DocId, v: u32, blob: &[u8], wraps: Vec<String>, from: Value) -> Value {
    let mut b =
        json!({"doc_id": doc.to_string(), "doc_version": v, "blob": b64(blob), "wraps": wraps});
    if !from.is_null() {
        b["log_from"] = from;
    }
    b
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Alice,
    Mallory,
    Ghost,
}

/// Many clients at once: the same version twice, the same document by two identities, versions 1
/// and 2 racing, unknown recipients mixed in. Each gets its own status; the log stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conflicting_commits_each_get_their_own_status() {
    let srv = Arc::new(TestServer::sqlite().await);
    let alice = User::new("alice");
    let mallory = User::new("mallory");
    let bob = User::new("bob");
    let ghost = User::new("ghost"); // never registered
    let ta = srv.enroll(&alice).await;
    let tm = srv.enroll(&mallory).await;
    srv.enroll(&bob).await;
    let vk = vkey(&srv).await;
    let pinned = latest(&srv).await;

    let mut reqs: Vec<(Who, DocId, u32, String, Value)> = Vec::new();
    for i in 0..20u8 {
        let doc = DocId::from_bytes([i + 1; 16]);
        let (b1, s1) = seal_for(&alice, doc, 1, &[&bob], &[i; 40]);
        let body = inline_body(doc, 1, &b1, all_wraps(&s1), json!(pinned.0));
        reqs.push((Who::Alice, doc, 1, ta.clone(), body.clone()));
        reqs.push((Who::Alice, doc, 1, ta.clone(), body));
        let (b2, s2) = seal_for(&alice, doc, 2, &[&bob], &[i; 41]);
        reqs.push((
            Who::Alice,
            doc,
            2,
            ta.clone(),
            inline_body(doc, 2, &b2, all_wraps(&s2), json!(0)),
        ));
        let (bm, sm) = seal_for(&mallory, doc, 1, &[&bob], b"mine");
        reqs.push((
            Who::Mallory,
            doc,
            1,
            tm.clone(),
            inline_body(doc, 1, &bm, all_wraps(&sm), json!(pinned.0)),
        ));
        // An unknown recipient on a fresh document, by the same author.
        let gdoc = DocId::from_bytes([i + 101; 16]);
        let (bg, sg) = seal_for(&alice, gdoc, 1, &[&bob, &ghost], b"ghost");
        reqs.push((
            Who::Ghost,
            gdoc,
            1,
            ta.clone(),
            inline_body(gdoc, 1, &bg, all_wraps(&sg), json!(0)),
        ));
    }
    // Interleave so that batches mix everything.
    let n = reqs.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|i| (i * 37) % n);
    let mut handles = Vec::new();
    for i in order {
        let (who, doc, v, tok, body) = reqs[i].clone();
        let srv = Arc::clone(&srv);
        handles.push(tokio::spawn(async move {
            let (s, r) = srv.post("/v1/documents", Some(&tok), body).await;
            (who, doc, v, s, r)
        }));
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    let pool = db(&srv).await;
    let owner_of = async |doc: &DocId| -> Option<String> {
        sqlx::query_scalar("SELECT DISTINCT author_identity FROM documents WHERE doc_id = ?")
            .bind(doc.to_string())
            .fetch_optional(&pool)
            .await
            .unwrap()
    };
    let alice_id = alice.identity.id().to_string();
    let mut wins: HashMap<(DocId, u32), usize> = HashMap::new();
    for (who, doc, v, s, r) in &results {
        assert_ne!(s.as_u16() / 100, 5, "{who:?} {doc} v{v}: {s} {r}");
        if *who == Who::Ghost {
            assert_eq!(*s, StatusCode::BAD_REQUEST, "{r}");
            continue;
        }
        let owner = owner_of(doc).await.unwrap();
        let mine = (owner == alice_id) == (*who == Who::Alice);
        match *s {
            StatusCode::CREATED => {
                assert!(mine, "{who:?} committed a document it does not own");
                *wins.entry((*doc, *v)).or_default() += 1;
                check_proof(r, &vk, (r["log"]["from"] != 0).then_some(pinned));
            }
            // The owner's identical second send: answered with the first one's entries.
            StatusCode::OK => {
                assert!(mine, "{who:?} {doc} v{v}: 200 for a non-owner");
                check_proof(r, &vk, (r["log"]["from"] != 0).then_some(pinned));
            }
            StatusCode::CONFLICT => assert!(mine, "{who:?} {doc} v{v}: 409 for a non-owner"),
            StatusCode::FORBIDDEN => assert!(!mine, "{who:?} {doc} v{v}: 403 for the owner"),
            other => panic!("{who:?} {doc} v{v}: unexpected {other}: {r}"),
        }
    }
    for (who, doc, v, _, _) in &results {
        if *who == Who::Ghost {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE doc_id = ?")
                .bind(doc.to_string())
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(n, 0, "a commit with an unknown recipient was stored");
        } else {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM documents WHERE doc_id = ? AND doc_version = ?",
            )
            .bind(doc.to_string())
            .bind(i64::from(*v))
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(
                n as usize,
                wins.get(&(*doc, *v)).copied().unwrap_or(0),
                "{doc} v{v}"
            );
        }
    }
    let checkpoints: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    let commits: usize = wins.values().sum();
    eprintln!(
        "{n} requests, {commits} commits, {checkpoints} checkpoints in all (batched if fewer)"
    );
    pool.close().await;
    check_log(&srv).await;
}

/// `log_from`: 0, the current size, an older size, beyond the log, u64::MAX, and values that are
/// not a u64 (refused before anything is committed).
#[tokio::test]
async fn log_from_edge_values() {
    let srv = TestServer::sqlite().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;
    let vk = vkey(&srv).await;
    let mut n = 0u8;
    let mut next = || {
        n += 1;
        let doc = DocId::from_bytes([n; 16]);
        let (blob, sealed) = seal_for(&alice, doc, 1, &[&bob], &[n; 10]);
        (doc, blob, all_wraps(&sealed))
    };
    let count = async || -> usize {
        let (_, v) = srv.get("/v1/documents", Some(&ta)).await;
        v["documents"].as_array().unwrap().len()
    };
    // Not a u64: refused before the commit.
    for bad in [
        json!(-1),
        json!("0"),
        json!(1.5),
        json!(true),
        json!([]),
        json!("18446744073709551616"),
    ] {
        let (doc, blob, wraps) = next();
        let mut body = inline_body(doc, 1, &blob, wraps, Value::Null);
        body["log_from"] = bad.clone();
        let (s, v) = srv.post("/v1/documents", Some(&ta), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let raw = |doc: DocId, blob: &[u8], wraps: &[String], from: &str| {
        format!(
            r#"{{"doc_id":"{doc}","doc_version":1,"blob":"{}","wraps":{},"log_from":{from}}}"#,
            b64(blob),
            serde_json::to_string(wraps).unwrap()
        )
    };
    let (doc, blob, wraps) = next();
    let (s, v) = srv
        .json_raw(
            axum::http::Method::POST,
            "/v1/documents",
            Some(&ta),
            Some(raw(doc, &blob, &wraps, "18446744073709551616")),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        count().await,
        0,
        "nothing committed by a malformed log_from"
    );
    // null is "absent".
    let (doc, blob, wraps) = next();
    let mut body = inline_body(doc, 1, &blob, wraps, Value::Null);
    body["log_from"] = Value::Null;
    let (s, v) = srv.post("/v1/documents", Some(&ta), body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v.get("log").is_none_or(Value::is_null), "{v}");
    // 0, the current size, an older size with a checkpoint, an arbitrary older size.
    let (size0, root0) = latest(&srv).await;
    for (from, root) in [(0, None), (size0, Some(root0))] {
        let (doc, blob, wraps) = next();
        let (s, v) = srv
            .post(
                "/v1/documents",
                Some(&ta),
                inline_body(doc, 1, &blob, wraps, json!(from)),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        check_proof(&v, &vk, root.map(|r| (from, r)));
        assert_eq!(v["log"]["from"], from);
        if from == 0 {
            assert!(v["log"]["consistency"].as_array().unwrap().is_empty());
        }
    }
    for from in [1u64, 2, 3] {
        let (_, c) = srv
            .get(&format!("/v1/log/checkpoint?size={from}"), None)
            .await;
        let (doc, blob, wraps) = next();
        let (s, v) = srv
            .post(
                "/v1/documents",
                Some(&ta),
                inline_body(doc, 1, &blob, wraps, json!(from)),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        // The old root recomputed from the entries (a size without a stored checkpoint too).
        let (_, e) = srv
            .get(&format!("/v1/log/entries?start=0&end={from}"), None)
            .await;
        let mut t = MemoryTree::new();
        for b in e["entries"].as_array().unwrap() {
            t.push_entry(&unb64(b.as_str().unwrap())).unwrap();
        }
        let _ = c;
        check_proof(&v, &vk, Some((from, t.root_at(from).unwrap())));
    }
    let before = count().await;
    // Beyond the log, and u64::MAX: 400 after the commit, which stands (an identical retry is
    // the same commit, and the same 400; nothing is stored twice).
    for from in [latest(&srv).await.0 + 1_000, u64::MAX] {
        let (doc, blob, wraps) = next();
        let body = inline_body(doc, 1, &blob, wraps, json!(from));
        let (s, v) = srv.post("/v1/documents", Some(&ta), body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{from}: {v}");
        let (s, v) = srv.post("/v1/documents", Some(&ta), body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{from}: {v}");
    }
    assert_eq!(count().await, before + 2);
    check_log(&srv).await;
}

/// Malformed inline blobs are refused before anything is stored, and never with a 5xx.
#[tokio::test]
async fn malformed_inline_blobs_are_refused() {
    let srv = TestServer::sqlite().await;
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;
    let doc = DocId::from_bytes([9; 16]);
    let (blob, sealed) = seal_for(&alice, doc, 1, &[&bob], b"the real one");
    let wraps = all_wraps(&sealed);
    let other = DocId::from_bytes([10; 16]);
    let (other_blob, _) = seal_for(&alice, other, 1, &[&bob], b"another doc");
    let mut wrong_suite = blob.clone();
    wrong_suite[6] ^= 0x7f;
    let mut suite2 = blob.clone();
    suite2[6..8].copy_from_slice(&1u16.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("LEN-1 bytes", blob[..Header::LEN - 1].to_vec()),
        ("wrong suite", wrong_suite),
        ("another document's header", other_blob),
        ("zeros", vec![0; 4096]),
    ];
    for (what, bytes) in cases {
        let (s, v) = srv
            .post(
                "/v1/documents",
                Some(&ta),
                inline_body(doc, 1, &bytes, wraps.clone(), json!(0)),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}");
    }
    // Relabelled as suite 1 (a downgrade): the header decodes, but the wraps are bound to the suite-2 header.
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            inline_body(doc, 1, &suite2, wraps.clone(), json!(0)),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "suite relabelled: {v}");
    // The same recipient twice (the same wrap, or the author's own wrap repeated).
    let mut dup = wraps.clone();
    dup.push(wraps[0].clone());
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            inline_body(doc, 1, &blob, dup, json!(0)),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "duplicate recipient: {v}");
    // Over the inline cap and a huge JSON body: 413.
    let mut big = blob.clone();
    big.resize(262_145, 0);
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            inline_body(doc, 1, &big, wraps.clone(), json!(0)),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let huge = format!(
        r#"{{"doc_id":"{doc}","doc_version":1,"blob":"{}","wraps":[]}}"#,
        "A".repeat(8 << 20)
    );
    let (s, v) = srv
        .json_raw(
            axum::http::Method::POST,
            "/v1/documents",
            Some(&ta),
            Some(huge),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let pool = db(&srv).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing stored by a refused commit");
    pool.close().await;
    // Header only (a valid header, no body): the server cannot tell; it is stored and served
    // as is (a reader's open fails on it).
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            inline_body(doc, 1, &blob[..Header::LEN], wraps.clone(), json!(0)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "header only: {v}");
    check_log(&srv).await;
}

/// A commit whose request is dropped at any point (the client cut the connection) is either
/// fully committed (an identical retry is 200, with the original entries) or not at all (a retry is 201); never half, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_dropped_midway_is_all_or_nothing() {
    let srv = Arc::new(TestServer::sqlite().await);
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;
    let (mut committed, mut not) = (0, 0);
    for i in 0..60u32 {
        let doc = DocId::from_bytes([(i + 1) as u8; 16]);
        let (blob, sealed) = seal_for(&alice, doc, 1, &[&bob], b"cut");
        let body = inline_body(doc, 1, &blob, all_wraps(&sealed), json!(0));
        let (s2, t2, b2) = (Arc::clone(&srv), ta.clone(), body.clone());
        let task = tokio::spawn(async move { s2.post("/v1/documents", Some(&t2), b2).await });
        tokio::time::sleep(Duration::from_micros(u64::from(i) * 100)).await;
        task.abort();
        let _ = task.await;
        let (s, v) = srv.post("/v1/documents", Some(&ta), body).await;
        match s {
            StatusCode::CREATED => not += 1,
            // The identical retry of a commit that went through: its original entries.
            StatusCode::OK => committed += 1,
            other => panic!("retry {i}: {other} {v}"),
        }
        let pool = db(&srv).await;
        let w: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wraps WHERE doc_id = ?")
            .bind(doc.to_string())
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(w, 2, "doc {i}: every wrap or none");
        pool.close().await;
    }
    eprintln!("dropped commits: {committed} had committed, {not} had not");
    check_log(&srv).await;
}

/// A job that fails inside the batch transaction (here: an operator's trigger refuses one
/// document's insert) is answered alone; the others of its batch commit; the batcher lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_job_does_not_poison_its_batch() {
    let srv = Arc::new(TestServer::sqlite().await);
    let alice = User::new("alice");
    let bob = User::new("bob");
    let ta = srv.enroll(&alice).await;
    srv.enroll(&bob).await;
    let poison = DocId::from_bytes([0xee; 16]);
    let pool = db(&srv).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TRIGGER poison BEFORE INSERT ON documents WHEN NEW.doc_id = '{poison}' \
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let mut handles = Vec::new();
    for round in 0..3u8 {
        for i in 0..30u8 {
            let doc = if i == 7 {
                poison
            } else {
                DocId::from_bytes([round, i, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
            };
            let v = if doc == poison {
                u32::from(round) + 1
            } else {
                1
            };
            let (blob, sealed) = seal_for(&alice, doc, v, &[&bob], &[i; 30]);
            let body = inline_body(doc, v, &blob, all_wraps(&sealed), json!(0));
            let (s2, t2) = (Arc::clone(&srv), ta.clone());
            handles.push(tokio::spawn(async move {
                (doc, s2.post("/v1/documents", Some(&t2), body).await)
            }));
        }
    }
    for h in handles {
        let (doc, (s, v)) = h.await.unwrap();
        if doc == poison {
            assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
        } else {
            assert_eq!(s, StatusCode::CREATED, "{doc}: {v}");
        }
    }
    check_log(&srv).await;
    // The batcher still runs.
    let doc = DocId::from_bytes([0x55; 16]);
    let (blob, sealed) = seal_for(&alice, doc, 1, &[&bob], b"after");
    let (s, v) = srv
        .post(
            "/v1/documents",
            Some(&ta),
            inline_body(doc, 1, &blob, all_wraps(&sealed), json!(0)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    check_log(&srv).await;
}

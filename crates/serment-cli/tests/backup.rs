//! `serment backup` and `serment verify-backup` through the real binary (issue 12 §1-§2,
//! docs/BACKUP.md): a backup of documents of every size class verifies; a deleted entry segment,
//! a flipped blob byte, a swapped manifest and a replayed older manifest each exit 4 and the
//! report names them; a backup older than a pinned checkpoint names the lost range; no
//! plaintext of the documents is in the backup.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

struct World {
    _tmp: tempfile::TempDir,
    lab: PathBuf,
    patient: PathBuf,
    data: PathBuf,
    root: PathBuf,
}

fn world() -> (World, ServerProc) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let data = root.join("data");
    let server = ServerProc::start(&data, &["--init"]);
    let w = World {
        lab: root.join("lab"),
        patient: root.join("patient"),
        data,
        root,
        _tmp: tmp,
    };
    ok(&w.lab, &["id", "new", "--name", "labo-test"]);
    ok(&w.patient, &["id", "new", "--name", "patient-x1"]);
    ok(&w.lab, &["register", "--server", &server.url]);
    ok(&w.patient, &["register", "--server", &server.url]);
    ok(&w.lab, &["contact", "add", "patient-x1"]);
    ok(&w.patient, &["contact", "add", "labo-test"]);
    (w, server)
}

/// A document whose content is `marker` repeated to `len` bytes; returns its id.
fn put(w: &World, marker: &str, len: usize) -> String {
    let f = w.root.join(format!("{marker}.txt"));
    let content: String = marker.chars().cycle().take(len).collect();
    std::fs::write(&f, content).unwrap();
    let v = ok(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-x1"]);
    v["doc_id"].as_str().unwrap().to_owned()
}

fn url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// `serment backup --once`; returns the log key it prints.
fn backup_once(w: &World, to: &Path) -> (String, serde_json::Value) {
    let v = ok(
        &w.root,
        &[
            "backup",
            "--once",
            "--to",
            &url(to),
            "--data-dir",
            w.data.to_str().unwrap(),
        ],
    );
    (v["log_key"].as_str().unwrap().to_owned(), v)
}

fn verify(home: &Path, from: &Path, log_key: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec![
        "verify-backup",
        "--from",
        &*Box::leak(url(from).into_boxed_str()),
    ];
    args.extend_from_slice(&["--log-key", log_key]);
    args.extend_from_slice(extra);
    run(home, &args)
}

/// Copies a backup (read-only files) into a writable directory an attacker alters.
fn copy_backup(from: &Path, to: &Path) {
    for f in files_under(from) {
        let rel = f.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, std::fs::read(&f).unwrap()).unwrap();
    }
}

fn problems(v: &serde_json::Value) -> Vec<String> {
    v["report"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no report: {v}"))
        .iter()
        .map(|p| format!("{} {}: {}", p["kind"], p["what"], p["detail"]))
        .collect()
}

fn first(dir: &Path, sub: &str) -> PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v.into_iter().next().unwrap()
}

#[test]
fn backup_verifies_and_each_alteration_is_named() {
    let (w, server) = world();
    // Every size class: inline (<= 256 KiB), uploaded blobs of several chunks.
    let docs = [
        put(&w, "SECRET-INLINE-PLAINTEXT-", 2_000),
        put(&w, "SECRET-UPLOADED-PLAINTEXT-", 300_000),
        put(&w, "SECRET-LARGER-PLAINTEXT-", 1_200_000),
    ];
    let good = w.root.join("backup");
    let (log_key, v) = backup_once(&w, &good);
    assert_eq!(v["increment"]["seq"], 0, "{v}");
    assert_eq!(v["increment"]["blobs"], 3, "{v}");
    // Nothing new: no increment.
    let (_, again) = backup_once(&w, &good);
    assert!(again["increment"].is_null(), "{again}");
    let (code, v) = verify(&w.root, &good, &log_key, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["report"]["blobs"], 3);
    let size1 = v["report"]["size"].as_u64().unwrap();
    assert!(size1 >= 3, "{v}");

    // No plaintext in the backup: every file scanned for the documents' markers.
    for f in files_under(&good) {
        let bytes = std::fs::read(&f).unwrap();
        for m in ["SECRET-INLINE", "SECRET-UPLOADED", "SECRET-LARGER"] {
            assert!(
                !bytes.windows(m.len()).any(|x| x == m.as_bytes()),
                "{m} in {}",
                f.display()
            );
        }
    }

    // A second increment; the first backup's copy stays older.
    let older = w.root.join("older");
    copy_backup(&good, &older);
    let d4 = put(&w, "SECRET-FOURTH-", 5_000);
    let (_, v) = backup_once(&w, &good);
    assert_eq!(v["increment"]["seq"], 1, "{v}");
    assert_eq!(v["increment"]["blobs"], 1, "{v}");
    let (code, v) = verify(&w.root, &good, &log_key, &[]);
    assert_eq!(code, 0, "{v}");
    let size2 = v["report"]["size"].as_u64().unwrap();
    assert!(size2 > size1);

    // The file target never rewrites: its files are read-only.
    let m0 = first(&good, "manifests");
    assert!(std::fs::metadata(&m0).unwrap().permissions().readonly());

    // 1. A deleted entry segment.
    let t = w.root.join("t1");
    copy_backup(&good, &t);
    let seg = first(&t, "entries");
    std::fs::remove_file(&seg).unwrap();
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["code"], "backup_invalid", "{v}");
    let p = problems(&v).join("\n");
    assert!(p.contains("\"entries 0.."), "{p}");

    // 2. A flipped blob byte.
    let t = w.root.join("t2");
    copy_backup(&good, &t);
    let blob = first(&t, "blobs");
    let mut b = std::fs::read(&blob).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&blob, b).unwrap();
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    let id = blob.file_name().unwrap().to_str().unwrap();
    let p = problems(&v).join("\n");
    assert!(p.contains("altered") && p.contains(id), "{p}");

    // 3. Swapped manifests.
    let t = w.root.join("t3");
    copy_backup(&good, &t);
    let (a, b) = (manifest(&t, 0), manifest(&t, 1));
    let (ab, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, bb).unwrap();
    std::fs::write(&b, ab).unwrap();
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    let p = problems(&v).join("\n");
    assert!(p.contains("manifest 0") && p.contains("manifest 1"), "{p}");

    // 4. A replayed older manifest, as the next increment.
    let t = w.root.join("t4");
    copy_backup(&good, &t);
    let m0 = std::fs::read(manifest(&t, 0)).unwrap();
    std::fs::write(
        t.join("manifests")
            .join(format!("{:020}-{}", 2, sha256_hex(&m0))),
        m0,
    )
    .unwrap();
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    let p = problems(&v).join("\n");
    assert!(p.contains("manifest 2") && p.contains("replayed"), "{p}");

    // 5. The older backup against the checkpoint a client saw later: the lost range is named.
    let newest_note = first_newest_note(&good);
    let note_file = w.root.join("pinned.note");
    std::fs::write(&note_file, newest_note).unwrap();
    let (code, v) = verify(
        &w.root,
        &older,
        &log_key,
        &["--checkpoint", note_file.to_str().unwrap()],
    );
    assert_eq!(code, 4, "{v}");
    let p = problems(&v).join("\n");
    assert!(
        p.contains(&format!("entries {size1}..{size2}")) && p.contains("lost"),
        "{p}"
    );
    // The full backup reaches it.
    let (code, v) = verify(
        &w.root,
        &good,
        &log_key,
        &["--checkpoint", note_file.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{v}");

    assert_eq!(v["report"]["anchored"], true, "{v}");

    // R2: the newest manifest deleted: without --checkpoint the rest is not called anchored,
    // with it the lost range is named; an empty target is lost.
    let t = w.root.join("t6");
    copy_backup(&good, &t);
    std::fs::remove_file(manifest(&t, 1)).unwrap();
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["report"]["anchored"], false, "{v}");
    let (code, v) = verify(
        &w.root,
        &t,
        &log_key,
        &["--checkpoint", note_file.to_str().unwrap()],
    );
    assert_eq!(code, 4, "{v}");
    assert!(problems(&v).join("\n").contains("lost"), "{v}");
    let empty = w.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, v) = verify(&w.root, &empty, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    let p = problems(&v).join("\n");
    assert!(p.contains("lost") && p.contains("no manifest"), "{p}");

    // Another log key: nothing verifies.
    let (code, _) = verify(
        &w.root,
        &good,
        "serment.log/0000000000000000+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &[],
    );
    assert!(code == 4 || code == 2, "{code}");
    let _ = (docs, d4);
    server.stop();
}

/// The file of manifest `seq` (`manifests/<seq>-<sha256>`).
fn manifest(dir: &Path, seq: u64) -> PathBuf {
    let prefix = format!("{seq:020}-");
    std::fs::read_dir(dir.join("manifests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&prefix)
        })
        .unwrap_or_else(|| panic!("no manifest {seq} in {}", dir.display()))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(serment_server::backup::format::sha256(b))
}

/// R10: objects under `manifests/` that anyone able to create objects in the target can write
/// (a name at `u64::MAX`, junk under a well-formed name, an object at the next increment's old
/// predictable name) neither stop `serment backup` nor make `verify-backup` loop: it answers at
/// once, names each of them once, and the next increment is still appended.
#[test]
fn junk_manifest_objects_stop_neither_backup_nor_verification() {
    let (w, server) = world();
    put(&w, "SECRET-JUNK-TEST-", 1_000);
    let t = w.root.join("backup");
    let (log_key, _) = backup_once(&w, &t);
    let dir = t.join("manifests");
    std::fs::write(dir.join(u64::MAX.to_string()), b"junk").unwrap();
    std::fs::write(
        dir.join(format!("{:020}-{}", u64::MAX, "ab".repeat(32))),
        b"junk",
    )
    .unwrap();
    let junk = b"serment-backup-manifest\nformat 1\n".to_vec();
    std::fs::write(dir.join(format!("{:020}-{}", 1, sha256_hex(&junk))), &junk).unwrap();
    std::fs::write(dir.join(format!("{:020}", 1)), b"squat").unwrap();

    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    let p = problems(&v);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(
        !p.iter().any(|x| x.contains("absent from the chain")),
        "{p:#?}"
    );

    // The next increment is appended regardless, and verifies (only the junk is named).
    put(&w, "SECRET-JUNK-TEST-2-", 1_000);
    let (_, v) = backup_once(&w, &t);
    assert_eq!(v["increment"]["seq"], 1, "{v}");
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["report"]["manifests"], 2, "{v}");
    assert_eq!(v["report"]["blobs"], 2, "{v}");
    assert_eq!(problems(&v).len(), 4, "{:#?}", problems(&v));
    server.stop();
}

fn first_newest_note(dir: &Path) -> Vec<u8> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    std::fs::read(v.last().unwrap()).unwrap()
}

/// Runs one SQL statement on a data directory's SQLite file (the live store, as an attacker with
/// the server's disk alters it).
fn sql(data: &Path, statement: &str) {
    let path = data.join("serment.db");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            use sqlx::ConnectOptions as _;
            let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .connect()
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(&mut c)
                .await
                .unwrap();
        });
}

/// R12: the live store altered *before* the backup copied it (two versions' `blob_id` swapped:
/// each blob hashes to its own name, so the manifest faithfully names the wrong bytes): only the
/// sealed-blob check (`check_sealed`: the header names the version, binds the logged wraps'
/// header hash, the author's signature) names it; and a witness quorum nobody cosigned is named.
#[test]
fn a_store_altered_before_backup_and_an_uncosigned_quorum_are_named() {
    let (w, server) = world();
    let a = put(&w, "SECRET-SWAP-A-", 2_000);
    let b = put(&w, "SECRET-SWAP-B-", 3_000);
    sql(
        &w.data,
        &format!(
            "UPDATE documents SET blob_id = CASE doc_id \
             WHEN '{a}' THEN (SELECT blob_id FROM documents WHERE doc_id = '{b}') \
             ELSE (SELECT blob_id FROM documents WHERE doc_id = '{a}') END \
             WHERE doc_id IN ('{a}', '{b}')"
        ),
    );
    let t = w.root.join("backup");
    let (log_key, _) = backup_once(&w, &t);
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    let p = problems(&v).join("\n");
    // The swap names at least one version (the other one's bytes may be the same object).
    assert!(
        [&a, &b]
            .iter()
            .any(|d| p.contains(&format!("document {d} version 1: its header names another"))),
        "{p}"
    );
    // A quorum of one witness that never cosigned (another log's key, as a witness's).
    let other = ServerProc::start(&w.root.join("other"), &["--init"]);
    let witness: serde_json::Value = ureq::get(&format!("{}/v1/log/key", other.url))
        .call()
        .unwrap()
        .into_body()
        .read_json()
        .unwrap();
    other.stop();
    let (code, v) = verify(
        &w.root,
        &t,
        &log_key,
        &[
            "--witness",
            witness["vkey"].as_str().unwrap(),
            "--quorum",
            "1",
        ],
    );
    assert_eq!(code, 4, "{v}");
    assert!(
        problems(&v).join("\n").contains("\"cosigned checkpoint\""),
        "{v}"
    );
    server.stop();
}

/// R12: `backup` of a store older than its target (the log shrank: an older copy of the data
/// directory brought back) is refused, naming both sizes; the target is left as it was.
#[test]
fn backing_up_a_store_older_than_its_backup_is_refused() {
    let (w, server) = world();
    put(&w, "SECRET-OLD-", 1_000);
    // An older copy of the data directory (the server idle: the database and its WAL agree).
    let old = w.root.join("data-old");
    for f in files_under(&w.data) {
        let dest = old.join(f.strip_prefix(&w.data).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
    put(&w, "SECRET-NEW-", 1_000);
    let t = w.root.join("backup");
    let (log_key, _) = backup_once(&w, &t);
    let (code, v) = run(
        &w.root,
        &[
            "backup",
            "--once",
            "--to",
            &url(&t),
            "--data-dir",
            old.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 4, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("older than its backup"),
        "{v}"
    );
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["report"]["manifests"], 1, "{v}");
    server.stop();
}

/// Review W1: the log's own verifier key given as a witness (as is, or re-typed as a
/// cosignature key) is refused before any work, by `verify-backup` and by `restore`: the
/// server holds that key, its "cosignatures" prove nothing.
#[test]
fn the_logs_own_key_is_refused_as_a_witness() {
    use serment_core::log::note::{KEY_TYPE_COSIGNATURE_V1, VerifierKey};
    let (w, server) = world();
    put(&w, "SECRET-W1-", 1_000);
    let t = w.root.join("backup");
    let (log_key, _) = backup_once(&w, &t);
    let mut retyped = VerifierKey::parse(&log_key).unwrap();
    retyped.key_type = KEY_TYPE_COSIGNATURE_V1;
    let retyped = retyped.encode();
    for k in [log_key.as_str(), retyped.as_str()] {
        let (code, v) = verify(&w.root, &t, &log_key, &["--witness", k, "--quorum", "1"]);
        assert_eq!(code, 2, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the log's own key"),
            "{v}"
        );
    }
    let key = w.data.join("log.key");
    let (code, v) = run(
        &w.root,
        &[
            "restore",
            "--from",
            &url(&t),
            "--data-dir",
            w.root.join("restored").to_str().unwrap(),
            "--log-key-file",
            key.to_str().unwrap(),
            "--witness",
            &retyped,
        ],
    );
    assert_eq!(code, 2, "{v}");
    assert!(!w.root.join("restored").exists());
    server.stop();
}

/// REVIEW5 U8: the bucket policy the README gives the backup's credentials denies every
/// `PutObject` that is not a conditional create: in a versioned bucket an unconditional one
/// shadows a locked object with a new current version, which is what Serment reads.
#[test]
fn the_documented_backup_policy_denies_unconditional_writes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let after = readme
        .split("**The backup's credentials may only create objects**")
        .nth(1)
        .expect("the README's backup policy section");
    let json = after
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the policy block");
    let policy: serde_json::Value = serde_json::from_str(json).expect("the policy is JSON");
    let statements = policy["Statement"].as_array().unwrap();
    let denies_unconditional_put = statements.iter().any(|s| {
        s["Effect"] == "Deny"
            && (s["Action"] == "s3:PutObject"
                || s["Action"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "s3:PutObject")))
            && s["Condition"]["Null"]["s3:if-none-match"] == "true"
    });
    assert!(denies_unconditional_put, "{json}");
    // And nothing that deletes or shortens retention is allowed.
    for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
        let actions = s["Action"].to_string();
        assert!(
            !actions.contains("Delete") && !actions.contains("Retention"),
            "{actions}"
        );
    }
}

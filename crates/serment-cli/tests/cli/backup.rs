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

use crate::common;

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
/// shadows a locked object with a new current version; and it lets the readers list versions
/// and read one by id (they read the oldest).
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
    // The readers read each object's oldest version (docs/BACKUP.md §4): listing versions and
    // reading one by id are allowed.
    let allowed: String = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| s["Action"].to_string())
        .collect();
    for action in ["s3:ListBucketVersions", "s3:GetObjectVersion"] {
        assert!(allowed.contains(&format!("\"{action}\"")), "{json}");
    }
    // And nothing that deletes or shortens retention is allowed.
    for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
        let actions = s["Action"].to_string();
        assert!(
            !actions.contains("Delete") && !actions.contains("Retention"),
            "{actions}"
        );
    }
}

/// [`run`] without `--json` (the text an operator reads): (exit code, stdout and stderr).
fn run_text(home: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .env("SERMENT_HOME", home)
        .env_remove("SERMENT_SERVER")
        .env_remove("SERMENT_LOG_KEY")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// [`backup_once`], failing the test if it has not finished within `secs` (a FIFO under an
/// object's name must not block it for ever: REVIEW5 U6).
fn backup_once_within(w: &World, to: &Path, secs: u64) -> serde_json::Value {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(bin())
        .args(["--json", "backup", "--once", "--to", &url(to), "--data-dir"])
        .arg(&w.data)
        .env("SERMENT_HOME", &w.root)
        .env_remove("SERMENT_SERVER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serment backup --once did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `serment restore` of `from` into a new directory under the world's root with the server's
/// own log key.
fn restore_from(w: &World, from: &Path, name: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let (f, to, key) = (
        url(from),
        w.root.join(name),
        w.data.join("log.key").display().to_string(),
    );
    let mut args = vec![
        "restore",
        "--from",
        f.as_str(),
        "--data-dir",
        to.to_str().unwrap(),
        "--log-key-file",
        key.as_str(),
    ];
    args.extend_from_slice(extra);
    run(&w.root, &args)
}

/// REVIEW5 U6: every name the next entry segment can have (`entries/<N>-<e>`, predictable from
/// the public checkpoint's size) taken with junk by someone able to write the target does not
/// block the next increment: it is written under `<name>.1`, its manifest names that key,
/// `verify-backup` names the taken name once (kind `junk`), and `restore` takes the backup.
#[test]
fn a_pre_created_segment_name_does_not_block_the_next_increment() {
    let (w, server) = world();
    put(&w, "SEGMENT-SQUAT-", 1_000);
    let t = w.root.join("backup");
    let (log_key, v) = backup_once(&w, &t);
    let n = v["increment"]["size"].as_u64().unwrap();
    for e in n + 1..=n + 64 {
        std::fs::write(t.join(format!("entries/{n:020}-{e:020}")), b"x").unwrap();
    }
    put(&w, "SEGMENT-SQUAT-2-", 1_000);
    let v = backup_once_within(&w, &t, 120);
    assert_eq!(v["increment"]["seq"], 1, "{v}");
    let m = v["increment"]["size"].as_u64().unwrap();
    assert!(m > n && m <= n + 64, "{v}");
    let own = format!("entries/{n:020}-{m:020}");
    assert!(t.join(format!("{own}.1")).is_file());
    assert_eq!(std::fs::read(t.join(&own)).unwrap(), b"x");
    let manifest1 = std::fs::read_to_string(manifest(&t, 1)).unwrap();
    assert!(manifest1.contains(&format!(" {own}.1 ")), "{manifest1}");

    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["report"]["size"], m, "{v}");
    assert_eq!(v["report"]["blobs"], 2, "{v}");
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with(&format!("\"junk\" \"{own}\": ")) && p[0].contains(&format!("{own}.1")),
        "{p:#?}"
    );
    let (code, v) = restore_from(&w, &t, "restored", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["restored"]["size"], m, "{v}");
    assert_eq!(v["restored"]["versions"], 2, "{v}");
    server.stop();
}

/// REVIEW5 U6: a blob's name is its id, which any user knows before the backup copies it. Its
/// own name taken with other bytes of the same length, the next one by a FIFO (which must not
/// block the backup: opened without blocking, refused as no regular file) and the next by a
/// symlink to the blob itself (no regular file either): the blob is written under `<id>.3`, the
/// three names are named as junk, and `restore` brings the document back.
#[test]
fn a_pre_created_blob_name_a_fifo_and_a_symlink_do_not_block_the_next_increment() {
    let (w, server) = world();
    put(&w, "BLOB-SQUAT-", 1_000);
    let t = w.root.join("backup");
    let (log_key, _) = backup_once(&w, &t);
    let blobs = |dir: &Path| -> Vec<PathBuf> {
        files_under(dir)
            .into_iter()
            .filter(|f| f.file_name().unwrap().len() == 64)
            .collect()
    };
    let before = blobs(&w.data.join("blobs"));
    put(&w, "BLOB-SQUAT-2-", 300_000);
    let new: Vec<PathBuf> = blobs(&w.data.join("blobs"))
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let id = new[0].file_name().unwrap().to_str().unwrap().to_owned();
    let bytes = std::fs::read(&new[0]).unwrap();
    let own = format!("blobs/{id}");
    std::fs::write(t.join(&own), vec![0u8; bytes.len()]).unwrap();
    let fifo = t.join(format!("{own}.1"));
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink(&new[0], t.join(format!("{own}.2"))).unwrap();

    let v = backup_once_within(&w, &t, 120);
    assert_eq!(v["increment"]["seq"], 1, "{v}");
    assert_eq!(v["increment"]["blobs"], 1, "{v}");
    assert_eq!(std::fs::read(t.join(format!("{own}.3"))).unwrap(), bytes);
    let manifest1 = std::fs::read_to_string(manifest(&t, 1)).unwrap();
    assert!(manifest1.contains(&format!(" {own}.3 ")), "{manifest1}");

    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["report"]["blobs"], 2, "{v}");
    let p = problems(&v);
    assert_eq!(p.len(), 3, "{p:#?}");
    for (i, name) in [own.clone(), format!("{own}.1"), format!("{own}.2")]
        .iter()
        .enumerate()
    {
        assert!(
            p[i].starts_with(&format!("\"junk\" \"{name}\": ")),
            "{p:#?}"
        );
    }
    let (code, v) = restore_from(&w, &t, "restored", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["restored"]["versions"], 2, "{v}");
    server.stop();
}

/// The verifier key of a log of another key (seed `[7; 32]`), its origin and key id.
fn other_log() -> (String, String, u32) {
    use serment_core::log::note::{KEY_TYPE_ED25519, NoteSigner};
    let seed = [7u8; 32];
    let pk = NoteSigner::new("x.test", KEY_TYPE_ED25519, &seed)
        .unwrap()
        .verifier()
        .public_key;
    let origin = format!("serment.log/{}", &sha256_hex(&pk)[..16]);
    let v = NoteSigner::new(&origin, KEY_TYPE_ED25519, &seed)
        .unwrap()
        .verifier();
    (v.encode(), origin, v.id())
}

/// The newcomer's N13 and N16: `verify-backup` without witness keys says cosignatures were not
/// checked (not "cosigned up to"); with another log's key, `verify-backup` and `restore` say the
/// backup is not signed by this log key and name both logs and key ids, not ALTERED or LOST.
#[test]
fn verify_backup_says_what_it_did_not_check_and_names_a_wrong_log_key() {
    let (w, server) = world();
    put(&w, "MESSAGES-", 1_000);
    let t = w.root.join("backup");
    let (log_key, _) = backup_once(&w, &t);
    let (code, text) = run_text(
        &w.root,
        &["verify-backup", "--from", &url(&t), "--log-key", &log_key],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("(no witness keys given: cosignatures not checked)"),
        "{text}"
    );
    assert!(!text.contains("cosigned up to"), "{text}");
    let (code, v) = verify(&w.root, &t, &log_key, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["report"]["cosignatures_checked"], false, "{v}");

    let ours = serment_core::log::note::VerifierKey::parse(&log_key).unwrap();
    let (other, other_origin, other_id) = other_log();
    let (code, v) = verify(&w.root, &t, &other, &[]);
    assert_eq!(code, 4, "{v}");
    let p = &v["report"]["problems"];
    assert_eq!(p.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(p[0]["kind"], "wrong_key", "{v}");
    let detail = p[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "for the log {} (key id {:08x})",
            ours.name,
            ours.id()
        )) && detail.contains(&format!(
            "is for the log {other_origin} (key id {other_id:08x})"
        )) && detail.contains("not signed by this log key"),
        "{detail}"
    );
    let (code, text) = run_text(
        &w.root,
        &["verify-backup", "--from", &url(&t), "--log-key", &other],
    );
    assert_eq!(code, 4, "{text}");
    assert!(
        !text.contains("ALTERED") && !text.contains("LOST") && !text.contains("JUNK"),
        "{text}"
    );

    let wrong = w.root.join("wrong.key");
    std::fs::write(&wrong, hex::encode([7u8; 32])).unwrap();
    let restored = w.root.join("restored");
    let (code, v) = run(
        &w.root,
        &[
            "restore",
            "--from",
            &url(&t),
            "--data-dir",
            restored.to_str().unwrap(),
            "--log-key-file",
            wrong.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 4, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not signed by this log key"),
        "{v}"
    );
    let kinds: Vec<&str> = v["report"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["wrong_key"], "{v}");
    assert!(!restored.exists());
    server.stop();
}

/// The newcomer's N11: `restore --checkpoint NOTE --accept-loss` of a backup older than the
/// note says the restored log is behind the note given, never "give --checkpoint".
#[test]
fn a_restore_behind_the_pinned_checkpoint_says_so_rather_than_asking_for_one() {
    let (w, server) = world();
    put(&w, "PINNED-", 1_000);
    let t = w.root.join("backup");
    backup_once(&w, &t);
    put(&w, "PINNED-2-", 1_000);
    let newer = w.root.join("newer");
    backup_once(&w, &newer);
    let pinned = w.root.join("pinned.note");
    std::fs::write(&pinned, first_newest_note(&newer)).unwrap();
    let restored = w.root.join("restored");
    let key = w.data.join("log.key");
    let (code, text) = run_text(
        &w.root,
        &[
            "restore",
            "--from",
            &url(&t),
            "--data-dir",
            restored.to_str().unwrap(),
            "--log-key-file",
            key.to_str().unwrap(),
            "--checkpoint",
            pinned.to_str().unwrap(),
            "--accept-loss",
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("LOST (accepted)"), "{text}");
    assert!(
        text.contains("BEHIND THE PINNED CHECKPOINT: the note given with --checkpoint is newer"),
        "{text}"
    );
    assert!(
        !text.contains("UNANCHORED") && !text.contains("give --checkpoint"),
        "{text}"
    );
    server.stop();
}

/// REVIEW5 U6 on S3 (moto, `source .ci/s3.sh`; skipped without it, fails without it in CI):
/// anyone with the bucket's `s3:PutObject` takes every key the next entry segment can have; the
/// backup's conditional create is refused on each, it writes under `<key>.1`, and
/// `verify-backup` names the taken key once.
#[test]
fn a_pre_created_segment_key_in_a_bucket_does_not_block_the_next_increment() {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but AWS_ENDPOINT_URL is not set"
        );
        eprintln!("SKIP: no S3 test server (`source .ci/s3.sh` starts moto on loopback)");
        return;
    };
    // moto reads the access key from the SigV4 header but does not check the signature.
    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=serment-ci/20261206/us-east-1/s3/aws4_request, \
                        SignedHeaders=host, Signature=00";
    let bucket = format!("serment-squat-{}", std::process::id());
    ureq::put(&format!("{endpoint}/{bucket}"))
        .header("authorization", AUTH)
        .send_empty()
        .expect("create the bucket");
    let (w, server) = world();
    put(&w, "S3-SQUAT-", 1_000);
    let to = format!("s3://{bucket}/p");
    let once = |w: &World| {
        ok(
            &w.root,
            &[
                "backup",
                "--once",
                "--to",
                &to,
                "--data-dir",
                w.data.to_str().unwrap(),
            ],
        )
    };
    let v = once(&w);
    let log_key = v["log_key"].as_str().unwrap().to_owned();
    let n = v["increment"]["size"].as_u64().unwrap();
    for e in n + 1..=n + 32 {
        ureq::put(&format!("{endpoint}/{bucket}/p/entries/{n:020}-{e:020}"))
            .header("authorization", AUTH)
            .send(&b"x"[..])
            .expect("the attacker's PutObject");
    }
    put(&w, "S3-SQUAT-2-", 1_000);
    let v = once(&w);
    assert_eq!(v["increment"]["seq"], 1, "{v}");
    let m = v["increment"]["size"].as_u64().unwrap();
    assert!(m > n && m <= n + 32, "{v}");
    let (code, v) = run(
        &w.root,
        &["verify-backup", "--from", &to, "--log-key", &log_key],
    );
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["report"]["size"], m, "{v}");
    let p = problems(&v);
    let own = format!("entries/{n:020}-{m:020}");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].starts_with(&format!("\"junk\" \"{own}\": ")) && p[0].contains(&format!("{own}.1")),
        "{p:#?}"
    );
    server.stop();
}

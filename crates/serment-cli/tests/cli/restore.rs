//! `serment restore` through the real binary (issue 12 §2, docs/BACKUP.md §7): after the
//! server's data directory is overwritten with random bytes, a restore from the backup brings up
//! a server on which every acknowledged document reads and verifies, clients' pinned checkpoints
//! raise no alarm and `verify-log` passes, while an erased document stays erased; a backup older
//! than a checkpoint a client saw is refused without `--accept-loss`, and with it the lost range
//! is named and the client that saw the tail reports LOG ROLLBACK; a backup that does not verify
//! or a destination that is not empty leave nothing behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::Path;

use common::drill::{
    self, backup_once, free_port, get_doc as get, lab_and_patient, ransack, restore, url,
};
use common::*;

/// A server on a fixed port (common::drill), `--init` for a new one.
fn serve_on(data: &Path, port: u16, init: bool) -> ServerProc {
    serve_on_with(data, port, init, &[])
}

/// [`serve_on`] with more `serve` arguments.
fn serve_on_with(data: &Path, port: u16, init: bool, extra: &[&str]) -> ServerProc {
    let mut args = if init { vec!["--init"] } else { Vec::new() };
    args.extend_from_slice(extra);
    drill::serve_on(data, port, &args)
}

fn put(home: &Path, root: &Path, marker: &str, len: usize) -> (String, Vec<u8>) {
    drill::put_to(home, root, marker, len, "patient-r1")
}

/// The newest checkpoint note of a backup (what the server served when it was taken).
fn newest_note(dir: &Path) -> Vec<u8> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    std::fs::read(v.last().unwrap()).unwrap()
}

#[test]
fn restore_after_ransomware_brings_back_every_document_and_refuses_a_silent_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = serve_on(&data, port, true);
    let (lab, patient) = lab_and_patient(root, &server.url, "labo-r1", "patient-r1");
    // Every size class: inline, uploaded, several chunks.
    let docs = [
        put(&lab, root, "INLINE-", 2_000),
        put(&lab, root, "UPLOADED-", 300_000),
        put(&lab, root, "LARGER-", 1_200_000),
    ];
    let (erased, _) = put(&lab, root, "ERASED-", 3_000);
    ok(
        &lab,
        &["erase", &erased, "--reason", "sent-in-error", "--yes"],
    );
    // The patient reads one (an access entry) and pins the checkpoint.
    let (code, v, got) = get(&patient, root, &docs[0].0);
    assert_eq!(code, 0, "{v}");
    assert_eq!(got.as_deref(), Some(&docs[0].1[..]));
    let good = root.join("backup");
    let b = backup_once(root, &data, &good);
    let log_vkey = b["log_key"].as_str().unwrap().to_owned();
    // The operator keeps log.key apart from the backup.
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();
    server.stop();

    // Ransomware: every file of the data directory overwritten with random bytes.
    ransack(&data);

    // Refused: a destination that is not empty; no log key.
    let (code, v) = restore(root, &good, &data, &key, &[]);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not empty"),
        "{v}"
    );
    let restored = root.join("restored");
    let (code, v) = run(
        root,
        &[
            "restore",
            "--from",
            &url(&good),
            "--data-dir",
            restored.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{v}");
    assert!(!restored.exists());

    // A backup that does not verify (one blob byte flipped): exit 4, nothing left behind.
    let bad = root.join("bad");
    for f in files_under(&good) {
        let dest = bad.join(f.strip_prefix(&good).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, std::fs::read(&f).unwrap()).unwrap();
    }
    let blob = files_under(&bad.join("blobs")).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let (code, v) = restore(root, &bad, &restored, &key, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["code"], "backup_invalid", "{v}");
    assert!(!restored.exists());
    assert!(
        std::fs::read_dir(root).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("restoring")),
        "a staging directory was left behind"
    );

    // The restore: verified, derived, erased document left out.
    let (code, v) = restore(root, &good, &restored, &key, &[]);
    assert_eq!(code, 0, "{v}");
    let r = &v["restored"];
    assert_eq!(r["versions"], 3, "{v}");
    assert_eq!(r["erased"], 1, "{v}");
    assert!(r["lost"].is_null(), "{v}");
    let size1 = r["size"].as_u64().unwrap();
    let mode = std::fs::metadata(restored.join("log.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // `serve` on it: every document reads and verifies, the pinned checkpoint raises nothing,
    // the log verifies, the erased document does not come back.
    let server = serve_on(&restored, port, false);
    for (doc, content) in &docs {
        let (code, v, got) = get(&patient, root, doc);
        assert_eq!(code, 0, "{v}");
        assert_eq!(got.as_deref(), Some(&content[..]), "{doc}");
    }
    let (code, v, got) = get(&patient, root, &erased);
    assert_ne!(code, 0, "{v}");
    assert!(got.is_none());
    let v = ok(&patient, &["verify-log", "--server", &server.url]);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["report"]["kinds"]["erasure"], 1, "{v}");

    // Round 2: the restored server takes more writes the patient sees, then is lost again
    // before any backup of them: the backup is older than the checkpoint the patient pinned.
    let (late, _) = put(&lab, root, "LATE-", 1_000);
    let (code, v, _) = get(&patient, root, &late);
    assert_eq!(code, 0, "{v}");
    let newer = root.join("newer-backup");
    backup_once(root, &restored, &newer);
    let pinned = root.join("pinned.note");
    std::fs::write(&pinned, newest_note(&newer)).unwrap();
    let size2 = {
        let text = std::fs::read_to_string(&pinned).unwrap();
        text.lines().nth(1).unwrap().parse::<u64>().unwrap()
    };
    assert!(size2 > size1);
    server.stop();

    let again = root.join("restored-again");
    let note = pinned.to_str().unwrap();
    // verify-backup names the missing range.
    let (code, v) = run(
        root,
        &[
            "verify-backup",
            "--from",
            &url(&good),
            "--log-key",
            &log_vkey,
            "--checkpoint",
            note,
        ],
    );
    assert_eq!(code, 4, "{v}");
    assert!(
        v.to_string().contains(&format!("entries {size1}..{size2}")),
        "{v}"
    );
    // restore refuses without --accept-loss, naming it.
    let (code, v) = restore(root, &good, &again, &key, &["--checkpoint", note]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["report"]["lost"]["from"], size1, "{v}");
    assert_eq!(v["report"]["lost"]["to"], size2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{size1}..{size2}")),
        "{v}"
    );
    assert!(!again.exists());
    // With it: restored, the loss named; the patient who saw the tail reports LOG ROLLBACK.
    let (code, v) = restore(
        root,
        &good,
        &again,
        &key,
        &["--checkpoint", note, "--accept-loss"],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["restored"]["lost"]["from"], size1, "{v}");
    assert_eq!(v["restored"]["lost"]["to"], size2, "{v}");
    let server = serve_on(&again, port, false);
    let (code, v, _) = get(&patient, root, &docs[1].0);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["code"], "log_rollback", "{v}");
    // The lab, which never pinned past the backup... also saw the tail (it wrote it).
    server.stop();
}

/// Review S9 and S7: one blob missing from the backup's newest increment (what an operator with
/// the server deletes before the strike) refuses the restore but names `restorable_until`, the
/// newest checkpoint whose prefix verifies; `--until` it needs `--accept-loss`, then restores
/// every older document, names the range lost and the problem left out; and the author's
/// erasure logged in that lost range still erases (the document does not come back).
#[test]
fn a_bad_tail_restores_until_the_last_good_checkpoint_and_its_erasures_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = serve_on(&data, port, true);
    let (lab, _patient) = lab_and_patient(root, &server.url, "labo-r1", "patient-r1");
    let old = put(&lab, root, "OLD-", 2_000);
    let (erased, _) = put(&lab, root, "ERASED-LATER-", 3_000);
    let good = root.join("backup");
    let b = backup_once(root, &data, &good);
    let size1 = b["increment"]["size"].as_u64().unwrap();
    let blobs_before: std::collections::BTreeSet<_> =
        files_under(&good.join("blobs")).into_iter().collect();
    // The tail: a new document and the author's erasure of an older one.
    let (fresh, _) = put(&lab, root, "FRESH-", 4_000);
    ok(
        &lab,
        &["erase", &erased, "--reason", "sent-in-error", "--yes"],
    );
    let b = backup_once(root, &data, &good);
    let size2 = b["increment"]["size"].as_u64().unwrap();
    assert!(size2 > size1, "{b}");
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();
    server.stop();

    // The tail's blob deleted from (a copy of) the backup.
    let bad = root.join("bad");
    for f in files_under(&good) {
        let dest = bad.join(f.strip_prefix(&good).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(&dest, std::fs::read(&f).unwrap()).unwrap();
    }
    let new_blobs: Vec<_> = files_under(&good.join("blobs"))
        .into_iter()
        .filter(|f| !blobs_before.contains(f))
        .collect();
    assert_eq!(new_blobs.len(), 1, "{new_blobs:?}");
    std::fs::remove_file(bad.join(new_blobs[0].strip_prefix(&good).unwrap())).unwrap();

    let restored = root.join("restored");
    let (code, v) = restore(root, &bad, &restored, &key, &["--accept-loss"]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["report"]["restorable_until"], size1, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("--until {size1}")),
        "{v}"
    );
    assert!(!restored.exists());
    // --until a size that is no checkpoint: exit 2.
    let (code, v) = restore(root, &bad, &restored, &key, &["--until", "1"]);
    assert_eq!(code, 2, "{v}");
    // --until without --accept-loss: the loss is named and refused.
    let s1 = size1.to_string();
    let (code, v) = restore(root, &bad, &restored, &key, &["--until", &s1]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["report"]["lost"]["from"], size1, "{v}");
    assert_eq!(v["report"]["lost"]["to"], size2, "{v}");
    assert!(!restored.exists());
    let (code, v) = restore(
        root,
        &bad,
        &restored,
        &key,
        &["--until", &s1, "--accept-loss"],
    );
    assert_eq!(code, 0, "{v}");
    let r = &v["restored"];
    assert_eq!(r["size"], size1, "{v}");
    assert_eq!(r["until"], size1, "{v}");
    assert_eq!(r["lost"]["from"], size1, "{v}");
    assert_eq!(r["lost"]["to"], size2, "{v}");
    assert!(
        r["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "missing" && p["what"].as_str().unwrap().contains(&fresh)),
        "{v}"
    );
    assert_eq!(r["erased_after"], serde_json::json!([erased]), "{v}");
    assert_eq!(r["versions"], 1, "{v}");

    // The restored store holds the old document only: the erased one does not come back, the
    // fresh one (its blob missing) is lost with the tail.
    assert_eq!(doc_ids(&restored), vec![old.0.clone()]);
}

/// Issue 12 §3 on PostgreSQL: the server's database is dropped (its schema, `CASCADE`) and its
/// data directory ransacked; `restore --database-url` into a fresh database brings back every
/// acknowledged document (reads and verifies), the patient's pinned checkpoint raises nothing,
/// `verify-log` passes, the erased document stays erased; a restore into a database that is not
/// empty is refused (exit 2). Skips without `SERMENT_TEST_DATABASE_URL` unless `CI=true`.
#[test]
fn the_drill_on_postgresql_restores_into_a_fresh_database_after_it_is_dropped() {
    let Some(pg) = drill::pg_url("the PostgreSQL drill") else {
        return;
    };
    let (schema, db) = drill::fresh_schema(&pg, "serment_drill");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = serve_on_with(&data, port, true, &["--database-url", &db]);
    let (lab, patient) = lab_and_patient(root, &server.url, "labo-r1", "patient-r1");
    let docs = [
        put(&lab, root, "PG-INLINE-", 2_000),
        put(&lab, root, "PG-UPLOADED-", 300_000),
    ];
    let (erased, _) = put(&lab, root, "PG-ERASED-", 3_000);
    ok(
        &lab,
        &["erase", &erased, "--reason", "sent-in-error", "--yes"],
    );
    let (code, v, _) = get(&patient, root, &docs[1].0);
    assert_eq!(code, 0, "{v}");
    let good = root.join("backup");
    let d = data.to_str().unwrap();
    ok(
        root,
        &[
            "backup",
            "--once",
            "--to",
            &url(&good),
            "--data-dir",
            d,
            "--database-url",
            &db,
        ],
    );
    let pinned = root.join("pinned.note");
    std::fs::write(&pinned, newest_note(&good)).unwrap();
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();

    // The attacker drops the database and ransacks the data directory (the blobs).
    pg_exec_drop(&pg, &schema);
    ransack(&data);
    server.stop();

    let (schema2, db2) = drill::fresh_schema(&pg, "serment_drill");
    let restored = root.join("restored");
    let note = pinned.to_str().unwrap();
    let args = ["--database-url", db2.as_str(), "--checkpoint", note];
    let (code, v) = restore(root, &good, &restored, &key, &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["restored"]["versions"], 2, "{v}");
    assert_eq!(v["restored"]["erased"], 1, "{v}");
    assert_eq!(v["restored"]["anchored"], true, "{v}");
    // The same database again (a fresh data directory): not empty, refused.
    let (code, v) = restore(root, &good, &root.join("other"), &key, &args);
    assert_eq!(code, 2, "{v}");

    let server = serve_on_with(&restored, port, false, &["--database-url", &db2]);
    for (doc, content) in &docs {
        let (code, v, got) = get(&patient, root, doc);
        assert_eq!(code, 0, "{v}");
        assert_eq!(got.as_deref(), Some(&content[..]), "{doc}");
    }
    let (code, v, got) = get(&patient, root, &erased);
    assert_ne!(code, 0, "{v}");
    assert!(got.is_none());
    for home in [&lab, &patient] {
        let v = ok(home, &["verify-log", "--server", &server.url]);
        assert_eq!(v["verified"], true, "{v}");
    }
    server.stop();
    pg_exec_drop(&pg, &schema2);
}

fn pg_exec_drop(pg: &str, schema: &str) {
    drill::pg_exec(pg, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// Review S3: a document sealed to a patient who has not registered yet (a provisional
/// recipient) and a user's recovery code survive a restore: their rows (not in the log) are in
/// the backup as log-key-signed objects, the restored server lets the patient claim with the
/// receipt's code and the emailed one-time code and read, and lets the user recover with the
/// code. Needs the SMTP server (`.ci/smtp.sh`): skips without it unless `CI=true`.
#[test]
fn provisional_recipients_and_recovery_codes_survive_a_restore() {
    let Some((smtp_url, maildir)) = smtp() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let mail = [
        "--smtp-url",
        smtp_url.as_str(),
        "--smtp-from",
        "results@lab.example",
    ];
    let server = serve_on_with(&data, port, true, &mail);
    let (lab, user) = (root.join("lab"), root.join("user"));
    ok(&lab, &["id", "new", "--name", "labo-s3", "--kdf", "floor"]);
    ok(&lab, &["register", "--server", &server.url]);
    ok(&user, &["id", "new", "--name", "user-s3", "--kdf", "floor"]);
    ok(&user, &["register", "--server", &server.url]);
    let code = recovery_code(&user);
    let mut rnd = [0u8; 6];
    getrandom::fill(&mut rnd).unwrap();
    let email = format!("s3.{}@patients.example", hex::encode(rnd));
    let contact = format!("email:{email}");
    let report = root.join("result.txt");
    std::fs::write(&report, b"Creatinine 80 umol/L (before the strike)").unwrap();
    let p = ok(
        &lab,
        &[
            "put",
            report.to_str().unwrap(),
            "--to-unregistered",
            &contact,
        ],
    );
    let claim_code = p["unregistered"]["claim_code"].as_str().unwrap().to_owned();
    let doc = p["doc_id"].as_str().unwrap().to_owned();
    let good = root.join("backup");
    let b = backup_once(root, &data, &good);
    assert_eq!(b["increment"]["side_rows"], 2, "{b}");
    // Nothing new: a second pass writes nothing (the rows are content-addressed).
    let again = backup_once(root, &data, &good);
    assert!(again["increment"].is_null(), "{again}");
    // Review T10: whoever reads the bucket finds neither the patient's address, nor the server
    // share `S`, nor the claim lookup (the side objects are sealed under the log key).
    let row = sql(
        &data,
        "SELECT email || ' ' || hex(server_share) || ' ' || lookup FROM provisionals",
    );
    let fields: Vec<&str> = row[0].split(' ').collect();
    let share = hex::decode(fields[1]).unwrap();
    assert_eq!(fields[0], email);
    assert!(share.len() >= 16, "{row:?}");
    for f in files_under(&good) {
        let bytes = std::fs::read(&f).unwrap();
        for (what, secret) in [
            ("email", email.as_bytes()),
            ("S", share.as_slice()),
            ("lookup", fields[2].as_bytes()),
        ] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{what} in clear in {}",
                f.display()
            );
        }
    }
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();
    server.stop();
    std::fs::remove_dir_all(&data).unwrap();

    let (c, v) = restore(root, &good, &data, &key, &[]);
    assert_eq!(c, 0, "{v}");
    let r = &v["restored"];
    assert_eq!(r["provisionals"], 1, "{v}");
    assert_eq!(r["provisional_wraps"], 1, "{v}");
    assert_eq!(r["escrows"], 1, "{v}");
    assert_eq!(r["unclaimable"], serde_json::json!([]), "{v}");
    assert_eq!(r["escrows_lost"], serde_json::json!([]), "{v}");

    let server = serve_on_with(&data, port, false, &mail);
    // The patient registers on the restored server and claims.
    let patient = root.join("patient");
    ok(
        &patient,
        &["id", "new", "--name", "ana-s3", "--kdf", "floor"],
    );
    ok(&patient, &["register", "--server", &server.url]);
    let sent = ok(&patient, &["claim", "--code", &claim_code]);
    assert_eq!(sent["otp_sent"], true, "{sent}");
    let otp = otp_from_maildir(&maildir, &email, &mut std::collections::HashSet::new());
    let claimed = ok(&patient, &["claim", "--code", &claim_code, "--otp", &otp]);
    assert_eq!(claimed["newly_claimed"], true, "{claimed}");
    ok(&patient, &["contact", "add", "labo-s3"]);
    let out = root.join("result.out");
    ok(&patient, &["get", &doc, "-o", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"Creatinine 80 umol/L (before the strike)"
    );
    // The user lost their machine: the recovery code made before the backup still works.
    let fresh = root.join("user-again");
    let (c, v, _) = run_code(
        &fresh,
        &[
            "recover",
            "--code",
            &code,
            "--handle",
            "user-s3",
            "--server",
            &server.url,
            "--kdf",
            "floor",
        ],
    );
    assert_eq!(c, 0, "recover on the restored server: {v}");
    server.stop();
}

/// Review T11: a user's social recovery contacts (escrow and share wraps: server rows, not in
/// the log) survive a restore: after it, a new machine asks, both contacts approve and the
/// recovery completes. Before T11 the restored server had no contacts set (409 on the request).
#[test]
fn a_social_recovery_set_survives_a_restore_and_a_recovery_completes_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = serve_on(&data, port, true);
    let homes: Vec<_> = ["user-t11", "gp-t11", "labo-t11"]
        .iter()
        .map(|name| {
            let home = root.join(name);
            ok(&home, &["id", "new", "--name", name, "--kdf", "floor"]);
            ok(&home, &["register", "--server", &server.url]);
            home
        })
        .collect();
    let (user, gp, lab) = (&homes[0], &homes[1], &homes[2]);
    for (home, other) in [
        (user, "gp-t11"),
        (user, "labo-t11"),
        (gp, "user-t11"),
        (lab, "user-t11"),
    ] {
        ok(home, &["contact", "add", other]);
    }
    ok(
        user,
        &[
            "id",
            "recovery-contacts",
            "add",
            "gp-t11",
            "labo-t11",
            "--threshold",
            "2",
            "--waiting-period",
            "24h",
        ],
    );
    let good = root.join("backup");
    let b = backup_once(root, &data, &good);
    assert_eq!(b["increment"]["side_rows"], 1, "{b}");
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();
    server.stop();
    ransack(&data);
    std::fs::remove_dir_all(&data).unwrap();

    let (c, v) = restore(root, &good, &data, &key, &[]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["restored"]["social"], 1, "{v}");
    assert_eq!(v["restored"]["social_lost"], serde_json::json!([]), "{v}");

    let server = serve_on(&data, port, false);
    let fresh = root.join("user-again");
    let asked = ok(
        &fresh,
        &[
            "recover",
            "--social",
            "--handle",
            "user-t11",
            "--server",
            &server.url,
            "--kdf",
            "floor",
        ],
    );
    let id = asked["request_id"].as_str().unwrap().to_owned();
    for who in [gp, lab] {
        ok(
            who,
            &[
                "recovery",
                "approve",
                "--handle",
                "user-t11",
                "--request",
                &id,
            ],
        );
    }
    // The protocol's 24 h floor on the wait (REVIEW4 T8): both clocks moved past it.
    complete_social_after_the_wait(
        &data,
        &fresh,
        &["recover", "--social", "--complete", "--kdf", "floor"],
    );
    server.stop();
}

/// The document ids of a restored data directory's SQLite store.
fn doc_ids(data: &Path) -> Vec<String> {
    let path = data.join("serment.db");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            use sqlx::ConnectOptions as _;
            let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .read_only(true)
                .connect()
                .await
                .unwrap();
            sqlx::query_scalar::<_, String>("SELECT DISTINCT doc_id FROM documents ORDER BY doc_id")
                .fetch_all(&mut c)
                .await
                .unwrap()
        })
}

//! What a restore that lost the log's tail tells each user (PROTOCOL.md §11.11, newcomer 6 N2,
//! N5, N11), through the real binary.
//!
//! After the newest backed-up increment, the lab seals two documents: the patient opens (and
//! syncs offline) the first, and only sees the second in a listing. The server is restored.
//!
//! - N2: the lab's review names both documents as **its own** to send again (from the log index
//!   of each commit, proven when it was made, not from what the restored server says), although
//!   it never opened either; the patient's names both (one opened, one only listed).
//! - N11: after the acceptance, `get` of a lost document names the statement and whom to ask,
//!   not a bare 404.
//! - N12: the restored `serve` says at start that it serves a loss statement, with its id.
//! - N5: the patient's offline replica keeps the lost document from the old log but marks it
//!   lost (`sync`, `ls --offline`, `get --offline`): never shown as verified under the restored
//!   checkpoint; `audit` says it was lost in the restore, not hidden.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::Path;

use common::drill::{self, backup_once, free_port, get_doc as get, lab_and_patient, restore};
use common::*;

fn put(home: &Path, root: &Path, marker: &str) -> String {
    drill::put_to(home, root, marker, 2_000, "patient-lr").0
}

/// `serment --json serve` on `127.0.0.1:port`: the server, its JSON startup line, and the
/// startup lines of its standard error (those before the JSON line).
fn serve_json(data: &Path, port: u16, extra: &[&str]) -> (ServerProc, serde_json::Value, String) {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(bin())
        .args(["--json", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("SERMENT_LOG_KEY")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines() {
            let _ = tx.send(l.unwrap_or_default());
        }
    });
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    std::thread::spawn(move || for _ in out.lines() {});
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    // The startup lines on stderr are written before the JSON line.
    let mut stderr = String::new();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(300)) {
        stderr.push_str(&l);
        stderr.push('\n');
    }
    std::thread::spawn(move || for _ in rx {});
    let url = v["listening"].as_str().unwrap().to_owned();
    let server = ServerProc {
        child,
        url,
        data_dir: data.to_path_buf(),
    };
    (server, v, stderr)
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn each_user_is_told_what_the_restore_lost_and_the_replica_never_calls_it_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let (server, v, _) = serve_json(&data, port, &["--init"]);
    assert_eq!(
        v["loss_statements"],
        serde_json::json!({ "count": 0, "newest": null }),
        "{v}"
    );
    let (lab, patient) = lab_and_patient(root, &server.url, "labo-lr", "patient-lr");
    let kept = put(&lab, root, "KEPT-");
    let (code, v, _) = get(&patient, root, &kept);
    assert_eq!(code, 0, "{v}");
    let good = root.join("backup");
    backup_once(root, &data, &good);
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();

    // The tail: one document the patient opens and syncs offline, one it only lists.
    let opened = put(&lab, root, "OPENED-");
    let (code, v, _) = get(&patient, root, &opened);
    assert_eq!(code, 0, "{v}");
    ok(&patient, &["sync"]);
    let listed = put(&lab, root, "LISTED-");
    let v = ok(&patient, &["ls"]);
    assert!(v["documents"].to_string().contains(&listed), "{v}");
    server.stop();

    let restored = root.join("restored");
    let (code, v) = restore(root, &good, &restored, &key, &[]);
    assert_eq!(code, 0, "{v}");
    let statement = v["restored"]["loss_statement"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // N12: the restored server says, at every start, that it serves a loss statement, and its
    // id (an operator who lost the restore's output can still announce it).
    let (server, v, stderr) = serve_json(&restored, port, &[]);
    assert_eq!(v["loss_statements"]["count"], 1, "{v}");
    assert_eq!(
        v["loss_statements"]["newest"]["id"],
        statement.as_str(),
        "{v}"
    );
    assert!(
        stderr.contains("loss statement(s); the newest") && stderr.contains(&statement),
        "{stderr}"
    );

    // N2: the author is told about every document it sealed in the lost range, read or not.
    let v = ok(&lab, &["accept-rollback"]);
    assert_eq!(keys(&v), documented("accept-rollback"), "{v}");
    let mut mine = vec![opened.clone(), listed.clone()];
    mine.sort();
    assert_eq!(ids(&v["authored"]), mine, "{v}");
    assert_eq!(ids(&v["documents"]), mine, "{v}");
    // The patient: the one it opened, and the one it only listed.
    let v = ok(&patient, &["accept-rollback"]);
    assert_eq!(ids(&v["documents"]), mine, "{v}");
    assert!(ids(&v["authored"]).is_empty(), "{v}");
    for home in [&lab, &patient] {
        let v = ok(home, &["accept-rollback", "--statement", &statement[..16]]);
        assert_eq!(v["accepted"], true, "{v}");
    }

    // N11: a lost document names the statement and whom to ask.
    for (home, doc, who) in [
        (&patient, &opened, "ask labo-lr to send it again"),
        (&patient, &listed, "ask labo-lr to send it again"),
        (&lab, &listed, "this device sealed it: send it again"),
    ] {
        let (code, v, out) = get(home, root, doc);
        assert_eq!(code, 6, "{v}");
        assert_eq!(v["error"]["code"], "lost_in_restore", "{v}");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(&statement[..16]) && m.contains(who), "{m}");
        assert!(out.is_none());
    }
    // A document the restore kept reads as before.
    let (code, v, _) = get(&patient, root, &kept);
    assert_eq!(code, 0, "{v}");

    // N5: the replica keeps the lost document from the old log, marked lost, with the
    // statement; `ls --offline` and `get --offline` say so, never "verified" under the
    // restored checkpoint.
    let v = ok(&patient, &["sync"]);
    assert_eq!(
        v["lost_kept"],
        serde_json::json!([{ "doc_id": opened, "statement": statement }]),
        "{v}"
    );
    assert_eq!(v["unlisted_kept"], serde_json::json!([]), "{v}");
    let v = ok(&patient, &["ls", "--offline"]);
    for row in v["documents"].as_array().unwrap() {
        let expect = if row["doc_id"] == opened.as_str() {
            serde_json::json!(statement)
        } else {
            serde_json::Value::Null
        };
        assert_eq!(row["lost_in_restore"], expect, "{v}");
    }
    let out = root.join("offline-opened.txt");
    let v = ok(
        &patient,
        &["get", "--offline", &opened, "-o", out.to_str().unwrap()],
    );
    assert_eq!(v["lost_in_restore"], statement.as_str(), "{v}");
    let out2 = root.join("offline-opened-text.txt");
    let text = std::process::Command::new(bin())
        .args(["get", "--offline", &opened, "-o", out2.to_str().unwrap()])
        .env("SERMENT_HOME", &patient)
        .env("SERMENT_PASSPHRASE", PASS)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("LOST in the restore you accepted"), "{text}");
    assert!(!text.contains("offline replica: checkpoint of"), "{text}");
    // `audit` says lost in the restore, not "hidden, or removed as a recipient".
    let err = ok_stderr(&patient, &["audit"]);
    assert!(
        err.contains(&format!("{opened} was lost in the restore you accepted")),
        "{err}"
    );
    assert!(!err.contains("no longer lists nor serves"), "{err}");
    // `audit --json` has the same (item 3 of the brief: it had no field for them).
    let v = ok(&patient, &["audit"]);
    assert!(
        v["lost_in_restore"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "doc_id": opened, "statement": statement })),
        "{v}"
    );
    server.stop();
}

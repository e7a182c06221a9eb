//! Issue 10 §4 through the real binary and a real data directory:
//!
//! * `verify-log` with the patient's keystore checks the pinned checkpoint and log key: an old
//!   data directory copied back over the live one is LOG ROLLBACK, a history rewritten from that
//!   copy is LOG FORK, a fresh server (another log key) is "log key changed"; all exit 4. `ls`
//!   names the changed log key too (it used to say "404 unknown device").
//! * data the log proves but the server lost (a blob file, an inline blob, a wrap row) makes
//!   `get` exit 4 with a "withheld" message naming it, and the server logs it at ERROR; a
//!   document not shared with the reader is exit 6, "not shared with you".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;

/// A `serment serve` on a chosen loopback port (0: any), its stderr kept for the test.
struct Srv {
    child: Child,
    url: String,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Srv {
    fn start(data: &Path, port: u16) -> Srv {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(u) = line.strip_prefix("serment: listening on ") {
                break u.trim().to_owned();
            }
        };
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        Srv {
            child,
            url,
            port,
            stderr,
        }
    }

    /// SIGINT, so that SQLite checkpoints its WAL into the database file before a copy.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The error message of a failed `--json` command.
fn fails(home: &Path, args: &[&str], code: i32) -> String {
    let (got, v) = run(home, args);
    assert_eq!(got, code, "serment {args:?}: {v}");
    v["error"]["message"].as_str().unwrap().to_owned()
}

struct Party {
    home: PathBuf,
}

fn party(root: &Path, handle: &str, url: &str) -> Party {
    let home = root.join(handle);
    ok(&home, &["id", "new", "--name", handle]);
    ok(&home, &["register", "--server", url]);
    Party { home }
}

fn put(root: &Path, p: &Party, name: &str, content: &[u8], to: &str) -> serde_json::Value {
    let f = root.join(name);
    std::fs::write(&f, content).unwrap();
    ok(&p.home, &["put", f.to_str().unwrap(), "--to", to])
}

#[test]
fn verify_log_checks_the_pinned_checkpoint_and_log_key() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let srv = Srv::start(&data, 0);
    let (url, port) = (srv.url.clone(), srv.port);
    let lab = party(root, "labo-pin", &url);
    let gp = party(root, "dr-pin", &url);
    let patient = party(root, "patient-pin", &url);
    ok(&lab.home, &["contact", "add", "patient-pin"]);
    ok(&gp.home, &["contact", "add", "patient-pin"]);
    ok(&patient.home, &["contact", "add", "labo-pin"]);
    ok(&patient.home, &["contact", "add", "dr-pin"]);
    // The operator's "backup", taken with the server stopped.
    srv.stop();
    let backup = root.join("backup");
    copy_dir(&data, &backup);

    let srv = Srv::start(&data, port);
    let doc = put(root, &lab, "a.json", b"{\"a\":1}", "patient-pin")["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = root.join("a-out.json");
    ok(&patient.home, &["get", &doc, "-o", out.to_str().unwrap()]);
    let v = ok(&patient.home, &["verify-log", "--server", &url]);
    assert_eq!(v["verified"], true, "{v}");
    let pinned = v["report"]["pinned_size"]
        .as_u64()
        .expect("checked against the pin");
    assert!(pinned > 0, "{v}");
    srv.stop();

    // Rollback: the old data directory copied back over the live one.
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    let srv = Srv::start(&data, port);
    let msg = fails(&patient.home, &["verify-log", "--server", &url], 4);
    assert!(msg.contains("LOG ROLLBACK"), "{msg}");
    // Without a keystore, verify-log audits the log alone (and finds it self-consistent).
    let stranger = root.join("stranger");
    let v = ok(&stranger, &["verify-log", "--server", &url]);
    assert_eq!(v["report"]["pinned_size"], serde_json::Value::Null, "{v}");

    // Fork: another history grown from the backup, past the size the patient pinned.
    for i in 0..4 {
        put(
            root,
            &gp,
            &format!("g{i}.json"),
            b"{\"g\":2}",
            "patient-pin",
        );
    }
    let msg = fails(&patient.home, &["verify-log", "--server", &url], 4);
    assert!(msg.contains("LOG FORK"), "{msg}");
    srv.stop();

    // Another log key: a fresh server on the same address.
    let srv = Srv::start(&root.join("fresh-data"), port);
    let msg = fails(&patient.home, &["verify-log", "--server", &url], 4);
    assert!(
        msg.to_lowercase().contains("log key changed"),
        "verify-log: {msg}"
    );
    let (code, v) = run(&patient.home, &["ls"]);
    assert_eq!(code, 4, "ls: {v}");
    assert_eq!(v["error"]["code"], "log_key_changed", "ls: {v}");
    let x = root.join("x.json");
    let msg = fails(&patient.home, &["get", &doc, "-o", x.to_str().unwrap()], 4);
    assert!(msg.to_lowercase().contains("log key changed"), "get: {msg}");
    drop(srv);
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    files_under(dir)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
}

#[test]
fn lost_data_is_withheld_and_unshared_is_not_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let srv = Srv::start(&data, 0);
    let url = srv.url.clone();
    let lab = party(root, "labo-lost", &url);
    let patient = party(root, "patient-lost", &url);
    let gp = party(root, "dr-lost", &url);
    ok(&lab.home, &["contact", "add", "patient-lost"]);
    ok(&lab.home, &["contact", "add", "dr-lost"]);
    ok(&patient.home, &["contact", "add", "labo-lost"]);
    let get = |doc: &str, name: &str| {
        let out = root.join(name);
        let r = run(&patient.home, &["get", doc, "-o", out.to_str().unwrap()]);
        assert_eq!(
            out.exists(),
            r.0 == 0,
            "{name}: output file after exit {}",
            r.0
        );
        r
    };
    let withheld = |doc: &str, name: &str, what: &str| {
        let (code, v) = get(doc, name);
        assert_eq!(code, 4, "{name}: {v}");
        assert_eq!(v["error"]["code"], "withheld", "{name}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("withheld") && msg.contains(what),
            "{name}: {msg}"
        );
        assert!(msg.contains(doc), "{name}: {msg}");
    };

    // A large document: its blob is a file under blobs/. Delete the file.
    let big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let v = put(root, &lab, "big.bin", &big, "patient-lost");
    let (doc, blob) = (
        v["doc_id"].as_str().unwrap(),
        v["blob_id"].as_str().unwrap(),
    );
    let (code, _) = get(doc, "big-ok.bin");
    assert_eq!(code, 0);
    std::fs::remove_file(root.join("big-ok.bin")).unwrap();
    std::fs::remove_file(find_file(&data.join("blobs"), blob).expect("the blob file")).unwrap();
    withheld(doc, "big.bin.out", "sealed blob");

    // A small document: its blob is inline in the database. Null it.
    let v = put(
        root,
        &lab,
        "small.json",
        b"{\"small\":true}",
        "patient-lost",
    );
    let (doc, blob) = (
        v["doc_id"].as_str().unwrap(),
        v["blob_id"].as_str().unwrap(),
    );
    assert!(
        find_file(&data.join("blobs"), blob).is_none(),
        "expected an inline blob"
    );
    sql(
        &data,
        &format!("UPDATE blobs SET data = NULL WHERE blob_id = '{blob}'"),
    );
    withheld(doc, "small.out", "sealed blob");

    // The patient's wrap row deleted: the log still proves it.
    let v = put(root, &lab, "wrap.json", b"{\"wrap\":1}", "patient-lost");
    let doc = v["doc_id"].as_str().unwrap();
    sql(
        &data,
        &format!(
            "DELETE FROM wraps WHERE doc_id = '{doc}' AND recipient_device IN \
             (SELECT device_id FROM devices WHERE handle = 'patient-lost')"
        ),
    );
    withheld(doc, "wrap.out", "key wrap");
    // The same document asked by version goes through the version endpoint.
    let out = root.join("wrap-v1.out");
    let (code, v) = run(
        &patient.home,
        &["get", doc, "--version", "1", "-o", out.to_str().unwrap()],
    );
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (4, Some("withheld")),
        "{v}"
    );

    // The server said what it lost, at ERROR, once per kind.
    let log = srv.log();
    assert!(log.contains("ERROR"), "{log}");
    assert!(log.contains("DATA MISSING"), "{log}");
    // What to restore, by blob id and log index; never a document id (the newcomer's H26).
    assert!(log.contains("no stored blob"), "{log}");
    assert!(log.contains("the wraps table has no row"), "{log}");
    assert!(
        !log.contains(doc),
        "a document id in the server's log: {log}"
    );

    // A document shared with the GP only: not shared with the patient (exit 6), no alarm.
    let v = put(root, &lab, "gp.json", b"{\"gp\":1}", "dr-lost");
    let doc = v["doc_id"].as_str().unwrap();
    let (code, v) = get(doc, "gp.out");
    assert_eq!(code, 6, "{v}");
    assert_eq!(v["error"]["code"], "not_shared", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("not shared with you"), "{msg}");
    let _ = gp;
    drop(srv);
}

/// A log whose stored entry was altered: `verify-log --json` exits 4 with exactly one JSON object
/// on stdout, the error (`log_invalid`) and the report that names the problem, side by side.
#[test]
fn verify_log_on_an_altered_entry_prints_one_object_with_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let srv = Srv::start(&data, 0);
    let url = srv.url.clone();
    let lab = party(root, "labo-alt", &url);
    let patient = party(root, "patient-alt", &url);
    ok(&lab.home, &["contact", "add", "patient-alt"]);
    put(root, &lab, "a.json", b"{\"a\":1}", "patient-alt");
    // Flip one byte of the newest entry's payload (its last byte, inside a signature).
    sql(
        &data,
        "UPDATE log_entries SET entry = substr(entry, 1, length(entry) - 1) || \
         CASE WHEN substr(entry, -1) = X'00' THEN X'01' ELSE X'00' END \
         WHERE idx = (SELECT max(idx) FROM log_entries)",
    );
    let stranger = root.join("stranger");
    let out = Command::new(bin())
        .args(["--json", "verify-log", "--server", &url])
        .env("SERMENT_HOME", &stranger)
        .env("SERMENT_PASSPHRASE", PASS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(objects.len(), 1, "one object on stdout: {stdout}");
    let v = &objects[0];
    assert_eq!(v["error"]["code"], "log_invalid", "{v}");
    assert_eq!(v["verified"], false, "{v}");
    let errors = v["report"]["errors"]
        .as_array()
        .expect("the report's errors");
    assert!(!errors.is_empty(), "{v}");
    drop(patient);
    drop(srv);
}

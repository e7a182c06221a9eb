//! The `--json` contract (docs/JSON.md) checked against real output (issue 18): every command of
//! the contract is run, and the fields it prints must be exactly the documented ones (top level,
//! and the fields of each element of a documented array), `schema` must be the documented
//! version, and every field documented as a `time` must be RFC 3339 (or null).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use serde_json::Value;

/// One command's documented fields: name -> type (`x[].y` for the fields of array elements).
type Fields = BTreeMap<String, String>;

/// Parses docs/JSON.md: `### \`serment <command>\`` headings, each followed by a table whose first
/// column is a field name in backquotes and second its type.
fn contract() -> (u64, BTreeMap<String, Fields>) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/JSON.md"))
            .expect("docs/JSON.md");
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("Schema version: "))
        .and_then(|v| v.trim().trim_matches('*').parse().ok())
        .expect("a 'Schema version: N' line");
    let mut out: BTreeMap<String, Fields> = BTreeMap::new();
    let mut current: Option<String> = None;
    for l in text.lines() {
        if let Some(h) = l.strip_prefix("### `serment ") {
            current = Some(h.trim_end_matches('`').to_owned());
            out.entry(current.clone().unwrap()).or_default();
            continue;
        }
        if l.starts_with("## ") {
            current = None;
        }
        let Some(cmd) = &current else { continue };
        let cols: Vec<&str> = l.split('|').map(str::trim).collect();
        if cols.len() >= 4 && cols[1].starts_with('`') {
            let name = cols[1].trim_matches('`').to_owned();
            out.get_mut(cmd).unwrap().insert(name, cols[2].to_owned());
        }
    }
    (version, out)
}

/// RFC 3339 `date-time` in UTC as the CLI prints it: `YYYY-MM-DDTHH:MM:SS[.frac]Z`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let rest = match s.get(19..) {
        Some(r) => r,
        None => return false,
    };
    let frac_ok = match rest.strip_prefix('.') {
        Some(f) => f.len() > 1 && f[..f.len() - 1].bytes().all(|c| c.is_ascii_digit()),
        None => true,
    };
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && rest.ends_with('Z')
        && frac_ok
}

/// Checks one command's output against its documented fields.
fn check(command: &str, v: &Value, contract: &BTreeMap<String, Fields>, version: u64) {
    let fields = contract
        .get(command)
        .unwrap_or_else(|| panic!("docs/JSON.md documents no `serment {command}`"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{command}: not an object: {v}"));
    assert_eq!(obj["schema"], version, "{command}: schema");
    let top: BTreeSet<&str> = fields
        .keys()
        .filter(|k| !k.contains("[]."))
        .map(String::as_str)
        .collect();
    let got: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(
        got, top,
        "{command}: printed fields (left) differ from docs/JSON.md (right): {v}"
    );
    for (name, ty) in fields {
        let value = if let Some((arr, sub)) = name.split_once("[].") {
            let elems = obj[arr]
                .as_array()
                .unwrap_or_else(|| panic!("{command}: {arr} is not an array"));
            let documented: BTreeSet<&str> = fields
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{arr}[].")))
                .collect();
            for e in elems {
                let keys: BTreeSet<&str> =
                    e.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(
                    keys, documented,
                    "{command}: fields of {arr}[] differ from docs/JSON.md: {e}"
                );
            }
            elems.iter().map(|e| e[sub].clone()).collect::<Vec<_>>()
        } else {
            vec![obj[name].clone()]
        };
        if ty.starts_with("time") {
            for t in value {
                assert!(
                    t.is_null() || t.as_str().is_some_and(is_rfc3339),
                    "{command}: {name} is documented as a time (RFC 3339) but is {t}"
                );
            }
        }
    }
}

#[test]
fn every_documented_command_prints_exactly_its_documented_fields() {
    let (version, contract) = contract();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (lab, patient, gp) = (root.join("lab"), root.join("patient"), root.join("gp"));
    let mut seen = BTreeSet::new();
    let mut c = |command: &str, v: &Value| {
        check(command, v, &contract, version);
        seen.insert(command.to_owned());
    };
    c("version", &ok(&lab, &["version"]));
    let pki = root.join("pki");
    std::fs::create_dir(&pki).unwrap();
    c(
        "tls test-pki",
        &ok(&lab, &["tls", "test-pki", "--out", pki.to_str().unwrap()]),
    );
    let v = run(&lab, &["ls"]).1;
    c("error", &v);
    c(
        "id new",
        &ok(&lab, &["id", "new", "--name", "labo-j", "--kdf", "floor"]),
    );
    ok(
        &patient,
        &["id", "new", "--name", "patient-j", "--kdf", "floor"],
    );
    ok(&gp, &["id", "new", "--name", "gp-j", "--kdf", "floor"]);
    c("id show", &ok(&lab, &["id", "show"]));
    // Issue 14: the unlock agent, on a socket of this test's own.
    let sock = root.join("run").join("agent.sock");
    let agent = |args: &[&str]| -> Value {
        let out = std::process::Command::new(bin())
            .arg("--json")
            .args(args)
            .env("SERMENT_HOME", &lab)
            .env("SERMENT_PASSPHRASE", PASS)
            .env("SERMENT_AGENT_SOCK", &sock)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    c("agent status", &agent(&["agent", "status"]));
    c("agent start", &agent(&["agent", "start", "--ttl", "5m"]));
    c("agent status", &agent(&["agent", "status"]));
    c("agent stop", &agent(&["agent", "stop"]));
    let rec = root.join("patient.rec");
    c(
        "id export-record",
        &ok(
            &patient,
            &["id", "export-record", "-o", rec.to_str().unwrap()],
        ),
    );

    let server = ServerProc::start(&root.join("data"), &[]);
    let reg = ok(&lab, &["register", "--server", &server.url]);
    c("register", &reg);
    // The pinned log key is shown, to compare with the one the operator publishes.
    let pinned = reg["log_key"]
        .as_str()
        .expect("register shows the pinned log key");
    assert!(pinned.starts_with("serment.log/"), "{reg}");
    assert_eq!(ok(&lab, &["id", "show"])["log_key"], pinned);
    ok(&patient, &["register", "--server", &server.url]);
    ok(&gp, &["register", "--server", &server.url]);
    // New identities have their X-Wing key from the start: `id upgrade` says so.
    let up = ok(&lab, &["id", "upgrade"]);
    assert_eq!(
        (up["upgraded"].as_bool(), up["kem"].as_str()),
        (Some(false), Some("X-Wing"))
    );
    c("id upgrade", &up);
    c("contact add", &ok(&lab, &["contact", "add", "patient-j"]));
    ok(&lab, &["contact", "add", "gp-j"]);
    ok(&patient, &["contact", "add", "labo-j"]);
    ok(&gp, &["contact", "add", "labo-j"]);
    c(
        "contact verify",
        &ok(&lab, &["contact", "verify", "patient-j"]),
    );
    c("contact list", &ok(&lab, &["contact", "list"]));

    let f = root.join("cr.pdf");
    std::fs::write(&f, b"%PDF-1.4 compte rendu").unwrap();
    let put = ok(
        &lab,
        &[
            "put",
            f.to_str().unwrap(),
            "--to",
            "patient-j",
            "--title",
            "CR",
        ],
    );
    c("put", &put);
    let doc = put["doc_id"].as_str().unwrap().to_owned();
    let fhir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fhir/bilan-lipidique.json");
    c(
        "import-fhir",
        &ok(
            &lab,
            &["import-fhir", fhir.to_str().unwrap(), "--to", "patient-j"],
        ),
    );
    c("ls", &ok(&patient, &["ls"]));
    c(
        "get",
        &ok(
            &patient,
            &["get", &doc, "-o", root.join("o.pdf").to_str().unwrap()],
        ),
    );
    c("share", &ok(&lab, &["share", &doc, "--to", "gp-j"]));
    // Care teams (issue 16): the lab's team with the patient, a document shared with one wrap,
    // the patient reads it through the team; after the removal a new document is unreadable.
    c("team new", &ok(&lab, &["team", "new", "cardio-j"]));
    let added = ok(&lab, &["team", "add", "cardio-j", "patient-j"]);
    assert_eq!(added["members"].as_array().unwrap().len(), 2, "{added}");
    c("team add", &added);
    let shared = ok(&lab, &["share", &doc, "--to-team", "cardio-j"]);
    assert_eq!(shared["team_epoch"], 1, "{shared}");
    c("team show", &ok(&patient, &["team", "show", "cardio-j"]));
    c("team list", &ok(&patient, &["team", "list"]));
    let removed = ok(&lab, &["team", "remove", "cardio-j", "patient-j"]);
    assert_eq!(removed["epoch"], 2, "{removed}");
    c("team remove", &removed);
    let f2 = root.join("cr2.pdf");
    std::fs::write(&f2, b"%PDF-1.4 second").unwrap();
    let put2 = ok(
        &lab,
        &["put", f2.to_str().unwrap(), "--to-team", "cardio-j"],
    );
    assert_eq!(put2["team_epoch"], 2, "{put2}");
    let doc2 = put2["doc_id"].as_str().unwrap().to_owned();
    let (code, denied) = run(
        &patient,
        &[
            "get",
            &doc2,
            "-o",
            root.join("denied.pdf").to_str().unwrap(),
        ],
    );
    assert!(
        code == 4 || code == 6,
        "the removed member reads a new document: {denied}"
    );
    c(
        "team rotate",
        &ok(&lab, &["team", "rotate", "cardio-j", "--rewrap"]),
    );
    // Every device here is hybrid from the start: nothing to re-wrap, the shape is the contract.
    let rw = ok(&lab, &["rewrap", "--pq", "--all"]);
    assert_eq!(rw["rewrapped"], 0, "{rw}");
    c("rewrap", &rw);
    ok(
        &gp,
        &["get", &doc, "-o", root.join("gp.pdf").to_str().unwrap()],
    );
    c("accesses", &ok(&patient, &["accesses", &doc]));
    c("audit", &ok(&patient, &["audit"]));
    let pinned = ok(&patient, &["pinned-checkpoint"]);
    assert!(
        pinned["checkpoint"]
            .as_str()
            .is_some_and(|n| n.lines().nth(1) == Some(pinned["size"].to_string().as_str())),
        "{pinned}"
    );
    c("pinned-checkpoint", &pinned);
    c(
        "verify-log",
        &ok(&patient, &["verify-log", "--server", &server.url]),
    );
    let bk = format!("file://{}", root.join("backup").display());
    let b = ok(
        &lab,
        &[
            "backup",
            "--once",
            "--to",
            &bk,
            "--data-dir",
            root.join("data").to_str().unwrap(),
        ],
    );
    c("backup", &b);
    c(
        "verify-backup",
        &ok(
            &lab,
            &[
                "verify-backup",
                "--from",
                &bk,
                "--log-key",
                b["log_key"].as_str().unwrap(),
            ],
        ),
    );
    c(
        "restore",
        &ok(
            &lab,
            &[
                "restore",
                "--from",
                &bk,
                "--data-dir",
                root.join("restored").to_str().unwrap(),
                "--log-key-file",
                root.join("data").join("log.key").to_str().unwrap(),
            ],
        ),
    );
    c(
        "web verify",
        &ok(&patient, &["web", "verify", "--server", &server.url]),
    );

    let sealed = root.join("cr.srmc");
    c(
        "seal",
        &ok(
            &lab,
            &[
                "seal",
                f.to_str().unwrap(),
                "-o",
                sealed.to_str().unwrap(),
                "--to-record",
                rec.to_str().unwrap(),
            ],
        ),
    );
    let lab_rec = root.join("lab.rec");
    ok(
        &lab,
        &["id", "export-record", "-o", lab_rec.to_str().unwrap()],
    );
    c(
        "open",
        &ok(
            &patient,
            &[
                "open",
                sealed.to_str().unwrap(),
                "-o",
                root.join("opened.pdf").to_str().unwrap(),
                "--author-record",
                lab_rec.to_str().unwrap(),
            ],
        ),
    );
    // Issue 12 §5: erasure of a document the lab authored.
    let f3 = root.join("erase-me.pdf");
    std::fs::write(&f3, b"%PDF-1.4 erase me").unwrap();
    let d3 = ok(&lab, &["put", f3.to_str().unwrap(), "--to", "gp-j"])["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c(
        "erase",
        &ok(
            &lab,
            &["erase", &d3, "--reason", "retention-ended", "--yes"],
        ),
    );
    // Issue 12 §4: the GP's offline replica.
    c("sync", &ok(&gp, &["sync"]));
    c("ls --offline", &ok(&gp, &["ls", "--offline"]));
    c(
        "get --offline",
        &ok(
            &gp,
            &[
                "get",
                "--offline",
                &doc,
                "-o",
                root.join("gp-offline.pdf").to_str().unwrap(),
            ],
        ),
    );
    c("witnesses", &ok(&gp, &["witnesses", "--quorum", "0"]));
    // Issue 16: a second device for the patient.
    let (_, joined, linked) = link_new_device(&patient, &root.join("patient-phone"), &server.url);
    c("device join", &joined);
    c("device link", &linked);
    let phone_id = joined["device_id"].as_str().unwrap().to_owned();
    c(
        "device catch-up",
        &ok(&patient, &["device", "catch-up", &phone_id]),
    );
    c("device list", &ok(&patient, &["device", "list"]));
    // Issue 17 §2: a recovery code, and a recovery on a new machine with it.
    let (st, made, code) = run_code(&patient, &["id", "recovery-code", "--kdf", "floor"]);
    assert_eq!(st, 0, "{made}");
    c("id recovery-code", &made);
    let (st, recovered, _) = run_code(
        &root.join("patient-new"),
        &[
            "recover",
            "--code",
            &code.expect("a code shown"),
            "--handle",
            "patient-j",
            "--server",
            &server.url,
            "--kdf",
            "floor",
        ],
    );
    assert_eq!(st, 0, "{recovered}");
    c("recover", &recovered);
    // The other device sees it.
    let listed = ok(&patient, &["device", "list"]);
    assert_eq!(
        listed["new_recoveries"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    c("device list", &listed);
    // Issue 17 §2: social recovery, 2 of 2 contacts, the floor's waiting period (24 h: the
    // test moves both clocks); a first request vetoed, a second completed.
    let social_args = |handle_dir: &str| {
        (
            root.join(handle_dir),
            vec![
                "recover".to_owned(),
                "--social".to_owned(),
                "--handle".to_owned(),
                "patient-j".to_owned(),
                "--server".to_owned(),
                server.url.clone(),
                "--kdf".to_owned(),
                "floor".to_owned(),
            ],
        )
    };
    c(
        "id recovery-contacts add",
        &ok(
            &patient,
            &[
                "id",
                "recovery-contacts",
                "add",
                "gp-j",
                "labo-j",
                "--threshold",
                "2",
                "--waiting-period",
                "24h",
            ],
        ),
    );
    c(
        "id recovery-contacts list",
        &ok(&patient, &["id", "recovery-contacts", "list"]),
    );
    let (dir1, args) = social_args("patient-social1");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let asked = ok(&dir1, &args);
    c("recover --social", &asked);
    let id1 = asked["request_id"].as_str().unwrap().to_owned();
    c(
        "recovery approve",
        &ok(
            &gp,
            &[
                "recovery",
                "approve",
                "--handle",
                "patient-j",
                "--request",
                &id1,
            ],
        ),
    );
    let listed = ok(&patient, &["device", "list"]);
    assert_eq!(
        listed["pending_recovery_requests"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{listed}"
    );
    c("device list", &listed);
    // `ls`, run every day, warns about it too (REVIEW4 T7): the veto window must not pass unseen.
    let stderr = ok_stderr(&patient, &["ls"]);
    assert!(
        stderr.contains("someone asked to recover patient-j"),
        "{stderr}"
    );
    c(
        "recovery veto",
        &ok(&patient, &["recovery", "veto", "--request", &id1]),
    );
    // REVIEW5 U1: nothing left pending, so nothing vetoed.
    let all = ok(&patient, &["recovery", "veto", "--all-pending"]);
    assert_eq!(all["request_ids"], serde_json::json!([]), "{all}");
    c("recovery veto --all-pending", &all);
    let (dir2, args) = social_args("patient-social2");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id2 = ok(&dir2, &args)["request_id"].as_str().unwrap().to_owned();
    for who in [&gp, &lab] {
        ok(
            who,
            &[
                "recovery",
                "approve",
                "--handle",
                "patient-j",
                "--request",
                &id2,
            ],
        );
    }
    c(
        "recover --social --complete",
        &complete_social_after_the_wait(
            &root.join("data"),
            &dir2,
            &["recover", "--social", "--complete", "--kdf", "floor"],
        ),
    );
    c("rotate-identity", &ok(&gp, &["rotate-identity"]));
    let dev = ok(&gp, &["id", "show"])["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    c(
        "revoke-device",
        &ok(&gp, &["revoke-device", &dev, "--yes", "--force"]),
    );
    drop(server);

    // `serve --json`: its first line on stdout.
    let mut child = std::process::Command::new(bin())
        .args(["--json", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.join("data2"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    c(
        "serve",
        &serde_json::from_str(&line).expect("serve --json prints a JSON line"),
    );

    // `demo` and `witness` are long-running or have tests of their own (demo.rs); `claim` needs
    // the SMTP server: tests/cli/provisional.rs checks its fields against this page; `accept-rollback`
    // needs a restored server: tests/cli/accept_rollback.rs checks its fields;
    // every other documented command was run.
    let documented: BTreeSet<String> = contract.keys().cloned().collect();
    let missing: Vec<_> = documented
        .difference(&seen)
        .filter(|c| !matches!(c.as_str(), "demo" | "witness" | "claim" | "accept-rollback"))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not checked: {missing:?}"
    );
}

#[test]
fn rfc3339_check_accepts_only_utc_date_times() {
    assert!(is_rfc3339("2026-12-06T10:21:58Z"));
    assert!(is_rfc3339("2026-12-06T10:21:58.25Z"));
    assert!(!is_rfc3339("1765016518"));
    assert!(!is_rfc3339("2026-12-06 10:21:58Z"));
    assert!(!is_rfc3339("2026-12-06T10:21:58"));
}

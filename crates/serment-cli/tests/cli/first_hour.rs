//! A new user's first hour (issue 18): revoking a device, a contact's identity rotation, and
//! what `ls`, `audit` and `accesses` tell a newcomer. Each test is one stumble of the issue.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    lab: PathBuf,
    patient: PathBuf,
    server: ServerProc,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let server = ServerProc::start(&root.join("data"), &[]);
    let (lab, patient) = (root.join("lab"), root.join("patient"));
    ok(&lab, &["id", "new", "--name", "labo-y", "--kdf", "floor"]);
    ok(
        &patient,
        &["id", "new", "--name", "patient-y", "--kdf", "floor"],
    );
    ok(&lab, &["register", "--server", &server.url]);
    ok(&patient, &["register", "--server", &server.url]);
    ok(&lab, &["contact", "add", "patient-y"]);
    ok(&patient, &["contact", "add", "labo-y"]);
    World {
        _tmp: tmp,
        root,
        lab,
        patient,
        server,
    }
}

/// `serment --json ARGS` with stdin closed; (code, JSON stdout, stderr).
fn run_err(home: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(bin())
        .arg("--json")
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn revoking_the_last_device_needs_force_and_is_named_afterwards() {
    let w = world();
    let me = ok(&w.patient, &["id", "show"])["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The last device is refused without --force, with what it would cost.
    let (code, v, _) = run_err(&w.patient, &["revoke-device", &me, "--yes"]);
    assert_eq!(code, 2, "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("last active device") && m.contains("--force"),
        "{m}"
    );
    // Without a terminal, a confirmation is required.
    let (code, v, _) = run_err(&w.patient, &["revoke-device", &me, "--force"]);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("--yes"),
        "{v}"
    );
    // Nothing was revoked: the patient still reads its list.
    ok(&w.patient, &["ls"]);
    // A device that is not ours is refused.
    let (code, _, _) = run_err(&w.patient, &["revoke-device", &"ab".repeat(32), "--yes"]);
    assert_eq!(code, 2);

    let v = ok(&w.patient, &["revoke-device", &me, "--yes", "--force"]);
    assert_eq!(v["this_device"], true);
    assert_eq!(v["active_devices_left"], 0);
    // `id show` names the revocation; the server's answer names it too (not "unknown device").
    let show = ok(&w.patient, &["id", "show"]);
    assert!(show["revoked_at"].is_string(), "{show}");
    let (code, v, _) = run_err(&w.patient, &["ls"]);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (3, Some("device_revoked")),
        "{v}"
    );
    // Registering again says why not (not "own write missing from the log").
    let (code, v, _) = run_err(&w.patient, &["register", "--server", &w.server.url]);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (3, Some("device_revoked")),
        "{v}"
    );
    // A new identity cannot take the handle over, and is told handles are never reassigned.
    let again = w.root.join("patient-again");
    ok(
        &again,
        &["id", "new", "--name", "patient-y", "--kdf", "floor"],
    );
    let (code, v, _) = run_err(&again, &["register", "--server", &w.server.url]);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("id new --name"),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("never reassigned"),
        "{v}"
    );
    // A contact refreshing the handle is told it has no active device, not "malformed response".
    let f = w.root.join("r.txt");
    std::fs::write(&f, b"x").unwrap();
    let (code, v, _) = run_err(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-y"]);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (6, Some("no_active_device")),
        "{v}"
    );
    drop(w.server);
}

/// `contact verify` refreshes from the log first: after a rotation it shows the new fingerprint,
/// not the stale pin, and `--confirm` of a key that changed since it was last shown is refused
/// until the new fingerprint was shown (the newcomer's F41).
#[test]
fn contact_verify_shows_the_current_key_and_confirms_only_what_was_shown() {
    let w = world();
    let old_fp = ok(&w.lab, &["contact", "verify", "patient-y"])["fingerprint"].clone();
    let new_fp = ok(&w.patient, &["rotate-identity"])["fingerprint"].clone();
    assert_ne!(old_fp, new_fp);
    let shown = ok(&w.lab, &["contact", "verify", "patient-y"]);
    assert_eq!(
        shown["fingerprint"], new_fp,
        "the stale pin was shown: {shown}"
    );
    assert_eq!(shown["verified"], false);

    // Another rotation, then a confirm without looking: refused, the current fingerprint named.
    let newer_fp = ok(&w.patient, &["rotate-identity"])["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, v, _) = run_err(&w.lab, &["contact", "verify", "patient-y", "--confirm"]);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains(&newer_fp),
        "{v}"
    );
    assert_eq!(
        ok(&w.lab, &["contact", "list"])["contacts"][0]["verified"],
        false
    );
    // Shown now: the confirm goes through.
    let c = ok(&w.lab, &["contact", "verify", "patient-y", "--confirm"]);
    assert_eq!(c["verified"], true, "{c}");
    assert_eq!(c["fingerprint"], newer_fp.as_str());
}

#[test]
fn a_contact_rotation_is_shown_on_next_use_until_confirmed() {
    let w = world();
    let before = ok(&w.lab, &["contact", "verify", "patient-y", "--confirm"]);
    let old_fp = before["fingerprint"].as_str().unwrap().to_owned();
    let rot = ok(&w.patient, &["rotate-identity"]);
    let new_fp = rot["fingerprint"].as_str().unwrap().to_owned();
    assert_ne!(old_fp, new_fp);

    let f = w.root.join("r.txt");
    std::fs::write(&f, b"resultat").unwrap();
    let (code, v, err) = run_err(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-y"]);
    assert_eq!(code, 0, "{v} {err}");
    assert!(
        err.contains("replaced its identity key") && err.contains(&old_fp) && err.contains(&new_fp),
        "the rotation is not shown with both fingerprints: {err}"
    );
    assert!(err.contains("contact verify patient-y --confirm"), "{err}");
    // Shown again on the next use, and in the contact list, until confirmed.
    let list = ok(&w.lab, &["contact", "list"]);
    let row = &list["contacts"][0];
    assert_eq!(row["rotated_from_fingerprint"], old_fp.as_str(), "{list}");
    assert_eq!(row["verified"], false);
    ok(&w.lab, &["contact", "verify", "patient-y", "--confirm"]);
    let (_, _, err) = run_err(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-y"]);
    assert!(!err.contains("replaced its identity key"), "{err}");
    let list = ok(&w.lab, &["contact", "list"]);
    assert!(list["contacts"][0]["rotated_from_fingerprint"].is_null());
    assert_eq!(list["contacts"][0]["verified"], true);
    drop(w.server);
}

#[test]
fn audit_and_accesses_speak_plainly() {
    let w = world();
    let f = w.root.join("r.txt");
    std::fs::write(&f, b"resultat").unwrap();
    let doc = ok(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-y"])["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An unread document: audit says so instead of printing nothing.
    let out = Command::new(bin())
        .args(["audit", "--doc", &doc])
        .env("SERMENT_HOME", &w.patient)
        .env("SERMENT_PASSPHRASE", PASS)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no access recorded"), "{text}");
    ok(
        &w.patient,
        &["get", &doc, "-o", w.root.join("o").to_str().unwrap()],
    );
    let out = Command::new(bin())
        .args(["accesses", &doc])
        .env("SERMENT_HOME", &w.patient)
        .env("SERMENT_PASSPHRASE", PASS)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fetched its key") && text.contains("downloaded the sealed document"),
        "{text}"
    );
    assert!(text.contains("serment audit"), "{text}");
    drop(w.server);
}

#[test]
fn ls_shows_titles_types_and_plaintext_sizes_from_verified_metadata() {
    let w = world();
    let f = w.root.join("cr.pdf");
    std::fs::write(&f, vec![b'%'; 12_345]).unwrap();
    let doc = ok(
        &w.lab,
        &[
            "put",
            f.to_str().unwrap(),
            "--to",
            "patient-y",
            "--title",
            "Bilan lipidique",
        ],
    )["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The author knows what it sealed, without fetching anything.
    let ls = ok(&w.lab, &["ls"]);
    let row = &ls["documents"][0];
    assert_eq!(row["title"], "Bilan lipidique", "{ls}");
    assert_eq!(row["mime_type"], "application/pdf");
    assert_eq!(row["plaintext_bytes"], 12_345);
    assert_eq!(row["author"], "labo-y");
    assert!(row["sealed_bytes"].as_u64().unwrap() > 12_345);
    // A recipient sees the title once it verified the document, and `ls` fetches nothing.
    let ls = ok(&w.patient, &["ls"]);
    assert!(ls["documents"][0]["title"].is_null(), "{ls}");
    assert_eq!(ls["documents"][0]["author"], "labo-y");
    let acc = ok(&w.patient, &["accesses", &doc]);
    assert!(
        acc["accesses"].as_array().unwrap().is_empty(),
        "ls fetched: {acc}"
    );
    ok(
        &w.patient,
        &["get", &doc, "-o", w.root.join("o.pdf").to_str().unwrap()],
    );
    let ls = ok(&w.patient, &["ls"]);
    assert_eq!(ls["documents"][0]["title"], "Bilan lipidique", "{ls}");
    assert_eq!(ls["documents"][0]["plaintext_bytes"], 12_345);
    // The title is sealed: not in the server's files.
    for p in files_under(&w.root.join("data")) {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(15).any(|x| x == b"Bilan lipidique"),
            "title in clear in {}",
            p.display()
        );
    }
    // Nor in the keystore file in clear.
    let ks = std::fs::read(w.patient.join("keystore.srmk")).unwrap();
    assert!(!ks.windows(15).any(|x| x == b"Bilan lipidique"));
    drop(w.server);
}

#[test]
fn author_controlled_titles_are_bounded_and_printed_safely() {
    let w = world();
    let f = w.root.join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    // A 60 000-character title with terminal escapes: cut when cached, escaped when printed.
    let title = format!("Lettre\r\u{1b}[2K{}", "A".repeat(60_000));
    let doc = ok(
        &w.lab,
        &[
            "put",
            f.to_str().unwrap(),
            "--to",
            "patient-y",
            "--title",
            &title,
        ],
    )["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &w.patient,
        &["get", &doc, "-o", w.root.join("o").to_str().unwrap()],
    );
    let ks_len = std::fs::metadata(w.patient.join("keystore.srmk"))
        .unwrap()
        .len();
    assert!(ks_len < 16 * 1024, "the keystore grew to {ks_len} bytes");
    let ls = ok(&w.patient, &["ls"]);
    let cached = ls["documents"][0]["title"].as_str().unwrap();
    assert!(
        cached.chars().count() <= 200 && cached.ends_with('…'),
        "{cached}"
    );
    let out = Command::new(bin())
        .arg("ls")
        .env("SERMENT_HOME", &w.patient)
        .env("SERMENT_PASSPHRASE", PASS)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
    assert!(text.contains("\\u{1b}"), "{text}");
    drop(w.server);
}

#[test]
fn outputs_that_are_not_regular_files_are_refused_before_any_fetch() {
    let w = world();
    let f = w.root.join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    let doc = ok(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-y"])["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = w.root.join("adir");
    std::fs::create_dir(&dir).unwrap();
    let trailing = format!("{}/", w.root.join("newname").display());
    for (path, force) in [
        (dir.to_str().unwrap(), true),
        (trailing.as_str(), false),
        ("..", true),
        ("/dev/null", true),
    ] {
        let mut args = vec!["get", doc.as_str(), "-o", path];
        if force {
            args.push("--force");
        }
        let (code, v, _) = run_err(&w.patient, &args);
        assert_eq!(code, 2, "{path}: {v}");
    }
    let acc = ok(&w.patient, &["accesses", &doc]);
    assert!(acc["accesses"].as_array().unwrap().is_empty(), "{acc}");
    drop(w.server);
}

#[test]
fn concurrent_commands_on_one_keystore_lose_no_pin() {
    let w = world();
    let f = w.root.join("x.txt");
    std::fs::write(&f, b"x").unwrap();
    let gp = w.root.join("gp");
    ok(&gp, &["id", "new", "--name", "gp-y", "--kdf", "floor"]);
    ok(&gp, &["register", "--server", &w.server.url]);
    let docs: Vec<String> = (0..3)
        .map(|_| {
            ok(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-y"])["doc_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let gets: Vec<_> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Command::new(bin())
                .args(["--json", "get", d, "-o"])
                .arg(w.root.join(format!("o{i}")))
                .env("SERMENT_HOME", &w.patient)
                .env("SERMENT_PASSPHRASE", PASS)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    ok(&w.patient, &["contact", "add", "gp-y"]);
    for mut g in gets {
        assert!(g.wait().unwrap().success());
    }
    let list = ok(&w.patient, &["contact", "list"]);
    let handles: Vec<&str> = list["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["handle"].as_str().unwrap())
        .collect();
    assert!(
        handles.contains(&"gp-y"),
        "a concurrent command dropped the pin: {list}"
    );
    let ls = ok(&w.patient, &["ls"]);
    let titled = ls["documents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["title"].is_string())
        .count();
    assert_eq!(titled, 3, "{ls}");
    drop(w.server);
}

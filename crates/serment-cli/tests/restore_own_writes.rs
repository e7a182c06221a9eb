//! What a restore that lost the log's tail takes from each user's **own** writes, and how the
//! acceptance puts it back (PROTOCOL.md §11.11, issue 12, newcomer 6 N3), through the real
//! binary.
//!
//! After the newest backed-up increment the lab erases a document it had sent, and two GPs
//! register. The server is restored from the backup.
//!
//! - Issue 12: the erasure is gone from the restored log, so the document is live again: the
//!   patient, having accepted the restore, reads it again. The lab's review lists the erasure
//!   among its lost revocations, and its acceptance logs the same signed tombstone again: the
//!   patient's read is then refused as erased (THREAT_MODEL M203).
//! - N3: a GP whose registration was lost is told so by every command (`ls`: not a bare
//!   "unknown device") and by the review; its acceptance registers it again at once with the
//!   same keys. A GP whose handle an impostor took first is told that, by the acceptance and
//!   afterwards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::drill::{self, backup_once, free_port, get_doc as get, lab_and_patient, restore};
use common::*;

fn message(v: &serde_json::Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn a_restore_gives_back_each_users_lost_registration_and_revocations() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = drill::serve_on(&data, port, &["--init"]);
    let (lab, patient) = lab_and_patient(root, &server.url, "labo-ow", "patient-ow");
    let erased = drill::put_to(&lab, root, "ERASED-", 2_000, "patient-ow").0;
    let (code, v, _) = get(&patient, root, &erased);
    assert_eq!(code, 0, "{v}");
    let good = root.join("backup");
    backup_once(root, &data, &good);
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();

    // The tail: the lab erases the document (sent in error); two GPs register.
    ok(
        &lab,
        &["erase", &erased, "--reason", "sent-in-error", "--yes"],
    );
    let (code, v, _) = get(&patient, root, &erased);
    assert_eq!(v["error"]["code"], "erased", "{v} {code}");
    let gps = registered(root, &server.url, &[("gp", "gp-ow"), ("gp2", "gp2-ow")]);
    let (gp, gp2) = (&gps[0], &gps[1]);
    server.stop();

    let restored = root.join("restored");
    let (code, v) = restore(root, &good, &restored, &key, &[]);
    assert_eq!(code, 0, "{v}");
    let statement = v["restored"]["loss_statement"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let announced = &statement[..16];
    let server = drill::serve_on(&restored, port, &[]);

    // N3: a GP whose registration was lost is told so (not a bare "unknown device"), and
    // what to do, before it accepted anything.
    let (code, v) = run(gp, &["ls"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["code"], "registration_lost", "{v}");
    for what in [
        "registration is in the lost range",
        "accept-rollback",
        "anyone may take your handle",
    ] {
        assert!(message(&v).contains(what), "{what:?} in {v}");
    }
    let v = ok(gp, &["accept-rollback"]);
    assert_eq!(keys(&v), documented("accept-rollback"), "{v}");
    assert_eq!(v["registration_lost"], true, "{v}");
    assert_eq!(v["registered_again"], false, "{v}");
    let (code, out, _) = run_text(gp, &["accept-rollback"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("registration is in the lost range")
            && out.contains("anyone may take your handle")
            && out.contains("`serment register --server"),
        "{out}"
    );

    // The lab's review lists the erasure it logged in the lost range.
    let v = ok(&lab, &["accept-rollback"]);
    let revs = v["revocations"].as_array().unwrap();
    assert_eq!(revs.len(), 1, "{v}");
    assert_eq!(revs[0]["kind"], "erasure", "{v}");
    assert_eq!(revs[0]["subject"], erased.as_str(), "{v}");
    assert_eq!(revs[0]["logged_again"], serde_json::Value::Null, "{v}");
    assert_eq!(v["registration_lost"], false, "{v}");
    let (_, out, _) = run_text(&lab, &["accept-rollback"]);
    assert!(
        out.contains(&format!("erasure {erased}"))
            && out.contains("accepting with --statement logs it again"),
        "{out}"
    );

    // The patient follows the restored log first: the erased document is live again. Its pin
    // may not be past the restored size (its read of the tail did not move it): then it has
    // nothing to accept (exit 2).
    let (code, v) = run(&patient, &["accept-rollback", "--statement", announced]);
    assert!(
        code == 0 || (code == 2 && message(&v).contains("nothing to accept")),
        "{v}"
    );
    let (code, v, _) = get(&patient, root, &erased);
    assert_eq!(code, 0, "the restore brought the erased document back: {v}");

    // The lab's acceptance logs the same tombstone again: the document is erased for good.
    let v = ok(&lab, &["accept-rollback", "--statement", announced]);
    assert_eq!(keys(&v), documented("accept-rollback"), "{v}");
    assert_eq!(v["accepted"], true, "{v}");
    let rev = &v["revocations"][0];
    assert!(rev["logged_again"].as_u64().is_some(), "{v}");
    let (code, v, out) = get(&patient, root, &erased);
    assert_eq!(code, 6, "{v}");
    assert_eq!(v["error"]["code"], "erased", "{v}");
    assert!(out.is_none());
    // Nothing left to do: a second acceptance has nothing to accept.
    let (code, v) = run(&lab, &["accept-rollback", "--statement", announced]);
    assert_eq!(code, 2, "{v}");

    // An impostor takes the second GP's lost handle first: its acceptance says so (the pin
    // moved all the same), and so does every command afterwards.
    let imp = root.join("impostor");
    ok(&imp, &["id", "new", "--name", "gp2-ow", "--kdf", "floor"]);
    ok(&imp, &["register", "--server", &server.url]);
    let (code, v) = run(gp2, &["accept-rollback", "--statement", announced]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["code"], "registration_lost", "{v}");
    assert!(
        message(&v).contains("another identity took your handle"),
        "{v}"
    );
    let (code, v) = run(gp2, &["ls"]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["code"], "registration_lost", "{v}");
    assert!(
        message(&v).contains("lost in the restore you accepted")
            && message(&v).contains(&format!("serment register --server {}", server.url)),
        "{v}"
    );

    // The first GP's acceptance registers it again, with the same keys: it works at once.
    let v = ok(gp, &["accept-rollback", "--statement", announced]);
    assert_eq!(v["registration_lost"], true, "{v}");
    assert_eq!(v["registered_again"], true, "{v}");
    ok(gp, &["ls"]);
    ok(&lab, &["contact", "add", "gp-ow"]);
    drill::put_to(&lab, root, "AFTER-", 100, "gp-ow");
    server.stop();
}

/// Newcomer 6 N4 and N12: `verify-log` with a keystore (its server taken from the keystore)
/// moves the pin forward to the checkpoint it verified, so `pinned-checkpoint` gives the newest;
/// a witness writes its newest cosigned checkpoint to a file; neither ever writes over a file,
/// and says so.
#[test]
fn verify_log_moves_the_pin_and_a_witness_exports_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let server = drill::serve_on(&data, free_port(), &["--init"]);
    let (lab, patient) = lab_and_patient(root, &server.url, "labo-vl", "patient-vl");
    drill::put_to(&lab, root, "DOC-", 500, "patient-vl");
    let before = ok(&lab, &["pinned-checkpoint"])["size"].as_u64().unwrap();
    // The patient writes: the log grows past the lab's pin.
    drill::put_to(&patient, root, "REPLY-", 500, "labo-vl");
    let v = ok(&lab, &["verify-log"]);
    assert_eq!(v["verified"], true, "{v}");
    let size = v["report"]["size"].as_u64().unwrap();
    assert!(size > before, "{v}");
    assert_eq!(v["report"]["pinned_size"], before, "{v}");
    assert_eq!(v["report"]["pin_moved_to"], size, "{v}");
    assert_eq!(ok(&lab, &["pinned-checkpoint"])["size"], size);
    let (_, out, _) = run_text(&lab, &["verify-log"]);
    assert!(
        out.contains(&format!("extends the checkpoint of {size} entries")),
        "{out}"
    );
    // An auditor with no keystore and no --server is told what to give.
    let (code, v) = run(&root.join("auditor"), &["verify-log"]);
    assert_eq!(code, 2, "{v}");
    assert!(message(&v).contains("give --server URL"), "{v}");

    // pinned-checkpoint -o never writes over a file, and says so.
    let note = root.join("lab.note");
    ok(&lab, &["pinned-checkpoint", "-o", note.to_str().unwrap()]);
    let (code, v) = run(&lab, &["pinned-checkpoint", "-o", note.to_str().unwrap()]);
    assert_eq!(code, 2, "{v}");
    assert!(
        message(&v).contains("already exists") && message(&v).contains("give a new file name"),
        "{v}"
    );

    // The witness: its newest cosigned checkpoint, from its data directory alone.
    let wdir = root.join("witness");
    let w = wdir.to_str().unwrap();
    ok(
        root,
        &[
            "witness",
            "--server",
            &server.url,
            "--data-dir",
            w,
            "--once",
        ],
    );
    server.stop();
    let wnote = root.join("wit.note");
    let export = [
        "witness",
        "--data-dir",
        w,
        "--export-checkpoint",
        wnote.to_str().unwrap(),
    ];
    let v = ok(root, &export);
    assert_eq!(v["size"], size, "{v}");
    let text_note = std::fs::read_to_string(&wnote).unwrap();
    assert_eq!(
        text_note.lines().nth(1),
        Some(size.to_string().as_str()),
        "{text_note}"
    );
    let (code, v) = run(root, &export);
    assert_eq!(code, 2, "{v}");
    assert!(message(&v).contains("already exists"), "{v}");
    let none = root.join("nowitness");
    let (code, v) = run(
        root,
        &[
            "witness",
            "--data-dir",
            none.to_str().unwrap(),
            "--export-checkpoint",
            root.join("x.note").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{v}");
    assert!(message(&v).contains("holds no witness state"), "{v}");
    assert!(!none.exists());
}

//! `serment accept-rollback` through the real binary (PROTOCOL.md §11.11, issue 12, newcomer
//! N12): a server lost after its newest backed-up increment is restored; the clients that
//! verified the lost tail (the lab that wrote it, the patient who read it) report LOG ROLLBACK,
//! with a hint to the command; the command shows the server's loss statement and what this
//! device lost, changes nothing without the statement id the operator announced, refuses
//! another id, and with it follows the restored log, on which everyone writes and reads again.
//! A revocation the patient made in the lost range (with its identity rotation) does not come
//! back silently: the lab's next send to the patient is refused until the lab confirms the
//! patient again (REVIEW6 V3).
//!
//! Hostile cases (the server holds the log key, so the checks that do not rest on it matter
//! most): no statement; a statement signed by another key; one signed by the log key that does
//! not reach back before the pin (also exactly at it), or names a tree head the served log does
//! not extend; the accepted statement served again after the client moved on (a replay), or
//! re-signed with a new time (another id than the announced one, REVIEW6 V1); the announced
//! statement served to a client that verified the log after it was written (REVIEW6 V1 B).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::Path;

use common::drill::{self, backup_once, free_port, get_doc as get, lab_and_patient, restore, url};
use common::*;
use serment_core::log::loss::{LossStatement, SignedLossStatement};
use serment_core::log::note::{KEY_TYPE_ED25519, NoteSigner};

fn put(home: &Path, root: &Path, marker: &str) -> String {
    drill::put_to(home, root, marker, 2_000, "patient-ar").0
}

/// The log key's seed and signer, from the operator's offline copy of `log.key`.
fn log_signer(key: &Path, origin: &str) -> NoteSigner {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(std::fs::read_to_string(key).unwrap().trim(), &mut seed).unwrap();
    NoteSigner::new(origin, KEY_TYPE_ED25519, &seed).unwrap()
}

/// Replaces the loss statements a stopped server serves.
fn set_statements(data: &Path, texts: &[String]) {
    sql(data, "DELETE FROM loss_statements");
    for (i, t) in texts.iter().enumerate() {
        sql(
            data,
            &format!(
                "INSERT INTO loss_statements (seq, restored_size, statement) VALUES ({i}, 0, '{t}')"
            ),
        );
    }
}

fn refused(v: &serde_json::Value, what: &str) {
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(what), "expected {what:?} in {v}");
}

#[test]
fn a_client_that_saw_the_lost_tail_follows_the_restored_log_only_when_told() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = drill::serve_on(&data, port, &["--init"]);
    let (lab, patient) = lab_and_patient(root, &server.url, "labo-ar", "patient-ar");
    // The patient's second device, linked before the backup.
    let phone = root.join("phone");
    let (_, joined, _) = link_new_device(&patient, &phone, &server.url);
    let phone_id = joined["device_id"].as_str().unwrap().to_owned();
    let kept = put(&lab, root, "KEPT-");
    let good = root.join("backup");
    backup_once(root, &data, &good);
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();
    // The tail no increment copied: the patient revokes the phone (the identity key rotates),
    // the lab refreshes the patient and writes, the patient reads.
    let rev = ok(&patient, &["revoke-device", &phone_id, "--yes"]);
    assert_eq!(rev["rotated"], true, "{rev}");
    ok(&lab, &["contact", "add", "patient-ar"]);
    let lost = put(&lab, root, "LOST-");
    let (code, v, _) = get(&patient, root, &lost);
    assert_eq!(code, 0, "{v}");
    // The lab also shares the older document with a GP: the patient, reading it again,
    // verifies its history up to that wrap, in the tail: the acceptance must forget that head
    // for the document to read again.
    let gp = root.join("gp");
    ok(&gp, &["id", "new", "--name", "gp-ar", "--kdf", "floor"]);
    ok(&gp, &["register", "--server", &server.url]);
    ok(&lab, &["contact", "add", "gp-ar"]);
    ok(&lab, &["share", &kept, "--to", "gp-ar"]);
    let (code, v, _) = get(&patient, root, &kept);
    assert_eq!(code, 0, "{v}");
    // A witness cosigned the tail too.
    let wdir = root.join("witness");
    let server_url = server.url.clone();
    let witness = |extra: &[&str]| {
        let mut args = vec![
            "witness",
            "--server",
            server_url.as_str(),
            "--data-dir",
            wdir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(root, &args)
    };
    let (code, v) = witness(&["--once"]);
    assert_eq!(code, 0, "{v}");
    server.stop();

    // The restore: the backup verifies whole (it cannot know the tail), and still writes its
    // loss statement.
    let restored = root.join("restored");
    let (code, v) = restore(root, &good, &restored, &key, &[]);
    assert_eq!(code, 0, "{v}");
    let size = v["restored"]["size"].as_u64().unwrap();
    assert_eq!(
        keys(&v["restored"]["loss_statement"]),
        ["id", "lost_to", "restored_size"].map(String::from).into(),
        "{v}"
    );
    assert_eq!(
        v["restored"]["loss_statement"]["restored_size"], size,
        "{v}"
    );
    let statement_id = v["restored"]["loss_statement"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(statement_id.len(), 64, "{v}");
    let snapshot = root.join("snapshot");
    copy_dir(&restored, &snapshot);
    let statement = sql(&restored, "SELECT statement FROM loss_statements")
        .pop()
        .unwrap();
    let origin = statement
        .lines()
        .find_map(|l| l.strip_prefix("origin "))
        .unwrap()
        .to_owned();
    let server = drill::serve_on(&restored, port, &[]);

    // Both clients that saw the tail: LOG ROLLBACK, and the way forward named.
    for home in [&patient, &lab] {
        let (code, v, _) = get(home, root, &kept);
        assert_eq!(code, 4, "{v}");
        assert_eq!(v["error"]["code"], "log_rollback", "{v}");
        assert!(
            v["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("accept-rollback"),
            "{v}"
        );
    }
    // The witness too: it stops cosigning, and follows only with the announced id.
    let (code, v) = witness(&["--once"]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["code"], "log_rollback", "{v}");
    let wrong = "0123456789abcdef";
    let (code, v) = witness(&["--accept-rollback", wrong]);
    assert_eq!(code, 4, "{v}");
    refused(&v, "not the one announced");
    let announced = &statement_id[..16];
    let (code, v) = witness(&["--accept-rollback", announced]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["accepted_loss"], statement_id.as_str(), "{v}");

    // The review changes nothing and says what is lost: the document written in the tail.
    let v = ok(&patient, &["accept-rollback"]);
    assert_eq!(keys(&v), documented("accept-rollback"), "{v}");
    assert_eq!(v["accepted"], false, "{v}");
    assert_eq!(v["restored_size"], size, "{v}");
    assert_eq!(v["statement_id"], statement_id.as_str(), "{v}");
    assert!(v["pinned_size"].as_u64().unwrap() > size, "{v}");
    assert!(
        v["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == lost.as_str()),
        "{v}"
    );
    let (code, v, _) = get(&patient, root, &kept);
    assert_eq!(v["error"]["code"], "log_rollback", "{v} {code}");
    // Another id than the one the operator announced: refused; too short: a usage error.
    let (code, v) = run(&patient, &["accept-rollback", "--statement", wrong]);
    assert_eq!(code, 4, "{v}");
    refused(&v, "not the one announced");
    let (code, v) = run(
        &patient,
        &["accept-rollback", "--statement", &statement_id[..8]],
    );
    assert_eq!(code, 2, "{v}");
    let (_, v, _) = get(&patient, root, &kept);
    assert_eq!(v["error"]["code"], "log_rollback", "{v}");

    // Accepted with the announced id: both follow the restored log.
    let s = announced;
    for home in [&patient, &lab] {
        let v = ok(home, &["accept-rollback", "--statement", s]);
        assert_eq!(keys(&v), documented("accept-rollback"), "{v}");
        assert_eq!(v["accepted"], true, "{v}");
    }
    let (code, v, _) = get(&patient, root, &kept);
    assert_eq!(code, 0, "{v}");
    let (code, v, _) = get(&patient, root, &lost);
    assert_ne!(code, 0, "the lost document cannot come back: {v}");
    assert_ne!(v["error"]["code"], "log_rollback", "{v}");
    // The patient's revocation and rotation were lost with the tail; its acceptance logged both
    // again, the same signed entries (M220): the lab's next send goes to the keys it verified,
    // with no `restored_devices` refusal.
    let probe = root.join("probe.txt");
    std::fs::write(&probe, b"probe").unwrap();
    let (code, v) = run(
        &lab,
        &["put", probe.to_str().unwrap(), "--to", "patient-ar"],
    );
    assert_eq!(code, 0, "{v}");
    // The GP registered in the tail: the restored server does not know it, and it is told.
    let v = ok(&gp, &["accept-rollback"]);
    assert_eq!(v["registration_lost"], true, "{v}");
    // Someone else takes the lost handle with a new key (newcomer 6 N1): the lab, which
    // verified the GP in the tail, refuses it, and a confirmation does not let it in.
    let imp = root.join("impostor");
    ok(&imp, &["id", "new", "--name", "gp-ar", "--kdf", "floor"]);
    ok(&imp, &["register", "--server", &server.url]);
    let to_gp = ["put", probe.to_str().unwrap(), "--to", "gp-ar"];
    let (code, v) = run(&lab, &to_gp);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["code"], "key_substitution", "{v}");
    let (code, v) = run(&lab, &["contact", "verify", "gp-ar", "--confirm"]);
    assert_ne!(code, 0, "{v}");
    let (code, v) = run(&lab, &to_gp);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["error"]["code"], "key_substitution", "{v}");
    // The log grows past the old pins: no LOG FORK, writes and reads go on.
    let after = put(&lab, root, "AFTER-");
    let after2 = put(&lab, root, "AFTER2-");
    for d in [&after, &after2] {
        let (code, v, _) = get(&patient, root, d);
        assert_eq!(code, 0, "{v}");
    }
    let v = ok(&patient, &["verify-log", "--server", &server.url]);
    assert_eq!(v["verified"], true, "{v}");
    // The witness cosigns the restored log as it grows.
    let (code, v) = witness(&["--once"]);
    assert_eq!(code, 0, "{v}");
    assert!(v["cosigned"].as_u64().unwrap() >= 2, "{v}");
    // Accepting again: nothing to accept.
    let (code, v) = run(&patient, &["accept-rollback", "--statement", s]);
    assert_eq!(code, 2, "{v}");
    refused(&v, "nothing to accept");
    server.stop();

    // Replay: the server rolled back again to the very same restore, statement and all.
    let server = drill::serve_on(&snapshot, port, &[]);
    let (_, v, _) = get(&patient, root, &kept);
    assert_eq!(v["error"]["code"], "log_rollback", "{v}");
    let (code, v) = run(&patient, &["accept-rollback", "--statement", s]);
    assert_eq!(code, 4, "{v}");
    refused(&v, "already accepted");
    let (code, v) = witness(&["--accept-rollback", s]);
    assert_eq!(code, 4, "{v}");
    refused(&v, "already accepted");
    server.stop();

    // Forged statements, served by the snapshot to the lab's pin (past `size`). Each is given
    // with its own id, as if announced: the checks after the id must refuse it.
    let signer = log_signer(&key, &origin);
    let other = NoteSigner::new(&origin, KEY_TYPE_ED25519, &[0x5a; 32]).unwrap();
    let base = SignedLossStatement::verify(&statement, &signer.verifier())
        .unwrap()
        .statement;
    let sign = |st: &LossStatement, by: &NoteSigner| {
        let signed = st.sign(by.signing_key()).unwrap();
        (signed.text.clone(), signed.id())
    };
    let lab_pin: u64 = {
        let out = root.join("lab-pin.note");
        ok(&lab, &["pinned-checkpoint", "-o", out.to_str().unwrap()]);
        let text = std::fs::read_to_string(&out).unwrap();
        text.lines().nth(1).unwrap().parse().unwrap()
    };
    assert!(lab_pin > size);
    let mut later = base.clone();
    later.time += 1;
    let at = |n: u64| {
        let mut st = later.clone();
        st.restored.size = n;
        st.lost_to = n;
        st
    };
    let cases: Vec<(&str, (String, String), &str)> = vec![
        (
            "no statement",
            (String::new(), statement_id.clone()),
            "no loss statement",
        ),
        ("another key", sign(&later, &other), "no loss statement"),
        (
            "a restored size past the pin: it does not reach back before it",
            sign(&at(lab_pin + 1), &signer),
            "no loss statement",
        ),
        (
            "a restored size exactly at the pin: nothing of it was lost",
            sign(&at(lab_pin), &signer),
            "no loss statement",
        ),
        (
            "a tree head the served log does not extend",
            sign(
                &{
                    let mut st = later.clone();
                    st.restored.root = [0x77; 32];
                    st
                },
                &signer,
            ),
            "does not extend",
        ),
        (
            "the announced statement, re-signed with a new time (another id)",
            (sign(&later, &signer).0, statement_id.clone()),
            "not the one announced",
        ),
        (
            "a statement written two hours before the lab last verified the log",
            sign(
                &{
                    let mut st = later.clone();
                    st.time = base.time - 7_200;
                    st
                },
                &signer,
            ),
            "written before this device last verified",
        ),
    ];
    for (i, (what, (text, id), expect)) in cases.into_iter().enumerate() {
        let snap = root.join(format!("snap-{i}"));
        copy_dir(&snapshot, &snap);
        let texts: Vec<String> = if text.is_empty() {
            Vec::new()
        } else {
            vec![text]
        };
        set_statements(&snap, &texts);
        let server = drill::serve_on(&snap, port, &[]);
        let (_, v, _) = get(&lab, root, &kept);
        assert_eq!(v["error"]["code"], "log_rollback", "{what}: {v}");
        let (code, v) = run(&lab, &["accept-rollback", "--statement", &id]);
        assert_eq!(code, 4, "{what}: {v}");
        refused(&v, expect);
        // The witness, which cosigned the restored log past `size`, likewise.
        let (code, v) = witness(&["--accept-rollback", &id]);
        assert_eq!(code, 4, "witness, {what}: {v}");
        server.stop();
    }
    // The lab's pin never moved: the restored log still reads.
    let server = drill::serve_on(&restored, port, &[]);
    let (code, v, _) = get(&lab, root, &after2);
    assert_eq!(code, 0, "{v}");
    server.stop();

    // REVIEW6 V6: a backup of the restored server carries its loss statement (verified as it
    // is read), and a restore of that backup serves it again before its own.
    let good2 = root.join("backup2");
    let b = backup_once(root, &restored, &good2);
    let vkey = b["log_key"].as_str().unwrap().to_owned();
    let v = ok(
        root,
        &["verify-backup", "--from", &url(&good2), "--log-key", &vkey],
    );
    assert_eq!(v["verified"], true, "{v}");
    let restored2 = root.join("restored2");
    let (code, v) = restore(root, &good2, &restored2, &key, &[]);
    assert_eq!(code, 0, "{v}");
    let texts = sql(
        &restored2,
        "SELECT statement FROM loss_statements ORDER BY seq",
    );
    assert_eq!(texts.len(), 2, "{v}");
    assert_eq!(texts[0], statement);
    assert_ne!(texts[1], statement);
}

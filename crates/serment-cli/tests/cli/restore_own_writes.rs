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

use crate::common;

use common::drill::{self, backup_once, free_port, get_doc as get, lab_and_patient, restore};
use common::*;
use serment_core::log::note::{SignedCheckpoint, VerifierKey};
use std::path::Path;

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
    // The note carries the witness's own cosignature line (C2SP cosignature/v1, as it posted
    // it), which verifies with the witness's key (THREAT_MODEL M221).
    let wkey = v["witness"].as_str().unwrap().to_owned();
    let wvk = VerifierKey::parse(&wkey).unwrap();
    let signed = SignedCheckpoint::parse(&text_note).unwrap();
    assert_eq!(
        signed.cosigned_by(std::slice::from_ref(&wvk)),
        1,
        "{text_note}"
    );
    // verify-backup and restore take it with --checkpoint and check that line: an altered one
    // is an invalid pinned checkpoint, never ignored (M222).
    let backup = root.join("backup");
    let log_key = backup_once(root, &data, &backup)["log_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let from = drill::url(&backup);
    let verify = |note: &Path| {
        run(
            root,
            &[
                "verify-backup",
                "--from",
                &from,
                "--log-key",
                &log_key,
                "--witness",
                &wkey,
                "--checkpoint",
                note.to_str().unwrap(),
            ],
        )
    };
    let (code, r) = verify(&wnote);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["report"]["anchored"], true, "{r}");
    let (code, r) = restore(
        root,
        &backup,
        &root.join("restored"),
        &data.join("log.key"),
        &["--witness", &wkey, "--checkpoint", wnote.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{r}");
    let mut forged = signed.clone();
    for l in &mut forged.signatures {
        if l.name == wvk.name {
            let last = l.payload.len() - 1;
            l.payload[last] ^= 1;
        }
    }
    let bad = root.join("forged.note");
    std::fs::write(&bad, forged.encode().unwrap()).unwrap();
    let (code, r) = verify(&bad);
    assert_eq!(code, 4, "{r}");
    assert!(
        r.to_string().contains("the cosignature of witness")
            && r.to_string().contains("does not verify"),
        "{r}"
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

/// Whether `device list` on `home` shows `device` as current (not revoked, not retired).
fn device_current(home: &Path, device: &str) -> bool {
    let v = ok(home, &["device", "list"]);
    v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["device_id"] == device && d["revoked"] == false)
}

/// Issue 12, THREAT_MODEL M220: the patient's laptop is stolen after the newest backed-up
/// increment; from the phone she revokes it, which rotates the identity key. The restore loses
/// that rotation: the restored log has the old identity key, and the laptop (which holds it) is
/// a current device again. The phone's review names the rotation; its acceptance logs the same
/// rotation again (signed by both keys, with the phone's record under the new key), checked in
/// the restored log: the laptop is retired again and the handle is the new key's.
#[test]
fn a_restore_that_lost_an_identity_rotation_logs_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = drill::serve_on(&data, port, &["--init"]);
    let (_lab, phone) = lab_and_patient(root, &server.url, "labo-rot", "patient-rot");
    let laptop = root.join("laptop");
    let (_, joined, _) = link_new_device(&phone, &laptop, &server.url);
    let stolen = joined["device_id"].as_str().unwrap().to_owned();
    let good = root.join("backup");
    backup_once(root, &data, &good);
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();

    // The tail: the laptop is stolen; the phone revokes it (the identity key rotates).
    let before = ok(&phone, &["id", "show"])["identity_id"].clone();
    let v = ok(&phone, &["revoke-device", &stolen, "--yes"]);
    assert_eq!(v["rotated"], true, "{v}");
    let rotated = v["identity_id"].clone();
    assert_ne!(before, rotated);
    assert!(!device_current(&phone, &stolen));
    server.stop();

    let restored = root.join("restored");
    let (code, v) = restore(root, &good, &restored, &key, &[]);
    assert_eq!(code, 0, "{v}");
    let statement = v["restored"]["loss_statement"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = drill::serve_on(&restored, port, &[]);

    // The review names the lost rotation, and what it means.
    let v = ok(&phone, &["accept-rollback"]);
    assert_eq!(keys(&v), documented("accept-rollback"), "{v}");
    let revs = v["revocations"].as_array().unwrap();
    assert_eq!(revs.len(), 1, "{v}");
    assert_eq!(revs[0]["kind"], "identity_rotation", "{v}");
    let subject = revs[0]["subject"].as_str().unwrap();
    assert_eq!(
        subject,
        format!(
            "{} -> {}",
            before.as_str().unwrap(),
            rotated.as_str().unwrap()
        ),
        "{v}"
    );
    let (_, out, _) = run_text(&phone, &["accept-rollback"]);
    assert!(
        out.contains(&format!("identity rotation {subject}"))
            && out.contains("accepting with --statement logs it again"),
        "{out}"
    );

    // The acceptance logs the rotation again: the stolen laptop is retired for good.
    let v = ok(
        &phone,
        &["accept-rollback", "--statement", &statement[..16]],
    );
    assert_eq!(v["accepted"], true, "{v}");
    let rev = &v["revocations"][0];
    assert!(rev["logged_again"].as_u64().is_some(), "{v}");
    assert_eq!(rev["cannot"], serde_json::Value::Null, "{v}");
    assert!(
        !device_current(&phone, &stolen),
        "the stolen laptop is current again after the acceptance"
    );
    assert_eq!(ok(&phone, &["id", "show"])["identity_id"], rotated);
    // The laptop cannot log in any more.
    let (code, v) = run(&laptop, &["ls"]);
    assert_ne!(code, 0, "{v}");
    server.stop();
}

/// The identity ids that the recovery escrows of `handle` in the backup at `backup` hold and
/// `code` opens: what a reader of the bucket who holds the log key (or the operator) and an old
/// code gets (REVIEW5 U18).
fn escrow_identities(data: &Path, backup: &Path, handle: &str, code: &str) -> Vec<String> {
    use serment_server::backup::side::{EscrowObject, SideKey};
    let mut seed = [0u8; 32];
    let text = std::fs::read_to_string(data.join("log.key")).unwrap();
    hex::decode_to_slice(text.trim(), &mut seed).unwrap();
    let key = SideKey::from_log_seed(&seed).unwrap();
    let code = serment_core::recovery::RecoveryCode::parse(code).unwrap();
    let mut out = Vec::new();
    for p in files_under(backup) {
        if p.parent().and_then(Path::file_name) != Some(std::ffi::OsStr::new("escrows")) {
            continue;
        }
        let o = EscrowObject::open(&key, "escrow", &std::fs::read(&p).unwrap()).unwrap();
        if o.handle != handle {
            continue;
        }
        if let Ok(s) = serment_core::recovery::open_escrow(&code, handle, &o.escrow) {
            out.push(s.identity.id().to_string());
        }
    }
    out
}

/// REVIEW5 U18, THREAT_MODEL M223: the backups keep every escrow the server held for their
/// whole retention. A code replaced without rotation still opens, from the backup, the
/// patient's **current** identity key (the exposure the output now names); `recovery-code
/// --rotate` rotates the identity key first, so every earlier escrow holds a retired key.
#[test]
fn a_replaced_recovery_code_opens_only_a_retired_key_from_the_backups_after_rotate() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let server = drill::serve_on(&data, free_port(), &["--init"]);
    let (_lab, patient) = lab_and_patient(root, &server.url, "labo-u18", "patient-u18");
    let code_a = recovery_code(&patient);
    let backup = root.join("backup");
    backup_once(root, &data, &backup);
    let identity = |h: &Path| ok(h, &["id", "show"])["identity_id"].clone();

    // Code B, no rotation: code A opens the current identity key from the backup.
    let (c, v, code_b) = run_code(&patient, &["id", "recovery-code", "--kdf", "floor"]);
    assert_eq!(c, 0, "{v}");
    let code_b = code_b.unwrap();
    assert_eq!(v["previous_code_opens_backups"], true, "{v}");
    assert_eq!(v["rotated_to"], serde_json::Value::Null, "{v}");
    backup_once(root, &data, &backup);
    let current = identity(&patient);
    let opened = escrow_identities(&data, &backup, "patient-u18", &code_a);
    assert!(
        opened.contains(&current.as_str().unwrap().to_owned()),
        "{opened:?}"
    );

    // Code C with --rotate: A's and B's escrows, in the backup, hold a retired key.
    let (c, v, code_c) = run_code(
        &patient,
        &["id", "recovery-code", "--kdf", "floor", "--rotate"],
    );
    assert_eq!(c, 0, "{v}");
    assert_eq!(keys(&v), documented("id recovery-code"), "{v}");
    assert_eq!(v["previous_code_opens_backups"], false, "{v}");
    let current = identity(&patient);
    assert_eq!(v["rotated_to"], current, "{v}");
    assert!(!v["dropped"].as_array().unwrap().is_empty(), "{v}");
    backup_once(root, &data, &backup);
    let current = current.as_str().unwrap().to_owned();
    for (name, code) in [("A", &code_a), ("B", &code_b)] {
        let opened = escrow_identities(&data, &backup, "patient-u18", code);
        assert!(
            !opened.is_empty(),
            "code {name} opens its escrow in the backup"
        );
        assert!(
            !opened.contains(&current),
            "code {name} opens the current identity key from the backup: {opened:?}"
        );
    }
    // The new code opens the current key; the patient's device works on.
    let opened = escrow_identities(&data, &backup, "patient-u18", code_c.as_deref().unwrap());
    assert!(opened.contains(&current), "{opened:?}");
    ok(&patient, &["ls"]);
    server.stop();
}

/// Issue 12, THREAT_MODEL M224: the lab removes a GP from its ward's care team after the newest
/// backed-up increment; the restore loses the removal, so the GP is a member again on the
/// restored server. The lab's review names the change; its acceptance logs the same signed
/// change again with its epoch key wraps: the GP is out of the team again.
#[test]
fn a_restore_that_lost_a_team_removal_logs_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let port = free_port();
    let server = drill::serve_on(&data, port, &["--init"]);
    let (lab, _patient) = lab_and_patient(root, &server.url, "labo-tm", "patient-tm");
    registered(root, &server.url, &[("gp", "gp-tm")]);
    ok(&lab, &["team", "new", "ward-tm"]);
    ok(&lab, &["team", "add", "ward-tm", "gp-tm"]);
    let good = root.join("backup");
    backup_once(root, &data, &good);
    let key = root.join("log.key.offline");
    std::fs::copy(data.join("log.key"), &key).unwrap();
    let member = |v: &serde_json::Value| {
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["handle"] == "gp-tm")
    };

    // The tail: the GP leaves the ward.
    ok(&lab, &["team", "remove", "ward-tm", "gp-tm"]);
    assert!(!member(&ok(&lab, &["team", "show", "ward-tm"])));
    server.stop();

    let restored = root.join("restored");
    let (code, v) = restore(root, &good, &restored, &key, &[]);
    assert_eq!(code, 0, "{v}");
    let statement = v["restored"]["loss_statement"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = drill::serve_on(&restored, port, &[]);

    let v = ok(&lab, &["accept-rollback"]);
    let revs = v["revocations"].as_array().unwrap();
    assert_eq!(revs.len(), 1, "{v}");
    assert_eq!(revs[0]["kind"], "team_change", "{v}");
    assert_eq!(revs[0]["subject"], "ward-tm: remove gp-tm (epoch 2)", "{v}");

    let v = ok(&lab, &["accept-rollback", "--statement", &statement[..16]]);
    let rev = &v["revocations"][0];
    assert!(rev["logged_again"].as_u64().is_some(), "{v}");
    assert_eq!(rev["cannot"], serde_json::Value::Null, "{v}");
    let t = ok(&lab, &["team", "show", "ward-tm"]);
    assert!(
        !member(&t),
        "the GP is a member again after the acceptance: {t}"
    );
    assert_eq!(t["epoch"], 2, "{t}");
    server.stop();
}

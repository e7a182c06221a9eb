//! Issue 16 §1: a second device. Device 1 receives a document; device 2 links with a one-time code
//! (`device link` / `device join`) and reads the older document (catch-up); `device list` shows
//! both; device 2 is revoked (the identity key rotates); a document sent afterwards is unreadable
//! by device 2 (exit 3, `device_revoked`, README's table) and readable by device 1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use common::*;

#[test]
fn second_device_links_reads_the_past_and_is_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = ServerProc::start(&root.join("data"), &[]);
    let (lab, d1, d2) = (root.join("lab"), root.join("d1"), root.join("d2"));
    ok(&lab, &["id", "new", "--name", "labo-d", "--kdf", "floor"]);
    ok(&d1, &["id", "new", "--name", "patient-d", "--kdf", "floor"]);
    ok(&lab, &["register", "--server", &server.url]);
    ok(&d1, &["register", "--server", &server.url]);
    ok(&lab, &["contact", "add", "patient-d"]);
    ok(&d1, &["contact", "add", "labo-d"]);

    // Device 1 receives a document (before device 2 exists).
    let report = root.join("old.txt");
    std::fs::write(&report, b"Creatinine 72 umol/L (before the second device)").unwrap();
    let old = ok(
        &lab,
        &["put", report.to_str().unwrap(), "--to", "patient-d"],
    )["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Link device 2.
    let (code, joined, linked) = link_new_device(&d1, &d2, &server.url);
    let d2_id = joined["device_id"].as_str().unwrap().to_owned();
    assert_eq!(linked["device_id"], d2_id.as_str());
    assert_eq!(linked["caught_up"], 1, "{linked}");
    assert_eq!(joined["handle"], "patient-d");

    // The code is single use: a second join with it is refused, nothing enrolled.
    let d3 = root.join("d3");
    let (c3, v3) = run(&d3, &join_args(&server.url, &code));
    assert_ne!(c3, 0, "a used code enrolled a device: {v3}");
    assert!(!d3.join("keystore.srmk").exists());

    // Device 2 reads the older document.
    let out = root.join("old-on-d2.txt");
    ok(&d2, &["get", &old, "-o", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"Creatinine 72 umol/L (before the second device)"
    );

    // Both devices are listed, from the log.
    let list = ok(&d1, &["device", "list"]);
    let devs = list["devices"].as_array().unwrap();
    assert_eq!(devs.len(), 2, "{list}");
    assert!(devs.iter().all(|d| d["revoked"] == false));

    // Device 1 revokes device 2: the identity key rotates.
    let rev = ok(&d1, &["revoke-device", &d2_id, "--yes"]);
    assert_eq!(rev["rotated"], true, "{rev}");
    let list = ok(&d1, &["device", "list"]);
    let gone = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == d2_id.as_str())
        .unwrap_or_else(|| panic!("revoked device not listed: {list}"));
    assert_eq!(gone["revoked"], true);

    // A document sent afterwards: the lab follows the signed rotation and wraps to device 1 only.
    let report2 = root.join("new.txt");
    std::fs::write(&report2, b"Potassium 4.1 mmol/L (after the revocation)").unwrap();
    let new = ok(
        &lab,
        &["put", report2.to_str().unwrap(), "--to", "patient-d"],
    );
    let new_id = new["doc_id"].as_str().unwrap().to_owned();
    assert!(
        !new["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == d2_id.as_str()),
        "wrapped to the revoked device: {new}"
    );
    let out2 = root.join("new-on-d2.txt");
    let (code2, v) = run(&d2, &["get", &new_id, "-o", out2.to_str().unwrap()]);
    assert_eq!(code2, 3, "the revoked device: {v}");
    assert_eq!(v["error"]["code"], "device_revoked", "{v}");
    assert!(!out2.exists());
    let out1 = root.join("new-on-d1.txt");
    ok(&d1, &["get", &new_id, "-o", out1.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&out1).unwrap(),
        b"Potassium 4.1 mmol/L (after the revocation)"
    );
    server.stop();
}

#[test]
fn wrong_code_enrols_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = ServerProc::start(&root.join("data"), &[]);
    let (d1, d2) = (root.join("d1"), root.join("d2"));
    ok(&d1, &["id", "new", "--name", "patient-w", "--kdf", "floor"]);
    ok(&d1, &["register", "--server", &server.url]);
    let (code, link) = start_link(&d1);
    // Same slot, wrong password digits.
    let wrong: String = code
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == code.len() - 1 {
                if c == '0' { '1' } else { '0' }
            } else {
                c
            }
        })
        .collect();
    let (c2, v2) = run(&d2, &join_args(&server.url, &wrong));
    assert_eq!(c2, 4, "{v2}");
    assert!(!d2.join("keystore.srmk").exists());
    let (lc, lv) = finish_link(link);
    assert_eq!(lc, 4, "{lv}");
    let list = ok(&d1, &["device", "list"]);
    assert_eq!(list["devices"].as_array().unwrap().len(), 1, "{list}");
    server.stop();
}

/// Issue 16 §1 for care teams: a member links a second device, which reads a team document shared
/// before it existed, with no admin action (the linking device hands it the team's epoch keys,
/// PROTOCOL.md §12.3 "Hand-over"). Also: `team add` shows the pinned member's fingerprint (F22),
/// and sharing a document with a team twice is idempotent (F24).
#[test]
fn team_member_links_a_device_that_reads_older_team_documents() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = ServerProc::start(&root.join("data"), &[]);
    let (lab, d1, d2) = (root.join("lab"), root.join("d1"), root.join("d2"));
    ok(&lab, &["id", "new", "--name", "labo-t", "--kdf", "floor"]);
    ok(&d1, &["id", "new", "--name", "member-t", "--kdf", "floor"]);
    ok(&lab, &["register", "--server", &server.url]);
    ok(&d1, &["register", "--server", &server.url]);
    ok(&d1, &["contact", "add", "labo-t"]);
    ok(&lab, &["team", "new", "cardio-t"]);
    let added = ok(&lab, &["team", "add", "cardio-t", "member-t"]);
    let pinned = ok(&lab, &["contact", "verify", "member-t"]);
    assert_eq!(added["fingerprint"], pinned["fingerprint"], "{added}");
    assert_eq!(added["fingerprint_verified"], false, "{added}");

    let report = root.join("team.txt");
    std::fs::write(&report, b"Troponin 12 ng/L (shared with the team)").unwrap();
    let put = ok(
        &lab,
        &["put", report.to_str().unwrap(), "--to-team", "cardio-t"],
    );
    let doc = put["doc_id"].as_str().unwrap().to_owned();
    // Shared again: nothing added, exit 0.
    let again = ok(&lab, &["share", &doc, "--to-team", "cardio-t"]);
    assert_eq!(again["team_already_shared"], true, "{again}");
    assert_eq!(again["team_epoch"], 1, "{again}");

    let (_, _, linked) = link_new_device(&d1, &d2, &server.url);
    assert_eq!(linked["team_keys"], 1, "{linked}");
    let out = root.join("team-on-d2.txt");
    ok(&d2, &["get", &doc, "-o", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"Troponin 12 ng/L (shared with the team)"
    );
    server.stop();
}

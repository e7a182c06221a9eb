//! Reading while the server is down (issue 12 §4, PROTOCOL.md §14), through the real binary: a GP
//! syncs, the server is killed, the GP lists and opens the reports synced before with the same
//! checks as online; nothing synced after is invented; an erased document is gone from the
//! replica after the next sync and stays gone; a replica file altered, swapped or older is
//! refused (exit 4); the replica holds no plaintext; a blob that does not verify at sync time, or
//! a document from an author the GP has not pinned, is not stored and is named (exit 4), and the
//! sync stores the rest all the same (review S5).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

fn party(root: &Path, handle: &str, url: &str) -> PathBuf {
    let home = root.join(handle);
    ok(&home, &["id", "new", "--name", handle]);
    ok(&home, &["register", "--server", url]);
    home
}

fn put(lab: &Path, file: &Path, to: &str) -> String {
    ok(lab, &["put", file.to_str().unwrap(), "--to", to])["doc_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn offline_ids(gp: &Path) -> Vec<String> {
    let v = ok(gp, &["ls", "--offline"]);
    assert_eq!(v["offline"], true, "{v}");
    v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["doc_id"].as_str().unwrap().to_owned())
        .collect()
}

fn replica_file(gp: &Path, doc: &str) -> PathBuf {
    gp.join("replica").join(format!("{doc}-v1.srpl"))
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    files_under(dir)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == name))
}

#[test]
fn a_gp_reads_synced_reports_with_the_server_down_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let srv = ServerProc::start(&data, &[]);
    let lab = party(root, "labo-offline", &srv.url);
    let gp = party(root, "dr-offline", &srv.url);
    ok(&lab, &["contact", "add", "dr-offline"]);
    ok(&gp, &["contact", "add", "labo-offline"]);

    // The reports: a real FHIR bundle when the shared data is there, and two small ones.
    let fhir = shared_fhir().map(|d| d.join("Liz_Conn_27c911c6-f045-4ffa-af5d-6eba57ac94b2.json"));
    let report = root.join("report.json");
    match &fhir {
        Some(f) => {
            std::fs::copy(f, &report).unwrap();
        }
        None => std::fs::write(&report, b"{\"resourceType\":\"Observation\"}").unwrap(),
    }
    let report_bytes = std::fs::read(&report).unwrap();
    let a = put(&lab, &report, "dr-offline");
    let small = root.join("small.json");
    std::fs::write(&small, b"{\"resourceType\":\"Observation\",\"n\":2}").unwrap();
    let b = put(&lab, &small, "dr-offline");
    let e = put(&lab, &small, "dr-offline");

    // Before any sync there is no replica: not found (6), not an empty list.
    let (code, v) = run(&gp, &["ls", "--offline"]);
    assert_eq!(code, 6, "{v}");
    assert_eq!(v["error"]["code"], "not_in_replica", "{v}");

    let v = ok(&gp, &["sync"]);
    assert_eq!(v["added"].as_array().unwrap().len(), 3, "{v}");
    assert!(v["replica"]["checkpoint_size"].as_u64().unwrap() > 0, "{v}");
    // Incremental: nothing new, nothing fetched again.
    let v = ok(&gp, &["sync"]);
    assert_eq!(v["added"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["kept"], 3, "{v}");
    let manifest = gp.join("replica").join("manifest.srpl");
    let old_manifest = std::fs::read(&manifest).unwrap();

    // The lab erases B: the next sync removes it (tombstone proven) and its file.
    ok(&lab, &["erase", &b, "--reason", "sent-in-error", "--yes"]);
    let v = ok(&gp, &["sync"]);
    assert_eq!(v["erased"], serde_json::json!([b.clone()]), "{v}");
    assert!(
        !replica_file(&gp, &b).exists(),
        "the erased version's file is deleted"
    );
    let mut ids = offline_ids(&gp);
    ids.sort();
    let mut want = vec![a.clone(), e.clone()];
    want.sort();
    assert_eq!(ids, want);

    // The replica deleted: the next sync rebuilds it, every version fetched again (a new file
    // for A: fresh nonce). A's file of before is kept, to put back later (an older copy).
    let older_a = std::fs::read(replica_file(&gp, &a)).unwrap();
    std::fs::remove_dir_all(gp.join("replica")).unwrap();
    let v = ok(&gp, &["sync"]);
    assert_eq!(v["rebuilt"], true, "{v}");
    assert_eq!(v["added"].as_array().unwrap().len(), 2, "{v}");
    assert_ne!(std::fs::read(replica_file(&gp, &a)).unwrap(), older_a);

    // Then D, whose blob the server alters, Y, a good report uploaded with it, and S, from a
    // patient the GP has not pinned (the first contact): the sync refuses D and S (exit 4, each
    // named with its check), stores nothing of them, and stores Y all the same (review S5).
    let big: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let big_file = root.join("big.bin");
    std::fs::write(&big_file, &big).unwrap();
    let v = ok(
        &lab,
        &["put", big_file.to_str().unwrap(), "--to", "dr-offline"],
    );
    let (d, blob) = (
        v["doc_id"].as_str().unwrap().to_owned(),
        v["blob_id"].as_str().unwrap().to_owned(),
    );
    let y = put(&lab, &small, "dr-offline");
    let stranger = party(root, "patient-unpinned", &srv.url);
    ok(&stranger, &["contact", "add", "dr-offline"]);
    let s = put(&stranger, &small, "dr-offline");
    let blob_path = find_file(&data.join("blobs"), &blob).expect("a large blob is a file");
    let mut bytes = std::fs::read(&blob_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&blob_path, &bytes).unwrap();
    let (code, v) = run(&gp, &["sync"]);
    assert_eq!(
        code, 4,
        "a version that does not verify is refused at sync: {v}"
    );
    assert_eq!(v["error"]["code"], "sync_refused", "{v}");
    let rep = &v["report"];
    assert_eq!(rep["added"], serde_json::json!([format!("{y}/1")]), "{v}");
    let mut refused: Vec<(String, String, String)> = rep["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            assert_eq!(x["doc_version"], 1, "{x}");
            (
                x["doc_id"].as_str().unwrap().to_owned(),
                x["check"].as_str().unwrap().to_owned(),
                x["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    refused.sort();
    let mut want_refused = vec![
        (d.clone(), "open".to_owned(), "integrity".to_owned()),
        (s.clone(), "open".to_owned(), "unknown_author".to_owned()),
    ];
    want_refused.sort();
    assert_eq!(refused, want_refused, "{v}");
    for (doc, what) in [(&d, "the altered blob"), (&s, "the unpinned author")] {
        assert!(!replica_file(&gp, doc).exists(), "nothing stored of {what}");
    }
    // The text says which and why, and how to accept the author.
    let (code, out, err) = run_text(&gp, &["sync"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        out.contains(&format!("REFUSED, not stored: {d}/1: open check")),
        "{out}"
    );
    assert!(out.contains("serment contact add"), "{out}");
    assert!(err.contains("SYNC INCOMPLETE"), "{err}");
    want.push(y.clone());
    want.sort();
    // Uploaded after the last sync: C.
    let c = put(&lab, &small, "dr-offline");

    // The server goes down (killed).
    drop(srv);
    // Offline reads never write the keystore (its pin is set to the replica's in memory only).
    let keystore = gp.join("keystore.srmk");
    let keystore_before = std::fs::read(&keystore).unwrap();

    let mut ids = offline_ids(&gp);
    ids.sort();
    assert_eq!(ids, want, "exactly the synced reports, nothing invented");
    let v = ok(&gp, &["ls", "--offline"]);
    assert!(v["replica"]["checkpoint_size"].as_u64().unwrap() > 0, "{v}");
    assert!(v["replica"]["age_seconds"].as_u64().is_some(), "{v}");
    assert!(v["replica"]["synced_at"].as_str().is_some(), "{v}");

    let out = root.join("out.json");
    let v = ok(&gp, &["get", "--offline", &a, "-o", out.to_str().unwrap()]);
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["offline"], true, "{v}");
    assert_eq!(v["author"], "labo-offline", "{v}");
    assert!(v["replica"]["checkpoint_size"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(std::fs::read(&out).unwrap(), report_bytes);
    assert_eq!(
        std::fs::read(&keystore).unwrap(),
        keystore_before,
        "an offline read left the keystore as it was"
    );
    // The online get has no server to talk to: the offline one did not need it.
    let (code, _) = run(&gp, &["get", &a, "-o", root.join("x").to_str().unwrap()]);
    assert_eq!(code, 5);

    // Y, synced beside the refused ones, opens offline.
    let oy = root.join("y.json");
    ok(&gp, &["get", "--offline", &y, "-o", oy.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&oy).unwrap(),
        b"{\"resourceType\":\"Observation\",\"n\":2}"
    );
    // Erased, uploaded after the sync, refused at sync: not in the replica (6), no file.
    for (doc, name) in [
        (&b, "erased"),
        (&c, "after the sync"),
        (&d, "refused at sync"),
        (&s, "unpinned author"),
    ] {
        let o = root.join(format!("{name}.out"));
        let (code, v) = run(&gp, &["get", "--offline", doc, "-o", o.to_str().unwrap()]);
        assert_eq!(code, 6, "{name}: {v}");
        assert_eq!(v["error"]["code"], "not_in_replica", "{name}: {v}");
        assert!(!o.exists(), "{name}");
    }

    // No plaintext at rest: no sensitive string of the bundle in any replica file.
    if let Some(f) = &fhir {
        let needles = serment_fhir::sensitive_strings(&std::fs::read(f).unwrap()).unwrap();
        assert!(needles.len() > 5, "the scanner found the bundle's strings");
        for file in files_under(&gp.join("replica")) {
            let hay = std::fs::read(&file).unwrap();
            for n in &needles {
                assert!(
                    memchr::memmem::find(&hay, n.as_bytes()).is_none(),
                    "{} holds {n:?} in clear",
                    file.display()
                );
            }
        }
    }

    // A replica file altered, swapped for another document's, or an older manifest: refused (4),
    // no output file.
    let refused = |what: &str| {
        let o = root.join("refused.out");
        let (code, v) = run(&gp, &["get", "--offline", &a, "-o", o.to_str().unwrap()]);
        assert_eq!(code, 4, "{what}: {v}");
        assert_eq!(v["error"]["code"], "integrity", "{what}: {v}");
        assert!(!o.exists(), "{what}");
    };
    let fa = replica_file(&gp, &a);
    let good = std::fs::read(&fa).unwrap();
    let mut altered = good.clone();
    let n = altered.len() - 20;
    altered[n] ^= 0x40;
    std::fs::write(&fa, &altered).unwrap();
    refused("altered");
    std::fs::copy(replica_file(&gp, &e), &fa).unwrap();
    refused("swapped");
    std::fs::write(&fa, &older_a).unwrap();
    refused("older copy");
    std::fs::write(&fa, &good).unwrap();
    ok(
        &gp,
        &[
            "get",
            "--offline",
            &a,
            "-o",
            out.to_str().unwrap(),
            "--force",
        ],
    );
    // The manifest of before the erasure, put back: refused, and B does not come back.
    let current = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &old_manifest).unwrap();
    refused("older manifest");
    let (code, v) = run(&gp, &["ls", "--offline"]);
    assert_eq!(code, 4, "{v}");
    std::fs::write(&manifest, &current).unwrap();
    assert!(!offline_ids(&gp).contains(&b));
}

//! `serment erase` through the real binary (PROTOCOL.md §11.3.2, issue 12 §5): the author erases
//! a document shared with a GP; the GP's `get` then exits 6 naming the reason code (the
//! tombstone proven in the log, checked), `ls` omits the document, `verify-log` still verifies;
//! a recipient cannot erase; without a terminal, `--yes` is required.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::Path;

use common::*;

fn party(root: &Path, handle: &str, url: &str) -> std::path::PathBuf {
    let home = root.join(handle);
    ok(&home, &["id", "new", "--name", handle]);
    ok(&home, &["register", "--server", url]);
    home
}

fn listed(home: &Path, doc: &str) -> bool {
    let v = ok(home, &["ls"]);
    v["documents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["doc_id"] == doc)
}

#[test]
fn erase_removes_a_document_for_everyone_and_clients_check_the_tombstone() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let srv = ServerProc::start(&root.join("data"), &[]);
    let lab = party(root, "labo-erase", &srv.url);
    let gp = party(root, "dr-erase", &srv.url);
    ok(&lab, &["contact", "add", "dr-erase"]);
    ok(&gp, &["contact", "add", "labo-erase"]);
    let f = root.join("report.json");
    std::fs::write(&f, b"{\"resourceType\":\"Observation\"}").unwrap();
    let doc = ok(&lab, &["put", f.to_str().unwrap(), "--to", "dr-erase"])["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = ok(&lab, &["put", f.to_str().unwrap(), "--to", "dr-erase"])["doc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = root.join("out.json");
    ok(&gp, &["get", &doc, "-o", out.to_str().unwrap()]);
    assert!(listed(&gp, &doc));

    // A recipient may not erase the author's document: the server refuses.
    let (code, v) = run(&gp, &["erase", &doc, "--reason", "other", "--yes"]);
    assert_ne!(code, 0, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("author"),
        "{v}"
    );
    // Without a terminal, --yes is required.
    let (code, v) = run(&lab, &["erase", &doc, "--reason", "other"]);
    assert_eq!(code, 2, "{v}");
    let (code, v) = run(&lab, &["erase", &doc, "--reason", "because"]);
    assert_eq!(code, 2, "{v}");

    let v = ok(&lab, &["erase", &doc, "--reason", "sent-in-error", "--yes"]);
    assert_eq!(v["erased"], true, "{v}");
    assert_eq!(v["reason"], "sent-in-error", "{v}");
    assert_eq!(v["reason_code"], 2, "{v}");
    assert!(v["log_index"].as_u64().is_some(), "{v}");

    for home in [&gp, &lab] {
        assert!(!listed(home, &doc), "ls omits the erased document");
        assert!(listed(home, &kept), "ls keeps the other one");
        for args in [
            vec!["get", &doc, "-o", out.to_str().unwrap(), "--force"],
            vec![
                "get",
                &doc,
                "--version",
                "1",
                "-o",
                out.to_str().unwrap(),
                "--force",
            ],
        ] {
            let (code, v) = run(home, &args);
            assert_eq!(code, 6, "{args:?}: {v}");
            assert_eq!(v["error"]["code"], "erased", "{v}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains("reason 2"), "{msg}");
        }
        let v = ok(home, &["verify-log", "--server", &srv.url]);
        assert_eq!(v["verified"], true, "{v}");
        assert_eq!(v["report"]["kinds"]["erasure"], 1, "{v}");
    }
    // The document's proven history (its accesses included) stays readable to both.
    ok(&gp, &["audit", "--doc", &doc]);
}

//! The README walkthrough through the real binary, then tampering with the server's data
//! directory: every flipped byte of a blob or a wrap makes `serment get` fail with an integrity
//! error (exit 4) and leave no output file. Also bad input: wrong passphrase, unknown recipient,
//! an oversized upload.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

struct World {
    _tmp: tempfile::TempDir,
    lab: PathBuf,
    patient: PathBuf,
    data: PathBuf,
    root: PathBuf,
}

fn world(server_args: &[&str]) -> (World, ServerProc) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let data = root.join("data");
    let server = ServerProc::start(&data, server_args);
    let w = World {
        lab: root.join("lab"),
        patient: root.join("patient"),
        data,
        root,
        _tmp: tmp,
    };
    ok(
        &w.lab,
        &[
            "id",
            "new",
            "--name",
            "labo-test",
            "--display",
            "Laboratoire Test",
        ],
    );
    ok(&w.patient, &["id", "new", "--name", "patient-x1"]);
    ok(&w.lab, &["register", "--server", &server.url]);
    ok(&w.patient, &["register", "--server", &server.url]);
    let c = ok(&w.lab, &["contact", "add", "patient-x1"]);
    assert_eq!(c["newly_pinned"], true);
    ok(&w.patient, &["contact", "add", "labo-test"]);
    (w, server)
}

fn put(w: &World, content: &[u8]) -> String {
    let f = w.root.join("report.json");
    std::fs::write(&f, content).unwrap();
    let v = ok(&w.lab, &["put", f.to_str().unwrap(), "--to", "patient-x1"]);
    v["doc_id"].as_str().unwrap().to_owned()
}

fn get(w: &World, doc: &str, out: &Path) -> (i32, serde_json::Value) {
    run(&w.patient, &["get", doc, "-o", out.to_str().unwrap()])
}

#[test]
fn walkthrough_and_tampered_blobs() {
    let (w, server) = world(&[]);
    let content: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let doc = put(&w, &content);
    let out = w.root.join("out.bin");
    let (code, v) = get(&w, &doc, &out);
    assert_eq!(code, 0, "{v}");
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(v["author"], "labo-test");
    std::fs::remove_file(&out).unwrap();

    let listed = ok(&w.patient, &["ls"]);
    assert_eq!(listed["documents"].as_array().unwrap().len(), 1);
    let acc = ok(&w.patient, &["accesses", &doc]);
    assert!(acc["accesses"].as_array().unwrap().len() >= 2, "{acc}");

    // Flip bytes across the blob: header, first chunk, middle, last bytes (signature).
    let blob = files_under(&w.data.join("blobs"))
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 700_000)
        .expect("the blob file");
    let original = std::fs::read(&blob).unwrap();
    let n = original.len();
    for pos in [
        0,
        5,
        7,
        20,
        40,
        70,
        75,
        76,
        1000,
        65_600,
        n / 2,
        n - 100,
        n - 64,
        n - 1,
    ] {
        let mut t = original.clone();
        t[pos] ^= 0x20;
        std::fs::write(&blob, &t).unwrap();
        let (code, v) = get(&w, &doc, &out);
        assert_eq!(code, 4, "flip at {pos} must be an integrity failure: {v}");
        assert_eq!(v["error"]["code"], "integrity");
        assert!(
            !out.exists(),
            "no output file after a failed get (flip at {pos})"
        );
    }
    // Truncated and extended blobs.
    std::fs::write(&blob, &original[..n - 64]).unwrap();
    assert_eq!(get(&w, &doc, &out).0, 4);
    let mut ext = original.clone();
    ext.extend_from_slice(&[0u8; 64]);
    std::fs::write(&blob, &ext).unwrap();
    assert_eq!(get(&w, &doc, &out).0, 4);
    assert!(!out.exists());
    // No partial files were left in the output directory either.
    assert!(
        std::fs::read_dir(&w.root).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".part"))
    );
    std::fs::write(&blob, &original).unwrap();
    assert_eq!(get(&w, &doc, &out).0, 0);
    drop(server);
}

#[test]
fn tampered_wraps_in_the_database() {
    let (w, server) = world(&[]);
    let doc = put(&w, b"{\"resourceType\":\"Observation\"}");
    let out = w.root.join("out.json");
    assert_eq!(get(&w, &doc, &out).0, 0);
    std::fs::remove_file(&out).unwrap();
    let mut url = server.url.clone();
    server.stop();
    // The wrap is stored as received: find its bytes in the database files by magic + doc id.
    // Suite 3: the patient's device advertises an X-Wing key, so its wrap is hybrid (1356 bytes).
    let mut needle = b"SRMW\x00\x01\x00\x03".to_vec();
    needle.extend(hex::decode(&doc).unwrap());
    // The patient's own wrap names the patient's device as recipient (bytes 60..92).
    let me = ok(&w.patient, &["id", "show"]);
    let my_device = hex::decode(me["device_id"].as_str().unwrap()).unwrap();
    let db_files: Vec<_> = files_under(&w.data)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("serment.db")
        })
        .collect();
    let mut flips = 0;
    for f in &db_files {
        let original = std::fs::read(f).unwrap();
        let mut at = 0;
        let mut starts = Vec::new();
        while let Some(i) = memchr::memmem::find(&original[at..], &needle) {
            if original.get(at + i + 60..at + i + 92) == Some(&my_device[..]) {
                starts.push(at + i);
            }
            at += i + 1;
        }
        for s in starts {
            // magic, version, doc id, header hash, recipient, sharer, enc (its ML-KEM-768 part,
            // then its X25519 part), ciphertext, signature
            for off in [0usize, 5, 10, 40, 70, 100, 140, 160, 700, 1250, 1300, 1355] {
                let mut t = original.clone();
                t[s + off] ^= 0x01;
                std::fs::write(f, &t).unwrap();
                let srv = ServerProc::start(&w.data, &[]);
                // The port changes on restart: re-register (idempotent) to point the keystore at it.
                if srv.url != url {
                    ok(&w.patient, &["register", "--server", &srv.url]);
                    url = srv.url.clone();
                }
                let (code, v) = get(&w, &doc, &out);
                assert_eq!(
                    code, 4,
                    "wrap flip at +{off} must be an integrity failure: {v}"
                );
                assert!(!out.exists());
                flips += 1;
                srv.stop();
                std::fs::write(f, &original).unwrap();
            }
        }
    }
    assert!(flips >= 10, "the wrap was not found in the database files");
}

#[test]
fn bad_inputs_get_typed_errors() {
    let (w, server) = world(&["--max-blob-bytes", "4096"]);
    // Wrong passphrase: exit 3, uniform keystore error.
    let out = std::process::Command::new(bin())
        .args(["--json", "id", "show"])
        .env("SERMENT_HOME", &w.lab)
        .env("SERMENT_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "keystore");
    // Unknown recipient: not pinned (exit 2), and not in the directory (exit 6).
    let f = w.root.join("small.txt");
    std::fs::write(&f, b"hello").unwrap();
    let (code, v) = run(&w.lab, &["put", f.to_str().unwrap(), "--to", "nobody"]);
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (2, Some("unknown_contact")),
        "{v}"
    );
    let (code, _) = run(&w.lab, &["contact", "add", "nobody"]);
    assert_eq!(code, 6);
    let (code, _) = run(&w.lab, &["contact", "add", "../etc"]);
    assert_eq!(code, 2);
    // Oversized upload: refused with 413, nothing committed, nothing left in tmp/.
    let big = w.root.join("big.bin");
    std::fs::write(&big, vec![7u8; 100_000]).unwrap();
    let (code, v) = run(
        &w.lab,
        &["put", big.to_str().unwrap(), "--to", "patient-x1"],
    );
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("413"),
        "{v}"
    );
    assert!(
        ok(&w.patient, &["ls"])["documents"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(std::fs::read_dir(w.data.join("tmp")).unwrap().count(), 0);
    // A bad document id on the command line.
    let (code, _) = run(&w.patient, &["get", "../../etc/passwd", "-o", "x"]);
    assert_eq!(code, 2);
    drop(server);
}

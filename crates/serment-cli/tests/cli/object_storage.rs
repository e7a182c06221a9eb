//! `serve --blob-url s3://…` (issue 11 §3) against a real S3-compatible server (moto, started by
//! `.ci/s3.sh`): documents too large to sit inline in the database go to the bucket, never to the
//! data directory, and read back byte for byte, a multipart-sized one included. Then the bucket is
//! treated as hostile storage: a flipped byte in a stored object makes `get` exit 4 and write
//! nothing, and a deleted object makes it exit 4 "withheld" (the log proves the version exists).
//!
//! Skips with a message when `AWS_ENDPOINT_URL` is unset; fails when `CI=true`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::Path;

use common::*;

/// The bucket's owner, as the test speaks for it: the test plays the operator who holds the
/// storage credentials (bucket creation, and below the tampering). moto reads the access key
/// from the SigV4 `Authorization` header but does not check the signature, which spares the test
/// a SigV4 implementation; it runs against moto only.
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=serment-ci/20261206/us-east-1/s3/aws4_request, \
                    SignedHeaders=host, Signature=00";

/// The S3 test server's endpoint and a fresh bucket on it, or `None` (skip).
fn bucket() -> Option<(String, String)> {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but AWS_ENDPOINT_URL is not set: .ci/run must start the S3 test server"
        );
        eprintln!("SKIP: no S3 test server (`source .ci/s3.sh` starts moto on loopback)");
        return None;
    };
    let name = format!("serment-cli-{}", std::process::id());
    ureq::put(&format!("{endpoint}/{name}"))
        .header("authorization", AUTH)
        .send_empty()
        .expect("create the test bucket");
    Some((endpoint, name))
}

/// The keys under `prefix` in the bucket (ListObjectsV2's XML, read for its `<Key>` elements).
fn keys(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let xml = ureq::get(&format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}"))
        .header("authorization", AUTH)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(str::to_owned)
        .collect()
}

fn object(endpoint: &str, bucket: &str, key: &str) -> Vec<u8> {
    ureq::get(&format!("{endpoint}/{bucket}/{key}"))
        .header("authorization", AUTH)
        .call()
        .unwrap()
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap()
}

fn put_object(endpoint: &str, bucket: &str, key: &str, bytes: &[u8]) {
    ureq::put(&format!("{endpoint}/{bucket}/{key}"))
        .header("authorization", AUTH)
        .send(bytes)
        .unwrap();
}

fn get(home: &Path, doc: &str, out: &Path) -> (i32, serde_json::Value) {
    run(home, &["get", doc, "-o", out.to_str().unwrap()])
}

#[test]
fn blobs_live_in_the_bucket_and_the_bucket_is_not_trusted() {
    let Some((endpoint, bucket)) = bucket() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let blob_url = format!("s3://{bucket}/site-a");
    let server = ServerProc::start(&data, &["--blob-url", &blob_url]);
    let (lab, patient) = (root.join("lab"), root.join("patient"));
    ok(&lab, &["id", "new", "--name", "labo-s3"]);
    ok(&patient, &["id", "new", "--name", "patient-s3"]);
    ok(&lab, &["register", "--server", &server.url]);
    ok(&patient, &["register", "--server", &server.url]);
    ok(&lab, &["contact", "add", "patient-s3"]);
    ok(&patient, &["contact", "add", "labo-s3"]);

    // 1 MiB (one conditional PutObject) and 12 MiB (multipart upload, then conditional copy).
    let mut docs = Vec::new();
    for (name, len) in [("report.pdf", 1usize << 20), ("scan.dcm", 12 << 20)] {
        let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let f = root.join(name);
        std::fs::write(&f, &content).unwrap();
        let v = ok(&lab, &["put", f.to_str().unwrap(), "--to", "patient-s3"]);
        docs.push((v["doc_id"].as_str().unwrap().to_owned(), content));
    }
    for (doc, content) in &docs {
        let out = root.join("out.bin");
        let (code, v) = get(&patient, doc, &out);
        assert_eq!(code, 0, "{v}");
        assert_eq!(&std::fs::read(&out).unwrap(), content);
        std::fs::remove_file(&out).unwrap();
    }
    // The blobs are in the bucket, under the prefix, and not in the data directory.
    let stored = keys(&endpoint, &bucket, "site-a/blobs/");
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(keys(&endpoint, &bucket, "site-a/tmp/").is_empty());
    let local_blobs = data.join("blobs");
    assert!(
        !local_blobs.exists() || files_under(&local_blobs).is_empty(),
        "no blob in the data directory"
    );

    // Hostile storage: one byte of the 1 MiB object flipped.
    let small = stored
        .iter()
        .find(|k| object(&endpoint, &bucket, k).len() < 4 << 20)
        .unwrap()
        .clone();
    let original = object(&endpoint, &bucket, &small);
    let doc_small = &docs[0].0;
    for pos in [10, original.len() / 2, original.len() - 1] {
        let mut t = original.clone();
        t[pos] ^= 0x01;
        put_object(&endpoint, &bucket, &small, &t);
        let out = root.join("tampered.bin");
        let (code, v) = get(&patient, doc_small, &out);
        assert_eq!(code, 4, "flip at {pos}: {v}");
        assert!(!out.exists(), "no output after an integrity failure");
    }
    // Deleted: the log proves the version, so the client calls it withheld (exit 4).
    ureq::delete(&format!("{endpoint}/{bucket}/{small}"))
        .header("authorization", AUTH)
        .call()
        .unwrap();
    let (code, v) = get(&patient, doc_small, &root.join("gone.bin"));
    assert_eq!(code, 4, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("withheld"),
        "{v}"
    );
    // Restored from a copy: readable again.
    put_object(&endpoint, &bucket, &small, &original);
    let (code, v) = get(&patient, doc_small, &root.join("back.bin"));
    assert_eq!(code, 0, "{v}");
    server.stop();
}

/// A malformed `--blob-url` is bad input (exit 2, the setting named), before anything starts.
#[test]
fn a_malformed_blob_url_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["ftp://bucket", "s3://UPPER", "s3://", "file://relative/dir"] {
        let out = std::process::Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--blob-url", bad])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("blob_url"), "{bad}: {stderr}");
    }
}

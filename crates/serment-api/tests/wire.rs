//! The wire types: requests refuse unknown fields, optional request fields are left out when
//! absent, secrets stay out of `Debug`, and no other crate declares an API type a second time.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serment_api::{
    CommitRequest, HistoryResponse, RegisterDeviceRequest, TokenResponse, VersionResponse,
};

#[test]
fn requests_refuse_unknown_fields() {
    let e = serde_json::from_str::<RegisterDeviceRequest>(r#"{"record":"AA","admin":true}"#)
        .unwrap_err();
    assert!(e.to_string().contains("unknown field `admin`"), "{e}");
    let ok: RegisterDeviceRequest = serde_json::from_str(r#"{"record":"AA"}"#).unwrap();
    assert_eq!(ok.record, "AA");
}

#[test]
fn a_commit_request_leaves_out_absent_options() {
    let r = CommitRequest {
        doc_id: "00".repeat(16),
        doc_version: 1,
        blob_id: Some("ab".repeat(32)),
        blob: None,
        wraps: vec!["AA".into()],
        log_from: None,
    };
    let v = serde_json::to_value(&r).unwrap();
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["doc_id", "doc_version", "blob_id", "wraps"])
    );
    assert_eq!(serde_json::from_value::<CommitRequest>(v).unwrap(), r);
}

#[test]
fn responses_need_their_fields() {
    // A version answer without the tree size its proof is against is refused, not defaulted.
    let e = serde_json::from_str::<VersionResponse>(
        r#"{"doc_id":"x","doc_version":1,"author_device":"a","author_identity":"b",
            "blob_id":"c","size":1,"created_at":0,"wrap":null,"wrap_entry":null,"access_index":null}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing field `log_size`"), "{e}");
    let e = serde_json::from_str::<HistoryResponse>(r#"{"size":1,"checkpoint":"c","entries":[]}"#)
        .unwrap_err();
    assert!(e.to_string().contains("missing field `devices`"), "{e}");
}

#[test]
fn a_token_stays_out_of_debug() {
    let t = TokenResponse {
        token: "c2VjcmV0LXNlc3Npb24tdG9rZW4".into(),
        expires_in: 900,
    };
    let d = format!("{t:?}");
    assert!(!d.contains(&t.token), "{d}");
    assert!(d.contains("900"), "{d}");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The names of the structs declared in `files`.
fn declared(files: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(i) = words.iter().position(|w| *w == "struct")
                && let Some(name) = words.get(i + 1)
            {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((name, f.clone()));
            }
        }
    }
    out
}

/// Issue 13 §1: the request and response bodies are declared here only. Every other crate's
/// sources (library, binaries and tests) are scanned for a struct of the same name.
#[test]
fn no_api_type_is_declared_twice() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut own = Vec::new();
    rust_files(&root.join("src"), &mut own);
    let api: BTreeSet<String> = declared(&own).into_iter().map(|(n, _)| n).collect();
    assert!(api.len() >= 30, "{api:?}");
    let mut others = Vec::new();
    for e in std::fs::read_dir(root.join("..")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name() != root.file_name() && p.join("Cargo.toml").is_file() {
            rust_files(&p, &mut others);
        }
    }
    assert!(others.len() > 50, "found {} files", others.len());
    let twice: Vec<String> = declared(&others)
        .into_iter()
        .filter(|(n, _)| api.contains(n))
        .map(|(n, f)| format!("{n} in {}", f.display()))
        .collect();
    assert!(twice.is_empty(), "API types declared again: {twice:?}");
}

//! Transport security through the real binary (issue 10 §1): plain HTTP outside loopback is
//! refused unless `--insecure-http` is given (with a warning), and a `--ca-cert` that is not a
//! certificate is bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::process::Command;

use common::*;

/// Runs `serment --json ARGS` and returns (exit code, JSON stdout, stderr).
fn run_full(home: &std::path::Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(bin())
        .arg("--json")
        .args(args)
        .env("SERMENT_HOME", home)
        .env("SERMENT_PASSPHRASE", PASS)
        .env_remove("SERMENT_SERVER")
        .env_remove("SERMENT_CA_CERT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plain_http_outside_loopback_needs_insecure_http() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("u");
    ok(
        &home,
        &["id", "new", "--name", "tls-user", "--kdf", "floor"],
    );
    // `.invalid` never resolves (RFC 6761): nothing leaves the machine either way.
    let url = "http://serment-test.invalid:7878";
    let (code, v, _) = run_full(&home, &["register", "--server", url]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["code"], "input", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("plain http://") && msg.contains("--insecure-http"),
        "{msg}"
    );
    // With the flag the URL is accepted (the connection then fails: exit 5), and a warning is
    // printed.
    let (code, v, stderr) = run_full(&home, &["--insecure-http", "register", "--server", url]);
    assert_eq!(code, 5, "{v}");
    assert!(stderr.contains("warning: --insecure-http"), "{stderr}");
    // Nothing was recorded in the keystore.
    let show = ok(&home, &["id", "show"]);
    assert_eq!(show["registered"], false, "{show}");
}

#[test]
fn a_ca_cert_that_is_not_a_certificate_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("u");
    ok(
        &home,
        &["id", "new", "--name", "tls-user", "--kdf", "floor"],
    );
    let bad = tmp.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let bad = bad.to_str().unwrap();
    let (code, v, _) = run_full(
        &home,
        &[
            "--ca-cert",
            bad,
            "register",
            "--server",
            "https://127.0.0.1:1",
        ],
    );
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no PEM CERTIFICATE"),
        "{v}"
    );
    let missing = tmp.path().join("missing.pem");
    let (code, v, _) = run_full(
        &home,
        &[
            "--ca-cert",
            missing.to_str().unwrap(),
            "register",
            "--server",
            "https://127.0.0.1:1",
        ],
    );
    assert_eq!(code, 1, "{v}");
}

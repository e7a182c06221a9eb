//! Issue 13 §4: the patient's page in real Chromium. Starts `serment serve` over TLS (a
//! self-signed certificate for 127.0.0.1) and runs `node --test` in `tests/browser/`
//! (playwright-core driving Debian's `/usr/bin/chromium`): headers, SRI, the script runs, no
//! request leaves the origin, a tampered asset is refused. The screenshot is kept in
//! `target/browser-artifacts/`.
//!
//! Needs `/usr/bin/chromium`, `node` and `tests/browser/node_modules` (`npm ci` there); `.ci/run`
//! installs them. Without them the test says what is missing and passes, except with `CI=true`,
//! where it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("browser tests: {what} (CI=true: .ci/run must install it)");
    }
    eprintln!("SKIPPED browser tests: {what}; `.ci/run` installs Chromium and playwright-core");
}

#[test]
fn the_page_in_chromium() {
    let dir = root().join("tests/browser");
    if !Path::new("/usr/bin/chromium").is_file() {
        return missing("/usr/bin/chromium is not installed (apt-get install chromium)");
    }
    if Command::new("node").arg("--version").output().is_err() {
        return missing("node is not installed");
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        return missing("tests/browser/node_modules is missing (npm ci in tests/browser)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_pem, key_pem) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let server = ServerProc::start(
        &tmp.path().join("data"),
        &[
            "--tls-cert",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let artifacts = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("browser-artifacts");
    let out = Command::new("node")
        .args(["--test", "page.test.mjs"])
        .current_dir(&dir)
        .env("SERMENT_URL", &server.url)
        .env("SERMENT_ARTIFACTS", &artifacts)
        .output()
        .unwrap();
    server.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# pass 2"), "{stdout}");
    assert!(artifacts.join("page-login.png").is_file());
}

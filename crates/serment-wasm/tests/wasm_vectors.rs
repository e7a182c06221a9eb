//! The test vectors under WebAssembly (issue 13 §2): builds `serment-wasm` for
//! `wasm32-unknown-unknown`, binds it with `wasm-bindgen --target nodejs` (the CLI pinned to the
//! library's version in Cargo.lock), runs every vector under Node.js, and requires the verdicts to
//! be exactly the native ones (which `native_vectors.rs` checks against the files).
//!
//! Needs the rustup target, `wasm-bindgen` and `node` (`.ci/run` installs them). Without them the
//! test says what is missing and passes, except with `CI=true`, where it fails.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serment_wasm::vectors::{Verdict, run};

mod common;

const TARGET: &str = "wasm32-unknown-unknown";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skips (or fails under CI) when a tool is missing.
fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("wasm vectors: {what} (CI=true: .ci/run must install it)");
    }
    eprintln!("SKIPPED wasm_vectors: {what}; `.ci/run` installs the wasm toolchain");
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The wasm-bindgen library version in Cargo.lock: the CLI must be the same.
fn locked_wasm_bindgen() -> String {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"wasm-bindgen\"" {
            let v = lines.next().unwrap();
            return v
                .trim_start_matches("version = \"")
                .trim_end_matches('"')
                .to_owned();
        }
    }
    panic!("Cargo.lock has no wasm-bindgen");
}

#[test]
fn vectors_give_the_same_verdicts_in_wasm() {
    let native: Vec<Verdict> = run(&common::vector_files()).unwrap();

    let libdir =
        output(Command::new("rustc").args(["--print", "target-libdir", "--target", TARGET]));
    if !libdir.is_some_and(|d| Path::new(&d).is_dir()) {
        return missing(&format!("the rustup target {TARGET} is not installed"));
    }
    let want = locked_wasm_bindgen();
    match output(Command::new("wasm-bindgen").arg("--version")) {
        Some(v) if v == format!("wasm-bindgen {want}") => {}
        Some(v) => return missing(&format!("{v} found, wasm-bindgen {want} needed")),
        None => return missing(&format!("wasm-bindgen {want} is not installed")),
    }
    let Some(node) = output(Command::new("node").arg("--version")) else {
        return missing("node is not installed");
    };

    // A target directory of its own: the outer `cargo test` holds the lock of its own.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("wasm-vectors");
    let status = Command::new(env!("CARGO"))
        .current_dir(root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "serment-wasm",
            "--target",
            TARGET,
        ])
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --target {TARGET} failed");
    let wasm = target_dir.join(TARGET).join("release/serment_wasm.wasm");
    let pkg = target_dir.join("pkg");
    let status = Command::new("wasm-bindgen")
        .args(["--target", "nodejs", "--out-dir"])
        .arg(&pkg)
        .arg(&wasm)
        .status()
        .unwrap();
    assert!(status.success(), "wasm-bindgen failed");
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_vectors.mjs"))
        .arg(&pkg)
        .arg(root().join("tests/vectors"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let in_wasm: Vec<Verdict> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(in_wasm, native, "wasm and native verdicts differ");
    assert!(in_wasm.iter().all(|v| v.got == v.expect));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "{} vector checks, same verdicts in wasm (node {node}); serment_wasm.wasm {} bytes, after wasm-bindgen {} bytes",
        in_wasm.len(),
        size(&wasm),
        size(&pkg.join("serment_wasm_bg.wasm"))
    );
}

//! `serment seal` / `serment open` / `serment id export-record` through the real binary
//! (PROTOCOL.md §6.4): round trip for each recipient, and on any tamper or wrong key an error with
//! no output file left behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_serment"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env("SERMENT_PASSPHRASE", "offline-test-passphrase")
        .output()
        .unwrap()
}

fn ok(home: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = run(home, &a);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn seal_open_round_trip_and_tamper() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n);
    let s = |n: &str| p(n).to_str().unwrap().to_owned();
    for who in ["lab", "patient", "gp", "mallory"] {
        ok(&p(who), &["id", "new", "--name", who, "--kdf", "floor"]);
        ok(
            &p(who),
            &["id", "export-record", "-o", &s(&format!("{who}.rec"))],
        );
    }
    // Three chunks and a bit, so several chunks and padding are covered.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(p("report.bin"), &data).unwrap();
    let v = ok(
        &p("lab"),
        &[
            "seal",
            &s("report.bin"),
            "-o",
            &s("report.srmc"),
            "--to-record",
            &s("patient.rec"),
            &s("gp.rec"),
        ],
    );
    assert_eq!(v["devices"], 3, "{v}");
    assert_eq!(v["plaintext_bytes"], 200_000);
    for who in ["patient", "gp"] {
        let out = s(&format!("{who}.out"));
        let v = ok(
            &p(who),
            &[
                "open",
                &s("report.srmc"),
                "-o",
                &out,
                "--author-record",
                &s("lab.rec"),
            ],
        );
        assert_eq!(v["verified"], true);
        assert_eq!(std::fs::read(&out).unwrap(), data);
    }
    // The author opens its own container without a record.
    ok(&p("lab"), &["open", &s("report.srmc"), "-o", &s("lab.out")]);
    assert_eq!(std::fs::read(p("lab.out")).unwrap(), data);

    let fails = |home: &str, container: &str, author: &str| {
        let out = p("fail.out");
        let o = run(
            &p(home),
            &[
                "open",
                container,
                "-o",
                out.to_str().unwrap(),
                "--author-record",
                &s(author),
            ],
        );
        assert!(!o.status.success(), "{home} {container} {author}");
        assert!(!out.exists(), "no output after a failure");
        o.status.code().unwrap()
    };
    // Not a recipient; wrong author record.
    assert_eq!(fails("mallory", &s("report.srmc"), "lab.rec"), 4);
    assert_eq!(fails("patient", &s("report.srmc"), "gp.rec"), 4);
    // A flipped byte in the wraps, the header, a chunk and the trailer.
    let sealed = std::fs::read(p("report.srmc")).unwrap();
    for at in [
        12,
        // Three suite-3 (X-Wing) wraps of 1356 bytes each (PROTOCOL.md §7): every device is hybrid.
        10 + 3 * 1356 + 20,
        10 + 3 * 1356 + 76 + 70_000,
        sealed.len() - 3,
    ] {
        let mut t = sealed.clone();
        t[at] ^= 0x10;
        std::fs::write(p("t.srmc"), &t).unwrap();
        assert_ne!(fails("patient", &s("t.srmc"), "lab.rec"), 0, "flip at {at}");
    }
    // Truncated.
    std::fs::write(p("t.srmc"), &sealed[..sealed.len() - 100]).unwrap();
    assert_eq!(fails("patient", &s("t.srmc"), "lab.rec"), 4);
    // A content file that is not a device record.
    let o = run(
        &p("lab"),
        &[
            "seal",
            &s("report.bin"),
            "-o",
            &s("x.srmc"),
            "--to-record",
            &s("report.bin"),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!p("x.srmc").exists());
}

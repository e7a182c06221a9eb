//! Every exit code of the README's table, each with its `--json` error object (issue 18): 0 ok,
//! 1 local file I/O, 2 bad input, 3 keystore/passphrase, 4 integrity failure, 5 server or network,
//! 6 not found. Also: usage errors honour `--json`, commands before `id new` say so before asking
//! for a passphrase, `get -o` never overwrites without `--force`, and each error cause is printed
//! once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// Runs `serment ARGS` (no `--json` added) with no passphrase in the environment and no terminal;
/// returns (exit code, stdout, stderr).
fn raw(home: &Path, args: &[&str], passphrase: Option<&str>) -> (i32, String, String) {
    let mut c = Command::new(bin());
    c.args(args)
        .env("SERMENT_HOME", home)
        .env_remove("SERMENT_PASSPHRASE")
        .env_remove("SERMENT_SERVER")
        .stdin(Stdio::null());
    if let Some(p) = passphrase {
        c.env("SERMENT_PASSPHRASE", p);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn each_exit_code_with_its_json_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (lab, patient, gp) = (root.join("lab"), root.join("patient"), root.join("gp"));

    // 3: no keystore yet, said before any passphrase is asked for (no terminal, no variable).
    let (code, out, err) = raw(&lab, &["--json", "ls"], None);
    assert_eq!(code, 3, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(error_code(&v), "no_keystore", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("serment id new")
    );
    assert!(
        !err.contains("passphrase"),
        "asked for a passphrase first: {err}"
    );

    // 3: a passphrase too short for a new keystore, stated with the rule; nothing created.
    let (code, out, _) = raw(
        &lab,
        &["--json", "id", "new", "--name", "labo"],
        Some("short"),
    );
    assert_eq!(code, 3, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(error_code(&v), "passphrase");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 8")
    );
    assert!(!lab.join("keystore.srmk").exists());
    // 3: long enough but common, a pattern, or the handle itself (the newcomer's H18): refused,
    // saying why, without the passphrase in the message; nothing created.
    for weak in [
        "12345678",
        "password1",
        "azertyuiop",
        "labo-biomed2024",
        "aaaaaaaaaaaa",
    ] {
        let (code, out, _) = raw(
            &lab,
            &["--json", "id", "new", "--name", "labo-biomed"],
            Some(weak),
        );
        assert_eq!(code, 3, "{weak}: {out}");
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(error_code(&v), "passphrase", "{weak}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("too easy to guess"), "{weak}: {message}");
        assert!(
            !message.contains(weak),
            "the passphrase in the message: {message}"
        );
        assert!(!lab.join("keystore.srmk").exists(), "{weak}");
    }
    // 3: no passphrase and no terminal to ask on.
    let (code, _, err) = raw(&lab, &["id", "new", "--name", "labo"], None);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("SERMENT_PASSPHRASE"), "{err}");
    assert!(
        err.contains("at least 8 characters"),
        "rule stated before the prompt: {err}"
    );

    // 2: a bad handle is refused before the passphrase is asked for.
    let (code, _, err) = raw(&lab, &["id", "new", "--name", "../etc"], None);
    assert_eq!(code, 2, "{err}");

    // 0: identities.
    ok(&lab, &["id", "new", "--name", "labo-x", "--kdf", "floor"]);
    ok(
        &patient,
        &["id", "new", "--name", "patient-x", "--kdf", "floor"],
    );
    ok(&gp, &["id", "new", "--name", "gp-x", "--kdf", "floor"]);

    // 3: a wrong passphrase, its cause printed once.
    let (code, out, err) = raw(&lab, &["id", "show"], Some("not the passphrase"));
    assert_eq!(code, 3, "{out}{err}");
    let first = err.lines().next().unwrap_or_default().to_owned();
    assert!(first.starts_with("serment: error: keystore"), "{err}");
    for line in err.lines().skip(1) {
        let cause = line.trim().trim_start_matches("caused by: ");
        assert!(!first.contains(cause), "cause printed twice: {err}");
    }

    // 2: usage errors honour --json.
    let (code, out, _) = raw(&lab, &["--json", "put"], None);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("usage error as JSON");
    assert_eq!(error_code(&v), "usage", "{v}");
    let (code, _, err) = raw(&lab, &["frobnicate"], None);
    assert_eq!(code, 2, "{err}");

    // 5: the server cannot be reached.
    let (code, v) = run(&lab, &["register", "--server", "http://127.0.0.1:1"]);
    assert_eq!(code, 5, "{v}");
    assert_eq!(error_code(&v), "transport", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("http://127.0.0.1:1"),
        "the unreachable server is not named: {v}"
    );

    let data = root.join("data");
    let server = ServerProc::start(&data, &[]);
    for h in [&lab, &patient, &gp] {
        ok(h, &["register", "--server", &server.url]);
    }
    ok(&lab, &["contact", "add", "patient-x"]);
    ok(&lab, &["contact", "add", "gp-x"]);
    ok(&patient, &["contact", "add", "labo-x"]);
    ok(&patient, &["contact", "add", "gp-x"]);
    let f = root.join("report.txt");
    std::fs::write(&f, b"Compte rendu: glycemie 5.1 mmol/L").unwrap();
    let put = ok(&lab, &["put", f.to_str().unwrap(), "--to", "patient-x"]);
    let doc = put["doc_id"].as_str().unwrap().to_owned();

    // 1: `get -o` onto an existing file is refused before anything is fetched; --force replaces.
    let existing = root.join("existing.txt");
    std::fs::write(&existing, b"keep me").unwrap();
    let (code, v) = run(&patient, &["get", &doc, "-o", existing.to_str().unwrap()]);
    assert_eq!((code, error_code(&v)), (1, "output_exists"), "{v}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    let acc = ok(&patient, &["accesses", &doc]);
    assert!(
        acc["accesses"].as_array().unwrap().is_empty(),
        "a refused get fetched something: {acc}"
    );
    ok(
        &patient,
        &["get", &doc, "-o", existing.to_str().unwrap(), "--force"],
    );
    assert_eq!(
        std::fs::read(&existing).unwrap(),
        b"Compte rendu: glycemie 5.1 mmol/L"
    );
    // 1: a missing output directory is named, without the temporary file's path.
    let (code, v) = run(
        &patient,
        &["get", &doc, "-o", root.join("nodir/x").to_str().unwrap()],
    );
    assert_eq!(code, 1, "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("does not exist") && !m.contains(".part"), "{m}");

    // 0: upper-case document ids are accepted.
    let out = root.join("upper.txt");
    ok(
        &patient,
        &[
            "get",
            &doc.to_ascii_uppercase(),
            "-o",
            out.to_str().unwrap(),
        ],
    );

    // 2: only the author can share, and saying so is not an integrity alarm.
    let (code, v) = run(&patient, &["share", &doc, "--to", "gp-x"]);
    assert_eq!((code, error_code(&v)), (2, "not_author"), "{v}");

    // 0: the author shares; sharing again with the same contact adds nothing and is no error.
    assert_eq!(ok(&lab, &["share", &doc, "--to", "gp-x"])["devices"], 1);
    assert_eq!(ok(&lab, &["share", &doc, "--to", "gp-x"])["devices"], 0);

    // 6: a document that does not exist.
    let (code, v) = run(
        &patient,
        &[
            "get",
            "0123456789abcdef0123456789abcdef",
            "-o",
            root.join("none").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 6, "{v}");

    // 4: a flipped byte in a stored blob (a document too large to be stored inline) is an
    // integrity failure, and no file is written.
    let big = root.join("big.bin");
    std::fs::write(&big, vec![0x5a; 400_000]).unwrap();
    let put = ok(&lab, &["put", big.to_str().unwrap(), "--to", "patient-x"]);
    let big_doc = put["doc_id"].as_str().unwrap().to_owned();
    let blob = files_under(&data.join("blobs"))
        .into_iter()
        .find(|p| p.ends_with(put["blob_id"].as_str().unwrap()))
        .expect("the large document is a blob file");
    let mut b = std::fs::read(&blob).unwrap();
    let i = b.len() / 2;
    b[i] ^= 1;
    std::fs::write(&blob, b).unwrap();
    let (code, v) = run(
        &patient,
        &["get", &big_doc, "-o", root.join("t").to_str().unwrap()],
    );
    assert_eq!((code, error_code(&v)), (4, "integrity"), "{v}");
    assert!(!root.join("t").exists());
    drop(server);
}

//! `serment import-fhir` and `serment demo` on hostile bundles (issue 10 §5): every
//! defect exits 2 with a message naming the path in the bundle, nothing is uploaded,
//! `--allow-dangling` lets dangling references through as warnings, test INS
//! identities are reported, and `demo` leaves nothing behind when an input fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

/// A shipped example (in the repository): a `collection` Bundle whose Patient carries
/// a test INS (OID .10) and whose DiagnosticReport (entry 3) lists five Observations.
const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/fhir/bilan-lipidique.json"
);

fn example() -> String {
    std::fs::read_to_string(EXAMPLE).unwrap()
}

/// `text` with the first `from` replaced by `to`; panics if `from` is absent.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the example");
    text.replacen(from, to, 1)
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// The hostile edits, each with the path its error must name.
fn hostile() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let b = example();
    let mut mixed = serde_json::from_str::<serde_json::Value>(&b).unwrap();
    mixed["entry"][0]["resource"]["identifier"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "167112A00412364"}));
    vec![
        (
            "duplicate-key",
            edit(
                &b,
                r#""resourceType": "Patient","#,
                r#""resourceType": "Patient", "resourceType": "Bundle","#,
            )
            .into_bytes(),
            "duplicate JSON key \"resourceType\" in entry[0].resource",
        ),
        (
            "bad-id",
            edit(&b, r#""id": "obs-hdl""#, r#""id": "../../etc/passwd""#).into_bytes(),
            "entry[5].resource.id",
        ),
        (
            "bad-base64",
            edit(
                &b,
                r#""resourceType": "Practitioner","#,
                r#""resourceType": "Practitioner", "photo": [{"data": "SGVsbG9="}],"#,
            )
            .into_bytes(),
            "entry[2].resource.photo[0].data",
        ),
        (
            "dangling",
            edit(
                &b,
                r#""reference": "Observation/obs-ldl""#,
                r#""reference": "Observation/obs-gone""#,
            )
            .into_bytes(),
            "entry[3].resource.result[2].reference",
        ),
        (
            "mixed-ins",
            serde_json::to_vec(&mixed).unwrap(),
            "entry[0].resource.identifier",
        ),
    ]
}

#[test]
fn import_fhir_refuses_hostile_bundles_and_uploads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = ServerProc::start(&root.join("data"), &[]);
    let (lab, patient) = (root.join("lab"), root.join("patient"));
    ok(&lab, &["id", "new", "--name", "labo-fhir"]);
    ok(&patient, &["id", "new", "--name", "patient-fhir"]);
    ok(&lab, &["register", "--server", &server.url]);
    ok(&patient, &["register", "--server", &server.url]);
    ok(&lab, &["contact", "add", "patient-fhir"]);

    for (name, bytes, path) in hostile() {
        let f = write(root, &format!("{name}.json"), &bytes);
        let (code, v) = run(
            &lab,
            &["import-fhir", f.to_str().unwrap(), "--to", "patient-fhir"],
        );
        assert_eq!(code, 2, "{name}: {v}");
        assert_eq!(v["error"]["code"], "fhir", "{name}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(path), "{name}: {msg:?} does not name {path}");
    }
    let ls = ok(&patient, &["ls"]);
    assert!(ls["documents"].as_array().unwrap().is_empty(), "{ls}");

    // --allow-dangling: imported, the dangling reference named in the warnings.
    let dangling = hostile().into_iter().find(|h| h.0 == "dangling").unwrap();
    let f = write(root, "dangling-allowed.json", &dangling.1);
    let v = ok(
        &lab,
        &[
            "import-fhir",
            f.to_str().unwrap(),
            "--to",
            "patient-fhir",
            "--allow-dangling",
        ],
    );
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("entry[3].resource.result[2].reference")),
        "{v}"
    );
    // The example's patient has a test INS: reported as such, per patient and per INS.
    assert_eq!(v["test_identities"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["ins"][0]["test_identity"], true, "{v}");
    assert!(
        !ok(&patient, &["ls"])["documents"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A UTF-8 BOM is skipped, and named in a warning.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(example().as_bytes());
    let f = write(root, "bom.json", &bom);
    let v = ok(
        &lab,
        &["import-fhir", f.to_str().unwrap(), "--to", "patient-fhir"],
    );
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("byte order mark"),
        "{v}"
    );
    drop(server);
}

#[test]
fn import_fhir_refuses_before_any_keystore_or_server() {
    // Parsing comes before the keystore: no server is needed to see a refusal, and
    // the text form of the error names the path too.
    let tmp = tempfile::tempdir().unwrap();
    let (_, bytes, path) = hostile().into_iter().next().unwrap();
    let f = write(tmp.path(), "dup.json", &bytes);
    let out = std::process::Command::new(bin())
        .args(["import-fhir", f.to_str().unwrap(), "--to", "x"])
        .env("SERMENT_HOME", tmp.path().join("home"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(path), "{stderr}");
}

#[test]
fn demo_writes_nothing_when_its_input_does_not_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("tmpdir");
    std::fs::create_dir(&scratch).unwrap();
    let data = tmp.path().join("demo-data");
    for (name, bytes, path) in hostile() {
        let f = write(tmp.path(), &format!("{name}.json"), &bytes);
        let out = std::process::Command::new(bin())
            .args(["--json", "demo", "--input", EXAMPLE, "--input"])
            .arg(&f)
            .arg("--data-dir")
            .arg(&data)
            .env("TMPDIR", &scratch)
            .env("SERMENT_HOME", tmp.path().join("home"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(path),
            "{name}: {v}"
        );
        assert!(!data.exists(), "{name}: demo created {}", data.display());
        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "{name}: demo left files in TMPDIR"
        );
        assert!(!tmp.path().join("home").exists(), "{name}");
    }
}

//! The main job: `serment demo` on the shipped examples and on every real bundle in
//! ../shared/data/fhir (required when CI=true).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common;

use common::*;

fn demo(args: &[&str]) -> serde_json::Value {
    let home = tempfile::tempdir().unwrap();
    let mut a = vec!["demo"];
    a.extend_from_slice(args);
    ok(home.path(), &a)
}

fn assert_clean(v: &serde_json::Value) {
    let docs = v["documents"].as_u64().unwrap();
    assert!(docs > 0, "{v}");
    assert_eq!(v["verified"].as_u64().unwrap(), docs, "{v}");
    // Issue 15: every device advertises an X-Wing key, so every document is wrapped with it.
    let per = v["per_document"].as_array().unwrap();
    assert_eq!(per.len() as u64, docs, "{v}");
    for d in per {
        assert_eq!(d["kem"], "X-Wing", "{d}");
        assert_eq!(d["verified"], true, "{d}");
    }
    assert_eq!(v["plaintext_hits"].as_u64().unwrap(), 0, "{v}");
    // Every step ran over HTTPS, against a throwaway CA (issue 10 §1).
    assert_eq!(v["tls"], true, "{v}");
    assert!(
        v["server_url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:"),
        "{v}"
    );
    assert!(v["sensitive_strings_checked"].as_u64().unwrap() > 0, "{v}");
    assert!(v["stored_bytes"].as_u64().unwrap() >= v["plaintext_bytes"].as_u64().unwrap());
    for k in ["plaintext_bytes", "stored_bytes", "seconds"] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    // Issue 16: the care team. Three member devices (the cardiologist's two, one linked with
    // the pairing code, and the GP's) read the report shared with the team; the GP is removed,
    // which opens epoch 2, and the GP's read of the next report fails (exit 4 or 6): the flag
    // comes from that read's error.
    assert_eq!(v["team"], "cardio-chu", "{v}");
    assert_eq!(v["team_devices_read"], 3, "{v}");
    assert_eq!(v["team_epoch"], 2, "{v}");
    let members: Vec<&str> = v["team_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(members, ["labo-biomed", "dr-cardiologue"], "{v}");
    assert_eq!(v["removed_member_denied"], true, "{v}");
    // Issue 17 §1: a patient who had not registered claimed the lab's report and read it.
    assert_eq!(v["provisional_claimed"], true, "{v}");
    assert_eq!(v["recovered_device_reads"], true, "{v}");
    let exit = v["removed_member_exit"].as_i64().unwrap();
    assert!(exit == 4 || exit == 6, "{v}");
    assert!(v["failures"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn demo_on_shipped_examples() {
    let v = demo(&[]);
    assert_clean(&v);
    assert_eq!(v["inputs"].as_array().unwrap().len(), 3);
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v}");
    // Every read was recorded: patient and GP fetched wrap and blob of every document.
    assert_eq!(
        v["access_events"].as_u64().unwrap(),
        4 * v["documents"].as_u64().unwrap()
    );
}

#[test]
fn demo_on_every_shared_bundle() {
    let Some(dir) = shared_fhir() else { return };
    let mut bundles: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    bundles.sort();
    assert!(bundles.len() >= 5, "expected the 5 shared bundles");
    for b in &bundles {
        let v = demo(&["--input", b.to_str().unwrap()]);
        assert_clean(&v);
        let name = b.file_name().unwrap().to_string_lossy();
        let warned = v["warnings"].as_array().unwrap().iter().any(|w| {
            w.as_str()
                .unwrap()
                .contains("189079912345678 has control key 78")
        });
        if name.starts_with("Bundle-Bundle-CRBio-Replace-ANS") {
            assert!(warned, "the ANS INS control key must be reported: {v}");
            let ins = &v["inputs"][0]["ins"][0];
            assert_eq!(ins["status"], "wrong_key", "{v}");
        }
    }
}

#[test]
fn demo_rejects_malformed_bundle_with_typed_error() {
    let home = tempfile::tempdir().unwrap();
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, b"{\"resourceType\": \"Bundle\", \"entry\": 5}").unwrap();
    let (code, v) = run(home.path(), &["demo", "--input", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["error"]["code"], "fhir");
}

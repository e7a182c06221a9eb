//! The vector checks of `serment_wasm::vectors`, run natively: every verdict is the one the
//! vector files name. `wasm_vectors.rs` runs the same checks compiled to wasm32.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serment_wasm::vectors::{FILES, Verdict, run};

mod common;
use common::vector_files;

#[test]
fn every_vector_gives_its_verdict_natively() {
    let verdicts: Vec<Verdict> = run(&vector_files()).unwrap();
    let wrong: Vec<&Verdict> = verdicts.iter().filter(|v| v.got != v.expect).collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Every file contributed, and the negative files all their cases.
    for f in FILES {
        assert!(verdicts.iter().any(|v| v.file == f), "{f} checked nothing");
    }
    let negatives = verdicts
        .iter()
        .filter(|v| v.file.starts_with("negative"))
        .count();
    assert!(negatives >= 16, "{negatives} negative cases");
    println!("{} vector checks, native", verdicts.len());
}

#[test]
fn a_tampered_vector_changes_the_verdict() {
    // The checks are not vacuous: flipping a byte of the keystore file or of a signature is seen.
    let mut files = vector_files();
    let ks = files.get_mut("keystore.json").unwrap();
    let mut v: serde_json::Value = serde_json::from_str(ks).unwrap();
    let file = v["file"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &file[..file.len() - 1],
        if file.ends_with('0') { '1' } else { '0' }
    );
    v["file"] = flipped.into();
    *ks = v.to_string();
    let sig = files.get_mut("http-signature.json").unwrap();
    let mut s: serde_json::Value = serde_json::from_str(sig).unwrap();
    s["cases"][0]["path"] = "/v1/documents".into();
    *sig = s.to_string();
    let verdicts = run(&files).unwrap();
    let got = |file: &str, case: &str| {
        verdicts
            .iter()
            .find(|v| v.file == file && v.case == case)
            .unwrap()
            .got
            .clone()
    };
    assert_eq!(got("keystore.json", "open"), "keystore_decrypt");
    assert_eq!(got("keystore.json", "reseal"), "bytes_differ");
    assert!(got("http-signature.json", "0-verify").starts_with("verify:"));
    assert_eq!(got("http-signature.json", "0-resign"), "signature_differs");
}

//! Helpers shared by the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code,
    unreachable_pub,
    clippy::panic
)]

use serde_json::Value;
use serment_fhir::{DocumentKind, FhirDocument, SplitBundle};

/// Canonical JSON text of every `entry[].resource` of an input bundle, sorted.
pub fn resources_in(bundle: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(bundle).unwrap();
    let mut out: Vec<String> = v["entry"]
        .as_array()
        .map(|a| a.iter().map(|e| e["resource"].to_string()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// The resources held by one output document, as parsed values.
pub fn doc_resources(doc: &FhirDocument) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&doc.content).unwrap();
    if doc.kind == DocumentKind::Patient {
        assert_eq!(v["resourceType"], "Patient");
        return vec![v];
    }
    assert_eq!(v["resourceType"], "Bundle");
    assert_eq!(v["type"], "collection");
    v["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

/// Canonical JSON text of every resource of every output document, sorted.
pub fn resources_out(split: &SplitBundle) -> Vec<String> {
    let mut out: Vec<String> = split
        .documents
        .iter()
        .flat_map(doc_resources)
        .map(|r| r.to_string())
        .collect();
    out.sort();
    out
}

/// Checks the properties every split must have.
pub fn check_invariants(input: &[u8], split: &SplitBundle) {
    assert_eq!(
        resources_in(input),
        resources_out(split),
        "resources in != out"
    );
    for d in &split.documents {
        assert_eq!(d.mime_type, "application/fhir+json");
        assert!(!d.title.is_empty());
        assert!(d.title.chars().count() <= 120);
        let first = doc_resources(d).into_iter().next().unwrap();
        let main_type = first["resourceType"].as_str().unwrap();
        match d.kind {
            DocumentKind::Remainder => assert_eq!(d.resource_type, "Bundle"),
            _ => assert_eq!(d.resource_type, main_type),
        }
    }
}

/// The bytes of one real sample bundle of `/work/shared/data/fhir` (see SOURCES.md
/// there), or `None` (after printing why) when the directory is absent outside CI.
/// In CI (`CI=true`) a missing file fails the test.
pub fn shared_sample(name: &str) -> Option<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/fhir")
        .join(name);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{} is missing and CI=true: {e}", path.display())
        }
        Err(e) => {
            eprintln!("SKIP: {}: {e}", path.display());
            None
        }
    }
}

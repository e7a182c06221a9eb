//! `split_bundle` and `sensitive_strings` on the real public FHIR R4 samples in
//! `/work/shared/data/fhir` (ANS "partage de documents de santé" IG examples and SMART
//! Synthea bundles; see SOURCES.md there). The files are read in place, never copied.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use common::check_invariants;
use serment_fhir::{DocumentKind, NirCheck, sensitive_strings, split_bundle};

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/fhir");

/// The sample bundles, or `None` (after printing why) when the directory is absent
/// outside CI. In CI (`CI=true`) a missing directory fails the test.
fn sample_files() -> Option<Vec<PathBuf>> {
    let dir = Path::new(DATA_DIR);
    if !dir.is_dir() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "FHIR sample directory {} is missing and CI=true: the real-data tests cannot run",
                dir.display()
            );
        }
        eprintln!("SKIP: FHIR sample directory {} not found", dir.display());
        return None;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .json file in {}", dir.display());
    Some(files)
}

#[test]
fn every_sample_splits_and_keeps_every_resource_once() {
    let Some(files) = sample_files() else { return };
    for path in files {
        let input = std::fs::read(&path).unwrap();
        let s = split_bundle(&input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!s.documents.is_empty(), "{}", path.display());
        check_invariants(&input, &s);
        let kinds = |k| s.documents.iter().filter(|d| d.kind == k).count();
        eprintln!(
            "{}: {} documents ({} reports, {} document references, {} patients, remainder {}), {} warnings",
            path.file_name().unwrap().to_string_lossy(),
            s.documents.len(),
            kinds(DocumentKind::DiagnosticReport),
            kinds(DocumentKind::DocumentReference),
            kinds(DocumentKind::Patient),
            kinds(DocumentKind::Remainder),
            s.warnings.len()
        );
        for w in &s.warnings {
            eprintln!("  warning: {w}");
        }
        assert_eq!(s.patients.len(), 1, "{}", path.display());
        let strings = sensitive_strings(&input).unwrap();
        assert!(strings.iter().all(|x| x.chars().count() >= 4));
        let p = &s.patients[0];
        for name in p.family.iter().chain(&p.given) {
            if name.chars().count() >= 4 {
                assert!(strings.contains(name), "{name} missing");
            }
        }
    }
}

#[test]
fn ans_bundle_ins_nir_has_wrong_key() {
    let Some(_) = sample_files() else { return };
    let path = Path::new(DATA_DIR).join("Bundle-Bundle-CRBio-Replace-ANS.json");
    let s = split_bundle(&std::fs::read(&path).unwrap()).unwrap();
    for w in &s.warnings {
        println!("ANS warning: {w}");
    }
    assert_eq!(
        s.warnings,
        ["Patient/patient-1: INS-NIR 189079912345678 has control key 78, expected 37"]
    );
    assert_eq!(
        s.patients[0].ins_checks,
        [(
            "189079912345678".to_owned(),
            NirCheck::WrongKey {
                expected: 37,
                found: 78
            }
        )]
    );
    // 2 DocumentReferences each with its Binary, the Patient, the List left over.
    let kinds: Vec<_> = s.documents.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            DocumentKind::Patient,
            DocumentKind::DocumentReference,
            DocumentKind::DocumentReference,
            DocumentKind::Remainder
        ]
    );
    assert_eq!(s.documents[3].title, "Other resources (1)");
    for d in &s.documents {
        assert_eq!(d.patient_identifiers.len(), 1);
        assert_eq!(d.patient_identifiers[0].value, "189079912345678");
    }
}

#[test]
fn synthea_reports_take_their_observations() {
    let Some(_) = sample_files() else { return };
    let path =
        Path::new(DATA_DIR).join("Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json");
    let input = std::fs::read(&path).unwrap();
    let s = split_bundle(&input).unwrap();
    let reports: Vec<_> = s
        .documents
        .iter()
        .filter(|d| d.kind == DocumentKind::DiagnosticReport)
        .collect();
    assert_eq!(reports.len(), 4);
    for r in &reports {
        let res = common::doc_resources(r);
        assert!(res.len() > 1, "{} has no observations", r.title);
        assert!(res[1..].iter().all(|o| o["resourceType"] == "Observation"));
        assert!(r.date.is_some());
        eprintln!("report {:?} ({} observations)", r.title, res.len() - 1);
    }
    let strings = sensitive_strings(&input).unwrap();
    assert!(
        strings.iter().any(|s| s.contains("[Mass/volume]")),
        "{strings:?}"
    );
}

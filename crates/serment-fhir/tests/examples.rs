//! The demo's default input, `examples/fhir/*.json`: synthetic French lab reports.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};

use common::{check_invariants, doc_resources};
use serment_fhir::{DocumentKind, OID_INS_NIR_TEST, sensitive_strings, split_bundle};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fhir");

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(EXAMPLES))
        .unwrap_or_else(|e| panic!("{EXAMPLES}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn examples_split_cleanly_with_valid_ins() {
    let files = example_files();
    assert_eq!(files.len(), 3, "{files:?}");
    let mut doc_refs = 0;
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(&path).unwrap();
        let s = split_bundle(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_invariants(&input, &s);
        assert!(s.warnings.is_empty(), "{name}: {:?}", s.warnings);
        assert_eq!(s.patients.len(), 1, "{name}");
        let p = &s.patients[0];
        assert_eq!(p.ins_checks.len(), 1, "{name}");
        assert!(p.ins_checks[0].1.is_valid(), "{name}: {:?}", p.ins_checks);
        assert!(
            p.identifiers
                .iter()
                .any(|i| i.system.as_deref() == Some(OID_INS_NIR_TEST))
        );
        assert!(p.birth_date.is_some() && !p.family.is_empty() && !p.given.is_empty());

        let reports: Vec<_> = s
            .documents
            .iter()
            .filter(|d| d.kind == DocumentKind::DiagnosticReport)
            .collect();
        assert!(!reports.is_empty(), "{name}");
        for r in &reports {
            let res = doc_resources(r);
            assert!(res.len() >= 2, "{name}: {} has no observations", r.title);
            for o in &res[1..] {
                assert_eq!(o["resourceType"], "Observation");
                assert_eq!(o["code"]["coding"][0]["system"], "http://loinc.org");
            }
            assert!(r.date.is_some());
            assert_eq!(r.patient_identifiers, p.identifiers);
        }
        // The remainder holds exactly the Organization and the Practitioner.
        let rest = s.documents.last().unwrap();
        assert_eq!(rest.kind, DocumentKind::Remainder, "{name}");
        let mut types: Vec<String> = doc_resources(rest)
            .iter()
            .map(|r| r["resourceType"].as_str().unwrap().to_owned())
            .collect();
        types.sort();
        assert_eq!(types, ["Organization", "Practitioner"], "{name}");
        assert_eq!(rest.patient_identifiers, p.identifiers);
        for d in s
            .documents
            .iter()
            .filter(|d| d.kind == DocumentKind::DocumentReference)
        {
            doc_refs += 1;
            let res = doc_resources(d);
            assert_eq!(res.len(), 2);
            assert_eq!(res[1]["resourceType"], "Binary");
            assert_eq!(res[1]["contentType"], "application/pdf");
        }
        let strings = sensitive_strings(&input).unwrap();
        assert!(strings.contains(&p.ins_checks[0].0));
        assert!(strings.contains(p.birth_date.as_ref().unwrap()));
        eprintln!(
            "{name}: {} documents: {:?}",
            s.documents.len(),
            s.documents.iter().map(|d| &d.title).collect::<Vec<_>>()
        );
    }
    assert_eq!(doc_refs, 1);
}

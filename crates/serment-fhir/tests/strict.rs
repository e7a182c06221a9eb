//! The importer is strict (issue 10 §5): each hostile edit of a real public bundle
//! (`/work/shared/data/fhir`, see SOURCES.md) is refused with an error naming its
//! path in the bundle; the unedited bundle splits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{check_invariants, shared_sample};
use serment_fhir::{FhirError, SplitOptions, split_bundle, split_bundle_with};

const ANS: &str = "Bundle-Bundle-CRBio-Replace-ANS.json";
const SYNTHEA: &str = "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json";

/// `text` with the first `from` replaced by `to`; fails if `from` is absent, so an
/// edit that silently does nothing cannot make a test pass.
fn edit(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains(from), "{from:?} not in the sample");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn unedited_samples_split() {
    for name in [ANS, SYNTHEA] {
        let Some(b) = shared_sample(name) else { return };
        let s = split_bundle(&b).unwrap();
        check_invariants(&b, &s);
    }
}

#[test]
fn duplicate_keys_are_refused_with_their_path() {
    let Some(b) = shared_sample(ANS) else { return };
    // The red team's case: a Patient that would be read as a Bundle.
    let e = split_bundle(br#"{"resourceType":"Patient","resourceType":"Bundle"}"#).unwrap_err();
    assert!(
        matches!(&e, FhirError::DuplicateKey { path, key } if path.is_empty() && key == "resourceType"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        r#"duplicate JSON key "resourceType" in the top-level object"#
    );
    // Deep inside a real bundle: the Patient's id given twice.
    let twice = edit(
        &b,
        r#""id" : "patient-1","#,
        r#""id" : "patient-1", "id" : "patient-2","#,
    );
    let e = split_bundle(&twice).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"duplicate JSON key "id" in entry[0].resource"#
    );
    // Also in sensitive_strings, which reads the same way.
    assert!(matches!(
        serment_fhir::sensitive_strings(&twice),
        Err(FhirError::DuplicateKey { .. })
    ));
    // A duplicate inside an identifier, one level deeper.
    let twice = edit(
        &b,
        r#""system" : "urn:oid:1.2.250.1.213.1.4.8","#,
        r#""system" : "urn:oid:1.2.250.1.213.1.4.8", "system" : "x","#,
    );
    let e = split_bundle(&twice).unwrap_err();
    assert!(
        matches!(&e, FhirError::DuplicateKey { path, key }
            if path == "entry[0].resource.identifier[0]" && key == "system"),
        "{e:?}"
    );
}

#[test]
fn ids_outside_the_fhir_grammar_are_refused() {
    let Some(b) = shared_sample(ANS) else { return };
    for bad in ["../../etc/passwd", "", "a b", &"x".repeat(65)] {
        let edited = edit(&b, r#""id" : "doc-old","#, &format!(r#""id" : "{bad}","#));
        let e = split_bundle(&edited).unwrap_err();
        assert!(
            matches!(&e, FhirError::InvalidId { path, .. } if path == "entry[3].resource.id"),
            "{bad:?}: {e:?}"
        );
        assert!(e.to_string().starts_with("entry[3].resource.id: "), "{e}");
    }
    // A number is not an id either, nor is a bad Bundle.id.
    let edited = edit(&b, r#""id" : "doc-old","#, r#""id" : 7,"#);
    assert!(matches!(
        split_bundle(&edited),
        Err(FhirError::InvalidId { .. })
    ));
    let edited = edit(
        &b,
        r#""id" : "Bundle-CRBio-Replace-ANS","#,
        r#""id" : "Bundle/CRBio","#,
    );
    assert!(matches!(
        split_bundle(&edited),
        Err(FhirError::InvalidId { path, .. }) if path == "id"
    ));
    // The longest valid id passes.
    let edited = edit(
        &b,
        r#""id" : "doc-old","#,
        &format!(r#""id" : "{}","#, "A-.9".repeat(16)),
    );
    split_bundle(&edited).unwrap();
}

#[test]
fn binary_data_must_be_canonical_base64() {
    let Some(b) = shared_sample(ANS) else { return };
    for bad in [
        "SGVsbG9=",
        "SGVsbG8",
        "SGVs bG8=",
        "SGVsbG8=\\n",
        "SGVsbG8_",
        "%%%%",
    ] {
        let edited = edit(
            &b,
            r#""data" : "SGVsbG8=""#,
            &format!(r#""data" : "{bad}""#),
        );
        let e = split_bundle(&edited).unwrap_err();
        assert!(
            matches!(&e, FhirError::InvalidBase64 { path, .. } if path == "entry[1].resource.data"),
            "{bad:?}: {e:?}"
        );
    }
}

#[test]
fn dangling_references_are_errors_unless_allowed() {
    let Some(b) = shared_sample(SYNTHEA) else {
        return;
    };
    // The first DiagnosticReport (entry 41) lists this Observation first.
    let target = "urn:uuid:554a7cba-0263-4a75-bd52-bd638b2802b0";
    let edited = edit(
        &b,
        &format!(r#""reference": "{target}""#),
        r#""reference": "urn:uuid:00000000-0000-4000-8000-000000000000""#,
    );
    let e = split_bundle(&edited).unwrap_err();
    assert!(
        matches!(&e, FhirError::DanglingReference { path, reference }
            if path == "entry[41].resource.result[0].reference"
                && reference == "urn:uuid:00000000-0000-4000-8000-000000000000"),
        "{e:?}"
    );
    let s = split_bundle_with(&edited, SplitOptions::allow_dangling(true)).unwrap();
    check_invariants(&edited, &s);
    assert_eq!(
        s.warnings,
        ["entry[41].resource.result[0].reference: reference \
          \"urn:uuid:00000000-0000-4000-8000-000000000000\" is not in the bundle \
          (allowed by --allow-dangling)"]
    );
    // A contained reference must name a contained resource.
    let Some(a) = shared_sample(ANS) else { return };
    let edited = edit(
        &a,
        r#""id" : "doc-old","#,
        r##""id" : "doc-old", "author" : [{"reference" : "#nobody"}],"##,
    );
    assert!(matches!(
        split_bundle(&edited),
        Err(FhirError::DanglingReference { path, .. }) if path == "entry[3].resource.author[0].reference"
    ));
    let edited = edit(
        &a,
        r#""id" : "doc-old","#,
        r##""id" : "doc-old", "author" : [{"reference" : "#org"}],
            "contained" : [{"resourceType" : "Organization", "id" : "org"}],"##,
    );
    split_bundle(&edited).unwrap();
}

#[test]
fn a_utf8_bom_is_skipped_and_named() {
    let Some(b) = shared_sample(ANS) else { return };
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(&b);
    let plain = split_bundle(&b).unwrap();
    let s = split_bundle(&with_bom).unwrap();
    assert_eq!(s.documents, plain.documents);
    assert_eq!(s.warnings.len(), plain.warnings.len() + 1);
    assert!(
        s.warnings[0].contains("byte order mark (BOM)"),
        "{:?}",
        s.warnings
    );
    // Only one BOM, and only at the start.
    let mut two = b"\xEF\xBB\xBF".to_vec();
    two.extend_from_slice(&with_bom);
    assert!(matches!(split_bundle(&two), Err(FhirError::InvalidJson(_))));
}

#[test]
fn test_ins_is_reported_and_never_mixed_with_a_production_ins() {
    let Some(b) = shared_sample(ANS) else { return };
    // The ANS sample carries a production INS-NIR: no test identity.
    let s = split_bundle(&b).unwrap();
    assert!(s.test_identities.is_empty());
    assert!(!s.patients[0].test_identity);
    // The same patient with the test OID (.10), then the demo OID (.11), instead.
    for oid in ["1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"] {
        let test = edit(
            &b,
            r#""system" : "urn:oid:1.2.250.1.213.1.4.8","#,
            &format!(r#""system" : "urn:oid:{oid}","#),
        );
        let s = split_bundle(&test).unwrap();
        assert!(s.patients[0].test_identity, "{oid}");
        assert_eq!(
            s.test_identities,
            ["Patient/patient-1: carries a test INS identity: not a real patient"]
        );
        // Both on one patient: an error naming the patient's identifiers.
        let both = edit(
            &b,
            r#""system" : "urn:oid:1.2.250.1.213.1.4.8","#,
            &format!(
                r#""system" : "urn:oid:1.2.250.1.213.1.4.8", "value" : "189079912345637"}},
                   {{"system" : "urn:oid:{oid}","#
            ),
        );
        let e = split_bundle(&both).unwrap_err();
        assert!(
            matches!(&e, FhirError::MixedInsIdentities { path, patient, test_oid }
                if path == "entry[0].resource.identifier" && patient == "Patient/patient-1"
                    && test_oid == &format!("urn:oid:{oid}")),
            "{e:?}"
        );
    }
}

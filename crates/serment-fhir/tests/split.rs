//! `split_bundle` on hand-made bundles: grouping rules, references, errors, warnings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{check_invariants, doc_resources};
use proptest::prelude::*;
use serde_json::{Value, json};
use serment_fhir::{
    DocumentKind, FhirError, Identifier, NirCheck, SplitOptions, split_bundle, split_bundle_with,
};

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn split_ok(v: &Value) -> serment_fhir::SplitBundle {
    let input = bytes(v);
    let s = split_bundle(&input).unwrap();
    check_invariants(&input, &s);
    s
}

/// As [`split_ok`], with dangling references allowed (reported as warnings).
fn split_lenient(v: &Value) -> serment_fhir::SplitBundle {
    let input = bytes(v);
    let s = split_bundle_with(&input, SplitOptions::allow_dangling(true)).unwrap();
    check_invariants(&input, &s);
    s
}

fn ids(doc: &serment_fhir::FhirDocument) -> Vec<String> {
    doc_resources(doc)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

fn obs(id: &str, members: &[&str]) -> Value {
    let mut o = json!({"resourceType": "Observation", "id": id,
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7",
                             "display": "Hemoglobin [Mass/volume] in Blood"}]}});
    if !members.is_empty() {
        o["hasMember"] = members.iter().map(|m| json!({"reference": m})).collect();
    }
    o
}

#[test]
fn transaction_with_urn_uuid_references() {
    let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:o1", "resource": obs("o1", &["urn:uuid:o2", "urn:uuid:o3"])},
        {"fullUrl": "urn:uuid:o2", "resource": obs("o2", &["urn:uuid:o4"])},
        {"fullUrl": "urn:uuid:o3", "resource": obs("o3", &[])},
        {"fullUrl": "urn:uuid:o4", "resource": obs("o4", &[])},
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p",
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "189079912345637"},
                           {"system": "urn:x"}]}},
        {"fullUrl": "urn:uuid:dr", "request": {"method": "POST", "url": "DiagnosticReport"},
         "resource": {"resourceType": "DiagnosticReport", "id": "dr",
            "code": {"text": "Hémogramme", "coding": [{"display": "CBC"}]},
            "subject": {"reference": "urn:uuid:p"},
            "effectiveDateTime": "2025-01-02T08:00:00+01:00", "issued": "2025-01-03",
            "result": [{"reference": "urn:uuid:o1"}, {"reference": "urn:uuid:o3"}]}},
        {"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization", "id": "org"}}
    ]});
    let s = split_ok(&b);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let kinds: Vec<_> = s.documents.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            DocumentKind::Patient,
            DocumentKind::DiagnosticReport,
            DocumentKind::Remainder
        ]
    );
    let dr = &s.documents[1];
    // Report first; o1, its members o2, o3 (one level only: o4 is not followed).
    assert_eq!(
        ids(dr),
        [
            "DiagnosticReport/dr",
            "Observation/o1",
            "Observation/o2",
            "Observation/o3"
        ]
    );
    assert_eq!(dr.title, "Hémogramme");
    assert_eq!(dr.date.as_deref(), Some("2025-01-02T08:00:00+01:00"));
    let ins = Identifier {
        system: Some("urn:oid:1.2.250.1.213.1.4.10".into()),
        value: "189079912345637".into(),
    };
    assert_eq!(dr.patient_identifiers, std::slice::from_ref(&ins));
    let rest = &s.documents[2];
    assert_eq!(rest.title, "Other resources (2)");
    assert_eq!(ids(rest), ["Observation/o4", "Organization/org"]);
    assert_eq!(rest.patient_identifiers, [ins], "sole patient fallback");
    // Output bundle entries keep fullUrl, drop request.
    let v: Value = serde_json::from_slice(&dr.content).unwrap();
    assert_eq!(v["entry"][0]["fullUrl"], "urn:uuid:dr");
    assert!(v["entry"][0].get("request").is_none());
    assert_eq!(s.patients.len(), 1);
    assert_eq!(
        s.patients[0].ins_checks,
        [("189079912345637".into(), NirCheck::Valid)]
    );
    assert_eq!(s.documents[0].title, "Patient");
    assert_eq!(s.documents[0].date, None);
}

#[test]
fn relative_and_absolute_references() {
    let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "https://h.example/fhir/DiagnosticReport/r", "resource": {
            "resourceType": "DiagnosticReport", "id": "r",
            "code": {"coding": [{"code": "11502-2"}]}, "issued": "2024-12-01",
            "result": [{"reference": "Observation/a"},
                       {"reference": "https://h.example/fhir/Observation/b/_history/2"}]}},
        {"fullUrl": "https://h.example/fhir/Observation/a", "resource": obs("a", &[])},
        {"fullUrl": "https://h.example/fhir/Observation/b", "resource": obs("b", &[])},
        {"fullUrl": "https://h.example/fhir/DocumentReference/d", "resource": {
            "resourceType": "DocumentReference", "id": "d", "date": "2024-12-02",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11502-2",
                                 "display": "Laboratory report"}]},
            "content": [{"attachment": {"url": "Binary/bin"}},
                        {"attachment": {"url": "https://elsewhere.example/x.pdf"}},
                        {"attachment": {"data": "SGVsbG8="}}]}},
        {"resource": {"resourceType": "Binary", "id": "bin", "data": "SGVsbG8="}}
    ]});
    let s = split_ok(&b);
    assert_eq!(s.documents.len(), 2);
    assert_eq!(
        ids(&s.documents[0]),
        ["DiagnosticReport/r", "Observation/a", "Observation/b"]
    );
    assert_eq!(s.documents[0].title, "Diagnostic report 11502-2");
    assert_eq!(s.documents[0].date.as_deref(), Some("2024-12-01"));
    assert_eq!(ids(&s.documents[1]), ["DocumentReference/d", "Binary/bin"]);
    assert_eq!(s.documents[1].title, "Laboratory report");
    assert_eq!(s.documents[1].date.as_deref(), Some("2024-12-02"));
    assert!(s.documents.iter().all(|d| d.patient_identifiers.is_empty()));
    assert_eq!(
        s.warnings,
        [
            "DocumentReference/d: attachment URL \"https://elsewhere.example/x.pdf\" is outside the bundle; its content is not imported"
        ]
    );
}

#[test]
fn shared_missing_and_mistyped_references_warn() {
    let b = json!({"resourceType": "Bundle", "entry": [
        {"fullUrl": "urn:uuid:r1", "resource": {"resourceType": "DiagnosticReport", "id": "r1",
            "result": [{"reference": "urn:uuid:o"}, {"reference": "urn:uuid:o"}]}},
        {"fullUrl": "urn:uuid:r2", "resource": {"resourceType": "DiagnosticReport", "id": "r2",
            "result": [{"reference": "urn:uuid:o"}, {"reference": "urn:uuid:gone"},
                       {"reference": "urn:uuid:org"}, {"reference": 7}, "junk"]}},
        {"fullUrl": "urn:uuid:o", "resource": obs("o", &[])},
        {"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization"}},
        {"resource": {"resourceType": "DocumentReference", "description": "  Compte rendu  ",
            "content": [{"attachment": {"url": "urn:uuid:o"}}]}}
    ]});
    let strict = split_bundle(&bytes(&b)).unwrap_err();
    assert!(
        matches!(&strict, FhirError::DanglingReference { path, reference }
            if path == "entry[1].resource.result[1].reference" && reference == "urn:uuid:gone"),
        "{strict:?}"
    );
    let s = split_lenient(&b);
    assert_eq!(
        ids(&s.documents[0]),
        ["DiagnosticReport/r1", "Observation/o"]
    );
    assert_eq!(ids(&s.documents[1]), ["DiagnosticReport/r2"]);
    assert_eq!(s.documents[1].title, "Diagnostic report");
    assert_eq!(s.documents[2].title, "Compte rendu");
    assert_eq!(s.documents[3].title, "Other resources (1)");
    assert_eq!(
        s.warnings,
        [
            "entry[1].resource.result[1].reference: reference \"urn:uuid:gone\" is not in the bundle (allowed by --allow-dangling)",
            "Observation/o: referenced by DiagnosticReport/r2 but already in the document of DiagnosticReport/r1; kept there",
            "DiagnosticReport/r2: result \"urn:uuid:org\" points to Organization, expected Observation; left with the other resources",
            "DocumentReference (entry 4): attachment URL \"urn:uuid:o\" points to Observation, expected Binary; left with the other resources",
        ]
    );
}

#[test]
fn patients_and_ins_warnings() {
    let b = json!({"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "Patient", "id": "a", "birthDate": "1989-07-09",
            "name": [{"family": "DUPONT", "given": ["JEAN", "Marc"]}, {"family": "Durand"}],
            "identifier": [
                {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "189079912345678"},
                {"system": "urn:oid:1.2.250.1.213.1.4.9", "value": "whatever"}]}},
        {"fullUrl": "urn:uuid:b", "resource": {"resourceType": "Patient", "identifier": [
                {"system": "urn:oid:1.2.250.1.213.1.4.11", "value": "1890799"}]}},
        {"resource": {"resourceType": "Observation", "subject": {"reference": "Patient/a"}}}
    ]});
    let s = split_ok(&b);
    assert_eq!(
        s.warnings,
        [
            "Patient/a: INS-NIR 189079912345678 has control key 78, expected 37",
            "Patient urn:uuid:b: INS-NIR-DEMO \"1890799\" is malformed: expected 15 characters, found 7",
        ]
    );
    // The demo OID (.11) is a test identity; the production one (.8) is not.
    assert_eq!(
        s.test_identities,
        ["Patient urn:uuid:b: carries a test INS identity: not a real patient"]
    );
    assert!(!s.patients[0].test_identity && s.patients[1].test_identity);
    let a = &s.patients[0];
    assert_eq!(a.id, "a");
    assert_eq!(a.family, ["DUPONT", "Durand"]);
    assert_eq!(a.given, ["JEAN", "Marc"]);
    assert_eq!(a.birth_date.as_deref(), Some("1989-07-09"));
    assert_eq!(a.identifiers.len(), 2);
    assert_eq!(a.ins_checks.len(), 1);
    assert_eq!(s.patients[1].id, "urn:uuid:b");
    // Two patients: the remainder takes the identifiers of the one it references.
    let rest = s.documents.last().unwrap();
    assert_eq!(rest.kind, DocumentKind::Remainder);
    assert_eq!(rest.patient_identifiers, a.identifiers);
}

#[test]
fn empty_bundle_gives_no_documents() {
    let s = split_ok(&json!({"resourceType": "Bundle", "type": "searchset"}));
    assert!(s.documents.is_empty() && s.patients.is_empty() && s.warnings.is_empty());
    let s = split_ok(&json!({"resourceType": "Bundle", "entry": []}));
    assert!(s.documents.is_empty());
}

type ErrCheck = fn(&FhirError) -> bool;

#[test]
fn input_errors() {
    let cases: [(&[u8], ErrCheck); 9] = [
        (b"not json", |e| matches!(e, FhirError::InvalidJson(_))),
        (b"\xff\xfe", |e| matches!(e, FhirError::InvalidJson(_))),
        (b"[1]", |e| {
            matches!(e, FhirError::NotAnObject { found: "an array" })
        }),
        (b"{}", |e| {
            matches!(e, FhirError::NotABundle { found: None })
        }),
        (
            br#"{"resourceType":"Patient"}"#,
            |e| matches!(e, FhirError::NotABundle { found: Some(t) } if t == "Patient"),
        ),
        (br#"{"resourceType":"Bundle","entry":{}}"#, |e| {
            matches!(e, FhirError::EntryNotArray)
        }),
        (
            br#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}},{}]}"#,
            |e| matches!(e, FhirError::EntryWithoutResource { index: 1 }),
        ),
        (br#"{"resourceType":"Bundle","entry":[3]}"#, |e| {
            matches!(e, FhirError::EntryWithoutResource { index: 0 })
        }),
        (
            br#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":1}}]}"#,
            |e| matches!(e, FhirError::ResourceWithoutType { index: 0 }),
        ),
    ];
    for (input, ok) in cases {
        let err = split_bundle(input).unwrap_err();
        assert!(ok(&err), "{}: {err:?}", String::from_utf8_lossy(input));
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(
        split_bundle(br#"{"resourceType":"Binary"}"#)
            .unwrap_err()
            .to_string(),
        "expected a FHIR resource with resourceType \"Bundle\", found \"Binary\""
    );
}

#[test]
fn too_deep_and_too_large() {
    let deep = format!(
        r#"{{"resourceType":"Bundle","entry":[{{"resource":{{"resourceType":"Basic","x":{}{}}}}}]}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    assert!(matches!(
        split_bundle(deep.as_bytes()),
        Err(FhirError::TooDeep)
    ));
    let big = vec![b' '; serment_fhir::MAX_BUNDLE_BYTES + 1];
    let err = split_bundle(&big).unwrap_err();
    assert!(matches!(err, FhirError::TooLarge { size, max } if size == max + 1));
    assert_eq!(
        err.to_string(),
        "FHIR bundle is 67108865 bytes, larger than the 67108864-byte limit"
    );
}

/// A random bundle: resources of a few types whose references point at random entries.
fn arb_bundle() -> impl Strategy<Value = Value> {
    let types = prop::sample::select(vec![
        "Patient",
        "Observation",
        "DiagnosticReport",
        "DocumentReference",
        "Binary",
        "Encounter",
    ]);
    let entry = (
        types,
        prop::collection::vec(0usize..12, 0..4),
        any::<bool>(),
        any::<bool>(),
    );
    prop::collection::vec(entry, 0..12).prop_map(|specs| {
        let entries: Vec<Value> = specs
            .iter()
            .enumerate()
            .map(|(i, (rt, refs, urn, has_id))| {
                // Targets past the end are dangling references.
                let refs: Vec<Value> = refs
                    .iter()
                    .map(|&r| {
                        let t = specs.get(r).map_or("Observation", |s| s.0);
                        if *urn {
                            json!({"reference": format!("urn:uuid:e{r}")})
                        } else {
                            json!({"reference": format!("{t}/id{r}")})
                        }
                    })
                    .collect();
                let mut res = json!({"resourceType": rt, "subject": refs.first()});
                if *has_id {
                    res["id"] = json!(format!("id{i}"));
                }
                res["result"] = Value::Array(refs.clone());
                res["hasMember"] = Value::Array(refs.clone());
                res["content"] = refs
                    .iter()
                    .map(|r| json!({"attachment": {"url": r["reference"]}}))
                    .collect();
                json!({"fullUrl": format!("urn:uuid:e{i}"), "resource": res})
            })
            .collect();
        json!({"resourceType": "Bundle", "type": "collection", "entry": entries})
    })
}

proptest! {
    #[test]
    fn every_resource_lands_in_exactly_one_document(b in arb_bundle()) {
        let s = split_lenient(&b);
        let n_patients = b["entry"].as_array().unwrap().iter()
            .filter(|e| e["resource"]["resourceType"] == "Patient").count();
        prop_assert_eq!(s.patients.len(), n_patients);
    }

    #[test]
    fn never_panics_on_bytes(input in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = split_bundle(&input);
        let _ = serment_fhir::sensitive_strings(&input);
    }

    #[test]
    fn never_panics_on_json_shaped_text(input in r#"[\[\]{}":,a-z0-9 ]{0,120}"#) {
        let wrapped = format!(r#"{{"resourceType":"Bundle","entry":[{{"resource":{{"resourceType":"DiagnosticReport","result":{input}}}}}]}}"#);
        let _ = split_bundle(wrapped.as_bytes());
        let _ = split_bundle(input.as_bytes());
    }
}

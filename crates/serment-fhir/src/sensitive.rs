//! [`sensitive_strings`]: the plaintext a server must never see.

use crate::FhirError;
use crate::bundle::{array_at, identifiers, parse_bundle, text_at};

/// Shortest string returned by [`sensitive_strings`], in characters.
const MIN_CHARS: usize = 4;

/// Lists the identifying and medical strings of a FHIR R4 Bundle, so that a test or
/// demo can scan a server's storage for leaked plaintext.
///
/// Returns, in first-seen order and without duplicates: for every `Patient`, each
/// `name[].family`, each `name[].given[]`, `birthDate` and each `identifier[].value`;
/// for every `Observation`, each `code.coding[].display` (LOINC display strings) and
/// `code.text`. Strings are trimmed; those shorter than 4 characters are left out
/// (they would match by chance).
///
/// # Errors
///
/// The same input errors as [`crate::split_bundle`], except those about references
/// and INS identities, which only [`crate::split_bundle`] checks.
pub fn sensitive_strings(bundle_json: &[u8]) -> Result<Vec<String>, FhirError> {
    let entries = parse_bundle(bundle_json)?.entries;
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if s.chars().count() >= MIN_CHARS && !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    };
    for e in &entries {
        let r = &e.resource;
        match e.resource_type.as_str() {
            "Patient" => {
                for name in array_at(r, &["name"]) {
                    if let Some(f) = text_at(name, &["family"]) {
                        push(f);
                    }
                    for g in array_at(name, &["given"]) {
                        if let Some(g) = g.as_str() {
                            push(g);
                        }
                    }
                }
                if let Some(b) = text_at(r, &["birthDate"]) {
                    push(b);
                }
                for id in identifiers(r) {
                    push(&id.value);
                }
            }
            "Observation" => {
                for c in array_at(r, &["code", "coding"]) {
                    if let Some(d) = text_at(c, &["display"]) {
                        push(d);
                    }
                }
                if let Some(t) = text_at(r, &["code", "text"]) {
                    push(t);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn collects_and_dedups() {
        let b = r#"{"resourceType":"Bundle","entry":[
          {"resource":{"resourceType":"Patient","id":"p",
            "name":[{"family":"Lefebvre","given":["Anne","Li"]},{"family":"Lefebvre"}],
            "birthDate":"1970-01-02",
            "identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.10","value":"270017512345601"},
                          {"value":"abc"}]}},
          {"resource":{"resourceType":"Observation","code":{"text":"Hémoglobine",
            "coding":[{"system":"http://loinc.org","code":"718-7",
                       "display":"Hemoglobin [Mass/volume] in Blood"}]}}},
          {"resource":{"resourceType":"Observation","code":{
            "coding":[{"display":"Hemoglobin [Mass/volume] in Blood"}]}}},
          {"resource":{"resourceType":"Organization","name":"Laboratoire Secret"}}
        ]}"#
        .as_bytes();
        assert_eq!(
            sensitive_strings(b).unwrap(),
            [
                "Lefebvre",
                "Anne",
                "1970-01-02",
                "270017512345601",
                "Hemoglobin [Mass/volume] in Blood",
                "Hémoglobine",
            ]
        );
    }

    #[test]
    fn rejects_non_bundles() {
        assert!(matches!(
            sensitive_strings(b"{\"resourceType\":\"Patient\"}"),
            Err(FhirError::NotABundle { .. })
        ));
    }
}

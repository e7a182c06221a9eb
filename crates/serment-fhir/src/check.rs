//! Strict checks on each resource of a Bundle: the FHIR `id` grammar, canonical
//! base64 in `base64Binary` fields, and the list of references to resolve.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::FhirError;

/// Longest FHIR `id`, in characters (FHIR R4 §2.24.0.1, datatype `id`).
pub const MAX_ID_CHARS: usize = 64;

/// Keys whose value is an `Attachment` (or an array of them) in FHIR R4 resources:
/// their `data` is a `base64Binary`.
const ATTACHMENT_KEYS: &[&str] = &["attachment", "presentedForm", "photo"];

/// Whether `id` matches the FHIR R4 `id` grammar `[A-Za-z0-9\-\.]{1,64}`.
///
/// ```
/// assert!(serment_fhir::is_valid_id("patient-1.v2"));
/// assert!(!serment_fhir::is_valid_id("../../etc/passwd"));
/// assert!(!serment_fhir::is_valid_id(""));
/// ```
#[must_use]
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Checks an `id` value found at `path`.
pub(crate) fn id(value: &Value, path: &str) -> Result<(), FhirError> {
    match value.as_str() {
        Some(s) if is_valid_id(s) => Ok(()),
        _ => Err(FhirError::InvalidId {
            path: path.to_owned(),
            id: shown(value),
        }),
    }
}

/// Checks a `base64Binary` value found at `path`: RFC 4648 §4 standard alphabet,
/// `=` padding to a multiple of 4, no whitespace, no non-zero trailing bits.
pub(crate) fn base64(value: &Value, path: &str) -> Result<(), FhirError> {
    let Some(s) = value.as_str() else {
        return Err(FhirError::InvalidBase64 {
            path: path.to_owned(),
            reason: format!("expected a string, found {}", shown(value)),
        });
    };
    STANDARD
        .decode(s)
        .map(drop)
        .map_err(|e| FhirError::InvalidBase64 {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// Checks one `entry[].resource` (at `path`): its `id`, the ids of its `contained`
/// resources, `Binary.data` and every `Attachment.data`.
pub(crate) fn resource(resource: &Value, path: &str) -> Result<(), FhirError> {
    if let Some(v) = resource.get("id") {
        id(v, &format!("{path}.id"))?;
    }
    if resource.get("resourceType").and_then(Value::as_str) == Some("Binary")
        && let Some(data) = resource.get("data")
    {
        base64(data, &format!("{path}.data"))?;
    }
    if let Some(Value::Array(contained)) = resource.get("contained") {
        for (i, c) in contained.iter().enumerate() {
            let cpath = format!("{path}.contained[{i}]");
            if c.get("id").is_none() {
                return Err(FhirError::InvalidId {
                    path: format!("{cpath}.id"),
                    id: "nothing (a contained resource needs an id)".to_owned(),
                });
            }
            self::resource(c, &cpath)?;
        }
    }
    attachments(resource, path, None)
}

/// Walks `v`, checking `data` in every object that sits under an [`ATTACHMENT_KEYS`] key.
fn attachments(v: &Value, path: &str, parent_key: Option<&str>) -> Result<(), FhirError> {
    match v {
        Value::Object(map) => {
            if parent_key.is_some_and(|k| ATTACHMENT_KEYS.contains(&k))
                && let Some(data) = map.get("data")
            {
                base64(data, &format!("{path}.data"))?;
            }
            for (k, child) in map {
                // Contained resources are checked as resources.
                if k != "contained" {
                    attachments(child, &format!("{path}.{k}"), Some(k))?;
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                attachments(child, &format!("{path}[{i}]"), parent_key)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Every reference held by a resource, with its path: each `reference` string of a
/// FHIR `Reference`, and each `url` of an `Attachment` under `attachment` that is a
/// `urn:` or a relative URL (an absolute `http(s)://` attachment URL names content
/// outside FHIR and is not a reference).
pub(crate) fn references(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let child_path = format!("{path}.{k}");
                match (k.as_str(), child) {
                    ("reference", Value::String(r)) => out.push((child_path, r.clone())),
                    ("attachment", Value::Object(a)) => {
                        if let Some(Value::String(url)) = a.get("url")
                            && (url.starts_with("urn:") || !url.contains("://"))
                        {
                            out.push((format!("{child_path}.url"), url.clone()));
                        }
                        references(child, &child_path, out);
                    }
                    _ => references(child, &child_path, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                references(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A JSON value for an error message: strings quoted, at most 80 characters.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        let mut out: String = s.chars().take(79).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    #[test]
    fn id_grammar() {
        for ok in ["a", "A-1.b", &"x".repeat(64)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            "../../etc/passwd",
            "a b",
            "a/b",
            "é",
            "a_b",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        let e = id(&json!(12), "entry[0].resource.id").unwrap_err();
        assert!(e.to_string().contains("entry[0].resource.id"), "{e}");
    }

    #[test]
    fn base64_must_be_canonical() {
        base64(&json!("SGVsbG8="), "p").unwrap();
        base64(&json!(""), "p").unwrap();
        for bad in [
            "SGVsbG8",    // padding missing
            "SGVsbG9=",   // non-zero trailing bits ("Hello" is SGVsbG8=)
            "SGVs bG8=",  // whitespace
            "SGVsbG8=\n", // trailing newline
            "SGVsbG8-",   // URL-safe alphabet
            "not base64!",
        ] {
            let e = base64(&json!(bad), "entry[2].resource.data").unwrap_err();
            assert!(
                matches!(&e, FhirError::InvalidBase64 { path, .. } if path == "entry[2].resource.data"),
                "{bad}: {e}"
            );
        }
        assert!(base64(&json!(3), "p").is_err());
    }

    #[test]
    fn attachment_data_is_checked_anywhere() {
        let r = json!({"resourceType":"DocumentReference","id":"d",
            "content":[{"attachment":{"data":"SGVsbG8="}},{"attachment":{"data":"@@"}}]});
        let e = resource(&r, "entry[1].resource").unwrap_err();
        assert!(
            e.to_string()
                .contains("entry[1].resource.content[1].attachment.data"),
            "{e}"
        );
        let r = json!({"resourceType":"Observation","id":"o",
            "contained":[{"resourceType":"Binary","id":"../x"}]});
        let e = resource(&r, "entry[0].resource").unwrap_err();
        assert!(
            e.to_string().contains("entry[0].resource.contained[0].id"),
            "{e}"
        );
    }

    #[test]
    fn references_are_listed_with_paths() {
        let r = json!({"subject":{"reference":"urn:uuid:p"},
            "result":[{"reference":"Observation/1"}],
            "content":[{"attachment":{"url":"urn:uuid:b"}},
                       {"attachment":{"url":"https://example.org/report.pdf"}}]});
        let mut out = Vec::new();
        references(&r, "entry[4].resource", &mut out);
        out.sort();
        assert_eq!(
            out,
            [
                (
                    "entry[4].resource.content[0].attachment.url".to_owned(),
                    "urn:uuid:b".to_owned()
                ),
                (
                    "entry[4].resource.result[0].reference".to_owned(),
                    "Observation/1".to_owned()
                ),
                (
                    "entry[4].resource.subject.reference".to_owned(),
                    "urn:uuid:p".to_owned()
                ),
            ]
        );
    }
}

//! A lab report as a table, for display (issue 13 §3, the patient's page): the rows of a FHIR R4
//! `DiagnosticReport` and its `Observation`s, as [`split_bundle`](crate::split_bundle) cuts them
//! out (a `collection` Bundle), or a bare `Observation` / `DiagnosticReport`.
//!
//! One [`LabRow`] per Observation the report's `result` lists (in that order), then any other
//! Observation of the bundle; `hasMember` panels are flattened the same way. Values follow FHIR
//! R4 `Observation.value[x]` (§ Observation): `valueQuantity` (number and unit), `valueString`,
//! `valueCodeableConcept` (its text or first display), `valueBoolean`, `valueInteger`; the
//! reference range is `referenceRange[0]` (`low`–`high` with units, or its `text`); flags are
//! the `interpretation` codes (`H`, `L`, `A`, ...). Nothing is interpreted: the table shows what
//! the lab wrote.

use serde::Serialize;
use serde_json::Value;

use crate::error::FhirError;

/// One line of a lab report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabRow {
    /// The test: `Observation.code.text`, else its first `coding.display`, else `code`.
    pub test: String,
    /// The value (a number in its shortest JSON form: `7.20` shows as `7.2`; a `comparator`
    /// such as `<` comes first), empty when absent.
    pub value: String,
    /// The unit (`valueQuantity.unit`, else its `code`), empty when none.
    pub unit: String,
    /// The reference range: `low – high unit`, `≥ low`, `≤ high`, or its `text`; empty when none.
    pub reference_range: String,
    /// The interpretation codes (`H`, `L`, `N`, `A`...), comma-separated; empty when none.
    pub flags: String,
}

/// A lab report: its title, clinical date and rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabReport {
    /// `DiagnosticReport.code.text` (or display), empty for Observations alone.
    pub title: String,
    /// `DiagnosticReport.effectiveDateTime` (else `issued`), as written; empty when none.
    pub date: String,
    /// The rows, in report order.
    pub rows: Vec<LabRow>,
}

/// Reads a lab report from FHIR JSON (a Bundle, a DiagnosticReport or an Observation).
///
/// # Errors
/// [`FhirError::TooLarge`] over [`crate::MAX_BUNDLE_BYTES`], [`FhirError::InvalidJson`],
/// [`FhirError::NotAnObject`]; a document with no Observation gives an empty table.
pub fn lab_report(json: &[u8]) -> Result<LabReport, FhirError> {
    if json.len() > crate::MAX_BUNDLE_BYTES {
        return Err(FhirError::TooLarge {
            size: json.len(),
            max: crate::MAX_BUNDLE_BYTES,
        });
    }
    let v: Value = serde_json::from_slice(json).map_err(FhirError::InvalidJson)?;
    if !v.is_object() {
        return Err(FhirError::NotAnObject { found: kind(&v) });
    }
    // The resources, keyed by the references that may name them (fullUrl, Type/id).
    let resources: Vec<(Option<String>, &Value)> = match rtype(&v) {
        "Bundle" => v
            .get("entry")
            .and_then(Value::as_array)
            .map(|es| {
                es.iter()
                    .filter_map(|e| {
                        let r = e.get("resource")?;
                        let url = e.get("fullUrl").and_then(Value::as_str).map(str::to_owned);
                        Some((url, r))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![(None, &v)],
    };
    let find = |reference: &str| -> Option<usize> {
        resources.iter().position(|(url, r)| {
            url.as_deref() == Some(reference)
                || matches!(
                    (r.get("resourceType").and_then(Value::as_str), r.get("id").and_then(Value::as_str)),
                    (Some(t), Some(id)) if reference == format!("{t}/{id}") || reference.ends_with(&format!("/{t}/{id}"))
                )
        })
    };
    let report = resources
        .iter()
        .map(|(_, r)| *r)
        .find(|r| rtype(r) == "DiagnosticReport");
    let mut order: Vec<usize> = Vec::new();
    let push = |i: usize, order: &mut Vec<usize>| {
        if !order.contains(&i) {
            order.push(i);
        }
    };
    if let Some(dr) = report {
        for reference in refs(dr, "result") {
            if let Some(i) = find(reference) {
                push(i, &mut order);
            }
        }
    }
    for (i, (_, r)) in resources.iter().enumerate() {
        if rtype(r) == "Observation" {
            push(i, &mut order);
        }
    }
    // Panels: an Observation with hasMember is followed by its members.
    let mut rows = Vec::new();
    let mut shown: Vec<usize> = Vec::new();
    let mut stack: Vec<usize> = order.into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        if shown.contains(&i) {
            continue;
        }
        shown.push(i);
        let Some((_, o)) = resources.get(i) else {
            continue;
        };
        if rtype(o) != "Observation" {
            continue;
        }
        rows.push(row(o));
        let members: Vec<usize> = refs(o, "hasMember").filter_map(&find).collect();
        stack.extend(members.into_iter().rev());
    }
    Ok(LabReport {
        title: report.map(|r| concept(r.get("code"))).unwrap_or_default(),
        date: report
            .and_then(|r| {
                r.get("effectiveDateTime")
                    .or_else(|| r.get("issued"))
                    .and_then(Value::as_str)
            })
            .unwrap_or_default()
            .to_owned(),
        rows,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn rtype(v: &Value) -> &str {
    v.get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn refs<'a>(v: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    v.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("reference").and_then(Value::as_str))
}

/// A CodeableConcept's text, else its first coding's display, else its first code.
fn concept(c: Option<&Value>) -> String {
    let Some(c) = c else {
        return String::new();
    };
    if let Some(t) = c.get("text").and_then(Value::as_str) {
        return t.to_owned();
    }
    let codings = c.get("coding").and_then(Value::as_array);
    codings
        .and_then(|cs| {
            cs.iter()
                .find_map(|x| x.get("display").and_then(Value::as_str))
        })
        .or_else(|| {
            codings.and_then(|cs| {
                cs.iter()
                    .find_map(|x| x.get("code").and_then(Value::as_str))
            })
        })
        .unwrap_or_default()
        .to_owned()
}

fn number(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn unit(q: &Value) -> String {
    q.get("unit")
        .or_else(|| q.get("code"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn row(o: &Value) -> LabRow {
    let (value, unit_s) = if let Some(q) = o.get("valueQuantity") {
        let cmp = q
            .get("comparator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        (
            format!("{cmp}{}", number(q.get("value")).unwrap_or_default()),
            unit(q),
        )
    } else if let Some(s) = o.get("valueString").and_then(Value::as_str) {
        (s.to_owned(), String::new())
    } else if let Some(c) = o.get("valueCodeableConcept") {
        (concept(Some(c)), String::new())
    } else if let Some(b) = o.get("valueBoolean").and_then(Value::as_bool) {
        (b.to_string(), String::new())
    } else if let Some(n) = number(o.get("valueInteger")) {
        (n, String::new())
    } else {
        (String::new(), String::new())
    };
    let range = o
        .get("referenceRange")
        .and_then(Value::as_array)
        .and_then(|rs| rs.first())
        .map(|r| {
            let low = r
                .get("low")
                .and_then(|q| number(q.get("value")).map(|n| (n, unit(q))));
            let high = r
                .get("high")
                .and_then(|q| number(q.get("value")).map(|n| (n, unit(q))));
            let with_unit =
                |n: String, u: String| if u.is_empty() { n } else { format!("{n} {u}") };
            match (low, high) {
                (Some((l, _)), Some((h, u))) => with_unit(format!("{l} – {h}"), u),
                (Some((l, u)), None) => with_unit(format!("≥ {l}"), u),
                (None, Some((h, u))) => with_unit(format!("≤ {h}"), u),
                (None, None) => r
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .unwrap_or_default();
    let flags: Vec<String> = o
        .get("interpretation")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            c.get("coding")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find_map(|x| x.get("code").and_then(Value::as_str))
                })
                .map_or_else(|| concept(Some(c)), str::to_owned)
        })
        .filter(|s| !s.is_empty())
        .collect();
    LabRow {
        test: concept(o.get("code")),
        value,
        unit: unit_s,
        reference_range: range,
        flags: flags.join(", "),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn an_observation_with_range_and_flag() {
        let o = br#"{"resourceType":"Observation","code":{"coding":[{"display":"Glucose"}]},
            "valueQuantity":{"value":7.20,"unit":"mmol/L"},
            "referenceRange":[{"low":{"value":3.9,"unit":"mmol/L"},"high":{"value":5.8,"unit":"mmol/L"}}],
            "interpretation":[{"coding":[{"code":"H"}]}]}"#;
        let r = lab_report(o).unwrap();
        assert_eq!(
            r.rows,
            vec![LabRow {
                test: "Glucose".into(),
                value: "7.2".into(),
                unit: "mmol/L".into(),
                reference_range: "3.9 – 5.8 mmol/L".into(),
                flags: "H".into(),
            }]
        );
    }

    #[test]
    fn report_order_and_panels() {
        let b = br#"{"resourceType":"Bundle","type":"collection","entry":[
          {"fullUrl":"urn:uuid:b","resource":{"resourceType":"Observation","code":{"text":"B"},"valueString":"neg"}},
          {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Observation","code":{"text":"Panel"},"hasMember":[{"reference":"urn:uuid:c"}]}},
          {"fullUrl":"urn:uuid:c","resource":{"resourceType":"Observation","code":{"text":"C"},"valueInteger":3}},
          {"fullUrl":"urn:uuid:r","resource":{"resourceType":"DiagnosticReport","code":{"text":"Bilan"},
            "effectiveDateTime":"2026-01-02","result":[{"reference":"urn:uuid:p"},{"reference":"urn:uuid:b"}]}}]}"#;
        let r = lab_report(b).unwrap();
        assert_eq!(r.title, "Bilan");
        assert_eq!(r.date, "2026-01-02");
        let tests: Vec<&str> = r.rows.iter().map(|x| x.test.as_str()).collect();
        assert_eq!(tests, ["Panel", "C", "B"]);
        assert_eq!(r.rows[1].value, "3");
        assert_eq!(r.rows[2].value, "neg");
    }

    #[test]
    fn not_json_is_an_error() {
        assert!(matches!(lab_report(b"{"), Err(FhirError::InvalidJson(_))));
        assert!(matches!(
            lab_report(b"[1]"),
            Err(FhirError::NotAnObject { .. })
        ));
    }
}

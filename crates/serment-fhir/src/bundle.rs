//! Parsing a FHIR R4 Bundle into entries, and resolving references between them.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::{FhirError, Identifier, MAX_BUNDLE_BYTES};

/// One `Bundle.entry` whose `resource` is an object with a `resourceType` string.
#[derive(Debug)]
pub(crate) struct Entry {
    /// `Bundle.entry.fullUrl`, if present.
    pub(crate) full_url: Option<String>,
    /// `resource.resourceType`.
    pub(crate) resource_type: String,
    /// `resource.id`, if present.
    pub(crate) id: Option<String>,
    /// `Bundle.entry.resource`, as parsed.
    pub(crate) resource: Value,
}

impl Entry {
    /// `Type/id`, else the fullUrl, else `Type (entry N)`: for warnings.
    pub(crate) fn label(&self, index: usize) -> String {
        match (&self.id, &self.full_url) {
            (Some(id), _) => format!("{}/{id}", self.resource_type),
            (None, Some(url)) => format!("{} {url}", self.resource_type),
            (None, None) => format!("{} (entry {index})", self.resource_type),
        }
    }
}

/// The UTF-8 encoding of U+FEFF, the byte order mark.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A parsed and validated Bundle.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The entries, in input order.
    pub(crate) entries: Vec<Entry>,
    /// `Bundle.type`, if it is a string.
    pub(crate) bundle_type: Option<String>,
    /// The input started with a UTF-8 byte order mark, which was skipped.
    pub(crate) had_bom: bool,
}

/// Parses and validates a Bundle; returns its entries in order.
///
/// A leading UTF-8 BOM is skipped (RFC 8259 §8.1 lets a parser ignore it). The JSON
/// is read strictly ([`crate::strict`]: a duplicate key anywhere is an error), then
/// every `entry[].resource` is checked ([`crate::check::resource`]: id grammar,
/// canonical base64).
pub(crate) fn parse_bundle(json: &[u8]) -> Result<Parsed, FhirError> {
    if json.len() > MAX_BUNDLE_BYTES {
        return Err(FhirError::TooLarge {
            size: json.len(),
            max: MAX_BUNDLE_BYTES,
        });
    }
    let (json, had_bom) = match json.strip_prefix(UTF8_BOM) {
        Some(rest) => (rest, true),
        None => (json, false),
    };
    let value: Value = crate::strict::from_slice(json).map_err(|e| match e {
        Ok((path, key)) => FhirError::DuplicateKey { path, key },
        // serde_json does not expose its error code; its message is stable.
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => FhirError::TooDeep,
        Err(e) => FhirError::InvalidJson(e),
    })?;
    let mut bundle = match value {
        Value::Object(map) => map,
        other => {
            return Err(FhirError::NotAnObject {
                found: json_kind(&other),
            });
        }
    };
    match bundle.get("resourceType") {
        Some(Value::String(t)) if t == "Bundle" => {}
        Some(Value::String(t)) => {
            return Err(FhirError::NotABundle {
                found: Some(t.clone()),
            });
        }
        _ => return Err(FhirError::NotABundle { found: None }),
    }
    if let Some(id) = bundle.get("id") {
        crate::check::id(id, "id")?;
    }
    let bundle_type = bundle
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let raw_entries = match bundle.remove("entry") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(FhirError::EntryNotArray),
    };
    let mut entries = Vec::with_capacity(raw_entries.len());
    for (index, raw) in raw_entries.into_iter().enumerate() {
        let Value::Object(mut entry) = raw else {
            return Err(FhirError::EntryWithoutResource { index });
        };
        let resource = match entry.remove("resource") {
            Some(r @ Value::Object(_)) => r,
            _ => return Err(FhirError::EntryWithoutResource { index }),
        };
        let Some(resource_type) = str_at(&resource, &["resourceType"]) else {
            return Err(FhirError::ResourceWithoutType { index });
        };
        crate::check::resource(&resource, &format!("entry[{index}].resource"))?;
        entries.push(Entry {
            full_url: entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(str::to_owned),
            resource_type: resource_type.to_owned(),
            id: str_at(&resource, &["id"]).map(str::to_owned),
            resource,
        });
    }
    Ok(Parsed {
        entries,
        bundle_type,
        had_bom,
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Follows object keys from `v`; `None` if any step is missing or not an object.
pub(crate) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.as_object()?.get(*key))
}

/// The string at `path`, if any.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

/// The array at `path`, or an empty slice.
pub(crate) fn array_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Non-empty trimmed string at `path`.
pub(crate) fn text_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    str_at(v, path).map(str::trim).filter(|s| !s.is_empty())
}

/// `resource.identifier[]` with a `value` string.
pub(crate) fn identifiers(resource: &Value) -> Vec<Identifier> {
    array_at(resource, &["identifier"])
        .iter()
        .filter_map(|id| {
            Some(Identifier {
                system: str_at(id, &["system"]).map(str::to_owned),
                value: str_at(id, &["value"])?.to_owned(),
            })
        })
        .collect()
}

/// Maps every way an entry can be referenced to its index.
pub(crate) struct RefIndex {
    by_key: HashMap<String, usize>,
}

impl RefIndex {
    /// Indexes `fullUrl`, `Type/id`, and the `Type/id` tail of absolute fullUrls.
    /// When two entries share a key, the first one wins.
    pub(crate) fn new(entries: &[Entry]) -> Self {
        let mut by_key = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if let Some(url) = &e.full_url {
                by_key.entry(strip_history(url).to_owned()).or_insert(i);
                if let Some(tail) = type_id_tail(url) {
                    by_key.entry(tail.to_owned()).or_insert(i);
                }
            }
            if let Some(id) = &e.id {
                by_key
                    .entry(format!("{}/{id}", e.resource_type))
                    .or_insert(i);
            }
        }
        Self { by_key }
    }

    /// Resolves a FHIR reference (`urn:uuid:...`, `Type/id`, absolute URL, with or
    /// without `/_history/n`) to an entry index. Contained (`#id`) references never
    /// resolve.
    pub(crate) fn resolve(&self, reference: &str) -> Option<usize> {
        let reference = strip_history(reference.trim());
        if reference.is_empty() || reference.starts_with('#') {
            return None;
        }
        if let Some(&i) = self.by_key.get(reference) {
            return Some(i);
        }
        type_id_tail(reference).and_then(|tail| self.by_key.get(tail).copied())
    }
}

/// `http://x/fhir/Observation/1/_history/2` → `http://x/fhir/Observation/1`.
fn strip_history(url: &str) -> &str {
    match url.find("/_history/") {
        Some(pos) => url.get(..pos).unwrap_or(url),
        None => url,
    }
}

/// The last two path segments (`Type/id`) of an absolute `http(s)` URL whose
/// second-to-last segment starts with an uppercase letter.
fn type_id_tail(url: &str) -> Option<&str> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return None;
    }
    let url = strip_history(url);
    let last_slash = url.rfind('/')?;
    let before = url.get(..last_slash)?;
    let type_start = before.rfind('/')? + 1;
    let tail = url.get(type_start..)?;
    let first = tail.chars().next()?;
    (first.is_ascii_uppercase() && last_slash + 1 < url.len()).then_some(tail)
}

/// Builds a FHIR `collection` Bundle of the given entries (fullUrl kept when present).
pub(crate) fn collection_bundle(items: Vec<(Option<String>, Value)>) -> Value {
    let entries = items
        .into_iter()
        .map(|(full_url, resource)| {
            let mut e = Map::new();
            if let Some(url) = full_url {
                e.insert("fullUrl".to_owned(), Value::String(url));
            }
            e.insert("resource".to_owned(), resource);
            Value::Object(e)
        })
        .collect();
    let mut b = Map::new();
    b.insert("resourceType".to_owned(), Value::from("Bundle"));
    b.insert("type".to_owned(), Value::from("collection"));
    b.insert("entry".to_owned(), Value::Array(entries));
    Value::Object(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    fn entry(full_url: Option<&str>, rt: &str, id: Option<&str>) -> Entry {
        Entry {
            full_url: full_url.map(str::to_owned),
            resource_type: rt.to_owned(),
            id: id.map(str::to_owned),
            resource: Value::Null,
        }
    }

    #[test]
    fn resolves_all_reference_shapes() {
        let entries = [
            entry(Some("urn:uuid:aaa"), "Observation", None),
            entry(
                Some("http://lab.example/fhir/Observation/o2"),
                "Observation",
                None,
            ),
            entry(None, "Observation", Some("o3")),
        ];
        let idx = RefIndex::new(&entries);
        assert_eq!(idx.resolve("urn:uuid:aaa"), Some(0));
        assert_eq!(idx.resolve("Observation/o2"), Some(1));
        assert_eq!(
            idx.resolve("http://lab.example/fhir/Observation/o2"),
            Some(1)
        );
        assert_eq!(
            idx.resolve("http://other.example/Observation/o3/_history/4"),
            Some(2)
        );
        assert_eq!(idx.resolve("Observation/o3/_history/1"), Some(2));
        assert_eq!(idx.resolve("#o3"), None);
        assert_eq!(idx.resolve(""), None);
        assert_eq!(idx.resolve("Observation/none"), None);
        assert_eq!(type_id_tail("https://x/"), None);
        assert_eq!(type_id_tail("https://x/fhir/obs/1"), None);
    }

    #[test]
    fn label_forms() {
        assert_eq!(entry(None, "Binary", Some("b")).label(3), "Binary/b");
        assert_eq!(
            entry(Some("urn:uuid:1"), "Binary", None).label(3),
            "Binary urn:uuid:1"
        );
        assert_eq!(entry(None, "Binary", None).label(3), "Binary (entry 3)");
    }
}

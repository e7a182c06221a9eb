//! The error type of this crate.

/// Why a byte string could not be read as a FHIR R4 Bundle.
///
/// Every failure of [`crate::split_bundle`] and [`crate::sensitive_strings`] is one of
/// these variants; neither function panics on any input. The enum is
/// `#[non_exhaustive]`: match it with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FhirError {
    /// The input is larger than [`crate::MAX_BUNDLE_BYTES`]; it was not parsed.
    #[error("FHIR bundle is {size} bytes, larger than the {max}-byte limit")]
    TooLarge {
        /// Size of the rejected input, in bytes.
        size: usize,
        /// The limit, in bytes ([`crate::MAX_BUNDLE_BYTES`]).
        max: usize,
    },

    /// The JSON nests arrays/objects deeper than serde_json's recursion limit (128).
    #[error("FHIR bundle JSON is nested too deeply (serde_json recursion limit exceeded)")]
    TooDeep,

    /// The input is not well-formed JSON (or not UTF-8).
    #[error("FHIR bundle is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),

    /// The JSON document is valid but its top level is not an object.
    #[error("FHIR bundle JSON must be an object at the top level, found {found}")]
    NotAnObject {
        /// The JSON kind that was found instead ("array", "string", ...).
        found: &'static str,
    },

    /// The top-level `resourceType` is missing, not a string, or not `"Bundle"`.
    #[error("expected a FHIR resource with resourceType \"Bundle\", found {}", describe_found(.found))]
    NotABundle {
        /// The `resourceType` string found, if there was one.
        found: Option<String>,
    },

    /// `Bundle.entry` is present but is not a JSON array.
    #[error("Bundle.entry must be an array")]
    EntryNotArray,

    /// `Bundle.entry[index]` is not an object or has no `resource` object.
    #[error("Bundle.entry[{index}] has no \"resource\" object")]
    EntryWithoutResource {
        /// Zero-based position of the entry in `Bundle.entry`.
        index: usize,
    },

    /// `Bundle.entry[index].resource` has no `resourceType` string.
    #[error("Bundle.entry[{index}].resource has no \"resourceType\" string")]
    ResourceWithoutType {
        /// Zero-based position of the entry in `Bundle.entry`.
        index: usize,
    },

    /// Serializing an output document failed (not expected for parsed JSON values).
    #[error("could not serialize an output FHIR document: {0}")]
    Serialize(#[source] serde_json::Error),
}

fn describe_found(found: &Option<String>) -> String {
    match found {
        Some(t) => format!("{t:?}"),
        None => "no resourceType string".to_owned(),
    }
}

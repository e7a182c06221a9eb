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

    /// An object holds the same key twice (FHIR R4 §2.6.2 forbids it; serde_json alone
    /// would keep the last one).
    #[error("duplicate JSON key {key:?} in {}", where_(.path))]
    DuplicateKey {
        /// Path of the object holding the key, e.g. `entry[3].resource` (empty: top level).
        path: String,
        /// The repeated key.
        key: String,
    },

    /// A resource `id` is not a string matching the FHIR R4 `id` grammar
    /// `[A-Za-z0-9\-\.]{1,64}`.
    #[error("{path}: {id} is not a valid FHIR id ([A-Za-z0-9-.]{{1,64}})")]
    InvalidId {
        /// Path of the id, e.g. `entry[3].resource.id`.
        path: String,
        /// The value found, as JSON (strings quoted), shortened to 80 characters.
        id: String,
    },

    /// A `base64Binary` (`Binary.data`, `Attachment.data`) is not canonical base64
    /// (RFC 4648 §4 standard alphabet, `=` padding, no whitespace, zero trailing bits).
    #[error("{path}: not canonical base64 (RFC 4648 standard alphabet with padding): {reason}")]
    InvalidBase64 {
        /// Path of the value, e.g. `entry[2].resource.data`.
        path: String,
        /// What the decoder found wrong.
        reason: String,
    },

    /// A reference does not resolve inside the bundle (see
    /// [`crate::SplitOptions::allow_dangling`]).
    #[error("{path}: reference {reference:?} is not in the bundle (dangling reference)")]
    DanglingReference {
        /// Path of the reference, e.g. `entry[3].resource.result[0].reference`.
        path: String,
        /// The reference string.
        reference: String,
    },

    /// One Patient carries both a production INS-NIR (OID `1.2.250.1.213.1.4.8`) and a
    /// test one (`.10` or `.11`): test and real identities must never be mixed.
    #[error(
        "{path}: patient {patient} carries both a production INS-NIR and a test INS \
         ({test_oid}); test and real identities must not be mixed"
    )]
    MixedInsIdentities {
        /// Path of the identifier list, e.g. `entry[0].resource.identifier`.
        path: String,
        /// The patient's label (`Patient/id`).
        patient: String,
        /// The test OID found (`urn:oid:1.2.250.1.213.1.4.10` or `.11`).
        test_oid: String,
    },

    /// Serializing an output document failed (not expected for parsed JSON values).
    #[error("could not serialize an output FHIR document: {0}")]
    Serialize(#[source] serde_json::Error),
}

fn where_(path: &str) -> String {
    if path.is_empty() {
        "the top-level object".to_owned()
    } else {
        path.to_owned()
    }
}

fn describe_found(found: &Option<String>) -> String {
    match found {
        Some(t) => format!("{t:?}"),
        None => "no resourceType string".to_owned(),
    }
}

//! FHIR R4 Bundle splitting and French INS-NIR checks for the Serment vault.
//!
//! Pure library: no I/O, no async, no panics on any input.
//!
//! * [`split_bundle`] reads a [FHIR R4 `Bundle`](https://hl7.org/fhir/R4/bundle.html)
//!   (JSON, any `Bundle.type`: transaction, collection, searchset, ...) and cuts it into
//!   vault documents ([`FhirDocument`]): one per `DiagnosticReport` with the
//!   `Observation`s it references, one per `DocumentReference` with the `Binary` it
//!   points to, one per `Patient`, and one "remainder" document for everything else.
//!   Every input resource lands in exactly one output document. The input is read
//!   strictly (duplicate keys, FHIR id grammar, canonical base64, dangling references,
//!   mixed test/production INS are errors naming their path): see [`split_bundle`].
//! * [`check_nir`] checks the control key of a NIR, the value of the French INS
//!   ("identité nationale de santé", INS-NIR OID `1.2.250.1.213.1.4.8`); splitting runs
//!   it on every INS-NIR identifier of every `Patient` and reports failures in
//!   [`SplitBundle::warnings`].
//! * [`sensitive_strings`] lists the identifying and medical strings of a bundle
//!   (patient names, birth dates, identifiers, LOINC display strings) so that a test
//!   can scan the server's storage for leaked plaintext.
//!
//! ```
//! let bundle = br#"{"resourceType":"Bundle","type":"collection","entry":[
//!   {"fullUrl":"urn:uuid:p1","resource":{"resourceType":"Patient","id":"p1",
//!     "name":[{"family":"Martin","given":["Louise"]}],
//!     "identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.10","value":"189079912345678"}]}}
//! ]}"#;
//! let split = serment_fhir::split_bundle(bundle)?;
//! assert_eq!(split.documents.len(), 1);
//! assert_eq!(
//!     split.warnings,
//!     ["Patient/p1: INS-NIR-TEST 189079912345678 has control key 78, expected 37"]
//! );
//! assert_eq!(
//!     split.test_identities,
//!     ["Patient/p1: carries a test INS identity: not a real patient"]
//! );
//! assert!(split.patients[0].test_identity);
//!
//! // Strict reading: a duplicate key is an error naming where it is.
//! let twice = br#"{"resourceType":"Bundle","entry":[{"resource":
//!   {"resourceType":"Patient","id":"p","id":"q"}}]}"#;
//! let e = serment_fhir::split_bundle(twice).unwrap_err();
//! assert_eq!(e.to_string(), r#"duplicate JSON key "id" in entry[0].resource"#);
//! # Ok::<(), serment_fhir::FhirError>(())
//! ```

mod bundle;
mod check;
mod error;
mod lab;
mod nir;
mod sensitive;
mod split;
mod strict;

use serde::{Deserialize, Serialize};

pub use check::{MAX_ID_CHARS, is_valid_id};
pub use error::FhirError;
pub use lab::{LabReport, LabRow, lab_report};
pub use nir::{
    NirCheck, OID_INS_NIR, OID_INS_NIR_DEMO, OID_INS_NIR_TEST, check_nir, ins_nir_label, nir_key,
};
pub use sensitive::sensitive_strings;
pub use split::{split_bundle, split_bundle_with};

/// Largest input accepted by [`split_bundle`] and [`sensitive_strings`]: 64 MiB.
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024 * 1024;

/// MIME type of every [`FhirDocument::content`]: `application/fhir+json`
/// (FHIR R4 §2.6.3, "JSON representation of resources").
pub const FHIR_JSON_MIME: &str = "application/fhir+json";

/// A FHIR `Identifier` reduced to its `system` (a URI, often `urn:oid:...`) and `value`.
///
/// Identifiers without a `value` string are dropped when read from a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// `Identifier.system`, if present (e.g. `urn:oid:1.2.250.1.213.1.4.8` for INS-NIR).
    pub system: Option<String>,
    /// `Identifier.value`.
    pub value: String,
}

/// Which rule of [`split_bundle`] produced a [`FhirDocument`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DocumentKind {
    /// A `DiagnosticReport` followed by the `Observation`s of its `result` (and their
    /// `hasMember`, one level), as a `collection` Bundle.
    DiagnosticReport,
    /// A `DocumentReference` followed by the `Binary` resources its
    /// `content[].attachment.url` point to, as a `collection` Bundle.
    DocumentReference,
    /// One `Patient` resource, on its own (the content is the Patient JSON, not a Bundle).
    Patient,
    /// Every resource not taken by the other rules, as a `collection` Bundle.
    Remainder,
}

impl DocumentKind {
    /// A stable lowercase name: `diagnostic-report`, `document-reference`, `patient`,
    /// `remainder`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DiagnosticReport => "diagnostic-report",
            Self::DocumentReference => "document-reference",
            Self::Patient => "patient",
            Self::Remainder => "remainder",
        }
    }
}

impl std::fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One vault document cut out of a bundle by [`split_bundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FhirDocument {
    /// The rule that produced this document.
    pub kind: DocumentKind,
    /// `resourceType` of the main resource (`DiagnosticReport`, `DocumentReference`,
    /// `Patient`), or `Bundle` for the remainder.
    pub resource_type: String,
    /// A short human title (at most 120 characters), e.g. `DiagnosticReport.code.text`,
    /// `DocumentReference.description`, `"Patient"`, `"Other resources (N)"`.
    pub title: String,
    /// The document as FHIR JSON (UTF-8): a `Bundle` of type `collection` whose
    /// entries keep the input `fullUrl`s, or the bare resource for [`DocumentKind::Patient`].
    /// Resources are the parsed JSON values re-serialized (object keys come out sorted).
    pub content: Vec<u8>,
    /// Always [`FHIR_JSON_MIME`].
    pub mime_type: String,
    /// Identifiers of the patient this document is about: the Patient itself, the one
    /// its `subject`/`patient` reference resolves to, or, when the bundle holds
    /// exactly one Patient, that Patient.
    pub patient_identifiers: Vec<Identifier>,
    /// The clinical date, as written in the resource: `DiagnosticReport.effectiveDateTime`
    /// (else `effectivePeriod.start`, else `issued`), `DocumentReference.date`; `None`
    /// for Patient and remainder documents.
    pub date: Option<String>,
}

/// What [`split_bundle`] learned about one `Patient` resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientInfo {
    /// `Patient.id`, else the entry's `fullUrl`, else `entry[N]`.
    pub id: String,
    /// Every `Patient.name[].family`.
    pub family: Vec<String>,
    /// Every `Patient.name[].given[]`.
    pub given: Vec<String>,
    /// `Patient.birthDate` (FHIR `date`, e.g. `1989-07-09`).
    pub birth_date: Option<String>,
    /// Every `Patient.identifier[]` that has a `value`.
    pub identifiers: Vec<Identifier>,
    /// `(value, result)` of [`check_nir`] for each identifier whose system is
    /// [`OID_INS_NIR`], [`OID_INS_NIR_TEST`] or [`OID_INS_NIR_DEMO`].
    pub ins_checks: Vec<(String, NirCheck)>,
    /// The Patient carries a test INS identity: an identifier whose system is
    /// [`OID_INS_NIR_TEST`] (`1.2.250.1.213.1.4.10`) or [`OID_INS_NIR_DEMO`] (`.11`).
    /// Such a patient is not a real person. (A Patient with both a test and a
    /// production INS is refused with [`FhirError::MixedInsIdentities`].)
    pub test_identity: bool,
}

/// How strict [`split_bundle_with`] is. `Default` is the strictest setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SplitOptions {
    /// Accept references that do not resolve inside the bundle, each reported in
    /// [`SplitBundle::warnings`], instead of failing with
    /// [`FhirError::DanglingReference`] (`serment import-fhir --allow-dangling`).
    pub allow_dangling: bool,
}

impl SplitOptions {
    /// The default options with [`SplitOptions::allow_dangling`] set to `allow`.
    #[must_use]
    pub fn allow_dangling(allow: bool) -> Self {
        Self {
            allow_dangling: allow,
        }
    }
}

/// The result of [`split_bundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitBundle {
    /// The documents, Patients first, then reports and document references in input
    /// order, then the remainder (if any resource is left).
    pub documents: Vec<FhirDocument>,
    /// One entry per `Patient` resource, in input order.
    pub patients: Vec<PatientInfo>,
    /// Human-readable problems that did not stop the split: wrong or malformed INS-NIR
    /// control keys, a skipped UTF-8 byte order mark, references
    /// that do not resolve (only with [`SplitOptions::allow_dangling`]), resources
    /// referenced by two reports or of the wrong type. Empty for a clean bundle.
    pub warnings: Vec<String>,
    /// One line per Patient with [`PatientInfo::test_identity`] (a test INS OID,
    /// `1.2.250.1.213.1.4.10` or `.11`), e.g. `Patient/p1: carries a test INS
    /// identity: not a real patient`. Kept apart from `warnings`: test data is
    /// expected in demos and test systems, and a caller reports it as it sees fit.
    pub test_identities: Vec<String>,
}

//! [`split_bundle`]: cutting a FHIR R4 Bundle into vault documents.

use std::collections::HashMap;

use serde_json::Value;

use crate::bundle::{
    Entry, RefIndex, array_at, collection_bundle, identifiers, parse_bundle, str_at, text_at,
};
use crate::{
    DocumentKind, FHIR_JSON_MIME, FhirDocument, FhirError, Identifier, NirCheck, OID_INS_NIR,
    OID_INS_NIR_DEMO, OID_INS_NIR_TEST, PatientInfo, SplitBundle, SplitOptions, check_nir,
    ins_nir_label,
};

/// Longest [`FhirDocument::title`], in characters.
const MAX_TITLE_CHARS: usize = 120;

/// Splits a FHIR R4 Bundle (JSON bytes) into vault documents.
///
/// Rules, applied in this order; each resource is taken by the first rule that claims
/// it, so every input resource appears in exactly one output document:
///
/// 1. each `Patient` → one [`DocumentKind::Patient`] document (the Patient JSON);
///    its INS-NIR identifiers are checked with [`check_nir`];
/// 2. each `DiagnosticReport` (input order) → a `collection` Bundle of the report then
///    the `Observation`s of `result[].reference`, each followed by the `Observation`s
///    of its `hasMember[].reference` (one level);
/// 3. each `DocumentReference` (input order, interleaved with 2) → a `collection`
///    Bundle of the reference then the `Binary` resources of
///    `content[].attachment.url`;
/// 4. everything left → one [`DocumentKind::Remainder`] `collection` Bundle, if any.
///
/// References resolve against `entry.fullUrl` (`urn:uuid:...`, absolute URLs) and
/// `Type/id` (relative references, `/_history/n` ignored); a reference that points to
/// a resource of the wrong type or one already taken by an earlier report adds a line
/// to [`SplitBundle::warnings`], as does every INS-NIR whose control key is wrong or
/// which is malformed; every Patient with a test INS identity is listed in
/// [`SplitBundle::test_identities`].
///
/// The input is read strictly, with the default [`SplitOptions`]:
///
/// * a leading UTF-8 byte order mark is skipped, as RFC 8259 §8.1 allows, with a warning;
/// * a duplicate object key anywhere is [`FhirError::DuplicateKey`];
/// * a resource `id` (also `Bundle.id` and `contained[].id`) outside the FHIR grammar
///   `[A-Za-z0-9\-\.]{1,64}` is [`FhirError::InvalidId`];
/// * a `Binary.data` or `Attachment.data` that is not canonical base64 is
///   [`FhirError::InvalidBase64`];
/// * every `Reference.reference` (and every `urn:` or relative `Attachment.url`) must
///   resolve: to an entry of the bundle, or for `#id` to a `contained` resource of the
///   same entry; conditional references (`Type?query`) are left to the server in
///   `transaction` and `batch` bundles. Otherwise [`FhirError::DanglingReference`];
/// * a Patient with both a production INS-NIR and a test one is
///   [`FhirError::MixedInsIdentities`].
///
/// Errors name the path in the bundle (`entry[3].resource.id`).
///
/// # Errors
///
/// [`FhirError::TooLarge`] above [`crate::MAX_BUNDLE_BYTES`], [`FhirError::InvalidJson`],
/// [`FhirError::TooDeep`], [`FhirError::NotAnObject`], [`FhirError::NotABundle`],
/// [`FhirError::EntryNotArray`], [`FhirError::EntryWithoutResource`],
/// [`FhirError::ResourceWithoutType`], and the strict checks above. A Bundle without
/// `entry` gives no documents.
pub fn split_bundle(json: &[u8]) -> Result<SplitBundle, FhirError> {
    split_bundle_with(json, SplitOptions::default())
}

/// [`split_bundle`] with explicit [`SplitOptions`].
///
/// # Errors
///
/// As [`split_bundle`]; with [`SplitOptions::allow_dangling`], dangling references
/// are warnings instead of [`FhirError::DanglingReference`].
pub fn split_bundle_with(json: &[u8], options: SplitOptions) -> Result<SplitBundle, FhirError> {
    let parsed = parse_bundle(json)?;
    let mut entries = parsed.entries;
    let index = RefIndex::new(&entries);
    let mut warnings = Vec::new();
    if parsed.had_bom {
        warnings.push(
            "the input starts with a UTF-8 byte order mark (BOM); it was skipped \
             (RFC 8259 §8.1)"
                .to_owned(),
        );
    }
    let conditional_ok = matches!(parsed.bundle_type.as_deref(), Some("transaction" | "batch"));
    for (path, reference) in dangling_references(&entries, &index, conditional_ok) {
        if !options.allow_dangling {
            return Err(FhirError::DanglingReference { path, reference });
        }
        warnings.push(format!(
            "{path}: reference {reference:?} is not in the bundle (allowed by --allow-dangling)"
        ));
    }
    let index = RefIndex::new(&entries);
    let mut plan = Plan {
        entries: &entries,
        index: &index,
        owner: vec![None; entries.len()],
        groups: Vec::new(),
        warnings,
        patients: Vec::new(),
        patient_of_entry: HashMap::new(),
    };
    plan.patients()?;
    for (i, e) in entries.iter().enumerate() {
        match e.resource_type.as_str() {
            "DiagnosticReport" => plan.report(i),
            "DocumentReference" => plan.document_reference(i),
            _ => {}
        }
    }
    plan.remainder();
    let Plan {
        groups,
        warnings,
        patients,
        ..
    } = plan;
    let test_identities = patients
        .iter()
        .filter(|p| p.test_identity)
        .map(|p| {
            let sep = if p.id.contains(':') { ' ' } else { '/' };
            format!(
                "Patient{sep}{}: carries a test INS identity: not a real patient",
                p.id
            )
        })
        .collect();

    let mut documents = Vec::with_capacity(groups.len());
    for g in groups {
        let mut items = Vec::with_capacity(g.members.len());
        for i in &g.members {
            if let Some(e) = entries.get_mut(*i) {
                items.push((e.full_url.clone(), std::mem::take(&mut e.resource)));
            }
        }
        let content = if g.kind == DocumentKind::Patient {
            let resource = items.pop().map(|(_, r)| r).unwrap_or(Value::Null);
            serde_json::to_vec(&resource)
        } else {
            serde_json::to_vec(&collection_bundle(items))
        }
        .map_err(FhirError::Serialize)?;
        documents.push(FhirDocument {
            kind: g.kind,
            resource_type: g.resource_type,
            title: g.title,
            content,
            mime_type: FHIR_JSON_MIME.to_owned(),
            patient_identifiers: g.patient_ids,
            date: g.date,
        });
    }
    Ok(SplitBundle {
        documents,
        patients,
        warnings,
        test_identities,
    })
}

/// A planned document: which entries go in it, before the resources are moved out.
struct Group {
    kind: DocumentKind,
    resource_type: String,
    title: String,
    date: Option<String>,
    patient_ids: Vec<Identifier>,
    /// Entry indices, main resource first.
    members: Vec<usize>,
}

struct Plan<'a> {
    entries: &'a [Entry],
    index: &'a RefIndex,
    /// For each entry, the group that took it.
    owner: Vec<Option<usize>>,
    groups: Vec<Group>,
    warnings: Vec<String>,
    patients: Vec<PatientInfo>,
    /// Entry index of a Patient → index in `patients`.
    patient_of_entry: HashMap<usize, usize>,
}

impl Plan<'_> {
    fn claim(&mut self, entry: usize, group: usize) {
        if let Some(slot) = self.owner.get_mut(entry) {
            *slot = Some(group);
        }
        if let Some(g) = self.groups.get_mut(group) {
            g.members.push(entry);
        }
    }

    fn patients(&mut self) -> Result<(), FhirError> {
        for (i, e) in self.entries.iter().enumerate() {
            if e.resource_type != "Patient" {
                continue;
            }
            let info = patient_info(e, i, &mut self.warnings)?;
            self.patient_of_entry.insert(i, self.patients.len());
            self.groups.push(Group {
                kind: DocumentKind::Patient,
                resource_type: e.resource_type.clone(),
                title: "Patient".to_owned(),
                date: None,
                patient_ids: info.identifiers.clone(),
                members: Vec::new(),
            });
            self.claim(i, self.groups.len() - 1);
            self.patients.push(info);
        }
        Ok(())
    }

    /// Identifiers of the Patient that `subject` / `patient` of `resource` points to,
    /// or of the only Patient of the bundle.
    fn patient_ids_of(&self, resource: &Value) -> Option<Vec<Identifier>> {
        ["subject", "patient"]
            .iter()
            .filter_map(|field| str_at(resource, &[field, "reference"]))
            .filter_map(|r| self.index.resolve(r))
            .find_map(|i| self.patient_of_entry.get(&i))
            .and_then(|p| self.patients.get(*p))
            .map(|p| p.identifiers.clone())
    }

    fn sole_patient_ids(&self) -> Vec<Identifier> {
        match self.patients.as_slice() {
            [only] => only.identifiers.clone(),
            _ => Vec::new(),
        }
    }

    fn start_group(&mut self, i: usize, kind: DocumentKind, title: String, date: Option<String>) {
        let Some(e) = self.entries.get(i) else { return };
        let patient_ids = self
            .patient_ids_of(&e.resource)
            .unwrap_or_else(|| self.sole_patient_ids());
        self.groups.push(Group {
            kind,
            resource_type: e.resource_type.clone(),
            title,
            date,
            patient_ids,
            members: Vec::new(),
        });
        self.claim(i, self.groups.len() - 1);
    }

    /// Resolves `reference` (found in `field` of entry `from`) to a free entry of type
    /// `wanted` and gives it to `group`; warns otherwise. Returns the entry taken.
    fn take_ref(
        &mut self,
        from: usize,
        field: &str,
        reference: &str,
        wanted: &str,
        group: usize,
    ) -> Option<usize> {
        let from_label = self.label(from);
        let Some(target) = self.index.resolve(reference) else {
            // Every other unresolved reference was already refused or reported by
            // `dangling_references` (or is a contained `#id`, which stays in its
            // resource); an absolute attachment URL is content outside FHIR.
            if reference.contains("://") && !self.index_has_reference_semantics(field) {
                self.warnings.push(format!(
                    "{from_label}: {field} {reference:?} is outside the bundle; \
                     its content is not imported"
                ));
            }
            return None;
        };
        let target_type = self.entries.get(target)?.resource_type.clone();
        if target_type != wanted {
            self.warnings.push(format!(
                "{from_label}: {field} {reference:?} points to {target_type}, \
                 expected {wanted}; left with the other resources"
            ));
            return None;
        }
        match self.owner.get(target).copied().flatten() {
            None => {
                self.claim(target, group);
                Some(target)
            }
            Some(g) if g == group => None,
            Some(g) => {
                let first = self
                    .groups
                    .get(g)
                    .and_then(|g| g.members.first())
                    .map_or_else(|| "another document".to_owned(), |m| self.label(*m));
                self.warnings.push(format!(
                    "{}: referenced by {from_label} but already in the document of {first}; \
                     kept there",
                    self.label(target)
                ));
                None
            }
        }
    }

    /// Whether `field` holds a FHIR `Reference` (checked by `dangling_references`)
    /// rather than an `Attachment.url`.
    fn index_has_reference_semantics(&self, field: &str) -> bool {
        field != "attachment URL"
    }

    fn label(&self, i: usize) -> String {
        self.entries
            .get(i)
            .map_or_else(|| format!("entry {i}"), |e| e.label(i))
    }

    fn report(&mut self, i: usize) {
        let Some(e) = self.entries.get(i) else { return };
        let r = &e.resource;
        let title = code_title(r, "code", "Diagnostic report");
        let date = ["effectiveDateTime", "effectivePeriod.start", "issued"]
            .iter()
            .find_map(|p| text_at(r, &p.split('.').collect::<Vec<_>>()))
            .map(str::to_owned);
        self.start_group(i, DocumentKind::DiagnosticReport, title, date);
        let group = self.groups.len() - 1;
        let results: Vec<String> = array_at(r, &["result"])
            .iter()
            .filter_map(|x| str_at(x, &["reference"]).map(str::to_owned))
            .collect();
        for reference in results {
            let Some(obs) = self.take_ref(i, "result", &reference, "Observation", group) else {
                continue;
            };
            let members: Vec<String> = self
                .entries
                .get(obs)
                .map(|o| array_at(&o.resource, &["hasMember"]))
                .unwrap_or_default()
                .iter()
                .filter_map(|x| str_at(x, &["reference"]).map(str::to_owned))
                .collect();
            for m in members {
                self.take_ref(obs, "hasMember", &m, "Observation", group);
            }
        }
    }

    fn document_reference(&mut self, i: usize) {
        let Some(e) = self.entries.get(i) else { return };
        let r = &e.resource;
        let title = text_at(r, &["description"])
            .map(str::to_owned)
            .unwrap_or_else(|| code_title(r, "type", "Document"));
        let date = text_at(r, &["date"]).map(str::to_owned);
        self.start_group(i, DocumentKind::DocumentReference, title, date);
        let group = self.groups.len() - 1;
        let urls: Vec<String> = array_at(r, &["content"])
            .iter()
            .filter_map(|c| str_at(c, &["attachment", "url"]).map(str::to_owned))
            .collect();
        for url in urls {
            self.take_ref(i, "attachment URL", &url, "Binary", group);
        }
    }

    fn remainder(&mut self) {
        let left: Vec<usize> = (0..self.entries.len())
            .filter(|i| self.owner.get(*i).copied().flatten().is_none())
            .collect();
        if left.is_empty() {
            return;
        }
        let mut patient_ids: Vec<Identifier> = Vec::new();
        for &i in &left {
            let ids = self
                .entries
                .get(i)
                .and_then(|e| self.patient_ids_of(&e.resource))
                .unwrap_or_default();
            for id in ids {
                if !patient_ids.contains(&id) {
                    patient_ids.push(id);
                }
            }
        }
        if patient_ids.is_empty() {
            patient_ids = self.sole_patient_ids();
        }
        self.groups.push(Group {
            kind: DocumentKind::Remainder,
            resource_type: "Bundle".to_owned(),
            title: format!("Other resources ({})", left.len()),
            date: None,
            patient_ids,
            members: Vec::new(),
        });
        let group = self.groups.len() - 1;
        for i in left {
            self.claim(i, group);
        }
    }
}

/// Title from a CodeableConcept field: `text`, else the first `coding.display`, else
/// `"<fallback> <first coding.code>"`, else `fallback`.
fn code_title(resource: &Value, field: &str, fallback: &str) -> String {
    let codings = array_at(resource, &[field, "coding"]);
    let title = text_at(resource, &[field, "text"])
        .or_else(|| codings.iter().find_map(|c| text_at(c, &["display"])))
        .map(str::to_owned)
        .or_else(|| {
            codings
                .iter()
                .find_map(|c| text_at(c, &["code"]))
                .map(|code| format!("{fallback} {code}"))
        })
        .unwrap_or_else(|| fallback.to_owned());
    shorten(&title)
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_TITLE_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX_TITLE_CHARS - 1).collect();
    out.push('…');
    out
}

/// References of every entry that resolve neither to an entry nor (for `#id`) to a
/// contained resource of the same entry, as `(path, reference)`. Conditional
/// references (`Type?query`) are skipped when `conditional_ok`.
fn dangling_references(
    entries: &[Entry],
    index: &RefIndex,
    conditional_ok: bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mut refs = Vec::new();
        crate::check::references(&e.resource, &format!("entry[{i}].resource"), &mut refs);
        for (path, reference) in refs {
            let r = reference.trim();
            let resolved = if let Some(local) = r.strip_prefix('#') {
                // `#` alone is the container itself (FHIR R4 §2.3.0.7).
                local.is_empty()
                    || array_at(&e.resource, &["contained"])
                        .iter()
                        .any(|c| str_at(c, &["id"]) == Some(local))
            } else if r.contains('?') && !r.contains("://") {
                conditional_ok
            } else {
                index.resolve(r).is_some()
            };
            if !resolved {
                out.push((path, reference));
            }
        }
    }
    out
}

/// Reads a Patient, checking its INS-NIR identifiers (warnings appended).
///
/// # Errors
///
/// [`FhirError::MixedInsIdentities`] when it carries both a production and a test INS.
fn patient_info(
    e: &Entry,
    index: usize,
    warnings: &mut Vec<String>,
) -> Result<PatientInfo, FhirError> {
    let r = &e.resource;
    let names = array_at(r, &["name"]);
    let family = names
        .iter()
        .filter_map(|n| text_at(n, &["family"]).map(str::to_owned))
        .collect();
    let given = names
        .iter()
        .flat_map(|n| array_at(n, &["given"]))
        .filter_map(|g| g.as_str().map(str::trim).filter(|g| !g.is_empty()))
        .map(str::to_owned)
        .collect();
    let identifiers = identifiers(r);
    let label = e.label(index);
    let mut ins_checks = Vec::new();
    for id in &identifiers {
        let Some(kind) = id.system.as_deref().and_then(ins_nir_label) else {
            continue;
        };
        let check = check_nir(&id.value);
        match &check {
            NirCheck::Valid => {}
            NirCheck::WrongKey { expected, found } => warnings.push(format!(
                "{label}: {kind} {} has control key {found:02}, expected {expected:02}",
                id.value
            )),
            NirCheck::Malformed(reason) => warnings.push(format!(
                "{label}: {kind} {:?} is malformed: {reason}",
                id.value
            )),
        }
        ins_checks.push((id.value.clone(), check));
    }
    let has = |oid: &str| {
        identifiers
            .iter()
            .any(|id| id.system.as_deref() == Some(oid))
    };
    let test_oid = [OID_INS_NIR_TEST, OID_INS_NIR_DEMO]
        .into_iter()
        .find(|oid| has(oid));
    if let Some(test_oid) = test_oid
        && has(OID_INS_NIR)
    {
        return Err(FhirError::MixedInsIdentities {
            path: format!("entry[{index}].resource.identifier"),
            patient: label,
            test_oid: test_oid.to_owned(),
        });
    }
    Ok(PatientInfo {
        id: e
            .id
            .clone()
            .or_else(|| e.full_url.clone())
            .unwrap_or_else(|| format!("entry[{index}]")),
        family,
        given,
        birth_date: text_at(r, &["birthDate"]).map(str::to_owned),
        identifiers,
        ins_checks,
        test_identity: test_oid.is_some(),
    })
}

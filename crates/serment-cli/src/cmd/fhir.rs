//! `serment import-fhir`: split a FHIR R4 Bundle, seal each document, upload.

use std::path::Path;

use serde::Serialize;
use serde_json::json;
use serment_client::vault::Session;
use serment_core::document::{Metadata, PatientIdentifier};
use serment_fhir::{NirCheck, SplitBundle, SplitOptions};

use super::{Ctx, now_rfc3339};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// The largest bundle file read, in bytes.
const MAX_BUNDLE_FILE: u64 = serment_fhir::MAX_BUNDLE_BYTES as u64;

/// One uploaded document.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Imported {
    pub(crate) doc_id: String,
    pub(crate) kind: String,
    pub(crate) resource_type: String,
    pub(crate) plaintext_bytes: u64,
    pub(crate) sealed_bytes: u64,
    #[serde(skip)]
    pub(crate) content: Vec<u8>,
}

/// Reads and splits a bundle file, strictly (see `serment_fhir::split_bundle`): any
/// defect is a `CliError::Fhir` (exit 2) naming the file and the path in the bundle.
/// `allow_dangling` turns dangling references into warnings.
pub(crate) fn read_bundle(path: &Path, allow_dangling: bool) -> CliResult<(Vec<u8>, SplitBundle)> {
    let len = std::fs::metadata(path)
        .map_err(|e| CliError::io(path, e))?
        .len();
    if len > MAX_BUNDLE_FILE {
        return Err(CliError::Input(format!(
            "{} is {len} bytes; the limit is {MAX_BUNDLE_FILE}",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    let split =
        serment_fhir::split_bundle_with(&bytes, SplitOptions::allow_dangling(allow_dangling))
            .map_err(|source| CliError::Fhir {
                path: path.display().to_string(),
                source,
            })?;
    Ok((bytes, split))
}

/// The INS checks of a split bundle, for output: one entry per INS-NIR value.
pub(crate) fn ins_report(split: &SplitBundle) -> Vec<serde_json::Value> {
    let mut v = Vec::new();
    for p in &split.patients {
        for (value, check) in &p.ins_checks {
            let (status, detail) = match check {
                NirCheck::Valid => ("valid", String::new()),
                NirCheck::WrongKey { expected, found } => (
                    "wrong_key",
                    format!("control key {found:02}, expected {expected:02}"),
                ),
                NirCheck::Malformed(why) => ("malformed", why.clone()),
            };
            v.push(
                json!({ "patient": p.id, "ins": value, "status": status, "detail": detail,
                           "test_identity": p.test_identity }),
            );
        }
    }
    v
}

/// Seals and uploads every document of a split bundle for `to`.
pub(crate) fn upload(
    s: &mut Session,
    split: &SplitBundle,
    source: &Path,
    to: &[String],
) -> CliResult<Vec<Imported>> {
    upload_with(s, split, source, to, &[], &[])
}

/// [`upload`] with more recipients (`extra`), of which those in `provisional` are provisional
/// recipients (PROTOCOL.md §15).
pub(crate) fn upload_with(
    s: &mut Session,
    split: &SplitBundle,
    source: &Path,
    to: &[String],
    extra: &[serment_core::wrap::Recipient],
    provisional: &[serment_core::KeyId],
) -> CliResult<Vec<Imported>> {
    let mut recipients = s.recipients(to)?;
    recipients.extend_from_slice(extra);
    let mut out = Vec::with_capacity(split.documents.len());
    for d in &split.documents {
        let meta = Metadata {
            content_length: d.content.len() as u64,
            mime_type: Some(d.mime_type.clone()),
            resource_type: Some(d.resource_type.clone()),
            title: Some(d.title.clone()),
            file_name: source.file_name().map(|n| n.to_string_lossy().into_owned()),
            created: d.date.clone().or_else(now_rfc3339),
            author_display: Some(s.ks.display_name().to_owned()),
            patient_identifiers: d
                .patient_identifiers
                .iter()
                .map(|i| PatientIdentifier {
                    system: i.system.clone().unwrap_or_default(),
                    value: i.value.clone(),
                })
                .collect(),
        };
        let doc_id = serment_core::DocId::random().map_err(|e| CliError::Input(e.to_string()))?;
        let r = s.put_version_with(
            d.content.as_slice(),
            meta,
            doc_id,
            1,
            &recipients,
            provisional,
        )?;
        out.push(Imported {
            doc_id: r.doc_id.to_string(),
            kind: d.kind.to_string(),
            resource_type: d.resource_type.clone(),
            plaintext_bytes: d.content.len() as u64,
            sealed_bytes: r.sealed_len,
            content: d.content.clone(),
        });
    }
    Ok(out)
}

pub(crate) fn import(
    ctx: &Ctx,
    bundle: &Path,
    to: &[String],
    to_unregistered: Option<&str>,
    new_claim_code: bool,
    allow_dangling: bool,
) -> CliResult<()> {
    let (_, split) = read_bundle(bundle, allow_dangling)?;
    let mut s = ctx.session()?;
    let (extra, provisional, unregistered) = match to_unregistered {
        Some(c) => {
            let u = super::provisional::resolve_with(&mut s, c, new_claim_code, ctx.json)?;
            (u.recipients.clone(), u.provisional.clone(), Some(u))
        }
        None => (Vec::new(), Vec::new(), None),
    };
    let docs = upload_with(&mut s, &split, bundle, to, &extra, &provisional)?;
    for w in split.warnings.iter().chain(&split.test_identities) {
        eprintln!("warning: {w}");
    }
    let mut text = format!(
        "Imported {} document(s) from {}\n",
        docs.len(),
        bundle.display()
    );
    for d in &docs {
        text.push_str(&format!(
            "  {}  {:<18} {} bytes\n",
            d.doc_id, d.resource_type, d.plaintext_bytes
        ));
    }
    for w in &split.warnings {
        text.push_str(&format!("  WARNING: {w}\n"));
    }
    for w in &split.test_identities {
        text.push_str(&format!("  WARNING: TEST IDENTITY: {w}\n"));
    }
    if let Some(u) = &unregistered {
        text.push_str(&u.text());
    }
    emit(
        ctx.json,
        &json!({ "bundle": bundle.display().to_string(), "documents": docs, "warnings": split.warnings,
                 "test_identities": split.test_identities, "ins": ins_report(&split),
                 "unregistered": unregistered.as_ref().map(super::provisional::Resolved::json) }),
        text.trim_end(),
    );
    Ok(())
}

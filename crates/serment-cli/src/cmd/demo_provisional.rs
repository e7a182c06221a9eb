//! The demo's patient who has not registered yet (issue 17 §1, PROTOCOL.md §15): the lab seals a
//! report for a contact (`put --to-unregistered`), the patient registers, asks for the one-time
//! code (the demo's server writes its mails to a directory: `smtp_url = file:///DIR`), claims
//! with the claim code and the code, and reads the report; the lab's next report goes straight
//! to the patient's identity.

use std::path::Path;

use serment_client::vault::Session;
use serment_core::document::Metadata;
use serment_core::provisional::ClaimCode;

use crate::error::{CliError, CliResult};

/// The patient's handle once registered.
const PATIENT: &str = "patiente-ana";
/// The contact the lab knows.
const CONTACT: &str = "email:ana@patients.example";

fn meta(content: &[u8]) -> Metadata {
    Metadata {
        content_length: content.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        title: Some("Compte rendu (patiente non inscrite)".into()),
        author_display: Some("Laboratoire BioMed Centre".into()),
        ..Metadata::default()
    }
}

/// The newest one-time code mailed into `dir`.
fn otp_in(dir: &Path) -> CliResult<String> {
    let mut newest: Option<(std::time::SystemTime, String)> = None;
    for e in std::fs::read_dir(dir).map_err(|e| CliError::io(dir, e))? {
        let e = e.map_err(|e| CliError::io(dir, e))?;
        let text = std::fs::read_to_string(e.path()).map_err(|err| CliError::io(e.path(), err))?;
        let at = e
            .metadata()
            .and_then(|m| m.modified())
            .map_err(|err| CliError::io(e.path(), err))?;
        if let Some(pos) = text.find("one-time code is: ") {
            let code: String = text
                .get(pos + 18..)
                .unwrap_or("")
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if newest.as_ref().is_none_or(|(t, _)| at >= *t) {
                newest = Some((at, code));
            }
        }
    }
    newest
        .map(|(_, c)| c)
        .ok_or_else(|| CliError::DemoFailed("no one-time code was mailed".into()))
}

/// Runs the flow; `Ok(true)` when the patient claimed, read the report, and the lab's next
/// report went straight to the patient.
pub(crate) fn run(
    lab: &mut Session,
    new_party: &mut dyn FnMut(&str, &str) -> CliResult<Session>,
    mail_dir: &Path,
    report: &[u8],
) -> CliResult<bool> {
    let sent = lab.put_to_unregistered(report, meta(report), &[], CONTACT)?;
    let code = sent
        .claim_code
        .as_ref()
        .ok_or_else(|| CliError::DemoFailed("no claim code for a new contact".into()))?;
    let code = ClaimCode::parse(code).map_err(|e| CliError::DemoFailed(e.to_string()))?;
    let mut patient = new_party(PATIENT, "Ana (inscrite après coup)")?;
    serment_client::contacts::add(&patient.api, &mut patient.ks, lab.ks.handle())?;
    patient.ks.save()?;
    patient.api.request_claim_otp(&code)?;
    let otp = otp_in(mail_dir)?;
    let claimed = patient.claim(&code, &otp)?;
    let mut out = Vec::new();
    patient.get(&sent.put.doc_id, None, &mut out)?;
    let next = lab.put_to_unregistered(report, meta(report), &[], CONTACT)?;
    let mut out2 = Vec::new();
    patient.get(&next.put.doc_id, None, &mut out2)?;
    Ok(claimed.newly_claimed
        && claimed.versions == 1
        && out == report
        && next.claimed_by.as_deref() == Some(PATIENT)
        && out2 == report)
}

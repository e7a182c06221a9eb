//! The demo's patient who loses every device (issue 17 §2, PROTOCOL.md §4.2): the patient makes
//! a recovery code (`id recovery-code`), receives a report, then loses the machine; on a new one,
//! `recover` with the code enrols a new device that reads the report sent before and one sent
//! after.

use std::path::Path;

use serment_client::transport::Transport;
use serment_client::vault::Session;
use serment_core::document::Metadata;
use serment_core::keystore::KdfParams;
use zeroize::Zeroizing;

use crate::error::{CliError, CliResult};

/// The patient who loses their machine.
const PATIENT: &str = "patient-perdu";

fn meta(content: &[u8], title: &str) -> Metadata {
    Metadata {
        content_length: content.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        title: Some(title.into()),
        author_display: Some("Laboratoire BioMed Centre".into()),
        ..Metadata::default()
    }
}

/// Runs the flow; `Ok(true)` when the device recovered with the code read the report sent
/// before the loss and the one sent after.
pub(crate) fn run(
    lab: &mut Session,
    new_party: &mut dyn FnMut(&str, &str) -> CliResult<Session>,
    homes: &Path,
    server: &str,
    transport: &Transport,
    report: &[u8],
) -> CliResult<bool> {
    let mut patient = new_party(PATIENT, "Patient (machine perdue)")?;
    // The demo keeps the Argon2id floor to stay quick; `id recovery-code` uses the default.
    let code = patient.new_recovery_code(KdfParams::FLOOR)?.code;
    serment_client::contacts::add(&lab.api, &mut lab.ks, PATIENT)?;
    lab.ks.save()?;
    let to = [PATIENT.to_owned()];
    let before = lab.put(report, meta(report, "Avant la perte"), &to)?;
    drop(patient); // the machine is lost

    let mut pass = [0u8; 24];
    serment_core::rng::fill(&mut pass).map_err(|e| CliError::Input(e.to_string()))?;
    let path = homes.join(format!("{PATIENT}-new")).join("keystore.srmk");
    let recovered = serment_client::recovery::recover(
        &path,
        Zeroizing::new(hex::encode(pass)),
        server,
        transport,
        PATIENT,
        &code,
        serment_client::recovery::RecoverOptions {
            keystore_params: KdfParams::FLOOR,
            escrow_params: KdfParams::FLOOR,
            revoke_others: true,
            rotate: false,
        },
    )?;
    let mut new = recovered.session;
    // Pinned contacts are not in the escrow: the recovered device pins the lab again.
    serment_client::contacts::add(&new.api, &mut new.ks, lab.ks.handle())?;
    new.ks.save()?;
    let after = lab.put(report, meta(report, "Après la récupération"), &to)?;
    let (mut out1, mut out2) = (Vec::new(), Vec::new());
    new.get(&before.doc_id, None, &mut out1)?;
    new.get(&after.doc_id, None, &mut out2)?;
    Ok(out1 == report && out2 == report)
}

//! The demo's care team (issue 16, PROTOCOL.md §12 and §4.1): the lab creates "cardio-chu" and
//! adds a cardiologist (two devices, the second linked with the real pairing flow) and the GP;
//! it shares a report with the team (one wrap, to the epoch key) and each of the three member
//! devices reads it; the lab removes the GP (a new epoch), shares a new report, and the GP's
//! read of it must fail (exit 4 or 6, README "Exit codes").

use std::path::Path;
use std::time::Duration;

use serment_client::transport::Transport;
use serment_client::vault::Session;
use serment_core::document::Metadata;
use zeroize::Zeroizing;

use crate::error::{CliError, CliResult};

/// The team's name.
pub(crate) const TEAM: &str = "cardio-chu";
/// The member with two devices.
const CARDIO: &str = "dr-cardiologue";
/// The member who is removed.
const GP: &str = "dr-generaliste";
/// How long the pairing of the cardiologist's second device may take.
const PAIRING_WAIT: Duration = Duration::from_secs(60);

/// What the care-team part of the demo observed.
#[derive(Debug)]
pub(crate) struct TeamOutcome {
    /// The team's current members after the removal, from the lab's verified chain.
    pub(crate) members: Vec<String>,
    /// The current epoch after the removal.
    pub(crate) epoch: u32,
    /// Member devices that read the first report and got the bytes shared.
    pub(crate) devices_read: usize,
    /// Whether the removed member's read of the second report failed with exit 4 or 6.
    pub(crate) removed_member_denied: bool,
    /// The exit code of that read (`None` if it succeeded).
    pub(crate) removed_member_exit: Option<i32>,
    /// What went wrong, for the summary.
    pub(crate) failures: Vec<String>,
}

/// A report shared with the team: the bytes of an imported document, with its own metadata.
fn meta(content: &[u8], title: &str, author: &str) -> Metadata {
    Metadata {
        content_length: content.len() as u64,
        mime_type: Some("application/fhir+json".into()),
        resource_type: None,
        title: Some(title.into()),
        file_name: None,
        created: None,
        author_display: Some(author.into()),
        patient_identifiers: Vec::new(),
    }
}

/// Reads `doc` as `reader`: `Ok(true)` if the bytes are `expected`.
fn read(
    reader: &mut Session,
    doc: &serment_core::DocId,
    expected: &[u8],
) -> serment_client::Result<bool> {
    let mut out = Vec::new();
    reader.get(doc, Some(1), &mut out)?;
    Ok(out == expected)
}

/// Runs the care-team part. `lab` and `gp` are the demo's parties (the GP pins the lab);
/// `party` creates and registers another one (witness set, like the others); `reports` are two
/// contents from the inputs (their sensitive strings are in the demo's scan).
pub(crate) fn run(
    lab: &mut Session,
    gp: &mut Session,
    party: &mut dyn FnMut(&str, &str) -> CliResult<Session>,
    homes: &Path,
    url: &str,
    transport: &Transport,
    reports: [&[u8]; 2],
) -> CliResult<TeamOutcome> {
    let mut failures = Vec::new();
    let mut cardio = party(CARDIO, "Service de cardiologie, CHU")?;
    serment_client::contacts::add(&cardio.api, &mut cardio.ks, "labo-biomed")?;
    // The cardiologist's second device joins with the code (`serment device link` / `join`).
    let pending = cardio.link_start()?;
    let code = pending.code.display().to_string();
    let path = homes.join(format!("{CARDIO}-phone")).join("keystore.srmk");
    let mut pass = [0u8; 24];
    serment_core::rng::fill(&mut pass).map_err(|e| CliError::Input(e.to_string()))?;
    let pass = Zeroizing::new(hex::encode(pass));
    let (u, t) = (url.to_owned(), transport.clone());
    let joiner = std::thread::spawn(move || {
        serment_client::device::join(
            &path,
            pass,
            serment_core::keystore::KdfParams::FLOOR,
            &u,
            &t,
            &code,
            PAIRING_WAIT,
        )
    });
    let linked = cardio.link_finish(pending, PAIRING_WAIT);
    let joined = joiner
        .join()
        .map_err(|_| CliError::Input("the joining device's thread panicked".into()))?;
    linked?;
    let mut phone = joined?.session;

    lab.team_new(TEAM)?;
    lab.team_add(TEAM, CARDIO, false)?;
    lab.team_add(TEAM, GP, false)?;
    let author = lab.ks.display_name().to_owned();
    let (first, _) = lab.put_to_team(
        reports[0],
        meta(reports[0], "Compte rendu pour cardio-chu", &author),
        &[],
        TEAM,
    )?;
    let mut devices_read = 0usize;
    for reader in [&mut cardio, &mut phone, &mut *gp] {
        match read(reader, &first.doc_id, reports[0]) {
            Ok(true) => devices_read += 1,
            Ok(false) => failures.push(format!("{}: read different bytes", reader.ks.device.id())),
            Err(e) => failures.push(format!("{}: {e}", reader.ks.device.id())),
        }
    }

    lab.team_remove(TEAM, GP)?;
    let (second, _) = lab.put_to_team(
        reports[1],
        meta(reports[1], "Second compte rendu pour cardio-chu", &author),
        &[],
        TEAM,
    )?;
    match read(&mut phone, &second.doc_id, reports[1]) {
        Ok(true) => {}
        Ok(false) => failures.push("a remaining member read different bytes".into()),
        Err(e) => failures.push(format!("a remaining member could not read: {e}")),
    }
    let removed_member_exit = match read(gp, &second.doc_id, reports[1]) {
        Ok(_) => {
            failures.push("the removed member read a report shared after the removal".into());
            None
        }
        Err(e) => Some(e.exit_code()),
    };
    let view = lab
        .verify_team(TEAM)?
        .ok_or_else(|| CliError::Input("the team vanished from the log".into()))?;
    Ok(TeamOutcome {
        members: view
            .state
            .members
            .iter()
            .map(|m| m.handle.clone())
            .collect(),
        epoch: view.current()?.epoch,
        devices_read,
        removed_member_denied: matches!(removed_member_exit, Some(4 | 6)),
        removed_member_exit,
        failures,
    })
}

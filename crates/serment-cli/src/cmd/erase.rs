//! `serment erase DOC --reason CODE`: erase every version of a document this identity authored
//! (PROTOCOL.md §11.3.2, issue 12 §5). The server deletes its blobs and wraps; the log keeps a
//! tombstone (ids, the reason code, the requester device), no personal data.

use std::io::IsTerminal;

use clap::Args;
use serde_json::json;
use serment_core::log::erasure::ErasureReason;

use super::{Ctx, doc_id};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// `serment erase`.
#[derive(Debug, Args)]
pub(crate) struct EraseArgs {
    /// The document id (32 hex, as `serment ls` shows it).
    pub(crate) doc: String,
    /// Why: `patient-request` (RGPD art. 17), `sent-in-error` (wrong patient or document),
    /// `retention-ended`, `other`. Logged as its code; no free text.
    #[arg(long, value_parser = ["patient-request", "sent-in-error", "retention-ended", "other"])]
    pub(crate) reason: String,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
}

/// Runs `serment erase`.
pub(crate) fn run(ctx: &Ctx, a: EraseArgs) -> CliResult<()> {
    let id = doc_id(&a.doc)?;
    let reason = ErasureReason::from_name(&a.reason).map_err(|e| CliError::Input(e.to_string()))?;
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Input(
                "erasing a document is permanent: confirm on a terminal, or pass --yes".into(),
            ));
        }
        eprint!(
            "Erase every version of document {id} ({})? Its sealed blobs and keys are deleted \
             for everyone, for good; the log keeps a tombstone. Type \"erase\" to confirm: ",
            reason.name()
        );
        if super::log::read_answer()? != "erase" {
            return Err(CliError::Input("not confirmed: nothing erased".into()));
        }
    }
    let mut s = ctx.session()?;
    let index = s.erase(&id, reason)?;
    emit(
        ctx.json,
        &json!({
            "doc_id": id.to_string(),
            "erased": true,
            "reason": reason.name(),
            "reason_code": reason.code(),
            "log_index": index,
        }),
        &format!(
            "Erased document {id} (reason {}: {}): its blobs and keys are deleted; tombstone at \
             log index {index}.",
            reason.code(),
            reason.name()
        ),
    );
    Ok(())
}

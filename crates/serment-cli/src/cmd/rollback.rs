//! `serment accept-rollback [--statement ID]` (PROTOCOL.md §11.11, docs/BACKUP.md §7): after
//! the server was restored from a backup that lacks entries this device verified, shows what the
//! server's loss statement says was lost and, only with the statement id the operator announced,
//! moves this device's pin back to the restored log.

use clap::Args;
use serde_json::json;
use serment_client::api::Api;
use serment_client::rollback::{self, RollbackReview};

use super::{Ctx, rfc3339};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// `serment accept-rollback`.
#[derive(Debug, Args)]
pub(crate) struct AcceptRollbackArgs {
    /// The loss statement id your server's operator announced (`serment restore` prints it;
    /// at least its first 16 hex digits). Without it nothing changes: the command shows what
    /// the server says was lost.
    #[arg(long, value_name = "ID")]
    pub(crate) statement: Option<String>,
}

/// Runs `serment accept-rollback`.
pub(crate) fn run(ctx: &Ctx, a: AcceptRollbackArgs) -> CliResult<()> {
    let mut ks = ctx.keystore()?;
    let server = ks
        .server()
        .ok_or_else(|| CliError::Input("this keystore is not registered with a server".into()))?
        .to_owned();
    let transport = serment_client::vault::effective_transport(&ks, &ctx.transport()?)?;
    let mut api = Api::with_transport(&server, &transport)?;
    // Logged in when the restored server still knows this device: the review compares what
    // it lists now with what listings showed this device in the lost range. A device it does
    // not know (its registration was lost) is told so, and every such version counts as lost.
    let _ = api.login(&ks.device);
    let r = match a.statement.as_deref() {
        None => rollback::review(&api, &ks)?,
        Some(id) => {
            let r = rollback::accept(&api, &mut ks, id)?;
            ks.save()?;
            r
        }
    };
    let mut j = json!(r);
    if let Some(o) = j.as_object_mut() {
        o.remove("statement_time");
        o.insert("written".into(), rfc3339(r.statement_time).into());
    }
    emit(ctx.json, &j, &text(&server, &r));
    Ok(())
}

fn list(what: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    format!("\n  {what}: {}", items.join(", "))
}

fn text(server: &str, r: &RollbackReview) -> String {
    let proved = if r.lost_to > r.restored_size {
        format!(
            "; a checkpoint known to the restore (the backup's, or one an operator gave) proves \
             entries up to {}",
            r.lost_to
        )
    } else {
        String::new()
    };
    let others: Vec<String> = r
        .documents
        .iter()
        .filter(|d| !r.authored.contains(d))
        .cloned()
        .collect();
    let what = format!(
        "The server {server} says its log was restored from a backup (loss statement {}, \
         written {}).\n  This device verified {} log entries; the restored log holds {} (it \
         has {} now): entries {}..{} that this device verified are gone{proved}.{}{}{}{}",
        &r.statement_id[..16],
        rfc3339(r.statement_time),
        r.pinned_size,
        r.restored_size,
        r.served_size,
        r.restored_size,
        r.pinned_size,
        list(
            "documents this device sealed in the lost range (gone from the server: send them \
             again)",
            &r.authored
        ),
        list(
            "documents with history in the lost range (their authors send or erase them again)",
            &others
        ),
        list(
            "contacts whose key history is verified again on next use",
            &r.contacts
        ),
        list("care teams verified again on next use", &r.teams),
    );
    let what = if r.registration_lost {
        format!(
            "{what}\n  This device's registration was in the lost range: the restored server does \
             not know it. Run `serment register --server {server}` now, before anyone else takes \
             your handle."
        )
    } else {
        what
    };
    let what = if r.hybrid_lost {
        format!(
            "{what}\n  This device's post-quantum upgrade was in the lost range: run `serment id \
             upgrade` again."
        )
    } else {
        what
    };
    if r.accepted {
        format!(
            "{what}\nAccepted: this device now follows the restored log ({} entries). The \
             checkpoint it gave up is kept in the keystore as evidence.",
            r.served_size
        )
    } else {
        format!(
            "{what}\nNothing changed. The statement's id is {}. Only if your server's operator \
             announced a restore with this very id (compare it with their announcement, not \
             with this message), run `serment accept-rollback --statement <the announced id>`. \
             Otherwise treat it as an attack: the log was rolled back (docs/THREAT_MODEL.md).",
            r.statement_id
        )
    }
}

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
            let mut r = match rollback::accept(&api, &mut ks, id) {
                Ok(r) => r,
                // Accepted before, with something left undone (a registration refused, a
                // revocation not logged again for a network error): finish it.
                Err(e) => match rollback::unfinished(&api, &ks, id) {
                    Some(r) => r,
                    None => return Err(e.into()),
                },
            };
            ks.save()?;
            // The user's consent to what follows is the announced id they gave: this
            // device's registration, and its revocations, removals and erasures the restore
            // lost, are put back (newcomer 6 N3; issue 12).
            let done = rollback::restore_own_writes(&mut api, &mut ks, &mut r);
            ks.save()?;
            if let Err(e) = done {
                crate::output::note(&text(&server, &r));
                return Err(e.into());
            }
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
    // `rollback::unfinished`: accepted before, only what it left undone is finished now.
    let what = if r.accepted && r.pinned_size == 0 {
        format!(
            "Loss statement {} was accepted before on {server}; finishing what that left undone.",
            r.statement_id.get(..16).unwrap_or(&r.statement_id)
        )
    } else {
        format!(
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
        )
    };
    let what = if r.registered_again {
        format!(
            "{what}\n  This device's registration was in the lost range: it is registered again \
             (the same keys), and your handle is yours again on the restored server."
        )
    } else if r.registration_lost {
        format!(
            "{what}\n  This device's registration is in the lost range: the restored server does \
             not know it, and until it is registered again anyone may take your handle. Run \
             `serment register --server {server}` again now (accepting with --statement does it)."
        )
    } else {
        what
    };
    let what = if r.revocations.is_empty() {
        what
    } else {
        let rows: Vec<String> = r
            .revocations
            .iter()
            .map(|l| {
                let state = match (&l.logged_again, &l.not_needed) {
                    (Some(i), _) => format!("logged again (log entry {i})"),
                    (None, Some(why)) => {
                        format!("not logged again, moot on the restored server: {why}")
                    }
                    (None, None) if l.cannot.is_some() => format!(
                        "CANNOT be logged again: {}",
                        l.cannot.as_deref().unwrap_or_default()
                    ),
                    (None, None) if r.accepted => "NOT YET logged again: run `serment \
                        accept-rollback --statement <the announced id>` again"
                        .to_owned(),
                    (None, None) => "lost: accepting with --statement logs it again".to_owned(),
                };
                format!(
                    "\n    {} {} (log entry {}): {state}",
                    l.kind.replace('_', " "),
                    l.subject,
                    l.lost_index
                )
            })
            .collect();
        format!(
            "{what}\n  This device's revocations, removals, erasures, identity rotations and \
             team changes in the lost range (what they revoked is live again on the restored \
             server until they are logged again):{}",
            rows.concat()
        )
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

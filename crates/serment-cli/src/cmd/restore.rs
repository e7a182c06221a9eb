//! `serment restore` (issue 12 §2, docs/BACKUP.md §7): rebuilds a server from a backup it
//! verifies first, into an empty data directory (and database / blob store).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use serment_core::log::note::VerifierKey;
use serment_server::backup::Target;
use serment_server::backup::restore::{self, Destination, Options, RestoreError};
use zeroize::Zeroizing;

use super::Ctx;
use super::serve::runtime;
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// The environment variable `serve` reads the log key from (64 hex digits).
const LOG_KEY_ENV: &str = "SERMENT_LOG_KEY";

/// `serment restore`.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup: `file:///ABSOLUTE/DIR` or `s3://BUCKET[/PREFIX]`.
    #[arg(long, value_name = "URL")]
    pub(crate) from: String,
    /// The data directory to create (must not exist or be empty); it receives `log.key` when
    /// the key is given with --log-key-file, and the blobs unless --blob-url.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: PathBuf,
    /// Restore into this database instead of the data directory's SQLite file (must be empty).
    #[arg(long, value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// Restore the blobs into this blob store instead of the data directory.
    #[arg(long, value_name = "URL")]
    pub(crate) blob_url: Option<String>,
    /// The log key (the server's `log.key`, 64 hex digits, kept apart from the backup); or set
    /// SERMENT_LOG_KEY as for `serve`.
    #[arg(long, value_name = "FILE")]
    pub(crate) log_key_file: Option<PathBuf>,
    /// A witness verifier key (repeatable), as for verify-backup.
    #[arg(long = "witness", value_name = "VKEY")]
    pub(crate) witnesses: Vec<String>,
    /// How many of the witnesses must cosign (default: all given).
    #[arg(long)]
    pub(crate) quorum: Option<usize>,
    /// A checkpoint note a client pinned or a witness cosigned (a file, or `-` for stdin): a
    /// backup older than it is refused unless --accept-loss.
    #[arg(long, value_name = "NOTE")]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Bring up a log older than a checkpoint the backup or --checkpoint proves; the lost range
    /// is named.
    #[arg(long)]
    pub(crate) accept_loss: bool,
    /// Restore only the log's first SIZE entries (a checkpoint size of the backup: a refused
    /// restore names the largest one that verifies as `restorable_until`), leaving out a tail
    /// that does not verify; needs --accept-loss, the range lost is named.
    #[arg(long, value_name = "SIZE")]
    pub(crate) until: Option<u64>,
}

fn read_seed(a: &RestoreArgs) -> CliResult<(Zeroizing<[u8; 32]>, bool)> {
    let env = std::env::var(LOG_KEY_ENV).ok().map(Zeroizing::new);
    let (text, from_file) = match (&a.log_key_file, env) {
        (Some(_), Some(_)) => {
            return Err(CliError::Input(format!(
                "give the log key once: --log-key-file or {LOG_KEY_ENV}, not both"
            )));
        }
        (Some(p), None) => (
            Zeroizing::new(std::fs::read_to_string(p).map_err(|e| CliError::io(p, e))?),
            true,
        ),
        (None, Some(t)) => (t, false),
        (None, None) => {
            return Err(CliError::Input(format!(
                "the log key is needed (it is never in the backup): --log-key-file FILE (the \
                 server's log.key) or {LOG_KEY_ENV}"
            )));
        }
    };
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), &mut *seed).map_err(|_| {
        CliError::Input("the log key does not hold 64 hex digits (the log.key format)".into())
    })?;
    Ok((seed, from_file))
}

pub(crate) fn run(ctx: &Ctx, a: RestoreArgs) -> CliResult<()> {
    let target = Target::parse(&a.from).map_err(|e| CliError::Input(e.to_string()))?;
    let (seed, from_file) = read_seed(&a)?;
    let key =
        |k: &str| VerifierKey::parse(k).map_err(|e| CliError::Input(format!("--witness {k}: {e}")));
    let witnesses = a
        .witnesses
        .iter()
        .map(|k| key(k))
        .collect::<CliResult<Vec<_>>>()?;
    let quorum = a.quorum.unwrap_or(witnesses.len());
    if quorum > witnesses.len() {
        return Err(CliError::Input(format!(
            "--quorum {quorum} is more than the {} --witness key(s) given",
            witnesses.len()
        )));
    }
    let opts = Options {
        witnesses,
        quorum,
        pinned: a
            .checkpoint
            .as_ref()
            .map(super::backup::read_note)
            .transpose()?,
        accept_loss: a.accept_loss,
        until: a.until,
        write_key_file: from_file,
    };
    let dest = Destination {
        data_dir: a.data_dir.clone(),
        database_url: a.database_url.clone(),
        blob_url: a.blob_url.clone(),
    };
    let rt = runtime()?;
    let done = rt
        .block_on(restore::restore(&target, &seed, &dest, &opts))
        .map_err(|e| restore_error(ctx, &target, e))?;
    let mut text = format!(
        "restored {} into {}: log of {} entries (root {}), {} device(s), {} document \
         version(s), {} wrap(s), {} erased document(s) left out, {} team(s), {} team key \
         wrap(s), {} blob bytes",
        target.describe(),
        a.data_dir.display(),
        done.size,
        done.root,
        done.devices,
        done.versions,
        done.wraps,
        done.erased,
        done.teams,
        done.team_keys,
        done.blob_bytes
    );
    if let Some(l) = &done.lost {
        text.push_str(&format!(
            "\n  LOST (accepted): entries {}..{}: clients that saw them will report LOG ROLLBACK",
            l.from, l.to
        ));
    }
    text.push_str(&format!(
        "\n  Loss statement {id} written (PROTOCOL.md §11.11): any client or witness that \
         verified more than {size} entries (a write after the newest backed-up increment is \
         enough) reports LOG ROLLBACK. Announce this id (at least its first 16 digits) to your \
         users and witness operators out of band; each runs `serment accept-rollback \
         --statement {id}`, each witness `serment witness ... --accept-rollback {id}`.",
        id = done.loss_statement.id,
        size = done.loss_statement.restored_size,
    ));
    for p in &done.skipped {
        text.push_str(&format!(
            "\n  LEFT OUT (after --until): {}: {}: {}",
            p.kind.to_uppercase(),
            p.what,
            p.detail
        ));
    }
    if done.provisionals > 0 || done.escrows > 0 {
        text.push_str(&format!(
            "\n  {} provisional recipient(s) with {} wrap(s), {} recovery escrow(s) restored",
            done.provisionals, done.provisional_wraps, done.escrows
        ));
    }
    for u in &done.unclaimable {
        text.push_str(&format!(
            "\n  UNCLAIMABLE: provisional recipient {} of lab identity {} ({} wrap(s)): its row \
             is not in the backup; the lab sends to the contact again (put --to-unregistered)",
            u.provisional_id, u.lab_identity, u.wraps
        ));
    }
    for h in &done.escrows_lost {
        text.push_str(&format!(
            "\n  RECOVERY CODE LOST: {h}: its escrow names a device the restored log does not \
             hold as current; the user makes a new code (serment id recovery-code)"
        ));
    }
    if done.social > 0 {
        text.push_str(&format!(
            "\n  {} social recovery contact set(s) restored",
            done.social
        ));
    }
    for h in &done.social_lost {
        text.push_str(&format!(
            "\n  RECOVERY CONTACTS LOST: {h}: the backup holds no set its contacts entry binds; \
             the user names contacts again (serment id recovery-contacts add)"
        ));
    }
    for d in &done.erased_after {
        text.push_str(&format!(
            "\n  ERASED IN THE LOST RANGE: document {d} left out (its author's tombstone is \
             after the restored log: the author may erase it again to log it)"
        ));
    }
    match (done.anchored, &a.checkpoint, &done.lost) {
        (true, _, _) => {}
        // The newcomer's N11: the note was given and used; the backup is behind it.
        (false, Some(_), Some(_)) => text.push_str(
            "\n  BEHIND THE PINNED CHECKPOINT: the note given with --checkpoint is newer than the \
             backup; the restored log is behind it (the LOST range above)",
        ),
        (false, Some(_), None) => text.push_str(
            "\n  NOT ANCHORED BY --checkpoint: the restored log does not reach the note given \
             with --checkpoint",
        ),
        (false, None, _) => text.push_str(
            "\n  UNANCHORED: nothing proves the backup is the newest one written; give \
             --checkpoint with a checkpoint note a client pinned",
        ),
    }
    emit(ctx.json, &json!({ "restored": done }), &text);
    Ok(())
}

fn restore_error(ctx: &Ctx, target: &Target, e: RestoreError) -> CliError {
    let list = |r: &serment_server::backup::verify::Report| {
        if !ctx.json {
            let mut text = String::new();
            for p in &r.problems {
                text.push_str(&format!(
                    "  {}: {}: {}\n",
                    p.kind.to_uppercase(),
                    p.what,
                    p.detail
                ));
            }
            crate::output::line(text.trim_end());
        }
    };
    match e {
        RestoreError::Backup(b) => super::backup::backup_error(target, b),
        RestoreError::Invalid {
            ref report,
            restorable_until,
        } => {
            list(report);
            let mut v = serde_json::to_value(report).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("restorable_until".into(), json!(restorable_until));
            }
            let hint = restorable_until.map_or(String::new(), |s| {
                format!("; the first {s} entries verify: --until {s} --accept-loss restores them")
            });
            // The newcomer's N16: a wrong log key is not a backup altered or lost.
            let wrong_key = report
                .problems
                .iter()
                .any(|p| p.kind == serment_server::backup::verify::WRONG_KEY);
            CliError::BackupInvalid {
                message: if wrong_key {
                    "the backup is not signed by this log key (above): nothing restored; give \
                     the server's log.key"
                        .into()
                } else {
                    format!(
                        "{} problem(s) in the backup (listed above): nothing restored{hint}",
                        report.problems.len()
                    )
                },
                report: Some(Box::new(v)),
            }
        }
        RestoreError::Loss { lost, ref report } => {
            list(report);
            let mut v = serde_json::to_value(report).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("lost".into(), json!(lost));
            }
            CliError::BackupInvalid {
                message: e.to_string(),
                report: Some(Box::new(v)),
            }
        }
        RestoreError::Inconsistent(_) => CliError::BackupInvalid {
            message: e.to_string(),
            report: None,
        },
        RestoreError::NotEmpty(_)
        | RestoreError::Key(_)
        | RestoreError::Until(..)
        | RestoreError::Witness(_) => CliError::Input(e.to_string()),
        RestoreError::Io(_) => CliError::Local(e.to_string()),
        RestoreError::Store(_) => CliError::Server(e.to_string()),
    }
}

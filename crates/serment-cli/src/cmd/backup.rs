//! `serment backup` and `serment verify-backup` (issue 12 §1-§2, docs/BACKUP.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use serment_core::log::note::VerifierKey;
use serment_server::backup::verify::{self, Trust};
use serment_server::backup::{Backup, BackupError, DEFAULT_INTERVAL_SECS, Source, Target};

use super::Ctx;
use super::serve::runtime;
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// `serment backup`.
#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Where to write: `file:///ABSOLUTE/DIR` (append-only files) or `s3://BUCKET[/PREFIX]`
    /// (versioned bucket with Object Lock; `AWS_*` variables for endpoint and credentials).
    #[arg(long, env = "SERMENT_BACKUP_URL", value_name = "URL")]
    pub(crate) to: String,
    /// The server's data directory (as for `serve`; holds `log.key`).
    #[arg(long, env = "SERMENT_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: PathBuf,
    /// The server's database, when not the data directory's SQLite file (as for `serve`).
    #[arg(long, env = "SERMENT_DATABASE_URL", value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// The server's blob store, when not the data directory (as for `serve`).
    #[arg(long, env = "SERMENT_BLOB_URL", value_name = "URL")]
    pub(crate) blob_url: Option<String>,
    /// Take one increment and exit.
    #[arg(long)]
    pub(crate) once: bool,
    /// Seconds between increments (continuous mode).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_INTERVAL_SECS)]
    pub(crate) interval: u64,
}

/// `serment verify-backup`.
#[derive(Debug, Args)]
pub(crate) struct VerifyBackupArgs {
    /// The backup: `file:///ABSOLUTE/DIR` or `s3://BUCKET[/PREFIX]`.
    #[arg(long, value_name = "URL")]
    pub(crate) from: String,
    /// The log's verifier key, as `serment serve` prints it (never taken from the backup).
    #[arg(long, env = "SERMENT_LOG_KEY_VKEY", value_name = "VKEY")]
    pub(crate) log_key: String,
    /// A witness verifier key (repeatable): the backup is verified up to the newest checkpoint
    /// `--quorum` of them cosigned.
    #[arg(long = "witness", value_name = "VKEY")]
    pub(crate) witnesses: Vec<String>,
    /// How many of the witnesses must cosign (default: all given).
    #[arg(long)]
    pub(crate) quorum: Option<usize>,
    /// A checkpoint note a client pinned (a file, or `-` for stdin): the backup must reach it
    /// and agree with it; a shorter backup names the lost range.
    #[arg(long, value_name = "NOTE")]
    pub(crate) checkpoint: Option<PathBuf>,
}

pub(crate) fn backup_error(target: &Target, e: BackupError) -> CliError {
    match e {
        BackupError::Url { .. } => CliError::Input(e.to_string()),
        BackupError::Target(_) if matches!(target, Target::Dir(_)) => {
            CliError::Local(e.to_string())
        }
        BackupError::Target(_) | BackupError::Store(_) => CliError::Server(e.to_string()),
        BackupError::Exists(_)
        | BackupError::Taken(_)
        | BackupError::Chain(_)
        | BackupError::LogShrank { .. } => CliError::BackupInvalid {
            message: e.to_string(),
            report: None,
        },
    }
}

pub(crate) fn backup(ctx: &Ctx, a: BackupArgs) -> CliResult<()> {
    super::serve::init_tracing("info");
    let target = Target::parse(&a.to).map_err(|e| CliError::Input(e.to_string()))?;
    if a.database_url.is_none() && !a.data_dir.join("serment.db").exists() {
        return Err(CliError::Input(format!(
            "no Serment store at {}: --data-dir names the server's data directory",
            a.data_dir.display()
        )));
    }
    let rt = runtime()?;
    rt.block_on(async {
        let source = Source::open(
            &a.data_dir,
            a.blob_url.as_deref(),
            a.database_url.as_deref(),
        )
        .await
        .map_err(|e| CliError::Server(e.to_string()))?;
        let mut backup = Backup::new(target.clone());
        let interval = Duration::from_secs(a.interval.max(1));
        loop {
            let now = serment_core_now();
            match backup.increment_from(&source, now).await {
                Ok(s) if a.once => {
                    let text = match &s {
                        Some(s) => format!(
                            "backup increment {} to {}: checkpoint of {} entries, {} new \
                             entries, {} blob(s), {} team key wrap(s), {} provisional/escrow \
                             row(s), {} bytes",
                            s.seq,
                            target.describe(),
                            s.size,
                            s.entries,
                            s.blobs,
                            s.team_keys,
                            s.side_rows,
                            s.bytes
                        ),
                        None => format!("backup {}: nothing new", target.describe()),
                    };
                    emit(
                        ctx.json,
                        &json!({
                            "target": target.describe(),
                            "log_key": source.log_verifier_key(),
                            "increment": s,
                        }),
                        &text,
                    );
                    return Ok(());
                }
                Ok(Some(s)) => tracing::info!(
                    seq = s.seq,
                    size = s.size,
                    entries = s.entries,
                    blobs = s.blobs,
                    "backup increment written"
                ),
                Ok(None) => {}
                Err(e) if a.once => return Err(backup_error(&target, e)),
                Err(e) => tracing::error!(error = %e, "backup increment failed; retrying"),
            }
            tokio::time::sleep(interval).await;
        }
    })
}

fn serment_core_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn read_note(path: &PathBuf) -> CliResult<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError::io("stdin", e))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))
}

pub(crate) fn verify_backup(ctx: &Ctx, a: VerifyBackupArgs) -> CliResult<()> {
    let target = Target::parse(&a.from).map_err(|e| CliError::Input(e.to_string()))?;
    let key = |k: &str, what: &str| {
        VerifierKey::parse(k).map_err(|e| CliError::Input(format!("{what} {k}: {e}")))
    };
    let trust = Trust {
        log_key: key(&a.log_key, "--log-key")?,
        witnesses: a
            .witnesses
            .iter()
            .map(|k| key(k, "--witness"))
            .collect::<CliResult<_>>()?,
        quorum: a.quorum.unwrap_or(a.witnesses.len()),
        pinned: a.checkpoint.as_ref().map(read_note).transpose()?,
    };
    trust.check_witnesses().map_err(CliError::Input)?;
    if trust.quorum > trust.witnesses.len() {
        return Err(CliError::Input(format!(
            "--quorum {} is more than the {} --witness key(s) given",
            trust.quorum,
            trust.witnesses.len()
        )));
    }
    let rt = runtime()?;
    let report = rt
        .block_on(verify::verify(&target, &trust))
        .map_err(|e| backup_error(&target, e))?;
    // The newcomer's N13: without witness keys nothing about cosignatures was checked; say
    // so rather than "cosigned up to" the size.
    let cosigned = if trust.quorum == 0 {
        if trust.witnesses.is_empty() {
            "no witness keys given: cosignatures not checked".to_owned()
        } else {
            "--quorum 0: cosignatures not checked".to_owned()
        }
    } else {
        format!(
            "cosigned by {} of the {} witness(es) up to {}",
            trust.quorum,
            trust.witnesses.len(),
            report.cosigned_size
        )
    };
    let mut text = format!(
        "backup {}: {} manifest(s), entries 0..{} verified ({cosigned}), {} blob(s), {} erased, \
         {} team key wrap(s)",
        target.describe(),
        report.manifests,
        report.size,
        report.blobs,
        report.erased,
        report.team_keys
    );
    for p in &report.problems {
        text.push_str(&format!(
            "\n  {}: {}: {}",
            p.kind.to_uppercase(),
            p.what,
            p.detail
        ));
    }
    if report.ok() && !report.anchored {
        text.push_str(
            "\n  UNANCHORED: nothing proves this is the newest manifest written (a deleted tail \
             looks complete); give --checkpoint with a checkpoint note a client pinned",
        );
    }
    if report.ok() {
        emit(
            ctx.json,
            &json!({ "verified": true, "report": report }),
            &text,
        );
        return Ok(());
    }
    if !ctx.json {
        crate::output::line(&text);
    }
    Err(CliError::BackupInvalid {
        message: if report.problems.iter().any(|p| p.kind == verify::WRONG_KEY) {
            "the backup is not signed by this --log-key (above): give the server's log key".into()
        } else {
            format!(
                "{} problem(s) in the backup (listed above)",
                report.problems.len()
            )
        },
        report: Some(Box::new(
            serde_json::to_value(&report).unwrap_or(serde_json::Value::Null),
        )),
    })
}

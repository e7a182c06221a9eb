//! `serment witness`: cosigns the log's checkpoints it verified to extend the last one it
//! cosigned (PROTOCOL.md §11.8), follows an announced restore (`--accept-rollback ID`, §11.11),
//! and writes its newest cosigned checkpoint to a file for a restore (`--export-checkpoint`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use serment_client::api::Api;
use serment_client::witness::Witness;

use super::Ctx;
use super::log::write_new_note;
use crate::error::CliResult;
use crate::output::emit;

/// `serment witness`.
#[derive(Debug, Args)]
pub(crate) struct WitnessArgs {
    /// Server base URL (not needed with --export-checkpoint).
    #[arg(
        long,
        env = "SERMENT_SERVER",
        required_unless_present = "export_checkpoint"
    )]
    pub(crate) server: Option<String>,
    /// Witness data directory (key and state).
    #[arg(long)]
    pub(crate) data_dir: PathBuf,
    /// Witness name (key name in cosignature lines).
    #[arg(long, default_value = "witness.serment.local/w1")]
    pub(crate) name: String,
    /// Poll interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub(crate) interval_ms: u64,
    /// Cosign once and exit.
    #[arg(long)]
    pub(crate) once: bool,
    /// After an announced restore (PROTOCOL.md §11.11): the loss statement id the log's
    /// operator announced (at least its first 16 hex digits). Checks the server's loss
    /// statement, moves this witness back to the restored checkpoint, and exits; run the witness
    /// again to cosign from there.
    #[arg(long, value_name = "ID")]
    pub(crate) accept_rollback: Option<String>,
    /// Write the newest checkpoint this witness cosigned (the log-signed note with this
    /// witness's own cosignature line, from its data directory alone, without the server) to
    /// FILE, a new file (never overwritten), and exit: a restore's `--checkpoint` takes the
    /// largest among your users' and witnesses' notes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["accept_rollback", "once"])]
    pub(crate) export_checkpoint: Option<PathBuf>,
}

pub(crate) fn witness(ctx: &Ctx, a: WitnessArgs) -> CliResult<()> {
    if let Some(out) = &a.export_checkpoint {
        return export_witness_checkpoint(ctx, &a.data_dir, &a.name, out);
    }
    let server = a.server.as_deref().unwrap_or_default();
    let api = Api::with_transport(server, &ctx.transport()?)?;
    let mut w = Witness::open(&a.data_dir, &a.name)?;
    eprintln!("serment witness: key {}", w.vkey());
    if let Some(announced) = a.accept_rollback.as_deref() {
        let id = w.accept_rollback(&api, announced)?;
        emit(
            ctx.json,
            &json!({ "vkey": w.vkey(), "accepted_loss": id }),
            &format!(
                "witness {}: accepted the loss statement {id}: the restored log is cosigned \
                 from there on",
                w.vkey()
            ),
        );
        return Ok(());
    }
    loop {
        match w.step(&api) {
            Ok(Some(size)) => {
                if !ctx.json {
                    eprintln!("serment witness: cosigned checkpoint of {size} entries");
                }
            }
            Ok(None) => {}
            Err(e) => return Err(e.into()),
        }
        if a.once {
            emit(
                ctx.json,
                &json!({ "vkey": w.vkey(), "cosigned": w.state.cosigned }),
                &format!(
                    "witness {}: {} checkpoint(s) cosigned",
                    w.vkey(),
                    w.state.cosigned
                ),
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(a.interval_ms.max(10)));
    }
}

/// `serment witness --export-checkpoint FILE`: the newest checkpoint the witness in `dir`
/// cosigned, with the witness's own cosignature line, from its data directory alone (newcomer
/// 6 N4; [`serment_client::witness::export_checkpoint`]). Creates nothing in `dir`.
fn export_witness_checkpoint(
    ctx: &Ctx,
    dir: &std::path::Path,
    name: &str,
    out: &std::path::Path,
) -> CliResult<()> {
    let e = serment_client::witness::export_checkpoint(dir, name)?;
    write_new_note(out, &e.note)?;
    emit(
        ctx.json,
        &json!({ "size": e.size, "log_key": e.log_vkey, "witness": e.witness_vkey,
                 "output": out.display().to_string() }),
        &format!(
            "checkpoint of {} entries this witness cosigned written to {}, with its cosignature \
             (witness key {})",
            e.size,
            out.display(),
            e.witness_vkey
        ),
    );
    Ok(())
}

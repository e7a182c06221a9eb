//! `serment restore` (issue 12 §2, docs/BACKUP.md §7): rebuilds a server from a backup it first
//! verifies ([`super::verify::verify_contents`], the same checks as `verify-backup`).
//!
//! Nothing is taken because the backup says so: every row is **derived** from the verified log
//! entries (devices, handles, rotations, revocations, wraps, removals, accesses, team changes,
//! erasures), the verified blobs' headers (a version's author device) and the team key wraps
//! whose signatures verified; the tree is rebuilt and its root must equal the verified
//! checkpoint's. An erasure tombstone the document's author signed removes the document: its
//! blobs, still in the locked bucket, are not restored.
//!
//! Atomic: the data directory is built beside the destination and renamed into place at the end;
//! the database is marked ([`crate::store::restore::RESTORING_ORIGIN`], which `serve` refuses)
//! before its rows are written in one transaction that also removes the mark.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use serde::Serialize;
use serment_core::ids::KeyKind;
use serment_core::log::entry::{AccessWhat, LogEntry, Payload};
use serment_core::log::history::ChainEntry;
use serment_core::log::note::{NoteSigner, SignedCheckpoint, VerifierKey};
use serment_core::log::tree::{self, Hash, NodeId};
use serment_core::team::{TeamKeyWrap, epoch_id, replay_team};
use serment_core::{DocId, KeyId};

use super::verify::{Contents, Report, Trust, verify_contents};
use super::{BackupError, Target};
use crate::store::log_service::{PendingEntry, subject_key};
use crate::store::restore::{
    AccessPlan, CheckpointPlan, DevicePlan, ProvisionalPlan, RestorePlan, TeamPlan, TeamWrapPlan,
    VersionPlan, WrapPlan,
};
use crate::store::{Store, log_key};

/// Where to restore: a data directory (it receives `log.key` when the key comes from a file,
/// and the blobs unless `blob_url`), and optionally a database and a blob store, as `serve`.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The data directory: must not exist or be empty.
    pub data_dir: PathBuf,
    /// `database_url`, when not the data directory's SQLite file: must be empty.
    pub database_url: Option<String>,
    /// `blob_url`, when not the data directory.
    pub blob_url: Option<String>,
}

/// What the operator gives besides the destination.
#[derive(Debug, Clone)]
pub struct Options {
    /// Witness verifier keys and their quorum, and a pinned checkpoint, as for `verify-backup`
    /// (the log key comes from the seed).
    pub witnesses: Vec<VerifierKey>,
    /// How many witnesses must cosign.
    pub quorum: usize,
    /// A checkpoint note a client pinned or a witness cosigned.
    pub pinned: Option<String>,
    /// Bring up a log older than a checkpoint the backup or `pinned` proves (the lost range is
    /// named in the result).
    pub accept_loss: bool,
    /// Restore only the prefix `0..until` (a checkpoint size of the backup), leaving out a tail
    /// that does not verify (review S9): problems in entries at or after it, and in blobs or
    /// team key wraps only the tail needs, are reported ([`Restored::skipped`]), not fatal.
    /// Everything after it is a loss, so `accept_loss` is needed.
    pub until: Option<u64>,
    /// Write the log key into the data directory as `log.key` (0600): true when the operator
    /// gave it as a file, false when `serve` will read it from `SERMENT_LOG_KEY`.
    pub write_key_file: bool,
}

/// A range of log entries `[from, to)` the restored log does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// The first entry missing (the restored size).
    pub from: u64,
    /// One past the last entry a checkpoint proves.
    pub to: u64,
}

/// What a restore did (JSON: docs/JSON.md, `restore`).
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The restored log's size.
    pub size: u64,
    /// Its RFC 9162 root, hex: the one the verified checkpoint of `size` signs.
    pub root: String,
    /// Current and revoked devices.
    pub devices: u64,
    /// Document versions (each with its blob).
    pub versions: u64,
    /// Device wraps.
    pub wraps: u64,
    /// Documents an erasure tombstone removed (their blobs were not restored).
    pub erased: u64,
    /// Care teams.
    pub teams: u64,
    /// Team key wraps.
    pub team_keys: u64,
    /// Bytes of blobs written.
    pub blob_bytes: u64,
    /// The range lost, when `--accept-loss` allowed it.
    pub lost: Option<Lost>,
    /// Whether a pinned checkpoint proved the backup is not older than what clients saw.
    pub anchored: bool,
    /// The `--until` size, when given.
    pub until: Option<u64>,
    /// With `--until`: the backup's problems left behind with the tail (not restored).
    pub skipped: Vec<super::verify::Problem>,
    /// Documents (ids) whose author's erasure tombstone is in the backup but after the restored
    /// size (review S7): none of their rows or blobs is restored, though the restored log does
    /// not hold the tombstone (the author may erase again: it is logged anew).
    pub erased_after: Vec<String>,
    /// Provisional recipients restored with their server-only row (review S3).
    pub provisionals: u64,
    /// Wraps to them.
    pub provisional_wraps: u64,
    /// Recovery escrows restored (review S3).
    pub escrows: u64,
    /// Provisional recipients the log records but whose row the backup lacks (a backup taken
    /// before rows were backed up, or the object lost): they cannot be claimed on the restored
    /// server; the lab re-issues to the contact (`put --to-unregistered` again).
    pub unclaimable: Vec<Unclaimable>,
    /// Handles whose newest backed-up recovery escrow names a device that is not current in the
    /// restored log (a lost tail, a revocation): not restored; the user makes a new recovery
    /// code (`serment id recovery-code`).
    pub escrows_lost: Vec<String>,
    /// Social recovery sets restored (review T11).
    pub social: u64,
    /// Handles whose newest contacts entry in the restored log has no backed-up set that it
    /// binds (a backup taken before sets were backed up, the object lost, or the recovery device
    /// no longer current): their contacts can no longer recover them; the user names contacts
    /// again (`serment id recovery-contacts add`).
    pub social_lost: Vec<String>,
    /// The loss statement this restore wrote and the restored server serves (PROTOCOL.md
    /// §11.11): every restore writes one, since the backup cannot know what clients verified
    /// after its newest increment.
    pub loss_statement: LossStatementInfo,
}

/// The loss statement of a restore (JSON: docs/JSON.md, `restore.loss_statement`).
#[derive(Debug, Clone, Serialize)]
pub struct LossStatementInfo {
    /// Its id: SHA-256 of its text, hex.
    pub id: String,
    /// The restored size: clients and witnesses that verified past it accept the loss with
    /// `serment accept-rollback --restored SIZE` / `serment witness ... --accept-rollback SIZE`.
    pub restored_size: u64,
    /// One past the last entry a checkpoint known to the restore proves.
    pub lost_to: u64,
}

/// A provisional recipient that cannot be claimed after the restore (review S3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unclaimable {
    /// Its id.
    pub provisional_id: String,
    /// The lab identity that made it (to re-issue).
    pub lab_identity: String,
    /// The wraps to it left out.
    pub wraps: u64,
}

/// What [`derive`] gives: the plan, the document versions whose blobs to write, and what of the
/// non-log rows could not be restored.
pub(crate) type Derived = (RestorePlan, Vec<(DocId, u32)>, SideLoss);

/// What [`derive`] could not restore (review S3), reported by [`Restored`].
#[derive(Debug, Default)]
pub(crate) struct SideLoss {
    unclaimable: Vec<Unclaimable>,
    escrows_lost: Vec<String>,
    social_lost: Vec<String>,
}

/// Why a restore did not happen. Nothing `serve` would start on is left in any case.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The backup target could not be read, or its URL is bad.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The backup does not verify (the report names every problem).
    #[error("the backup does not verify: {} problem(s)", .report.problems.len())]
    Invalid {
        /// The problems.
        report: Box<Report>,
        /// The largest checkpoint size whose prefix verifies on its own, if any: `--until` it
        /// (with `--accept-loss`) restores that prefix (review S9).
        restorable_until: Option<u64>,
    },
    /// A witness key is the log's own (review W1).
    #[error("{0}")]
    Witness(String),
    /// `--until` names no checkpoint of the backup.
    #[error("--until {0}: {1}")]
    Until(u64, String),
    /// The backup is older than a checkpoint it or the pinned note proves.
    #[error(
        "the backup lacks entries {}..{} that a checkpoint proves the log held: restoring would \
         bring up an older log (clients would report LOG ROLLBACK); --accept-loss restores it \
         anyway", .lost.from, .lost.to
    )]
    Loss {
        /// The range.
        lost: Lost,
        /// The verification report.
        report: Box<Report>,
    },
    /// The destination is not empty.
    #[error("{0} is not empty: restore writes only into an empty data directory and database")]
    NotEmpty(String),
    /// The verified contents do not give a consistent server (e.g. the rebuilt root differs).
    #[error("restore: {0}")]
    Inconsistent(String),
    /// The log key is not usable.
    #[error("log key: {0}")]
    Key(String),
    /// Writing the destination failed (nothing is left that `serve` would start on).
    #[error("restore: {0}")]
    Store(String),
    /// A local file operation failed.
    #[error("restore: {0}")]
    Io(String),
}

/// Restores the backup in `target` into `dest` with the log key `seed` (see the module docs).
///
/// # Errors
/// See [`RestoreError`].
pub async fn restore(
    target: &Target,
    seed: &[u8; 32],
    dest: &Destination,
    opts: &Options,
) -> Result<Restored, RestoreError> {
    let signer = log_key::signer(seed).map_err(|e| RestoreError::Key(e.to_string()))?;
    if dir_has_entries(&dest.data_dir)? {
        return Err(RestoreError::NotEmpty(dest.data_dir.display().to_string()));
    }
    let trust = Trust {
        log_key: signer.verifier(),
        witnesses: opts.witnesses.clone(),
        quorum: opts.quorum,
        pinned: opts.pinned.clone(),
    };
    trust.check_witnesses().map_err(RestoreError::Witness)?;
    let tmp = staging_dir(&dest.data_dir)?;
    match restore_into(target, &tmp, seed, &signer, &trust, dest, opts).await {
        Ok(restored) => {
            std::fs::rename(&tmp, &dest.data_dir).map_err(|e| {
                let _ = std::fs::remove_dir_all(&tmp);
                RestoreError::Io(format!(
                    "moving the restored data directory to {}: {e}",
                    dest.data_dir.display()
                ))
            })?;
            if let Some(parent) = dest.data_dir.parent()
                && let Ok(d) = std::fs::File::open(parent)
            {
                let _ = d.sync_all();
            }
            Ok(restored)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// Opens the store in the staging directory `tmp` (and the database and blob store) and
/// restores into it.
async fn restore_into(
    target: &Target,
    tmp: &Path,
    seed: &[u8; 32],
    signer: &NoteSigner,
    trust: &Trust,
    dest: &Destination,
    opts: &Options,
) -> Result<Restored, RestoreError> {
    if opts.write_key_file {
        write_key(tmp, seed)?;
    }
    let store =
        Store::open_for_restore(tmp, dest.blob_url.as_deref(), dest.database_url.as_deref())
            .await
            .map_err(|e| RestoreError::Store(e.to_string()))?;
    let r = restore_store(target, &store, seed, signer, trust, dest, opts).await;
    store.close().await;
    r
}

/// Verifies the backup while writing its blobs into `store` (one read of the backup), judges
/// it, derives the rows and writes them.
async fn restore_store(
    target: &Target,
    store: &Store,
    seed: &[u8; 32],
    signer: &NoteSigner,
    trust: &Trust,
    dest: &Destination,
    opts: &Options,
) -> Result<Restored, RestoreError> {
    let st = |e: crate::store::StoreError| RestoreError::Store(e.to_string());
    if store.log_signer().name() != signer.name() {
        return Err(RestoreError::Key(
            "SERMENT_LOG_KEY holds another key than the one given".into(),
        ));
    }
    if !store.meta().restore_target_empty().await.map_err(st)? {
        return Err(RestoreError::NotEmpty(
            dest.database_url
                .as_deref()
                .map_or_else(|| "the database".into(), without_credentials),
        ));
    }
    // One read of the backup: the blobs are written as they are checked, into the staging data
    // directory's blob store (the restore's own, removed whole on failure). A blob store of
    // its own (`--blob-url`) may hold others' blobs (a shared bucket): the restore writes
    // there only after the backup verified, and never deletes from it (REVIEW7 H1).
    let stage = dest.blob_url.is_none().then_some(store);
    let (report, mut contents) =
        with_writeback(store, verify_contents(target, trust, stage)).await??;
    plan_and_fill(
        target,
        store,
        seed,
        signer,
        trust,
        opts,
        &report,
        &mut contents,
    )
    .await
}

/// How often [`with_writeback`] flushes the blobs written so far.
const WRITEBACK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `pass` (which writes blobs into `store` without a per-blob fsync) while flushing what
/// it wrote so far every [`WRITEBACK_EVERY`] ([`Store::sync_blobs`]: one `syncfs(2)`), so the
/// disk writes while the restore checks: the final flush before the rows commit is then only
/// the tail's (the benchmark's VM writes 270 to 450 MB/s: 2.2 GB of blobs the kernel held
/// dirty until the end were 5 to 8 s of a final `syncfs`, docs/BACKUP.md §8). A flush that
/// fails fails the restore: `syncfs` reports a writeback error once per file descriptor, so
/// one an interim flush saw would not be seen again at the end.
async fn with_writeback<T>(
    store: &Store,
    pass: impl std::future::Future<Output = T>,
) -> Result<T, RestoreError> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let flusher = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    // Sent, or the restore dropped (its sender with it).
                    _ = &mut stopped => return Ok(()),
                    () = tokio::time::sleep(WRITEBACK_EVERY) => store.sync_blobs().await?,
                }
            }
        })
    };
    let out = pass.await;
    let _ = stop.send(());
    // Awaited, not aborted: a flush in progress finishes and its error is not lost.
    flusher
        .await
        .map_err(|e| RestoreError::Store(format!("flushing the blobs: {e}")))?
        .map_err(|e: crate::store::BlobError| {
            RestoreError::Store(format!("flushing the blobs: {e}"))
        })?;
    Ok(out)
}

/// Judges the verified backup (refusing it, or naming the loss accepted), derives the rows
/// and writes them with the blobs not written yet.
#[allow(clippy::too_many_arguments)]
async fn plan_and_fill(
    target: &Target,
    store: &Store,
    seed: &[u8; 32],
    signer: &NoteSigner,
    trust: &Trust,
    opts: &Options,
    report: &Report,
    contents: &mut Contents,
) -> Result<Restored, RestoreError> {
    let (size, lost, mut skipped) = match opts.until {
        None => (
            report.size,
            judge(report, contents, trust, opts.accept_loss)?,
            Vec::new(),
        ),
        Some(until) => judge_until(report, contents, trust, until, opts.accept_loss)?,
    };
    skipped.extend(open_side(contents, seed, opts.until)?);
    let contents = &*contents;
    let n = usize::try_from(size).unwrap_or(usize::MAX);
    let prefix = contents.entries.get(..n).unwrap_or_default();
    let team_keys = super::verify::prefix_team_keys(prefix, &contents.team_keys);
    // Review S7: an author's tombstone the backup holds after the restored size still erases.
    let in_prefix = super::verify::authored_erasures(prefix);
    let mut erased_after: Vec<DocId> = super::verify::authored_erasures(&contents.entries)
        .into_iter()
        .filter(|d| !in_prefix.contains(d))
        .collect();
    erased_after.sort();
    let (mut plan, blobs, side_loss) =
        derive(contents, size, signer, trust, &team_keys, &erased_after)?;
    let statement = loss_statement(&plan, signer, contents, trust, lost)?;
    // REVIEW6 V6: the statements of earlier restores the backup holds come back first, oldest
    // first, each once; only those whose restored size the restored log reaches (a client
    // still pinned before an earlier restore needs that one), never from a manifest after the
    // restored size (`--until`).
    let mut seen = HashSet::new();
    for (msize, st) in &contents.loss_statements {
        if *msize <= plan.size && st.statement.restored.size <= plan.size && seen.insert(st.id()) {
            plan.loss_statements
                .push((st.statement.restored.size, st.text.clone()));
        }
    }
    plan.loss_statements
        .push((plan.size, statement.text.clone()));
    let blob_bytes = fill(target, store, &mut plan, &blobs, contents).await?;
    Ok(Restored {
        size: plan.size,
        root: hex::encode(plan.root),
        devices: plan.devices.len() as u64,
        versions: plan.versions.len() as u64,
        wraps: plan.wraps.len() as u64,
        erased: plan_erased(contents, plan.size),
        teams: plan.teams.len() as u64,
        team_keys: plan.team_key_wraps.len() as u64,
        blob_bytes,
        lost,
        anchored: report.anchored,
        until: opts.until,
        skipped,
        erased_after: erased_after.iter().map(ToString::to_string).collect(),
        provisionals: plan.provisionals.len() as u64,
        provisional_wraps: plan.provisional_wraps.len() as u64,
        escrows: plan.escrows.len() as u64,
        unclaimable: side_loss.unclaimable,
        escrows_lost: side_loss.escrows_lost,
        social: plan.social.len() as u64,
        social_lost: side_loss.social_lost,
        loss_statement: LossStatementInfo {
            id: statement.id(),
            restored_size: statement.statement.restored.size,
            lost_to: statement.statement.lost_to,
        },
    })
}

/// The restore's loss statement (PROTOCOL.md §11.11): the restored tree head, the end of the
/// range a checkpoint known to the restore proves (the backup's newest or the operator's pinned
/// note; the restored size when none is larger), that checkpoint as its proof, signed by the log
/// key.
fn loss_statement(
    plan: &crate::store::restore::RestorePlan,
    signer: &serment_core::log::note::NoteSigner,
    contents: &Contents,
    trust: &Trust,
    lost: Option<Lost>,
) -> Result<serment_core::log::loss::SignedLossStatement, RestoreError> {
    use serment_core::log::loss::LossStatement;
    use serment_core::log::note::Checkpoint;
    let to = lost.map_or(plan.size, |l| l.to.max(plan.size));
    let pinned = trust
        .pinned
        .as_ref()
        .filter(|n| SignedCheckpoint::parse(n).is_ok_and(|c| c.checkpoint.size == to));
    let proof = (to > plan.size)
        .then(|| contents.notes.get(&to).or(pinned).cloned())
        .flatten();
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LossStatement {
        restored: Checkpoint {
            origin: signer.name().to_owned(),
            size: plan.size,
            root: plan.root,
        },
        lost_to: to,
        proof,
        time,
    }
    .sign(signer.signing_key())
    .map_err(|e| RestoreError::Inconsistent(format!("the loss statement: {e}")))
}

/// Opens the side objects (review T10: sealed under the log key's side key) into
/// `provisionals` and `escrows`. One that does not open refuses the restore: a manifest the log
/// key signed names it, so only the log key's holder wrote it.
///
/// With `--until SIZE` only the objects of manifests of size at most `SIZE` are taken (REVIEW5
/// U14: the poisoned tail's side objects would otherwise replace good ones); the others are
/// returned, to be listed in `restored.skipped`.
fn open_side(
    contents: &mut Contents,
    seed: &[u8; 32],
    until: Option<u64>,
) -> Result<Vec<super::verify::Problem>, RestoreError> {
    use super::format::ObjectKind;
    use super::side::{EscrowObject, ProvisionalObject, SideKey, SocialObject};
    let key = SideKey::from_log_seed(seed).map_err(|e| RestoreError::Key(e.to_string()))?;
    let bad = |e: super::format::FormatError| RestoreError::Inconsistent(e.to_string());
    let mut skipped = Vec::new();
    for o in &contents.side {
        if until.is_some_and(|u| o.manifest_size > u) {
            skipped.push(super::verify::Problem {
                kind: "tail",
                what: o.key.clone(),
                detail: format!(
                    "named by a manifest of size {}, after the restored size: not restored",
                    o.manifest_size
                ),
            });
            continue;
        }
        let (kind, name, bytes) = (&o.kind, &o.key, &o.bytes);
        match kind {
            ObjectKind::Provisional => contents
                .provisionals
                .push(ProvisionalObject::open(&key, name, bytes).map_err(bad)?),
            ObjectKind::Escrow => contents
                .escrows
                .push(EscrowObject::open(&key, name, bytes).map_err(bad)?),
            ObjectKind::Social => contents
                .social
                .push(SocialObject::open(&key, name, bytes).map_err(bad)?),
            _ => {}
        }
    }
    Ok(skipped)
}

/// Whether `dir` exists and holds anything.
fn dir_has_entries(dir: &Path) -> Result<bool, RestoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(RestoreError::Io(format!("{}: {e}", dir.display()))),
    }
}

/// A fresh directory beside `data_dir` (same file system, so the final rename is atomic).
fn staging_dir(data_dir: &Path) -> Result<PathBuf, RestoreError> {
    let name = data_dir
        .file_name()
        .ok_or_else(|| RestoreError::Io(format!("{}: not a directory name", data_dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| RestoreError::Io(format!("{}: {e}", parent.display())))?;
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| RestoreError::Io(e.to_string()))?;
    let tmp = parent.join(format!(".{name}.restoring-{}", hex::encode(rnd)));
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(&tmp)
        .map_err(|e| RestoreError::Io(format!("{}: {e}", tmp.display())))?;
    Ok(tmp)
}

/// Refuses a backup that does not verify, or one older than a proven checkpoint unless
/// `accept_loss`; returns the range accepted as lost.
fn judge(
    report: &Report,
    contents: &Contents,
    trust: &Trust,
    accept_loss: bool,
) -> Result<Option<Lost>, RestoreError> {
    // A tail the backup's own manifests or the pinned note prove, but whose entries are not
    // in the backup: loss, not alteration. Anything else refuses the restore.
    let is_loss = |p: &super::verify::Problem| {
        (p.kind == "lost" && p.what.starts_with("entries "))
            || (p.kind == "missing" && p.what.starts_with("entries "))
    };
    // Junk under `manifests/` (REVIEW5 U7, U12) names nothing that is restored: not counted.
    // Nor a shadowed object (REVIEW5 U8): its oldest version is what was read and verified.
    if report.manifests == 0
        || report
            .problems
            .iter()
            .any(|p| !is_loss(p) && p.kind != "junk" && p.kind != super::verify::SHADOWED)
    {
        return Err(RestoreError::Invalid {
            report: Box::new(report.clone()),
            restorable_until: restorable_until(contents, trust, report.size),
        });
    }
    let pinned = trust
        .pinned
        .as_deref()
        .and_then(|t| SignedCheckpoint::parse(t).ok())
        .map_or(0, |s| s.checkpoint.size);
    let to = contents.max_size.max(pinned);
    if to <= report.size {
        return Ok(None);
    }
    let lost = Lost {
        from: report.size,
        to,
    };
    if accept_loss {
        Ok(Some(lost))
    } else {
        Err(RestoreError::Loss {
            lost,
            report: Box::new(report.clone()),
        })
    }
}

/// `--until SIZE`: the prefix alone must verify ([`super::verify::check_prefix`]); the rest of
/// the backup's problems are returned as skipped; everything after `until` that a checkpoint or
/// the pinned note proves is a loss, refused without `accept_loss`.
fn judge_until(
    report: &Report,
    contents: &Contents,
    trust: &Trust,
    until: u64,
    accept_loss: bool,
) -> Result<(u64, Option<Lost>, Vec<super::verify::Problem>), RestoreError> {
    if !contents.notes.contains_key(&until) {
        let sizes: Vec<String> = contents.notes.keys().map(ToString::to_string).collect();
        return Err(RestoreError::Until(
            until,
            format!(
                "no verified checkpoint of this size in the backup (verified sizes: {})",
                if sizes.is_empty() {
                    "none".into()
                } else {
                    sizes.join(", ")
                }
            ),
        ));
    }
    let problems = super::verify::check_prefix(contents, until, trust);
    if report.manifests == 0 || !problems.is_empty() {
        let mut r = report.clone();
        r.problems = problems;
        return Err(RestoreError::Invalid {
            report: Box::new(r),
            restorable_until: restorable_until(contents, trust, until),
        });
    }
    let pinned = trust
        .pinned
        .as_deref()
        .and_then(|t| SignedCheckpoint::parse(t).ok())
        .map_or(0, |s| s.checkpoint.size);
    let to = contents
        .max_size
        .max(pinned)
        .max(contents.entries.len() as u64);
    let lost = (to > until).then_some(Lost { from: until, to });
    match lost {
        Some(lost) if !accept_loss => Err(RestoreError::Loss {
            lost,
            report: Box::new(report.clone()),
        }),
        _ => Ok((until, lost, report.problems.clone())),
    }
}

/// The largest checkpoint size, at most `max`, whose prefix verifies on its own (a binary
/// search over the verified checkpoints: each probe checks the prefix's blobs once).
fn restorable_until(contents: &Contents, trust: &Trust, max: u64) -> Option<u64> {
    let sizes: Vec<u64> = contents.notes.range(1..=max).map(|(s, _)| *s).collect();
    let (mut lo, mut hi, mut best) = (0usize, sizes.len(), None);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let s = *sizes.get(mid)?;
        if super::verify::check_prefix(contents, s, trust).is_empty() {
            best = Some(s);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    best
}

fn plan_erased(contents: &Contents, size: u64) -> u64 {
    let n = usize::try_from(size).unwrap_or(usize::MAX);
    contents
        .entries
        .iter()
        .take(n)
        .filter_map(|e| LogEntry::decode(e).ok())
        .filter(|e| matches!(e.payload, Payload::Erasure(_)))
        .count() as u64
}

/// Writes the blobs of `blobs` that [`verify_contents`] did not write as it checked them,
/// removes those it wrote that the plan does not restore, makes them all durable, writes the
/// rows and checks the store's own checkpoint. Returns the blob bytes restored.
async fn fill(
    target: &Target,
    store: &Store,
    plan: &mut RestorePlan,
    blobs: &[(DocId, u32)],
    contents: &Contents,
) -> Result<u64, RestoreError> {
    let st = |e: crate::store::StoreError| RestoreError::Store(e.to_string());
    // `serve` refuses the database from now until the rows commit.
    store.meta().restore_mark().await.map_err(st)?;
    // A blob not written yet (into a blob store of its own, `--blob-url`: every blob; else one
    // whose document has a tombstone in the backup, after the restored size or not authored:
    // it is restored) is read again from the backup (never held: memory
    // does not grow with the backup's size, docs/BACKUP.md §7), streamed into the blob store,
    // several at a time; the store refuses bytes whose SHA-256 is not the one verified (a
    // target changed since).
    let mut bytes = 0u64;
    let mut jobs = Vec::new();
    let mut wanted = HashSet::with_capacity(blobs.len());
    for key in blobs {
        let Some(b) = contents.blobs.get(key) else {
            return Err(RestoreError::Inconsistent(
                "a verified blob vanished".into(),
            ));
        };
        wanted.insert(b.id);
        if let Some(data) = &b.inline {
            // Verified and held: its row carries it, as the server keeps small blobs.
            bytes += b.len;
            plan.inline.insert(hex::encode(b.id), data.clone());
        } else if b.written {
            bytes += b.len;
        } else {
            jobs.push(b.clone());
        }
    }
    // Written as they were checked, but not restored (after `--until`): removed.
    for b in contents.blobs.values() {
        if b.written && !wanted.contains(&b.id) {
            store
                .remove_restored_blob(b.id)
                .await
                .map_err(|e| RestoreError::Store(format!("removing {}: {e}", b.key)))?;
        }
    }
    let mut puts = futures_util::stream::iter(jobs)
        .map(|b| {
            let (target, store) = (target.clone(), store.clone());
            let task = tokio::spawn(async move { put_verified_blob(&target, &store, &b).await });
            async move {
                task.await
                    .map_err(|e| RestoreError::Store(format!("writing a blob: {e}")))?
            }
        })
        .buffer_unordered(super::verify::OBJECTS_IN_FLIGHT);
    while let Some(done) = puts.next().await {
        bytes += done?;
    }
    // Written without a per-blob fsync (the staging directory serves nothing yet): all made
    // durable at once, before any row names them.
    store
        .sync_blobs()
        .await
        .map_err(|e| RestoreError::Store(format!("syncing the blobs: {e}")))?;
    drop(puts);
    store.meta().restore_rows(plan).await.map_err(st)?;
    // The store's own view: its newest checkpoint is the verified one.
    let note = store
        .meta()
        .log_note(None)
        .await
        .map_err(st)?
        .ok_or_else(|| RestoreError::Inconsistent("no checkpoint after restore".into()))?;
    let cp = SignedCheckpoint::parse(&note)
        .map_err(|e| RestoreError::Inconsistent(e.to_string()))?
        .checkpoint;
    let size = store.meta().log_size().await.map_err(st)?;
    if cp.size != plan.size || cp.root != plan.root || size != plan.size {
        return Err(RestoreError::Inconsistent(format!(
            "the restored store's checkpoint ({} entries) is not the verified one ({})",
            cp.size, plan.size
        )));
    }
    store.meta().durable().await.map_err(st)?;
    Ok(bytes)
}

/// Streams a verified blob from the backup into the store, refusing other bytes than the ones
/// [`verify_contents`] checked (their SHA-256 and length). Returns its length.
async fn put_verified_blob(
    target: &Target,
    store: &Store,
    b: &super::verify::BlobCheck,
) -> Result<u64, RestoreError> {
    use super::target::Streamed;
    let changed = || {
        RestoreError::Inconsistent(format!(
            "{} changed in the backup since it was verified",
            b.key
        ))
    };
    let stream = match target.get_stream(&b.key, b.len).await? {
        Streamed::Stream(s) => s,
        Streamed::Missing | Streamed::TooLarge => return Err(changed()),
    };
    let stream = stream.map(|r| r.map_err(|e| e.to_string())).boxed();
    match store.put_blob_stream(stream, b.len, b.id).await {
        Ok(_) => Ok(b.len),
        Err(crate::store::BlobError::DigestMismatch)
        | Err(crate::store::BlobError::TooLarge { .. }) => Err(changed()),
        Err(e) => Err(RestoreError::Store(e.to_string())),
    }
}

fn write_key(dir: &Path, seed: &[u8; 32]) -> Result<(), RestoreError> {
    use std::io::Write as _;
    let path = dir.join(log_key::LOG_KEY_FILE);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let io = |e: std::io::Error| RestoreError::Io(format!("{}: {e}", path.display()));
    let mut f = o.open(&path).map_err(io)?;
    let text = zeroize::Zeroizing::new(hex::encode(seed));
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

struct Dev {
    identity: KeyId,
    handle: String,
    record: Vec<u8>,
    created_at: u64,
    revoked: bool,
}

/// Derives every row from the verified contents, up to `size` entries; returns the plan, the
/// document versions whose blobs to write, and what of the non-log rows could not be restored.
pub(crate) fn derive(
    c: &Contents,
    size: u64,
    signer: &NoteSigner,
    trust: &Trust,
    team_keys: &[(String, Vec<u8>)],
    erased_after: &[DocId],
) -> Result<Derived, RestoreError> {
    let bad = |s: String| RestoreError::Inconsistent(s);
    let n = usize::try_from(size).map_err(|_| bad("size".into()))?;
    let entries = c
        .entries
        .get(..n)
        .ok_or_else(|| bad(format!("the backup holds fewer than {size} entries")))?;
    let mut plan = RestorePlan {
        size,
        ..RestorePlan::default()
    };
    let mut nodes: HashMap<NodeId, Hash> = HashMap::new();
    let mut devices: BTreeMap<KeyId, Dev> = BTreeMap::new();
    let mut device_order: Vec<KeyId> = Vec::new();
    let mut handles: BTreeMap<String, KeyId> = BTreeMap::new();
    let mut versions: BTreeMap<(DocId, u32), VersionPlan> = BTreeMap::new();
    let mut wraps: BTreeMap<(DocId, u32, KeyId), WrapPlan> = BTreeMap::new();
    let mut team_wraps: BTreeMap<(DocId, u32, String), TeamWrapPlan> = BTreeMap::new();
    let mut accesses: Vec<(DocId, AccessPlan)> = Vec::new();
    let mut erased: HashSet<DocId> = HashSet::new();
    let mut histories: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    let mut team_chains: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    let mut epoch_team: HashMap<KeyId, String> = HashMap::new();
    // The documents a tombstone of these entries erases: their versions get no row (their
    // blobs, absent or not, are not restored).
    let will_erase: HashSet<DocId> = entries
        .iter()
        .filter_map(|b| LogEntry::decode(b).ok())
        .filter_map(|e| match e.payload {
            Payload::Erasure(t) => Some(t.doc_id),
            _ => None,
        })
        .chain(erased_after.iter().copied())
        .collect();

    // Review S3: provisional recipients seen so far; those whose row the backup holds are
    // restored (with their wraps, into `provisional_wraps`), the others are reported.
    let objects: HashMap<&str, &super::side::ProvisionalObject> =
        c.provisionals.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut provisional: HashSet<KeyId> = HashSet::new();
    let mut prov_plans: BTreeMap<KeyId, ProvisionalPlan> = BTreeMap::new();
    let mut unclaimable: BTreeMap<KeyId, Unclaimable> = BTreeMap::new();
    let mut prov_wraps: BTreeMap<(DocId, u32, KeyId), WrapPlan> = BTreeMap::new();
    // (handle, recovery device, logged at) of every recovery entry: the escrow it opened is burnt.
    let mut recoveries: Vec<(String, KeyId, u64)> = Vec::new();
    // Review T11: the newest contacts entry of each handle (contacts hash hex, recovery device,
    // escrow hash), the requests, approvals (request id, device) and vetoes (request id, handle).
    let mut social_entries: BTreeMap<String, (String, KeyId, [u8; 32])> = BTreeMap::new();
    let mut social_requests: Vec<crate::store::restore::SocialRequestPlan> = Vec::new();
    let mut approvals: HashSet<(String, String)> = HashSet::new();
    let mut vetoes: HashSet<(String, String)> = HashSet::new();
    for (i, bytes) in entries.iter().enumerate() {
        let idx = i as u64;
        let e = LogEntry::decode(bytes).map_err(|err| bad(format!("entry {i}: {err}")))?;
        let subject = e.subject();
        let leaf = tree::leaf_hash(bytes);
        for (node, hash) in
            tree::append(idx, leaf, &nodes).map_err(|err| bad(format!("tree: {err}")))?
        {
            nodes.insert(node, hash);
            plan.nodes.push((node, hash));
        }
        let chain_entry = || ChainEntry {
            index: idx,
            bytes: bytes.clone(),
            entry: e.clone(),
        };
        let at = e.logged_at;
        let device_col: Option<KeyId> = match &e.payload {
            Payload::Device(d) => {
                histories
                    .entry(d.handle.clone())
                    .or_default()
                    .push(chain_entry());
                let id = d.device_id();
                let ident = d.identity_id();
                match devices.get_mut(&id) {
                    None => {
                        devices.insert(
                            id,
                            Dev {
                                identity: ident,
                                handle: d.handle.clone(),
                                record: e.payload_bytes.clone(),
                                created_at: at,
                                revoked: false,
                            },
                        );
                        device_order.push(id);
                        handles.entry(d.handle.clone()).or_insert(ident);
                    }
                    Some(dev) => {
                        // Re-certified by a rotation (a new identity), or the hybrid upgrade.
                        if dev.identity != ident {
                            dev.identity = ident;
                            dev.revoked = false;
                        }
                        dev.record = e.payload_bytes.clone();
                    }
                }
                Some(id)
            }
            Payload::Rotation(r) => {
                histories
                    .entry(r.handle.clone())
                    .or_default()
                    .push(chain_entry());
                let old = KeyId::of(KeyKind::Identity, &r.old_identity_key);
                let new = KeyId::of(KeyKind::Identity, &r.new_identity_key);
                handles.insert(r.handle.clone(), new);
                for d in devices.values_mut().filter(|d| d.identity == old) {
                    d.revoked = true;
                }
                for v in versions.values_mut() {
                    if v.author_identity == old.to_string() {
                        v.author_identity = new.to_string();
                    }
                }
                None
            }
            Payload::Revocation(r) => {
                histories
                    .entry(r.handle.clone())
                    .or_default()
                    .push(chain_entry());
                if let Some(d) = devices.get_mut(&r.device_id) {
                    d.revoked = true;
                }
                Some(r.device_id)
            }
            // A recovery (kind 12, PROTOCOL.md §4.2): in the handle's chain, its device column
            // the device it enrolled, as `store::sql::recovery` writes it. The escrows are not
            // in the backup: after a restore, users make a new recovery code.
            Payload::Recovery(r) => {
                histories
                    .entry(r.handle.clone())
                    .or_default()
                    .push(chain_entry());
                recoveries.push((r.handle.clone(), r.recovery_device, at));
                Some(r.new_device)
            }
            // Social recovery (kinds 13-16, PROTOCOL.md §4.3): the handle's social chain, its
            // device column as `store::sql::social` writes it.
            // Review T11: the sets (escrow, share wraps) come from the backup's social objects,
            // restored only where the newest contacts entry of the handle binds them; the
            // requests are derived from these entries.
            Payload::RecoveryContacts(c) => {
                social_entries.insert(
                    c.handle.clone(),
                    (
                        hex::encode(serment_core::social::contacts_hash(&e.payload_bytes)),
                        c.recovery_device,
                        c.escrow_hash,
                    ),
                );
                Some(c.recovery_device)
            }
            Payload::RecoveryRequest(r) => {
                social_requests.push(crate::store::restore::SocialRequestPlan {
                    request_id: hex::encode(r.id),
                    handle: r.handle.clone(),
                    contacts_hash: hex::encode(r.contacts_hash),
                    new_device: r.device_id().to_string(),
                    logged_at: at,
                    vetoed: false,
                });
                Some(r.device_id())
            }
            Payload::RecoveryApproval(a) => {
                approvals.insert((hex::encode(a.request_id), a.device_id().to_string()));
                Some(a.device_id())
            }
            Payload::RecoveryVeto(v) => {
                vetoes.insert((hex::encode(v.request_id), v.handle.clone()));
                Some(v.device_id())
            }
            Payload::Wrap(w) => {
                let doc = w.doc_id.to_string();
                if let Some(team) = epoch_team.get(&w.recipient) {
                    team_wraps.retain(|(d, v, t), _| {
                        !(*d == w.doc_id && *v == w.doc_version && t == team)
                    });
                    team_wraps.insert(
                        (w.doc_id, w.doc_version, team.clone()),
                        TeamWrapPlan {
                            doc_id: doc,
                            doc_version: w.doc_version,
                            epoch_id: w.recipient.to_string(),
                            team: team.clone(),
                            sharer: w.sharer.to_string(),
                            wrap: e.payload_bytes.clone(),
                            log_idx: idx,
                        },
                    );
                    None
                } else if will_erase.contains(&w.doc_id) {
                    Some(w.recipient)
                } else if provisional.contains(&w.recipient) {
                    // A wrap to a provisional recipient (PROTOCOL.md §15): into
                    // `provisional_wraps` when its row is restored, else reported (review S3).
                    if prov_plans.contains_key(&w.recipient) {
                        if let std::collections::btree_map::Entry::Vacant(slot) =
                            versions.entry((w.doc_id, w.doc_version))
                        {
                            slot.insert(version_of(c, &devices, w.doc_id, w.doc_version, at)?);
                        }
                        prov_wraps.insert(
                            (w.doc_id, w.doc_version, w.recipient),
                            WrapPlan {
                                doc_id: doc,
                                doc_version: w.doc_version,
                                recipient: w.recipient.to_string(),
                                sharer: w.sharer.to_string(),
                                wrap: e.payload_bytes.clone(),
                                log_idx: idx,
                            },
                        );
                    } else if let Some(u) = unclaimable.get_mut(&w.recipient) {
                        u.wraps += 1;
                    }
                    Some(w.recipient)
                } else {
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        versions.entry((w.doc_id, w.doc_version))
                    {
                        slot.insert(version_of(c, &devices, w.doc_id, w.doc_version, at)?);
                    }
                    wraps.insert(
                        (w.doc_id, w.doc_version, w.recipient),
                        WrapPlan {
                            doc_id: doc,
                            doc_version: w.doc_version,
                            recipient: w.recipient.to_string(),
                            sharer: w.sharer.to_string(),
                            wrap: e.payload_bytes.clone(),
                            log_idx: idx,
                        },
                    );
                    Some(w.recipient)
                }
            }
            Payload::Removal(r) => {
                wraps.remove(&(r.doc_id, r.doc_version, r.recipient));
                prov_wraps.remove(&(r.doc_id, r.doc_version, r.recipient));
                Some(r.recipient)
            }
            Payload::Access(a) => {
                accesses.push((
                    a.doc_id,
                    AccessPlan {
                        doc_id: a.doc_id.to_string(),
                        doc_version: a.doc_version,
                        device_id: a.device_id.to_string(),
                        what: match a.what {
                            AccessWhat::Wrap => "wrap",
                            AccessWhat::Blob => "blob",
                        },
                        at,
                        nonce: hex::encode(a.nonce),
                    },
                ));
                Some(a.device_id)
            }
            Payload::Team(t) => {
                let b = &t.body;
                epoch_team.insert(epoch_id(&b.team, b.epoch, &b.epoch_key), b.team.clone());
                team_chains
                    .entry(b.team.clone())
                    .or_default()
                    .push(chain_entry());
                Some(KeyId::of(KeyKind::Device, &t.signer_key))
            }
            Payload::Bundle(_) => None,
            Payload::Provisional(p) => {
                let id = p.id();
                provisional.insert(id);
                let lab_identity = devices
                    .get(&p.lab_device())
                    .map(|d| d.identity.to_string())
                    .unwrap_or_default();
                match objects.get(id.to_string().as_str()) {
                    Some(o) => {
                        prov_plans.insert(
                            id,
                            ProvisionalPlan {
                                object: (*o).clone(),
                                lab_identity,
                                lab_device: p.lab_device().to_string(),
                                contact_tag: hex::encode(p.contact_tag),
                                created_at: at,
                                record_index: idx,
                                claimed_identity: None,
                            },
                        );
                    }
                    None => {
                        unclaimable.insert(
                            id,
                            Unclaimable {
                                provisional_id: id.to_string(),
                                lab_identity,
                                wraps: 0,
                            },
                        );
                    }
                }
                Some(p.lab_device())
            }
            Payload::Claim(cl) => {
                // The claimant's identity when it claimed, as the server recorded it.
                if let (Some(pp), Some(d)) = (
                    prov_plans.get_mut(&cl.provisional_id()),
                    devices.get(&cl.device_id()),
                ) {
                    pp.claimed_identity = Some(d.identity.to_string());
                }
                // A claimed recipient lacking its row is no loss for the patient (its wraps
                // were re-wrapped to their devices at the claim).
                unclaimable.remove(&cl.provisional_id());
                Some(cl.device_id())
            }
            Payload::Erasure(t) => {
                // verify_contents accepted this tombstone as the author's own (a forged one is
                // a problem, and the restore was refused): nothing of the document comes back.
                erased.insert(t.doc_id);
                versions.retain(|(d, _), _| *d != t.doc_id);
                wraps.retain(|(d, _, _), _| *d != t.doc_id);
                prov_wraps.retain(|(d, _, _), _| *d != t.doc_id);
                team_wraps.retain(|(d, _, _), _| *d != t.doc_id);
                accesses.retain(|(d, _)| *d != t.doc_id);
                Some(t.requester_device)
            }
        };
        plan.entries.push(PendingEntry {
            idx,
            kind: e.kind as u8,
            subject: subject_key(&subject),
            device_id: device_col.map(|d| d.to_string()),
            entry: bytes.clone(),
            leaf,
            logged_at: at,
        });
    }
    plan.root = tree::root(size, &nodes).map_err(|err| bad(format!("tree: {err}")))?;

    // The checkpoints: re-signed by the log key (Ed25519 is deterministic: the very line the
    // server wrote), with the cosignature lines the backup kept (only the given witnesses'
    // when keys are given). The newest must be of `size` and sign the rebuilt root.
    for (s, text) in c.notes.range(..=size) {
        let sc = SignedCheckpoint::parse(text).map_err(|err| bad(err.to_string()))?;
        let note = signer
            .sign_checkpoint(&sc.checkpoint)
            .and_then(|n| n.encode())
            .map_err(|err| bad(err.to_string()))?;
        let cosignatures = sc
            .signatures
            .iter()
            .filter(|sig| sig.name != signer.name())
            .filter(|sig| {
                trust.witnesses.is_empty()
                    || trust
                        .witnesses
                        .iter()
                        .any(|w| sc.verify_cosignature(sig, w).is_ok())
            })
            .filter_map(|sig| sig.key_id().map(|k| (sig.name.clone(), k, sig.line())))
            .collect();
        plan.checkpoints.push(CheckpointPlan {
            size: *s,
            note,
            cosignatures,
        });
    }
    match c.notes.get(&size).map(|t| SignedCheckpoint::parse(t)) {
        Some(Ok(sc)) if sc.checkpoint.root == plan.root => {}
        _ => {
            return Err(bad(format!(
                "the rebuilt tree of {size} entries does not have the verified checkpoint's root"
            )));
        }
    }

    // Teams: each chain replayed as clients replay it (PROTOCOL.md §12.4).
    for (name, chain) in &team_chains {
        let state = replay_team(name, chain, &histories)
            .map_err(|err| bad(format!("team {name}: {err}")))?;
        let cur = state
            .current()
            .ok_or_else(|| bad(format!("team {name}: no epoch")))?;
        plan.teams.push(TeamPlan {
            name: name.clone(),
            epoch: cur.epoch,
            epoch_id: cur.id.to_string(),
            head_idx: state.head.index,
            members: state
                .members
                .iter()
                .map(|m| (m.handle.clone(), m.admin))
                .collect(),
        });
    }
    for (key, bytes) in team_keys {
        let w = TeamKeyWrap::decode(bytes).map_err(|err| bad(format!("{key}: {err}")))?;
        let epoch = plan
            .teams
            .iter()
            .find(|t| t.name == w.team)
            .map(|t| t.epoch);
        if epoch.is_some_and(|e| w.epoch <= e) {
            plan.team_key_wraps
                .push((w.team, w.epoch, w.recipient.to_string(), bytes.clone()));
        }
    }

    plan.devices = device_order
        .iter()
        .filter_map(|id| {
            devices.get(id).map(|d| DevicePlan {
                device_id: id.to_string(),
                identity_id: d.identity.to_string(),
                handle: d.handle.clone(),
                record: d.record.clone(),
                created_at: d.created_at,
                revoked: d.revoked,
            })
        })
        .collect();
    plan.handles = handles
        .into_iter()
        .map(|(h, i)| (h, i.to_string()))
        .collect();
    let keys: Vec<(DocId, u32)> = versions.keys().copied().collect();
    plan.versions = versions.into_values().collect();
    plan.wraps = wraps.into_values().collect();
    plan.team_wraps = team_wraps.into_values().collect();
    plan.accesses = accesses.into_iter().map(|(_, a)| a).collect();
    plan.provisionals = prov_plans.into_values().collect();
    plan.provisional_wraps = prov_wraps.into_values().collect();

    // Recovery escrows (review S3): the newest backed-up row of each handle, restored only if
    // the restored log still makes its recovery device a current device of that identity and
    // handle (what `put_escrow` required) and no recovery entry logged at or after it burnt it.
    let mut newest: BTreeMap<&str, &super::side::EscrowObject> = BTreeMap::new();
    for e in &c.escrows {
        newest.insert(e.handle.as_str(), e);
    }
    let mut escrows_lost = Vec::new();
    for (handle, e) in newest {
        let burnt = recoveries.iter().any(|(h, d, at)| {
            h == handle && d.to_string() == e.recovery_device && *at >= e.updated_at
        });
        if burnt {
            continue;
        }
        let current = plan.devices.iter().any(|d| {
            d.device_id == e.recovery_device
                && d.identity_id == e.identity_id
                && d.handle == handle
                && !d.revoked
        });
        if current {
            plan.escrows.push(e.clone());
        } else {
            escrows_lost.push(handle.to_owned());
        }
    }
    // Social recovery sets (review T11): the newest backed-up set of each handle whose newest
    // contacts entry in the restored log binds it (its contacts hash, recovery device and
    // escrow hash), whose recovery device is a current device of that identity and handle, and
    // that no recovery entry (kind 12) logged at or after it burnt. Share wraps: the
    // distribution, and the re-wraps of an approval the restored log holds. Every handle with
    // a contacts entry and no such set is listed in `social_lost`.
    let mut newest_social: BTreeMap<&str, &super::side::SocialObject> = BTreeMap::new();
    for o in &c.social {
        newest_social.insert(o.handle.as_str(), o);
    }
    let mut social_lost = Vec::new();
    for (handle, (ch, device, escrow_hash)) in &social_entries {
        let device = device.to_string();
        let Some(o) = newest_social.get(handle.as_str()).copied().filter(|o| {
            o.contacts_hash == *ch
                && o.recovery_device == device
                && serment_core::social::escrow_hash(&o.escrow) == *escrow_hash
        }) else {
            social_lost.push(handle.clone());
            continue;
        };
        let burnt = recoveries
            .iter()
            .any(|(h, d, at)| h == handle && d.to_string() == device && *at >= o.updated_at);
        if burnt {
            continue;
        }
        let current = plan.devices.iter().any(|d| {
            d.device_id == device
                && d.identity_id == o.identity_id
                && d.handle == *handle
                && !d.revoked
        });
        if !current {
            social_lost.push(handle.clone());
            continue;
        }
        let requested: HashSet<&str> = social_requests
            .iter()
            .filter(|r| r.handle == *handle)
            .map(|r| r.request_id.as_str())
            .collect();
        let mut o = o.clone();
        o.shares.retain(|sh| {
            sh.request_id.is_empty()
                || (requested.contains(sh.request_id.as_str())
                    && approvals.contains(&(sh.request_id.clone(), sh.sharer.clone())))
        });
        plan.social.push(o);
    }
    for r in &mut social_requests {
        r.vetoed = vetoes.contains(&(r.request_id.clone(), r.handle.clone()));
    }
    plan.social_requests = social_requests;
    let loss = SideLoss {
        unclaimable: unclaimable.into_values().collect(),
        escrows_lost,
        social_lost,
    };
    Ok((plan, keys, loss))
}

/// A version's row from its verified blob: the author device its header names, that device's
/// identity at this point of the log.
fn version_of(
    c: &Contents,
    devices: &BTreeMap<KeyId, Dev>,
    doc: DocId,
    version: u32,
    at: u64,
) -> Result<VersionPlan, RestoreError> {
    let what = format!("document {doc} version {version}");
    let blob = c
        .blobs
        .get(&(doc, version))
        .ok_or_else(|| RestoreError::Inconsistent(format!("{what}: no blob in the backup")))?;
    let sealed = blob
        .sealed
        .as_ref()
        .map_err(|e| RestoreError::Inconsistent(format!("{what}: {e}")))?;
    let author = devices.get(&sealed.author_device).ok_or_else(|| {
        RestoreError::Inconsistent(format!("{what}: its author device is not in the log"))
    })?;
    Ok(VersionPlan {
        doc_id: doc.to_string(),
        doc_version: version,
        author_device: sealed.author_device.to_string(),
        author_identity: author.identity.to_string(),
        blob_id: hex::encode(blob.id),
        size: blob.len,
        created_at: at,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A blob `restore` reads a second time (one it did not write as it verified it: its
    /// document has a tombstone in the backup that does not erase it from the restored prefix):
    /// bytes that changed in the target between the two reads are refused by the blob store
    /// (their SHA-256 or length is not the verified one), never written under the verified id.
    #[tokio::test]
    async fn a_blob_changed_after_verification_is_not_written() {
        let dir = crate::store::blobs::tests::tmpdir("restore-reread");
        let backup = dir.join("backup");
        let target = Target::parse(&format!("file://{}", backup.display())).unwrap();
        let store = Store::open_with(&dir, None, None, true).await.unwrap();
        let verified = b"the bytes verify-backup checked".to_vec();
        let id = super::super::format::sha256(&verified);
        let key = super::super::format::blob_key(&hex::encode(id));
        let check = |len: u64| super::super::verify::BlobCheck {
            key: key.clone(),
            id,
            len,
            sealed: Err("not a document".into()),
            written: false,
            inline: None,
        };
        // Other bytes of the same length under the verified name: refused.
        let mut swapped = verified.clone();
        if let Some(b) = swapped.first_mut() {
            *b ^= 1;
        }
        target.put_new(&key, swapped).await.unwrap();
        let err = put_verified_blob(&target, &store, &check(verified.len() as u64))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("changed in the backup"), "{err}");
        let id_text = crate::store::BlobId::of_digest(id);
        assert!(store.blob(&id_text).await.is_err(), "nothing written");
        // The verified bytes: written, under their id.
        let good = Target::parse(&format!("file://{}", dir.join("good").display())).unwrap();
        good.put_new(&key, verified.clone()).await.unwrap();
        assert_eq!(
            put_verified_blob(&good, &store, &check(verified.len() as u64))
                .await
                .unwrap(),
            verified.len() as u64
        );
        assert!(store.blob(&id_text).await.is_ok());
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Atomic restore into a database: once marked, and until the one transaction of rows
    /// commits, the store refuses to open (so `serve` never starts on a half-restored database),
    /// naming the mark.
    #[tokio::test]
    async fn a_database_marked_as_being_restored_is_refused_by_serve() {
        let dir = crate::store::blobs::tests::tmpdir("restore-mark");
        let store = Store::open_with(&dir, None, None, true).await.unwrap();
        assert!(store.meta().restore_target_empty().await.unwrap());
        store.meta().restore_mark().await.unwrap();
        store.close().await;
        let err = Store::open(&dir, None, None).await.unwrap_err();
        assert!(
            err.to_string()
                .contains(crate::store::restore::RESTORING_ORIGIN),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `url` with any `user:password@` and any query (`?password=...`) taken out, for messages
/// (REVIEW3 S10, REVIEW4 T18): `postgres://serment:SECRET@db/serment?sslmode=require` names
/// its database as `postgres://db/serment`. Everything up to the last `@` goes, so a password
/// holding a `/` does not survive either.
fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("{scheme}://{host}")
        }
        None => "the database".into(),
    }
}

#[cfg(test)]
mod credential_tests {
    #[test]
    fn a_database_url_is_named_without_its_password() {
        assert_eq!(
            super::without_credentials(
                "postgres://serment:s3cret@db.example:5432/serment?sslmode=require"
            ),
            "postgres://db.example:5432/serment"
        );
        assert_eq!(
            super::without_credentials("postgres://u:a/b@c@db/x?password=p"),
            "postgres://db/x"
        );
        assert_eq!(
            super::without_credentials("postgres://db/x"),
            "postgres://db/x"
        );
        assert_eq!(super::without_credentials("not a url"), "the database");
    }
}

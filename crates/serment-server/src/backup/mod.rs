//! Backup the server cannot erase, and its verification (issue 12 §1-§2, docs/BACKUP.md).
//!
//! A backup is a set of write-once objects in a [`Target`]: log entry segments, sealed blobs,
//! team key wraps, checkpoint notes, and one manifest per increment signed by the log key
//! ([`format`]). [`Backup`] takes increments from a server's store; [`verify::verify`] checks a
//! backup against the log key alone, trusting nothing the backup claims.

pub mod format;
pub mod restore;
pub mod side;
mod take;
pub mod target;
pub mod verify;
pub mod versions;

pub use target::Target;

/// The default interval between increments, in seconds: with one increment taking well under a
/// second, a write the server acknowledged is in the backup within about 10 s (issue 12 §1 asks
/// at most 60 s).
pub const DEFAULT_INTERVAL_SECS: u64 = 10;

/// Why a backup or its verification could not run (what is missing or altered in a backup is
/// a [`verify::Problem`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The target URL is not supported.
    #[error("backup target {url:?}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing the target failed.
    #[error("backup target: {0}")]
    Target(String),
    /// An object exists in the target with other bytes than the ones to write: the target was
    /// written by something else (never overwritten).
    #[error("backup target: {0} exists with other contents (never overwritten): run verify-backup")]
    Exists(String),
    /// An object's own name and every alternative name (docs/BACKUP.md §2) hold other bytes:
    /// someone able to create objects in the target took them all (REVIEW5 U6).
    #[error(
        "backup target: {0} and its {max} alternative names {0}.1..{0}.{max} all hold other \
         contents, created by someone else able to write the target: run verify-backup, and move \
         the backup to a new prefix or directory (a full backup)",
        max = format::MAX_ALT_NAMES
    )]
    Taken(String),
    /// The target's manifests are not one chain signed by this log key.
    #[error("backup target: {0}: run verify-backup")]
    Chain(String),
    /// The server's store failed.
    #[error("server store: {0}")]
    Store(String),
    /// The log is smaller than what the backup holds: this store is older than its backup.
    #[error(
        "the log holds {log} entries but the backup already holds {backup}: this store is older \
         than its backup (restored from an older copy?); refusing to back it up over the newer one"
    )]
    LogShrank {
        /// Entries in the backup.
        backup: u64,
        /// Entries in the log.
        log: u64,
    },
}

/// What one increment copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IncrementSummary {
    /// Its manifest number.
    pub seq: u64,
    /// The checkpoint size it covers.
    pub size: u64,
    /// New log entries.
    pub entries: u64,
    /// New blobs.
    pub blobs: u64,
    /// New team key wraps.
    pub team_keys: u64,
    /// New or changed provisional recipient and recovery escrow rows (review S3).
    pub side_rows: u64,
    /// Bytes written (objects other than the manifest and checkpoint).
    pub bytes: u64,
}

/// The store a backup reads: a server's data directory, or its database and blob store, opened
/// beside the running server (its uploads in flight are left alone).
#[derive(Debug, Clone)]
pub struct Source {
    store: crate::store::Store,
}

impl Source {
    /// Opens the store `serve` would open with the same settings (`data_dir` holds `log.key`
    /// unless `SERMENT_LOG_KEY` is set).
    ///
    /// # Errors
    /// [`BackupError::Store`] if it cannot be opened.
    pub async fn open(
        data_dir: &std::path::Path,
        blob_url: Option<&str>,
        database_url: Option<&str>,
    ) -> Result<Source, BackupError> {
        let store = crate::store::Store::open_with(data_dir, blob_url, database_url, false)
            .await
            .map_err(|e| BackupError::Store(e.to_string()))?;
        Ok(Source { store })
    }

    /// The log's verifier key, as `serve` prints it.
    pub fn log_verifier_key(&self) -> String {
        self.store.log_signer().verifier().encode()
    }
}

/// A backup in progress: a target and what it already holds.
#[derive(Debug)]
pub struct Backup {
    target: Target,
    state: Option<take::BackupState>,
}

impl Backup {
    /// A backup into `target`; its manifests are read at the first increment.
    pub fn new(target: Target) -> Backup {
        Backup {
            target,
            state: None,
        }
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Takes one increment from `source` if the log grew or its newest checkpoint gained
    /// cosignatures; `None` if nothing was new.
    ///
    /// # Errors
    /// See [`BackupError`].
    pub async fn increment_from(
        &mut self,
        source: &Source,
        now: u64,
    ) -> Result<Option<IncrementSummary>, BackupError> {
        self.increment(&source.store, now).await
    }

    /// Takes one increment from `store` if anything is new (see [`take::take_increment`]).
    pub(crate) async fn increment(
        &mut self,
        store: &crate::store::Store,
        now: u64,
    ) -> Result<Option<IncrementSummary>, BackupError> {
        let state = match &mut self.state {
            Some(s) => s,
            None => {
                let vkey = store.log_signer().verifier();
                let s = take::load_state(&self.target, &vkey.public_key, &vkey.name).await?;
                self.state.insert(s)
            }
        };
        let r = take::take_increment(store, &self.target, state, now).await;
        if r.is_err() {
            // Read the target again next time: an increment may have been half written.
            self.state = None;
        }
        r
    }
}

/// The lag past which a `serve --backup-url` loop is `lagging` (`GET /healthz`, REVIEW5 U6):
/// three intervals (a failed increment or two is retried at the next tick), and at least two
/// minutes, twice the recovery point objective of issue 12 §1.
pub fn max_lag_secs(interval_secs: u64) -> u64 {
    interval_secs.saturating_mul(3).max(120)
}

/// The state of this process's backup loop, shared with `GET /healthz` (REVIEW5 U6): the time
/// it last found its target up to date, its failures in a row, and the lag past which it is
/// `lagging`. The lag is computed when read, so it grows even while an increment hangs.
#[derive(Debug, Default)]
pub(crate) struct Health {
    running: std::sync::atomic::AtomicBool,
    up_to_date: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
    max_lag: std::sync::atomic::AtomicU64,
}

impl Health {
    /// A loop starts at `now`, `lagging` past `max_lag` seconds.
    pub(crate) fn start(&self, now: u64, max_lag: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.up_to_date.store(now, Relaxed);
        self.failures.store(0, Relaxed);
        self.max_lag.store(max_lag, Relaxed);
        self.running.store(true, Relaxed);
    }

    /// The loop found its target up to date at `now`.
    pub(crate) fn up_to_date(&self, now: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.up_to_date.store(now, Relaxed);
        self.failures.store(0, Relaxed);
    }

    /// An increment failed.
    pub(crate) fn failed(&self) {
        self.failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The state at `now`; `None` when this process runs no backup loop.
    pub(crate) fn report(&self, now: u64) -> Option<serment_api::BackupHealth> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.running.load(Relaxed) {
            return None;
        }
        let lag = now.saturating_sub(self.up_to_date.load(Relaxed));
        let max_lag = self.max_lag.load(Relaxed);
        Some(serment_api::BackupHealth {
            state: if lag > max_lag { "lagging" } else { "ok" }.to_owned(),
            lag_seconds: lag,
            max_lag_seconds: max_lag,
            consecutive_failures: self.failures.load(Relaxed),
        })
    }
}

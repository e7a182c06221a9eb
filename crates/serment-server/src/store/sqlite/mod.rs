//! The SQLite backend (sqlx, runtime SQL; migrations in `migrations/sqlite/`).
//!
//! The database runs in WAL mode with `synchronous=NORMAL` and group commit ([`group_sync`]): the
//! HTTP layer awaits [`Db::durable`] before any response leaves, so a write the server
//! acknowledged survives a power cut, and one fsync covers every request of a batch. Foreign keys
//! are on. Every multi-row write runs in one `BEGIN IMMEDIATE` transaction, which
//! takes the write lock up front so concurrent writers wait (`busy_timeout`) instead of failing.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use serment_core::KeyId;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row as _, Sqlite, Transaction};

pub(crate) use commit_batch::CommitJob;
use log::LogAppender;
use serment_core::log::entry::{EntryKind, Subject};
use serment_core::log::note::NoteSigner;
use std::sync::Arc;

use crate::store::{
    DeviceRow, MAX_CHALLENGES, MAX_CHALLENGES_PER_DEVICE, NewDevice, Registered, StoreError,
    VersionRow,
};

mod commit_batch;
mod documents;
pub(crate) mod group_sync;
mod log;
mod log_writes;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite metadata database.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: SqlitePool,
    /// The one connection that writes: writers queue for it in-process instead of meeting
    /// `SQLITE_BUSY` and sleeping in SQLite's busy handler (1, 2, 5, 10... ms back-off).
    writer: SqlitePool,
    /// Group commit: the WAL fsync that makes acknowledged writes durable.
    wal_sync: Arc<group_sync::WalSync>,
    /// The log's checkpoint key (PROTOCOL.md §11.4), kept beside the database file.
    log: Arc<NoteSigner>,
    /// The queue of document commits, written in batches through `writer`.
    committer: commit_batch::Committer,
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        backend(e)
    }
}

/// Maps a unique-key violation to [`StoreError::Conflict`], anything else to a backend error.
fn conflict_on_unique(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => backend(e),
    }
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(backend)
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(backend)
}

fn to_u32(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(backend)
}

const VERSION_COLUMNS: &str = "d.doc_id, d.doc_version, d.author_device, d.author_identity, \
     d.blob_id, b.size, d.created_at";

fn version_row(row: &sqlx::sqlite::SqliteRow) -> Result<VersionRow, StoreError> {
    Ok(VersionRow {
        doc_id: row.try_get("doc_id")?,
        doc_version: to_u32(row.try_get("doc_version")?)?,
        author_device: row.try_get("author_device")?,
        author_identity: row.try_get("author_identity")?,
        blob_id: row.try_get("blob_id")?,
        size: to_u64(row.try_get("size")?)?,
        created_at: to_u64(row.try_get("created_at")?)?,
    })
}

impl Db {
    /// Opens or creates the database file, runs the migrations, loads (or creates) the log key
    /// beside it and publishes the checkpoint of the current log size.
    pub(crate) async fn open(path: &Path) -> Result<Db, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Durability comes from `durable()` (group commit), not from an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let log = Arc::new(crate::store::log_key::load_or_create(dir)?);
        let wal_sync = Arc::new(group_sync::WalSync::new(path));
        let committer = commit_batch::Committer::start(writer.clone(), Arc::clone(&log));
        let db = Db {
            pool,
            writer,
            wal_sync,
            log,
            committer,
        };
        db.log_init(&db.log).await?;
        Ok(db)
    }

    /// Returns once every transaction committed before the call is on disk (group commit: one
    /// WAL fsync for all the requests waiting). The HTTP layer awaits it before each response.
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        self.wal_sync.barrier().await.map_err(backend)
    }

    /// The log's checkpoint key.
    pub(crate) fn log_signer(&self) -> &NoteSigner {
        &self.log
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    // ---- §8.1 directory ----------------------------------------------------------------------

    /// Registers a device. The handle is bound to the first identity that registers it; the same
    /// record registered twice is [`Registered::Unchanged`]; a different record for an existing
    /// device id, or a handle bound to another identity, is [`StoreError::Conflict`].
    pub(crate) async fn register_device(
        &self,
        d: &NewDevice<'_>,
    ) -> Result<Registered, StoreError> {
        let device_id = d.device_id.to_string();
        let identity_id = d.identity_id.to_string();
        let mut tx = self.begin().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT identity_id FROM handles WHERE handle = ?")
                .bind(d.handle)
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some(owner) if owner != identity_id => {
                return Err(StoreError::Conflict(
                    "handle is bound to another identity for good (handles are never reassigned, \
                     so nobody can take over a name): choose another handle",
                ));
            }
            Some(_) => {}
            None => {
                sqlx::query("INSERT INTO handles (handle, identity_id) VALUES (?, ?)")
                    .bind(d.handle)
                    .bind(&identity_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let existing: Option<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT record, revoked FROM devices WHERE device_id = ?")
                .bind(&device_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((existing, revoked)) = existing {
            return if revoked != 0 {
                Err(StoreError::Conflict(
                    "this device was revoked (a signed entry in the log) and cannot register again: \
                     create a new identity",
                ))
            } else if existing == d.record {
                Ok(Registered::Unchanged)
            } else {
                Err(StoreError::Conflict(
                    "device is already registered with another record",
                ))
            };
        }
        sqlx::query(
            "INSERT INTO devices (device_id, identity_id, handle, record, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&device_id)
        .bind(&identity_id)
        .bind(d.handle)
        .bind(d.record)
        .bind(to_i64(d.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, "device is already registered"))?;
        let mut log = LogAppender::begin(&mut tx).await?;
        log.append(
            &mut tx,
            EntryKind::Device,
            &Subject::Handle(d.handle.to_owned()),
            Some(&device_id),
            d.record,
            d.created_at,
        )
        .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(Registered::Created)
    }

    /// The records of the devices registered under `handle` by the identity that owns it, oldest
    /// first; `None` if the handle is not bound.
    pub(crate) async fn directory(&self, handle: &str) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT identity_id FROM handles WHERE handle = ?")
                .bind(handle)
                .fetch_optional(&self.pool)
                .await?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let records = sqlx::query_scalar(
            "SELECT record FROM devices WHERE handle = ? AND identity_id = ? AND revoked = 0 \
             ORDER BY created_at, device_id",
        )
        .bind(handle)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(records))
    }

    /// Whether `device_id` was registered and then revoked (PROTOCOL.md §11.3).
    pub(crate) async fn device_revoked(&self, device_id: &KeyId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM devices WHERE device_id = ? AND revoked = 1")
            .bind(device_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// A registered device.
    pub(crate) async fn device(&self, device_id: &KeyId) -> Result<Option<DeviceRow>, StoreError> {
        let row =
            sqlx::query(
                "SELECT device_id, identity_id, record FROM devices WHERE device_id = ? AND revoked = 0",
            )
                .bind(device_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(DeviceRow {
                device_id: r.try_get("device_id")?,
                identity_id: r.try_get("identity_id")?,
                record: r.try_get("record")?,
            })
        })
        .transpose()
    }

    // ---- §8.2 authentication -----------------------------------------------------------------

    /// Stores a challenge hash; drops expired challenges and keeps at most
    /// [`MAX_CHALLENGES_PER_DEVICE`] per device and [`MAX_CHALLENGES`] in all (the ones closest
    /// to expiry are dropped first).
    pub(crate) async fn insert_challenge(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        self.insert_challenge_capped(challenge_hash, device_id, expires_at, now, MAX_CHALLENGES)
            .await
    }

    /// [`Self::insert_challenge`] with the table's cap as a parameter (tests use a small one).
    pub(crate) async fn insert_challenge_capped(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
        max_total: i64,
    ) -> Result<(), StoreError> {
        let device_id = device_id.to_string();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM challenges WHERE expires_at <= ?")
            .bind(to_i64(now)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM challenges WHERE device_id = ? AND challenge_hash NOT IN \
             (SELECT challenge_hash FROM challenges WHERE device_id = ? \
              ORDER BY expires_at DESC LIMIT ?)",
        )
        .bind(&device_id)
        .bind(&device_id)
        .bind(MAX_CHALLENGES_PER_DEVICE - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM challenges WHERE challenge_hash IN \
             (SELECT challenge_hash FROM challenges ORDER BY expires_at ASC \
              LIMIT max(0, (SELECT COUNT(*) FROM challenges) - ?))",
        )
        .bind(max_total.saturating_sub(1))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO challenges (challenge_hash, device_id, expires_at) VALUES (?, ?, ?)",
        )
        .bind(challenge_hash)
        .bind(&device_id)
        .bind(to_i64(expires_at)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Consumes a challenge (single use): true if it existed for this device and had not expired.
    pub(crate) async fn take_challenge(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM challenges WHERE challenge_hash = ? AND device_id = ? RETURNING expires_at",
        )
        .bind(challenge_hash)
        .bind(device_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(expires_at.is_some_and(|t| t > i64::try_from(now).unwrap_or(i64::MAX)))
    }

    /// Stores a session (token hash), dropping expired sessions.
    pub(crate) async fn create_session(
        &self,
        token_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(to_i64(now)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sessions (token_hash, device_id, expires_at) VALUES (?, ?, ?)")
            .bind(token_hash)
            .bind(device_id.to_string())
            .bind(to_i64(expires_at)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The device of an unexpired session.
    pub(crate) async fn session_device(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<DeviceRow>, StoreError> {
        let row = sqlx::query(
            "SELECT d.device_id, d.identity_id, d.record FROM sessions s \
             JOIN devices d ON d.device_id = s.device_id \
             WHERE s.token_hash = ? AND s.expires_at > ? AND d.revoked = 0",
        )
        .bind(token_hash)
        .bind(to_i64(now)?)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(DeviceRow {
                device_id: r.try_get("device_id")?,
                identity_id: r.try_get("identity_id")?,
                record: r.try_get("record")?,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests;

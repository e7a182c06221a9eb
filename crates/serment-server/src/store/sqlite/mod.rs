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

use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use serment_core::log::note::NoteSigner;
use std::sync::Arc;

use crate::store::batcher::Committer;
use crate::store::{MetaStore, StoreError, VersionRow};

// The SQL written once for every backend; `super` in these files is this module.
#[path = "../sql/commit_batch.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod commit_batch;
#[path = "../sql/directory.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod directory;
#[path = "../sql/documents.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod documents;
pub(crate) mod group_sync;
#[path = "../sql/guards.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod guards;
#[path = "../sql/log.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod log;
#[path = "../sql/pairing.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod pairing;
#[path = "../sql/teams.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod teams;

/// The sqlx database of this backend (the shared SQL files are written against it).
type DB = sqlx::Sqlite;
/// A pool of this backend.
type Pool = SqlitePool;
/// A write transaction of this backend.
type Tx = sqlx::Transaction<'static, DB>;
/// The column that orders cosignature lines by arrival.
const ARRIVAL_ORDER: &str = "rowid";

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
    /// The log's checkpoint key (PROTOCOL.md §11.4).
    log: Arc<NoteSigner>,
    /// The queue of document commits, written in batches through `writer`.
    committer: Committer,
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

fn version_row(row: &<DB as sqlx::Database>::Row) -> Result<VersionRow, StoreError> {
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
    /// Opens or creates the database file, runs the migrations and publishes the checkpoint of
    /// the current log size, signed with `log`.
    pub(crate) async fn open(path: &Path, log: Arc<NoteSigner>) -> Result<Db, StoreError> {
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
        let wal_sync = Arc::new(group_sync::WalSync::new(path));
        let committer = Committer::start(commit_batch::SqlBatch {
            writer: writer.clone(),
            signer: Arc::clone(&log),
        });
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

    /// A write transaction that holds the log lock: `BEGIN IMMEDIATE` takes SQLite's write
    /// lock up front, so no other writer can move the tree until it ends.
    async fn begin_on(writer: &Pool) -> Result<Tx, StoreError> {
        Ok(writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// [`Db::begin_on`] this database's writer.
    async fn begin(&self) -> Result<Tx, StoreError> {
        Self::begin_on(&self.writer).await
    }
}

#[async_trait::async_trait]
impl MetaStore for Db {
    /// Group commit: one WAL fsync for every request waiting ([`group_sync`]).
    async fn durable(&self) -> Result<(), StoreError> {
        self.wal_sync.barrier().await.map_err(backend)
    }

    async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    fn pool_use(&self) -> crate::store::PoolUse {
        let idle = |p: &Pool| u32::try_from(p.num_idle()).unwrap_or(u32::MAX);
        crate::store::PoolUse {
            size: self.pool.size() + self.writer.size(),
            idle: idle(&self.pool).saturating_add(idle(&self.writer)),
            max: self.pool.options().get_max_connections()
                + self.writer.options().get_max_connections(),
        }
    }

    async fn blob_bytes(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs")
            .fetch_one(&self.pool)
            .await?;
        to_u64(n)
    }
}

#[cfg(test)]
mod tests;

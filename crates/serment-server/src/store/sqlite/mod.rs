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

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use serment_core::log::note::NoteSigner;
use std::sync::Arc;

use crate::store::batcher::Committer;
use crate::store::nonce_batch::NonceBatcher;
use crate::store::{MetaStore, StoreError};

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
#[path = "../sql/erasure.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod erasure;
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
#[path = "../sql/provisional.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod provisional;
#[path = "../sql/recovery.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod recovery;
#[path = "../sql/restore.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod restore;
#[path = "../sql/rows.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod rows;
#[path = "../sql/social.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod social;
#[path = "../sql/teams.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod teams;

use rows::{
    VERSION_COLUMNS, backend, conflict_on_unique, key_id, key_id_at, to_i64, to_u32, to_u64,
    version_row,
};

/// The sqlx database of this backend (the shared SQL files are written against it).
type DB = sqlx::Sqlite;
/// A pool of this backend.
type Pool = SqlitePool;
/// A write transaction of this backend.
type Tx = sqlx::Transaction<'static, DB>;
/// The column that orders cosignature lines by arrival.
const ARRIVAL_ORDER: &str = "rowid";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The page cache of each connection of a restore's database ([`Db::open_with`]), in KiB.
const RESTORE_CACHE_KIB: u32 = 128 * 1024;

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
    /// The queue of request nonces, written in batches through `writer`.
    nonces: NonceBatcher,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        backend(e)
    }
}

impl Db {
    /// Opens or creates the database file, runs the migrations and publishes the checkpoint of
    /// the current log size, signed with `log`.
    #[cfg(test)]
    pub(crate) async fn open(path: &Path, log: Arc<NoteSigner>) -> Result<Db, StoreError> {
        Self::open_with(path, log, false).await
    }

    /// [`Db::open`]; for `serment restore` (`restoring`), the database a restore fills in its
    /// staging data directory, which nothing reads until the restore has renamed it into place
    /// (and a restore that fails or is killed is removed whole): a rollback journal kept in
    /// memory and `synchronous=FULL`, so the one large transaction of its rows is written
    /// once into the file and fsynced at its commit, instead of into the WAL and then again
    /// into the file at the checkpoint (374 MB twice for the benchmark's 82,266 entries,
    /// docs/BACKUP.md §8); a page cache of [`RESTORE_CACHE_KIB`] for its indexes. `serve`
    /// opens the file in WAL mode again (the mode is the file's, set by the first connection).
    pub(crate) async fn open_with(
        path: &Path,
        log: Arc<NoteSigner>,
        restoring: bool,
    ) -> Result<Db, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let options = if restoring {
            options
                .journal_mode(SqliteJournalMode::Memory)
                .synchronous(SqliteSynchronous::Full)
                .pragma("cache_size", format!("-{RESTORE_CACHE_KIB}"))
        } else {
            options
                .journal_mode(SqliteJournalMode::Wal)
                // Durability comes from `durable()` (group commit), not from an fsync per commit.
                .synchronous(SqliteSynchronous::Normal)
        };
        // No ping before each checkout (sqlx's default): a connection to a local file cannot
        // have been dropped by a peer, and the ping is a round trip to the connection's worker
        // thread, two context switches on every acquire (issue 14 §2).
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let wal_sync = Arc::new(group_sync::WalSync::new(path));
        let committer = Committer::start(commit_batch::SqlBatch {
            writer: writer.clone(),
            signer: Arc::clone(&log),
        });
        let nonces = NonceBatcher::start(guards::SqlNonces {
            writer: writer.clone(),
        });
        let db = Db {
            pool,
            writer,
            wal_sync,
            log,
            committer,
            nonces,
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
        rows::blob_bytes(&self.pool).await
    }
}

#[cfg(test)]
mod tests;

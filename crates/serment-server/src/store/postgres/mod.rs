//! The PostgreSQL backend (issue 11 §2): sqlx's postgres driver, runtime SQL shared with SQLite
//! (`../sql/`), its own migrations (`migrations/postgres/`, embedded, run at startup).
//!
//! Several stateless instances may share one database (issue 11 §4). Every write transaction
//! first locks the coordination row (`SELECT … FOR UPDATE` on `log_head`), so log entries are
//! sequenced under one row lock in the transaction that stores the commit, and the checkpoint is
//! published by compare-and-swap on the head ([`crate::store::log_service::LogTx`]): no two
//! instances can sign two different trees of one size. A commit is durable when it returns
//! (`synchronous_commit` on, the default), so [`MetaStore::durable`] has nothing to wait for.
//!
//! TLS to the database is rustls with ring (sqlx `tls-rustls-ring-webpki`): `sslmode=verify-full`
//! and `sslrootcert=PATH` in the URL, as libpq reads them.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use serment_core::log::note::NoteSigner;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

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
type DB = sqlx::Postgres;
/// A pool of this backend.
type Pool = PgPool;
/// A write transaction of this backend.
type Tx = sqlx::Transaction<'static, DB>;
/// The column that orders cosignature lines by arrival.
const ARRIVAL_ORDER: &str = "seq";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per instance.
const MAX_CONNECTIONS: u32 = 16;

/// The PostgreSQL metadata database.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: PgPool,
    /// The same pool (the shared SQL writes through `writer`, which SQLite keeps apart).
    writer: PgPool,
    /// The log's checkpoint key (PROTOCOL.md §11.4), from a file or the environment, never
    /// stored in the database.
    log: Arc<NoteSigner>,
    /// The queue of document commits, written in batches.
    committer: Committer,
    /// The queue of request nonces, written in batches.
    nonces: NonceBatcher,
}

impl Db {
    /// Connects to `url` (`postgres://…`), runs the migrations and publishes the checkpoint of
    /// the current log size, signed with `log`.
    pub(crate) async fn open(url: &str, log: Arc<NoteSigner>) -> Result<Db, StoreError> {
        Self::open_with(PgConnectOptions::from_str(url)?, log).await
    }

    /// [`Db::open`] with parsed options (tests add a `search_path`).
    pub(crate) async fn open_with(
        options: PgConnectOptions,
        log: Arc<NoteSigner>,
    ) -> Result<Db, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        // Instances starting together: the migrator takes PostgreSQL's advisory lock.
        MIGRATOR.run(&pool).await.map_err(backend)?;
        let committer = Committer::start(commit_batch::SqlBatch {
            writer: pool.clone(),
            signer: Arc::clone(&log),
        });
        let nonces = NonceBatcher::start(guards::SqlNonces {
            writer: pool.clone(),
        });
        let db = Db {
            writer: pool.clone(),
            pool,
            log,
            committer,
            nonces,
        };
        db.log_init(&db.log).await?;
        Ok(db)
    }

    /// A write transaction that holds the log lock: the coordination row, locked first, so
    /// writers of every instance queue for it and none can move the tree until it ends.
    async fn begin_on(writer: &Pool) -> Result<Tx, StoreError> {
        let mut tx = writer.begin().await?;
        sqlx::query("SELECT size FROM log_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// [`Db::begin_on`] this database's pool.
    async fn begin(&self) -> Result<Tx, StoreError> {
        Self::begin_on(&self.writer).await
    }
}

#[async_trait::async_trait]
impl MetaStore for Db {
    /// Nothing to wait for: a PostgreSQL commit is durable when it returns.
    async fn durable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_use(&self) -> crate::store::PoolUse {
        crate::store::PoolUse {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn blob_bytes(&self) -> Result<u64, StoreError> {
        rows::blob_bytes(&self.pool).await
    }
}

#[cfg(test)]
mod tests;

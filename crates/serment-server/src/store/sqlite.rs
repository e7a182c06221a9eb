//! The SQLite backend (sqlx, runtime SQL; migrations in `migrations/sqlite/`).
//!
//! The database runs in WAL mode with `synchronous=FULL` (a committed version survives a power
//! cut) and foreign keys on. Every multi-row write runs in one `BEGIN IMMEDIATE` transaction, which
//! takes the write lock up front so concurrent writers wait (`busy_timeout`) instead of failing.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use serment_core::{DocId, KeyId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row as _, Sqlite, Transaction};

use super::{
    AccessKind, AccessRow, DeviceRow, MAX_ACCESS_ROWS, MAX_CHALLENGES_PER_DEVICE, MAX_WRAPS,
    NewDevice, NewVersion, NewWrap, Registered, StoreError, VersionRow,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite metadata database.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: SqlitePool,
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
    /// Opens or creates the database file and runs the migrations.
    pub(crate) async fn open(path: &Path) -> Result<Db, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await.map_err(backend)?;
        Ok(Db { pool })
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
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
                return Err(StoreError::Conflict("handle is bound to another identity"));
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
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT record FROM devices WHERE device_id = ?")
                .bind(&device_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = existing {
            return if existing == d.record {
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
            "SELECT record FROM devices WHERE handle = ? AND identity_id = ? \
             ORDER BY created_at, device_id",
        )
        .bind(handle)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(records))
    }

    /// A registered device.
    pub(crate) async fn device(&self, device_id: &KeyId) -> Result<Option<DeviceRow>, StoreError> {
        let row =
            sqlx::query("SELECT device_id, identity_id, record FROM devices WHERE device_id = ?")
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
    /// [`MAX_CHALLENGES_PER_DEVICE`] per device.
    pub(crate) async fn insert_challenge(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
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
             WHERE s.token_hash = ? AND s.expires_at > ?",
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

    // ---- §8.3 blobs and documents ------------------------------------------------------------

    /// Records an uploaded blob (a no-op if it is already recorded).
    pub(crate) async fn record_blob(
        &self,
        blob_id: &super::BlobId,
        size: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blobs (blob_id, size, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (blob_id) DO NOTHING",
        )
        .bind(blob_id.as_str())
        .bind(to_i64(size)?)
        .bind(to_i64(now)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The recorded size of a blob.
    pub(crate) async fn blob_size(
        &self,
        blob_id: &super::BlobId,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE blob_id = ?")
            .bind(blob_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        size.map(to_u64).transpose()
    }

    /// Checks that every recipient is registered and inserts the wraps.
    async fn insert_wraps(
        tx: &mut Transaction<'static, Sqlite>,
        doc_id: &str,
        doc_version: i64,
        wraps: &[NewWrap],
    ) -> Result<(), StoreError> {
        for w in wraps {
            let recipient = w.recipient.to_string();
            let known: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM devices WHERE device_id = ?")
                    .bind(&recipient)
                    .fetch_optional(&mut **tx)
                    .await?;
            if known.is_none() {
                return Err(StoreError::UnknownDevice(recipient));
            }
            sqlx::query(
                "INSERT INTO wraps (doc_id, doc_version, recipient_device, sharer_device, wrap) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(doc_id)
            .bind(doc_version)
            .bind(&recipient)
            .bind(w.sharer.to_string())
            .bind(&w.bytes)
            .execute(&mut **tx)
            .await
            .map_err(|e| conflict_on_unique(e, "this recipient already has a wrap"))?;
        }
        Ok(())
    }

    /// Commits a version and its wraps in one transaction. [`StoreError::Forbidden`] if earlier
    /// versions of `doc_id` belong to another identity, [`StoreError::Conflict`] if the version
    /// exists, [`StoreError::UnknownDevice`] if a recipient is not registered.
    pub(crate) async fn commit_version(
        &self,
        v: &NewVersion<'_>,
        wraps: &[NewWrap],
    ) -> Result<(), StoreError> {
        let doc_id = v.doc_id.to_string();
        let author_identity = v.author_identity.to_string();
        let version = i64::from(v.doc_version);
        let mut tx = self.begin().await?;
        let owners: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT author_identity FROM documents WHERE doc_id = ?")
                .bind(&doc_id)
                .fetch_all(&mut *tx)
                .await?;
        if owners.iter().any(|o| *o != author_identity) {
            return Err(StoreError::Forbidden(
                "this document id belongs to another identity",
            ));
        }
        sqlx::query(
            "INSERT INTO documents \
             (doc_id, doc_version, author_device, author_identity, blob_id, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&doc_id)
        .bind(version)
        .bind(v.author_device.to_string())
        .bind(&author_identity)
        .bind(v.blob_id.as_str())
        .bind(to_i64(v.created_at)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, "this document version already exists"))?;
        Self::insert_wraps(&mut tx, &doc_id, version, wraps).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds wraps to an existing version, keeping at most [`MAX_WRAPS`] per version.
    pub(crate) async fn add_wraps(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        wraps: &[NewWrap],
    ) -> Result<(), StoreError> {
        let doc_id = doc_id.to_string();
        let version = i64::from(doc_version);
        let mut tx = self.begin().await?;
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM wraps WHERE doc_id = ? AND doc_version = ?")
                .bind(&doc_id)
                .bind(version)
                .fetch_one(&mut *tx)
                .await?;
        let total = usize::try_from(count).map_err(backend)? + wraps.len();
        if total > MAX_WRAPS {
            return Err(StoreError::TooManyWraps);
        }
        Self::insert_wraps(&mut tx, &doc_id, version, wraps).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One version.
    pub(crate) async fn version(
        &self,
        doc_id: &DocId,
        doc_version: u32,
    ) -> Result<Option<VersionRow>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM documents d JOIN blobs b ON b.blob_id = d.blob_id \
             WHERE d.doc_id = ? AND d.doc_version = ?"
        );
        let row = sqlx::query(&sql)
            .bind(doc_id.to_string())
            .bind(i64::from(doc_version))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(version_row).transpose()
    }

    /// The versions a device may read: authored by its identity, or holding a wrap for it.
    pub(crate) async fn readable_versions(
        &self,
        device_id: &str,
        identity_id: &str,
    ) -> Result<Vec<VersionRow>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM documents d JOIN blobs b ON b.blob_id = d.blob_id \
             WHERE d.author_identity = ? OR EXISTS (SELECT 1 FROM wraps w \
               WHERE w.doc_id = d.doc_id AND w.doc_version = d.doc_version \
               AND w.recipient_device = ?) \
             ORDER BY d.created_at, d.doc_id, d.doc_version"
        );
        let rows = sqlx::query(&sql)
            .bind(identity_id)
            .bind(device_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(version_row).collect()
    }

    /// The wrap held by `device_id` for a version.
    pub(crate) async fn wrap_for(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        device_id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT wrap FROM wraps WHERE doc_id = ? AND doc_version = ? AND recipient_device = ?",
        )
        .bind(doc_id.to_string())
        .bind(i64::from(doc_version))
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether the device (or its identity, as author) takes part in any version of `doc_id`;
    /// `None` if the document does not exist.
    pub(crate) async fn is_participant(
        &self,
        doc_id: &DocId,
        device_id: &str,
        identity_id: &str,
    ) -> Result<Option<bool>, StoreError> {
        let doc_id = doc_id.to_string();
        let owner: Option<String> =
            sqlx::query_scalar("SELECT author_identity FROM documents WHERE doc_id = ? LIMIT 1")
                .bind(&doc_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        if owner == identity_id {
            return Ok(Some(true));
        }
        let wrap: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM wraps WHERE doc_id = ? AND recipient_device = ? LIMIT 1",
        )
        .bind(&doc_id)
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(Some(wrap.is_some()))
    }

    /// Records one read (PROTOCOL.md §8.3).
    pub(crate) async fn record_access(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        device_id: &str,
        what: AccessKind,
        at: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO accesses (doc_id, doc_version, device_id, what, at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(doc_id.to_string())
        .bind(i64::from(doc_version))
        .bind(device_id)
        .bind(what.as_str())
        .bind(to_i64(at)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The access rows of a document, oldest first (at most [`MAX_ACCESS_ROWS`], the most recent).
    pub(crate) async fn accesses(&self, doc_id: &DocId) -> Result<Vec<AccessRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT a.id, a.device_id, d.handle, a.what, a.at, a.doc_version \
             FROM accesses a JOIN devices d ON d.device_id = a.device_id \
             WHERE a.doc_id = ? ORDER BY a.id DESC LIMIT ?) recent ORDER BY id",
        )
        .bind(doc_id.to_string())
        .bind(MAX_ACCESS_ROWS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccessRow {
                    device_id: r.try_get("device_id")?,
                    handle: r.try_get("handle")?,
                    what: r.try_get("what")?,
                    at: to_u64(r.try_get("at")?)?,
                    doc_version: to_u32(r.try_get("doc_version")?)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serment_core::identity::{DeviceSecret, IdentitySecret};

    use super::*;

    async fn db_with_device() -> (Db, KeyId, std::path::PathBuf) {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let dir = std::env::temp_dir().join(format!("serment-db-{}", hex::encode(r)));
        std::fs::create_dir_all(&dir).unwrap();
        let db = Db::open(&dir.join("serment.db")).await.unwrap();
        let identity = IdentitySecret::generate();
        let device = DeviceSecret::generate();
        let record = identity.sign_device_record("x", &device, 1).unwrap();
        db.register_device(&NewDevice {
            device_id: device.id(),
            identity_id: identity.id(),
            handle: "x",
            record: &record,
            created_at: 1,
        })
        .await
        .unwrap();
        (db, device.id(), dir)
    }

    #[tokio::test]
    async fn challenges_expire_are_single_use_and_capped() {
        let (db, dev, dir) = db_with_device().await;
        db.insert_challenge("c1", &dev, 160, 100).await.unwrap();
        assert!(
            !db.take_challenge("c1", &dev, 160).await.unwrap(),
            "expired"
        );
        assert!(
            !db.take_challenge("c1", &dev, 100).await.unwrap(),
            "consumed"
        );
        db.insert_challenge("c2", &dev, 160, 100).await.unwrap();
        assert!(db.take_challenge("c2", &dev, 159).await.unwrap());
        assert!(
            !db.take_challenge("c2", &dev, 100).await.unwrap(),
            "single use"
        );
        for i in 0..40u64 {
            db.insert_challenge(&format!("k{i}"), &dev, 200 + i, 100)
                .await
                .unwrap();
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM challenges")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, MAX_CHALLENGES_PER_DEVICE);
        assert!(
            db.take_challenge("k39", &dev, 100).await.unwrap(),
            "newest kept"
        );
        assert!(
            !db.take_challenge("k0", &dev, 100).await.unwrap(),
            "oldest dropped"
        );
        db.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn sessions_expire() {
        let (db, dev, dir) = db_with_device().await;
        db.create_session("t1", &dev, 1000, 100).await.unwrap();
        assert!(db.session_device("t1", 999).await.unwrap().is_some());
        assert!(db.session_device("t1", 1000).await.unwrap().is_none());
        assert!(db.session_device("t2", 100).await.unwrap().is_none());
        // Expired sessions are purged when a new one is created.
        db.create_session("t2", &dev, 5000, 2000).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        db.close().await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}

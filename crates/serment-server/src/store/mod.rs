//! Storage behind a seam (issue 11 §1): a metadata backend ([`MetaStore`], one trait per use
//! case in [`traits`]) and a blob store ([`BlobStore`]), held by [`Store`] as trait objects.
//!
//! Everything that names a database crate lives under this module (the vaultwarden habit): the
//! HTTP handlers speak only in the types below. The log service ([`log_service`]: frontier,
//! appends, checkpoint signing) and the commit batcher ([`batcher`]) are backend-neutral; the
//! SQL is written once (`sql/`, `$N` placeholders, `ON CONFLICT`, `RETURNING`) and compiled
//! into each backend module ([`sqlite`]).
//!
//! Ids are stored as lowercase hex text built from typed ids ([`KeyId`], [`DocId`], [`BlobId`]);
//! times are seconds since the Unix epoch.

pub(crate) mod batcher;
pub(crate) mod blobs;
#[cfg(test)]
mod contract;
pub(crate) mod log_key;
pub(crate) mod log_service;
pub(crate) mod nonce_batch;
pub(crate) mod object;
mod postgres;
pub(crate) mod restore;
mod sqlite;
mod traits;

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use serment_core::{DocId, KeyId};

use crate::config::BlobLocation;

pub(crate) use batcher::{CommitJob, JobCommit};
pub(crate) use blobs::{BlobError, BlobId, BlobStore, ByteStream, FsBlobStore, StagedBlob};
pub(crate) use traits::{CodeCheck, NewProvisional, ProvisionalRow};
pub(crate) use traits::{
    DirectoryStore, DocumentStore, ErasureStore, GuardStore, LogStore, MetaStore, NonceUse,
    PairingStore, PoolUse, ProvisionalStore, RecoveryStore, RestoreStore, SocialStore,
};
pub(crate) use traits::{NewSocial, SocialRequestRow, SocialRow};

/// The name of the database file inside the data directory.
pub(crate) const DB_FILE: &str = "serment.db";
/// The most outstanding login challenges kept per device (older ones are dropped).
pub(crate) const MAX_CHALLENGES_PER_DEVICE: i64 = 16;
/// The most outstanding login challenges kept in all (issue 10 §3: the table is bounded even
/// when many devices are registered); the ones closest to expiry are dropped first.
pub(crate) const MAX_CHALLENGES: i64 = 65_536;
/// The most wraps one document version may hold (PROTOCOL.md §6.1: 1..=1024 recipients).
pub(crate) const MAX_WRAPS: usize = 1024;
/// The largest sealed document a commit may carry inline instead of uploading it to
/// `/v1/blobs` first (PROTOCOL.md §8.3): 262 144 bytes.
pub(crate) const MAX_INLINE_BLOB: usize = 256 * 1024;
/// The most access rows returned by one listing (the most recent ones).
pub(crate) const MAX_ACCESS_ROWS: i64 = 10_000;

/// A storage failure, in terms the HTTP layer can map to a status without knowing the backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The write would contradict existing state (duplicate version, handle bound elsewhere, ...).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The caller may not perform this write (e.g. the document belongs to another identity).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A referenced device is not registered.
    #[error("unknown device {0}")]
    UnknownDevice(String),
    /// A version would hold more than [`MAX_WRAPS`] wraps.
    #[error("too many wraps")]
    TooManyWraps,
    /// A per-subject cap is reached (REVIEW5 U1: open recovery requests of one handle).
    #[error("over a cap: {0}")]
    OverCap(&'static str),
    /// The document was erased (PROTOCOL.md §11.3.2).
    #[error("the document was erased")]
    Erased,
    /// No such document.
    #[error("no such document")]
    NotFound,
    /// The backend failed (details are logged, never sent to clients).
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A live pairing slot (PROTOCOL.md §4.1).
#[derive(Debug, Clone)]
pub(crate) struct PairingRow {
    /// The device that opened it.
    pub(crate) owner_device: KeyId,
    /// Step 1, from the owner.
    pub(crate) hello: Vec<u8>,
    /// Step 2, from the new device, once posted.
    pub(crate) join: Option<Vec<u8>>,
    /// Step 3, from the owner, once posted.
    pub(crate) finish: Option<Vec<u8>>,
    /// The owner refused the join (wrong code or a changed message).
    pub(crate) aborted: bool,
    /// Expiry, seconds since the Unix epoch.
    pub(crate) expires_at: u64,
}

/// What kind of read an access row records (PROTOCOL.md §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessKind {
    /// The caller fetched its key wrap.
    Wrap,
    /// The caller fetched the sealed blob.
    Blob,
}

impl AccessKind {
    /// The log's name for it (PROTOCOL.md §11.3).
    pub(crate) fn log_kind(self) -> serment_core::log::entry::AccessWhat {
        match self {
            AccessKind::Wrap => serment_core::log::entry::AccessWhat::Wrap,
            AccessKind::Blob => serment_core::log::entry::AccessWhat::Blob,
        }
    }
    /// The stored and serialised form: `wrap` or `blob`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccessKind::Wrap => "wrap",
            AccessKind::Blob => "blob",
        }
    }
}

/// A device to register: the verified record and the ids derived from it.
#[derive(Debug)]
pub(crate) struct NewDevice<'a> {
    pub(crate) device_id: KeyId,
    pub(crate) identity_id: KeyId,
    pub(crate) handle: &'a str,
    pub(crate) record: &'a [u8],
    pub(crate) created_at: u64,
}

/// The result of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registered {
    /// A new device row was written.
    Created,
    /// The very same record was already registered (idempotent retry).
    Unchanged,
}

/// A registered device, as stored.
#[derive(Debug, Clone)]
pub(crate) struct DeviceRow {
    pub(crate) device_id: KeyId,
    pub(crate) identity_id: KeyId,
    pub(crate) record: Vec<u8>,
}

/// One committed document version, with the size of its blob.
#[derive(Debug, Clone)]
pub(crate) struct VersionRow {
    pub(crate) doc_id: DocId,
    pub(crate) doc_version: u32,
    pub(crate) author_device: KeyId,
    pub(crate) author_identity: KeyId,
    pub(crate) blob_id: BlobId,
    pub(crate) size: u64,
    pub(crate) created_at: u64,
}

/// A version as one reader sees it ([`DocumentStore::version_for_reader`]): the row and the
/// wrap the reader opens it with, if any.
#[derive(Debug, Clone)]
pub(crate) struct VersionRead {
    /// The version.
    pub(crate) row: VersionRow,
    /// The reader's wrap: its own, else the newest wrap to a care team its handle is a current
    /// member of (PROTOCOL.md §12.5); `None` if it holds neither.
    pub(crate) wrap: Option<ReaderWrap>,
}

/// A wrap a reader holds, with its log entry.
#[derive(Debug, Clone)]
pub(crate) struct ReaderWrap {
    /// The wrap's bytes as stored.
    pub(crate) bytes: Vec<u8>,
    /// Its wrap entry (kind 4) in the log; `None` for a row written before wraps were logged.
    pub(crate) entry: Option<LogRead>,
}

/// A key wrap to store, already decoded and checked by the caller.
#[derive(Debug)]
pub(crate) struct NewWrap {
    pub(crate) recipient: KeyId,
    pub(crate) sharer: KeyId,
    pub(crate) bytes: Vec<u8>,
}

/// One access row, joined with the reader's handle.
#[derive(Debug, Clone)]
pub(crate) struct AccessRow {
    pub(crate) device_id: KeyId,
    pub(crate) handle: String,
    pub(crate) what: String,
    pub(crate) at: u64,
    pub(crate) doc_version: u32,
}

/// One read to record (PROTOCOL.md §8.3, §11.5).
#[derive(Debug)]
pub(crate) struct NewAccess {
    pub(crate) doc_id: DocId,
    pub(crate) doc_version: u32,
    pub(crate) device_id: KeyId,
    pub(crate) what: AccessKind,
    /// Server time.
    pub(crate) now: u64,
    /// The reader's verified receipt, if it sent one.
    pub(crate) receipt: Option<serment_core::log::entry::Receipt>,
}

/// An erasure to store (PROTOCOL.md §11.3.2): the tombstone, already decoded and verified
/// against the calling device.
#[derive(Debug)]
pub(crate) struct NewErasure<'a> {
    pub(crate) doc_id: DocId,
    /// The requesting (calling) device.
    pub(crate) requester: KeyId,
    /// Its identity, which must be the document's author's.
    pub(crate) requester_identity: KeyId,
    /// The tombstone payload (kind 9).
    pub(crate) tombstone: &'a [u8],
    /// Server time.
    pub(crate) now: u64,
}

/// What an erasure did: the tombstone's log index, and the stored blobs marked for deletion.
#[derive(Debug)]
pub(crate) struct ErasedDocument {
    pub(crate) index: u64,
    pub(crate) blobs: Vec<BlobId>,
}

/// One log entry as stored: its index and bytes.
#[derive(Debug, Clone)]
pub(crate) struct LogRead {
    pub(crate) index: u64,
    pub(crate) entry: Vec<u8>,
}

/// A new device record certified by a rotated identity key (PROTOCOL.md §11.3).
#[derive(Debug)]
pub(crate) struct RotatedDevice {
    pub(crate) device_id: KeyId,
    pub(crate) record: Vec<u8>,
}

/// The storage of a server: a metadata backend and a blob store, both behind the seam's traits
/// (the HTTP layer never names a backend).
#[derive(Debug, Clone)]
pub(crate) struct Store {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
}

/// How long an upload waits, at most, for the collector to finish deleting the same bytes
/// (tombstone, bytes, row: normally milliseconds), in steps of [`TOMBSTONE_POLL`].
const TOMBSTONE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// The step of [`TOMBSTONE_WAIT`].
const TOMBSTONE_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// A blob's bytes as served: a stream and its length in bytes.
pub(crate) struct BlobBody {
    /// The bytes.
    pub(crate) stream: ByteStream<std::io::Error>,
    /// Their length.
    pub(crate) len: u64,
}

impl Store {
    /// Opens the metadata database named by `database_url` (default: SQLite `serment.db` in
    /// `data_dir`, created if missing; migrations run either way) and the blob store: the blob
    /// directory of `data_dir` (`blobs/`, `tmp/`, emptying `tmp/` of uploads interrupted by a
    /// crash), or `blob_url` (see [`crate::config::BlobLocation`]: another directory, or an
    /// S3-compatible bucket, probed before the server starts); with the log key of
    /// [`log_key::load`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] if a URL is not supported, the database cannot be reached or
    /// migrated, it belongs to another log key, or the blob store cannot be prepared.
    pub(crate) async fn open(
        data_dir: &Path,
        blob_url: Option<&str>,
        database_url: Option<&str>,
    ) -> Result<Store, StoreError> {
        Self::open_with(data_dir, blob_url, database_url, true).await
    }

    /// [`Store::open`]; `serving` false for a reader beside a running server (`serment
    /// backup`): the interrupted uploads in `tmp/` are then left alone.
    pub(crate) async fn open_with(
        data_dir: &Path,
        blob_url: Option<&str>,
        database_url: Option<&str>,
        serving: bool,
    ) -> Result<Store, StoreError> {
        Self::open_inner(data_dir, blob_url, database_url, serving, false).await
    }

    /// [`Store::open`] for `serment restore`, which writes thousands of blobs into a staging
    /// directory nothing serves: a blob directory does not fsync each blob (two to three fsyncs
    /// per blob, most of a restore's time); [`Store::sync_blobs`] makes them all durable at
    /// once before the restore commits its rows.
    pub(crate) async fn open_for_restore(
        data_dir: &Path,
        blob_url: Option<&str>,
        database_url: Option<&str>,
    ) -> Result<Store, StoreError> {
        Self::open_inner(data_dir, blob_url, database_url, true, true).await
    }

    /// Makes every blob written so far durable (after [`Store::open_for_restore`]: one
    /// `syncfs(2)` of the blob directory's file system; a no-op for a bucket, whose writes are
    /// durable when acknowledged).
    ///
    /// # Errors
    /// [`BlobError::Io`].
    pub(crate) async fn sync_blobs(&self) -> Result<(), BlobError> {
        self.blobs.sync_all().await
    }

    async fn open_inner(
        data_dir: &Path,
        blob_url: Option<&str>,
        database_url: Option<&str>,
        serving: bool,
        restoring: bool,
    ) -> Result<Store, StoreError> {
        // A restore's blobs are made durable at once (`Store::sync_blobs`), not one by one.
        let durable_blobs = !restoring;
        let backend = |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Backend(e);
        let location = match blob_url {
            None => BlobLocation::Dir(data_dir.to_owned()),
            Some(url) => BlobLocation::parse(url).map_err(|e| backend(e.into()))?,
        };
        let blobs: Arc<dyn BlobStore> = match location {
            BlobLocation::Dir(dir) => Arc::new(
                FsBlobStore::open_with(&dir, serving)
                    .await
                    .map_err(|e| backend(Box::new(e)))?
                    .with_durability(durable_blobs)
                    .map_err(|e| backend(Box::new(e)))?,
            ),
            BlobLocation::S3 { url } => {
                let s3 =
                    object::ObjectBlobStore::from_url(&url).map_err(|e| backend(Box::new(e)))?;
                s3.check().await.map_err(|e| {
                    backend(format!("blob store {url}: the bucket cannot be listed: {e}").into())
                })?;
                Arc::new(s3)
            }
        };
        let log = Arc::new(log_key::load(data_dir)?);
        let url = match database_url {
            None => DatabaseUrl::Sqlite(data_dir.join(DB_FILE)),
            Some(u) => DatabaseUrl::parse(u)
                .ok_or_else(|| StoreError::Backend("unsupported database_url".into()))?,
        };
        let meta: Arc<dyn MetaStore> = match url {
            // Only the restore's own file, in its staging directory (removed whole if the
            // restore fails or dies), goes without a journal on disk: never a `sqlite://`
            // file given elsewhere.
            DatabaseUrl::Sqlite(path) => Arc::new(
                sqlite::Db::open_with(&path, log, restoring && database_url.is_none()).await?,
            ),
            DatabaseUrl::Postgres(url) => Arc::new(postgres::Db::open(&url, log).await?),
        };
        Ok(Store::new(meta, blobs))
    }

    /// A store over the given backends.
    pub(crate) fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>) -> Store {
        Store { meta, blobs }
    }

    /// The metadata backend.
    pub(crate) fn meta(&self) -> &dyn MetaStore {
        &*self.meta
    }

    /// The log's checkpoint key (PROTOCOL.md §11.4).
    pub(crate) fn log_signer(&self) -> &serment_core::log::note::NoteSigner {
        self.meta.log_signer()
    }

    /// Streams an upload into the blob store and records it as a pending upload of `uploader`
    /// (PROTOCOL.md §8.3, issue 10 §2). Returns the blob's id and size in bytes.
    ///
    /// The row is recorded (or its age restarted) **before** the staged bytes are made visible,
    /// and the collector marks a row before it deletes bytes ([`Store::collect_pending`]): so
    /// no instance deletes bytes this upload found in place. Bytes being deleted by the
    /// collector are waited for (up to [`TOMBSTONE_WAIT`]), then stored again.
    ///
    /// # Errors
    /// [`UploadError::Blob`] (over `limit`, digest mismatch, body or I/O failure: nothing is
    /// stored) or [`UploadError::Store`].
    pub(crate) async fn upload<S, E>(
        &self,
        body: S,
        limit: u64,
        expected: Option<[u8; 32]>,
        uploader: &KeyId,
        now: u64,
    ) -> Result<(BlobId, u64), UploadError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        use futures_util::StreamExt as _;
        let body: ByteStream<String> = Box::pin(body.map(|c| c.map_err(|e| e.to_string())));
        let staged = self.blobs.stage(body, limit, expected).await?;
        let (id, size) = (staged.id().clone(), staged.size());
        let deadline = tokio::time::Instant::now() + TOMBSTONE_WAIT;
        loop {
            match self.meta.record_blob(&id, size, now, uploader).await {
                Err(StoreError::Conflict(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(TOMBSTONE_POLL).await;
                }
                other => break other?,
            }
        }
        if staged.commit().await?
            && let Some(t) = crate::telemetry::get()
        {
            t.upload_bytes.inc_by(size);
        }
        Ok((id, size))
    }

    /// The bytes of a blob: inline in the metadata database (committed with its version) or in
    /// the blob store. [`BlobError::NotFound`] if it is in neither.
    pub(crate) async fn blob(&self, id: &BlobId) -> Result<BlobBody, UploadError> {
        if let Some(data) = self.meta.blob_inline(id).await? {
            let len = data.len() as u64;
            let once = futures_util::stream::once(async move { Ok(Bytes::from(data)) });
            return Ok(BlobBody {
                stream: Box::pin(once),
                len,
            });
        }
        let (stream, len) = self.blobs.get(id).await?;
        Ok(BlobBody { stream, len })
    }

    /// The first `N` bytes of a blob (the sealed header), inline or in the blob store.
    pub(crate) async fn blob_prefix<const N: usize>(
        &self,
        id: &BlobId,
    ) -> Result<[u8; N], UploadError> {
        let bytes = match self.meta.blob_inline(id).await? {
            Some(data) => data,
            None => self.blobs.read_prefix(id, N).await?,
        };
        Ok(*bytes
            .first_chunk::<N>()
            .ok_or(UploadError::Blob(BlobError::TooShort))?)
    }

    /// Erases a document (PROTOCOL.md §11.3.2): [`ErasureStore::erase_document`], then the
    /// bytes of its stored blobs, then their rows. Returns the tombstone's log index.
    ///
    /// # Errors
    /// As [`ErasureStore::erase_document`]; the database failing to forget a deleted blob.
    pub(crate) async fn erase(&self, e: &NewErasure<'_>) -> Result<u64, StoreError> {
        let done = self.meta.erase_document(e).await?;
        for id in &done.blobs {
            // Committed: the tombstone is in the log and no row references the blob. A failure
            // here leaves the row marked; the collector deletes the bytes at its next round.
            if let Err(err) = self.blobs.remove(id).await {
                tracing::warn!(error = %err, "an erased document's blob is left to the collector");
                continue;
            }
            self.meta.forget_deleted_blob(id).await?;
        }
        Ok(done.index)
    }

    /// Deletes up to `limit` pending uploads stored before `before` (the garbage collector),
    /// by tombstone, safe with several instances on one database and bucket (issue 11 §4):
    /// marks the row as being deleted (refused if a commit references it), deletes the bytes,
    /// then the row. A collection interrupted between the steps is resumed by the next one.
    /// Returns how many were deleted.
    pub(crate) async fn collect_pending(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<usize, StoreError> {
        let stale = self.meta.stale_pending_blobs(before, limit).await?;
        let mut deleted = 0;
        for id in stale {
            if self.meta.mark_blob_deleting(&id, before).await? {
                self.blobs
                    .remove(&id)
                    .await
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                if self.meta.forget_deleted_blob(&id).await? {
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Streams a blob's bytes into the blob store for `serment restore`, refusing them unless
    /// they are `len` bytes whose SHA-256 is `expected` ([`BlobError::DigestMismatch`],
    /// [`BlobError::TooLarge`]): memory is one piece of the stream at a time.
    ///
    /// # Errors
    /// [`BlobError`] if the blob store fails or the bytes are not the expected ones.
    pub(crate) async fn put_blob_stream(
        &self,
        body: ByteStream<String>,
        len: u64,
        expected: [u8; 32],
    ) -> Result<BlobId, BlobError> {
        let staged = self.blobs.stage(body, len, Some(expected)).await?;
        if staged.size() != len {
            return Err(BlobError::DigestMismatch);
        }
        let id = staged.id().clone();
        staged.commit().await?;
        Ok(id)
    }

    /// Streams a blob's bytes into the blob store for `serment restore` without making them
    /// visible: the caller checks what [`StagedBlob::id`] and [`StagedBlob::size`] say (and the
    /// bytes' other checks, made as they streamed by) before [`StagedBlob::commit`]; dropping it
    /// discards them. At most `limit` bytes ([`BlobError::TooLarge`]).
    ///
    /// # Errors
    /// [`BlobError`] if the blob store or the stream fails.
    pub(crate) async fn stage_blob(
        &self,
        body: ByteStream<String>,
        limit: u64,
    ) -> Result<Box<dyn StagedBlob>, BlobError> {
        self.blobs.stage(body, limit, None).await
    }

    /// Removes a blob [`Store::stage_blob`] committed that the restore does not keep (no row
    /// names it yet).
    ///
    /// # Errors
    /// [`BlobError`] if the blob store fails.
    pub(crate) async fn remove_restored_blob(&self, id: [u8; 32]) -> Result<(), BlobError> {
        self.blobs.remove(&BlobId::of_digest(id)).await
    }

    /// Closes the database connections (after the server stopped).
    pub(crate) async fn close(&self) {
        self.meta.close().await;
    }
}

/// A metadata database named by the `database_url` setting (issue 11 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`, as sqlx (and libpq) read it.
    Postgres(String),
    /// `sqlite://PATH`: the database file.
    Sqlite(std::path::PathBuf),
}

impl DatabaseUrl {
    /// Parses a `database_url`; `None` for any other scheme or an empty SQLite path.
    pub(crate) fn parse(url: &str) -> Option<DatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DatabaseUrl::Postgres(url.to_owned()))
        } else {
            url.strip_prefix("sqlite://")
                .filter(|p| !p.is_empty())
                .map(|p| DatabaseUrl::Sqlite(p.into()))
        }
    }
}

/// Why storing or reading a blob failed: the blob store or the metadata store.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    /// The blob store (or the body) failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The metadata store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

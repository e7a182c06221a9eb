//! Storage: the metadata database and the blob directory.
//!
//! Everything that names a database crate lives under this module (the vaultwarden habit): the HTTP
//! handlers speak only in the types below. Today the one backend is SQLite ([`sqlite`]); PostgreSQL
//! will come as a sibling module with its own `migrations/postgresql/`, behind the same [`Store`]
//! methods. The SQL is kept portable (`ON CONFLICT`, `RETURNING`, no SQLite-only functions).
//!
//! Ids are stored as lowercase hex text built from typed ids ([`KeyId`], [`DocId`], [`BlobId`]);
//! times are seconds since the Unix epoch.

pub(crate) mod blobs;
pub(crate) mod log_key;
mod sqlite;

use std::path::Path;

use serment_core::{DocId, KeyId};

pub(crate) use blobs::{BlobError, BlobId, BlobStore};
pub(crate) use sqlite::CommitJob;

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
    /// The backend failed (details are logged, never sent to clients).
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    pub(crate) device_id: String,
    pub(crate) identity_id: String,
    pub(crate) record: Vec<u8>,
}

/// One committed document version, with the size of its blob.
#[derive(Debug, Clone)]
pub(crate) struct VersionRow {
    pub(crate) doc_id: String,
    pub(crate) doc_version: u32,
    pub(crate) author_device: String,
    pub(crate) author_identity: String,
    pub(crate) blob_id: String,
    pub(crate) size: u64,
    pub(crate) created_at: u64,
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
    pub(crate) device_id: String,
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

/// The metadata database and the blob directory of one data directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    db: sqlite::Db,
    blobs: BlobStore,
    /// Uploads hold it shared while they store a blob and record its row; the garbage
    /// collector holds it exclusively while it deletes a row and its file. So the collector
    /// never deletes a file an upload of the same bytes has just found in place and recorded.
    upload_gate: std::sync::Arc<tokio::sync::RwLock<()>>,
}

impl Store {
    /// Opens (creating if missing) `serment.db` in `data_dir`, runs the embedded migrations, and
    /// prepares `blobs/` and `tmp/` (emptying `tmp/` of uploads interrupted by a crash).
    pub(crate) async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let blobs = BlobStore::open(data_dir)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        let db = sqlite::Db::open(&data_dir.join(DB_FILE)).await?;
        Ok(Store {
            db,
            blobs,
            upload_gate: std::sync::Arc::default(),
        })
    }

    /// The gate between uploads (shared) and the garbage collector (exclusive).
    pub(crate) fn upload_gate(&self) -> &tokio::sync::RwLock<()> {
        &self.upload_gate
    }

    /// The blob directory.
    pub(crate) fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The database.
    pub(crate) fn db(&self) -> &sqlite::Db {
        &self.db
    }

    /// The log's checkpoint key (PROTOCOL.md §11.4).
    pub(crate) fn log_signer(&self) -> &serment_core::log::note::NoteSigner {
        self.db.log_signer()
    }

    /// Closes the database connections (after the server stopped).
    pub(crate) async fn close(&self) {
        self.db.close().await;
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

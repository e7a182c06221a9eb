//! Row helpers shared by the SQL files, written once for every SQL backend (included by each
//! backend module; `super` is the backend): error mapping, integer conversions between the
//! database's `BIGINT` and the store's unsigned values, and the version row.

use serment_core::{DocId, KeyId};
use sqlx::Row as _;

use super::DB;
use crate::store::{BlobId, StoreError, VersionRow};

/// A backend error (logged, never sent to clients).
pub(super) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Maps a unique-key violation to [`StoreError::Conflict`], anything else to a backend error.
pub(super) fn conflict_on_unique(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what),
        _ => backend(e),
    }
}

/// A stored `BIGINT` from an unsigned value (a backend error past `i64::MAX`).
pub(super) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(backend)
}

/// An unsigned value from a stored `BIGINT` (a backend error if negative).
pub(super) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(backend)
}

/// A `u32` (a document version, an epoch) from a stored `BIGINT`.
pub(super) fn to_u32(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(backend)
}

/// A stored id that does not parse: the database was altered (a backend error, logged).
#[derive(Debug, thiserror::Error)]
#[error("column {column}: not a stored {what} id")]
pub(super) struct BadId {
    column: String,
    what: &'static str,
}

/// Parses the id stored as text in `column` with `parse` (a [`BadId`] backend error if it does
/// not parse).
fn id_in<T>(
    text: &str,
    column: &str,
    what: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| {
        backend(BadId {
            column: column.to_owned(),
            what,
        })
    })
}

/// A device or identity id read as text from `column` (64 lowercase hex).
pub(super) fn key_id(text: &str, column: &str) -> Result<KeyId, StoreError> {
    id_in(text, column, "key", |t| KeyId::from_hex(t).ok())
}

/// The device or identity id (64 lowercase hex) in `column`.
pub(super) fn key_id_at(
    row: &<DB as sqlx::Database>::Row,
    column: &str,
) -> Result<KeyId, StoreError> {
    key_id(&row.try_get::<String, _>(column)?, column)
}

/// The document id (32 lowercase hex) in `column`.
pub(super) fn doc_id_at(
    row: &<DB as sqlx::Database>::Row,
    column: &str,
) -> Result<DocId, StoreError> {
    let text: String = row.try_get(column)?;
    id_in(&text, column, "document", |t| DocId::from_hex(t).ok())
}

/// The blob id (64 lowercase hex) in `column`.
pub(super) fn blob_id_at(
    row: &<DB as sqlx::Database>::Row,
    column: &str,
) -> Result<BlobId, StoreError> {
    let text: String = row.try_get(column)?;
    id_in(&text, column, "blob", BlobId::parse)
}

/// The columns [`version_row`] reads: `documents d` joined with `blobs b`.
pub(super) const VERSION_COLUMNS: &str = "d.doc_id, d.doc_version, d.author_device, \
     d.author_identity, d.blob_id, b.size, d.created_at";

/// A document version from a row of [`VERSION_COLUMNS`].
pub(super) fn version_row(row: &<DB as sqlx::Database>::Row) -> Result<VersionRow, StoreError> {
    Ok(VersionRow {
        doc_id: doc_id_at(row, "doc_id")?,
        doc_version: to_u32(row.try_get("doc_version")?)?,
        author_device: key_id_at(row, "author_device")?,
        author_identity: key_id_at(row, "author_identity")?,
        blob_id: blob_id_at(row, "blob_id")?,
        size: to_u64(row.try_get("size")?)?,
        created_at: to_u64(row.try_get("created_at")?)?,
    })
}

/// The bytes of every recorded blob (inline or in the blob store), for `/metrics`.
pub(super) async fn blob_bytes(pool: &super::Pool) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs")
        .fetch_one(pool)
        .await?;
    to_u64(n)
}

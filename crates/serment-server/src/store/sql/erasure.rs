//! Erasure (PROTOCOL.md §11.3.2, issue 12 §5), written once for every SQL backend (included by
//! each backend module; `super` is the backend). SQL uses `$N` placeholders.
//!
//! The tombstone is the log entry itself (kind 9, subject the document): "is this document
//! erased?" reads `log_entries` through its `(subject, idx)` index, so no other table can drift
//! from the log.

use serment_core::log::entry::{EntryKind, Subject};
use serment_core::{DocId, KeyId};
use sqlx::Row as _;

use super::{Db, to_u64};
use crate::store::log_service::{LogAppender, subject_key};
use crate::store::{BlobId, ErasedDocument, ErasureStore, LogRead, NewErasure, StoreError};

#[async_trait::async_trait]
impl ErasureStore for Db {
    async fn erasure(&self, doc_id: &DocId) -> Result<Option<LogRead>, StoreError> {
        let row = sqlx::query(
            "SELECT idx, entry FROM log_entries WHERE subject = $1 AND kind = $2 \
             ORDER BY idx LIMIT 1",
        )
        .bind(subject_key(&Subject::Document(*doc_id)))
        .bind(i64::from(EntryKind::Erasure as u8))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LogRead {
                index: to_u64(r.try_get("idx")?)?,
                entry: r.try_get("entry")?,
            })
        })
        .transpose()
    }

    async fn erased_participant(
        &self,
        doc_id: &DocId,
        device_id: &KeyId,
        identity_id: &KeyId,
    ) -> Result<bool, StoreError> {
        let subject = subject_key(&Subject::Document(*doc_id));
        // A device of the identity that erased it (the author's), or a device the document's
        // chain names as the recipient of a wrap (a former recipient).
        let hit = sqlx::query(
            "SELECT 1 AS one FROM log_entries e JOIN devices d ON d.device_id = e.device_id \
             WHERE e.subject = $1 AND e.kind = $2 AND d.identity_id = $3 \
             UNION ALL \
             SELECT 1 AS one FROM log_entries e \
             WHERE e.subject = $1 AND e.kind = $4 AND e.device_id = $5 \
             LIMIT 1",
        )
        .bind(&subject)
        .bind(i64::from(EntryKind::Erasure as u8))
        .bind(identity_id.to_string())
        .bind(i64::from(EntryKind::Wrap as u8))
        .bind(device_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(hit.is_some())
    }

    async fn erase_document(&self, e: &NewErasure<'_>) -> Result<ErasedDocument, StoreError> {
        let doc_id = e.doc_id.to_string();
        let requester = e.requester.to_string();
        let mut tx = self.begin().await?;
        let subject = subject_key(&Subject::Document(e.doc_id));
        let already: Option<i64> = sqlx::query_scalar(
            "SELECT idx FROM log_entries WHERE subject = $1 AND kind = $2 LIMIT 1",
        )
        .bind(&subject)
        .bind(i64::from(EntryKind::Erasure as u8))
        .fetch_optional(&mut *tx)
        .await?;
        if already.is_some() {
            return Err(StoreError::Erased);
        }
        let owner: Option<String> =
            sqlx::query_scalar("SELECT author_identity FROM documents WHERE doc_id = $1 LIMIT 1")
                .bind(&doc_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(owner) = owner else {
            return Err(StoreError::NotFound);
        };
        if owner != e.requester_identity.to_string() {
            return Err(StoreError::Forbidden(
                "only a device of the document's author may erase it (PROTOCOL.md §11.3.2)",
            ));
        }
        let blob_ids: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT blob_id FROM documents WHERE doc_id = $1")
                .bind(&doc_id)
                .fetch_all(&mut *tx)
                .await?;
        // Every row that names the document, children first (foreign keys).
        for sql in [
            "DELETE FROM accesses WHERE doc_id = $1",
            "DELETE FROM team_wraps WHERE doc_id = $1",
            "DELETE FROM provisional_wraps WHERE doc_id = $1",
            "DELETE FROM wraps WHERE doc_id = $1",
            "DELETE FROM documents WHERE doc_id = $1",
        ] {
            sqlx::query(sql).bind(&doc_id).execute(&mut *tx).await?;
        }
        // Its blobs, unless another document holds the same bytes: an inline blob goes with its
        // row; a stored one is marked as being deleted (the collector's tombstone, charged to
        // the requester) so that a crash before its bytes go leaves it to the collector
        // (`gc.rs`), and no commit can reference it again.
        let mut to_delete = Vec::new();
        for b in blob_ids {
            let shared: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM documents WHERE blob_id = $1 LIMIT 1")
                    .bind(&b)
                    .fetch_optional(&mut *tx)
                    .await?;
            if shared.is_some() {
                continue;
            }
            let inline: Option<bool> =
                sqlx::query_scalar("SELECT data IS NOT NULL FROM blobs WHERE blob_id = $1")
                    .bind(&b)
                    .fetch_optional(&mut *tx)
                    .await?;
            match inline {
                Some(true) => {
                    sqlx::query("DELETE FROM blobs WHERE blob_id = $1")
                        .bind(&b)
                        .execute(&mut *tx)
                        .await?;
                }
                Some(false) => {
                    sqlx::query(
                        "UPDATE blobs SET uploader = $2, deleting = 1, created_at = 0 \
                         WHERE blob_id = $1",
                    )
                    .bind(&b)
                    .bind(&requester)
                    .execute(&mut *tx)
                    .await?;
                    to_delete.extend(BlobId::parse(&b));
                }
                None => {}
            }
        }
        let mut log = LogAppender::begin(&mut tx).await?;
        let index = log
            .append(
                &mut tx,
                EntryKind::Erasure,
                &Subject::Document(e.doc_id),
                Some(&requester),
                e.tombstone,
                e.now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(ErasedDocument {
            index,
            blobs: to_delete,
        })
    }
}

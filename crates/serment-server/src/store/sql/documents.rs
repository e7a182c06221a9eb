//! Blob rows, document versions, wraps and accesses (PROTOCOL.md §7, §8.3), written once for
//! every SQL backend (included by each backend module; `super` is the backend). SQL uses `$N`
//! placeholders.

use serment_core::log::entry::{Access, EntryKind, Subject};
use serment_core::{DocId, KeyId};
use sqlx::{AssertSqlSafe, Row as _};

use super::commit_batch::{WrapRow, insert_wrap_rows, known_devices};
use super::{Db, Tx, VERSION_COLUMNS, backend, key_id_at, to_i64, to_u32, to_u64, version_row};
use crate::store::log_service::LogAppender;
use crate::store::{
    AccessRow, BlobId, CommitJob, DocumentStore, JobCommit, LogRead, MAX_ACCESS_ROWS, MAX_WRAPS,
    NewAccess, NewWrap, ReaderWrap, StoreError, VersionRead, VersionRow,
};

#[async_trait::async_trait]
impl DocumentStore for Db {
    // ---- §8.3 blobs and documents ------------------------------------------------------------

    /// Records an uploaded blob (a no-op if it is already recorded).
    async fn record_blob(
        &self,
        blob_id: &BlobId,
        size: u64,
        now: u64,
        uploader: &KeyId,
    ) -> Result<(), StoreError> {
        let uploader = uploader.to_string();
        let uploader = uploader.as_str();
        // Bytes already stored keep their row: a blob some commit references stays committed
        // (no uploader), a pending one stays charged to its first uploader, its age restarting
        // now; one being deleted is left alone (and refused below).
        let now = to_i64(now)?;
        sqlx::query(
            "INSERT INTO blobs (blob_id, size, created_at, uploader) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (blob_id) DO UPDATE SET created_at = excluded.created_at \
             WHERE blobs.uploader IS NOT NULL AND blobs.deleting = 0 \
             AND blobs.created_at < excluded.created_at",
        )
        .bind(blob_id.as_str())
        .bind(to_i64(size)?)
        .bind(now)
        .bind(uploader)
        .execute(&self.writer)
        .await?;
        let deleting: Option<i64> =
            sqlx::query_scalar("SELECT deleting FROM blobs WHERE blob_id = $1")
                .bind(blob_id.as_str())
                .fetch_optional(&self.writer)
                .await?;
        match deleting {
            Some(0) => Ok(()),
            _ => Err(StoreError::Conflict(
                "this blob is being deleted (an upload no commit referenced in time): retry",
            )),
        }
    }

    /// The uploads of `device` that no commit references yet: their number and total size in
    /// bytes (issue 10 §2, the pending-upload quota).
    async fn pending_uploads(&self, device: &KeyId) -> Result<(u64, u64), StoreError> {
        let device = device.to_string();
        let device = device.as_str();
        let (n, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs \
                 WHERE uploader = $1",
        )
        .bind(device)
        .fetch_one(&self.pool)
        .await?;
        Ok((to_u64(n)?, to_u64(bytes)?))
    }

    /// Up to `limit` pending uploads (referenced by no commit) stored before `before` (seconds),
    /// and the blobs marked as being deleted, oldest first.
    async fn stale_pending_blobs(
        &self,
        before: u64,
        limit: u32,
    ) -> Result<Vec<BlobId>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT blob_id FROM blobs WHERE uploader IS NOT NULL \
             AND (created_at < $1 OR deleting = 1) ORDER BY created_at LIMIT $2",
        )
        .bind(to_i64(before)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.iter().filter_map(|s| BlobId::parse(s)).collect())
    }

    /// The tombstone: under the log lock, so no commit batch (which holds it too and refuses
    /// marked blobs) can reference the blob between this check and the mark.
    async fn mark_blob_deleting(&self, blob_id: &BlobId, before: u64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE blobs SET deleting = 1 WHERE blob_id = $1 AND uploader IS NOT NULL \
             AND (deleting = 1 OR created_at < $2) \
             AND NOT EXISTS (SELECT 1 FROM documents WHERE documents.blob_id = blobs.blob_id)",
        )
        .bind(blob_id.as_str())
        .bind(to_i64(before)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a marked blob's row (its bytes are gone).
    async fn forget_deleted_blob(&self, blob_id: &BlobId) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM blobs WHERE blob_id = $1 AND deleting = 1 \
             AND NOT EXISTS (SELECT 1 FROM documents WHERE documents.blob_id = blobs.blob_id)",
        )
        .bind(blob_id.as_str())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The recorded size of a blob.
    async fn blob_size(&self, blob_id: &BlobId) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> =
            sqlx::query_scalar("SELECT size FROM blobs WHERE blob_id = $1 AND deleting = 0")
                .bind(blob_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        size.map(to_u64).transpose()
    }

    /// Commits a version and its wraps (with its blob, when inline), batched with the commits
    /// waiting at the same moment ([`super::commit_batch`]).
    ///
    /// # Errors
    /// [`StoreError::Forbidden`] if earlier versions of the document belong to another identity,
    /// [`StoreError::Conflict`] if the version exists, [`StoreError::UnknownDevice`] if a
    /// recipient is not registered, [`StoreError::Backend`].
    async fn commit_version(&self, job: CommitJob) -> Result<JobCommit, StoreError> {
        self.committer.commit(job).await
    }

    /// The bytes of a blob stored inline (committed with its document, §8.3); `None` if the
    /// blob is unknown or stored as a file.
    async fn blob_inline(&self, blob_id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        let data: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT data FROM blobs WHERE blob_id = $1")
                .bind(blob_id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(data.flatten())
    }

    /// Adds wraps to an existing version, keeping at most [`MAX_WRAPS`] per version. A hybrid
    /// wrap replaces the recipient's classical one (PROTOCOL.md §7.2).
    async fn add_wraps(
        &self,
        doc: &DocId,
        doc_version: u32,
        wraps: &[NewWrap],
        now: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let doc_id = doc.to_string();
        let version = i64::from(doc_version);
        let mut tx = self.begin().await?;
        // `serment rewrap --pq` (PROTOCOL.md §7.2, issue 15): a suite-3 (X-Wing) wrap for a
        // recipient that holds a suite-1 wrap of this version replaces it. The classical row is
        // deleted in the transaction that logs the hybrid wrap entry, so the log records the
        // replacement; any other wrap for a recipient that holds one is still a conflict.
        for w in wraps.iter().filter(|w| w.bytes.get(6..8) == Some(&[0, 3])) {
            let recipient = w.recipient.to_string();
            let held: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT wrap FROM wraps WHERE doc_id = $1 AND doc_version = $2 \
                 AND recipient_device = $3",
            )
            .bind(&doc_id)
            .bind(version)
            .bind(&recipient)
            .fetch_optional(&mut *tx)
            .await?;
            if held.as_deref().and_then(|h| h.get(6..8)) == Some(&[0, 1]) {
                sqlx::query(
                    "DELETE FROM wraps WHERE doc_id = $1 AND doc_version = $2 \
                     AND recipient_device = $3",
                )
                .bind(&doc_id)
                .bind(version)
                .bind(&recipient)
                .execute(&mut *tx)
                .await?;
            }
        }
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM wraps WHERE doc_id = $1 AND doc_version = $2")
                .bind(&doc_id)
                .bind(version)
                .fetch_one(&mut *tx)
                .await?;
        let total = usize::try_from(count).map_err(backend)? + wraps.len();
        if total > MAX_WRAPS {
            return Err(StoreError::TooManyWraps);
        }
        let mut log = LogAppender::begin(&mut tx).await?;
        let indices = Self::insert_wraps(&mut tx, &mut log, doc, version, wraps, now).await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(indices)
    }

    /// One version.
    async fn version(
        &self,
        doc_id: &DocId,
        doc_version: u32,
    ) -> Result<Option<VersionRow>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM documents d JOIN blobs b ON b.blob_id = d.blob_id \
             WHERE d.doc_id = $1 AND d.doc_version = $2"
        );
        // Only VERSION_COLUMNS, a constant, is interpolated; values are bound.
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(doc_id.to_string())
            .bind(i64::from(doc_version))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(version_row).transpose()
    }

    async fn version_for_reader(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        device_id: &KeyId,
    ) -> Result<Option<VersionRead>, StoreError> {
        // The version, left-joined with the reader's candidate wraps (its own first, then the
        // newest to a team it belongs to) and the chosen wrap's log entry: one statement.
        let sql = format!(
            "SELECT {VERSION_COLUMNS}, x.wrap AS reader_wrap, x.log_idx AS reader_idx, \
               e.entry AS reader_entry \
             FROM documents d JOIN blobs b ON b.blob_id = d.blob_id \
             LEFT JOIN (\
               SELECT 0 AS pri, w.wrap, w.log_idx FROM wraps w \
                 WHERE w.doc_id = $1 AND w.doc_version = $2 AND w.recipient_device = $3 \
               UNION ALL \
               SELECT 1 AS pri, tw.wrap, tw.log_idx FROM team_wraps tw \
                 JOIN team_members m ON m.team = tw.team \
                 JOIN devices dv ON dv.handle = m.handle \
                 WHERE tw.doc_id = $1 AND tw.doc_version = $2 AND dv.device_id = $3 \
                 AND dv.revoked = 0\
             ) x ON 1 = 1 \
             LEFT JOIN log_entries e ON e.idx = x.log_idx \
             WHERE d.doc_id = $1 AND d.doc_version = $2 \
             ORDER BY x.pri, x.log_idx DESC LIMIT 1"
        );
        // Only VERSION_COLUMNS, a constant, is interpolated; values are bound.
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(doc_id.to_string())
            .bind(i64::from(doc_version))
            .bind(device_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let wrap = match r.try_get::<Option<Vec<u8>>, _>("reader_wrap")? {
            None => None,
            Some(bytes) => {
                let idx: Option<i64> = r.try_get("reader_idx")?;
                let entry: Option<Vec<u8>> = r.try_get("reader_entry")?;
                let entry = match (idx, entry) {
                    (Some(i), Some(entry)) => Some(LogRead {
                        index: to_u64(i)?,
                        entry,
                    }),
                    _ => None,
                };
                Some(ReaderWrap { bytes, entry })
            }
        };
        Ok(Some(VersionRead {
            row: version_row(&r)?,
            wrap,
        }))
    }

    /// The versions a device may read: authored by its identity, or holding a wrap for it.
    async fn readable_versions(
        &self,
        device_id: &KeyId,
        identity_id: &KeyId,
    ) -> Result<Vec<VersionRow>, StoreError> {
        let device_id = device_id.to_string();
        let device_id = device_id.as_str();
        let identity_id = identity_id.to_string();
        let identity_id = identity_id.as_str();
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM documents d JOIN blobs b ON b.blob_id = d.blob_id \
             WHERE d.author_identity = $1 OR EXISTS (SELECT 1 FROM wraps w \
               WHERE w.doc_id = d.doc_id AND w.doc_version = d.doc_version \
               AND w.recipient_device = $2) \
             OR EXISTS (SELECT 1 FROM team_wraps tw JOIN team_members m ON m.team = tw.team \
               JOIN devices dv ON dv.handle = m.handle \
               WHERE tw.doc_id = d.doc_id AND tw.doc_version = d.doc_version \
               AND dv.device_id = $2 AND dv.revoked = 0) \
             ORDER BY d.created_at, d.doc_id, d.doc_version"
        );
        // Only VERSION_COLUMNS, a constant, is interpolated; values are bound.
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(identity_id)
            .bind(device_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(version_row).collect()
    }

    /// The wrap held by `device_id` for a version, with the log index of its entry.
    async fn wrap_with_index(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        device_id: &KeyId,
    ) -> Result<Option<(Vec<u8>, Option<u64>)>, StoreError> {
        let device_id = device_id.to_string();
        let device_id = device_id.as_str();
        let row = sqlx::query(
            "SELECT wrap, log_idx FROM wraps \
             WHERE doc_id = $1 AND doc_version = $2 AND recipient_device = $3",
        )
        .bind(doc_id.to_string())
        .bind(i64::from(doc_version))
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let idx: Option<i64> = r.try_get("log_idx")?;
            Ok((r.try_get("wrap")?, idx.map(to_u64).transpose()?))
        })
        .transpose()
    }

    /// Whether the device (or its identity, as author) takes part in any version of `doc_id`;
    /// `None` if the document does not exist.
    async fn is_participant(
        &self,
        doc_id: &DocId,
        device_id: &KeyId,
        identity_id: &KeyId,
    ) -> Result<Option<bool>, StoreError> {
        let (doc, device, identity) = (*doc_id, *device_id, *identity_id);
        let device_id = device_id.to_string();
        let device_id = device_id.as_str();
        let identity_id = identity_id.to_string();
        let identity_id = identity_id.as_str();
        let doc_id = doc_id.to_string();
        let owner: Option<String> =
            sqlx::query_scalar("SELECT author_identity FROM documents WHERE doc_id = $1 LIMIT 1")
                .bind(&doc_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(owner) = owner else {
            // An erased document's log stays readable to its author and former recipients
            // (PROTOCOL.md §11.3.2).
            use crate::store::ErasureStore as _;
            return Ok(self
                .erased_participant(&doc, &device, &identity)
                .await?
                .then_some(true));
        };
        if owner == identity_id {
            return Ok(Some(true));
        }
        // A wrap for the device, or a team wrap to a team its handle is a member of (§12.3).
        let wrap = sqlx::query(
            "SELECT 1 AS one FROM wraps WHERE doc_id = $1 AND recipient_device = $2 \
             UNION ALL \
             SELECT 1 AS one FROM team_wraps tw JOIN team_members m ON m.team = tw.team \
             JOIN devices dv ON dv.handle = m.handle \
             WHERE tw.doc_id = $1 AND dv.device_id = $2 AND dv.revoked = 0 \
             LIMIT 1",
        )
        .bind(&doc_id)
        .bind(device_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(Some(wrap.is_some()))
    }

    /// Records one read (PROTOCOL.md §8.3) and appends its access entry, signed by the log key
    /// and carrying the reader's receipt if it sent one (§11.5), with a checkpoint, in one
    /// transaction. Returns the entry's log index. A receipt nonce used before is a
    /// [`StoreError::Conflict`].
    async fn record_access(&self, a: &NewAccess) -> Result<u64, StoreError> {
        let device_id = a.device_id.to_string();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO accesses (doc_id, doc_version, device_id, what, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(a.doc_id.to_string())
        .bind(i64::from(a.doc_version))
        .bind(&device_id)
        .bind(a.what.as_str())
        .bind(to_i64(a.now)?)
        .execute(&mut *tx)
        .await?;
        let (at, nonce, sig) = match &a.receipt {
            Some(r) => (r.at, r.nonce, Some(r.signature)),
            None => {
                let mut nonce = [0u8; 16];
                getrandom::fill(&mut nonce)
                    .map_err(|e| StoreError::Backend(e.to_string().into()))?;
                (a.now, nonce, None)
            }
        };
        Self::use_nonce(&mut tx, &device_id, &nonce).await?;
        let payload = Access::sign(
            self.log.signing_key(),
            &a.doc_id,
            a.doc_version,
            a.what.log_kind(),
            &a.device_id,
            at,
            &nonce,
            sig.as_ref(),
        );
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::Access,
                &Subject::Document(a.doc_id),
                Some(&device_id),
                &payload,
                a.now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }

    /// The access rows of a document, oldest first (at most [`MAX_ACCESS_ROWS`], the most recent).
    async fn accesses(&self, doc_id: &DocId) -> Result<Vec<AccessRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT a.id, a.device_id, d.handle, a.what, a.at, a.doc_version \
             FROM accesses a JOIN devices d ON d.device_id = a.device_id \
             WHERE a.doc_id = $1 ORDER BY a.id DESC LIMIT $2) recent ORDER BY id",
        )
        .bind(doc_id.to_string())
        .bind(MAX_ACCESS_ROWS)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AccessRow {
                    device_id: key_id_at(r, "device_id")?,
                    handle: r.try_get("handle")?,
                    what: r.try_get("what")?,
                    at: to_u64(r.try_get("at")?)?,
                    doc_version: to_u32(r.try_get("doc_version")?)?,
                })
            })
            .collect()
    }

    /// Removes `recipient`'s wrap of a version and appends the author's signed removal. Returns
    /// the entry's index.
    async fn remove_recipient(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        recipient: &KeyId,
        removal: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let recipient = recipient.to_string();
        let recipient = recipient.as_str();
        let mut tx = self.begin().await?;
        let gone = sqlx::query(
            "DELETE FROM wraps WHERE doc_id = $1 AND doc_version = $2 AND recipient_device = $3",
        )
        .bind(doc_id.to_string())
        .bind(i64::from(doc_version))
        .bind(recipient)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if gone != 1 {
            return Err(StoreError::Conflict(
                "this device holds no wrap for the version",
            ));
        }
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::Removal,
                &Subject::Document(*doc_id),
                Some(recipient),
                removal,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        let _ = to_i64(idx)?;
        Ok(idx)
    }
}

impl Db {
    /// Checks that every recipient is registered, appends one log entry per wrap (PROTOCOL.md
    /// §11.3) and inserts the wraps with their log indices; returns the indices.
    async fn insert_wraps(
        tx: &mut Tx,
        log: &mut LogAppender,
        doc: &DocId,
        doc_version: i64,
        wraps: &[NewWrap],
        now: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let doc_id = doc.to_string();
        let recipients: Vec<String> = wraps.iter().map(|w| w.recipient.to_string()).collect();
        let known = known_devices(tx, &recipients).await?;
        if let Some(r) = recipients.iter().find(|r| !known.contains(*r)) {
            return Err(StoreError::UnknownDevice(r.clone()));
        }
        let mut indices = Vec::with_capacity(wraps.len());
        let mut rows: Vec<WrapRow<'_>> = Vec::with_capacity(wraps.len());
        for (w, recipient) in wraps.iter().zip(recipients) {
            let idx = log
                .append(
                    tx,
                    EntryKind::Wrap,
                    &Subject::Document(*doc),
                    Some(&recipient),
                    &w.bytes,
                    now,
                )
                .await?;
            indices.push(idx);
            rows.push((
                doc_id.clone(),
                doc_version,
                recipient,
                w.sharer.to_string(),
                &w.bytes,
                to_i64(idx)?,
            ));
        }
        insert_wrap_rows(tx, &rows).await?;
        Ok(indices)
    }
}

//! Social recovery (PROTOCOL.md §4.3, issue 17 §2), written once for every SQL backend
//! (included by each backend module; `super` is the backend). SQL uses `$N` placeholders.
//! Every entry goes to the handle's social chain ([`Subject::Social`]) in the transaction that
//! writes its rows.

use serment_core::log::entry::{EntryKind, Subject};
use serment_core::social::{MAX_OPEN_REQUESTS, REQUEST_COMPLETION_WINDOW};

use super::{Db, conflict_on_unique, to_i64, to_u32, to_u64};
use crate::store::log_service::LogAppender;
use crate::store::{NewSocial, SocialRequestRow, SocialRow, SocialStore, StoreError};

#[async_trait::async_trait]
impl SocialStore for Db {
    async fn put_social(&self, s: &NewSocial<'_>) -> Result<u64, StoreError> {
        let identity_id = s.identity_id.to_string();
        let recovery_device = s.recovery_device.to_string();
        let mut tx = self.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM devices WHERE device_id = $1 AND identity_id = $2 AND handle = $3 \
             AND revoked = 0",
        )
        .bind(&recovery_device)
        .bind(&identity_id)
        .bind(s.handle)
        .fetch_optional(&mut *tx)
        .await?;
        if current.is_none() {
            return Err(StoreError::Conflict(
                "the social recovery device is not a current device of this identity and handle",
            ));
        }
        sqlx::query(
            "INSERT INTO social_escrows (handle, identity_id, recovery_device, contacts_hash, \
             threshold, waiting_period, escrow, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (handle) DO UPDATE SET identity_id = excluded.identity_id, \
             recovery_device = excluded.recovery_device, contacts_hash = excluded.contacts_hash, \
             threshold = excluded.threshold, waiting_period = excluded.waiting_period, \
             escrow = excluded.escrow, updated_at = excluded.updated_at",
        )
        .bind(s.handle)
        .bind(&identity_id)
        .bind(&recovery_device)
        .bind(s.contacts_hash)
        .bind(i64::from(s.threshold))
        .bind(to_i64(s.waiting_period)?)
        .bind(s.escrow)
        .bind(to_i64(s.now)?)
        .execute(&mut *tx)
        .await?;
        // The previous set's shares open nothing any more (another secret): drop them.
        sqlx::query("DELETE FROM social_shares WHERE handle = $1 AND request_id = ''")
            .bind(s.handle)
            .execute(&mut *tx)
            .await?;
        for (recipient, sharer, contact, wrap) in &s.shares {
            sqlx::query(
                "INSERT INTO social_shares (handle, request_id, recipient, sharer, contact, share) \
                 VALUES ($1, '', $2, $3, $4, $5)",
            )
            .bind(s.handle)
            .bind(recipient)
            .bind(sharer)
            .bind(contact)
            .bind(wrap)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, "two share wraps to the same device"))?;
        }
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::RecoveryContacts,
                &Subject::Social(s.handle.to_owned()),
                Some(&recovery_device),
                s.entry,
                s.now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }

    async fn social(&self, handle: &str) -> Result<Option<SocialRow>, StoreError> {
        let row: Option<(String, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT contacts_hash, threshold, waiting_period, escrow FROM social_escrows \
             WHERE handle = $1",
        )
        .bind(handle)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(contacts_hash, t, w, escrow)| {
            Ok(SocialRow {
                contacts_hash,
                threshold: to_u32(t)?,
                waiting_period: to_u64(w)?,
                escrow,
            })
        })
        .transpose()
    }

    async fn social_shares(
        &self,
        handle: &str,
        request_id: &str,
        recipient: &str,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT share FROM social_shares WHERE handle = $1 AND request_id = $2 \
             AND recipient = $3 ORDER BY contact, sharer",
        )
        .bind(handle)
        .bind(request_id)
        .bind(recipient)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn append_social_request(
        &self,
        handle: &str,
        request_id: &str,
        contacts_hash: &str,
        new_device: &str,
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let current: Option<(String, i64)> = sqlx::query_as(
            "SELECT contacts_hash, waiting_period FROM social_escrows WHERE handle = $1",
        )
        .bind(handle)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((current, waiting_period)) = current else {
            return Err(StoreError::Conflict(
                "the request does not rely on the handle's current recovery contacts",
            ));
        };
        if current != contacts_hash {
            return Err(StoreError::Conflict(
                "the request does not rely on the handle's current recovery contacts",
            ));
        }
        // REVIEW5 U1: at most MAX_OPEN_REQUESTS open requests per handle (on the current
        // contacts, not vetoed, completion window not over), counted in this transaction.
        let window = to_u64(waiting_period)?.saturating_add(REQUEST_COMPLETION_WINDOW);
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM social_requests WHERE handle = $1 AND contacts_hash = $2 \
             AND vetoed = 0 AND logged_at >= $3",
        )
        .bind(handle)
        .bind(contacts_hash)
        .bind(to_i64(now.saturating_sub(window))?)
        .fetch_one(&mut *tx)
        .await?;
        if open >= i64::from(MAX_OPEN_REQUESTS) {
            return Err(StoreError::OverCap(
                "this handle has as many open recovery requests as the server keeps (3): its \
                 owner can veto them, or they expire 7 days after their waiting period",
            ));
        }
        sqlx::query(
            "INSERT INTO social_requests (request_id, handle, contacts_hash, new_device, logged_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(request_id)
        .bind(handle)
        .bind(contacts_hash)
        .bind(new_device)
        .bind(to_i64(now)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, "this recovery request exists"))?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::RecoveryRequest,
                &Subject::Social(handle.to_owned()),
                Some(new_device),
                entry,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }

    async fn social_request(
        &self,
        request_id: &str,
    ) -> Result<Option<SocialRequestRow>, StoreError> {
        let row: Option<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT handle, contacts_hash, new_device, logged_at, vetoed FROM social_requests \
             WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((handle, contacts_hash, new_device, logged_at, vetoed)) = row else {
            return Ok(None);
        };
        let approvals: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT contact) FROM social_shares WHERE handle = $1 AND request_id = $2",
        )
        .bind(&handle)
        .bind(request_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(SocialRequestRow {
            handle,
            contacts_hash,
            new_device,
            logged_at: to_u64(logged_at)?,
            vetoed: vetoed != 0,
            approvals: to_u32(approvals)?,
        }))
    }

    async fn append_social_approval(
        &self,
        handle: &str,
        request_id: &str,
        contact: &str,
        sharer: &str,
        recipient: &str,
        share: &[u8],
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO social_shares (handle, request_id, recipient, sharer, contact, share) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(handle)
        .bind(request_id)
        .bind(recipient)
        .bind(sharer)
        .bind(contact)
        .bind(share)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_on_unique(e, "this device already approved this request"))?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::RecoveryApproval,
                &Subject::Social(handle.to_owned()),
                Some(sharer),
                entry,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }

    async fn append_social_veto(
        &self,
        handle: &str,
        request_id: &str,
        device: &str,
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE social_requests SET vetoed = 1 WHERE request_id = $1 AND handle = $2")
            .bind(request_id)
            .bind(handle)
            .execute(&mut *tx)
            .await?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::RecoveryVeto,
                &Subject::Social(handle.to_owned()),
                Some(device),
                entry,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }
}

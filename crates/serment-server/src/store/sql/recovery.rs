//! Recovery escrows and recovery entries (PROTOCOL.md §4.2, issue 17 §2), written once for every
//! SQL backend (included by each backend module; `super` is the backend). SQL uses `$N`
//! placeholders.

use serment_core::KeyId;
use serment_core::log::entry::{EntryKind, Subject};

use super::{Db, key_id, to_i64};
use crate::store::log_service::LogAppender;
use crate::store::{RecoveryStore, StoreError};

#[async_trait::async_trait]
impl RecoveryStore for Db {
    async fn put_escrow(
        &self,
        handle: &str,
        identity_id: &KeyId,
        recovery_device: &KeyId,
        escrow: &[u8],
        now: u64,
    ) -> Result<(), StoreError> {
        let identity_id = identity_id.to_string();
        let recovery_device = recovery_device.to_string();
        let mut tx = self.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM devices WHERE device_id = $1 AND identity_id = $2 AND handle = $3 \
             AND revoked = 0",
        )
        .bind(&recovery_device)
        .bind(&identity_id)
        .bind(handle)
        .fetch_optional(&mut *tx)
        .await?;
        if current.is_none() {
            return Err(StoreError::Conflict(
                "the recovery device is not a current device of this identity and handle",
            ));
        }
        sqlx::query(
            "INSERT INTO recovery_escrows (handle, identity_id, recovery_device, escrow, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (handle) DO UPDATE SET \
             identity_id = excluded.identity_id, recovery_device = excluded.recovery_device, \
             escrow = excluded.escrow, updated_at = excluded.updated_at",
        )
        .bind(handle)
        .bind(&identity_id)
        .bind(&recovery_device)
        .bind(escrow)
        .bind(to_i64(now)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn escrow(&self, handle: &str) -> Result<Option<(KeyId, Vec<u8>)>, StoreError> {
        let row: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT recovery_device, escrow FROM recovery_escrows WHERE handle = $1",
        )
        .bind(handle)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(d, e)| Ok((key_id(&d, "recovery_device")?, e)))
            .transpose()
    }

    async fn append_recovery(
        &self,
        handle: &str,
        identity_id: &KeyId,
        recovery_device: &KeyId,
        new_device: &KeyId,
        entry: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let identity_id = identity_id.to_string();
        let new_device = new_device.to_string();
        let mut tx = self.begin().await?;
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM devices WHERE device_id = $1 AND identity_id = $2 AND handle = $3 \
             AND revoked = 0",
        )
        .bind(&new_device)
        .bind(&identity_id)
        .bind(handle)
        .fetch_optional(&mut *tx)
        .await?;
        if current.is_none() {
            return Err(StoreError::Conflict(
                "the recovered device is not a current device of this identity and handle",
            ));
        }
        // The escrow this recovery opened is burnt: nobody fetches it again.
        sqlx::query("DELETE FROM recovery_escrows WHERE handle = $1 AND recovery_device = $2")
            .bind(handle)
            .bind(recovery_device.to_string())
            .execute(&mut *tx)
            .await?;
        // REVIEW4 T1: a social recovery (the social recovery device named) burns its contacts
        // set the same way: the escrow and every share wrap of the handle (the contacts'
        // distribution shares and the requests' re-wraps) are deleted with the kind-12 append,
        // so no request -- this one again or a later one -- is served the escrow any more.
        let burnt =
            sqlx::query("DELETE FROM social_escrows WHERE handle = $1 AND recovery_device = $2")
                .bind(handle)
                .bind(recovery_device.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if burnt > 0 {
            sqlx::query("DELETE FROM social_shares WHERE handle = $1")
                .bind(handle)
                .execute(&mut *tx)
                .await?;
        }
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::Recovery,
                &Subject::Handle(handle.to_owned()),
                Some(&new_device),
                entry,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }
}

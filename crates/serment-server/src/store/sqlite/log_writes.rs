//! Writes that exist only for the log (PROTOCOL.md §11.3): device revocations, identity
//! rotations and recipient removals, each appended in the transaction that applies it.

use serment_core::DocId;
use serment_core::log::entry::{EntryKind, Subject};

use super::log::LogAppender;
use super::{Db, to_i64};
use crate::store::{RotatedDevice, StoreError};

impl Db {
    /// Revokes `device_id` of `identity_id` under `handle`: the device leaves the directory, its
    /// sessions end, and the signed revocation is appended. Returns the entry's index.
    pub(crate) async fn revoke_device(
        &self,
        handle: &str,
        identity_id: &str,
        device_id: &str,
        revocation: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE devices SET revoked = 1 WHERE device_id = ? AND identity_id = ? AND handle = ? \
             AND revoked = 0",
        )
        .bind(device_id)
        .bind(identity_id)
        .bind(handle)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Err(StoreError::Conflict(
                "no such current device for this identity and handle",
            ));
        }
        sqlx::query("DELETE FROM sessions WHERE device_id = ?")
            .bind(device_id)
            .execute(&mut *tx)
            .await?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::Revocation,
                &Subject::Handle(handle.to_owned()),
                Some(device_id),
                revocation,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(idx)
    }

    /// Rotates the identity of `handle` from `old_identity` to `new_identity`: the handle is
    /// rebound, the devices in `keep` are re-certified (their records replaced), every other device
    /// of the old identity is revoked, and the documents it authored follow the new identity. The
    /// rotation and the new records are appended. Returns their indices.
    pub(crate) async fn rotate_identity(
        &self,
        handle: &str,
        old_identity: &str,
        new_identity: &str,
        rotation: &[u8],
        keep: &[RotatedDevice],
        now: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.begin().await?;
        let bound =
            sqlx::query("UPDATE handles SET identity_id = ? WHERE handle = ? AND identity_id = ?")
                .bind(new_identity)
                .bind(handle)
                .bind(old_identity)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if bound != 1 {
            return Err(StoreError::Conflict(
                "the handle is not bound to the rotated identity",
            ));
        }
        let subject = Subject::Handle(handle.to_owned());
        let mut log = LogAppender::begin(&mut tx).await?;
        let mut indices = vec![
            log.append(&mut tx, EntryKind::Rotation, &subject, None, rotation, now)
                .await?,
        ];
        for d in keep {
            let id = d.device_id.to_string();
            let changed = sqlx::query(
                "UPDATE devices SET identity_id = ?, record = ? \
                 WHERE device_id = ? AND identity_id = ? AND revoked = 0",
            )
            .bind(new_identity)
            .bind(&d.record)
            .bind(&id)
            .bind(old_identity)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                return Err(StoreError::Conflict(
                    "a re-certified device is not a current device of the old identity",
                ));
            }
            indices.push(
                log.append(
                    &mut tx,
                    EntryKind::Device,
                    &subject,
                    Some(&id),
                    &d.record,
                    now,
                )
                .await?,
            );
        }
        sqlx::query("UPDATE devices SET revoked = 1 WHERE identity_id = ? AND revoked = 0")
            .bind(old_identity)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE documents SET author_identity = ? WHERE author_identity = ?")
            .bind(new_identity)
            .bind(old_identity)
            .execute(&mut *tx)
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(indices)
    }

    /// Removes `recipient`'s wrap of a version and appends the author's signed removal. Returns
    /// the entry's index.
    pub(crate) async fn remove_recipient(
        &self,
        doc_id: &DocId,
        doc_version: u32,
        recipient: &str,
        removal: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let gone = sqlx::query(
            "DELETE FROM wraps WHERE doc_id = ? AND doc_version = ? AND recipient_device = ?",
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

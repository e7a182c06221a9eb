//! The directory (PROTOCOL.md §8.1), login (§8.2) and the identity changes the log records
//! (§11.3), written once for every SQL backend (included by each backend module; `super` is the
//! backend). SQL uses `$N` placeholders.

use serment_core::KeyId;
use serment_core::log::entry::{EntryKind, Subject};
use sqlx::Row as _;

use super::{Db, conflict_on_unique, key_id_at, to_i64};
use crate::store::log_service::LogAppender;
use crate::store::{
    DeviceRow, DirectoryStore, MAX_CHALLENGES_PER_DEVICE, NewDevice, Registered, RotatedDevice,
    StoreError,
};

#[async_trait::async_trait]
impl DirectoryStore for Db {
    // ---- §8.1 directory ----------------------------------------------------------------------

    /// Registers a device. The handle is bound to the first identity that registers it; the same
    /// record registered twice is [`Registered::Unchanged`]; the hybrid upgrade of a device's
    /// record (PROTOCOL.md §4, issue 15) replaces it and is logged ([`Registered::Created`]); any
    /// other record for an existing device id, or a handle bound to another identity, is
    /// [`StoreError::Conflict`].
    async fn register_device(&self, d: &NewDevice<'_>) -> Result<Registered, StoreError> {
        let device_id = d.device_id.to_string();
        let identity_id = d.identity_id.to_string();
        let mut tx = self.begin().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT identity_id FROM handles WHERE handle = $1")
                .bind(d.handle)
                .fetch_optional(&mut *tx)
                .await?;
        match owner {
            Some(owner) if owner != identity_id => {
                return Err(StoreError::Conflict(
                    "handle is bound to another identity for good (handles are never reassigned, \
                     so nobody can take over a name): choose another handle",
                ));
            }
            Some(_) => {}
            None => {
                sqlx::query("INSERT INTO handles (handle, identity_id) VALUES ($1, $2)")
                    .bind(d.handle)
                    .bind(&identity_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let existing: Option<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT record, revoked FROM devices WHERE device_id = $1")
                .bind(&device_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((existing, revoked)) = existing {
            if revoked != 0 {
                return Err(StoreError::Conflict(
                    "this device was revoked (a signed entry in the log) and cannot register again: \
                     create a new identity",
                ));
            } else if existing == d.record {
                return Ok(Registered::Unchanged);
            } else if !is_hybrid_upgrade(&existing, d.record) {
                return Err(StoreError::Conflict(
                    "device is already registered with another record",
                ));
            }
            // `serment id upgrade` (PROTOCOL.md §4, issue 15): the record that adds the device's
            // X-Wing key replaces the classical one, and is logged like any record.
            sqlx::query("UPDATE devices SET record = $1 WHERE device_id = $2")
                .bind(d.record)
                .bind(&device_id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO devices (device_id, identity_id, handle, record, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&device_id)
            .bind(&identity_id)
            .bind(d.handle)
            .bind(d.record)
            .bind(to_i64(d.created_at)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, "device is already registered"))?;
        }
        let mut log = LogAppender::begin(&mut tx).await?;
        log.append(
            &mut tx,
            EntryKind::Device,
            &Subject::Handle(d.handle.to_owned()),
            Some(&device_id),
            d.record,
            d.created_at,
        )
        .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(Registered::Created)
    }

    /// The records of the devices registered under `handle` by the identity that owns it, oldest
    /// first; `None` if the handle is not bound.
    async fn directory(&self, handle: &str) -> Result<Option<Vec<Vec<u8>>>, StoreError> {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT identity_id FROM handles WHERE handle = $1")
                .bind(handle)
                .fetch_optional(&self.pool)
                .await?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        let records = sqlx::query_scalar(
            "SELECT record FROM devices WHERE handle = $1 AND identity_id = $2 AND revoked = 0 \
             ORDER BY created_at, device_id",
        )
        .bind(handle)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(records))
    }

    /// Whether `device_id` was registered and then revoked (PROTOCOL.md §11.3).
    async fn device_revoked(&self, device_id: &KeyId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM devices WHERE device_id = $1 AND revoked = 1")
            .bind(device_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// A registered device.
    async fn device(&self, device_id: &KeyId) -> Result<Option<DeviceRow>, StoreError> {
        let row =
            sqlx::query(
                "SELECT device_id, identity_id, record FROM devices WHERE device_id = $1 AND revoked = 0",
            )
                .bind(device_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(DeviceRow {
                device_id: key_id_at(&r, "device_id")?,
                identity_id: key_id_at(&r, "identity_id")?,
                record: r.try_get("record")?,
            })
        })
        .transpose()
    }

    // ---- §8.2 authentication -----------------------------------------------------------------

    /// [`Self::insert_challenge`] with the table's cap as a parameter (tests use a small one).
    async fn insert_challenge_capped(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
        max_total: i64,
    ) -> Result<(), StoreError> {
        let device_id = device_id.to_string();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM challenges WHERE expires_at <= $1")
            .bind(to_i64(now)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM challenges WHERE device_id = $1 AND challenge_hash NOT IN \
             (SELECT challenge_hash FROM challenges WHERE device_id = $2 \
              ORDER BY expires_at DESC LIMIT $3)",
        )
        .bind(&device_id)
        .bind(&device_id)
        .bind(MAX_CHALLENGES_PER_DEVICE - 1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM challenges WHERE challenge_hash IN \
             (SELECT challenge_hash FROM challenges ORDER BY expires_at ASC \
              LIMIT (SELECT CASE WHEN COUNT(*) > $1 THEN COUNT(*) - $1 ELSE 0 END \
                     FROM challenges))",
        )
        .bind(max_total.saturating_sub(1))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO challenges (challenge_hash, device_id, expires_at) VALUES ($1, $2, $3)",
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
    async fn take_challenge(
        &self,
        challenge_hash: &str,
        device_id: &KeyId,
        now: u64,
    ) -> Result<bool, StoreError> {
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM challenges WHERE challenge_hash = $1 AND device_id = $2 RETURNING expires_at",
        )
        .bind(challenge_hash)
        .bind(device_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(expires_at.is_some_and(|t| t > i64::try_from(now).unwrap_or(i64::MAX)))
    }

    /// Stores a session (token hash), dropping expired sessions.
    async fn create_session(
        &self,
        token_hash: &str,
        device_id: &KeyId,
        expires_at: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(to_i64(now)?)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sessions (token_hash, device_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(device_id.to_string())
            .bind(to_i64(expires_at)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The device of an unexpired session.
    async fn session_device(
        &self,
        token_hash: &str,
        now: u64,
    ) -> Result<Option<DeviceRow>, StoreError> {
        let row = sqlx::query(
            "SELECT d.device_id, d.identity_id, d.record FROM sessions s \
             JOIN devices d ON d.device_id = s.device_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND d.revoked = 0",
        )
        .bind(token_hash)
        .bind(to_i64(now)?)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(DeviceRow {
                device_id: key_id_at(&r, "device_id")?,
                identity_id: key_id_at(&r, "identity_id")?,
                record: r.try_get("record")?,
            })
        })
        .transpose()
    }

    /// Revokes `device_id` of `identity_id` under `handle`: the device leaves the directory, its
    /// sessions end, and the signed revocation is appended. Returns the entry's index.
    async fn revoke_device(
        &self,
        handle: &str,
        identity_id: &KeyId,
        device_id: &KeyId,
        revocation: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let identity_id = identity_id.to_string();
        let identity_id = identity_id.as_str();
        let device_id = device_id.to_string();
        let device_id = device_id.as_str();
        let mut tx = self.begin().await?;
        let changed = sqlx::query(
            "UPDATE devices SET revoked = 1 WHERE device_id = $1 AND identity_id = $2 AND handle = $3 \
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
        sqlx::query("DELETE FROM sessions WHERE device_id = $1")
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
    async fn rotate_identity(
        &self,
        handle: &str,
        old_identity: &KeyId,
        new_identity: &KeyId,
        rotation: &[u8],
        keep: &[RotatedDevice],
        now: u64,
    ) -> Result<Vec<u64>, StoreError> {
        let old_identity = old_identity.to_string();
        let old_identity = old_identity.as_str();
        let new_identity = new_identity.to_string();
        let new_identity = new_identity.as_str();
        let mut tx = self.begin().await?;
        let bound = sqlx::query(
            "UPDATE handles SET identity_id = $1 WHERE handle = $2 AND identity_id = $3",
        )
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
                "UPDATE devices SET identity_id = $1, record = $2 \
                 WHERE device_id = $3 AND identity_id = $4 AND revoked = 0",
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
        sqlx::query("UPDATE devices SET revoked = 1 WHERE identity_id = $1 AND revoked = 0")
            .bind(old_identity)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE documents SET author_identity = $1 WHERE author_identity = $2")
            .bind(new_identity)
            .bind(old_identity)
            .execute(&mut *tx)
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok(indices)
    }
}

/// Whether `new` is the hybrid upgrade (PROTOCOL.md §4, issue 15) of the stored record `old`:
/// both verify, and only the X-Wing key is added.
fn is_hybrid_upgrade(old: &[u8], new: &[u8]) -> bool {
    use serment_core::identity::DeviceRecord;
    match (
        DeviceRecord::decode_verified(old),
        DeviceRecord::decode_verified(new),
    ) {
        (Ok(o), Ok(n)) => n.is_hybrid_upgrade_of(&o),
        _ => false,
    }
}

//! The device-pairing relay (PROTOCOL.md §4.1, issue 16), written once for every SQL backend
//! (included by each backend module; `super` is the backend). SQL uses `$N` placeholders.

use serment_core::KeyId;

use super::{Db, key_id, to_i64, to_u64};
use crate::store::{PairingRow, PairingStore, StoreError};

/// The most live slots one device may hold at once (hostile review F2): `device link` opens
/// one. A device over it gets [`StoreError::Conflict`] from `open_pairing` (409), counted in the
/// transaction that inserts.
pub(crate) const MAX_LIVE_SLOTS: u64 = 3;

#[async_trait::async_trait]
impl PairingStore for Db {
    async fn open_pairing(
        &self,
        slot: &str,
        owner_device: &KeyId,
        hello: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let owner_device = owner_device.to_string();
        let owner_device = owner_device.as_str();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM pairings WHERE expires_at <= $1")
            .bind(to_i64(now)?)
            .execute(&mut *tx)
            .await?;
        // COUNT is a BIGINT on PostgreSQL and an INTEGER (i64) on SQLite.
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pairings WHERE owner_device = $1")
            .bind(owner_device)
            .fetch_one(&mut *tx)
            .await?;
        if to_u64(live)? >= MAX_LIVE_SLOTS {
            return Err(StoreError::Conflict(
                "this device already holds 3 live pairing slots: finish or abort one, or wait \
                 for them to expire",
            ));
        }
        let done = sqlx::query(
            "INSERT INTO pairings (slot, owner_device, hello, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slot) DO NOTHING",
        )
        .bind(slot)
        .bind(owner_device)
        .bind(hello)
        .bind(to_i64(expires_at)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn pairing(&self, slot: &str, now: u64) -> Result<Option<PairingRow>, StoreError> {
        let row: Option<(String, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>, i64, i64)> =
            sqlx::query_as(
                "SELECT owner_device, hello, join_msg, finish_msg, aborted, expires_at \
                 FROM pairings WHERE slot = $1 AND expires_at > $2",
            )
            .bind(slot)
            .bind(to_i64(now)?)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(owner_device, hello, join, finish, aborted, expires_at)| {
            Ok(PairingRow {
                owner_device: key_id(&owner_device, "owner_device")?,
                hello,
                join,
                finish,
                aborted: aborted != 0,
                expires_at: u64::try_from(expires_at).unwrap_or(0),
            })
        })
        .transpose()
    }

    async fn join_pairing(&self, slot: &str, join: &[u8], now: u64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pairings SET join_msg = $1 \
             WHERE slot = $2 AND join_msg IS NULL AND aborted = 0 AND expires_at > $3",
        )
        .bind(join)
        .bind(slot)
        .bind(to_i64(now)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_pairing(
        &self,
        slot: &str,
        owner_device: &KeyId,
        finish: Option<&[u8]>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let owner_device = owner_device.to_string();
        let owner_device = owner_device.as_str();
        let done = sqlx::query(
            "UPDATE pairings SET finish_msg = $1, aborted = $2 \
             WHERE slot = $3 AND owner_device = $4 AND finish_msg IS NULL AND aborted = 0 \
             AND expires_at > $5",
        )
        .bind(finish)
        .bind(i64::from(finish.is_none()))
        .bind(slot)
        .bind(owner_device)
        .bind(to_i64(now)?)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

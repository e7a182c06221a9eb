//! The state shared by every instance (issue 11 §4): request-signing nonces and the login
//! throttle's token buckets, written once for every SQL backend (included by each backend
//! module; `super` is the backend). SQL uses `$N` placeholders; no statement takes the log lock.
//!
//! Guarantees without a transaction:
//! - a nonce is accepted by one atomic `INSERT … ON CONFLICT`: two instances inserting the same
//!   pair at once, one wins (the unique key), the other sees a conflict;
//! - the floor is raised **before** the rows under it are deleted, so a pair is always either
//!   still stored or refused by the floor;
//! - a login token is taken by one conditional upsert on its bucket's row, so the budget holds
//!   when a burst is spread over instances.

use serment_core::KeyId;
use sqlx::AssertSqlSafe;

use super::{Db, to_i64, to_u64};
use crate::store::{GuardStore, NonceUse, StoreError};

/// The refilled level of a stored bucket at `excluded.at_ms` ($5: capacity, $6: tokens per ms).
const LEVEL: &str = "CASE WHEN login_buckets.tokens + (CASE WHEN excluded.at_ms > login_buckets.at_ms \
     THEN excluded.at_ms - login_buckets.at_ms ELSE 0 END) * $6 >= $5 THEN $5 \
     ELSE login_buckets.tokens + (CASE WHEN excluded.at_ms > login_buckets.at_ms \
     THEN excluded.at_ms - login_buckets.at_ms ELSE 0 END) * $6 END";

/// Tokens per millisecond for a budget of `per_minute`.
fn rate(per_minute: u32) -> f64 {
    f64::from(per_minute) / 60_000.0
}

#[async_trait::async_trait]
impl GuardStore for Db {
    async fn use_nonce(
        &self,
        key_id: &KeyId,
        nonce: &str,
        created: u64,
        now: u64,
        window_secs: u64,
    ) -> Result<NonceUse, StoreError> {
        let created = to_i64(created)?;
        let expired_before = to_i64(now.saturating_sub(window_secs))?;
        let done = sqlx::query(
            "INSERT INTO request_nonces (key_id, nonce, created) \
             SELECT $1, $2, $3 WHERE $3 > (SELECT floor FROM request_nonce_floor WHERE id = 1) \
             ON CONFLICT (key_id, nonce) DO UPDATE SET created = excluded.created \
             WHERE request_nonces.created < $4",
        )
        .bind(key_id.to_string())
        .bind(nonce)
        .bind(created)
        .bind(expired_before)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(NonceUse::Fresh);
        }
        let floor: i64 = sqlx::query_scalar("SELECT floor FROM request_nonce_floor WHERE id = 1")
            .fetch_one(&self.writer)
            .await?;
        Ok(if created <= floor {
            NonceUse::BelowFloor
        } else {
            NonceUse::Replayed
        })
    }

    async fn prune_nonces(
        &self,
        now: u64,
        window_secs: u64,
        max_rows: u64,
    ) -> Result<u64, StoreError> {
        let mut dropped = sqlx::query("DELETE FROM request_nonces WHERE created < $1")
            .bind(to_i64(now.saturating_sub(window_secs))?)
            .execute(&self.writer)
            .await?
            .rows_affected();
        let cut: Option<i64> = sqlx::query_scalar(
            "SELECT created FROM request_nonces ORDER BY created DESC LIMIT 1 OFFSET $1",
        )
        .bind(to_i64(max_rows)?)
        .fetch_optional(&self.writer)
        .await?;
        // Never above the clock: `created` is the client's, up to the future skew ahead of it,
        // and a floor in the future would refuse everybody's fresh requests until the clock
        // caught up with it (F11). One second below, so that a request signed this very second
        // still passes.
        let cut = cut.map(|c| c.min(to_i64(now.saturating_sub(1)).unwrap_or(i64::MAX)));
        if let Some(cut) = cut {
            // The floor first: from here on a pair at or below it is refused whether or not its
            // row is still there.
            sqlx::query("UPDATE request_nonce_floor SET floor = $1 WHERE id = 1 AND floor < $1")
                .bind(cut)
                .execute(&self.writer)
                .await?;
            dropped += sqlx::query("DELETE FROM request_nonces WHERE created <= $1")
                .bind(cut)
                .execute(&self.writer)
                .await?
                .rows_affected();
        }
        Ok(dropped)
    }

    async fn take_token(
        &self,
        bucket: &str,
        key: &str,
        per_minute: u32,
        now_ms: u64,
        only_if_whole: bool,
    ) -> Result<bool, StoreError> {
        let cap = f64::from(per_minute);
        let sql = if only_if_whole {
            format!(
                "INSERT INTO login_buckets (bucket, key, tokens, at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (bucket, key) DO UPDATE SET tokens = ({LEVEL}) - 1, \
                 at_ms = CASE WHEN excluded.at_ms > login_buckets.at_ms THEN excluded.at_ms \
                 ELSE login_buckets.at_ms END \
                 WHERE ({LEVEL}) >= 1"
            )
        } else {
            format!(
                "INSERT INTO login_buckets (bucket, key, tokens, at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (bucket, key) DO UPDATE SET tokens = \
                 CASE WHEN ({LEVEL}) >= 1 THEN ({LEVEL}) - 1 ELSE 0 END, \
                 at_ms = CASE WHEN excluded.at_ms > login_buckets.at_ms THEN excluded.at_ms \
                 ELSE login_buckets.at_ms END"
            )
        };
        // Only LEVEL, a constant, is interpolated; values are bound.
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(bucket)
            .bind(key)
            .bind((cap - 1.0).max(0.0))
            .bind(to_i64(now_ms)?)
            .bind(cap)
            .bind(rate(per_minute))
            .execute(&self.writer)
            .await?;
        Ok(!only_if_whole || done.rows_affected() > 0)
    }

    async fn token_level(
        &self,
        bucket: &str,
        key: &str,
        per_minute: u32,
        now_ms: u64,
    ) -> Result<f64, StoreError> {
        let row: Option<(f64, i64)> = sqlx::query_as(
            "SELECT tokens, at_ms FROM login_buckets WHERE bucket = $1 AND key = $2",
        )
        .bind(bucket)
        .bind(key)
        .fetch_optional(&self.writer)
        .await?;
        let cap = f64::from(per_minute);
        Ok(match row {
            None => cap,
            Some((tokens, at_ms)) => {
                let elapsed = now_ms.saturating_sub(to_u64(at_ms.max(0))?);
                // Milliseconds to f64: exact below 2^53 ms (285 000 years).
                (tokens + elapsed as f64 * rate(per_minute)).min(cap)
            }
        })
    }

    async fn prune_buckets(
        &self,
        bucket: &str,
        per_minute: u32,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM login_buckets WHERE bucket = $1 AND at_ms <= $2 \
             AND tokens + ($2 - at_ms) * $3 >= $4",
        )
        .bind(bucket)
        .bind(to_i64(now_ms)?)
        .bind(rate(per_minute))
        .bind(f64::from(per_minute))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}

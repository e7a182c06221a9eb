//! The state shared by every instance (issue 11 §4): request-signing nonces and the login
//! throttle's token buckets, written once for every SQL backend (included by each backend
//! module; `super` is the backend). SQL uses `$N` placeholders; no statement takes the log lock.
//!
//! Guarantees without a transaction:
//! - a nonce is accepted by one atomic `INSERT … ON CONFLICT`: two instances inserting the same
//!   pair at once, one wins (the unique key), the other sees a conflict. The requests waiting at
//!   one moment share one multi-row insert ([`crate::store::nonce_batch`]), decided as if one
//!   after the other;
//! - the floor is raised **before** the rows under it are deleted, so a pair is always either
//!   still stored or refused by the floor;
//! - a login token is taken by one conditional upsert on its bucket's row, so the budget holds
//!   when a burst is spread over instances.

use std::collections::HashSet;

use serment_core::KeyId;
use sqlx::{AssertSqlSafe, QueryBuilder, Row as _};

use super::{DB, Db, Pool, to_i64, to_u64};
use crate::store::nonce_batch::{NonceReq, NonceWriter};
use crate::store::{GuardStore, NonceUse, StoreError};

/// Pairs per multi-row insert (3 parameters each).
const NONCE_CHUNK: usize = 256;

/// The backend's [`NonceWriter`]: request nonces in batches, on the write pool.
#[derive(Clone)]
pub(super) struct SqlNonces {
    pub(super) writer: Pool,
}

impl NonceWriter for SqlNonces {
    /// Pairs seen for the first time in the batch are inserted together (one statement per
    /// [`NONCE_CHUNK`]); a pair repeated in the batch is inserted alone afterwards, in queue
    /// order, so it meets the row its first occurrence wrote (a replay). The floor is read only
    /// if a pair was refused, to tell a replay from a stale request.
    async fn use_nonces(&self, reqs: &[NonceReq]) -> Result<Vec<NonceUse>, StoreError> {
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(reqs.len());
        let (mut first, mut again) = (Vec::with_capacity(reqs.len()), Vec::new());
        for r in reqs {
            if seen.insert((r.key_id.as_str(), r.nonce.as_str())) {
                first.push(r);
            } else {
                again.push(r);
            }
        }
        // The pairs a statement inserted (or reused, expired).
        let mut fresh: HashSet<(String, String)> = HashSet::new();
        for part in first.chunks(NONCE_CHUNK) {
            insert_nonces(&self.writer, part, &mut fresh).await?;
        }
        let mut again_fresh = Vec::with_capacity(again.len());
        for r in again {
            let mut one = HashSet::new();
            insert_nonces(&self.writer, &[r], &mut one).await?;
            again_fresh.push(!one.is_empty());
        }
        let mut out: Vec<Option<NonceUse>> = Vec::with_capacity(reqs.len());
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(reqs.len());
        let mut again_fresh = again_fresh.into_iter();
        for r in reqs {
            let is_fresh = if seen.insert((r.key_id.as_str(), r.nonce.as_str())) {
                fresh.contains(&(r.key_id.clone(), r.nonce.clone()))
            } else {
                again_fresh.next().unwrap_or(false)
            };
            out.push(is_fresh.then_some(NonceUse::Fresh));
        }
        let floor: Option<i64> = if out.iter().any(Option::is_none) {
            Some(
                sqlx::query_scalar("SELECT floor FROM request_nonce_floor WHERE id = 1")
                    .fetch_one(&self.writer)
                    .await?,
            )
        } else {
            None
        };
        Ok(out
            .into_iter()
            .zip(reqs)
            .map(|(u, r)| {
                u.unwrap_or(match floor {
                    Some(f) if r.created <= f => NonceUse::BelowFloor,
                    _ => NonceUse::Replayed,
                })
            })
            .collect())
    }
}

/// One atomic multi-row `INSERT … ON CONFLICT` of distinct pairs: a pair is inserted if its
/// `created` is above the floor and it is not stored, or stored but expired (its row is reused).
/// Adds the pairs it wrote to `fresh`. A stored pair's expiry is judged against the earliest
/// `expired_before` of the statement (a row is reused only if it expired for every request).
async fn insert_nonces(
    writer: &Pool,
    reqs: &[&NonceReq],
    fresh: &mut HashSet<(String, String)>,
) -> Result<(), StoreError> {
    let Some(expired_before) = reqs.iter().map(|r| r.expired_before).min() else {
        return Ok(());
    };
    let mut q = QueryBuilder::<DB>::new("WITH v (k, n, c) AS (");
    q.push_values(reqs, |mut b, r| {
        b.push_bind(r.key_id.as_str())
            .push_bind(r.nonce.as_str())
            .push_bind(r.created);
    });
    q.push(
        ") INSERT INTO request_nonces (key_id, nonce, created) \
         SELECT k, n, c FROM v WHERE c > (SELECT floor FROM request_nonce_floor WHERE id = 1) \
         ON CONFLICT (key_id, nonce) DO UPDATE SET created = excluded.created \
         WHERE request_nonces.created < ",
    );
    q.push_bind(expired_before);
    q.push(" RETURNING key_id, nonce");
    for row in q.build().fetch_all(writer).await? {
        fresh.insert((row.try_get("key_id")?, row.try_get("nonce")?));
    }
    Ok(())
}

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
        self.nonces
            .check(NonceReq {
                key_id: key_id.to_string(),
                nonce: nonce.to_owned(),
                created: to_i64(created)?,
                expired_before: to_i64(now.saturating_sub(window_secs))?,
            })
            .await
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

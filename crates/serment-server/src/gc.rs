//! The garbage collector of pending uploads (issue 10 §2): a blob uploaded through
//! `POST /v1/blobs` that no committed version references within `pending_upload_grace_secs` is
//! deleted, row and file. A stolen credential or a client that gives up half-way cannot make the
//! server keep bytes forever; with the per-device quota (`max_pending_uploads`,
//! `max_pending_upload_bytes`) it cannot make it keep many at once either.
//!
//! A commit referencing a pending blob clears its uploader in the same transaction (a trigger,
//! migration 0005), so "pending" is one indexed column. The collector runs every quarter of the
//! grace period (at least every 15 s, at most every 5 minutes), 1000 blobs per batch. Several
//! instances may collect at once: a blob is marked (tombstone) before its bytes go
//! ([`Store::collect_pending`]).
//!
//! The same task is the maintenance tick of the state shared across instances (issue 11 §4):
//! every [`MAINTENANCE`] it drops expired request nonces (bounded by `replay_cache_entries`,
//! [`crate::http::replay`]) and login buckets that have refilled ([`crate::http::throttle`]),
//! and erases the contact address of provisional recipients left unclaimed longer than
//! `provisional_address_days` (the newcomer's H19).

use std::sync::Arc;
use std::time::Duration;

use crate::http::throttle::Throttle;
use crate::store::{Store, StoreError};

/// The period of the maintenance tick (nonces, login buckets).
const MAINTENANCE: Duration = Duration::from_secs(30);

/// The most blobs one collection deletes before yielding to the next tick.
const BATCH: u32 = 1000;

/// The collector task of a running server; aborted when dropped.
#[derive(Debug)]
pub(crate) struct GcTask(tokio::task::AbortHandle);

impl Drop for GcTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the periodic collector over `store` with a grace period of `grace_secs`, and the
/// maintenance tick (at most `max_nonces` request nonces kept, the buckets of `throttle`,
/// unclaimed provisional addresses kept `address_days`).
pub(crate) fn spawn(
    store: Store,
    grace_secs: u64,
    throttle: Arc<Throttle>,
    max_nonces: u64,
    address_days: u64,
) -> GcTask {
    let period = Duration::from_secs((grace_secs / 4).clamp(15, 300));
    let handle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintenance = tokio::time::interval(MAINTENANCE);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = maintenance.tick() => {
                    maintain(&store, &throttle, max_nonces, address_days).await;
                    continue;
                }
            }
            match collect(&store, crate::store::now(), grace_secs).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    deleted = n,
                    "pending uploads past their grace period deleted"
                ),
                Err(e) => tracing::warn!(error = %e, "pending-upload garbage collection failed"),
            }
        }
    });
    GcTask(handle.abort_handle())
}

/// Deletes up to one batch of pending uploads stored more than `grace_secs` before `now`.
/// Returns how many were deleted.
///
/// # Errors
/// [`StoreError`] if the database or the blob directory fails.
pub(crate) async fn collect(store: &Store, now: u64, grace_secs: u64) -> Result<usize, StoreError> {
    let before = now.saturating_sub(grace_secs);
    store.collect_pending(before, BATCH).await
}

/// Erases the contact address of every provisional recipient unclaimed `address_days` after
/// it was made (the newcomer's H19). Returns how many were erased.
///
/// # Errors
/// [`StoreError`] if the database fails.
pub(crate) async fn erase_stale_addresses(
    store: &Store,
    now: u64,
    address_days: u64,
) -> Result<u64, StoreError> {
    let before = now.saturating_sub(address_days.saturating_mul(86_400));
    store.meta().erase_unclaimed_addresses(before).await
}

/// One maintenance tick: expired nonces and refilled login buckets dropped, stale unclaimed
/// addresses erased (failures logged, retried at the next tick).
async fn maintain(store: &Store, throttle: &Throttle, max_nonces: u64, address_days: u64) {
    match erase_stale_addresses(store, crate::store::now(), address_days).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            erased = n,
            "addresses of unclaimed provisional recipients erased (provisional_address_days)"
        ),
        Err(e) => tracing::warn!(error = %e, "unclaimed addresses could not be erased"),
    }
    if let Err(e) = crate::http::replay::prune(store, crate::store::now(), max_nonces).await {
        tracing::warn!(error = %e, "request nonces could not be pruned");
    }
    if let Err(e) = crate::http::throttle::prune(store, throttle).await {
        tracing::warn!(error = %e, "login buckets could not be pruned");
    }
}

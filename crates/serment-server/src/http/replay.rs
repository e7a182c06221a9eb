//! Replay protection of signed requests (PROTOCOL.md §8.2): each `(keyid, nonce)` is accepted
//! once, by every instance on the database together (issue 11 §4).
//!
//! The nonces live in the metadata store ([`crate::store::GuardStore`]), one row per accepted
//! pair under a unique key, inserted atomically: a request replayed to another instance meets the
//! row the first one wrote and is refused with 401. Bounded in time and size:
//! - a row is needed only while its `created` is inside the accepted skew window
//!   ([`MAX_SKEW_SECS`] behind the clock, [`MAX_FUTURE_SKEW_SECS`] ahead of it); older
//!   requests are refused as stale anyway, so older rows are dropped (every [`crate::gc`]
//!   maintenance tick, and reused on insert);
//! - at most `replay_cache_entries` rows remain after each tick. When over, the oldest are
//!   dropped and a **floor** rises to their `created`, never above the clock (a client picks
//!   its `created`): from then on a request whose `created` is not above the floor is refused
//!   as stale. A replay of a dropped nonce is thus still refused;
//!   an honest client whose request is refused that way signs again with a fresh `created`.
//!   Nothing is ever accepted twice, whatever the load.

use serment_core::KeyId;

use crate::store::{NonceUse, Store, StoreError};

/// The largest accepted age of a request's `created` (server clock minus `created`), seconds.
pub(crate) const MAX_SKEW_SECS: u64 = 300;

/// The most a request's `created` may be ahead of the server clock, seconds. Small: a
/// future-dated request is what an attacker uses to fill the replay cache with rows that
/// outlive honest ones (F11); an honest client signs with its clock, which NTP keeps within
/// a second or so (RFC 9421 §3.2.1 leaves the tolerance to the verifier).
pub(crate) const MAX_FUTURE_SKEW_SECS: u64 = 60;

/// Why a signed request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `created` is outside the skew window, or not above the floor.
    Stale,
    /// The `(keyid, nonce)` pair was already accepted (by this instance or another).
    Replayed,
}

/// Accepts `(keyid, nonce)` created at `created` (seconds) if it is fresh at `now` and was never
/// accepted by any instance, and remembers it in the shared store.
///
/// # Errors
/// `Ok(Err(refusal))` for a refused request; `Err` if the store fails.
pub(crate) async fn check(
    store: &Store,
    keyid: &KeyId,
    nonce: &str,
    created: u64,
    now: u64,
) -> Result<Result<(), Refusal>, StoreError> {
    if now.saturating_sub(created) > MAX_SKEW_SECS
        || created.saturating_sub(now) > MAX_FUTURE_SKEW_SECS
    {
        return Ok(Err(Refusal::Stale));
    }
    Ok(
        match store
            .meta()
            .use_nonce(keyid, nonce, created, now, MAX_SKEW_SECS)
            .await?
        {
            NonceUse::Fresh => Ok(()),
            NonceUse::Replayed => Err(Refusal::Replayed),
            NonceUse::BelowFloor => Err(Refusal::Stale),
        },
    )
}

/// Drops expired nonces and enforces the `max_rows` bound (see the module documentation).
///
/// # Errors
/// [`StoreError`] from the store.
pub(crate) async fn prune(store: &Store, now: u64, max_rows: u64) -> Result<u64, StoreError> {
    store
        .meta()
        .prune_nonces(now, MAX_SKEW_SECS, max_rows)
        .await
}

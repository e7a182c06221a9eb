//! The replay cache of signed requests (PROTOCOL.md §8.2): each `(keyid, nonce)` is accepted once.
//!
//! Bounded in time and size:
//! - an entry is needed only while its `created` is inside the accepted skew window
//!   ([`MAX_SKEW_SECS`]); older requests are refused as stale anyway, so entries older than the
//!   window are dropped;
//! - at most `capacity` entries (setting `replay_cache_entries`). When full, the entry with the
//!   oldest `created` is evicted and a **floor** rises to its `created`: from then on a request
//!   whose `created` is not above the floor is refused as stale. A replay of an evicted nonce is
//!   thus still refused; an honest client whose request is refused that way signs again with a
//!   fresh `created`. Nothing is ever accepted twice, whatever the load.
//!
//! Entries are keyed by the first 16 bytes of `SHA-256(keyid || 0x00 || nonce)`, so an entry
//! costs a few dozen bytes whatever the nonce length, and a device cannot collide with another's
//! nonces.

use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

/// The largest accepted difference between a request's `created` and the server clock, seconds.
pub(crate) const MAX_SKEW_SECS: u64 = 300;

/// Why a signed request is refused by the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `created` is outside the skew window, or not above the eviction floor.
    Stale,
    /// The `(keyid, nonce)` pair was already accepted.
    Replayed,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashSet<u128>,
    by_created: BTreeSet<(u64, u128)>,
    /// Requests with `created <= floor` are stale (set when an unexpired entry is evicted).
    floor: Option<u64>,
}

/// The bounded replay cache.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl ReplayCache {
    /// A cache holding at most `capacity` (at least 1) entries.
    pub(crate) fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Accepts `(keyid, nonce)` created at `created` (seconds) if it is fresh at `now` and not
    /// seen before, and remembers it.
    pub(crate) fn check(
        &self,
        keyid: &str,
        nonce: &str,
        created: u64,
        now: u64,
    ) -> Result<(), Refusal> {
        if created.abs_diff(now) > MAX_SKEW_SECS {
            return Err(Refusal::Stale);
        }
        let mut h = Sha256::new();
        h.update(keyid.as_bytes());
        h.update([0u8]);
        h.update(nonce.as_bytes());
        let digest = h.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
        let key = u128::from_le_bytes(key);

        // A poisoned lock only means another request panicked while holding it; the sets are
        // still consistent (every mutation below is a single insert or remove pair).
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.floor.is_some_and(|f| created <= f) {
            return Err(Refusal::Stale);
        }
        if inner.seen.contains(&key) {
            return Err(Refusal::Replayed);
        }
        // Drop entries that can no longer be replayed (their `created` is out of the window).
        let cutoff = now.saturating_sub(MAX_SKEW_SECS);
        while let Some(&(c, k)) = inner.by_created.first() {
            if c >= cutoff {
                break;
            }
            inner.by_created.pop_first();
            inner.seen.remove(&k);
        }
        while inner.seen.len() >= self.capacity {
            let Some((c, k)) = inner.by_created.pop_first() else {
                break;
            };
            inner.seen.remove(&k);
            inner.floor = Some(inner.floor.map_or(c, |f| f.max(c)));
        }
        if inner.floor.is_some_and(|f| created <= f) {
            return Err(Refusal::Stale);
        }
        inner.seen.insert(key);
        inner.by_created.insert((created, key));
        Ok(())
    }

    /// The number of entries held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map(|i| i.seen.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_nonce_once_within_the_window() {
        let c = ReplayCache::new(100);
        let now = 1_000_000;
        assert_eq!(c.check("k", "n1", now, now), Ok(()));
        assert_eq!(c.check("k", "n1", now, now), Err(Refusal::Replayed));
        // Another device may use the same nonce.
        assert_eq!(c.check("k2", "n1", now, now), Ok(()));
        // Skew beyond 300 s either way is stale.
        assert_eq!(
            c.check("k", "n2", now - MAX_SKEW_SECS - 1, now),
            Err(Refusal::Stale)
        );
        assert_eq!(
            c.check("k", "n3", now + MAX_SKEW_SECS + 1, now),
            Err(Refusal::Stale)
        );
        assert_eq!(c.check("k", "n4", now - MAX_SKEW_SECS, now), Ok(()));
        // Expired entries are dropped; their replays are stale, not accepted.
        let later = now + MAX_SKEW_SECS + 10;
        assert_eq!(c.check("k", "n5", later, later), Ok(()));
        assert_eq!(c.len(), 1);
        assert_eq!(c.check("k", "n1", now, later), Err(Refusal::Stale));
    }

    #[test]
    fn full_cache_raises_a_floor_and_never_accepts_twice() {
        let c = ReplayCache::new(3);
        let now = 5_000;
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(c.check("k", n, now - 10 + i as u64, now), Ok(()));
        }
        // Full: "a" (created now-10) is evicted, the floor rises to now-10.
        assert_eq!(c.check("k", "d", now, now), Ok(()));
        assert_eq!(c.len(), 3);
        // Its replay is refused (stale), as is any new request at or below the floor.
        assert_eq!(c.check("k", "a", now - 10, now), Err(Refusal::Stale));
        assert_eq!(c.check("k", "e", now - 10, now), Err(Refusal::Stale));
        // The others are still remembered.
        for n in ["b", "c", "d"] {
            let created = match n {
                "b" => now - 9,
                "c" => now - 8,
                _ => now,
            };
            assert_eq!(c.check("k", n, created, now), Err(Refusal::Replayed), "{n}");
        }
        // Never more than the capacity, under any sequence.
        for i in 0..1000u64 {
            let _ = c.check("k", &format!("x{i}"), now + (i % 7), now + 5);
            assert!(c.len() <= 3);
        }
    }
}

//! The contract of the state shared across instances ([`crate::store::GuardStore`], issue 11
//! §4): request nonces and login buckets, on every backend.
#![allow(clippy::unwrap_used, clippy::float_cmp)]

use std::sync::Arc;

use serment_core::KeyId;

use super::Harness;
use crate::store::NonceUse;

const WINDOW: u64 = 300;

/// Nonces: each pair once inside the window (a conflict is a replay), per key id; expired rows
/// are reused and pruned; over the bound, the floor rises and refuses what it dropped.
pub(crate) async fn nonces(h: &dyn Harness) {
    let m = h.meta();
    let (k1, k2) = (KeyId::from_bytes([1; 32]), KeyId::from_bytes([2; 32]));
    let now = 1_000_000;
    assert_eq!(
        m.use_nonce(&k1, "n1", now, now, WINDOW).await.unwrap(),
        NonceUse::Fresh
    );
    assert_eq!(
        m.use_nonce(&k1, "n1", now, now, WINDOW).await.unwrap(),
        NonceUse::Replayed,
        "a conflict on (key id, nonce) is a replay"
    );
    assert_eq!(
        m.use_nonce(&k1, "n1", now - 5, now + 10, WINDOW)
            .await
            .unwrap(),
        NonceUse::Replayed,
        "whatever created the replay claims"
    );
    assert_eq!(
        m.use_nonce(&k2, "n1", now, now, WINDOW).await.unwrap(),
        NonceUse::Fresh,
        "another device may use the same nonce"
    );
    for i in 0..5u64 {
        let n = format!("m{i}");
        assert_eq!(
            m.use_nonce(&k1, &n, now + i, now + i, WINDOW)
                .await
                .unwrap(),
            NonceUse::Fresh
        );
    }
    assert_eq!(h.count("request_nonces").await, 7);
    // Expiry: a row whose created left the window is dropped by the prune, and an unpruned
    // expired row does not block a new request with the same nonce.
    let later = now + WINDOW + 2;
    assert_eq!(
        m.use_nonce(&k2, "n1", later, later, WINDOW).await.unwrap(),
        NonceUse::Fresh,
        "expired row reused"
    );
    assert_eq!(
        m.use_nonce(&k2, "n1", later, later, WINDOW).await.unwrap(),
        NonceUse::Replayed
    );
    // Created before `later - WINDOW`: k1's n1, m0, m1.
    assert_eq!(m.prune_nonces(later, WINDOW, 1000).await.unwrap(), 3);
    assert_eq!(h.count("request_nonces").await, 4);
    // Over the bound: keep the 2 newest rows (k2's n1, m4); the floor rises to the newest
    // dropped `created` (m3's, now+3).
    let dropped = m.prune_nonces(later, WINDOW, 2).await.unwrap();
    assert_eq!(dropped, 2);
    assert_eq!(h.count("request_nonces").await, 2);
    // `m2` was dropped: its replay is refused by the floor, as is any request created at or
    // below it; the rows kept still refuse their replays.
    assert_eq!(
        m.use_nonce(&k1, "m2", now + 2, later, WINDOW)
            .await
            .unwrap(),
        NonceUse::BelowFloor
    );
    assert_eq!(
        m.use_nonce(&k1, "fresh", now + 2, later, WINDOW)
            .await
            .unwrap(),
        NonceUse::BelowFloor
    );
    assert_eq!(
        m.use_nonce(&k1, "m4", now + 4, later, WINDOW)
            .await
            .unwrap(),
        NonceUse::Replayed
    );
    assert_eq!(
        m.use_nonce(&k1, "fresh", later, later, WINDOW)
            .await
            .unwrap(),
        NonceUse::Fresh
    );
    // The floor never goes down.
    m.prune_nonces(later, WINDOW, 1000).await.unwrap();
    assert_eq!(
        m.use_nonce(&k1, "m3", now + 3, later, WINDOW)
            .await
            .unwrap(),
        NonceUse::BelowFloor
    );
}

/// The floor never rises above the clock (F11): one device filling the cache with requests
/// dated ahead of the clock does not lock another device's request signed now out, and the
/// future rows kept still refuse their replays.
pub(crate) async fn nonce_floor_capped(h: &dyn Harness) {
    let m = h.meta();
    let (mal, other) = (KeyId::from_bytes([3; 32]), KeyId::from_bytes([4; 32]));
    let now = 2_000_000;
    for i in 0..6u64 {
        assert_eq!(
            m.use_nonce(&mal, &format!("f{i}"), now + 60, now, WINDOW)
                .await
                .unwrap(),
            NonceUse::Fresh
        );
    }
    // Over the bound of 2: the cut row is dated now + 60, the floor stops at now - 1.
    m.prune_nonces(now, WINDOW, 2).await.unwrap();
    assert_eq!(
        m.use_nonce(&other, "fresh", now, now, WINDOW)
            .await
            .unwrap(),
        NonceUse::Fresh,
        "another device's request signed now is not locked out"
    );
    for i in 0..6u64 {
        assert_eq!(
            m.use_nonce(&mal, &format!("f{i}"), now + 60, now + 1, WINDOW)
                .await
                .unwrap(),
            NonceUse::Replayed,
            "the future-dated rows were kept: their replays are refused"
        );
    }
    assert_eq!(
        m.use_nonce(&other, "old", now - 1, now, WINDOW)
            .await
            .unwrap(),
        NonceUse::BelowFloor,
        "the floor did rise to the clock"
    );
}

/// Requests arriving together share a batch (issue 14 §2) and are decided as if one after the
/// other: a pair sent many times at once is accepted once, the others are replays; distinct
/// pairs in the same burst are each accepted; a pair already stored stays refused however many
/// times it comes back in one batch.
pub(crate) async fn nonce_batches(h: &dyn Harness) {
    let m = h.meta();
    let (k, j) = (KeyId::from_bytes([5; 32]), KeyId::from_bytes([6; 32]));
    let now = 3_000_000;
    let burst = |key: KeyId, nonces: Vec<String>| {
        let m = Arc::clone(&m);
        async move {
            futures_util::future::join_all(nonces.iter().map(|n| {
                let m = Arc::clone(&m);
                async move { m.use_nonce(&key, n, now, now, WINDOW).await.unwrap() }
            }))
            .await
        }
    };
    let same = burst(k, vec!["same".to_owned(); 12]).await;
    assert_eq!(same.iter().filter(|u| **u == NonceUse::Fresh).count(), 1);
    assert_eq!(
        same.iter().filter(|u| **u == NonceUse::Replayed).count(),
        11
    );
    let mixed: Vec<String> = (0..12).map(|i| format!("x{}", i % 6)).collect();
    let mixed = burst(j, mixed).await;
    assert_eq!(mixed.iter().filter(|u| **u == NonceUse::Fresh).count(), 6);
    assert_eq!(
        mixed.iter().filter(|u| **u == NonceUse::Replayed).count(),
        6
    );
    let again = burst(k, vec!["same".to_owned(); 4]).await;
    assert!(again.iter().all(|u| *u == NonceUse::Replayed), "{again:?}");
    assert_eq!(h.count("request_nonces").await, 7);
}

/// Login buckets: a conditional take never goes past the budget, the bucket refills with time,
/// an unconditional take bottoms out at zero, refilled buckets are pruned.
pub(crate) async fn login_buckets(h: &dyn Harness) {
    let m = h.meta();
    let t0 = 1_700_000_000_000u64;
    assert_eq!(m.token_level("requests", "ip:a", 3, t0).await.unwrap(), 3.0);
    for _ in 0..3 {
        assert!(m.take_token("requests", "ip:a", 3, t0, true).await.unwrap());
    }
    assert!(
        !m.take_token("requests", "ip:a", 3, t0, true).await.unwrap(),
        "empty: refused"
    );
    assert!(m.token_level("requests", "ip:a", 3, t0).await.unwrap() < 1.0);
    // 3 a minute: a whole token is back after 20 s, not before.
    assert!(
        !m.take_token("requests", "ip:a", 3, t0 + 19_000, true)
            .await
            .unwrap()
    );
    assert!(
        m.take_token("requests", "ip:a", 3, t0 + 20_500, true)
            .await
            .unwrap()
    );
    // Other keys and buckets are untouched.
    assert_eq!(m.token_level("requests", "ip:b", 3, t0).await.unwrap(), 3.0);
    assert_eq!(m.token_level("failures", "ip:a", 3, t0).await.unwrap(), 3.0);
    // Unconditional takes (failures) bottom out at zero.
    for _ in 0..5 {
        assert!(
            m.take_token("failures", "ip:a", 3, t0, false)
                .await
                .unwrap()
        );
    }
    assert_eq!(m.token_level("failures", "ip:a", 3, t0).await.unwrap(), 0.0);
    // A clock behind the stored one refills nothing.
    assert_eq!(
        m.token_level("failures", "ip:a", 3, t0 - 60_000)
            .await
            .unwrap(),
        0.0
    );
    // Pruning: nothing has refilled at t0 + 1 s; everything has a minute later.
    assert_eq!(m.prune_buckets("failures", 3, t0 + 1_000).await.unwrap(), 0);
    assert_eq!(h.count("login_buckets").await, 2);
    assert_eq!(
        m.prune_buckets("failures", 3, t0 + 61_000).await.unwrap(),
        1
    );
    assert_eq!(
        m.prune_buckets("requests", 3, t0 + 81_000).await.unwrap(),
        1
    );
    assert_eq!(h.count("login_buckets").await, 0);
}

//! Unit tests of the SQLite backend: expiry, single use and caps.
#![allow(clippy::unwrap_used)]
use serment_core::identity::{DeviceSecret, IdentitySecret};

use super::*;

async fn db_with_device() -> (Db, KeyId, std::path::PathBuf) {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let dir = std::env::temp_dir().join(format!("serment-db-{}", hex::encode(r)));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::open(&dir.join("serment.db")).await.unwrap();
    let identity = IdentitySecret::generate();
    let device = DeviceSecret::generate();
    let record = identity.sign_device_record("x", &device, 1).unwrap();
    db.register_device(&NewDevice {
        device_id: device.id(),
        identity_id: identity.id(),
        handle: "x",
        record: &record,
        created_at: 1,
    })
    .await
    .unwrap();
    (db, device.id(), dir)
}

#[tokio::test]
async fn challenges_expire_are_single_use_and_capped() {
    let (db, dev, dir) = db_with_device().await;
    db.insert_challenge("c1", &dev, 160, 100).await.unwrap();
    assert!(
        !db.take_challenge("c1", &dev, 160).await.unwrap(),
        "expired"
    );
    assert!(
        !db.take_challenge("c1", &dev, 100).await.unwrap(),
        "consumed"
    );
    db.insert_challenge("c2", &dev, 160, 100).await.unwrap();
    assert!(db.take_challenge("c2", &dev, 159).await.unwrap());
    assert!(
        !db.take_challenge("c2", &dev, 100).await.unwrap(),
        "single use"
    );
    for i in 0..40u64 {
        db.insert_challenge(&format!("k{i}"), &dev, 200 + i, 100)
            .await
            .unwrap();
    }
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM challenges")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, MAX_CHALLENGES_PER_DEVICE);
    assert!(
        db.take_challenge("k39", &dev, 100).await.unwrap(),
        "newest kept"
    );
    assert!(
        !db.take_challenge("k0", &dev, 100).await.unwrap(),
        "oldest dropped"
    );
    db.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sessions_expire() {
    let (db, dev, dir) = db_with_device().await;
    db.create_session("t1", &dev, 1000, 100).await.unwrap();
    assert!(db.session_device("t1", 999).await.unwrap().is_some());
    assert!(db.session_device("t1", 1000).await.unwrap().is_none());
    assert!(db.session_device("t2", 100).await.unwrap().is_none());
    // Expired sessions are purged when a new one is created.
    db.create_session("t2", &dev, 5000, 2000).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    db.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}

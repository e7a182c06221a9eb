//! The storage contract ([`crate::store::contract`]) on SQLite, and the file-system blob store.
use std::sync::Arc;

#[path = "../sql/harness.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: one SQL source, compiled per backend
mod harness;

use crate::store::contract::{Harness, blob_contract_tests, meta_contract_tests};

#[allow(clippy::unwrap_used)]
async fn open() -> Option<Box<dyn Harness>> {
    let dir = crate::store::blobs::tests::tmpdir("sqlite");
    let log = Arc::new(crate::store::log_key::load_or_create(&dir).unwrap());
    let db = super::Db::open(&dir.join("serment.db"), log).await.unwrap();
    Some(Box::new(harness::SqlHarness {
        db: Arc::new(db),
        drop: Box::new(move || {
            Box::pin(async move {
                let _ = std::fs::remove_dir_all(&dir);
            })
        }),
    }))
}

meta_contract_tests!(open);

#[allow(clippy::unwrap_used)]
async fn open_fs() -> Option<Box<dyn crate::store::BlobStore>> {
    let dir = crate::store::blobs::tests::tmpdir("fs");
    Some(Box::new(
        crate::store::FsBlobStore::open(&dir).await.unwrap(),
    ))
}

blob_contract_tests!(fs_blob_store, open_fs);

//! The storage contract (issue 11 §1): one suite, written once against the seam's traits and
//! compiled for every backend ([`meta_contract_tests!`], [`blob_contract_tests!`]). It covers
//! every trait method, including the failures: a conflict, a missing row, a blob over its limit.
//!
//! A backend instantiates the suite with a function that opens a fresh, empty store and returns
//! a [`Harness`]: the store plus the few backend-level hooks the suite needs to look behind the
//! traits (a single batch, a row count, a stale checkpoint publication).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use axum::body::Bytes;
use futures_util::StreamExt as _;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::{DocId, KeyId};

mod guards;
mod meta;
mod teams;
pub(crate) use guards::*;
pub(crate) use meta::*;
pub(crate) use teams::*;

use super::batcher::BatchResult;
use super::{
    BlobError, BlobId, BlobStore, ByteStream, CommitJob, MetaStore, NewDevice, NewWrap, Registered,
    StoreError,
};

/// A fresh metadata backend under test, with hooks behind its traits.
#[async_trait::async_trait]
pub(crate) trait Harness: Send + Sync {
    /// The store under test.
    fn meta(&self) -> Arc<dyn MetaStore>;
    /// Writes `jobs` as one batch (bypassing the batcher's queue).
    async fn batch(&self, jobs: &[CommitJob]) -> BatchResult;
    /// The number of rows of `table`.
    async fn count(&self, table: &str) -> i64;
    /// Deletes the rows of document `doc` from `table` (an operator's hand edit).
    async fn delete_doc_rows(&self, table: &str, doc: &str);
    /// Publishes a checkpoint claiming the tree was `previous` entries when it was not: must be
    /// refused with [`StoreError::Conflict`].
    async fn publish_stale(&self, previous: u64) -> Result<(), StoreError>;
    /// Drops the store (connections, schema or files).
    async fn cleanup(self: Box<Self>);
}

/// Registers a device under a new identity for `handle`; returns (device id, identity id).
pub(crate) async fn device(m: &dyn MetaStore, handle: &str) -> (KeyId, KeyId) {
    let identity = IdentitySecret::generate();
    let device = DeviceSecret::generate();
    let record = identity.sign_device_record(handle, &device, 1).unwrap();
    let r = m
        .register_device(&NewDevice {
            device_id: device.id(),
            identity_id: identity.id(),
            handle,
            record: &record,
            created_at: 1,
        })
        .await
        .unwrap();
    assert_eq!(r, Registered::Created);
    (device.id(), identity.id())
}

/// A commit of `doc` version `v` by `author` with an inline blob and one wrap per recipient.
pub(crate) fn job(doc: DocId, v: u32, author: (KeyId, KeyId), to: &[KeyId]) -> CommitJob {
    let bytes = format!("sealed {doc} v{v}").into_bytes();
    CommitJob {
        doc_id: doc,
        doc_version: v,
        author_device: author.0,
        author_identity: author.1,
        blob_id: BlobId::of(&bytes),
        inline: Some(bytes),
        created_at: 7,
        wraps: to
            .iter()
            .map(|r| NewWrap {
                recipient: *r,
                sharer: author.0,
                bytes: format!("wrap for {r} of {doc} v{v}").into_bytes(),
            })
            .collect(),
        log_from: None,
    }
}

/// Instantiates the metadata contract for a backend: `$open` is an async fn returning
/// `Option<Box<dyn Harness>>` (`None`: the backend is not available here, the test is skipped).
macro_rules! meta_contract_tests {
    ($open:path) => {
        meta_contract_tests!(@each $open,
            challenges, sessions, directory, batch, chain_heads, documents, pending_uploads, log,
            nonces, nonce_floor_capped, nonce_batches, login_buckets, team_races, team_key_handover,
            unclaimed_addresses);
    };
    (@each $open:path, $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                if let Some(h) = $open().await {
                    $crate::store::contract::$name(&*h).await;
                    h.cleanup().await;
                }
            }
        )*
    };
}
pub(crate) use meta_contract_tests;

fn body(chunks: &[&'static [u8]]) -> ByteStream<String> {
    let v: Vec<Result<Bytes, String>> = chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
    Box::pin(futures_util::stream::iter(v))
}

async fn read_all(b: &dyn BlobStore, id: &BlobId) -> Vec<u8> {
    let (mut s, len) = b.get(id).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    assert_eq!(out.len() as u64, len);
    out
}

/// The blob store: content addressing, conditional create, streams, prefixes, the size limit,
/// the digest check, body failures, missing blobs, and removal.
pub(crate) async fn blobs(b: &dyn BlobStore) {
    let staged = b
        .stage(body(&[b"hello ", b"world"]), 1024, None)
        .await
        .unwrap();
    let id = staged.id().clone();
    assert_eq!(id, BlobId::of(b"hello world"));
    assert_eq!(staged.size(), 11);
    assert!(
        matches!(b.get(&id).await, Err(BlobError::NotFound)),
        "invisible until commit"
    );
    assert!(staged.commit().await.unwrap(), "created");
    let again = b.stage(body(&[b"hello world"]), 1024, None).await.unwrap();
    assert!(!again.commit().await.unwrap(), "never overwritten");
    assert_eq!(read_all(b, &id).await, b"hello world");
    assert_eq!(b.read_prefix(&id, 5).await.unwrap(), b"hello");
    assert!(matches!(
        b.read_prefix(&id, 64).await,
        Err(BlobError::TooShort)
    ));

    // Over the limit, a wrong digest, a failing body, a dropped stage: nothing stored.
    assert!(matches!(
        b.stage(body(&[b"hello ", b"world"]), 8, None).await,
        Err(BlobError::TooLarge { limit: 8 })
    ));
    assert!(matches!(
        b.stage(body(&[b"other"]), 1024, Some([0; 32])).await,
        Err(BlobError::DigestMismatch)
    ));
    let digest: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(b"checked").into()
    };
    let ok = b
        .stage(body(&[b"checked"]), 1024, Some(digest))
        .await
        .unwrap();
    assert!(ok.commit().await.unwrap());
    let failing: Vec<Result<Bytes, String>> = vec![
        Ok(Bytes::from_static(b"partial")),
        Err("disconnected".into()),
    ];
    assert!(matches!(
        b.stage(Box::pin(futures_util::stream::iter(failing)), 1024, None)
            .await,
        Err(BlobError::Body(_))
    ));
    let dropped = b.stage(body(&[b"dropped"]), 1024, None).await.unwrap();
    let dropped_id = dropped.id().clone();
    drop(dropped);
    for never in [
        BlobId::of(b"hello world!"),
        BlobId::of(b"other"),
        dropped_id,
    ] {
        assert!(matches!(b.get(&never).await, Err(BlobError::NotFound)));
        assert!(matches!(
            b.read_prefix(&never, 1).await,
            Err(BlobError::NotFound)
        ));
    }

    // Removal, idempotent.
    b.remove(&id).await.unwrap();
    assert!(matches!(b.get(&id).await, Err(BlobError::NotFound)));
    b.remove(&id).await.unwrap();
}

/// Instantiates the blob contract for a blob store: `$open` is an async fn returning
/// `Option<(Box<dyn BlobStore>, cleanup)>`.
macro_rules! blob_contract_tests {
    ($name:ident, $open:path) => {
        #[tokio::test]
        async fn $name() {
            if let Some(b) = $open().await {
                $crate::store::contract::blobs(&*b).await;
            }
        }
    };
}
pub(crate) use blob_contract_tests;

//! Sealed blobs in S3-compatible object storage (issue 11 §3), through the `object_store` crate.
//!
//! The same content-addressed layout as the directory driver (PROTOCOL.md §8.3): a blob lives at
//! `<prefix>/blobs/<aa>/<64 hex>`, named by its SHA-256. An object is only ever *created*, never
//! overwritten:
//! - an upload whose body fits in [`SMALL_PUT`] bytes is hashed in memory, then written with a
//!   conditional `PutObject` (`If-None-Match: *`, [`PutMode::Create`]);
//! - a larger one is streamed as a multipart upload to `<prefix>/tmp/<random>` while it is hashed
//!   (memory stays at one part), then copied to its final name with a conditional copy
//!   ([`CopyMode::Create`]; on AWS S3 a multipart copy completed with `If-None-Match: *`), and the
//!   temporary object is deleted.
//!
//! An existing object under the final name means the same bytes are already stored (the name is
//! their hash): the upload succeeds without writing. A failed or abandoned upload aborts its
//! multipart upload or deletes its temporary object; what a crash leaves under `tmp/` is never
//! read, and a bucket lifecycle rule on `tmp/` (README) removes it.
//!
//! Credentials, region and endpoint come from the standard `AWS_*` environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP` for a loopback test server). TLS is rustls over ring, like the rest of the
//! server.

use std::fmt;
use std::io;
use std::sync::Arc;

use axum::body::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use object_store::aws::{AmazonS3Builder, S3CopyIfNotExists};
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyMode, CopyOptions, MultipartUpload, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions,
    PutPayload,
};
use sha2::{Digest as _, Sha256};

use super::blobs::{BlobError, BlobId, BlobStore, ByteStream, StagedBlob};

/// Bodies up to this size are hashed in memory and written with one conditional `PutObject`:
/// 8 MiB.
const SMALL_PUT: usize = 8 * 1024 * 1024;
/// The part size of a multipart upload: 8 MiB (S3's minimum is 5 MiB, except the last part).
const PART: usize = 8 * 1024 * 1024;

/// Sealed blobs in an S3-compatible bucket, under a key prefix.
#[derive(Clone)]
pub(crate) struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// `s3://bucket/prefix`, for messages (never carries a credential).
    url: String,
}

impl fmt::Debug for ObjectBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectBlobStore({})", self.url)
    }
}

/// Why an object-store URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid blob store URL {url:?}: {reason}")]
pub(crate) struct BlobUrlError {
    url: String,
    reason: String,
}

fn store_error(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        other => BlobError::Io(io::Error::other(other.to_string())),
    }
}

impl ObjectBlobStore {
    /// Connects to `s3://BUCKET[/PREFIX]` with the `AWS_*` environment. Nothing is sent until
    /// the first request; [`ObjectBlobStore::check`] probes the bucket.
    ///
    /// # Errors
    /// [`BlobUrlError`] for a URL that is not `s3://bucket[/prefix]`, or a configuration
    /// `object_store` refuses.
    pub(crate) fn from_url(url: &str) -> Result<ObjectBlobStore, BlobUrlError> {
        let err = |reason: String| BlobUrlError {
            url: url.to_owned(),
            reason,
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| err("expected s3://BUCKET[/PREFIX]".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("the bucket name is empty".into()));
        }
        let prefix = ObjectPath::parse(prefix.trim_end_matches('/'))
            .map_err(|e| err(format!("bad key prefix: {e}")))?;
        // reqwest is built without a crypto provider of its own: rustls over ring is installed
        // as the process default (one already installed is kept). rustls deprecates ring for
        // its lack of post-quantum key exchange; ring is the project's one backend (tls.rs).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart)
            .build()
            .map_err(|e| err(e.to_string()))?;
        Ok(ObjectBlobStore {
            store: Arc::new(store),
            prefix,
            url: url.to_owned(),
        })
    }

    fn blob_path(&self, id: &BlobId) -> ObjectPath {
        let hex = id.as_str();
        self.prefix
            .clone()
            .join("blobs")
            .join(hex.get(..2).unwrap_or("00"))
            .join(hex)
    }

    /// Probes the bucket (a listing of at most one key), so that `serve` fails at startup, not
    /// at the first upload, on a wrong bucket, endpoint or credential.
    ///
    /// # Errors
    /// The object store's error, as [`BlobError::Io`].
    pub(crate) async fn check(&self) -> Result<(), BlobError> {
        let mut list = self.store.list(Some(&self.prefix));
        if let Some(first) = list.next().await {
            first.map_err(store_error)?;
        }
        Ok(())
    }

    async fn start_tmp(&self) -> Result<TmpUpload, BlobError> {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|_| BlobError::Rng)?;
        let path = self.prefix.clone().join("tmp").join(hex::encode(name));
        let upload = self.store.put_multipart(&path).await.map_err(store_error)?;
        Ok(TmpUpload {
            store: Arc::clone(&self.store),
            path,
            upload: Some(upload),
            written: false,
        })
    }
}

#[async_trait::async_trait]
impl BlobStore for ObjectBlobStore {
    async fn stage(
        &self,
        mut body: ByteStream<String>,
        limit: u64,
        expected: Option<[u8; 32]>,
    ) -> Result<Box<dyn StagedBlob>, BlobError> {
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut buf: Vec<Bytes> = Vec::new();
        let mut buffered = 0usize;
        let mut upload: Option<TmpUpload> = None;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            buffered += chunk.len();
            buf.push(chunk);
            if buffered >= SMALL_PUT.max(PART) {
                let up = match upload.as_mut() {
                    Some(up) => up,
                    None => upload.insert(self.start_tmp().await?),
                };
                up.part(std::mem::take(&mut buf)).await?;
                buffered = 0;
            }
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if expected.is_some_and(|e| e != digest) {
            return Err(BlobError::DigestMismatch);
        }
        let held = match upload {
            None => Held::Memory(buf),
            Some(mut up) => {
                if !buf.is_empty() {
                    up.part(buf).await?;
                }
                up.complete().await?;
                Held::Tmp(up)
            }
        };
        Ok(Box::new(ObjectStaged {
            blobs: self.clone(),
            id: BlobId::of_digest(digest),
            size,
            held,
        }))
    }

    async fn get(&self, id: &BlobId) -> Result<(ByteStream<io::Error>, u64), BlobError> {
        let got = self
            .store
            .get(&self.blob_path(id))
            .await
            .map_err(store_error)?;
        let len = got.meta.size;
        let stream = got
            .into_stream()
            .map_err(|e| io::Error::other(e.to_string()));
        Ok((Box::pin(stream), len))
    }

    async fn read_prefix(&self, id: &BlobId, n: usize) -> Result<Vec<u8>, BlobError> {
        let path = self.blob_path(id);
        let meta = self.store.head(&path).await.map_err(store_error)?;
        if meta.size < n as u64 {
            return Err(BlobError::TooShort);
        }
        let bytes = self
            .store
            .get_range(&path, 0..n as u64)
            .await
            .map_err(store_error)?;
        if bytes.len() != n {
            return Err(BlobError::TooShort);
        }
        Ok(bytes.to_vec())
    }

    async fn remove(&self, id: &BlobId) -> Result<(), BlobError> {
        match self.store.delete(&self.blob_path(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Where a staged upload's bytes are until it is committed.
enum Held {
    /// A small body, in memory.
    Memory(Vec<Bytes>),
    /// A large one, as a completed temporary object.
    Tmp(TmpUpload),
}

/// An upload hashed and checked, not yet under its final name.
struct ObjectStaged {
    blobs: ObjectBlobStore,
    id: BlobId,
    size: u64,
    held: Held,
}

impl fmt::Debug for ObjectStaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStaged")
            .field("id", &self.id)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl StagedBlob for ObjectStaged {
    fn id(&self) -> &BlobId {
        &self.id
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(self: Box<Self>) -> Result<bool, BlobError> {
        let ObjectStaged {
            blobs, id, held, ..
        } = *self;
        let dest = blobs.blob_path(&id);
        let created = match held {
            Held::Memory(chunks) => {
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                match blobs
                    .store
                    .put_opts(&dest, PutPayload::from_iter(chunks), opts)
                    .await
                {
                    Ok(_) => true,
                    Err(object_store::Error::AlreadyExists { .. }) => false,
                    Err(e) => return Err(store_error(e)),
                }
            }
            Held::Tmp(mut tmp) => {
                let opts = CopyOptions {
                    mode: CopyMode::Create,
                    ..CopyOptions::default()
                };
                let created = match blobs.store.copy_opts(&tmp.path, &dest, opts).await {
                    Ok(()) => true,
                    Err(object_store::Error::AlreadyExists { .. }) => false,
                    Err(e) => return Err(store_error(e)),
                };
                blobs.store.delete(&tmp.path).await.map_err(store_error)?;
                tmp.written = false;
                created
            }
        };
        Ok(created)
    }
}

/// A multipart upload to a temporary name; aborted, or its object deleted, on drop unless
/// [`ObjectStaged::commit`] copied it into place and deleted it.
struct TmpUpload {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    upload: Option<Box<dyn MultipartUpload>>,
    /// The multipart upload completed: the temporary object exists and must be deleted.
    written: bool,
}

impl TmpUpload {
    async fn part(&mut self, chunks: Vec<Bytes>) -> Result<(), BlobError> {
        let up = self
            .upload
            .as_mut()
            .ok_or_else(|| BlobError::Io(io::Error::other("upload already completed")))?;
        up.put_part(PutPayload::from_iter(chunks))
            .await
            .map_err(store_error)
    }

    async fn complete(&mut self) -> Result<(), BlobError> {
        if let Some(mut up) = self.upload.take() {
            if let Err(e) = up.complete().await {
                // Not completed: abort it (best effort) rather than leave its parts billed.
                let _ = up.abort().await;
                return Err(store_error(e));
            }
            self.written = true;
        }
        Ok(())
    }
}

impl Drop for TmpUpload {
    fn drop(&mut self) {
        let upload = self.upload.take();
        if upload.is_none() && !self.written {
            return;
        }
        let store = Arc::clone(&self.store);
        let path = self.path.clone();
        // Best effort, off the request's future (which may be the one being dropped); a
        // leftover under tmp/ is never read, and the bucket's lifecycle rule removes it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let r = match upload {
                    Some(mut up) => up.abort().await,
                    None => store.delete(&path).await,
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, %path, "could not clean up a temporary upload");
                }
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::store::contract::blob_contract_tests;

    /// A fresh bucket on the S3 test server (`.ci/s3.sh`), or `None` (with a message) when none
    /// is configured outside CI. Under `CI=true` a missing server fails the test.
    pub(crate) async fn test_bucket(name: &str) -> Option<ObjectBlobStore> {
        let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but AWS_ENDPOINT_URL is not set: .ci/run must start the S3 test server"
            );
            eprintln!("skipped: no S3 test server (`source .ci/s3.sh` starts moto)");
            return None;
        };
        let mut r = [0u8; 6];
        getrandom::fill(&mut r).unwrap();
        let bucket = format!("serment-{name}-{}", hex::encode(r));
        let blobs = ObjectBlobStore::from_url(&format!("s3://{bucket}/serment")).unwrap();
        // Bucket creation is outside object_store's API; moto accepts an unsigned PUT.
        let status = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("the S3 test server answers")
            .status();
        assert!(status.is_success(), "create bucket {bucket}: {status}");
        blobs.check().await.unwrap();
        Some(blobs)
    }

    async fn open_s3() -> Option<Box<dyn BlobStore>> {
        Some(Box::new(test_bucket("contract").await?))
    }

    blob_contract_tests!(s3_blob_store, open_s3);

    fn body(parts: Vec<Vec<u8>>) -> ByteStream<String> {
        Box::pin(futures_util::stream::iter(
            parts.into_iter().map(|p| Ok(Bytes::from(p))),
        ))
    }

    async fn keys(blobs: &ObjectBlobStore, under: &str) -> Vec<String> {
        let prefix = blobs.prefix.clone().join(under);
        let metas: Vec<_> = blobs.store.list(Some(&prefix)).try_collect().await.unwrap();
        metas.into_iter().map(|m| m.location.to_string()).collect()
    }

    /// A body past [`SMALL_PUT`] goes through a multipart upload to `tmp/` and a conditional
    /// copy; the same bytes again are not overwritten, and nothing is left under `tmp/`.
    #[tokio::test]
    async fn large_blobs_go_through_multipart_and_a_conditional_copy() {
        let Some(blobs) = test_bucket("multipart").await else {
            return;
        };
        let big: Vec<u8> = (0..(SMALL_PUT + PART / 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let chunks: Vec<Vec<u8>> = big.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
        let staged = blobs
            .stage(body(chunks.clone()), u64::MAX, None)
            .await
            .unwrap();
        assert_eq!(staged.size(), big.len() as u64);
        assert_eq!(staged.id(), &BlobId::of(&big));
        assert_eq!(keys(&blobs, "tmp").await.len(), 1, "staged under tmp/");
        let id = staged.id().clone();
        assert!(staged.commit().await.unwrap(), "created");
        let (stream, len) = blobs.get(&id).await.unwrap();
        let got: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(len, big.len() as u64);
        assert_eq!(got.concat(), big);
        assert_eq!(
            blobs.read_prefix(&id, 100).await.unwrap(),
            big[..100].to_vec()
        );
        let again = blobs.stage(body(chunks), u64::MAX, None).await.unwrap();
        assert!(!again.commit().await.unwrap(), "never overwritten");
        assert!(keys(&blobs, "tmp").await.is_empty(), "tmp/ emptied");

        // A large upload dropped before its commit, and one that fails half-way: nothing
        // under a final name, and tmp/ is emptied (the cleanup runs in the background).
        let other: Vec<u8> = vec![9u8; SMALL_PUT + 1];
        let dropped = blobs
            .stage(body(vec![other.clone()]), u64::MAX, None)
            .await
            .unwrap();
        drop(dropped);
        let failing: Vec<Result<Bytes, String>> = vec![
            Ok(Bytes::from(vec![1u8; SMALL_PUT + 1])),
            Err("disconnected".into()),
        ];
        assert!(matches!(
            blobs
                .stage(
                    Box::pin(futures_util::stream::iter(failing)),
                    u64::MAX,
                    None
                )
                .await,
            Err(BlobError::Body(_))
        ));
        let mut left = keys(&blobs, "tmp").await;
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            left = keys(&blobs, "tmp").await;
        }
        assert!(left.is_empty(), "temporary objects left: {left:?}");
        assert!(matches!(
            blobs.get(&BlobId::of(&other)).await,
            Err(BlobError::NotFound)
        ));
        assert_eq!(keys(&blobs, "blobs").await.len(), 1);
    }

    #[test]
    fn urls_other_than_s3_bucket_prefix_are_refused() {
        for bad in ["file:///x", "s3://", "s3:///prefix", "http://bucket/x"] {
            assert!(ObjectBlobStore::from_url(bad).is_err(), "{bad}");
        }
        assert!(ObjectBlobStore::from_url("s3://bucket/some/prefix/").is_ok());
    }
}

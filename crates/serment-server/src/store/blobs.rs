//! The content-addressed blob directory (PROTOCOL.md §8.3).
//!
//! An upload is streamed to `tmp/<random>.part` while it is hashed with SHA-256; the size limit is
//! enforced as bytes arrive. The file is fsynced, renamed to `blobs/<aa>/<64 hex>`, and the
//! directory is fsynced, so a blob the server acknowledged survives a crash. A [`TempFile`] guard
//! deletes the partial file whenever the upload does not complete: body error, client disconnect
//! (the request future is dropped), limit exceeded, or I/O failure.
//!
//! Paths are built only from a [`BlobId`] (64 lowercase hex, checked) or from random names, never
//! from a client's string.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The blob subdirectory.
const BLOBS_DIR: &str = "blobs";
/// The temporary subdirectory for uploads in progress.
const TMP_DIR: &str = "tmp";
/// Upload bytes gathered before each write to the temporary file.
const WRITE_BUF: usize = 256 * 1024;

/// A blob id: SHA-256 of the blob, 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct BlobId(String);

impl BlobId {
    /// The id of `bytes`: their SHA-256, 64 lowercase hex (as [`BlobStore::put`] names them).
    pub(crate) fn of(bytes: &[u8]) -> BlobId {
        BlobId(hex::encode(Sha256::digest(bytes)))
    }

    /// Parses 64 lowercase hex characters; anything else (uppercase, `../x`, ...) is `None`.
    pub(crate) fn parse(s: &str) -> Option<BlobId> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| BlobId(s.to_owned()))
    }

    /// The hex form.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The two-character shard directory name.
    fn shard(&self) -> &str {
        self.0.get(..2).unwrap_or("00")
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.0)
    }
}

/// Why an upload or a read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlobError {
    /// The body went over the size limit.
    #[error("blob exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The request body failed (client disconnected or sent a malformed body).
    #[error("request body failed: {0}")]
    Body(String),
    /// The blob is not on disk.
    #[error("blob not found")]
    NotFound,
    /// The blob is shorter than the prefix asked for.
    #[error("blob is too short")]
    TooShort,
    /// The file system failed.
    #[error("blob store I/O error: {0}")]
    Io(#[from] io::Error),
    /// The system random generator failed.
    #[error("random generator failed")]
    Rng,
    /// The body's SHA-256 is not the `Content-Digest` the request declared.
    #[error("the body does not match its Content-Digest")]
    DigestMismatch,
}

/// Deletes a temporary file on drop unless [`TempFile::keep`] was called.
#[derive(Debug)]
struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    fn keep(&mut self) {
        self.path = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Blocking, but a single unlink; it must also work when no runtime is left.
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, "could not delete a temporary upload file");
            }
        }
    }
}

/// The blob directory of a data directory.
#[derive(Debug, Clone)]
pub(crate) struct BlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
}

/// Fsyncs a directory so a rename or a new entry in it is durable.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

impl BlobStore {
    /// Creates `blobs/` and `tmp/` if missing and deletes leftover `tmp/*.part` files.
    pub(crate) async fn open(data_dir: &Path) -> io::Result<BlobStore> {
        let store = BlobStore {
            blobs: data_dir.join(BLOBS_DIR),
            tmp: data_dir.join(TMP_DIR),
        };
        tokio::fs::create_dir_all(&store.blobs).await?;
        tokio::fs::create_dir_all(&store.tmp).await?;
        let mut entries = tokio::fs::read_dir(&store.tmp).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                tokio::fs::remove_file(entry.path()).await?;
            }
        }
        Ok(store)
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        self.blobs.join(id.shard()).join(id.as_str())
    }

    /// Streams `body` to disk, hashing it, and stores it under its SHA-256. Returns the id and the
    /// size. Over `limit` bytes: [`BlobError::TooLarge`]; on any failure nothing is left behind.
    #[cfg(test)]
    pub(crate) async fn put<S, E>(&self, body: S, limit: u64) -> Result<(BlobId, u64), BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: fmt::Display,
    {
        let gate = tokio::sync::RwLock::new(());
        let (id, size, _) = self.put_checked(body, limit, None, &gate).await?;
        Ok((id, size))
    }

    /// [`BlobStore::put`], and when `expected` is given (the request's `Content-Digest`,
    /// RFC 9530), the streamed body's SHA-256 must equal it: checked after the last byte and
    /// before the file is renamed into place, so a mismatching body is never stored or
    /// acknowledged ([`BlobError::DigestMismatch`]). `gate` is taken shared once the body is
    /// in (before the file is looked up and renamed into place) and returned, for the caller to
    /// hold until the blob's row is recorded (the garbage collector takes it exclusively).
    pub(crate) async fn put_checked<'g, S, E>(
        &self,
        body: S,
        limit: u64,
        expected: Option<[u8; 32]>,
        gate: &'g tokio::sync::RwLock<()>,
    ) -> Result<(BlobId, u64, tokio::sync::RwLockReadGuard<'g, ()>), BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: fmt::Display,
    {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|_| BlobError::Rng)?;
        let tmp_path = self.tmp.join(format!("{}.part", hex::encode(name)));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .await?;
        // Body chunks are small (tens of KiB); gathering them costs one blocking-pool round
        // trip per 256 KiB instead of one per chunk.
        let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUF, file);
        let mut guard = TempFile {
            path: Some(tmp_path.clone()),
        };

        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.get_mut().sync_all().await?;
        drop(file);

        let digest: [u8; 32] = hasher.finalize().into();
        if expected.is_some_and(|e| e != digest) {
            return Err(BlobError::DigestMismatch);
        }
        let id = BlobId(hex::encode(digest));
        let shared = gate.read().await;
        let final_path = self.path(&id);
        if tokio::fs::try_exists(&final_path).await? {
            // Content-addressed: the same bytes are already stored; the guard deletes the copy.
            return Ok((id, size, shared));
        }
        let shard = self.blobs.join(id.shard());
        if !tokio::fs::try_exists(&shard).await? {
            tokio::fs::create_dir_all(&shard).await?;
            sync_dir(&self.blobs).await?;
        }
        tokio::fs::rename(&tmp_path, &final_path).await?;
        guard.keep();
        sync_dir(&shard).await?;
        Ok((id, size, shared))
    }

    /// Deletes a stored blob file (the garbage collector, after its row is gone). A file already
    /// missing is not an error.
    pub(crate) async fn remove(&self, id: &BlobId) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens a stored blob for streaming; returns the file and its length.
    pub(crate) async fn open_blob(&self, id: &BlobId) -> Result<(tokio::fs::File, u64), BlobError> {
        let file = match tokio::fs::File::open(self.path(id)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata().await?.len();
        Ok((file, len))
    }

    /// Reads the first `N` bytes of a stored blob (the sealed header).
    pub(crate) async fn read_prefix<const N: usize>(
        &self,
        id: &BlobId,
    ) -> Result<[u8; N], BlobError> {
        let (mut file, len) = self.open_blob(id).await?;
        if len < N as u64 {
            return Err(BlobError::TooShort);
        }
        let mut buf = [0u8; N];
        file.read_exact(&mut buf).await?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let p = std::env::temp_dir().join(format!("serment-blobs-{name}-{}", hex::encode(r)));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn blob_id_is_strict() {
        let ok = "ab".repeat(32);
        assert!(BlobId::parse(&ok).is_some());
        assert!(BlobId::parse(&ok.to_uppercase()).is_none());
        assert!(BlobId::parse("../x").is_none());
        assert!(BlobId::parse(&format!("../{}", &ok[3..])).is_none());
        assert!(BlobId::parse("").is_none());
    }

    #[tokio::test]
    async fn put_hashes_dedups_and_cleans_up() {
        let dir = tmpdir("put");
        let store = BlobStore::open(&dir).await.unwrap();
        let chunks = || {
            futures_util::stream::iter(vec![
                Ok::<_, io::Error>(Bytes::from_static(b"hello ")),
                Ok(Bytes::from_static(b"world")),
            ])
        };
        let (id, size) = store.put(chunks(), 1024).await.unwrap();
        assert_eq!(size, 11);
        assert_eq!(id.as_str(), hex::encode(Sha256::digest(b"hello world")));
        let (id2, _) = store.put(chunks(), 1024).await.unwrap();
        assert_eq!(id, id2);
        assert_eq!(count(&dir.join(TMP_DIR)), 0);
        assert_eq!(store.read_prefix::<5>(&id).await.unwrap(), *b"hello");
        assert!(matches!(
            store.read_prefix::<64>(&id).await,
            Err(BlobError::TooShort)
        ));

        let err = store.put(chunks(), 8).await.unwrap_err();
        assert!(matches!(err, BlobError::TooLarge { limit: 8 }));
        let failing = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"partial")),
            Err(io::Error::other("disconnected")),
        ]);
        assert!(matches!(
            store.put(failing, 1024).await,
            Err(BlobError::Body(_))
        ));
        assert_eq!(count(&dir.join(TMP_DIR)), 0);
        assert_eq!(count(&dir.join(BLOBS_DIR)), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn open_removes_leftover_parts() {
        let dir = tmpdir("leftover");
        std::fs::create_dir_all(dir.join(TMP_DIR)).unwrap();
        std::fs::write(dir.join(TMP_DIR).join("x.part"), b"junk").unwrap();
        BlobStore::open(&dir).await.unwrap();
        assert_eq!(count(&dir.join(TMP_DIR)), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

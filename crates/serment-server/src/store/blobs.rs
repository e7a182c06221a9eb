//! The content-addressed blob store (PROTOCOL.md §8.3): the [`BlobStore`] seam, and its
//! file-system driver [`FsBlobStore`] (`file://DIR`).
//!
//! In the file-system driver, an upload is streamed to `tmp/<random>.part` while it is hashed with SHA-256; the size limit is
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
use std::pin::Pin;

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
/// The bytes [`FsBlobStore::stage`] gathers before it creates its file: a body that ends within
/// them (most blobs, a restore's thousands of small ones) is written in one blocking-pool trip.
const GATHER: usize = 64 * 1024;

/// A blob id: SHA-256 of the blob, 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct BlobId(String);

impl BlobId {
    /// The id of `bytes`: their SHA-256, 64 lowercase hex (as a [`BlobStore`] names them).
    pub(crate) fn of(bytes: &[u8]) -> BlobId {
        BlobId(hex::encode(Sha256::digest(bytes)))
    }

    /// The id of a blob whose SHA-256 is `digest`.
    pub(crate) fn of_digest(digest: [u8; 32]) -> BlobId {
        BlobId(hex::encode(digest))
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

/// A stream of bytes in (a request body) or out (a stored blob).
pub(crate) type ByteStream<E> = Pin<Box<dyn Stream<Item = Result<Bytes, E>> + Send>>;

/// An upload streamed in, hashed and checked, not yet visible under its id. Dropping it without
/// [`StagedBlob::commit`] discards the staged bytes.
#[async_trait::async_trait]
pub(crate) trait StagedBlob: Send + fmt::Debug {
    /// The SHA-256 of the bytes: the id they will be stored under.
    fn id(&self) -> &BlobId;
    /// Their length in bytes.
    fn size(&self) -> u64;
    /// Makes the bytes visible under [`StagedBlob::id`] by a conditional create: bytes already
    /// stored under that id are kept as they are (content-addressed: they are the same bytes)
    /// and never overwritten. Returns whether this call created them. Durable on return.
    async fn commit(self: Box<Self>) -> Result<bool, BlobError>;
}

/// A content-addressed store of sealed blobs (PROTOCOL.md §8.3): the object half of the storage
/// seam (issue 11 §1). Blobs are named by their SHA-256 ([`BlobId`]) and never overwritten.
/// Whether a blob sits inline in the metadata database or here is decided by
/// [`super::Store`], never by the HTTP layer.
#[async_trait::async_trait]
pub(crate) trait BlobStore: Send + Sync + fmt::Debug {
    /// Streams `body` in while hashing it with SHA-256, enforcing `limit` as bytes arrive
    /// ([`BlobError::TooLarge`]); when `expected` is given (the request's `Content-Digest`,
    /// RFC 9530) the digest must equal it ([`BlobError::DigestMismatch`]). A body error is
    /// [`BlobError::Body`]. On any failure nothing is left behind.
    async fn stage(
        &self,
        body: ByteStream<String>,
        limit: u64,
        expected: Option<[u8; 32]>,
    ) -> Result<Box<dyn StagedBlob>, BlobError>;

    /// Opens a stored blob for streaming; returns the stream and its length in bytes.
    /// [`BlobError::NotFound`] if it is not stored.
    async fn get(&self, id: &BlobId) -> Result<(ByteStream<io::Error>, u64), BlobError>;

    /// The first `n` bytes of a stored blob (the sealed header); [`BlobError::TooShort`] if it
    /// is shorter, [`BlobError::NotFound`] if it is not stored.
    async fn read_prefix(&self, id: &BlobId, n: usize) -> Result<Vec<u8>, BlobError>;

    /// Deletes a stored blob (the garbage collector, after its row is gone). A blob already
    /// missing is not an error.
    async fn remove(&self, id: &BlobId) -> Result<(), BlobError>;

    /// Makes every blob written so far durable, for a store that defers it (see
    /// [`FsBlobStore::with_durability`]); the default has nothing to do.
    async fn sync_all(&self) -> Result<(), BlobError> {
        Ok(())
    }
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

/// The blob directory of a data directory (`file://DIR`): `blobs/<aa>/<64 hex>`, uploads staged
/// in `tmp/<random>.part`, fsynced file and directory before a blob is acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct FsBlobStore {
    blobs: PathBuf,
    tmp: PathBuf,
    /// Fsync each blob and its directories before it is acknowledged (the default). False only
    /// for `serment restore`'s staging directory, which calls [`BlobStore::sync_all`] once
    /// before it commits anything that names a blob.
    durable: bool,
    /// With `durable` false: the `blobs/` directory, opened before the first write, whose
    /// `syncfs(2)` then reports every writeback error since (REVIEW6 V4: an fd opened at the
    /// end would miss the errors of the writeback that ran while the blobs were written).
    sync_fd: Option<std::sync::Arc<std::fs::File>>,
}

/// Makes everything under `dir` durable: `syncfs(2)` of its file system through `fd` (opened
/// before the writes, so that their writeback errors are reported: Linux 5.8 and later) on
/// Linux, else an fsync of every file and directory below `dir`.
fn sync_tree(fd: &std::fs::File, dir: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = dir;
        rustix::fs::syncfs(fd)?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                sync_tree(fd, &e.path())?;
            } else {
                std::fs::File::open(e.path())?.sync_all()?;
            }
        }
        std::fs::File::open(dir)?.sync_all()
    }
}

impl FsBlobStore {
    /// Creates `blobs/` and `tmp/` under `dir` if missing and deletes leftover `tmp/*.part`
    /// files (uploads interrupted by a crash).
    #[cfg(test)]
    pub(crate) async fn open(dir: &Path) -> io::Result<FsBlobStore> {
        Self::open_with(dir, true).await
    }

    /// [`Self::open`], deleting the leftover `tmp/*.part` files only if `clean_tmp`: a reader
    /// beside a running server (`serment backup`) must leave its uploads in flight alone.
    pub(crate) async fn open_with(dir: &Path, clean_tmp: bool) -> io::Result<FsBlobStore> {
        let store = FsBlobStore {
            blobs: dir.join(BLOBS_DIR),
            tmp: dir.join(TMP_DIR),
            durable: true,
            sync_fd: None,
        };
        tokio::fs::create_dir_all(&store.blobs).await?;
        if !clean_tmp {
            return Ok(store);
        }
        tokio::fs::create_dir_all(&store.tmp).await?;
        let mut entries = tokio::fs::read_dir(&store.tmp).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                tokio::fs::remove_file(entry.path()).await?;
            }
        }
        Ok(store)
    }

    /// This store, fsyncing each blob (`durable`, the default) or leaving it to one
    /// [`BlobStore::sync_all`] at the end (`serment restore`), on the directory opened now.
    ///
    /// # Errors
    /// Opening `blobs/`.
    pub(crate) fn with_durability(mut self, durable: bool) -> io::Result<FsBlobStore> {
        self.durable = durable;
        self.sync_fd = if durable {
            None
        } else {
            Some(std::sync::Arc::new(std::fs::File::open(&self.blobs)?))
        };
        Ok(self)
    }

    fn path(&self, id: &BlobId) -> PathBuf {
        self.blobs.join(id.shard()).join(id.as_str())
    }

    async fn open_blob(&self, id: &BlobId) -> Result<(tokio::fs::File, u64), BlobError> {
        let file = match tokio::fs::File::open(self.path(id)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata().await?.len();
        Ok((file, len))
    }
}

/// A staged upload of [`FsBlobStore`]: the fsynced `tmp/*.part` file.
#[derive(Debug)]
struct FsStaged {
    store: FsBlobStore,
    id: BlobId,
    size: u64,
    tmp: TempFile,
}

#[async_trait::async_trait]
impl StagedBlob for FsStaged {
    fn id(&self) -> &BlobId {
        &self.id
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(mut self: Box<Self>) -> Result<bool, BlobError> {
        let Some(tmp_path) = self.tmp.path.clone() else {
            return Err(BlobError::Io(io::Error::other(
                "staged upload already used",
            )));
        };
        let final_path = self.store.path(&self.id);
        let shard = self.store.blobs.join(self.id.shard());
        let blobs = self.store.blobs.clone();
        let (durable, size) = (self.store.durable, self.size);
        // One trip to the blocking pool for all of it (a restore commits thousands of blobs).
        let created = tokio::task::spawn_blocking(move || -> io::Result<bool> {
            if let Ok(m) = std::fs::metadata(&final_path) {
                // Content-addressed: the same bytes are already stored; the guard deletes the
                // copy. Not trusted blindly where nothing was fsynced (a restore into a blob
                // directory a crashed earlier run left behind, REVIEW6 V4): a file of another
                // length is torn, and replaced below.
                if durable || m.len() == size {
                    return Ok(false);
                }
            }
            if !shard.try_exists()? {
                std::fs::create_dir_all(&shard)?;
                if durable {
                    std::fs::File::open(&blobs)?.sync_all()?;
                }
            }
            // rename(2) replaces an existing target; only this process writes under `blobs/`
            // and the bytes are the same, so a concurrent twin loses nothing.
            std::fs::rename(&tmp_path, &final_path)?;
            if durable {
                std::fs::File::open(&shard)?.sync_all()?;
            }
            Ok(true)
        })
        .await
        .map_err(|e| BlobError::Io(io::Error::other(e)))??;
        if created {
            self.tmp.keep();
        }
        Ok(created)
    }
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn stage(
        &self,
        body: ByteStream<String>,
        limit: u64,
        expected: Option<[u8; 32]>,
    ) -> Result<Box<dyn StagedBlob>, BlobError> {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|_| BlobError::Rng)?;
        let tmp_path = self.tmp.join(format!("{}.part", hex::encode(name)));
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut body = body;
        // The first GATHER bytes are gathered: a body that ends within them (most blobs) is
        // written, and fsynced when durable, in one trip to the blocking pool.
        let mut head: Vec<Bytes> = Vec::new();
        let mut held = 0usize;
        let mut ended = true;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Body)?;
            size = size.saturating_add(chunk.len() as u64);
            if size > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            held += chunk.len();
            head.push(chunk);
            if held >= GATHER {
                ended = false;
                break;
            }
        }
        let durable = self.durable;
        // The guard goes with the job: if this future is dropped while the job runs (a client
        // gone), the file it creates is removed when the job's result is dropped (REVIEW7 L2).
        let (file, guard) =
            tokio::task::spawn_blocking(move || -> io::Result<(std::fs::File, TempFile)> {
                use std::io::Write as _;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp_path)?;
                let guard = TempFile {
                    path: Some(tmp_path),
                };
                for c in &head {
                    file.write_all(c)?;
                }
                if ended && durable {
                    file.sync_all()?;
                }
                Ok((file, guard))
            })
            .await
            .map_err(|e| BlobError::Io(io::Error::other(e)))??;
        if !ended {
            // Body chunks are small (tens of KiB); gathering them costs one blocking-pool round
            // trip per 256 KiB instead of one per chunk.
            let mut file =
                tokio::io::BufWriter::with_capacity(WRITE_BUF, tokio::fs::File::from_std(file));
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(BlobError::Body)?;
                size = size.saturating_add(chunk.len() as u64);
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            if durable {
                file.get_mut().sync_all().await?;
            }
        } else {
            drop(file);
        }

        let digest: [u8; 32] = hasher.finalize().into();
        if expected.is_some_and(|e| e != digest) {
            return Err(BlobError::DigestMismatch);
        }
        Ok(Box::new(FsStaged {
            store: self.clone(),
            id: BlobId::of_digest(digest),
            size,
            tmp: guard,
        }))
    }

    /// One `syncfs(2)` of the file system holding `blobs/`: every file and directory written
    /// without an fsync reaches the disk (Linux; elsewhere, a walk that fsyncs each).
    async fn sync_all(&self) -> Result<(), BlobError> {
        let Some(fd) = self.sync_fd.clone() else {
            return Ok(());
        };
        let dir = self.blobs.clone();
        tokio::task::spawn_blocking(move || sync_tree(&fd, &dir))
            .await
            .map_err(|e| BlobError::Io(io::Error::other(e)))??;
        Ok(())
    }

    async fn get(&self, id: &BlobId) -> Result<(ByteStream<io::Error>, u64), BlobError> {
        let (file, len) = self.open_blob(id).await?;
        // 256 KiB reads: ReaderStream's 4 KiB default costs a blocking-pool round trip per
        // 4 KiB.
        let stream = tokio_util::io::ReaderStream::with_capacity(file, WRITE_BUF);
        Ok((Box::pin(stream), len))
    }

    async fn read_prefix(&self, id: &BlobId, n: usize) -> Result<Vec<u8>, BlobError> {
        let (mut file, len) = self.open_blob(id).await?;
        if len < n as u64 {
            return Err(BlobError::TooShort);
        }
        let mut buf = vec![0u8; n];
        file.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn remove(&self, id: &BlobId) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    pub(crate) fn tmpdir(name: &str) -> PathBuf {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let p = std::env::temp_dir().join(format!("serment-blobs-{name}-{}", hex::encode(r)));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub(crate) fn count(dir: &Path) -> usize {
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
    async fn open_removes_leftover_parts() {
        let dir = tmpdir("leftover");
        std::fs::create_dir_all(dir.join(TMP_DIR)).unwrap();
        std::fs::write(dir.join(TMP_DIR).join("x.part"), b"junk").unwrap();
        FsBlobStore::open(&dir).await.unwrap();
        assert_eq!(count(&dir.join(TMP_DIR)), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

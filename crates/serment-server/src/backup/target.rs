//! Where a backup lives (docs/BACKUP.md §4): a local directory of append-only files
//! (`file:///DIR`) or an S3-compatible bucket (`s3://BUCKET[/PREFIX]`, conditional create).
//!
//! Both only ever create objects: an object that exists is never rewritten. Creating one that
//! exists with the same bytes is a no-op (an increment redone after a crash); with other bytes it
//! is an error ([`BackupError::Exists`]).
//!
//! A bucket's objects are read from their oldest version ([`super::versions`], REVIEW5 U8): an
//! unconditional `PutObject` over a key (a new current version) is never what is read.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetResult, ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload,
};

use super::BackupError;
use super::format::{MAX_ALT_NAMES, alt_key};
pub use super::versions::ShadowedKeys;
use super::versions::{Lookup, Oldest, Versions};

/// What [`Target::get_bounded`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// No such object.
    Missing,
    /// The object is larger than the bound (not read).
    TooLarge,
    /// Its bytes.
    Bytes(Vec<u8>),
}

/// What [`Target::get_stream`] found.
pub(crate) enum Streamed {
    /// No such object.
    Missing,
    /// The object is larger than the bound (not read).
    TooLarge,
    /// Its bytes, in pieces of at most [`READ_BUF`] bytes (never more than the bound in all).
    Stream(futures_util::stream::BoxStream<'static, Result<axum::body::Bytes, BackupError>>),
}

/// The size of the reads of [`Target::get_stream`] from a directory: memory per object read
/// is this, whatever the object's size.
pub(crate) const READ_BUF: usize = 256 * 1024;

/// A backup target.
#[derive(Debug, Clone)]
pub enum Target {
    /// A local directory: files created with `O_EXCL` semantics (hard link of a fsynced,
    /// read-only temporary file), the directory fsynced after each.
    Dir(PathBuf),
    /// An S3-compatible bucket: `PutObject` with `If-None-Match: *`; every object read from its
    /// oldest version (REVIEW5 U8).
    S3 {
        /// The bucket client.
        store: Arc<dyn ObjectStore>,
        /// The key prefix.
        prefix: ObjectPath,
        /// The URL as given.
        url: String,
        /// The version listing of the bucket: which version of a key is read.
        versions: Arc<Versions>,
    },
}

impl Target {
    /// Parses `file:///ABSOLUTE/DIR` or `s3://BUCKET[/PREFIX]` (S3 endpoint, region and
    /// credentials from the standard `AWS_*` variables, as for `blob_url`).
    ///
    /// # Errors
    /// [`BackupError::Url`] for any other URL.
    pub fn parse(url: &str) -> Result<Target, BackupError> {
        let err = |reason: &str| BackupError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = url.strip_prefix("file://") {
            let p = PathBuf::from(path);
            if !p.is_absolute() {
                return Err(err("expected file:///ABSOLUTE/DIR"));
            }
            return Ok(Target::Dir(p));
        }
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| err("expected file:///DIR or s3://BUCKET[/PREFIX]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("the bucket name is empty"));
        }
        let prefix = ObjectPath::parse(prefix.trim_end_matches('/'))
            .map_err(|e| err(&format!("bad key prefix: {e}")))?;
        // rustls over ring as the process default, as for the blob store (store/object.rs).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A SHA-256 checksum on every PUT: S3 (and moto) require one to write into a bucket with
        // Object Lock, and it makes the service check the bytes it stored.
        // S3 asks an upload into a bucket with a default Object Lock retention to name its
        // checksum algorithm (`x-amz-sdk-checksum-algorithm`, as the AWS SDKs send it beside
        // `x-amz-checksum-sha256`); object_store sends only the checksum. The client options
        // replace the environment's, so `AWS_ALLOW_HTTP` (loopback test servers) is read again.
        let mut headers = object_store::HeaderMap::new();
        headers.insert(
            "x-amz-sdk-checksum-algorithm",
            object_store::HeaderValue::from_static("SHA256"),
        );
        let allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true");
        let options = object_store::ClientOptions::new()
            .with_default_headers(headers)
            .with_allow_http(allow_http);
        let builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
            .with_client_options(options.clone());
        let store = builder.clone().build().map_err(|e| err(&e.to_string()))?;
        let versions = Versions::new(&store, &builder, &options, bucket, prefix.as_ref())
            .map_err(|e| err(&e))?;
        Ok(Target::S3 {
            store: Arc::new(store),
            prefix,
            url: url.to_owned(),
            versions: Arc::new(versions),
        })
    }

    fn object_path(prefix: &ObjectPath, key: &str) -> ObjectPath {
        key.split('/').fold(prefix.clone(), |p, part| p.join(part))
    }

    /// Creates `key` with `bytes` unless it exists. Returns whether it was created now.
    ///
    /// # Errors
    /// [`BackupError::Exists`] if it exists with other bytes (or is no object this target can
    /// read: a FIFO, a directory, an archived object); [`BackupError::Target`] on I/O.
    pub async fn put_new(&self, key: &str, bytes: Vec<u8>) -> Result<bool, BackupError> {
        self.put_new_bytes(key, axum::body::Bytes::from(bytes))
            .await
    }

    /// Creates the object under its own name `key`, or, when that name holds other bytes
    /// (taken by anyone able to create objects in the target: REVIEW5 U6), under the first of
    /// `key.1`, `key.2`, ... ([`alt_key`], at most [`MAX_ALT_NAMES`]) that is free or holds
    /// these bytes (an increment redone after a crash takes the same name again). Returns the
    /// key the bytes are under: the manifest names it.
    ///
    /// # Errors
    /// [`BackupError::Taken`] if every name holds other bytes; [`BackupError::Target`] on I/O.
    pub async fn put_unblockable(&self, key: &str, bytes: Vec<u8>) -> Result<String, BackupError> {
        let bytes = axum::body::Bytes::from(bytes);
        for n in 0..=MAX_ALT_NAMES {
            let name = alt_key(key, n);
            match self.put_new_bytes(&name, bytes.clone()).await {
                Ok(_) => {
                    if n > 0 {
                        tracing::warn!(
                            key,
                            written = name,
                            "backup target: the object's name is taken by other contents \
                             (run verify-backup); written under another name"
                        );
                    }
                    return Ok(name);
                }
                Err(BackupError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Err(BackupError::Taken(key.to_owned()))
    }

    async fn put_new_bytes(
        &self,
        key: &str,
        bytes: axum::body::Bytes,
    ) -> Result<bool, BackupError> {
        let created = match self {
            Target::Dir(dir) => {
                let (dir, key2) = (dir.clone(), key.to_owned());
                let b = bytes.clone();
                tokio::task::spawn_blocking(move || put_file(&dir, &key2, &b))
                    .await
                    .map_err(|e| BackupError::Target(e.to_string()))??
            }
            Target::S3 { store, prefix, .. } => {
                let path = Self::object_path(prefix, key);
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                match store
                    .put_opts(&path, PutPayload::from(bytes.clone()), opts)
                    .await
                {
                    Ok(_) => true,
                    // moto answers a conditional create on an existing key with 412.
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. }) => false,
                    Err(e) => return Err(BackupError::Target(format!("{key}: {e}"))),
                }
            }
        };
        if !created {
            // Bounded: other bytes than ours, of whatever size, are not read past our length
            // (REVIEW5 U6). What cannot be read at all (a FIFO, a directory, a symlink, an
            // archived or SSE-C object) is not ours either.
            match self.get_bounded(key, bytes.len() as u64).await {
                Ok(Fetched::Bytes(existing)) if existing.as_slice() == bytes.as_ref() => {}
                Ok(_) => return Err(BackupError::Exists(key.to_owned())),
                Err(e) => {
                    tracing::warn!(key, error = %e, "backup target: an existing object cannot be read");
                    return Err(BackupError::Exists(key.to_owned()));
                }
            }
        }
        Ok(created)
    }

    /// The bytes of `key`, `None` if it does not exist.
    ///
    /// # Errors
    /// [`BackupError::Target`] on I/O.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackupError> {
        match self {
            Target::Dir(dir) => match tokio::fs::read(dir.join(key)).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(BackupError::Target(format!("{key}: {e}"))),
            },
            Target::S3 {
                store,
                prefix,
                versions,
                ..
            } => {
                let path = Self::object_path(prefix, key);
                let Some(o) = locate(store, versions, &path, key).await? else {
                    return Ok(None);
                };
                match read_version(store, &path, o).await {
                    Ok(r) => Ok(Some(
                        r.bytes()
                            .await
                            .map_err(|e| BackupError::Target(format!("{key}: {e}")))?
                            .to_vec(),
                    )),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(BackupError::Target(format!("{key}: {e}"))),
                }
            }
        }
    }

    /// The bytes of `key` if it holds at most `max` bytes: the object is never read past
    /// `max + 1` bytes (a target anyone can create objects in may hold a huge one, or a device).
    ///
    /// # Errors
    /// [`BackupError::Target`] on I/O.
    pub async fn get_bounded(&self, key: &str, max: u64) -> Result<Fetched, BackupError> {
        let io = |e: &dyn std::fmt::Display| BackupError::Target(format!("{key}: {e}"));
        match self {
            Target::Dir(dir) => {
                let path = dir.join(key);
                tokio::task::spawn_blocking(move || match open_regular(&path)? {
                    None => Ok(Fetched::Missing),
                    Some((_, len)) if len > max => Ok(Fetched::TooLarge),
                    Some((f, len)) => read_whole(f, len, max),
                })
                .await
                .map_err(|e| io(&e))?
                .map_err(|e| io(&e))
            }
            Target::S3 {
                store,
                prefix,
                versions,
                ..
            } => {
                let path = Self::object_path(prefix, key);
                let o = match locate(store, versions, &path, key).await? {
                    None => return Ok(Fetched::Missing),
                    Some(o) if o.size > max => return Ok(Fetched::TooLarge),
                    Some(o) => o,
                };
                match read_version(store, &path, o).await {
                    Ok(r) => {
                        // A version does not change between listing and get; bounded anyway.
                        let mut bytes = Vec::new();
                        let mut stream = r.into_stream();
                        while let Some(chunk) = stream.next().await {
                            bytes.extend_from_slice(&chunk.map_err(|e| io(&e))?);
                            if bytes.len() as u64 > max {
                                return Ok(Fetched::TooLarge);
                            }
                        }
                        Ok(Fetched::Bytes(bytes))
                    }
                    Err(object_store::Error::NotFound { .. }) => Ok(Fetched::Missing),
                    Err(e) => Err(io(&e)),
                }
            }
        }
    }

    /// The bytes of `key` as a stream of pieces, if it holds at most `max` bytes (a longer object
    /// is cut after `max + 1` bytes: the reader sees it is too long without holding it). Memory
    /// is one piece at a time, whatever the object's size (docs/BACKUP.md §7, bounded memory).
    ///
    /// # Errors
    /// [`BackupError::Target`] on I/O (opening; reading errors come through the stream).
    pub(crate) async fn get_stream(&self, key: &str, max: u64) -> Result<Streamed, BackupError> {
        let owned = key.to_owned();
        let io = move |e: &dyn std::fmt::Display| BackupError::Target(format!("{owned}: {e}"));
        match self {
            Target::Dir(dir) => {
                use tokio::io::AsyncReadExt as _;
                // One trip to the blocking pool opens the file and, when it is small (most
                // blobs of a backup), reads it whole.
                let path = dir.join(key);
                let opened = tokio::task::spawn_blocking(move || {
                    Ok::<_, std::io::Error>(match open_regular(&path)? {
                        None => Opened::Missing,
                        Some((_, len)) if len > max => Opened::TooLarge,
                        Some((f, len)) if len <= READ_BUF as u64 => {
                            match read_whole(f, len, max)? {
                                Fetched::Bytes(b) => Opened::Whole(b),
                                Fetched::TooLarge => Opened::TooLarge,
                                Fetched::Missing => Opened::Missing,
                            }
                        }
                        Some((f, _)) => Opened::File(f),
                    })
                })
                .await
                .map_err(|e| io(&e))?
                .map_err(|e| io(&e))?;
                match opened {
                    Opened::Missing => Ok(Streamed::Missing),
                    Opened::TooLarge => Ok(Streamed::TooLarge),
                    Opened::Whole(b) => Ok(Streamed::Stream(
                        futures_util::stream::once(std::future::ready(Ok(
                            axum::body::Bytes::from(b),
                        )))
                        .boxed(),
                    )),
                    Opened::File(f) => {
                        let reader = tokio::fs::File::from_std(f).take(max.saturating_add(1));
                        let s = tokio_util::io::ReaderStream::with_capacity(reader, READ_BUF)
                            .map(move |r| r.map_err(|e| io(&e)));
                        Ok(Streamed::Stream(s.boxed()))
                    }
                }
            }
            Target::S3 {
                store,
                prefix,
                versions,
                ..
            } => {
                let path = Self::object_path(prefix, key);
                let o = match locate(store, versions, &path, key).await? {
                    None => return Ok(Streamed::Missing),
                    Some(o) if o.size > max => return Ok(Streamed::TooLarge),
                    Some(o) => o,
                };
                match read_version(store, &path, o).await {
                    Ok(r) => Ok(Streamed::Stream(
                        r.into_stream().map(move |c| c.map_err(|e| io(&e))).boxed(),
                    )),
                    Err(object_store::Error::NotFound { .. }) => Ok(Streamed::Missing),
                    Err(e) => Err(io(&e)),
                }
            }
        }
    }

    /// The keys directly under `dir` (`manifests`, `entries`, ...), sorted.
    ///
    /// # Errors
    /// [`BackupError::Target`] on I/O.
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, BackupError> {
        let mut keys = match self {
            Target::Dir(root) => match std::fs::read_dir(root.join(dir)) {
                Ok(rd) => {
                    let mut v = Vec::new();
                    for e in rd {
                        let e = e.map_err(|e| BackupError::Target(format!("{dir}: {e}")))?;
                        if let Some(n) = e.file_name().to_str() {
                            v.push(format!("{dir}/{n}"));
                        }
                    }
                    v
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(BackupError::Target(format!("{dir}: {e}"))),
            },
            Target::S3 {
                store,
                prefix,
                versions,
                ..
            } => {
                // Every key with an object version, its oldest remembered for the reads.
                if let Some(keys) = versions.list_dir(dir).await? {
                    return Ok(keys);
                }
                let base = Self::object_path(prefix, dir);
                let mut list = store.list(Some(&base));
                let mut v = Vec::new();
                let strip = if prefix.as_ref().is_empty() {
                    String::new()
                } else {
                    format!("{}/", prefix.as_ref())
                };
                while let Some(m) = list.next().await {
                    let m = m.map_err(|e| BackupError::Target(format!("{dir}: {e}")))?;
                    let full = m.location.as_ref();
                    v.push(full.strip_prefix(&strip).unwrap_or(full).to_owned());
                }
                v
            }
        };
        keys.sort();
        Ok(keys)
    }

    /// The keys of a bucket read so far that have versions after their first one (REVIEW5 U8:
    /// written without `If-None-Match`, by someone holding the backup's credentials); their
    /// oldest version is what was read. Empty for a directory.
    pub fn shadowed(&self) -> ShadowedKeys {
        match self {
            Target::Dir(_) => ShadowedKeys::default(),
            Target::S3 { versions, .. } => versions.shadowed(),
        }
    }

    /// The URL or directory, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Dir(d) => format!("file://{}", d.display()),
            Target::S3 { url, .. } => url.clone(),
        }
    }
}

/// The version of the object at `path` (`key`, relative) that is read: its oldest (REVIEW5 U8),
/// or, on a service without version listing, the current one (`None`: no such object).
async fn locate(
    store: &Arc<dyn ObjectStore>,
    versions: &Versions,
    path: &ObjectPath,
    key: &str,
) -> Result<Option<Oldest>, BackupError> {
    match versions.lookup(key).await? {
        Lookup::Found(o) => Ok(Some(o)),
        Lookup::Missing => Ok(None),
        Lookup::Unsupported => match store.head(path).await {
            Ok(m) => Ok(Some(Oldest {
                version: None,
                size: m.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BackupError::Target(format!("{key}: {e}"))),
        },
    }
}

/// A GET of that version.
async fn read_version(
    store: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    o: Oldest,
) -> object_store::Result<GetResult> {
    let opts = GetOptions {
        version: o.version,
        ..GetOptions::default()
    };
    store.get_opts(path, opts).await
}

/// What [`open_regular`] found, read whole when small, for [`Target::get_stream`].
enum Opened {
    Missing,
    TooLarge,
    Whole(Vec<u8>),
    File(std::fs::File),
}

/// Opens a file of a directory target for reading, with its length; `None` if it does not
/// exist. Only a regular file: never through a symbolic link, never blocking on a FIFO (a
/// target anyone can create objects in may hold either). Blocking: called on the blocking pool,
/// one trip for all its system calls.
fn open_regular(path: &Path) -> std::io::Result<Option<(std::fs::File, u64)>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let not_regular = || std::io::Error::other("not a regular file");
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_file() {
        return Err(not_regular());
    }
    let flags = (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW).bits();
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags).map_err(std::io::Error::other)?)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular());
    }
    Ok(Some((f, meta.len())))
}

/// Reads an opened file of `len` bytes whole, never past `max + 1` bytes (it may grow).
fn read_whole(f: std::fs::File, len: u64, max: u64) -> std::io::Result<Fetched> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(max)).unwrap_or(0));
    f.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(Fetched::TooLarge);
    }
    Ok(Fetched::Bytes(bytes))
}

/// Writes `dir/key` once: a temporary file in `dir/.tmp`, written, fsynced and made read-only,
/// then hard-linked to its name (which fails if the name exists: never a rewrite), then the
/// directory is fsynced. Returns false if the name already existed. Directories are made 0700
/// and files 0400, like the server's data directory (the newcomer's N10: the backup holds the
/// log's entries, sealed documents and side objects, readable by no other local user).
fn put_file(dir: &Path, key: &str, bytes: &[u8]) -> Result<bool, BackupError> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let io = |e: std::io::Error| BackupError::Target(format!("{key}: {e}"));
    let dest = dir.join(key);
    let parent = dest
        .parent()
        .ok_or_else(|| BackupError::Target(format!("{key}: no parent directory")))?;
    let private_dirs = || {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        b
    };
    private_dirs().create(parent).map_err(io)?;
    let tmpdir = dir.join(".tmp");
    private_dirs().create(&tmpdir).map_err(io)?;
    let mut name = [0u8; 16];
    getrandom::fill(&mut name).map_err(|_| BackupError::Target("no randomness".into()))?;
    let tmp = tmpdir.join(hex::encode(name));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        let mut perm = f.metadata()?.permissions();
        perm.set_readonly(true);
        f.set_permissions(perm)?;
        f.sync_all()?;
        drop(f);
        match std::fs::hard_link(&tmp, &dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    let created = result.map_err(io)?;
    if created {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(created)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_target_never_rewrites_an_object() {
        let dir = crate::store::blobs::tests::tmpdir("backup-target");
        let t = Target::parse(&format!("file://{}", dir.display())).unwrap();
        assert!(t.put_new("manifests/0", b"one".to_vec()).await.unwrap());
        // The same bytes again: an increment redone after a crash.
        assert!(!t.put_new("manifests/0", b"one".to_vec()).await.unwrap());
        // Other bytes under the same name: refused, the original stays.
        assert!(matches!(
            t.put_new("manifests/0", b"two".to_vec()).await,
            Err(BackupError::Exists(_))
        ));
        assert_eq!(t.get("manifests/0").await.unwrap().unwrap(), b"one");
        let meta = std::fs::metadata(dir.join("manifests/0")).unwrap();
        assert!(meta.permissions().readonly());
        // Readable by the server's user only (the newcomer's N10).
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(meta.permissions().mode() & 0o777, 0o400);
        let sub = std::fs::metadata(dir.join("manifests")).unwrap();
        assert_eq!(sub.permissions().mode() & 0o777, 0o700);
        assert_eq!(t.list("manifests").await.unwrap(), vec!["manifests/0"]);
        assert!(Target::parse("file://relative/dir").is_err());
        assert!(Target::parse("http://x").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A fresh bucket on the S3 test server (`.ci/s3.sh`), with versioning when `versioned`,
    /// and its target under `srv/`; `None` (with a message) without a server, outside CI.
    async fn s3_target(name: &str, versioned: bool) -> Option<Target> {
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
        // Bucket settings are outside object_store's API; moto accepts unsigned requests.
        // reqwest has no crypto provider of its own: ring, as `Target::parse` installs it.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let status = http
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("the S3 test server answers")
            .status();
        assert!(status.is_success(), "create bucket {bucket}: {status}");
        if versioned {
            let status = http
                .put(format!("{endpoint}/{bucket}?versioning"))
                .body("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>")
                .send()
                .await
                .unwrap()
                .status();
            assert!(status.is_success(), "versioning {bucket}: {status}");
        }
        Some(Target::parse(&format!("s3://{bucket}/srv")).unwrap())
    }

    /// REVIEW5 U8: in a versioned bucket, objects over which someone wrote without
    /// `If-None-Match` (a new version, two, a delete marker) are read from their oldest version
    /// by `list`, `get`, `get_bounded` and `get_stream`, listed across pages, and named by
    /// `shadowed` with how many entries came after; a key that is a prefix of another is read
    /// alone; an increment redone over a shadowed object is accepted (the oldest holds its
    /// bytes). A bucket without versioning reads as before.
    #[tokio::test]
    async fn a_bucket_is_read_from_the_oldest_versions() {
        let Some(t) = s3_target("versions", true).await else {
            return;
        };
        let Target::S3 {
            store,
            prefix,
            versions,
            ..
        } = &t
        else {
            unreachable!()
        };
        versions.set_page_keys(7);
        for i in 0..30 {
            let key = format!("entries/{i:03}");
            assert!(
                t.put_new(&key, format!("entry {i}").into_bytes())
                    .await
                    .unwrap()
            );
        }
        assert!(t.put_new("blobs/x", b"ours x".to_vec()).await.unwrap());
        assert!(t.put_new("blobs/x.1", b"ours x.1".to_vec()).await.unwrap());
        let junk = |k: &str| {
            let path = Target::object_path(prefix, k);
            let store = Arc::clone(store);
            async move {
                store
                    .put(&path, PutPayload::from_static(b"junk written over it"))
                    .await
                    .unwrap();
            }
        };
        junk("entries/007").await;
        junk("entries/029").await;
        junk("entries/029").await;
        junk("blobs/x").await;
        store
            .delete(&Target::object_path(prefix, "entries/013"))
            .await
            .unwrap();
        // What a plain read now gives: the junk.
        let current = store
            .get(&Target::object_path(prefix, "blobs/x"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&current[..], b"junk written over it");

        let keys = t.list("entries").await.unwrap();
        assert_eq!(keys.len(), 30, "{keys:?}");
        assert_eq!(keys[13], "entries/013");
        assert_eq!(t.get("entries/007").await.unwrap().unwrap(), b"entry 7");
        assert_eq!(
            t.get_bounded("entries/029", 100).await.unwrap(),
            Fetched::Bytes(b"entry 29".to_vec())
        );
        assert_eq!(
            t.get_bounded("entries/013", 100).await.unwrap(),
            Fetched::Bytes(b"entry 13".to_vec())
        );
        // The bound is the oldest version's length, not the junk's.
        assert_eq!(
            t.get_bounded("entries/007", 7).await.unwrap(),
            Fetched::Bytes(b"entry 7".to_vec())
        );
        // Keys not listed before: looked up one by one.
        let Streamed::Stream(s) = t.get_stream("blobs/x", 100).await.unwrap() else {
            panic!("blobs/x not found");
        };
        let got: Vec<axum::body::Bytes> = s.map(Result::unwrap).collect().await;
        assert_eq!(got.concat(), b"ours x");
        assert_eq!(
            t.get_bounded("blobs/x.1", 100).await.unwrap(),
            Fetched::Bytes(b"ours x.1".to_vec())
        );
        assert_eq!(
            t.get_bounded("blobs/y", 100).await.unwrap(),
            Fetched::Missing
        );
        assert!(matches!(
            t.get_stream("blobs/x", 5).await.unwrap(),
            Streamed::TooLarge
        ));
        // An increment redone: the same bytes are in place (the oldest version).
        assert!(!t.put_new("blobs/x", b"ours x".to_vec()).await.unwrap());
        let shadowed = t.shadowed();
        let named: Vec<(&str, u64)> = shadowed
            .named
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        assert_eq!(
            named,
            vec![
                ("blobs/x", 1),
                ("entries/007", 1),
                ("entries/013", 1),
                ("entries/029", 2)
            ]
        );
        assert!(!shadowed.more);

        // No versioning: read plainly (version id `null`), nothing shadowed.
        let Some(t) = s3_target("unversioned", false).await else {
            return;
        };
        assert!(t.put_new("entries/000", b"entry".to_vec()).await.unwrap());
        assert_eq!(t.list("entries").await.unwrap(), vec!["entries/000"]);
        assert_eq!(t.get("entries/000").await.unwrap().unwrap(), b"entry");
        assert_eq!(
            t.get_bounded("entries/000", 5).await.unwrap(),
            Fetched::Bytes(b"entry".to_vec())
        );
        assert_eq!(t.shadowed(), ShadowedKeys::default());
    }

    /// REVIEW5 U6: an object's own name taken (other bytes), then a FIFO, a directory and a
    /// huge sparse file under its next names: it is written under the first free name, without
    /// blocking on the FIFO or reading the huge file; again (an increment redone) it lands on the
    /// same name; with every name taken, a clear error.
    #[tokio::test]
    async fn a_taken_name_is_written_under_the_next_one_and_never_blocks() {
        use super::super::format::{MAX_ALT_NAMES, alt_key};
        let dir = crate::store::blobs::tests::tmpdir("backup-taken");
        let t = Target::parse(&format!("file://{}", dir.display())).unwrap();
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("x"), b"othr").unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(blobs.join("x.1"))
            .status()
            .unwrap();
        assert!(fifo.success());
        std::fs::create_dir(blobs.join("x.2")).unwrap();
        std::fs::File::create(blobs.join("x.3"))
            .unwrap()
            .set_len((64 << 20) + 1)
            .unwrap();
        let put = |key: &'static str| {
            let t = t.clone();
            async move {
                tokio::time::timeout(
                    std::time::Duration::from_secs(20),
                    t.put_unblockable(key, b"ours".to_vec()),
                )
                .await
                .expect("blocked")
            }
        };
        assert_eq!(put("blobs/x").await.unwrap(), "blobs/x.4");
        assert_eq!(std::fs::read(blobs.join("x.4")).unwrap(), b"ours");
        assert_eq!(put("blobs/x").await.unwrap(), "blobs/x.4");
        // Its own name free: its own name.
        assert_eq!(put("blobs/y").await.unwrap(), "blobs/y");
        for n in 0..=MAX_ALT_NAMES {
            std::fs::write(dir.join(alt_key("blobs/z", n)), b"junk").unwrap();
        }
        let err = put("blobs/z").await.unwrap_err();
        assert!(matches!(err, BackupError::Taken(_)), "{err}");
        assert!(err.to_string().contains("new prefix"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

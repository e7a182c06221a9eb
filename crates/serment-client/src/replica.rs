//! The offline replica (issue 12 §4, PROTOCOL.md §14): `serment sync` keeps, in the client's
//! state directory, what this device may read -- each document version's sealed blob, its wrap,
//! and every log proof and checkpoint its open needs -- encrypted at rest under a key derived
//! from the keystore's device secret; `serment ls --offline` and `serment get --offline` read
//! from it with no network at all.
//!
//! Design: no second verifier. `sync` opens each new version with the online
//! [`Session::get`] (every check: the log proofs of the wrap, the author's records, the
//! document's signature and chunk hashes), through a transport that records each `GET`
//! answer; a version that does not verify is not stored, and the sync stops (the previous
//! replica stays as it was). An offline `get` runs the same [`Session::get`] again over a
//! transport that replays those answers, with the session's pin set, in memory only, to the
//! checkpoint pinned when the version was recorded. Each file is AES-256-GCM sealed, bound to
//! its own name (a file put in another's place does not open), and its SHA-256 is in the
//! manifest (an older copy is refused); the manifest's SHA-256 is in the encrypted keystore
//! (an older manifest is refused).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serment_core::DocId;
use serment_core::codec::{Reader, Writer};
use serment_core::log::note::SignedCheckpoint;
use zeroize::Zeroizing;

use crate::api::Api;
use crate::documents::GetResult;
use crate::error::{ClientError, Result};
use crate::fsutil::write_atomic;
use crate::http::{HttpTransport, Method, Request, Response, read_limited};
use crate::keystore::{Keystore, ReplicaAnchor};
use crate::vault::Session;

/// The replica file magic (PROTOCOL.md §14).
pub const MAGIC: &[u8; 4] = b"SRPL";
/// The replica file format version.
pub const FORMAT_VERSION: u16 = 1;
/// Suite 1: the key is HKDF-SHA256 (RFC 5869) of the device's X25519 secret, the files are
/// AES-256-GCM (NIST SP 800-38D) sealed.
pub const SUITE: u16 = 1;
/// The HKDF `info` of the replica key (PROTOCOL.md §3).
pub const KEY_LABEL: &[u8] = b"serment/v1/replica-key";
/// The largest sealed version `serment sync` keeps, in bytes (a larger one is listed as
/// skipped: the replica holds each version in one AEAD message, read whole).
pub const MAX_REPLICA_VERSION: u64 = 64 * 1024 * 1024;
/// The largest replica file read, in bytes: a version at the limit plus its proofs.
const MAX_FILE: u64 = MAX_REPLICA_VERSION + 16 * 1024 * 1024;
/// The manifest's file name (and its AEAD name).
pub const MANIFEST: &str = "manifest";
const EXT: &str = "srpl";
/// Header bytes before the ciphertext: magic, version, suite, nonce.
const HEADER_LEN: usize = 4 + 2 + 2 + NONCE_LEN;

fn tampered(what: &'static str) -> ClientError {
    ClientError::Integrity(serment_core::Error::ContextMismatch(what))
}

/// The replica key: 32 bytes, HKDF-SHA256 of the device's X25519 secret (PROTOCOL.md §14).
/// `Debug` shows nothing; zeroized on drop.
pub struct ReplicaKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for ReplicaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplicaKey(..)")
    }
}

/// The output length of an HKDF expansion (ring's `KeyType`).
struct Len32;
impl ring::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl ReplicaKey {
    /// `HKDF-SHA256(salt = "", ikm = secret, info = "serment/v1/replica-key", L = 32)`.
    pub fn derive(device_encryption_secret: &[u8; 32]) -> ReplicaKey {
        let prk =
            ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(device_encryption_secret);
        let mut out = Zeroizing::new([0u8; 32]);
        // Cannot fail: 32 bytes is far below HKDF-SHA256's 255 * 32 limit.
        #[allow(clippy::expect_used)]
        prk.expand(&[KEY_LABEL], Len32)
            .and_then(|okm| okm.fill(out.as_mut()))
            .expect("HKDF-SHA256 expands to 32 bytes");
        ReplicaKey(out)
    }

    /// The key of `ks`'s device.
    pub fn of(ks: &Keystore) -> ReplicaKey {
        ReplicaKey::derive(&ks.device.encryption_secret())
    }

    fn aead(&self) -> LessSafeKey {
        // Cannot fail: the key is 32 bytes, AES-256-GCM's key length.
        #[allow(clippy::expect_used)]
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, self.0.as_ref()).expect("a 32-byte key"))
    }

    /// Seals `plaintext` as the replica file named `name`, with a fresh random nonce.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] if the system's random generator fails.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ClientError::Integrity(serment_core::Error::Rng))?;
        Ok(self.seal_with_nonce(name, plaintext, nonce))
    }

    /// [`ReplicaKey::seal`] with a given nonce (the test vector; a writer draws a fresh one).
    pub fn seal_with_nonce(&self, name: &str, plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&SUITE.to_be_bytes());
        out.extend_from_slice(&nonce);
        let aad = aad(&out, name);
        let mut body = plaintext.to_vec();
        // Cannot fail: AES-256-GCM seals up to 2^36 bytes; replica files are capped far below.
        #[allow(clippy::expect_used)]
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .expect("a replica file under the AES-GCM limit");
        out.extend_from_slice(&body);
        out
    }

    /// Opens the replica file named `name`.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] for another magic, version or suite, or a file that does not
    /// open under this key and name (altered, another file put in its place, or another
    /// device's).
    pub fn open(&self, name: &str, file: &[u8]) -> Result<Vec<u8>> {
        let mut r = Reader::new(file, "replica file");
        let bad = |_| tampered("a replica file is not a replica file (bad magic or truncated)");
        r.magic(MAGIC).map_err(bad)?;
        if r.u16().map_err(bad)? != FORMAT_VERSION || r.u16().map_err(bad)? != SUITE {
            return Err(ClientError::Integrity(
                serment_core::Error::UnsupportedVersion {
                    what: "replica file",
                    version: 0,
                },
            ));
        }
        let nonce = r.array::<NONCE_LEN>().map_err(bad)?;
        let header = file
            .get(..HEADER_LEN)
            .ok_or(tampered("a truncated replica file"))?;
        let mut body = r.rest().to_vec();
        let plain = self
            .aead()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(header, name)),
                &mut body,
            )
            .map_err(|_| {
                tampered(
                    "a replica file does not open under this device's replica key: altered, \
                     another file put in its place, or written by another device",
                )
            })?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }
}

/// The AEAD associated data: the file header, a zero byte, the file's name.
fn aad(header: &[u8], name: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(header.len() + 1 + name.len());
    a.extend_from_slice(header);
    a.push(0);
    a.extend_from_slice(name.as_bytes());
    a
}

/// SHA-256, hex.
fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

/// One version in the replica, with what `ls --offline` shows of it (from its verified sealed
/// metadata).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplicaVersion {
    /// The document (32 hex).
    pub doc_id: String,
    /// The version.
    pub doc_version: u32,
    /// SHA-256 (hex) of the version's replica file.
    pub file_sha256: String,
    /// The author's handle, as the open resolved it.
    pub author: String,
    /// The author device whose signature was verified (hex).
    pub author_device: String,
    /// The sealed title.
    #[serde(default)]
    pub title: Option<String>,
    /// The sealed MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// The sealed FHIR resource type.
    #[serde(default)]
    pub resource_type: Option<String>,
    /// RFC 3339 time of sealing, as the author wrote it.
    #[serde(default)]
    pub created: Option<String>,
    /// Plaintext length, bytes.
    pub content_length: u64,
    /// Sealed length, bytes.
    pub sealed_bytes: u64,
}

impl ReplicaVersion {
    /// The version's file name (also its AEAD name): `<doc_id>-v<version>.srpl`.
    pub fn file_name(&self) -> String {
        file_name(&self.doc_id, self.doc_version)
    }
}

fn file_name(doc_id: &str, v: u32) -> String {
    format!("{doc_id}-v{v}.{EXT}")
}

fn key_of(doc_id: &str, v: u32) -> String {
    format!("{doc_id}/{v}")
}

/// The replica's manifest (the JSON plaintext of `manifest.srpl`, PROTOCOL.md §14).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manifest {
    /// The server copied (its base URL).
    pub server: String,
    /// When the sync that wrote it ended, seconds since the Unix epoch.
    pub synced_at: u64,
    /// The checkpoint pinned at the end of that sync (the signed note).
    pub checkpoint: Option<String>,
    /// Every version held, by `<doc_id>/<version>`.
    pub versions: BTreeMap<String, ReplicaVersion>,
    /// Documents whose erasure the log proved (PROTOCOL.md §11.3.2): never stored again.
    #[serde(default)]
    pub erased: BTreeSet<String>,
}

impl Manifest {
    /// The size of the recorded checkpoint (0 without one).
    pub fn checkpoint_size(&self) -> u64 {
        self.checkpoint
            .as_deref()
            .and_then(|n| SignedCheckpoint::parse(n).ok())
            .map_or(0, |c| c.checkpoint.size)
    }

    /// The newest version of `doc_id` held.
    pub fn newest(&self, doc_id: &str) -> Option<u32> {
        self.versions
            .values()
            .filter(|v| v.doc_id == doc_id)
            .map(|v| v.doc_version)
            .max()
    }
}

/// The replica directory's manifest, checked against the keystore's anchor.
///
/// # Errors
/// [`ClientError::NotInReplica`] if this device never synced (no anchor, or no manifest
/// file); [`ClientError::Integrity`] for a manifest that does not open, is not the one the
/// keystore anchors (an older or another one), or copies another server.
pub fn load_manifest(ks: &Keystore, dir: &Path) -> Result<Manifest> {
    let server = ks.server().ok_or(ClientError::NotRegistered)?;
    let anchor = ks
        .replica_anchor()
        .filter(|a| a.server == server)
        .ok_or_else(|| {
            ClientError::NotInReplica(
                "this device has no offline replica of its server yet: run `serment sync` while \
                 the server is up"
                    .into(),
            )
        })?;
    let path = dir.join(format!("{MANIFEST}.{EXT}"));
    let file = read_file(&path).map_err(|e| match e {
        ClientError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            tampered("the offline replica's manifest is missing (deleted since the last sync)")
        }
        other => other,
    })?;
    if sha256_hex(&file) != anchor.manifest_sha256 {
        return Err(tampered(
            "the offline replica's manifest is not the one this device wrote last (altered, \
             an older copy, or another device's)",
        ));
    }
    let plain = ReplicaKey::of(ks).open(MANIFEST, &file)?;
    let m: Manifest = serde_json::from_slice(&plain)
        .map_err(|_| tampered("the offline replica's manifest does not decode"))?;
    if m.server != server {
        return Err(tampered("the offline replica copies another server"));
    }
    Ok(m)
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| ClientError::io(path, e))?;
    let mut out = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut out)
        .map_err(|e| ClientError::io(path, e))?;
    if out.len() as u64 > MAX_FILE {
        return Err(tampered("a replica file is over the size limit"));
    }
    Ok(out)
}

/// One recorded `GET` answer: the path and query asked, the status, the body.
#[derive(Debug, Clone)]
struct Exchange {
    path: String,
    status: u16,
    body: Vec<u8>,
}

/// A version file's plaintext: `pin_len u32 || pin (the checkpoint note pinned before the
/// open, UTF-8; empty for none) || count u32 || count × (path_len u16 || path || status u16 ||
/// body_len u32 || body)`.
fn encode_version(pin: Option<&str>, exchanges: &[Exchange]) -> Result<Vec<u8>> {
    let too_big = || ClientError::Input("a replica record over the format's limits".into());
    let pin = pin.unwrap_or("").as_bytes();
    let mut w = Writer::with_capacity(
        64 + pin.len()
            + exchanges
                .iter()
                .map(|e| 8 + e.path.len() + e.body.len())
                .sum::<usize>(),
    );
    w.u32(u32::try_from(pin.len()).map_err(|_| too_big())?)
        .bytes(pin);
    w.u32(u32::try_from(exchanges.len()).map_err(|_| too_big())?);
    for e in exchanges {
        w.u16(u16::try_from(e.path.len()).map_err(|_| too_big())?)
            .bytes(e.path.as_bytes())
            .u16(e.status)
            .u32(u32::try_from(e.body.len()).map_err(|_| too_big())?)
            .bytes(&e.body);
    }
    Ok(w.into_vec())
}

fn decode_version(p: &[u8]) -> Result<(Option<String>, Vec<Exchange>)> {
    let bad = |_| tampered("a replica version file does not decode");
    let mut r = Reader::new(p, "replica version");
    let n = r.u32().map_err(bad)? as usize;
    let pin = std::str::from_utf8(r.take(n).map_err(bad)?)
        .map_err(|_| tampered("a replica version file does not decode"))?;
    let pin = (!pin.is_empty()).then(|| pin.to_owned());
    let count = r.u32().map_err(bad)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let n = usize::from(r.u16().map_err(bad)?);
        let path = std::str::from_utf8(r.take(n).map_err(bad)?)
            .map_err(|_| tampered("a replica version file does not decode"))?
            .to_owned();
        let status = r.u16().map_err(bad)?;
        let n = r.u32().map_err(bad)? as usize;
        let body = r.take(n).map_err(bad)?.to_vec();
        out.push(Exchange { path, status, body });
    }
    r.finish().map_err(bad)?;
    Ok((pin, out))
}

/// A transport that passes every request to `inner` and records each `GET` answer whole.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn HttpTransport>,
    base: String,
    seen: Mutex<Vec<Exchange>>,
}

impl Recorder {
    fn take(&self) -> Vec<Exchange> {
        std::mem::take(
            &mut *self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl HttpTransport for Recorder {
    fn send(&self, req: Request<'_>) -> Result<Response> {
        let path = req.url.strip_prefix(self.base.as_str()).map(str::to_owned);
        let get = req.method == Method::Get;
        let mut resp = self.inner.send(req)?;
        let Some(path) = path.filter(|_| get) else {
            return Ok(resp);
        };
        let body = read_limited(&mut resp.body, MAX_REPLICA_VERSION + 1024 * 1024)?;
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Exchange {
                path,
                status: resp.status,
                body: body.clone(),
            });
        Ok(Response {
            status: resp.status,
            body: Box::new(Cursor::new(body)),
        })
    }
}

/// Each path's recorded answers (status, body), in order.
type Answers = HashMap<String, VecDeque<(u16, Arc<Vec<u8>>)>>;

/// A transport that answers from recorded exchanges (each path's answers in the order they
/// were recorded, the last one repeated) and sends nothing anywhere.
#[derive(Debug)]
struct Replay {
    base: String,
    answers: Mutex<Answers>,
}

impl Replay {
    fn new(base: &str, exchanges: Vec<Exchange>) -> Replay {
        let mut answers = Answers::new();
        for e in exchanges {
            answers
                .entry(e.path)
                .or_default()
                .push_back((e.status, Arc::new(e.body)));
        }
        Replay {
            base: base.to_owned(),
            answers: Mutex::new(answers),
        }
    }
}

impl HttpTransport for Replay {
    fn send(&self, req: Request<'_>) -> Result<Response> {
        let offline = |what: &str| {
            ClientError::Transport(format!(
                "offline: the replica holds no answer to {what}; run `serment sync` while the \
                 server is up"
            ))
        };
        let path = req
            .url
            .strip_prefix(self.base.as_str())
            .ok_or_else(|| offline(req.url))?;
        if req.method != Method::Get {
            return Err(offline(&format!("{} {path}", req.method.as_str())));
        }
        let mut answers = self
            .answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let q = answers.get_mut(path).ok_or_else(|| offline(path))?;
        let (status, body) = if q.len() > 1 {
            q.pop_front().ok_or_else(|| offline(path))?
        } else {
            q.front().cloned().ok_or_else(|| offline(path))?
        };
        Ok(Response {
            status,
            body: Box::new(Cursor::new(body.as_ref().clone())),
        })
    }
}

/// What [`Session::sync_replica`] did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The manifest written.
    pub manifest: Manifest,
    /// Versions fetched, verified and stored by this sync (`<doc_id>/<version>`).
    pub added: Vec<String>,
    /// Versions already held and kept without a fetch.
    pub kept: usize,
    /// Documents this sync found erased (tombstone proven) and removed.
    pub erased: Vec<String>,
    /// Versions over [`MAX_REPLICA_VERSION`], not stored.
    pub skipped: Vec<String>,
    /// Whether the previous replica could not be read (none, or refused) and was rebuilt.
    pub rebuilt: bool,
}

impl Session {
    /// `serment sync` (PROTOCOL.md §14): brings the replica in `dir` up to date with what this
    /// device may read. Incremental: a version already held (document versions never change)
    /// is kept without a fetch; each new one is opened with every check of [`Session::get`]
    /// (plaintext discarded) and stored only if it verifies. Documents held but no longer
    /// listed are checked for a proven tombstone and removed if erased; erased documents are
    /// never stored again. The manifest is written last, then its hash in the keystore: a sync
    /// that fails leaves the previous replica in force.
    ///
    /// # Errors
    /// The errors of [`Session::get`] for a version that does not verify ([`ClientError::Integrity`],
    /// [`ClientError::Log`], [`ClientError::Withheld`], ...), server and transport errors,
    /// [`ClientError::Io`].
    pub fn sync_replica(&mut self, dir: &Path) -> Result<SyncReport> {
        create_private_dir(dir)?;
        let base = self.api.base().to_owned();
        let key = ReplicaKey::of(&self.ks);
        let (old, rebuilt) = match load_manifest(&self.ks, dir) {
            Ok(m) => (m, false),
            Err(_) => (Manifest::default(), true),
        };
        let listed = self.list()?;
        let listed_ids: BTreeSet<String> = listed.iter().map(|d| d.doc_id.clone()).collect();
        let mut report = SyncReport {
            rebuilt,
            ..SyncReport::default()
        };
        let mut next = Manifest {
            server: base.clone(),
            erased: old.erased.clone(),
            ..Manifest::default()
        };
        // Held but no longer listed: erased (proven), or kept (removed as a recipient, or hidden
        // by the server: the device held it already, and keeps what it verified).
        let held: BTreeSet<&String> = old.versions.values().map(|v| &v.doc_id).collect();
        for id in held {
            if listed_ids.contains(id) {
                continue;
            }
            let doc = DocId::from_hex(id).map_err(|_| tampered("a replica entry's doc id"))?;
            if crate::log::proven_erasure(&self.api, &mut self.ks, &doc)?.is_some() {
                next.erased.insert(id.clone());
                report.erased.push(id.clone());
            } else {
                for v in old.versions.values().filter(|v| &v.doc_id == id) {
                    next.versions
                        .insert(key_of(&v.doc_id, v.doc_version), v.clone());
                }
            }
        }
        for d in &listed {
            let k = key_of(&d.doc_id, d.doc_version);
            if next.erased.contains(&d.doc_id) {
                continue;
            }
            if let Some(v) = old.versions.get(&k)
                && dir.join(v.file_name()).is_file()
            {
                next.versions.insert(k, v.clone());
                report.kept += 1;
                continue;
            }
            if d.size > MAX_REPLICA_VERSION {
                report.skipped.push(k);
                continue;
            }
            let doc = DocId::from_hex(&d.doc_id).map_err(|_| tampered("a listed document's id"))?;
            match self.record_version(&key, dir, &doc, d.doc_version, d.size) {
                Ok(v) => {
                    next.versions.insert(k.clone(), v);
                    report.added.push(k);
                }
                Err(ClientError::Erased { doc_id, .. }) => {
                    next.erased.insert(doc_id.clone());
                    report.erased.push(doc_id);
                }
                Err(e) => return Err(e),
            }
        }
        let erased = next.erased.clone();
        next.versions.retain(|_, v| !erased.contains(&v.doc_id));
        next.synced_at = crate::now_secs();
        next.checkpoint = self.ks.log_state(&base).and_then(|s| s.checkpoint.clone());
        let json = serde_json::to_vec(&next).map_err(|e| ClientError::Input(e.to_string()))?;
        let file = key.seal(MANIFEST, &json)?;
        write_atomic(&dir.join(format!("{MANIFEST}.{EXT}")), &file)?;
        self.ks.set_replica_anchor(Some(ReplicaAnchor {
            server: base,
            manifest_sha256: sha256_hex(&file),
            checkpoint_size: next.checkpoint_size(),
        }));
        self.ks.save()?;
        remove_unlisted_files(dir, &next);
        report.erased.sort();
        report.erased.dedup();
        report.manifest = next;
        Ok(report)
    }

    /// Opens one version online with every check of [`Session::get`] (plaintext discarded),
    /// recording each `GET` answer, and stores the records as its replica file.
    fn record_version(
        &mut self,
        key: &ReplicaKey,
        dir: &Path,
        doc: &DocId,
        version: u32,
        sealed_bytes: u64,
    ) -> Result<ReplicaVersion> {
        let base = self.api.base().to_owned();
        let pin = self.ks.log_state(&base).and_then(|s| s.checkpoint.clone());
        let rec = Arc::new(Recorder {
            inner: Arc::clone(self.api.http()),
            base: base.clone(),
            seen: Mutex::new(Vec::new()),
        });
        let inner = self.api.set_http(rec.clone());
        let r = self.get(doc, Some(version), &mut std::io::sink());
        self.api.set_http(inner);
        let r = r?;
        let plain = encode_version(pin.as_deref(), &rec.take())?;
        let mut v = ReplicaVersion {
            doc_id: doc.to_string(),
            doc_version: version,
            file_sha256: String::new(),
            author: r.author.clone(),
            author_device: String::new(),
            title: r.opened.metadata.title.clone(),
            mime_type: r.opened.metadata.mime_type.clone(),
            resource_type: r.opened.metadata.resource_type.clone(),
            created: r.opened.metadata.created.clone(),
            content_length: r.opened.metadata.content_length,
            sealed_bytes,
        };
        if let Some(k) = self.ks.known_document(&v.doc_id, version) {
            v.author_device = k.author_device.clone();
        }
        let name = v.file_name();
        let file = key.seal(&name, &plain)?;
        v.file_sha256 = sha256_hex(&file);
        write_atomic(&dir.join(&name), &file)?;
        Ok(v)
    }
}

/// Creates `dir` (and its parents) if needed; only its owner may list it.
fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| ClientError::io(dir, e))
}

/// Deletes the replica files `m` does not name (versions of erased documents, leftovers of a
/// sync that failed). Best effort: a file left behind is never read.
fn remove_unlisted_files(dir: &Path, m: &Manifest) {
    let keep: BTreeSet<String> = m
        .versions
        .values()
        .map(ReplicaVersion::file_name)
        .chain(std::iter::once(format!("{MANIFEST}.{EXT}")))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(&format!(".{EXT}")) && !keep.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A version opened from the replica, and the replica it came from.
#[derive(Debug)]
pub struct OfflineGet {
    /// What [`Session::get`] verified, as online.
    pub result: GetResult,
    /// The replica's manifest (its checkpoint and sync time).
    pub manifest: Manifest,
}

/// `serment get --offline` (PROTOCOL.md §14): opens `doc` (its newest version held, or
/// `version`) from the replica in `dir` into `path` with no network: the replica's files are
/// checked (the manifest against the keystore, the version file against the manifest and its
/// AEAD), then [`Session::get_to_file`] runs on the recorded answers, with every online check,
/// the pin set (in memory only) to the checkpoint pinned when the version was recorded. The
/// keystore is not written.
///
/// # Errors
/// [`ClientError::NotInReplica`] for a document or version not held (never synced, or
/// erased); [`ClientError::Integrity`] for a replica file altered, swapped or older; the
/// errors of [`Session::get_to_file`].
pub fn get_offline(
    ks: Keystore,
    dir: &Path,
    doc: &DocId,
    version: Option<u32>,
    path: &Path,
    overwrite: bool,
) -> Result<OfflineGet> {
    let manifest = load_manifest(&ks, dir)?;
    let id = doc.to_string();
    if manifest.erased.contains(&id) {
        return Err(ClientError::NotInReplica(format!(
            "document {id} was erased (its tombstone is proven in the log) and removed from the \
             replica"
        )));
    }
    let v = version
        .or_else(|| manifest.newest(&id))
        .ok_or_else(|| ClientError::NotInReplica(format!("document {id} (never synced)")))?;
    let entry = manifest
        .versions
        .get(&key_of(&id, v))
        .ok_or_else(|| ClientError::NotInReplica(format!("document {id} version {v}")))?;
    let name = entry.file_name();
    let file = read_file(&dir.join(&name)).map_err(|e| match e {
        ClientError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            tampered("a replica version file is missing (deleted since the last sync)")
        }
        other => other,
    })?;
    if sha256_hex(&file) != entry.file_sha256 {
        return Err(tampered(
            "a replica version file is not the one the manifest names (altered, swapped for \
             another document's, or an older copy)",
        ));
    }
    let (pin, exchanges) = decode_version(&ReplicaKey::of(&ks).open(&name, &file)?)?;
    let base = manifest.server.clone();
    let mut ks = ks.detached();
    let mut st = ks
        .log_state(&base)
        .cloned()
        .ok_or(ClientError::NotRegistered)?;
    st.checkpoint = pin;
    ks.set_log_state(&base, st);
    let api = Api::offline(&base, Arc::new(Replay::new(&base, exchanges)), &ks.device);
    let mut s = Session::new(ks, api);
    let result = s.get_to_file(doc, Some(v), path, overwrite)?;
    Ok(OfflineGet { result, manifest })
}

/// The replica directory of a keystore at `keystore`: `replica/` beside it.
pub fn dir_beside(keystore: &Path) -> PathBuf {
    keystore
        .parent()
        .map_or_else(|| PathBuf::from("replica"), |p| p.join("replica"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn a_file_opens_only_under_its_own_name_and_key() {
        let k = ReplicaKey::derive(&[7u8; 32]);
        let f = k.seal("a-v1.srpl", b"sealed bytes").unwrap();
        assert_eq!(k.open("a-v1.srpl", &f).unwrap(), b"sealed bytes");
        assert!(matches!(
            k.open("b-v1.srpl", &f),
            Err(ClientError::Integrity(_))
        ));
        let other = ReplicaKey::derive(&[8u8; 32]);
        assert!(matches!(
            other.open("a-v1.srpl", &f),
            Err(ClientError::Integrity(_))
        ));
        let mut flipped = f.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            k.open("a-v1.srpl", &flipped),
            Err(ClientError::Integrity(_))
        ));
    }

    #[test]
    fn version_records_round_trip_and_truncation_is_refused() {
        let ex = vec![
            Exchange {
                path: "/v1/log/checkpoint".into(),
                status: 200,
                body: b"note".to_vec(),
            },
            Exchange {
                path: "/v1/documents/x/versions/1/blob".into(),
                status: 200,
                body: vec![1, 2, 3],
            },
        ];
        let p = encode_version(Some("pin"), &ex).unwrap();
        let (pin, back) = decode_version(&p).unwrap();
        assert_eq!(pin.as_deref(), Some("pin"));
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].body, vec![1, 2, 3]);
        assert!(decode_version(&p[..p.len() - 1]).is_err());
    }
}

#[cfg(test)]
mod vector {
    #![allow(clippy::unwrap_used)]

    /// PROTOCOL.md §14's vector (checked independently with Python's `hmac` and `cryptography`
    /// when it was written): the key of a device X25519 secret of 32 bytes 0x11, and the
    /// manifest file sealing a short JSON with the nonce 12 bytes 0x22. The document must show
    /// exactly these values.
    const KEY: &str = "51915becdc0cf1572179585ba899573d408ea45c16e71f639ae26d4eb51161e3";
    const FILE: &str = "5352504c000100012222222222222222222222223ffde6ba185ef67a74643168653032e074518e7dc657e02b035345727e2636c6177bfe53b2eb272e5c1372891c5c0888c5f110cf3ed2";
    const PLAIN: &[u8] = b"{\"server\":\"https://vault.example.org\"}";

    #[test]
    fn the_protocol_vector_derives_seals_and_opens() {
        let k = super::ReplicaKey::derive(&[0x11u8; 32]);
        assert_eq!(hex::encode(k.0.as_ref()), KEY);
        let f = k.seal_with_nonce(super::MANIFEST, PLAIN, [0x22u8; 12]);
        assert_eq!(hex::encode(&f), FILE);
        assert_eq!(k.open(super::MANIFEST, &f).unwrap(), PLAIN);
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROTOCOL.md"),
        )
        .unwrap();
        let flat: String = doc.split_whitespace().collect();
        assert!(
            flat.contains(KEY) && flat.contains(FILE),
            "PROTOCOL.md §14 shows the vector"
        );
    }
}

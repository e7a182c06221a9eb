//! The offline replica's files (PROTOCOL.md §14): the key, the sealed file format, the manifest,
//! and the version records' codec.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use serment_core::codec::{Reader, Writer};
use serment_core::log::note::SignedCheckpoint;
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};
use crate::keystore::Keystore;

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
pub(super) const EXT: &str = "srpl";
/// Header bytes before the ciphertext: magic, version, suite, nonce.
const HEADER_LEN: usize = 4 + 2 + 2 + NONCE_LEN;

pub(super) fn tampered(what: &'static str) -> ClientError {
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
pub(super) fn sha256_hex(b: &[u8]) -> String {
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

pub(super) fn key_of(doc_id: &str, v: u32) -> String {
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
    /// Documents held that a restore this device accepted lost (PROTOCOL.md §11.11, §14):
    /// document id → the accepted loss statement's id. Their versions stay held, verified
    /// against the checkpoint this device gave up, never under the restored one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lost: BTreeMap<String, String>,
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

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>> {
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
pub(super) struct Exchange {
    pub(super) path: String,
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// A version file's plaintext: `pin_len u32 || pin (the checkpoint note pinned before the
/// open, UTF-8; empty for none) || teams_len u32 || teams (the keystore's care-team view before
/// the open, JSON) || count u32 || count × (path_len u16 || path || status u16 || body_len u32 ||
/// body)`.
pub(super) fn encode_version(
    pin: Option<&str>,
    teams: &[u8],
    exchanges: &[Exchange],
) -> Result<Vec<u8>> {
    let too_big = || ClientError::Input("a replica record over the format's limits".into());
    let pin = pin.unwrap_or("").as_bytes();
    let mut w = Writer::with_capacity(
        64 + pin.len()
            + teams.len()
            + exchanges
                .iter()
                .map(|e| 8 + e.path.len() + e.body.len())
                .sum::<usize>(),
    );
    w.u32(u32::try_from(pin.len()).map_err(|_| too_big())?)
        .bytes(pin);
    w.u32(u32::try_from(teams.len()).map_err(|_| too_big())?)
        .bytes(teams);
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

/// A decoded version record: the pin, the care-team view (JSON), the exchanges.
pub(super) type VersionRecord = (Option<String>, Vec<u8>, Vec<Exchange>);

pub(super) fn decode_version(p: &[u8]) -> Result<VersionRecord> {
    let bad = |_| tampered("a replica version file does not decode");
    let mut r = Reader::new(p, "replica version");
    let n = r.u32().map_err(bad)? as usize;
    let pin = std::str::from_utf8(r.take(n).map_err(bad)?)
        .map_err(|_| tampered("a replica version file does not decode"))?;
    let pin = (!pin.is_empty()).then(|| pin.to_owned());
    let n = r.u32().map_err(bad)? as usize;
    let teams = r.take(n).map_err(bad)?.to_vec();
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
    Ok((pin, teams, out))
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
        let p = encode_version(Some("pin"), b"{}", &ex).unwrap();
        let (pin, teams, back) = decode_version(&p).unwrap();
        assert_eq!(teams, b"{}");
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

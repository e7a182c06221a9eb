//! The keystore file: a user's identity key, device keys, server and pinned contacts, sealed with
//! a passphrase (format: PROTOCOL.md §9, `serment_core::keystore`).
//!
//! The payload is `u16 version || identity seed [32] || device signing seed [32] || device X25519
//! secret [32] || device X-Wing seed [32] (version 2 only) || u32 len || JSON` where the JSON holds the non-secret state (handle, server,
//! contacts). Contacts live inside the encrypted file so that nobody who can write the file can
//! swap a pinned key without the passphrase. The decrypted payload is zeroized after parsing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serment_core::KeyId;
use serment_core::codec::{Reader, Writer};
use serment_core::identity::{DeviceRecord, DeviceSecret, IdentitySecret};
use serment_core::keystore::{self, KdfParams};
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};
use crate::fsutil::write_atomic;

/// Payload version of a device without a hybrid key (written before issue 15, and still for such a
/// device until `serment id upgrade`).
const PAYLOAD_VERSION_CLASSICAL: u16 = 1;
/// Payload version of a device with an X-Wing key: version 1 plus its 32-byte seed.
const PAYLOAD_VERSION_HYBRID: u16 = 2;
/// The largest keystore file read, in bytes.
pub const MAX_KEYSTORE_LEN: u64 = 16 * 1024 * 1024;

/// A pinned contact (trust on first use, until the transparency log lands).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinnedContact {
    /// The identity's Ed25519 public key, hex.
    pub identity_key: String,
    /// The contact's device records as last verified, base64url.
    pub records: Vec<String>,
    /// When the contact was pinned, seconds since the Unix epoch.
    pub pinned_at: u64,
    /// Whether the user confirmed the fingerprint out of band.
    #[serde(default)]
    pub verified: bool,
    /// The last entry of the contact's key history verified in the transparency log,
    /// `<index>:<leaf hash hex>` (PROTOCOL.md §11.6): a later history must still contain it.
    #[serde(default)]
    pub log_head: Option<String>,
    /// The identity key (hex) this contact had before a rotation the user has not yet confirmed:
    /// set when the pin follows a signed rotation in the log, cleared by
    /// [`Keystore::mark_verified`]. While set, every use of the contact shows both fingerprints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// Set when this device accepted a restore's loss (PROTOCOL.md §11.11) after verifying this
    /// contact's key history into the lost range: the restored size. Until the contact is
    /// verified again, a current device not in `records` is refused
    /// ([`crate::ClientError::RestoredDevices`]): its revocation may have been lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_from: Option<u64>,
}

/// The sealed metadata of a document version this device sealed or opened and verified
/// (PROTOCOL.md §6.2), cached in the encrypted keystore so that `serment ls` can show titles
/// without fetching (and so logging an access to) anything.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct KnownDocument {
    /// Human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// FHIR resource type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// RFC 3339 time of sealing, as the author wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Plaintext content length, in bytes.
    pub content_length: u64,
    /// The author device whose signature was verified on it (hex).
    #[serde(default)]
    pub author_device: String,
    /// When it was cached (seconds since the Unix epoch), to evict the oldest first.
    pub cached_at: u64,
}

impl KnownDocument {
    /// The listable fields of `m`, verified as authored by `author_device`, each cut to a bounded
    /// length ([`MAX_KNOWN_TITLE_CHARS`], [`MAX_KNOWN_FIELD_CHARS`]) so that no author can grow
    /// a reader's keystore past what it can open.
    pub fn from_metadata(
        m: &serment_core::document::Metadata,
        author_device: &KeyId,
    ) -> KnownDocument {
        KnownDocument {
            title: clip(&m.title, MAX_KNOWN_TITLE_CHARS),
            mime_type: clip(&m.mime_type, MAX_KNOWN_FIELD_CHARS),
            resource_type: clip(&m.resource_type, MAX_KNOWN_FIELD_CHARS),
            created: clip(&m.created, MAX_KNOWN_FIELD_CHARS),
            content_length: m.content_length,
            author_device: author_device.to_string(),
            cached_at: crate::now_secs(),
        }
    }
}

/// The most document versions [`Keystore::remember_document`] keeps (the oldest go first).
pub const MAX_KNOWN_DOCUMENTS: usize = 2000;
/// The longest title [`KnownDocument`] keeps, in characters (longer ones are cut, with `…`).
pub const MAX_KNOWN_TITLE_CHARS: usize = 200;
/// The longest other text field [`KnownDocument`] keeps, in characters.
pub const MAX_KNOWN_FIELD_CHARS: usize = 100;
/// The largest public state [`Keystore::save`] writes, in bytes: room below [`MAX_KEYSTORE_LEN`]
/// for the secrets, the framing and the AEAD.
const MAX_STATE_LEN: u64 = MAX_KEYSTORE_LEN - 64 * 1024;

/// The largest held team state (PROTOCOL.md §12.4, incremental verification) the keystore
/// keeps per team, in bytes of its JSON form: a team whose replayed state is larger (many
/// epochs times many members, review R7) is held by its head only, and each verification
/// replays its whole chain, so no team admin can grow members' keystores past the limit.
pub const MAX_HELD_TEAM_STATE_LEN: usize = 256 * 1024;

/// `s` cut to `max` characters (an ellipsis marks a cut).
fn clip(s: &Option<String>, max: usize) -> Option<String> {
    s.as_ref().map(|s| {
        if s.chars().count() <= max {
            s.clone()
        } else {
            let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
            out.push('…');
            out
        }
    })
}

/// What this keystore trusts about one server's transparency log (PROTOCOL.md §11.7). Kept inside
/// the encrypted keystore, so nobody without the passphrase can roll it back or swap the key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct LogState {
    /// The log's verifier key, pinned on first contact (or configured).
    pub vkey: String,
    /// The latest checkpoint verified (the signed note), if any.
    #[serde(default)]
    pub checkpoint: Option<String>,
    /// Trusted witness verifier keys (type 0x04).
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// How many of `witnesses` must cosign a checkpoint.
    #[serde(default)]
    pub quorum: usize,
    /// The head of each document's history verified last, by document id (hex):
    /// `<index>:<leaf hash hex>`. A later history must still contain it (no truncation).
    #[serde(default)]
    pub doc_heads: BTreeMap<String, String>,
    /// The head of each handle's social recovery chain (PROTOCOL.md §4.3) verified last, by
    /// handle: `<index>:<leaf hash hex>`. A later chain must still contain it (REVIEW5 U2: a
    /// server hiding a request, a veto or an approval by serving a truncated chain). Absent in
    /// keystores written before it existed (nothing pinned then).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub social_heads: BTreeMap<String, String>,
    /// The loss statements this client accepted (`serment accept-rollback`, PROTOCOL.md
    /// §11.11), oldest first: one is never accepted twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_losses: Vec<AcceptedLoss>,
    /// When this client last moved `checkpoint` forward (its own clock, seconds since the Unix
    /// epoch): a loss statement written well before it cannot explain losing that checkpoint
    /// (PROTOCOL.md §11.11). Absent in keystores written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_at: Option<u64>,
    /// The document versions this device sealed (`<doc_id>/<version>`), by the log index of
    /// the commit's first wrap entry, proven in the log when it was made (PROTOCOL.md §11.11):
    /// after a restore, those at or past the restored size are the ones its author must send
    /// again. At most [`MAX_DOC_POSITIONS`], the lowest indices dropped first. Absent in
    /// keystores written before it existed (nothing was recorded then).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub authored: BTreeMap<String, u64>,
    /// The document versions a listing showed this device (`<doc_id>/<version>`), by the size
    /// of the checkpoint it had verified when one first did, and the author device the listing
    /// named (PROTOCOL.md §11.11): a version first listed at or past a restored size, that the
    /// restored server no longer lists, was lost. At most [`MAX_DOC_POSITIONS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub listed: BTreeMap<String, ListedVersion>,
    /// The revocations, recipient removals, erasures, identity rotations and care-team
    /// changes this device logged, each with the log index proven when it was made
    /// (PROTOCOL.md §11.11): after an accepted restore lost one, `serment accept-rollback
    /// --statement` logs the same signed entry again, so that what this device revoked does not
    /// come back. At most [`MAX_DOC_POSITIONS`], the lowest indices dropped first (and at most
    /// [`MAX_OWN_TEAM_CHANGES`] team changes, whose key wraps make them large). Absent in keystores written before it existed (nothing was
    /// recorded then; `#[serde(default)]` is the migration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub own_revocations: Vec<OwnRevocation>,
}

/// A revocation, removal, erasure, identity rotation or team change this device logged
/// ([`LogState::own_revocations`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OwnRevocation {
    /// The log entry kind: 2 (identity rotation), 3 (device revocation), 5 (recipient
    /// removal), 7 (care-team change) or 9 (erasure).
    pub kind: u8,
    /// The log index of the entry, proven when it was logged.
    pub index: u64,
    /// The signed entry as sent (base64): logged again as is after a restore lost it.
    pub entry: String,
    /// The accepted loss statement (id, hex) whose restore lost this entry, until it is
    /// logged again (or found moot); `None` for an entry the served log holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
    /// What was sent with the entry and is sent again with it (base64 each): the device
    /// records, signed by the new identity key, of a rotation (kind 2); the epoch key wraps of
    /// a team change (kind 7). Empty for the other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub with: Vec<String>,
}

impl OwnRevocation {
    /// The signed bytes, or `None` when the keystore holds no valid base64.
    #[must_use]
    pub fn bytes(&self) -> Option<Vec<u8>> {
        crate::api::b64d(&self.entry, "entry").ok()
    }

    /// The bytes of [`OwnRevocation::with`], or `None` when one is not valid base64.
    #[must_use]
    pub fn with_bytes(&self) -> Option<Vec<Vec<u8>>> {
        self.with
            .iter()
            .map(|w| crate::api::b64d(w, "with").ok())
            .collect()
    }
}

/// The most care-team changes [`LogState::own_revocations`] keeps (their key wraps make each
/// one up to tens of kilobytes): the oldest go first.
pub const MAX_OWN_TEAM_CHANGES: usize = 256;

/// The most entries [`LogState::authored`] and [`LogState::listed`] each keep: a lost range is
/// the tail of the log, so the oldest go first.
pub const MAX_DOC_POSITIONS: usize = 10_000;

/// A document version a listing showed this device ([`LogState::listed`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListedVersion {
    /// The size of the checkpoint this device had verified when a listing first showed it.
    pub at: u64,
    /// The author device the listing named (hex; the server's word, for display only).
    #[serde(default)]
    pub author_device: String,
}

impl LogState {
    /// Records a version this device sealed, its first wrap at log index `index`.
    pub fn record_authored(&mut self, doc_id: &str, version: u32, index: u64) {
        self.authored.insert(format!("{doc_id}/{version}"), index);
        while self.authored.len() > MAX_DOC_POSITIONS {
            let lowest = self
                .authored
                .iter()
                .min_by_key(|(_, i)| **i)
                .map(|(k, _)| k.clone());
            match lowest {
                Some(k) => self.authored.remove(&k),
                None => break,
            };
        }
    }

    /// Records a revocation, removal, erasure, rotation or team change this device logged
    /// (`kind`: its entry kind byte) at log index `index`, with what was sent with it (`with`:
    /// [`OwnRevocation::with`]).
    pub fn record_own_revocation(&mut self, kind: u8, index: u64, entry: &[u8], with: &[&[u8]]) {
        self.own_revocations
            .retain(|r| r.index != index || r.lost.is_some());
        self.own_revocations.push(OwnRevocation {
            kind,
            index,
            entry: crate::api::b64e(entry),
            lost: None,
            with: with.iter().map(|w| crate::api::b64e(w)).collect(),
        });
        self.own_revocations.sort_by_key(|r| r.index);
        while self.own_revocations.len() > MAX_DOC_POSITIONS {
            self.own_revocations.remove(0);
        }
        let team = serment_core::log::entry::EntryKind::Team as u8;
        while self
            .own_revocations
            .iter()
            .filter(|r| r.kind == team)
            .count()
            > MAX_OWN_TEAM_CHANGES
        {
            match self.own_revocations.iter().position(|r| r.kind == team) {
                Some(i) => self.own_revocations.remove(i),
                None => break,
            };
        }
    }

    /// Sets what was sent with the own write recorded at `index` ([`OwnRevocation::with`]):
    /// the key wraps of a team change, known to the caller of the check that recorded it.
    pub fn set_own_write_with(&mut self, index: u64, with: &[Vec<u8>]) {
        if let Some(r) = self
            .own_revocations
            .iter_mut()
            .find(|r| r.index == index && r.lost.is_none())
        {
            r.with = with.iter().map(|w| crate::api::b64e(w)).collect();
        }
    }

    /// Records a version a listing showed, unless recorded already; returns whether it was new.
    pub fn record_listed(&mut self, doc_id: &str, version: u32, at: u64, author: &str) -> bool {
        let key = format!("{doc_id}/{version}");
        if self.listed.contains_key(&key) {
            return false;
        }
        self.listed.insert(
            key,
            ListedVersion {
                at,
                author_device: author.to_owned(),
            },
        );
        while self.listed.len() > MAX_DOC_POSITIONS {
            let lowest = self
                .listed
                .iter()
                .min_by_key(|(_, v)| v.at)
                .map(|(k, _)| k.clone());
            match lowest {
                Some(k) => self.listed.remove(&k),
                None => break,
            };
        }
        true
    }

    /// The newest accepted loss statement that names `doc_id` among the documents it lost for
    /// this device, and the author it recorded (`""` when unknown).
    pub fn lost_document(&self, doc_id: &str) -> Option<(&AcceptedLoss, &str)> {
        self.accepted_losses
            .iter()
            .rev()
            .find_map(|a| a.documents.get(doc_id).map(|h| (a, h.as_str())))
    }
}

/// A loss statement this client accepted (PROTOCOL.md §11.11), with the pin it gave up: the
/// evidence that the server's log was rolled back, and by whose declaration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcceptedLoss {
    /// The statement's id (SHA-256 of its text, hex).
    pub statement: String,
    /// The restored size it names.
    pub restored_size: u64,
    /// The checkpoint note this client had pinned before (larger than the restored size).
    pub pinned_before: String,
    /// When the user accepted it (seconds since the Unix epoch).
    pub at: u64,
    /// The documents (hex ids) this device knew of whose history the restore lost
    /// (`serment accept-rollback`'s `documents`), each with its author's handle as this device
    /// knew it (`""` when unknown): `get`, `sync` and `audit` name the statement for them.
    /// Absent in keystores written before it existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub documents: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct PublicState {
    handle: String,
    display_name: String,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    registered: bool,
    #[serde(default)]
    created_at: u64,
    #[serde(default)]
    contacts: BTreeMap<String, PinnedContact>,
    #[serde(default)]
    logs: BTreeMap<String, LogState>,
    /// What this device knows of documents it sealed or opened (for `serment ls`), by
    /// `<doc_id>/<version>`. Inside the encrypted keystore: the server never sees it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    documents: BTreeMap<String, KnownDocument>,
    /// When this device revoked itself (seconds since the Unix epoch), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<u64>,
    /// The private CA (PEM) trusted for `server`, recorded at `register` (issue 10 §1). Absent
    /// in keystores written before it existed: the webpki roots alone are trusted then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_ca: Option<String>,
    /// The log index from which this device's records carry its X-Wing key (PROTOCOL.md §7.1):
    /// 0 for a device created with one, the index of the `serment id upgrade` record otherwise;
    /// absent while the device has none. A classical wrap to this device logged at or after it
    /// is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hybrid_since: Option<u64>,
    /// Care teams this device verified (PROTOCOL.md §12.4): team name → the head of its chain
    /// verified last (`<index>:<leaf hash hex>`), which a later chain must still hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    teams: BTreeMap<String, String>,
    /// The state of each team as this device replayed it up to that head (PROTOCOL.md §12.4):
    /// a later verification applies only the changes after the head to it. Absent in keystores
    /// written before it existed (a whole replay then rebuilds it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    team_states: BTreeMap<String, crate::team_state::HeldTeam>,
    /// The offline replica this device last wrote (`serment sync`, PROTOCOL.md §14): what its
    /// manifest must be, so that an older or another manifest put in its place is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replica: Option<ReplicaAnchor>,
    /// The recovery device this device made with `serment id recovery-code` (PROTOCOL.md
    /// §4.2), hex: revoked when a new code replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery_device: Option<String>,
    /// The record (base64url) of the recovery device whose escrow enrolled this device
    /// (`serment recover`), proven current in the log when it did: its catch-up wraps to this
    /// device stay trusted after the recovery revoked it (PROTOCOL.md §4.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovered_from: Option<String>,
    /// The log index of the newest recovery entry of this handle this device has shown a
    /// warning for (PROTOCOL.md §4.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recoveries_seen: Option<u64>,
    /// The identity id (hex) the escrow of [`Self::recovery_device`] holds: once the identity
    /// key rotates, that escrow is stale (its identity key is no longer the handle's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery_identity: Option<String>,
    /// The devices of this handle (hex ids) this device has made, linked or already warned
    /// about (REVIEW3 S1): any other device in the proven history is warned about once.
    /// Absent until the first `device list`, which takes the devices current then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    known_devices: Option<std::collections::BTreeSet<String>>,
}

/// The care-team part of the keystore's state (PROTOCOL.md §9 `teams` and `team_states`), as
/// [`Keystore::team_view`] returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct TeamView {
    /// Team name → the head verified last (`<index>:<leaf hash hex>`).
    #[serde(default)]
    pub teams: BTreeMap<String, String>,
    /// Team name → the state replayed at that head.
    #[serde(default)]
    pub team_states: BTreeMap<String, crate::team_state::HeldTeam>,
}

/// What the keystore remembers of the offline replica (PROTOCOL.md §14): the manifest file
/// [`crate::replica`] wrote last. Inside the encrypted keystore, so whoever can write the
/// replica's directory cannot roll it back to an older sync or swap another device's in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplicaAnchor {
    /// The server the replica copies (its base URL, as in `logs`).
    pub server: String,
    /// SHA-256 (hex) of the whole manifest file as written.
    pub manifest_sha256: String,
    /// The size of the checkpoint the manifest records.
    pub checkpoint_size: u64,
}

/// The keystore file's bytes, refused over [`MAX_KEYSTORE_LEN`] before it is read.
///
/// # Errors
/// [`ClientError::NoKeystore`] when there is none; [`ClientError::Keystore`] when it is too
/// large; [`ClientError::Io`].
fn read_keystore_file(path: &Path) -> Result<Vec<u8>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ClientError::NoKeystore(path.display().to_string()));
        }
        Err(e) => return Err(ClientError::io(path, e)),
    };
    if meta.len() > MAX_KEYSTORE_LEN {
        return Err(ClientError::Keystore(serment_core::Error::TooLarge {
            what: "keystore",
            limit: MAX_KEYSTORE_LEN,
        }));
    }
    std::fs::read(path).map_err(|e| ClientError::io(path, e))
}

/// Decodes a decrypted keystore payload (see the module documentation). Every malformed payload
/// is the one uniform [`serment_core::Error::KeystoreDecrypt`].
fn parse_payload(payload: &[u8]) -> Result<(IdentitySecret, DeviceSecret, PublicState)> {
    let corrupt = |_| ClientError::Keystore(serment_core::Error::KeystoreDecrypt);
    let mut r = Reader::new(payload, "keystore payload");
    let version = r.u16().map_err(corrupt)?;
    if version != PAYLOAD_VERSION_CLASSICAL && version != PAYLOAD_VERSION_HYBRID {
        return Err(ClientError::Keystore(
            serment_core::Error::UnsupportedVersion {
                what: "keystore payload",
                version: 0,
            },
        ));
    }
    let id_seed = Zeroizing::new(r.array::<32>().map_err(corrupt)?);
    let dev_sign = Zeroizing::new(r.array::<32>().map_err(corrupt)?);
    let dev_enc = Zeroizing::new(r.array::<32>().map_err(corrupt)?);
    let dev_hybrid = if version == PAYLOAD_VERSION_HYBRID {
        Some(Zeroizing::new(r.array::<32>().map_err(corrupt)?))
    } else {
        None
    };
    let json_len = r.u32().map_err(corrupt)? as usize;
    let json = r.take(json_len).map_err(corrupt)?;
    r.finish().map_err(corrupt)?;
    let state: PublicState = serde_json::from_slice(json)
        .map_err(|_| ClientError::Keystore(serment_core::Error::KeystoreDecrypt))?;
    let mut device =
        DeviceSecret::from_secrets(&dev_sign, &dev_enc).map_err(ClientError::Keystore)?;
    if let Some(h) = &dev_hybrid {
        device = device
            .with_hybrid_secret(h)
            .map_err(|_| ClientError::Keystore(serment_core::Error::KeystoreDecrypt))?;
    }
    Ok((IdentitySecret::from_seed(&id_seed), device, state))
}

/// Runs the decrypted-payload decoder on arbitrary bytes and discards the result: the entry
/// point of the `keystore` fuzz target (`serment-hostile`), not an API.
///
/// # Errors
/// As the keystore payload decoder: [`ClientError::Keystore`].
#[doc(hidden)]
pub fn decode_payload(payload: &[u8]) -> Result<()> {
    parse_payload(payload).map(|_| ())
}

/// An open keystore. `Debug` never shows secrets.
#[derive(Debug)]
pub struct Keystore {
    store: Store,
    /// The user's identity key.
    pub identity: IdentitySecret,
    /// This device's keys.
    pub device: DeviceSecret,
    state: PublicState,
}

/// Where [`Keystore::save`] writes.
#[derive(Debug)]
enum Store {
    /// The keystore file, sealed with the passphrase's key.
    File {
        path: PathBuf,
        /// The Argon2id-derived file key, kept for the session: a save costs one AES-GCM, not
        /// another Argon2id run (`serment_core::keystore::DerivedKey`).
        key: std::sync::Arc<keystore::DerivedKey>,
    },
    /// Nowhere: the caller keeps [`Keystore::payload`] itself (the patient's page, which
    /// encrypts it with a non-extractable WebCrypto key in IndexedDB).
    Memory,
}

impl Keystore {
    /// Creates a new identity and device, and writes the keystore to `path` (refuses to overwrite).
    ///
    /// # Errors
    /// [`ClientError::KeystoreExists`], [`ClientError::Input`] for a bad handle, [`ClientError::Io`].
    pub fn create(
        path: &Path,
        passphrase: Zeroizing<String>,
        handle: &str,
        display_name: &str,
        params: KdfParams,
    ) -> Result<Keystore> {
        serment_core::identity::validate_handle(handle)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        if path.exists() {
            return Err(ClientError::KeystoreExists(path.display().to_string()));
        }
        params.check().map_err(ClientError::Keystore)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|e| ClientError::io(dir, e))?;
            // Only its owner may list what it holds (the file itself is 0600).
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
        }
        let key = keystore::DerivedKey::derive(passphrase.as_bytes(), params)
            .map_err(ClientError::Keystore)?;
        let ks = Keystore::fresh(
            Store::File {
                path: path.to_path_buf(),
                key: std::sync::Arc::new(key),
            },
            handle,
            display_name,
        );
        ks.save()?;
        Ok(ks)
    }

    /// A new identity and device, as [`Keystore::create`] makes them, held in memory only: the
    /// patient's page creates an identity this way and keeps [`Keystore::payload`] itself, and
    /// offers [`Keystore::sealed_file`] for download.
    ///
    /// # Errors
    /// [`ClientError::Input`] for a bad handle.
    pub fn create_in_memory(handle: &str, display_name: &str) -> Result<Keystore> {
        serment_core::identity::validate_handle(handle)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        Ok(Keystore::fresh(Store::Memory, handle, display_name))
    }

    fn fresh(store: Store, handle: &str, display_name: &str) -> Keystore {
        Keystore {
            store,
            identity: IdentitySecret::generate(),
            // New devices get an X-Wing key from the start (issue 15): no classical wrap to
            // them is ever accepted.
            device: DeviceSecret::generate(),
            state: PublicState {
                handle: handle.to_owned(),
                display_name: display_name.to_owned(),
                created_at: crate::now_secs(),
                hybrid_since: Some(0),
                ..PublicState::default()
            },
        }
    }

    /// This keystore's current state as a keystore file (PROTOCOL.md §9), sealed under
    /// `passphrase` with a fresh salt: the file [`Keystore::create`] and [`Keystore::save`]
    /// write, which [`Keystore::open`] and the CLI open.
    ///
    /// # Errors
    /// [`ClientError::Keystore`] ([`serment_core::Error::WeakKdf`] below the floor, RNG).
    pub fn sealed_file(&self, passphrase: &[u8], params: KdfParams) -> Result<Vec<u8>> {
        let key =
            keystore::DerivedKey::derive(passphrase, params).map_err(ClientError::Keystore)?;
        key.seal(&self.payload()?).map_err(ClientError::Keystore)
    }

    /// Creates the keystore of a device joining an existing identity (`serment device join`,
    /// PROTOCOL.md §4.1): the identity key handed over by the linking device, this device's own
    /// fresh keys, and the creation time of the record the identity signed for it. Refuses to
    /// overwrite.
    ///
    /// # Errors
    /// As [`Keystore::create`].
    #[allow(clippy::too_many_arguments)]
    pub fn create_joined(
        path: &Path,
        passphrase: Zeroizing<String>,
        identity: IdentitySecret,
        device: DeviceSecret,
        handle: &str,
        display_name: &str,
        created_at: u64,
        params: KdfParams,
    ) -> Result<Keystore> {
        let mut ks = Keystore::create(path, passphrase, handle, display_name, params)?;
        ks.identity = identity;
        ks.state.hybrid_since = device.hybrid_secret().map(|_| 0);
        ks.device = device;
        ks.state.created_at = created_at;
        ks.save()?;
        Ok(ks)
    }

    /// This keystore, never written again: [`Keystore::save`] becomes a no-op. For a session
    /// whose state must not reach the file (an offline open from the replica, which sets the
    /// pin to the replica's recorded checkpoint in memory only, PROTOCOL.md §14).
    #[must_use]
    pub fn detached(self) -> Keystore {
        Keystore {
            store: Store::Memory,
            ..self
        }
    }

    /// The care teams as this device verified them last (heads and held states, PROTOCOL.md
    /// §12.4): what an offline open restores from the replica's record (§14), so that the team
    /// verification it replays asks exactly what it asked when it was recorded.
    pub fn team_view(&self) -> TeamView {
        TeamView {
            teams: self.state.teams.clone(),
            team_states: self.state.team_states.clone(),
        }
    }

    /// Replaces the care-team heads and held states with `view` (see [`Keystore::team_view`]).
    pub fn set_team_view(&mut self, view: TeamView) {
        self.state.teams = view.teams;
        self.state.team_states = view.team_states;
    }

    /// The offline replica's anchor, if this device wrote one (PROTOCOL.md §14).
    pub fn replica_anchor(&self) -> Option<&ReplicaAnchor> {
        self.state.replica.as_ref()
    }

    /// Records (or, with `None`, forgets) the offline replica's anchor; saved with the keystore.
    pub fn set_replica_anchor(&mut self, anchor: Option<ReplicaAnchor>) {
        self.state.replica = anchor;
    }

    /// When this device's record says it was created (seconds since the Unix epoch).
    pub fn created_at(&self) -> u64 {
        self.state.created_at
    }

    /// Opens the keystore at `path`.
    ///
    /// # Errors
    /// [`ClientError::NoKeystore`]; [`ClientError::Keystore`] for a wrong passphrase, tampering or
    /// weak KDF parameters (one uniform decryption error); [`ClientError::Io`].
    pub fn open(path: &Path, passphrase: Zeroizing<String>) -> Result<Keystore> {
        let file = read_keystore_file(path)?;
        let (payload, key) =
            keystore::open_keyed(passphrase.as_bytes(), &file).map_err(ClientError::Keystore)?;
        let (identity, device, state) = parse_payload(&payload)?;
        Ok(Keystore {
            store: Store::File {
                path: path.to_path_buf(),
                key: std::sync::Arc::new(key),
            },
            identity,
            device,
            state,
        })
    }

    /// Opens the keystore at `path` with a file key held from an earlier open
    /// ([`Keystore::file_key`]), without asking for the passphrase or running Argon2id: the
    /// unlock agent reads the current file this way on each request (PROTOCOL.md §13).
    ///
    /// # Errors
    /// As [`Keystore::open`]; [`ClientError::Keystore`] when the file was re-sealed under
    /// another passphrase or salt since the key was derived.
    pub fn open_with_key(
        path: &Path,
        key: std::sync::Arc<keystore::DerivedKey>,
    ) -> Result<Keystore> {
        let file = read_keystore_file(path)?;
        let payload = key.open(&file).map_err(ClientError::Keystore)?;
        let (identity, device, state) = parse_payload(&payload)?;
        Ok(Keystore {
            store: Store::File {
                path: path.to_path_buf(),
                key,
            },
            identity,
            device,
            state,
        })
    }

    /// The file key of a keystore opened from a file (shared, never copied), for
    /// [`Keystore::open_with_key`]; `None` for a keystore held in memory only.
    pub fn file_key(&self) -> Option<std::sync::Arc<keystore::DerivedKey>> {
        match &self.store {
            Store::File { key, .. } => Some(std::sync::Arc::clone(key)),
            Store::Memory => None,
        }
    }

    /// Opens keystore file bytes (PROTOCOL.md §9) held in memory, e.g. a file the patient
    /// imported into the page. [`Keystore::save`] then writes nothing: the caller keeps
    /// [`Keystore::payload`].
    ///
    /// # Errors
    /// [`ClientError::Keystore`] for a file over the size limit, a wrong passphrase, tampering
    /// or weak KDF parameters (one uniform decryption error).
    pub fn open_bytes(file: &[u8], passphrase: Zeroizing<String>) -> Result<Keystore> {
        if file.len() as u64 > MAX_KEYSTORE_LEN {
            return Err(ClientError::Keystore(serment_core::Error::TooLarge {
                what: "keystore",
                limit: MAX_KEYSTORE_LEN,
            }));
        }
        let (payload, _key) =
            keystore::open_keyed(passphrase.as_bytes(), file).map_err(ClientError::Keystore)?;
        Keystore::from_payload(&payload)
    }

    /// A keystore from a decrypted payload ([`Keystore::payload`]), kept in memory.
    ///
    /// # Errors
    /// [`ClientError::Keystore`] for a malformed payload.
    pub fn from_payload(payload: &[u8]) -> Result<Keystore> {
        let (identity, device, state) = parse_payload(payload)?;
        Ok(Keystore {
            store: Store::Memory,
            identity,
            device,
            state,
        })
    }

    /// Re-encrypts and writes the keystore atomically (a fresh nonce every time; the salt and the
    /// Argon2id-derived key are those of this session, so no KDF runs here).
    ///
    /// # Errors
    /// [`ClientError::Io`], [`ClientError::Keystore`].
    pub fn save(&self) -> Result<()> {
        let Store::File { path, key } = &self.store else {
            return Ok(());
        };
        let payload = self.payload()?;
        let file = key.seal(&payload).map_err(ClientError::Keystore)?;
        write_atomic(path, &file)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    /// The decrypted keystore payload (PROTOCOL.md §9: the secrets, then the public state as
    /// JSON), as [`Keystore::save`] seals it. Secret: it is zeroized on drop.
    ///
    /// # Errors
    /// [`ClientError::Keystore`] when the state is over the size limit even without its
    /// document cache.
    pub fn payload(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut json = Zeroizing::new(
            serde_json::to_vec(&self.state).map_err(|e| ClientError::Input(e.to_string()))?,
        );
        // Never write a file that `open` would refuse: the document cache is only a cache, so
        // it goes first; anything still too large is an error, and the old file stays.
        if json.len() as u64 > MAX_STATE_LEN
            && !(self.state.documents.is_empty() && self.state.team_states.is_empty())
        {
            // Held team states are a cache too (their heads stay): the next verification of
            // each team replays its whole chain.
            let mut trimmed = self.state.clone();
            trimmed.documents.clear();
            trimmed.team_states.clear();
            json = Zeroizing::new(
                serde_json::to_vec(&trimmed).map_err(|e| ClientError::Input(e.to_string()))?,
            );
        }
        if json.len() as u64 > MAX_STATE_LEN {
            return Err(ClientError::Keystore(serment_core::Error::TooLarge {
                what: "keystore",
                limit: MAX_KEYSTORE_LEN,
            }));
        }
        let hybrid = self.device.hybrid_secret();
        let version = match hybrid {
            Some(_) => PAYLOAD_VERSION_HYBRID,
            None => PAYLOAD_VERSION_CLASSICAL,
        };
        let mut w = Writer::with_capacity(2 + 128 + 4 + json.len());
        w.u16(version)
            .bytes(self.identity.to_seed().as_ref())
            .bytes(self.device.signing_seed().as_ref())
            .bytes(self.device.encryption_secret().as_ref());
        if let Some(h) = &hybrid {
            w.bytes(h.as_ref());
        }
        w.u32(json.len() as u32).bytes(&json);
        Ok(Zeroizing::new(w.into_vec()))
    }

    /// The user's handle.
    pub fn handle(&self) -> &str {
        &self.state.handle
    }
    /// The user's display name (never sent to the server in clear).
    pub fn display_name(&self) -> &str {
        &self.state.display_name
    }
    /// The server URL, once registered.
    pub fn server(&self) -> Option<&str> {
        self.state.server.as_deref()
    }
    /// Whether this device was registered with [`Keystore::server`].
    pub fn registered(&self) -> bool {
        self.state.registered
    }
    /// Records the server this device registered with.
    pub fn set_server(&mut self, url: &str, registered: bool) {
        self.state.server = Some(url.to_owned());
        self.state.registered = registered;
    }
    /// The private CA bundle (PEM) recorded for the server at `register`, if any.
    pub fn server_ca(&self) -> Option<&str> {
        self.state.server_ca.as_deref()
    }
    /// Records (or, with `None`, forgets) the private CA bundle trusted for the server.
    pub fn set_server_ca(&mut self, pem: Option<&str>) {
        self.state.server_ca = pem.map(str::to_owned);
    }
    /// Pinned contacts by handle.
    pub fn contacts(&self) -> &BTreeMap<String, PinnedContact> {
        &self.state.contacts
    }
    /// Pins or updates a contact.
    pub fn pin(&mut self, handle: &str, contact: PinnedContact) {
        self.state.contacts.insert(handle.to_owned(), contact);
    }
    /// The log state pinned for `server` (a base URL).
    pub fn log_state(&self, server: &str) -> Option<&LogState> {
        self.state.logs.get(server)
    }
    /// The log state pinned for `server`, to update in place.
    pub fn log_state_mut(&mut self, server: &str) -> Option<&mut LogState> {
        self.state.logs.get_mut(server)
    }
    /// Pins or updates the log state of `server`.
    pub fn set_log_state(&mut self, server: &str, state: LogState) {
        self.state.logs.insert(server.to_owned(), state);
    }

    /// Caches what `serment ls` shows of a document version this device sealed or verified.
    /// Holds at most [`MAX_KNOWN_DOCUMENTS`] entries, evicting the oldest cached.
    pub fn remember_document(&mut self, doc_id: &str, version: u32, doc: KnownDocument) {
        let docs = &mut self.state.documents;
        docs.insert(format!("{doc_id}/{version}"), doc);
        while docs.len() > MAX_KNOWN_DOCUMENTS {
            let oldest = docs
                .iter()
                .min_by_key(|(_, d)| d.cached_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => docs.remove(&k),
                None => break,
            };
        }
    }

    /// The documents (hex ids) this device sealed or opened, as cached for `ls`.
    pub fn known_document_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.state
            .documents
            .keys()
            .filter_map(|k| k.split_once('/').map(|(d, _)| d))
    }

    /// The cached metadata of any version of a document, if this device sealed or opened one.
    pub fn known_document_any(&self, doc_id: &str) -> Option<&KnownDocument> {
        let from = format!("{doc_id}/");
        self.state
            .documents
            .range(from.clone()..)
            .take_while(|(k, _)| k.starts_with(&from))
            .map(|(_, d)| d)
            .next()
    }

    /// The cached metadata of a document version, if this device sealed or opened it.
    pub fn known_document(&self, doc_id: &str, version: u32) -> Option<&KnownDocument> {
        self.state.documents.get(&format!("{doc_id}/{version}"))
    }

    /// The log index from which classical wraps to this device are refused (PROTOCOL.md §7.1),
    /// or `None` while it has no hybrid key.
    pub fn hybrid_since(&self) -> Option<u64> {
        self.device.hybrid_secret()?;
        self.state.hybrid_since
    }

    /// Gives this device an X-Wing key (kept in memory until [`Keystore::save`]) and returns
    /// whether it was new. The caller saves, logs the new record and then calls
    /// [`Keystore::set_hybrid_since`]; until then [`Keystore::hybrid_since`] is `None`.
    pub fn add_hybrid_key(&mut self) -> bool {
        self.device.add_hybrid_key()
    }

    /// Replaces this device's keys with fresh classical ones (no X-Wing key), as every device was
    /// before issue 15: for tests of classical stores, `serment id upgrade` and `rewrap --pq`.
    /// Call before registering; the caller saves.
    #[doc(hidden)]
    pub fn use_classical_device_for_tests(&mut self) {
        self.device = DeviceSecret::generate_classical();
        self.state.hybrid_since = None;
    }

    /// The head of `team`'s chain this device verified last (PROTOCOL.md §12.4), if any.
    pub fn team_head(&self, team: &str) -> Option<&str> {
        self.state.teams.get(team).map(String::as_str)
    }

    /// Records the head of `team`'s chain just verified (the caller saves).
    pub fn set_team_head(&mut self, team: &str, head: String) {
        self.state.teams.insert(team.to_owned(), head);
    }

    /// The state of `team` this device verified last (PROTOCOL.md §12.4), if it holds one.
    pub fn team_state(&self, team: &str) -> Option<&crate::team_state::HeldTeam> {
        self.state.team_states.get(team)
    }

    /// Records the state of `team` just verified, with its head (the caller saves). A state
    /// over [`MAX_HELD_TEAM_STATE_LEN`] is not held (review R7): only its head is, and the next
    /// verification replays the whole chain.
    pub fn set_team_state(&mut self, team: &str, held: crate::team_state::HeldTeam) {
        self.state.teams.insert(team.to_owned(), held.head.clone());
        let len = serde_json::to_vec(&held).map_or(usize::MAX, |j| j.len());
        if len > MAX_HELD_TEAM_STATE_LEN {
            self.state.team_states.remove(team);
        } else {
            self.state.team_states.insert(team.to_owned(), held);
        }
    }

    /// Forgets the held state of `team`, keeping its head: the keystore of a client from before
    /// held states (its next verification replays the whole chain). For tests of that path.
    #[doc(hidden)]
    pub fn forget_team_state_for_tests(&mut self, team: &str) {
        self.state.team_states.remove(team);
    }

    /// The teams this device verified, by name.
    pub fn team_names(&self) -> Vec<String> {
        self.state.teams.keys().cloned().collect()
    }

    /// Records the log index of the record that first advertised this device's hybrid key.
    pub fn set_hybrid_since(&mut self, index: u64) {
        self.state.hybrid_since = Some(index);
    }

    /// Forgets that index (the record was in a range a restore lost, PROTOCOL.md §11.11): the
    /// device keeps its X-Wing key, and `serment id upgrade` logs its hybrid record again.
    pub fn clear_hybrid_since(&mut self) {
        self.state.hybrid_since = None;
    }

    /// When this device was revoked by this keystore (seconds since the Unix epoch), if it was.
    pub fn revoked_at(&self) -> Option<u64> {
        self.state.revoked_at
    }

    /// Records that this device was revoked at `at` (shown by `serment id show`).
    pub fn set_revoked(&mut self, at: u64) {
        self.state.revoked_at = Some(at);
    }

    /// Marks a contact verified (fingerprint compared out of band) and clears any pending
    /// rotation notice. Returns false for an unknown contact.
    pub fn mark_verified(&mut self, handle: &str) -> bool {
        match self.state.contacts.get_mut(handle) {
            Some(c) => {
                c.verified = true;
                c.rotated_from = None;
                true
            }
            None => false,
        }
    }
    /// This device's own signed record.
    ///
    /// # Errors
    /// [`ClientError::Input`] if the handle became invalid.
    pub fn own_record(&self) -> Result<Vec<u8>> {
        self.identity
            .sign_device_record(self.handle(), &self.device, self.state.created_at)
            .map_err(|e| ClientError::Input(e.to_string()))
    }
    /// This device's verified own record.
    ///
    /// # Errors
    /// As [`Keystore::own_record`].
    pub fn own_device_record(&self) -> Result<DeviceRecord> {
        DeviceRecord::decode_verified(&self.own_record()?).map_err(ClientError::Integrity)
    }

    /// A keystore held in memory for `identity` and `device` under `handle` (nothing is ever
    /// written): the recovery device's session during `serment recover` (PROTOCOL.md §4.2).
    pub fn in_memory_for(
        identity: IdentitySecret,
        device: DeviceSecret,
        handle: &str,
        created_at: u64,
    ) -> Keystore {
        Keystore {
            store: Store::Memory,
            identity,
            state: PublicState {
                handle: handle.to_owned(),
                display_name: handle.to_owned(),
                created_at,
                hybrid_since: device.hybrid_secret().map(|_| 0),
                ..PublicState::default()
            },
            device,
        }
    }

    /// Sets the creation time this device's record carries (the recovery device's session,
    /// once its logged record is known).
    #[cfg(feature = "native")]
    pub(crate) fn set_created_at(&mut self, created_at: u64) {
        self.state.created_at = created_at;
    }

    /// The recovery device this device made (PROTOCOL.md §4.2).
    pub fn recovery_device(&self) -> Option<KeyId> {
        self.state
            .recovery_device
            .as_deref()
            .and_then(|h| KeyId::from_hex(h).ok())
    }
    /// Records the recovery device this device made, and the identity id its escrow holds
    /// (the current one).
    pub fn set_recovery_device(&mut self, device: Option<&KeyId>) {
        self.state.recovery_device = device.map(KeyId::to_string);
        self.state.recovery_identity = device.map(|_| self.identity.id().to_string());
    }

    /// The identity id the escrow of [`Self::recovery_device`] holds (absent in keystores
    /// written before it was kept).
    pub fn recovery_identity(&self) -> Option<KeyId> {
        self.state
            .recovery_identity
            .as_deref()
            .and_then(|h| KeyId::from_hex(h).ok())
    }

    /// The recovery device whose escrow enrolled this device, as proven in the log then.
    pub fn recovered_from(&self) -> Option<DeviceRecord> {
        let b = crate::api::b64d(self.state.recovered_from.as_deref()?, "recovered_from").ok()?;
        DeviceRecord::decode_verified(&b).ok()
    }
    /// Records the recovery device whose escrow enrolled this device.
    pub fn set_recovered_from(&mut self, record: &[u8]) {
        self.state.recovered_from = Some(crate::api::b64e(record));
    }

    /// The devices this device knows of (made, linked, or warned about), if recorded yet.
    #[must_use]
    pub fn known_devices(&self) -> Option<Vec<KeyId>> {
        self.state
            .known_devices
            .as_ref()
            .map(|s| s.iter().filter_map(|h| KeyId::from_hex(h).ok()).collect())
    }
    /// A device this device made or linked itself (a recovery device, a linked device): added
    /// to those it knows of when it keeps that list; when it does not yet, nothing (the first
    /// check takes every current device as known, this one included). Starting the list with
    /// this device alone would make every other current device look unknown (REVIEW3 S1's
    /// alarm, the newcomer's H3).
    pub fn add_own_device(&mut self, device: KeyId) {
        if let Some(set) = self.state.known_devices.as_mut() {
            set.insert(device.to_string());
        }
    }

    /// Adds devices to those this device knows of (starting the set if absent).
    pub fn add_known_devices(&mut self, devices: &[KeyId]) {
        let set = self
            .state
            .known_devices
            .get_or_insert_with(Default::default);
        set.extend(devices.iter().map(KeyId::to_string));
    }

    /// The newest recovery entry index this device has warned about.
    pub fn recoveries_seen(&self) -> Option<u64> {
        self.state.recoveries_seen
    }
    /// Records that recovery entries up to `index` were shown.
    pub fn set_recoveries_seen(&mut self, index: u64) {
        self.state.recoveries_seen = Some(index);
    }
    /// Forgets which recovery entries were shown (their indices were lost in a restore,
    /// PROTOCOL.md §11.11).
    pub fn clear_recoveries_seen(&mut self) {
        self.state.recoveries_seen = None;
    }

    /// Forgets the head and held state of `team` (its chain verified into a range a restore
    /// lost, PROTOCOL.md §11.11): the next verification replays the whole chain.
    pub fn forget_team(&mut self, team: &str) {
        self.state.teams.remove(team);
        self.state.team_states.remove(team);
    }
}

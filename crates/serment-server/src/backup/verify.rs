//! `verify-backup` (docs/BACKUP.md §6): checks a backup without trusting its own claims.
//!
//! The log key (given by the operator, never read from the backup) signs every manifest and
//! checkpoint; the entries are checked against the checkpoints' RFC 9162 roots; each blob against
//! its document's signed trailer (author device from the logged device records) and every logged
//! wrap's `header_hash`; each wrap and team key wrap against its signer's logged key; the
//! manifests against their chain. Every problem is reported by name (manifest number, entry range,
//! blob id), not just the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt as _;

use serde::Serialize;
use serment_core::document::{Header, Trailer};
use serment_core::log::entry::{LogEntry, Payload, Subject};
use serment_core::log::erasure::Erasure;
use serment_core::log::history::{ChainEntry, replay_keys};
use serment_core::log::note::{SignedCheckpoint, VerifierKey};
use serment_core::log::tree::MemoryTree;
use serment_core::sign::{self, Context};
use serment_core::stream::{TAG_LEN, chunk_plain_len};
use serment_core::suite::CiphertextHasher;
use serment_core::team::TeamKeyWrap;
use serment_core::{DocId, KeyId};

use super::format::{
    MAX_MANIFEST_LEN, Manifest, ObjectKind, ObjectRef, alt_key, decode_segment, parse_manifest_key,
    sha256,
};
use super::target::{Fetched, Streamed};
use super::{BackupError, Target};
use crate::store::{BlobError, Store};

/// What the operator trusts: the log key, the witnesses and their quorum, and optionally a
/// checkpoint a client pinned.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The log's verifier key.
    pub log_key: VerifierKey,
    /// Witness verifier keys.
    pub witnesses: Vec<VerifierKey>,
    /// How many of them must cosign the checkpoint the backup is verified up to (0: none).
    pub quorum: usize,
    /// A checkpoint note a client pinned: the backup must not be older, and must be consistent.
    pub pinned: Option<String>,
}

impl Trust {
    /// Refuses a witness key whose public key is the log's own (review W1): the server holds
    /// the log key, so "cosignatures" by it (under any key type or name) prove nothing a
    /// witness proves.
    ///
    /// # Errors
    /// A message naming the witness key.
    pub fn check_witnesses(&self) -> Result<(), String> {
        match self
            .witnesses
            .iter()
            .find(|w| w.public_key == self.log_key.public_key)
        {
            Some(w) => Err(format!(
                "--witness {}: it is the log's own key; a log cannot witness itself",
                w.encode()
            )),
            None => Ok(()),
        }
    }
}

/// One problem found, with what it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `missing`, `altered`, `chain`, `lost`, `invalid`, `junk`, [`WRONG_KEY`] or [`SHADOWED`]
    /// (docs/JSON.md).
    pub kind: &'static str,
    /// What it is about, e.g. `entries 10..20`, `blob <id>`, `manifest 3`.
    pub what: String,
    /// Details.
    pub detail: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Manifests read.
    pub manifests: u64,
    /// The size of the newest checkpoint every entry of which is present and verified.
    pub size: u64,
    /// The size of the newest such checkpoint cosigned by the witness quorum (equals `size`
    /// when no quorum is required).
    pub cosigned_size: u64,
    /// Whether cosignatures were checked at all: false without witness keys or with a quorum of
    /// 0 (then `cosigned_size` is `size`; the newcomer's N13).
    pub cosignatures_checked: bool,
    /// Its note (with cosignature lines), if any.
    pub checkpoint: Option<String>,
    /// Entries verified.
    pub entries: u64,
    /// Document versions whose blob verified.
    pub blobs: u64,
    /// Document versions erased (kind 9 tombstones): their blobs are not expected.
    pub erased: u64,
    /// Team key wraps verified.
    pub team_keys: u64,
    /// True only when a checkpoint a client pinned (`--checkpoint`) proves the backup is not
    /// older than what clients saw: without it, nothing proves the newest manifest present is the
    /// newest one written (a deleted tail looks like a complete backup; review R2).
    pub anchored: bool,
    /// Everything missing or altered.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True if nothing is missing or altered.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
    fn problem(&mut self, kind: &'static str, what: impl Into<String>, detail: impl Into<String>) {
        self.problems.push(Problem {
            kind,
            what: what.into(),
            detail: detail.into(),
        });
    }
}

/// A side object whose head checked (review T10: sealed; `restore` opens it).
#[derive(Debug)]
pub(crate) struct SideRef {
    pub(crate) kind: ObjectKind,
    pub(crate) key: String,
    pub(crate) bytes: Vec<u8>,
    /// The size of the manifest that named it: `restore --until` takes only objects of
    /// manifests at or before the restored size (REVIEW5 U14).
    pub(crate) manifest_size: u64,
}

/// A verified manifest and the raw bytes of its checkpoint.
struct Verified {
    manifest: Manifest,
    note: Option<SignedCheckpoint>,
    note_text: Option<String>,
}

/// Verifies the backup in `target` (see the module docs).
///
/// # Errors
/// [`BackupError::Target`] only when the target cannot be read at all; everything missing or
/// altered is a [`Problem`] of the report.
pub async fn verify(target: &Target, trust: &Trust) -> Result<Report, BackupError> {
    Ok(verify_contents(target, trust, None).await?.0)
}

/// What [`verify_contents`] read and checked, for `restore` (the same bytes the report is
/// about, never read again).
#[derive(Debug, Default)]
pub(crate) struct Contents {
    /// The entries contiguous from 0, each in a segment whose SHA-256 a signed manifest names.
    pub(crate) entries: Vec<Vec<u8>>,
    /// What the check of each blob found, by document version: its bytes were read once, in
    /// pieces, and dropped (docs/BACKUP.md §7: memory does not grow with the backup's size).
    pub(crate) blobs: HashMap<(DocId, u32), BlobCheck>,
    /// The team key wraps (object key, bytes).
    pub(crate) team_keys: Vec<(String, Vec<u8>)>,
    /// The side objects whose head checked, in manifest order (kind, key, bytes): sealed under
    /// the log key's side key (review T10), opened by `restore` into the two fields below.
    pub(crate) side: Vec<SideRef>,
    /// Provisional recipients' rows, opened by `restore`, in manifest order (review S3).
    pub(crate) provisionals: Vec<super::side::ProvisionalObject>,
    /// Social recovery sets, opened by `restore`, in manifest order: a later one of a handle is
    /// newer (review T11).
    pub(crate) social: Vec<super::side::SocialObject>,
    /// Recovery escrow rows that decoded, in manifest order: a later one of a handle is newer.
    pub(crate) escrows: Vec<super::side::EscrowObject>,
    /// Loss statements of earlier restores whose log-key signature verified, in manifest order,
    /// with the size of the manifest that named each (REVIEW6 V6).
    pub(crate) loss_statements: Vec<(u64, serment_core::log::loss::SignedLossStatement)>,
    /// Every checkpoint note whose log signature verified and whose root the entries give, by
    /// size (cosignature lines as backed up).
    pub(crate) notes: BTreeMap<u64, String>,
    /// The largest size a signed manifest names (the backup's own claim of where it ends).
    pub(crate) max_size: u64,
}

/// [`verify`], keeping what it checked for `restore`.
///
/// With `dest` (`serment restore`), each blob is also written into that store as it is read
/// and checked (the backup is read once): committed only when it hashes to its manifest's id
/// and its chunks, trailer and author signature verified ([`BlobCheck::written`]); never for a
/// document an erasure tombstone of the backup names (erased bytes never reach the
/// destination). The restore decides afterwards which of them it keeps.
pub(crate) async fn verify_contents(
    target: &Target,
    trust: &Trust,
    dest: Option<&Store>,
) -> Result<(Report, Contents), BackupError> {
    let mut r = Report {
        cosignatures_checked: trust.quorum > 0,
        ..Report::default()
    };
    let mut notes = BTreeMap::new();
    let manifests = read_manifests(target, trust, &mut r).await?;
    r.manifests = manifests.len() as u64;
    name_taken(&manifests, &mut r);
    if manifests.is_empty() && !r.problems.iter().any(|p| p.kind == WRONG_KEY) {
        r.problem(
            "lost",
            "backup",
            "the target holds no manifest signed by this log key (empty, or deleted)",
        );
    }

    // Objects: each must be present with the SHA-256 and length its manifest names.
    // Blobs come after the entries (their checks need the logged device keys), streamed; the
    // other objects (entry segments, team key wraps, side rows: small) are read here, several
    // at a time, in manifest order.
    let mut segments: BTreeMap<u64, (u64, Vec<Vec<u8>>)> = BTreeMap::new();
    let mut blob_refs: Vec<(u64, ObjectRef)> = Vec::new();
    let mut team_keys = Vec::new();
    let mut side = Vec::new();
    let mut loss_statements = Vec::new();
    let mut small: Vec<(u64, u64, ObjectRef)> = Vec::new();
    for v in &manifests {
        for o in &v.manifest.objects {
            match o.kind {
                ObjectKind::Checkpoint => {}
                ObjectKind::Blob { .. } => blob_refs.push((v.manifest.seq, o.clone())),
                _ => small.push((v.manifest.seq, v.manifest.size, o.clone())),
            }
        }
    }
    let mut fetched = futures_util::stream::iter(small)
        .map(|(seq, msize, o)| async move {
            let f = target.get_bounded(&o.key, o.len).await;
            (seq, msize, o, f)
        })
        .buffered(OBJECTS_IN_FLIGHT);
    while let Some((seq, msize, o, got)) = fetched.next().await {
        {
            let o = &o;
            let what = match &o.kind {
                ObjectKind::Entries { start, end } => format!("entries {start}..{end}"),
                _ => o.key.clone(),
            };
            let bytes = match got? {
                Fetched::Bytes(b) => b,
                Fetched::Missing => {
                    r.problem(
                        "missing",
                        what,
                        format!("{} named by manifest {seq}", o.key),
                    );
                    continue;
                }
                Fetched::TooLarge => {
                    r.problem(
                        "altered",
                        what,
                        format!("{} is longer than manifest {seq} names", o.key),
                    );
                    continue;
                }
            };
            if sha256(&bytes) != o.sha256 || bytes.len() as u64 != o.len {
                r.problem(
                    "altered",
                    what,
                    format!("{} does not hash to what manifest {seq} names", o.key),
                );
                continue;
            }
            match &o.kind {
                ObjectKind::Entries { start, end } => match decode_segment(&o.key, &bytes) {
                    Ok((s, entries)) if s == *start && s + entries.len() as u64 == *end => {
                        segments.insert(*start, (*end, entries));
                    }
                    Ok(_) => r.problem("invalid", what, "segment range differs from its name"),
                    Err(e) => r.problem("invalid", what, e.to_string()),
                },
                ObjectKind::Blob { .. } => {}
                ObjectKind::TeamKey => team_keys.push((o.key.clone(), bytes)),
                // Sealed under the log key's side key (review T10): without the key, only
                // their head is checked here; `restore` opens them.
                ObjectKind::Provisional | ObjectKind::Escrow | ObjectKind::Social => {
                    let magic = match o.kind {
                        ObjectKind::Provisional => super::side::PROVISIONAL_MAGIC,
                        ObjectKind::Escrow => super::side::ESCROW_MAGIC,
                        _ => super::side::SOCIAL_MAGIC,
                    };
                    match super::side::check_head(&o.key, magic, &bytes) {
                        Ok(_) => side.push(SideRef {
                            kind: o.kind.clone(),
                            key: o.key.clone(),
                            bytes,
                            manifest_size: msize,
                        }),
                        Err(e) => r.problem("invalid", what, e.to_string()),
                    }
                }
                ObjectKind::Loss => {
                    let text = String::from_utf8(bytes).unwrap_or_default();
                    match serment_core::log::loss::SignedLossStatement::verify(
                        &text,
                        &trust.log_key,
                    ) {
                        Ok(st) => loss_statements.push((msize, st)),
                        Err(e) => r.problem("invalid", what, format!("loss statement: {e}")),
                    }
                }
                ObjectKind::Checkpoint => {}
            }
        }
    }
    drop(fetched);

    // Entries: contiguous from 0, hashed into the tree.
    let max_size = manifests.iter().map(|v| v.manifest.size).max().unwrap_or(0);
    let mut tree = MemoryTree::new();
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut at = 0u64;
    for (start, (end, es)) in &segments {
        if *start > at {
            break;
        }
        if *end <= at {
            continue;
        }
        let skip = usize::try_from(at - start).unwrap_or(usize::MAX);
        for e in es.iter().skip(skip) {
            if tree.push_entry(e).is_err() {
                break;
            }
            entries.push(e.clone());
        }
        at = *end;
    }
    if at < max_size {
        r.problem(
            "missing",
            format!("entries {at}..{}", segments_next(&segments, at, max_size)),
            "no segment of the backup holds them",
        );
    }

    // Checkpoints: the newest one fully present, signed, and matching the entries' root.
    for v in &manifests {
        let (Some(note), Some(text)) = (&v.note, &v.note_text) else {
            continue;
        };
        let size = note.checkpoint.size;
        if size > at {
            continue;
        }
        match tree.root_at(size) {
            Ok(root) if root == note.checkpoint.root => {
                notes.insert(size, text.clone());
                if size >= r.size {
                    r.size = size;
                    if trust.quorum == 0 {
                        r.cosigned_size = size;
                        r.checkpoint = Some(text.clone());
                    }
                }
                if trust.quorum > 0
                    && trust.check_witnesses().is_ok()
                    && note.cosigned_by(&trust.witnesses) >= trust.quorum
                    && size >= r.cosigned_size
                {
                    r.cosigned_size = size;
                    r.checkpoint = Some(text.clone());
                }
            }
            _ => r.problem(
                "altered",
                format!("entries 0..{size}"),
                format!(
                    "their root is not the one the checkpoint of manifest {} signs",
                    v.manifest.seq
                ),
            ),
        }
    }
    if trust.quorum > 0 && r.checkpoint.is_none() && !manifests.is_empty() {
        r.problem(
            "missing",
            "cosigned checkpoint",
            format!(
                "no checkpoint of the backup is cosigned by {} of the witnesses",
                trust.quorum
            ),
        );
    }
    r.entries = at.min(entries.len() as u64);

    let before = r.problems.len();
    check_pinned(trust, &tree, at, &mut r);
    r.anchored = trust.pinned.is_some() && r.problems.len() == before;
    let dest = dest.map(|store| BlobDest {
        store: store.clone(),
        // Every segment that hashed to its manifest's name, after a gap too (REVIEW7 M3).
        skip: Arc::new(
            segments
                .values()
                .flat_map(|(_, es)| es)
                .filter_map(|e| LogEntry::decode(e).ok())
                .filter_map(|e| match e.payload {
                    Payload::Erasure(t) => Some(t.doc_id),
                    _ => None,
                })
                .collect(),
        ),
        inline_left: Arc::new(std::sync::atomic::AtomicU64::new(INLINE_BUDGET)),
    });
    // The log's own checks (most of the backup's Ed25519 work: a signature per wrap) run on
    // the blocking pool beside the blob pass, which reads and hashes.
    let (entries, team_keys) = (Arc::new(entries), Arc::new(team_keys));
    let log = {
        let (e, t) = (Arc::clone(&entries), Arc::clone(&team_keys));
        tokio::task::spawn_blocking(move || check_log(&e, &t))
    };
    let blobs = check_blobs(target, blob_refs, &entries, dest, &mut r).await?;
    log.await
        .map_err(|e| BackupError::Target(format!("log check: {e}")))?
        .check_blobs_against(&blobs, &mut r);
    // Both checks are done: the last references.
    let entries = Arc::try_unwrap(entries).unwrap_or_else(|e| (*e).clone());
    let team_keys = Arc::try_unwrap(team_keys).unwrap_or_else(|t| (*t).clone());
    shadowed(target, &mut r);
    Ok((
        r,
        Contents {
            entries,
            blobs,
            team_keys,
            side,
            provisionals: Vec::new(),
            escrows: Vec::new(),
            social: Vec::new(),
            loss_statements,
            notes,
            max_size,
        },
    ))
}

/// The most junk objects under `manifests/` named one by one (REVIEW5 U7).
const MAX_JUNK: usize = 1000;

/// The problem kind of a backup none of whose manifests is signed by the log key given, while
/// they are manifests of another log (the newcomer's N16: most likely the wrong log key).
pub const WRONG_KEY: &str = "wrong_key";

/// The problem kind of an object of a bucket with versions after its first one (REVIEW5 U8):
/// written without `If-None-Match` by someone holding the backup's credentials. Its oldest
/// version (the one the backup wrote) is what was read and checked; `restore` does not count it.
pub const SHADOWED: &str = "shadowed";

/// REVIEW5 U8: one problem of kind [`SHADOWED`] per key read with later versions, naming it.
fn shadowed(target: &Target, r: &mut Report) {
    let s = target.shadowed();
    for (key, later) in s.named {
        r.problem(
            SHADOWED,
            key,
            format!(
                "{later} later version(s) or delete marker(s) over the object (written without \
                 If-None-Match, by someone holding the backup's credentials: the bucket policy \
                 is not enforced, README \"Backup\"); its oldest version was read"
            ),
        );
    }
    if s.more {
        r.problem(
            SHADOWED,
            "bucket",
            format!(
                "more objects are shadowed than the {} named",
                super::versions::MAX_SHADOWED_NAMED
            ),
        );
    }
}

/// REVIEW5 U6: an object a manifest names under an alternative name ([`alt_key`]) means its
/// own name, and the alternative names before the one used, held other contents when the backup
/// wrote it (taken by someone able to create objects in the target). Each such name is one
/// problem of kind `junk`: no manifest names it, nothing restored depends on it, and `restore`
/// does not count it against the backup.
fn name_taken(manifests: &[Verified], r: &mut Report) {
    let mut taken: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for v in manifests {
        for o in &v.manifest.objects {
            let (own, n) = o.own_key();
            for i in 0..n {
                taken
                    .entry(alt_key(own, i))
                    .or_insert_with(|| (o.key.clone(), v.manifest.seq));
            }
        }
    }
    for (name, (written, seq)) in taken {
        r.problem(
            "junk",
            name,
            format!(
                "held other contents when the backup wrote its object (made by someone able to \
                 create objects in the target): manifest {seq} names the object under {written}"
            ),
        );
    }
}

/// How many objects are read (and, by `restore`, written) at once: enough to hide a bucket's
/// per-request latency, few enough that memory stays a few pieces per object
/// ([`super::target::READ_BUF`]), whatever the backup's size.
pub(crate) const OBJECTS_IN_FLIGHT: usize = 8;

/// What the check of one blob found (its bytes are gone).
#[derive(Debug, Clone)]
pub(crate) struct BlobCheck {
    /// Its object key.
    pub(crate) key: String,
    /// The SHA-256 of its bytes (checked against the manifest: its blob id).
    pub(crate) id: [u8; 32],
    /// Its length.
    pub(crate) len: u64,
    /// Its header and whether the rest verified, or why the header does not decode.
    pub(crate) sealed: Result<Sealed, String>,
    /// Whether `restore` wrote it into its destination as it was checked
    /// ([`verify_contents`]'s `dest`).
    pub(crate) written: bool,
    /// Its bytes, verified, when `restore` keeps them for its database instead of writing a
    /// file: a blob of at most [`crate::store::MAX_INLINE_BLOB`] bytes, which the server itself
    /// keeps inline in its database ([`BlobDest::inline_left`]).
    pub(crate) inline: Option<axum::body::Bytes>,
}

/// A blob's header as checked, and whether its chunks, trailer and author signature verified
/// (with the author device's key from the whole backup's log: a device's key is its id's).
#[derive(Debug, Clone)]
pub(crate) struct Sealed {
    doc: DocId,
    version: u32,
    header_hash: [u8; 32],
    pub(crate) author_device: KeyId,
    body: Result<(), String>,
}

/// Where [`verify_contents`] writes the blobs it checks for `restore`: the destination store,
/// and the documents whose blobs it must not write (an erasure tombstone names them).
#[derive(Clone)]
struct BlobDest {
    store: Store,
    skip: Arc<HashSet<DocId>>,
    /// The bytes of small blobs the restore may still hold for its database rows
    /// ([`BlobCheck::inline`]); past them, small blobs are written as files like the others.
    inline_left: Arc<std::sync::atomic::AtomicU64>,
}

/// At most this many bytes of small blobs are held in memory for the restore's database
/// ([`BlobDest::inline_left`]): memory stays bounded whatever the backup's size.
const INLINE_BUDGET: u64 = 256 << 20;

impl BlobDest {
    /// Takes `len` bytes of the inline budget, if that many are left.
    fn reserve_inline(&self, len: u64) -> bool {
        use std::sync::atomic::Ordering;
        self.inline_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(len)
            })
            .is_ok()
    }

    /// Gives back `len` bytes of the inline budget.
    fn release_inline(&self, len: u64) {
        self.inline_left
            .fetch_add(len, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Reads every blob, [`OBJECTS_IN_FLIGHT`] at a time, each streamed through its SHA-256 and
/// [`SealedCheck`] (and into `dest`, when given): missing, longer or altered objects are
/// problems; the others are returned checked, their bytes dropped. A later manifest naming a
/// version again wins, as before.
async fn check_blobs(
    target: &Target,
    refs: Vec<(u64, ObjectRef)>,
    entries: &[Vec<u8>],
    dest: Option<BlobDest>,
    r: &mut Report,
) -> Result<HashMap<(DocId, u32), BlobCheck>, BackupError> {
    let devices: Arc<HashMap<KeyId, [u8; 32]>> = Arc::new(
        entries
            .iter()
            .filter_map(|e| LogEntry::decode(e).ok())
            .filter_map(|e| match e.payload {
                Payload::Device(d) => Some((d.device_id(), d.signing_key)),
                _ => None,
            })
            .collect(),
    );
    let mut out = HashMap::new();
    let mut checks = futures_util::stream::iter(refs)
        .map(|(seq, o)| {
            let (target, devices, dest) = (target.clone(), Arc::clone(&devices), dest.clone());
            // A task each: hashing runs on every core while other objects are read.
            let task = AbortOnDrop(tokio::spawn(async move {
                let stage = match (&dest, &o.kind) {
                    (Some(d), ObjectKind::Blob { doc, .. }) if !d.skip.contains(doc) => Some(d),
                    _ => None,
                };
                let checked = check_blob(&target, &o, &devices, stage).await;
                (seq, o, checked)
            }));
            async move {
                let mut task = task;
                (&mut task.0)
                    .await
                    .map_err(|e| BackupError::Target(format!("blob check: {e}")))
            }
        })
        .buffered(OBJECTS_IN_FLIGHT);
    while let Some(done) = checks.next().await {
        let (seq, o, checked) = done?;
        let ObjectKind::Blob { doc, version } = o.kind else {
            continue;
        };
        let what = format!("blob {} (document {doc} version {version})", o.key);
        match checked? {
            BlobRead::Missing => {
                r.problem(
                    "missing",
                    what,
                    format!("{} named by manifest {seq}", o.key),
                );
            }
            BlobRead::TooLarge => r.problem(
                "altered",
                what,
                format!("{} is longer than manifest {seq} names", o.key),
            ),
            BlobRead::Read(c) if c.id != o.sha256 || c.len != o.len => r.problem(
                "altered",
                what,
                format!("{} does not hash to what manifest {seq} names", o.key),
            ),
            BlobRead::Read(c) => {
                out.insert((doc, version), *c);
            }
        }
    }
    Ok(out)
}

/// A task aborted when its handle is dropped: a check that returns early (an error) leaves no
/// blob check running behind it, writing into a staging directory being removed (REVIEW7 M2).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum BlobRead {
    Missing,
    TooLarge,
    /// Boxed: a check is large, the other variants empty.
    Read(Box<BlobCheck>),
}

/// Whether a checked blob is the one its manifest names (SHA-256 and length), its header names
/// the version the manifest does, and its chunks, trailer and signature verified: only such a
/// blob goes into a restore's destination (M200-M202).
fn verified_as_named(checked: &BlobCheck, o: &ObjectRef) -> bool {
    let named = match o.kind {
        ObjectKind::Blob { doc, version } => Some((doc, version)),
        _ => None,
    };
    checked.id == o.sha256
        && checked.len == o.len
        && checked
            .sealed
            .as_ref()
            .is_ok_and(|s| s.body.is_ok() && Some((s.doc, s.version)) == named)
}

/// Streams one blob through its checks, and into `dest` when given: the bytes are staged as
/// they stream by and committed only if the blob is the one its manifest names and verified.
/// A small blob (at most [`crate::store::MAX_INLINE_BLOB`] bytes, within the budget) is read
/// whole instead and, if it verified, kept for the restore's database: no file.
async fn check_blob(
    target: &Target,
    o: &ObjectRef,
    devices: &HashMap<KeyId, [u8; 32]>,
    dest: Option<&BlobDest>,
) -> Result<BlobRead, BackupError> {
    if let Some(d) = dest
        && o.len <= crate::store::MAX_INLINE_BLOB as u64
        && d.reserve_inline(o.len)
    {
        let bytes = match target.get_bounded(&o.key, o.len).await {
            Ok(Fetched::Bytes(b)) => b,
            other => {
                d.release_inline(o.len);
                return Ok(match other? {
                    Fetched::Missing => BlobRead::Missing,
                    _ => BlobRead::TooLarge,
                });
            }
        };
        let mut check = SealedCheck::default();
        check.update(&bytes);
        let mut checked = check.finish(o.key.clone(), devices);
        if verified_as_named(&checked, o) {
            checked.inline = Some(axum::body::Bytes::from(bytes));
        } else {
            d.release_inline(o.len);
        }
        return Ok(BlobRead::Read(Box::new(checked)));
    }
    let dest = dest.map(|d| &d.store);
    let mut stream = match target.get_stream(&o.key, o.len).await? {
        Streamed::Missing => return Ok(BlobRead::Missing),
        Streamed::TooLarge => return Ok(BlobRead::TooLarge),
        Streamed::Stream(s) => s,
    };
    let Some(store) = dest else {
        let mut check = SealedCheck::default();
        while let Some(piece) = stream.next().await {
            check.update(&piece?);
            if check.len > o.len {
                return Ok(BlobRead::TooLarge);
            }
        }
        return Ok(BlobRead::Read(Box::new(
            check.finish(o.key.clone(), devices),
        )));
    };
    // The blob store hashes the bytes it stages (their id): the check leaves the SHA-256 to it.
    let check = Arc::new(std::sync::Mutex::new(SealedCheck::without_id()));
    let feed = Arc::clone(&check);
    let body = stream
        .map(move |piece| {
            let piece = piece.map_err(|e| e.to_string())?;
            feed.lock()
                .map_err(|_| "a blob check panicked".to_owned())?
                .update(&piece);
            Ok(piece)
        })
        .boxed();
    let staged = match store.stage_blob(body, o.len).await {
        Ok(staged) => staged,
        Err(BlobError::TooLarge { .. }) => return Ok(BlobRead::TooLarge),
        Err(BlobError::Body(e)) => return Err(BackupError::Target(e)),
        Err(e) => return Err(BackupError::Store(format!("writing {}: {e}", o.key))),
    };
    let check = std::mem::take(
        &mut *check
            .lock()
            .map_err(|_| BackupError::Target("a blob check panicked".into()))?,
    );
    let mut checked = check.finish(o.key.clone(), devices);
    checked.id = hex::decode(staged.id().as_str())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .unwrap_or_default();
    checked.len = staged.size();
    if verified_as_named(&checked, o) {
        // The store is the restore's own (a fresh staging data directory): a blob already
        // there is one this run wrote under another name of the backup.
        staged
            .commit()
            .await
            .map_err(|e| BackupError::Store(format!("writing {}: {e}", o.key)))?;
        checked.written = true;
    }
    Ok(BlobRead::Read(Box::new(checked)))
}

/// Checks a sealed document without its key (PROTOCOL.md §6.1), fed its bytes in pieces of any
/// size: memory is one chunk (64 KiB and its tag) and the trailer, whatever the document's size.
/// [`BlobCheck::check`] then checks the header against the log.
pub(crate) struct SealedCheck {
    /// The SHA-256 of the bytes (the blob id), unless someone else hashes them.
    sha: Option<sha2::Sha256>,
    len: u64,
    pending: Vec<u8>,
    header: Option<(Header, CiphertextHasher)>,
    chunk: u64,
    failed: Option<String>,
}

impl Default for SealedCheck {
    /// A check that also hashes the bytes with SHA-256 (the blob id).
    fn default() -> SealedCheck {
        SealedCheck {
            sha: Some(sha2::Sha256::default()),
            len: 0,
            pending: Vec::new(),
            header: None,
            chunk: 0,
            failed: None,
        }
    }
}

impl SealedCheck {
    /// A check that leaves the blob id to the caller (whose blob store hashes the same bytes):
    /// [`BlobCheck::id`] is then all zeros.
    fn without_id() -> SealedCheck {
        SealedCheck {
            sha: None,
            ..SealedCheck::default()
        }
    }

    pub(crate) fn update(&mut self, piece: &[u8]) {
        use sha2::Digest as _;
        if let Some(sha) = self.sha.as_mut() {
            sha.update(piece);
        }
        self.len = self.len.saturating_add(piece.len() as u64);
        if self.failed.is_some() {
            return;
        }
        self.pending.extend_from_slice(piece);
        let mut used = 0usize;
        loop {
            let rest = self.pending.get(used..).unwrap_or_default();
            let Some((h, ct)) = self.header.as_mut() else {
                let Some(head) = rest.get(..Header::LEN) else {
                    break;
                };
                match Header::decode(head) {
                    Ok(h) => {
                        let ct = h.suite.ciphertext_hasher();
                        self.header = Some((h, ct));
                        used += Header::LEN;
                        continue;
                    }
                    Err(e) => {
                        self.failed = Some(e.to_string());
                        break;
                    }
                }
            };
            if self.chunk >= h.chunks() {
                // The trailer: what is left, bounded.
                if rest.len() > Trailer::MAX_LEN {
                    self.failed = Some("its trailer is too long".into());
                }
                break;
            }
            let len = chunk_plain_len(h.padded_len, self.chunk) + TAG_LEN;
            let Some(chunk) = rest.get(..len) else {
                break;
            };
            let Ok(i) = u32::try_from(self.chunk) else {
                self.failed = Some("too many chunks".into());
                break;
            };
            ct.update(&h.suite.chunk_hash(i, chunk));
            self.chunk += 1;
            used += len;
        }
        self.pending.drain(..used.min(self.pending.len()));
        if self.failed.is_some() {
            self.pending = Vec::new();
        }
    }

    /// What the bytes fed were; the author's signature checked with `devices`' key.
    pub(crate) fn finish(self, key: String, devices: &HashMap<KeyId, [u8; 32]>) -> BlobCheck {
        use sha2::Digest as _;
        let id: [u8; 32] = self.sha.map(|s| s.finalize().into()).unwrap_or_default();
        let sealed = match self.header {
            None => Err(self
                .failed
                .unwrap_or_else(|| "shorter than a header".to_owned())),
            Some((h, ct)) => {
                let body = match self.failed {
                    Some(why) => Err(why),
                    None if self.chunk < h.chunks() => Err("truncated".to_owned()),
                    None => trailer_signature(&h, ct, &self.pending, devices),
                };
                Ok(Sealed {
                    doc: h.doc_id,
                    version: h.doc_version,
                    header_hash: h.hash(),
                    author_device: h.author_device,
                    body,
                })
            }
        };
        BlobCheck {
            key,
            id,
            len: self.len,
            sealed,
            written: false,
            inline: None,
        }
    }
}

/// The trailer after the last chunk and the author device's signature over the header hash,
/// the ciphertext hash and the recipients.
fn trailer_signature(
    header: &Header,
    ct: CiphertextHasher,
    trailer: &[u8],
    devices: &HashMap<KeyId, [u8; 32]>,
) -> Result<(), String> {
    let author = devices
        .get(&header.author_device)
        .ok_or("its author device is not in the log")?;
    let trailer = Trailer::decode(trailer).map_err(|e| e.to_string())?;
    let mut signed = Vec::with_capacity(66 + 32 * trailer.recipients.len());
    signed.extend_from_slice(&header.hash());
    signed.extend_from_slice(&ct.finalize());
    signed.extend_from_slice(&(trailer.recipients.len() as u16).to_be_bytes());
    for id in &trailer.recipients {
        signed.extend_from_slice(id.as_bytes());
    }
    sign::verify(
        author,
        Context::Document,
        &signed,
        &trailer.signature,
        "document",
    )
    .map_err(|_| "the author's signature does not verify".to_string())
}

impl BlobCheck {
    /// The checks of a blob against the log (its entries so far): the header names the
    /// version, its hash is the one every logged wrap binds, its author device is in the log,
    /// and the chunks, trailer and signature verified.
    fn check(
        &self,
        doc: DocId,
        version: u32,
        wrap_hashes: &HashSet<[u8; 32]>,
        devices: &HashMap<KeyId, [u8; 32]>,
    ) -> Result<(), String> {
        let s = self.sealed.as_ref().map_err(Clone::clone)?;
        if s.doc != doc || s.version != version {
            return Err("its header names another document or version".into());
        }
        if wrap_hashes.iter().any(|h| *h != s.header_hash) {
            return Err("its header hash is not the one the logged wraps bind".into());
        }
        if !devices.contains_key(&s.author_device) {
            return Err("its author device is not in the log".into());
        }
        s.body.clone()
    }
}

fn segments_next(segments: &BTreeMap<u64, (u64, Vec<Vec<u8>>)>, at: u64, max: u64) -> u64 {
    segments.keys().copied().find(|s| *s > at).unwrap_or(max)
}

/// Reads the manifests in order: each signed by the log key, numbered as named, chained to the
/// previous one. A broken link is reported; manifests with a valid signature are still used.
async fn read_manifests(
    target: &Target,
    trust: &Trust,
    r: &mut Report,
) -> Result<Vec<Verified>, BackupError> {
    let pk = trust.log_key.public_key;
    // First every name and its bytes (bounded), so that junk is one problem and never a chain
    // position: the chain is walked over names that parse, in number order.
    // Each object's signature is checked as soon as it is read and its bytes dropped (REVIEW5
    // U7): junk under `manifests/`, however much of it, is never held in memory.
    //
    // What anyone able to create objects can leave under `manifests/` (REVIEW5 U7, U12): a name
    // that is no manifest name, an object that cannot be read (a directory, a FIFO, an archived
    // or SSE-C object), one larger than any manifest, one that does not hash to its name, one
    // not signed by the log key, a signed manifest copied under another number: each is one
    // problem of kind `junk`, which `restore` does not count against the backup (no signed
    // manifest names it, so it changes nothing that is restored), and never a chain position.
    // At most `MAX_JUNK` are named; the rest are counted in one more.
    let mut named: Vec<(u64, [u8; 32], Manifest)> = Vec::new();
    let mut foreign: Vec<(String, String, Manifest)> = Vec::new();
    let mut junk = 0usize;
    let mut junk_problem = |r: &mut Report, what: String, detail: String| {
        junk += 1;
        if junk <= MAX_JUNK {
            r.problem("junk", what, detail);
        }
    };
    for key in target.list("manifests").await? {
        let Some((num, hash)) = parse_manifest_key(&key) else {
            junk_problem(r, key.clone(), "not a manifest name".into());
            continue;
        };
        let what = format!("manifest {num}");
        match target.get_bounded(&key, MAX_MANIFEST_LEN as u64).await {
            Err(e) => junk_problem(r, what, format!("{key} cannot be read: {e}")),
            Ok(Fetched::Missing) => junk_problem(r, what, format!("{key} vanished while read")),
            Ok(Fetched::TooLarge) => {
                junk_problem(r, what, format!("{key} is larger than any manifest"));
            }
            Ok(Fetched::Bytes(b)) if sha256(&b) != hash => {
                junk_problem(r, what, format!("{key} does not hash to its name"));
            }
            Ok(Fetched::Bytes(b)) => match Manifest::parse_verified(&key, &b, &pk) {
                Ok(m) if m.seq != num => junk_problem(
                    r,
                    what,
                    format!("{key} is a copy of manifest {} (replayed)", m.seq),
                ),
                Ok(m) => named.push((num, hash, m)),
                Err(e) => match Manifest::parse_unverified(&key, &b) {
                    // A manifest of another log: junk, unless no manifest is of this log key
                    // (then most likely the wrong key was given; N16).
                    Ok(m) if m.origin != trust.log_key.name && foreign.len() < MAX_JUNK => {
                        foreign.push((key.clone(), e.reason, m));
                    }
                    _ => junk_problem(r, what, format!("{key}: {}", e.reason)),
                },
            },
        }
    }
    if named.is_empty() && !foreign.is_empty() {
        wrong_key(target, trust, &foreign, r).await;
    } else {
        for (key, reason, m) in foreign {
            junk_problem(r, format!("manifest {}", m.seq), format!("{key}: {reason}"));
        }
    }
    if junk > MAX_JUNK {
        r.problem(
            "junk",
            "manifests/",
            format!("and {} more objects that are no manifest", junk - MAX_JUNK),
        );
    }
    let mut out: Vec<Verified> = Vec::new();
    let mut prev_hash: Option<[u8; 32]> = None;
    let mut prev_size = 0u64;
    let mut expected = 0u64;
    for (num, hash, m) in named {
        let what = format!("manifest {num}");
        if num > expected {
            // One problem for the whole gap, whatever its length.
            let last = num - 1;
            let range = if last == expected {
                format!("manifest {expected}")
            } else {
                format!("manifests {expected}..={last}")
            };
            r.problem("missing", range, "absent from the chain");
            prev_hash = None;
        } else if num < expected {
            r.problem(
                "chain",
                what.clone(),
                "a second manifest with this number (a fork)",
            );
        }
        expected = num.saturating_add(1);
        if m.seq != num {
            r.problem(
                "chain",
                what.clone(),
                format!("it is a copy of manifest {} (replayed)", m.seq),
            );
        } else if num > 0 && m.prev != prev_hash {
            r.problem(
                "chain",
                what.clone(),
                format!("it does not chain to manifest {}", num - 1),
            );
        } else if num == 0 && m.prev.is_some() {
            r.problem("chain", what.clone(), "manifest 0 names a predecessor");
        }
        if m.size < prev_size {
            r.problem(
                "chain",
                what.clone(),
                format!(
                    "it covers {} entries, fewer than the {prev_size} before it",
                    m.size
                ),
            );
        }
        if m.origin != trust.log_key.name {
            r.problem(
                "invalid",
                what.clone(),
                format!("it is for the log {}", m.origin),
            );
        }
        prev_size = prev_size.max(m.size);
        // The name's hash is the bytes' (checked above).
        prev_hash = Some(hash);
        let (mut note, mut note_text) = (None, None);
        if let Some(cp) = m.checkpoint() {
            match target.get_bounded(&cp.key, cp.len).await? {
                Fetched::Missing => {
                    r.problem("missing", cp.key.clone(), format!("named by {what}"));
                }
                Fetched::TooLarge => {
                    r.problem("altered", cp.key.clone(), format!("named by {what}"));
                }
                Fetched::Bytes(b) if sha256(&b) != cp.sha256 => {
                    r.problem("altered", cp.key.clone(), format!("named by {what}"));
                }
                Fetched::Bytes(b) => {
                    let text = String::from_utf8_lossy(&b).into_owned();
                    match SignedCheckpoint::parse(&text).and_then(|s| {
                        s.verify_log_signature(&trust.log_key)?;
                        Ok(s)
                    }) {
                        Ok(s) if s.checkpoint.size == m.size => {
                            note = Some(s);
                            note_text = Some(text);
                        }
                        Ok(_) => r.problem("invalid", what.clone(), "checkpoint size differs"),
                        Err(e) => r.problem("invalid", cp.key.clone(), e.to_string()),
                    }
                }
            }
        }
        out.push(Verified {
            manifest: m,
            note,
            note_text,
        });
    }
    Ok(out)
}

/// The one problem of a backup none of whose manifests is signed by the log key given, while
/// `foreign` (at least one) are manifests of another log (the newcomer's N16): it names both
/// logs and their key ids (the other's from the signature line of its checkpoint note), and
/// says what it means either way. Nothing of `foreign` is trusted: it only names.
async fn wrong_key(
    target: &Target,
    trust: &Trust,
    foreign: &[(String, String, Manifest)],
    r: &mut Report,
) {
    let origins: std::collections::BTreeSet<&str> =
        foreign.iter().map(|(_, _, m)| m.origin.as_str()).collect();
    let mut theirs = Vec::new();
    for origin in origins {
        let mut id = None;
        // The key id on the signature line of the checkpoint note of one of its manifests.
        for (_, _, m) in foreign
            .iter()
            .filter(|(_, _, m)| m.origin == origin)
            .take(4)
        {
            let Some(cp) = m.checkpoint() else { continue };
            if let Ok(Fetched::Bytes(b)) = target.get_bounded(&cp.key, cp.len.min(1 << 16)).await
                && let Ok(note) = SignedCheckpoint::parse(&String::from_utf8_lossy(&b))
            {
                id = note
                    .signatures
                    .iter()
                    .find(|s| s.name == origin)
                    .and_then(|s| s.key_id());
            }
            if id.is_some() {
                break;
            }
        }
        theirs.push(match id {
            Some(id) => format!("{origin} (key id {id:08x})"),
            None => origin.to_owned(),
        });
    }
    let ours = &trust.log_key;
    r.problem(
        WRONG_KEY,
        "log key",
        format!(
            "the backup is not signed by this log key: its {} manifest(s) are for the log {}, \
             this key ({}) is for the log {} (key id {:08x}). Is it this server's log key? With \
             the right key the backup may verify; if this key is the right one, every manifest of \
             the backup was replaced",
            foreign.len(),
            theirs.join(", "),
            ours.encode(),
            ours.name,
            ours.id()
        ),
    );
}

/// The `--checkpoint` note, parsed, its log signature verified, and every cosignature line
/// of a given witness key (its name and key id: a witness's own export carries one, PROTOCOL.md
/// §11.8) verified: a line that names a witness the operator trusts and does not verify is an
/// altered note, never ignored. Lines of other keys are left alone, as in any note.
pub(crate) fn pinned_note(text: &str, trust: &Trust) -> Result<SignedCheckpoint, String> {
    let s = SignedCheckpoint::parse(text).map_err(|e| e.to_string())?;
    s.verify_log_signature(&trust.log_key)
        .map_err(|e| e.to_string())?;
    for w in &trust.witnesses {
        for line in s
            .signatures
            .iter()
            .filter(|l| l.name == w.name && l.key_id() == Some(w.id()))
        {
            if s.verify_cosignature(line, w).is_err() {
                return Err(format!(
                    "the cosignature of witness {} on the note does not verify (an altered note)",
                    w.name
                ));
            }
        }
    }
    Ok(s)
}

/// `--checkpoint NOTE`: the backup must reach the pinned checkpoint and agree with it.
fn check_pinned(trust: &Trust, tree: &MemoryTree, at: u64, r: &mut Report) {
    let Some(text) = &trust.pinned else {
        return;
    };
    let pinned = match pinned_note(text, trust) {
        Ok(s) => s.checkpoint,
        Err(e) => {
            r.problem("invalid", "pinned checkpoint", e);
            return;
        }
    };
    let have = r.size.min(at);
    if pinned.size > have {
        r.problem(
            "lost",
            format!("entries {have}..{}", pinned.size),
            format!(
                "the pinned checkpoint covers {} entries, the backup only {have}",
                pinned.size
            ),
        );
    } else if tree.root_at(pinned.size).ok() != Some(pinned.root) {
        r.problem(
            "altered",
            format!("entries 0..{}", pinned.size),
            "the backup's log is a fork of the pinned checkpoint",
        );
    }
}

/// The problems of the prefix `0..size` of a backup alone (`restore --until`, review S9): its
/// entries present, a verified checkpoint of exactly `size` (log-signed, its root the entries'),
/// the witness quorum and the pinned checkpoint as for the whole backup (a pinned checkpoint
/// past `size` is a loss, judged by the caller), and every wrap, blob and team key wrap the
/// prefix names checked as [`verify`] checks them. Blobs and team key wraps only the tail needs
/// are not looked at. Returns the problems (empty: the prefix restores).
pub(crate) fn check_prefix(c: &Contents, size: u64, trust: &Trust) -> Vec<Problem> {
    let mut r = Report::default();
    let n = usize::try_from(size).unwrap_or(usize::MAX);
    let Some(entries) = c.entries.get(..n) else {
        r.problem(
            "missing",
            format!("entries {}..{size}", c.entries.len()),
            "no segment of the backup holds them",
        );
        return r.problems;
    };
    if !c.notes.contains_key(&size) {
        r.problem(
            "missing",
            format!("checkpoint {size}"),
            "no checkpoint of this size is signed by the log key and matches the entries",
        );
    }
    if trust.quorum > 0
        && !c.notes.values().any(|t| {
            SignedCheckpoint::parse(t)
                .is_ok_and(|s| s.cosigned_by(&trust.witnesses) >= trust.quorum)
        })
    {
        r.problem(
            "missing",
            "cosigned checkpoint",
            format!(
                "no checkpoint of the backup is cosigned by {} of the witnesses",
                trust.quorum
            ),
        );
    }
    if let Some(text) = &trust.pinned {
        let mut tree = MemoryTree::new();
        for e in entries {
            if tree.push_entry(e).is_err() {
                break;
            }
        }
        match pinned_note(text, trust) {
            Ok(s) if s.checkpoint.size > size => {}
            Ok(s) if tree.root_at(s.checkpoint.size).ok() == Some(s.checkpoint.root) => {}
            Ok(s) => r.problem(
                "altered",
                format!("entries 0..{}", s.checkpoint.size),
                "the backup's log is a fork of the pinned checkpoint",
            ),
            Err(e) => r.problem("invalid", "pinned checkpoint", e),
        }
    }
    let team_keys = prefix_team_keys(entries, &c.team_keys);
    check_contents(entries, &c.blobs, &team_keys, &mut r);
    r.problems
}

/// The team key wraps whose sharer has a device record in `entries` (the others belong to a
/// later part of the log).
pub(crate) fn prefix_team_keys(
    entries: &[Vec<u8>],
    team_keys: &[(String, Vec<u8>)],
) -> Vec<(String, Vec<u8>)> {
    let devices: HashSet<KeyId> = entries
        .iter()
        .filter_map(|e| LogEntry::decode(e).ok())
        .filter_map(|e| match e.payload {
            Payload::Device(d) => Some(d.device_id()),
            _ => None,
        })
        .collect();
    team_keys
        .iter()
        .filter(|(_, b)| TeamKeyWrap::decode(b).is_ok_and(|w| devices.contains(&w.sharer)))
        .cloned()
        .collect()
}

/// The documents erased by a tombstone of `entries` that the document's author signed (review
/// R3's check, [`AuthorLog::erasure_check`]); forged tombstones are left out.
pub(crate) fn authored_erasures(entries: &[Vec<u8>]) -> HashSet<DocId> {
    let mut log = AuthorLog::default();
    let mut out = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let Ok(decoded) = LogEntry::decode(e) else {
            continue;
        };
        if let Subject::Handle(h) = decoded.subject() {
            log.chains.entry(h).or_default().push(ChainEntry {
                index: i as u64,
                bytes: e.clone(),
                entry: decoded.clone(),
            });
        }
        match decoded.payload {
            Payload::Device(d) => {
                log.handles.insert(d.device_id(), d.handle.clone());
            }
            Payload::Wrap(w) => {
                log.first_sharer.entry(w.doc_id).or_insert(w.sharer);
            }
            Payload::Erasure(t) if log.erasure_check(&t).is_ok() => {
                out.insert(t.doc_id);
            }
            _ => {}
        }
    }
    out
}

/// Decodes the entries and checks every wrap, blob and team key wrap against the keys the log
/// itself records.
fn check_contents(
    entries: &[Vec<u8>],
    blobs: &HashMap<(DocId, u32), BlobCheck>,
    team_keys: &[(String, Vec<u8>)],
    r: &mut Report,
) {
    check_log(entries, team_keys).check_blobs_against(blobs, r);
}

/// What the entries and the team key wraps say without the blobs ([`check_log`]): computed
/// beside the blob pass (most of a backup's Ed25519 checks are the wraps'), then applied to
/// its result ([`LogChecked::check_blobs_against`]).
struct LogChecked {
    /// Each logged device's signing key.
    devices: HashMap<KeyId, [u8; 32]>,
    /// The header hashes the logged wraps of each document version bind.
    headers: BTreeMap<(DocId, u32), HashSet<[u8; 32]>>,
    /// The documents an author's tombstone erased.
    erased: HashSet<DocId>,
    /// The entries' and wraps' problems (reported before the blobs'), then the team key
    /// wraps' (after them), in the order found.
    entry_problems: Vec<Problem>,
    team_key_problems: Vec<Problem>,
    /// Team key wraps verified.
    team_keys: u64,
}

/// Decodes the entries and checks every wrap's and tombstone's signature, and every team key
/// wrap's, against the keys the log itself records: everything [`check_contents`] checks but
/// the blobs.
fn check_log(entries: &[Vec<u8>], team_keys: &[(String, Vec<u8>)]) -> LogChecked {
    let mut r = Report::default();
    let mut devices: HashMap<KeyId, [u8; 32]> = HashMap::new();
    let mut log = AuthorLog::default();
    let mut headers: BTreeMap<(DocId, u32), HashSet<[u8; 32]>> = BTreeMap::new();
    let mut erased: HashSet<DocId> = HashSet::new();
    let mut wraps = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let decoded = match LogEntry::decode(e) {
            Ok(d) => d,
            Err(err) => {
                r.problem("invalid", format!("entry {i}"), err.to_string());
                continue;
            }
        };
        if let Subject::Handle(h) = decoded.subject() {
            log.chains.entry(h).or_default().push(ChainEntry {
                index: i as u64,
                bytes: e.clone(),
                entry: decoded.clone(),
            });
        }
        match decoded.payload {
            Payload::Device(d) => {
                devices.insert(d.device_id(), d.signing_key);
                log.handles.insert(d.device_id(), d.handle.clone());
            }
            // Every version of the document is erased (PROTOCOL.md §11.3.2): its blobs are not
            // expected -- only if the tombstone is the author's own (review R3): a tombstone
            // anyone else signed (a device record the server made up) is reported and the
            // document's blobs are still expected.
            Payload::Erasure(t) => match log.erasure_check(&t) {
                Ok(()) => {
                    erased.insert(t.doc_id);
                }
                Err(why) => r.problem(
                    "invalid",
                    format!("entry {i}"),
                    format!(
                        "forged erasure of document {}: {why}; its blobs are still expected",
                        t.doc_id
                    ),
                ),
            },
            Payload::Rotation(_) | Payload::Revocation(_) => {}
            Payload::Wrap(w) => {
                log.first_sharer.entry(w.doc_id).or_insert(w.sharer);
                headers
                    .entry((w.doc_id, w.doc_version))
                    .or_default()
                    .insert(w.header_hash);
                // The sharer's key as logged before this entry; the signature is checked below.
                wraps.push((i, devices.get(&w.sharer).copied(), w));
            }
            _ => {}
        }
    }
    for (i, doc) in unsigned_wraps(&wraps) {
        r.problem(
            "invalid",
            format!("entry {i}"),
            format!("wrap of document {doc} not signed by its sharer"),
        );
    }
    let entry_problems = std::mem::take(&mut r.problems);
    for (key, bytes) in team_keys {
        match TeamKeyWrap::decode(bytes) {
            Ok(w) => match devices.get(&w.sharer) {
                Some(k) if w.verify_signature(k).is_ok() => r.team_keys += 1,
                _ => r.problem("invalid", key.clone(), "not signed by a logged device"),
            },
            Err(e) => r.problem("invalid", key.clone(), e.to_string()),
        }
    }
    LogChecked {
        devices,
        headers,
        erased,
        entry_problems,
        team_key_problems: r.problems,
        team_keys: r.team_keys,
    }
}

impl LogChecked {
    /// Adds to `r` the entries' problems, then checks every logged document version's blob
    /// (present, its header the one the wraps bind, its author device logged, its chunks,
    /// trailer and signature verified), then adds the team key wraps' problems and count.
    fn check_blobs_against(self, blobs: &HashMap<(DocId, u32), BlobCheck>, r: &mut Report) {
        r.problems.extend(self.entry_problems);
        for ((doc, version), hashes) in &self.headers {
            if self.erased.contains(doc) {
                r.erased += 1;
                continue;
            }
            let what = format!("document {doc} version {version}");
            let Some(blob) = blobs.get(&(*doc, *version)) else {
                r.problem(
                    "missing",
                    format!("blob of {what}"),
                    "no blob in the backup",
                );
                continue;
            };
            match blob.check(*doc, *version, hashes, &self.devices) {
                Ok(()) => r.blobs += 1,
                Err(why) => r.problem(
                    "altered",
                    format!("blob {}", blob.key),
                    format!("{what}: {why}"),
                ),
            }
        }
        r.problems.extend(self.team_key_problems);
        r.team_keys += self.team_keys;
    }
}

/// The wraps (entry index, their sharer's logged key if any, the wrap) whose signature does not
/// verify, by entry index and document: the signatures (one per wrap, most of a backup's
/// Ed25519 checks) are checked on every core.
fn unsigned_wraps(
    wraps: &[(usize, Option<[u8; 32]>, serment_core::wrap::WrappedKey)],
) -> Vec<(usize, DocId)> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let per = wraps.len().div_ceil(threads).max(1);
    let bad = |part: &[(usize, Option<[u8; 32]>, serment_core::wrap::WrappedKey)]| {
        part.iter()
            .filter(|(_, key, w)| !key.is_some_and(|k| w.verify_signature(&k).is_ok()))
            .map(|(i, _, w)| (*i, w.doc_id))
            .collect::<Vec<_>>()
    };
    std::thread::scope(|scope| {
        // A part no thread could be started for is checked here (REVIEW7 L3: never a panic).
        let parts: Vec<_> = wraps
            .chunks(per)
            .map(|part| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || bad(part))
                    .map_err(|_| part)
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                Err(part) => bad(part),
            })
            .collect()
    })
}

/// What an erasure check needs from the entries before the tombstone: each handle's key chain,
/// each device's handle, each document's first sharer (its author device).
#[derive(Default)]
struct AuthorLog {
    chains: HashMap<String, Vec<ChainEntry>>,
    handles: HashMap<KeyId, String>,
    first_sharer: HashMap<DocId, KeyId>,
}

impl AuthorLog {
    /// A tombstone is the author's own if its requester device is, at the tombstone's index (the
    /// entries seen so far), a current device of the identity whose device shared the document
    /// first, and its signature verifies with that device's key.
    fn erasure_check(&self, t: &Erasure) -> Result<(), &'static str> {
        let sharer = self
            .first_sharer
            .get(&t.doc_id)
            .ok_or("no wrap of the document before it")?;
        let handle = self
            .handles
            .get(sharer)
            .ok_or("the document's author device has no record")?;
        let chain = self
            .chains
            .get(handle)
            .ok_or("the document's author has no key history")?;
        let history =
            replay_keys(handle, chain).map_err(|_| "the author's key history does not replay")?;
        let requester = history
            .devices
            .iter()
            .find(|d| d.device_id() == t.requester_device)
            .ok_or("not signed by a current device of the document's author")?;
        t.verify(&requester.signing_key)
            .map_err(|_| "its signature does not verify")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serment_core::identity::{DeviceSecret, IdentitySecret};
    use serment_core::log::entry::{EntryKind, encode_entry};
    use serment_core::log::erasure::ErasureReason;
    use serment_core::wrap::{Recipient, wrap_dek};
    use zeroize::Zeroizing;

    /// `restore` writes each blob into its destination as it checks it (one read of the
    /// backup): only a blob that hashes to what its manifest names and whose chunks, trailer and
    /// author signature verify is committed; the others leave nothing in the store. A small
    /// blob is held for the restore's database row under the same rule, never written as a file.
    #[tokio::test]
    async fn a_blob_is_written_as_it_is_checked_only_when_it_verifies() {
        // 300 KiB: staged as a file; 4 KiB: read whole and held for the database row.
        for (size, inline) in [(300 * 1024, false), (4 * 1024, true)] {
            blob_cases(size, inline).await;
        }
    }

    #[allow(clippy::panic)]
    async fn blob_cases(size: usize, inline: bool) {
        use serment_core::document::{Metadata, SealInput, seal};
        let dir = crate::store::blobs::tests::tmpdir("verify-write");
        let target = Target::parse(&format!("file://{}", dir.join("backup").display())).unwrap();
        let store = Store::open_for_restore(&dir.join("dest"), None, None)
            .await
            .unwrap();
        let dest = BlobDest {
            store: store.clone(),
            skip: Arc::new(HashSet::new()),
            inline_left: Arc::new(std::sync::atomic::AtomicU64::new(INLINE_BUDGET)),
        };
        let author = DeviceSecret::from_test_seed(&[7; 32]);
        let devices = HashMap::from([(author.id(), author.signing_public_key())]);
        let doc = DocId::from_bytes([9; 16]);
        let content = vec![0x5a; size];
        let mut blob = Vec::new();
        seal(
            SealInput {
                doc_id: doc,
                doc_version: 1,
                author: &author,
                recipients: &[],
                metadata: Metadata {
                    content_length: content.len() as u64,
                    ..Metadata::default()
                },
            },
            &content[..],
            &mut blob,
        )
        .unwrap();
        let mut flipped = blob.clone();
        if let Some(b) = flipped.get_mut(Header::LEN + 1000) {
            *b ^= 1;
        }
        let stored = |bytes: &[u8]| {
            let id = crate::store::BlobId::of(bytes);
            let store = store.clone();
            async move { store.blob(&id).await.is_ok() }
        };
        // (what the object holds, the SHA-256 its manifest names, kept?)
        let cases = [
            // The genuine bytes where the manifest names others.
            (&blob, sha256(b"other bytes"), 1, false),
            // Altered, with a manifest naming its hash: the author's signature catches it.
            (&flipped, sha256(&flipped), 1, false),
            // The genuine bytes, named by the manifest as another version (REVIEW7 M3).
            (&blob, sha256(&blob), 2, false),
            (&blob, sha256(&blob), 1, true),
        ];
        for (n, (bytes, named, version, kept)) in cases.into_iter().enumerate() {
            let key = format!("blobs/case-{n}");
            target.put_new(&key, bytes.clone()).await.unwrap();
            let o = ObjectRef {
                kind: ObjectKind::Blob { doc, version },
                key,
                sha256: named,
                len: bytes.len() as u64,
            };
            let BlobRead::Read(c) = check_blob(&target, &o, &devices, Some(&dest))
                .await
                .unwrap()
            else {
                panic!("case {n}: not read");
            };
            // A small blob is never a file: it is held (verified) or dropped.
            assert_eq!(c.written, kept && !inline, "{size} case {n}: written");
            assert_eq!(
                c.inline.as_deref(),
                (kept && inline).then_some(&bytes[..]),
                "{size} case {n}: held"
            );
            assert_eq!(
                stored(bytes).await,
                kept && !inline,
                "{size} case {n}: a file"
            );
            assert_eq!(c.id, sha256(bytes), "{size} case {n}: the id computed");
        }
        // What a held blob took of the budget is all that is gone from it.
        let held = if inline { blob.len() as u64 } else { 0 };
        assert_eq!(
            dest.inline_left.load(std::sync::atomic::Ordering::SeqCst),
            INLINE_BUDGET - held
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A log: the author's device record, a stranger's (another identity the server could make
    /// up), a wrap of one document by the author, then a tombstone by `eraser`.
    fn log_with_tombstone(by_author: bool) -> (Vec<Vec<u8>>, DocId) {
        let author_id = IdentitySecret::from_seed(&[1; 32]);
        let author = DeviceSecret::from_test_seed(&[2; 32]);
        let stranger_id = IdentitySecret::from_seed(&[3; 32]);
        let stranger = DeviceSecret::from_test_seed(&[4; 32]);
        let doc = DocId::from_bytes([9; 16]);
        let wrap = wrap_dek(
            &Zeroizing::new([7; 32]),
            &doc,
            1,
            &[5; 32],
            &Recipient::from_device(&author),
            &author,
            &mut serment_core::rng::os_rng(),
        )
        .unwrap();
        let eraser = if by_author { &author } else { &stranger };
        let items = [
            (
                EntryKind::Device,
                author_id.sign_device_record("labo", &author, 1).unwrap(),
            ),
            (
                EntryKind::Device,
                stranger_id
                    .sign_device_record("made-up", &stranger, 1)
                    .unwrap(),
            ),
            (EntryKind::Wrap, wrap),
            (
                EntryKind::Erasure,
                Erasure::sign(&doc, ErasureReason::PatientRequest, eraser, 2),
            ),
        ];
        let entries = items
            .iter()
            .map(|(k, p)| encode_entry(*k, 1, None, p).unwrap())
            .collect();
        (entries, doc)
    }

    /// R3: a tombstone signed by a device that is not one of the document's author is reported
    /// as forged and the document's blob is still expected (here: missing).
    #[test]
    fn a_tombstone_by_a_device_not_of_the_author_is_forged_and_the_blob_still_expected() {
        let (entries, doc) = log_with_tombstone(false);
        let mut r = Report::default();
        check_contents(&entries, &HashMap::new(), &[], &mut r);
        assert_eq!(r.erased, 0, "{r:?}");
        assert!(
            r.problems
                .iter()
                .any(|p| p.what == "entry 3" && p.detail.contains("forged erasure")),
            "{r:?}"
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.kind == "missing" && p.what.contains(&doc.to_string())),
            "{r:?}"
        );
    }

    /// R12: a manifest chain whose size decreases, and a manifest of another log (origin), are
    /// each named, even when every manifest is signed by the log key and chained.
    #[tokio::test]
    async fn a_shrinking_chain_and_another_origin_are_named() {
        use super::super::format::{ObjectRef, checkpoint_key, manifest_key};
        let dir = crate::store::blobs::tests::tmpdir("backup-verify-chain");
        let t = Target::parse(&format!("file://{}", dir.display())).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let mut prev = None;
        for (seq, size, origin) in [(0, 5, "log.test"), (1, 3, "log.test"), (2, 6, "other.log")] {
            let m = Manifest {
                origin: origin.into(),
                seq,
                prev,
                size,
                created_at: 1,
                objects: vec![ObjectRef {
                    kind: ObjectKind::Checkpoint,
                    key: checkpoint_key(size, b"n"),
                    sha256: sha256(b"n"),
                    len: 1,
                }],
            };
            let bytes = m.sign(&key);
            prev = Some(sha256(&bytes));
            t.put_new(&manifest_key(seq, &bytes), bytes).await.unwrap();
        }
        let trust = Trust {
            log_key: VerifierKey {
                name: "log.test".into(),
                key_type: 1,
                public_key: key.verifying_key().to_bytes(),
            },
            witnesses: vec![],
            quorum: 0,
            pinned: None,
        };
        let mut r = Report::default();
        let ms = read_manifests(&t, &trust, &mut r).await.unwrap();
        assert_eq!(ms.len(), 3);
        assert!(
            r.problems.iter().any(|p| p.kind == "chain"
                && p.what == "manifest 1"
                && p.detail.contains("fewer than")),
            "{r:?}"
        );
        assert!(
            r.problems.iter().any(|p| p.kind == "invalid"
                && p.what == "manifest 2"
                && p.detail.contains("other.log")),
            "{r:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// R12: a wrap whose sharer device has no record in the log is named, even when its own
    /// signature is intact (the sharer's key comes from the log, never from the wrap).
    #[test]
    fn a_wrap_by_an_unknown_sharer_is_named() {
        let (entries, doc) = log_with_tombstone(true);
        // Only the wrap: the author's device record is absent.
        let mut r = Report::default();
        check_contents(entries.get(2..3).unwrap(), &HashMap::new(), &[], &mut r);
        assert!(
            r.problems.iter().any(|p| p.what == "entry 0"
                && p.detail == format!("wrap of document {doc} not signed by its sharer")),
            "{r:?}"
        );
    }

    /// R3: the author's own tombstone exempts the document's blobs.
    #[test]
    fn the_authors_tombstone_exempts_the_documents_blobs() {
        let (entries, _) = log_with_tombstone(true);
        let mut r = Report::default();
        check_contents(&entries, &HashMap::new(), &[], &mut r);
        assert_eq!(r.erased, 1, "{r:?}");
        assert!(r.problems.is_empty(), "{r:?}");
    }
}

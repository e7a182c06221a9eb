//! Taking an increment from a server's store (docs/BACKUP.md §5): the log entries since the last
//! manifest, the sealed blobs of the document versions they wrap, the team key wraps not yet
//! copied, the current checkpoint note with its cosignatures, and last the signed manifest.

use std::collections::{BTreeMap, HashSet};

use futures_util::StreamExt as _;
use serment_core::DocId;
use serment_core::log::entry::{LogEntry, Payload};
use serment_core::log::note::SignedCheckpoint;

use super::format::{
    MAX_MANIFEST_LEN, Manifest, ObjectKind, ObjectRef, blob_key, checkpoint_key, encode_segment,
    escrow_key, loss_key, manifest_key, parse_manifest_key, provisional_key, segment_key, sha256,
    social_key, team_key_key,
};
use super::target::Fetched;
use super::{BackupError, IncrementSummary, Target};
use crate::store::Store;

/// The most entries read from the store at once.
const ENTRIES_PER_READ: u64 = 4096;

/// What the target already holds, read once from its manifests, then kept up to date.
#[derive(Debug, Default)]
pub(crate) struct BackupState {
    next_seq: u64,
    prev: Option<[u8; 32]>,
    size: u64,
    last_note: Option<Vec<u8>>,
    versions: HashSet<(DocId, u32)>,
    team_keys: HashSet<String>,
    /// Keys of the provisional and escrow objects already copied (review S3).
    side: HashSet<String>,
}

/// Reads every manifest of `target`, checking each signature with the log key and the chain.
///
/// Objects under `manifests/` that are not a manifest signed by this log key under the name its
/// bytes determine (junk anyone able to create objects could leave, or a copy of a manifest under
/// another number) are skipped with a warning: they cannot stop the backup (`verify-backup`
/// names them).
///
/// # Errors
/// [`BackupError::Chain`] if the manifests signed by this log key are not one unbroken chain
/// (run `serment verify-backup`), or target I/O errors.
pub(crate) async fn load_state(
    target: &Target,
    log_public_key: &[u8; 32],
    origin: &str,
) -> Result<BackupState, BackupError> {
    let mut st = BackupState::default();
    let mut signed: BTreeMap<u64, Vec<(String, Vec<u8>, Manifest)>> = BTreeMap::new();
    for key in target.list("manifests").await? {
        let Some((num, hash)) = parse_manifest_key(&key) else {
            tracing::warn!(key, "backup target: not a manifest name, ignored");
            continue;
        };
        // An object that cannot be read (REVIEW5 U12: a directory, an archived or SSE-C
        // object anyone able to create objects can leave) is junk too, never a stop.
        let fetched = match target.get_bounded(&key, MAX_MANIFEST_LEN as u64).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(key, error = %e, "backup target: unreadable, ignored");
                continue;
            }
        };
        let bytes = match fetched {
            Fetched::Bytes(b) if sha256(&b) == hash => b,
            Fetched::Missing => continue,
            _ => {
                tracing::warn!(
                    key,
                    "backup target: not the manifest its name names, ignored"
                );
                continue;
            }
        };
        match Manifest::parse_verified(&key, &bytes, log_public_key) {
            Ok(m) if m.seq == num => signed.entry(num).or_default().push((key, bytes, m)),
            _ => tracing::warn!(key, "backup target: not a manifest of this log, ignored"),
        }
    }
    for (num, mut ms) in signed {
        let (key, bytes, m) = match (ms.pop(), ms.is_empty()) {
            (Some(one), true) => one,
            _ => {
                return Err(BackupError::Chain(format!(
                    "two manifests numbered {num} signed by the log key"
                )));
            }
        };
        if m.seq != st.next_seq || m.prev != st.prev {
            return Err(BackupError::Chain(format!(
                "{key} does not follow manifest {}",
                st.next_seq.wrapping_sub(1)
            )));
        }
        if m.origin != origin {
            return Err(BackupError::Chain(format!(
                "{key} is for the log {}, not {origin}",
                m.origin
            )));
        }
        for o in &m.objects {
            match &o.kind {
                ObjectKind::Blob { doc, version } => {
                    st.versions.insert((*doc, *version));
                }
                // By their own name: a copy under an alternative name (REVIEW5 U6) is the same.
                ObjectKind::TeamKey => {
                    st.team_keys.insert(o.own_key().0.to_owned());
                }
                ObjectKind::Provisional
                | ObjectKind::Escrow
                | ObjectKind::Social
                | ObjectKind::Loss => {
                    st.side.insert(o.own_key().0.to_owned());
                }
                ObjectKind::Checkpoint => {
                    st.last_note = match target.get_bounded(&o.key, o.len).await? {
                        Fetched::Bytes(b) if sha256(&b) == o.sha256 => Some(b),
                        _ => None,
                    };
                }
                ObjectKind::Entries { .. } => {}
            }
        }
        st.size = m.size;
        st.prev = Some(sha256(&bytes));
        st.next_seq = st.next_seq.saturating_add(1);
    }
    Ok(st)
}

/// Copies the blob of one document version into the target; `None` if the version was erased
/// since (issue 12 §5: no row, nothing to copy).
async fn copy_blob(
    store: &Store,
    target: &Target,
    doc: DocId,
    version: u32,
) -> Result<Option<ObjectRef>, BackupError> {
    let Some(row) = store
        .meta()
        .version(&doc, version)
        .await
        .map_err(store_err)?
    else {
        return Ok(None);
    };
    let body = store.blob(&row.blob_id).await.map_err(store_err)?;
    let mut bytes = Vec::with_capacity(usize::try_from(body.len).unwrap_or(0));
    let mut stream = body.stream;
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(store_err)?);
    }
    let hash = sha256(&bytes);
    if hex::encode(hash) != row.blob_id.as_str() {
        return Err(BackupError::Store(format!(
            "blob {} does not hash to its id",
            row.blob_id
        )));
    }
    let len = bytes.len() as u64;
    let key = target
        .put_unblockable(&blob_key(row.blob_id.as_str()), bytes)
        .await?;
    Ok(Some(ObjectRef {
        kind: ObjectKind::Blob { doc, version },
        key,
        sha256: hash,
        len,
    }))
}

fn store_err(e: impl std::fmt::Display) -> BackupError {
    BackupError::Store(e.to_string())
}

/// Takes one increment if the log grew or its newest checkpoint gained cosignatures; `None` if
/// there is nothing new. Objects are written before the manifest, so an increment interrupted
/// before its manifest is invisible and redone by the next call.
pub(crate) async fn take_increment(
    store: &Store,
    target: &Target,
    st: &mut BackupState,
    now: u64,
) -> Result<Option<IncrementSummary>, BackupError> {
    let meta = store.meta();
    let Some(note) = meta.log_note(None).await.map_err(store_err)? else {
        return Ok(None);
    };
    let signed = SignedCheckpoint::parse(&note).map_err(store_err)?;
    let size = signed.checkpoint.size;
    if size < st.size {
        return Err(BackupError::LogShrank {
            backup: st.size,
            log: size,
        });
    }
    // Review S3: provisional recipients' rows and recovery escrows are not in the log; each
    // new or changed row is one object (content-addressed: an unchanged row is copied once).
    // Review T10: sealed under a key derived from the log key, which the bucket never holds.
    let seed = zeroize::Zeroizing::new(store.log_signer().signing_key().to_bytes());
    let side_key = super::side::SideKey::from_log_seed(&seed).map_err(store_err)?;
    let mut side: Vec<(ObjectKind, String, Vec<u8>)> = Vec::new();
    for p in meta.backup_provisionals().await.map_err(store_err)? {
        let bytes = side_key
            .seal(&zeroize::Zeroizing::new(p.encode()))
            .map_err(store_err)?;
        side.push((ObjectKind::Provisional, provisional_key(&bytes), bytes));
    }
    for e in meta.backup_escrows().await.map_err(store_err)? {
        let bytes = side_key
            .seal(&zeroize::Zeroizing::new(e.encode()))
            .map_err(store_err)?;
        side.push((ObjectKind::Escrow, escrow_key(&bytes), bytes));
    }
    // Review T11: each handle's social recovery set (escrow and share wraps).
    for o in meta.backup_social().await.map_err(store_err)? {
        let bytes = side_key
            .seal(&zeroize::Zeroizing::new(o.encode()))
            .map_err(store_err)?;
        side.push((ObjectKind::Social, social_key(&bytes), bytes));
    }
    // REVIEW6 V6: the loss statements of earlier restores (public, signed: not sealed), so that
    // a restore of this backup serves them again.
    for text in meta.log_loss_statements().await.map_err(store_err)? {
        let bytes = text.into_bytes();
        side.push((ObjectKind::Loss, loss_key(&bytes), bytes));
    }
    side.retain(|(_, key, _)| !st.side.contains(key));
    if size == st.size && st.last_note.as_deref() == Some(note.as_bytes()) && side.is_empty() {
        return Ok(None);
    }
    let mut objects = Vec::new();
    let mut summary = IncrementSummary {
        seq: st.next_seq,
        size,
        ..IncrementSummary::default()
    };
    let mut new_versions = Vec::new();
    let mut start = st.size;
    while start < size {
        let end = size.min(start + ENTRIES_PER_READ);
        let entries = meta.log_entries(start, end).await.map_err(store_err)?;
        if entries.len() as u64 != end - start {
            return Err(BackupError::Store(format!(
                "the store returned {} entries for {start}..{end}",
                entries.len()
            )));
        }
        for e in &entries {
            let decoded = LogEntry::decode(e).map_err(store_err)?;
            if let Payload::Wrap(w) = decoded.payload {
                let v = (w.doc_id, w.doc_version);
                if !st.versions.contains(&v) && !new_versions.contains(&v) {
                    new_versions.push(v);
                }
            }
        }
        let seg = encode_segment(start, &entries);
        let (hash, len) = (sha256(&seg), seg.len() as u64);
        // Under another name if its own is taken (REVIEW5 U6: `entries/<start>-<end>` is
        // predictable from the public checkpoint's size).
        let key = target
            .put_unblockable(&segment_key(start, end), seg)
            .await?;
        objects.push(ObjectRef {
            kind: ObjectKind::Entries { start, end },
            key,
            sha256: hash,
            len,
        });
        summary.bytes += len;
        summary.entries += end - start;
        start = end;
    }
    // Blobs, several at a time (each `put_new` of a directory target is two fsyncs; of a
    // bucket, one round trip), in order so the manifest lists them as the log names them.
    let mut copies = futures_util::stream::iter(new_versions.clone())
        .map(|(doc, version)| {
            let (store, target) = (store.clone(), target.clone());
            let task = tokio::spawn(async move { copy_blob(&store, &target, doc, version).await });
            async move {
                task.await
                    .map_err(|e| BackupError::Store(format!("copying a blob: {e}")))?
            }
        })
        .buffered(super::verify::OBJECTS_IN_FLIGHT);
    while let Some(copied) = copies.next().await {
        if let Some(o) = copied? {
            summary.blobs += 1;
            summary.bytes += o.len;
            objects.push(o);
        }
    }
    drop(copies);
    // Team key wraps and side rows: small objects, also several at a time; each the index of
    // its line in `objects`, whose key becomes the one it is written under.
    let mut small: Vec<(usize, String, Vec<u8>)> = Vec::new();
    let mut new_team_keys = Vec::new();
    for wrap in meta.all_team_key_wraps().await.map_err(store_err)? {
        let key = team_key_key(&wrap);
        if st.team_keys.contains(&key) {
            continue;
        }
        objects.push(ObjectRef {
            kind: ObjectKind::TeamKey,
            key: key.clone(),
            sha256: sha256(&wrap),
            len: wrap.len() as u64,
        });
        summary.team_keys += 1;
        summary.bytes += wrap.len() as u64;
        small.push((objects.len() - 1, key.clone(), wrap));
        new_team_keys.push(key);
    }
    let mut new_side = Vec::new();
    for (kind, key, bytes) in side {
        objects.push(ObjectRef {
            kind,
            key: key.clone(),
            sha256: sha256(&bytes),
            len: bytes.len() as u64,
        });
        summary.side_rows += 1;
        summary.bytes += bytes.len() as u64;
        small.push((objects.len() - 1, key.clone(), bytes));
        new_side.push(key);
    }
    let mut puts = futures_util::stream::iter(small)
        .map(|(at, key, bytes)| async move {
            target.put_unblockable(&key, bytes).await.map(|k| (at, k))
        })
        .buffer_unordered(super::verify::OBJECTS_IN_FLIGHT);
    while let Some(put) = puts.next().await {
        let (at, written) = put?;
        if let Some(o) = objects.get_mut(at) {
            o.key = written;
        }
    }
    drop(puts);
    let note_bytes = note.into_bytes();
    // The note is public (`GET /v1/log/checkpoint`): its name is predictable too.
    let key = target
        .put_unblockable(&checkpoint_key(size, &note_bytes), note_bytes.clone())
        .await?;
    objects.insert(
        0,
        ObjectRef {
            kind: ObjectKind::Checkpoint,
            key,
            sha256: sha256(&note_bytes),
            len: note_bytes.len() as u64,
        },
    );
    let manifest = Manifest {
        origin: signed.checkpoint.origin.clone(),
        seq: st.next_seq,
        prev: st.prev,
        size,
        created_at: now,
        objects,
    };
    let bytes = manifest.sign(store.log_signer().signing_key());
    target
        .put_new(&manifest_key(st.next_seq, &bytes), bytes.clone())
        .await?;
    st.prev = Some(sha256(&bytes));
    st.next_seq += 1;
    st.size = size;
    st.last_note = Some(note_bytes);
    st.versions.extend(new_versions);
    st.team_keys.extend(new_team_keys);
    st.side.extend(new_side);
    Ok(Some(summary))
}

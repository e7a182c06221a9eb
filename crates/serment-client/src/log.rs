//! Every check a client makes on the transparency log (PROTOCOL.md §11.7): the pinned checkpoint
//! per server (inside the encrypted keystore), consistency on every newer checkpoint, witness
//! quorum, inclusion proofs on every answer relied on, key histories, own writes, audits, the
//! full `verify-log` audit and checkpoint gossip. Every failure is a hard error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use web_time::Instant;

use serment_core::identity::DeviceRecord;
use serment_core::log::entry::{AccessWhat, EntryKind, LogEntry, Payload, PrevLink, Subject};
use serment_core::log::history::{ChainEntry, KeyHistory, check_chain, replay_keys};
use serment_core::log::note::{Checkpoint, SignedCheckpoint, VerifierKey};
use serment_core::log::pin::{LogTrust, check_advance, check_same_view};
use serment_core::log::tree::{self, MemoryTree};
use serment_core::{DocId, KeyId};

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::keystore::{Keystore, LogState};
use crate::log_api::ProvenEntry;

/// How long a client waits for a checkpoint with the witness quorum (or the expected size), unless
/// `SERMENT_LOG_WAIT_MS` says otherwise.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(15);

fn sync_timeout() -> Duration {
    std::env::var("SERMENT_LOG_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(SYNC_TIMEOUT, Duration::from_millis)
}
const POLL: Duration = Duration::from_millis(20);

fn log_err(e: serment_core::Error) -> ClientError {
    ClientError::Log(e)
}

fn history_err(reason: &'static str) -> ClientError {
    ClientError::Log(serment_core::Error::History { reason })
}

/// Pins the server's log key on first contact (trust on first use, like the contacts; compare it
/// out of band with what `serment serve` prints), or checks it against the pin.
///
/// # Errors
/// [`ClientError::LogKeyChanged`], server and format errors.
pub fn pin_log_key(api: &Api, ks: &mut Keystore) -> Result<()> {
    let served = api.log_key()?;
    VerifierKey::parse(&served).map_err(log_err)?;
    match ks.log_state(api.base()) {
        Some(s) if s.vkey != served => Err(ClientError::LogKeyChanged {
            pinned: s.vkey.clone(),
            served,
        }),
        Some(_) => Ok(()),
        None => {
            ks.set_log_state(
                api.base(),
                LogState {
                    vkey: served,
                    ..LogState::default()
                },
            );
            Ok(())
        }
    }
}

/// Configures the witnesses this keystore requires for `server` (PROTOCOL.md §11.8).
///
/// # Errors
/// [`ClientError::Input`] for a malformed key or an impossible quorum.
pub fn set_witnesses(
    ks: &mut Keystore,
    server: &str,
    witnesses: &[String],
    quorum: usize,
) -> Result<()> {
    for w in witnesses {
        let k =
            VerifierKey::parse(w).map_err(|e| ClientError::Input(format!("witness key: {e}")))?;
        if k.key_type != serment_core::log::note::KEY_TYPE_COSIGNATURE_V1 {
            return Err(ClientError::Input(
                "witness key: not a cosignature/v1 key".into(),
            ));
        }
    }
    if quorum > witnesses.len() {
        return Err(ClientError::Input(
            "quorum larger than the number of witnesses".into(),
        ));
    }
    let mut st = ks
        .log_state(server)
        .cloned()
        .ok_or(ClientError::NotRegistered)?;
    st.witnesses = witnesses.to_vec();
    st.quorum = quorum;
    ks.set_log_state(server, st);
    Ok(())
}

/// What the keystore trusts for `api`'s log.
///
/// # Errors
/// [`ClientError::NotRegistered`] if no log key is pinned; [`ClientError::Keystore`] if a stored
/// key does not parse.
pub fn trust(api: &Api, ks: &Keystore) -> Result<LogTrust> {
    let st = ks.log_state(api.base()).ok_or(ClientError::NotRegistered)?;
    let bad = |e| ClientError::Keystore(e);
    Ok(LogTrust {
        log_key: VerifierKey::parse(&st.vkey).map_err(bad)?,
        witnesses: st
            .witnesses
            .iter()
            .map(|w| VerifierKey::parse(w))
            .collect::<serment_core::Result<_>>()
            .map_err(bad)?,
        quorum: st.quorum,
    })
}

/// The checkpoint pinned for `api`'s log, if any.
///
/// # Errors
/// [`ClientError::Keystore`] if the stored note does not parse.
pub fn pinned(api: &Api, ks: &Keystore) -> Result<Option<Checkpoint>> {
    match ks
        .log_state(api.base())
        .and_then(|s| s.checkpoint.as_deref())
    {
        None => Ok(None),
        Some(n) => Ok(Some(
            SignedCheckpoint::parse(n)
                .map_err(ClientError::Keystore)?
                .checkpoint,
        )),
    }
}

/// Verifies a served checkpoint note (log signature, witness quorum), checks it against the pinned
/// one (refusing a smaller tree or an inconsistent one, with a consistency proof fetched from the
/// server), and pins it if newer. Returns it.
///
/// # Errors
/// [`ClientError::Log`] (bad signature, no quorum, rollback, fork).
pub fn accept_note(api: &Api, ks: &mut Keystore, note: &str) -> Result<Checkpoint> {
    accept_note_with(api, ks, note, None)
}

/// [`accept_note`] with a consistency proof already in hand: `given = (from, proof)` is used
/// when `from` is the pinned size (else the proof is fetched as usual).
fn accept_note_with(
    api: &Api,
    ks: &mut Keystore,
    note: &str,
    given: Option<(u64, Vec<tree::Hash>)>,
) -> Result<Checkpoint> {
    let t = trust(api, ks)?;
    let signed = t.verify_note(note).map_err(log_err)?;
    let new = signed.checkpoint;
    let old = pinned(api, ks)?;
    let proof = match (&old, given) {
        (Some(o), Some((from, proof))) if from == o.size => proof,
        (Some(o), _) if new.size > o.size && o.size > 0 => api.log_consistency(o.size, new.size)?,
        _ => Vec::new(),
    };
    check_advance(old.as_ref(), &new, &proof).map_err(log_err)?;
    if old.as_ref().is_none_or(|o| new.size > o.size)
        && let Some(mut st) = ks.log_state(api.base()).cloned()
    {
        st.checkpoint = Some(note.to_owned());
        st.advanced_at = Some(crate::now_secs());
        ks.set_log_state(api.base(), st);
    }
    Ok(new)
}

/// Fetches the latest checkpoint, waiting (up to [`SYNC_TIMEOUT`]) until it carries the witness
/// quorum and holds at least `min_size` entries, and accepts it ([`accept_note`]).
///
/// # Errors
/// [`ClientError::Log`]: [`serment_core::Error::NoQuorum`] after the timeout, rollback, fork, or
/// a log that never reached `min_size`.
pub fn sync(api: &Api, ks: &mut Keystore, min_size: u64) -> Result<Checkpoint> {
    let t = trust(api, ks)?;
    let deadline = Instant::now() + sync_timeout();
    loop {
        let note = api.log_checkpoint(None)?;
        let res = t.verify_note(&note);
        match res {
            Ok(s) if s.checkpoint.size >= min_size => return accept_note(api, ks, &note),
            Ok(_) | Err(serment_core::Error::NoQuorum { .. }) if Instant::now() < deadline => {
                crate::sleep(POLL);
            }
            Ok(s) => {
                // Refuse a rollback before reporting the missing entries.
                accept_note(api, ks, &note)?;
                return Err(ClientError::OwnWriteMissing(format!(
                    "the log has {} entries; {min_size} expected",
                    s.checkpoint.size
                )));
            }
            Err(e) => return Err(key_changed(api, ks).unwrap_or_else(|| log_err(e))),
        }
    }
}

/// [`ClientError::LogKeyChanged`] if the server now serves another log key than the pinned one
/// (checked when a checkpoint fails to verify, for the precise error).
fn key_changed(api: &Api, ks: &Keystore) -> Option<ClientError> {
    let served = api.log_key().ok()?;
    let pinned = &ks.log_state(api.base())?.vkey;
    (*pinned != served).then(|| ClientError::LogKeyChanged {
        pinned: pinned.clone(),
        served,
    })
}

/// Checks an entry's inclusion proof against `cp` and decodes it.
///
/// # Errors
/// [`ClientError::Log`] ([`serment_core::Error::BadInclusionProof`] or a format error).
pub fn verify_proven(cp: &Checkpoint, pe: &ProvenEntry) -> Result<ChainEntry> {
    let (bytes, proof) = crate::log_api::decode_proven(pe)?;
    tree::verify_inclusion(&bytes, pe.index, cp.size, &cp.root, &proof).map_err(log_err)?;
    let entry = LogEntry::decode(&bytes).map_err(log_err)?;
    Ok(ChainEntry {
        index: pe.index,
        bytes,
        entry,
    })
}

pub(crate) fn parse_head(s: &str) -> Option<PrevLink> {
    let (i, h) = s.split_once(':')?;
    let mut leaf_hash = [0u8; 32];
    hex::decode_to_slice(h, &mut leaf_hash).ok()?;
    Some(PrevLink {
        index: i.parse().ok()?,
        leaf_hash,
    })
}

/// Formats a chain head for the keystore: `<index>:<leaf hash hex>`.
pub fn format_head(h: &PrevLink) -> String {
    format!("{}:{}", h.index, hex::encode(h.leaf_hash))
}

/// Fetches and verifies `handle`'s whole key history (PROTOCOL.md §11.6): the checkpoint it comes
/// with is accepted like any other, every entry's inclusion proof is checked, the chain must be
/// whole and must still contain `known_head` (the head verified last time), and the replay must
/// hold (no rotated-away or revoked key used).
///
/// # Errors
/// [`ClientError::Log`].
pub fn key_history(
    api: &Api,
    ks: &mut Keystore,
    handle: &str,
    known_head: Option<&str>,
) -> Result<KeyHistory> {
    let chain = proven_key_chain(api, ks, handle, known_head)?;
    replay_keys(handle, &chain).map_err(log_err)
}

/// The chain [`key_history`] replays: `handle`'s entries, each proven against a freshly synced
/// and accepted checkpoint, the chain whole and still holding `known_head`. Not replayed.
fn proven_key_chain(
    api: &Api,
    ks: &mut Keystore,
    handle: &str,
    known_head: Option<&str>,
) -> Result<Vec<ChainEntry>> {
    let cp = sync(api, ks, 0)?;
    let h = api.log_identity(handle, Some(cp.size))?;
    let cp = accept_note(api, ks, &h.checkpoint)?;
    if cp.size != h.size {
        return Err(history_err(
            "the history is proven against another tree size than its checkpoint",
        ));
    }
    let chain = h
        .entries
        .iter()
        .map(|pe| verify_proven(&cp, pe))
        .collect::<Result<Vec<_>>>()?;
    check_chain(&chain, &Subject::Handle(handle.to_owned())).map_err(log_err)?;
    if let Some(head) = known_head.and_then(parse_head)
        && !chain.iter().any(|e| e.link() == head)
    {
        return Err(history_err(
            "the key history no longer holds the entry verified before (truncated or rewritten)",
        ));
    }
    Ok(chain)
}

/// Checks that each write this client made is in the log at the index the server gave, with
/// exactly the payload sent (PROTOCOL.md §11.7, own writes).
///
/// # Errors
/// [`ClientError::OwnWriteMissing`], [`ClientError::Log`].
pub fn check_own_writes(
    api: &Api,
    ks: &mut Keystore,
    indices: &[u64],
    expected: &[(EntryKind, &[u8])],
) -> Result<Checkpoint> {
    if indices.len() != expected.len() {
        return Err(ClientError::OwnWriteMissing(format!(
            "{} write(s) sent, the server reports {} log entries",
            expected.len(),
            indices.len()
        )));
    }
    let min = indices.iter().max().map_or(0, |m| m + 1);
    let cp = sync(api, ks, min)?;
    let entries = indices
        .iter()
        .map(|idx| api.log_proof(*idx, cp.size))
        .collect::<Result<Vec<_>>>()?;
    check_proven_writes(&cp, indices, &entries, expected)?;
    record_own_revocations(api, ks, indices, expected);
    Ok(cp)
}

/// Records the revocations, removals, erasures, identity rotations (with the device records
/// sent with each) and team changes among `expected` (proven at `indices`) in the keystore's
/// log state, so that a restore that loses them has them logged again (PROTOCOL.md §11.11).
/// The caller saves the keystore.
fn record_own_revocations(
    api: &Api,
    ks: &mut Keystore,
    indices: &[u64],
    expected: &[(EntryKind, &[u8])],
) {
    let Some(st) = ks.log_state_mut(api.base()) else {
        return;
    };
    for (i, (idx, (kind, bytes))) in indices.iter().zip(expected).enumerate() {
        match kind {
            EntryKind::Revocation | EntryKind::Removal | EntryKind::Erasure | EntryKind::Team => {
                st.record_own_revocation(*kind as u8, *idx, bytes, &[]);
            }
            EntryKind::Rotation => {
                let records: Vec<&[u8]> = expected
                    .iter()
                    .skip(i + 1)
                    .take_while(|(k, _)| *k == EntryKind::Device)
                    .map(|(_, b)| *b)
                    .collect();
                st.record_own_revocation(*kind as u8, *idx, bytes, &records);
            }
            _ => {}
        }
    }
}

/// Checks a commit's own wrap entries (§11.7) with the proofs its answer carries: the checkpoint
/// note must verify with the witness quorum, follow from the pinned checkpoint (the answer's
/// consistency proof), and prove each entry at its index, byte for byte. When the answer has no
/// proofs, or its fresh checkpoint is not yet cosigned by the quorum, this falls back to
/// [`check_own_writes`] (which fetches and waits). Pins the checkpoint.
///
/// # Errors
/// As [`check_own_writes`]; [`ClientError::BadResponse`] for undecodable proofs.
pub fn check_own_commit(
    api: &Api,
    ks: &mut Keystore,
    committed: &crate::api::VersionSummary,
    expected: &[(EntryKind, &[u8])],
) -> Result<Checkpoint> {
    let indices = committed.log_indices.as_deref().unwrap_or_default();
    let Some(p) = &committed.log else {
        return check_own_writes(api, ks, indices, expected);
    };
    if indices.len() != expected.len() || p.entries.len() != expected.len() {
        return Err(ClientError::OwnWriteMissing(format!(
            "{} write(s) sent, the server reports {} log entries and proves {}",
            expected.len(),
            indices.len(),
            p.entries.len()
        )));
    }
    let consistency = crate::log_api::hashes(&p.consistency)?;
    // One signature check, in `accept_note_with`; a fresh note without the quorum is expected
    // when witnesses are configured.
    let cp = match accept_note_with(api, ks, &p.checkpoint, Some((p.from, consistency))) {
        Ok(cp) => cp,
        Err(ClientError::Log(serment_core::Error::NoQuorum { .. })) => {
            return check_own_writes(api, ks, indices, expected);
        }
        Err(ClientError::Log(e @ serment_core::Error::BadSignature { .. })) => {
            return Err(key_changed(api, ks).unwrap_or_else(|| log_err(e)));
        }
        Err(e) => return Err(e),
    };
    check_proven_writes(&cp, indices, &p.entries, expected)?;
    Ok(cp)
}

/// Checks that `entries[i]` is proven at `indices[i]` against `cp` and is `expected[i]`.
fn check_proven_writes(
    cp: &Checkpoint,
    indices: &[u64],
    entries: &[ProvenEntry],
    expected: &[(EntryKind, &[u8])],
) -> Result<()> {
    for ((idx, pe), (kind, payload)) in indices.iter().zip(entries).zip(expected) {
        if pe.index != *idx {
            return Err(ClientError::OwnWriteMissing(format!(
                "entry {idx} was not served"
            )));
        }
        let e = verify_proven(cp, pe)?;
        if e.entry.kind != *kind || e.entry.payload_bytes.as_slice() != *payload {
            return Err(ClientError::OwnWriteMissing(format!(
                "log entry {idx} is not the {} this device wrote",
                kind.name()
            )));
        }
    }
    Ok(())
}

/// One proven access to a document (PROTOCOL.md §11.5).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditLine {
    /// Log index of the access entry.
    pub index: u64,
    /// The document.
    pub doc_id: String,
    /// The version read.
    pub doc_version: u32,
    /// `wrap` or `blob`.
    pub what: &'static str,
    /// The reader's device id.
    pub device_id: String,
    /// The reader's handle, from its device record in the log.
    pub handle: String,
    /// The reader's time (signed in its receipt), seconds since the Unix epoch.
    pub at: u64,
    /// The server's time of the append.
    pub logged_at: u64,
    /// The tree size whose checkpoint proves this line.
    pub checkpoint_size: u64,
    /// Whether the reading device co-signed the access (its receipt, PROTOCOL.md §11.5). An
    /// access without one is attested by the server alone: a stolen credential or the server's own
    /// record. It is shown, never hidden, and `serment audit` fails on it.
    pub receipted: bool,
}

/// Audits one document's chain (PROTOCOL.md §11.6): every entry proven against the accepted
/// checkpoint, the chain whole, every wrap and removal signed by a logged device, and every access
/// signed by the log and, when it carries a receipt, co-signed by the reading device named in it,
/// no receipt used twice. Returns the accesses, oldest first, those without a receipt included and
/// flagged ([`AuditLine::receipted`]): evidence is never hidden, the caller decides to fail.
///
/// # Errors
/// [`ClientError::Log`] for anything that does not check out (reordered, missing, replayed or
/// reflected entries included).
pub fn audit_document(api: &Api, ks: &mut Keystore, doc_id: &DocId) -> Result<Vec<AuditLine>> {
    let t = trust(api, ks)?;
    let (cp, h, chain) = proven_doc_chain(api, ks, doc_id)?;
    let mut devices: HashMap<KeyId, DeviceRecord> = HashMap::new();
    for pe in &h.devices {
        let e = verify_proven(&cp, pe)?;
        if let Payload::Device(rec) = e.entry.payload {
            devices.insert(rec.device_id(), rec);
        } else {
            return Err(history_err("a device proof is not a device record"));
        }
    }
    let key = |id: &KeyId| {
        devices
            .get(id)
            .ok_or_else(|| history_err("an entry names a device with no record in the log"))
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in &chain {
        match &e.entry.payload {
            Payload::Wrap(w) => w
                .verify_signature(&key(&w.sharer)?.signing_key)
                .map_err(log_err)?,
            Payload::Removal(r) => r
                .verify(&key(&r.author_device)?.signing_key)
                .map_err(log_err)?,
            Payload::Erasure(x) => x
                .verify(&key(&x.requester_device)?.signing_key)
                .map_err(log_err)?,
            Payload::Access(a) => {
                let rec = key(&a.device_id)?;
                a.verify(&t.log_key.public_key, &t.log_key.name, &rec.signing_key)
                    .map_err(log_err)?;
                if a.receipt.is_some() && !seen.insert((a.device_id, a.nonce)) {
                    return Err(history_err("an access receipt appears twice (replayed)"));
                }
                out.push(AuditLine {
                    index: e.index,
                    doc_id: doc_id.to_string(),
                    doc_version: a.doc_version,
                    what: a.what.name(),
                    device_id: a.device_id.to_string(),
                    handle: rec.handle.clone(),
                    at: a.at,
                    logged_at: e.entry.logged_at,
                    checkpoint_size: cp.size,
                    receipted: a.receipt.is_some(),
                });
            }
            _ => return Err(history_err("a handle's entry in a document's chain")),
        }
    }
    pin_doc_head(api, ks, doc_id, &chain);
    Ok(out)
}

/// Refuses a document history that no longer holds the head verified last time: the server
/// truncated it (hid later accesses, wraps or versions) or rewrote it.
fn check_doc_head(api: &Api, ks: &Keystore, doc_id: &DocId, chain: &[ChainEntry]) -> Result<()> {
    let known = ks
        .log_state(api.base())
        .and_then(|s| s.doc_heads.get(&doc_id.to_string()))
        .and_then(|h| parse_head(h));
    if let Some(head) = known
        && !chain.iter().any(|e| e.link() == head)
    {
        return Err(history_err(
            "the document's history no longer holds the entry verified before (truncated or rewritten)",
        ));
    }
    Ok(())
}

/// Remembers the head of a verified document history (saved with the keystore).
fn pin_doc_head(api: &Api, ks: &mut Keystore, doc_id: &DocId, chain: &[ChainEntry]) {
    if let (Some(last), Some(mut st)) = (chain.last(), ks.log_state(api.base()).cloned()) {
        st.doc_heads
            .insert(doc_id.to_string(), format_head(&last.link()));
        ks.set_log_state(api.base(), st);
    }
}

/// The devices that hold a wrap of `version` of a document, as its proven chain in the log says
/// (wraps appended, minus removals), so that `share` adds only new recipients.
///
/// # Errors
/// As [`audit_document`].
pub(crate) fn wrapped_devices(
    api: &Api,
    ks: &mut Keystore,
    doc_id: &DocId,
    version: u32,
) -> Result<HashSet<KeyId>> {
    let (_, _, chain) = proven_doc_chain(api, ks, doc_id)?;
    let mut out = HashSet::new();
    for e in &chain {
        match &e.entry.payload {
            Payload::Wrap(w) if w.doc_version == version => {
                out.insert(w.recipient);
            }
            Payload::Removal(r) if r.doc_version == version => {
                out.remove(&r.recipient);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The KEM of each recipient's current wrap of `version`, from the proven log (PROTOCOL.md
/// §7.2): a later wrap entry for the same recipient (a `rewrap --pq`) replaces the earlier one,
/// and a removal drops it.
///
/// # Errors
/// As [`audit_document`].
pub(crate) fn wrap_kems(
    api: &Api,
    ks: &mut Keystore,
    doc_id: &DocId,
    version: u32,
) -> Result<std::collections::HashMap<KeyId, serment_core::wrap::WrapKem>> {
    let (_, _, chain) = proven_doc_chain(api, ks, doc_id)?;
    let mut out = std::collections::HashMap::new();
    for e in &chain {
        match &e.entry.payload {
            Payload::Wrap(w) if w.doc_version == version => {
                out.insert(w.recipient, w.kem);
            }
            Payload::Removal(r) if r.doc_version == version => {
                out.remove(&r.recipient);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// A document's chain from the log (PROTOCOL.md §11.6), against a freshly synced and accepted
/// checkpoint: every entry proven, the chain whole, and its head not behind the pinned one.
/// Returns the checkpoint, the served history (for its device entries) and the decoded chain.
fn proven_doc_chain(
    api: &Api,
    ks: &mut Keystore,
    doc_id: &DocId,
) -> Result<(Checkpoint, crate::log_api::HistoryResponse, Vec<ChainEntry>)> {
    let cp = sync(api, ks, 0)?;
    let h = api.document_log(doc_id, Some(cp.size))?;
    let cp = accept_note(api, ks, &h.checkpoint)?;
    if cp.size != h.size {
        return Err(history_err(
            "the history is proven against another tree size than its checkpoint",
        ));
    }
    let chain = h
        .entries
        .iter()
        .map(|pe| verify_proven(&cp, pe))
        .collect::<Result<Vec<_>>>()?;
    check_chain(&chain, &Subject::Document(*doc_id)).map_err(log_err)?;
    check_doc_head(api, ks, doc_id, &chain)?;
    Ok((cp, h, chain))
}

/// The device records a document's history serves (`devices`), each proven against `cp`.
fn proven_devices(
    cp: &Checkpoint,
    h: &crate::log_api::HistoryResponse,
) -> Result<HashMap<KeyId, DeviceRecord>> {
    let mut devices = HashMap::new();
    for pe in &h.devices {
        let e = verify_proven(cp, pe)?;
        if let Payload::Device(rec) = e.entry.payload {
            devices.insert(rec.device_id(), rec);
        } else {
            return Err(history_err("a device proof is not a device record"));
        }
    }
    Ok(devices)
}

/// The erasure tombstone (kind 9) of a proven document chain, checked (PROTOCOL.md §11.3.2,
/// review R1): the author is the identity whose device signed the document's first wrap, taken
/// from the proven key history of that device's handle (never from a handle string alone: the
/// server chooses which device records it serves, and can log a record with any handle under a
/// key it made). The history replayed up to the first wrap must hold the sharer as a current
/// device; replayed up to the tombstone, it must hold the requester as a current device (same
/// identity, carried across rotations the old key signed; a revoked or rotated-away device is
/// not current); the whole history must replay (a record under an identity key the history
/// never rotated to breaks it); and the tombstone must verify with the requester's key from
/// that history. `None` if the chain holds no tombstone.
///
/// # Errors
/// [`ClientError::Log`] for a tombstone that does not check out: a forgery (the server's, or a
/// recipient's, or a revoked device's), which no client believes; server errors.
pub(crate) fn erasure_in_chain(
    api: &Api,
    ks: &mut Keystore,
    cp: &Checkpoint,
    h: &crate::log_api::HistoryResponse,
    chain: &[ChainEntry],
) -> Result<Option<serment_core::log::erasure::Erasure>> {
    let Some((t_index, t)) = chain.iter().find_map(|e| match &e.entry.payload {
        Payload::Erasure(t) => Some((e.index, t.clone())),
        _ => None,
    }) else {
        return Ok(None);
    };
    let (w_index, sharer) = chain
        .iter()
        .find_map(|e| match &e.entry.payload {
            Payload::Wrap(w) => Some((e.index, w.sharer)),
            _ => None,
        })
        .filter(|(i, _)| *i < t_index)
        .ok_or_else(|| history_err("an erasure of a document with no wrap before it"))?;
    let devices = proven_devices(cp, h)?;
    let handle = devices
        .get(&sharer)
        .map(|r| r.handle.clone())
        .ok_or_else(|| history_err("the document's author device has no record in the log"))?;
    let known_head = ks.contacts().get(&handle).and_then(|c| c.log_head.clone());
    let key_chain = proven_key_chain(api, ks, &handle, known_head.as_deref())?;
    replay_keys(&handle, &key_chain).map_err(log_err)?;
    let before = |end: u64| -> Vec<ChainEntry> {
        key_chain
            .iter()
            .take_while(|e| e.index < end)
            .cloned()
            .collect()
    };
    let at_wrap = replay_keys(&handle, &before(w_index)).map_err(log_err)?;
    if !at_wrap.devices.iter().any(|d| d.device_id() == sharer) {
        return Err(history_err(
            "the document's first wrap is signed by a device that was not then a current device of its handle",
        ));
    }
    let at_tombstone = replay_keys(&handle, &before(t_index)).map_err(log_err)?;
    let requester = at_tombstone
        .devices
        .iter()
        .find(|d| d.device_id() == t.requester_device)
        .ok_or_else(|| {
            history_err(
                "an erasure by a device that was not, at the tombstone, a current device of the \
                 document's author (forged, a recipient's, or revoked)",
            )
        })?;
    t.verify(&requester.signing_key).map_err(log_err)?;
    Ok(Some(t))
}

/// Whether the log proves `doc_id` erased (PROTOCOL.md §11.3.2): its proven chain, the
/// tombstone checked by [`erasure_in_chain`].
///
/// # Errors
/// As [`erasure_in_chain`]; server errors.
pub fn proven_erasure(
    api: &Api,
    ks: &mut Keystore,
    doc_id: &DocId,
) -> Result<Option<serment_core::log::erasure::Erasure>> {
    let (cp, h, chain) = proven_doc_chain(api, ks, doc_id)?;
    pin_doc_head(api, ks, doc_id, &chain);
    erasure_in_chain(api, ks, &cp, &h, &chain)
}

/// The newest version of `doc_id` that the log proves was wrapped for `device`, or `None`
/// (PROTOCOL.md §11.6): a freshness check on the server's document listing, which alone could
/// hide a newer version (rollback) or show this device an older view than others (fork).
///
/// # Errors
/// [`ClientError::Log`] for a history that does not check out; server errors.
pub fn newest_logged_version(
    api: &Api,
    ks: &mut Keystore,
    doc_id: &DocId,
    device: &KeyId,
) -> Result<Option<u32>> {
    newest_logged_version_synced(api, ks, doc_id, device).map(|(_, v)| v)
}

/// [`newest_logged_version`], also returning the checkpoint it synced to and accepted (pinned),
/// which the history is proven against: the rest of the operation relies on it instead of
/// fetching the checkpoint again (one sync per operation, issue 13 §1).
///
/// # Errors
/// As [`newest_logged_version`].
pub fn newest_logged_version_synced(
    api: &Api,
    ks: &mut Keystore,
    doc_id: &DocId,
    device: &KeyId,
) -> Result<(Checkpoint, Option<u32>)> {
    let (cp, h, chain) = proven_doc_chain(api, ks, doc_id)?;
    pin_doc_head(api, ks, doc_id, &chain);
    if let Some(t) = erasure_in_chain(api, ks, &cp, &h, &chain)? {
        return Err(ClientError::erased(&t));
    }
    let newest = chain
        .iter()
        .filter_map(|e| match &e.entry.payload {
            Payload::Wrap(w) if w.recipient == *device => Some(w.doc_version),
            _ => None,
        })
        .max();
    Ok((cp, newest))
}

/// Whether the log proves a wrap of `doc_id` version `version` for `device` (PROTOCOL.md
/// §11.6): what a catch-up requires before it believes a 409 "already wrapped" (R6).
///
/// # Errors
/// As [`newest_logged_version`].
pub fn wrap_logged_for(
    api: &Api,
    ks: &mut Keystore,
    doc_id: &DocId,
    version: u32,
    device: &KeyId,
) -> Result<bool> {
    let (cp, h, chain) = proven_doc_chain(api, ks, doc_id)?;
    pin_doc_head(api, ks, doc_id, &chain);
    if let Some(t) = erasure_in_chain(api, ks, &cp, &h, &chain)? {
        return Err(ClientError::erased(&t));
    }
    Ok(chain.iter().any(|e| match &e.entry.payload {
        Payload::Wrap(w) => w.recipient == *device && w.doc_version == version,
        _ => false,
    }))
}

/// The result of a full audit of the log (`serment verify-log`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LogReport {
    /// The checkpoint size audited.
    pub size: u64,
    /// Whether the recomputed root equals the checkpoint's.
    pub root_matches: bool,
    /// Entries per kind.
    pub kinds: BTreeMap<String, u64>,
    /// Handles seen.
    pub handles: usize,
    /// Distinct devices certified.
    pub devices: usize,
    /// Access entries without a reader receipt (server-attested only).
    pub unreceipted_accesses: u64,
    /// Every problem found (empty when the log verifies).
    pub errors: Vec<String>,
    /// The checkpoint audited (its signature verified).
    #[serde(skip)]
    pub checkpoint: Option<Checkpoint>,
    /// The keystore's pinned checkpoint this audit was checked against
    /// ([`verify_log_pinned`]): its size, `None` without a pin.
    pub pinned_size: Option<u64>,
    /// The signed note of [`LogReport::checkpoint`], as served.
    #[serde(skip)]
    pub note: Option<String>,
    /// [`verify_log_and_advance`]: the size the keystore's pin was moved forward to (the
    /// audited checkpoint), `None` when it was not moved.
    pub pin_moved_to: Option<u64>,
    /// [`verify_log_and_advance`]: why a newer audited checkpoint did not move the pin (the
    /// witness quorum the keystore requires, for one), `None` otherwise.
    pub pin_kept: Option<String>,
}

impl LogReport {
    /// True when nothing failed.
    pub fn verified(&self) -> bool {
        self.root_matches && self.errors.is_empty()
    }
}

/// Audits a whole log (PROTOCOL.md §11.9): recomputes the tree from every entry and compares the
/// root with the signed checkpoint; decodes every entry and checks every signature (records,
/// rotations, revocations, wraps by their sharer, removals by their author, accesses by the log
/// and the reader); checks every chain link; replays every handle's keys; checks that every wrap
/// and access names a device certified earlier in the log.
///
/// # Errors
/// Server and transport errors, or a checkpoint that fails [`LogTrust::verify_note`]; problems in
/// the entries are listed in the report.
pub fn verify_log(api: &Api, t: &LogTrust) -> Result<LogReport> {
    let note = api.log_checkpoint(None)?;
    let cp = t.verify_note(&note).map_err(log_err)?.checkpoint;
    let mut r = LogReport {
        size: cp.size,
        checkpoint: Some(cp.clone()),
        note: Some(note.clone()),
        ..LogReport::default()
    };
    let mut tree = MemoryTree::new();
    let mut heads: HashMap<Subject, PrevLink> = HashMap::new();
    let mut chains: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    let mut devices: HashMap<KeyId, DeviceRecord> = HashMap::new();
    let mut team_chains: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    let mut team_epochs: HashSet<KeyId> = HashSet::new();
    let mut provisional_chains: BTreeMap<KeyId, Vec<ChainEntry>> = BTreeMap::new();
    let mut social_chains: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    let mut nonces = HashSet::new();
    // Per document: the author (the record of the sharer of its first wrap: handle and identity
    // key), and whether a tombstone (kind 9) erased it (PROTOCOL.md §11.3.2).
    let mut doc_authors: HashMap<DocId, DeviceRecord> = HashMap::new();
    let mut erased: HashSet<DocId> = HashSet::new();
    let mut start = 0u64;
    while start < cp.size {
        let end = cp.size.min(start + 1000);
        let page = api.log_entries(start, end)?;
        if page.len() as u64 != end - start {
            r.errors.push(format!(
                "entries {start}..{end}: the server served {}",
                page.len()
            ));
            return Ok(r);
        }
        for (i, bytes) in page.into_iter().enumerate() {
            let index = start + i as u64;
            tree.push_entry(&bytes).map_err(log_err)?;
            let entry = match LogEntry::decode(&bytes) {
                Ok(e) => e,
                Err(e) => {
                    r.errors.push(format!("entry {index}: {e}"));
                    continue;
                }
            };
            *r.kinds.entry(entry.kind.name().to_owned()).or_default() += 1;
            let subject = entry.subject();
            if entry.prev != heads.get(&subject).copied() {
                r.errors
                    .push(format!("entry {index}: breaks the chain of its subject"));
            }
            let ce = ChainEntry {
                index,
                bytes,
                entry,
            };
            heads.insert(subject.clone(), ce.link());
            let mut fail = |m: String| r.errors.push(format!("entry {index}: {m}"));
            match &ce.entry.payload {
                Payload::Device(rec) => {
                    devices.insert(rec.device_id(), rec.clone());
                }
                Payload::Wrap(w) => match (
                    devices.get(&w.sharer),
                    devices.contains_key(&w.recipient)
                        || team_epochs.contains(&w.recipient)
                        || provisional_chains.contains_key(&w.recipient),
                ) {
                    (Some(s), true) => {
                        if let Err(e) = w.verify_signature(&s.signing_key) {
                            fail(e.to_string());
                        }
                        if erased.contains(&w.doc_id) {
                            fail("a wrap of an erased document".into());
                        }
                        doc_authors.entry(w.doc_id).or_insert_with(|| s.clone());
                    }
                    _ => fail("a wrap names a device not certified before it".into()),
                },
                Payload::Erasure(x) => match devices.get(&x.requester_device) {
                    Some(d) => {
                        if let Err(e) = x.verify(&d.signing_key) {
                            fail(e.to_string());
                        }
                        // Review R1: the requester must be, at this index, a current device of
                        // the author's identity by its key history replayed so far (a handle
                        // string in a record proves nothing: anyone holding the log can log a
                        // record with any handle under a key of its own).
                        match doc_authors.get(&x.doc_id) {
                            Some(author) => {
                                let so_far =
                                    chains.get(&author.handle).map_or(&[][..], Vec::as_slice);
                                match replay_keys(&author.handle, so_far) {
                                    Ok(kh)
                                        if kh.identity_keys.contains(&author.identity_key)
                                            && kh
                                                .devices
                                                .iter()
                                                .any(|c| c.device_id() == x.requester_device) => {}
                                    Ok(_) => fail(
                                        "an erasure by a device of neither the document's author nor its patient \
                                         (not a current device of the author's identity at the tombstone: forged or revoked)"
                                            .into(),
                                    ),
                                    Err(e) => fail(format!(
                                        "an erasure by a device of neither the document's author nor its patient \
                                         (the author's key history does not replay: {e})"
                                    )),
                                }
                            }
                            None => fail("an erasure of a document with no wrap before it".into()),
                        }
                        if !erased.insert(x.doc_id) {
                            fail("a document erased twice".into());
                        }
                    }
                    None => fail("an erasure by a device not certified before it".into()),
                },
                Payload::Removal(x) => match devices.get(&x.author_device) {
                    Some(a) => {
                        if let Err(e) = x.verify(&a.signing_key) {
                            fail(e.to_string());
                        }
                    }
                    None => fail("a removal by an unknown device".into()),
                },
                Payload::Access(a) => match devices.get(&a.device_id) {
                    Some(d) => {
                        if erased.contains(&a.doc_id) {
                            fail("an access to an erased document".into());
                        }
                        if let Err(e) =
                            a.verify(&t.log_key.public_key, &t.log_key.name, &d.signing_key)
                        {
                            fail(e.to_string());
                        }
                        if a.receipt.is_none() {
                            r.unreceipted_accesses += 1;
                        }
                        if !nonces.insert((a.device_id, a.nonce)) {
                            fail("an access nonce used twice".into());
                        }
                    }
                    None => fail("an access by a device not certified before it".into()),
                },
                Payload::Team(c) => {
                    team_epochs.insert(serment_core::team::epoch_id(
                        &c.body.team,
                        c.body.epoch,
                        &c.body.epoch_key,
                    ));
                }
                Payload::Bundle(b) => {
                    if let Err(e) = b.verify(&t.log_key.public_key) {
                        fail(e.to_string());
                    }
                }
                // Provisional recipients (PROTOCOL.md §15): made by a device certified before
                // its record; claimed by a device certified before the claim, under the handle
                // its record names.
                Payload::Provisional(p) => {
                    if !devices.contains_key(&p.lab_device()) {
                        fail(
                            "a provisional recipient made by a device not certified before it"
                                .into(),
                        );
                    }
                }
                Payload::Claim(c) => match devices.get(&c.device_id()) {
                    Some(d) if d.handle == c.handle => {}
                    Some(_) => fail("a claim under another handle than its device's".into()),
                    None => fail("a claim by a device not certified before it".into()),
                },
                // Their signatures are checked at decode; replay_keys checks the signer is current.
                Payload::Rotation(_) | Payload::Revocation(_) | Payload::Recovery(_) => {}
                // Social recovery (PROTOCOL.md §4.3): approvals and vetoes by devices certified
                // before them; a request is self-signed by a device not certified yet; a
                // contacts entry's identity key is checked against the key history below
                // (`replay_social`'s `forged_contacts`).
                Payload::RecoveryApproval(a) => match devices.get(&a.device_id()) {
                    Some(d) if d.handle == a.contact => {}
                    Some(_) => fail("an approval under another handle than its device's".into()),
                    None => fail("an approval by a device not certified before it".into()),
                },
                Payload::RecoveryVeto(v) => match devices.get(&v.device_id()) {
                    Some(d) if d.handle == v.handle => {}
                    _ => fail("a veto by a device not certified under its handle before it".into()),
                },
                Payload::RecoveryContacts(_) | Payload::RecoveryRequest(_) => {}
            }
            match subject {
                Subject::Handle(h) => chains.entry(h).or_default().push(ce),
                Subject::Team(t) => team_chains.entry(t).or_default().push(ce),
                Subject::Provisional(p) => provisional_chains.entry(p).or_default().push(ce),
                Subject::Social(h) => social_chains.entry(h).or_default().push(ce),
                Subject::Document(_) | Subject::WebBundle => {}
            }
        }
        start = end;
    }
    r.root_matches = tree.root_at(cp.size).map_err(log_err)? == cp.root;
    if !r.root_matches {
        r.errors
            .push("the recomputed root differs from the signed checkpoint".into());
    }
    r.handles = chains.len();
    r.devices = devices.len();
    let mut histories: HashMap<&str, KeyHistory> = HashMap::new();
    for (h, chain) in &chains {
        match replay_keys(h, chain) {
            Ok(k) => {
                histories.insert(h.as_str(), k);
            }
            Err(e) => r.errors.push(format!("handle {h}: {e}")),
        }
    }
    // Provisional recipients (PROTOCOL.md §15.3): a record, then at most one claim by its key.
    for (p, chain) in &provisional_chains {
        if let Err(e) = serment_core::provisional::replay_provisional(chain) {
            r.errors.push(format!("provisional recipient {p}: {e}"));
        }
    }
    // Social recovery (PROTOCOL.md §4.3): every handle's social chain replays, and each of its
    // contacts entries is signed by the handle's identity key current at its index (REVIEW5
    // U16: the honest server logs no other).
    for (h, chain) in &social_chains {
        match serment_core::log::social::replay_social(h, chain, histories.get(h.as_str())) {
            Ok(st) => {
                for i in st.forged_contacts {
                    r.errors.push(format!(
                        "social recovery of {h}: the recovery contacts entry at log index {i} \
                         is not signed by the handle's identity key current there"
                    ));
                }
            }
            Err(e) => r.errors.push(format!("social recovery of {h}: {e}")),
        }
    }
    // Care teams (PROTOCOL.md §12.4): every team's chain replays against the key histories.
    for (t, chain) in &team_chains {
        if let Err(e) = serment_core::team::replay_team(t, chain, &chains) {
            r.errors.push(format!("team {t}: {e}"));
        }
    }
    Ok(r)
}

/// [`verify_log`] against what the keystore pinned for `api`'s server (PROTOCOL.md §11.7): the
/// served log key must be the pinned one, and the audited checkpoint must extend the pinned
/// checkpoint (same size and root, or larger with a consistency proof from the server). The pin
/// is not advanced: this is an audit, the keystore is only read.
///
/// # Errors
/// [`ClientError::NotRegistered`] if nothing is pinned for this server;
/// [`ClientError::LogKeyChanged`]; [`ClientError::Log`] with [`serment_core::Error::Rollback`]
/// (a smaller tree: "LOG ROLLBACK") or [`serment_core::Error::Fork`] (an inconsistent one: "LOG
/// FORK"); the errors of [`verify_log`].
pub fn verify_log_pinned(api: &Api, ks: &Keystore) -> Result<LogReport> {
    let st = ks.log_state(api.base()).ok_or(ClientError::NotRegistered)?;
    let served = api.log_key()?;
    if served != st.vkey {
        return Err(ClientError::LogKeyChanged {
            pinned: st.vkey.clone(),
            served,
        });
    }
    let t = LogTrust {
        log_key: VerifierKey::parse(&st.vkey).map_err(ClientError::Keystore)?,
        witnesses: Vec::new(),
        quorum: 0,
    };
    let mut r = verify_log(api, &t)?;
    let old = pinned(api, ks)?;
    if let (Some(o), Some(new)) = (&old, &r.checkpoint) {
        let proof = if new.size > o.size && o.size > 0 {
            api.log_consistency(o.size, new.size)?
        } else {
            Vec::new()
        };
        check_advance(Some(o), new, &proof).map_err(log_err)?;
    }
    r.pinned_size = old.map(|o| o.size);
    Ok(r)
}

/// [`verify_log_pinned`], then, when the whole log verified and its checkpoint is newer than
/// the pin, moves the keystore's pin forward to it with the checks of every other pin update
/// ([`accept_note`]: the log key, the witness quorum this keystore requires, consistency with
/// the pin). A checkpoint that fails them leaves the pin where it was, the reason in
/// [`LogReport::pin_kept`] (newcomer 6 N4: `pinned-checkpoint` then gives the newest checkpoint
/// this keystore verified). The caller saves the keystore.
///
/// # Errors
/// Those of [`verify_log_pinned`].
pub fn verify_log_and_advance(api: &Api, ks: &mut Keystore) -> Result<LogReport> {
    let mut r = verify_log_pinned(api, ks)?;
    let newer = r
        .checkpoint
        .as_ref()
        .is_some_and(|c| r.pinned_size.is_some_and(|p| c.size > p));
    if r.verified()
        && newer
        && let Some(note) = r.note.clone()
    {
        match accept_note(api, ks, &note) {
            Ok(cp) => r.pin_moved_to = Some(cp.size),
            Err(e) => r.pin_kept = Some(e.to_string()),
        }
    }
    Ok(r)
}

/// Compares a checkpoint another client saw (gossip) with this client's view (PROTOCOL.md
/// §11.8): it must be signed by the same log and consistent with the pinned checkpoint, with a
/// proof from the server between the two. A fork is a [`ClientError::SplitView`].
///
/// # Errors
/// [`ClientError::SplitView`], [`ClientError::Log`] for a note that does not verify.
pub fn compare_checkpoints(api: &Api, ks: &mut Keystore, other_note: &str) -> Result<()> {
    let t = trust(api, ks)?;
    let other = SignedCheckpoint::parse(other_note).map_err(log_err)?;
    other.verify_log_signature(&t.log_key).map_err(log_err)?;
    let other = other.checkpoint;
    let mine = match pinned(api, ks)? {
        Some(c) => c,
        None => sync(api, ks, 0)?,
    };
    let (small, large) = if mine.size <= other.size {
        (&mine, &other)
    } else {
        (&other, &mine)
    };
    let proof = if small.size > 0 && small.size < large.size {
        api.log_consistency(small.size, large.size)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    check_same_view(&mine, &other, &proof).map_err(|e| {
        ClientError::SplitView(format!(
            "checkpoints of {} and {} entries are not views of one log: {e}",
            mine.size, other.size
        ))
    })
}

/// The access-what of a fetch.
pub(crate) fn receipt(
    ks: &Keystore,
    origin: &str,
    doc_id: &DocId,
    version: u32,
    what: AccessWhat,
) -> Result<serment_core::log::entry::Receipt> {
    serment_core::log::entry::Receipt::sign(
        &ks.device,
        origin,
        doc_id,
        version,
        what,
        crate::now_secs(),
    )
    .map_err(ClientError::Integrity)
}

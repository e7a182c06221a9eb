//! The offline replica (issue 12 §4, PROTOCOL.md §14): `serment sync` keeps, in the client's
//! state directory, what this device may read -- each document version's sealed blob, its wrap,
//! and every log proof and checkpoint its open needs -- encrypted at rest under a key derived
//! from the keystore's device secret; `serment ls --offline` and `serment get --offline` read
//! from it with no network at all.
//!
//! Design: no second verifier. `sync` opens each new version with the online
//! [`Session::get`] (every check: the log proofs of the wrap, the author's records, the
//! document's signature and chunk hashes), through a transport that records each `GET`
//! answer; a version that does not verify is not stored and is reported ([`Refused`]), and the
//! sync goes on with the others (one bad document must not freeze the replica). An offline `get` runs the same [`Session::get`] again over a
//! transport that replays those answers, with the session's pin set, in memory only, to the
//! checkpoint pinned when the version was recorded. Each file is AES-256-GCM sealed, bound to
//! its own name (a file put in another's place does not open), and its SHA-256 is in the
//! manifest (an older copy is refused); the manifest's SHA-256 is in the encrypted keystore
//! (an older manifest is refused).

mod file;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serment_core::DocId;

use crate::api::Api;
use crate::documents::GetResult;
use crate::error::{ClientError, Result};
use crate::fsutil::write_atomic;
use crate::http::{HttpTransport, Method, Request, Response, read_limited};
use crate::keystore::{Keystore, ReplicaAnchor};
use crate::vault::Session;

use file::{
    EXT, Exchange, decode_version, encode_version, key_of, read_file, sha256_hex, tampered,
};
pub use file::{
    FORMAT_VERSION, KEY_LABEL, MAGIC, MANIFEST, MAX_REPLICA_VERSION, Manifest, ReplicaKey,
    ReplicaVersion, SUITE, load_manifest,
};

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
    /// Versions and documents whose check failed this sync: nothing of them was stored (a
    /// version held from an earlier sync stays held). The CLI exits non-zero when any.
    pub refused: Vec<Refused>,
    /// Documents held but no longer listed for this device (removed as a recipient, left a
    /// care team, or hidden by the server), kept with what was verified when they were synced.
    pub unlisted_kept: Vec<UnlistedKept>,
    /// Documents held that a restore this device accepted lost (the accepted loss statement
    /// names them and the restored server no longer lists them): kept from the old log, marked
    /// lost in the manifest ([`Manifest::lost`]), with the statement's id.
    pub lost_kept: Vec<(String, String)>,
}

/// Which check of a sync refused a version or document ([`Refused::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCheck {
    /// The document's proven chain, checked before anything new of it is stored (a hidden
    /// newer version, a chain that does not check out): every new version of it refused.
    Chain,
    /// The open of one version with every check of the online `get`.
    Open,
    /// The tombstone check of a held document (its proven chain): the document is kept.
    Erasure,
}

impl SyncCheck {
    /// The name used in `serment sync --json` (docs/JSON.md): `chain`, `open`, `erasure`.
    pub fn name(self) -> &'static str {
        match self {
            SyncCheck::Chain => "chain",
            SyncCheck::Open => "open",
            SyncCheck::Erasure => "erasure",
        }
    }
}

/// A version (or a whole document, `doc_version: None`) that a sync did not store because a
/// check failed; the rest of the sync went on.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The document (hex id).
    pub doc_id: String,
    /// The version refused; `None` when the check is of the document (chain, erasure).
    pub doc_version: Option<u32>,
    /// The check that failed.
    pub check: SyncCheck,
    /// The error's stable code ([`ClientError::code`]: `integrity`, `unknown_author`,
    /// `withheld`, `log_history`, `server`, ...).
    pub code: &'static str,
    /// The error's CLI exit code ([`ClientError::exit_code`]: 4 for a check, 5 server/network).
    pub exit_code: i32,
    /// The error's message.
    pub message: String,
}

impl Refused {
    fn new(doc_id: &str, doc_version: Option<u32>, check: SyncCheck, e: &ClientError) -> Refused {
        Refused {
            doc_id: doc_id.to_owned(),
            doc_version,
            check,
            code: e.code(),
            exit_code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// A held document no longer listed for this device, kept in the replica (PROTOCOL.md §14).
#[derive(Debug, Clone)]
pub struct UnlistedKept {
    /// The document (hex id).
    pub doc_id: String,
    /// Whether its proven chain could be read and shows no tombstone; `false` when the server
    /// refuses this device its log (403/404: no longer a participant), so an erasure could
    /// not be checked.
    pub erasure_checked: bool,
}

/// Whether `e`, met while syncing one document, concerns the whole sync rather than that
/// document: local I/O and keystore errors, this device revoked, and the log's own view (its
/// key, a rollback, a fork, a consistency proof, the witnesses). Those stop the sync and the
/// previous replica stays in force; every other error refuses only that document's version.
fn stops_the_sync(e: &ClientError) -> bool {
    use serment_core::Error as E;
    matches!(
        e,
        ClientError::Io { .. }
            | ClientError::OutputExists(_)
            | ClientError::Keystore(_)
            | ClientError::NoKeystore(_)
            | ClientError::KeystoreExists(_)
            | ClientError::DeviceRevoked
            | ClientError::NotRegistered
            | ClientError::LogKeyChanged { .. }
            | ClientError::SplitView(_)
            | ClientError::Log(
                E::Rollback { .. } | E::Fork { .. } | E::NoQuorum { .. } | E::BadConsistencyProof
            )
    )
}

/// The server refuses this device a document's log: it is no longer a participant.
fn not_a_participant(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Server {
            status: 403 | 404,
            ..
        }
    )
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
    /// A version whose check fails (its open, or its document's proven chain) is not stored and
    /// is named in [`SyncReport::refused`]; the other versions are synced and the manifest is
    /// written all the same, so that one document this device cannot verify (an author not
    /// pinned, an author device since revoked, a blob altered) does not freeze the replica. A
    /// held document no longer listed whose log the server refuses (403/404: removed as a
    /// recipient) is kept ([`SyncReport::unlisted_kept`]).
    ///
    /// # Errors
    /// Errors that concern the whole sync (the previous replica stays in force): the listing
    /// (server, transport), the log's own view ([`ClientError::Log`] rollback, fork, quorum,
    /// consistency; [`ClientError::LogKeyChanged`], [`ClientError::SplitView`]), this device
    /// revoked, [`ClientError::Keystore`], [`ClientError::Io`].
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
        // Held documents that are no longer listed, or that a tombstone appended since the last
        // sync names (a server may keep listing an erased document): erased if the log proves
        // it; otherwise kept (removed as a recipient, or hidden by the server: the device held
        // it already, and keeps what it verified).
        let held: BTreeSet<String> = old.versions.values().map(|v| v.doc_id.clone()).collect();
        let hinted = self.tombstone_hints(old.checkpoint_size(), &held)?;
        for id in &held {
            let listed = listed_ids.contains(id);
            if listed && !hinted.contains(id) {
                continue;
            }
            // Lost in a restore this device accepted (newcomer 6 N5): not a removal nor a
            // server hiding it. Kept from the old log, marked lost, never verified anew.
            let lost = self
                .ks
                .log_state(&base)
                .and_then(|s| s.lost_document(id))
                .map(|(a, _)| a.statement.clone());
            if let Some(statement) = lost.filter(|_| !listed) {
                for v in old.versions.values().filter(|v| &v.doc_id == id) {
                    next.versions
                        .insert(key_of(&v.doc_id, v.doc_version), v.clone());
                }
                next.lost.insert(id.clone(), statement.clone());
                report.lost_kept.push((id.clone(), statement));
                continue;
            }
            let doc = DocId::from_hex(id).map_err(|_| tampered("a replica entry's doc id"))?;
            let erasure_checked = match crate::log::proven_erasure(&self.api, &mut self.ks, &doc) {
                Ok(Some(_)) => {
                    next.erased.insert(id.clone());
                    report.erased.push(id.clone());
                    continue;
                }
                Ok(None) => true,
                Err(e) if stops_the_sync(&e) => return Err(e),
                // Removed as a recipient (kind 5) or gone from the care team: the server no
                // longer shows this device the document's log. Kept, as verified.
                Err(e) if !listed && not_a_participant(&e) => false,
                Err(e) => {
                    report
                        .refused
                        .push(Refused::new(id, None, SyncCheck::Erasure, &e));
                    false
                }
            };
            if !listed {
                for v in old.versions.values().filter(|v| &v.doc_id == id) {
                    next.versions
                        .insert(key_of(&v.doc_id, v.doc_version), v.clone());
                }
                report.unlisted_kept.push(UnlistedKept {
                    doc_id: id.clone(),
                    erasure_checked,
                });
            }
        }
        let mut checked: BTreeSet<String> = BTreeSet::new();
        let mut bad_chain: BTreeSet<String> = BTreeSet::new();
        for d in &listed {
            let k = key_of(&d.doc_id, d.doc_version);
            if next.erased.contains(&d.doc_id) || bad_chain.contains(&d.doc_id) {
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
            // The document's proven chain, once per document with something new, as the online
            // `get` of its newest version checks it: a tombstone in it (an erased document the
            // server still lists) is `Erased`, a newer version the log proves but the listing
            // hides is a log error.
            if checked.insert(d.doc_id.clone()) {
                let listed_newest = listed
                    .iter()
                    .filter(|x| x.doc_id == d.doc_id)
                    .map(|x| x.doc_version)
                    .max();
                let me = self.ks.device.id();
                let chain = match crate::log::newest_logged_version_synced(
                    &self.api,
                    &mut self.ks,
                    &doc,
                    &me,
                ) {
                    Ok((_, logged)) if logged > listed_newest => {
                        Err(ClientError::Log(serment_core::Error::History {
                            reason: "the server's listing hides a newer version of the document \
                                     that the log proves",
                        }))
                    }
                    Ok(_) => Ok(()),
                    Err(ClientError::Erased { doc_id, .. }) => {
                        next.erased.insert(doc_id.clone());
                        report.erased.push(doc_id);
                        continue;
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = chain {
                    if stops_the_sync(&e) {
                        return Err(e);
                    }
                    report
                        .refused
                        .push(Refused::new(&d.doc_id, None, SyncCheck::Chain, &e));
                    bad_chain.insert(d.doc_id.clone());
                    continue;
                }
            }
            match self.record_version(&key, dir, &doc, d.doc_version, d.size) {
                Ok(v) => {
                    next.versions.insert(k.clone(), v);
                    report.added.push(k);
                }
                Err(ClientError::Erased { doc_id, .. }) => {
                    next.erased.insert(doc_id.clone());
                    report.erased.push(doc_id);
                }
                Err(e) if stops_the_sync(&e) => return Err(e),
                // Not stored (`record_version` writes a file only once the open verified);
                // reported, and the sync goes on.
                Err(e) => report.refused.push(Refused::new(
                    &d.doc_id,
                    Some(d.doc_version),
                    SyncCheck::Open,
                    &e,
                )),
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

    /// The held documents (`held`, hex ids) that a tombstone (kind 9) names among the log
    /// entries from `from` (the previous sync's checkpoint size) to the pinned checkpoint:
    /// hints only, each confirmed by its proven chain by the caller.
    fn tombstone_hints(&self, from: u64, held: &BTreeSet<String>) -> Result<BTreeSet<String>> {
        use serment_core::log::entry::{LogEntry, Payload};
        let mut out = BTreeSet::new();
        if held.is_empty() {
            return Ok(out);
        }
        let to = crate::log::pinned(&self.api, &self.ks)?.map_or(0, |c| c.size);
        let mut start = from;
        while start < to {
            let page = self.api.log_entries(start, to.min(start + 1000))?;
            if page.is_empty() {
                break;
            }
            for b in &page {
                if let Ok(e) = LogEntry::decode(b)
                    && let Payload::Erasure(x) = &e.payload
                    && held.contains(&x.doc_id.to_string())
                {
                    out.insert(x.doc_id.to_string());
                }
            }
            start += page.len() as u64;
        }
        Ok(out)
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
        let teams = serde_json::to_vec(&self.ks.team_view())
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let rec = Arc::new(Recorder {
            inner: Arc::clone(self.api.http()),
            base: base.clone(),
            seen: Mutex::new(Vec::new()),
        });
        let inner = self.api.set_http(rec.clone());
        let r = self.get(doc, Some(version), &mut std::io::sink());
        self.api.set_http(inner);
        let r = r?;
        let plain = encode_version(pin.as_deref(), &teams, &rec.take())?;
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
    /// For a document a restore this device accepted lost ([`Manifest::lost`]): the loss
    /// statement's id and the size of the checkpoint (of the old log) the version was verified
    /// against, which the manifest's checkpoint does not hold.
    pub lost: Option<(String, u64)>,
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
    let (pin, teams, exchanges) = decode_version(&ReplicaKey::of(&ks).open(&name, &file)?)?;
    let lost = manifest.lost.get(&id).map(|statement| {
        let size = pin
            .as_deref()
            .and_then(|n| serment_core::log::note::SignedCheckpoint::parse(n).ok())
            .map_or(0, |c| c.checkpoint.size);
        (statement.clone(), size)
    });
    let teams: crate::keystore::TeamView = serde_json::from_slice(&teams)
        .map_err(|_| tampered("a replica version file does not decode"))?;
    let base = manifest.server.clone();
    let mut ks = ks.detached();
    let mut st = ks
        .log_state(&base)
        .cloned()
        .ok_or(ClientError::NotRegistered)?;
    st.checkpoint = pin;
    ks.set_log_state(&base, st);
    ks.set_team_view(teams);
    let api = Api::offline(&base, Arc::new(Replay::new(&base, exchanges)), &ks.device);
    let mut s = Session::new(ks, api);
    let result = s.get_to_file(doc, Some(v), path, overwrite)?;
    Ok(OfflineGet {
        result,
        manifest,
        lost,
    })
}

/// The replica directory of a keystore at `keystore`: `replica/` beside it.
pub fn dir_beside(keystore: &Path) -> PathBuf {
    keystore
        .parent()
        .map_or_else(|| PathBuf::from("replica"), |p| p.join("replica"))
}

//! The transparency log's write path, backend-neutral (PROTOCOL.md §11.2–§11.4): the Merkle
//! frontier and appends ([`LogAppender`]), the checkpoint signer, over a small transactional
//! interface ([`LogTx`]) that each metadata backend implements on its own write transaction.
//!
//! The habit is Tessera's (`storage/{aws,gcp,posix}` behind one interface): the tree arithmetic
//! and the signing live here once; a backend only reads and writes rows. The caller holds the
//! backend's log lock for the whole transaction (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
//! `SELECT … FOR UPDATE` on the coordination row), so no other writer, in this process or
//! another instance, can move the tree between [`LogAppender::begin`] and the commit.

use std::collections::HashMap;
use std::future::Future;

use serment_core::KeyId;
use serment_core::log::entry::{EntryKind, PrevLink, Subject, encode_entry};
use serment_core::log::note::{Checkpoint, NoteSigner};
use serment_core::log::tree::{self, Hash, NodeId, Recorder};

use crate::store::{LogRead, StoreError};

/// The text key of a subject: `h:<handle>`, `d:<doc id hex>`, `t:<team name>`, `w:bundle`,
/// `p:<provisional id hex>` or `s:<handle>` (the handle's social recovery chain).
pub(crate) fn subject_key(s: &Subject) -> String {
    match s {
        Subject::Handle(h) => format!("h:{h}"),
        Subject::Document(d) => format!("d:{d}"),
        Subject::Team(t) => format!("t:{t}"),
        Subject::WebBundle => "w:bundle".to_owned(),
        Subject::Provisional(p) => format!("p:{p}"),
        Subject::Social(h) => format!("s:{h}"),
    }
}

/// A [`serment_core::Error`] as a backend failure (a stored tree that does not add up).
pub(crate) fn core(e: serment_core::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// One entry to insert: its index, kind byte, subject key, device, bytes, leaf hash and time.
#[derive(Debug, Clone)]
pub(crate) struct PendingEntry {
    /// Its log index.
    pub(crate) idx: u64,
    /// [`EntryKind`] as stored.
    pub(crate) kind: u8,
    /// [`subject_key`] of its subject.
    pub(crate) subject: String,
    /// The device it names, if any (hex key id).
    pub(crate) device_id: Option<String>,
    /// The entry exactly as hashed.
    pub(crate) entry: Vec<u8>,
    /// RFC 9162 leaf hash of `entry`.
    pub(crate) leaf: Hash,
    /// Server time, seconds since the Unix epoch.
    pub(crate) logged_at: u64,
}

/// The rows the log service reads and writes inside one write transaction that holds the log
/// lock. Every method runs in that transaction; none commits.
pub(crate) trait LogTx: Send {
    /// The number of entries.
    fn log_size(&mut self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The stored hashes of `nodes` (missing ones are absent from the map).
    fn read_nodes(
        &mut self,
        nodes: &[NodeId],
    ) -> impl Future<Output = Result<HashMap<NodeId, Hash>, StoreError>> + Send;
    /// The latest entry (index, leaf hash) of each subject key that has one.
    fn chain_heads(
        &mut self,
        subjects: &[String],
    ) -> impl Future<Output = Result<HashMap<String, PrevLink>, StoreError>> + Send;
    /// Inserts complete-subtree hashes (immutable once written).
    fn insert_nodes(
        &mut self,
        nodes: &[(NodeId, Hash)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Inserts entries.
    fn insert_entries(
        &mut self,
        entries: &[PendingEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The entry bytes at `idx`.
    fn entry_at(&mut self, idx: u64) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
    /// Publishes the signed checkpoint of `size` by compare-and-swap on the latest published
    /// size: stores `note` if the latest checkpoint is `previous` (or already is this size with
    /// this root), and fails with [`StoreError::Conflict`] otherwise, so two writers can never
    /// publish two different trees of one size.
    fn publish_checkpoint(
        &mut self,
        previous: u64,
        size: u64,
        root: &Hash,
        note: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What [`LogAppender::finish`] wrote.
pub(crate) struct LogCommit {
    /// The new tree size.
    pub(crate) size: u64,
    /// The checkpoint note of `size`, signed by the log (no cosignatures yet).
    pub(crate) note: String,
    /// Each appended entry, with its inclusion proof against that checkpoint.
    pub(crate) proven: Vec<(LogRead, Vec<Hash>)>,
    /// The older entries asked for, with their inclusion proofs against that checkpoint.
    pub(crate) also_proven: Vec<(LogRead, Vec<Hash>)>,
    /// The consistency proofs asked for ([`LogAppender::prove_consistency_from`]), from each
    /// older size (strictly between 0 and `size`) to `size`.
    pub(crate) consistency: HashMap<u64, Vec<Hash>>,
}

/// Appends entries inside one write transaction (PROTOCOL.md §11.2–§11.4).
///
/// [`LogAppender::begin`] reads the tree size and its frontier (the at most 64 complete subtrees
/// the size decomposes into: every node an append or the new root needs);
/// [`LogAppender::append`] links each entry to its subject's previous one and computes the new
/// nodes in memory; [`LogAppender::finish`] writes the entries and nodes, then signs and
/// publishes the checkpoint of the new size.
pub(crate) struct LogAppender {
    start: u64,
    size: u64,
    nodes: HashMap<NodeId, Hash>,
    new_nodes: Vec<(NodeId, Hash)>,
    heads: HashMap<String, Option<PrevLink>>,
    pending: Vec<PendingEntry>,
    consistency_from: Vec<u64>,
}

impl LogAppender {
    /// Starts appending inside `tx`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend fails or a frontier node is missing.
    pub(crate) async fn begin<T: LogTx>(tx: &mut T) -> Result<LogAppender, StoreError> {
        let size = tx.log_size().await?;
        let need = Recorder::nodes(|r| tree::root(size, r)).map_err(core)?;
        let nodes = tx.read_nodes(&need).await?;
        Ok(LogAppender {
            start: size,
            size,
            nodes,
            new_nodes: Vec::new(),
            heads: HashMap::new(),
            pending: Vec::new(),
            consistency_from: Vec::new(),
        })
    }

    /// Asks [`LogAppender::finish`] for consistency proofs from each of `sizes` to the new
    /// size, read with the nodes of the inclusion proofs (one read for all). Sizes of 0, of
    /// the new size or beyond it get none.
    pub(crate) fn prove_consistency_from(&mut self, sizes: impl IntoIterator<Item = u64>) {
        self.consistency_from.extend(sizes);
    }

    /// Reads the chain heads (latest entry) of `subjects` from the log itself, so that
    /// [`LogAppender::append`] need not look them up one by one. A subject with no entry gets
    /// none (its first entry has no back link).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend fails.
    pub(crate) async fn load_heads<T: LogTx>(
        &mut self,
        tx: &mut T,
        subjects: &[Subject],
    ) -> Result<(), StoreError> {
        let mut keys: Vec<String> = subjects
            .iter()
            .map(subject_key)
            .filter(|k| !self.heads.contains_key(k))
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        let found = tx.chain_heads(&keys).await?;
        for k in keys {
            let head = found.get(&k).copied();
            self.heads.insert(k, head);
        }
        Ok(())
    }

    /// Appends one entry: links it to the previous entry of its subject and computes the tree
    /// nodes it completes. Returns its index.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend fails, the tree is full or the payload is too
    /// long for an entry.
    pub(crate) async fn append<T: LogTx>(
        &mut self,
        tx: &mut T,
        kind: EntryKind,
        subject: &Subject,
        device_id: Option<&str>,
        payload: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let key = subject_key(subject);
        if !self.heads.contains_key(&key) {
            self.load_heads(tx, std::slice::from_ref(subject)).await?;
        }
        let prev = self.heads.get(&key).copied().flatten();
        let n = self.size;
        let entry = encode_entry(kind, now, prev, payload).map_err(core)?;
        let leaf = tree::leaf_hash(&entry);
        for (node, hash) in tree::append(n, leaf, &self.nodes).map_err(core)? {
            self.nodes.insert(node, hash);
            self.new_nodes.push((node, hash));
        }
        self.heads.insert(
            key.clone(),
            Some(PrevLink {
                index: n,
                leaf_hash: leaf,
            }),
        );
        self.pending.push(PendingEntry {
            idx: n,
            kind: kind as u8,
            subject: key,
            device_id: device_id.map(str::to_owned),
            entry,
            leaf,
            logged_at: now,
        });
        self.size = n + 1;
        Ok(n)
    }

    /// Writes the appended entries and nodes, then signs and publishes the checkpoint of the new
    /// size (one per write transaction, §11.4; published even when nothing was appended, so that
    /// startup can make sure the latest size has one). Returns that checkpoint's note and each
    /// appended entry with its inclusion proof against it (RFC 9162 §2.1.3), so that a writer
    /// can check its own writes without another request; and the same for the older entries
    /// `also` (in that order).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the backend fails or the note cannot be signed;
    /// [`StoreError::Conflict`] if another writer published a checkpoint meanwhile (the caller
    /// rolls back and re-reads the tree).
    pub(crate) async fn finish<T: LogTx>(
        mut self,
        tx: &mut T,
        signer: &NoteSigner,
        also: &[u64],
    ) -> Result<LogCommit, StoreError> {
        tx.insert_nodes(&self.new_nodes).await?;
        tx.insert_entries(&self.pending).await?;
        let root = tree::root(self.size, &self.nodes).map_err(core)?;
        let note = signer
            .sign_checkpoint(&Checkpoint {
                origin: signer.name().to_owned(),
                size: self.size,
                root,
            })
            .and_then(|s| s.encode())
            .map_err(core)?;
        tx.publish_checkpoint(self.start, self.size, &root, &note)
            .await?;
        // The new leaves' proofs read the old frontier and the new nodes, all in memory; older
        // leaves' proofs (and any other node) read the rest from the transaction.
        let size = self.size;
        let mut older = Vec::with_capacity(also.len());
        for idx in also {
            let entry = tx.entry_at(*idx).await?;
            older.push(LogRead { index: *idx, entry });
        }
        let mut need = Vec::new();
        for idx in self
            .pending
            .iter()
            .map(|e| e.idx)
            .chain(also.iter().copied())
        {
            need.extend(Recorder::nodes(|r| tree::inclusion_proof(idx, size, r)).map_err(core)?);
        }
        let mut froms: Vec<u64> = std::mem::take(&mut self.consistency_from);
        froms.retain(|&f| f > 0 && f < size);
        froms.sort_unstable();
        froms.dedup();
        for &f in &froms {
            need.extend(Recorder::nodes(|r| tree::consistency_proof(f, size, r)).map_err(core)?);
        }
        need.retain(|n| !self.nodes.contains_key(n));
        need.sort_by_key(|n| (n.level, n.index));
        need.dedup();
        if !need.is_empty() {
            let more = tx.read_nodes(&need).await?;
            self.nodes.extend(more);
        }
        let mut proven = Vec::with_capacity(self.pending.len());
        for e in self.pending {
            let proof = tree::inclusion_proof(e.idx, size, &self.nodes).map_err(core)?;
            proven.push((
                LogRead {
                    index: e.idx,
                    entry: e.entry,
                },
                proof,
            ));
        }
        let mut also_proven = Vec::with_capacity(older.len());
        for e in older {
            let proof = tree::inclusion_proof(e.index, size, &self.nodes).map_err(core)?;
            also_proven.push((e, proof));
        }
        let mut consistency = HashMap::with_capacity(froms.len());
        for f in froms {
            let proof = tree::consistency_proof(f, size, &self.nodes).map_err(core)?;
            consistency.insert(f, proof);
        }
        Ok(LogCommit {
            size,
            note,
            proven,
            also_proven,
            consistency,
        })
    }
}

/// A care-team change the HTTP layer checked (its signature, its signer, the replay of the
/// team's chain with it, PROTOCOL.md §12.4), ready to append.
#[derive(Debug, Clone)]
pub(crate) struct NewTeamChange<'a> {
    /// The team name.
    pub(crate) team: &'a str,
    /// The signed change (the log entry's payload).
    pub(crate) change: &'a [u8],
    /// The signing device, hex.
    pub(crate) signer_device: KeyId,
    /// The index of the chain's head the replay ended at; `None` for a creation.
    pub(crate) expected_head: Option<u64>,
    /// The tree size the replay read the chain and the key histories at.
    pub(crate) replayed_at: u64,
    /// The handles whose key histories (kinds 1–3) the replay read: the change is refused
    /// ([`crate::store::StoreError::Conflict`]) if any of them gained an entry at or after
    /// `replayed_at`, checked under the log lock that appends it (THREAT_MODEL.md, F7).
    pub(crate) handles: Vec<String>,
    /// The epoch after the change.
    pub(crate) epoch: u32,
    /// Its epoch id, hex.
    pub(crate) epoch_id: String,
    /// The members after the change: (handle, admin).
    pub(crate) members: Vec<(String, bool)>,
    /// The team key wraps to store: (epoch, recipient device hex, bytes).
    pub(crate) key_wraps: Vec<(u32, String, Vec<u8>)>,
    /// Server time, seconds since the Unix epoch.
    pub(crate) now: u64,
}

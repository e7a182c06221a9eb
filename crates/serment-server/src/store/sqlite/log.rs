//! The transparency log in SQLite (PROTOCOL.md §11): appends inside the caller's transaction,
//! a signed checkpoint per write transaction, and proof reads.

use std::collections::HashMap;

use serment_core::log::entry::{EntryKind, PrevLink, Subject, encode_entry};
use serment_core::log::note::{Checkpoint, NoteSignature, NoteSigner, SignedCheckpoint};
use serment_core::log::tree::{self, Hash, NodeId, Recorder};
use sqlx::{QueryBuilder, Row as _, Sqlite, SqliteConnection, Transaction};

use super::{Db, to_i64, to_u64};
use crate::store::{LogRead, StoreError};

/// The text key of a subject: `h:<handle>` or `d:<doc id hex>`.
pub(crate) fn subject_key(s: &Subject) -> String {
    match s {
        Subject::Handle(h) => format!("h:{h}"),
        Subject::Document(d) => format!("d:{d}"),
    }
}

fn core(e: serment_core::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn hash32(v: Vec<u8>) -> Result<Hash, StoreError> {
    Hash::try_from(v.as_slice())
        .map_err(|_| StoreError::Backend("stored hash is not 32 bytes".into()))
}

async fn read_nodes(
    conn: &mut SqliteConnection,
    nodes: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(nodes.len());
    for part in nodes.chunks(INSERT_ROWS) {
        let keys = part
            .iter()
            .map(|n| Ok((i64::from(n.level), to_i64(n.index)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // One statement for the whole set (row values, SQLite 3.15+ and PostgreSQL).
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT level, idx, hash FROM log_nodes WHERE (level, idx) IN (VALUES ",
        );
        let mut sep = q.separated(", ");
        for (level, idx) in &keys {
            sep.push("(")
                .push_bind_unseparated(*level)
                .push_unseparated(", ")
                .push_bind_unseparated(*idx)
                .push_unseparated(")");
        }
        q.push(")");
        for r in q.build().fetch_all(&mut *conn).await? {
            let level: i64 = r.try_get("level")?;
            let node = NodeId {
                level: u8::try_from(level).map_err(super::backend)?,
                index: to_u64(r.try_get("idx")?)?,
            };
            out.insert(node, hash32(r.try_get("hash")?)?);
        }
    }
    Ok(out)
}

async fn size_of(conn: &mut SqliteConnection) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries")
        .fetch_one(&mut *conn)
        .await?;
    to_u64(n)
}

/// Rows per multi-row `INSERT` (SQLite allows 32 766 bound parameters; entries bind 7 each).
const INSERT_ROWS: usize = 500;

/// One entry appended in memory, inserted by [`LogAppender::finish`].
struct PendingEntry {
    idx: u64,
    kind: u8,
    subject: String,
    device_id: Option<String>,
    entry: Vec<u8>,
    leaf: Hash,
    logged_at: u64,
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
}

/// Appends entries inside one write transaction (PROTOCOL.md §11.2–§11.4).
///
/// [`LogAppender::begin`] reads the tree size and its frontier (the at most 64 complete subtrees
/// the size decomposes into: every node an append or the new root needs) in two statements;
/// [`LogAppender::append`] links each entry to its subject's previous one and computes the new
/// nodes in memory; [`LogAppender::finish`] writes the entries and nodes in multi-row inserts,
/// then signs and stores the checkpoint of the new size. Because the caller holds the write
/// transaction (`BEGIN IMMEDIATE`), no other writer can move the tree in between.
pub(crate) struct LogAppender {
    size: u64,
    nodes: HashMap<NodeId, Hash>,
    new_nodes: Vec<(NodeId, Hash)>,
    heads: HashMap<String, Option<PrevLink>>,
    pending: Vec<PendingEntry>,
}

impl LogAppender {
    /// Starts appending inside `tx`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database fails or a frontier node is missing.
    pub(crate) async fn begin(
        tx: &mut Transaction<'static, Sqlite>,
    ) -> Result<LogAppender, StoreError> {
        let size = size_of(tx).await?;
        let need = Recorder::nodes(|r| tree::root(size, r)).map_err(core)?;
        let nodes = read_nodes(tx, &need).await?;
        Ok(LogAppender {
            size,
            nodes,
            new_nodes: Vec::new(),
            heads: HashMap::new(),
            pending: Vec::new(),
        })
    }

    /// Reads the chain heads (latest entry) of `subjects` from the log itself, in one statement
    /// per 500 subjects, so that [`LogAppender::append`] need not look them up one by one. A
    /// subject with no entry gets none (its first entry has no back link).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database fails.
    pub(crate) async fn load_heads(
        &mut self,
        tx: &mut Transaction<'static, Sqlite>,
        subjects: &[Subject],
    ) -> Result<(), StoreError> {
        let mut keys: Vec<String> = subjects
            .iter()
            .map(subject_key)
            .filter(|k| !self.heads.contains_key(k))
            .collect();
        keys.sort();
        keys.dedup();
        for part in keys.chunks(INSERT_ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT e.subject, e.idx, e.leaf_hash FROM log_entries e WHERE e.idx = \
                 (SELECT MAX(f.idx) FROM log_entries f WHERE f.subject = e.subject) \
                 AND e.subject IN (",
            );
            let mut sep = q.separated(", ");
            for k in part {
                sep.push_bind(k.as_str());
            }
            q.push(")");
            for r in q.build().fetch_all(&mut **tx).await? {
                self.heads.insert(
                    r.try_get("subject")?,
                    Some(PrevLink {
                        index: to_u64(r.try_get("idx")?)?,
                        leaf_hash: hash32(r.try_get("leaf_hash")?)?,
                    }),
                );
            }
            for k in part {
                self.heads.entry(k.clone()).or_insert(None);
            }
        }
        Ok(())
    }

    /// Appends one entry: links it to the previous entry of its subject and computes the tree
    /// nodes it completes. Returns its index.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database fails, the tree is full or the payload is too
    /// long for an entry.
    pub(crate) async fn append(
        &mut self,
        tx: &mut Transaction<'static, Sqlite>,
        kind: EntryKind,
        subject: &Subject,
        device_id: Option<&str>,
        payload: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let key = subject_key(subject);
        let prev = match self.heads.get(&key) {
            Some(p) => *p,
            None => {
                let row = sqlx::query(
                    "SELECT idx, leaf_hash FROM log_entries WHERE subject = ? \
                     ORDER BY idx DESC LIMIT 1",
                )
                .bind(&key)
                .fetch_optional(&mut **tx)
                .await?;
                match row {
                    Some(r) => Some(PrevLink {
                        index: to_u64(r.try_get("idx")?)?,
                        leaf_hash: hash32(r.try_get("leaf_hash")?)?,
                    }),
                    None => None,
                }
            }
        };
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

    /// Writes the appended entries and nodes, then signs and stores the checkpoint of the new
    /// size (one per write transaction, §11.4; stored even when nothing was appended, so that
    /// startup can make sure the latest size has one). Returns that checkpoint's note and each
    /// appended entry with its inclusion proof against it (RFC 9162 §2.1.3), so that a writer
    /// can check its own writes without another request; and the same for the older entries
    /// `also` (in that order).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database fails or the note cannot be signed.
    pub(crate) async fn finish(
        mut self,
        tx: &mut Transaction<'static, Sqlite>,
        signer: &NoteSigner,
        also: &[u64],
    ) -> Result<LogCommit, StoreError> {
        let nodes = self
            .new_nodes
            .iter()
            .map(|(n, h)| Ok((i64::from(n.level), to_i64(n.index)?, h.to_vec())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for rows in nodes.chunks(INSERT_ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO log_nodes (level, idx, hash) ");
            q.push_values(rows, |mut b, (level, idx, hash)| {
                b.push_bind(*level)
                    .push_bind(*idx)
                    .push_bind(hash.as_slice());
            });
            q.build().execute(&mut **tx).await?;
        }
        let entries = self
            .pending
            .iter()
            .map(|e| Ok((to_i64(e.idx)?, to_i64(e.logged_at)?, e)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for rows in entries.chunks(INSERT_ROWS) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO log_entries (idx, kind, subject, device_id, entry, leaf_hash, \
                 logged_at) ",
            );
            q.push_values(rows, |mut b, (idx, at, e)| {
                b.push_bind(*idx)
                    .push_bind(i64::from(e.kind))
                    .push_bind(e.subject.as_str())
                    .push_bind(e.device_id.as_deref())
                    .push_bind(e.entry.as_slice())
                    .push_bind(e.leaf.as_slice())
                    .push_bind(*at);
            });
            q.build().execute(&mut **tx).await?;
        }
        let root = tree::root(self.size, &self.nodes).map_err(core)?;
        let note = signer
            .sign_checkpoint(&Checkpoint {
                origin: signer.name().to_owned(),
                size: self.size,
                root,
            })
            .and_then(|s| s.encode())
            .map_err(core)?;
        sqlx::query(
            "INSERT INTO log_checkpoints (size, note) VALUES (?, ?) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(self.size)?)
        .bind(&note)
        .execute(&mut **tx)
        .await?;
        // The new leaves' proofs read the old frontier and the new nodes, all in memory; older
        // leaves' proofs (and any other node) read the rest from the transaction.
        let size = self.size;
        let mut older = Vec::with_capacity(also.len());
        for idx in also {
            let entry: Vec<u8> = sqlx::query_scalar("SELECT entry FROM log_entries WHERE idx = ?")
                .bind(to_i64(*idx)?)
                .fetch_one(&mut **tx)
                .await?;
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
        need.retain(|n| !self.nodes.contains_key(n));
        if !need.is_empty() {
            let more = read_nodes(tx, &need).await?;
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
        Ok(LogCommit {
            size,
            note,
            proven,
            also_proven,
        })
    }
}

impl Db {
    /// Makes sure the checkpoint of the current size exists (at startup).
    pub(crate) async fn log_init(&self, signer: &NoteSigner) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        LogAppender::begin(&mut tx)
            .await?
            .finish(&mut tx, signer, &[])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The number of entries.
    pub(crate) async fn log_size(&self) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        size_of(&mut conn).await
    }

    /// The checkpoint note of `size` (default: the latest), with its cosignature lines.
    pub(crate) async fn log_note(&self, size: Option<u64>) -> Result<Option<String>, StoreError> {
        let row = match size {
            Some(s) => {
                sqlx::query("SELECT size, note FROM log_checkpoints WHERE size = ?")
                    .bind(to_i64(s)?)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        let Some(row) = row else {
            return Ok(None);
        };
        let size: i64 = row.try_get("size")?;
        let note: String = row.try_get("note")?;
        // Witnesses seen earliest (at any size) first; the note never exceeds what a client's
        // parser accepts, and no line can replace or shadow the log's own signature.
        let lines: Vec<String> = sqlx::query_scalar(
            "SELECT c.line FROM log_cosignatures c WHERE c.size = ? ORDER BY \
             (SELECT MIN(f.rowid) FROM log_cosignatures f \
              WHERE f.witness = c.witness AND f.key_id = c.key_id), c.rowid",
        )
        .bind(size)
        .fetch_all(&self.pool)
        .await?;
        let mut signed = SignedCheckpoint::parse(&note).map_err(core)?;
        for l in lines {
            if let Ok(sig) = NoteSignature::parse_line(&l) {
                signed.push_cosignature(sig);
            }
        }
        signed.encode().map(Some).map_err(core)
    }

    /// The number of cosignature lines stored for the checkpoint of `size`.
    pub(crate) async fn log_cosignature_count(&self, size: u64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_cosignatures WHERE size = ?")
            .bind(to_i64(size)?)
            .fetch_one(&self.pool)
            .await?;
        to_u64(n)
    }

    /// Stores a witness's cosignature line for the checkpoint of `size`, keyed by witness name
    /// and key id; a line already stored for that pair is kept (never overwritten).
    pub(crate) async fn log_add_cosignature(
        &self,
        size: u64,
        witness: &str,
        key_id: u32,
        line: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO log_cosignatures (size, witness, key_id, line) VALUES (?, ?, ?, ?) \
             ON CONFLICT (size, witness, key_id) DO NOTHING",
        )
        .bind(to_i64(size)?)
        .bind(witness)
        .bind(i64::from(key_id))
        .bind(line)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn nodes_for(&self, need: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_nodes(&mut conn, need).await
    }

    /// The inclusion proof of `index` in the tree of `size` entries.
    pub(crate) async fn log_inclusion(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let need = Recorder::nodes(|r| tree::inclusion_proof(index, size, r)).map_err(core)?;
        let have = self.nodes_for(&need).await?;
        tree::inclusion_proof(index, size, &have).map_err(core)
    }

    /// The consistency proof from `old` to `new` entries.
    pub(crate) async fn log_consistency(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        let need = Recorder::nodes(|r| tree::consistency_proof(old, new, r)).map_err(core)?;
        let have = self.nodes_for(&need).await?;
        tree::consistency_proof(old, new, &have).map_err(core)
    }

    /// Entries `[start, end)`.
    pub(crate) async fn log_entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT entry FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
        )
        .bind(to_i64(start)?)
        .bind(to_i64(end)?)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every entry of a subject below `size`, oldest first, as `(index, entry)`.
    pub(crate) async fn log_subject(
        &self,
        subject: &Subject,
        size: u64,
    ) -> Result<Vec<LogRead>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, entry FROM log_entries WHERE subject = ? AND idx < ? ORDER BY idx",
        )
        .bind(subject_key(subject))
        .bind(to_i64(size)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogRead {
                    index: to_u64(r.try_get("idx")?)?,
                    entry: r.try_get("entry")?,
                })
            })
            .collect()
    }

    /// The newest device-record entry of `device_id` below `size`.
    pub(crate) async fn log_device_record(
        &self,
        device_id: &str,
        size: u64,
    ) -> Result<Option<LogRead>, StoreError> {
        let row = sqlx::query(
            "SELECT idx, entry FROM log_entries WHERE kind = ? AND device_id = ? AND idx < ? \
             ORDER BY idx DESC LIMIT 1",
        )
        .bind(i64::from(EntryKind::Device as u8))
        .bind(device_id)
        .bind(to_i64(size)?)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LogRead {
                index: to_u64(r.try_get("idx")?)?,
                entry: r.try_get("entry")?,
            })
        })
        .transpose()
    }

    /// One entry.
    pub(crate) async fn log_entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT entry FROM log_entries WHERE idx = ?")
                .bind(to_i64(index)?)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records a receipt nonce; [`StoreError::Conflict`] if the device used it before.
    pub(crate) async fn use_nonce(
        tx: &mut Transaction<'static, Sqlite>,
        device_id: &str,
        nonce: &[u8; 16],
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO access_nonces (device_id, nonce) VALUES (?, ?)")
            .bind(device_id)
            .bind(hex::encode(nonce))
            .execute(&mut **tx)
            .await
            .map_err(|e| super::conflict_on_unique(e, "this access receipt was already used"))?;
        Ok(())
    }
}

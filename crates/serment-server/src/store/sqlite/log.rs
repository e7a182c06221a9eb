//! The transparency log in SQLite (PROTOCOL.md §11): appends inside the caller's transaction,
//! a signed checkpoint per write transaction, and proof reads.

use std::collections::HashMap;

use serment_core::log::entry::{EntryKind, PrevLink, Subject, encode_entry};
use serment_core::log::note::{Checkpoint, NoteSignature, NoteSigner, SignedCheckpoint};
use serment_core::log::tree::{self, Hash, NodeId, Recorder};
use sqlx::{Row as _, Sqlite, SqliteConnection, Transaction};

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
    for n in nodes {
        let h: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT hash FROM log_nodes WHERE level = ? AND idx = ?")
                .bind(i64::from(n.level))
                .bind(to_i64(n.index)?)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(h) = h {
            out.insert(*n, hash32(h)?);
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

impl Db {
    /// Appends one entry inside `tx`: links it to the previous entry of its subject, stores it and
    /// the tree nodes it completes. Returns its index.
    pub(crate) async fn log_append(
        tx: &mut Transaction<'static, Sqlite>,
        kind: EntryKind,
        subject: &Subject,
        device_id: Option<&str>,
        payload: &[u8],
        now: u64,
    ) -> Result<u64, StoreError> {
        let n = size_of(tx).await?;
        let key = subject_key(subject);
        let prev = sqlx::query(
            "SELECT idx, leaf_hash FROM log_entries WHERE subject = ? ORDER BY idx DESC LIMIT 1",
        )
        .bind(&key)
        .fetch_optional(&mut **tx)
        .await?;
        let prev = match prev {
            Some(r) => Some(PrevLink {
                index: to_u64(r.try_get("idx")?)?,
                leaf_hash: hash32(r.try_get("leaf_hash")?)?,
            }),
            None => None,
        };
        let entry = encode_entry(kind, now, prev, payload).map_err(core)?;
        let leaf = tree::leaf_hash(&entry);
        let need = Recorder::nodes(|r| tree::append(n, leaf, r)).map_err(core)?;
        let have = read_nodes(tx, &need).await?;
        for (node, hash) in tree::append(n, leaf, &have).map_err(core)? {
            sqlx::query("INSERT INTO log_nodes (level, idx, hash) VALUES (?, ?, ?)")
                .bind(i64::from(node.level))
                .bind(to_i64(node.index)?)
                .bind(hash.as_slice())
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO log_entries (idx, kind, subject, device_id, entry, leaf_hash, logged_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(to_i64(n)?)
        .bind(i64::from(kind as u8))
        .bind(&key)
        .bind(device_id)
        .bind(&entry)
        .bind(leaf.as_slice())
        .bind(to_i64(now)?)
        .execute(&mut **tx)
        .await?;
        Ok(n)
    }

    /// Signs and stores the checkpoint of the current size inside `tx` (one per write
    /// transaction, PROTOCOL.md §11.4).
    pub(crate) async fn log_checkpoint(
        tx: &mut Transaction<'static, Sqlite>,
        signer: &NoteSigner,
    ) -> Result<(), StoreError> {
        let n = size_of(tx).await?;
        let need = Recorder::nodes(|r| tree::root(n, r)).map_err(core)?;
        let have = read_nodes(tx, &need).await?;
        let root = tree::root(n, &have).map_err(core)?;
        let note = signer
            .sign_checkpoint(&Checkpoint {
                origin: signer.name().to_owned(),
                size: n,
                root,
            })
            .and_then(|s| s.encode())
            .map_err(core)?;
        sqlx::query(
            "INSERT INTO log_checkpoints (size, note) VALUES (?, ?) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(n)?)
        .bind(note)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Makes sure the checkpoint of the current size exists (at startup).
    pub(crate) async fn log_init(&self, signer: &NoteSigner) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        Self::log_checkpoint(&mut tx, signer).await?;
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

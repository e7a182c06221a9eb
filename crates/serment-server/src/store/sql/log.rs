//! The transparency log's rows (PROTOCOL.md §11), written once for every SQL backend: the
//! [`LogTx`] the log service appends through, and the reads the HTTP layer serves.
//!
//! Included by each backend module (`#[path]`): `super` is the backend, whose `DB` names the
//! sqlx database. SQL uses `$N` placeholders (PostgreSQL's, also understood by SQLite).

use std::collections::HashMap;

use serment_core::KeyId;
use serment_core::log::entry::{EntryKind, PrevLink, Subject};
use serment_core::log::note::{NoteSignature, NoteSigner, SignedCheckpoint};
use serment_core::log::tree::{self, Hash, NodeId, Recorder};
use sqlx::{AssertSqlSafe, QueryBuilder, Row as _};

use super::{ARRIVAL_ORDER, DB, Db, Tx, to_i64, to_u64};
use crate::store::log_service::{LogAppender, LogTx, PendingEntry, core, subject_key};
use crate::store::{LogRead, LogStore, StoreError};

type Conn = <DB as sqlx::Database>::Connection;

fn hash32(v: Vec<u8>) -> Result<Hash, StoreError> {
    Hash::try_from(v.as_slice())
        .map_err(|_| StoreError::Backend("stored hash is not 32 bytes".into()))
}

/// Rows per multi-row `INSERT` (SQLite allows 32 766 bound parameters, PostgreSQL 65 535;
/// entries bind 7 each).
const INSERT_ROWS: usize = 500;

async fn read_nodes(
    conn: &mut Conn,
    nodes: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let mut out = HashMap::with_capacity(nodes.len());
    for part in nodes.chunks(INSERT_ROWS) {
        let keys = part
            .iter()
            .map(|n| Ok((i64::from(n.level), to_i64(n.index)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // One statement for the whole set (row values, SQLite 3.15+ and PostgreSQL).
        let mut q = QueryBuilder::<DB>::new(
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

async fn size_of(conn: &mut Conn) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries")
        .fetch_one(&mut *conn)
        .await?;
    to_u64(n)
}

// Every lifetime, not only the `'static` of [`Tx`]: the futures must be `Send` for all of them.
impl LogTx for sqlx::Transaction<'_, DB> {
    async fn log_size(&mut self) -> Result<u64, StoreError> {
        size_of(self).await
    }

    async fn read_nodes(&mut self, nodes: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        read_nodes(self, nodes).await
    }

    async fn chain_heads(
        &mut self,
        subjects: &[String],
    ) -> Result<HashMap<String, PrevLink>, StoreError> {
        let mut out = HashMap::with_capacity(subjects.len());
        for part in subjects.chunks(INSERT_ROWS) {
            let mut q = QueryBuilder::<DB>::new(
                "SELECT e.subject, e.idx, e.leaf_hash FROM log_entries e WHERE e.idx = \
                 (SELECT MAX(f.idx) FROM log_entries f WHERE f.subject = e.subject) \
                 AND e.subject IN (",
            );
            let mut sep = q.separated(", ");
            for k in part {
                sep.push_bind(k.as_str());
            }
            q.push(")");
            for r in q.build().fetch_all(&mut **self).await? {
                out.insert(
                    r.try_get("subject")?,
                    PrevLink {
                        index: to_u64(r.try_get("idx")?)?,
                        leaf_hash: hash32(r.try_get("leaf_hash")?)?,
                    },
                );
            }
        }
        Ok(out)
    }

    async fn insert_nodes(&mut self, nodes: &[(NodeId, Hash)]) -> Result<(), StoreError> {
        let nodes = nodes
            .iter()
            .map(|(n, h)| Ok((i64::from(n.level), to_i64(n.index)?, h.to_vec())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for rows in nodes.chunks(INSERT_ROWS) {
            let mut q = QueryBuilder::<DB>::new("INSERT INTO log_nodes (level, idx, hash) ");
            q.push_values(rows, |mut b, (level, idx, hash)| {
                b.push_bind(*level)
                    .push_bind(*idx)
                    .push_bind(hash.as_slice());
            });
            q.build().execute(&mut **self).await?;
        }
        Ok(())
    }

    async fn insert_entries(&mut self, entries: &[PendingEntry]) -> Result<(), StoreError> {
        let entries = entries
            .iter()
            .map(|e| Ok((to_i64(e.idx)?, to_i64(e.logged_at)?, e)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        for rows in entries.chunks(INSERT_ROWS) {
            let mut q = QueryBuilder::<DB>::new(
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
            q.build().execute(&mut **self).await?;
        }
        Ok(())
    }

    async fn entry_at(&mut self, idx: u64) -> Result<Vec<u8>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT entry FROM log_entries WHERE idx = $1")
                .bind(to_i64(idx)?)
                .fetch_one(&mut **self)
                .await?,
        )
    }

    async fn publish_checkpoint(
        &mut self,
        previous: u64,
        size: u64,
        root: &Hash,
        note: &str,
    ) -> Result<(), StoreError> {
        // The compare-and-swap: the head moves from `previous` to `size` only if nobody moved it
        // since this transaction read the tree (or it already is this very tree).
        let moved = sqlx::query(
            "UPDATE log_head SET size = $1, root = $2 WHERE id = 1 AND \
             (size = $3 OR (size = $1 AND root = $2))",
        )
        .bind(to_i64(size)?)
        .bind(root.as_slice())
        .bind(to_i64(previous)?)
        .execute(&mut **self)
        .await?
        .rows_affected();
        if moved != 1 {
            return Err(StoreError::Conflict(
                "another writer published a checkpoint meanwhile: re-read the tree",
            ));
        }
        sqlx::query(
            "INSERT INTO log_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(size)?)
        .bind(note)
        .execute(&mut **self)
        .await?;
        Ok(())
    }
}

impl Db {
    /// At startup: binds the database to the log key's origin (refusing another key's), and
    /// makes sure the checkpoint of the current size exists.
    pub(crate) async fn log_init(&self, signer: &NoteSigner) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE log_head SET origin = $1 WHERE id = 1 AND origin IS NULL")
            .bind(signer.name())
            .execute(&mut *tx)
            .await?;
        let origin: Option<String> = sqlx::query_scalar("SELECT origin FROM log_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        if origin.as_deref() != Some(signer.name()) {
            return Err(StoreError::Backend(
                format!(
                    "this database's log is {}, but this instance's log key is {}: give every \
                     instance sharing a database the same log key (SERMENT_LOG_KEY or log.key)",
                    origin.unwrap_or_default(),
                    signer.name()
                )
                .into(),
            ));
        }
        LogAppender::begin(&mut tx)
            .await?
            .finish(&mut tx, signer, &[])
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn nodes_for(&self, need: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_nodes(&mut conn, need).await
    }

    /// Records a receipt nonce; [`StoreError::Conflict`] if the device used it before.
    pub(crate) async fn use_nonce(
        tx: &mut Tx,
        device_id: &str,
        nonce: &[u8; 16],
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO access_nonces (device_id, nonce) VALUES ($1, $2)")
            .bind(device_id)
            .bind(hex::encode(nonce))
            .execute(&mut **tx)
            .await
            .map_err(|e| super::conflict_on_unique(e, "this access receipt was already used"))?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl LogStore for Db {
    fn log_signer(&self) -> &NoteSigner {
        &self.log
    }

    /// The number of entries.
    async fn log_size(&self) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        size_of(&mut conn).await
    }

    /// The checkpoint note of `size` (default: the latest), with its cosignature lines.
    async fn log_note(&self, size: Option<u64>) -> Result<Option<String>, StoreError> {
        let row = match size {
            Some(s) => {
                sqlx::query("SELECT size, note FROM log_checkpoints WHERE size = $1")
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
        let sql = format!(
            "SELECT c.line FROM log_cosignatures c WHERE c.size = $1 ORDER BY \
             (SELECT MIN(f.{ARRIVAL_ORDER}) FROM log_cosignatures f \
              WHERE f.witness = c.witness AND f.key_id = c.key_id), c.{ARRIVAL_ORDER}",
        );
        let lines: Vec<String> = // The only interpolation is ARRIVAL_ORDER, a constant column expression.
            sqlx::query_scalar(AssertSqlSafe(sql))
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

    async fn log_loss_statements(&self) -> Result<Vec<String>, StoreError> {
        let mut newest: Vec<String> =
            sqlx::query_scalar("SELECT statement FROM loss_statements ORDER BY seq DESC LIMIT 64")
                .fetch_all(&self.pool)
                .await?;
        newest.reverse();
        Ok(newest)
    }

    /// The number of cosignature lines stored for the checkpoint of `size`.
    async fn log_cosignature_count(&self, size: u64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM log_cosignatures WHERE size = $1")
            .bind(to_i64(size)?)
            .fetch_one(&self.pool)
            .await?;
        to_u64(n)
    }

    /// Stores a witness's cosignature line for the checkpoint of `size`, keyed by witness name
    /// and key id; a line already stored for that pair is kept (never overwritten).
    async fn log_add_cosignature(
        &self,
        size: u64,
        witness: &str,
        key_id: u32,
        line: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO log_cosignatures (size, witness, key_id, line) VALUES ($1, $2, $3, $4) \
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

    /// The inclusion proof of `index` in the tree of `size` entries.
    async fn log_inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        let need = Recorder::nodes(|r| tree::inclusion_proof(index, size, r)).map_err(core)?;
        let have = self.nodes_for(&need).await?;
        tree::inclusion_proof(index, size, &have).map_err(core)
    }

    /// The consistency proof from `old` to `new` entries.
    async fn log_consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        let need = Recorder::nodes(|r| tree::consistency_proof(old, new, r)).map_err(core)?;
        let have = self.nodes_for(&need).await?;
        tree::consistency_proof(old, new, &have).map_err(core)
    }

    /// Entries `[start, end)`.
    async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT entry FROM log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        )
        .bind(to_i64(start)?)
        .bind(to_i64(end)?)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every entry of a subject below `size`, oldest first, as `(index, entry)`.
    async fn log_subject(&self, subject: &Subject, size: u64) -> Result<Vec<LogRead>, StoreError> {
        let rows = sqlx::query(
            "SELECT idx, entry FROM log_entries WHERE subject = $1 AND idx < $2 ORDER BY idx",
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
    async fn log_device_record(
        &self,
        device_id: &KeyId,
        size: u64,
    ) -> Result<Option<LogRead>, StoreError> {
        let device_id = device_id.to_string();
        let device_id = device_id.as_str();
        let row = sqlx::query(
            "SELECT idx, entry FROM log_entries WHERE kind = $1 AND device_id = $2 AND idx < $3 \
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

    async fn log_web_bundle(
        &self,
        bundle_hash: &[u8; 32],
        server_version: &str,
        now: u64,
    ) -> Result<(u64, bool), StoreError> {
        let mut tx = self.begin().await?;
        let key = subject_key(&Subject::WebBundle);
        let head = tx.chain_heads(std::slice::from_ref(&key)).await?;
        if let Some(h) = head.get(&key) {
            let bytes = tx.entry_at(h.index).await?;
            let e = serment_core::log::entry::LogEntry::decode(&bytes).map_err(core)?;
            if let serment_core::log::entry::Payload::Bundle(b) = e.payload
                && b.bundle_hash == *bundle_hash
            {
                return Ok((h.index, false));
            }
        }
        let payload = serment_core::log::bundle::WebBundle::sign(
            self.log.signing_key(),
            bundle_hash,
            server_version,
        )
        .map_err(core)?;
        let mut log = LogAppender::begin(&mut tx).await?;
        let idx = log
            .append(
                &mut tx,
                EntryKind::Bundle,
                &Subject::WebBundle,
                None,
                &payload,
                now,
            )
            .await?;
        log.finish(&mut tx, &self.log, &[]).await?;
        tx.commit().await?;
        Ok((idx, true))
    }

    /// One entry.
    async fn log_entry(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT entry FROM log_entries WHERE idx = $1")
                .bind(to_i64(index)?)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

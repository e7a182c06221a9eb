//! Document commits in batches (PROTOCOL.md §8.3, §11.3), written once for every SQL backend
//! (included by each backend module; `super` is the backend): the [`BatchWriter`] behind the
//! backend-neutral batcher ([`crate::store::batcher`]).
//!
//! A batch checks all its jobs against the database with one query (an `IN` list per table,
//! joined by `UNION ALL`), decides each job on its own, appends the wrap entries of the
//! accepted jobs in memory ([`LogAppender`]) and writes everything with multi-row inserts:
//! about ten statements however many jobs it holds. The transaction holds the backend's log lock ([`Db::begin_on`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serment_core::log::entry::{EntryKind, Subject};
use serment_core::log::note::NoteSigner;
use serment_core::log::tree::Hash;
use sqlx::{QueryBuilder, Row as _};

use super::{DB, Db, Pool, Tx, conflict_on_unique, to_i64, to_u32, to_u64};
use crate::store::batcher::{BatchResult, BatchWriter, Verdict, same_commit};
use crate::store::log_service::LogAppender;
use crate::store::{CommitJob, JobCommit, LogRead, StoreError};

/// Ids bound per `IN (...)` list (SQLite allows 32 766 parameters per statement).
const IN_CHUNK: usize = 500;

/// The backend's [`BatchWriter`]: its write pool and the log key.
#[derive(Clone)]
pub(super) struct SqlBatch {
    pub(super) writer: Pool,
    pub(super) signer: Arc<NoteSigner>,
}

impl BatchWriter for SqlBatch {
    async fn write_batch(&self, jobs: &[CommitJob]) -> BatchResult {
        commit_batch(&self.writer, &self.signer, jobs).await
    }
}

/// Reads `SELECT <cols> FROM <table> WHERE <col> IN (ids)` in chunks.
async fn select_in(
    tx: &mut Tx,
    head: &str,
    ids: &[String],
) -> Result<Vec<<DB as sqlx::Database>::Row>, StoreError> {
    let mut out = Vec::new();
    for part in ids.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<DB>::new(head);
        q.push(" IN (");
        let mut sep = q.separated(", ");
        for id in part {
            sep.push_bind(id.as_str());
        }
        q.push(")");
        out.extend(q.build().fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// [`CHECKS`] tags.
const STORED_VERSION: i64 = 0;
const TOMBSTONE: i64 = 1;
const KNOWN_DEVICE: i64 = 2;

/// What a batch reads before deciding its jobs, each a `SELECT … WHERE <col>` completed with
/// ` IN (ids)` and yielding `(t, a, b, c)`: its tag, a text, an integer and a nullable text.
/// Typed casts, so that the `UNION ALL` of any subset has one type per column on every backend.
const CHECKS: [&str; 4] = [
    // The stored versions of the batch's documents, and their owners.
    "SELECT CAST(0 AS BIGINT) AS t, doc_id AS a, CAST(doc_version AS BIGINT) AS b, \
     author_identity AS c FROM documents WHERE doc_id",
    // Their tombstones.
    "SELECT CAST(1 AS BIGINT) AS t, subject AS a, CAST(0 AS BIGINT) AS b, CAST(NULL AS TEXT) AS c \
     FROM log_entries WHERE kind = 9 AND subject",
    // The recipients that are registered devices.
    "SELECT CAST(2 AS BIGINT) AS t, device_id AS a, CAST(0 AS BIGINT) AS b, \
     CAST(NULL AS TEXT) AS c FROM devices WHERE device_id",
    // The blobs referenced, and whether the collector is deleting them.
    "SELECT CAST(3 AS BIGINT) AS t, blob_id AS a, CAST(deleting AS BIGINT) AS b, \
     CAST(NULL AS TEXT) AS c FROM blobs WHERE blob_id",
];

/// Reads [`CHECKS`] for the ids of `lists` (one list per check), as one `UNION ALL` statement
/// per round of [`IN_CHUNK`] ids of each list (one round for any batch of ordinary size),
/// instead of one statement per check: each is a round trip to the database (on SQLite, to
/// the connection's thread and back).
async fn read_checks(
    tx: &mut Tx,
    lists: [&[String]; 4],
) -> Result<Vec<(i64, String, i64, Option<String>)>, StoreError> {
    let rounds = lists
        .iter()
        .map(|l| l.len().div_ceil(IN_CHUNK))
        .max()
        .unwrap_or(0);
    let mut out = Vec::new();
    for round in 0..rounds {
        let mut q = QueryBuilder::<DB>::new("");
        let mut first = true;
        for (head, list) in CHECKS.iter().zip(lists) {
            let Some(part) = list.chunks(IN_CHUNK).nth(round) else {
                continue;
            };
            if !first {
                q.push(" UNION ALL ");
            }
            first = false;
            q.push(*head);
            q.push(" IN (");
            let mut sep = q.separated(", ");
            for id in part {
                sep.push_bind(id.as_str());
            }
            q.push(")");
        }
        for r in q.build().fetch_all(&mut **tx).await? {
            out.push((
                r.try_get("t")?,
                r.try_get("a")?,
                r.try_get("b")?,
                r.try_get("c")?,
            ));
        }
    }
    Ok(out)
}

/// Commits `jobs` in one transaction. The outer error fails the whole batch (nothing written);
/// the inner ones are each job's own refusal.
async fn commit_batch(writer: &Pool, signer: &NoteSigner, jobs: &[CommitJob]) -> BatchResult {
    let mut tx = Db::begin_on(writer).await?;

    // What the database already holds about these documents, recipients and blobs, in one
    // statement (per round of `IN` chunks).
    let mut doc_ids: Vec<String> = jobs.iter().map(|j| j.doc_id.to_string()).collect();
    doc_ids.sort();
    doc_ids.dedup();
    let subjects: Vec<String> = doc_ids.iter().map(|d| format!("d:{d}")).collect();
    let mut recipients: Vec<String> = jobs
        .iter()
        .flat_map(|j| j.wraps.iter().map(|w| w.recipient.to_string()))
        .collect();
    recipients.sort();
    recipients.dedup();
    let mut blob_ids: Vec<String> = jobs.iter().map(|j| j.blob_id.to_string()).collect();
    blob_ids.sort();
    blob_ids.dedup();
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut versions: HashSet<(String, u32)> = HashSet::new();
    let mut erased: HashSet<String> = HashSet::new();
    let mut known: HashSet<String> = HashSet::new();
    let mut deleting: HashMap<String, bool> = HashMap::new();
    let lists = [&doc_ids[..], &subjects[..], &recipients[..], &blob_ids[..]];
    for (check, a, b, c) in read_checks(&mut tx, lists).await? {
        match check {
            STORED_VERSION => {
                versions.insert((a.clone(), to_u32(b)?));
                let owner =
                    c.ok_or_else(|| StoreError::Backend("a version without author".into()))?;
                owners.insert(a, owner);
            }
            // Erased documents (PROTOCOL.md §11.3.2): their tombstone is appended under the
            // same log lock, so no version can follow it.
            TOMBSTONE => erased.extend(a.strip_prefix("d:").map(str::to_owned)),
            KNOWN_DEVICE => {
                known.insert(a);
            }
            // Whether the collector is deleting the blob (its tombstone is set under the same
            // log lock, so this read cannot miss one).
            _ => {
                deleting.insert(a, b != 0);
            }
        }
    }

    // Each job decided in order, as if committed one after the other.
    let mut decided: Vec<Result<Verdict, StoreError>> = Vec::with_capacity(jobs.len());
    let stored_versions = versions.clone();
    // Which job of this batch wrote each (document, version).
    let mut writer_of: HashMap<(String, u32), usize> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        let doc = j.doc_id.to_string();
        let verdict = match owners.get(&doc) {
            _ if erased.contains(&doc) => Err(StoreError::Erased),
            Some(o) if *o != j.author_identity.to_string() => Err(StoreError::Forbidden(
                "this document id belongs to another identity",
            )),
            _ if stored_versions.contains(&(doc.clone(), j.doc_version)) => {
                match stored_replay(&mut tx, j).await? {
                    Some(idx) => Ok(Verdict::Replay(idx)),
                    None => Err(StoreError::Conflict("this document version already exists")),
                }
            }
            _ if versions.contains(&(doc.clone(), j.doc_version)) => {
                match writer_of.get(&(doc.clone(), j.doc_version)) {
                    Some(&k) if jobs.get(k).is_some_and(|first| same_commit(first, j)) => {
                        Ok(Verdict::SameAs(k))
                    }
                    _ => Err(StoreError::Conflict("this document version already exists")),
                }
            }
            _ if deleting
                .get(j.blob_id.as_str())
                .copied()
                .unwrap_or(j.inline.is_none()) =>
            {
                Err(StoreError::Conflict(
                    "the blob was deleted as an upload no commit referenced in time: upload it \
                     again, then commit",
                ))
            }
            _ => match j
                .wraps
                .iter()
                .map(|w| w.recipient.to_string())
                .find(|r| !known.contains(r))
            {
                Some(r) => Err(StoreError::UnknownDevice(r)),
                None => Ok(Verdict::New),
            },
        };
        if let Ok(Verdict::New) = verdict {
            owners.insert(doc.clone(), j.author_identity.to_string());
            writer_of.insert((doc.clone(), j.doc_version), i);
            versions.insert((doc, j.doc_version));
        }
        decided.push(verdict);
    }

    if decided.iter().all(Result::is_err) {
        // Nothing to write: the transaction ends without a commit (rolled back on drop).
        return Ok(decided
            .into_iter()
            .filter_map(Result::err)
            .map(Err)
            .collect());
    }

    // The log: every accepted document's chain head, read from the log itself in one statement.
    let mut log = LogAppender::begin(&mut tx).await?;
    let is_new = |d: &Result<Verdict, StoreError>| matches!(d, Ok(Verdict::New));
    let subjects: Vec<Subject> = jobs
        .iter()
        .zip(&decided)
        .filter(|(_, d)| is_new(d))
        .map(|(j, _)| Subject::Document(j.doc_id))
        .collect();
    log.load_heads(&mut tx, &subjects).await?;
    let mut indices: Vec<Vec<u64>> = Vec::with_capacity(jobs.len());
    for (j, d) in jobs.iter().zip(&decided) {
        let mut idx = Vec::new();
        if is_new(d) {
            for w in &j.wraps {
                idx.push(
                    log.append(
                        &mut tx,
                        EntryKind::Wrap,
                        &Subject::Document(j.doc_id),
                        Some(&w.recipient.to_string()),
                        &w.bytes,
                        j.created_at,
                    )
                    .await?,
                );
            }
        }
        indices.push(idx);
    }

    let accepted: Vec<(&CommitJob, &Vec<u64>)> = jobs
        .iter()
        .zip(&decided)
        .zip(&indices)
        .filter(|((_, d), _)| is_new(d))
        .map(|((j, _), i)| (j, i))
        .collect();
    insert_rows(&mut tx, &accepted).await?;
    let replays: Vec<u64> = decided
        .iter()
        .filter_map(|d| match d {
            Ok(Verdict::Replay(idx)) => Some(idx.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    log.prove_consistency_from(
        jobs.iter()
            .zip(&decided)
            .filter(|(_, d)| d.is_ok())
            .filter_map(|(j, _)| j.log_from),
    );
    let done = log.finish(&mut tx, signer, &replays).await?;
    tx.commit().await?;

    let note: Arc<str> = Arc::from(done.note);
    let mut proven = done.proven.into_iter();
    let mut also = done.also_proven.into_iter();
    let mut out: Vec<Result<JobCommit, StoreError>> = Vec::with_capacity(jobs.len());
    for (i, (d, idx)) in decided.into_iter().zip(indices).enumerate() {
        let consistency = jobs
            .get(i)
            .and_then(|j| j.log_from)
            .and_then(|f| done.consistency.get(&f).cloned())
            .unwrap_or_default();
        let commit = |proven: Vec<(LogRead, Vec<Hash>)>, replayed| JobCommit {
            size: done.size,
            note: Arc::clone(&note),
            proven,
            replayed,
            consistency,
        };
        out.push(match d {
            Err(e) => Err(e),
            Ok(Verdict::New) => Ok(commit(proven.by_ref().take(idx.len()).collect(), false)),
            Ok(Verdict::Replay(old)) => Ok(commit(also.by_ref().take(old.len()).collect(), true)),
            // Earlier in the batch, so already answered.
            Ok(Verdict::SameAs(k)) => match (out.get(k), jobs.get(k), jobs.get(i)) {
                (Some(Ok(first)), Some(fj), Some(j)) => {
                    // The first send's entries, in this send's wrap order.
                    let proven = j
                        .wraps
                        .iter()
                        .filter_map(|w| fj.wraps.iter().position(|x| x.recipient == w.recipient))
                        .filter_map(|p| first.proven.get(p).cloned())
                        .collect();
                    Ok(commit(proven, true))
                }
                _ => Err(StoreError::Backend(
                    "a retry's first send has no answer".into(),
                )),
            },
        });
    }
    Ok(out)
}

/// The log indices of a stored version's wraps, in `j`'s wrap order, if the version is stored
/// exactly as `j` sends it (same author device, blob and wraps, no more and no fewer): the retry
/// of a commit whose answer was lost. `None` for anything else (a real conflict).
async fn stored_replay(tx: &mut Tx, j: &CommitJob) -> Result<Option<Vec<u64>>, StoreError> {
    let doc = j.doc_id.to_string();
    let v = i64::from(j.doc_version);
    let row = sqlx::query(
        "SELECT blob_id, author_device FROM documents WHERE doc_id = $1 AND doc_version = $2",
    )
    .bind(&doc)
    .bind(v)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let blob_id: String = row.try_get("blob_id")?;
    let author: String = row.try_get("author_device")?;
    if blob_id != j.blob_id.as_str() || author != j.author_device.to_string() {
        return Ok(None);
    }
    let mut stored: HashMap<String, (Vec<u8>, Option<i64>)> = HashMap::new();
    for r in sqlx::query(
        "SELECT recipient_device, wrap, log_idx FROM wraps WHERE doc_id = $1 AND doc_version = $2",
    )
    .bind(&doc)
    .bind(v)
    .fetch_all(&mut **tx)
    .await?
    {
        stored.insert(
            r.try_get("recipient_device")?,
            (r.try_get("wrap")?, r.try_get("log_idx")?),
        );
    }
    if stored.len() != j.wraps.len() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(j.wraps.len());
    for w in &j.wraps {
        match stored.get(&w.recipient.to_string()) {
            Some((bytes, Some(idx))) if *bytes == w.bytes => out.push(to_u64(*idx)?),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// A `wraps` row: doc id, version, recipient, sharer, wrap bytes, log index.
pub(super) type WrapRow<'a> = (String, i64, String, String, &'a [u8], i64);

/// Inserts the accepted jobs' blobs (inline ones), versions and wraps, a multi-row `INSERT` per
/// table and chunk.
async fn insert_rows(tx: &mut Tx, accepted: &[(&CommitJob, &Vec<u64>)]) -> Result<(), StoreError> {
    let inline: Vec<(&CommitJob, i64, i64)> = accepted
        .iter()
        .filter_map(|(j, _)| j.inline.as_ref().map(|d| (*j, d.len() as u64)))
        .map(|(j, n)| Ok((j, to_i64(n)?, to_i64(j.created_at)?)))
        .collect::<Result<_, StoreError>>()?;
    // Content-addressed: bytes stored before (inline or as a file) are kept as they are.
    for rows in inline.chunks(IN_CHUNK / 4) {
        let mut q = QueryBuilder::<DB>::new("INSERT INTO blobs (blob_id, size, created_at, data) ");
        q.push_values(rows, |mut b, (j, size, at)| {
            b.push_bind(j.blob_id.as_str())
                .push_bind(*size)
                .push_bind(*at)
                .push_bind(j.inline.as_deref());
        });
        q.push(" ON CONFLICT (blob_id) DO NOTHING");
        q.build().execute(&mut **tx).await?;
    }
    let docs: Vec<(&CommitJob, String, i64)> = accepted
        .iter()
        .map(|(j, _)| Ok((*j, j.doc_id.to_string(), to_i64(j.created_at)?)))
        .collect::<Result<_, StoreError>>()?;
    for rows in docs.chunks(IN_CHUNK / 6) {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO documents \
             (doc_id, doc_version, author_device, author_identity, blob_id, created_at) ",
        );
        q.push_values(rows, |mut b, (j, doc, at)| {
            b.push_bind(doc.as_str())
                .push_bind(i64::from(j.doc_version))
                .push_bind(j.author_device.to_string())
                .push_bind(j.author_identity.to_string())
                .push_bind(j.blob_id.as_str())
                .push_bind(*at);
        });
        q.build()
            .execute(&mut **tx)
            .await
            .map_err(|e| conflict_on_unique(e, "this document version already exists"))?;
    }
    let mut wraps: Vec<WrapRow<'_>> = Vec::new();
    for (j, idx) in accepted {
        for (w, i) in j.wraps.iter().zip(idx.iter()) {
            wraps.push((
                j.doc_id.to_string(),
                i64::from(j.doc_version),
                w.recipient.to_string(),
                w.sharer.to_string(),
                &w.bytes,
                to_i64(*i)?,
            ));
        }
    }
    insert_wrap_rows(tx, &wraps).await
}

/// Inserts `wraps` rows, a multi-row `INSERT` per chunk. [`StoreError::Conflict`] if a
/// recipient already holds a wrap of the version.
pub(super) async fn insert_wrap_rows(tx: &mut Tx, wraps: &[WrapRow<'_>]) -> Result<(), StoreError> {
    for rows in wraps.chunks(IN_CHUNK / 6) {
        let mut q = QueryBuilder::<DB>::new(
            "INSERT INTO wraps (doc_id, doc_version, recipient_device, sharer_device, wrap, \
             log_idx) ",
        );
        q.push_values(rows, |mut b, (doc, v, r, s, w, i)| {
            b.push_bind(doc.as_str())
                .push_bind(*v)
                .push_bind(r.as_str())
                .push_bind(s.as_str())
                .push_bind(*w)
                .push_bind(*i);
        });
        q.build()
            .execute(&mut **tx)
            .await
            .map_err(|e| conflict_on_unique(e, "this recipient already has a wrap"))?;
    }
    Ok(())
}

/// The ids among `ids` that are registered devices.
pub(super) async fn known_devices(
    tx: &mut Tx,
    ids: &[String],
) -> Result<HashSet<String>, StoreError> {
    select_in(tx, "SELECT device_id FROM devices WHERE device_id", ids)
        .await?
        .iter()
        .map(|r| r.try_get("device_id").map_err(StoreError::from))
        .collect()
}

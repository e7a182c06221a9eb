//! Document commits, batched (PROTOCOL.md §8.3, §11.3): one write transaction, one signed
//! checkpoint and one WAL write for every commit waiting at that moment.
//!
//! Handlers queue a [`CommitJob`] and await its answer. One task drains the queue: it takes the
//! first job and everything already behind it (at most [`MAX_BATCH`]), checks them all against
//! the database with one query per table (`IN` lists), decides each job on its own (a job that
//! would conflict gets its own error and is left out), appends the wrap entries of the accepted
//! jobs in memory ([`LogAppender`]) and writes everything with multi-row inserts. So a batch
//! costs about a dozen statements however many jobs it holds, instead of a dozen per job.
//!
//! If the batch as a whole fails (a database error), each of its jobs is retried alone, so one
//! job can never fail another.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serment_core::DocId;
use serment_core::log::entry::{EntryKind, Subject};
use serment_core::log::note::NoteSigner;
use serment_core::log::tree::Hash;
use sqlx::{QueryBuilder, Row as _, Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::log::LogAppender;
use super::{conflict_on_unique, to_i64, to_u32, to_u64};
use crate::store::{BlobId, LogRead, NewWrap, StoreError};

/// The most commits in one transaction.
pub(crate) const MAX_BATCH: usize = 128;
/// Ids bound per `IN (...)` list (SQLite allows 32 766 parameters per statement).
const IN_CHUNK: usize = 500;
/// Commits waiting for the batcher before handlers wait for room.
const QUEUE: usize = 1024;

/// A document version to commit with its wraps, checked by the HTTP layer (header, wraps).
#[derive(Debug)]
pub(crate) struct CommitJob {
    pub(crate) doc_id: DocId,
    pub(crate) doc_version: u32,
    pub(crate) author_device: String,
    pub(crate) author_identity: String,
    pub(crate) blob_id: BlobId,
    /// The sealed bytes when committed inline (stored in `blobs.data`); `None` for an uploaded
    /// blob, whose row already exists.
    pub(crate) inline: Option<Vec<u8>>,
    pub(crate) created_at: u64,
    pub(crate) wraps: Vec<NewWrap>,
}

/// What a commit wrote: its wrap entries, proven against the checkpoint of its transaction.
#[derive(Debug, Clone)]
pub(crate) struct JobCommit {
    /// The tree size after the transaction.
    pub(crate) size: u64,
    /// The checkpoint note of `size`, signed by the log (no cosignatures yet).
    pub(crate) note: Arc<str>,
    /// The job's wrap entries, in request order, each with its inclusion proof.
    pub(crate) proven: Vec<(LogRead, Vec<Hash>)>,
    /// True if the version was already stored exactly as sent (a retry whose first answer was
    /// lost): nothing was written, and `proven` holds the entries appended then.
    pub(crate) replayed: bool,
}

/// What the batch decided for one job.
enum Verdict {
    /// Write it.
    New,
    /// Already stored exactly as sent: prove its existing wrap entries (log indices, in the
    /// job's wrap order).
    Replay(Vec<u64>),
    /// The same commit as an earlier job of this batch (a retry that caught up with its first
    /// send): answered like it.
    SameAs(usize),
}

/// True if `a` and `b` commit the same thing: author device, blob and wraps (as a set).
fn same_commit(a: &CommitJob, b: &CommitJob) -> bool {
    a.author_device == b.author_device
        && a.blob_id == b.blob_id
        && a.wraps.len() == b.wraps.len()
        && a.wraps.iter().all(|w| {
            b.wraps
                .iter()
                .any(|x| x.recipient == w.recipient && x.bytes == w.bytes)
        })
}

type Reply = oneshot::Sender<Result<JobCommit, StoreError>>;

/// The handle handlers queue commits on.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    queue: mpsc::Sender<(CommitJob, Reply)>,
}

impl Committer {
    /// Starts the batching task on the current Tokio runtime, writing through `writer`.
    pub(crate) fn start(writer: SqlitePool, signer: Arc<NoteSigner>) -> Committer {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, signer, rx));
        Committer { queue }
    }

    /// Queues `job` and waits for its transaction to commit (not yet fsynced: the HTTP layer's
    /// group-commit barrier does that before answering).
    ///
    /// # Errors
    /// The job's own [`StoreError::Forbidden`], [`StoreError::Conflict`] or
    /// [`StoreError::UnknownDevice`]; [`StoreError::Backend`] if the database fails or the
    /// batcher is gone.
    pub(crate) async fn commit(&self, job: CommitJob) -> Result<JobCommit, StoreError> {
        let (tx, rx) = oneshot::channel();
        let gone = || StoreError::Backend("the commit batcher stopped".into());
        self.queue.send((job, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

type BatchResult = Result<Vec<Result<JobCommit, StoreError>>, StoreError>;

/// Runs [`commit_batch`] in its own task, so that a panic there fails these commits (as a backend
/// error) and not the batcher. Gives the jobs back unless the task panicked.
async fn isolated(
    writer: &SqlitePool,
    signer: &Arc<NoteSigner>,
    jobs: Vec<CommitJob>,
) -> (Option<Vec<CommitJob>>, BatchResult) {
    let (w, s) = (writer.clone(), Arc::clone(signer));
    let task = tokio::spawn(async move {
        let r = commit_batch(&w, &s, &jobs).await;
        (jobs, r)
    });
    match task.await {
        Ok((jobs, r)) => (Some(jobs), r),
        Err(e) => {
            tracing::error!(error = %e, "a commit batch panicked");
            (
                None,
                Err(StoreError::Backend("the commit batch failed".into())),
            )
        }
    }
}

async fn run(
    writer: SqlitePool,
    signer: Arc<NoteSigner>,
    mut rx: mpsc::Receiver<(CommitJob, Reply)>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let (jobs, replies): (Vec<CommitJob>, Vec<Reply>) = batch.into_iter().unzip();
        let n = jobs.len();
        match isolated(&writer, &signer, jobs).await {
            (_, Ok(results)) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    // The handler may have gone (client disconnected): nothing to tell.
                    let _ = reply.send(r);
                }
            }
            (Some(jobs), Err(e)) if n > 1 => {
                tracing::warn!(error = %e, jobs = n, "commit batch failed; retrying its jobs one by one");
                for (job, reply) in jobs.into_iter().zip(replies) {
                    let r = match isolated(&writer, &signer, vec![job]).await {
                        (_, Ok(mut v)) => v.pop().unwrap_or_else(|| {
                            Err(StoreError::Backend("empty batch result".into()))
                        }),
                        (_, Err(e)) => Err(e),
                    };
                    let _ = reply.send(r);
                }
            }
            (_, Err(e)) => {
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Backend(msg.clone().into())));
                }
            }
        }
    }
}

/// Reads `SELECT <cols> FROM <table> WHERE <col> IN (ids)` in chunks.
async fn select_in(
    tx: &mut Transaction<'static, Sqlite>,
    head: &str,
    ids: &[String],
) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
    let mut out = Vec::new();
    for part in ids.chunks(IN_CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(head);
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

/// Commits `jobs` in one transaction. The outer error fails the whole batch (nothing written);
/// the inner ones are each job's own refusal.
pub(super) async fn commit_batch(
    writer: &SqlitePool,
    signer: &NoteSigner,
    jobs: &[CommitJob],
) -> Result<Vec<Result<JobCommit, StoreError>>, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;

    // What the database already holds about these documents and recipients.
    let mut doc_ids: Vec<String> = jobs.iter().map(|j| j.doc_id.to_string()).collect();
    doc_ids.sort();
    doc_ids.dedup();
    let mut owners: HashMap<String, String> = HashMap::new();
    let mut versions: HashSet<(String, u32)> = HashSet::new();
    for r in select_in(
        &mut tx,
        "SELECT doc_id, doc_version, author_identity FROM documents WHERE doc_id",
        &doc_ids,
    )
    .await?
    {
        let doc: String = r.try_get("doc_id")?;
        versions.insert((doc.clone(), to_u32(r.try_get("doc_version")?)?));
        owners.insert(doc, r.try_get("author_identity")?);
    }
    let mut recipients: Vec<String> = jobs
        .iter()
        .flat_map(|j| j.wraps.iter().map(|w| w.recipient.to_string()))
        .collect();
    recipients.sort();
    recipients.dedup();
    let known = known_devices(&mut tx, &recipients).await?;

    // Each job decided in order, as if committed one after the other.
    let mut decided: Vec<Result<Verdict, StoreError>> = Vec::with_capacity(jobs.len());
    let stored_versions = versions.clone();
    // Which job of this batch wrote each (document, version).
    let mut writer_of: HashMap<(String, u32), usize> = HashMap::new();
    for (i, j) in jobs.iter().enumerate() {
        let doc = j.doc_id.to_string();
        let verdict = match owners.get(&doc) {
            Some(o) if *o != j.author_identity => Err(StoreError::Forbidden(
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
            owners.insert(doc.clone(), j.author_identity.clone());
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
    let done = log.finish(&mut tx, signer, &replays).await?;
    tx.commit().await?;

    let note: Arc<str> = Arc::from(done.note);
    let mut proven = done.proven.into_iter();
    let mut also = done.also_proven.into_iter();
    let mut out: Vec<Result<JobCommit, StoreError>> = Vec::with_capacity(jobs.len());
    for (i, (d, idx)) in decided.into_iter().zip(indices).enumerate() {
        let commit = |proven: Vec<(LogRead, Vec<Hash>)>, replayed| JobCommit {
            size: done.size,
            note: Arc::clone(&note),
            proven,
            replayed,
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
async fn stored_replay(
    tx: &mut Transaction<'static, Sqlite>,
    j: &CommitJob,
) -> Result<Option<Vec<u64>>, StoreError> {
    let doc = j.doc_id.to_string();
    let v = i64::from(j.doc_version);
    let row = sqlx::query(
        "SELECT blob_id, author_device FROM documents WHERE doc_id = ? AND doc_version = ?",
    )
    .bind(&doc)
    .bind(v)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let blob_id: String = row.try_get("blob_id")?;
    let author: String = row.try_get("author_device")?;
    if blob_id != j.blob_id.as_str() || author != j.author_device {
        return Ok(None);
    }
    let mut stored: HashMap<String, (Vec<u8>, Option<i64>)> = HashMap::new();
    for r in sqlx::query(
        "SELECT recipient_device, wrap, log_idx FROM wraps WHERE doc_id = ? AND doc_version = ?",
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
async fn insert_rows(
    tx: &mut Transaction<'static, Sqlite>,
    accepted: &[(&CommitJob, &Vec<u64>)],
) -> Result<(), StoreError> {
    let inline: Vec<(&CommitJob, i64, i64)> = accepted
        .iter()
        .filter_map(|(j, _)| j.inline.as_ref().map(|d| (*j, d.len() as u64)))
        .map(|(j, n)| Ok((j, to_i64(n)?, to_i64(j.created_at)?)))
        .collect::<Result<_, StoreError>>()?;
    // Content-addressed: bytes stored before (inline or as a file) are kept as they are.
    for rows in inline.chunks(IN_CHUNK / 4) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO blobs (blob_id, size, created_at, data) ");
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
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO documents \
             (doc_id, doc_version, author_device, author_identity, blob_id, created_at) ",
        );
        q.push_values(rows, |mut b, (j, doc, at)| {
            b.push_bind(doc.as_str())
                .push_bind(i64::from(j.doc_version))
                .push_bind(j.author_device.as_str())
                .push_bind(j.author_identity.as_str())
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
pub(super) async fn insert_wrap_rows(
    tx: &mut Transaction<'static, Sqlite>,
    wraps: &[WrapRow<'_>],
) -> Result<(), StoreError> {
    for rows in wraps.chunks(IN_CHUNK / 6) {
        let mut q = QueryBuilder::<Sqlite>::new(
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
    tx: &mut Transaction<'static, Sqlite>,
    ids: &[String],
) -> Result<HashSet<String>, StoreError> {
    select_in(tx, "SELECT device_id FROM devices WHERE device_id", ids)
        .await?
        .iter()
        .map(|r| r.try_get("device_id").map_err(StoreError::from))
        .collect()
}

//! The commit batcher, backend-neutral (PROTOCOL.md §8.3, §11.3): one write transaction, one
//! signed checkpoint for every document commit waiting at that moment.
//!
//! Handlers queue a [`CommitJob`] and await its answer. One task drains the queue: it takes the
//! first job and everything already behind it (at most [`MAX_BATCH`]) and hands them to the
//! backend's [`BatchWriter`], which decides each job on its own (a job that would conflict gets
//! its own error and is left out) and writes the accepted ones in one transaction.
//!
//! If the batch as a whole fails (a backend error), each of its jobs is retried alone, so one
//! job can never fail another; a panic in the writer fails its jobs, not the batcher.

use std::future::Future;
use std::sync::Arc;

use serment_core::log::tree::Hash;
use serment_core::{DocId, KeyId};
use tokio::sync::{mpsc, oneshot};

use crate::store::{BlobId, LogRead, NewWrap, StoreError};

/// The most commits in one transaction.
pub(crate) const MAX_BATCH: usize = 128;
/// Commits waiting for the batcher before handlers wait for room.
const QUEUE: usize = 1024;

/// A document version to commit with its wraps, checked by the HTTP layer (header, wraps).
#[derive(Debug)]
pub(crate) struct CommitJob {
    pub(crate) doc_id: DocId,
    pub(crate) doc_version: u32,
    pub(crate) author_device: KeyId,
    pub(crate) author_identity: KeyId,
    pub(crate) blob_id: BlobId,
    /// The sealed bytes when committed inline (stored in `blobs.data`); `None` for an uploaded
    /// blob, whose row already exists.
    pub(crate) inline: Option<Vec<u8>>,
    pub(crate) created_at: u64,
    pub(crate) wraps: Vec<NewWrap>,
    /// The log size the client last verified (`log_from`): the batch proves its checkpoint
    /// consistent with it, from the nodes it already reads, instead of the handler reading them
    /// again after the commit.
    pub(crate) log_from: Option<u64>,
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
    /// The consistency proof from the job's `log_from` to `size` (RFC 9162 §2.1.4); empty if it
    /// asked for none, or `log_from` is 0, `size` or beyond it.
    pub(crate) consistency: Vec<Hash>,
}

/// What the batch decided for one job.
pub(crate) enum Verdict {
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
pub(crate) fn same_commit(a: &CommitJob, b: &CommitJob) -> bool {
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

/// What a batch wrote: the outer error fails the whole batch (nothing written); the inner ones
/// are each job's own refusal, in job order.
pub(crate) type BatchResult = Result<Vec<Result<JobCommit, StoreError>>, StoreError>;

/// A backend's batch write: decides each job of `jobs` against stored state, as if committed
/// one after the other, and writes the accepted ones with their log entries and one signed
/// checkpoint in one transaction.
pub(crate) trait BatchWriter: Clone + Send + Sync + 'static {
    /// Writes one batch (see the trait). Returns one result per job, in order.
    fn write_batch(&self, jobs: &[CommitJob]) -> impl Future<Output = BatchResult> + Send;
}

/// The handle handlers queue commits on.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    queue: mpsc::Sender<(CommitJob, Reply)>,
}

impl Committer {
    /// Starts the batching task on the current Tokio runtime, writing through `writer`.
    pub(crate) fn start<W: BatchWriter>(writer: W) -> Committer {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, rx));
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

/// Runs [`BatchWriter::write_batch`] in its own task, so that a panic there fails these commits (as a backend
/// error) and not the batcher. Gives the jobs back unless the task panicked.
async fn isolated<W: BatchWriter>(
    writer: &W,
    jobs: Vec<CommitJob>,
) -> (Option<Vec<CommitJob>>, BatchResult) {
    let w = writer.clone();
    let task = tokio::spawn(async move {
        let r = w.write_batch(&jobs).await;
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

async fn run<W: BatchWriter>(writer: W, mut rx: mpsc::Receiver<(CommitJob, Reply)>) {
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
        if let Some(t) = crate::telemetry::get() {
            t.batch_jobs.observe(n as f64);
        }
        match isolated(&writer, jobs).await {
            (_, Ok(results)) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    // The handler may have gone (client disconnected): nothing to tell.
                    let _ = reply.send(r);
                }
            }
            (Some(jobs), Err(e)) if n > 1 => {
                tracing::warn!(error = %e, jobs = n, "commit batch failed; retrying its jobs one by one");
                for (job, reply) in jobs.into_iter().zip(replies) {
                    let r = match isolated(&writer, vec![job]).await {
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

//! Request nonces in batches (PROTOCOL.md §8.2, issue 14 §2), backend-neutral: every signed
//! request's `(keyid, nonce)` waiting at one moment is remembered by one statement instead of
//! one write each.
//!
//! The replay check is the same as one insert per request: a pair is accepted by an atomic
//! `INSERT … ON CONFLICT` under the table's unique key, so two instances inserting the same pair
//! at once still meet there, and a batch decides its requests as if inserted one after the other
//! (a pair sent twice in one batch is decided twice, in queue order: the second is a replay of
//! the first). Each request gets its own [`NonceUse`]; a backend failure fails the requests of
//! its batch (401 is never answered for a failure: the HTTP layer answers 500, the client signs
//! again).
//!
//! On SQLite this takes the writes off the single writer connection's per-request path: one
//! write (and one WAL append) per batch, not per request.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::store::{NonceUse, StoreError};

/// The most nonces in one batch.
pub(crate) const MAX_NONCES: usize = 256;
/// Requests waiting for the batcher before handlers wait for room.
const QUEUE: usize = 1024;

/// One signed request's pair to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NonceReq {
    /// The signing key id, hex.
    pub(crate) key_id: String,
    /// The nonce as signed.
    pub(crate) nonce: String,
    /// The request's `created` (seconds since the epoch).
    pub(crate) created: i64,
    /// A stored pair older than this (seconds) has expired and may be reused.
    pub(crate) expired_before: i64,
}

/// A backend's batch of nonce inserts: one [`NonceUse`] per request, in order, decided as if the
/// requests were inserted one after the other.
pub(crate) trait NonceWriter: Clone + Send + Sync + 'static {
    /// Remembers the fresh pairs of `reqs` (see the trait).
    fn use_nonces(
        &self,
        reqs: &[NonceReq],
    ) -> impl Future<Output = Result<Vec<NonceUse>, StoreError>> + Send;
}

type Reply = oneshot::Sender<Result<NonceUse, StoreError>>;

/// The handle the replay check queues nonces on.
#[derive(Debug, Clone)]
pub(crate) struct NonceBatcher {
    queue: mpsc::Sender<(NonceReq, Reply)>,
}

impl NonceBatcher {
    /// Starts the batching task on the current Tokio runtime, writing through `writer`.
    pub(crate) fn start<W: NonceWriter>(writer: W) -> NonceBatcher {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, rx));
        NonceBatcher { queue }
    }

    /// Queues `req` and waits for its batch's answer.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database fails or the batcher is gone.
    pub(crate) async fn check(&self, req: NonceReq) -> Result<NonceUse, StoreError> {
        let (tx, rx) = oneshot::channel();
        let gone = || StoreError::Backend("the nonce batcher stopped".into());
        self.queue.send((req, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run<W: NonceWriter>(writer: W, mut rx: mpsc::Receiver<(NonceReq, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_NONCES {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let (reqs, replies): (Vec<NonceReq>, Vec<Reply>) = batch.into_iter().unzip();
        let n = reqs.len();
        // In its own task, so that a panic fails this batch and not the batcher.
        let w = writer.clone();
        let result = match tokio::spawn(async move { w.use_nonces(&reqs).await }).await {
            Ok(Ok(v)) if v.len() == n => Ok(v),
            Ok(Ok(_)) => Err("a nonce batch answered the wrong number of requests".to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("a nonce batch panicked: {e}")),
        };
        match result {
            Ok(uses) => {
                for (reply, u) in replies.into_iter().zip(uses) {
                    // The request may have gone (client disconnected): nothing to tell.
                    let _ = reply.send(Ok(u));
                }
            }
            Err(msg) => {
                tracing::error!(error = %msg, requests = n, "a nonce batch failed");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Backend(msg.clone().into())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Answers every request Fresh and records the batch sizes; panics on nonce "boom".
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Vec<usize>>>);

    impl NonceWriter for Fake {
        async fn use_nonces(&self, reqs: &[NonceReq]) -> Result<Vec<NonceUse>, StoreError> {
            assert!(reqs.iter().all(|r| r.nonce != "boom"), "boom");
            self.0.lock().unwrap().push(reqs.len());
            Ok(reqs.iter().map(|_| NonceUse::Fresh).collect())
        }
    }

    fn req(n: &str) -> NonceReq {
        NonceReq {
            key_id: "k".into(),
            nonce: n.into(),
            created: 10,
            expired_before: 0,
        }
    }

    #[tokio::test]
    async fn a_panicking_batch_fails_its_requests_not_the_batcher() {
        let fake = Fake::default();
        let b = NonceBatcher::start(fake.clone());
        assert!(matches!(
            b.check(req("boom")).await,
            Err(StoreError::Backend(_))
        ));
        assert_eq!(b.check(req("a")).await.unwrap(), NonceUse::Fresh);
        let (x, y) = tokio::join!(b.check(req("b")), b.check(req("c")));
        assert_eq!((x.unwrap(), y.unwrap()), (NonceUse::Fresh, NonceUse::Fresh));
        assert_eq!(fake.0.lock().unwrap().iter().sum::<usize>(), 3);
    }
}

//! The chunk pipeline behind [`super::seal`] and [`super::open`].
//!
//! The calling thread does all the I/O, in order: it reads a job (a run of consecutive chunks,
//! laid out back to back as they are on the wire), hands it to a worker, and writes finished jobs
//! in order. Workers seal or open and hash the chunks of a job in place. Jobs go round-robin to
//! the workers and come back on one channel per worker, so the calling thread takes them back in
//! order without a reorder buffer. While workers compute, the calling thread reads and writes,
//! so I/O overlaps the crypto. Memory is bounded by the jobs in flight (a few MiB) whatever the
//! document size, and buffers are recycled, so a large document allocates nothing per chunk.
//!
//! The result does not depend on the thread count: chunk hashes are combined in chunk order by
//! the calling thread. A document of one job is processed on the calling thread alone (no thread
//! is started for a small document).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use crate::error::{Error, Result};
use crate::stream::{CHUNK_SIZE, TAG_LEN, chunk_plain_len};

/// Chunks per job: 512 KiB of plaintext.
pub(super) const JOB_CHUNKS: u64 = 8;
/// Jobs queued per worker beyond the one it works on.
const QUEUE_PER_WORKER: usize = 2;
/// Most workers started, whatever the core count.
const MAX_WORKERS: usize = 16;

/// A run of consecutive chunks, laid out back to back with their tags (wire layout).
#[derive(Debug, Default)]
pub(super) struct Job {
    /// Index of the first chunk.
    pub(super) first: u64,
    /// Number of chunks.
    pub(super) count: u64,
    /// The chunks: each is `plaintext length + TAG_LEN` bytes.
    pub(super) buf: Vec<u8>,
    /// One chunk hash per chunk, filled by the worker.
    pub(super) hashes: Vec<[u8; 32]>,
}

impl Job {
    /// Sets up the job for chunks `first..first + count` of a payload of `padded_len` bytes:
    /// `buf` gets the wire length of those chunks. Reuses the allocation; the content of `buf`
    /// is left as it was (the producer overwrites all of it).
    fn prepare(&mut self, first: u64, count: u64, padded_len: u64) {
        self.first = first;
        self.count = count;
        let len: usize = (first..first + count)
            .map(|i| chunk_plain_len(padded_len, i) + TAG_LEN)
            .sum();
        self.buf.resize(len, 0);
        self.hashes.clear();
    }

    /// The chunk slots of the job, with their indexes: `(index, slot)`.
    pub(super) fn slots_mut(&mut self) -> impl Iterator<Item = (u64, &mut [u8])> {
        let first = self.first;
        self.buf
            .chunks_mut(CHUNK_SIZE + TAG_LEN)
            .enumerate()
            .map(move |(i, s)| (first + i as u64, s))
    }

    /// The chunk slots of the job, read-only.
    pub(super) fn slots(&self) -> impl Iterator<Item = &[u8]> {
        self.buf.chunks(CHUNK_SIZE + TAG_LEN)
    }
}

/// How many workers to start for `jobs` jobs.
fn worker_count(jobs: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if jobs <= 1 || cores <= 1 {
        return 0;
    }
    cores
        .min(MAX_WORKERS)
        .min(usize::try_from(jobs).unwrap_or(usize::MAX))
}

/// Runs the pipeline over `chunks` chunks of a payload of `padded_len` bytes.
///
/// - `produce(job)` fills `job.buf` (its length already set) from the input, on this thread;
/// - `work(index, slot)` seals or opens one chunk slot in place and returns its hash, on a
///   worker;
/// - `consume(job)` writes a finished job, on this thread, in chunk order.
///
/// The first error stops the pipeline and is returned; workers stop as their channels close.
pub(super) fn run<P, F, C>(
    chunks: u64,
    padded_len: u64,
    mut produce: P,
    work: F,
    mut consume: C,
) -> Result<()>
where
    P: FnMut(&mut Job) -> Result<()>,
    F: Fn(u64, &mut [u8]) -> Result<[u8; 32]> + Sync,
    C: FnMut(&Job) -> Result<()>,
{
    let jobs = chunks.div_ceil(JOB_CHUNKS);
    let workers = worker_count(jobs);
    let job_range = |n: u64| {
        let first = n * JOB_CHUNKS;
        (first, (chunks - first).min(JOB_CHUNKS))
    };
    if workers == 0 {
        let mut job = Job::default();
        for n in 0..jobs {
            let (first, count) = job_range(n);
            job.prepare(first, count, padded_len);
            produce(&mut job)?;
            process(&mut job, &work)?;
            consume(&job)?;
        }
        return Ok(());
    }

    let work = &work;
    std::thread::scope(|s| {
        let mut to_workers: Vec<SyncSender<Job>> = Vec::with_capacity(workers);
        let mut from_workers: Vec<Receiver<Result<Job>>> = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (jtx, jrx) = sync_channel::<Job>(QUEUE_PER_WORKER);
            // One more slot than jobs a worker can hold, so a worker never blocks on sending.
            let (rtx, rrx) = sync_channel::<Result<Job>>(QUEUE_PER_WORKER + 2);
            handles.push(s.spawn(move || {
                // A failed job is reported like any other: the calling thread meets the first
                // error in chunk order and stops sending.
                while let Ok(mut job) = jrx.recv() {
                    if rtx.send(process(&mut job, work).map(|()| job)).is_err() {
                        break;
                    }
                }
            }));
            to_workers.push(jtx);
            from_workers.push(rrx);
        }

        let in_flight_max = workers as u64 * (QUEUE_PER_WORKER as u64 + 1);
        let mut spare: Vec<Job> = Vec::new();
        let mut sent = 0u64;
        let mut done = 0u64;
        let result = (|| {
            while done < jobs {
                while sent < jobs && sent - done < in_flight_max {
                    let mut job = spare.pop().unwrap_or_default();
                    let (first, count) = job_range(sent);
                    job.prepare(first, count, padded_len);
                    produce(&mut job)?;
                    let tx = to_workers
                        .get(slot(sent, workers))
                        .ok_or(Error::Io("pipeline".into()))?;
                    tx.send(job)
                        .map_err(|_| Error::Io("a worker thread stopped".into()))?;
                    sent += 1;
                }
                let rx = from_workers
                    .get(slot(done, workers))
                    .ok_or(Error::Io("pipeline".into()))?;
                let job = rx
                    .recv()
                    .map_err(|_| Error::Io("a worker thread stopped".into()))??;
                consume(&job)?;
                spare.push(job);
                done += 1;
            }
            Ok(())
        })();
        // Closing the job channels stops the workers; closing the result channels unblocks any.
        drop(to_workers);
        drop(from_workers);
        let mut panicked = false;
        for h in handles {
            panicked |= h.join().is_err();
        }
        match result {
            Ok(()) if panicked => Err(Error::Io("a worker thread panicked".into())),
            other => other,
        }
    })
}

/// The worker of job number `n`.
fn slot(n: u64, workers: usize) -> usize {
    // The remainder is below `workers`, so it fits in usize.
    (n % workers as u64) as usize
}

/// Seals or opens every chunk of a job in place, recording the chunk hashes in order.
fn process<F>(job: &mut Job, work: &F) -> Result<()>
where
    F: Fn(u64, &mut [u8]) -> Result<[u8; 32]>,
{
    let mut hashes = std::mem::take(&mut job.hashes);
    hashes.clear();
    for (index, slot) in job.slots_mut() {
        hashes.push(work(index, slot)?);
    }
    job.hashes = hashes;
    Ok(())
}

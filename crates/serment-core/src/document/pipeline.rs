//! The chunk pipeline behind [`super::seal`] and [`super::open`].
//!
//! The calling thread does all the I/O, in order: it reads a job (a run of consecutive chunks,
//! laid out back to back as they are on the wire), queues it, and writes finished jobs in order.
//! Workers take jobs from one shared queue and seal or open and hash their chunks in place; the
//! calling thread puts the results back in order. No send ever blocks (both queues hold every
//! job in flight), so an idle worker never waits while the calling thread is stuck on a busy
//! one. While workers compute, the calling thread reads and writes, so I/O overlaps the crypto.
//! Memory is bounded by the jobs in flight (a few MiB) whatever the document size, and buffers
//! are recycled, so a large document allocates nothing per chunk.
//!
//! The result does not depend on the thread count: chunk hashes are combined in chunk order by
//! the calling thread. A document of one job is processed on the calling thread alone (no thread
//! is started for a small document).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

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
    if jobs <= 1 {
        // One job (up to 512 KiB of payload): no workers, and no look at the CPU count, which
        // reads cgroup files on Linux (a small document would pay more for it than to seal).
        return 0;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores <= 1 {
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
    let in_flight_max = workers * (QUEUE_PER_WORKER + 1);
    // One job queue shared by the workers (an idle worker takes the next job, so the calling
    // thread never waits on a busy one) and one result queue; both are sized so that no send
    // blocks. Results come back in any order and are put back in order here.
    let (to_workers, jobs_rx) = sync_channel::<Job>(in_flight_max);
    let jobs_rx = Mutex::new(jobs_rx);
    let jobs_rx = &jobs_rx;
    let (results_tx, from_workers) = sync_channel::<Result<Job>>(in_flight_max);
    std::thread::scope(move |s| {
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let results_tx = results_tx.clone();
            handles.push(s.spawn(move || {
                loop {
                    // The lock is held only while waiting for the next job.
                    let next = match jobs_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => break,
                    };
                    let Ok(mut job) = next else { break };
                    // A failed job is reported like any other; the calling thread stops at the
                    // first error it receives (nothing is released on error anyway).
                    if results_tx
                        .send(process(&mut job, work).map(|()| job))
                        .is_err()
                    {
                        break;
                    }
                }
            }));
        }
        drop(results_tx);

        let mut spare: Vec<Job> = Vec::new();
        // Finished jobs that arrived ahead of their turn, by first chunk index.
        let mut ahead: BTreeMap<u64, Job> = BTreeMap::new();
        let mut sent = 0u64;
        let mut done = 0u64;
        let result: Result<()> = (|| {
            while done < jobs {
                while sent < jobs && sent - done < in_flight_max as u64 {
                    let mut job = spare.pop().unwrap_or_default();
                    let (first, count) = job_range(sent);
                    job.prepare(first, count, padded_len);
                    produce(&mut job)?;
                    to_workers
                        .send(job)
                        .map_err(|_| Error::Io("a worker thread stopped".into()))?;
                    sent += 1;
                }
                let next_first = done * JOB_CHUNKS;
                let job = match ahead.remove(&next_first) {
                    Some(j) => j,
                    None => {
                        let j = from_workers
                            .recv()
                            .map_err(|_| Error::Io("a worker thread stopped".into()))??;
                        if j.first != next_first {
                            ahead.insert(j.first, j);
                            continue;
                        }
                        j
                    }
                };
                consume(&job)?;
                spare.push(job);
                done += 1;
            }
            Ok(())
        })();
        // Closing the job queue stops the workers; closing the result queue unblocks any.
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

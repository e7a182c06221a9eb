//! Group commit for SQLite in WAL mode: many transactions, one fsync.
//!
//! The database runs with `synchronous=NORMAL`: a commit appends its frames to the WAL file
//! without an fsync (SQLite still fsyncs the WAL before every checkpoint, and the database after
//! it). Durability comes from [`WalSync::barrier`], which the HTTP layer awaits after every
//! request and before the response leaves: it fsyncs the WAL file, and one fsync covers every
//! transaction committed before it started. So nothing acknowledged is lost on a power cut, and
//! under load a single fsync makes a whole batch of requests durable instead of one each: with
//! `synchronous=FULL` every commit waited for its own fsync while holding the write lock, which
//! capped the server at one commit per disk flush.
//!
//! Tickets: a request takes a ticket when its handler has finished (all its commits returned).
//! A sync that *starts* after a ticket was issued covers it; `synced` is the highest ticket that
//! such a sync covered. Syncs run one at a time; a request whose ticket a finished sync already
//! covers does not sync again.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The group-commit state of one database file.
#[derive(Debug)]
pub(crate) struct WalSync {
    wal: PathBuf,
    dir: PathBuf,
    issued: AtomicU64,
    synced: AtomicU64,
    dir_synced: AtomicBool,
    lock: tokio::sync::Mutex<()>,
}

impl WalSync {
    /// For the database at `db_path` (its WAL is `<db_path>-wal`).
    pub(crate) fn new(db_path: &Path) -> WalSync {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        WalSync {
            wal: PathBuf::from(wal),
            dir: db_path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            issued: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            dir_synced: AtomicBool::new(false),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns once every transaction committed before this call is on disk.
    pub(crate) async fn barrier(&self) -> io::Result<()> {
        let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let _one_at_a_time = self.lock.lock().await;
        if self.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Everything issued so far committed before this sync starts.
        let target = self.issued.load(Ordering::SeqCst);
        let wal = self.wal.clone();
        let dir = (!self.dir_synced.load(Ordering::SeqCst)).then(|| self.dir.clone());
        tokio::task::spawn_blocking(move || sync(&wal, dir.as_deref()))
            .await
            .map_err(io::Error::other)??;
        self.dir_synced.store(true, Ordering::SeqCst);
        self.synced.fetch_max(target, Ordering::SeqCst);
        Ok(())
    }
}

/// Fsyncs the WAL (opened afresh, so a WAL file SQLite recreated is the one synced) and, the
/// first time, its directory (the WAL's directory entry).
fn sync(wal: &Path, dir: Option<&Path>) -> io::Result<()> {
    match std::fs::File::open(wal) {
        Ok(f) => f.sync_data()?,
        // No WAL yet: nothing was written in WAL mode.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn barriers_cover_earlier_tickets_and_tolerate_a_missing_wal() {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).unwrap();
        let dir = std::env::temp_dir().join(format!("serment-walsync-{}", hex::encode(r)));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        let s = WalSync::new(&db);
        s.barrier().await.unwrap();
        std::fs::write(dir.join("x.db-wal"), b"frames").unwrap();
        let (a, b) = tokio::join!(s.barrier(), s.barrier());
        a.unwrap();
        b.unwrap();
        assert_eq!(s.synced.load(Ordering::SeqCst), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

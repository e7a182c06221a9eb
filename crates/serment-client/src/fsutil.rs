//! Atomic file writes: write to a temporary file in the target directory, fsync, rename, fsync
//! the directory. A crash or an error leaves either the old file or the new one, never half.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;

use crate::error::{ClientError, Result};

/// Temporary files not yet committed, so a signal handler can remove them: a `get` interrupted by
/// Ctrl-C must not leave unverified plaintext on disk.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A poisoned lock only means a thread panicked while holding it; the list is still usable.
    PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn forget(path: &Path) {
    pending().retain(|p| p != path);
}

/// Deletes every temporary file of an [`AtomicFile`] not yet committed. For signal handlers
/// (the process exits right after); safe to call at any time.
pub fn remove_pending() {
    for p in pending().drain(..) {
        let _ = std::fs::remove_file(&p);
    }
}

/// A temporary file next to `target`, renamed over it by [`AtomicFile::commit`] and deleted if
/// dropped before.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: NamedTempFile,
    target: std::path::PathBuf,
    _registered: Registered,
}

/// Keeps a temporary path in the pending list for as long as it lives.
#[derive(Debug)]
struct Registered(PathBuf);

impl Drop for Registered {
    fn drop(&mut self) {
        forget(&self.0);
    }
}

impl AtomicFile {
    /// Creates the temporary file in `target`'s directory (mode 0600 on Unix).
    ///
    /// # Errors
    /// [`ClientError::Io`].
    pub fn new(target: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(target);
        let tmp = tempfile::Builder::new()
            .prefix(".serment-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| ClientError::io(dir, e))?;
        pending().push(tmp.path().to_path_buf());
        Ok(AtomicFile {
            _registered: Registered(tmp.path().to_path_buf()),
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// The file to write to.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Flushes, fsyncs, renames over the target and fsyncs the directory.
    ///
    /// # Errors
    /// [`ClientError::Io`].
    pub fn commit(mut self) -> Result<()> {
        let target = self.target.clone();
        self.tmp.flush().map_err(|e| ClientError::io(&target, e))?;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| ClientError::io(&target, e))?;
        self.tmp
            .persist(&target)
            .map_err(|e| ClientError::io(&target, e.error))?;
        sync_dir(parent_dir(&target));
        Ok(())
    }
}

fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Best-effort fsync of a directory so a rename is durable (no-op where unsupported).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `path` atomically.
///
/// # Errors
/// [`ClientError::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::new(path)?;
    f.file()
        .write_all(bytes)
        .map_err(|e| ClientError::io(path, e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parts(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".part")
            })
            .count()
    }

    #[test]
    fn pending_temp_files_are_removed_by_the_signal_path_and_committed_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut unverified = AtomicFile::new(&dir.path().join("out.txt")).unwrap();
        unverified
            .file()
            .write_all(b"unverified plaintext")
            .unwrap();
        let mut done = AtomicFile::new(&dir.path().join("done.txt")).unwrap();
        done.file().write_all(b"verified").unwrap();
        done.commit().unwrap();
        assert_eq!(parts(dir.path()), 1);
        remove_pending();
        assert_eq!(parts(dir.path()), 0, "the unverified temp file is gone");
        assert_eq!(
            std::fs::read(dir.path().join("done.txt")).unwrap(),
            b"verified"
        );
        drop(unverified);
        assert!(!dir.path().join("out.txt").exists());
    }
}

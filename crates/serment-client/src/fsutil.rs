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
    overwrite: bool,
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
        if !dir.is_dir() {
            return Err(ClientError::io(
                target,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("directory {} does not exist", dir.display()),
                ),
            ));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".serment-")
            .suffix(".part")
            .tempfile_in(dir)
            // The temporary file's own name says nothing useful to the user: report the target.
            .map_err(|e| ClientError::io(target, bare_io_error(&e)))?;
        pending().push(tmp.path().to_path_buf());
        Ok(AtomicFile {
            _registered: Registered(tmp.path().to_path_buf()),
            tmp,
            target: target.to_path_buf(),
            overwrite: true,
        })
    }

    /// As [`AtomicFile::new`], but [`AtomicFile::commit`] refuses to replace an existing target
    /// ([`ClientError::OutputExists`]); the check and the rename are one atomic step
    /// (`link(2)`/`renameat2(RENAME_NOREPLACE)`, through `tempfile`'s `persist_noclobber`).
    ///
    /// # Errors
    /// [`ClientError::OutputExists`] if `target` exists now; [`ClientError::Io`].
    pub fn no_clobber(target: &Path) -> Result<AtomicFile> {
        if target.symlink_metadata().is_ok() {
            return Err(ClientError::OutputExists(target.display().to_string()));
        }
        let mut f = AtomicFile::new(target)?;
        f.overwrite = false;
        Ok(f)
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
        if self.overwrite {
            self.tmp
                .persist(&target)
                .map_err(|e| ClientError::io(&target, e.error))?;
        } else {
            self.tmp.persist_noclobber(&target).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    ClientError::OutputExists(target.display().to_string())
                } else {
                    ClientError::io(&target, e.error)
                }
            })?;
        }
        sync_dir(parent_dir(&target));
        Ok(())
    }
}

/// The OS error alone, without the path `tempfile` appends to its messages.
fn bare_io_error(e: &std::io::Error) -> std::io::Error {
    e.raw_os_error().map_or_else(
        || std::io::Error::from(e.kind()),
        std::io::Error::from_raw_os_error,
    )
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

    #[test]
    fn no_clobber_refuses_an_existing_target_even_if_it_appears_late() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.pdf");
        std::fs::write(&target, b"mine").unwrap();
        assert!(matches!(
            AtomicFile::no_clobber(&target),
            Err(ClientError::OutputExists(_))
        ));
        // The target appears between the check and the rename: still refused, nothing replaced.
        let late = dir.path().join("late.pdf");
        let mut f = AtomicFile::no_clobber(&late).unwrap();
        f.file().write_all(b"new").unwrap();
        std::fs::write(&late, b"someone else's").unwrap();
        assert!(matches!(f.commit(), Err(ClientError::OutputExists(_))));
        assert_eq!(std::fs::read(&late).unwrap(), b"someone else's");
        assert_eq!(parts(dir.path()), 0);
    }

    #[test]
    fn a_missing_directory_is_named_without_the_temporary_path() {
        let dir = tempfile::tempdir().unwrap();
        let e = AtomicFile::new(&dir.path().join("nodir/x.pdf")).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("nodir/x.pdf") && m.contains("does not exist"),
            "{m}"
        );
        assert!(!m.contains(".part"), "{m}");
    }
}

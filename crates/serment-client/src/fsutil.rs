//! Atomic file writes: write to a temporary file in the target directory, fsync, rename, fsync
//! the directory. A crash or an error leaves either the old file or the new one, never half.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{ClientError, Result};

/// A temporary file next to `target`, renamed over it by [`AtomicFile::commit`] and deleted if
/// dropped before.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: NamedTempFile,
    target: std::path::PathBuf,
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
        Ok(AtomicFile {
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

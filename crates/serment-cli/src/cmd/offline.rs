//! `serment seal`, `serment open` and `serment id export-record`: local, offline sealing into the
//! container of PROTOCOL.md §6.4, with exactly the library code behind `put` and `get`
//! (`serment_core::document::seal` / `open`).

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use serment_client::ClientError;
use serment_client::contacts::fingerprint;
use serment_client::fsutil::AtomicFile;
use serment_core::DocId;
use serment_core::document::{self, Metadata, SealInput};
use serment_core::identity::DeviceRecord;
use serment_core::wrap::Recipient;

use super::{Ctx, now_rfc3339};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// Output buffer: the pipeline writes 512 KiB runs, which bypass it; it gathers the small writes
/// (container prefix, wraps, header, trailer).
const OUT_BUF: usize = 64 * 1024;
/// The largest device record file read.
const MAX_RECORD_FILE: u64 = 4096;
/// Bytes written between two background flushes of the output file.
const SYNC_BEHIND_BYTES: u64 = 32 * 1024 * 1024;

/// Writes to the output file and, every [`SYNC_BEHIND_BYTES`], starts an `fdatasync` of it on a
/// background thread (one at a time), so the disk writes back while the pipeline computes and
/// the final fsync of [`AtomicFile::commit`] has little left to do. Durability is unchanged: the
/// commit still fsyncs the file and its directory before the rename is trusted.
struct SyncBehind<'f> {
    file: &'f mut std::fs::File,
    since_sync: u64,
    pending: Option<std::thread::JoinHandle<()>>,
}

impl<'f> SyncBehind<'f> {
    fn new(file: &'f mut std::fs::File) -> Self {
        SyncBehind {
            file,
            since_sync: 0,
            pending: None,
        }
    }

    fn maybe_sync(&mut self) {
        if self.since_sync < SYNC_BEHIND_BYTES
            || self.pending.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        if let Ok(clone) = self.file.try_clone() {
            self.since_sync = 0;
            // Best effort: an error here is met again by the commit's own fsync.
            self.pending = Some(std::thread::spawn(move || {
                let _ = clone.sync_data();
            }));
        }
    }
}

impl Write for SyncBehind<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.since_sync += n as u64;
        self.maybe_sync();
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for SyncBehind<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.pending.take() {
            let _ = h.join();
        }
    }
}

/// Arguments of `serment seal`.
pub(crate) struct SealArgs<'a> {
    pub(crate) input: &'a Path,
    pub(crate) output: &'a Path,
    pub(crate) to_records: &'a [PathBuf],
    pub(crate) title: Option<String>,
    pub(crate) mime: Option<String>,
}

/// Reads and verifies a device record file (raw `SRMD` bytes, as `id export-record` writes).
fn read_record(path: &Path) -> CliResult<DeviceRecord> {
    let f = std::fs::File::open(path).map_err(|e| CliError::io(path, e))?;
    let mut bytes = Vec::new();
    f.take(MAX_RECORD_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(path, e))?;
    if bytes.len() as u64 > MAX_RECORD_FILE {
        return Err(CliError::Input(format!(
            "{}: too large for a device record",
            path.display()
        )));
    }
    DeviceRecord::decode_verified(&bytes).map_err(|e| {
        CliError::Input(format!(
            "{}: not a valid device record: {e}",
            path.display()
        ))
    })
}

fn record_json(r: &DeviceRecord) -> serde_json::Value {
    json!({ "handle": r.handle, "device_id": r.device_id().to_string(),
            "fingerprint": fingerprint(&r.identity_id()) })
}

/// `serment id export-record -o FILE`: this device's record, signed by the identity key.
pub(crate) fn export_record(ctx: &Ctx, output: &Path) -> CliResult<()> {
    let ks = ctx.keystore()?;
    let bytes = ks.own_record()?;
    serment_client::fsutil::write_atomic(output, &bytes)?;
    let rec = ks.own_device_record()?;
    emit(
        ctx.json,
        &json!({ "record": output.display().to_string(), "device": record_json(&rec) }),
        &format!(
            "Wrote the device record of {} to {}\n  fingerprint: {}",
            rec.handle,
            output.display(),
            fingerprint(&rec.identity_id())
        ),
    );
    Ok(())
}

/// `serment seal IN -o OUT --to-record REC...`.
pub(crate) fn seal(ctx: &Ctx, a: SealArgs<'_>) -> CliResult<()> {
    let records = a
        .to_records
        .iter()
        .map(|p| read_record(p))
        .collect::<CliResult<Vec<_>>>()?;
    let recipients: Vec<Recipient> = records.iter().map(Recipient::from).collect();
    let f = std::fs::File::open(a.input).map_err(|e| CliError::io(a.input, e))?;
    let len = f.metadata().map_err(|e| CliError::io(a.input, e))?.len();
    let ks = ctx.keystore()?;
    let file_name = a
        .input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let meta = Metadata {
        content_length: len,
        mime_type: Some(
            a.mime
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
        ),
        title: a.title.or_else(|| file_name.clone()),
        file_name,
        created: now_rfc3339(),
        author_display: Some(ks.display_name().to_owned()),
        ..Metadata::default()
    };
    let doc_id = DocId::random().map_err(ClientError::Integrity)?;
    let mut tmp = AtomicFile::new(a.output)?;
    let sealed = {
        let mut w = BufWriter::with_capacity(OUT_BUF, SyncBehind::new(tmp.file()));
        let s = document::seal_container(
            SealInput {
                doc_id,
                doc_version: 1,
                author: &ks.device,
                recipients: &recipients,
                metadata: meta,
            },
            f,
            &mut w,
        )
        .map_err(|e| match e {
            serment_core::Error::Io(m) => CliError::Input(format!("{}: {m}", a.input.display())),
            other => ClientError::Integrity(other).into(),
        })?;
        w.flush().map_err(|e| CliError::io(a.output, e))?;
        s
    };
    tmp.commit()?;
    emit(
        ctx.json,
        &json!({ "output": a.output.display().to_string(), "doc_id": doc_id.to_string(),
                 "plaintext_bytes": len, "sealed_bytes": sealed.sealed_len,
                 "recipients": records.iter().map(record_json).collect::<Vec<_>>(),
                 "devices": sealed.wraps.len() }),
        &format!(
            "Sealed {} ({len} bytes) into {} for {} device(s) (you included)",
            a.input.display(),
            a.output.display(),
            sealed.wraps.len()
        ),
    );
    Ok(())
}

/// `serment open IN -o OUT [--author-record REC]`: verifies everything before the output file
/// appears; on any error no output file is left.
pub(crate) fn open(
    ctx: &Ctx,
    input: &Path,
    output: &Path,
    author_record: Option<&Path>,
) -> CliResult<()> {
    let author = author_record.map(read_record).transpose()?;
    let f = std::fs::File::open(input).map_err(|e| CliError::io(input, e))?;
    let ks = ctx.keystore()?;
    // Without --author-record, only documents this device wrote open.
    let (author_key, author_handle) = match &author {
        Some(r) => (r.signing_key, r.handle.clone()),
        None => (ks.device.signing_public_key(), ks.handle().to_owned()),
    };
    let mut tmp = AtomicFile::new(output)?;
    let opened = {
        let mut w = BufWriter::with_capacity(OUT_BUF, SyncBehind::new(tmp.file()));
        let o = document::open_container(&ks.device, &author_key, f, &mut w)
            .map_err(ClientError::Integrity)?;
        w.flush().map_err(|e| CliError::io(output, e))?;
        o
    };
    tmp.commit()?;
    emit(
        ctx.json,
        &json!({ "output": output.display().to_string(), "doc_id": opened.header.doc_id.to_string(),
                 "author": author_handle, "verified": true,
                 "content_bytes": opened.metadata.content_length,
                 "title": opened.metadata.title, "mime_type": opened.metadata.mime_type }),
        &format!(
            "Verified: written by {author_handle}\n  {} bytes -> {}",
            opened.metadata.content_length,
            output.display()
        ),
    );
    Ok(())
}

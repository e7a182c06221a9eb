//! `serment put`, `get`, `ls`, `share`, `accesses`.

use std::io::IsTerminal;
use std::path::Path;

use serde_json::json;
use serment_client::ClientError;
use serment_core::document::Metadata;

use super::{Ctx, doc_id, now_rfc3339};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// Files above this size get a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 8 * 1024 * 1024;

fn guess_mime(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => "application/fhir+json",
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("xml") => "application/xml",
        Some("txt") => "text/plain",
        Some("dcm") => "application/dicom",
        _ => "application/octet-stream",
    }
}

pub(crate) fn put(
    ctx: &Ctx,
    file: &Path,
    to: &[String],
    title: Option<String>,
    mime: Option<String>,
) -> CliResult<()> {
    let f = std::fs::File::open(file).map_err(|e| CliError::io(file, e))?;
    let len = f.metadata().map_err(|e| CliError::io(file, e))?.len();
    let mut s = ctx.session()?;
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let meta = Metadata {
        content_length: len,
        mime_type: Some(mime.unwrap_or_else(|| guess_mime(file).to_owned())),
        title: title.or_else(|| file_name.clone()),
        file_name,
        created: now_rfc3339(),
        author_display: Some(s.ks.display_name().to_owned()),
        ..Metadata::default()
    };
    let show_bar = !ctx.json && len >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal();
    let r = if show_bar {
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} sealing and uploading [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        let r = s.put(bar.wrap_read(f), meta, to);
        bar.finish_and_clear();
        r?
    } else {
        s.put(f, meta, to)?
    };
    emit(
        ctx.json,
        &json!({ "doc_id": r.doc_id.to_string(), "doc_version": r.doc_version, "blob_id": r.blob_id,
                 "sealed_bytes": r.sealed_len, "plaintext_bytes": len,
                 "recipients": r.recipients.iter().map(|k| k.to_string()).collect::<Vec<_>>() }),
        &format!(
            "Sealed {} ({len} bytes -> {} stored) for {} device(s)\n  document: {}",
            file.display(),
            r.sealed_len,
            r.recipients.len(),
            r.doc_id
        ),
    );
    Ok(())
}

pub(crate) fn get(
    ctx: &Ctx,
    doc: &str,
    version: Option<u32>,
    output: &Path,
    force: bool,
) -> CliResult<()> {
    let id = doc_id(doc)?;
    // Refused before the passphrase and before any fetch (which the log records as an access).
    if !force && output.symlink_metadata().is_ok() {
        return Err(ClientError::OutputExists(output.display().to_string()).into());
    }
    let mut s = ctx.session()?;
    let r = s.get_to_file(&id, version, output, force)?;
    let m = &r.opened.metadata;
    emit(
        ctx.json,
        &json!({ "doc_id": id.to_string(), "doc_version": r.opened.header.doc_version, "author": r.author,
                 "verified": true, "output": output.display().to_string(), "bytes": m.content_length,
                 "metadata": m }),
        &format!(
            "Verified document {id} v{} signed by {}\n  title: {}\n  wrote {} bytes to {}",
            r.opened.header.doc_version,
            r.author,
            m.title.as_deref().unwrap_or("-"),
            m.content_length,
            output.display()
        ),
    );
    Ok(())
}

/// Handles of the devices this keystore knows (its own and its pinned contacts'), by device id
/// (64 hex), for display only: nothing here is trusted for a decision.
fn known_devices(s: &serment_client::vault::Session) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    out.insert(s.ks.device.id().to_string(), s.ks.handle().to_owned());
    for h in s.ks.contacts().keys() {
        if let Ok(c) = serment_client::contacts::pinned(&s.ks, h) {
            for d in c.devices {
                out.insert(d.device_id().to_string(), h.clone());
            }
        }
    }
    out
}

/// Seconds since the Unix epoch as RFC 3339 (UTC), or the number if out of range.
fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

pub(crate) fn ls(ctx: &Ctx) -> CliResult<()> {
    let mut s = ctx.session()?;
    let docs = s.list()?;
    let authors = known_devices(&s);
    let mut text = String::new();
    for d in &docs {
        let short = d.author_device.get(..16).unwrap_or(&d.author_device);
        let author = authors
            .get(&d.author_device)
            .map_or_else(|| format!("device {short}"), |h| format!("{h} ({short})"));
        text.push_str(&format!(
            "{}  v{}  {:>10} bytes  author {author}\n",
            d.doc_id, d.doc_version, d.size,
        ));
    }
    emit(ctx.json, &json!({ "documents": docs }), text.trim_end());
    Ok(())
}

pub(crate) fn share(ctx: &Ctx, doc: &str, version: Option<u32>, to: &[String]) -> CliResult<()> {
    let id = doc_id(doc)?;
    let mut s = ctx.session()?;
    let devices = s.share(&id, version, to)?;
    emit(
        ctx.json,
        &json!({ "doc_id": id.to_string(), "shared_with": to, "devices": devices.len() }),
        &format!(
            "Shared {id} with {} ({} device(s))",
            to.join(", "),
            devices.len()
        ),
    );
    Ok(())
}

pub(crate) fn accesses(ctx: &Ctx, doc: &str) -> CliResult<()> {
    let id = doc_id(doc)?;
    let s = ctx.session()?;
    let list = s.accesses(&id)?;
    let mut text = String::new();
    for a in &list {
        text.push_str(&format!(
            "{}  v{}  {} ({}) {}\n",
            rfc3339(a.at),
            a.doc_version,
            a.handle.as_deref().unwrap_or("unknown handle"),
            a.device_id.get(..16).unwrap_or(&a.device_id),
            super::log::fetched(&a.what),
        ));
    }
    if list.is_empty() {
        text.push_str("No access recorded yet.\n");
    }
    text.push_str(
        "(As the server reports it, unproven: `serment audit` checks each access in the log.)",
    );
    emit(
        ctx.json,
        &json!({ "doc_id": id.to_string(), "accesses": list }),
        &text,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn access_times_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_958_232), "2026-11-29T13:17:12Z");
        // Out of range: the number, not a panic.
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
    }
}

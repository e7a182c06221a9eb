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

pub(crate) fn guess_mime(path: &Path) -> &'static str {
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
    to_team: Option<&str>,
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
    let mut team_epoch = None;
    let r = if let Some(team) = to_team {
        let (r, epoch) = s.put_to_team(f, meta, to, team)?;
        team_epoch = Some(epoch);
        r
    } else if show_bar {
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
    super::print_rotation_notices(&serment_client::contacts::rotation_notices(&s.ks, to));
    unverified_notice(&s, to, to_team.is_some());
    let team_line = match (to_team, team_epoch) {
        (Some(team), Some(e)) => format!("\n  shared with team {team} (one key wrap, epoch {e})"),
        _ => String::new(),
    };
    emit(
        ctx.json,
        &json!({ "doc_id": r.doc_id.to_string(), "doc_version": r.doc_version, "blob_id": r.blob_id,
                 "sealed_bytes": r.sealed_len, "plaintext_bytes": len,
                 "recipients": r.recipients.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                 "team": to_team, "team_epoch": team_epoch, "unregistered": null }),
        &format!(
            "Sealed {} ({len} bytes -> {} stored) for {} device(s)\n  document: {}{team_line}",
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
    super::check_output(output, force)?;
    let mut s = ctx.session()?;
    let r = s.get_to_file(&id, version, output, force)?;
    // The verified metadata `get` cached for `ls`.
    s.ks.save()?;
    super::device::warn_identity_changes(&mut s);
    super::print_rotation_notices(&serment_client::contacts::rotation_notices(
        &s.ks,
        [&r.author],
    ));
    let m = &r.opened.metadata;
    emit(
        ctx.json,
        &json!({ "doc_id": id.to_string(), "doc_version": r.opened.header.doc_version, "author": r.author,
                 "verified": true, "kem": r.kem.name(), "output": output.display().to_string(), "bytes": m.content_length,
                 "metadata": m }),
        &format!(
            "Verified document {id} v{} signed by {}\n  title: {}\n  wrote {} bytes to {}",
            r.opened.header.doc_version,
            r.author,
            crate::output::safe(m.title.as_deref().unwrap_or("-")),
            m.content_length,
            output.display()
        ),
    );
    Ok(())
}

/// Says, on stderr, which recipients' fingerprints the user has not compared out of band yet,
/// and when a document is sealed for its author alone (no `--to`, no `--to-team`).
fn unverified_notice(s: &serment_client::vault::Session, to: &[String], to_team: bool) {
    if to.is_empty() && !to_team {
        crate::output::note(
            "serment: note: no --to given: sealed for you alone (share it later with `serment share`)",
        );
    }
    for h in to {
        if s.ks.contacts().get(h).is_some_and(|c| !c.verified) {
            crate::output::note(&format!(
                "serment: note: {h}'s fingerprint is not verified yet: compare it with {h} out of \
                 band (`serment contact verify {h}`), then confirm it with --confirm"
            ));
        }
    }
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

/// A size in words: bytes below 10 kB, else kB/MB/GB (decimal, one decimal place).
fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 10_000 {
        return format!("{n} B");
    }
    #[allow(clippy::cast_precision_loss)] // display only
    let mut v = n as f64 / 1000.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

pub(crate) fn ls(ctx: &Ctx) -> CliResult<()> {
    let mut s = ctx.session()?;
    let docs = s.list()?;
    super::device::warn_identity_changes(&mut s);
    let authors = known_devices(&s);
    let mut text = String::new();
    let mut rows = Vec::new();
    let mut unknown = 0usize;
    for d in &docs {
        let handle = authors.get(&d.author_device);
        let known = s.ks.known_document(&d.doc_id, d.doc_version);
        let (author_device, handle) = match known.filter(|k| !k.author_device.is_empty()) {
            Some(k) => (k.author_device.as_str(), authors.get(&k.author_device)),
            None => (d.author_device.as_str(), handle),
        };
        let short = author_device.get(..16).unwrap_or(author_device);
        let author = handle.map_or_else(|| format!("device {short}"), Clone::clone);
        let committed = super::rfc3339(d.created_at);
        match known {
            Some(k) => text.push_str(&format!(
                "{}  v{}  {}  {}  {}  {}  by {author}\n",
                d.doc_id,
                d.doc_version,
                k.created.as_deref().map_or_else(
                    || format!("committed {committed}"),
                    |c| format!("sealed {}", crate::output::safe(c))
                ),
                crate::output::safe(k.title.as_deref().unwrap_or("(untitled)")),
                crate::output::safe(
                    k.resource_type
                        .as_deref()
                        .or(k.mime_type.as_deref())
                        .unwrap_or("-")
                ),
                human_size(k.content_length),
            )),
            None => {
                unknown += 1;
                text.push_str(&format!(
                    "{}  v{}  committed {committed}  (not opened on this device)  {} sealed  by {author}\n",
                    d.doc_id,
                    d.doc_version,
                    human_size(d.size),
                ));
            }
        }
        rows.push(json!({
            "doc_id": d.doc_id, "doc_version": d.doc_version, "author_device": author_device,
            "author": handle, "committed_at": committed, "sealed_bytes": d.size,
            "title": known.and_then(|k| k.title.as_deref()),
            "mime_type": known.and_then(|k| k.mime_type.as_deref()),
            "resource_type": known.and_then(|k| k.resource_type.as_deref()),
            "created": known.and_then(|k| k.created.as_deref()),
            "plaintext_bytes": known.map(|k| k.content_length),
        }));
    }
    if docs.is_empty() {
        text.push_str("No document visible to this device yet.");
    } else if unknown > 0 {
        text.push_str(&format!(
            "({unknown} not opened on this device yet: `serment get` verifies a document and \
             shows its title here; titles are sealed, the server never sees them.)"
        ));
    }
    emit(ctx.json, &json!({ "documents": rows }), text.trim_end());
    Ok(())
}

/// `serment rewrap --pq [DOC…|--all]` (issue 15, PROTOCOL.md §7.2).
pub(crate) fn rewrap(ctx: &Ctx, pq: bool, all: bool, docs: &[String]) -> CliResult<()> {
    if !pq {
        return Err(CliError::Input(
            "say which wraps to make: --pq (the hybrid X-Wing suite, the only one)".into(),
        ));
    }
    let ids = docs
        .iter()
        .map(|d| doc_id(d))
        .collect::<CliResult<Vec<_>>>()?;
    let mut s = ctx.session()?;
    let done = s.rewrap_pq(if all { None } else { Some(&ids) })?;
    let rewrapped: usize = done.iter().map(|d| d.rewrapped.len()).sum();
    let still: usize = done.iter().map(|d| d.still_classical.len()).sum();
    let versions: Vec<_> = done
        .iter()
        .map(|d| {
            json!({ "doc_id": d.doc_id.to_string(), "version": d.version, "kem": "X-Wing",
                    "rewrapped": d.rewrapped.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "log_indices": d.log_indices,
                    "still_classical": d.still_classical.iter().map(ToString::to_string).collect::<Vec<_>>() })
        })
        .collect();
    let mut text = format!(
        "Re-wrapped {rewrapped} key(s) with X-Wing (ML-KEM-768 + X25519) over {} document version(s); \
         the classical wraps they replace were deleted on the server, and each new wrap is in the log.",
        done.len()
    );
    if still > 0 {
        text.push_str(&format!(
            "\n  {still} wrap(s) stay classical: their devices have no hybrid key yet (they can run \
             `serment id upgrade`, then you run this again)."
        ));
    }
    emit(
        ctx.json,
        &json!({ "versions": versions, "rewrapped": rewrapped, "still_classical": still }),
        &text,
    );
    Ok(())
}

pub(crate) fn share(
    ctx: &Ctx,
    doc: &str,
    version: Option<u32>,
    to: &[String],
    to_team: Option<&str>,
) -> CliResult<()> {
    let id = doc_id(doc)?;
    let mut s = ctx.session()?;
    let shared = if to.is_empty() {
        Ok(Vec::new())
    } else {
        s.share(&id, version, to)
    };
    let devices = match shared {
        Ok(d) => d,
        // Name the author by handle when this device knows it.
        Err(ClientError::NotAuthor { author_device, .. }) => {
            let who = known_devices(&s)
                .get(&author_device)
                .cloned()
                .unwrap_or_else(|| format!("device {}", author_device.get(..16).unwrap_or("?")));
            return Err(CliError::NotAuthor(format!(
                "only the author can share document {id}: it was sealed by {who}; ask {who} to \
                 share it"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut already = false;
    let team_epoch = match to_team {
        Some(team) => {
            let v = match version {
                Some(v) => v,
                None => s.latest_version(&id)?,
            };
            match s.share_to_team(&id, v, team) {
                Ok((e, _)) => Some(e),
                // Shared before (hostile review F24): the server refuses a second wrap to the
                // same epoch; the proven log, not the server's word, says it holds one.
                Err(e @ ClientError::Server { status: 409, .. }) => {
                    match s.team_share_in_log(&id, v, team)? {
                        Some(epoch) => {
                            already = true;
                            Some(epoch)
                        }
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => None,
    };
    super::print_rotation_notices(&serment_client::contacts::rotation_notices(&s.ks, to));
    unverified_notice(&s, to, true);
    emit(
        ctx.json,
        &json!({ "doc_id": id.to_string(), "shared_with": to, "devices": devices.len(),
                 "team": to_team, "team_epoch": team_epoch, "team_already_shared": already }),
        &if let (Some(team), Some(e)) = (to_team, team_epoch) {
            if already {
                format!("Already shared with {team} (epoch {e}): document {id}, nothing to add")
            } else {
                format!("Shared {id} with team {team} (one key wrap, epoch {e})")
            }
        } else if devices.is_empty() {
            format!("Already shared {id} with {}: nothing to add", to.join(", "))
        } else {
            format!(
                "Shared {id} with {} ({} new device(s))",
                to.join(", "),
                devices.len()
            )
        },
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
            super::rfc3339(a.at),
            a.doc_version,
            if a.handle.is_empty() {
                "unknown handle"
            } else {
                &a.handle
            },
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
        &json!({ "doc_id": id.to_string(), "proven": false, "accesses": list.iter().map(|a| json!({
            "at": super::rfc3339(a.at),
            "doc_version": a.doc_version, "what": a.what, "device_id": a.device_id,
            "handle": a.handle })).collect::<Vec<_>>() }),
        &text,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_in_words() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(9_999), "9999 B");
        assert_eq!(human_size(10_000), "10.0 kB");
        assert_eq!(human_size(1_234_567), "1.2 MB");
        assert_eq!(human_size(5_000_000_000), "5.0 GB");
        assert_eq!(human_size(u64::MAX), "18446744.1 TB");
    }
}

//! `serment sync`, `serment ls --offline`, `serment get --offline` (issue 12 §4, PROTOCOL.md §14):
//! reading while the server is down, from the encrypted replica beside the keystore.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use serment_client::replica::{self, Manifest};

use super::{Ctx, doc_id};
use crate::error::{CliError, CliResult};
use crate::output::{emit, safe};

/// `<home>/replica`, beside the keystore.
fn replica_dir(ctx: &Ctx) -> CliResult<PathBuf> {
    Ok(replica::dir_beside(&ctx.keystore_path()?))
}

/// The replica's age, for every offline output: when its checkpoint was verified (the end of
/// the sync), how long ago, and its size.
fn replica_json(m: &Manifest) -> Value {
    let now = serment_client::now_secs();
    json!({ "synced_at": super::rfc3339(m.synced_at),
            "age_seconds": now.saturating_sub(m.synced_at),
            "checkpoint_size": m.checkpoint_size() })
}

fn age_text(m: &Manifest) -> String {
    let age = serment_client::now_secs().saturating_sub(m.synced_at);
    let words = if age < 120 {
        format!("{age} s")
    } else if age < 2 * 3600 {
        format!("{} min", age / 60)
    } else if age < 2 * 86_400 {
        format!("{} h", age / 3600)
    } else {
        format!("{} days", age / 86_400)
    };
    format!(
        "offline replica: checkpoint of {} entries verified {} ({words} ago)",
        m.checkpoint_size(),
        super::rfc3339(m.synced_at)
    )
}

/// `serment sync`.
pub(crate) fn sync(ctx: &Ctx) -> CliResult<()> {
    let dir = replica_dir(ctx)?;
    let mut s = ctx.session()?;
    let r = s.sync_replica(&dir)?;
    let m = &r.manifest;
    let mut text = format!(
        "Synced the offline replica: {} version(s) held ({} new, {} kept), checkpoint of {} entries\n  {}",
        m.versions.len(),
        r.added.len(),
        r.kept,
        m.checkpoint_size(),
        dir.display()
    );
    if !r.erased.is_empty() {
        text.push_str(&format!(
            "\n  erased (tombstone proven in the log), removed: {}",
            r.erased.join(", ")
        ));
    }
    if !r.skipped.is_empty() {
        text.push_str(&format!(
            "\n  not kept offline (over {} bytes sealed): {}",
            replica::MAX_REPLICA_VERSION,
            r.skipped.join(", ")
        ));
    }
    if !r.unlisted_kept.is_empty() {
        let ids: Vec<String> = r
            .unlisted_kept
            .iter()
            .map(|u| {
                if u.erasure_checked {
                    u.doc_id.clone()
                } else {
                    format!(
                        "{} (its log refused to this device: not checked for an erasure)",
                        u.doc_id
                    )
                }
            })
            .collect();
        text.push_str(&format!(
            "\n  no longer listed for this device (removed as a recipient, or hidden by the \
             server), kept as verified: {}",
            ids.join(", ")
        ));
    }
    if !r.lost_kept.is_empty() {
        let ids: Vec<String> = r
            .lost_kept
            .iter()
            .map(|(d, st)| format!("{d} (statement {})", st.get(..16).unwrap_or(st)))
            .collect();
        text.push_str(&format!(
            "\n  lost in the restore you accepted, kept from the old log (not in the restored \
             one; their authors send them again): {}",
            ids.join(", ")
        ));
    }
    for x in &r.refused {
        let what = x
            .doc_version
            .map_or_else(|| x.doc_id.clone(), |v| format!("{}/{v}", x.doc_id));
        let hint = if x.code == "unknown_author" {
            " (add the author as a contact: `serment contact add HANDLE`)"
        } else {
            ""
        };
        text.push_str(&format!(
            "\n  REFUSED, not stored: {what}: {} check: {}{hint}",
            x.check.name(),
            x.message
        ));
    }
    let refused: Vec<Value> = r
        .refused
        .iter()
        .map(|x| {
            json!({ "doc_id": x.doc_id, "doc_version": x.doc_version, "check": x.check.name(),
                    "code": x.code, "message": x.message })
        })
        .collect();
    let unlisted: Vec<Value> = r
        .unlisted_kept
        .iter()
        .map(|u| json!({ "doc_id": u.doc_id, "erasure_checked": u.erasure_checked }))
        .collect();
    let out = json!({ "replica_dir": dir.display().to_string(), "server": m.server,
                      "versions": m.versions.len(), "added": r.added, "kept": r.kept,
                      "erased": r.erased, "skipped": r.skipped, "rebuilt": r.rebuilt,
                      "refused": refused, "unlisted_kept": unlisted,
                      "lost_kept": r.lost_kept.iter()
                          .map(|(d, st)| json!({ "doc_id": d, "statement": st }))
                          .collect::<Vec<_>>(),
                      "replica": replica_json(m) });
    if r.refused.is_empty() {
        emit(ctx.json, &out, &text);
        return Ok(());
    }
    // Something was refused: the rest is synced and the manifest written, but a timer must see
    // it. Exit 4 when any check refused (integrity, unknown author, withheld, log), else the
    // first refusal's code (5: the server or the network failed on that version).
    let exit = if r.refused.iter().any(|x| x.exit_code == 4) {
        4
    } else {
        r.refused.first().map_or(4, |x| x.exit_code)
    };
    // With --json the report goes out in the error object (one object on stdout).
    if !ctx.json {
        emit(false, &Value::Null, &text);
    }
    Err(CliError::SyncRefused {
        refused: r.refused.len(),
        exit,
        report: Box::new(out),
    })
}

/// `serment ls --offline`.
pub(crate) fn ls(ctx: &Ctx) -> CliResult<()> {
    let dir = replica_dir(ctx)?;
    let ks = ctx.keystore()?;
    let m = replica::load_manifest(&ks, &dir)?;
    let mut text = String::new();
    let mut rows = Vec::new();
    for v in m.versions.values() {
        let lost = m.lost.get(&v.doc_id);
        text.push_str(&format!(
            "{}  v{}  {}  {}  {}  {} bytes  by {}{}\n",
            v.doc_id,
            v.doc_version,
            v.created
                .as_deref()
                .map_or_else(|| "-".to_owned(), |c| format!("sealed {}", safe(c))),
            safe(v.title.as_deref().unwrap_or("(untitled)")),
            safe(
                v.resource_type
                    .as_deref()
                    .or(v.mime_type.as_deref())
                    .unwrap_or("-")
            ),
            v.content_length,
            safe(&v.author),
            lost.map_or_else(String::new, |st| format!(
                "  LOST in the restore you accepted (statement {}): kept from the old log",
                st.get(..16).unwrap_or(st)
            )),
        ));
        rows.push(json!({
            "lost_in_restore": lost,
            "doc_id": v.doc_id, "doc_version": v.doc_version, "author": v.author,
            "author_device": v.author_device, "sealed_bytes": v.sealed_bytes,
            "title": v.title, "mime_type": v.mime_type, "resource_type": v.resource_type,
            "created": v.created, "plaintext_bytes": v.content_length,
        }));
    }
    if m.versions.is_empty() {
        text.push_str("No document in the offline replica.\n");
    }
    text.push_str(&age_text(&m));
    emit(
        ctx.json,
        &json!({ "offline": true, "documents": rows, "replica": replica_json(&m) }),
        &text,
    );
    Ok(())
}

/// `serment get --offline DOC -o FILE`.
pub(crate) fn get(
    ctx: &Ctx,
    doc: &str,
    version: Option<u32>,
    output: &Path,
    force: bool,
) -> CliResult<()> {
    let id = doc_id(doc)?;
    super::check_output(output, force)?;
    let dir = replica_dir(ctx)?;
    let ks = ctx.keystore()?;
    let got = replica::get_offline(ks, &dir, &id, version, output, force)?;
    let r = &got.result;
    let m = &r.opened.metadata;
    emit(
        ctx.json,
        &json!({ "doc_id": id.to_string(), "doc_version": r.opened.header.doc_version,
                 "author": r.author, "verified": true, "kem": r.kem.name(),
                 "output": output.display().to_string(), "bytes": m.content_length,
                 "metadata": m, "offline": true, "replica": replica_json(&got.manifest),
                 "lost_in_restore": got.lost.as_ref().map(|(st, _)| st) }),
        &format!(
            "Verified document {id} v{} signed by {} (offline)\n  title: {}\n  wrote {} bytes to {}\n  {}",
            r.opened.header.doc_version,
            r.author,
            safe(m.title.as_deref().unwrap_or("-")),
            m.content_length,
            output.display(),
            // Never shown as verified under the restored checkpoint (newcomer 6 N5).
            match &got.lost {
                Some((st, size)) => format!(
                    "LOST in the restore you accepted (loss statement {}): verified against the \
                     checkpoint of {size} entries of the old log this device gave up, not the \
                     restored log; ask its author to send it again",
                    st.get(..16).unwrap_or(st)
                ),
                None => age_text(&got.manifest),
            }
        ),
    );
    Ok(())
}

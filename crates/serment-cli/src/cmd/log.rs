//! `serment verify-log`, `audit`, `revoke-device`, `rotate-identity`, `witnesses`
//! (PROTOCOL.md §11).

use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};
use serment_client::api::Api;
use serment_client::log::{AuditLine, LogReport};
use serment_core::log::note::VerifierKey;
use serment_core::log::pin::LogTrust;

use super::{Ctx, doc_id, rfc3339};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// `serment verify-log`.
#[derive(Debug, Args)]
pub(crate) struct VerifyLogArgs {
    /// Server base URL (default: the server this keystore is registered with). With a
    /// keystore that pinned this server's log, the log must extend the pinned checkpoint, and
    /// a newer checkpoint verified here (and cosigned as the keystore requires) becomes the
    /// pin (`serment pinned-checkpoint` prints it).
    #[arg(long, env = "SERMENT_SERVER")]
    pub(crate) server: Option<String>,
    /// The log's verifier key, as `serment serve` prints it (default: the server's, trusted;
    /// an auditor without a keystore gives it).
    #[arg(long)]
    pub(crate) log_key: Option<String>,
}

/// `serment audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// One document (default: every document this device authored or may read).
    #[arg(long)]
    pub(crate) doc: Option<String>,
    /// Print FHIR R4 AuditEvent resources (a Bundle) instead of lines.
    #[arg(long)]
    pub(crate) fhir: bool,
}

/// `serment revoke-device`.
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The device id to revoke (64 hex, as `serment id show` prints it).
    pub(crate) device: String,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub(crate) yes: bool,
    /// Allow revoking the identity's last active device, which locks the identity out for good.
    #[arg(long)]
    pub(crate) force: bool,
    /// Revoking another device rotates the identity key; re-certify this other active device
    /// under the new key (repeatable). Name only devices you hold yourself: one certified with the
    /// lost device's identity key behind your back would otherwise stay.
    #[arg(long = "keep", value_name = "DEVICE")]
    pub(crate) keep: Vec<String>,
    /// Re-certify none of the other active devices (they are retired with the revoked one and can
    /// be linked again with `serment device link`).
    #[arg(long)]
    pub(crate) drop_others: bool,
}

/// `serment witnesses`.
#[derive(Debug, Args)]
pub(crate) struct WitnessesArgs {
    /// Witness verifier keys (repeatable), as `serment witness` prints them.
    #[arg(long = "key")]
    pub(crate) keys: Vec<String>,
    /// How many must cosign each checkpoint.
    #[arg(long, default_value_t = 1)]
    pub(crate) quorum: usize,
}

/// Runs a full audit of `server`'s log.
pub(crate) fn run_verify_log(
    server: &str,
    transport: &serment_client::transport::Transport,
    log_key: Option<&str>,
) -> CliResult<LogReport> {
    let api = Api::with_transport(server, transport)?;
    let vkey = match log_key {
        Some(k) => k.to_owned(),
        None => api.log_key()?,
    };
    let t = LogTrust {
        log_key: VerifierKey::parse(&vkey).map_err(|e| CliError::Input(format!("log key: {e}")))?,
        witnesses: Vec::new(),
        quorum: 0,
    };
    Ok(serment_client::log::verify_log(&api, &t)?)
}

/// `run_verify_log`, checked against the keystore's pins when there is a keystore with a pin
/// for `server` (PROTOCOL.md §11.7): a replaced log key, a rolled-back or a forked log is an
/// error (exit 4) even if the log is self-consistent.
fn verify_log_with_pins(ctx: &Ctx, server: &str, log_key: Option<&str>) -> CliResult<LogReport> {
    let transport = ctx.transport()?;
    if !ctx.keystore_path()?.exists() {
        return run_verify_log(server, &transport, log_key);
    }
    let mut ks = ctx.keystore()?;
    // The private CA recorded at `register`, unless --ca-cert names one.
    let transport = serment_client::vault::effective_transport(&ks, &transport)?;
    let api = Api::with_transport(server, &transport)?;
    let Some(pinned) = ks.log_state(api.base()).map(|s| s.vkey.clone()) else {
        return run_verify_log(server, &transport, log_key);
    };
    if let Some(k) = log_key
        && k != pinned
    {
        return Err(CliError::Input(format!(
            "--log-key {k} is not the log key pinned in the keystore for {server} ({pinned})"
        )));
    }
    let r = serment_client::log::verify_log_and_advance(&api, &mut ks)?;
    if r.pin_moved_to.is_some() {
        ks.save()?;
    }
    Ok(r)
}

pub(crate) fn verify_log(ctx: &Ctx, a: VerifyLogArgs) -> CliResult<()> {
    let server = match a.server {
        Some(s) => s,
        None => {
            let path = ctx.keystore_path()?;
            if !path.exists() {
                return Err(CliError::Input(
                    "give --server URL (no keystore here names one: an auditor without a \
                     keystore gives --server and --log-key)"
                        .into(),
                ));
            }
            ctx.keystore()?
                .server()
                .ok_or_else(|| {
                    CliError::Input(
                        "this keystore is not registered with a server: give --server URL".into(),
                    )
                })?
                .to_owned()
        }
    };
    let r = verify_log_with_pins(ctx, &server, a.log_key.as_deref())?;
    let v = serde_json::to_value(&r).unwrap_or(Value::Null);
    let mut text = format!(
        "log of {} entries: root {}, {} handle(s), {} device(s), kinds {:?}",
        r.size,
        if r.root_matches {
            "matches the signed checkpoint"
        } else {
            "DOES NOT MATCH"
        },
        r.handles,
        r.devices,
        r.kinds
    );
    if let Some(p) = r.pinned_size {
        text.push_str(&format!(
            "\n  extends the checkpoint of {p} entries pinned in your keystore, same log key"
        ));
    }
    if let Some(n) = r.pin_moved_to {
        text.push_str(&format!(
            "\n  your keystore's pin moved forward to this checkpoint of {n} entries \
             (`serment pinned-checkpoint` prints it)"
        ));
    }
    if let Some(why) = &r.pin_kept {
        text.push_str(&format!(
            "\n  your keystore's pin stays at {} entries: {why}",
            r.pinned_size.unwrap_or_default()
        ));
    }
    if r.unreceipted_accesses > 0 {
        text.push_str(&format!(
            "\n  WARNING: {} access(es) {NOT_COSIGNED} (see `serment audit`)",
            r.unreceipted_accesses
        ));
    }
    for e in &r.errors {
        text.push_str(&format!("\n  ERROR: {e}"));
    }
    if r.verified() {
        emit(ctx.json, &json!({ "verified": true, "report": v }), &text);
        Ok(())
    } else {
        // With --json the report goes out in the error object (one object on stdout).
        if !ctx.json {
            emit(false, &serde_json::Value::Null, &text);
        }
        Err(CliError::LogInvalid {
            problems: r.errors.len(),
            report: Box::new(v),
        })
    }
}

/// One line as a FHIR R4 AuditEvent, shaped for the French event-traceability (TDE) profile:
/// a RESTful read (`type` rest / `subtype` read), `action` R, `recorded` and `period.start` the
/// reader's signed time, `outcome` 0 (success), the reading device as requesting `agent`, the
/// document as `entity` (with the log index and checkpoint size that prove the line), and the
/// log as `source`.
pub(crate) fn audit_event(l: &AuditLine, origin: &str) -> Value {
    let when = rfc3339(l.at);
    json!({
        "resourceType": "AuditEvent",
        "id": format!("serment-log-{}", l.index),
        "meta": { "profile": ["https://interop.esante.gouv.fr/ig/fhir/tde/StructureDefinition/tde-auditevent"] },
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
        "subtype": [{ "system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read" }],
        "action": "R",
        // Without a receipt the time is the server's word only: no reader's start time.
        "period": if l.receipted {
            json!({ "start": when, "end": rfc3339(l.logged_at) })
        } else {
            json!({ "end": rfc3339(l.logged_at) })
        },
        "recorded": rfc3339(l.logged_at),
        "outcome": "0",
        "agent": [{
            "type": { "coding": [{ "system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153", "display": "Source Role ID" }] },
            "who": {
                "identifier": { "system": "urn:serment:device", "value": l.device_id },
                "display": l.handle
            },
            "requestor": true
        }],
        "source": {
            "site": origin,
            "observer": { "display": format!("Serment transparency log {origin}") },
            "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server" }]
        },
        "entity": [{
            "what": { "identifier": { "system": "urn:serment:document", "value": l.doc_id } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "3", "display": "Report" },
            "detail": [
                { "type": "doc_version", "valueString": l.doc_version.to_string() },
                { "type": "fetched", "valueString": l.what },
                { "type": "log_index", "valueString": l.index.to_string() },
                { "type": "checkpoint_size", "valueString": l.checkpoint_size.to_string() },
                { "type": "cosigned_by_reader", "valueString": l.receipted.to_string() }
            ]
        }]
    })
}

/// What an access fetched, in words (PROTOCOL.md §11.3 `what`).
pub(crate) fn fetched(what: &str) -> &'static str {
    match what {
        "wrap" => "fetched its key",
        "blob" => "downloaded the sealed document",
        _ => "fetched something",
    }
}

/// `serment pinned-checkpoint`: the keystore's newest verified checkpoint, offline.
#[derive(Debug, Args)]
pub(crate) struct PinnedCheckpointArgs {
    /// Write the note to this file (created, never overwritten) instead of stdout.
    #[arg(short = 'o', long)]
    pub(crate) output: Option<PathBuf>,
}

/// Prints (or writes) the checkpoint note this keystore last verified for its server, from the
/// keystore alone: the server may be the attacked one (docs/BACKUP.md, restore runbook).
pub(crate) fn pinned_checkpoint(ctx: &Ctx, a: &PinnedCheckpointArgs) -> CliResult<()> {
    let ks = ctx.keystore()?;
    let server = ks
        .server()
        .ok_or(serment_client::ClientError::NotRegistered)?
        .to_owned();
    let state = ks.log_state(&server);
    let note = state.and_then(|s| s.checkpoint.clone()).ok_or_else(|| {
        CliError::Input(format!(
            "this keystore has verified no checkpoint of {server} yet (run any online command first)"
        ))
    })?;
    let size = note
        .lines()
        .nth(1)
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or_else(|| CliError::Local("the pinned checkpoint note is malformed".into()))?;
    if let Some(path) = &a.output {
        write_new_note(path, &note)?;
    }
    let text = match &a.output {
        Some(path) => format!(
            "checkpoint of {size} entries for {server} written to {}",
            path.display()
        ),
        None => note.trim_end().to_owned(),
    };
    emit(
        ctx.json,
        &json!({ "server": server, "size": size, "checkpoint": note,
                 "log_key": state.map(|s| s.vkey.clone()),
                 "output": a.output.as_ref().map(|p| p.display().to_string()) }),
        &text,
    );
    Ok(())
}

/// Writes a checkpoint note to `path`, a new file (`pinned-checkpoint -o`, `witness
/// --export-checkpoint`): an existing file is never written over, and is told apart from other
/// I/O errors (newcomer 6 N12).
pub(crate) fn write_new_note(path: &std::path::Path, note: &str) -> CliResult<()> {
    use std::io::Write as _;
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::Input(format!(
                "{} already exists: a checkpoint note is never written over an existing file \
                 (it may be the one a restore needs); give a new file name",
                path.display()
            )));
        }
        Err(e) => return Err(CliError::io(path, e)),
    };
    f.write_all(note.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::io(path, e))
}

/// The flag printed under a download by this device's recovery device (REVIEW3 S1).
const BY_RECOVERY_DEVICE: &str = "READ BY YOUR RECOVERY DEVICE: whoever holds your recovery code, or K of your recovery contacts";

/// The flag printed beside an access the reading device did not co-sign.
const NOT_COSIGNED: &str =
    "NOT CO-SIGNED by the reading device: a stolen credential or the server's own record";

pub(crate) fn audit(ctx: &Ctx, a: AuditArgs) -> CliResult<()> {
    let mut s = ctx.session()?;
    let mut lost_in_restore = Vec::new();
    let (per_doc, unlisted) = match &a.doc {
        Some(d) => {
            let d = doc_id(d)?;
            (vec![(d, s.audit(&d)?)], std::collections::BTreeSet::new())
        }
        None => {
            let all = s.audit_all()?;
            for d in &all.unavailable {
                eprintln!(
                    "serment: warning: {d} was known to this device but the server no longer \
                     lists nor serves it (hidden, or this device was removed as a recipient)"
                );
            }
            for (d, statement) in &all.lost {
                eprintln!(
                    "serment: note: {d} was lost in the restore you accepted (loss statement {}): \
                     its author sends it again",
                    statement.get(..16).unwrap_or(statement)
                );
                lost_in_restore.push(json!({ "doc_id": d.to_string(), "statement": statement }));
            }
            (all.documents, all.unlisted.into_iter().collect())
        }
    };
    let lines: Vec<&AuditLine> = per_doc.iter().flat_map(|(_, l)| l).collect();
    let unreceipted = lines.iter().filter(|l| !l.receipted).count();
    // REVIEW3 S1: a download of a sealed document by the recovery device this device made. No
    // honest flow does that (a recovery fetches only the recovery device's key wraps, to re-wrap
    // them for the new device), so whoever holds the recovery code is reading.
    // REVIEW4 T4: the same for the social recovery devices (kind 13) of this handle, whose
    // escrow K contacts can open.
    let recovery: Vec<String> =
        s.ks.recovery_device()
            .into_iter()
            .chain(s.social_recovery_devices()?)
            .map(|d| d.to_string())
            .collect();
    let by_recovery = |l: &AuditLine| l.what == "blob" && recovery.contains(&l.device_id);
    let recovery_reads = lines.iter().filter(|l| by_recovery(l)).count();
    let origin = serment_client::log::trust(&s.api, &s.ks)?.log_key.name;
    if a.fhir {
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "collection",
            "entry": lines.iter().map(|l| json!({ "resource": audit_event(l, &origin) })).collect::<Vec<_>>()
        });
        crate::output::line(&serde_json::to_string_pretty(&bundle).unwrap_or_default());
    } else {
        let mut text = String::new();
        if per_doc.is_empty() {
            text.push_str("No document visible to this device.\n");
        }
        for (d, list) in &per_doc {
            if unlisted.contains(&d.to_string()) {
                text.push_str(&format!(
                    "{d}: NOT IN THE SERVER'S LISTING (known to this device; audited from the log)\n"
                ));
            }
            if list.is_empty() {
                text.push_str(&format!("{d}: no access recorded in the log\n"));
                continue;
            }
            // The title this device verified, if it sealed or opened the version read.
            let title = list
                .first()
                .and_then(|l| s.ks.known_document(&l.doc_id, l.doc_version))
                .and_then(|k| k.title.as_deref())
                .map(|t| format!(" ({})", crate::output::safe(t)))
                .unwrap_or_default();
            text.push_str(&format!(
                "{d}{title}: {} access(es), each proven in the log (checkpoint of {} entries)\n",
                list.len(),
                list.first().map_or(0, |l| l.checkpoint_size)
            ));
            for l in list {
                text.push_str(&format!(
                    "  {}  v{}  {} ({}) {}  [log #{}]{}\n",
                    rfc3339(l.at),
                    l.doc_version,
                    l.handle,
                    l.device_id.get(..16).unwrap_or(&l.device_id),
                    fetched(l.what),
                    l.index,
                    if l.receipted {
                        String::new()
                    } else {
                        format!("\n    {NOT_COSIGNED}")
                    }
                ));
                if by_recovery(l) {
                    text.push_str(&format!("    {BY_RECOVERY_DEVICE}\n"));
                }
            }
        }
        let report = json!({ "accesses": lines.iter().map(|l| json!({
                         "at": rfc3339(l.at), "logged_at": rfc3339(l.logged_at), "doc_id": l.doc_id,
                         "doc_version": l.doc_version, "what": l.what, "device_id": l.device_id,
                         "handle": l.handle, "receipted": l.receipted, "log_index": l.index,
                         "checkpoint_size": l.checkpoint_size })).collect::<Vec<_>>(),
                     "unreceipted": unreceipted,
                     "recovery_device_reads": recovery_reads,
                     "unlisted": unlisted.iter().collect::<Vec<_>>(),
                     "lost_in_restore": lost_in_restore,
                     "documents": per_doc.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>() });
        // With `--json` and an alarm, the report rides in the error's object: one object.
        if ctx.json && (unreceipted > 0 || recovery_reads > 0) {
            return Err(audit_alarm(unreceipted, recovery_reads, report));
        }
        emit(ctx.json, &report, text.trim_end());
    }
    if unreceipted > 0 || recovery_reads > 0 {
        return Err(audit_alarm(unreceipted, recovery_reads, Value::Null));
    }
    Ok(())
}

/// The error `audit` exits with (4): accesses the reader did not co-sign first, then downloads by
/// the recovery device.
fn audit_alarm(unreceipted: usize, recovery_reads: usize, report: Value) -> CliError {
    let report = Box::new(report);
    if unreceipted > 0 {
        CliError::Unreceipted {
            count: unreceipted,
            report,
        }
    } else {
        CliError::RecoveryDeviceRead {
            count: recovery_reads,
            report,
        }
    }
}

pub(crate) fn revoke(ctx: &Ctx, a: RevokeArgs) -> CliResult<()> {
    let dev = serment_core::KeyId::from_hex(&a.device.trim().to_ascii_lowercase())
        .map_err(|_| CliError::Input("device: expected 64 hex digits".into()))?;
    let mut s = ctx.session()?;
    let handle = s.ks.handle().to_owned();
    // This identity's active devices as the log proves them (not the directory's word).
    let active: Vec<serment_core::KeyId> =
        serment_client::log::key_history(&s.api, &mut s.ks, &handle, None)?
            .devices
            .iter()
            .map(serment_core::identity::DeviceRecord::device_id)
            .collect();
    if !active.contains(&dev) {
        return Err(CliError::Input(format!(
            "{dev} is not an active device of {handle} (see `serment id show`)"
        )));
    }
    let this_device = dev == s.ks.device.id();
    if active.len() == 1 && !a.force {
        return Err(CliError::Input(format!(
            "refusing to revoke the last active device of {handle}: afterwards this identity can \
             no longer log in, read or receive documents, and the handle {handle} stays bound to \
             it for good (a revocation is permanent and public in the log). Pass --force if that \
             is what you want, e.g. because the device was stolen."
        )));
    }
    if !a.yes {
        confirm_revocation(&dev, &handle, this_device)?;
    }
    if this_device {
        let idx = s.revoke_device(&dev)?;
        s.ks.set_revoked(serment_client::now_secs());
        s.ks.save()?;
        emit(
            ctx.json,
            &json!({ "revoked": dev.to_string(), "log_index": idx, "this_device": true,
                     "active_devices_left": active.len() - 1, "rotated": false,
                     "identity_id": s.ks.identity.id().to_string(),
                     "fingerprint": serment_client::contacts::fingerprint(&s.ks.identity.id()),
                     "rotation_log_indices": [], "dropped": [] }),
            &format!(
                "Revoked device {dev} (this device) (log entry {idx}); {} active device(s) left \
                 for {handle}",
                active.len() - 1
            ),
        );
        return Ok(());
    }
    // Another device: it held the identity key (linked devices do, PROTOCOL.md §4.1), so the
    // identity key rotates; only this device and the ones the user keeps are re-certified.
    let keep = devices_to_keep(&a, &active, &dev, &s.ks.device.id())?;
    let out = s.revoke_and_rotate(&dev, &keep)?;
    super::recover::check_code_after_rotation(&mut s)?;
    let fp = serment_client::contacts::fingerprint(&out.identity_id);
    let dropped: Vec<String> = out.dropped.iter().map(ToString::to_string).collect();
    emit(
        ctx.json,
        &json!({ "revoked": dev.to_string(), "log_index": out.revocation_index,
                 "this_device": false, "active_devices_left": out.kept.len(), "rotated": true,
                 "identity_id": out.identity_id.to_string(), "fingerprint": fp,
                 "rotation_log_indices": out.rotation_indices, "dropped": dropped }),
        &format!(
            "Revoked device {dev} (log entry {}: the identity key rotated, new fingerprint {fp}); \
             {} active device(s) re-certified for {handle}{}",
            out.revocation_index,
            out.kept.len(),
            if dropped.is_empty() {
                String::new()
            } else {
                format!(
                    "; also retired, not kept: {} (link them again with `serment device link`)",
                    dropped.join(", ")
                )
            }
        ),
    );
    Ok(())
}

/// The other active devices to re-certify: `--keep`, or none with `--drop-others`; a device
/// neither names is asked about on a terminal, and refused without one (PROTOCOL.md §4.1: a
/// device certified with the lost device's key must not be kept by default).
fn devices_to_keep(
    a: &RevokeArgs,
    active: &[serment_core::KeyId],
    revoked: &serment_core::KeyId,
    me: &serment_core::KeyId,
) -> CliResult<Vec<serment_core::KeyId>> {
    use std::io::IsTerminal;
    let mut keep = Vec::new();
    for k in &a.keep {
        keep.push(
            serment_core::KeyId::from_hex(&k.trim().to_ascii_lowercase())
                .map_err(|_| CliError::Input("--keep: expected 64 hex digits".into()))?,
        );
    }
    let undecided: Vec<&serment_core::KeyId> = active
        .iter()
        .filter(|d| *d != revoked && *d != me && !keep.contains(d))
        .collect();
    if undecided.is_empty() || a.drop_others {
        return Ok(keep);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Input(format!(
            "revoking another device rotates the identity key: say which other active devices \
             to re-certify, with --keep DEVICE for each one you hold yourself, or --drop-others \
             (undecided: {})",
            undecided
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for d in undecided {
        eprint!(
            "Keep device {d} (re-certify it under the new identity key)? Answer yes only for a \
             device you hold yourself [yes/no]: "
        );
        if read_answer()? == "yes" {
            keep.push(*d);
        }
    }
    Ok(keep)
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm_revocation(dev: &serment_core::KeyId, handle: &str, this_device: bool) -> CliResult<()> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Input(
            "revoking a device is permanent: confirm on a terminal, or pass --yes".into(),
        ));
    }
    eprint!(
        "Revoke device {dev} of {handle}{}? This is permanent and public in the transparency \
         log: the device can no longer log in or receive keys. Type \"revoke\" to confirm: ",
        if this_device { " (THIS device)" } else { "" }
    );
    if read_answer()? != "revoke" {
        return Err(CliError::Input("not confirmed: nothing revoked".into()));
    }
    Ok(())
}

/// One answer typed on the terminal after a prompt on stderr, trimmed.
pub(crate) fn read_answer() -> CliResult<String> {
    use std::io::{BufRead, Write};
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::io("terminal", e))?;
    Ok(answer.trim().to_owned())
}

pub(crate) fn rotate(ctx: &Ctx) -> CliResult<()> {
    let mut s = ctx.session()?;
    let idx = s.rotate_identity()?;
    super::recover::check_code_after_rotation(&mut s)?;
    let fp = serment_client::contacts::fingerprint(&s.ks.identity.id());
    emit(
        ctx.json,
        &json!({ "identity_id": s.ks.identity.id().to_string(), "fingerprint": fp, "log_indices": idx }),
        &format!("Rotated identity; new fingerprint {fp}"),
    );
    Ok(())
}

pub(crate) fn witnesses(ctx: &Ctx, a: WitnessesArgs) -> CliResult<()> {
    let mut s = ctx.session()?;
    let base = s.api.base().to_owned();
    serment_client::log::set_witnesses(&mut s.ks, &base, &a.keys, a.quorum)?;
    s.ks.save()?;
    emit(
        ctx.json,
        &json!({ "witnesses": a.keys, "quorum": a.quorum }),
        &format!("{} witness(es), quorum {}", a.keys.len(), a.quorum),
    );
    Ok(())
}

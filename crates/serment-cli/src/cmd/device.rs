//! `serment device link | join | list` (issue 16 §1, PROTOCOL.md §4.1).

use std::time::Duration;

use serde_json::json;
use serment_client::ClientError;
use serment_core::keystore::KdfParams;
use serment_core::pairing::PAIRING_TTL_SECS;

use super::{Ctx, passphrase};
use crate::cli::{DeviceCommand, KdfCost};
use crate::error::{CliError, CliResult};
use crate::output::emit;

pub(crate) fn run(ctx: &Ctx, cmd: DeviceCommand) -> CliResult<()> {
    match cmd {
        DeviceCommand::Link => link(ctx),
        DeviceCommand::Join { code, server, kdf } => join(ctx, &code, &server, kdf),
        DeviceCommand::List => list(ctx),
        DeviceCommand::CatchUp { device } => catch_up(ctx, &device),
    }
}

fn catch_up(ctx: &Ctx, device: &str) -> CliResult<()> {
    let id = serment_core::KeyId::from_hex(device)
        .map_err(|_| CliError::Input(format!("{device}: expected a device id, 64 hex")))?;
    let mut s = ctx.session()?;
    let out = s.catch_up_device(&id)?;
    emit(
        ctx.json,
        &json!({ "device_id": out.device_id.to_string(), "caught_up": out.caught_up,
                 "skipped": out.skipped, "team_keys": out.team_keys }),
        &format!(
            "Caught up device {}: {} document version(s) re-wrapped for it (each a logged wrap \
             entry), {} team epoch key(s) handed over",
            out.device_id, out.caught_up, out.team_keys
        ),
    );
    Ok(())
}

fn link(ctx: &Ctx) -> CliResult<()> {
    let mut s = ctx.session()?;
    let pending = s.link_start()?;
    // The code is for the user's eyes: on stderr, so that stdout stays one JSON object.
    eprintln!(
        "serment: pairing code: {}\n  On the new device run: serment device join --server {} --code {}{}\n  \
         The code works once, for {} s. A wrong code, or a server that tampers with the \
         pairing, makes it fail and enrols nothing; both devices then print the new device's \
         fingerprint: compare them.",
        pending.code.display().as_str(),
        s.api.base(),
        pending.code.display().as_str(),
        // The newcomer's H9: the new device must trust the same private CA as this one.
        if s.ks.server_ca().is_some() {
            " --ca-cert <your organisation's CA file, as given to `register`>"
        } else {
            ""
        },
        PAIRING_TTL_SECS
    );
    let out = s.link_finish(pending, Duration::from_secs(PAIRING_TTL_SECS))?;
    // A device this device linked is not warned about (REVIEW3 S1).
    s.ks.add_own_device(out.device_id);
    s.ks.save()?;
    // The new device prints the same fingerprint (`device join`): a person compares the two.
    let device_fp = serment_client::contacts::fingerprint(&out.device_id);
    emit(
        ctx.json,
        &json!({ "device_id": out.device_id.to_string(), "device_fingerprint": device_fp,
                 "caught_up": out.caught_up, "skipped": out.skipped, "team_keys": out.team_keys,
                 "identity_id": s.ks.identity.id().to_string() }),
        &format!(
            "Linked device {} to {}: {} document version(s) re-wrapped for it (each a logged wrap \
             entry), {} team epoch key(s) handed over{}\n  new device's fingerprint: {device_fp}\n  It must be the fingerprint \
             `serment device join` printed on the new device; if not, revoke it \
             (`serment revoke-device`).",
            out.device_id,
            s.ks.handle(),
            out.caught_up,
            out.team_keys,
            if out.skipped > 0 {
                format!(
                    "; {} listed version(s) this device holds no key for",
                    out.skipped
                )
            } else {
                String::new()
            }
        ),
    );
    Ok(())
}

fn join(ctx: &Ctx, code: &str, server: &str, kdf: KdfCost) -> CliResult<()> {
    let path = ctx.keystore_path()?;
    if path.exists() {
        return Err(ClientError::KeystoreExists(path.display().to_string()).into());
    }
    serment_core::pairing::PairingCode::parse(code)
        .map_err(|e| CliError::Input(format!("--code: {e}")))?;
    super::lock_keystore(&path)?;
    let j = serment_client::device::join(
        &path,
        passphrase(true)?,
        match kdf {
            KdfCost::Default => KdfParams::DEFAULT,
            KdfCost::Floor => KdfParams::FLOOR,
        },
        server,
        &ctx.transport()?,
        code,
        Duration::from_secs(PAIRING_TTL_SECS),
    )?;
    let ks = &j.session.ks;
    let fp = serment_client::contacts::fingerprint(&ks.identity.id());
    let device_fp = serment_client::contacts::fingerprint(&ks.device.id());
    emit(
        ctx.json,
        &json!({ "handle": j.handle, "identity_id": ks.identity.id().to_string(),
                 "device_id": ks.device.id().to_string(), "fingerprint": fp,
                 "device_fingerprint": device_fp,
                 "keystore": path.display().to_string(), "server": j.session.api.base() }),
        &format!(
            "Joined {:?} as device {}\n  keystore:    {}\n  fingerprint: {fp}\n  this device's \
             fingerprint: {device_fp} (`serment device link` prints it too: compare them)",
            j.handle,
            ks.device.id(),
            path.display()
        ),
    );
    Ok(())
}

/// REVIEW3 S1: on the commands a user runs every day (`ls`, `get`), one line on stderr when the
/// identity gained a device this device did not link, or a recovery code was used, since the
/// user last looked with `serment device list` (which shows them and marks them seen), when
/// this device's recovery code went stale, and for each pending social recovery request of this
/// identity (REVIEW4 T7). A failure to check is itself a warning, never an
/// error: the command's own checks are unchanged.
pub(crate) fn warn_identity_changes(s: &mut serment_client::vault::Session) {
    match s.peek_identity_changes() {
        Ok(c) => {
            if !c.recoveries.is_empty() || !c.new_devices.is_empty() {
                eprintln!(
                    "serment: WARNING: {} has {} device(s) that this device did not link{}. If \
                     one is not yours, someone holds your identity key or your recovery code: \
                     run `serment device list` to see them.",
                    s.ks.handle(),
                    c.new_devices.len(),
                    if c.recoveries.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", and a recovery code was used {} time(s)",
                            c.recoveries.len()
                        )
                    }
                );
            }
            if c.recovery == serment_client::recovery::RecoveryStatus::Stale {
                super::recover::warn_stale_code();
            }
        }
        Err(e) => {
            eprintln!("serment: WARNING: could not check this identity's devices in the log: {e}");
        }
    }
    // A pending social recovery request of this identity: its veto window must not pass unseen
    // (REVIEW4 T7). `warn_pending` prints them (the newest, and a count).
    if let Err(e) = super::social::warn_pending(s) {
        eprintln!("serment: WARNING: could not check for pending recovery requests: {e}");
    }
}

fn list(ctx: &Ctx) -> CliResult<()> {
    let mut s = ctx.session()?;
    let devices = s.device_list()?;
    // Recoveries logged since this device last looked (PROTOCOL.md §4.2): a recovery code was
    // used, by the user on a new machine, or by whoever holds the code.
    let recoveries = s.unseen_recoveries()?;
    for (i, r) in &recoveries {
        eprintln!(
            "serment: WARNING: a recovery code of {} was used at {} (log index {i}): it enrolled \
             device {}. If it was not you, revoke it (`serment revoke-device {}`) and make a new \
             code (`serment id recovery-code`).",
            s.ks.handle(),
            super::rfc3339(r.at),
            r.new_device,
            r.new_device
        );
    }
    let recovered: Vec<serment_core::KeyId> =
        recoveries.iter().map(|(_, r)| r.new_device).collect();
    let recoveries: Vec<serde_json::Value> = recoveries
        .iter()
        .map(|(i, r)| {
            json!({ "log_index": i, "new_device": r.new_device.to_string(),
                    "recovery_device": r.recovery_device.to_string(),
                    "at": super::rfc3339(r.at) })
        })
        .collect();
    // Any other new device of this identity, recovery entry or not (REVIEW3 S1: a device
    // enrolled with a stolen identity key logs no recovery entry).
    let unseen = s.unseen_devices()?;
    for d in unseen.iter().filter(|d| !recovered.contains(d)) {
        eprintln!(
            "serment: WARNING: device {d} was added to {} and this device did not link it. If it \
             is not one of yours, revoke it (`serment revoke-device {d}`: the identity key \
             rotates) and make a new recovery code (`serment id recovery-code`).",
            s.ks.handle()
        );
    }
    let new_devices: Vec<String> = unseen.iter().map(ToString::to_string).collect();
    // Requests to recover this identity with its recovery contacts (PROTOCOL.md §4.3).
    let (pending, recovery_contacts) = super::social::warn_pending(&mut s)?;
    let pending: Vec<serde_json::Value> = pending
        .iter()
        .map(|p| {
            json!({ "request_id": p.request_id, "new_device": p.new_device.to_string(),
                    "fingerprint": p.fingerprint, "approvals": p.approvals.len(),
                    "threshold": p.threshold, "ready_at": super::rfc3339(p.ready_at) })
        })
        .collect();
    let recovery = s.recovery_status()?;
    if recovery == serment_client::recovery::RecoveryStatus::Stale {
        super::recover::warn_stale_code();
    }
    let rows: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| {
            json!({ "device_id": d.device_id.to_string(), "revoked": !d.active,
                    "created_at": d.created_at.map(super::rfc3339), "hybrid": d.hybrid,
                    "this_device": d.this_device })
        })
        .collect();
    let text = devices
        .iter()
        .map(|d| {
            format!(
                "{}  {}{}{}",
                d.device_id,
                if d.active { "active " } else { "REVOKED" },
                d.created_at
                    .map(|t| format!("  since {}", super::rfc3339(t)))
                    .unwrap_or_default(),
                if d.this_device { "  (this device)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    emit(
        ctx.json,
        &json!({ "handle": s.ks.handle(), "devices": rows, "new_recoveries": recoveries,
                 "new_devices": new_devices, "recovery": recovery.as_str(),
                 "recovery_contacts": recovery_contacts.as_str(),
                 "pending_recovery_requests": pending }),
        &text,
    );
    Ok(())
}

//! Social recovery, k-of-n (PROTOCOL.md §4.3, issue 17 §2): `serment id recovery-contacts
//! add|list`, `serment recover --social [--complete]`, `serment recovery approve|veto`.

use serde_json::json;
use serment_client::ClientError;
use serment_client::recovery::{RecoverOptions, RecoveryStatus};
use serment_client::social::{RequestView, pending_path};
use serment_core::keystore::KdfParams;

use super::{Ctx, passphrase, rfc3339};
use crate::cli::{KdfCost, RecoverArgs, RecoveryCommand, RecoveryContactsCommand};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// A duration as `--waiting-period` takes it: `72h`, `3d`, `30m`, `90s` or plain seconds.
///
/// # Errors
/// [`CliError::Input`] for anything else.
pub(crate) fn parse_duration(s: &str) -> CliResult<u64> {
    let bad = || {
        CliError::Input(format!(
            "--waiting-period {s:?}: expected a number with s, m, h or d (e.g. 72h)"
        ))
    };
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

fn kdf(k: KdfCost) -> KdfParams {
    match k {
        KdfCost::Default => KdfParams::DEFAULT,
        KdfCost::Floor => KdfParams::FLOOR,
    }
}

fn request_json(v: &RequestView) -> serde_json::Value {
    json!({ "handle": v.handle, "request_id": v.request_id, "log_index": v.index,
            "new_device": v.new_device.to_string(), "fingerprint": v.fingerprint,
            "requested_at": rfc3339(v.logged_at), "approvals": v.approvals,
            "threshold": v.threshold, "vetoed": v.vetoed, "ready_at": rfc3339(v.ready_at) })
}

/// How many pending requests [`warn_pending`] prints one line for (the newest): beyond, a
/// count and `--all-pending` (REVIEW5 U1: a flood of requests must not bury the real one in
/// thousands of lines).
const PENDING_LINES: usize = 3;

/// Warns on stderr about requests to recover this identity (every command of its devices that
/// calls it: `device list`, `ls`, `get`), and when its recovery contacts no longer work (REVIEW4
/// T6: the identity key rotated, or their recovery device was retired), with the command that
/// names the same contacts again; and about contacts entries the server logged that this
/// identity did not sign (REVIEW5 U16). Saves the keystore: the social chain's head it
/// verified is pinned (REVIEW5 U2). Returns the pending requests and the contacts' status.
pub(crate) fn warn_pending(
    s: &mut serment_client::vault::Session,
) -> CliResult<(Vec<RequestView>, RecoveryStatus)> {
    let handle = s.ks.handle().to_owned();
    let o = s.own_social_status()?;
    s.ks.save()?;
    if !o.forged_contacts.is_empty() {
        let at: Vec<String> = o.forged_contacts.iter().map(u64::to_string).collect();
        eprintln!(
            "serment: WARNING: the server's log holds {} recovery contacts entr{} for {handle} \
             that your identity did not sign (log index {}): only a hostile server logs one. \
             They are ignored; report this to the operator, and check the requests below.",
            at.len(),
            if at.len() == 1 { "y" } else { "ies" },
            at.join(", ")
        );
    }
    if o.pending.len() > PENDING_LINES {
        eprintln!(
            "serment: WARNING: {} pending requests to recover {handle} (the newest {PENDING_LINES} \
             below). If none is yours, veto them all: `serment recovery veto --all-pending`.",
            o.pending.len()
        );
    }
    for p in o.pending.iter().rev().take(PENDING_LINES) {
        eprintln!(
            "serment: WARNING: someone asked to recover {handle} with your recovery contacts \
             (request {}, new device {}, at {}; {} of {} approvals). If it is not you, veto it \
             now: `serment recovery veto --request {}` (completable from {}).",
            p.request_id,
            p.fingerprint,
            rfc3339(p.logged_at),
            p.approvals.len(),
            p.threshold,
            p.request_id,
            rfc3339(p.ready_at)
        );
        if p.logged_in_future {
            eprintln!(
                "serment: WARNING: the server logged request {} at {}, ahead of this machine's \
                 clock: a server lying about time. Do not wait for any deadline: veto it now if \
                 it is not you.",
                p.request_id,
                rfc3339(p.logged_at)
            );
        }
    }
    if let (RecoveryStatus::Stale, Some(c)) = (o.status, o.contacts) {
        let handles: Vec<&str> = c.contacts.iter().map(|k| k.handle.as_str()).collect();
        eprintln!(
            "serment: WARNING: your recovery contacts can no longer recover {handle}: the \
             identity key rotated, or their recovery device was retired, since they were named. \
             Name them again: `serment id recovery-contacts add {} --threshold {} \
             --waiting-period {}s`.",
            handles.join(" "),
            c.threshold,
            c.waiting_period
        );
    }
    Ok((o.pending, o.status))
}

/// `serment id recovery-contacts …`.
pub(crate) fn contacts(ctx: &Ctx, c: RecoveryContactsCommand) -> CliResult<()> {
    let mut s = ctx.session()?;
    match c {
        RecoveryContactsCommand::Add {
            handles,
            threshold,
            waiting_period,
        } => {
            let wait = parse_duration(&waiting_period)?;
            let out = s.set_recovery_contacts(&handles, threshold, wait)?;
            let contacts: Vec<serde_json::Value> = out
                .contacts
                .iter()
                .map(|c| {
                    json!({ "handle": c.handle,
                            "devices": c.devices.iter().map(ToString::to_string).collect::<Vec<_>>() })
                })
                .collect();
            emit(
                ctx.json,
                &json!({ "log_index": out.index, "threshold": out.threshold,
                         "waiting_period_secs": out.waiting_period, "contacts": contacts,
                         "recovery_device": out.recovery_device.to_string(),
                         "share_wraps": out.wraps, "hybrid_share_wraps": out.hybrid_wraps,
                         "caught_up": out.caught_up,
                         "revoked_previous": out.revoked_previous.map(|d| d.to_string()) }),
                &format!(
                    "Recovery contacts logged (index {}): any {} of {} can let you back in, \
                     after a waiting period of {} s during which your devices can veto.\n  {} \
                     share wrap(s) ({} hybrid X-Wing) to their devices from the log; social \
                     recovery device {}, {} document version(s) re-wrapped for it.{}",
                    out.index,
                    out.threshold,
                    out.contacts.len(),
                    out.waiting_period,
                    out.wraps,
                    out.hybrid_wraps,
                    out.recovery_device.short(),
                    out.caught_up,
                    out.revoked_previous.map_or_else(String::new, |d| format!(
                        "\n  The previous set's escrow is deleted and its device {} revoked; if a request of \
                         it was ever approved and served, its escrow still holds your identity \
                         key: run `serment rotate-identity`.",
                        d.short()
                    ))
                ),
            );
        }
        RecoveryContactsCommand::List => {
            let cur = s.recovery_contacts()?;
            let (value, text) = match cur {
                None => (
                    json!({ "contacts": [], "threshold": null, "log_index": null,
                            "waiting_period_secs": null, "recovery_device": null }),
                    "No recovery contacts (`serment id recovery-contacts add HANDLE… --threshold K`)."
                        .to_owned(),
                ),
                Some((i, c)) => (
                    json!({ "log_index": i, "threshold": c.threshold,
                            "waiting_period_secs": c.waiting_period,
                            "recovery_device": c.recovery_device.to_string(),
                            "contacts": c.contacts.iter().map(|k| json!({ "handle": k.handle,
                                "devices": k.devices.iter().map(ToString::to_string).collect::<Vec<_>>() })).collect::<Vec<_>>() }),
                    format!(
                        "{} of: {} (waiting period {} s; logged at index {i})",
                        c.threshold,
                        c.contacts
                            .iter()
                            .map(|k| k.handle.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        c.waiting_period
                    ),
                ),
            };
            emit(ctx.json, &value, &text);
        }
    }
    Ok(())
}

/// `serment recovery approve|veto`.
pub(crate) fn run(ctx: &Ctx, c: RecoveryCommand) -> CliResult<()> {
    let mut s = ctx.session()?;
    let (v, what) = match c {
        RecoveryCommand::Approve { handle, request } => {
            let shown = s.recovery_request(&handle, &request)?;
            eprintln!(
                "serment: request {} to recover {handle}: new device {} (fingerprint {}), \
                 logged at {}. Only approve if {handle} told you this fingerprint themselves.",
                shown.request_id,
                shown.new_device.short(),
                shown.fingerprint,
                rfc3339(shown.logged_at)
            );
            (s.approve_recovery(&handle, &request)?, "approved")
        }
        RecoveryCommand::Veto {
            all_pending: true, ..
        } => return veto_all(ctx, &mut s),
        RecoveryCommand::Veto { request, .. } => {
            let request = request.ok_or_else(|| {
                CliError::Input("--request ID or --all-pending is required".into())
            })?;
            (s.veto_recovery(&request)?, "vetoed")
        }
    };
    let mut j = request_json(&v);
    if let Some(o) = j.as_object_mut() {
        o.insert("action".into(), json!(what));
    }
    emit(
        ctx.json,
        &j,
        &format!(
            "Request {} to recover {} {what} (logged): {} of {} approvals{}",
            v.request_id,
            v.handle,
            v.approvals.len(),
            v.threshold,
            if v.vetoed { ", vetoed" } else { "" }
        ),
    );
    Ok(())
}

/// `serment recovery veto --all-pending` (REVIEW5 U1): one veto per pending request to
/// recover this identity, each checked in the log.
fn veto_all(ctx: &Ctx, s: &mut serment_client::vault::Session) -> CliResult<()> {
    let vetoed = s.veto_all_pending()?;
    let ids: Vec<&str> = vetoed.iter().map(|v| v.request_id.as_str()).collect();
    emit(
        ctx.json,
        &json!({ "action": "vetoed", "handle": s.ks.handle(), "request_ids": ids }),
        &if ids.is_empty() {
            format!("No pending request to recover {}", s.ks.handle())
        } else {
            format!(
                "Vetoed {} pending request(s) to recover {} (logged): {}",
                ids.len(),
                s.ks.handle(),
                ids.join(", ")
            )
        },
    );
    Ok(())
}

/// Tests only, in debug builds: `SERMENT_TEST_CLOCK_OFFSET_SECS` moves the completing client's
/// clock forward, so that a test completes a recovery whose waiting period (at least 24 hours,
/// PROTOCOL.md §4.3) it cannot wait out; the test moves the server's clock in its database.
/// Release builds ignore it. It weakens nothing the threat model relies on: the completing
/// client's own wait binds only an honest requester (REVIEW4 T16); the server's gate is
/// untouched by it.
fn test_clock_offset() -> u64 {
    #[cfg(debug_assertions)]
    {
        std::env::var("SERMENT_TEST_CLOCK_OFFSET_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
    #[cfg(not(debug_assertions))]
    {
        0
    }
}

/// `serment recover --social [--complete]`.
pub(crate) fn recover_social(ctx: &Ctx, a: RecoverArgs) -> CliResult<()> {
    let path = ctx.keystore_path()?;
    let transport = ctx.transport()?;
    if !a.complete {
        let handle = a
            .handle
            .clone()
            .ok_or_else(|| CliError::Input("--handle is required".into()))?;
        let server = a
            .server
            .clone()
            .ok_or_else(|| CliError::Input("--server (or SERMENT_SERVER) is required".into()))?;
        if pending_path(&path).exists() {
            return Err(
                ClientError::KeystoreExists(pending_path(&path).display().to_string()).into(),
            );
        }
        super::lock_keystore(&path)?;
        let r = serment_client::social::request_recovery_pinned(
            &path,
            super::passphrase_for(true, &[&handle])?,
            &server,
            &transport,
            &handle,
            kdf(a.kdf),
            a.log_key.as_deref(),
        )?;
        super::recover::warn_log_pin(&server, Some(&r.log_key), a.log_key.is_some());
        emit(
            ctx.json,
            &json!({ "handle": handle, "request_id": r.request_id, "log_index": r.index,
                     "new_device": r.new_device.to_string(), "fingerprint": r.fingerprint,
                     "contacts": r.contacts, "threshold": r.threshold,
                     "waiting_period_secs": r.waiting_period,
                     "pending": pending_path(&path).display().to_string() }),
            &format!(
                "Recovery request logged (index {}).\n  request id:  {}\n  fingerprint: {}\n  \
                 Ask {} of your contacts ({}) to run `serment recovery approve --handle {handle} \
                 --request {}` after you read them the fingerprint by phone. After {} s (your \
                 devices can veto until then): `serment recover --social --complete`.",
                r.index,
                r.request_id,
                r.fingerprint,
                r.threshold,
                r.contacts.join(", "),
                r.request_id,
                r.waiting_period
            ),
        );
        return Ok(());
    }
    super::lock_keystore(&path)?;
    let pass = passphrase(false)?;
    if let Some(req) = &a.request {
        let raw = std::fs::read(pending_path(&path))
            .map_err(|_| ClientError::NoKeystore(pending_path(&path).display().to_string()))?;
        if !String::from_utf8_lossy(&raw).contains(req.trim()) {
            return Err(CliError::Input(format!(
                "--request {req}: this machine's pending request is another one"
            )));
        }
    }
    let r = serment_client::social::complete_recovery_at(
        &path,
        pass,
        &transport,
        RecoverOptions {
            keystore_params: kdf(a.kdf),
            escrow_params: kdf(a.kdf),
            revoke_others: a.revoke_others,
            // REVIEW4 T1: a social recovery rotates by default (the escrow's seed was opened
            // by shares K contacts hold); `--keep-identity` keeps it, and says so below.
            rotate: a.rotate || !a.keep_identity,
        },
        serment_client::now_secs().saturating_add(test_clock_offset()),
    )?;
    let rec = &r.recovered;
    let ks = &rec.session.ks;
    if rec.rotated_to.is_none() {
        eprintln!(
            "serment: WARNING: the identity key was NOT rotated (--keep-identity): the escrow \
             this recovery opened holds it, and whoever got a copy of that escrow (K of your \
             recovery contacts, with their shares) can still act as you. Run `serment rotate-identity` \
             unless you trust every one of them."
        );
    }
    eprintln!(
        "serment: recovery code: {}\n  Shown once: write it down. Your recovery contacts must \
         be named again (`serment id recovery-contacts add …`): this recovery used their set.",
        rec.new_code.code.display().as_str()
    );
    emit(
        ctx.json,
        &json!({ "handle": ks.handle(), "request_id": r.request_id,
                 "approved_by": r.approved_by, "device_id": ks.device.id().to_string(),
                 "keystore": path.display().to_string(),
                 "used_recovery_device": rec.used_recovery_device.to_string(),
                 "recovery_index": rec.recovery_index, "caught_up": rec.caught_up,
                 "team_keys": rec.team_keys,
                 "revoked": rec.revoked.iter().map(ToString::to_string).collect::<Vec<_>>(),
                 "rotated": rec.rotated_to.is_some(),
                 "new_recovery_device": rec.new_code.recovery_device.to_string() }),
        &format!(
            "Recovered {} as device {} with the approvals of {}.\n  keystore: {}\n  {} document \
             version(s) re-wrapped for this device; the recovery is logged (index {}).",
            ks.handle(),
            ks.device.id(),
            r.approved_by.join(", "),
            path.display(),
            rec.caught_up,
            rec.recovery_index
        ),
    );
    Ok(())
}

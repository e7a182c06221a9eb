//! `serment id`, `register`, `contact`.

use serde_json::json;
use serment_client::ClientError;
use serment_client::contacts;
use serment_client::keystore::Keystore;
use serment_client::vault::Session;
use serment_core::keystore::KdfParams;

use super::{Ctx, passphrase_for};
use crate::cli::{ContactCommand, IdCommand, KdfCost};
use crate::error::{CliError, CliResult};
use crate::output::emit;

pub(crate) fn run(ctx: &Ctx, cmd: IdCommand) -> CliResult<()> {
    match cmd {
        IdCommand::ExportRecord { output } => super::offline::export_record(ctx, &output),
        IdCommand::RecoveryCode { kdf, rotate } => super::recover::recovery_code(ctx, kdf, rotate),
        IdCommand::RecoveryContacts(c) => super::social::contacts(ctx, c),
        IdCommand::New { name, display, kdf } => {
            let path = ctx.keystore_path()?;
            // Everything that can be checked is checked before the passphrase is asked for.
            if path.exists() {
                return Err(ClientError::KeystoreExists(path.display().to_string()).into());
            }
            serment_core::identity::validate_handle(&name)
                .map_err(|e| CliError::Input(format!("--name {name:?}: {e}")))?;
            super::lock_keystore(&path)?;
            let display_name = display.as_deref().unwrap_or(&name);
            let ks = Keystore::create(
                &path,
                passphrase_for(true, &[&name, display_name])?,
                &name,
                display_name,
                match kdf {
                    KdfCost::Default => KdfParams::DEFAULT,
                    KdfCost::Floor => KdfParams::FLOOR,
                },
            )?;
            let fp = contacts::fingerprint(&ks.identity.id());
            emit(
                ctx.json,
                &json!({ "handle": ks.handle(), "identity_id": ks.identity.id().to_string(),
                         "device_id": ks.device.id().to_string(), "fingerprint": fp,
                         "keystore": path.display().to_string() }),
                &format!(
                    "Created identity {:?}\n  keystore:    {}\n  fingerprint: {fp}",
                    ks.handle(),
                    path.display()
                ),
            );
            Ok(())
        }
        IdCommand::Upgrade => {
            let mut s = ctx.session()?;
            let (since, added) = s.upgrade_device()?;
            emit(
                ctx.json,
                &json!({ "device_id": s.ks.device.id().to_string(), "kem": "X-Wing",
                         "upgraded": added, "hybrid_since": since }),
                &if added {
                    format!(
                        "Device {} now advertises an X-Wing (ML-KEM-768 + X25519) key, logged at \
                         index {since}: new wraps to it are post-quantum, and classical wraps made \
                         from now on are refused. Run `serment rewrap --pq --all` to re-wrap \
                         documents stored before.",
                        s.ks.device.id().short()
                    )
                } else {
                    format!(
                        "Device {} already advertises an X-Wing key (since log index {since}).",
                        s.ks.device.id().short()
                    )
                },
            );
            Ok(())
        }
        IdCommand::Show => {
            let ks = ctx.keystore()?;
            let fp = contacts::fingerprint(&ks.identity.id());
            let log_key = ks
                .server()
                .and_then(|u| ks.log_state(u))
                .map(|l| l.vkey.clone());
            emit(
                ctx.json,
                &json!({ "handle": ks.handle(), "display_name": ks.display_name(),
                         "identity_id": ks.identity.id().to_string(), "device_id": ks.device.id().to_string(),
                         "fingerprint": fp, "server": ks.server(), "registered": ks.registered(),
                         "revoked_at": ks.revoked_at().map(super::rfc3339), "log_key": log_key }),
                &format!(
                    "{} ({})\n  fingerprint: {fp}\n  device:      {}{}\n  server:      {}\n  log key:     {}",
                    ks.handle(),
                    ks.display_name(),
                    ks.device.id(),
                    ks.revoked_at().map_or_else(String::new, |t| format!(
                        "  REVOKED at {}: it can no longer log in or read",
                        super::rfc3339(t)
                    )),
                    ks.server().unwrap_or("(not registered)"),
                    log_key.as_deref().unwrap_or("(none pinned yet)")
                ),
            );
            Ok(())
        }
    }
}

pub(crate) fn register(ctx: &Ctx, server: &str) -> CliResult<()> {
    let ks = ctx.keystore()?;
    if ks.revoked_at().is_some() {
        return Err(ClientError::DeviceRevoked.into());
    }
    let s = Session::register_with(ks, server, &ctx.transport()?).map_err(|e| match e {
        ClientError::Server {
            status: 409,
            message,
            ..
        } if message.contains("handle") => CliError::Input(format!(
            "{message}. Nothing was registered: delete this keystore ({}) and run `serment \
                 id new --name <another handle>`",
            path_hint(ctx)
        )),
        other => other.into(),
    })?;
    let log_key = s.ks.log_state(s.api.base()).map(|l| l.vkey.clone());
    emit(
        ctx.json,
        &json!({ "registered": true, "server": s.api.base(), "handle": s.ks.handle(),
                 "device_id": s.ks.device.id().to_string(), "log_key": log_key }),
        &format!(
            "Registered {} with {}\n  pinned transparency log key: {}\n  Compare it with the key the \
             server's operator publishes (`serment serve` prints it at startup).\n  Make a \
             recovery code now, in case every device is lost: `serment id recovery-code`.",
            s.ks.handle(),
            s.api.base(),
            log_key.as_deref().unwrap_or("(none)")
        ),
    );
    Ok(())
}

pub(crate) fn contact(ctx: &Ctx, cmd: ContactCommand) -> CliResult<()> {
    match cmd {
        ContactCommand::Add { name } => {
            let mut s = ctx.session()?;
            if name == s.ks.handle() {
                return Err(CliError::Input(format!(
                    "{name} is you: add the handles of the people you exchange documents with"
                )));
            }
            let (c, new) = contacts::add(&s.api, &mut s.ks, &name)?;
            s.ks.save()?;
            super::print_rotation_notices(&contacts::rotation_notices(&s.ks, [&name]));
            let fp = c.fingerprint();
            emit(
                ctx.json,
                &json!({ "handle": name, "identity_id": c.identity_id.to_string(), "fingerprint": fp,
                         "devices": c.devices.len(), "newly_pinned": new }),
                &if s.ks.contacts().get(&name).is_some_and(|p| p.verified) {
                    format!(
                        "Refreshed {name}: {} device(s)\n  fingerprint: {fp} (verified)",
                        c.devices.len()
                    )
                } else {
                    format!(
                        "{} {name}: {} device(s)\n  fingerprint: {fp}\n  Compare it with {name} out of band, then run `serment contact verify {name} --confirm`.",
                        if new { "Pinned" } else { "Refreshed" },
                        c.devices.len()
                    )
                },
            );
            Ok(())
        }
        ContactCommand::Verify { name, confirm } => {
            // Refreshed from the log first: after a rotation, the fingerprint shown and the one
            // confirmed are the current ones, not what was pinned before it. With the server
            // unreachable, the pinned fingerprint is shown, and said to be.
            let (mut ks, shown_before) = match ctx.session() {
                Ok(mut s) => {
                    let before = contacts::pinned(&s.ks, &name)?.fingerprint();
                    contacts::add_with(&s.api, &mut s.ks, &name, confirm)?;
                    s.ks.save()?;
                    (s.ks, Some(before))
                }
                Err(CliError::Client(e @ ClientError::Transport(_)))
                | Err(CliError::Client(e @ ClientError::Server { status: 500.., .. })) => {
                    eprintln!(
                        "serment: note: the server could not be reached ({e}): showing the \
                         fingerprint pinned when {name} was last refreshed"
                    );
                    (ctx.keystore()?, None)
                }
                Err(e) => return Err(e),
            };
            let c = contacts::pinned(&ks, &name)?;
            if confirm {
                // What the user compared is what was shown before this command: a key that
                // changed in between is not confirmed unseen.
                if shown_before.as_ref().is_some_and(|b| *b != c.fingerprint()) {
                    super::print_rotation_notices(&contacts::rotation_notices(&ks, [&name]));
                    return Err(CliError::Input(format!(
                        "{name}'s identity key changed since its fingerprint was last shown: the \
                         current fingerprint is {}. Compare it with {name} out of band, then run \
                         `serment contact verify {name} --confirm` again",
                        c.fingerprint()
                    )));
                }
                if !ks.mark_verified(&name) {
                    return Err(CliError::Input(format!("unknown contact {name}")));
                }
                ks.save()?;
            }
            let verified = ks.contacts().get(&name).is_some_and(|p| p.verified);
            super::print_rotation_notices(&contacts::rotation_notices(&ks, [&name]));
            emit(
                ctx.json,
                &json!({ "handle": name, "fingerprint": c.fingerprint(), "verified": verified }),
                &format!(
                    "{name}\n  fingerprint: {}\n  verified:    {}",
                    c.fingerprint(),
                    if verified {
                        "yes"
                    } else {
                        "no (compare out of band, then --confirm)"
                    }
                ),
            );
            Ok(())
        }
        ContactCommand::List => {
            let ks = ctx.keystore()?;
            let mut rows = Vec::new();
            let mut text = String::new();
            let notices = contacts::rotation_notices(&ks, ks.contacts().keys());
            for (h, p) in ks.contacts() {
                let c = contacts::pinned(&ks, h)?;
                let rotated = notices.iter().find(|n| &n.handle == h);
                rows.push(
                    json!({ "handle": h, "fingerprint": c.fingerprint(), "verified": p.verified,
                            "devices": c.devices.len(),
                            "rotated_from_fingerprint": rotated.map(|n| &n.old_fingerprint) }),
                );
                text.push_str(&format!(
                    "{h}\t{}\t{}\n",
                    c.fingerprint(),
                    match (p.verified, rotated) {
                        (_, Some(_)) => "ROTATED, not yet verified",
                        (true, None) => "verified",
                        (false, None) => "pinned",
                    }
                ));
            }
            super::print_rotation_notices(&notices);
            emit(ctx.json, &json!({ "contacts": rows }), text.trim_end());
            Ok(())
        }
    }
}

/// The keystore path, for messages.
fn path_hint(ctx: &Ctx) -> String {
    ctx.keystore_path()
        .map_or_else(|_| "keystore.srmk".into(), |p| p.display().to_string())
}

//! `serment id recovery-code` and `serment recover` (PROTOCOL.md §4.2, issue 17 §2).

use serde_json::json;
use serment_client::ClientError;
use serment_client::recovery::{NewRecoveryCode, RecoverOptions};
use serment_core::keystore::KdfParams;
use serment_core::recovery::RecoveryCode;

use super::Ctx;
use crate::cli::{KdfCost, RecoverArgs};
use crate::error::{CliError, CliResult};
use crate::output::emit;

fn params(kdf: KdfCost) -> KdfParams {
    match kdf {
        KdfCost::Default => KdfParams::DEFAULT,
        KdfCost::Floor => KdfParams::FLOOR,
    }
}

/// The code, to the user's eyes only: on stderr (stdout stays one JSON object), once.
fn show_code(c: &NewRecoveryCode) {
    eprintln!(
        "serment: recovery code: {}\n  Shown once: write it down (8 groups of 4) and keep it \
         offline. With it, `serment recover --handle <you> --code <code>` on a new machine gets \
         your documents back when every device is lost; anyone holding it can do the same, so \
         treat it like a key. `serment id recovery-code` replaces it.",
        c.code.display().as_str()
    );
}

/// S11: the recovery code this device made no longer works (the identity key rotated, or its
/// recovery device was retired): said on stderr by the rotation commands and `device list`.
pub(crate) fn warn_stale_code() {
    eprintln!(
        "serment: WARNING: your recovery code NO LONGER WORKS (the identity key rotated, or its \
         recovery device was retired). Run `serment id recovery-code` now to make a new one."
    );
}

/// After a command that may have rotated the identity key: warns when the code went stale.
pub(crate) fn check_code_after_rotation(s: &mut serment_client::vault::Session) -> CliResult<()> {
    if s.recovery_status()? == serment_client::recovery::RecoveryStatus::Stale {
        warn_stale_code();
    }
    Ok(())
}

/// `serment id recovery-code [--rotate]` (REVIEW5 U18: a replaced code still opens the
/// identity key of its time from the backups; `--rotate`, or "yes" at the prompt on a terminal
/// when a code is replaced, retires that key first).
pub(crate) fn recovery_code(ctx: &Ctx, kdf: KdfCost, rotate: bool) -> CliResult<()> {
    use std::io::IsTerminal as _;
    let mut s = ctx.session()?;
    let rotate = rotate
        || (s.ks.recovery_device().is_some()
            && std::io::stdin().is_terminal()
            && {
                eprint!(
                    "serment: this replaces your recovery code. Its escrow stays in the server's backups \
             until their retention ends, and opens your identity key with the old code. Was the \
             old code seen by anyone, photographed or lost? Then the identity key rotates first \
             (your other devices are re-certified) [y/N] "
                );
                super::log::read_answer()?.eq_ignore_ascii_case("y")
            });
    let out = s.new_recovery_code_with(params(kdf), rotate)?;
    show_code(&out);
    let dropped: Vec<String> = out.dropped.iter().map(ToString::to_string).collect();
    let in_backups = out.replaced && out.rotated_to.is_none();
    emit(
        ctx.json,
        &json!({ "recovery_device": out.recovery_device.to_string(), "caught_up": out.caught_up,
                 "team_keys": out.team_keys,
                 "revoked_previous": out.revoked_previous.map(|d| d.to_string()),
                 "rotated_to": out.rotated_to.map(|d| d.to_string()), "dropped": dropped,
                 "previous_code_opens_backups": in_backups }),
        &format!(
            "Recovery device {} created (logged), {} document version(s) re-wrapped for it, {} \
             team key(s) handed over; its escrow is on the server{}{}{}",
            out.recovery_device.short(),
            out.caught_up,
            out.team_keys,
            out.revoked_previous.map_or_else(String::new, |d| format!(
                "\n  The previous code can no longer enrol a device (recovery device {} revoked).",
                d.short()
            )),
            out.rotated_to.map_or_else(String::new, |i| format!(
                "\n  The identity key rotated first (new fingerprint {}): every earlier escrow, \
                 in the backups too, holds a retired key; retired devices: {}.",
                serment_client::contacts::fingerprint(&i),
                if dropped.is_empty() {
                    "none".to_owned()
                } else {
                    dropped.join(", ")
                }
            )),
            if in_backups {
                "\n  The previous code's escrow stays in the server's backups until their \
                 retention ends, and opens your current identity key: if that code may have \
                 been seen or lost, run `serment id recovery-code --rotate` now."
            } else {
                ""
            }
        ),
    );
    Ok(())
}

/// A secret given on the command line (REVIEW3 S10): `-` reads one line from standard input;
/// absent, it is asked for on the terminal without echo (rpassword, as the keystore prompt);
/// absent and no terminal: an input error naming `flag`.
pub(crate) fn secret_arg(
    given: Option<&str>,
    flag: &str,
    prompt: &str,
) -> CliResult<zeroize::Zeroizing<String>> {
    use std::io::IsTerminal as _;
    match given {
        Some("-") => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map_err(|e| {
                CliError::Input(format!("{flag} -: cannot read standard input: {e}"))
            })?;
            let t = zeroize::Zeroizing::new(line.trim().to_owned());
            if t.is_empty() {
                return Err(CliError::Input(format!(
                    "{flag} -: standard input is empty"
                )));
            }
            Ok(t)
        }
        Some(v) => Ok(zeroize::Zeroizing::new(v.to_owned())),
        None if std::io::stdin().is_terminal() => {
            let v = zeroize::Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| {
                CliError::Input(format!("{flag}: cannot read from the terminal: {e}"))
            })?);
            Ok(v)
        }
        None => Err(CliError::Input(format!(
            "{flag} is required (give `{flag} -` to read it from standard input)"
        ))),
    }
}

/// REVIEW4 T17: the log key a new machine pinned on its first contact, with what to do about
/// it when it was not given in advance (`--log-key`).
pub(crate) fn warn_log_pin(server: &str, vkey: Option<&str>, given: bool) {
    let vkey = vkey.unwrap_or("(none)");
    if given {
        eprintln!("serment: log key of {server} pinned as given: {vkey}");
    } else {
        eprintln!(
            "serment: this machine pinned the log key {server} served: {vkey}\n  Compare it with \
             the one your server's operator publishes (the line `serment serve` prints). If they \
             differ, this server can show you a log of its own making: delete this keystore and \
             start again with `--log-key KEY`."
        );
    }
}

/// `serment recover`.
pub(crate) fn recover(ctx: &Ctx, a: RecoverArgs) -> CliResult<()> {
    let path = ctx.keystore_path()?;
    // Everything that can be checked is checked before the passphrase is asked for.
    if path.exists() {
        return Err(ClientError::KeystoreExists(path.display().to_string()).into());
    }
    if a.social {
        return super::social::recover_social(ctx, a);
    }
    let handle = a
        .handle
        .clone()
        .ok_or_else(|| CliError::Input("--handle is required".into()))?;
    let server = a
        .server
        .clone()
        .ok_or_else(|| CliError::Input("--server (or SERMENT_SERVER) is required".into()))?;
    serment_core::identity::validate_handle(&handle)
        .map_err(|e| CliError::Input(format!("--handle {handle:?}: {e}")))?;
    let typed = secret_arg(a.code.as_deref(), "--code", "Recovery code: ")?;
    let code = RecoveryCode::parse(&typed).map_err(|e| CliError::Input(format!("--code: {e}")))?;
    super::lock_keystore(&path)?;
    let r = serment_client::recovery::recover_pinned(
        &path,
        super::passphrase_for(true, &[&handle])?,
        &server,
        &ctx.transport()?,
        &handle,
        &code,
        RecoverOptions {
            keystore_params: params(a.kdf),
            escrow_params: params(a.kdf),
            revoke_others: a.revoke_others,
            rotate: a.rotate,
        },
        a.log_key.as_deref(),
    )
    .map_err(|e| match e {
        ClientError::Keystore(serment_core::Error::KeystoreDecrypt) => CliError::Passphrase(
            "the recovery code does not open this handle's escrow (a wrong code, a code already \
             used and replaced, or an escrow that is not this handle's)"
                .into(),
        ),
        other => other.into(),
    })?;
    show_code(&r.new_code);
    let ks = &r.session.ks;
    warn_log_pin(
        r.session.api.base(),
        ks.log_state(r.session.api.base()).map(|l| l.vkey.as_str()),
        a.log_key.is_some(),
    );
    let fp = serment_client::contacts::fingerprint(&ks.identity.id());
    emit(
        ctx.json,
        &json!({ "handle": handle, "identity_id": ks.identity.id().to_string(),
                 "device_id": ks.device.id().to_string(), "fingerprint": fp,
                 "keystore": path.display().to_string(), "server": r.session.api.base(),
                 "used_recovery_device": r.used_recovery_device.to_string(),
                 "recovery_index": r.recovery_index, "caught_up": r.caught_up,
                 "team_keys": r.team_keys,
                 "revoked": r.revoked.iter().map(ToString::to_string).collect::<Vec<_>>(),
                 "rotated": r.rotated_to.is_some(),
                 "new_recovery_device": r.new_code.recovery_device.to_string() }),
        &format!(
            "Recovered {:?} as device {}\n  keystore:    {}\n  fingerprint: {fp}\n  {} \
             document version(s) re-wrapped for this device; the recovery is logged (index {}), \
             your other devices will see it.\n  The code you used can no longer enrol a device; \
             a new one is shown above.{}{}\n  Pin your contacts again: `serment contact add HANDLE`, and compare \
             their fingerprints.",
            handle,
            ks.device.id(),
            path.display(),
            r.caught_up,
            r.recovery_index,
            if r.revoked.is_empty() {
                String::new()
            } else {
                format!("\n  Revoked {} old device(s).", r.revoked.len())
            },
            if r.rotated_to.is_some() {
                "\n  The identity key was rotated: tell your contacts to verify the new fingerprint."
            } else {
                "\n  The identity key was not rotated: if the code may have been seen by \
                 someone else, run `serment rotate-identity` (a copy of its escrow holds the key)."
            }
        ),
    );
    Ok(())
}

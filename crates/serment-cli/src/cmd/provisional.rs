//! `serment put … --to-unregistered`, `import-fhir … --to-unregistered` and `serment claim`
//! (PROTOCOL.md §15, issue 17 §1).

use std::io::IsTerminal;
use std::path::Path;

use serde_json::{Value, json};
use serment_client::provisional::UnregisteredTarget;
use serment_client::vault::Session;
use serment_core::KeyId;
use serment_core::document::Metadata;
use serment_core::provisional::ClaimCode;
use serment_core::wrap::Recipient;
use zeroize::Zeroizing;

use super::{Ctx, now_rfc3339};
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// An unregistered contact, resolved for sealing.
pub(crate) struct Resolved {
    /// Recipients to add.
    pub(crate) recipients: Vec<Recipient>,
    /// Which of them are provisional recipients.
    pub(crate) provisional: Vec<KeyId>,
    /// The provisional recipient.
    pub(crate) provisional_id: KeyId,
    /// The claim code, when made by this run (shown once).
    pub(crate) claim_code: Option<Zeroizing<String>>,
    /// The claimant's handle, once claimed.
    pub(crate) claimed_by: Option<String>,
}

impl Resolved {
    /// The `unregistered` object of the `--json` output (docs/JSON.md).
    pub(crate) fn json(&self) -> Value {
        json!({ "provisional_id": self.provisional_id.to_string(),
                "claim_code": self.claim_code.as_ref().map(|c| c.as_str()),
                "claimed_by": self.claimed_by })
    }

    /// The lines of the text output.
    pub(crate) fn text(&self) -> String {
        match (&self.claimed_by, &self.claim_code) {
            (Some(h), _) => {
                format!("\n  the patient claimed (handle {h}): sealed directly to their devices")
            }
            // The code itself was printed once, before the upload (`resolve_with`, the
            // newcomer's H20: it is not printed a second time).
            (None, Some(_)) => format!(
                "\n  sealed for a provisional recipient (not yet registered) {}: its CLAIM CODE is \
                 the one printed above, shown once",
                self.provisional_id.short(),
            ),
            (None, None) => format!(
                "\n  sealed for the patient's provisional recipient {} (not claimed yet: the \
                 claim code printed the first time opens this document too; if it was lost, \
                 run again with --new-claim-code)",
                self.provisional_id.short()
            ),
        }
    }
}

/// Resolves `contact` (`email:ADDRESS[,ins:INS]`) for this session; `new_claim_code` makes a
/// new provisional recipient even if an unclaimed one exists (review S14: a lost receipt, a code
/// nobody saw, a locked recipient). A claim code made here is printed at once, before any
/// upload, so that a run that fails later does not lose it, and only there (the newcomer's H20:
/// it was printed twice): on standard output with what to do with it, or, with `--json` (whose
/// standard output is one JSON object, `unregistered.claim_code`), on standard error.
pub(crate) fn resolve_with(
    s: &mut Session,
    contact: &str,
    new_claim_code: bool,
    json: bool,
) -> CliResult<Resolved> {
    Ok(match s.unregistered_target_with(contact, new_claim_code)? {
        UnregisteredTarget::Claimed {
            handle,
            provisional_id,
        } => {
            let (c, _) = serment_client::contacts::add(&s.api, &mut s.ks, &handle)?;
            s.ks.save()?;
            Resolved {
                recipients: c.devices.iter().map(Recipient::from).collect(),
                provisional: Vec::new(),
                provisional_id,
                claim_code: None,
                claimed_by: Some(handle),
            }
        }
        UnregisteredTarget::Provisional { record, new_code } => {
            let claim_code = new_code.map(|c| c.display());
            if let Some(c) = &claim_code {
                // Before the upload (review S14): if it fails, the code is not lost.
                if json {
                    eprintln!(
                        "CLAIM CODE for {contact} (provisional recipient {}), shown now in case \
                         the upload fails: {}",
                        record.id().short(),
                        c.as_str()
                    );
                } else {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(
                        out,
                        "CLAIM CODE for {contact} (provisional recipient {}), shown once: print \
                         it on the sampling receipt or send it by SMS, never by email, with this \
                         lab's handle, {}:\n    {}\n  The patient registers, then runs \
                         `serment claim --code CODE`; the server emails them a one-time code, \
                         and `claim` names the lab's handle to compare with the receipt's.",
                        record.id().short(),
                        s.ks.handle(),
                        c.as_str()
                    );
                    let _ = out.flush();
                }
            }
            Resolved {
                recipients: vec![record.recipient()],
                provisional: vec![record.id()],
                provisional_id: record.id(),
                claim_code,
                claimed_by: None,
            }
        }
    })
}

/// `serment put FILE [--to …] --to-unregistered CONTACT`.
pub(crate) fn put_with(
    ctx: &Ctx,
    file: &Path,
    to: &[String],
    title: Option<String>,
    mime: Option<String>,
    contact: &str,
    new_claim_code: bool,
) -> CliResult<()> {
    let f = std::fs::File::open(file).map_err(|e| CliError::io(file, e))?;
    let len = f.metadata().map_err(|e| CliError::io(file, e))?.len();
    let mut s = ctx.session()?;
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned());
    let meta = Metadata {
        content_length: len,
        mime_type: Some(mime.unwrap_or_else(|| super::docs::guess_mime(file).to_owned())),
        title: title.or_else(|| file_name.clone()),
        file_name,
        created: now_rfc3339(),
        author_display: Some(s.ks.display_name().to_owned()),
        ..Metadata::default()
    };
    let mut recipients = s.recipients(to)?;
    let u = resolve_with(&mut s, contact, new_claim_code, ctx.json)?;
    recipients.extend_from_slice(&u.recipients);
    let doc_id = serment_core::DocId::random().map_err(|e| CliError::Input(e.to_string()))?;
    let r = s.put_version_with(f, meta, doc_id, 1, &recipients, &u.provisional)?;
    emit(
        ctx.json,
        &json!({ "doc_id": r.doc_id.to_string(), "doc_version": r.doc_version, "blob_id": r.blob_id,
                 "sealed_bytes": r.sealed_len, "plaintext_bytes": len,
                 "recipients": r.recipients.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
                 "team": Value::Null, "team_epoch": Value::Null,
                 "unregistered": u.json() }),
        &format!(
            "Sealed {} ({len} bytes -> {} stored) for {} device(s)\n  document: {}{}",
            file.display(),
            r.sealed_len,
            r.recipients.len(),
            r.doc_id,
            u.text()
        ),
    );
    Ok(())
}

/// `serment claim --code CLAIM [--otp CODE]`.
pub(crate) fn claim(ctx: &Ctx, code: Option<&str>, otp: Option<String>) -> CliResult<()> {
    // REVIEW3 S10: `-` reads a secret from standard input; an absent code is asked for, hidden.
    let typed = super::recover::secret_arg(code, "--code", "Claim code: ")?;
    let code = ClaimCode::parse(&typed).map_err(|e| CliError::Input(e.to_string()))?;
    let otp = match otp.as_deref() {
        Some("-") => Some(super::recover::secret_arg(Some("-"), "--otp", "")?),
        Some(o) => Some(Zeroizing::new(o.to_owned())),
        None => None,
    };
    let mut s = ctx.session()?;
    let otp = match otp {
        Some(o) => o,
        None => {
            let ttl = match s.api.request_claim_otp(&code) {
                Ok(ttl) => ttl,
                // Review S2: claimed already (by this identity, if the claim resumes; the server
                // refuses another identity): resume the re-wraps, no one-time code needed.
                Err(serment_client::ClientError::Server { status: 409, .. }) => {
                    return finish_claim(ctx, &mut s, &code, "");
                }
                Err(e) => return Err(e.into()),
            };
            let interactive = !ctx.json && std::io::stdin().is_terminal();
            if !interactive {
                emit(
                    ctx.json,
                    &json!({ "otp_sent": true, "expires_in": ttl, "provisional_id": null,
                             "claim_index": null, "newly_claimed": null, "versions": null,
                             "wraps": null, "log_entries": null, "lab": null }),
                    &format!(
                        "A one-time code was emailed to the address the lab has for you (valid \
                         {} minutes). Run again with --otp CODE.",
                        ttl / 60
                    ),
                );
                return Ok(());
            }
            eprintln!(
                "A one-time code was emailed to the address the lab has for you (valid {} minutes).",
                ttl / 60
            );
            let line = Zeroizing::new(
                rpassword::prompt_password("One-time code: ")
                    .map_err(|e| CliError::Input(format!("reading the one-time code: {e}")))?,
            );
            Zeroizing::new(line.trim().to_owned())
        }
    };
    finish_claim(ctx, &mut s, &code, &otp)
}

fn finish_claim(ctx: &Ctx, s: &mut Session, code: &ClaimCode, otp: &str) -> CliResult<()> {
    let o = s.claim(code, otp).map_err(|e| match e {
        // A wrong, used or expired one-time code is a wrong secret, like a wrong passphrase
        // (exit 3), not a server or network failure (the newcomer's H17).
        serment_client::ClientError::Server {
            status: 403,
            message,
            ..
        } if message.contains("one-time code") => CliError::WrongCode(format!(
            "{message}: check the code in the newest email, or run `serment claim --code ...` \
             without --otp for a new one"
        )),
        other => other.into(),
    })?;
    let lab = match &o.lab {
        Some(h) => format!(
            "\n  sent by {h} (the log holds the lab's device under that handle): if it is the \
             handle on your receipt, `serment contact add {h}` to read them"
        ),
        None => "\n  the lab's device that sent them is no longer registered: ask the lab for \
                 its handle, then `serment contact add HANDLE`"
            .to_owned(),
    };
    emit(
        ctx.json,
        &json!({ "otp_sent": false, "expires_in": null, "provisional_id": o.provisional_id.to_string(),
                 "claim_index": o.claim_index, "newly_claimed": o.newly_claimed,
                 "versions": o.versions, "wraps": o.wraps, "log_entries": o.log_entries,
                 "lab": o.lab }),
        &format!(
            "{} provisional recipient {} (log entry {})\n  re-wrapped {} document version(s) \
             to your devices ({} key wraps, {} log entries): `serment ls` lists them{lab}",
            if o.newly_claimed {
                "Claimed"
            } else {
                "Already yours:"
            },
            o.provisional_id.short(),
            o.claim_index,
            o.versions,
            o.wraps,
            o.log_entries
        ),
    );
    Ok(())
}

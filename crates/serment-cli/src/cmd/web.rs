//! `serment web verify` (issue 13 §3, PROTOCOL.md §11.3 kind 8): is the patient's page a server
//! serves a bundle it logged?

use clap::{Args, Subcommand};
use serde_json::json;
use serment_client::api::Api;
use serment_client::web::{BundleVerdict, verify_bundle, verify_bundle_unpinned};
use serment_core::log::note::VerifierKey;
use serment_core::log::pin::LogTrust;

use super::Ctx;
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// `serment web …`.
#[derive(Debug, Subcommand)]
pub(crate) enum WebCommand {
    /// Fetch the patient's page as a browser would, recompute its bundle hash and find it in the
    /// transparency log with a proof (exit 4 if the served page is not a logged bundle).
    Verify(WebVerifyArgs),
}

/// `serment web verify`.
#[derive(Debug, Args)]
pub(crate) struct WebVerifyArgs {
    /// Server base URL (the page's origin).
    #[arg(long, env = "SERMENT_SERVER")]
    pub(crate) server: String,
    /// The log's verifier key, as `serment serve` prints it, when the keystore pins none for
    /// this server (default: the keystore's pin, else the server's key, trusted).
    #[arg(long)]
    pub(crate) log_key: Option<String>,
}

pub(crate) fn run(ctx: &Ctx, c: WebCommand) -> CliResult<()> {
    match c {
        WebCommand::Verify(a) => verify(ctx, &a),
    }
}

/// The verdict and whether the log key was the keystore's pin.
fn verdict(ctx: &Ctx, a: &WebVerifyArgs) -> CliResult<(BundleVerdict, bool)> {
    let transport = ctx.transport()?;
    if ctx.keystore_path()?.exists() {
        let mut ks = ctx.keystore()?;
        // The private CA `register --ca-cert` recorded, as every other command uses it.
        let transport = serment_client::vault::effective_transport(&ks, &transport)?;
        let api = Api::with_transport(&a.server, &transport)?;
        if let Some(pinned) = ks.log_state(api.base()).map(|s| s.vkey.clone()) {
            if let Some(k) = &a.log_key
                && *k != pinned
            {
                return Err(CliError::Input(format!(
                    "--log-key {k} is not the log key pinned in the keystore for {} ({pinned})",
                    a.server
                )));
            }
            let v = verify_bundle(&api, &mut ks)?;
            // The pinned checkpoint may have advanced.
            ks.save()?;
            return Ok((v, true));
        }
    }
    let api = Api::with_transport(&a.server, &transport)?;
    let vkey = match &a.log_key {
        Some(k) => k.clone(),
        None => api.log_key()?,
    };
    let t = LogTrust {
        log_key: VerifierKey::parse(&vkey).map_err(|e| CliError::Input(format!("log key: {e}")))?,
        witnesses: Vec::new(),
        quorum: 0,
    };
    Ok((verify_bundle_unpinned(&api, &t)?, a.log_key.is_some()))
}

fn verify(ctx: &Ctx, a: &WebVerifyArgs) -> CliResult<()> {
    let (v, pinned) = verdict(ctx, a)?;
    let mut text = format!(
        "page of {}: {} asset(s), bundle hash {}",
        a.server,
        v.assets.len(),
        v.bundle_hash
    );
    for (path, sri) in &v.assets {
        text.push_str(&format!("\n  {path} {sri}"));
    }
    match (v.log_index, &v.server_version) {
        (Some(i), Some(ver)) => text.push_str(&format!(
            "\nLOGGED: entry {i} of the log (server version {ver}), proven against the checkpoint \
             of {} entries{}",
            v.log_size,
            if pinned {
                " your keystore accepts"
            } else {
                " signed by the log key (not pinned in a keystore: compare it out of band)"
            }
        )),
        _ => text.push_str(&format!(
            "\nNOT LOGGED: this page matches none of the {} bundle(s) in the log: it may have \
             been modified for you; do not use it",
            v.logged.len()
        )),
    }
    if !v.logged() && ctx.json {
        // One JSON object: the error, which names the served hash.
        return Err(CliError::BundleNotLogged(v.bundle_hash));
    }
    emit(
        ctx.json,
        &json!({
            "logged": v.logged(),
            "log_index": v.log_index,
            "log_size": v.log_size,
            "log_key_pinned": pinned,
            "bundle_hash": v.bundle_hash,
            "server_version": v.server_version,
            "assets": v.assets.iter().map(|(p, s)| json!({"path": p, "sri": s})).collect::<Vec<_>>(),
            "logged_bundles": v.logged.iter().map(|(i, h, ver)| json!({"index": i, "bundle_hash": h, "server_version": ver})).collect::<Vec<_>>(),
        }),
        &text,
    );
    if v.logged() {
        Ok(())
    } else {
        Err(CliError::BundleNotLogged(v.bundle_hash))
    }
}

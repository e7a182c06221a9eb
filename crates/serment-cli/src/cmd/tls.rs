//! `serment tls test-pki`: a throwaway private CA and a loopback server certificate, so that a
//! newcomer can try the README's walkthrough over HTTPS without an organisation's CA. The files
//! are what `serve --tls-cert/--tls-key` and `register --ca-cert` read; nothing here is meant for
//! a real deployment (the certificates name only `localhost`, `127.0.0.1` and `::1`).

use std::io::Write;
use std::path::Path;

use serde_json::json;
use serment_client::ClientError;
use serment_client::fsutil::AtomicFile;

use super::Ctx;
use super::demo_tls;
use crate::cli::TlsCommand;
use crate::error::{CliError, CliResult};
use crate::output::emit;

/// The longest validity `--days` accepts: a trial certificate should not outlive the trial.
const MAX_DAYS: u32 = 397;

pub(crate) fn run(ctx: &Ctx, cmd: TlsCommand) -> CliResult<()> {
    match cmd {
        TlsCommand::TestPki { out, days, force } => test_pki(ctx, &out, days, force),
    }
}

fn test_pki(ctx: &Ctx, out: &Path, days: u32, force: bool) -> CliResult<()> {
    if days == 0 || days > MAX_DAYS {
        return Err(CliError::Input(format!(
            "--days must be between 1 and {MAX_DAYS} (got {days})"
        )));
    }
    if !out.is_dir() {
        return Err(CliError::Local(format!(
            "{} is not a directory (create it first)",
            out.display()
        )));
    }
    let pki = demo_tls::generate(days)?;
    let files: [(&str, &str); 3] = [
        ("ca.pem", &pki.ca_pem),
        ("server.pem", &pki.cert_pem),
        ("server.key", &pki.key_pem),
    ];
    // Refuse before writing anything, so that a refusal leaves no mixed set behind.
    if let Some((name, _)) = files
        .iter()
        .find(|(n, _)| !force && out.join(n).symlink_metadata().is_ok())
    {
        return Err(CliError::Client(ClientError::OutputExists(
            out.join(name).display().to_string(),
        )));
    }
    for (name, pem) in files {
        let path = out.join(name);
        let mut f = if force {
            AtomicFile::new(&path)?
        } else {
            AtomicFile::no_clobber(&path)?
        };
        f.file()
            .write_all(pem.as_bytes())
            .map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
        // Mode 0600 for every file (AtomicFile's default): the key must be, and the
        // certificates lose nothing by it.
        f.commit()?;
    }
    let shown = |name: &str| out.join(name).display().to_string();
    let (ca, cert, key) = (shown("ca.pem"), shown("server.pem"), shown("server.key"));
    emit(
        ctx.json,
        &json!({ "ca_cert": ca, "cert": cert, "key": key, "days": days,
                 "names": ["localhost", "127.0.0.1", "::1"] }),
        &format!(
            "wrote {ca} (a throwaway CA: trust it with --ca-cert), {cert} and {key} (for serve \
             --tls-cert/--tls-key), valid {days} day(s) for localhost, 127.0.0.1 and ::1.\n\
             For a trial only: in production use a certificate from your organisation's CA."
        ),
    );
    Ok(())
}

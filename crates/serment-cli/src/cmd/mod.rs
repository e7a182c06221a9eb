//! Command implementations.

pub(crate) mod agent;
mod agent_serve;
pub(crate) mod backup;
mod demo;
mod demo_provisional;
mod demo_recovery;
mod demo_team;
mod demo_tls;
mod device;
pub(crate) mod docs;
pub(crate) mod erase;
mod fhir;
mod id;
pub(crate) mod log;
mod offline;
mod provisional;
mod recover;
mod replica;
pub(crate) mod restore;
pub(crate) mod rollback;
mod serve;
mod social;
mod team;
mod tls;
mod version;
pub(crate) mod web;
pub(crate) mod witness;

use std::path::PathBuf;

use serment_client::ClientError;
use serment_client::keystore::Keystore;
use serment_client::transport::Transport;
use serment_client::vault::Session;
use zeroize::Zeroizing;

use crate::cli::{Cli, Command};
use crate::error::{CliError, CliResult};

/// Runs one command.
pub(crate) fn run(cli: Cli) -> CliResult<()> {
    let ctx = Ctx {
        json: cli.json,
        home: cli.home,
        ca_cert: cli.ca_cert,
        insecure_http: cli.insecure_http,
        held_key: None,
    };
    if ctx.insecure_http {
        eprintln!(
            "serment: warning: --insecure-http: requests to a server outside loopback may go \
             over plain HTTP, readable and alterable by anyone on the network path"
        );
    }
    match cli.command {
        Command::Serve(a) => serve::run(&ctx, *a),
        Command::Id(c) => id::run(&ctx, c),
        Command::Register { server } => id::register(&ctx, &server),
        Command::Contact(c) => id::contact(&ctx, c),
        Command::Put {
            file,
            to,
            title,
            mime,
            to_team: _,
            to_unregistered: Some(contact),
            new_claim_code,
        } => provisional::put_with(&ctx, &file, &to, title, mime, &contact, new_claim_code),
        Command::Claim { code, otp } => provisional::claim(&ctx, code.as_deref(), otp),
        Command::Put {
            file,
            to,
            title,
            mime,
            to_team,
            to_unregistered: None,
            new_claim_code: _,
        } => {
            let op = agent::Op::Put {
                file: agent::absolute(&file)?,
                to: to.clone(),
                title: title.clone(),
                mime: mime.clone(),
                to_team: to_team.clone(),
            };
            if agent::try_run(&ctx, op)? {
                return Ok(());
            }
            docs::put(&ctx, &file, &to, title, mime, to_team.as_deref())
        }
        Command::Get {
            doc,
            output,
            version,
            force,
            offline,
        } => {
            if offline {
                return replica::get(&ctx, &doc, version, &output, force);
            }
            let op = agent::Op::Get {
                doc: doc.clone(),
                version,
                output: agent::absolute(&output)?,
                force,
            };
            if agent::try_run(&ctx, op)? {
                return Ok(());
            }
            docs::get(&ctx, &doc, version, &output, force)
        }
        Command::Agent(c) => agent::run(&ctx, c),
        Command::Ls { offline: true } => replica::ls(&ctx),
        Command::Ls { offline: false } => docs::ls(&ctx),
        Command::Sync => replica::sync(&ctx),
        Command::Share {
            doc,
            to,
            to_team,
            version,
        } => docs::share(&ctx, &doc, version, &to, to_team.as_deref()),
        Command::Team(c) => team::run(&ctx, c),
        Command::Accesses { doc } => docs::accesses(&ctx, &doc),
        Command::Rewrap { pq, all, docs } => docs::rewrap(&ctx, pq, all, &docs),
        Command::ImportFhir {
            bundle,
            to,
            to_unregistered,
            new_claim_code,
            allow_dangling,
        } => fhir::import(
            &ctx,
            &bundle,
            &to,
            to_unregistered.as_deref(),
            new_claim_code,
            allow_dangling,
        ),
        Command::Seal {
            input,
            output,
            force,
            to_record,
            title,
            mime,
        } => {
            let op = agent::Op::Seal {
                input: agent::absolute(&input)?,
                output: agent::absolute(&output)?,
                force,
                to_record: to_record
                    .iter()
                    .map(|p| agent::absolute(p))
                    .collect::<CliResult<_>>()?,
                title: title.clone(),
                mime: mime.clone(),
            };
            if agent::try_run(&ctx, op)? {
                return Ok(());
            }
            offline::seal(
                &ctx,
                offline::SealArgs {
                    input: &input,
                    output: &output,
                    force,
                    to_records: &to_record,
                    title,
                    mime,
                },
            )
        }
        Command::Open {
            input,
            output,
            force,
            author_record,
        } => {
            let op = agent::Op::Open {
                input: agent::absolute(&input)?,
                output: agent::absolute(&output)?,
                force,
                author_record: author_record.as_deref().map(agent::absolute).transpose()?,
            };
            if agent::try_run(&ctx, op)? {
                return Ok(());
            }
            offline::open(&ctx, &input, &output, force, author_record.as_deref())
        }
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Witness(a) => witness::witness(&ctx, a),
        Command::VerifyLog(a) => log::verify_log(&ctx, a),
        Command::PinnedCheckpoint(a) => log::pinned_checkpoint(&ctx, &a),
        Command::Backup(a) => backup::backup(&ctx, a),
        Command::VerifyBackup(a) => backup::verify_backup(&ctx, a),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::AcceptRollback(a) => rollback::run(&ctx, a),
        Command::Web(c) => web::run(&ctx, c),
        Command::Audit(a) => log::audit(&ctx, a),
        Command::Device(c) => device::run(&ctx, c),
        Command::Recover(a) => recover::recover(&ctx, a),
        Command::Recovery(c) => social::run(&ctx, c),
        Command::RevokeDevice(a) => log::revoke(&ctx, a),
        Command::Erase(a) => erase::run(&ctx, a),
        Command::RotateIdentity => log::rotate(&ctx),
        Command::Witnesses(a) => log::witnesses(&ctx, a),
        Command::Version => version::run(&ctx),
        Command::Tls(c) => tls::run(&ctx, c),
    }
}

/// Global options.
pub(crate) struct Ctx {
    pub(crate) json: bool,
    pub(crate) home: Option<PathBuf>,
    /// `--ca-cert` / `SERMENT_CA_CERT`.
    pub(crate) ca_cert: Option<PathBuf>,
    /// `--insecure-http`.
    pub(crate) insecure_http: bool,
    /// Set only inside `serment agent`: the keystore file key it holds, used instead of asking
    /// for the passphrase; the agent holds the keystore lock around each request.
    pub(crate) held_key: Option<std::sync::Arc<serment_core::keystore::DerivedKey>>,
}

impl Ctx {
    /// The keystore path: `<home>/keystore.srmk`.
    pub(crate) fn keystore_path(&self) -> CliResult<PathBuf> {
        let home = match &self.home {
            Some(h) => h.clone(),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".serment"))
                .ok_or_else(|| CliError::Input("set --home or SERMENT_HOME (no $HOME)".into()))?,
        };
        Ok(home.join("keystore.srmk"))
    }

    /// Opens the keystore with the passphrase from SERMENT_PASSPHRASE or a prompt. A missing
    /// keystore is reported before any passphrase is asked for.
    pub(crate) fn keystore(&self) -> CliResult<Keystore> {
        let path = self.keystore_path()?;
        if !path.exists() {
            return Err(ClientError::NoKeystore(path.display().to_string()).into());
        }
        if let Some(key) = &self.held_key {
            return Ok(Keystore::open_with_key(&path, std::sync::Arc::clone(key))?);
        }
        lock_keystore(&path)?;
        Ok(Keystore::open(&path, passphrase(false)?)?)
    }

    /// Opens the keystore and logs in to its server (trusting the CA recorded at `register`
    /// unless `--ca-cert` names another).
    pub(crate) fn session(&self) -> CliResult<Session> {
        Ok(Session::connect_with(
            self.keystore()?,
            None,
            &self.transport()?,
        )?)
    }

    /// The transport settings of the global flags: `--ca-cert` (read and checked here; an empty
    /// `SERMENT_CA_CERT` counts as unset) and `--insecure-http`.
    pub(crate) fn transport(&self) -> CliResult<Transport> {
        let mut t = Transport::default();
        t.insecure_http = self.insecure_http;
        if let Some(path) = self.ca_cert.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            let meta = std::fs::metadata(path).map_err(|e| CliError::io(path, e))?;
            if meta.len() > serment_client::transport::MAX_CA_PEM as u64 {
                return Err(CliError::Input(format!(
                    "--ca-cert {}: over {} bytes",
                    path.display(),
                    serment_client::transport::MAX_CA_PEM
                )));
            }
            let pem = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
            t = t
                .with_ca_pem(&pem)
                .map_err(|e| CliError::Input(format!("--ca-cert {}: {e}", path.display())))?;
        }
        Ok(t)
    }
}

/// How long a command waits for another `serment` command using the same keystore.
const KEYSTORE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Takes an exclusive lock on `<keystore>.lock` for the rest of this process, so that two
/// commands on one keystore run one after the other: each reads, changes and rewrites the whole
/// keystore, and without the lock the last writer would silently drop the other's pins, log
/// checkpoint or cache. Waits up to [`KEYSTORE_LOCK_WAIT`].
pub(crate) fn lock_keystore(keystore: &std::path::Path) -> CliResult<()> {
    let lock_path = lock_path(keystore);
    // This process already holds it (a second open of the same keystore).
    static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if held.contains(&lock_path) {
        return Ok(());
    }
    let file = acquire_lock(keystore, &lock_path)?;
    // Held until the process exits (the lock goes with the file descriptor).
    std::mem::forget(file);
    held.push(lock_path);
    Ok(())
}

/// [`lock_keystore`] for as long as the returned file is open: the agent holds it around each
/// request it serves, so that it and commands run without it take turns.
pub(crate) fn lock_keystore_scoped(keystore: &std::path::Path) -> CliResult<std::fs::File> {
    acquire_lock(keystore, &lock_path(keystore))
}

/// `<keystore>.lock`.
fn lock_path(keystore: &std::path::Path) -> PathBuf {
    let mut lock_path = keystore.as_os_str().to_owned();
    lock_path.push(".lock");
    PathBuf::from(lock_path)
}

/// Opens (creating it, and its 0700 home, if needed) and locks `lock_path`, waiting up to
/// [`KEYSTORE_LOCK_WAIT`].
fn acquire_lock(
    keystore: &std::path::Path,
    lock_path: &std::path::Path,
) -> CliResult<std::fs::File> {
    if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        // A new home: only its owner may list it (the keystore itself is 0600).
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(|e| CliError::io(dir, e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .map_err(|e| CliError::io(lock_path, e))?;
    let start = std::time::Instant::now();
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if start.elapsed() > KEYSTORE_LOCK_WAIT {
                    return Err(CliError::Input(format!(
                        "another serment command has been using {} for over {} s; try again \
                         when it is done",
                        keystore.display(),
                        KEYSTORE_LOCK_WAIT.as_secs()
                    )));
                }
                if !said {
                    eprintln!("serment: waiting for another serment command using this keystore");
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(CliError::io(lock_path, e)),
        }
    }
}

pub(crate) use serment_client::passphrase::MIN_PASSPHRASE_CHARS;

/// Refuses a new keystore's passphrase that `serment_client::passphrase::weakness` refuses (too
/// short, or zxcvbn's 10^8 guesses or fewer; `context`: the handle and display name), saying
/// why and what to do.
///
/// # Errors
/// [`CliError::Passphrase`] (exit 3), whose message never contains the passphrase.
pub(crate) fn check_new_passphrase(p: &str, context: &[&str]) -> CliResult<()> {
    match serment_client::passphrase::weakness(p, context) {
        Some(why) => Err(CliError::Passphrase(why)),
        None => Ok(()),
    }
}

/// The passphrase: `SERMENT_PASSPHRASE`, or a prompt on the terminal. With `confirm` (a new
/// keystore), the rules are stated before the prompt, the passphrase checked by
/// [`check_new_passphrase`] before asking for it again, and typed twice. Every failure is a
/// [`CliError::Passphrase`] (exit 3).
pub(crate) fn passphrase(confirm: bool) -> CliResult<Zeroizing<String>> {
    passphrase_for(confirm, &[])
}

/// As [`passphrase`]; `context` (the handle, the display name) counts as guessable when a new
/// passphrase is checked.
pub(crate) fn passphrase_for(confirm: bool, context: &[&str]) -> CliResult<Zeroizing<String>> {
    let check = |p: &str| {
        if confirm {
            check_new_passphrase(p, context)?;
        }
        Ok::<(), CliError>(())
    };
    if let Ok(p) = std::env::var("SERMENT_PASSPHRASE") {
        if p.is_empty() {
            return Err(CliError::Passphrase("SERMENT_PASSPHRASE is empty".into()));
        }
        check(&p)?;
        return Ok(Zeroizing::new(p));
    }
    if confirm {
        eprintln!(
            "Choose a passphrase for the new keystore: at least {MIN_PASSPHRASE_CHARS} characters, \
             not a common password or pattern (four unrelated words are best). It cannot be \
             recovered: without it the keystore cannot be opened."
        );
    }
    let prompt = if confirm {
        "New keystore passphrase: "
    } else {
        "Keystore passphrase: "
    };
    let p = Zeroizing::new(rpassword::prompt_password(prompt).map_err(|e| {
        CliError::Passphrase(format!(
            "cannot read a passphrase from the terminal ({e}); set SERMENT_PASSPHRASE"
        ))
    })?);
    check(&p)?;
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("Repeat passphrase: ").map_err(
            |e| CliError::Passphrase(format!("cannot read the passphrase again ({e})")),
        )?);
        if *again != *p {
            return Err(CliError::Passphrase("the passphrases differ".into()));
        }
    }
    Ok(p)
}

/// Parses a document id given on the command line.
/// Checks an output path before anything is fetched or asked for: it must name a file (not end
/// in `/`, not be `.` or `..`); an existing path is refused unless `force`, and even with `force`
/// only a regular file (or a symlink, which is replaced itself) may be replaced, never a
/// directory, a device, a FIFO or a socket.
pub(crate) fn check_output(path: &std::path::Path, force: bool) -> CliResult<()> {
    let text = path.as_os_str().to_string_lossy();
    if text.ends_with('/') || path.file_name().is_none() {
        return Err(CliError::Input(format!(
            "output {}: name a file, not a directory",
            path.display()
        )));
    }
    match path.symlink_metadata() {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() || !(m.is_file() || m.file_type().is_symlink()) => {
            Err(CliError::Input(format!(
                "output {}: exists and is not a regular file; name a file",
                path.display()
            )))
        }
        Ok(_) if !force => Err(ClientError::OutputExists(path.display().to_string()).into()),
        Ok(_) => Ok(()),
    }
}

/// Upper-case hex is accepted (ids are shown in lower case).
pub(crate) fn doc_id(s: &str) -> CliResult<serment_core::DocId> {
    serment_core::DocId::from_hex(&s.trim().to_ascii_lowercase()).map_err(|_| {
        CliError::Input(format!(
            "{s:?} is not a document id (32 hex digits, as `serment ls` shows them)"
        ))
    })
}

/// RFC 3339 time now (UTC).
pub(crate) fn now_rfc3339() -> Option<String> {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Seconds since the Unix epoch as RFC 3339 (UTC); the number itself if out of range.
pub(crate) fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// Prints, on stderr (stdout stays one JSON object with `--json`), each contact identity rotation
/// not yet confirmed, with both fingerprints and how to verify (issue 18).
pub(crate) fn print_rotation_notices(notices: &[serment_client::contacts::RotationNotice]) {
    for n in notices {
        crate::output::note(&format!(
            "serment: NOTE: {h} replaced its identity key (a rotation signed by its old key, proven \
             in the log).\n  old fingerprint: {old}\n  new fingerprint: {new}\n  Compare the new \
             fingerprint with {h} out of band, then run `serment contact verify {h} --confirm`.",
            h = n.handle,
            old = n.old_fingerprint,
            new = n.new_fingerprint
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_958_232), "2026-11-29T13:17:12Z");
        // Out of range: the number, not a panic.
        assert_eq!(rfc3339(u64::MAX), u64::MAX.to_string());
    }
}

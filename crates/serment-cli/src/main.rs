//! `serment`: the Serment command-line client, server and demo.
//!
//! Every command takes `--json` for one machine-readable JSON object on stdout, and exits with a
//! meaningful code (see `CliError::exit_code`): 0 success, 1 other, 2 bad input, 3 keystore or
//! passphrase, 4 integrity failure or key substitution, 5 server or network, 6 not found, 7 demo
//! check failed.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod error;
mod output;

use clap::Parser as _;

/// On SIGINT, SIGTERM or SIGHUP, deletes the temporary files of outputs not yet verified (a
/// `get` interrupted mid-stream must not leave unverified plaintext on disk), then exits.
/// Not for the server commands, which shut down gracefully on their own.
fn remove_temp_files_on_signal() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    serment_client::fsutil::remove_pending();
                    std::process::exit(128 + sig);
                }
            });
        }
        Err(e) => eprintln!("serment: warning: cannot install signal handlers: {e}"),
    }
}

/// Parses the command line. A usage error honours `--json` (one JSON error object) and exits 2;
/// `--help` and `--version` print as usual and exit 0.
fn parse_args() -> cli::Cli {
    match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let wants_json = std::env::args_os().skip(1).any(|a| a == "--json");
            if wants_json
                && !matches!(
                    e.kind(),
                    ErrorKind::DisplayHelp
                        | ErrorKind::DisplayVersion
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                let message = e.render().to_string();
                let message = message.trim().trim_start_matches("error: ");
                let v = serde_json::json!({ "error": { "code": "usage", "message": message } });
                output::json_line(v);
                std::process::exit(2);
            }
            e.exit()
        }
    }
}

/// The causes of `e` worth printing: each one whose text its parent's message does not already
/// include (`keystore: wrong passphrase` caused by `wrong passphrase` prints once).
fn distinct_causes(e: &dyn std::error::Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut parent = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !parent.contains(&text) {
            out.push(text.clone());
        }
        parent = text;
        src = s.source();
    }
    out
}

fn main() {
    let cli = parse_args();
    let json = cli.json;
    if !cli.command.runs_a_server() {
        remove_temp_files_on_signal();
    }
    let result = cmd::run(cli);
    match result {
        Ok(()) => {}
        Err(e) => {
            let causes = distinct_causes(&e);
            if json {
                let mut message = e.to_string();
                for c in &causes {
                    message.push_str(": ");
                    message.push_str(c);
                }
                let mut error = serde_json::json!({ "code": e.code(), "message": message });
                if let (Some(h), Some(o)) = (e.hint(), error.as_object_mut()) {
                    o.insert("hint".into(), h.into());
                }
                // One object, always: a failed `verify-log` carries its report beside the error.
                let v = match &e {
                    error::CliError::LogInvalid { report, .. } => {
                        serde_json::json!({ "error": error, "verified": false, "report": report })
                    }
                    error::CliError::BackupInvalid {
                        report: Some(report),
                        ..
                    } => {
                        serde_json::json!({ "error": error, "verified": false, "report": report })
                    }
                    error::CliError::SyncRefused { report, .. }
                    | error::CliError::Unreceipted { report, .. }
                    | error::CliError::RecoveryDeviceRead { report, .. } => {
                        serde_json::json!({ "error": error, "report": report })
                    }
                    _ => serde_json::json!({ "error": error }),
                };
                output::json_line(v);
            } else {
                eprintln!("serment: error: {e}");
                for c in &causes {
                    eprintln!("  caused by: {c}");
                }
                if let Some(h) = e.hint() {
                    eprintln!("  next: {h}");
                }
            }
            std::process::exit(e.exit_code());
        }
    }
}

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

use clap::Parser;

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

fn main() {
    let cli = cli::Cli::parse();
    let json = cli.json;
    if !cli.command.runs_a_server() {
        remove_temp_files_on_signal();
    }
    let result = cmd::run(cli);
    match result {
        Ok(()) => {}
        Err(e) => {
            if json {
                let v =
                    serde_json::json!({ "error": { "code": e.code(), "message": e.to_string() } });
                output::line(&v.to_string());
            } else {
                eprintln!("serment: error: {e}");
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    eprintln!("  caused by: {s}");
                    src = s.source();
                }
            }
            std::process::exit(e.exit_code());
        }
    }
}

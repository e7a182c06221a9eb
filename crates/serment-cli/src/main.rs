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

fn main() {
    let cli = cli::Cli::parse();
    let json = cli.json;
    let result = cmd::run(cli);
    match result {
        Ok(()) => {}
        Err(e) => {
            if json {
                let v =
                    serde_json::json!({ "error": { "code": e.code(), "message": e.to_string() } });
                println!("{v}");
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

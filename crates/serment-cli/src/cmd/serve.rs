//! `serment serve`: settings from flags, then SERMENT_* variables (both via clap), then an
//! optional TOML file, then defaults.

use serment_server::{Config, Server};

use super::Ctx;
use crate::cli::ServeArgs;
use crate::error::{CliError, CliResult};

pub(crate) fn run(_ctx: &Ctx, a: ServeArgs) -> CliResult<()> {
    init_tracing("info");
    let mut config =
        Config::load(a.config.as_deref()).map_err(|e| CliError::Server(e.to_string()))?;
    if let Some(d) = a.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(m) = a.max_blob_bytes {
        config.max_blob_bytes = m;
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let server = Server::open(config)
            .await
            .map_err(|e| CliError::Server(e.to_string()))?;
        let running = server
            .bind()
            .await
            .map_err(|e| CliError::Server(e.to_string()))?;
        eprintln!("serment: listening on http://{}", running.local_addr());
        eprintln!(
            "serment: transparency log key {}",
            running.log_verifier_key()
        );
        running
            .serve(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| CliError::Server(e.to_string()))
    })
}

/// A tokio runtime for the server.
pub(crate) fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("tokio runtime", e))
}

/// Logs to stderr; `RUST_LOG` overrides `default`. Colours only on a terminal (a log file or a
/// journal gets plain text).
pub(crate) fn init_tracing(default: &str) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

//! `serment serve`: settings from flags, then SERMENT_* variables (both via clap), then an
//! optional TOML file, then defaults.

use serment_server::{Config, ConfigError, Server, ServerError, TlsError};

use super::Ctx;
use crate::cli::ServeArgs;
use crate::error::{CliError, CliResult};

pub(crate) fn run(_ctx: &Ctx, a: ServeArgs) -> CliResult<()> {
    init_tracing("info");
    let mut config = Config::load(a.config.as_deref()).map_err(|e| match e {
        ConfigError::Read { .. } => CliError::Local(e.to_string()),
        _ => CliError::Input(e.to_string()),
    })?;
    if let Some(d) = a.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(m) = a.max_blob_bytes {
        config.max_blob_bytes = m;
    }
    if let Some(c) = a.tls_cert {
        config.tls_cert = Some(c);
    }
    if let Some(k) = a.tls_key {
        config.tls_key = Some(k);
    }
    let rt = runtime()?;
    rt.block_on(async move {
        let server = Server::open(config).await.map_err(open_error)?;
        let running = server
            .bind()
            .await
            .map_err(|e| CliError::Server(e.to_string()))?;
        eprintln!("serment: listening on {}", running.url());
        eprintln!(
            "serment: transparency log key {}",
            running.log_verifier_key()
        );
        running
            .serve(shutdown_signal())
            .await
            .map_err(|e| CliError::Server(e.to_string()))
    })
}

/// Exit codes of startup failures: a refused setting, certificate or key is bad input (2), an
/// unreadable file or data directory is local I/O (1), the rest is the server's (5).
fn open_error(e: ServerError) -> CliError {
    match e {
        ServerError::Config(_) | ServerError::Tls(_) | ServerError::DataDirNotEmpty { .. } => {
            if matches!(e, ServerError::Tls(TlsError::Read { .. })) {
                CliError::Local(e.to_string())
            } else {
                CliError::Input(e.to_string())
            }
        }
        ServerError::DataDir { .. } | ServerError::DataDirNotADirectory { .. } => {
            CliError::Local(e.to_string())
        }
        other => CliError::Server(other.to_string()),
    }
}

/// Completes on the first SIGINT or SIGTERM (SIGINT only where SIGTERM does not exist). If the
/// SIGTERM handler cannot be installed, SIGINT alone stops the server.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot install a SIGTERM handler; stop with SIGINT");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop signal received: shutting down");
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

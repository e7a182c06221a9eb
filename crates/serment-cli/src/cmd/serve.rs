//! `serment serve`: settings from flags, then SERMENT_* variables (both via clap), then an
//! optional TOML file, then defaults.

use serment_server::{Config, ConfigError, Server, ServerError, TlsError};

use super::Ctx;
use crate::cli::ServeArgs;
use crate::error::{CliError, CliResult};

pub(crate) fn run(ctx: &Ctx, a: ServeArgs) -> CliResult<()> {
    init_tracing("info");
    let (mut config, data_dir_in_file) =
        Config::load_with_origin(a.config.as_deref()).map_err(|e| match e {
            ConfigError::Read { .. } => CliError::Local(e.to_string()),
            _ => CliError::Input(e.to_string()),
        })?;
    let data_dir_named = data_dir_in_file || a.data_dir.is_some();
    let init = a.init;
    if let Some(d) = a.data_dir.clone() {
        config.data_dir = d;
    }
    config.data_dir =
        std::path::absolute(&config.data_dir).map_err(|e| CliError::io(&config.data_dir, e))?;
    if !data_dir_named && !init && holds_no_store(&config.data_dir) {
        return Err(CliError::Input(format!(
            "no Serment store at {}: the directory {}. Pass --init to create a new store there, \
             or --data-dir (SERMENT_DATA_DIR) to use an existing one",
            config.data_dir.display(),
            if config.data_dir.exists() {
                "is empty"
            } else {
                "does not exist"
            }
        )));
    }
    apply_flags(&mut config, a);
    let config_dir = config.data_dir.clone();
    let json = ctx.json;
    let rt = runtime()?;
    rt.block_on(async move {
        let server = Server::open(config).await.map_err(open_error)?;
        // The patient's page's bundle hash in the log (PROTOCOL.md §11.3, kind 8), once per
        // bundle: a restart or another instance of the same version appends nothing.
        let (bundle_index, _) = server.log_web_bundle().await.map_err(open_error)?;
        let bundle_hash = Server::web_bundle_hash().map_err(open_error)?;
        let losses = server.loss_statements().await.map_err(open_error)?;
        let backup = config_backup(&server);
        let running = server
            .bind()
            .await
            .map_err(|e| CliError::Server(e.to_string()))?;
        eprintln!("serment: data directory {}", config_dir.display());
        eprintln!("serment: listening on {}", running.url());
        eprintln!(
            "serment: transparency log key {}",
            running.log_verifier_key()
        );
        eprintln!("serment: patient page bundle {bundle_hash} is log entry {bundle_index}");
        // A restored server says so at every start, with the id to announce (newcomer 6 N12).
        let newest = losses.last().map(|l| {
            serde_json::json!({ "id": l.id(), "restored_size": l.statement.restored.size,
                                "lost_to": l.statement.lost_to,
                                "written": super::rfc3339(l.statement.time) })
        });
        if let (Some(l), Some(n)) = (losses.last(), &newest) {
            eprintln!(
                "serment: this log was restored from a backup: it serves {} loss statement(s); \
                 the newest (restored size {}, written {}) has id {}: announce it to the users \
                 and witness operators out of band (serment accept-rollback --statement ID)",
                losses.len(),
                l.statement.restored.size,
                n["written"].as_str().unwrap_or_default(),
                l.id()
            );
            tracing::warn!(
                statements = losses.len(),
                newest_id = %l.id(),
                restored_size = l.statement.restored.size,
                "serving loss statements: clients that saw the lost entries need the newest id"
            );
        }
        if json {
            crate::output::json_line(serde_json::json!({
                "listening": running.url(), "data_dir": config_dir.display().to_string(),
                "log_key": running.log_verifier_key(), "tls": running.is_tls(),
                "web_bundle": { "bundle_hash": bundle_hash, "log_index": bundle_index },
                "loss_statements": { "count": losses.len(), "newest": newest } }));
        }
        if let Some((task, url)) = backup {
            eprintln!("serment: backup to {url}");
            tokio::spawn(task);
        }
        running
            .serve(shutdown_signal())
            .await
            .map_err(|e| CliError::Server(e.to_string()))
    })
}

/// Layers the flags and `SERMENT_*` variables (clap reads both) over the file's settings.
fn apply_flags(c: &mut Config, a: ServeArgs) {
    fn set<T>(slot: &mut T, v: Option<T>) {
        if let Some(v) = v {
            *slot = v;
        }
    }
    if a.blob_url.is_some() {
        c.blob_url = a.blob_url;
    }
    set(&mut c.listen, a.listen);
    if a.tls_cert.is_some() {
        c.tls_cert = a.tls_cert;
    }
    if a.tls_key.is_some() {
        c.tls_key = a.tls_key;
    }
    if a.database_url.is_some() {
        c.database_url = a.database_url;
    }
    set(&mut c.max_blob_bytes, a.max_blob_bytes);
    set(&mut c.max_json_bytes, a.max_json_bytes);
    set(&mut c.token_ttl_secs, a.token_ttl_secs);
    set(&mut c.witnesses, a.witnesses);
    set(&mut c.header_read_timeout_secs, a.header_read_timeout_secs);
    set(&mut c.body_idle_timeout_secs, a.body_idle_timeout_secs);
    set(&mut c.keep_alive_timeout_secs, a.keep_alive_timeout_secs);
    set(&mut c.max_connections, a.max_connections);
    set(&mut c.max_connections_per_ip, a.max_connections_per_ip);
    set(&mut c.shutdown_grace_ms, a.shutdown_grace_ms);
    set(&mut c.auth_requests_per_minute, a.auth_requests_per_minute);
    set(&mut c.auth_failures_per_minute, a.auth_failures_per_minute);
    set(&mut c.replay_cache_entries, a.replay_cache_entries);
    set(
        &mut c.pending_upload_grace_secs,
        a.pending_upload_grace_secs,
    );
    set(&mut c.max_pending_uploads, a.max_pending_uploads);
    set(&mut c.max_pending_upload_bytes, a.max_pending_upload_bytes);
    if a.backup_url.is_some() {
        c.backup_url = a.backup_url;
    }
    set(&mut c.backup_interval_secs, a.backup_interval_secs);
    if a.smtp_url.is_some() {
        c.smtp_url = a.smtp_url;
    }
    set(&mut c.smtp_from, a.smtp_from);
    set(&mut c.provisional_address_days, a.provisional_address_days);
    if let Some(t) = a.metrics_token {
        c.metrics_token = Some(serment_server::config::MetricsToken::new(t));
    }
}

/// True when `dir` does not exist or is an empty directory: opening it would create a new store.
/// The `backup_url` loop of `server`, if set (its URL was checked by `Config::validate`).
fn config_backup(
    server: &Server,
) -> Option<(
    impl std::future::Future<Output = ()> + Send + 'static,
    String,
)> {
    let c = server.config();
    let url = c.backup_url.clone()?;
    let target = serment_server::backup::Target::parse(&url).ok()?;
    let interval = std::time::Duration::from_secs(c.backup_interval_secs);
    Some((
        server.backup_loop(serment_server::backup::Backup::new(target), interval),
        url,
    ))
}

fn holds_no_store(dir: &std::path::Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use clap::CommandFactory as _;
    use serment_server::config::SETTINGS;

    /// The flags and variables of `serve` are the ones docs/CONFIG.md lists, with defaults in
    /// `--help`.
    #[test]
    fn every_setting_has_its_flag_variable_and_default_in_help() {
        let cmd = crate::cli::Cli::command();
        let serve = cmd.find_subcommand("serve").unwrap();
        for s in SETTINGS {
            let flag = s.flag();
            let arg = serve
                .get_arguments()
                .find(|a| a.get_long() == flag.strip_prefix("--"))
                .unwrap_or_else(|| panic!("serve has no {flag}"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(s.env().as_str()),
                "{flag}"
            );
            let help = arg.get_help().unwrap().to_string();
            assert!(
                help.contains(&format!("[default: {}]", s.default_text())),
                "{flag}: {help}"
            );
        }
    }
}

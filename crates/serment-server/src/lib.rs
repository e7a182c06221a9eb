//! The Serment server: a directory of signed device records, challenge-response login, and a
//! store of sealed documents and key wraps (PROTOCOL.md §8). It never sees a plaintext or a key:
//! it checks what it can check (signatures on records and wraps, sealed headers) and records every
//! read.
//!
//! ```no_run
//! # async fn run() -> Result<(), serment_server::ServerError> {
//! let config = serment_server::Config::load(None)?;
//! let server = serment_server::Server::open(config).await?;
//! let running = server.bind().await?;
//! println!("listening on {}", running.local_addr());
//! running.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Layout of the data directory (created with mode 0700):
//!
//! ```text
//! serment.db            SQLite (WAL, synchronous=FULL, foreign keys)
//! log.key               the transparency log's Ed25519 checkpoint key (hex seed, mode 0600)
//! blobs/<aa>/<64 hex>   sealed documents, named by SHA-256
//! tmp/<random>.part     uploads in progress (emptied at startup)
//! ```

#![forbid(unsafe_code)]

pub mod backup;
pub mod config;
mod gc;
mod http;
pub mod mail;
mod store;
mod telemetry;
pub mod tls;
mod transport;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use config::{Config, ConfigError};
pub use tls::{TlsConfig, TlsError};

use store::{DB_FILE, Store};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory exists, is not empty and holds no `serment.db`: refusing to create a
    /// fresh database there (it is probably the wrong directory).
    #[error(
        "data directory {path} is not empty and holds no {DB_FILE}: refusing to create a new database there"
    )]
    DataDirNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The data directory path names something other than a directory.
    #[error("data directory {path} is not a directory")]
    DataDirNotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The data directory could not be created or inspected.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The TLS certificate or key (`tls_cert`, `tls_key`) is unreadable or refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The database or blob directory could not be opened or migrated.
    #[error("storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(#[source] io::Error),
}

/// An opened server: configuration validated, data directory and database ready.
#[derive(Debug)]
pub struct Server {
    config: Arc<Config>,
    store: Store,
    openapi: axum::body::Bytes,
    /// Device records already verified, shared by every router of this server.
    records: Arc<http::RecordCache>,
    /// HTTPS when set.
    tls: Option<TlsConfig>,
    /// Login throttle, shared by every router of this server.
    throttle: Arc<http::throttle::Throttle>,
    /// The state of this server's backup loop, for `GET /healthz` (REVIEW5 U6).
    backup_health: Arc<backup::Health>,
}

impl Server {
    /// Validates `config`, loads the TLS certificate and key when `tls_cert`/`tls_key` are set,
    /// prepares the data directory (created with mode 0700 if missing; an
    /// existing non-empty directory without `serment.db` is refused), opens or creates the SQLite
    /// database, runs the embedded migrations, and creates `blobs/` and `tmp/`.
    ///
    /// # Errors
    /// [`ServerError::Config`], [`ServerError::Tls`], [`ServerError::DataDirNotEmpty`],
    /// [`ServerError::DataDirNotADirectory`], [`ServerError::DataDir`] or [`ServerError::Storage`].
    pub async fn open(config: Config) -> Result<Server, ServerError> {
        config.validate()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig::from_files(cert, key)?),
            // validate() refused one without the other.
            _ => None,
        };
        let dir = config.data_dir.clone();
        tokio::task::spawn_blocking(move || prepare_data_dir(&dir))
            .await
            .map_err(|e| ServerError::Storage(Box::new(e)))??;
        let store = Store::open(
            &config.data_dir,
            config.blob_url.as_deref(),
            config.database_url.as_deref(),
        )
        .await
        .map_err(|e| ServerError::Storage(Box::new(e)))?;
        telemetry::get();
        let openapi = http::openapi_document().map_err(|e| ServerError::Storage(Box::new(e)))?;
        tracing::info!(data_dir = %config.data_dir.display(), "data directory opened");
        let throttle = Arc::new(http::throttle::Throttle::new(
            config.auth_requests_per_minute,
            config.auth_failures_per_minute,
        ));
        Ok(Server {
            config: Arc::new(config),
            store,
            openapi,
            records: Arc::default(),
            tls,
            throttle,
            backup_health: Arc::default(),
        })
    }

    /// Serves HTTPS with `tls` (replacing any certificate from `tls_cert`/`tls_key`): for a
    /// certificate held in memory, e.g. `Server::open(config).await?.with_tls(TlsConfig::from_pem(cert, key)?)`.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsConfig) -> Server {
        self.tls = Some(tls);
        self
    }

    /// Whether the server will speak HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The transparency log's C2SP verifier key, `<origin>+<key id>+<base64 key>`
    /// (PROTOCOL.md §11.4): give it to clients and witnesses out of band.
    pub fn log_verifier_key(&self) -> String {
        self.store.log_signer().verifier().encode()
    }

    /// Logs the patient's page's asset bundle (PROTOCOL.md §11.3, kind 8: its bundle hash and
    /// this server's version, signed by the log key) unless the newest bundle entry already
    /// carries the same hash, so that restarts and several instances of one version sharing a
    /// database append it once. `serment serve` calls it at startup. Returns the index of the
    /// entry carrying the served bundle's hash and whether it was appended now.
    ///
    /// # Errors
    /// [`ServerError::Storage`].
    pub async fn log_web_bundle(&self) -> Result<(u64, bool), ServerError> {
        let hash = http::web::bundle_hash().map_err(|e| ServerError::Storage(Box::new(e)))?;
        let out = self
            .store
            .meta()
            .log_web_bundle(&hash, env!("CARGO_PKG_VERSION"), store::now())
            .await
            .map_err(|e| ServerError::Storage(Box::new(e)))?;
        tracing::info!(
            bundle_hash = %hex::encode(hash),
            log_index = out.0,
            appended = out.1,
            "patient page bundle in the log"
        );
        Ok(out)
    }

    /// The loss statements this server serves (PROTOCOL.md §11.11, written by restores), oldest
    /// first, each verified with this server's log key (one that does not verify is left out):
    /// `serve` logs them at start, so that an operator who lost the restore's output can still
    /// announce the newest id (newcomer 6 N12).
    ///
    /// # Errors
    /// [`ServerError::Storage`].
    pub async fn loss_statements(
        &self,
    ) -> Result<Vec<serment_core::log::loss::SignedLossStatement>, ServerError> {
        let texts = self
            .store
            .meta()
            .log_loss_statements()
            .await
            .map_err(|e| ServerError::Storage(Box::new(e)))?;
        let key = self.store.log_signer().verifier();
        Ok(texts
            .iter()
            .filter_map(|t| serment_core::log::loss::SignedLossStatement::verify(t, &key).ok())
            .collect())
    }

    /// The hex bundle hash of the page this binary serves (PROTOCOL.md §11.3, kind 8).
    ///
    /// # Errors
    /// [`ServerError::Storage`] (never with the embedded assets).
    pub fn web_bundle_hash() -> Result<String, ServerError> {
        http::web::bundle_hash()
            .map(hex::encode)
            .map_err(|e| ServerError::Storage(Box::new(e)))
    }

    /// The axum router of the API (PROTOCOL.md §8), for tests (`tower::ServiceExt::oneshot`) or to
    /// nest in another server.
    /// With TLS, every response carries `Strict-Transport-Security` (RFC 6797).
    pub fn router(&self) -> axum::Router {
        let router = http::router(http::AppState {
            store: self.store.clone(),
            config: Arc::clone(&self.config),
            openapi: self.openapi.clone(),
            records: Arc::clone(&self.records),
            throttle: Arc::clone(&self.throttle),
            backup: Arc::clone(&self.backup_health),
        });
        if self.tls.is_some() {
            router.layer(axum::middleware::map_response(http::web::hsts))
        } else {
            router
        }
    }

    /// Runs the pending-upload garbage collector once as if the time were `now` (seconds since
    /// the Unix epoch): deletes up to 1000 uploads that no commit references and that were
    /// stored more than `pending_upload_grace_secs` before `now`. A bound server also runs it
    /// periodically. Returns how many were deleted.
    ///
    /// # Errors
    /// [`ServerError::Storage`].
    pub async fn collect_garbage(&self, now: u64) -> Result<usize, ServerError> {
        gc::collect(&self.store, now, self.config.pending_upload_grace_secs)
            .await
            .map_err(|e| ServerError::Storage(Box::new(e)))
    }

    /// Takes one backup increment (docs/BACKUP.md §5) from this server's store into `backup`'s
    /// target, if the log grew or its newest checkpoint gained cosignatures. Returns what it
    /// copied, `None` if nothing was new.
    ///
    /// # Errors
    /// [`backup::BackupError`]: the target or the store failed, or the target holds manifests
    /// this log key did not sign in one chain, or more entries than this log.
    pub async fn backup_increment(
        &self,
        backup: &mut backup::Backup,
    ) -> Result<Option<backup::IncrementSummary>, backup::BackupError> {
        backup.increment(&self.store, store::now()).await
    }

    /// A task taking an increment every `interval` (the `serve --backup-url` loop), logging each
    /// increment and each failure (a failure is retried at the next tick, reading the target's
    /// manifests again), `lagging` on `GET /healthz` past [`backup::max_lag_secs`]. Runs until
    /// dropped.
    pub fn backup_loop(
        &self,
        backup: backup::Backup,
        interval: std::time::Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let max_lag = std::time::Duration::from_secs(backup::max_lag_secs(interval.as_secs()));
        self.backup_loop_with(backup, interval, max_lag)
    }

    /// [`Server::backup_loop`] with the lag past which the loop is `lagging` (REVIEW5 U6): then
    /// `GET /healthz` says `degraded`, `GET /healthz/backup` answers 503, and a warning is logged
    /// once (again after the loop has caught up). The lag is watched beside the loop, so an
    /// increment that hangs (a FIFO in a file target) is seen too.
    pub fn backup_loop_with(
        &self,
        mut backup: backup::Backup,
        interval: std::time::Duration,
        max_lag: std::time::Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let store = self.store.clone();
        let health = Arc::clone(&self.backup_health);
        let watched = Arc::clone(&self.backup_health);
        let target = backup.target().describe();
        health.start(store::now(), max_lag.as_secs());
        let work = async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The last time the backup was up to date: a failing backup says how far behind it
            // is at every tick (REVIEW5 U6: a stalled backup must not look like a quiet one).
            let mut up_to_date = store::now();
            telemetry::backup_up_to_date(up_to_date);
            loop {
                tick.tick().await;
                match backup.increment(&store, store::now()).await {
                    Ok(Some(s)) => {
                        up_to_date = store::now();
                        telemetry::backup_up_to_date(up_to_date);
                        health.up_to_date(up_to_date);
                        tracing::info!(
                            seq = s.seq,
                            size = s.size,
                            entries = s.entries,
                            blobs = s.blobs,
                            "backup increment written"
                        );
                    }
                    Ok(None) => {
                        up_to_date = store::now();
                        telemetry::backup_up_to_date(up_to_date);
                        health.up_to_date(up_to_date);
                    }
                    Err(e) => {
                        telemetry::backup_failed();
                        health.failed();
                        let behind_secs = store::now().saturating_sub(up_to_date);
                        tracing::error!(
                            error = %e,
                            target = %backup.target().describe(),
                            behind_secs,
                            "backup increment failed: the backup has not been up to date for \
                             {behind_secs} s"
                        );
                    }
                }
            }
        };
        // Watches the lag beside the loop: one warning when it starts lagging (not one per
        // tick), one line when it caught up.
        let watch = async move {
            let mut tick = tokio::time::interval(interval.min(std::time::Duration::from_secs(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut warned = false;
            loop {
                tick.tick().await;
                let Some(r) = watched.report(store::now()) else {
                    continue;
                };
                let lagging = r.state == "lagging";
                if lagging && !warned {
                    tracing::warn!(
                        target_url = %target,
                        lag_secs = r.lag_seconds,
                        max_lag_secs = r.max_lag_seconds,
                        failures = r.consecutive_failures,
                        "BACKUP LAGGING: the backup has not been up to date for {} s (more than \
                         {} s): writes since are not in it; GET /healthz says degraded, GET \
                         /healthz/backup answers 503",
                        r.lag_seconds,
                        r.max_lag_seconds
                    );
                } else if !lagging && warned {
                    tracing::info!(target_url = %target, "backup up to date again");
                }
                warned = lagging;
            }
        };
        async move {
            futures_util::future::join(work, watch).await;
        }
    }

    /// Binds `config.listen` (port 0 picks a free port).
    ///
    /// # Errors
    /// [`ServerError::Bind`].
    pub async fn bind(self) -> Result<RunningServer, ServerError> {
        let addr = self.config.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let gc = gc::spawn(
            self.store.clone(),
            self.config.pending_upload_grace_secs,
            Arc::clone(&self.throttle),
            self.config.replay_cache_entries as u64,
            self.config.provisional_address_days,
        );
        Ok(RunningServer {
            router: self.router(),
            listener,
            local_addr,
            limits: transport::Limits::from_config(&self.config),
            store: self.store,
            tls: self.tls,
            _gc: gc,
        })
    }
}

/// A server bound to its socket, ready to [`serve`](RunningServer::serve).
#[derive(Debug)]
pub struct RunningServer {
    router: axum::Router,
    listener: tokio::net::TcpListener,
    local_addr: SocketAddr,
    limits: transport::Limits,
    store: Store,
    tls: Option<TlsConfig>,
    /// The pending-upload collector, stopped when the server is dropped.
    _gc: gc::GcTask,
}

impl RunningServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The transparency log's verifier key (see [`Server::log_verifier_key`]).
    pub fn log_verifier_key(&self) -> String {
        self.store.log_signer().verifier().encode()
    }

    /// Whether connections speak HTTPS (TLS 1.3).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The base URL clients use: `https://<addr>` with TLS, else `http://<addr>`.
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Serves HTTP/1.1 (over TLS when configured) until `shutdown` completes; then stops
    /// accepting, lets in-flight requests finish for at most `shutdown_grace_ms`, drops the
    /// remaining connections and closes the database. Connection caps and timeouts follow the
    /// configuration (see [`Config`]).
    ///
    /// # Errors
    /// None today; the `Result` leaves room for accept-loop failures.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        tracing::info!(addr = %self.local_addr, tls = self.tls.is_some(), "serving");
        transport::serve(self.listener, self.router, self.tls, self.limits, shutdown).await;
        self.store.close().await;
        tracing::info!("server stopped");
        Ok(())
    }
}

/// Creates the data directory (0700) or checks that an existing one is safe to use.
fn prepare_data_dir(path: &Path) -> Result<(), ServerError> {
    let io_err = |source| ServerError::DataDir {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_private_dir(path).map_err(io_err),
        Err(e) => Err(io_err(e)),
        Ok(meta) if !meta.is_dir() => Err(ServerError::DataDirNotADirectory {
            path: path.to_owned(),
        }),
        Ok(meta) => {
            // Ours: a SQLite database, or (with another database_url) the log key or blobs.
            if path.join(DB_FILE).exists()
                || path.join(store::log_key::LOG_KEY_FILE).exists()
                || path.join("blobs").is_dir()
            {
                warn_if_shared(path, &meta);
                return Ok(());
            }
            let mut entries = std::fs::read_dir(path).map_err(io_err)?;
            if entries.next().is_some() {
                return Err(ServerError::DataDirNotEmpty {
                    path: path.to_owned(),
                });
            }
            restrict_permissions(path).map_err(io_err)
        }
    }
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path)
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn warn_if_shared(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt as _;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(data_dir = %path.display(), "data directory is accessible to other users; chmod 700 it");
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path, _meta: &std::fs::Metadata) {}

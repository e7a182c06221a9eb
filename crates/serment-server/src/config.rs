//! Server settings: every setting declared once, with its unit, its default and its bounds.
//!
//! The settings come from an optional TOML file ([`Config::load`]); the `serment serve` command
//! layers its flags and environment variables over them, then calls [`Config::validate`] (which
//! [`crate::Server::open`] calls again, so an invalid configuration never starts a server).
//!
//! ```toml
//! data_dir = "/var/lib/serment"
//! listen = "127.0.0.1:7878"
//! max_blob_bytes = 17179869184
//! max_json_bytes = 1048576
//! token_ttl_secs = 900
//! replay_cache_entries = 262144
//! pending_upload_grace_secs = 86400
//! max_pending_uploads = 1024
//! max_pending_upload_bytes = 34359738368
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod reference;
pub use reference::{SETTINGS, Setting};

/// The smallest accepted `max_json_bytes`: room for a commit carrying the full 1024 wraps
/// (1024 × 276 bytes, base64url-encoded, plus JSON framing) (PROTOCOL.md §6.1, §7).
pub const MIN_JSON_BYTES: usize = 512 * 1024;
/// The largest accepted `max_json_bytes` (64 MiB).
pub const MAX_JSON_BYTES: usize = 64 * 1024 * 1024;
/// The smallest accepted `max_blob_bytes`: one header and one empty chunk (PROTOCOL.md §6.1).
pub const MIN_BLOB_BYTES: u64 = 1024;
/// The largest accepted `max_blob_bytes`: a 1 TiB padded payload plus its framing (PROTOCOL.md §6.1).
pub const MAX_BLOB_BYTES: u64 = (1 << 40) + (1 << 30);
/// The shortest accepted token lifetime, in seconds.
pub const MIN_TOKEN_TTL_SECS: u64 = 60;
/// The longest accepted token lifetime, in seconds (one day).
pub const MAX_TOKEN_TTL_SECS: u64 = 86_400;

/// The shortest accepted header read timeout, in seconds.
pub const MIN_HEADER_READ_TIMEOUT_SECS: u64 = 1;
/// The longest accepted header read timeout, in seconds (the default is 10, issue 10 asks ≤ 30).
pub const MAX_HEADER_READ_TIMEOUT_SECS: u64 = 300;
/// The shortest accepted body idle timeout, in seconds.
pub const MIN_BODY_IDLE_TIMEOUT_SECS: u64 = 1;
/// The longest accepted body idle timeout, in seconds.
pub const MAX_BODY_IDLE_TIMEOUT_SECS: u64 = 600;
/// The shortest accepted keep-alive idle timeout, in seconds.
pub const MIN_KEEP_ALIVE_TIMEOUT_SECS: u64 = 1;
/// The longest accepted keep-alive idle timeout, in seconds.
pub const MAX_KEEP_ALIVE_TIMEOUT_SECS: u64 = 3600;
/// The largest accepted `max_connections` (and `max_connections_per_ip`).
pub const MAX_CONNECTIONS: usize = 1 << 20;
/// The longest accepted shutdown grace, in milliseconds.
pub const MAX_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// The largest accepted `auth_requests_per_minute` and `auth_failures_per_minute`.
pub const MAX_AUTH_PER_MINUTE: u32 = 1_000_000;
/// The smallest accepted `replay_cache_entries`.
pub const MIN_REPLAY_CACHE_ENTRIES: usize = 1024;
/// The largest accepted `replay_cache_entries` (rows of the nonce table).
pub const MAX_REPLAY_CACHE_ENTRIES: usize = 16 * 1024 * 1024;
/// The shortest accepted `pending_upload_grace_secs` (one minute).
pub const MIN_PENDING_GRACE_SECS: u64 = 60;
/// The longest accepted `pending_upload_grace_secs` (30 days).
pub const MAX_PENDING_GRACE_SECS: u64 = 30 * 86_400;
/// The longest accepted `provisional_address_days` (three years).
pub const MAX_PROVISIONAL_ADDRESS_DAYS: u64 = 3 * 365;

/// The server's settings. Build it with [`Config::default`], [`Config::load`], or field by field.
///
/// Every setting has a TOML key (the field name), a `SERMENT_<KEY>` environment variable and a
/// `serve --<key-with-dashes>` flag; [`SETTINGS`] describes them and `docs/CONFIG.md` is generated
/// from it ([`reference::markdown`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding `serment.db`, `blobs/` and `tmp/`. Created with mode 0700 if missing; an
    /// existing non-empty directory without `serment.db` is refused. Default `./serment-data`.
    pub data_dir: PathBuf,
    /// Where sealed blobs are stored: `s3://BUCKET[/PREFIX]` (S3-compatible object storage; the
    /// endpoint, region and credentials come from the standard `AWS_*` environment variables) or
    /// `file://DIR` (a local directory). Default: none, the directory `blobs/` of `data_dir`.
    pub blob_url: Option<String>,
    /// Address and port to listen on (port 0 picks a free port). Default `127.0.0.1:7878`.
    pub listen: SocketAddr,
    /// PEM file holding the server's certificate chain, leaf first (RFC 7468). With `tls_key`,
    /// the server speaks HTTPS (TLS 1.3, rustls); give both or neither. Default: none (plain HTTP,
    /// for loopback or behind a TLS-terminating reverse proxy).
    pub tls_cert: Option<PathBuf>,
    /// PEM file holding the private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1). Default: none.
    pub tls_key: Option<PathBuf>,
    /// The metadata database (issue 11 §2): `postgres://…` (PostgreSQL, TLS with rustls when
    /// the URL asks for it, `sslmode=verify-full&sslrootcert=PATH`) or `sqlite://PATH`. Default:
    /// none, SQLite in `data_dir/serment.db`.
    pub database_url: Option<String>,
    /// Largest sealed blob accepted by `POST /v1/blobs`, in bytes. Default 16 GiB.
    pub max_blob_bytes: u64,
    /// Largest JSON request body, in bytes. Default 1 MiB.
    pub max_json_bytes: usize,
    /// Bearer token lifetime, in seconds (PROTOCOL.md §8.2). Default 900 (15 minutes).
    pub token_ttl_secs: u64,
    /// Witness verifier keys (C2SP vkeys of type `0x04`) whose cosignatures the log accepts. When
    /// empty (the default), any witness's valid cosignature is accepted, first come first kept.
    #[serde(deserialize_with = "witness_list")]
    pub witnesses: Vec<String>,
    /// Seconds a client has to send a complete request head from the moment the connection waits
    /// for one (a new connection, or a kept-alive one between requests); with TLS the handshake
    /// gets the same time. Default 10.
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may stall (no bytes received) before the request fails and the
    /// connection is closed; also how long a response may wait on a client that stopped reading
    /// before its connection is dropped. Default 30.
    pub body_idle_timeout_secs: u64,
    /// Seconds a kept-alive connection may stay idle (no request in flight) after a response before
    /// it is closed. The wait for the next request head is also bounded by
    /// `header_read_timeout_secs`, so the smaller of the two applies. Default 5.
    pub keep_alive_timeout_secs: u64,
    /// Most open client connections; further ones are closed at once. Default 1024.
    pub max_connections: usize,
    /// Most open connections from one client address (IPv6: one /64); further ones are closed at
    /// once. Behind a reverse proxy every connection comes from the proxy: raise it. Default 128.
    pub max_connections_per_ip: usize,
    /// Milliseconds in-flight requests get to finish on SIGTERM/SIGINT before their connections
    /// are dropped. Default 500.
    pub shutdown_grace_ms: u64,
    /// Login requests (`POST /v1/auth/challenge` and `/v1/auth/token`) allowed per minute, per
    /// client address and per device id, in bursts of up to this many; then 429 with
    /// `Retry-After`. Default 120.
    pub auth_requests_per_minute: u32,
    /// Failed logins allowed per minute, per client address and per device id, in bursts of up to
    /// this many; then every login request from that address or for that device gets 429 with
    /// `Retry-After` until the budget refills. Default 10.
    pub auth_failures_per_minute: u32,
    /// Signed requests remembered for replay detection (PROTOCOL.md §8.2), in the metadata
    /// database (shared by every instance on it): at most this many nonces after each
    /// maintenance tick (30 s), each for at most the 300 s skew window. Past it the oldest are
    /// dropped and requests created before them are refused as stale. Default 262 144.
    pub replay_cache_entries: usize,
    /// How long an uploaded blob may wait for a commit that references it, in seconds; the
    /// garbage collector then deletes it. Default 86 400 (one day).
    pub pending_upload_grace_secs: u64,
    /// Uploads not yet referenced by a commit that one device may hold; one more is refused with
    /// 429 `pending_quota`. Default 1024.
    pub max_pending_uploads: u64,
    /// Bytes of uploads not yet referenced by a commit that one device may hold; an upload past
    /// it is refused with 429 `pending_quota`. Default 32 GiB.
    pub max_pending_upload_bytes: u64,
    /// The bearer token that `GET /metrics` requires (Prometheus text format, issue 11 §4).
    /// Default: none, and `/metrics` answers 404.
    pub metrics_token: Option<MetricsToken>,
    /// Where `serve` writes its continuous backup (docs/BACKUP.md): `file:///DIR` or
    /// `s3://BUCKET[/PREFIX]`. Default: none (no backup inside the server).
    pub backup_url: Option<String>,
    /// Seconds between backup increments (default 10, so that an acknowledged write is in the
    /// backup within about 10 s; issue 12 asks at most 60 s).
    pub backup_interval_secs: u64,
    /// The SMTP relay that sends provisional recipients' one-time codes (issue 17 §1):
    /// `smtp://HOST[:PORT]` (plain, for a relay on loopback), `smtp://HOST?tls=required`
    /// (STARTTLS) or `smtps://HOST` (TLS), with `USER:PASSWORD@` if the relay wants a login.
    /// Default: none, and the provisional routes answer `503 smtp_not_configured`.
    pub smtp_url: Option<String>,
    /// The `From:` address of the one-time code emails. Default `serment@localhost`.
    pub smtp_from: String,
    /// Days an unclaimed provisional recipient's contact address is kept (the newcomer's H19,
    /// data minimisation): past it the maintenance tick erases the address, no one-time code can
    /// be sent for that claim code any more (410), and the lab issues a new one
    /// (`put --to-unregistered CONTACT --new-claim-code`). A claim erases it at once. Default 90.
    pub provisional_address_days: u64,
}

/// The shortest accepted `backup_interval_secs`.
pub const MIN_BACKUP_INTERVAL_SECS: u64 = 1;
/// The longest accepted `backup_interval_secs` (the recovery point objective is 60 s).
pub const MAX_BACKUP_INTERVAL_SECS: u64 = 60;

/// The shortest accepted `metrics_token`, in characters.
pub const MIN_METRICS_TOKEN_CHARS: usize = 16;
/// The longest accepted `metrics_token`, in characters.
pub const MAX_METRICS_TOKEN_CHARS: usize = 256;

/// A secret bearer token (`metrics_token`): never printed by `Debug`, compared in constant time
/// (SHA-256 of both sides, then `subtle`), zeroized on drop.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// Wraps `token` (checked by [`Config::validate`]: 16 to 256 visible ASCII characters).
    pub fn new(token: impl Into<String>) -> MetricsToken {
        MetricsToken(token.into())
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        use sha2::Digest as _;
        use subtle::ConstantTimeEq as _;
        let a = sha2::Sha256::digest(self.0.as_bytes());
        let b = sha2::Sha256::digest(presented.as_bytes());
        a.as_slice().ct_eq(b.as_slice()).into()
    }

    fn is_valid(&self) -> bool {
        (MIN_METRICS_TOKEN_CHARS..=MAX_METRICS_TOKEN_CHARS).contains(&self.0.len())
            && self.0.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

impl Drop for MetricsToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./serment-data"),
            blob_url: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7878)),
            tls_cert: None,
            tls_key: None,
            database_url: None,
            max_blob_bytes: 16 * 1024 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            token_ttl_secs: 900,
            witnesses: Vec::new(),
            header_read_timeout_secs: 10,
            body_idle_timeout_secs: 30,
            keep_alive_timeout_secs: 5,
            max_connections: 1024,
            max_connections_per_ip: 128,
            shutdown_grace_ms: 500,
            auth_requests_per_minute: 120,
            auth_failures_per_minute: 10,
            replay_cache_entries: 256 * 1024,
            pending_upload_grace_secs: 86_400,
            max_pending_uploads: 1024,
            max_pending_upload_bytes: 32 * 1024 * 1024 * 1024,
            metrics_token: None,
            backup_url: None,
            backup_interval_secs: 10,
            smtp_url: None,
            smtp_from: "serment@localhost".to_owned(),
            provisional_address_days: 90,
        }
    }
}

/// Reads `witnesses` with an error that says what is expected.
fn witness_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(
                "a list of C2SP witness verifier keys (cosignature/v1), e.g. \
                 witnesses = [\"witness.example+1a2b3c4d+BEd...\"]",
            )
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V)
}

/// Why a configuration could not be loaded or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML file is not valid, or names an unknown setting.
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        #[source]
        source: toml::de::Error,
    },
    /// A setting is outside its bounds.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting's name, as in the TOML file.
        setting: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

impl Config {
    /// Loads the settings: the defaults, overridden by the TOML `file` if one is given. Unknown
    /// keys are refused. The result is validated.
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_owned(),
                    source,
                })?
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Like [`Config::load`], and also says whether the file set `data_dir` explicitly (`serve`
    /// refuses to create a new store in a data directory nobody named: issue 18).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with_origin(file: Option<&Path>) -> Result<(Config, bool), ConfigError> {
        let config = Config::load(file)?;
        let Some(path) = file else {
            return Ok((config, false));
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        Ok((config, table.contains_key("data_dir")))
    }

    /// Parses settings from TOML text (missing keys keep their defaults). Does not validate.
    ///
    /// # Errors
    /// The parser's error for invalid TOML, wrong types or unknown keys.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks every setting against its bounds (see the constants of this module).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first setting out of bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty".into()));
        }
        if let Some(url) = &self.blob_url {
            BlobLocation::parse(url).map_err(|reason| invalid("blob_url", reason))?;
        }
        if let Some(url) = &self.smtp_url {
            crate::mail::Mailer::new(url, &self.smtp_from)
                .map_err(|e| invalid("smtp_url", e.to_string()))?;
        }
        if let Some(url) = &self.backup_url {
            crate::backup::Target::parse(url).map_err(|e| invalid("backup_url", e.to_string()))?;
        }
        if !(MIN_BACKUP_INTERVAL_SECS..=MAX_BACKUP_INTERVAL_SECS)
            .contains(&self.backup_interval_secs)
        {
            return Err(invalid(
                "backup_interval_secs",
                format!("must be {MIN_BACKUP_INTERVAL_SECS} to {MAX_BACKUP_INTERVAL_SECS}"),
            ));
        }
        if self.metrics_token.as_ref().is_some_and(|t| !t.is_valid()) {
            return Err(invalid(
                "metrics_token",
                format!(
                    "must be {MIN_METRICS_TOKEN_CHARS} to {MAX_METRICS_TOKEN_CHARS} visible ASCII \
                     characters (no spaces)"
                ),
            ));
        }
        if let Some(url) = &self.database_url
            && crate::store::DatabaseUrl::parse(url).is_none()
        {
            return Err(invalid(
                "database_url",
                "must be postgres://… (or postgresql://…) or sqlite://PATH".into(),
            ));
        }
        if !(MIN_BLOB_BYTES..=MAX_BLOB_BYTES).contains(&self.max_blob_bytes) {
            return Err(invalid(
                "max_blob_bytes",
                format!("must be between {MIN_BLOB_BYTES} and {MAX_BLOB_BYTES}"),
            ));
        }
        if !(MIN_JSON_BYTES..=MAX_JSON_BYTES).contains(&self.max_json_bytes) {
            return Err(invalid(
                "max_json_bytes",
                format!("must be between {MIN_JSON_BYTES} and {MAX_JSON_BYTES}"),
            ));
        }
        if !(MIN_TOKEN_TTL_SECS..=MAX_TOKEN_TTL_SECS).contains(&self.token_ttl_secs) {
            return Err(invalid(
                "token_ttl_secs",
                format!("must be between {MIN_TOKEN_TTL_SECS} and {MAX_TOKEN_TTL_SECS}"),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            let (setting, missing) = if self.tls_cert.is_some() {
                ("tls_cert", "tls_key")
            } else {
                ("tls_key", "tls_cert")
            };
            return Err(invalid(
                setting,
                format!("TLS needs both tls_cert and tls_key: {missing} is missing"),
            ));
        }
        check_range(
            "header_read_timeout_secs",
            self.header_read_timeout_secs,
            MIN_HEADER_READ_TIMEOUT_SECS,
            MAX_HEADER_READ_TIMEOUT_SECS,
        )?;
        check_range(
            "body_idle_timeout_secs",
            self.body_idle_timeout_secs,
            MIN_BODY_IDLE_TIMEOUT_SECS,
            MAX_BODY_IDLE_TIMEOUT_SECS,
        )?;
        check_range(
            "keep_alive_timeout_secs",
            self.keep_alive_timeout_secs,
            MIN_KEEP_ALIVE_TIMEOUT_SECS,
            MAX_KEEP_ALIVE_TIMEOUT_SECS,
        )?;
        check_range("max_connections", self.max_connections, 1, MAX_CONNECTIONS)?;
        check_range(
            "max_connections_per_ip",
            self.max_connections_per_ip,
            1,
            self.max_connections,
        )?;
        check_range(
            "shutdown_grace_ms",
            self.shutdown_grace_ms,
            0,
            MAX_SHUTDOWN_GRACE_MS,
        )?;
        check_range(
            "auth_requests_per_minute",
            self.auth_requests_per_minute,
            1,
            MAX_AUTH_PER_MINUTE,
        )?;
        check_range(
            "auth_failures_per_minute",
            self.auth_failures_per_minute,
            1,
            MAX_AUTH_PER_MINUTE,
        )?;
        if !(MIN_REPLAY_CACHE_ENTRIES..=MAX_REPLAY_CACHE_ENTRIES)
            .contains(&self.replay_cache_entries)
        {
            return Err(invalid(
                "replay_cache_entries",
                format!(
                    "must be between {MIN_REPLAY_CACHE_ENTRIES} and {MAX_REPLAY_CACHE_ENTRIES}"
                ),
            ));
        }
        if !(MIN_PENDING_GRACE_SECS..=MAX_PENDING_GRACE_SECS)
            .contains(&self.pending_upload_grace_secs)
        {
            return Err(invalid(
                "pending_upload_grace_secs",
                format!("must be between {MIN_PENDING_GRACE_SECS} and {MAX_PENDING_GRACE_SECS}"),
            ));
        }
        if !(1..=MAX_PROVISIONAL_ADDRESS_DAYS).contains(&self.provisional_address_days) {
            return Err(invalid(
                "provisional_address_days",
                format!("must be between 1 and {MAX_PROVISIONAL_ADDRESS_DAYS}"),
            ));
        }
        if self.max_pending_uploads == 0 {
            return Err(invalid("max_pending_uploads", "must be at least 1".into()));
        }
        if self.max_pending_upload_bytes < self.max_blob_bytes.min(MIN_BLOB_BYTES) {
            return Err(invalid(
                "max_pending_upload_bytes",
                format!("must be at least {MIN_BLOB_BYTES}"),
            ));
        }
        for w in &self.witnesses {
            match serment_core::log::note::VerifierKey::parse(w) {
                Ok(k) if k.key_type == serment_core::log::note::KEY_TYPE_COSIGNATURE_V1 => {}
                _ => {
                    return Err(invalid(
                        "witnesses",
                        format!(
                            "not a C2SP cosignature/v1 (0x04) verifier key \
                             (<name>+<key id hex>+<base64 key>): {w}"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    setting: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(invalid(setting, format!("must be between {min} and {max}")));
    }
    Ok(())
}

fn invalid(setting: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { setting, reason }
}

/// Where sealed blobs are stored, from [`Config::blob_url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// A local directory (`file://DIR`; by default `data_dir` itself, whose `blobs/` and `tmp/`
    /// it holds).
    Dir(PathBuf),
    /// An S3-compatible bucket, with an optional key prefix (`s3://BUCKET[/PREFIX]`).
    S3 {
        /// The `s3://` URL as given.
        url: String,
    },
}

impl BlobLocation {
    /// Parses `file://DIR` (an absolute path) or `s3://BUCKET[/PREFIX]`.
    ///
    /// # Errors
    /// A message naming what is wrong with the URL.
    pub fn parse(url: &str) -> Result<BlobLocation, String> {
        if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(format!(
                    "{url:?}: file:// takes an absolute path (file:///var/lib/...)"
                ));
            }
            return Ok(BlobLocation::Dir(PathBuf::from(dir)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or_default();
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !valid {
                return Err(format!(
                    "{url:?}: the bucket name must be 3 to 63 lowercase letters, digits, '-' or '.'"
                ));
            }
            return Ok(BlobLocation::S3 {
                url: url.to_owned(),
            });
        }
        Err(format!(
            "{url:?}: expected s3://BUCKET[/PREFIX] or file:///DIR"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7878");
        assert_eq!(c.max_blob_bytes, 16 << 30);
        assert_eq!(c.max_json_bytes, 1 << 20);
        assert_eq!(c.token_ttl_secs, 900);
        assert_eq!(Config::load(None).unwrap(), c);
    }

    #[test]
    fn toml_overrides_and_unknown_keys() {
        let c = Config::from_toml("listen = \"0.0.0.0:9000\"\ntoken_ttl_secs = 120\n").unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.token_ttl_secs, 120);
        assert_eq!(c.max_json_bytes, Config::default().max_json_bytes);
        assert!(Config::from_toml("lisen = \"0.0.0.0:9000\"").is_err());
        assert!(Config::from_toml("listen = 12").is_err());
    }

    #[test]
    fn bounds_are_enforced() {
        let mut c = Config {
            token_ttl_secs: 1,
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                setting: "token_ttl_secs",
                ..
            })
        ));
        c.token_ttl_secs = 900;
        c.max_json_bytes = 10;
        assert!(c.validate().is_err());
        c.max_json_bytes = MIN_JSON_BYTES;
        c.max_blob_bytes = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn load_reports_the_file() {
        let err = Config::load(Some(Path::new("/nonexistent/serment.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/serment.toml"));
    }
}

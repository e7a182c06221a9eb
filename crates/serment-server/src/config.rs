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
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

/// The server's settings. Build it with [`Config::default`], [`Config::load`], or field by field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding `serment.db`, `blobs/` and `tmp/`. Created with mode 0700 if missing; an
    /// existing non-empty directory without `serment.db` is refused. Default `./serment-data`.
    pub data_dir: PathBuf,
    /// Address and port to listen on (port 0 picks a free port). Default `127.0.0.1:7878`.
    pub listen: SocketAddr,
    /// Largest sealed blob accepted by `POST /v1/blobs`, in bytes. Default 16 GiB.
    pub max_blob_bytes: u64,
    /// Largest JSON request body, in bytes. Default 1 MiB.
    pub max_json_bytes: usize,
    /// Bearer token lifetime, in seconds (PROTOCOL.md §8.2). Default 900 (15 minutes).
    pub token_ttl_secs: u64,
    /// Witness verifier keys (C2SP vkeys of type `0x04`) whose cosignatures the log accepts. When
    /// empty (the default), any witness's valid cosignature is accepted, first come first kept.
    pub witnesses: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./serment-data"),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 7878)),
            max_blob_bytes: 16 * 1024 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            token_ttl_secs: 900,
            witnesses: Vec::new(),
        }
    }
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
        for w in &self.witnesses {
            match serment_core::log::note::VerifierKey::parse(w) {
                Ok(k) if k.key_type == serment_core::log::note::KEY_TYPE_COSIGNATURE_V1 => {}
                _ => {
                    return Err(invalid(
                        "witnesses",
                        format!("not a cosignature/v1 (0x04) verifier key: {w}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn invalid(setting: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { setting, reason }
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

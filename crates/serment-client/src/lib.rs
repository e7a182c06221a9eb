//! The Serment client library: the keystore, the HTTP client, and every check a client makes on
//! what the server returns. The server is an adversary here: it can refuse service, but anything
//! it forges, alters, reorders or substitutes is detected and reported as a typed error.
//!
//! - [`keystore`]: the passphrase-encrypted keystore file (PROTOCOL.md §9);
//! - [`api`]: the HTTP API (PROTOCOL.md §8); [`transport`]: TLS roots and the plain-HTTP policy;
//! - [`contacts`]: trust-on-first-use pinning and key-substitution detection;
//! - [`vault`]: put, get, share, list and the access history;
//! - [`log`], [`log_api`]: the transparency log's checks and routes (PROTOCOL.md §11);
//! - [`witness`]: a witness that cosigns checkpoints (PROTOCOL.md §11.8).

#![forbid(unsafe_code)]

pub mod api;
pub mod contacts;
mod error;
pub mod fsutil;
pub mod keystore;
pub mod log;
pub mod log_api;
pub mod team;
pub mod transport;
pub mod vault;
pub mod witness;

pub use error::{ClientError, Result};

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

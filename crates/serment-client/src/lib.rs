//! The Serment client library: the keystore, the HTTP client, and every check a client makes on
//! what the server returns. The server is an adversary here: it can refuse service, but anything
//! it forges, alters, reorders or substitutes is detected and reported as a typed error.
//!
//! - [`keystore`]: the passphrase-encrypted keystore file (PROTOCOL.md §9);
//! - [`api`]: the HTTP API (PROTOCOL.md §8), over the transport interface [`http::HttpTransport`];
//!   [`transport`] (feature `native`): the native transport over ureq, TLS roots and the
//!   plain-HTTP policy;
//! - [`contacts`]: trust-on-first-use pinning and key-substitution detection;
//! - [`vault`]: the session (a keystore connected to its server, its log view);
//!   [`documents`]: put, get, list and the access history; [`sharing`]: share, rewrap, remove; [`identity_admin`]: device
//!   upgrade and revocation, identity rotation;
//! - [`log`], [`log_api`]: the transparency log's checks and routes (PROTOCOL.md §11);
//! - [`witness`]: a witness that cosigns checkpoints (PROTOCOL.md §11.8);
//! - [`replica`] (feature `native`): the encrypted offline replica, `serment sync` and the reads
//!   from it while the server is down (PROTOCOL.md §14).

#![forbid(unsafe_code)]

pub mod api;
pub mod contacts;
pub mod device;
pub mod documents;
mod error;
pub mod fsutil;
pub mod http;
pub mod identity_admin;
pub mod keystore;
pub mod log;
pub mod log_api;
pub mod passphrase;
pub mod provisional;
pub mod recovery;
#[cfg(feature = "native")]
pub mod replica;
pub mod rollback;
pub mod sharing;
pub mod social;
pub mod team;
mod team_keys;
pub mod team_state;
#[cfg(feature = "native")]
pub mod transport;
pub mod vault;
pub mod web;
pub mod witness;

pub use error::{ClientError, Result};

/// Seconds since the Unix epoch (0 if the clock is before 1970). In the browser, `Date.now()`
/// (through `web-time`; `std`'s clock panics on `wasm32-unknown-unknown`).
pub fn now_secs() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Waits `d` before a retry. In the browser the client runs in a Web Worker, where blocking is
/// allowed but `std::thread::sleep` is not implemented: it waits on the clock instead.
pub(crate) fn sleep(d: std::time::Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(d);
    #[cfg(target_arch = "wasm32")]
    {
        let until = web_time::Instant::now() + d;
        while web_time::Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

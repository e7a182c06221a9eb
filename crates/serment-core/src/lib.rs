//! The Serment protocol core: identities, sealed documents, key wraps and the keystore format.
//!
//! This crate is pure: no file or network I/O, no async, no HTTP or database types. Streams are
//! caller-supplied `Read`/`Write`. Everything here follows `docs/PROTOCOL.md` (format version 1,
//! suite 1); code comments cite its sections.
//!
//! - [`identity`]: identity and device keys, signed device records (§4);
//! - [`stream`]: the STREAM chunked AEAD (§5);
//! - [`document`]: sealing and opening documents (§6);
//! - [`wrap`]: HPKE key wraps (§7);
//! - [`auth`]: login challenges (§8.2);
//! - [`keystore`]: the passphrase-encrypted keystore (§9);
//! - [`log`]: the transparency log: entries, proofs, checkpoints, witnesses (§11).

#![forbid(unsafe_code)]

pub mod auth;
pub mod codec;
pub mod document;
mod error;
pub mod identity;
pub mod ids;
pub mod keystore;
pub mod log;
pub mod rng;
pub mod sign;
pub mod stream;
pub mod wrap;

pub use error::{Error, Result};
pub use ids::{DocId, KeyId};

/// The format version this implementation writes and the only one it reads (PROTOCOL.md §2).
pub const FORMAT_VERSION: u16 = 1;
/// The suite id this implementation writes and the only one it reads (PROTOCOL.md §2).
pub const SUITE_ID: u16 = 1;
/// The suite's name.
pub const SUITE_NAME: &str = "SERMENT-V1-AES256GCM-X25519-ED25519-SHA256";

/// Refuses any format version or suite other than the current ones: unknown, newer or older
/// (downgrade) alike.
pub(crate) fn check_version(what: &'static str, version: u16, suite: u16) -> Result<()> {
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { what, version });
    }
    if suite != SUITE_ID {
        return Err(Error::UnsupportedSuite { what, suite });
    }
    Ok(())
}

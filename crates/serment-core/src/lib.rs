//! The Serment protocol core: identities, sealed documents, key wraps and the keystore format.
//!
//! This crate is pure: no file or network I/O, no async, no HTTP or database types. Streams are
//! caller-supplied `Read`/`Write`. Everything here follows `docs/PROTOCOL.md` (format version 1;
//! suite 2 for new documents, suite 1 still read); code comments cite its sections.
//!
//! - [`identity`]: identity and device keys, signed device records (§4);
//! - [`suite`]: the suites of sealed documents and their chunk hashes (§2, §6.1);
//! - [`stream`]: the STREAM chunked AEAD (§5);
//! - [`document`]: sealing and opening documents (§6);
//! - [`wrap`]: HPKE key wraps (§7);
//! - [`auth`]: login challenges (§8.2);
//! - [`pairing`]: linking a second device with a short code, SPAKE2 (§4.1);
//! - [`keystore`]: the passphrase-encrypted keystore (§9);
//! - [`log`]: the transparency log: entries, proofs, checkpoints, witnesses (§11);
//! - [`team`]: care teams: signed, logged membership and epoch keys (§12).

#![forbid(unsafe_code)]

mod aead;
pub mod auth;
pub mod codec;
pub mod document;
mod error;
pub mod httpsig;
pub mod identity;
pub mod ids;
pub mod keystore;
pub mod log;
pub mod pairing;
pub mod provisional;
pub mod recovery;
pub mod rng;
pub mod sign;
pub mod social;
pub mod stream;
pub mod suite;
pub mod team;
pub mod wrap;

pub use error::{Error, Result};
pub use ids::{DocId, KeyId};
pub use suite::Suite;

/// The format version this implementation writes and the only one it reads (PROTOCOL.md §2).
pub const FORMAT_VERSION: u16 = 1;
/// The suite id of new sealed documents and offline containers (PROTOCOL.md §2): suite 2.
/// Readers accept [`Suite::ALL`] there.
pub const SUITE_ID: u16 = Suite::CURRENT.id();
/// The name of the suite of new sealed documents.
pub const SUITE_NAME: &str = Suite::CURRENT.name();
/// The suite id carried by device records, key wraps, keystore files and log entries, which are
/// the same in every suite (PROTOCOL.md §2): always 1, and the only one read there.
pub const RECORD_SUITE_ID: u16 = 1;
/// The hybrid post-quantum suite (PROTOCOL.md §2, issue 15): suite 2 with key wraps sealed by HPKE
/// with the X-Wing KEM (ML-KEM-768 + X25519). Carried by key wraps made with it and by device
/// records that advertise an X-Wing key; sealed document headers keep suite 2.
pub const HYBRID_SUITE_ID: u16 = 3;
/// The name of suite 3.
pub const HYBRID_SUITE_NAME: &str = "SERMENT-V1-AES256GCM-XWING-ED25519-BLAKE3";

/// Refuses any format version other than 1 and any suite id other than [`RECORD_SUITE_ID`]:
/// unknown, newer or older (downgrade) alike. For the structures that are the same in every
/// suite; sealed headers and containers use [`Suite::from_id`].
pub(crate) fn check_version(what: &'static str, version: u16, suite: u16) -> Result<()> {
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { what, version });
    }
    if suite != RECORD_SUITE_ID {
        return Err(Error::UnsupportedSuite { what, suite });
    }
    Ok(())
}

/// Like [`check_version`], for the structures that exist in the classical and the hybrid suite
/// (device records §4, key wraps §7): accepts suite 1 or 3 and returns which.
pub(crate) fn check_version_hybrid(what: &'static str, version: u16, suite: u16) -> Result<u16> {
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { what, version });
    }
    if suite != RECORD_SUITE_ID && suite != HYBRID_SUITE_ID {
        return Err(Error::UnsupportedSuite { what, suite });
    }
    Ok(suite)
}

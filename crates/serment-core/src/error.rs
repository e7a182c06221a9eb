//! The one error type of the protocol core.
//!
//! Every failure is a variant of [`Error`]. Messages name the field that failed but never carry key
//! material, plaintext or passphrases. Following `age`, every AEAD failure other than truncation is
//! one opaque [`Error::Decrypt`], so an attacker learns nothing from which check failed.

use thiserror::Error as ThisError;

/// Errors returned by `serment-core`. None of them is ever produced by a panic.
#[derive(Debug, ThisError, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a field was complete (`what` names the field).
    #[error("truncated input: {what} is incomplete")]
    Truncated {
        /// The field being read.
        what: &'static str,
    },
    /// Bytes were left after the last field of a structure.
    #[error("{what}: {extra} trailing byte(s) after the last field")]
    TrailingBytes {
        /// The structure being decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A magic value did not match.
    #[error("{what}: wrong magic bytes")]
    BadMagic {
        /// The structure being decoded.
        what: &'static str,
    },
    /// A format version this implementation does not accept (unknown, or lower than the floor).
    #[error("{what}: unsupported format version {version}")]
    UnsupportedVersion {
        /// The structure being decoded.
        what: &'static str,
        /// The version found.
        version: u16,
    },
    /// A suite id this implementation does not accept (unknown, or lower than the floor).
    #[error("{what}: unsupported suite id {suite}")]
    UnsupportedSuite {
        /// The structure being decoded.
        what: &'static str,
        /// The suite id found.
        suite: u16,
    },
    /// A field held a value outside its allowed range or syntax.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A signature did not verify.
    #[error("{what}: signature verification failed")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// Authenticated decryption failed: tampered data, wrong key, or reordered chunks.
    #[error("decryption failed: the data is corrupted, was tampered with, or is not for this key")]
    Decrypt,
    /// The encrypted stream ended before its final chunk.
    #[error("the encrypted stream is truncated")]
    TruncatedStream,
    /// The encrypted stream went on after its final chunk.
    #[error("the encrypted stream has data after its final chunk")]
    ExtendedStream,
    /// A keystore could not be opened: wrong passphrase, or the file was corrupted.
    #[error("wrong passphrase, or the keystore is corrupted")]
    KeystoreDecrypt,
    /// Key-derivation parameters below the floor in PROTOCOL.md §9, or above the caps.
    #[error("key-derivation parameters refused: {reason}")]
    WeakKdf {
        /// Which bound was crossed.
        reason: &'static str,
    },
    /// A document was authored or wrapped by a device other than the one expected.
    #[error("{what}: signed by device {found}, expected {expected}")]
    WrongSigner {
        /// What was signed.
        what: &'static str,
        /// The device id expected (hex).
        expected: String,
        /// The device id found (hex).
        found: String,
    },
    /// A wrap, header or trailer names another document, version or recipient than expected.
    #[error("context mismatch: {0}")]
    ContextMismatch(&'static str),
    /// An input exceeded a size limit.
    #[error("{what} is too large (limit {limit} bytes)")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The inner plaintext metadata is not valid (PROTOCOL.md §6.2).
    #[error("invalid document metadata: {0}")]
    Metadata(String),
    /// Reading or writing a caller-supplied stream failed (message only: the core does no I/O itself).
    #[error("I/O error: {0}")]
    Io(String),
    /// The operating system's random generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// A transparency-log operation could not be carried out (PROTOCOL.md §11).
    #[error("transparency log: {reason}")]
    Log {
        /// Why.
        reason: &'static str,
    },
    /// An inclusion proof did not verify (RFC 9162 §2.1.3.2).
    #[error("inclusion proof does not verify against the checkpoint")]
    BadInclusionProof,
    /// A consistency proof did not verify (RFC 9162 §2.1.4.2).
    #[error("consistency proof does not verify between the two checkpoints")]
    BadConsistencyProof,
    /// A checkpoint, note or verifier key is malformed or belongs to another log (PROTOCOL.md §11.4).
    #[error("invalid checkpoint: {reason}")]
    BadCheckpoint {
        /// Why.
        reason: &'static str,
    },
    /// A checkpoint smaller than the one pinned: the log was rolled back (PROTOCOL.md §11.7).
    #[error(
        "LOG ROLLBACK: the server presents a tree of {served} entries, but {pinned} were already verified"
    )]
    Rollback {
        /// The pinned size.
        pinned: u64,
        /// The size served.
        served: u64,
    },
    /// Two checkpoints that cannot both be views of one append-only log (PROTOCOL.md §11.7).
    #[error(
        "LOG FORK: the checkpoint of size {size} is inconsistent with one already verified (split view)"
    )]
    Fork {
        /// The size of the offending checkpoint.
        size: u64,
    },
    /// A restore's loss statement that is malformed or does not apply (PROTOCOL.md §11.11).
    #[error("loss statement refused: {reason}")]
    LossStatement {
        /// Why.
        reason: &'static str,
    },
    /// A checkpoint without enough witness cosignatures (PROTOCOL.md §11.7).
    #[error("checkpoint cosigned by {have} trusted witness(es), {need} required")]
    NoQuorum {
        /// Valid cosignatures by trusted witnesses.
        have: usize,
        /// The quorum.
        need: usize,
    },
    /// A classical (X25519) key wrap to a device that advertised a hybrid X-Wing key in the log
    /// before the wrap was logged, or a device record that drops an advertised hybrid key
    /// (PROTOCOL.md §7.1): the protection the recipient asked for was stripped.
    #[error("downgrade refused: {0}")]
    Downgrade(&'static str),
    /// A device pairing message does not authenticate or does not belong to this pairing
    /// (PROTOCOL.md §4.1): a wrong code, or a relay that changed, replayed or substituted it.
    #[error("pairing refused: {0}")]
    Pairing(&'static str),
    /// A chain of log entries or a key history does not hold together (PROTOCOL.md §11.6).
    #[error("log history: {reason}")]
    History {
        /// Why.
        reason: &'static str,
    },
    /// A care team's membership chain does not replay (PROTOCOL.md §12.4): a change signed by a
    /// non-admin or a device that was not current, an epoch out of sequence, a team key that is
    /// not the logged one.
    #[error("care team: {reason}")]
    Team {
        /// Why.
        reason: &'static str,
    },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// Shorthand for `Result<T, serment_core::Error>`.
pub type Result<T> = core::result::Result<T, Error>;

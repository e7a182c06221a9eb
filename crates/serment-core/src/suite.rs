//! Suites of sealed documents (PROTOCOL.md §2): which hash commits to the ciphertext.
//!
//! Suites 1 and 2 differ in one thing only: the hash of each ciphertext chunk and of the list of
//! chunk hashes (§6.1), SHA-256 in suite 1 and BLAKE3 in suite 2. Everything else (AEAD, header
//! hash, ids, key wraps, signatures, keystore) is the same, so the suite is a property of a
//! sealed document's header (and of the offline container around it), and this enum is the only
//! place where the code paths of the two suites differ.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A sealed-document suite (PROTOCOL.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Suite {
    /// Suite 1, `SERMENT-V1-AES256GCM-X25519-ED25519-SHA256`: SHA-256 chunk hashes. Still read;
    /// no longer written.
    Sha256,
    /// Suite 2, `SERMENT-V1-AES256GCM-X25519-ED25519-BLAKE3`: BLAKE3 chunk hashes (derive_key
    /// mode). The suite of every new document.
    Blake3,
}

/// BLAKE3 `derive_key` context of a chunk hash in suite 2 (PROTOCOL.md §6.1).
pub const BLAKE3_CHUNK_CONTEXT: &str = "serment/v1/chunk";
/// BLAKE3 `derive_key` context of the ciphertext hash in suite 2 (PROTOCOL.md §6.1).
pub const BLAKE3_CIPHERTEXT_CONTEXT: &str = "serment/v1/ciphertext";

impl Suite {
    /// The suite new documents are sealed with.
    pub const CURRENT: Suite = Suite::Blake3;
    /// Every suite a reader accepts, lowest first.
    pub const ALL: [Suite; 2] = [Suite::Sha256, Suite::Blake3];

    /// The wire id.
    pub const fn id(self) -> u16 {
        match self {
            Suite::Sha256 => 1,
            Suite::Blake3 => 2,
        }
    }

    /// The suite's name (PROTOCOL.md §2).
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Sha256 => "SERMENT-V1-AES256GCM-X25519-ED25519-SHA256",
            Suite::Blake3 => "SERMENT-V1-AES256GCM-X25519-ED25519-BLAKE3",
        }
    }

    /// Parses a wire id: 1 or 2. Refuses 0 ("not encrypted") and every unknown id.
    ///
    /// # Errors
    /// [`Error::UnsupportedSuite`].
    pub fn from_id(what: &'static str, id: u16) -> Result<Suite> {
        match id {
            1 => Ok(Suite::Sha256),
            2 => Ok(Suite::Blake3),
            suite => Err(Error::UnsupportedSuite { what, suite }),
        }
    }

    /// The hash of ciphertext chunk `index` (PROTOCOL.md §6.1): suite 1,
    /// `SHA-256("serment/v1/chunk" 0x00 || u32(i) || chunk)`; suite 2,
    /// `BLAKE3-derive_key("serment/v1/chunk", chunk || u32(i))`.
    ///
    /// Suite 2 puts the index after the chunk so that the chunk starts at offset 0 of BLAKE3's
    /// input: its 1 KiB BLAKE3 chunks are then aligned with the SIMD batches from the first byte
    /// (a 4-byte prefix costs 27 % more here: the first BLAKE3 subtrees would run 1, 2 and 4
    /// lanes wide). A fixed-length suffix keeps the encoding injective.
    pub fn chunk_hash(self, index: u32, chunk: &[u8]) -> [u8; 32] {
        match self {
            Suite::Sha256 => crate::ids::labeled_hash("chunk", &[&index.to_be_bytes(), chunk]),
            Suite::Blake3 => {
                let mut h = blake3::Hasher::new_derive_key(BLAKE3_CHUNK_CONTEXT);
                h.update(chunk);
                h.update(&index.to_be_bytes());
                h.finalize().into()
            }
        }
    }

    /// A hasher for `ciphertext_hash` (PROTOCOL.md §6.1), to be fed the chunk hashes in order.
    pub fn ciphertext_hasher(self) -> CiphertextHasher {
        match self {
            Suite::Sha256 => {
                let mut h = Sha256::new();
                h.update(b"serment/v1/ciphertext\0");
                CiphertextHasher::Sha256(h)
            }
            Suite::Blake3 => CiphertextHasher::Blake3(Box::new(blake3::Hasher::new_derive_key(
                BLAKE3_CIPHERTEXT_CONTEXT,
            ))),
        }
    }
}

/// The running `ciphertext_hash` of one document, over its chunk hashes in order.
#[derive(Debug, Clone)]
pub enum CiphertextHasher {
    /// Suite 1.
    Sha256(Sha256),
    /// Suite 2 (boxed: the BLAKE3 state is about 2 KiB).
    Blake3(Box<blake3::Hasher>),
}

impl CiphertextHasher {
    /// Absorbs the next chunk hash.
    pub fn update(&mut self, chunk_hash: &[u8; 32]) {
        match self {
            CiphertextHasher::Sha256(h) => h.update(chunk_hash),
            CiphertextHasher::Blake3(h) => {
                h.update(chunk_hash);
            }
        }
    }

    /// The ciphertext hash.
    pub fn finalize(self) -> [u8; 32] {
        match self {
            CiphertextHasher::Sha256(h) => h.finalize().into(),
            CiphertextHasher::Blake3(h) => h.finalize().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_refused() {
        for s in Suite::ALL {
            assert_eq!(Suite::from_id("t", s.id()).unwrap(), s);
        }
        for id in [0u16, 3, u16::MAX] {
            assert_eq!(
                Suite::from_id("t", id),
                Err(Error::UnsupportedSuite {
                    what: "t",
                    suite: id
                })
            );
        }
    }

    #[test]
    fn blake3_chunk_hash_is_derive_key_mode() {
        let mut input = b"ciphertext".to_vec();
        input.extend_from_slice(&7u32.to_be_bytes());
        assert_eq!(
            Suite::Blake3.chunk_hash(7, b"ciphertext"),
            blake3::derive_key(BLAKE3_CHUNK_CONTEXT, &input)
        );
        let mut h = Suite::Blake3.ciphertext_hasher();
        h.update(&[1; 32]);
        h.update(&[2; 32]);
        let mut both = [1u8; 64];
        both[32..].fill(2);
        assert_eq!(
            h.finalize(),
            blake3::derive_key(BLAKE3_CIPHERTEXT_CONTEXT, &both)
        );
        assert_ne!(
            Suite::Blake3.chunk_hash(7, b"ciphertext"),
            Suite::Sha256.chunk_hash(7, b"ciphertext")
        );
    }
}

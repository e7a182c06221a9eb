//! STREAM chunked AEAD (PROTOCOL.md §5), after Hoang, Reyhanitabar, Rogaway and Vizár (2015) §7,
//! laid out as in `age`: 64 KiB chunks, nonce = `prefix[7] || u32 counter || last flag`.
//!
//! The cipher is AES-256-GCM from `ring` (RustCrypto's `aes-gcm` on wasm32: PROTOCOL.md §2.1). Each chunk is sealed on its own with the header hash as
//! associated data, so chunks can be sealed and opened on several cores. The key is zeroized on
//! drop. A counter overflow is an error, never a panic. Sealing and opening a chunk also hash its
//! ciphertext with the document's suite ([`Suite::chunk_hash`], PROTOCOL.md §6.1).

use core::fmt;

use crate::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::suite::Suite;

/// Plaintext bytes in every chunk but the last.
pub const CHUNK_SIZE: usize = 1 << 16;
/// `log2(CHUNK_SIZE)`, as carried in the header.
pub const CHUNK_SIZE_LOG2: u8 = 16;
/// AEAD tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Length of the random nonce prefix in bytes.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Length of a data-encryption key in bytes.
pub const DEK_LEN: usize = 32;

/// Number of chunks for `padded_len` plaintext bytes: `max(1, ceil(padded_len / CHUNK_SIZE))`.
pub fn chunk_count(padded_len: u64) -> u64 {
    padded_len.div_ceil(CHUNK_SIZE as u64).max(1)
}

/// Plaintext length of chunk `index` (0-based) of a payload of `padded_len` bytes.
pub fn chunk_plain_len(padded_len: u64, index: u64) -> usize {
    let start = index.saturating_mul(CHUNK_SIZE as u64);
    let left = padded_len.saturating_sub(start);
    // Bounded by CHUNK_SIZE, so the cast cannot truncate.
    left.min(CHUNK_SIZE as u64) as usize
}

/// The hash of ciphertext chunk `index` in `suite` (§6.1): [`Suite::chunk_hash`].
pub fn chunk_hash(suite: Suite, index: u32, chunk: &[u8]) -> [u8; 32] {
    suite.chunk_hash(index, chunk)
}

/// The 96-bit AES-GCM nonce of chunk `index` of a stream of `chunks` chunks (PROTOCOL.md §5):
/// `nonce_prefix[7] || u32 big-endian index || last flag` (1 for the last chunk, else 0).
///
/// # Errors
/// [`Error::ExtendedStream`] if `index >= chunks` or does not fit the 32-bit counter.
pub fn chunk_nonce(
    nonce_prefix: &[u8; NONCE_PREFIX_LEN],
    index: u64,
    chunks: u64,
) -> Result<[u8; 12]> {
    if index >= chunks {
        return Err(Error::ExtendedStream);
    }
    let counter = u32::try_from(index).map_err(|_| Error::ExtendedStream)?;
    let mut n = [0u8; 12];
    let (prefix, rest) = n.split_at_mut(NONCE_PREFIX_LEN);
    prefix.copy_from_slice(nonce_prefix);
    let (ctr, flag) = rest.split_at_mut(4);
    ctr.copy_from_slice(&counter.to_be_bytes());
    if let Some(f) = flag.first_mut() {
        *f = u8::from(index + 1 == chunks);
    }
    Ok(n)
}

/// A STREAM key: a DEK, a nonce prefix and the associated data. `Sync`, so threads can share it.
pub struct StreamKey {
    key: LessSafeKey,
    suite: Suite,
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    aad: [u8; 32],
    chunks: u64,
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(***)")
    }
}

impl StreamKey {
    /// Builds a key for a stream of `chunks` chunks of a document of `suite` (which picks the
    /// chunk hash). `ring` keeps the expanded key; the caller's DEK buffer is zeroized by its
    /// owner.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when `chunks` exceeds 2^32 (the counter would wrap).
    pub fn new(
        dek: &Zeroizing<[u8; DEK_LEN]>,
        suite: Suite,
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
        aad: [u8; 32],
        chunks: u64,
    ) -> Result<StreamKey> {
        if chunks > u64::from(u32::MAX) + 1 {
            return Err(Error::TooLarge {
                what: "stream",
                limit: (u64::from(u32::MAX) + 1) * CHUNK_SIZE as u64,
            });
        }
        let unbound = UnboundKey::new(&AES_256_GCM, dek.as_ref()).map_err(|_| Error::Decrypt)?;
        Ok(StreamKey {
            key: LessSafeKey::new(unbound),
            suite,
            nonce_prefix,
            aad,
            chunks,
        })
    }

    /// The suite whose chunk hash [`StreamKey::seal_slot`] and [`StreamKey::open_slot`] return.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// How many chunks this stream has.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    fn nonce(&self, index: u64) -> Result<Nonce> {
        Ok(Nonce::assume_unique_for_key(chunk_nonce(
            &self.nonce_prefix,
            index,
            self.chunks,
        )?))
    }

    /// Seals chunk `index` in place: `buf` holds the plaintext and becomes ciphertext || tag.
    /// Returns the chunk hash of the ciphertext.
    ///
    /// # Errors
    /// [`Error::ExtendedStream`] if `index` is past the last chunk; [`Error::InvalidField`] if the
    /// plaintext length is not the one the header announced.
    pub fn seal_chunk(&self, index: u64, padded_len: u64, buf: &mut Vec<u8>) -> Result<[u8; 32]> {
        let plain = buf.len();
        buf.resize(plain + TAG_LEN, 0);
        let r = self.seal_slot(index, padded_len, buf);
        if r.is_err() {
            buf.truncate(plain);
        }
        r
    }

    /// Seals chunk `index` in place in a slot of `plaintext length + TAG_LEN` bytes: the plaintext
    /// fills the slot but its last [`TAG_LEN`] bytes, and the slot becomes ciphertext || tag. No
    /// allocation and no copy. Returns the chunk hash of the ciphertext.
    ///
    /// # Errors
    /// As [`StreamKey::seal_chunk`].
    pub fn seal_slot(&self, index: u64, padded_len: u64, slot: &mut [u8]) -> Result<[u8; 32]> {
        let plain = slot.len().checked_sub(TAG_LEN).ok_or(Error::InvalidField {
            field: "chunk",
            reason: "slot shorter than a tag",
        })?;
        if plain != chunk_plain_len(padded_len, index) {
            return Err(Error::InvalidField {
                field: "chunk",
                reason: "plaintext length does not match the header",
            });
        }
        let nonce = self.nonce(index)?;
        let (data, tag_out) = slot.split_at_mut(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(self.aad), data)
            .map_err(|_| Error::Decrypt)?;
        tag_out.copy_from_slice(tag.as_ref());
        // index < chunks <= 2^32 was checked by nonce().
        Ok(self.suite.chunk_hash(index as u32, slot))
    }

    /// Opens chunk `index` in place: `buf` holds ciphertext || tag and becomes the plaintext.
    /// Returns the chunk hash of the ciphertext (computed before decryption).
    ///
    /// # Errors
    /// [`Error::Decrypt`] on any authentication failure (wrong key, header, position or last flag).
    pub fn open_chunk(&self, index: u64, buf: &mut Vec<u8>) -> Result<[u8; 32]> {
        let hash = self.open_slot(index, buf)?;
        buf.truncate(buf.len().saturating_sub(TAG_LEN));
        Ok(hash)
    }

    /// Opens chunk `index` in place: `slot` holds ciphertext || tag; on success its first
    /// `slot.len() - TAG_LEN` bytes are the plaintext. Returns the chunk hash of the ciphertext
    /// (computed before decryption). On failure the slot's content is unspecified.
    ///
    /// # Errors
    /// As [`StreamKey::open_chunk`].
    pub fn open_slot(&self, index: u64, slot: &mut [u8]) -> Result<[u8; 32]> {
        let nonce = self.nonce(index)?;
        let hash = self.suite.chunk_hash(index as u32, slot);
        self.key
            .open_in_place(nonce, Aad::from(self.aad), slot)
            .map_err(|_| Error::Decrypt)?;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(chunks: u64) -> StreamKey {
        StreamKey::new(
            &Zeroizing::new([7u8; 32]),
            Suite::CURRENT,
            [1; 7],
            [2; 32],
            chunks,
        )
        .unwrap()
    }

    #[test]
    fn chunk_maths() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(65536), 1);
        assert_eq!(chunk_count(65537), 2);
        assert_eq!(chunk_plain_len(65537, 1), 1);
        assert_eq!(chunk_plain_len(0, 0), 0);
    }

    #[test]
    fn swapped_or_flagged_chunks_fail() {
        let padded = CHUNK_SIZE as u64 * 2;
        let k = key(2);
        let mut c0 = vec![1u8; CHUNK_SIZE];
        let mut c1 = vec![2u8; CHUNK_SIZE];
        k.seal_chunk(0, padded, &mut c0).unwrap();
        k.seal_chunk(1, padded, &mut c1).unwrap();
        let mut swapped = c1.clone();
        assert_eq!(k.open_chunk(0, &mut swapped), Err(Error::Decrypt));
        // Same chunk 0 under a 1-chunk stream: last flag differs.
        let mut early_last = c0.clone();
        assert_eq!(key(1).open_chunk(0, &mut early_last), Err(Error::Decrypt));
        let mut ok = c0.clone();
        k.open_chunk(0, &mut ok).unwrap();
        assert_eq!(ok, vec![1u8; CHUNK_SIZE]);
        assert_eq!(k.open_chunk(2, &mut c1), Err(Error::ExtendedStream));
    }

    #[test]
    fn too_many_chunks_is_an_error() {
        assert!(
            StreamKey::new(
                &Zeroizing::new([0; 32]),
                Suite::CURRENT,
                [0; 7],
                [0; 32],
                1 << 33
            )
            .is_err()
        );
    }
}

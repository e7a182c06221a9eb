//! The sealed-document header and trailer (PROTOCOL.md §6.1).

use crate::FORMAT_VERSION;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::ids::{DocId, KeyId, labeled_hash};
use crate::stream::{CHUNK_SIZE_LOG2, NONCE_PREFIX_LEN, TAG_LEN, chunk_count};
use crate::suite::Suite;

/// The largest `padded_len` accepted: 2^40 bytes (1 TiB).
pub const MAX_PADDED_LEN: u64 = 1 << 40;
/// The most recipients one sealed version may list.
pub const MAX_RECIPIENTS: usize = 1024;

/// The fixed-size header at the start of every sealed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The suite: which hash commits to the ciphertext (PROTOCOL.md §2). [`Suite::CURRENT`] for
    /// every new document.
    pub suite: Suite,
    /// Random document id.
    pub doc_id: DocId,
    /// Version number, from 1.
    pub doc_version: u32,
    /// Device id of the author device.
    pub author_device: KeyId,
    /// Random STREAM nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    /// Plaintext bytes, padding included.
    pub padded_len: u64,
}

impl Header {
    /// Magic bytes.
    pub const MAGIC: &'static [u8; 4] = b"SRMT";
    /// Encoded length in bytes.
    pub const LEN: usize = 4 + 2 + 2 + 16 + 4 + 32 + NONCE_PREFIX_LEN + 1 + 8;

    /// Encodes the header (76 bytes).
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut w = Writer::with_capacity(Self::LEN);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(self.suite.id())
            .bytes(self.doc_id.as_bytes())
            .u32(self.doc_version)
            .bytes(self.author_device.as_bytes())
            .bytes(&self.nonce_prefix)
            .u8(CHUNK_SIZE_LOG2)
            .u64(self.padded_len);
        let mut out = [0u8; Self::LEN];
        out.copy_from_slice(w.as_slice());
        out
    }

    /// Decodes exactly [`Header::LEN`] bytes, strictly.
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`],
    /// [`Error::Truncated`], [`Error::TrailingBytes`] or [`Error::InvalidField`] (chunk size,
    /// version 0, `padded_len` above [`MAX_PADDED_LEN`]).
    pub fn decode(bytes: &[u8]) -> Result<Header> {
        const WHAT: &str = "document header";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        let version = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let suite = Suite::from_id(WHAT, r.u16()?)?;
        let doc_id = DocId::from_bytes(r.array()?);
        let doc_version = r.u32()?;
        let author_device = KeyId::from_bytes(r.array()?);
        let nonce_prefix = r.array()?;
        if r.u8()? != CHUNK_SIZE_LOG2 {
            return Err(Error::InvalidField {
                field: "chunk size",
                reason: "suites 1 and 2 use 64 KiB chunks",
            });
        }
        let padded_len = r.u64()?;
        r.finish()?;
        if doc_version == 0 {
            return Err(Error::InvalidField {
                field: "document version",
                reason: "versions start at 1",
            });
        }
        if padded_len > MAX_PADDED_LEN {
            return Err(Error::TooLarge {
                what: "document",
                limit: MAX_PADDED_LEN,
            });
        }
        Ok(Header {
            suite,
            doc_id,
            doc_version,
            author_device,
            nonce_prefix,
            padded_len,
        })
    }

    /// `H("serment/v1/header" 0x00 || header)`: the STREAM associated data and the wrap binding.
    pub fn hash(&self) -> [u8; 32] {
        labeled_hash("header", &[&self.encode()])
    }

    /// Number of STREAM chunks.
    pub fn chunks(&self) -> u64 {
        chunk_count(self.padded_len)
    }

    /// Total bytes of the sealed document: header, chunks and a trailer listing `recipients`
    /// devices (PROTOCOL.md §6.1).
    pub fn sealed_len(&self, recipients: usize) -> u64 {
        Self::LEN as u64 + self.ciphertext_len() + 2 + 32 * recipients as u64 + 64
    }

    /// Total ciphertext bytes of the chunks (payload plus one tag per chunk).
    pub fn ciphertext_len(&self) -> u64 {
        self.padded_len + self.chunks() * TAG_LEN as u64
    }
}

/// The trailer after the last chunk: recipients and the author's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// Recipient device ids, strictly increasing.
    pub recipients: Vec<KeyId>,
    /// Ed25519 signature by the author device.
    pub signature: [u8; 64],
}

impl Trailer {
    /// The largest encoded trailer, in bytes.
    pub const MAX_LEN: usize = 2 + 32 * MAX_RECIPIENTS + 64;

    /// The bytes after the hashes in the signed message: `u16(count) || recipients`.
    pub(crate) fn recipients_bytes(recipients: &[KeyId]) -> Result<Vec<u8>> {
        check_recipients(recipients)?;
        let mut w = Writer::with_capacity(2 + 32 * recipients.len());
        // check_recipients bounded the count by MAX_RECIPIENTS.
        w.u16(recipients.len() as u16);
        for r in recipients {
            w.bytes(r.as_bytes());
        }
        Ok(w.into_vec())
    }

    /// Encodes the trailer.
    ///
    /// # Errors
    /// [`Error::InvalidField`] if the recipients are empty, too many, or not strictly increasing.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut v = Self::recipients_bytes(&self.recipients)?;
        v.extend_from_slice(&self.signature);
        Ok(v)
    }

    /// Decodes a trailer strictly.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::TrailingBytes`] or [`Error::InvalidField`].
    pub fn decode(bytes: &[u8]) -> Result<Trailer> {
        let mut r = Reader::new(bytes, "document trailer");
        let count = usize::from(r.u16()?);
        if count == 0 || count > MAX_RECIPIENTS {
            return Err(Error::InvalidField {
                field: "recipient count",
                reason: "must be 1 to 1024",
            });
        }
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            recipients.push(KeyId::from_bytes(r.array()?));
        }
        let signature = r.array()?;
        r.finish()?;
        check_recipients(&recipients)?;
        Ok(Trailer {
            recipients,
            signature,
        })
    }
}

fn check_recipients(recipients: &[KeyId]) -> Result<()> {
    if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
        return Err(Error::InvalidField {
            field: "recipients",
            reason: "must be 1 to 1024",
        });
    }
    if !recipients.windows(2).all(|w| matches!(w, [a, b] if a < b)) {
        return Err(Error::InvalidField {
            field: "recipients",
            reason: "must be strictly increasing",
        });
    }
    Ok(())
}

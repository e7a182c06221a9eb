//! Key ids and document ids (PROTOCOL.md §3, §4).

use core::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Domain-separated SHA-256: `H("serment/v1/" || label || 0x00 || parts...)` (PROTOCOL.md §3).
pub fn labeled_hash(label: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"serment/v1/");
    h.update(label.as_bytes());
    h.update([0u8]);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The kind byte of a key id (PROTOCOL.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KeyKind {
    /// A user's identity key (Ed25519).
    Identity = 1,
    /// A device's signing key (Ed25519).
    Device = 2,
}

/// A 32-byte key id: `H("serment/v1/key-id" 0x00 || kind || public_key)`. Shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; 32]);

impl KeyId {
    /// The key id of an Ed25519 public key of the given kind.
    pub fn of(kind: KeyKind, public_key: &[u8; 32]) -> KeyId {
        KeyId(labeled_hash("key-id", &[&[kind as u8], public_key]))
    }
    /// Wraps 32 raw bytes (as read from a wire format).
    pub fn from_bytes(bytes: [u8; 32]) -> KeyId {
        KeyId(bytes)
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Parses 64 lowercase hex characters.
    ///
    /// # Errors
    /// [`Error::InvalidField`] on any other input.
    pub fn from_hex(s: &str) -> Result<KeyId> {
        parse_hex::<32>(s, "key id").map(KeyId)
    }
    /// A short form for humans: the first 16 hex characters.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(16);
        s
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.short())
    }
}

/// A 16-byte random document id, shown as 32 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId([u8; 16]);

impl DocId {
    /// Wraps 16 raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> DocId {
        DocId(bytes)
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
    /// A fresh random document id.
    ///
    /// # Errors
    /// [`Error::Rng`] if the operating system's generator fails.
    pub fn random() -> Result<DocId> {
        let mut b = [0u8; 16];
        crate::rng::fill(&mut b)?;
        Ok(DocId(b))
    }
    /// Parses 32 lowercase hex characters.
    ///
    /// # Errors
    /// [`Error::InvalidField`] on any other input.
    pub fn from_hex(s: &str) -> Result<DocId> {
        parse_hex::<16>(s, "document id").map(DocId)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({self})")
    }
}

/// Parses exactly `2*N` lowercase hex digits (uppercase is refused: one canonical form).
fn parse_hex<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::InvalidField {
            field,
            reason: "expected lowercase hex of the right length",
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::InvalidField {
        field,
        reason: "invalid hex",
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_round_trip_and_strictness() {
        let id = KeyId::of(KeyKind::Device, &[7u8; 32]);
        assert_eq!(KeyId::from_hex(&id.to_string()).unwrap(), id);
        assert!(KeyId::from_hex(&id.to_string().to_uppercase()).is_err());
        assert!(KeyId::from_hex("../x").is_err());
        assert!(DocId::from_hex("00").is_err());
    }

    #[test]
    fn kinds_are_separated() {
        assert_ne!(
            KeyId::of(KeyKind::Device, &[1; 32]),
            KeyId::of(KeyKind::Identity, &[1; 32])
        );
    }
}

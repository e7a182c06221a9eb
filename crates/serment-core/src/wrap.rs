//! Key wraps (PROTOCOL.md §7): the DEK sealed to one recipient device with HPKE (RFC 9180 §6.1,
//! base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305), signed by the sharer.

use hpke::{
    Deserializable, OpModeR, OpModeS, Serializable, aead::ChaCha20Poly1305, kdf::HkdfSha256,
    kem::X25519HkdfSha256,
};
use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::DeviceSecret;
use crate::ids::{DocId, KeyId};
use crate::sign::{self, Context};
use crate::stream::DEK_LEN;
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

type Kem = X25519HkdfSha256;

/// A decoded key wrap. [`WrappedKey::decode`] checks only the syntax: call
/// [`WrappedKey::verify_signature`] and [`unwrap_dek`] before trusting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The document id.
    pub doc_id: DocId,
    /// The document version.
    pub doc_version: u32,
    /// The header hash of the sealed version this wrap opens.
    pub header_hash: [u8; 32],
    /// The recipient device id.
    pub recipient: KeyId,
    /// The device id of the device that made the wrap.
    pub sharer: KeyId,
    enc: [u8; 32],
    wrapped_dek: [u8; 48],
    signature: [u8; 64],
    bytes: Vec<u8>,
}

/// The recipient of a wrap: a device id and its X25519 public key, taken from a verified
/// [`crate::identity::DeviceRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    /// The device id.
    pub device_id: KeyId,
    /// The device's X25519 public key.
    pub encryption_key: [u8; 32],
}

impl From<&crate::identity::DeviceRecord> for Recipient {
    fn from(r: &crate::identity::DeviceRecord) -> Self {
        Recipient {
            device_id: r.device_id(),
            encryption_key: r.encryption_key,
        }
    }
}

fn hpke_info(doc_id: &DocId, doc_version: u32, recipient: &KeyId) -> Vec<u8> {
    let mut w = Writer::with_capacity(16 + 16 + 4 + 32);
    w.bytes(b"serment/v1/wrap")
        .u8(0)
        .bytes(doc_id.as_bytes())
        .u32(doc_version)
        .bytes(recipient.as_bytes());
    w.into_vec()
}

impl WrappedKey {
    /// Magic bytes.
    pub const MAGIC: &'static [u8; 4] = b"SRMW";
    /// Encoded length in bytes.
    pub const LEN: usize = 4 + 2 + 2 + 16 + 4 + 32 + 32 + 32 + 32 + 48 + 64;
    const SIGNED_LEN: usize = Self::LEN - 64;

    /// Decodes a wrap strictly (exactly [`WrappedKey::LEN`] bytes).
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`],
    /// [`Error::Truncated`] or [`Error::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<WrappedKey> {
        const WHAT: &str = "key wrap";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let w = WrappedKey {
            doc_id: DocId::from_bytes(r.array()?),
            doc_version: r.u32()?,
            header_hash: r.array()?,
            recipient: KeyId::from_bytes(r.array()?),
            sharer: KeyId::from_bytes(r.array()?),
            enc: r.array()?,
            wrapped_dek: r.array()?,
            signature: r.array()?,
            bytes: bytes.to_vec(),
        };
        r.finish()?;
        Ok(w)
    }

    /// The wrap exactly as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Verifies the sharer's signature over the received bytes. The caller checks that
    /// `sharer_signing_key` belongs to the device [`WrappedKey::sharer`] names and is allowed to share.
    ///
    /// # Errors
    /// [`Error::WrongSigner`] if the key is not the sharer's; [`Error::BadSignature`].
    pub fn verify_signature(&self, sharer_signing_key: &[u8; 32]) -> Result<()> {
        let id = KeyId::of(crate::ids::KeyKind::Device, sharer_signing_key);
        if id != self.sharer {
            return Err(Error::WrongSigner {
                what: "key wrap",
                expected: self.sharer.to_string(),
                found: id.to_string(),
            });
        }
        let signed = self
            .bytes
            .get(..Self::SIGNED_LEN)
            .ok_or(Error::Truncated { what: "key wrap" })?;
        sign::verify(
            sharer_signing_key,
            Context::Wrap,
            signed,
            &self.signature,
            "key wrap",
        )
    }
}

/// Seals `dek` to `recipient` and signs the wrap with `sharer` (PROTOCOL.md §7).
///
/// # Errors
/// [`Error::InvalidField`] if the recipient's X25519 key is invalid.
pub fn wrap_dek(
    dek: &Zeroizing<[u8; DEK_LEN]>,
    doc_id: &DocId,
    doc_version: u32,
    header_hash: &[u8; 32],
    recipient: &Recipient,
    sharer: &DeviceSecret,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    let pk =
        <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.encryption_key).map_err(|_| {
            Error::InvalidField {
                field: "recipient encryption key",
                reason: "not a valid X25519 public key",
            }
        })?;
    let info = hpke_info(doc_id, doc_version, &recipient.device_id);
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        &info,
        dek.as_ref(),
        header_hash,
        rng,
    )
    .map_err(|_| Error::InvalidField {
        field: "recipient encryption key",
        reason: "HPKE encapsulation failed",
    })?;
    let mut w = Writer::with_capacity(WrappedKey::LEN);
    w.bytes(WrappedKey::MAGIC)
        .u16(FORMAT_VERSION)
        .u16(RECORD_SUITE_ID)
        .bytes(doc_id.as_bytes())
        .u32(doc_version)
        .bytes(header_hash)
        .bytes(recipient.device_id.as_bytes())
        .bytes(sharer.id().as_bytes())
        .bytes(&enc.to_bytes())
        .bytes(&ct);
    let sig = sign::sign(sharer.signing_key(), Context::Wrap, w.as_slice());
    w.bytes(&sig);
    let out = w.into_vec();
    debug_assert_eq!(out.len(), WrappedKey::LEN);
    Ok(out)
}

/// Opens a wrap addressed to `device`, returning the DEK. Checks that the wrap names this device.
/// The sharer's signature must have been verified by the caller ([`WrappedKey::verify_signature`]).
///
/// # Errors
/// [`Error::ContextMismatch`] if the wrap is for another device; [`Error::Decrypt`] on any HPKE
/// failure (one opaque error).
pub fn unwrap_dek(wrap: &WrappedKey, device: &DeviceSecret) -> Result<Zeroizing<[u8; DEK_LEN]>> {
    if wrap.recipient != device.id() {
        return Err(Error::ContextMismatch("the key wrap is for another device"));
    }
    let sk = device.hpke_private()?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&wrap.enc).map_err(|_| Error::Decrypt)?;
    let info = hpke_info(&wrap.doc_id, wrap.doc_version, &wrap.recipient);
    let pt = Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &sk,
            &enc,
            &info,
            &wrap.wrapped_dek,
            &wrap.header_hash,
        )
        .map_err(|_| Error::Decrypt)?,
    );
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    if pt.len() != DEK_LEN {
        return Err(Error::Decrypt);
    }
    dek.copy_from_slice(&pt);
    Ok(dek)
}

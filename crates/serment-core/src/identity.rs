//! Identities, devices and signed device records (PROTOCOL.md §4).
//!
//! A user's identity key (Ed25519) signs a [`DeviceRecord`] for each of the user's devices. A device
//! holds a signing key (Ed25519) and an encryption key (X25519, the HPKE KEM key of RFC 9180 §4.1).

use core::fmt;

use ed25519_dalek::SigningKey;
use hpke::{Deserializable, Kem as _, Serializable, kem::X25519HkdfSha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::ids::{KeyId, KeyKind};
use crate::sign::{self, Context};
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

/// The longest handle, in bytes.
pub const MAX_HANDLE_LEN: usize = 64;

/// Checks a directory handle: 1..=64 bytes of `[a-z0-9._-]`, not starting with `.` or `-`.
///
/// # Errors
/// [`Error::InvalidField`] for anything else (so `../x` can never reach a path or a query).
pub fn validate_handle(handle: &str) -> Result<()> {
    let ok_chars = handle
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'));
    let ok_start = !handle.starts_with('.') && !handle.starts_with('-');
    if handle.is_empty() || handle.len() > MAX_HANDLE_LEN || !ok_chars || !ok_start {
        return Err(Error::InvalidField {
            field: "handle",
            reason: "expected 1 to 64 of [a-z0-9._-], not starting with '.' or '-'",
        });
    }
    Ok(())
}

/// A user's identity secret key (Ed25519). Zeroized on drop; `Debug` shows only the id.
#[derive(Clone, ZeroizeOnDrop)]
pub struct IdentitySecret {
    key: SigningKey,
}

impl IdentitySecret {
    /// A fresh identity key from the operating system's generator.
    pub fn generate() -> IdentitySecret {
        IdentitySecret {
            key: SigningKey::generate(&mut crate::rng::os_rng()),
        }
    }
    /// Rebuilds the key from its 32-byte seed (RFC 8032 §5.1.5).
    pub fn from_seed(seed: &[u8; 32]) -> IdentitySecret {
        IdentitySecret {
            key: SigningKey::from_bytes(seed),
        }
    }
    /// The 32-byte seed, for the keystore. Keep it in a zeroizing buffer.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes())
    }
    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
    /// The identity id (PROTOCOL.md §4).
    pub fn id(&self) -> KeyId {
        KeyId::of(KeyKind::Identity, &self.public_key())
    }
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }
    /// Signs a device record for `device` under `handle` (PROTOCOL.md §4).
    ///
    /// # Errors
    /// [`Error::InvalidField`] if the handle is invalid.
    pub fn sign_device_record(
        &self,
        handle: &str,
        device: &DeviceSecret,
        created_at: u64,
    ) -> Result<Vec<u8>> {
        validate_handle(handle)?;
        let mut w = Writer::with_capacity(DeviceRecord::MAX_LEN);
        w.bytes(DeviceRecord::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .str8("handle", handle)?
            .bytes(&self.public_key())
            .bytes(&device.signing_public_key())
            .bytes(&device.encryption_public_key())
            .u64(created_at);
        let sig = sign::sign(&self.key, Context::DeviceRecord, w.as_slice());
        w.bytes(&sig);
        Ok(w.into_vec())
    }
}

impl fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentitySecret({:?}, ***)", self.id())
    }
}

/// A device's secret keys: Ed25519 signing and X25519 (HPKE) decryption. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceSecret {
    #[zeroize(skip)]
    signing: SigningKey,
    encryption: [u8; 32],
}

impl DeviceSecret {
    /// Fresh device keys from the operating system's generator.
    pub fn generate() -> DeviceSecret {
        let mut rng = crate::rng::os_rng();
        let signing = SigningKey::generate(&mut rng);
        let (sk, _pk) = X25519HkdfSha256::gen_keypair_with_rng(&mut rng);
        DeviceSecret {
            signing,
            encryption: sk.to_bytes().into(),
        }
    }
    /// Rebuilds device keys from their two 32-byte secrets (as kept in the keystore).
    ///
    /// # Errors
    /// [`Error::InvalidField`] if the X25519 secret is not a valid HPKE private key.
    pub fn from_secrets(signing_seed: &[u8; 32], encryption_secret: &[u8; 32]) -> Result<Self> {
        // Validate once here so that later use cannot fail.
        <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(encryption_secret).map_err(
            |_| Error::InvalidField {
                field: "device encryption key",
                reason: "not a valid X25519 private key",
            },
        )?;
        Ok(DeviceSecret {
            signing: SigningKey::from_bytes(signing_seed),
            encryption: *encryption_secret,
        })
    }
    /// Deterministic device keys from a 32-byte seed, for test vectors only (the HPKE key comes from
    /// `DeriveKeyPair`, RFC 9180 §7.1.3).
    pub fn from_test_seed(seed: &[u8; 32]) -> DeviceSecret {
        let (sk, _) = X25519HkdfSha256::derive_keypair(seed);
        DeviceSecret {
            signing: SigningKey::from_bytes(seed),
            encryption: sk.to_bytes().into(),
        }
    }
    /// The Ed25519 signing seed, for the keystore.
    pub fn signing_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }
    /// The X25519 secret, for the keystore.
    pub fn encryption_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.encryption)
    }
    /// The Ed25519 public key.
    pub fn signing_public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }
    /// The X25519 public key (HPKE `pkR`).
    pub fn encryption_public_key(&self) -> [u8; 32] {
        match self.hpke_private() {
            Ok(sk) => <X25519HkdfSha256 as hpke::Kem>::sk_to_pk(&sk)
                .to_bytes()
                .into(),
            // Unreachable: every constructor validated the key.
            Err(_) => [0u8; 32],
        }
    }
    /// The device id (PROTOCOL.md §4).
    pub fn id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.signing_public_key())
    }
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
    pub(crate) fn hpke_private(&self) -> Result<<X25519HkdfSha256 as hpke::Kem>::PrivateKey> {
        <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&self.encryption).map_err(|_| {
            Error::InvalidField {
                field: "device encryption key",
                reason: "not a valid X25519 private key",
            }
        })
    }
}

impl fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceSecret({:?}, ***)", self.id())
    }
}

/// A verified device record (PROTOCOL.md §4). Only [`DeviceRecord::decode_verified`] makes one, so
/// holding a `DeviceRecord` means its identity signature was checked over the bytes as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The public handle (validated).
    pub handle: String,
    /// The identity's Ed25519 public key.
    pub identity_key: [u8; 32],
    /// The device's Ed25519 public key.
    pub signing_key: [u8; 32],
    /// The device's X25519 public key.
    pub encryption_key: [u8; 32],
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// The record exactly as received.
    pub bytes: Vec<u8>,
}

impl DeviceRecord {
    /// Magic bytes.
    pub const MAGIC: &'static [u8; 4] = b"SRMD";
    /// The largest encoded record, in bytes.
    pub const MAX_LEN: usize = 4 + 2 + 2 + 1 + MAX_HANDLE_LEN + 32 * 3 + 8 + 64;

    /// Decodes a record strictly and verifies the identity key's signature over the received bytes.
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`],
    /// [`Error::Truncated`], [`Error::TrailingBytes`], [`Error::InvalidField`] (handle) or
    /// [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<DeviceRecord> {
        const WHAT: &str = "device record";
        if bytes.len() > Self::MAX_LEN {
            return Err(Error::TooLarge {
                what: WHAT,
                limit: Self::MAX_LEN as u64,
            });
        }
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let identity_key: [u8; 32] = r.array()?;
        let signing_key: [u8; 32] = r.array()?;
        let encryption_key: [u8; 32] = r.array()?;
        let created_at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        sign::verify(
            &identity_key,
            Context::DeviceRecord,
            signed,
            &signature,
            WHAT,
        )?;
        Ok(DeviceRecord {
            handle,
            identity_key,
            signing_key,
            encryption_key,
            created_at,
            bytes: bytes.to_vec(),
        })
    }

    /// The device id.
    pub fn device_id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.signing_key)
    }

    /// The identity id.
    pub fn identity_id(&self) -> KeyId {
        KeyId::of(KeyKind::Identity, &self.identity_key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn record_round_trip_and_every_byte_flip_fails() {
        let ik = IdentitySecret::from_seed(&[1; 32]);
        let dev = DeviceSecret::from_test_seed(&[2; 32]);
        let bytes = ik
            .sign_device_record("dr.martin", &dev, 1_700_000_000)
            .unwrap();
        let rec = DeviceRecord::decode_verified(&bytes).unwrap();
        assert_eq!(rec.handle, "dr.martin");
        assert_eq!(rec.device_id(), dev.id());
        assert_eq!(rec.identity_id(), ik.id());
        assert_eq!(rec.encryption_key, dev.encryption_public_key());
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(DeviceRecord::decode_verified(&b).is_err(), "flip at {i}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(DeviceRecord::decode_verified(&longer).is_err());
    }

    #[test]
    fn bad_handles_refused() {
        for h in ["", "../x", "A", ".x", "-x", "a/b", &"a".repeat(65)] {
            assert!(validate_handle(h).is_err(), "{h}");
        }
        assert!(validate_handle("lab.biomed-75_1").is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        let dev = DeviceSecret::from_test_seed(&[2; 32]);
        let s = format!("{dev:?}");
        assert!(s.contains("***"));
        assert!(!s.contains(&hex::encode(*dev.signing_seed())));
    }
}

//! Identities, devices and signed device records (PROTOCOL.md §4).
//!
//! A user's identity key (Ed25519) signs a [`DeviceRecord`] for each of the user's devices. A device
//! holds a signing key (Ed25519), an encryption key (X25519, the HPKE KEM key of RFC 9180 §4.1)
//! and, in suite 3 (issue 15), a hybrid X-Wing key (ML-KEM-768 + X25519,
//! draft-connolly-cfrg-xwing-kem) for post-quantum key wraps.

use core::fmt;

use ed25519_dalek::SigningKey;
use hpke::{
    Deserializable, Kem as _, Serializable,
    kem::{X25519HkdfSha256, XWing},
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::ids::{KeyId, KeyKind};
use crate::sign::{self, Context};
use crate::{FORMAT_VERSION, HYBRID_SUITE_ID, RECORD_SUITE_ID};

/// The length of an X-Wing public (encapsulation) key, in bytes: the ML-KEM-768 encapsulation
/// key (1184) followed by the X25519 public key (32) (draft-connolly-cfrg-xwing-kem-06 §5.2).
pub const HYBRID_PUBLIC_KEY_LEN: usize = 1216;
/// The length of an X-Wing secret (decapsulation) key, in bytes: a 32-byte seed that both
/// ML-KEM-768 and X25519 keys are expanded from (draft-connolly-cfrg-xwing-kem-06 §5.2).
pub const HYBRID_SECRET_LEN: usize = 32;

/// A device's X-Wing public key (ML-KEM-768 encapsulation key || X25519 public key, 1216 bytes),
/// as advertised in a suite-3 device record. Checked to be a valid X-Wing key on construction.
#[derive(Clone, PartialEq, Eq)]
pub struct HybridPublicKey(Box<[u8; HYBRID_PUBLIC_KEY_LEN]>);

impl HybridPublicKey {
    /// Parses and validates an X-Wing public key (the ML-KEM-768 modulus check of FIPS 203
    /// §7.2 included).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a wrong length or an invalid key.
    pub fn from_bytes(bytes: &[u8]) -> Result<HybridPublicKey> {
        let arr: [u8; HYBRID_PUBLIC_KEY_LEN] =
            bytes.try_into().map_err(|_| Error::InvalidField {
                field: "hybrid key",
                reason: "an X-Wing public key is 1216 bytes",
            })?;
        <XWing as hpke::Kem>::PublicKey::from_bytes(&arr).map_err(|_| Error::InvalidField {
            field: "hybrid key",
            reason: "not a valid X-Wing public key",
        })?;
        Ok(HybridPublicKey(Box::new(arr)))
    }
    /// The 1216 bytes.
    pub fn as_bytes(&self) -> &[u8; HYBRID_PUBLIC_KEY_LEN] {
        &self.0
    }
    /// The key for HPKE.
    pub(crate) fn hpke_public(&self) -> Result<<XWing as hpke::Kem>::PublicKey> {
        <XWing as hpke::Kem>::PublicKey::from_bytes(self.0.as_ref()).map_err(|_| {
            Error::InvalidField {
                field: "hybrid key",
                reason: "not a valid X-Wing public key",
            }
        })
    }
}

impl fmt::Debug for HybridPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = crate::ids::labeled_hash("key-id", &[self.0.as_ref()]);
        write!(
            f,
            "HybridPublicKey(X-Wing, {})",
            hex::encode(h.get(..8).unwrap_or(&[]))
        )
    }
}

/// A device's X-Wing secret seed with its public key (kept to avoid re-expanding ML-KEM on every
/// seal). Only the seed is secret; it is zeroized on drop.
#[derive(Clone)]
struct HybridSecret {
    seed: [u8; HYBRID_SECRET_LEN],
    public: HybridPublicKey,
}

impl Zeroize for HybridSecret {
    fn zeroize(&mut self) {
        self.seed.zeroize();
    }
}

impl HybridSecret {
    fn from_private(sk: &<XWing as hpke::Kem>::PrivateKey) -> Result<HybridSecret> {
        let pk = <XWing as hpke::Kem>::sk_to_pk(sk).to_bytes();
        Ok(HybridSecret {
            seed: sk.to_bytes().into(),
            public: HybridPublicKey::from_bytes(&pk)?,
        })
    }
}

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
        self.sign_record_for(
            handle,
            &device.signing_public_key(),
            &device.encryption_public_key(),
            device.hybrid_public_key().as_ref(),
            created_at,
        )
    }

    /// Signs a device record (PROTOCOL.md §4) for a device known by its public keys only: a
    /// device being linked (§4.1, its keys authenticated by the pairing) or a device
    /// re-certified by a rotation (§11.3). Suite 3 when `hybrid` is given, else suite 1.
    ///
    /// # Errors
    /// [`Error::InvalidField`] if the handle is invalid.
    pub fn sign_record_for(
        &self,
        handle: &str,
        signing_key: &[u8; 32],
        encryption_key: &[u8; 32],
        hybrid: Option<&HybridPublicKey>,
        created_at: u64,
    ) -> Result<Vec<u8>> {
        validate_handle(handle)?;
        let suite = match hybrid {
            Some(_) => HYBRID_SUITE_ID,
            None => RECORD_SUITE_ID,
        };
        let mut w = Writer::with_capacity(DeviceRecord::MAX_LEN);
        w.bytes(DeviceRecord::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(suite)
            .str8("handle", handle)?
            .bytes(&self.public_key())
            .bytes(signing_key)
            .bytes(encryption_key);
        if let Some(h) = hybrid {
            w.bytes(h.as_bytes());
        }
        w.u64(created_at);
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

/// A device's secret keys: Ed25519 signing, X25519 (HPKE) decryption and, once it has one, the
/// X-Wing hybrid decryption key (suite 3). Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DeviceSecret {
    #[zeroize(skip)]
    signing: SigningKey,
    encryption: [u8; 32],
    hybrid: Option<HybridSecret>,
}

impl DeviceSecret {
    /// Fresh device keys from the operating system's generator, with an X-Wing hybrid key (new
    /// devices advertise one from their first record, PROTOCOL.md §4).
    pub fn generate() -> DeviceSecret {
        let mut d = Self::generate_classical();
        d.add_hybrid_key();
        d
    }
    /// Fresh device keys without a hybrid key, as devices were made before suite 3: for tests of
    /// the upgrade path (`serment id upgrade`) and of classical stores.
    pub fn generate_classical() -> DeviceSecret {
        let mut rng = crate::rng::os_rng();
        let signing = SigningKey::generate(&mut rng);
        let (sk, _pk) = X25519HkdfSha256::gen_keypair_with_rng(&mut rng);
        DeviceSecret {
            signing,
            encryption: sk.to_bytes().into(),
            hybrid: None,
        }
    }
    /// Gives this device a fresh X-Wing key pair from the operating system's generator
    /// (draft-connolly-cfrg-xwing-kem-06 `GenerateKeyPair`: a random 32-byte seed), unless it has
    /// one already. Returns whether a key was added.
    pub fn add_hybrid_key(&mut self) -> bool {
        if self.hybrid.is_some() {
            return false;
        }
        let (sk, _) = XWing::gen_keypair_with_rng(&mut crate::rng::os_rng());
        // Cannot fail: a freshly generated key is valid.
        self.hybrid = HybridSecret::from_private(&sk).ok();
        self.hybrid.is_some()
    }
    /// Adds the X-Wing secret seed kept in the keystore (PROTOCOL.md §9).
    ///
    /// # Errors
    /// [`Error::InvalidField`] if the seed does not give a valid X-Wing key.
    pub fn with_hybrid_secret(mut self, seed: &[u8; HYBRID_SECRET_LEN]) -> Result<DeviceSecret> {
        let sk = <XWing as hpke::Kem>::PrivateKey::from_bytes(seed).map_err(|_| {
            Error::InvalidField {
                field: "device hybrid key",
                reason: "not a valid X-Wing secret key",
            }
        })?;
        self.hybrid = Some(HybridSecret::from_private(&sk)?);
        Ok(self)
    }
    /// The X-Wing secret seed, for the keystore, if the device has a hybrid key.
    pub fn hybrid_secret(&self) -> Option<Zeroizing<[u8; HYBRID_SECRET_LEN]>> {
        self.hybrid.as_ref().map(|h| Zeroizing::new(h.seed))
    }
    /// The X-Wing public key, if the device has a hybrid key.
    pub fn hybrid_public_key(&self) -> Option<HybridPublicKey> {
        self.hybrid.as_ref().map(|h| h.public.clone())
    }
    pub(crate) fn hybrid_private(&self) -> Result<<XWing as hpke::Kem>::PrivateKey> {
        let h = self.hybrid.as_ref().ok_or(Error::ContextMismatch(
            "a hybrid (X-Wing) key wrap for a device that has no hybrid key",
        ))?;
        <XWing as hpke::Kem>::PrivateKey::from_bytes(&h.seed).map_err(|_| Error::InvalidField {
            field: "device hybrid key",
            reason: "not a valid X-Wing secret key",
        })
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
            hybrid: None,
        })
    }
    /// Deterministic classical device keys (no hybrid key) from a 32-byte seed, for test vectors
    /// only (the HPKE key comes from `DeriveKeyPair`, RFC 9180 §7.1.3).
    pub fn from_test_seed(seed: &[u8; 32]) -> DeviceSecret {
        let (sk, _) = X25519HkdfSha256::derive_keypair(seed);
        DeviceSecret {
            signing: SigningKey::from_bytes(seed),
            encryption: sk.to_bytes().into(),
            hybrid: None,
        }
    }
    /// [`DeviceSecret::from_test_seed`] plus an X-Wing key from the same seed (X-Wing
    /// `DeriveKeyPair` of draft-ietf-hpke-pq-03 §4), for test vectors only.
    pub fn from_test_seed_hybrid(seed: &[u8; 32]) -> DeviceSecret {
        let mut d = Self::from_test_seed(seed);
        let (sk, _) = XWing::derive_keypair(seed);
        d.hybrid = HybridSecret::from_private(&sk).ok();
        d
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
    /// The device's X-Wing public key: present in suite-3 records (PROTOCOL.md §4).
    pub hybrid_key: Option<HybridPublicKey>,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// The record exactly as received.
    pub bytes: Vec<u8>,
}

impl DeviceRecord {
    /// Magic bytes.
    pub const MAGIC: &'static [u8; 4] = b"SRMD";
    /// The largest encoded record, in bytes.
    pub const MAX_LEN: usize =
        4 + 2 + 2 + 1 + MAX_HANDLE_LEN + 32 * 3 + HYBRID_PUBLIC_KEY_LEN + 8 + 64;

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
        let suite = crate::check_version_hybrid(WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let identity_key: [u8; 32] = r.array()?;
        let signing_key: [u8; 32] = r.array()?;
        let encryption_key: [u8; 32] = r.array()?;
        let hybrid_key = if suite == HYBRID_SUITE_ID {
            Some(HybridPublicKey::from_bytes(r.take(HYBRID_PUBLIC_KEY_LEN)?)?)
        } else {
            None
        };
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
            hybrid_key,
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

    /// Whether `self` is the record that gives the device of `old` a hybrid key and changes
    /// nothing else (`serment id upgrade`, PROTOCOL.md §4): same handle, identity and device keys
    /// (the creation time may differ), `old` without a hybrid key and `self` with one. The only re-certification
    /// of a device a key history accepts (§11.3).
    pub fn is_hybrid_upgrade_of(&self, old: &DeviceRecord) -> bool {
        old.hybrid_key.is_none()
            && self.hybrid_key.is_some()
            && self.handle == old.handle
            && self.identity_key == old.identity_key
            && self.signing_key == old.signing_key
            && self.encryption_key == old.encryption_key
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

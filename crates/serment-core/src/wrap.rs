//! Key wraps (PROTOCOL.md §7): the DEK sealed to one recipient device with HPKE (RFC 9180 §6.1,
//! base mode, HKDF-SHA256, ChaCha20Poly1305), signed by the sharer. Two KEMs: the classical
//! `DHKEM(X25519, HKDF-SHA256)` (suite 1) and the hybrid post-quantum X-Wing, ML-KEM-768 +
//! X25519 (suite 3, draft-connolly-cfrg-xwing-kem-06 as the HPKE KEM 0x647A of
//! draft-ietf-hpke-pq-03). A recipient that advertises an X-Wing key gets an X-Wing wrap.

use hpke::{
    Deserializable, OpModeR, OpModeS, Serializable,
    aead::ChaCha20Poly1305,
    kdf::HkdfSha256,
    kem::{X25519HkdfSha256, XWing},
};
use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{DeviceSecret, HybridPublicKey};
use crate::ids::{DocId, KeyId};
use crate::sign::{self, Context};
use crate::stream::DEK_LEN;
use crate::{FORMAT_VERSION, HYBRID_SUITE_ID, RECORD_SUITE_ID};

/// The KEM of a key wrap, named by the wrap's `suite_id` (PROTOCOL.md §2, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrapKem {
    /// Suite 1: `DHKEM(X25519, HKDF-SHA256)`, HPKE KEM id 0x0020 (RFC 9180 §7.1).
    X25519,
    /// Suite 3: X-Wing (ML-KEM-768 + X25519), HPKE KEM id 0x647A (draft-ietf-hpke-pq-03 §4,
    /// draft-connolly-cfrg-xwing-kem-06).
    XWing,
}

impl WrapKem {
    /// The wrap's `suite_id`: 1 or 3.
    pub const fn suite_id(self) -> u16 {
        match self {
            WrapKem::X25519 => RECORD_SUITE_ID,
            WrapKem::XWing => HYBRID_SUITE_ID,
        }
    }
    /// The HPKE KEM id (RFC 9180 §7.1; draft-ietf-hpke-pq-03 §4).
    pub const fn hpke_kem_id(self) -> u16 {
        match self {
            WrapKem::X25519 => 0x0020,
            WrapKem::XWing => 0x647a,
        }
    }
    /// The name shown to users and in `--json` output: `"X25519"` or `"X-Wing"`.
    pub const fn name(self) -> &'static str {
        match self {
            WrapKem::X25519 => "X25519",
            WrapKem::XWing => "X-Wing",
        }
    }
    /// Whether this KEM resists a quantum adversary (X-Wing does while ML-KEM-768 holds).
    pub const fn is_hybrid(self) -> bool {
        matches!(self, WrapKem::XWing)
    }
    /// The length of the HPKE encapsulated key `enc`: 32 (X25519) or 1120 (X-Wing: ML-KEM-768
    /// ciphertext 1088 || X25519 ephemeral 32).
    pub const fn enc_len(self) -> usize {
        match self {
            WrapKem::X25519 => 32,
            WrapKem::XWing => 1120,
        }
    }
    /// The encoded length of a wrap with this KEM: 268 or 1356 bytes.
    pub const fn wrap_len(self) -> usize {
        4 + 2 + 2 + 16 + 4 + 32 + 32 + 32 + self.enc_len() + 48 + 64
    }
    fn from_suite_id(what: &'static str, suite: u16) -> Result<WrapKem> {
        match suite {
            RECORD_SUITE_ID => Ok(WrapKem::X25519),
            HYBRID_SUITE_ID => Ok(WrapKem::XWing),
            suite => Err(Error::UnsupportedSuite { what, suite }),
        }
    }
}

/// A decoded key wrap. [`WrappedKey::decode`] checks only the syntax: call
/// [`WrappedKey::verify_signature`] and [`unwrap_dek`] before trusting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The KEM, from the wrap's suite id.
    pub kem: WrapKem,
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
    enc: Vec<u8>,
    wrapped_dek: [u8; 48],
    signature: [u8; 64],
    bytes: Vec<u8>,
}

/// The recipient of a wrap: a device id, its X25519 public key and, if it advertises one, its
/// X-Wing public key, taken from a verified [`crate::identity::DeviceRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The device id.
    pub device_id: KeyId,
    /// The device's X25519 public key.
    pub encryption_key: [u8; 32],
    /// The device's X-Wing public key (suite-3 record): when present, wraps to this device use
    /// X-Wing, never X25519 alone.
    pub hybrid_key: Option<HybridPublicKey>,
}

impl Recipient {
    /// The recipient for a device's own keys (the author's own wrap).
    pub fn from_device(d: &DeviceSecret) -> Recipient {
        Recipient {
            device_id: d.id(),
            encryption_key: d.encryption_public_key(),
            hybrid_key: d.hybrid_public_key(),
        }
    }
    /// The KEM a wrap to this recipient uses: X-Wing when it advertises a hybrid key.
    pub fn kem(&self) -> WrapKem {
        match self.hybrid_key {
            Some(_) => WrapKem::XWing,
            None => WrapKem::X25519,
        }
    }
}

impl From<&crate::identity::DeviceRecord> for Recipient {
    fn from(r: &crate::identity::DeviceRecord) -> Self {
        Recipient {
            device_id: r.device_id(),
            encryption_key: r.encryption_key,
            hybrid_key: r.hybrid_key.clone(),
        }
    }
}

/// The HPKE `info` of a wrap (PROTOCOL.md §7). Suite 1: `"serment/v1/wrap" 0x00 || doc_id ||
/// u32(doc_version) || recipient`. Suite 3 adds `u16(3)` after the 0x00, so the suite is bound
/// twice: here and by HPKE's own `suite_id` (which names the KEM, RFC 9180 §5.1).
fn hpke_info(kem: WrapKem, doc_id: &DocId, doc_version: u32, recipient: &KeyId) -> Vec<u8> {
    let mut w = Writer::with_capacity(16 + 2 + 16 + 4 + 32);
    w.bytes(b"serment/v1/wrap").u8(0);
    if kem == WrapKem::XWing {
        w.u16(HYBRID_SUITE_ID);
    }
    w.bytes(doc_id.as_bytes())
        .u32(doc_version)
        .bytes(recipient.as_bytes());
    w.into_vec()
}

impl WrappedKey {
    /// Magic bytes.
    pub const MAGIC: &'static [u8; 4] = b"SRMW";
    /// Encoded length in bytes of a classical (suite 1) wrap: 268.
    pub const LEN: usize = WrapKem::X25519.wrap_len();
    /// Encoded length in bytes of a hybrid (suite 3) wrap: 1356.
    pub const HYBRID_LEN: usize = WrapKem::XWing.wrap_len();
    /// The bytes before `enc` (magic to sharer), the same in both suites.
    pub const PREFIX_LEN: usize = 4 + 2 + 2 + 16 + 4 + 32 + 32 + 32;

    /// The encoded length of the wrap that starts with `prefix` (its first 8 bytes at least:
    /// magic, version, suite), to read a wrap from a stream (PROTOCOL.md §6.4).
    ///
    /// # Errors
    /// As [`WrappedKey::decode`] for those fields.
    pub fn encoded_len(prefix: &[u8]) -> Result<usize> {
        const WHAT: &str = "key wrap";
        let mut r = Reader::new(prefix, WHAT);
        r.magic(Self::MAGIC)?;
        let suite = crate::check_version_hybrid(WHAT, r.u16()?, r.u16()?)?;
        Ok(WrapKem::from_suite_id(WHAT, suite)?.wrap_len())
    }

    /// Decodes a wrap strictly (exactly [`WrappedKey::LEN`] bytes in suite 1,
    /// [`WrappedKey::HYBRID_LEN`] in suite 3).
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`],
    /// [`Error::Truncated`] or [`Error::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<WrappedKey> {
        const WHAT: &str = "key wrap";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        let suite = crate::check_version_hybrid(WHAT, r.u16()?, r.u16()?)?;
        let kem = WrapKem::from_suite_id(WHAT, suite)?;
        let w = WrappedKey {
            kem,
            doc_id: DocId::from_bytes(r.array()?),
            doc_version: r.u32()?,
            header_hash: r.array()?,
            recipient: KeyId::from_bytes(r.array()?),
            sharer: KeyId::from_bytes(r.array()?),
            enc: r.take(kem.enc_len())?.to_vec(),
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
            .get(..self.kem.wrap_len() - 64)
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

/// Seals `dek` to `recipient` and signs the wrap with `sharer` (PROTOCOL.md §7): with X-Wing
/// (suite 3) when the recipient advertises a hybrid key, with X25519 (suite 1) otherwise.
///
/// # Errors
/// [`Error::InvalidField`] if the recipient's public key is invalid.
pub fn wrap_dek(
    dek: &Zeroizing<[u8; DEK_LEN]>,
    doc_id: &DocId,
    doc_version: u32,
    header_hash: &[u8; 32],
    recipient: &Recipient,
    sharer: &DeviceSecret,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    let kem = recipient.kem();
    let info = hpke_info(kem, doc_id, doc_version, &recipient.device_id);
    let failed = |_| Error::InvalidField {
        field: "recipient encryption key",
        reason: "HPKE encapsulation failed",
    };
    let (enc, ct) = match &recipient.hybrid_key {
        Some(h) => {
            let pk = h.hpke_public()?;
            let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, XWing>(
                &OpModeS::Base,
                &pk,
                &info,
                dek.as_ref(),
                header_hash,
                rng,
            )
            .map_err(failed)?;
            (enc.to_bytes().to_vec(), ct)
        }
        None => {
            let pk =
                <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&recipient.encryption_key)
                    .map_err(|_| Error::InvalidField {
                    field: "recipient encryption key",
                    reason: "not a valid X25519 public key",
                })?;
            let (enc, ct) = hpke::single_shot_seal_with_rng::<
                ChaCha20Poly1305,
                HkdfSha256,
                X25519HkdfSha256,
            >(
                &OpModeS::Base, &pk, &info, dek.as_ref(), header_hash, rng
            )
            .map_err(failed)?;
            (enc.to_bytes().to_vec(), ct)
        }
    };
    let mut w = Writer::with_capacity(kem.wrap_len());
    w.bytes(WrappedKey::MAGIC)
        .u16(FORMAT_VERSION)
        .u16(kem.suite_id())
        .bytes(doc_id.as_bytes())
        .u32(doc_version)
        .bytes(header_hash)
        .bytes(recipient.device_id.as_bytes())
        .bytes(sharer.id().as_bytes())
        .bytes(&enc)
        .bytes(&ct);
    let sig = sign::sign(sharer.signing_key(), Context::Wrap, w.as_slice());
    w.bytes(&sig);
    let out = w.into_vec();
    debug_assert_eq!(out.len(), kem.wrap_len());
    Ok(out)
}

/// Opens a wrap addressed to `device`, returning the DEK. Checks that the wrap names this device.
/// The sharer's signature must have been verified by the caller ([`WrappedKey::verify_signature`]),
/// and whether a classical wrap is acceptable for this device is the caller's check
/// ([`check_not_downgraded`]).
///
/// # Errors
/// [`Error::ContextMismatch`] if the wrap is for another device, or is hybrid and the device has
/// no hybrid key; [`Error::Decrypt`] on any HPKE failure (one opaque error).
pub fn unwrap_dek(wrap: &WrappedKey, device: &DeviceSecret) -> Result<Zeroizing<[u8; DEK_LEN]>> {
    if wrap.recipient != device.id() {
        return Err(Error::ContextMismatch("the key wrap is for another device"));
    }
    let info = hpke_info(wrap.kem, &wrap.doc_id, wrap.doc_version, &wrap.recipient);
    let pt = Zeroizing::new(match wrap.kem {
        WrapKem::X25519 => {
            let sk = device.hpke_private()?;
            let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&wrap.enc)
                .map_err(|_| Error::Decrypt)?;
            hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
                &OpModeR::Base,
                &sk,
                &enc,
                &info,
                &wrap.wrapped_dek,
                &wrap.header_hash,
            )
            .map_err(|_| Error::Decrypt)?
        }
        WrapKem::XWing => open_xwing(wrap, &info, &device.hybrid_private()?)?,
    });
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    if pt.len() != DEK_LEN {
        return Err(Error::Decrypt);
    }
    dek.copy_from_slice(&pt);
    Ok(dek)
}

fn open_xwing(
    wrap: &WrappedKey,
    info: &[u8],
    sk: &<XWing as hpke::Kem>::PrivateKey,
) -> Result<Vec<u8>> {
    let enc =
        <XWing as hpke::Kem>::EncappedKey::from_bytes(&wrap.enc).map_err(|_| Error::Decrypt)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, XWing>(
        &OpModeR::Base,
        sk,
        &enc,
        info,
        &wrap.wrapped_dek,
        &wrap.header_hash,
    )
    .map_err(|_| Error::Decrypt)
}

/// Opens a wrap addressed to a team epoch (PROTOCOL.md §12.3): `wrap.recipient` must be the
/// epoch's id `epoch_id`, the wrap hybrid (suite 3), and `secret` the epoch key the replayed
/// chain holds for it. The sharer's signature is the caller's check, as for [`unwrap_dek`].
///
/// # Errors
/// [`Error::ContextMismatch`] for a wrap to another recipient; [`Error::Downgrade`] for a
/// classical wrap; [`Error::Decrypt`] on any HPKE failure.
pub fn unwrap_dek_for_epoch(
    wrap: &WrappedKey,
    epoch_id: &KeyId,
    secret: &crate::team::EpochSecret,
) -> Result<Zeroizing<[u8; DEK_LEN]>> {
    if wrap.recipient != *epoch_id {
        return Err(Error::ContextMismatch(
            "the key wrap is for another team epoch",
        ));
    }
    if wrap.kem != WrapKem::XWing {
        return Err(Error::Downgrade(
            "a classical (X25519) key wrap to a team: team wraps are X-Wing only",
        ));
    }
    let info = hpke_info(wrap.kem, &wrap.doc_id, wrap.doc_version, &wrap.recipient);
    let pt = Zeroizing::new(open_xwing(wrap, &info, &secret.hpke_private()?)?);
    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    if pt.len() != DEK_LEN {
        return Err(Error::Decrypt);
    }
    dek.copy_from_slice(&pt);
    Ok(dek)
}

/// The no-downgrade rule on read (PROTOCOL.md §7.1): a classical wrap to a device is refused once
/// that device has advertised a hybrid key in the log before the wrap was logged.
/// `hybrid_since` is the log index of the device's first record with a hybrid key (`None`: it never
/// advertised one); `wrap_index` is the wrap's own log index (`None`: the wrap is not in a log,
/// as in an offline container, and is judged against the device alone).
///
/// # Errors
/// [`Error::Downgrade`].
pub fn check_not_downgraded(
    wrap: &WrappedKey,
    hybrid_since: Option<u64>,
    wrap_index: Option<u64>,
) -> Result<()> {
    if wrap.kem.is_hybrid() {
        return Ok(());
    }
    match (hybrid_since, wrap_index) {
        (None, _) => Ok(()),
        (Some(since), Some(at)) if at < since => Ok(()),
        _ => Err(Error::Downgrade(
            "a classical (X25519) key wrap to a device that advertised a hybrid X-Wing key before it",
        )),
    }
}

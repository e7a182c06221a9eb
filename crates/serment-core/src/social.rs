//! Social recovery, k-of-n (PROTOCOL.md §4.3, issue 17 §2): the recovery secret, its Shamir
//! shares, the escrow it opens and the share wraps to the contacts' devices.
//!
//! A **social recovery secret** is 32 random bytes. It keys (through a labelled SHA-256, no
//! password KDF: the secret is 256-bit random) an escrow of the identity key and of the keys of a
//! *social recovery device*, with the layout and AEAD of the recovery-code escrow (§4.2):
//!
//! ```text
//! SocialEscrow { magic "SRSE", format_version u16 = 1, suite_id u16 = 1, nonce [12],
//!                ciphertext [130 + 16] }                    // 166 bytes
//! key = H("serment/v1/social-escrow-key" 0x00 || secret)    // SHA-256, AES-256-GCM key
//! aad = header (20 bytes) || "serment/v1/social-escrow" 0x00 || str8 handle
//! escrow_hash = H("serment/v1/social-escrow-hash" 0x00 || escrow)
//! ```
//!
//! The secret is split **k-of-n** with Shamir's scheme over GF(256) (the `blahaj` crate, a
//! maintained fork of `sharks`; one polynomial of degree k-1 per secret byte): contact `i`
//! (0-based, in the order of the contacts entry, kind 13) gets the share at `x = i + 1`, encoded
//! as blahaj encodes it: `x u8 || y [32]`, 33 bytes.
//!
//! Each share is HPKE-wrapped to each current device of its contact (suite 3, X-Wing, when the
//! device has a hybrid key; suite 1 otherwise), signed by the device that made the wrap:
//!
//! ```text
//! ShareWrap { magic "SRMM", format_version u16 = 1, suite_id u16 (1 | 3), handle str8,
//!             contacts_hash [32], request_id [16], share_x u8, recipient [32], sharer [32],
//!             enc [32 | 1120], ciphertext [33 + 16], signature [64] }
//! info = "serment/v1/recovery-share" 0x00 || u16 suite || str8 handle || contacts_hash
//!        || request_id || share_x || recipient
//! aad  = contacts_hash
//! signature: the sharer device, sig_input("recovery-share", all bytes before it)
//! ```
//!
//! `request_id` is 16 zero bytes for the distribution (owner device → contact device) and the
//! request's id (§4.3) for the re-wrap (contact device → the requesting new device).

use core::fmt;

use hpke::{
    Deserializable, OpModeR, OpModeS, Serializable,
    aead::ChaCha20Poly1305,
    kdf::HkdfSha256,
    kem::{X25519HkdfSha256, XWing},
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::aead::{Aad, Nonce};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{DeviceSecret, MAX_HANDLE_LEN, validate_handle};
use crate::ids::{KeyId, KeyKind};
use crate::keystore::aead_key;
use crate::recovery::{ESCROW_PLAINTEXT_LEN, EscrowSecrets, decode_plaintext, encode_plaintext};
use crate::sign::{self, Context};
use crate::wrap::{Recipient, WrapKem};
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

/// The secret's length, in bytes.
pub const SECRET_LEN: usize = 32;
/// An encoded share's length: `x u8 || y [32]`.
pub const SHARE_LEN: usize = 1 + SECRET_LEN;
/// The most contacts a contacts entry names.
pub const MAX_CONTACTS: usize = 16;
/// The request id's length, in bytes.
pub const REQUEST_ID_LEN: usize = 16;

const ESCROW_MAGIC: &[u8; 4] = b"SRSE";
const SHARE_MAGIC: &[u8; 4] = b"SRMM";
/// The social escrow header's length: magic, version, suite, nonce.
pub const SOCIAL_ESCROW_HEADER_LEN: usize = 4 + 2 + 2 + 12;
/// A social escrow's exact length, in bytes.
pub const SOCIAL_ESCROW_LEN: usize = SOCIAL_ESCROW_HEADER_LEN + ESCROW_PLAINTEXT_LEN + 16;
const KEY_LABEL: &[u8] = b"serment/v1/social-escrow-key\0";
const AAD_LABEL: &[u8] = b"serment/v1/social-escrow\0";
const HASH_LABEL: &[u8] = b"serment/v1/social-escrow-hash\0";
const INFO_LABEL: &[u8] = b"serment/v1/recovery-share\0";

/// A social recovery secret: 32 random bytes (zeroized on drop). `Debug` never shows it.
pub struct SocialSecret(Zeroizing<[u8; SECRET_LEN]>);

impl fmt::Debug for SocialSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SocialSecret(***)")
    }
}

/// One Shamir share, `x u8 || y [32]` (zeroized on drop). `Debug` shows only `x`.
pub struct Share(Zeroizing<[u8; SHARE_LEN]>);

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Share(x = {}, ***)", self.x())
    }
}

impl Share {
    /// The share's `x` coordinate (1-based position of its contact).
    pub fn x(&self) -> u8 {
        self.0.first().copied().unwrap_or(0)
    }
    /// The encoded share.
    pub fn as_bytes(&self) -> &[u8; SHARE_LEN] {
        &self.0
    }
    /// A share from its 33 encoded bytes.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for another length or `x = 0` (that point is the secret itself).
    pub fn from_bytes(b: &[u8]) -> Result<Share> {
        let arr: [u8; SHARE_LEN] = b.try_into().map_err(|_| Error::InvalidField {
            field: "recovery share",
            reason: "a share is 33 bytes",
        })?;
        let s = Share(Zeroizing::new(arr));
        if s.x() == 0 {
            return Err(Error::InvalidField {
                field: "recovery share",
                reason: "a share's x coordinate is never 0",
            });
        }
        Ok(s)
    }
}

impl SocialSecret {
    /// A fresh secret from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`].
    pub fn generate() -> Result<SocialSecret> {
        let mut b = Zeroizing::new([0u8; SECRET_LEN]);
        crate::rng::fill(b.as_mut())?;
        Ok(SocialSecret(b))
    }

    /// The secret of fixed bytes: for test vectors only.
    #[doc(hidden)]
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> SocialSecret {
        SocialSecret(Zeroizing::new(bytes))
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// Splits the secret into `n` shares, any `threshold` of which give it back (Shamir over
    /// GF(256), the `blahaj` crate); share `i` (0-based) has `x = i + 1`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] unless `2 <= threshold <= n <= 16`.
    pub fn split(
        &self,
        threshold: u8,
        n: u8,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Vec<Share>> {
        check_threshold(threshold, n)?;
        let dealer = blahaj::Sharks(threshold).dealer_rng(self.0.as_ref(), rng);
        dealer
            .take(usize::from(n))
            .map(|s| {
                let v = Zeroizing::new(Vec::<u8>::from(&s));
                Share::from_bytes(&v)
            })
            .collect()
    }

    /// Combines `threshold` or more shares with distinct `x` back into the secret.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for fewer than `threshold` distinct shares, or two shares with
    /// the same `x`. Shares of another
    /// secret (or forged ones) give another secret, which the escrow's AEAD and hash then refuse.
    pub fn combine(threshold: u8, shares: &[Share]) -> Result<SocialSecret> {
        let not_enough = Error::InvalidField {
            field: "recovery shares",
            reason: "fewer distinct shares than the threshold",
        };
        let mut xs: Vec<u8> = shares.iter().map(Share::x).collect();
        xs.sort_unstable();
        xs.dedup();
        if threshold < 2 || xs.len() < usize::from(threshold) {
            return Err(not_enough);
        }
        // REVIEW4 T9: interpolating two points at the same x gives a wrong secret, not an
        // error: refuse them (the caller keeps one share per contact).
        if xs.len() != shares.len() {
            return Err(Error::InvalidField {
                field: "recovery shares",
                reason: "two shares with the same x",
            });
        }
        let parsed = shares
            .iter()
            .map(|s| blahaj::Share::try_from(&s.0[..]))
            .collect::<core::result::Result<Vec<_>, _>>()
            .map_err(|_| Error::InvalidField {
                field: "recovery shares",
                reason: "a malformed share",
            })?;
        let secret = Zeroizing::new(
            blahaj::Sharks(threshold)
                .recover(parsed.iter())
                .map_err(|_| not_enough)?,
        );
        let arr: [u8; SECRET_LEN] =
            secret
                .as_slice()
                .try_into()
                .map_err(|_| Error::InvalidField {
                    field: "recovery shares",
                    reason: "shares of another length",
                })?;
        Ok(SocialSecret(Zeroizing::new(arr)))
    }
}

/// The floor of a contacts entry's waiting period (PROTOCOL.md §4.3, REVIEW4 T8): 24 hours, in
/// seconds. The owner's client names no contacts below it, the server logs no entry below it,
/// a contact's client approves no request relying on one, and the completing client refuses one.
pub const MIN_WAITING_PERIOD: u64 = 24 * 3600;

/// How long a request stays completable once its waiting period is over, in seconds (7 days,
/// PROTOCOL.md §4.3, REVIEW5 U15): its completion window is `[logged_at + waiting_period,
/// logged_at + waiting_period + REQUEST_COMPLETION_WINDOW]`. Past it the server serves nothing
/// for it (410) and the completing client refuses it: an abandoned recovery does not stay
/// completable for ever.
pub const REQUEST_COMPLETION_WINDOW: u64 = 7 * 24 * 3600;

/// The most *open* requests (logged on the current contacts entry, not vetoed, completion
/// window not over) the server keeps for one handle (PROTOCOL.md §4.3, REVIEW5 U1): a request
/// needs no account, so without a cap anyone floods the owner's social chain, warnings and
/// vetoes. Beyond it the server answers 429 until the owner vetoes (`serment recovery veto
/// --all-pending`) or the requests' windows end.
pub const MAX_OPEN_REQUESTS: u32 = 3;

/// Whether a request logged at `logged_at` on an entry with `waiting_period` can still be
/// completed at `now` (REVIEW5 U15): before the end of its completion window.
pub fn request_within_window(logged_at: u64, waiting_period: u64, now: u64) -> bool {
    now <= logged_at
        .saturating_add(waiting_period)
        .saturating_add(REQUEST_COMPLETION_WINDOW)
}

/// Checks a contacts entry's waiting period against [`MIN_WAITING_PERIOD`].
///
/// # Errors
/// [`Error::InvalidField`].
pub fn check_waiting_period(waiting_period: u64) -> Result<()> {
    if waiting_period < MIN_WAITING_PERIOD {
        return Err(Error::InvalidField {
            field: "waiting period",
            reason: "below the floor of 24 hours (PROTOCOL.md §4.3)",
        });
    }
    Ok(())
}

/// Checks `2 <= threshold <= n <= 16` (PROTOCOL.md §4.3).
///
/// # Errors
/// [`Error::InvalidField`].
pub fn check_threshold(threshold: u8, n: u8) -> Result<()> {
    if threshold < 2 || threshold > n || usize::from(n) > MAX_CONTACTS {
        return Err(Error::InvalidField {
            field: "recovery contacts",
            reason: "need 2 <= threshold <= contacts <= 16",
        });
    }
    Ok(())
}

fn escrow_key(secret: &SocialSecret) -> Result<crate::aead::LessSafeKey> {
    let mut h = Sha256::new();
    h.update(KEY_LABEL);
    h.update(secret.0.as_ref());
    let k = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
    aead_key(&k)
}

fn escrow_aad(header: &[u8], handle: &str) -> Result<Vec<u8>> {
    validate_handle(handle)?;
    let mut w = Writer::with_capacity(header.len() + AAD_LABEL.len() + 65);
    w.bytes(header).bytes(AAD_LABEL).str8("handle", handle)?;
    Ok(w.into_vec())
}

/// `H("serment/v1/social-escrow-hash" 0x00 || escrow)`: what the contacts entry binds.
pub fn escrow_hash(escrow: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(HASH_LABEL);
    h.update(escrow);
    h.finalize().into()
}

/// Seals `secrets` for `handle` under `secret` with a fresh nonce.
///
/// # Errors
/// [`Error::InvalidField`] for a device without an X-Wing key or a bad handle; [`Error::Rng`].
pub fn seal_social_escrow(
    secret: &SocialSecret,
    handle: &str,
    secrets: &EscrowSecrets,
) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    crate::rng::fill(&mut nonce)?;
    seal_social_escrow_with(secret, handle, secrets, nonce)
}

/// [`seal_social_escrow`] with a fixed nonce: for test vectors only.
///
/// # Errors
/// As [`seal_social_escrow`].
#[doc(hidden)]
pub fn seal_social_escrow_with(
    secret: &SocialSecret,
    handle: &str,
    secrets: &EscrowSecrets,
    nonce: [u8; 12],
) -> Result<Vec<u8>> {
    let mut h = Writer::with_capacity(SOCIAL_ESCROW_LEN);
    h.bytes(ESCROW_MAGIC)
        .u16(FORMAT_VERSION)
        .u16(RECORD_SUITE_ID)
        .bytes(&nonce);
    let header = h.into_vec();
    let body = encode_plaintext(secrets)?;
    let mut sealed = Zeroizing::new(body.to_vec());
    // The buffer as a plain `Vec` (ring's generic argument natively, the RustCrypto shim's
    // `&mut Vec<u8>` on wasm32), still zeroized on drop by `sealed`.
    let buf: &mut Vec<u8> = &mut sealed;
    escrow_key(secret)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&escrow_aad(&header, handle)?),
            buf,
        )
        .map_err(|_| Error::KeystoreDecrypt)?;
    let mut out = header;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a social escrow sealed for `handle` under `secret`. The format, version and suite are
/// checked first.
///
/// # Errors
/// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::UnsupportedSuite`],
/// [`Error::Truncated`], [`Error::TrailingBytes`]; [`Error::KeystoreDecrypt`] for another
/// secret (wrong shares), another handle or any changed byte.
pub fn open_social_escrow(
    secret: &SocialSecret,
    handle: &str,
    escrow: &[u8],
) -> Result<EscrowSecrets> {
    const WHAT: &str = "social recovery escrow";
    let mut r = Reader::new(escrow, WHAT);
    r.magic(ESCROW_MAGIC)?;
    crate::check_version(WHAT, r.u16()?, r.u16()?)?;
    let nonce: [u8; 12] = r.array()?;
    let ct = r.take(ESCROW_PLAINTEXT_LEN + 16)?;
    r.finish()?;
    let header = escrow
        .get(..SOCIAL_ESCROW_HEADER_LEN)
        .ok_or(Error::Truncated { what: WHAT })?;
    let mut body = Zeroizing::new(ct.to_vec());
    let len = escrow_key(secret)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&escrow_aad(header, handle)?),
            body.as_mut_slice(),
        )
        .map_err(|_| Error::KeystoreDecrypt)?
        .len();
    body.truncate(len);
    decode_plaintext(&body)
}

/// A decoded share wrap. [`ShareWrap::decode`] checks the syntax only: check the sharer
/// ([`ShareWrap::verify_signature`]) before [`unwrap_share`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareWrap {
    /// The KEM, from the suite id.
    pub kem: WrapKem,
    /// The handle whose secret the share is of.
    pub handle: String,
    /// The hash of the contacts entry the share belongs to ([`contacts_hash`]).
    pub contacts_hash: [u8; 32],
    /// Zero for the distribution; the request's id for the re-wrap to a requesting device.
    pub request_id: [u8; REQUEST_ID_LEN],
    /// The share's `x` coordinate.
    pub share_x: u8,
    /// The recipient device.
    pub recipient: KeyId,
    /// The device that made the wrap.
    pub sharer: KeyId,
    enc: Vec<u8>,
    ct: [u8; SHARE_LEN + 16],
    signature: [u8; 64],
    signed_len: usize,
    bytes: Vec<u8>,
}

/// `H("serment/v1/recovery-contacts" 0x00 || payload)`: the id of a contacts entry (kind 13) by
/// its payload bytes, which shares and requests bind.
pub fn contacts_hash(payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"serment/v1/recovery-contacts\0");
    h.update(payload);
    h.finalize().into()
}

/// The bytes a requesting device signs to fetch its request's escrow and shares
/// (PROTOCOL.md §4.3): `request_id || u64 at` (big-endian).
fn fetch_body(request_id: &[u8; REQUEST_ID_LEN], at: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(REQUEST_ID_LEN + 8);
    b.extend_from_slice(request_id);
    b.extend_from_slice(&at.to_be_bytes());
    b
}

/// The fetch proof (PROTOCOL.md §4.3, REVIEW4 T1): the request's own device signs
/// `sig_input("recovery-fetch", request_id || u64 at)`, so that the server hands the escrow of
/// a qualifying request to that device only, never to whoever asks.
pub fn sign_fetch(device: &DeviceSecret, request_id: &[u8; REQUEST_ID_LEN], at: u64) -> [u8; 64] {
    sign::sign(
        device.signing_key(),
        Context::RecoveryFetch,
        &fetch_body(request_id, at),
    )
}

/// Verifies a fetch proof made by [`sign_fetch`] with `signing_key`.
///
/// # Errors
/// [`Error::BadSignature`].
pub fn verify_fetch(
    signing_key: &[u8; 32],
    request_id: &[u8; REQUEST_ID_LEN],
    at: u64,
    signature: &[u8],
) -> Result<()> {
    sign::verify(
        signing_key,
        Context::RecoveryFetch,
        &fetch_body(request_id, at),
        signature,
        "recovery fetch proof",
    )
}

fn share_info(
    kem: WrapKem,
    handle: &str,
    contacts_hash: &[u8; 32],
    request_id: &[u8; REQUEST_ID_LEN],
    share_x: u8,
    recipient: &KeyId,
) -> Result<Vec<u8>> {
    let mut w = Writer::with_capacity(200);
    w.bytes(INFO_LABEL)
        .u16(kem.suite_id())
        .str8("handle", handle)?
        .bytes(contacts_hash)
        .bytes(request_id)
        .u8(share_x)
        .bytes(recipient.as_bytes());
    Ok(w.into_vec())
}

/// What a share wrap is bound to.
#[derive(Debug, Clone, Copy)]
pub struct ShareContext<'a> {
    /// The handle whose secret it is.
    pub handle: &'a str,
    /// [`contacts_hash`] of the contacts entry.
    pub contacts_hash: &'a [u8; 32],
    /// Zero for the distribution, the request id for a re-wrap.
    pub request_id: &'a [u8; REQUEST_ID_LEN],
}

/// Wraps `share` to `recipient` (X-Wing when it advertises a hybrid key, never X25519 alone
/// then), signed by `sharer` (PROTOCOL.md §4.3).
///
/// # Errors
/// [`Error::InvalidField`] for a bad handle or recipient key.
pub fn wrap_share(
    share: &Share,
    ctx: ShareContext<'_>,
    recipient: &Recipient,
    sharer: &DeviceSecret,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    let kem = recipient.kem();
    let info = share_info(
        kem,
        ctx.handle,
        ctx.contacts_hash,
        ctx.request_id,
        share.x(),
        &recipient.device_id,
    )?;
    let failed = |_| Error::InvalidField {
        field: "recovery contact device key",
        reason: "HPKE encapsulation failed",
    };
    let (enc, ct) = match &recipient.hybrid_key {
        Some(h) => {
            let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, XWing>(
                &OpModeS::Base,
                &h.hpke_public()?,
                &info,
                share.0.as_ref(),
                ctx.contacts_hash,
                rng,
            )
            .map_err(failed)?;
            (enc.to_bytes().to_vec(), ct)
        }
        None => {
            let pk =
                <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(&recipient.encryption_key)
                    .map_err(|_| Error::InvalidField {
                    field: "recovery contact device key",
                    reason: "not a valid X25519 public key",
                })?;
            let (enc, ct) =
                hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
                    &OpModeS::Base,
                    &pk,
                    &info,
                    share.0.as_ref(),
                    ctx.contacts_hash,
                    rng,
                )
                .map_err(failed)?;
            (enc.to_bytes().to_vec(), ct)
        }
    };
    let mut w = Writer::with_capacity(1500);
    w.bytes(SHARE_MAGIC)
        .u16(FORMAT_VERSION)
        .u16(kem.suite_id())
        .str8("handle", ctx.handle)?
        .bytes(ctx.contacts_hash)
        .bytes(ctx.request_id)
        .u8(share.x())
        .bytes(recipient.device_id.as_bytes())
        .bytes(sharer.id().as_bytes())
        .bytes(&enc)
        .bytes(&ct);
    let s = sign::sign(sharer.signing_key(), Context::RecoveryShare, w.as_slice());
    w.bytes(&s);
    Ok(w.into_vec())
}

impl ShareWrap {
    /// Decodes a share wrap strictly (syntax only).
    ///
    /// # Errors
    /// Format errors; [`Error::UnsupportedSuite`] for a suite other than 1 or 3.
    pub fn decode(bytes: &[u8]) -> Result<ShareWrap> {
        const WHAT: &str = "recovery share wrap";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(SHARE_MAGIC)?;
        let version = r.u16()?;
        let suite = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let kem = match suite {
            RECORD_SUITE_ID => WrapKem::X25519,
            crate::HYBRID_SUITE_ID => WrapKem::XWing,
            suite => return Err(Error::UnsupportedSuite { what: WHAT, suite }),
        };
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let contacts_hash: [u8; 32] = r.array()?;
        let request_id: [u8; REQUEST_ID_LEN] = r.array()?;
        let share_x = r.u8()?;
        let recipient = KeyId::from_bytes(r.array()?);
        let sharer = KeyId::from_bytes(r.array()?);
        let enc = r.take(kem.enc_len())?.to_vec();
        let ct: [u8; SHARE_LEN + 16] = r.array()?;
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        Ok(ShareWrap {
            kem,
            handle,
            contacts_hash,
            request_id,
            share_x,
            recipient,
            sharer,
            enc,
            ct,
            signature,
            signed_len,
            bytes: bytes.to_vec(),
        })
    }

    /// The wrap as received.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Verifies the sharer's signature; `sharer_signing_key` must be the key of
    /// [`ShareWrap::sharer`].
    ///
    /// # Errors
    /// [`Error::WrongSigner`], [`Error::BadSignature`].
    pub fn verify_signature(&self, sharer_signing_key: &[u8; 32]) -> Result<()> {
        const WHAT: &str = "recovery share wrap";
        let id = KeyId::of(KeyKind::Device, sharer_signing_key);
        if id != self.sharer {
            return Err(Error::WrongSigner {
                what: WHAT,
                expected: self.sharer.to_string(),
                found: id.to_string(),
            });
        }
        let signed = self
            .bytes
            .get(..self.signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        sign::verify(
            sharer_signing_key,
            Context::RecoveryShare,
            signed,
            &self.signature,
            WHAT,
        )
    }
}

/// Opens a share wrap addressed to `device` and checks what it is bound to: `ctx` and the
/// share's `x` (the unwrapped share must carry the wrap's `share_x`). The sharer's signature is
/// the caller's check ([`ShareWrap::verify_signature`]).
///
/// # Errors
/// [`Error::ContextMismatch`] for a wrap to another device or of another handle, contacts entry
/// or request; [`Error::Downgrade`] for a classical wrap to a device with an X-Wing key;
/// [`Error::Decrypt`] on any HPKE failure.
pub fn unwrap_share(w: &ShareWrap, ctx: ShareContext<'_>, device: &DeviceSecret) -> Result<Share> {
    if w.recipient != device.id() {
        return Err(Error::ContextMismatch(
            "the recovery share is wrapped to another device",
        ));
    }
    if w.handle != ctx.handle
        || w.contacts_hash != *ctx.contacts_hash
        || w.request_id != *ctx.request_id
    {
        return Err(Error::ContextMismatch(
            "the recovery share is of another handle, contacts entry or request",
        ));
    }
    if w.kem == WrapKem::X25519 && device.hybrid_public_key().is_some() {
        return Err(Error::Downgrade(
            "a classical (X25519) share wrap to a device that has an X-Wing key",
        ));
    }
    let info = share_info(
        w.kem,
        &w.handle,
        &w.contacts_hash,
        &w.request_id,
        w.share_x,
        &w.recipient,
    )?;
    let pt = Zeroizing::new(match w.kem {
        WrapKem::X25519 => {
            let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(&w.enc)
                .map_err(|_| Error::Decrypt)?;
            hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
                &OpModeR::Base,
                &device.hpke_private()?,
                &enc,
                &info,
                &w.ct,
                &w.contacts_hash,
            )
            .map_err(|_| Error::Decrypt)?
        }
        WrapKem::XWing => {
            let enc = <XWing as hpke::Kem>::EncappedKey::from_bytes(&w.enc)
                .map_err(|_| Error::Decrypt)?;
            hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, XWing>(
                &OpModeR::Base,
                &device.hybrid_private()?,
                &enc,
                &info,
                &w.ct,
                &w.contacts_hash,
            )
            .map_err(|_| Error::Decrypt)?
        }
    });
    let share = Share::from_bytes(&pt).map_err(|_| Error::Decrypt)?;
    if share.x() != w.share_x {
        return Err(Error::Decrypt);
    }
    Ok(share)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::identity::IdentitySecret;

    fn secrets() -> EscrowSecrets {
        EscrowSecrets {
            identity: IdentitySecret::from_seed(&[7; 32]),
            device: DeviceSecret::from_test_seed_hybrid(&[8; 32]),
        }
    }

    #[test]
    fn split_combine_any_k_of_n_and_not_fewer() {
        let s = SocialSecret::from_bytes([5; 32]);
        let mut rng = crate::rng::os_rng();
        let shares = s.split(2, 3, &mut rng).unwrap();
        assert_eq!(shares.len(), 3);
        assert_eq!(
            shares.iter().map(Share::x).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        for (a, b) in [(0, 1), (0, 2), (1, 2)] {
            let two = [
                Share::from_bytes(shares[a].as_bytes()).unwrap(),
                Share::from_bytes(shares[b].as_bytes()).unwrap(),
            ];
            assert_eq!(SocialSecret::combine(2, &two).unwrap().as_bytes(), &[5; 32]);
        }
        let one = [Share::from_bytes(shares[0].as_bytes()).unwrap()];
        assert!(SocialSecret::combine(2, &one).is_err());
        // The same share twice is one share.
        let dup = [
            Share::from_bytes(shares[0].as_bytes()).unwrap(),
            Share::from_bytes(shares[0].as_bytes()).unwrap(),
        ];
        assert!(SocialSecret::combine(2, &dup).is_err());
        // REVIEW4 T9: two shares with the same x and different y (one of them forged) beside
        // a good pair are an error, never a wrong secret.
        let mut forged = *shares[0].as_bytes();
        forged[1] ^= 0x55;
        let clash = [
            Share::from_bytes(shares[0].as_bytes()).unwrap(),
            Share::from_bytes(shares[1].as_bytes()).unwrap(),
            Share::from_bytes(&forged).unwrap(),
        ];
        assert!(SocialSecret::combine(2, &clash).is_err());
        assert!(s.split(1, 3, &mut rng).is_err());
        assert!(s.split(4, 3, &mut rng).is_err());
        assert!(s.split(2, 17, &mut rng).is_err());
        assert!(Share::from_bytes(&[0; 33]).is_err());
        assert_eq!(format!("{s:?}"), "SocialSecret(***)");
    }

    #[test]
    fn escrow_round_trip_and_refusals() {
        let s = SocialSecret::from_bytes([5; 32]);
        let e = seal_social_escrow(&s, "alice", &secrets()).unwrap();
        assert_eq!(e.len(), SOCIAL_ESCROW_LEN);
        let o = open_social_escrow(&s, "alice", &e).unwrap();
        assert_eq!(o.identity.public_key(), secrets().identity.public_key());
        assert!(matches!(
            open_social_escrow(&SocialSecret::from_bytes([6; 32]), "alice", &e),
            Err(Error::KeystoreDecrypt)
        ));
        assert!(matches!(
            open_social_escrow(&s, "bob", &e),
            Err(Error::KeystoreDecrypt)
        ));
        let mut t = e.clone();
        t[7] = 3;
        assert!(matches!(
            open_social_escrow(&s, "alice", &t),
            Err(Error::UnsupportedSuite { .. })
        ));
        assert_ne!(escrow_hash(&e), escrow_hash(&t));
    }

    #[test]
    fn share_wrap_round_trip_binding_and_signature() {
        let owner = DeviceSecret::from_test_seed_hybrid(&[1; 32]);
        let contact = DeviceSecret::from_test_seed_hybrid(&[2; 32]);
        let other = DeviceSecret::from_test_seed_hybrid(&[3; 32]);
        let s = SocialSecret::from_bytes([5; 32]);
        let mut rng = crate::rng::os_rng();
        let shares = s.split(2, 2, &mut rng).unwrap();
        let ch = [9u8; 32];
        let ctx = ShareContext {
            handle: "alice",
            contacts_hash: &ch,
            request_id: &[0; 16],
        };
        let w = wrap_share(
            &shares[1],
            ctx,
            &Recipient::from_device(&contact),
            &owner,
            &mut rng,
        )
        .unwrap();
        let d = ShareWrap::decode(&w).unwrap();
        assert_eq!(d.kem, WrapKem::XWing);
        d.verify_signature(&owner.signing_public_key()).unwrap();
        assert!(d.verify_signature(&other.signing_public_key()).is_err());
        let got = unwrap_share(&d, ctx, &contact).unwrap();
        assert_eq!(got.as_bytes(), shares[1].as_bytes());
        assert!(unwrap_share(&d, ctx, &other).is_err());
        let ch2 = [8u8; 32];
        let ctx2 = ShareContext {
            contacts_hash: &ch2,
            ..ctx
        };
        assert!(unwrap_share(&d, ctx2, &contact).is_err());
        let mut t = w.clone();
        let n = t.len();
        t[n - 70] ^= 1;
        assert!(
            ShareWrap::decode(&t)
                .unwrap()
                .verify_signature(&owner.signing_public_key())
                .is_err()
        );
    }
}

//! Provisional recipients (PROTOCOL.md §15, issue 17 §1): sealing for a patient who has not
//! registered yet, and the claim that binds the provisional recipient to the patient's identity.
//!
//! The lab's device makes a provisional key set (an Ed25519 signing key, an X25519 and an X-Wing
//! key: a "provisional device" of suite 3), a **claim secret** `C` (128 bits, printed for the
//! patient as a [`ClaimCode`]) and a **server share** `S` (32 random bytes). The provisional
//! secrets are sealed under `K = H("serment/v1/provisional-escrow-key" 0x00 || C || S ||
//! provisional_id)` (AES-256-GCM, [`seal_escrow`]); the escrow and `S` go to the server, `C` only
//! to the patient. The server releases `S` and the escrow only after an emailed one-time code is
//! proven, so neither the server alone (no `C`) nor a mailbox thief (no `C`) nor a receipt thief
//! (no `S`) can open the escrow; only a server colluding with a receipt thief can
//! (THREAT_MODEL.md, "Provisional recipients").
//!
//! Two log entries (PROTOCOL.md §11.3), both with the subject [`crate::log::entry::Subject::Provisional`]:
//!
//! ```text
//! ProvisionalRecord (kind 10) {
//!   magic "SRMQ", format_version u16 = 1, suite_id u16 = 3,
//!   signing_key [32], encryption_key [32], hybrid_key [1216],  // the provisional device's keys
//!   contact_tag [32],      // H("serment/v1/provisional-contact" 0x00 || contact_key || contact)
//!   lab_device_key [32],   // Ed25519 key of the lab's device that made it
//!   created_at u64,
//!   signature [64]         // lab device over sig_input("log-provisional", all bytes before it)
//! }                        // 1424 bytes
//! Claim (kind 11) {
//!   magic "SRMJ", format_version u16 = 1, suite_id u16 = 1,
//!   provisional_key [32],  // the provisional signing key claimed
//!   handle str8,           // the claimant's handle
//!   device_key [32],       // Ed25519 key of the claimant's device
//!   at u64,
//!   sig_provisional [64], sig_device [64]   // both over sig_input("log-claim", bytes before them)
//! }
//! ```
//!
//! The contact tag carries no personal data: it is keyed with a secret of the lab's identity
//! ([`contact_key`]), so nobody without that key can test an address or INS against it.

use core::fmt;

use data_encoding::BASE32_NOPAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{
    DeviceSecret, HYBRID_PUBLIC_KEY_LEN, HybridPublicKey, MAX_HANDLE_LEN, validate_handle,
};
use crate::ids::{KeyId, KeyKind, labeled_hash};
use crate::sign::{self, Context};
use crate::wrap::Recipient;
use crate::{FORMAT_VERSION, HYBRID_SUITE_ID, RECORD_SUITE_ID};

/// Bytes of the claim secret `C`: 128 bits.
pub const CLAIM_SECRET_LEN: usize = 16;
/// Bytes of the claim code's check: 32 bits, so a mistyped code is caught before any request.
pub const CLAIM_CHECK_LEN: usize = 4;
/// Bytes of the server share `S`.
pub const SERVER_SHARE_LEN: usize = 32;
/// Encoded length of a provisional record: 1424 bytes.
pub const RECORD_LEN: usize = 4 + 2 + 2 + 32 + 32 + HYBRID_PUBLIC_KEY_LEN + 32 + 32 + 8 + 64;
/// The escrow's plaintext: signing seed, X25519 secret, X-Wing seed.
const ESCROW_PLAIN_LEN: usize = 32 + 32 + 32;
/// Encoded length of an escrow: 4 + 2 + 2 + 32 + 96 + 16 = 152 bytes.
pub const ESCROW_LEN: usize = 4 + 2 + 2 + 32 + ESCROW_PLAIN_LEN + 16;

/// The claim secret `C`, as printed on the receipt: 16 bytes and a 4-byte check, in RFC 4648
/// base32 (no padding), 32 characters in 8 groups of 4 (`XXXX-XXXX-…`). Zeroized on drop; its
/// `Debug` shows nothing.
pub struct ClaimCode {
    secret: Zeroizing<[u8; CLAIM_SECRET_LEN]>,
}

impl fmt::Debug for ClaimCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClaimCode(<redacted>)")
    }
}

fn claim_check(secret: &[u8]) -> [u8; CLAIM_CHECK_LEN] {
    let h = labeled_hash("claim-code-check", &[secret]);
    let mut out = [0u8; CLAIM_CHECK_LEN];
    out.copy_from_slice(&h[..CLAIM_CHECK_LEN]);
    out
}

impl ClaimCode {
    /// A fresh claim secret from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`].
    pub fn generate() -> Result<ClaimCode> {
        let mut secret = Zeroizing::new([0u8; CLAIM_SECRET_LEN]);
        crate::rng::fill(secret.as_mut())?;
        Ok(ClaimCode { secret })
    }

    /// The claim code of a known secret (test vectors).
    pub fn from_secret(secret: [u8; CLAIM_SECRET_LEN]) -> ClaimCode {
        ClaimCode {
            secret: Zeroizing::new(secret),
        }
    }

    /// Parses a code as printed: case, spaces and dashes are ignored.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a code of the wrong length or alphabet, or whose check does
    /// not match (a typo).
    pub fn parse(s: &str) -> Result<ClaimCode> {
        let bad = |reason| Error::InvalidField {
            field: "claim code",
            reason,
        };
        let clean: Zeroizing<String> = Zeroizing::new(
            s.chars()
                .filter(|c| !matches!(c, '-' | ' '))
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        if clean.len() != 32 {
            return Err(bad("expected 32 letters and digits (8 groups of 4)"));
        }
        let raw = Zeroizing::new(
            BASE32_NOPAD
                .decode(clean.as_bytes())
                .map_err(|_| bad("only the letters A-Z and the digits 2-7 appear in a code"))?,
        );
        let (secret, check) = raw.split_at(CLAIM_SECRET_LEN);
        if !bool::from(claim_check(secret).ct_eq(check)) {
            return Err(bad("the code does not check out: a character is mistyped"));
        }
        let mut out = Zeroizing::new([0u8; CLAIM_SECRET_LEN]);
        out.copy_from_slice(secret);
        Ok(ClaimCode { secret: out })
    }

    /// The code as printed: `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX`.
    pub fn display(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(CLAIM_SECRET_LEN + CLAIM_CHECK_LEN));
        raw.extend_from_slice(self.secret.as_ref());
        raw.extend_from_slice(&claim_check(self.secret.as_ref()));
        let enc = Zeroizing::new(BASE32_NOPAD.encode(&raw));
        let mut out = Zeroizing::new(String::with_capacity(39));
        for (i, c) in enc.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// The id under which the server finds the provisional recipient of this code:
    /// `H("serment/v1/provisional-lookup" 0x00 || C)`. It reveals nothing of `C` (a hash of
    /// 128 random bits) and differs from every key derived from `C`.
    pub fn lookup(&self) -> [u8; 32] {
        labeled_hash("provisional-lookup", &[self.secret.as_ref()])
    }

    /// The secret bytes.
    pub fn secret(&self) -> &[u8; CLAIM_SECRET_LEN] {
        &self.secret
    }
}

/// A contact as the lab names it: `email:ADDRESS[,ins:INS]` (issue 17).
#[derive(Clone, PartialEq, Eq)]
pub struct Contact {
    /// The email address, lowercased.
    pub email: String,
    /// The INS (French national health identifier: 13 digits and a 2-digit key), if given.
    pub ins: Option<String>,
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Contact(<personal data>)")
    }
}

impl Contact {
    /// Parses `email:ADDRESS[,ins:INS]`. The address is trimmed and lowercased; the INS may be
    /// written with spaces, which are dropped.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for another shape, an address without exactly one `@` or with
    /// spaces or control characters, or an INS that is not 15 digits.
    pub fn parse(s: &str) -> Result<Contact> {
        let bad = |reason| Error::InvalidField {
            field: "contact",
            reason,
        };
        let mut parts = s.split(',');
        let email = parts
            .next()
            .and_then(|p| p.trim().strip_prefix("email:"))
            .ok_or(bad("expected email:ADDRESS[,ins:INS]"))?
            .trim()
            .to_ascii_lowercase();
        let ok = email.len() <= 254
            && email.matches('@').count() == 1
            && !email.starts_with('@')
            && !email.ends_with('@')
            && email.chars().all(|c| c.is_ascii_graphic());
        if !ok {
            return Err(bad("not an email address"));
        }
        let ins = match parts.next() {
            None => None,
            Some(p) => {
                let v: String = p
                    .trim()
                    .strip_prefix("ins:")
                    .ok_or(bad("expected email:ADDRESS[,ins:INS]"))?
                    .chars()
                    .filter(|c| *c != ' ')
                    .collect();
                if v.len() != 15 || !v.chars().all(|c| c.is_ascii_digit()) {
                    return Err(bad("an INS is 15 digits (13 and a 2-digit key)"));
                }
                Some(v)
            }
        };
        if parts.next().is_some() {
            return Err(bad("expected email:ADDRESS[,ins:INS]"));
        }
        Ok(Contact { email, ins })
    }

    /// The normalised form that is tagged: `email:ADDRESS` or `email:ADDRESS,ins:INS`.
    pub fn normalised(&self) -> String {
        match &self.ins {
            None => format!("email:{}", self.email),
            Some(i) => format!("email:{},ins:{i}", self.email),
        }
    }

    /// The contact's tag under a lab identity's contact key:
    /// `H("serment/v1/provisional-contact" 0x00 || contact_key || normalised)`.
    pub fn tag(&self, contact_key: &[u8; 32]) -> [u8; 32] {
        labeled_hash(
            "provisional-contact",
            &[contact_key, self.normalised().as_bytes()],
        )
    }
}

/// The lab identity's key for contact tags: `H("serment/v1/provisional-contact-key" 0x00 ||
/// identity_seed)`. Every device of the identity holds the seed (PROTOCOL.md §4.1), so all of
/// them tag a contact alike.
pub fn contact_key(identity_seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(labeled_hash("provisional-contact-key", &[identity_seed]))
}

/// A provisional record (payload of kind 10), its signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionalRecord {
    /// The provisional signing key (Ed25519).
    pub signing_key: [u8; 32],
    /// The provisional X25519 key.
    pub encryption_key: [u8; 32],
    /// The provisional X-Wing key: wraps to a provisional recipient are suite 3.
    pub hybrid_key: HybridPublicKey,
    /// The contact's tag ([`Contact::tag`]).
    pub contact_tag: [u8; 32],
    /// The Ed25519 key of the lab device that made and signed it.
    pub lab_device_key: [u8; 32],
    /// When, seconds since the Unix epoch (the lab's clock).
    pub created_at: u64,
}

impl ProvisionalRecord {
    const MAGIC: &'static [u8; 4] = b"SRMQ";

    /// The provisional recipient's id: `KeyId(0x02, signing_key)`, the `recipient` of its wraps.
    pub fn id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.signing_key)
    }

    /// The lab device's id.
    pub fn lab_device(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.lab_device_key)
    }

    /// The recipient a wrap to this provisional recipient is sealed to (X-Wing, suite 3).
    pub fn recipient(&self) -> Recipient {
        Recipient {
            device_id: self.id(),
            encryption_key: self.encryption_key,
            hybrid_key: Some(self.hybrid_key.clone()),
        }
    }

    /// Builds and signs the record of `provisional` for `contact_tag` with the lab's device.
    ///
    /// # Errors
    /// [`Error::InvalidField`] if `provisional` has no hybrid key.
    pub fn sign(
        provisional: &DeviceSecret,
        contact_tag: &[u8; 32],
        lab: &DeviceSecret,
        created_at: u64,
    ) -> Result<Vec<u8>> {
        let hybrid = provisional.hybrid_public_key().ok_or(Error::InvalidField {
            field: "provisional recipient",
            reason: "a provisional recipient has an X-Wing key",
        })?;
        let mut w = Writer::with_capacity(RECORD_LEN);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(HYBRID_SUITE_ID)
            .bytes(&provisional.signing_public_key())
            .bytes(&provisional.encryption_public_key())
            .bytes(hybrid.as_bytes())
            .bytes(contact_tag)
            .bytes(&lab.signing_public_key())
            .u64(created_at);
        let s = sign::sign(lab.signing_key(), Context::LogProvisional, w.as_slice());
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes a record strictly and verifies the lab device's signature. Whether that device
    /// belongs to the lab's identity is the caller's check (against its key history).
    ///
    /// # Errors
    /// Format errors, [`Error::UnsupportedSuite`] for a suite other than 3,
    /// [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<ProvisionalRecord> {
        const WHAT: &str = "provisional record";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        let version = r.u16()?;
        let suite = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        if suite != HYBRID_SUITE_ID {
            return Err(Error::UnsupportedSuite { what: WHAT, suite });
        }
        let signing_key: [u8; 32] = r.array()?;
        let encryption_key: [u8; 32] = r.array()?;
        let hybrid_key = HybridPublicKey::from_bytes(r.take(HYBRID_PUBLIC_KEY_LEN)?)?;
        let contact_tag: [u8; 32] = r.array()?;
        let lab_device_key: [u8; 32] = r.array()?;
        let created_at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let sig: [u8; 64] = r.array()?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        sign::verify(&lab_device_key, Context::LogProvisional, signed, &sig, WHAT)?;
        Ok(ProvisionalRecord {
            signing_key,
            encryption_key,
            hybrid_key,
            contact_tag,
            lab_device_key,
            created_at,
        })
    }
}

/// A claim (payload of kind 11), both signatures verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The provisional signing key claimed.
    pub provisional_key: [u8; 32],
    /// The claimant's handle.
    pub handle: String,
    /// The Ed25519 key of the claimant's device.
    pub device_key: [u8; 32],
    /// When, seconds since the Unix epoch (the claimant's clock).
    pub at: u64,
}

impl Claim {
    const MAGIC: &'static [u8; 4] = b"SRMJ";

    /// The provisional recipient's id.
    pub fn provisional_id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.provisional_key)
    }

    /// The claimant device's id.
    pub fn device_id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.device_key)
    }

    /// Builds a claim signed by the provisional key (proof that `C` and `S` were held) and by
    /// the claimant's device.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an invalid handle.
    pub fn sign(
        provisional: &DeviceSecret,
        handle: &str,
        device: &DeviceSecret,
        at: u64,
    ) -> Result<Vec<u8>> {
        validate_handle(handle)?;
        let mut w = Writer::with_capacity(4 + 4 + 32 + 65 + 32 + 8 + 128);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .bytes(&provisional.signing_public_key())
            .str8("handle", handle)?
            .bytes(&device.signing_public_key())
            .u64(at);
        let sp = sign::sign(provisional.signing_key(), Context::LogClaim, w.as_slice());
        let sd = sign::sign(device.signing_key(), Context::LogClaim, w.as_slice());
        w.bytes(&sp).bytes(&sd);
        Ok(w.into_vec())
    }

    /// Decodes a claim strictly and verifies both signatures. Whether the device is a current
    /// device of `handle` is the caller's check.
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<Claim> {
        const WHAT: &str = "claim";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let provisional_key: [u8; 32] = r.array()?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let device_key: [u8; 32] = r.array()?;
        let at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let sp: [u8; 64] = r.array()?;
        let sd: [u8; 64] = r.array()?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        sign::verify(&provisional_key, Context::LogClaim, signed, &sp, WHAT)?;
        sign::verify(&device_key, Context::LogClaim, signed, &sd, WHAT)?;
        Ok(Claim {
            provisional_key,
            handle,
            device_key,
            at,
        })
    }
}

const ESCROW_MAGIC: &[u8; 4] = b"SRMF";

fn escrow_key(code: &ClaimCode, share: &[u8; SERVER_SHARE_LEN], id: &KeyId) -> Result<LessSafeKey> {
    let k = Zeroizing::new(labeled_hash(
        "provisional-escrow-key",
        &[code.secret(), share, id.as_bytes()],
    ));
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, k.as_ref()).map_err(|_| Error::Decrypt)?,
    ))
}

/// Seals the provisional secrets under `K(C, S, provisional_id)`:
///
/// ```text
/// ProvisionalEscrow { magic "SRMF", format_version u16 = 1, suite_id u16 = 3,
///                     provisional_id [32], sealed [112] }
/// sealed = AES-256-GCM(K, nonce = 12 zero bytes, aad = the 40 bytes before it,
///                      signing_seed [32] || x25519_secret [32] || xwing_seed [32])
/// K      = H("serment/v1/provisional-escrow-key" 0x00 || C || S || provisional_id)
/// ```
///
/// `C` and `S` are fresh for every provisional recipient, so `K` seals exactly one message and
/// the fixed nonce is unique for it.
///
/// # Errors
/// [`Error::InvalidField`] if `provisional` has no hybrid key.
// ring (native) takes the `Vec` itself (`Extend`), the wasm AES-GCM shim a slice it auto-derefs
// to: the explicit `&mut *buf` serves both.
#[allow(clippy::explicit_auto_deref)]
pub fn seal_escrow(
    provisional: &DeviceSecret,
    code: &ClaimCode,
    share: &[u8; SERVER_SHARE_LEN],
) -> Result<Vec<u8>> {
    let hybrid = provisional.hybrid_secret().ok_or(Error::InvalidField {
        field: "provisional recipient",
        reason: "a provisional recipient has an X-Wing key",
    })?;
    let id = provisional.id();
    let mut w = Writer::with_capacity(ESCROW_LEN);
    w.bytes(ESCROW_MAGIC)
        .u16(FORMAT_VERSION)
        .u16(HYBRID_SUITE_ID)
        .bytes(id.as_bytes());
    let aad = w.as_slice().to_vec();
    let mut buf = Zeroizing::new(Vec::with_capacity(ESCROW_PLAIN_LEN + 16));
    buf.extend_from_slice(provisional.signing_seed().as_ref());
    buf.extend_from_slice(provisional.encryption_secret().as_ref());
    buf.extend_from_slice(hybrid.as_ref());
    escrow_key(code, share, &id)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(&aad),
            &mut *buf,
        )
        .map_err(|_| Error::Decrypt)?;
    w.bytes(&buf);
    Ok(w.into_vec())
}

/// Opens an escrow with the claim code and the server's share and rebuilds the provisional
/// device's keys; checks they are the keys of the escrow's `provisional_id`.
///
/// # Errors
/// Format errors; [`Error::Decrypt`] for a wrong code or share, or a changed escrow (one
/// opaque error); [`Error::ContextMismatch`] if the keys inside are not the named recipient's.
pub fn open_escrow(
    escrow: &[u8],
    code: &ClaimCode,
    share: &[u8; SERVER_SHARE_LEN],
) -> Result<DeviceSecret> {
    const WHAT: &str = "provisional escrow";
    let mut r = Reader::new(escrow, WHAT);
    r.magic(ESCROW_MAGIC)?;
    let version = r.u16()?;
    let suite = r.u16()?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            what: WHAT,
            version,
        });
    }
    if suite != HYBRID_SUITE_ID {
        return Err(Error::UnsupportedSuite { what: WHAT, suite });
    }
    let id = KeyId::from_bytes(r.array()?);
    let aad = escrow.get(..40).ok_or(Error::Truncated { what: WHAT })?;
    let sealed = r.take(ESCROW_PLAIN_LEN + 16)?;
    r.finish()?;
    let mut buf = Zeroizing::new(sealed.to_vec());
    let plain = escrow_key(code, share, &id)?
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| Error::Decrypt)?;
    let field = |i: usize| -> Result<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(plain.get(i * 32..(i + 1) * 32).ok_or(Error::Decrypt)?);
        Ok(out)
    };
    let (sk, ek, hk) = (field(0)?, field(1)?, field(2)?);
    let device = DeviceSecret::from_secrets(&sk, &ek)?.with_hybrid_secret(&hk)?;
    if device.id() != id {
        return Err(Error::ContextMismatch(
            "the escrow's keys are not those of the provisional recipient it names",
        ));
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn claim_code_round_trips_and_catches_typos() {
        let c = ClaimCode::from_secret([7; 16]);
        let s = c.display();
        assert_eq!(s.len(), 39);
        assert_eq!(s.matches('-').count(), 7);
        let back = ClaimCode::parse(&s.to_lowercase()).unwrap();
        assert_eq!(back.secret(), c.secret());
        // One character changed: the check refuses it.
        let mut typo: Vec<char> = s.chars().collect();
        typo[5] = if typo[5] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert!(ClaimCode::parse(&typo).is_err());
        assert!(ClaimCode::parse("ABCD").is_err());
        assert_eq!(format!("{c:?}"), "ClaimCode(<redacted>)");
    }

    #[test]
    fn contact_parsing_normalises() {
        let c = Contact::parse("email: Ana@Example.ORG ,ins:1 85 05 78 006 084 91").unwrap();
        assert_eq!(c.normalised(), "email:ana@example.org,ins:185057800608491");
        assert!(Contact::parse("ana@example.org").is_err());
        assert!(Contact::parse("email:ana").is_err());
        assert!(Contact::parse("email:a@b,ins:12").is_err());
        let k = [1u8; 32];
        assert_eq!(
            Contact::parse("email:ana@example.org").unwrap().tag(&k),
            Contact::parse("email:ANA@example.org").unwrap().tag(&k)
        );
        assert_ne!(
            Contact::parse("email:ana@example.org").unwrap().tag(&k),
            Contact::parse("email:ana@example.org")
                .unwrap()
                .tag(&[2; 32])
        );
    }

    #[test]
    fn escrow_needs_both_the_code_and_the_share() {
        let p = DeviceSecret::generate();
        let code = ClaimCode::from_secret([3; 16]);
        let share = [4u8; 32];
        let e = seal_escrow(&p, &code, &share).unwrap();
        assert_eq!(e.len(), ESCROW_LEN);
        let back = open_escrow(&e, &code, &share).unwrap();
        assert_eq!(back.id(), p.id());
        assert_eq!(back.hybrid_public_key(), p.hybrid_public_key());
        assert!(matches!(
            open_escrow(&e, &ClaimCode::from_secret([5; 16]), &share),
            Err(Error::Decrypt)
        ));
        assert!(matches!(
            open_escrow(&e, &code, &[0; 32]),
            Err(Error::Decrypt)
        ));
        let mut bad = e.clone();
        bad[10] ^= 1;
        assert!(open_escrow(&bad, &code, &share).is_err());
    }

    #[test]
    fn record_and_claim_verify_and_refuse_changes() {
        let lab = DeviceSecret::generate();
        let p = DeviceSecret::generate();
        let rec = ProvisionalRecord::sign(&p, &[9; 32], &lab, 1_800_000_000).unwrap();
        assert_eq!(rec.len(), RECORD_LEN);
        let r = ProvisionalRecord::decode_verified(&rec).unwrap();
        assert_eq!(r.id(), p.id());
        assert_eq!(r.lab_device(), lab.id());
        let mut bad = rec.clone();
        bad[100] ^= 1;
        assert!(ProvisionalRecord::decode_verified(&bad).is_err());

        let dev = DeviceSecret::generate();
        let c = Claim::sign(&p, "ana", &dev, 1_800_000_100).unwrap();
        let d = Claim::decode_verified(&c).unwrap();
        assert_eq!(d.provisional_id(), p.id());
        assert_eq!(d.device_id(), dev.id());
        // A claim signed by another key than the provisional one is refused.
        let forged = Claim::sign(&DeviceSecret::generate(), "ana", &dev, 1).unwrap();
        let mut spliced = forged.clone();
        spliced[8..40].copy_from_slice(&p.signing_public_key());
        assert!(Claim::decode_verified(&spliced).is_err());
    }
}

/// A provisional recipient after replaying its chain (PROTOCOL.md §15.3): its record and, once
/// claimed, the claim.
#[derive(Debug, Clone)]
pub struct ProvisionalState {
    /// The record (the chain's first entry).
    pub record: ProvisionalRecord,
    /// Its log index.
    pub record_index: u64,
    /// The claim and its log index, if claimed.
    pub claim: Option<(Claim, u64)>,
}

/// Replays a provisional recipient's chain (`chain` already checked whole by
/// [`crate::log::history::check_chain`] against [`crate::log::entry::Subject::Provisional`]):
/// the first entry is its record (kind 10); at most one claim (kind 11) follows, and it must be
/// signed by the record's provisional key. Anything else is refused.
///
/// # Errors
/// [`Error::History`] for an empty chain, a chain that does not start with the record, a
/// second record, a claim by another key or a second claim.
pub fn replay_provisional(chain: &[crate::log::history::ChainEntry]) -> Result<ProvisionalState> {
    use crate::log::entry::Payload;
    let broken = |reason| Error::History { reason };
    let (first, rest) = chain
        .split_first()
        .ok_or(broken("a provisional recipient's chain is empty"))?;
    let Payload::Provisional(record) = &first.entry.payload else {
        return Err(broken(
            "a provisional recipient's chain starts with its record",
        ));
    };
    let mut state = ProvisionalState {
        record: record.clone(),
        record_index: first.index,
        claim: None,
    };
    for e in rest {
        match &e.entry.payload {
            Payload::Claim(c) => {
                if c.provisional_key != state.record.signing_key {
                    return Err(broken(
                        "a claim not signed by the provisional recipient's own key",
                    ));
                }
                if state.claim.is_some() {
                    return Err(broken("a second claim of a provisional recipient"));
                }
                state.claim = Some((c.clone(), e.index));
            }
            _ => {
                return Err(broken(
                    "a provisional recipient's chain holds only its record and one claim",
                ));
            }
        }
    }
    Ok(state)
}

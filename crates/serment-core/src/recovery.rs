//! Recovery when every device is lost (PROTOCOL.md §4.2, issue 17 §2): the recovery code and the
//! escrow it opens.
//!
//! A **recovery code** is 128 random bits plus a 32-bit check, written as 32 Crockford base32
//! characters in 8 groups of 4 (`7K3M-Q9ZX-…`): the check catches a mistyped or misread group
//! before any network or Argon2id work (it is not a secret and adds no strength).
//!
//! The **escrow** holds the identity key and the secrets of the identity's *recovery device*,
//! sealed with AES-256-GCM under an Argon2id key derived from the code's 16 random bytes, with
//! the same parameter floor as the keystore (§9, [`KdfParams::check`]): a server that serves an
//! escrow with weakened parameters is refused before any work.
//!
//! ```text
//! RecoveryEscrow {
//!   magic [4] = "SRMU", format_version u16 = 1, suite_id u16 = 1,
//!   m_cost_kib u32, t_cost u32, p_cost u32, salt [16], nonce [12],   // the 48-byte header
//!   ciphertext [130 + 16]          // AES-256-GCM of the plaintext below
//! }
//! associated data = header || "serment/v1/recovery-escrow" || 0x00 || u8 len(handle) || handle
//! plaintext = u16 1 || identity_seed [32] || device_signing_seed [32] || device_x25519 [32]
//!             || device_xwing_seed [32]
//! ```
//!
//! The handle is authenticated, so an escrow moved to another handle does not open; an escrow
//! of another identity under the right handle opens only with that identity's code, and the
//! client then checks the identity key it holds against the handle's proven key history.

use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::aead::{Aad, Nonce};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{DeviceSecret, IdentitySecret};
use crate::keystore::{KdfParams, aead_key, derive_raw};
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

const MAGIC: &[u8; 4] = b"SRMU";
/// The escrow header's length, in bytes.
pub const ESCROW_HEADER_LEN: usize = 4 + 2 + 2 + 4 + 4 + 4 + 16 + 12;
const PLAINTEXT_VERSION: u16 = 1;
const PLAINTEXT_LEN: usize = 2 + 32 * 4;
/// An escrow's exact length, in bytes.
pub const ESCROW_LEN: usize = ESCROW_HEADER_LEN + PLAINTEXT_LEN + 16;
const AAD_LABEL: &[u8] = b"serment/v1/recovery-escrow\0";
const CHECK_LABEL: &[u8] = b"serment/v1/recovery-code\0";
/// Crockford's base32 alphabet (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A recovery code: 16 random bytes (zeroized on drop). `Debug` never shows it.
pub struct RecoveryCode(Zeroizing<[u8; 16]>);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(***)")
    }
}

fn check_bytes(secret: &[u8; 16]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(CHECK_LABEL);
    h.update(secret);
    let d: [u8; 32] = h.finalize().into();
    d.first_chunk::<4>().copied().unwrap_or_default()
}

fn symbol_value(c: char) -> Option<u8> {
    let c = c.to_ascii_uppercase();
    let c = match c {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    ALPHABET
        .iter()
        .position(|&a| char::from(a) == c)
        .map(|p| p as u8)
}

impl RecoveryCode {
    /// A fresh code from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`].
    pub fn generate() -> Result<RecoveryCode> {
        let mut b = Zeroizing::new([0u8; 16]);
        crate::rng::fill(b.as_mut())?;
        Ok(RecoveryCode(b))
    }

    /// The code of fixed bytes: for test vectors only.
    #[doc(hidden)]
    pub fn from_bytes(bytes: [u8; 16]) -> RecoveryCode {
        RecoveryCode(Zeroizing::new(bytes))
    }

    /// The 16 secret bytes (the Argon2id input).
    pub fn secret(&self) -> &[u8; 16] {
        &self.0
    }

    /// The code as shown: 32 Crockford base32 characters (the 16 bytes and a 4-byte check, 160
    /// bits) in 8 groups of 4 joined by `-`.
    pub fn display(&self) -> Zeroizing<String> {
        let mut all = Zeroizing::new(Vec::with_capacity(20));
        all.extend_from_slice(self.0.as_ref());
        all.extend_from_slice(&check_bytes(&self.0));
        let mut out = Zeroizing::new(String::with_capacity(39));
        // 160 bits, 5 at a time, most significant first.
        for i in 0..32usize {
            let bit = i * 5;
            let mut v: u16 = 0;
            for j in 0..5 {
                let b = bit + j;
                let byte = all.get(b / 8).copied().unwrap_or(0);
                v = (v << 1) | u16::from((byte >> (7 - (b % 8))) & 1);
            }
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(
                ALPHABET.get(usize::from(v)).copied().unwrap_or(b'0'),
            ));
        }
        out
    }

    /// Parses a code as [`RecoveryCode::display`] writes it: case-insensitive, `-` and spaces
    /// ignored, `O` read as `0` and `I`/`L` as `1` (Crockford).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for another length, a character outside the alphabet, or a check
    /// that does not match (a typo).
    pub fn parse(s: &str) -> Result<RecoveryCode> {
        let bad = |reason| Error::InvalidField {
            field: "recovery code",
            reason,
        };
        let mut all = Zeroizing::new([0u8; 20]);
        let mut n = 0usize;
        for c in s.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let v = symbol_value(c).ok_or(bad("a character outside the code's alphabet"))?;
            if n >= 32 {
                return Err(bad("expected 32 characters (8 groups of 4)"));
            }
            for j in 0..5 {
                let b = n * 5 + j;
                if (v >> (4 - j)) & 1 == 1
                    && let Some(byte) = all.get_mut(b / 8)
                {
                    *byte |= 1 << (7 - (b % 8));
                }
            }
            n += 1;
        }
        if n != 32 {
            return Err(bad("expected 32 characters (8 groups of 4)"));
        }
        let (head, tail) = all
            .split_first_chunk::<16>()
            .ok_or(bad("expected 32 characters (8 groups of 4)"))?;
        let secret = Zeroizing::new(*head);
        let check = check_bytes(&secret);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&check[..], tail)) {
            return Err(bad(
                "the check does not match: a character is mistyped or a group is missing",
            ));
        }
        Ok(RecoveryCode(secret))
    }
}

/// What an escrow holds: the identity key and the recovery device's keys.
pub struct EscrowSecrets {
    /// The identity key.
    pub identity: IdentitySecret,
    /// The recovery device (it has an X-Wing key).
    pub device: DeviceSecret,
}

impl fmt::Debug for EscrowSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EscrowSecrets(***)")
    }
}

fn aad(header: &[u8], handle: &str) -> Result<Vec<u8>> {
    crate::identity::validate_handle(handle)?;
    let mut w = Writer::with_capacity(header.len() + AAD_LABEL.len() + 65);
    w.bytes(header).bytes(AAD_LABEL).str8("handle", handle)?;
    Ok(w.into_vec())
}

/// Seals `secrets` for `handle` under `code` with fresh salt and nonce.
///
/// # Errors
/// [`Error::WeakKdf`] for parameters outside the bounds; [`Error::InvalidField`] for a device
/// without an X-Wing key or a bad handle; [`Error::Rng`].
pub fn seal_escrow(
    code: &RecoveryCode,
    handle: &str,
    secrets: &EscrowSecrets,
    params: KdfParams,
) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    crate::rng::fill(&mut salt)?;
    crate::rng::fill(&mut nonce)?;
    seal_escrow_with(code, handle, secrets, params, salt, nonce)
}

/// [`seal_escrow`] with a fixed salt and nonce: for test vectors only.
///
/// # Errors
/// As [`seal_escrow`].
#[doc(hidden)]
pub fn seal_escrow_with(
    code: &RecoveryCode,
    handle: &str,
    secrets: &EscrowSecrets,
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
) -> Result<Vec<u8>> {
    let mut h = Writer::with_capacity(ESCROW_LEN);
    h.bytes(MAGIC)
        .u16(FORMAT_VERSION)
        .u16(RECORD_SUITE_ID)
        .u32(params.m_cost_kib)
        .u32(params.t_cost)
        .u32(params.p_cost)
        .bytes(&salt)
        .bytes(&nonce);
    let header = h.into_vec();
    let key = aead_key(&*derive_raw(code.secret(), &salt, params)?)?;
    let body = encode_plaintext(secrets)?;
    let mut sealed = body.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&aad(&header, handle)?),
        &mut sealed,
    )
    .map_err(|_| Error::KeystoreDecrypt)?;
    let mut out = header;
    out.extend_from_slice(&sealed);
    sealed.iter_mut().for_each(|b| *b = 0);
    Ok(out)
}

/// The KDF parameters an escrow names, checked against the floor and the caps, without any
/// Argon2id work.
///
/// # Errors
/// Format errors ([`Error::BadMagic`], [`Error::UnsupportedVersion`],
/// [`Error::UnsupportedSuite`], [`Error::Truncated`], [`Error::TrailingBytes`]);
/// [`Error::WeakKdf`].
pub fn escrow_params(escrow: &[u8]) -> Result<KdfParams> {
    parse(escrow).map(|(p, ..)| p)
}

type Parsed<'a> = (KdfParams, [u8; 16], [u8; 12], &'a [u8], &'a [u8]);

fn parse(escrow: &[u8]) -> Result<Parsed<'_>> {
    const WHAT: &str = "recovery escrow";
    let mut r = Reader::new(escrow, WHAT);
    r.magic(MAGIC)?;
    crate::check_version(WHAT, r.u16()?, r.u16()?)?;
    let p = KdfParams {
        m_cost_kib: r.u32()?,
        t_cost: r.u32()?,
        p_cost: r.u32()?,
    };
    let salt: [u8; 16] = r.array()?;
    let nonce: [u8; 12] = r.array()?;
    let ct = r.take(PLAINTEXT_LEN + 16)?;
    r.finish()?;
    p.check()?;
    let header = escrow
        .get(..ESCROW_HEADER_LEN)
        .ok_or(Error::Truncated { what: WHAT })?;
    Ok((p, salt, nonce, header, ct))
}

/// Opens an escrow sealed for `handle` with `code`: the parameters are checked before any
/// work.
///
/// # Errors
/// As [`escrow_params`]; [`Error::KeystoreDecrypt`] for a wrong code, another handle, or any
/// tampering (one uniform error).
pub fn open_escrow(code: &RecoveryCode, handle: &str, escrow: &[u8]) -> Result<EscrowSecrets> {
    let (params, salt, nonce, header, ct) = parse(escrow)?;
    let key = aead_key(&*derive_raw(code.secret(), &salt, params)?)?;
    let mut body = Zeroizing::new(ct.to_vec());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&aad(header, handle)?),
            body.as_mut_slice(),
        )
        .map_err(|_| Error::KeystoreDecrypt)?
        .len();
    body.truncate(len);
    decode_plaintext(&body)
}

/// The escrow plaintext (PROTOCOL.md §4.2), shared with the social recovery escrow (§4.3):
/// `u16 1 || identity_seed [32] || device_signing_seed [32] || device_x25519 [32] ||
/// device_xwing_seed [32]`, 130 bytes.
///
/// # Errors
/// [`Error::InvalidField`] for a device without an X-Wing key.
pub(crate) fn encode_plaintext(secrets: &EscrowSecrets) -> Result<Zeroizing<Vec<u8>>> {
    let hybrid = secrets.device.hybrid_secret().ok_or(Error::InvalidField {
        field: "recovery device",
        reason: "it must have an X-Wing key",
    })?;
    let mut body = Zeroizing::new(Vec::with_capacity(PLAINTEXT_LEN + 16));
    body.extend_from_slice(&PLAINTEXT_VERSION.to_be_bytes());
    body.extend_from_slice(secrets.identity.to_seed().as_ref());
    body.extend_from_slice(secrets.device.signing_seed().as_ref());
    body.extend_from_slice(secrets.device.encryption_secret().as_ref());
    body.extend_from_slice(hybrid.as_ref());
    Ok(body)
}

/// The length of [`encode_plaintext`]'s output, in bytes.
pub(crate) const ESCROW_PLAINTEXT_LEN: usize = PLAINTEXT_LEN;

/// Decodes an escrow plaintext (after the AEAD opened it): any malformation is the uniform
/// [`Error::KeystoreDecrypt`].
pub(crate) fn decode_plaintext(body: &[u8]) -> Result<EscrowSecrets> {
    let corrupt = |_| Error::KeystoreDecrypt;
    let mut r = Reader::new(body, "recovery escrow plaintext");
    if r.u16().map_err(corrupt)? != PLAINTEXT_VERSION {
        return Err(Error::UnsupportedVersion {
            what: "recovery escrow plaintext",
            version: 0,
        });
    }
    let id = Zeroizing::new(r.array::<32>().map_err(corrupt)?);
    let sign = Zeroizing::new(r.array::<32>().map_err(corrupt)?);
    let enc = Zeroizing::new(r.array::<32>().map_err(corrupt)?);
    let hyb = Zeroizing::new(r.array::<32>().map_err(corrupt)?);
    r.finish().map_err(corrupt)?;
    let device = DeviceSecret::from_secrets(&sign, &enc)?
        .with_hybrid_secret(&hyb)
        .map_err(|_| Error::KeystoreDecrypt)?;
    Ok(EscrowSecrets {
        identity: IdentitySecret::from_seed(&id),
        device,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn secrets() -> EscrowSecrets {
        EscrowSecrets {
            identity: IdentitySecret::from_seed(&[7; 32]),
            device: DeviceSecret::from_test_seed_hybrid(&[8; 32]),
        }
    }

    #[test]
    fn code_round_trips_and_catches_typos() {
        let c = RecoveryCode::generate().unwrap();
        let shown = c.display();
        assert_eq!(shown.len(), 39);
        assert_eq!(shown.split('-').count(), 8);
        let back = RecoveryCode::parse(&shown.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(back.secret(), c.secret());
        // One character changed: the check fails.
        let mut t: Vec<char> = shown.chars().collect();
        t[5] = if t[5] == 'A' { 'B' } else { 'A' };
        let t: String = t.into_iter().collect();
        assert!(RecoveryCode::parse(&t).is_err());
        // A group missing.
        assert!(RecoveryCode::parse(&shown[5..]).is_err());
        assert!(RecoveryCode::parse("not a code").is_err());
        assert_eq!(format!("{c:?}"), "RecoveryCode(***)");
    }

    #[test]
    fn escrow_round_trip_wrong_code_handle_and_tamper() {
        let code = RecoveryCode::from_bytes([1; 16]);
        let e = seal_escrow(&code, "alice", &secrets(), KdfParams::FLOOR).unwrap();
        assert_eq!(e.len(), ESCROW_LEN);
        let s = open_escrow(&code, "alice", &e).unwrap();
        assert_eq!(s.identity.public_key(), secrets().identity.public_key());
        assert_eq!(s.device.id(), secrets().device.id());
        assert!(s.device.hybrid_secret().is_some());
        let wrong = RecoveryCode::from_bytes([2; 16]);
        assert!(matches!(
            open_escrow(&wrong, "alice", &e),
            Err(Error::KeystoreDecrypt)
        ));
        assert!(matches!(
            open_escrow(&code, "mallory", &e),
            Err(Error::KeystoreDecrypt)
        ));
        let mut t = e.clone();
        t[40] ^= 1; // salt
        assert!(matches!(
            open_escrow(&code, "alice", &t),
            Err(Error::KeystoreDecrypt)
        ));
        // Weakened parameters are refused before any work.
        let mut t = e.clone();
        t[12..16].copy_from_slice(&1u32.to_be_bytes());
        assert!(matches!(
            open_escrow(&code, "alice", &t),
            Err(Error::WeakKdf { .. })
        ));
        let mut t = e.clone();
        t[7] = 2; // suite 2
        assert!(matches!(
            open_escrow(&code, "alice", &t),
            Err(Error::UnsupportedSuite { .. })
        ));
        assert!(open_escrow(&code, "alice", &e[..e.len() - 1]).is_err());
    }
}

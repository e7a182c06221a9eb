//! The passphrase-encrypted keystore format (PROTOCOL.md §9): Argon2id (RFC 9106) derives an
//! AES-256-GCM key; every header byte, KDF parameters included, is authenticated as associated data.
//!
//! Parameters below OWASP's minimum for Argon2id are refused, whoever chose them: a tampered file
//! or a hostile server cannot make the client derive a weak key, and there is no fallback default.

use core::fmt;

use crate::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// OWASP's minimum for Argon2id: 19 MiB, 2 iterations, 1 lane. The floor.
    pub const FLOOR: KdfParams = KdfParams {
        m_cost_kib: 19456,
        t_cost: 2,
        p_cost: 1,
    };
    /// What new keystores use: 64 MiB, 3 iterations, 1 lane (RFC 9106 §4, second recommendation).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 65536,
        t_cost: 3,
        p_cost: 1,
    };

    /// Checks the floor and the caps (m ≤ 4 GiB, t ≤ 16, p ≤ 16).
    ///
    /// # Errors
    /// [`Error::WeakKdf`] naming the bound crossed.
    pub fn check(&self) -> Result<()> {
        let reason = if self.m_cost_kib < Self::FLOOR.m_cost_kib {
            "memory below 19456 KiB"
        } else if self.t_cost < Self::FLOOR.t_cost {
            "fewer than 2 iterations"
        } else if self.p_cost < Self::FLOOR.p_cost {
            "no lanes"
        } else if self.m_cost_kib > 4 * 1024 * 1024 {
            "memory above 4 GiB"
        } else if self.t_cost > 16 || self.p_cost > 16 {
            "iterations or lanes above 16"
        } else {
            return Ok(());
        };
        Err(Error::WeakKdf { reason })
    }
}

const MAGIC: &[u8; 4] = b"SRMK";
const HEADER_LEN: usize = 4 + 2 + 2 + 4 + 4 + 4 + 16 + 12;

fn derive(passphrase: &[u8], salt: &[u8; 16], p: KdfParams) -> Result<LessSafeKey> {
    aead_key(&*derive_raw(passphrase, salt, p)?)
}

/// The raw 32-byte Argon2id output (zeroized on drop).
pub(crate) fn derive_raw(
    passphrase: &[u8],
    salt: &[u8; 16],
    p: KdfParams,
) -> Result<Zeroizing<[u8; 32]>> {
    p.check()?;
    let params =
        Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32)).map_err(|_| Error::WeakKdf {
            reason: "invalid Argon2 parameters",
        })?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|_| Error::WeakKdf {
            reason: "Argon2 refused the input",
        })?;
    Ok(key)
}

/// The AES-256-GCM key of raw key bytes.
pub(crate) fn aead_key(raw: &[u8; 32]) -> Result<LessSafeKey> {
    let unbound = UnboundKey::new(&AES_256_GCM, raw).map_err(|_| Error::KeystoreDecrypt)?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts `secret` (the keystore payload) under `passphrase`.
///
/// # Errors
/// [`Error::WeakKdf`] for parameters outside the bounds; [`Error::Rng`].
pub fn seal(passphrase: &[u8], secret: &[u8], params: KdfParams) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    crate::rng::fill(&mut salt)?;
    crate::rng::fill(&mut nonce)?;
    seal_with(passphrase, secret, params, salt, nonce)
}

/// [`seal`] with a fixed salt and nonce: for test vectors only.
///
/// # Errors
/// As [`seal`].
#[doc(hidden)]
pub fn seal_with(
    passphrase: &[u8],
    secret: &[u8],
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
) -> Result<Vec<u8>> {
    let key = derive(passphrase, &salt, params)?;
    seal_under(&key, params, salt, nonce, secret)
}

fn seal_under(
    key: &LessSafeKey,
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
    secret: &[u8],
) -> Result<Vec<u8>> {
    let mut w = Writer::with_capacity(HEADER_LEN + secret.len() + 16);
    w.bytes(MAGIC)
        .u16(FORMAT_VERSION)
        .u16(RECORD_SUITE_ID)
        .u32(params.m_cost_kib)
        .u32(params.t_cost)
        .u32(params.p_cost)
        .bytes(&salt)
        .bytes(&nonce);
    let mut out = w.into_vec();
    let mut body = secret.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&out),
        &mut body,
    )
    .map_err(|_| Error::KeystoreDecrypt)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads the KDF parameters of a keystore without decrypting it.
///
/// # Errors
/// Format errors, or [`Error::WeakKdf`].
pub fn params_of(file: &[u8]) -> Result<KdfParams> {
    let (p, _, _, _) = parse_header(file)?;
    Ok(p)
}

/// The parsed keystore header: parameters, salt, nonce, and the ciphertext that follows.
type ParsedHeader<'a> = (KdfParams, [u8; 16], [u8; 12], &'a [u8]);

fn parse_header(file: &[u8]) -> Result<ParsedHeader<'_>> {
    const WHAT: &str = "keystore";
    let mut r = Reader::new(file, WHAT);
    r.magic(MAGIC)?;
    crate::check_version(WHAT, r.u16()?, r.u16()?)?;
    let p = KdfParams {
        m_cost_kib: r.u32()?,
        t_cost: r.u32()?,
        p_cost: r.u32()?,
    };
    let salt = r.array()?;
    let nonce = r.array()?;
    p.check()?;
    Ok((p, salt, nonce, r.rest()))
}

/// Decrypts a keystore file.
///
/// # Errors
/// Format errors; [`Error::WeakKdf`] (checked before any work); [`Error::KeystoreDecrypt`] for a
/// wrong passphrase or any tampering — one uniform error.
pub fn open(passphrase: &[u8], file: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    open_keyed(passphrase, file).map(|(body, _)| body)
}

/// A keystore key derived once by Argon2id, kept with its salt and parameters, so that saving the
/// keystore again costs one AES-256-GCM encryption and not another Argon2id run (which costs tens
/// to hundreds of milliseconds and its whole memory cost, on every save). Every
/// [`DerivedKey::seal`] draws a fresh random nonce; the salt, and so the key, stay those the key
/// was derived with. The file format is unchanged (PROTOCOL.md §9).
pub struct DerivedKey {
    params: KdfParams,
    salt: [u8; 16],
    /// The Argon2id output, zeroized on drop. The AES-256-GCM key schedule is built from it for
    /// each use and dropped right after (ring does not zeroize its key schedules).
    raw: Zeroizing<[u8; 32]>,
}

// The only secret field is `Zeroizing`.
impl zeroize::ZeroizeOnDrop for DerivedKey {}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(***)")
    }
}

impl DerivedKey {
    /// Derives a key for a new keystore, with a fresh random salt.
    ///
    /// # Errors
    /// [`Error::WeakKdf`]; [`Error::Rng`].
    pub fn derive(passphrase: &[u8], params: KdfParams) -> Result<DerivedKey> {
        let mut salt = [0u8; 16];
        crate::rng::fill(&mut salt)?;
        Ok(DerivedKey {
            params,
            salt,
            raw: derive_raw(passphrase, &salt, params)?,
        })
    }

    /// The KDF parameters the key was derived with.
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// Encrypts a keystore payload under this key, with a fresh nonce.
    ///
    /// # Errors
    /// [`Error::Rng`].
    pub fn seal(&self, secret: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        crate::rng::fill(&mut nonce)?;
        seal_under(&aead_key(&self.raw)?, self.params, self.salt, nonce, secret)
    }

    /// Decrypts a keystore file sealed under this key (by [`DerivedKey::seal`], or under the
    /// same passphrase, salt and parameters), without running Argon2id again: what an unlock
    /// agent does to read the current keystore on each request (PROTOCOL.md §9, §13).
    ///
    /// # Errors
    /// Format errors; [`Error::KeystoreDecrypt`] when the file was sealed with another salt or
    /// other parameters (a new passphrase), or on any tampering.
    pub fn open(&self, file: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (params, salt, nonce, ct) = parse_header(file)?;
        if params != self.params || salt != self.salt {
            return Err(Error::KeystoreDecrypt);
        }
        open_body(&aead_key(&self.raw)?, file, nonce, ct)
    }
}

/// Decrypts the ciphertext `ct` of `file` (whose header is the associated data) under `key`.
fn open_body(
    key: &LessSafeKey,
    file: &[u8],
    nonce: [u8; 12],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if ct.len() < 16 {
        return Err(Error::KeystoreDecrypt);
    }
    let aad = file.get(..HEADER_LEN).ok_or(Error::KeystoreDecrypt)?;
    let mut body = Zeroizing::new(ct.to_vec());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            body.as_mut_slice(),
        )
        .map_err(|_| Error::KeystoreDecrypt)?
        .len();
    body.truncate(len);
    Ok(body)
}

/// [`open`], also returning the derived key, for [`DerivedKey::seal`] on later saves.
///
/// # Errors
/// As [`open`].
pub fn open_keyed(passphrase: &[u8], file: &[u8]) -> Result<(Zeroizing<Vec<u8>>, DerivedKey)> {
    let (params, salt, nonce, ct) = parse_header(file)?;
    if ct.len() < 16 {
        return Err(Error::KeystoreDecrypt);
    }
    let raw = derive_raw(passphrase, &salt, params)?;
    let body = open_body(&aead_key(&raw)?, file, nonce, ct)?;
    Ok((body, DerivedKey { params, salt, raw }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn round_trip_wrong_pass_and_tamper() {
        let f = seal(b"correct horse", b"secret payload", KdfParams::FLOOR).unwrap();
        assert_eq!(&open(b"correct horse", &f).unwrap()[..], b"secret payload");
        assert_eq!(open(b"wrong", &f), Err(Error::KeystoreDecrypt));
        let mut t = f.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(open(b"correct horse", &t), Err(Error::KeystoreDecrypt));
        // Salt byte flipped: authenticated as associated data.
        let mut t = f.clone();
        t[30] ^= 1;
        assert_eq!(open(b"correct horse", &t), Err(Error::KeystoreDecrypt));
    }

    #[test]
    fn derived_key_reseals_without_argon2_and_opens_with_the_passphrase() {
        let f = seal(b"correct horse", b"one", KdfParams::FLOOR).unwrap();
        let (body, k) = open_keyed(b"correct horse", &f).unwrap();
        assert_eq!(&body[..], b"one");
        let g = k.seal(b"two").unwrap();
        let h = k.seal(b"two").unwrap();
        assert_ne!(g, h, "fresh nonce per save");
        assert_eq!(g[..36], f[..36], "same parameters and salt");
        assert_eq!(&open(b"correct horse", &g).unwrap()[..], b"two");
        assert_eq!(open(b"wrong", &g), Err(Error::KeystoreDecrypt));
        let n = DerivedKey::derive(b"p", KdfParams::FLOOR).unwrap();
        assert_eq!(&open(b"p", &n.seal(b"s").unwrap()).unwrap()[..], b"s");
        assert!(
            DerivedKey::derive(
                b"p",
                KdfParams {
                    t_cost: 1,
                    ..KdfParams::FLOOR
                }
            )
            .is_err()
        );
    }

    /// What an unlock agent relies on: the held key opens the file it (or the passphrase) sealed
    /// with the same salt, without Argon2id, and refuses a file sealed under another salt (a
    /// keystore re-created or re-keyed since) or tampered; and the key zeroizes on drop.
    #[test]
    fn derived_key_opens_its_own_files_only() {
        let f = seal(b"correct horse", b"one", KdfParams::FLOOR).unwrap();
        let (_, k) = open_keyed(b"correct horse", &f).unwrap();
        assert_eq!(&k.open(&f).unwrap()[..], b"one");
        assert_eq!(&k.open(&k.seal(b"two").unwrap()).unwrap()[..], b"two");
        let other = seal(b"correct horse", b"one", KdfParams::FLOOR).unwrap();
        assert_eq!(k.open(&other), Err(Error::KeystoreDecrypt), "another salt");
        let mut t = f.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(k.open(&t), Err(Error::KeystoreDecrypt));
        fn zeroizes_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        zeroizes_on_drop(&k);
        zeroizes_on_drop(&k.raw);
    }

    #[test]
    fn weak_params_refused_before_work() {
        let f = seal(b"p", b"s", KdfParams::FLOOR).unwrap();
        // t_cost = 1
        let mut t = f.clone();
        t[12..16].copy_from_slice(&1u32.to_be_bytes());
        assert!(matches!(open(b"p", &t), Err(Error::WeakKdf { .. })));
        // m_cost = 8 KiB
        let mut t = f.clone();
        t[8..12].copy_from_slice(&8u32.to_be_bytes());
        assert!(matches!(open(b"p", &t), Err(Error::WeakKdf { .. })));
        // Missing parameters: truncated header.
        assert!(open(b"p", &f[..10]).is_err());
        assert!(
            seal(
                b"p",
                b"s",
                KdfParams {
                    m_cost_kib: 1024,
                    t_cost: 1,
                    p_cost: 1
                }
            )
            .is_err()
        );
    }
}

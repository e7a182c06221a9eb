//! The backup's non-log rows (docs/BACKUP.md §2, review S3): provisional recipients' server-side
//! rows and recovery escrows, which live only in the database (PROTOCOL.md §15, §4.2) and would be
//! lost by a restore that derives everything from the log.
//!
//! Each is one write-once object, named by the SHA-256 of its bytes and listed with it in a
//! manifest the log key signs (so a bucket writer can neither alter nor invent one: it would not
//! be named by a signed manifest). Everything the log already says (the lab device and identity,
//! the contact tag, the claim, the record's index) is **not** in the object: `restore` derives it
//! from the verified entries and only restores an object the log backs (a kind-10 record for a
//! provisional id; a current device of the identity and handle for an escrow).
//!
//! Encoding (all integers big-endian; `bytes` is `u32(len) || len bytes`):
//!
//! ```text
//! provisional: "SRBP" u16(format 1) u16(suite 1) bytes(provisional id, ASCII)
//!              bytes(lookup, ASCII hex) bytes(email, UTF-8) bytes(server share S)
//!              bytes(escrow)
//! escrow:      "SRBE" u16(format 1) u16(suite 1) bytes(handle, UTF-8)
//!              bytes(identity id, ASCII) bytes(recovery device id, ASCII) bytes(escrow)
//!              u64(updated_at, seconds since the Unix epoch, server clock)
//! ```
//!
//! Nothing else may follow. The vectors are checked by `side_objects_match_their_vectors`.
//!
//! **Sealed (format 2, suite 2; review T10).** A bucket is often read by a third party (a cloud
//! account, a backup operator): the email addresses, the server shares `S` and the claim
//! lookups must not be readable there. `backup` writes each object above sealed under a key
//! only the log key's holder has, which `restore` already requires and the bucket never holds:
//!
//! ```text
//! key   = HKDF-SHA256(salt = "", ikm = log key seed, info = "serment/v1/backup-side-key", 32)
//! nkey  = HKDF-SHA256(salt = "", ikm = log key seed, info = "serment/v1/backup-side-nonce", 32)
//! head  = magic u16(format 2) u16(suite 2)              (the magic of the object inside)
//! nonce = HMAC-SHA256(nkey, head || plain)[..12]
//! obj   = head || nonce || AES-256-GCM(key, nonce, aad = head, plain)
//! ```
//!
//! `plain` is the whole format-1 encoding above (its own magic must equal the outer one). The
//! nonce is derived from the plaintext (a synthetic nonce): the same row seals to the same
//! object, so an unchanged row is copied once, as before; two rows get two nonces except with
//! probability 2^-96 per pair. What it leaks: that two objects hold the same row. The object's
//! name cannot be in the associated data (it is the SHA-256 of these bytes); the manifest the
//! log key signs binds each name to its bytes, and `head` in the associated data binds the kind
//! (a sealed provisional row does not open as an escrow). Format-1 objects (backups taken
//! before review T10) are still read by `restore`. Vector: `sealed_side_objects_match_their_vector`.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::format::FormatError;

/// Magic of a backed-up provisional recipient row.
pub const PROVISIONAL_MAGIC: &[u8; 4] = b"SRBP";
/// Magic of a backed-up recovery escrow row.
pub const ESCROW_MAGIC: &[u8; 4] = b"SRBE";
/// Magic of a backed-up social recovery set (review T11).
pub const SOCIAL_MAGIC: &[u8; 4] = b"SRBC";
/// The format version of both.
pub const SIDE_FORMAT: u16 = 1;
/// The suite of both (the manifest's SHA-256 names them).
pub const SIDE_SUITE: u16 = 1;
/// The format of a sealed side object (review T10).
pub const SEALED_FORMAT: u16 = 2;
/// Its suite: HKDF-SHA256 from the log key, HMAC-SHA256 synthetic nonce, AES-256-GCM.
pub const SEALED_SUITE: u16 = 2;
const KEY_LABEL: &[u8] = b"serment/v1/backup-side-key";
const NONCE_LABEL: &[u8] = b"serment/v1/backup-side-nonce";
const HEAD_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// The key side objects are sealed under, derived from the log key (module docs). `Debug`
/// shows nothing of it.
pub struct SideKey {
    aead: LessSafeKey,
    nonce: ring::hmac::Key,
}

impl std::fmt::Debug for SideKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SideKey(..)")
    }
}

impl SideKey {
    /// The side key of the log whose Ed25519 seed is `seed`.
    ///
    /// # Errors
    /// Never in practice (`expand` fails only past 255 hash lengths; 32 bytes are asked).
    pub fn from_log_seed(seed: &[u8; 32]) -> Result<SideKey, FormatError> {
        let err = || FormatError {
            what: "side key".into(),
            reason: "HKDF failed".into(),
        };
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"").extract(seed);
        let aead = UnboundKey::from(prk.expand(&[KEY_LABEL], &AES_256_GCM).map_err(|_| err())?);
        let nonce = ring::hmac::Key::from(
            prk.expand(&[NONCE_LABEL], ring::hmac::HMAC_SHA256)
                .map_err(|_| err())?,
        );
        Ok(SideKey {
            aead: LessSafeKey::new(aead),
            nonce,
        })
    }

    /// Seals a format-1 encoding (made by [`ProvisionalObject::encode`] or
    /// [`EscrowObject::encode`]).
    ///
    /// # Errors
    /// [`FormatError`] if `plain` is not one, or sealing fails.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, FormatError> {
        let err = |r: &str| FormatError {
            what: "side object".into(),
            reason: r.into(),
        };
        let magic = plain
            .first_chunk::<4>()
            .filter(|m| *m == PROVISIONAL_MAGIC || *m == ESCROW_MAGIC || *m == SOCIAL_MAGIC)
            .ok_or_else(|| err("not a side object"))?;
        let mut out = Vec::with_capacity(HEAD_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        out.extend_from_slice(magic);
        out.extend_from_slice(&SEALED_FORMAT.to_be_bytes());
        out.extend_from_slice(&SEALED_SUITE.to_be_bytes());
        let mut ctx = ring::hmac::Context::with_key(&self.nonce);
        ctx.update(&out);
        ctx.update(plain);
        let tag = ctx.sign();
        let nonce: [u8; NONCE_LEN] = *tag
            .as_ref()
            .first_chunk::<NONCE_LEN>()
            .ok_or_else(|| err("short HMAC"))?;
        let aad: [u8; HEAD_LEN] = *out
            .first_chunk::<HEAD_LEN>()
            .ok_or_else(|| err("short head"))?;
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| err("sealing failed"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a sealed object of `magic`: its format-1 bytes. A format-1 object (a backup taken
    /// before review T10) is returned as it is.
    ///
    /// # Errors
    /// [`FormatError`] for another magic, format or suite, a truncated object, or one that
    /// does not open under this key (altered, of another kind, or of another log).
    pub fn open(
        &self,
        name: &str,
        magic: &[u8; 4],
        bytes: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, FormatError> {
        let err = |r: &str| FormatError {
            what: name.to_owned(),
            reason: r.to_owned(),
        };
        if check_head(name, magic, bytes)? == SIDE_FORMAT {
            return Ok(Zeroizing::new(bytes.to_vec()));
        }
        let (aad, rest) = bytes
            .split_first_chunk::<HEAD_LEN>()
            .ok_or_else(|| err("truncated"))?;
        let (nonce, ct) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| err("truncated"))?;
        if ct.len() < TAG_LEN {
            return Err(err("truncated"));
        }
        let mut body = Zeroizing::new(ct.to_vec());
        let plain_len = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(*aad),
                &mut body,
            )
            .map_err(|_| {
                err("does not open under this log key's side key (altered, or of another log)")
            })?
            .len();
        body.truncate(plain_len);
        if body.first_chunk::<4>() != Some(magic) {
            return Err(err("the sealed row is of another kind"));
        }
        Ok(body)
    }
}

/// Checks the head of a side object of `magic` (format 1 plain, or 2 sealed) without the key:
/// what `verify-backup` can check. Returns its format.
///
/// # Errors
/// [`FormatError`] for another magic, an unknown format or suite, or a truncated head.
pub fn check_head(name: &str, magic: &[u8; 4], bytes: &[u8]) -> Result<u16, FormatError> {
    let err = |r: &str| FormatError {
        what: name.to_owned(),
        reason: r.to_owned(),
    };
    let head = bytes
        .first_chunk::<HEAD_LEN>()
        .ok_or_else(|| err("truncated"))?;
    let (m, rest) = head
        .split_first_chunk::<4>()
        .ok_or_else(|| err("truncated"))?;
    if m != magic {
        return Err(err("wrong magic"));
    }
    let (f, s) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| err("truncated"))?;
    let s = s.first_chunk::<2>().ok_or_else(|| err("truncated"))?;
    let (format, suite) = (u16::from_be_bytes(*f), u16::from_be_bytes(*s));
    match (format, suite) {
        (SIDE_FORMAT, SIDE_SUITE) | (SEALED_FORMAT, SEALED_SUITE) => Ok(format),
        _ => Err(err("unsupported format or suite")),
    }
}

/// The most bytes a field may hold (a guard for parsing an untrusted target): 1 MiB.
const MAX_FIELD: usize = 1 << 20;

/// A provisional recipient's server-only fields (the rest is derived from its kind-10 record).
/// `Debug` hides the email, the share and the escrow.
#[derive(Clone, PartialEq, Eq)]
pub struct ProvisionalObject {
    /// Its id (`KeyId` text).
    pub id: String,
    /// The claim code's lookup id, hex.
    pub lookup: String,
    /// Where one-time codes are sent.
    pub email: String,
    /// The server share `S` (PROTOCOL.md §15).
    pub server_share: Vec<u8>,
    /// The escrow (ciphertext for the patient).
    pub escrow: Vec<u8>,
}

impl std::fmt::Debug for ProvisionalObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionalObject")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A recovery escrow row (PROTOCOL.md §4.2). `Debug` hides the escrow.
#[derive(Clone, PartialEq, Eq)]
pub struct EscrowObject {
    /// The handle.
    pub handle: String,
    /// The identity it was stored for (`KeyId` text).
    pub identity_id: String,
    /// The recovery device it names (`KeyId` text).
    pub recovery_device: String,
    /// The escrow (Argon2id + AES-256-GCM ciphertext, opaque to the server).
    pub escrow: Vec<u8>,
    /// When the server stored it, seconds since the Unix epoch.
    pub updated_at: u64,
}

impl std::fmt::Debug for EscrowObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscrowObject")
            .field("handle", &self.handle)
            .field("recovery_device", &self.recovery_device)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// A handle's social recovery set as the server holds it (PROTOCOL.md §4.3; review T11): the
/// escrow row and every share wrap (request id empty: the distribution to the contacts'
/// devices; else the request a contact re-wrapped its share for). The requests themselves are
/// derived from the log (kinds 14 and 16). `Debug` hides the escrow and the shares.
#[derive(Clone, PartialEq, Eq)]
pub struct SocialObject {
    /// The handle.
    pub handle: String,
    /// The identity it was stored for (`KeyId` text).
    pub identity_id: String,
    /// The social recovery device (`KeyId` text).
    pub recovery_device: String,
    /// The hex SHA-256 the contacts entry is known by (`social::contacts_hash`).
    pub contacts_hash: String,
    /// K.
    pub threshold: u32,
    /// Seconds.
    pub waiting_period: u64,
    /// The escrow (ciphertext under the recovery secret).
    pub escrow: Vec<u8>,
    /// When the server stored it.
    pub updated_at: u64,
    /// The share wraps.
    pub shares: Vec<SocialShare>,
}

/// One share wrap of a [`SocialObject`] (a `social_shares` row).
#[derive(Clone, PartialEq, Eq)]
pub struct SocialShare {
    /// Empty for the distribution, else the request's id (hex).
    pub request_id: String,
    /// The device it is wrapped to (`KeyId` text).
    pub recipient: String,
    /// The device that wrapped it (`KeyId` text).
    pub sharer: String,
    /// The contact's handle.
    pub contact: String,
    /// The `ShareWrap` bytes.
    pub share: Vec<u8>,
}

impl std::fmt::Debug for SocialObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialObject")
            .field("handle", &self.handle)
            .field("contacts_hash", &self.contacts_hash)
            .field("shares", &self.shares.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SocialShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialShare")
            .field("request_id", &self.request_id)
            .field("recipient", &self.recipient)
            .finish_non_exhaustive()
    }
}

/// The most share wraps one social object may hold (a guard for parsing).
const MAX_SHARES: usize = 4096;

impl SocialObject {
    /// The object's bytes: `"SRBC" u16(1) u16(1)` then `bytes` fields handle, identity id,
    /// recovery device, contacts hash, `u32(threshold)`, `u64(waiting_period)`, escrow,
    /// `u64(updated_at)`, `u32(count)` and per share `bytes` request id, recipient, sharer,
    /// contact, share.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = head(SOCIAL_MAGIC);
        put(&mut v, self.handle.as_bytes());
        put(&mut v, self.identity_id.as_bytes());
        put(&mut v, self.recovery_device.as_bytes());
        put(&mut v, self.contacts_hash.as_bytes());
        v.extend_from_slice(&self.threshold.to_be_bytes());
        v.extend_from_slice(&self.waiting_period.to_be_bytes());
        put(&mut v, &self.escrow);
        v.extend_from_slice(&self.updated_at.to_be_bytes());
        let n = u32::try_from(self.shares.len()).unwrap_or(u32::MAX);
        v.extend_from_slice(&n.to_be_bytes());
        for sh in &self.shares {
            put(&mut v, sh.request_id.as_bytes());
            put(&mut v, sh.recipient.as_bytes());
            put(&mut v, sh.sharer.as_bytes());
            put(&mut v, sh.contact.as_bytes());
            put(&mut v, &sh.share);
        }
        v
    }

    /// Parses an object made by [`Self::encode`].
    ///
    /// # Errors
    /// As [`ProvisionalObject::decode`]; more than 4096 shares.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<SocialObject, FormatError> {
        let mut r = Reader::new(name, bytes, SOCIAL_MAGIC)?;
        let handle = r.text()?;
        let identity_id = r.text()?;
        let recovery_device = r.text()?;
        let contacts_hash = r.text()?;
        let threshold = r.u32()?;
        let waiting_period = r.u64()?;
        let escrow = r.bytes()?;
        let updated_at = r.u64()?;
        let n = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if n > MAX_SHARES {
            return Err(r.err("too many shares"));
        }
        let mut shares = Vec::with_capacity(n);
        for _ in 0..n {
            shares.push(SocialShare {
                request_id: r.text()?,
                recipient: r.text()?,
                sharer: r.text()?,
                contact: r.text()?,
                share: r.bytes()?,
            });
        }
        r.end()?;
        Ok(SocialObject {
            handle,
            identity_id,
            recovery_device,
            contacts_hash,
            threshold,
            waiting_period,
            escrow,
            updated_at,
            shares,
        })
    }

    /// Opens (format 2) and parses (format 1 or 2) an object as `restore` reads it.
    ///
    /// # Errors
    /// As [`SideKey::open`] and [`Self::decode`].
    pub fn open(key: &SideKey, name: &str, bytes: &[u8]) -> Result<Self, FormatError> {
        Self::decode(name, &key.open(name, SOCIAL_MAGIC, bytes)?)
    }
}

fn head(magic: &[u8; 4]) -> Vec<u8> {
    let mut v = Vec::with_capacity(256);
    v.extend_from_slice(magic);
    v.extend_from_slice(&SIDE_FORMAT.to_be_bytes());
    v.extend_from_slice(&SIDE_SUITE.to_be_bytes());
    v
}

fn put(v: &mut Vec<u8>, b: &[u8]) {
    // Fields come from the store and are far below 4 GiB (the decoder caps them at 1 MiB).
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(b);
}

struct Reader<'a> {
    name: &'a str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(name: &'a str, bytes: &'a [u8], magic: &[u8; 4]) -> Result<Reader<'a>, FormatError> {
        let err = |r: &str| FormatError {
            what: name.to_owned(),
            reason: r.to_owned(),
        };
        let (m, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| err("truncated"))?;
        if m != magic {
            return Err(err("wrong magic"));
        }
        let mut r = Reader { name, rest };
        if r.u16()? != SIDE_FORMAT || r.u16()? != SIDE_SUITE {
            return Err(err("unsupported format or suite"));
        }
        Ok(r)
    }
    fn err(&self, reason: &str) -> FormatError {
        FormatError {
            what: self.name.to_owned(),
            reason: reason.to_owned(),
        }
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        let (b, rest) = self
            .rest
            .split_first_chunk::<2>()
            .ok_or_else(|| self.err("truncated"))?;
        self.rest = rest;
        Ok(u16::from_be_bytes(*b))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        let (b, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| self.err("truncated"))?;
        self.rest = rest;
        Ok(u32::from_be_bytes(*b))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        let (b, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or_else(|| self.err("truncated"))?;
        self.rest = rest;
        Ok(u64::from_be_bytes(*b))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, FormatError> {
        let (len, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| self.err("truncated"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
        if len > MAX_FIELD {
            return Err(self.err("field too long"));
        }
        let (b, rest) = rest
            .split_at_checked(len)
            .ok_or_else(|| self.err("truncated"))?;
        self.rest = rest;
        Ok(b.to_vec())
    }
    fn text(&mut self) -> Result<String, FormatError> {
        String::from_utf8(self.bytes()?).map_err(|_| self.err("not UTF-8"))
    }
    fn end(self) -> Result<(), FormatError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

impl ProvisionalObject {
    /// The object's bytes (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = head(PROVISIONAL_MAGIC);
        put(&mut v, self.id.as_bytes());
        put(&mut v, self.lookup.as_bytes());
        put(&mut v, self.email.as_bytes());
        put(&mut v, &self.server_share);
        put(&mut v, &self.escrow);
        v
    }

    /// Parses an object made by [`Self::encode`].
    ///
    /// # Errors
    /// [`FormatError`] for another magic, version or suite, a truncated field, a field over
    /// 1 MiB, text that is not UTF-8, or trailing bytes.
    pub fn decode(name: &str, bytes: &[u8]) -> Result<ProvisionalObject, FormatError> {
        let mut r = Reader::new(name, bytes, PROVISIONAL_MAGIC)?;
        let o = ProvisionalObject {
            id: r.text()?,
            lookup: r.text()?,
            email: r.text()?,
            server_share: r.bytes()?,
            escrow: r.bytes()?,
        };
        r.end()?;
        Ok(o)
    }
}

impl ProvisionalObject {
    /// Opens (format 2) and parses (format 1 or 2) an object as `restore` reads it.
    ///
    /// # Errors
    /// As [`SideKey::open`] and [`Self::decode`].
    pub fn open(key: &SideKey, name: &str, bytes: &[u8]) -> Result<Self, FormatError> {
        Self::decode(name, &key.open(name, PROVISIONAL_MAGIC, bytes)?)
    }
}

impl EscrowObject {
    /// Opens (format 2) and parses (format 1 or 2) an object as `restore` reads it.
    ///
    /// # Errors
    /// As [`SideKey::open`] and [`Self::decode`].
    pub fn open(key: &SideKey, name: &str, bytes: &[u8]) -> Result<Self, FormatError> {
        Self::decode(name, &key.open(name, ESCROW_MAGIC, bytes)?)
    }

    /// The object's bytes (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = head(ESCROW_MAGIC);
        put(&mut v, self.handle.as_bytes());
        put(&mut v, self.identity_id.as_bytes());
        put(&mut v, self.recovery_device.as_bytes());
        put(&mut v, &self.escrow);
        v.extend_from_slice(&self.updated_at.to_be_bytes());
        v
    }

    /// Parses an object made by [`Self::encode`].
    ///
    /// # Errors
    /// As [`ProvisionalObject::decode`].
    pub fn decode(name: &str, bytes: &[u8]) -> Result<EscrowObject, FormatError> {
        let mut r = Reader::new(name, bytes, ESCROW_MAGIC)?;
        let o = EscrowObject {
            handle: r.text()?,
            identity_id: r.text()?,
            recovery_device: r.text()?,
            escrow: r.bytes()?,
            updated_at: r.u64()?,
        };
        r.end()?;
        Ok(o)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The vectors of docs/BACKUP.md §2 (hex of the encodings of these two objects).
    #[test]
    fn side_objects_match_their_vectors() {
        let p = ProvisionalObject {
            id: "02ab".into(),
            lookup: "cd".into(),
            email: "a@b.c".into(),
            server_share: vec![1, 2],
            escrow: vec![3],
        };
        let pb = p.encode();
        assert_eq!(
            hex::encode(&pb),
            "5352425000010001000000043032616200000002636400000005614062\
             2e630000000201020000000103"
        );
        assert_eq!(ProvisionalObject::decode("p", &pb).unwrap(), p);
        let e = EscrowObject {
            handle: "ana".into(),
            identity_id: "01ff".into(),
            recovery_device: "02ee".into(),
            escrow: vec![9, 9],
            updated_at: 1_700_000_000,
        };
        let eb = e.encode();
        assert_eq!(
            hex::encode(&eb),
            "535242450001000100000003616e610000000430316666000000043032\
             6565000000020909000000006553f100"
        );
        assert_eq!(EscrowObject::decode("e", &eb).unwrap(), e);
        // Every truncation, a trailing byte, the other magic: refused.
        for n in 0..pb.len() {
            assert!(ProvisionalObject::decode("p", &pb[..n]).is_err(), "{n}");
        }
        for n in 0..eb.len() {
            assert!(EscrowObject::decode("e", &eb[..n]).is_err(), "{n}");
        }
        let mut longer = pb.clone();
        longer.push(0);
        assert!(ProvisionalObject::decode("p", &longer).is_err());
        assert!(EscrowObject::decode("p", &pb).is_err());
        assert!(ProvisionalObject::decode("e", &eb).is_err());
        // Debug hides the secrets.
        let dbg = format!("{p:?}{e:?}");
        assert!(!dbg.contains("a@b.c") && !dbg.contains("[1, 2]") && !dbg.contains("[9, 9]"));
    }

    fn vector_provisional() -> ProvisionalObject {
        ProvisionalObject {
            id: "02ab".into(),
            lookup: "cd".into(),
            email: "a@b.c".into(),
            server_share: vec![1, 2],
            escrow: vec![3],
        }
    }

    /// Review T10: the vector of a sealed provisional row (docs/BACKUP.md §2, log key seed
    /// `07` x 32), and what a bucket reader or writer can do with sealed objects: read nothing
    /// of the row, open nothing under another log's key, alter, truncate or retype nothing.
    #[test]
    fn sealed_side_objects_match_their_vector() {
        let key = SideKey::from_log_seed(&[7; 32]).unwrap();
        let p = vector_provisional();
        let plain = p.encode();
        let sealed = key.seal(&plain).unwrap();
        assert_eq!(hex::encode(&sealed), SEALED_VECTOR);
        // Deterministic: an unchanged row is one object, copied once.
        assert_eq!(key.seal(&plain).unwrap(), sealed);
        assert_eq!(ProvisionalObject::open(&key, "p", &sealed).unwrap(), p);
        assert_eq!(
            check_head("p", PROVISIONAL_MAGIC, &sealed).unwrap(),
            SEALED_FORMAT
        );
        // Nothing of the row in clear: the email, the share, the lookup, the id.
        for secret in [&b"a@b.c"[..], b"\x00\x00\x00\x02\x01\x02", b"02ab"] {
            assert!(!sealed.windows(secret.len()).any(|w| w == secret));
        }
        // Another log's key opens nothing.
        let other = SideKey::from_log_seed(&[8; 32]).unwrap();
        assert!(ProvisionalObject::open(&other, "p", &sealed).is_err());
        // Every flipped bit and every truncation is refused.
        for i in 0..sealed.len() {
            let mut b = sealed.clone();
            b[i] ^= 1;
            assert!(ProvisionalObject::open(&key, "p", &b).is_err(), "byte {i}");
            assert!(
                ProvisionalObject::open(&key, "p", &sealed[..i]).is_err(),
                "len {i}"
            );
        }
        // A sealed provisional row presented as an escrow (its magic swapped) does not open.
        let mut retyped = sealed.clone();
        retyped[..4].copy_from_slice(ESCROW_MAGIC);
        assert!(EscrowObject::open(&key, "e", &retyped).is_err());
        // Sealing anything but a side object is refused.
        assert!(key.seal(b"SRMS\x00\x01").is_err());
        // A format-1 object (a backup from before T10) still opens.
        assert_eq!(ProvisionalObject::open(&key, "p", &plain).unwrap(), p);
        let e = EscrowObject {
            handle: "ana".into(),
            identity_id: "01ff".into(),
            recovery_device: "02ee".into(),
            escrow: vec![9, 9],
            updated_at: 1,
        };
        let es = key.seal(&e.encode()).unwrap();
        assert_eq!(EscrowObject::open(&key, "e", &es).unwrap(), e);
        assert!(ProvisionalObject::open(&key, "p", &es).is_err());
    }

    /// Review T11: a social set round-trips, sealed, and refuses truncation.
    #[test]
    fn a_social_object_round_trips_sealed() {
        let key = SideKey::from_log_seed(&[7; 32]).unwrap();
        let o = SocialObject {
            handle: "ana".into(),
            identity_id: "01".into(),
            recovery_device: "02".into(),
            contacts_hash: "03".into(),
            threshold: 2,
            waiting_period: 259_200,
            escrow: vec![4; 10],
            updated_at: 5,
            shares: vec![SocialShare {
                request_id: String::new(),
                recipient: "06".into(),
                sharer: "07".into(),
                contact: "bob".into(),
                share: vec![8; 3],
            }],
        };
        let plain = o.encode();
        assert_eq!(SocialObject::decode("s", &plain).unwrap(), o);
        for n in 0..plain.len() {
            assert!(SocialObject::decode("s", &plain[..n]).is_err(), "{n}");
        }
        let sealed = key.seal(&plain).unwrap();
        assert_eq!(SocialObject::open(&key, "s", &sealed).unwrap(), o);
        assert!(EscrowObject::open(&key, "s", &sealed).is_err());
        assert!(!format!("{o:?}").contains("bob"));
    }

    /// The hex of the sealed vector of [`sealed_side_objects_match_their_vector`] (computed
    /// independently with Python's `hmac`, `hashlib` and `cryptography` AES-GCM).
    const SEALED_VECTOR: &str = "5352425000020002b9f0043c82ad0a1771ae57db35505cd1613a54d32a1906f9b26192db7230ef6bab6f6141b351076a50d500423dded8de6d142610c07d270742c6c76159e32fea96120d9ff059";
}

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

use super::format::FormatError;

/// Magic of a backed-up provisional recipient row.
pub const PROVISIONAL_MAGIC: &[u8; 4] = b"SRBP";
/// Magic of a backed-up recovery escrow row.
pub const ESCROW_MAGIC: &[u8; 4] = b"SRBE";
/// The format version of both.
pub const SIDE_FORMAT: u16 = 1;
/// The suite of both (the manifest's SHA-256 names them).
pub const SIDE_SUITE: u16 = 1;
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

impl EscrowObject {
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
}

//! The backup format (docs/BACKUP.md §2-§3): object names, entry segments and signed manifests.
//!
//! Every object is write-once. A manifest names the objects of its increment with their SHA-256
//! and length, the checkpoint it covers, and the SHA-256 of the previous manifest (a chain); it is
//! signed by the log key over `sig_input("backup-manifest", body)` (PROTOCOL.md §3).

use std::fmt::Write as _;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serment_core::DocId;
use sha2::{Digest as _, Sha256};

/// The domain-separation label of a manifest signature (PROTOCOL.md §3).
pub const MANIFEST_LABEL: &str = "backup-manifest";

/// `sig_input("backup-manifest", body)` of PROTOCOL.md §3: `"serment/v1/sig/" || label || 0x00 ||
/// body`. Built here rather than as a `serment_core::sign::Context` so that the patient's page
/// (built from serment-core) is unchanged; it moves into the core table with the next rebuild of
/// the page.
pub fn manifest_sig_input(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + MANIFEST_LABEL.len() + 1 + body.len());
    v.extend_from_slice(b"serment/v1/sig/");
    v.extend_from_slice(MANIFEST_LABEL.as_bytes());
    v.push(0);
    v.extend_from_slice(body);
    v
}

/// The first line of every manifest.
pub const MANIFEST_MAGIC: &str = "serment-backup-manifest";
/// The manifest and segment format version.
pub const FORMAT_VERSION: u16 = 1;
/// The suite: SHA-256 object hashes, Ed25519 log-key signatures.
pub const SUITE_ID: u16 = 1;
/// Magic bytes of an entry segment.
pub const SEGMENT_MAGIC: &[u8; 4] = b"SRMS";
/// The most bytes one manifest may hold (a guard for parsing an untrusted target): 64 MiB.
pub const MAX_MANIFEST_LEN: usize = 64 << 20;

/// A malformed object or a bad signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct FormatError {
    /// The object.
    pub what: String,
    /// What is wrong with it.
    pub reason: String,
}

fn bad(what: impl Into<String>, reason: impl Into<String>) -> FormatError {
    FormatError {
        what: what.into(),
        reason: reason.into(),
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The key of manifest `seq` with these exact bytes: `manifests/<seq, 20 digits>-<SHA-256 of the
/// manifest, hex>`. The hash in the name means that an object created in advance under a
/// predictable name (by anyone able to create objects in the target) can never block the next
/// increment; the chain is the manifests' `prev`, not their names.
pub fn manifest_key(seq: u64, bytes: &[u8]) -> String {
    format!("manifests/{seq:020}-{}", hex::encode(sha256(bytes)))
}

/// Parses a manifest key made by [`manifest_key`]: its number and the SHA-256 it names; `None`
/// for any other name.
pub fn parse_manifest_key(key: &str) -> Option<(u64, [u8; 32])> {
    let (seq, hash) = key.strip_prefix("manifests/")?.split_once('-')?;
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) || !is_lower_hex64(hash) {
        return None;
    }
    let mut h = [0u8; 32];
    hex::decode_to_slice(hash, &mut h).ok()?;
    Some((seq.parse().ok()?, h))
}

/// True for exactly 64 lowercase hex digits (a SHA-256 as the object names carry it).
pub fn is_lower_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The key of the segment of entries `[start, end)`: `entries/<start>-<end>` (20 digits each).
pub fn segment_key(start: u64, end: u64) -> String {
    format!("entries/{start:020}-{end:020}")
}

/// The key of a sealed blob: `blobs/<blob id>` (the SHA-256 of its bytes, lowercase hex).
pub fn blob_key(blob_id: &str) -> String {
    format!("blobs/{blob_id}")
}

/// The most other names an object is tried under when its own name is taken (REVIEW5 U6).
pub const MAX_ALT_NAMES: u32 = 16;

/// The `n`th name of an object whose own name is `key`: `key` itself for 0, else `<key>.<n>`
/// (docs/BACKUP.md §2). Every name but a manifest's is predictable before the backup writes it
/// (an entry range, a blob id any user knows, a public checkpoint's hash): anyone able to create
/// objects in the target can take it first with other bytes (REVIEW5 U6). The backup then writes
/// under the next name and the manifest names that one, so a taken name never blocks it.
pub fn alt_key(key: &str, n: u32) -> String {
    if n == 0 {
        key.to_owned()
    } else {
        format!("{key}.{n}")
    }
}

/// The object's own name and the number of its alternative name (0: its own name) of a key
/// [`alt_key`] made; `None` unless the suffix is `.<n>`, `n` in `1..=MAX_ALT_NAMES` without a
/// leading zero. Own names never hold a `.`.
pub fn split_alt(key: &str) -> Option<(&str, u32)> {
    let Some((base, n)) = key.rsplit_once('.') else {
        return Some((key, 0));
    };
    if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse()
        .ok()
        .filter(|n| (1..=MAX_ALT_NAMES).contains(n))
        .map(|n| (base, n))
}

/// The key of a checkpoint note of `size` entries with these exact bytes (its cosignature lines
/// included): `checkpoints/<size>-<SHA-256 of the note, hex>`.
pub fn checkpoint_key(size: u64, note: &[u8]) -> String {
    format!("checkpoints/{size:020}-{}", hex::encode(sha256(note)))
}

/// The key of a team key wrap: `teamkeys/<SHA-256 of its bytes, hex>`.
pub fn team_key_key(wrap: &[u8]) -> String {
    format!("teamkeys/{}", hex::encode(sha256(wrap)))
}

/// The key of a backed-up provisional recipient row: `provisionals/<SHA-256 of its bytes, hex>`
/// ([`super::side::ProvisionalObject`]).
pub fn provisional_key(bytes: &[u8]) -> String {
    format!("provisionals/{}", hex::encode(sha256(bytes)))
}

/// The key of a backed-up recovery escrow row: `escrows/<SHA-256 of its bytes, hex>`
/// ([`super::side::EscrowObject`]).
pub fn escrow_key(bytes: &[u8]) -> String {
    format!("escrows/{}", hex::encode(sha256(bytes)))
}

/// The key of a backed-up social recovery set: `social/<SHA-256 of its bytes, hex>`
/// ([`super::side::SocialObject`], review T11).
pub fn social_key(bytes: &[u8]) -> String {
    format!("social/{}", hex::encode(sha256(bytes)))
}

/// The key of a backed-up loss statement: `loss/<SHA-256 of its text, hex>` (PROTOCOL.md
/// §11.11, REVIEW6 V6).
pub fn loss_key(bytes: &[u8]) -> String {
    format!("loss/{}", hex::encode(sha256(bytes)))
}

/// What an object of a manifest holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// The checkpoint note the manifest covers (exactly one per manifest).
    Checkpoint,
    /// Log entries `[start, end)`.
    Entries {
        /// First index.
        start: u64,
        /// One past the last index.
        end: u64,
    },
    /// The sealed blob of a document version.
    Blob {
        /// The document.
        doc: DocId,
        /// Its version.
        version: u32,
    },
    /// A team key wrap (PROTOCOL.md §12.3).
    TeamKey,
    /// A provisional recipient's server-only row (review S3, [`super::side`]).
    Provisional,
    /// A recovery escrow row (review S3, [`super::side`]).
    Escrow,
    /// A handle's social recovery set: escrow and share wraps (review T11, [`super::side`]).
    Social,
    /// A loss statement an earlier restore wrote (PROTOCOL.md §11.11): public and signed by the
    /// log key, so stored as its text, not sealed (REVIEW6 V6).
    Loss,
}

/// One object named by a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// What it holds.
    pub kind: ObjectKind,
    /// Its key under the target's prefix: its own name, or an alternative one ([`alt_key`])
    /// when its own name was taken.
    pub key: String,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
    /// Its length in bytes.
    pub len: u64,
}

impl ObjectRef {
    /// Its own name (the key without an [`alt_key`] suffix) and the number of the alternative
    /// name it is under (0: its own name).
    pub fn own_key(&self) -> (&str, u32) {
        split_alt(&self.key).unwrap_or((self.key.as_str(), 0))
    }
}

/// One increment's manifest (docs/BACKUP.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The log's origin (the checkpoint's first line).
    pub origin: String,
    /// The increment number, from 0.
    pub seq: u64,
    /// SHA-256 of the previous manifest's bytes; `None` for increment 0.
    pub prev: Option<[u8; 32]>,
    /// The size of the checkpoint covered (entries `[0, size)` are in this and earlier increments).
    pub size: u64,
    /// When the increment was taken, seconds since the Unix epoch (backup host's clock).
    pub created_at: u64,
    /// The objects of this increment.
    pub objects: Vec<ObjectRef>,
}

impl Manifest {
    /// The signed body: every line up to (not including) the `signature` line.
    pub fn body(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "{MANIFEST_MAGIC}");
        let _ = writeln!(s, "format {FORMAT_VERSION}");
        let _ = writeln!(s, "suite {SUITE_ID}");
        let _ = writeln!(s, "origin {}", self.origin);
        let _ = writeln!(s, "seq {}", self.seq);
        let _ = writeln!(
            s,
            "prev {}",
            self.prev.map_or_else(|| "none".to_owned(), hex::encode)
        );
        let _ = writeln!(s, "size {}", self.size);
        let _ = writeln!(s, "created {}", self.created_at);
        for o in &self.objects {
            let (word, extra) = match &o.kind {
                ObjectKind::Checkpoint => ("checkpoint", String::new()),
                ObjectKind::Entries { start, end } => ("entries", format!(" {start} {end}")),
                ObjectKind::Blob { doc, version } => ("blob", format!(" {doc} {version}")),
                ObjectKind::TeamKey => ("teamkey", String::new()),
                ObjectKind::Provisional => ("provisional", String::new()),
                ObjectKind::Escrow => ("escrow", String::new()),
                ObjectKind::Social => ("social", String::new()),
                ObjectKind::Loss => ("loss", String::new()),
            };
            let _ = writeln!(
                s,
                "{word} {} {} {}{extra}",
                o.key,
                hex::encode(o.sha256),
                o.len
            );
        }
        s
    }

    /// The manifest's bytes: the body and its `signature <128 hex>` line by the log key.
    pub fn sign(&self, log_key: &SigningKey) -> Vec<u8> {
        let body = self.body();
        let sig = log_key
            .sign(&manifest_sig_input(body.as_bytes()))
            .to_bytes();
        format!("{body}signature {}\n", hex::encode(sig)).into_bytes()
    }

    /// The checkpoint object of the manifest.
    pub fn checkpoint(&self) -> Option<&ObjectRef> {
        self.objects
            .iter()
            .find(|o| o.kind == ObjectKind::Checkpoint)
    }

    /// Parses a manifest strictly and checks its signature with the log's Ed25519 public key.
    ///
    /// # Errors
    /// [`FormatError`] naming the line at fault, or the bad signature.
    pub fn parse_verified(
        name: &str,
        bytes: &[u8],
        log_public_key: &[u8; 32],
    ) -> Result<Manifest, FormatError> {
        let (body, sig_line) = split_signed(name, bytes)?;
        let sig_hex = sig_line
            .strip_prefix("signature ")
            .and_then(|s| s.strip_suffix('\n'))
            .ok_or_else(|| bad(name, "malformed signature line"))?;
        let sig = hex::decode(sig_hex).map_err(|_| bad(name, "signature is not hex"))?;
        let sig = ed25519_dalek::Signature::from_slice(&sig)
            .map_err(|_| bad(name, "malformed signature"))?;
        VerifyingKey::from_bytes(log_public_key)
            .and_then(|k| k.verify_strict(&manifest_sig_input(body.as_bytes()), &sig))
            .map_err(|_| bad(name, "signature does not verify with the log key"))?;
        let m = parse_body(name, body)?;
        if m.body() != body {
            return Err(bad(name, "not in canonical form"));
        }
        Ok(m)
    }

    /// Parses a manifest strictly **without** checking its signature: only to say which log a
    /// manifest that does not verify with the log key given claims to be for (the newcomer's
    /// N16: the wrong log key, rather than a backup altered). Nothing it says is trusted.
    ///
    /// # Errors
    /// [`FormatError`] naming the line at fault.
    pub fn parse_unverified(name: &str, bytes: &[u8]) -> Result<Manifest, FormatError> {
        let (body, _) = split_signed(name, bytes)?;
        let m = parse_body(name, body)?;
        if m.body() != body {
            return Err(bad(name, "not in canonical form"));
        }
        Ok(m)
    }
}

/// A manifest's bytes, bounded and UTF-8, split before its last `signature ` line: (the body the
/// signature covers, the signature line).
fn split_signed<'a>(name: &str, bytes: &'a [u8]) -> Result<(&'a str, &'a str), FormatError> {
    if bytes.len() > MAX_MANIFEST_LEN {
        return Err(bad(name, "too large"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| bad(name, "not UTF-8"))?;
    let body_end = text
        .rfind("signature ")
        .filter(|&i| i == 0 || text.as_bytes().get(i - 1) == Some(&b'\n'))
        .ok_or_else(|| bad(name, "no signature line"))?;
    Ok(text.split_at(body_end))
}

fn parse_body(name: &str, body: &str) -> Result<Manifest, FormatError> {
    let mut lines = body.lines();
    let mut field = |key: &str| -> Result<String, FormatError> {
        let line = lines
            .next()
            .ok_or_else(|| bad(name, format!("missing {key}")))?;
        if key == MANIFEST_MAGIC {
            return if line == MANIFEST_MAGIC {
                Ok(String::new())
            } else {
                Err(bad(name, "not a manifest"))
            };
        }
        line.strip_prefix(key)
            .and_then(|r| r.strip_prefix(' '))
            .map(str::to_owned)
            .ok_or_else(|| bad(name, format!("expected the {key} line")))
    };
    field(MANIFEST_MAGIC)?;
    if field("format")? != FORMAT_VERSION.to_string() {
        return Err(bad(name, "unsupported format version"));
    }
    if field("suite")? != SUITE_ID.to_string() {
        return Err(bad(name, "unsupported suite"));
    }
    let origin = field("origin")?;
    let num = |v: String, what: &str| {
        v.parse::<u64>()
            .map_err(|_| bad(name, format!("{what} is not a number")))
    };
    let seq = num(field("seq")?, "seq")?;
    let prev = match field("prev")?.as_str() {
        "none" => None,
        h => Some(hash32(name, h)?),
    };
    let size = num(field("size")?, "size")?;
    let created_at = num(field("created")?, "created")?;
    let mut objects = Vec::new();
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        let obj = |kind: ObjectKind, p: &[&str]| -> Result<ObjectRef, FormatError> {
            match p {
                [key, sha, len, ..] => Ok(ObjectRef {
                    kind,
                    key: (*key).to_owned(),
                    sha256: hash32(name, sha)?,
                    len: len
                        .parse()
                        .map_err(|_| bad(name, format!("bad length in {line:?}")))?,
                }),
                _ => Err(bad(name, format!("malformed line {line:?}"))),
            }
        };
        let rest = parts.get(1..).unwrap_or_default();
        let o = match (parts.first().copied(), rest) {
            (Some("checkpoint"), p @ [_, _, _]) => obj(ObjectKind::Checkpoint, p)?,
            (Some("teamkey"), p @ [_, _, _]) => obj(ObjectKind::TeamKey, p)?,
            (Some("provisional"), p @ [_, _, _]) => obj(ObjectKind::Provisional, p)?,
            (Some("escrow"), p @ [_, _, _]) => obj(ObjectKind::Escrow, p)?,
            (Some("social"), p @ [_, _, _]) => obj(ObjectKind::Social, p)?,
            (Some("loss"), p @ [_, _, _]) => obj(ObjectKind::Loss, p)?,
            (Some("entries"), p @ [_, _, _, start, end]) => {
                let start = num((*start).to_owned(), "start")?;
                let end = num((*end).to_owned(), "end")?;
                obj(ObjectKind::Entries { start, end }, p)?
            }
            (Some("blob"), p @ [_, _, _, doc, version]) => {
                let doc = DocId::from_hex(doc)
                    .map_err(|_| bad(name, format!("bad document id in {line:?}")))?;
                let version = version
                    .parse()
                    .map_err(|_| bad(name, format!("bad version in {line:?}")))?;
                obj(ObjectKind::Blob { doc, version }, p)?
            }
            _ => return Err(bad(name, format!("unknown line {line:?}"))),
        };
        // Every key is determined by what the line says (review R11): a manifest, even signed,
        // never makes a reader open `../x` or `/etc/...`; only an alternative name's suffix
        // `.<n>` may follow (REVIEW5 U6).
        let h = hex::encode(o.sha256);
        let expected = match &o.kind {
            ObjectKind::Checkpoint => format!("checkpoints/{size:020}-{h}"),
            ObjectKind::Entries { start, end } => segment_key(*start, *end),
            ObjectKind::Blob { .. } => blob_key(&h),
            ObjectKind::TeamKey => format!("teamkeys/{h}"),
            ObjectKind::Provisional => format!("provisionals/{h}"),
            ObjectKind::Escrow => format!("escrows/{h}"),
            ObjectKind::Social => format!("social/{h}"),
            ObjectKind::Loss => format!("loss/{h}"),
        };
        if split_alt(&o.key).map(|(own, _)| own) != Some(expected.as_str()) {
            return Err(bad(
                name,
                format!("object key {:?} is not {expected:?}", o.key),
            ));
        }
        objects.push(o);
    }
    if objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Checkpoint)
        .count()
        != 1
    {
        return Err(bad(name, "must name exactly one checkpoint"));
    }
    Ok(Manifest {
        origin,
        seq,
        prev,
        size,
        created_at,
        objects,
    })
}

fn hash32(name: &str, h: &str) -> Result<[u8; 32], FormatError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out).map_err(|_| bad(name, format!("bad hash {h:?}")))?;
    Ok(out)
}

/// Encodes log entries `[start, start + entries.len())` as a segment:
/// `"SRMS" u16(format) u16(suite) u64(start) u64(count) (u16(len) entry)*`.
pub fn encode_segment(start: u64, entries: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = entries.iter().map(|e| e.len() + 2).sum();
    let mut v = Vec::with_capacity(24 + total);
    v.extend_from_slice(SEGMENT_MAGIC);
    v.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    v.extend_from_slice(&SUITE_ID.to_be_bytes());
    v.extend_from_slice(&start.to_be_bytes());
    v.extend_from_slice(&(entries.len() as u64).to_be_bytes());
    for e in entries {
        // A log entry is at most MAX_ENTRY_LEN (2107) bytes: it fits a u16.
        let len = u16::try_from(e.len()).unwrap_or(u16::MAX);
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(e);
    }
    v
}

/// Decodes a segment; returns its start index and entries.
///
/// # Errors
/// [`FormatError`] for a wrong magic, version, suite, a truncated or extended segment.
pub fn decode_segment(name: &str, bytes: &[u8]) -> Result<(u64, Vec<Vec<u8>>), FormatError> {
    let head = bytes
        .get(..24)
        .ok_or_else(|| bad(name, "truncated segment"))?;
    let (magic, rest) = head.split_at(4);
    if magic != SEGMENT_MAGIC {
        return Err(bad(name, "not an entry segment"));
    }
    let u16_at = |i: usize| {
        rest.get(i..i + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_be_bytes)
    };
    if u16_at(0) != Some(FORMAT_VERSION) || u16_at(2) != Some(SUITE_ID) {
        return Err(bad(name, "unsupported segment version or suite"));
    }
    let u64_at = |i: usize| {
        rest.get(i..i + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes)
            .unwrap_or_default()
    };
    let (start, count) = (u64_at(4), u64_at(12));
    let mut body = bytes.get(24..).unwrap_or_default();
    let mut entries = Vec::new();
    while !body.is_empty() {
        let (len, tail) = body
            .split_first_chunk::<2>()
            .ok_or_else(|| bad(name, "truncated segment"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        let (e, tail) = tail
            .split_at_checked(len)
            .ok_or_else(|| bad(name, "truncated segment"))?;
        entries.push(e.to_vec());
        body = tail;
    }
    if entries.len() as u64 != count {
        return Err(bad(name, "entry count does not match"));
    }
    Ok((start, entries))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            origin: "serment.log/0011223344556677".into(),
            seq: 1,
            prev: Some([7; 32]),
            size: 3,
            created_at: 1_700_000_000,
            objects: vec![
                ObjectRef {
                    kind: ObjectKind::Checkpoint,
                    key: checkpoint_key(3, b"note"),
                    sha256: sha256(b"note"),
                    len: 4,
                },
                ObjectRef {
                    kind: ObjectKind::Entries { start: 1, end: 3 },
                    key: segment_key(1, 3),
                    sha256: [1; 32],
                    len: 10,
                },
                ObjectRef {
                    kind: ObjectKind::Blob {
                        doc: DocId::from_bytes([9; 16]),
                        version: 2,
                    },
                    key: blob_key(&"ab".repeat(32)),
                    sha256: [0xab; 32],
                    len: 300,
                },
            ],
        }
    }

    #[test]
    fn manifest_sig_input_is_the_protocol_one() {
        // The same construction as serment-core's `sign::sig_input` for another label.
        let core = serment_core::sign::sig_input(serment_core::sign::Context::LogBundle, b"xyz");
        let ours = manifest_sig_input(b"xyz");
        assert_eq!(
            core.strip_suffix(b"log-bundle\0xyz".as_slice()),
            ours.strip_suffix(b"backup-manifest\0xyz".as_slice())
        );
        assert!(ours.starts_with(b"serment/v1/sig/backup-manifest\0"));
    }

    #[test]
    fn manifest_round_trips_and_any_change_breaks_the_signature() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let pk = key.verifying_key().to_bytes();
        let m = sample();
        let bytes = m.sign(&key);
        assert_eq!(Manifest::parse_verified("m", &bytes, &pk).unwrap(), m);
        for i in 0..bytes.len() - 1 {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(Manifest::parse_verified("m", &b, &pk).is_err(), "byte {i}");
        }
        let other = SigningKey::from_bytes(&[6; 32]).verifying_key().to_bytes();
        assert!(Manifest::parse_verified("m", &bytes, &other).is_err());
    }

    /// R11: a manifest signed by the log key naming `../x` or `/etc/hostname` is refused.
    #[test]
    fn a_signed_manifest_naming_a_path_outside_the_target_is_refused() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let pk = key.verifying_key().to_bytes();
        for bad_key in ["../x", "/etc/hostname", "blobs/../../x"] {
            let mut m = sample();
            m.objects[2].key = bad_key.to_owned();
            let err = Manifest::parse_verified("m", &m.sign(&key), &pk).unwrap_err();
            assert!(err.reason.contains("object key"), "{bad_key}: {err}");
        }
    }

    /// REVIEW5 U6: a manifest may name an object under its own name followed by `.<n>` (an
    /// alternative name, when its own was taken), and under nothing else.
    #[test]
    fn an_alternative_name_is_accepted_and_nothing_else() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let pk = key.verifying_key().to_bytes();
        let own = blob_key(&"ab".repeat(32));
        for good in [
            alt_key(&own, 1),
            alt_key(&own, 2),
            alt_key(&own, MAX_ALT_NAMES),
        ] {
            let mut m = sample();
            m.objects[2].key = good.clone();
            let parsed = Manifest::parse_verified("m", &m.sign(&key), &pk).unwrap();
            assert_eq!(parsed.objects[2].key, good);
            assert_eq!(parsed.objects[2].own_key().0, own);
        }
        let seg = segment_key(1, 3);
        let mut m = sample();
        m.objects[1].key = alt_key(&seg, 3);
        assert_eq!(
            Manifest::parse_verified("m", &m.sign(&key), &pk)
                .unwrap()
                .objects[1]
                .own_key(),
            (seg.as_str(), 3)
        );
        let too_far = format!("{own}.{}", MAX_ALT_NAMES + 1);
        for bad_key in [
            format!("{own}.0"),
            format!("{own}.01"),
            format!("{own}."),
            format!("{own}.1.1"),
            format!("{own}.x"),
            format!("{own}.-1"),
            format!("{own}.1/x"),
            format!("{own}./../x"),
            too_far,
            format!("{}.1", blob_key(&"cd".repeat(32))),
        ] {
            let mut m = sample();
            m.objects[2].key = bad_key.clone();
            let err = Manifest::parse_verified("m", &m.sign(&key), &pk).unwrap_err();
            assert!(err.reason.contains("object key"), "{bad_key}: {err}");
        }
    }

    #[test]
    fn segment_round_trips_and_refuses_truncation() {
        let entries = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        let s = encode_segment(7, &entries);
        assert_eq!(decode_segment("s", &s).unwrap(), (7, entries));
        assert!(decode_segment("s", &s[..s.len() - 1]).is_err());
        let mut longer = s.clone();
        longer.extend_from_slice(&[0, 0]);
        assert!(decode_segment("s", &longer).is_err());
    }
}

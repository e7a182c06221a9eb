//! Checkpoints (signed tree heads) as C2SP signed notes, and witness cosignatures
//! (PROTOCOL.md §11.4; C2SP `signed-note`, `tlog-checkpoint`, `tlog-cosignature`).
//!
//! A checkpoint note is
//!
//! ```text
//! <origin>\n<tree size, decimal>\n<root hash, standard base64>\n\n— <key name> <base64(key id[4] || signature)>\n...
//! ```
//!
//! The log signs the note text (the three lines, final newline included) with Ed25519, key type
//! `0x01`; a witness signs `"cosignature/v1\ntime <t>\n" || text` with Ed25519, key type `0x04`,
//! and its signature is `key id[4] || u64 t || signature[64]`. Key ids are
//! `SHA-256(name || "\n" || type || public key)[:4]`. Verifier keys ("vkeys") are
//! `<name>+<key id, 8 hex>+<base64(type || public key)>`.
//!
//! Parsing is strict: the text must be valid UTF-8 without control characters other than `\n`,
//! the size must be canonical decimal, the root exactly 32 bytes of canonical padded base64, and a
//! note carries at most [`MAX_SIGNATURES`] signature lines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::tree::Hash;
use crate::error::{Error, Result};

/// The most signature lines a note may carry.
pub const MAX_SIGNATURES: usize = 32;
/// The longest note accepted, in bytes.
pub const MAX_NOTE_LEN: usize = 16 * 1024;
/// Key type byte of a C2SP Ed25519 note signature (signed-note).
pub const KEY_TYPE_ED25519: u8 = 0x01;
/// Key type byte of a C2SP Ed25519 cosignature (tlog-cosignature, `cosignature/v1`).
pub const KEY_TYPE_COSIGNATURE_V1: u8 = 0x04;
/// The longest key name or origin, in bytes.
pub const MAX_NAME_LEN: usize = 128;

fn bad(reason: &'static str) -> Error {
    Error::BadCheckpoint { reason }
}

/// Whether `name` is a valid key name or origin: 1 to [`MAX_NAME_LEN`] bytes of printable ASCII
/// without spaces or `+`, and not starting with `serment/v1/sig/` (which keeps note signatures
/// apart from the log key's other, domain-separated signatures: PROTOCOL.md §3).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'+')
        && !name.starts_with("serment/v1/sig/")
}

/// `SHA-256(name || "\n" || key_type || public_key)[:4]`, big-endian.
pub fn key_id(name: &str, key_type: u8, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([key_type]);
    h.update(public_key);
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A parsed verifier key: name, type and Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// The key name (for the log: its origin).
    pub name: String,
    /// [`KEY_TYPE_ED25519`] or [`KEY_TYPE_COSIGNATURE_V1`].
    pub key_type: u8,
    /// The Ed25519 public key.
    pub public_key: [u8; 32],
}

impl VerifierKey {
    /// The key id.
    pub fn id(&self) -> u32 {
        key_id(&self.name, self.key_type, &self.public_key)
    }

    /// Parses `<name>+<8 hex>+<base64(type || key)>`, checking the key id.
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`] for anything malformed or a key id that does not match.
    pub fn parse(vkey: &str) -> Result<VerifierKey> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("verifier key: expected name+id+key"));
        };
        if !valid_name(name) || id.len() != 8 {
            return Err(bad("verifier key: invalid name or key id"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("verifier key: key id not hex"))?;
        let raw = STANDARD
            .decode(key)
            .map_err(|_| bad("verifier key: invalid base64"))?;
        let (&key_type, pk) = raw.split_first().ok_or(bad("verifier key: empty key"))?;
        let public_key: [u8; 32] = pk
            .try_into()
            .map_err(|_| bad("verifier key: not an Ed25519 key"))?;
        if key_type != KEY_TYPE_ED25519 && key_type != KEY_TYPE_COSIGNATURE_V1 {
            return Err(bad("verifier key: unknown key type"));
        }
        VerifyingKey::from_bytes(&public_key).map_err(|_| bad("verifier key: invalid point"))?;
        let k = VerifierKey {
            name: name.to_owned(),
            key_type,
            public_key,
        };
        if k.id() != id {
            return Err(bad("verifier key: key id does not match the key"));
        }
        Ok(k)
    }

    /// The encoded form, `<name>+<8 hex>+<base64(type || key)>`.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.key_type);
        raw.extend_from_slice(&self.public_key);
        format!("{}+{:08x}+{}", self.name, self.id(), STANDARD.encode(raw))
    }
}

/// A note signer: the log's checkpoint key (type `0x01`) or a witness key (type `0x04`).
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_type: u8,
    key: SigningKey,
}

impl core::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "NoteSigner({}, ***)", self.name)
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`] for an invalid name or key type.
    pub fn new(name: &str, key_type: u8, seed: &[u8; 32]) -> Result<NoteSigner> {
        if !valid_name(name) {
            return Err(bad("invalid key name"));
        }
        if key_type != KEY_TYPE_ED25519 && key_type != KEY_TYPE_COSIGNATURE_V1 {
            return Err(bad("unknown key type"));
        }
        Ok(NoteSigner {
            name: name.to_owned(),
            key_type,
            key: SigningKey::from_bytes(seed),
        })
    }
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_type: self.key_type,
            public_key: self.key.verifying_key().to_bytes(),
        }
    }
    /// The Ed25519 signing key (the log also signs access entries with it, PROTOCOL.md §11.3).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a checkpoint: a note with this (type `0x01`) key's signature.
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`] if this is not a log key or the checkpoint is invalid.
    pub fn sign_checkpoint(&self, cp: &Checkpoint) -> Result<SignedCheckpoint> {
        if self.key_type != KEY_TYPE_ED25519 || cp.origin != self.name {
            return Err(bad(
                "a checkpoint is signed by the log key named after its origin",
            ));
        }
        let text = cp.text()?;
        let sig = self.key.sign(text.as_bytes()).to_bytes();
        let mut payload = Vec::with_capacity(68);
        payload.extend_from_slice(&self.verifier().id().to_be_bytes());
        payload.extend_from_slice(&sig);
        Ok(SignedCheckpoint {
            checkpoint: cp.clone(),
            signatures: vec![NoteSignature {
                name: self.name.clone(),
                payload,
            }],
        })
    }

    /// Cosigns a checkpoint at POSIX time `time` (C2SP tlog-cosignature, Ed25519 `cosignature/v1`).
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`] if this is not a witness key or the time exceeds `2^63 - 1`.
    pub fn cosign(&self, cp: &Checkpoint, time: u64) -> Result<NoteSignature> {
        if self.key_type != KEY_TYPE_COSIGNATURE_V1 || time > i64::MAX as u64 {
            return Err(bad(
                "cosignatures need a type 0x04 key and a time below 2^63",
            ));
        }
        let msg = cosignature_message(cp, time)?;
        let sig = self.key.sign(&msg).to_bytes();
        let mut payload = Vec::with_capacity(76);
        payload.extend_from_slice(&self.verifier().id().to_be_bytes());
        payload.extend_from_slice(&time.to_be_bytes());
        payload.extend_from_slice(&sig);
        Ok(NoteSignature {
            name: self.name.clone(),
            payload,
        })
    }
}

fn cosignature_message(cp: &Checkpoint, time: u64) -> Result<Vec<u8>> {
    let text = cp.text()?;
    Ok(format!("cosignature/v1\ntime {time}\n{text}").into_bytes())
}

/// A tree head: the log's origin, its size and root (C2SP tlog-checkpoint; no extension lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (its name).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 9162 root hash of those leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: three lines, each ending in `\n`.
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`] for an invalid origin.
    pub fn text(&self) -> Result<String> {
        if !valid_name(&self.origin) {
            return Err(bad("invalid origin"));
        }
        Ok(format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        ))
    }

    fn parse_text(text: &str) -> Result<Checkpoint> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root), Some(""), None) = (
            lines.next(),
            lines.next(),
            lines.next(),
            lines.next(),
            lines.next(),
        ) else {
            return Err(bad("expected exactly origin, size and root lines"));
        };
        if !valid_name(origin) {
            return Err(bad("invalid origin"));
        }
        let canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size: u64 = canonical
            .then(|| size.parse().ok())
            .flatten()
            .ok_or(bad("tree size is not canonical decimal"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(bad("root hash is not 32 bytes of base64"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// One signature line of a note: the key name and `base64` payload (key id first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The decoded payload: `key id[4] || signature` (a cosignature: `key id || u64 time || sig`).
    pub payload: Vec<u8>,
}

impl NoteSignature {
    /// The signature line without its final newline: `— <name> <base64 payload>`.
    pub fn line(&self) -> String {
        format!("\u{2014} {} {}", self.name, STANDARD.encode(&self.payload))
    }

    /// Parses one line (without its newline).
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`].
    pub fn parse_line(line: &str) -> Result<NoteSignature> {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or(bad("signature line must start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or(bad("signature line: expected name and signature"))?;
        if !valid_name(name) {
            return Err(bad("signature line: invalid key name"));
        }
        let payload = STANDARD
            .decode(b64)
            .map_err(|_| bad("signature line: invalid base64"))?;
        if payload.len() < 5 || payload.len() > 4 + 8 + 64 {
            return Err(bad("signature line: wrong length"));
        }
        Ok(NoteSignature {
            name: name.to_owned(),
            payload,
        })
    }

    /// The key id the line names (the payload's first four bytes, big-endian).
    pub fn key_id(&self) -> Option<u32> {
        let b = self.payload.get(..4)?;
        Some(u32::from_be_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    }

    /// The cosignature time, for a well-formed `cosignature/v1` line.
    pub fn cosignature_time(&self) -> Option<u64> {
        let t: [u8; 8] = self.payload.get(4..12)?.try_into().ok()?;
        (self.payload.len() == 76).then(|| u64::from_be_bytes(t))
    }
}

/// A checkpoint with its signature lines, as carried in a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The tree head.
    pub checkpoint: Checkpoint,
    /// Signature lines, in order (the log's first, then cosignatures).
    pub signatures: Vec<NoteSignature>,
}

impl SignedCheckpoint {
    /// Parses a note strictly (PROTOCOL.md §11.4).
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`].
    pub fn parse(note: &str) -> Result<SignedCheckpoint> {
        if note.len() > MAX_NOTE_LEN {
            return Err(bad("note too long"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("control character in note"));
        }
        let (text, sigs) = note
            .split_once("\n\n")
            .ok_or(bad("no blank line before the signatures"))?;
        let text = format!("{text}\n");
        let checkpoint = Checkpoint::parse_text(&text)?;
        let sigs = sigs
            .strip_suffix('\n')
            .ok_or(bad("note must end with a newline"))?;
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            signatures.push(NoteSignature::parse_line(line)?);
            if signatures.len() > MAX_SIGNATURES {
                return Err(bad("too many signatures"));
            }
        }
        Ok(SignedCheckpoint {
            checkpoint,
            signatures,
        })
    }

    /// The note: text, blank line, one line per signature.
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`] for an invalid origin.
    pub fn encode(&self) -> Result<String> {
        let mut s = self.checkpoint.text()?;
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.line());
            s.push('\n');
        }
        Ok(s)
    }

    /// Verifies the log's signature with `log_key` (type `0x01`, named after the origin).
    ///
    /// # Errors
    /// [`Error::BadCheckpoint`] for a key that is not this log's; [`Error::BadSignature`] if no
    /// line by that key verifies.
    pub fn verify_log_signature(&self, log_key: &VerifierKey) -> Result<()> {
        if log_key.key_type != KEY_TYPE_ED25519 || log_key.name != self.checkpoint.origin {
            return Err(bad(
                "the checkpoint is for another log (origin or key type differs)",
            ));
        }
        let text = self.checkpoint.text()?;
        let id = log_key.id();
        let vk =
            VerifyingKey::from_bytes(&log_key.public_key).map_err(|_| bad("invalid log key"))?;
        for s in &self.signatures {
            if s.name != log_key.name || s.key_id() != Some(id) {
                continue;
            }
            let Some(sig) = s
                .payload
                .get(4..)
                .and_then(|b| Signature::from_slice(b).ok())
            else {
                continue;
            };
            if vk.verify_strict(text.as_bytes(), &sig).is_ok() {
                return Ok(());
            }
        }
        Err(Error::BadSignature { what: "checkpoint" })
    }

    /// Verifies one cosignature line against a witness key; returns its time.
    ///
    /// # Errors
    /// [`Error::BadSignature`].
    pub fn verify_cosignature(&self, sig: &NoteSignature, witness: &VerifierKey) -> Result<u64> {
        let fail = Error::BadSignature {
            what: "cosignature",
        };
        if witness.key_type != KEY_TYPE_COSIGNATURE_V1
            || sig.name != witness.name
            || sig.key_id() != Some(witness.id())
        {
            return Err(fail);
        }
        let time = sig.cosignature_time().ok_or(fail.clone())?;
        let s = sig
            .payload
            .get(12..)
            .and_then(|b| Signature::from_slice(b).ok())
            .ok_or(fail.clone())?;
        let vk = VerifyingKey::from_bytes(&witness.public_key).map_err(|_| fail.clone())?;
        let msg = cosignature_message(&self.checkpoint, time)?;
        vk.verify_strict(&msg, &s).map_err(|_| fail)?;
        Ok(time)
    }

    /// How many distinct `witnesses` cosigned this checkpoint with a valid signature.
    pub fn cosigned_by(&self, witnesses: &[VerifierKey]) -> usize {
        witnesses
            .iter()
            .filter(|w| {
                self.signatures
                    .iter()
                    .any(|s| self.verify_cosignature(s, w).is_ok())
            })
            .count()
    }

    /// Appends a witness's cosignature line, unless it would shadow the log's own signature (its
    /// name is the origin), repeat a line of the same name and key id, or take the note past
    /// [`MAX_SIGNATURES`] lines. Returns whether it was appended.
    pub fn push_cosignature(&mut self, sig: NoteSignature) -> bool {
        if sig.name == self.checkpoint.origin
            || self.signatures.len() >= MAX_SIGNATURES
            || sig.key_id().is_none()
            || self
                .signatures
                .iter()
                .any(|s| s.name == sig.name && s.key_id() == sig.key_id())
        {
            return false;
        }
        self.signatures.push(sig);
        true
    }

    /// Adds (or replaces) the signature line of `sig.name`.
    pub fn add_signature(&mut self, sig: NoteSignature) {
        self.signatures.retain(|s| s.name != sig.name);
        self.signatures.push(sig);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn log() -> NoteSigner {
        NoteSigner::new("serment.example/log", KEY_TYPE_ED25519, &[7; 32]).unwrap()
    }

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "serment.example/log".into(),
            size: 42,
            root: [9; 32],
        }
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let signed = log().sign_checkpoint(&cp()).unwrap();
        let note = signed.encode().unwrap();
        let parsed = SignedCheckpoint::parse(&note).unwrap();
        assert_eq!(parsed, signed);
        let vk = VerifierKey::parse(&log().verifier().encode()).unwrap();
        parsed.verify_log_signature(&vk).unwrap();
        // Any change to the text breaks the signature.
        let mut t = parsed.clone();
        t.checkpoint.size = 43;
        assert!(t.verify_log_signature(&vk).is_err());
    }

    #[test]
    fn cosignature_round_trip() {
        let w = NoteSigner::new("witness.example/w1", KEY_TYPE_COSIGNATURE_V1, &[8; 32]).unwrap();
        let mut signed = log().sign_checkpoint(&cp()).unwrap();
        signed.add_signature(w.cosign(&cp(), 1_700_000_000).unwrap());
        let parsed = SignedCheckpoint::parse(&signed.encode().unwrap()).unwrap();
        let wk = VerifierKey::parse(&w.verifier().encode()).unwrap();
        assert_eq!(parsed.cosigned_by(std::slice::from_ref(&wk)), 1);
        let mut other = parsed.clone();
        other.checkpoint.root = [1; 32];
        assert_eq!(other.cosigned_by(&[wk]), 0);
    }

    #[test]
    fn strict_parsing() {
        let note = log().sign_checkpoint(&cp()).unwrap().encode().unwrap();
        for bad_note in [
            note.replace("\n42\n", "\n042\n"),
            note.replace("\n42\n", "\n+42\n"),
            note.replace("\n\n", "\n"),
            note.trim_end().to_owned(),
            note.replace('\u{2014}', "-"),
            format!("{note}\u{0007}"),
            note.replacen("serment.example/log\n", "serment/v1/sig/x\n", 1),
        ] {
            assert!(SignedCheckpoint::parse(&bad_note).is_err(), "{bad_note:?}");
        }
        assert!(VerifierKey::parse("a+00000000+AQ==").is_err());
        let mut vk = log().verifier().encode();
        vk.replace_range(vk.find('+').unwrap() + 1..vk.find('+').unwrap() + 3, "ff");
        assert!(VerifierKey::parse(&vk).is_err());
    }
}

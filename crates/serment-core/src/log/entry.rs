//! Log entries (PROTOCOL.md §11.3): one canonical, versioned envelope around a payload signed by
//! its author.
//!
//! ```text
//! LogEntry {
//!   magic        [4] = "SRML"
//!   format_version u16 = 1
//!   suite_id     u16 = 1
//!   kind         u8          // 1 device, 2 rotation, 3 revocation, 4 wrap, 5 removal, 6 access,
//!                            // 7 team change, 8 web bundle, 9 erasure, 10 provisional
//!                            // recipient, 11 claim, 12 recovery, 13 recovery contacts,
//!                            // 14 recovery request, 15 recovery approval, 16 recovery veto
//!   logged_at    u64         // server time of the append, seconds since the Unix epoch
//!   prev_index   u64         // index of the previous entry with the same subject, or 2^64 - 1
//!   prev_hash    [32]        // its leaf hash, or 32 zero bytes
//!   payload      bytes16     // ≤ 2048 bytes, signed by its author (below)
//! }
//! ```
//!
//! The subject of an entry is a handle (kinds 1 to 3), a document id (kinds 4 to 6 and 9) or a team
//! name (kind 7); every web bundle entry (kind 8) has the one subject [`Subject::WebBundle`]. The
//! `prev_*` fields chain the entries of one subject, so a history served with inclusion proofs
//! cannot drop or reorder an entry in its middle.

use ed25519_dalek::SigningKey;

use super::tree::{Hash, leaf_hash};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{
    DeviceRecord, DeviceSecret, IdentitySecret, MAX_HANDLE_LEN, validate_handle,
};
use crate::ids::{DocId, KeyId, KeyKind};
use crate::sign::{self, Context};
use crate::wrap::WrappedKey;
use crate::{FORMAT_VERSION, RECORD_SUITE_ID};

/// The largest payload, in bytes: room for a suite-3 device record (at most 1521 bytes, with
/// its 1216-byte X-Wing key) and a suite-3 key wrap (1356 bytes), PROTOCOL.md §11.3.
pub const MAX_PAYLOAD_LEN: usize = 2048;
/// The largest encoded entry, in bytes.
pub const MAX_ENTRY_LEN: usize = 4 + 2 + 2 + 1 + 8 + 8 + 32 + 2 + MAX_PAYLOAD_LEN;
/// `prev_index` of the first entry of a subject.
pub const NO_PREV: u64 = u64::MAX;
/// The most a receipt's time may differ from the server's clock, in seconds.
pub const RECEIPT_WINDOW_SECS: u64 = 300;

/// The kind byte of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// A device record (§4), signed by the identity key.
    Device = 1,
    /// An identity key rotation, signed by the old and new identity keys.
    Rotation = 2,
    /// A device revocation, signed by the identity key.
    Revocation = 3,
    /// A key wrap (§7), signed by the sharing device.
    Wrap = 4,
    /// A recipient removal, signed by the author device.
    Removal = 5,
    /// An access event, co-signed by the reading device and the log.
    Access = 6,
    /// A care-team membership change, signed by an admin's device (PROTOCOL.md §12.2).
    Team = 7,
    /// The patient's page's asset bundle, signed by the log key (PROTOCOL.md §11.3).
    Bundle = 8,
    /// An erasure tombstone, signed by the requester device (PROTOCOL.md §11.3.2).
    Erasure = 9,
    /// A provisional recipient's record, signed by the lab device (PROTOCOL.md §15).
    Provisional = 10,
    /// A claim of a provisional recipient, signed by its key and the claimant's device
    /// (PROTOCOL.md §15).
    Claim = 11,
    /// A recovery with a recovery code, signed by the identity key (PROTOCOL.md §4.2).
    Recovery = 12,
    /// A handle's recovery contacts, signed by its identity key (PROTOCOL.md §4.3).
    RecoveryContacts = 13,
    /// A social recovery request, signed by the requesting new device (PROTOCOL.md §4.3).
    RecoveryRequest = 14,
    /// A contact's approval of a request, signed by the contact's device (PROTOCOL.md §4.3).
    RecoveryApproval = 15,
    /// A veto of a request, signed by a device of the identity (PROTOCOL.md §4.3).
    RecoveryVeto = 16,
}

impl EntryKind {
    /// The kind of a kind byte.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an unknown kind.
    pub fn from_u8(b: u8) -> Result<EntryKind> {
        Ok(match b {
            1 => EntryKind::Device,
            2 => EntryKind::Rotation,
            3 => EntryKind::Revocation,
            4 => EntryKind::Wrap,
            5 => EntryKind::Removal,
            6 => EntryKind::Access,
            7 => EntryKind::Team,
            8 => EntryKind::Bundle,
            9 => EntryKind::Erasure,
            10 => EntryKind::Provisional,
            11 => EntryKind::Claim,
            12 => EntryKind::Recovery,
            13 => EntryKind::RecoveryContacts,
            14 => EntryKind::RecoveryRequest,
            15 => EntryKind::RecoveryApproval,
            16 => EntryKind::RecoveryVeto,
            _ => {
                return Err(Error::InvalidField {
                    field: "log entry kind",
                    reason: "unknown kind",
                });
            }
        })
    }
    /// A lowercase name: `device`, `rotation`, `revocation`, `wrap`, `removal`, `access`,
    /// `team`, `bundle`, `erasure`, `provisional`, `claim`, `recovery`, `recovery-contacts`,
    /// `recovery-request`, `recovery-approval`, `recovery-veto`.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Device => "device",
            EntryKind::Rotation => "rotation",
            EntryKind::Revocation => "revocation",
            EntryKind::Wrap => "wrap",
            EntryKind::Removal => "removal",
            EntryKind::Access => "access",
            EntryKind::Team => "team",
            EntryKind::Bundle => "bundle",
            EntryKind::Erasure => "erasure",
            EntryKind::Provisional => "provisional",
            EntryKind::Claim => "claim",
            EntryKind::Recovery => "recovery",
            EntryKind::RecoveryContacts => "recovery-contacts",
            EntryKind::RecoveryRequest => "recovery-request",
            EntryKind::RecoveryApproval => "recovery-approval",
            EntryKind::RecoveryVeto => "recovery-veto",
        }
    }
}

/// What a chain of entries is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A directory handle: device records, rotations, revocations.
    Handle(String),
    /// A document: wraps, removals, accesses, its erasure.
    Document(DocId),
    /// A care team: its membership changes (PROTOCOL.md §12).
    Team(String),
    /// The patient's page: every web bundle entry, one chain (PROTOCOL.md §11.3).
    WebBundle,
    /// A provisional recipient, by its id: its record and its claim (PROTOCOL.md §15).
    Provisional(KeyId),
    /// A handle's social recovery chain: its contacts entries, the requests to recover it,
    /// their approvals and vetoes (kinds 13-16, PROTOCOL.md §4.3), apart from its key history.
    Social(String),
}

/// A link to the previous entry of the same subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrevLink {
    /// Its index in the log.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
}

/// What a reader fetched (PROTOCOL.md §11.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AccessWhat {
    /// Its key wrap.
    Wrap = 1,
    /// The sealed blob.
    Blob = 2,
}

impl AccessWhat {
    /// `wrap` or `blob`.
    pub fn name(self) -> &'static str {
        match self {
            AccessWhat::Wrap => "wrap",
            AccessWhat::Blob => "blob",
        }
    }
    fn from_u8(b: u8) -> Result<AccessWhat> {
        match b {
            1 => Ok(AccessWhat::Wrap),
            2 => Ok(AccessWhat::Blob),
            _ => Err(Error::InvalidField {
                field: "access kind",
                reason: "expected 1 (wrap) or 2 (blob)",
            }),
        }
    }
}

/// An identity key rotation (payload of kind 2).
///
/// ```text
/// Rotation { magic "SRMR", format_version u16, suite_id u16, handle str8, old_identity_key [32],
///            new_identity_key [32], at u64, sig_old [64], sig_new [64] }
/// ```
/// Both signatures are over `sig_input("log-rotation", all bytes before sig_old)`: the old key
/// authorises the change, the new key proves it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The handle.
    pub handle: String,
    /// The identity key rotated away.
    pub old_identity_key: [u8; 32],
    /// The new identity key.
    pub new_identity_key: [u8; 32],
    /// When, seconds since the Unix epoch (author's clock).
    pub at: u64,
}

/// A device revocation (payload of kind 3).
///
/// ```text
/// Revocation { magic "SRMV", format_version u16, suite_id u16, handle str8, identity_key [32],
///              device_id [32], at u64, signature [64] }   // sig_input("log-revocation", ...)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The handle.
    pub handle: String,
    /// The identity key that signed.
    pub identity_key: [u8; 32],
    /// The revoked device.
    pub device_id: KeyId,
    /// When, seconds since the Unix epoch (author's clock).
    pub at: u64,
}

/// A recipient removal (payload of kind 5).
///
/// ```text
/// Removal { magic "SRMX", format_version u16, suite_id u16, doc_id [16], doc_version u32,
///           recipient [32], author_device [32], at u64, signature [64] }  // sig_input("log-removal", ...)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The document.
    pub doc_id: DocId,
    /// The version.
    pub doc_version: u32,
    /// The device whose wrap is removed.
    pub recipient: KeyId,
    /// The author device that signed.
    pub author_device: KeyId,
    /// When, seconds since the Unix epoch (author's clock).
    pub at: u64,
    signature: [u8; 64],
    signed: Vec<u8>,
}

/// An access event (payload of kind 6).
///
/// ```text
/// Access { magic "SRMA", format_version u16, suite_id u16, doc_id [16], doc_version u32, what u8,
///          device_id [32], at u64, nonce [16], has_receipt u8, receipt [64] if has_receipt = 1,
///          server_signature [64] }   // log key over sig_input("log-access", all bytes before it)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The document.
    pub doc_id: DocId,
    /// The version.
    pub doc_version: u32,
    /// What was fetched.
    pub what: AccessWhat,
    /// The reading device.
    pub device_id: KeyId,
    /// When, seconds since the Unix epoch (the reader's clock, checked by the server).
    pub at: u64,
    /// The reader's random nonce.
    pub nonce: [u8; 16],
    /// The reader's receipt signature, if it sent one.
    pub receipt: Option<[u8; 64]>,
    server_signature: [u8; 64],
    signed: Vec<u8>,
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A verified device record.
    Device(DeviceRecord),
    /// A verified rotation (both signatures checked).
    Rotation(Rotation),
    /// A verified revocation.
    Revocation(Revocation),
    /// A key wrap (syntax only: the sharer's key is checked by the caller).
    Wrap(WrappedKey),
    /// A removal (syntax only: [`Removal::verify`] with the author's key).
    Removal(Removal),
    /// An access (syntax only: [`Access::verify`] with the log and reader keys).
    Access(Access),
    /// A team change (its signature checked; whether the signer could sign it is
    /// [`crate::team::replay_team`]'s check).
    Team(crate::team::TeamChange),
    /// A web bundle (syntax only: [`super::bundle::WebBundle::verify`] with the log key).
    Bundle(super::bundle::WebBundle),
    /// An erasure tombstone (syntax only: [`super::erasure::Erasure::verify`] with the
    /// requester's key; the right to erase is checked against the document's chain).
    Erasure(super::erasure::Erasure),
    /// A provisional recipient's record (its signature by the lab device checked; whether
    /// that device is the lab identity's is the reader's check).
    Provisional(crate::provisional::ProvisionalRecord),
    /// A claim (both signatures checked; whether the provisional key is the record's and the
    /// device the handle's is the reader's check).
    Claim(crate::provisional::Claim),
    /// A verified recovery entry (its identity signature checked; whether that key is current
    /// is the key history's check, [`super::history::replay_keys`]).
    Recovery(Recovery),
    /// A verified contacts entry (whether its identity key is current is the reader's check).
    RecoveryContacts(super::social::RecoveryContacts),
    /// A verified recovery request (self-signed by the new device).
    RecoveryRequest(super::social::SocialRecoveryRequest),
    /// A verified approval (whether the device is the contact's is the reader's check).
    RecoveryApproval(super::social::RecoveryApproval),
    /// A verified veto (whether the device is the identity's is the reader's check).
    RecoveryVeto(super::social::RecoveryVeto),
}

/// A decoded log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The kind.
    pub kind: EntryKind,
    /// Server time of the append.
    pub logged_at: u64,
    /// The previous entry of the same subject.
    pub prev: Option<PrevLink>,
    /// The payload, decoded.
    pub payload: Payload,
    /// The payload bytes as received.
    pub payload_bytes: Vec<u8>,
}

const ENTRY_MAGIC: &[u8; 4] = b"SRML";

/// Encodes an entry envelope.
///
/// # Errors
/// [`Error::TooLarge`] if the payload is over [`MAX_PAYLOAD_LEN`].
pub fn encode_entry(
    kind: EntryKind,
    logged_at: u64,
    prev: Option<PrevLink>,
    payload: &[u8],
) -> Result<Vec<u8>> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(Error::TooLarge {
            what: "log entry payload",
            limit: MAX_PAYLOAD_LEN as u64,
        });
    }
    let mut w = Writer::with_capacity(MAX_ENTRY_LEN);
    w.bytes(ENTRY_MAGIC)
        .u16(FORMAT_VERSION)
        .u16(RECORD_SUITE_ID)
        .u8(kind as u8)
        .u64(logged_at)
        .u64(prev.map_or(NO_PREV, |p| p.index))
        .bytes(&prev.map_or([0; 32], |p| p.leaf_hash))
        .u16(payload.len() as u16)
        .bytes(payload);
    Ok(w.into_vec())
}

impl LogEntry {
    /// Decodes an entry strictly and checks every signature the payload carries with it: the
    /// device record's, the rotation's two, the revocation's. Wraps, removals and accesses need
    /// keys from elsewhere (see [`Payload`]).
    ///
    /// # Errors
    /// Format errors, [`Error::BadSignature`], [`Error::TooLarge`].
    pub fn decode(bytes: &[u8]) -> Result<LogEntry> {
        const WHAT: &str = "log entry";
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(Error::TooLarge {
                what: WHAT,
                limit: MAX_ENTRY_LEN as u64,
            });
        }
        let mut r = Reader::new(bytes, WHAT);
        r.magic(ENTRY_MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let kind = EntryKind::from_u8(r.u8()?)?;
        let logged_at = r.u64()?;
        let prev_index = r.u64()?;
        let prev_hash: Hash = r.array()?;
        let prev = if prev_index == NO_PREV {
            if prev_hash != [0; 32] {
                return Err(Error::InvalidField {
                    field: "prev_hash",
                    reason: "must be zero when there is no previous entry",
                });
            }
            None
        } else {
            Some(PrevLink {
                index: prev_index,
                leaf_hash: prev_hash,
            })
        };
        let len = usize::from(r.u16()?);
        if len > MAX_PAYLOAD_LEN {
            return Err(Error::TooLarge {
                what: "log entry payload",
                limit: MAX_PAYLOAD_LEN as u64,
            });
        }
        let payload_bytes = r.take(len)?.to_vec();
        r.finish()?;
        let payload = match kind {
            EntryKind::Device => Payload::Device(DeviceRecord::decode_verified(&payload_bytes)?),
            EntryKind::Rotation => Payload::Rotation(Rotation::decode_verified(&payload_bytes)?),
            EntryKind::Revocation => {
                Payload::Revocation(Revocation::decode_verified(&payload_bytes)?)
            }
            EntryKind::Wrap => Payload::Wrap(WrappedKey::decode(&payload_bytes)?),
            EntryKind::Removal => Payload::Removal(Removal::decode(&payload_bytes)?),
            EntryKind::Access => Payload::Access(Access::decode(&payload_bytes)?),
            EntryKind::Team => {
                Payload::Team(crate::team::TeamChange::decode_verified(&payload_bytes)?)
            }
            EntryKind::Bundle => Payload::Bundle(super::bundle::WebBundle::decode(&payload_bytes)?),
            EntryKind::Erasure => {
                Payload::Erasure(super::erasure::Erasure::decode(&payload_bytes)?)
            }
            EntryKind::Provisional => Payload::Provisional(
                crate::provisional::ProvisionalRecord::decode_verified(&payload_bytes)?,
            ),
            EntryKind::Claim => {
                Payload::Claim(crate::provisional::Claim::decode_verified(&payload_bytes)?)
            }
            EntryKind::Recovery => Payload::Recovery(Recovery::decode_verified(&payload_bytes)?),
            EntryKind::RecoveryContacts => Payload::RecoveryContacts(
                super::social::RecoveryContacts::decode_verified(&payload_bytes)?,
            ),
            EntryKind::RecoveryRequest => Payload::RecoveryRequest(
                super::social::SocialRecoveryRequest::decode_verified(&payload_bytes)?,
            ),
            EntryKind::RecoveryApproval => Payload::RecoveryApproval(
                super::social::RecoveryApproval::decode_verified(&payload_bytes)?,
            ),
            EntryKind::RecoveryVeto => Payload::RecoveryVeto(
                super::social::RecoveryVeto::decode_verified(&payload_bytes)?,
            ),
        };
        Ok(LogEntry {
            kind,
            logged_at,
            prev,
            payload,
            payload_bytes,
        })
    }

    /// The subject whose chain this entry belongs to.
    pub fn subject(&self) -> Subject {
        match &self.payload {
            Payload::Device(d) => Subject::Handle(d.handle.clone()),
            Payload::Rotation(r) => Subject::Handle(r.handle.clone()),
            Payload::Revocation(r) => Subject::Handle(r.handle.clone()),
            Payload::Wrap(w) => Subject::Document(w.doc_id),
            Payload::Removal(r) => Subject::Document(r.doc_id),
            Payload::Access(a) => Subject::Document(a.doc_id),
            Payload::Team(t) => Subject::Team(t.body.team.clone()),
            Payload::Bundle(_) => Subject::WebBundle,
            Payload::Erasure(e) => Subject::Document(e.doc_id),
            Payload::Provisional(p) => Subject::Provisional(p.id()),
            Payload::Claim(c) => Subject::Provisional(c.provisional_id()),
            Payload::Recovery(r) => Subject::Handle(r.handle.clone()),
            Payload::RecoveryContacts(c) => Subject::Social(c.handle.clone()),
            Payload::RecoveryRequest(r) => Subject::Social(r.handle.clone()),
            Payload::RecoveryApproval(a) => Subject::Social(a.handle.clone()),
            Payload::RecoveryVeto(v) => Subject::Social(v.handle.clone()),
        }
    }
}

fn take_sig(r: &mut Reader<'_>) -> Result<[u8; 64]> {
    r.array()
}

impl Rotation {
    const MAGIC: &'static [u8; 4] = b"SRMR";

    /// Builds and signs a rotation from `old` to `new` for `handle`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an invalid handle.
    pub fn sign(
        handle: &str,
        old: &IdentitySecret,
        new: &IdentitySecret,
        at: u64,
    ) -> Result<Vec<u8>> {
        validate_handle(handle)?;
        let mut w = Writer::with_capacity(256);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .str8("handle", handle)?
            .bytes(&old.public_key())
            .bytes(&new.public_key())
            .u64(at);
        let s_old = sign::sign(old.signing_key(), Context::LogRotation, w.as_slice());
        let s_new = sign::sign(new.signing_key(), Context::LogRotation, w.as_slice());
        w.bytes(&s_old).bytes(&s_new);
        Ok(w.into_vec())
    }

    /// Decodes a rotation and verifies both signatures.
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<Rotation> {
        const WHAT: &str = "rotation";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let old_identity_key: [u8; 32] = r.array()?;
        let new_identity_key: [u8; 32] = r.array()?;
        let at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let s_old = take_sig(&mut r)?;
        let s_new = take_sig(&mut r)?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        if old_identity_key == new_identity_key {
            return Err(Error::InvalidField {
                field: "rotation",
                reason: "the new identity key equals the old one",
            });
        }
        sign::verify(
            &old_identity_key,
            Context::LogRotation,
            signed,
            &s_old,
            WHAT,
        )?;
        sign::verify(
            &new_identity_key,
            Context::LogRotation,
            signed,
            &s_new,
            WHAT,
        )?;
        Ok(Rotation {
            handle,
            old_identity_key,
            new_identity_key,
            at,
        })
    }
}

impl Revocation {
    const MAGIC: &'static [u8; 4] = b"SRMV";

    /// Builds and signs a revocation of `device_id` by `identity`.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an invalid handle.
    pub fn sign(
        handle: &str,
        identity: &IdentitySecret,
        device_id: &KeyId,
        at: u64,
    ) -> Result<Vec<u8>> {
        validate_handle(handle)?;
        let mut w = Writer::with_capacity(256);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .str8("handle", handle)?
            .bytes(&identity.public_key())
            .bytes(device_id.as_bytes())
            .u64(at);
        let s = sign::sign(identity.signing_key(), Context::LogRevocation, w.as_slice());
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes a revocation and verifies its signature.
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<Revocation> {
        const WHAT: &str = "revocation";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let identity_key: [u8; 32] = r.array()?;
        let device_id = KeyId::from_bytes(r.array()?);
        let at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let s = take_sig(&mut r)?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        sign::verify(&identity_key, Context::LogRevocation, signed, &s, WHAT)?;
        Ok(Revocation {
            handle,
            identity_key,
            device_id,
            at,
        })
    }

    /// The identity id that signed.
    pub fn identity_id(&self) -> KeyId {
        KeyId::of(KeyKind::Identity, &self.identity_key)
    }
}

/// A recovery with a recovery code (payload of kind 12, PROTOCOL.md §4.2): the identity says
/// which recovery device was used and which device it enrolled.
///
/// ```text
/// Recovery { magic "SRMY", format_version u16, suite_id u16, handle str8, identity_key [32],
///            recovery_device [32], new_device [32], at u64, signature [64] }
///            // sig_input("log-recovery", all bytes before the signature), identity key
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The handle.
    pub handle: String,
    /// The identity key that signed.
    pub identity_key: [u8; 32],
    /// The recovery device whose escrow was opened (burnt by this recovery).
    pub recovery_device: KeyId,
    /// The device the recovery enrolled.
    pub new_device: KeyId,
    /// When, seconds since the Unix epoch (author's clock).
    pub at: u64,
}

impl Recovery {
    const MAGIC: &'static [u8; 4] = b"SRMY";

    /// Builds and signs a recovery entry.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for an invalid handle.
    pub fn sign(
        handle: &str,
        identity: &IdentitySecret,
        recovery_device: &KeyId,
        new_device: &KeyId,
        at: u64,
    ) -> Result<Vec<u8>> {
        validate_handle(handle)?;
        let mut w = Writer::with_capacity(256);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .str8("handle", handle)?
            .bytes(&identity.public_key())
            .bytes(recovery_device.as_bytes())
            .bytes(new_device.as_bytes())
            .u64(at);
        let s = sign::sign(identity.signing_key(), Context::LogRecovery, w.as_slice());
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes a recovery entry and verifies its signature.
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<Recovery> {
        const WHAT: &str = "recovery";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let identity_key: [u8; 32] = r.array()?;
        let recovery_device = KeyId::from_bytes(r.array()?);
        let new_device = KeyId::from_bytes(r.array()?);
        let at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let s = take_sig(&mut r)?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?;
        sign::verify(&identity_key, Context::LogRecovery, signed, &s, WHAT)?;
        if recovery_device == new_device {
            return Err(Error::InvalidField {
                field: "recovery",
                reason: "the new device is the recovery device",
            });
        }
        Ok(Recovery {
            handle,
            identity_key,
            recovery_device,
            new_device,
            at,
        })
    }

    /// The identity id that signed.
    pub fn identity_id(&self) -> KeyId {
        KeyId::of(KeyKind::Identity, &self.identity_key)
    }
}

impl Removal {
    const MAGIC: &'static [u8; 4] = b"SRMX";

    /// Builds and signs a removal of `recipient` from a version authored by `author`.
    pub fn sign(
        doc_id: &DocId,
        doc_version: u32,
        recipient: &KeyId,
        author: &DeviceSecret,
        at: u64,
    ) -> Vec<u8> {
        let mut w = Writer::with_capacity(160);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .bytes(doc_id.as_bytes())
            .u32(doc_version)
            .bytes(recipient.as_bytes())
            .bytes(author.id().as_bytes())
            .u64(at);
        let s = sign::sign(author.signing_key(), Context::LogRemoval, w.as_slice());
        w.bytes(&s);
        w.into_vec()
    }

    /// Decodes a removal (syntax only).
    ///
    /// # Errors
    /// Format errors.
    pub fn decode(bytes: &[u8]) -> Result<Removal> {
        const WHAT: &str = "removal";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let doc_id = DocId::from_bytes(r.array()?);
        let doc_version = r.u32()?;
        let recipient = KeyId::from_bytes(r.array()?);
        let author_device = KeyId::from_bytes(r.array()?);
        let at = r.u64()?;
        let signed_len = bytes.len() - r.remaining();
        let signature = take_sig(&mut r)?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?
            .to_vec();
        Ok(Removal {
            doc_id,
            doc_version,
            recipient,
            author_device,
            at,
            signature,
            signed,
        })
    }

    /// Verifies the author's signature; `author_signing_key` must be the key of
    /// [`Removal::author_device`].
    ///
    /// # Errors
    /// [`Error::WrongSigner`], [`Error::BadSignature`].
    pub fn verify(&self, author_signing_key: &[u8; 32]) -> Result<()> {
        let id = KeyId::of(KeyKind::Device, author_signing_key);
        if id != self.author_device {
            return Err(Error::WrongSigner {
                what: "removal",
                expected: self.author_device.to_string(),
                found: id.to_string(),
            });
        }
        sign::verify(
            author_signing_key,
            Context::LogRemoval,
            &self.signed,
            &self.signature,
            "removal",
        )
    }
}

/// The access receipt a reader sends with a fetch (PROTOCOL.md §11.5): header
/// `Serment-Receipt: base64url(at u64 || nonce [16] || signature [64])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The reader's time, seconds since the Unix epoch.
    pub at: u64,
    /// 16 random bytes, never reused by a device.
    pub nonce: [u8; 16],
    /// Ed25519 by the reading device over `sig_input("access-receipt", receipt_body(...))`.
    pub signature: [u8; 64],
}

/// The signed body of a receipt: `origin str8 || doc_id [16] || doc_version u32 || what u8 ||
/// device_id [32] || at u64 || nonce [16]`. Binding the origin, the device and the nonce keeps a
/// receipt from being replayed to another log, reflected onto another device, or reused.
fn receipt_body(
    origin: &str,
    doc_id: &DocId,
    doc_version: u32,
    what: AccessWhat,
    device_id: &KeyId,
    at: u64,
    nonce: &[u8; 16],
) -> Result<Vec<u8>> {
    let mut w = Writer::with_capacity(256);
    w.str8("origin", origin)?
        .bytes(doc_id.as_bytes())
        .u32(doc_version)
        .u8(what as u8)
        .bytes(device_id.as_bytes())
        .u64(at)
        .bytes(nonce);
    Ok(w.into_vec())
}

impl Receipt {
    /// The encoded length: 88 bytes.
    pub const LEN: usize = 8 + 16 + 64;

    /// Signs a receipt for fetching `what` of a version on the log named `origin`.
    ///
    /// # Errors
    /// [`Error::Rng`]; [`Error::InvalidField`] for an origin over 255 bytes.
    pub fn sign(
        device: &DeviceSecret,
        origin: &str,
        doc_id: &DocId,
        doc_version: u32,
        what: AccessWhat,
        at: u64,
    ) -> Result<Receipt> {
        let mut nonce = [0u8; 16];
        crate::rng::fill(&mut nonce)?;
        let body = receipt_body(origin, doc_id, doc_version, what, &device.id(), at, &nonce)?;
        Ok(Receipt {
            at,
            nonce,
            signature: sign::sign(device.signing_key(), Context::AccessReceipt, &body),
        })
    }

    /// The 88-byte encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(Self::LEN);
        w.u64(self.at).bytes(&self.nonce).bytes(&self.signature);
        w.into_vec()
    }

    /// Decodes the 88-byte encoding.
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<Receipt> {
        let mut r = Reader::new(bytes, "access receipt");
        let rc = Receipt {
            at: r.u64()?,
            nonce: r.array()?,
            signature: r.array()?,
        };
        r.finish()?;
        Ok(rc)
    }

    /// Verifies the receipt for `device_signing_key` (whose id is `device_id`).
    ///
    /// # Errors
    /// [`Error::BadSignature`].
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        device_signing_key: &[u8; 32],
        origin: &str,
        doc_id: &DocId,
        doc_version: u32,
        what: AccessWhat,
        device_id: &KeyId,
    ) -> Result<()> {
        if KeyId::of(KeyKind::Device, device_signing_key) != *device_id {
            return Err(Error::BadSignature {
                what: "access receipt",
            });
        }
        let body = receipt_body(
            origin,
            doc_id,
            doc_version,
            what,
            device_id,
            self.at,
            &self.nonce,
        )?;
        sign::verify(
            device_signing_key,
            Context::AccessReceipt,
            &body,
            &self.signature,
            "access receipt",
        )
    }
}

impl Access {
    const MAGIC: &'static [u8; 4] = b"SRMA";

    /// Builds the access payload and signs it with the log key (server side).
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        log_key: &SigningKey,
        doc_id: &DocId,
        doc_version: u32,
        what: AccessWhat,
        device_id: &KeyId,
        at: u64,
        nonce: &[u8; 16],
        receipt: Option<&[u8; 64]>,
    ) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .bytes(doc_id.as_bytes())
            .u32(doc_version)
            .u8(what as u8)
            .bytes(device_id.as_bytes())
            .u64(at)
            .bytes(nonce);
        match receipt {
            Some(s) => w.u8(1).bytes(s),
            None => w.u8(0),
        };
        let s = sign::sign(log_key, Context::LogAccess, w.as_slice());
        w.bytes(&s);
        w.into_vec()
    }

    /// Decodes an access payload (syntax only).
    ///
    /// # Errors
    /// Format errors.
    pub fn decode(bytes: &[u8]) -> Result<Access> {
        const WHAT: &str = "access";
        let mut r = Reader::new(bytes, WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(WHAT, r.u16()?, r.u16()?)?;
        let doc_id = DocId::from_bytes(r.array()?);
        let doc_version = r.u32()?;
        let what = AccessWhat::from_u8(r.u8()?)?;
        let device_id = KeyId::from_bytes(r.array()?);
        let at = r.u64()?;
        let nonce: [u8; 16] = r.array()?;
        let receipt = match r.u8()? {
            0 => None,
            1 => Some(take_sig(&mut r)?),
            _ => {
                return Err(Error::InvalidField {
                    field: "has_receipt",
                    reason: "expected 0 or 1",
                });
            }
        };
        let signed_len = bytes.len() - r.remaining();
        let server_signature = take_sig(&mut r)?;
        r.finish()?;
        let signed = bytes
            .get(..signed_len)
            .ok_or(Error::Truncated { what: WHAT })?
            .to_vec();
        Ok(Access {
            doc_id,
            doc_version,
            what,
            device_id,
            at,
            nonce,
            receipt,
            server_signature,
            signed,
        })
    }

    /// Verifies the log's signature and, if present, the reader's receipt.
    ///
    /// # Errors
    /// [`Error::BadSignature`] naming which signature failed.
    pub fn verify(
        &self,
        log_public_key: &[u8; 32],
        origin: &str,
        device_signing_key: &[u8; 32],
    ) -> Result<()> {
        sign::verify(
            log_public_key,
            Context::LogAccess,
            &self.signed,
            &self.server_signature,
            "access entry (log signature)",
        )?;
        if let Some(sig) = self.receipt {
            Receipt {
                at: self.at,
                nonce: self.nonce,
                signature: sig,
            }
            .verify(
                device_signing_key,
                origin,
                &self.doc_id,
                self.doc_version,
                self.what,
                &self.device_id,
            )?;
        }
        Ok(())
    }
}

/// The leaf hash of an encoded entry (RFC 9162 §2.1.1), for prev links.
pub fn entry_leaf_hash(entry: &[u8]) -> Hash {
    leaf_hash(entry)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn every_payload_round_trips_and_flips_fail() {
        let id = IdentitySecret::from_seed(&[1; 32]);
        let id2 = IdentitySecret::from_seed(&[2; 32]);
        let dev = DeviceSecret::from_test_seed(&[3; 32]);
        let rec = id.sign_device_record("alice", &dev, 10).unwrap();
        let rot = Rotation::sign("alice", &id, &id2, 11).unwrap();
        let rev = Revocation::sign("alice", &id, &dev.id(), 12).unwrap();
        let doc = DocId::from_bytes([4; 16]);
        let rem = Removal::sign(&doc, 1, &dev.id(), &dev, 13);
        let log = SigningKey::from_bytes(&[5; 32]);
        let rc = Receipt::sign(&dev, "o", &doc, 1, AccessWhat::Blob, 14).unwrap();
        let acc = Access::sign(
            &log,
            &doc,
            1,
            AccessWhat::Blob,
            &dev.id(),
            14,
            &rc.nonce,
            Some(&rc.signature),
        );
        let prev = Some(PrevLink {
            index: 3,
            leaf_hash: [6; 32],
        });
        for (kind, payload, checked) in [
            (EntryKind::Device, &rec, true),
            (EntryKind::Rotation, &rot, true),
            (EntryKind::Revocation, &rev, true),
            (EntryKind::Removal, &rem, false),
            (EntryKind::Access, &acc, false),
        ] {
            let e = encode_entry(kind, 100, prev, payload).unwrap();
            let d = LogEntry::decode(&e).unwrap();
            assert_eq!(d.kind, kind);
            assert_eq!(d.prev, prev);
            assert_eq!(&d.payload_bytes, payload);
            if checked {
                for i in 0..payload.len() {
                    let mut p = payload.clone();
                    p[i] ^= 1;
                    let e = encode_entry(kind, 100, prev, &p).unwrap();
                    assert!(LogEntry::decode(&e).is_err(), "{kind:?} flip {i}");
                }
            }
        }
        let Payload::Access(a) =
            LogEntry::decode(&encode_entry(EntryKind::Access, 1, None, &acc).unwrap())
                .unwrap()
                .payload
        else {
            panic!()
        };
        a.verify(
            &log.verifying_key().to_bytes(),
            "o",
            &dev.signing_public_key(),
        )
        .unwrap();
        assert!(
            a.verify(
                &log.verifying_key().to_bytes(),
                "other",
                &dev.signing_public_key()
            )
            .is_err()
        );
        let other = DeviceSecret::from_test_seed(&[9; 32]);
        assert!(
            a.verify(
                &log.verifying_key().to_bytes(),
                "o",
                &other.signing_public_key()
            )
            .is_err()
        );
        let Payload::Removal(r) =
            LogEntry::decode(&encode_entry(EntryKind::Removal, 1, None, &rem).unwrap())
                .unwrap()
                .payload
        else {
            panic!()
        };
        r.verify(&dev.signing_public_key()).unwrap();
        assert!(r.verify(&other.signing_public_key()).is_err());
    }

    #[test]
    fn envelope_is_strict() {
        let e = encode_entry(EntryKind::Wrap, 1, None, b"x").unwrap();
        assert!(LogEntry::decode(&e).is_err(), "payload is not a wrap");
        let mut bad_prev = encode_entry(EntryKind::Device, 1, None, b"").unwrap();
        bad_prev[25] = 1;
        assert!(LogEntry::decode(&bad_prev).is_err());
        assert!(encode_entry(EntryKind::Device, 1, None, &[0; MAX_PAYLOAD_LEN + 1]).is_err());
    }
}

//! The social recovery entries (PROTOCOL.md §4.3, kinds 13 to 16) and the replay of a handle's
//! social recovery chain.
//!
//! All four have the subject [`Subject::Social`] of the recovered handle: a chain of its own,
//! so that a client that replays the handle's key history (kinds 1-3 and 12) never meets them
//! (REVIEW3 S17: an older client refuses a kind it does not know in a chain it replays).
//!
//! ```text
//! kind 13 RecoveryContacts { "SRMN" u16 1 u16 1 handle:str8 identity_key[32]
//!     recovery_device[32] threshold:u8 waiting_period:u64 escrow_hash[32]
//!     n:u8 { contact:str8 m:u8 device[32]×m }×n at:u64 sig[64] }
//!     // the identity key, sig_input("log-recovery-contacts", all bytes before sig)
//! kind 14 SocialRecoveryRequest { "SRMI" u16 1 u16 3 handle:str8 contacts_hash[32]
//!     signing_key[32] encryption_key[32] hybrid_key[1216] at:u64 sig[64] }
//!     // the new device's signing_key, sig_input("log-recovery-request", …)
//! kind 15 RecoveryApproval { "SRMO" u16 1 u16 1 handle:str8 request_id[16] new_device[32]
//!     contact:str8 contact_signing_key[32] at:u64 sig[64] }
//!     // the contact's device, sig_input("log-recovery-approval", …)
//! kind 16 RecoveryVeto { "SRMH" u16 1 u16 1 handle:str8 request_id[16] signing_key[32]
//!     at:u64 sig[64] }
//!     // a device of the identity, sig_input("log-recovery-veto", …)
//! ```

use sha2::{Digest, Sha256};

use super::entry::{Payload, Subject};
use super::history::{ChainEntry, KeyHistory};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::identity::{
    DeviceSecret, HYBRID_PUBLIC_KEY_LEN, HybridPublicKey, IdentitySecret, MAX_HANDLE_LEN,
    validate_handle,
};
use crate::ids::{KeyId, KeyKind};
use crate::sign::{self, Context};
use crate::social::{MAX_CONTACTS, REQUEST_ID_LEN, check_threshold};
use crate::wrap::Recipient;
use crate::{FORMAT_VERSION, HYBRID_SUITE_ID, RECORD_SUITE_ID};

/// The most devices one contact's shares go to.
pub const MAX_CONTACT_DEVICES: usize = 8;

fn bad(reason: &'static str) -> Error {
    Error::InvalidField {
        field: "social recovery entry",
        reason,
    }
}

fn signed_part<'a>(bytes: &'a [u8], r: &Reader<'_>, what: &'static str) -> Result<&'a [u8]> {
    let signed_len = bytes.len().saturating_sub(r.remaining());
    bytes.get(..signed_len).ok_or(Error::Truncated { what })
}

/// One recovery contact of a contacts entry: a handle and the devices its share went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The contact's handle.
    pub handle: String,
    /// The device ids (in the contact's proven key history when the entry was made) that hold
    /// a wrap of this contact's share.
    pub devices: Vec<KeyId>,
}

/// The recovery contacts of a handle (kind 13), signed by its identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryContacts {
    /// The handle they can recover.
    pub handle: String,
    /// The identity key that signed (the reader checks it is the handle's current one).
    pub identity_key: [u8; 32],
    /// The social recovery device whose keys the escrow holds.
    pub recovery_device: KeyId,
    /// How many approvals a recovery needs (2 ≤ K ≤ n).
    pub threshold: u8,
    /// Seconds between a request's entry and its completion, during which any device of the
    /// identity may veto.
    pub waiting_period: u64,
    /// `serment_core::social::escrow_hash` of the escrow.
    pub escrow_hash: [u8; 32],
    /// The contacts, in share order: contact `i` holds the share at `x = i + 1`.
    pub contacts: Vec<Contact>,
    /// When, seconds since the Unix epoch (the signer's clock).
    pub at: u64,
}

/// Everything a contacts entry says, to sign ([`RecoveryContacts::sign`]).
#[derive(Debug, Clone)]
pub struct ContactsBody<'a> {
    /// The handle.
    pub handle: &'a str,
    /// The social recovery device.
    pub recovery_device: KeyId,
    /// K.
    pub threshold: u8,
    /// The waiting period, seconds.
    pub waiting_period: u64,
    /// The escrow's hash.
    pub escrow_hash: [u8; 32],
    /// The contacts.
    pub contacts: &'a [Contact],
    /// When.
    pub at: u64,
}

impl RecoveryContacts {
    const MAGIC: &'static [u8; 4] = b"SRMN";
    const WHAT: &'static str = "recovery contacts";

    /// Builds and signs a contacts entry with the identity key.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a bad handle, threshold, contact list (duplicates, the
    /// handle itself, no device or more than 8) or a payload over the log's cap.
    pub fn sign(body: &ContactsBody<'_>, identity: &IdentitySecret) -> Result<Vec<u8>> {
        let mut w = Writer::with_capacity(1024);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .str8("handle", body.handle)?
            .bytes(&identity.public_key())
            .bytes(body.recovery_device.as_bytes())
            .u8(body.threshold)
            .u64(body.waiting_period)
            .bytes(&body.escrow_hash)
            .u8(u8::try_from(body.contacts.len()).map_err(|_| bad("too many contacts"))?);
        for c in body.contacts {
            w.str8("contact", &c.handle)?
                .u8(u8::try_from(c.devices.len()).map_err(|_| bad("too many devices"))?);
            for d in &c.devices {
                w.bytes(d.as_bytes());
            }
        }
        w.u64(body.at);
        let s = sign::sign(
            identity.signing_key(),
            Context::LogRecoveryContacts,
            w.as_slice(),
        );
        w.bytes(&s);
        let out = w.into_vec();
        Self::decode_verified(&out)?;
        Ok(out)
    }

    /// Decodes a contacts entry, checks its rules and its signature.
    ///
    /// # Errors
    /// Format errors; [`Error::InvalidField`] for broken rules; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<RecoveryContacts> {
        if bytes.len() > super::entry::MAX_PAYLOAD_LEN {
            return Err(Error::TooLarge {
                what: Self::WHAT,
                limit: super::entry::MAX_PAYLOAD_LEN as u64,
            });
        }
        let mut r = Reader::new(bytes, Self::WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(Self::WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let identity_key: [u8; 32] = r.array()?;
        let recovery_device = KeyId::from_bytes(r.array()?);
        let threshold = r.u8()?;
        let waiting_period = r.u64()?;
        let escrow_hash: [u8; 32] = r.array()?;
        let n = r.u8()?;
        check_threshold(threshold, n)?;
        let mut contacts: Vec<Contact> = Vec::with_capacity(usize::from(n));
        let mut all_devices: Vec<KeyId> = Vec::new();
        for _ in 0..n {
            let h = r.str8("contact", MAX_HANDLE_LEN)?.to_owned();
            validate_handle(&h)?;
            if h == handle || contacts.iter().any(|c| c.handle == h) {
                return Err(bad("a contact named twice, or the handle itself"));
            }
            let m = usize::from(r.u8()?);
            if m == 0 || m > MAX_CONTACT_DEVICES {
                return Err(bad("each contact has 1 to 8 devices"));
            }
            let mut devices = Vec::with_capacity(m);
            for _ in 0..m {
                let d = KeyId::from_bytes(r.array()?);
                if all_devices.contains(&d) {
                    return Err(bad("a device named twice"));
                }
                all_devices.push(d);
                devices.push(d);
            }
            contacts.push(Contact { handle: h, devices });
        }
        let at = r.u64()?;
        let signed = signed_part(bytes, &r, Self::WHAT)?;
        let s: [u8; 64] = r.array()?;
        r.finish()?;
        sign::verify(
            &identity_key,
            Context::LogRecoveryContacts,
            signed,
            &s,
            Self::WHAT,
        )?;
        debug_assert!(contacts.len() <= MAX_CONTACTS);
        Ok(RecoveryContacts {
            handle,
            identity_key,
            recovery_device,
            threshold,
            waiting_period,
            escrow_hash,
            contacts,
            at,
        })
    }

    /// The identity id that signed.
    pub fn identity_id(&self) -> KeyId {
        KeyId::of(KeyKind::Identity, &self.identity_key)
    }

    /// The position (0-based) of `contact` in the list, whose share has `x = position + 1`.
    pub fn position(&self, contact: &str) -> Option<usize> {
        self.contacts.iter().position(|c| c.handle == contact)
    }
}

/// A recovery request (kind 14): a new device asks to recover `handle`, signed by that
/// device's own signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocialRecoveryRequest {
    /// The handle to recover.
    pub handle: String,
    /// `serment_core::social::contacts_hash` of the contacts entry it relies on.
    pub contacts_hash: [u8; 32],
    /// The new device's Ed25519 signing key.
    pub signing_key: [u8; 32],
    /// The new device's X25519 key.
    pub encryption_key: [u8; 32],
    /// The new device's X-Wing key: the contacts wrap the shares to it.
    pub hybrid_key: HybridPublicKey,
    /// When (the new device's clock).
    pub at: u64,
    /// The request id: `H("serment/v1/recovery-request" 0x00 || payload)[..16]`.
    pub id: [u8; REQUEST_ID_LEN],
}

impl SocialRecoveryRequest {
    const MAGIC: &'static [u8; 4] = b"SRMI";
    const WHAT: &'static str = "recovery request";

    /// Builds and signs a request with the new device's keys (it must have an X-Wing key).
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a bad handle or a device without an X-Wing key.
    pub fn sign(
        handle: &str,
        contacts_hash: &[u8; 32],
        device: &DeviceSecret,
        at: u64,
    ) -> Result<Vec<u8>> {
        let hybrid = device
            .hybrid_public_key()
            .ok_or(bad("the requesting device needs an X-Wing key"))?;
        let mut w = Writer::with_capacity(1500);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(HYBRID_SUITE_ID)
            .str8("handle", handle)?
            .bytes(contacts_hash)
            .bytes(&device.signing_public_key())
            .bytes(&device.encryption_public_key())
            .bytes(hybrid.as_bytes())
            .u64(at);
        let s = sign::sign(
            device.signing_key(),
            Context::LogRecoveryRequest,
            w.as_slice(),
        );
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes a request and verifies its self-signature.
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<SocialRecoveryRequest> {
        let mut r = Reader::new(bytes, Self::WHAT);
        r.magic(Self::MAGIC)?;
        let version = r.u16()?;
        let suite = r.u16()?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: Self::WHAT,
                version,
            });
        }
        if suite != HYBRID_SUITE_ID {
            return Err(Error::UnsupportedSuite {
                what: Self::WHAT,
                suite,
            });
        }
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let contacts_hash: [u8; 32] = r.array()?;
        let signing_key: [u8; 32] = r.array()?;
        let encryption_key: [u8; 32] = r.array()?;
        let hybrid_key = HybridPublicKey::from_bytes(r.take(HYBRID_PUBLIC_KEY_LEN)?)?;
        let at = r.u64()?;
        let signed = signed_part(bytes, &r, Self::WHAT)?;
        let s: [u8; 64] = r.array()?;
        r.finish()?;
        sign::verify(
            &signing_key,
            Context::LogRecoveryRequest,
            signed,
            &s,
            Self::WHAT,
        )?;
        Ok(SocialRecoveryRequest {
            handle,
            contacts_hash,
            signing_key,
            encryption_key,
            hybrid_key,
            at,
            id: request_id(bytes),
        })
    }

    /// The new device's id.
    pub fn device_id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.signing_key)
    }

    /// The new device as the recipient of a share re-wrap (X-Wing).
    pub fn recipient(&self) -> Recipient {
        Recipient {
            device_id: self.device_id(),
            encryption_key: self.encryption_key,
            hybrid_key: Some(self.hybrid_key.clone()),
        }
    }
}

/// `H("serment/v1/recovery-request" 0x00 || payload)[..16]`: a request's id.
pub fn request_id(payload: &[u8]) -> [u8; REQUEST_ID_LEN] {
    let mut h = Sha256::new();
    h.update(b"serment/v1/recovery-request\0");
    h.update(payload);
    let d: [u8; 32] = h.finalize().into();
    d.first_chunk::<REQUEST_ID_LEN>()
        .copied()
        .unwrap_or_default()
}

/// A contact's approval of a request (kind 15), signed by the contact's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryApproval {
    /// The handle being recovered.
    pub handle: String,
    /// The request approved.
    pub request_id: [u8; REQUEST_ID_LEN],
    /// The requesting device (as the request names it).
    pub new_device: KeyId,
    /// The approving contact's handle.
    pub contact: String,
    /// The approving device's signing key (the reader checks it is current in the contact's
    /// proven key history and one of the contact's devices in the contacts entry).
    pub signing_key: [u8; 32],
    /// When (the contact's clock).
    pub at: u64,
}

impl RecoveryApproval {
    const MAGIC: &'static [u8; 4] = b"SRMO";
    const WHAT: &'static str = "recovery approval";

    /// Builds and signs an approval with the contact's device.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a bad handle.
    pub fn sign(
        handle: &str,
        request_id: &[u8; REQUEST_ID_LEN],
        new_device: &KeyId,
        contact: &str,
        device: &DeviceSecret,
        at: u64,
    ) -> Result<Vec<u8>> {
        let mut w = Writer::with_capacity(256);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .str8("handle", handle)?
            .bytes(request_id)
            .bytes(new_device.as_bytes())
            .str8("contact", contact)?
            .bytes(&device.signing_public_key())
            .u64(at);
        let s = sign::sign(
            device.signing_key(),
            Context::LogRecoveryApproval,
            w.as_slice(),
        );
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes an approval and verifies its signature.
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<RecoveryApproval> {
        let mut r = Reader::new(bytes, Self::WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(Self::WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let request_id: [u8; REQUEST_ID_LEN] = r.array()?;
        let new_device = KeyId::from_bytes(r.array()?);
        let contact = r.str8("contact", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&contact)?;
        let signing_key: [u8; 32] = r.array()?;
        let at = r.u64()?;
        let signed = signed_part(bytes, &r, Self::WHAT)?;
        let s: [u8; 64] = r.array()?;
        r.finish()?;
        sign::verify(
            &signing_key,
            Context::LogRecoveryApproval,
            signed,
            &s,
            Self::WHAT,
        )?;
        Ok(RecoveryApproval {
            handle,
            request_id,
            new_device,
            contact,
            signing_key,
            at,
        })
    }

    /// The approving device's id.
    pub fn device_id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.signing_key)
    }
}

/// A veto of a request (kind 16), signed by a device of the identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryVeto {
    /// The handle.
    pub handle: String,
    /// The request vetoed.
    pub request_id: [u8; REQUEST_ID_LEN],
    /// The vetoing device's signing key (the reader checks it is current in the handle's
    /// proven key history).
    pub signing_key: [u8; 32],
    /// When.
    pub at: u64,
}

impl RecoveryVeto {
    const MAGIC: &'static [u8; 4] = b"SRMH";
    const WHAT: &'static str = "recovery veto";

    /// Builds and signs a veto.
    ///
    /// # Errors
    /// [`Error::InvalidField`] for a bad handle.
    pub fn sign(
        handle: &str,
        request_id: &[u8; REQUEST_ID_LEN],
        device: &DeviceSecret,
        at: u64,
    ) -> Result<Vec<u8>> {
        let mut w = Writer::with_capacity(160);
        w.bytes(Self::MAGIC)
            .u16(FORMAT_VERSION)
            .u16(RECORD_SUITE_ID)
            .str8("handle", handle)?
            .bytes(request_id)
            .bytes(&device.signing_public_key())
            .u64(at);
        let s = sign::sign(device.signing_key(), Context::LogRecoveryVeto, w.as_slice());
        w.bytes(&s);
        Ok(w.into_vec())
    }

    /// Decodes a veto and verifies its signature.
    ///
    /// # Errors
    /// Format errors; [`Error::BadSignature`].
    pub fn decode_verified(bytes: &[u8]) -> Result<RecoveryVeto> {
        let mut r = Reader::new(bytes, Self::WHAT);
        r.magic(Self::MAGIC)?;
        crate::check_version(Self::WHAT, r.u16()?, r.u16()?)?;
        let handle = r.str8("handle", MAX_HANDLE_LEN)?.to_owned();
        validate_handle(&handle)?;
        let request_id: [u8; REQUEST_ID_LEN] = r.array()?;
        let signing_key: [u8; 32] = r.array()?;
        let at = r.u64()?;
        let signed = signed_part(bytes, &r, Self::WHAT)?;
        let s: [u8; 64] = r.array()?;
        r.finish()?;
        sign::verify(
            &signing_key,
            Context::LogRecoveryVeto,
            signed,
            &s,
            Self::WHAT,
        )?;
        Ok(RecoveryVeto {
            handle,
            request_id,
            signing_key,
            at,
        })
    }

    /// The vetoing device's id.
    pub fn device_id(&self) -> KeyId {
        KeyId::of(KeyKind::Device, &self.signing_key)
    }
}

/// A request as the social chain shows it, with what followed it.
#[derive(Debug, Clone)]
pub struct RequestState {
    /// The request's log index.
    pub index: u64,
    /// The server's time of its append (the envelope's `logged_at`).
    pub logged_at: u64,
    /// The request.
    pub request: SocialRecoveryRequest,
    /// Whether it relies on the newest contacts entry of the chain before it.
    pub current_contacts: bool,
    /// Approvals of it (signatures checked; the approver's key is the reader's check), with
    /// their log indices.
    pub approvals: Vec<(u64, RecoveryApproval)>,
    /// Vetoes of it (signatures checked; the vetoing device is the reader's check).
    pub vetoes: Vec<(u64, RecoveryVeto)>,
}

/// A handle's social chain, replayed.
#[derive(Debug, Clone, Default)]
pub struct SocialState {
    /// The newest contacts entry signed by the handle's identity key current at its log index:
    /// its log index, the entry and its payload hash (`serment_core::social::contacts_hash`).
    pub contacts: Option<(u64, RecoveryContacts, [u8; 32])>,
    /// Every request, oldest first.
    pub requests: Vec<RequestState>,
    /// The log indices of contacts entries signed by any other key (REVIEW5 U16: only a
    /// hostile server logs one; the honest one checks the signer). They are never current:
    /// every reader must show them as an integrity problem, and `verify-log` reports them.
    pub forged_contacts: Vec<u64>,
}

impl SocialState {
    /// The request with this id.
    pub fn request(&self, id: &[u8; REQUEST_ID_LEN]) -> Option<&RequestState> {
        self.requests.iter().find(|r| r.request.id == *id)
    }
}

/// Replays a handle's social chain (checked with [`super::history::check_chain`] against
/// [`Subject::Social`]): every entry is of kinds 13-16 and names the handle; an approval or a
/// veto names a request logged before it. `keys` is the handle's replayed key history (`None`
/// when it has none): a contacts entry counts only if signed by the identity key current at its
/// log index ([`KeyHistory::identity_key_at`]); any other is listed in
/// [`SocialState::forged_contacts`] and never becomes current (REVIEW5 U16: a self-signed
/// entry by any key would otherwise make every request on the real set stale, hiding it).
///
/// # Errors
/// [`Error::History`].
pub fn replay_social(
    handle: &str,
    chain: &[ChainEntry],
    keys: Option<&KeyHistory>,
) -> Result<SocialState> {
    let broken = |reason| Error::History { reason };
    let mut st = SocialState::default();
    let mut contacts_hashes: Vec<[u8; 32]> = Vec::new();
    for e in chain {
        if e.entry.subject() != Subject::Social(handle.to_owned()) {
            return Err(broken(
                "an entry of the social chain is about another subject",
            ));
        }
        match &e.entry.payload {
            Payload::RecoveryContacts(c) => {
                let h = crate::social::contacts_hash(&e.entry.payload_bytes);
                contacts_hashes.push(h);
                let signer = keys.and_then(|k| k.identity_key_at(e.index));
                if c.handle == handle && signer == Some(c.identity_key) {
                    st.contacts = Some((e.index, c.clone(), h));
                } else {
                    st.forged_contacts.push(e.index);
                }
            }
            Payload::RecoveryRequest(r) => {
                let current = st.contacts.as_ref().is_some_and(|c| c.2 == r.contacts_hash);
                if !contacts_hashes.contains(&r.contacts_hash) {
                    return Err(broken(
                        "a recovery request relies on a contacts entry not logged before it",
                    ));
                }
                st.requests.push(RequestState {
                    index: e.index,
                    logged_at: e.entry.logged_at,
                    request: r.clone(),
                    current_contacts: current,
                    approvals: vec![],
                    vetoes: vec![],
                });
            }
            Payload::RecoveryApproval(a) => {
                let req = st
                    .requests
                    .iter_mut()
                    .find(|r| r.request.id == a.request_id)
                    .ok_or(broken("an approval of a request not logged before it"))?;
                if req.request.device_id() != a.new_device {
                    return Err(broken("an approval names another device than its request"));
                }
                req.approvals.push((e.index, a.clone()));
            }
            Payload::RecoveryVeto(v) => {
                let req = st
                    .requests
                    .iter_mut()
                    .find(|r| r.request.id == v.request_id)
                    .ok_or(broken("a veto of a request not logged before it"))?;
                req.vetoes.push((e.index, v.clone()));
            }
            _ => return Err(broken("an entry of another kind in a social chain")),
        }
    }
    // A newer contacts entry makes requests on an older one stale.
    if let Some((_, _, h)) = &st.contacts {
        for r in &mut st.requests {
            r.current_contacts = r.request.contacts_hash == *h;
        }
    }
    Ok(st)
}

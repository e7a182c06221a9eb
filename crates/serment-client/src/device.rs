//! A user's devices (issue 16 §1, PROTOCOL.md §4.1): linking a second device with a short code
//! (`serment device link` / `serment device join`), the catch-up that lets it read what was sent
//! before it, the list of devices from the log, and the revocation that rotates the identity key.
//!
//! Design (catch-up, O(n) per new device): the linking device re-wraps the DEK of every version it
//! can read for the new device (each a logged wrap entry, sharer = the linking device), and hands
//! the new device the identity key over the pairing channel. Since every linked device then holds
//! the identity key, revoking one rotates it ([`Session::revoke_and_rotate`]): otherwise the
//! revoked device could certify a fresh device of its own and be wrapped to again.

use std::collections::BTreeMap;
use std::time::Duration;

use web_time::Instant;

use serde::{Deserialize, Serialize};
use serment_api::{
    FinishPairingRequest, OpenPairingRequest, PairingMessageRequest, PairingResponse,
};
use serment_core::codec::Writer;
use serment_core::identity::{DeviceRecord, IdentitySecret};
use serment_core::log::entry::{AccessWhat, EntryKind};
use serment_core::pairing::{self, PairingCode};
use serment_core::wrap::{self, Recipient, WrappedKey};
use serment_core::{DocId, KeyId};
use zeroize::Zeroizing;

use crate::api::{Api, b64d, b64e, key_id};
use crate::error::{ClientError, Result};
use crate::keystore::{LogState, PinnedContact};
#[cfg(feature = "native")]
use crate::transport::Transport;
use crate::vault::Session;

/// How often a waiting device polls the relay.
const POLL: Duration = Duration::from_millis(500);

impl Api {
    /// `POST /v1/pairing`: opens a slot with the hello (step 1).
    ///
    /// # Errors
    /// [`ClientError::Server`] (409: the slot is in use).
    pub fn pairing_open(&self, slot: &str, hello: &[u8]) -> Result<PairingResponse> {
        self.post_json(
            "/v1/pairing",
            &OpenPairingRequest {
                slot: slot.to_owned(),
                hello: b64e(hello),
            },
            true,
        )
    }
    /// `GET /v1/pairing/{slot}`.
    ///
    /// # Errors
    /// [`ClientError::Server`] (404: no such slot, or it expired).
    pub fn pairing_show(&self, slot: &str) -> Result<PairingResponse> {
        check_slot(slot)?;
        self.get_json(&format!("/v1/pairing/{slot}"), false)
    }
    /// `POST /v1/pairing/{slot}/join` (step 2; no authentication).
    ///
    /// # Errors
    /// [`ClientError::Server`] (409: the code was used already; 429: too many attempts).
    pub fn pairing_join(&self, slot: &str, message: &[u8]) -> Result<PairingResponse> {
        check_slot(slot)?;
        self.post_json(
            &format!("/v1/pairing/{slot}/join"),
            &PairingMessageRequest {
                message: b64e(message),
            },
            false,
        )
    }
    /// `POST /v1/pairing/{slot}/finish` (step 3, or `None` to abort).
    ///
    /// # Errors
    /// [`ClientError::Server`].
    pub fn pairing_finish(&self, slot: &str, message: Option<&[u8]>) -> Result<PairingResponse> {
        check_slot(slot)?;
        self.post_json(
            &format!("/v1/pairing/{slot}/finish"),
            &FinishPairingRequest {
                message: message.map(b64e),
            },
            true,
        )
    }
}

fn check_slot(slot: &str) -> Result<()> {
    if PairingCode::is_slot(slot) {
        Ok(())
    } else {
        Err(ClientError::Input("pairing slot: expected 6 digits".into()))
    }
}

fn pairing_err(e: serment_core::Error) -> ClientError {
    ClientError::Integrity(e)
}

/// What the linking device hands the new one besides the identity seed and its record (the
/// finish payload's JSON, PROTOCOL.md §4.1): the client state it needs to start where the
/// linking device is, with the same pins (no trust on first use of the log or the contacts).
#[derive(Serialize, Deserialize)]
struct Handover {
    display_name: String,
    server: String,
    #[serde(default)]
    server_ca: Option<String>,
    log: Option<LogState>,
    #[serde(default)]
    contacts: BTreeMap<String, PinnedContact>,
}

/// The finish payload: `identity_seed[32] || record: bytes16 || handover JSON: u32 || bytes`.
fn encode_finish(identity: &IdentitySecret, record: &[u8], handover: &[u8]) -> Result<Vec<u8>> {
    let mut w = Writer::with_capacity(64 + record.len() + handover.len());
    w.bytes(identity.to_seed().as_ref());
    let n = u16::try_from(record.len())
        .map_err(|_| ClientError::Input("device record too large".into()))?;
    w.u16(n).bytes(record);
    let m = u32::try_from(handover.len())
        .map_err(|_| ClientError::Input("pairing state too large".into()))?;
    w.u32(m).bytes(handover);
    Ok(w.into_vec())
}

/// A pairing opened by `serment device link`, waiting for the new device.
#[derive(Debug)]
pub struct PendingLink {
    /// The code to show (secret: to the user only).
    pub code: PairingCode,
    link: pairing::Link,
}

/// What `serment device link` did.
#[derive(Debug, Clone)]
pub struct LinkOutcome {
    /// The new device.
    pub device_id: KeyId,
    /// Document versions re-wrapped for it (the catch-up, one logged wrap each).
    pub caught_up: usize,
    /// Versions listed that this device could not re-wrap (it holds no wrap of them, or reads
    /// them through a team: the new device does too, with the team keys handed over).
    pub skipped: usize,
    /// Team epoch keys handed over to it (PROTOCOL.md §12.3, "Hand-over"): one per epoch of
    /// each team this handle is a member of whose key this device holds.
    pub team_keys: usize,
}

/// One device of this identity, from the log (`serment device list`).
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    /// The device id.
    pub device_id: KeyId,
    /// Current (certified by the current identity key, not revoked) or not.
    pub active: bool,
    /// Creation time from its record (seconds since the Unix epoch), for current devices.
    pub created_at: Option<u64>,
    /// Whether its current record carries an X-Wing key.
    pub hybrid: bool,
    /// Whether it is this device.
    pub this_device: bool,
}

/// What [`Session::revoke_and_rotate`] did.
#[derive(Debug, Clone)]
pub struct RevokeOutcome {
    /// The log entry that revoked the device: the rotation, which re-certifies every kept device
    /// and so retires the revoked one, in one transaction.
    pub revocation_index: u64,
    /// The rotation entry and the re-certified records' entries.
    pub rotation_indices: Vec<u64>,
    /// The new identity id.
    pub identity_id: KeyId,
    /// Devices re-certified under the new key (this one included).
    pub kept: Vec<KeyId>,
    /// Other active devices not re-certified (not named in `keep`): retired with the revoked one.
    pub dropped: Vec<KeyId>,
}

impl Session {
    /// Opens a pairing slot: draws a code (another one if the slot is taken) and posts the hello.
    ///
    /// # Errors
    /// Server and transport errors.
    pub fn link_start(&mut self) -> Result<PendingLink> {
        for _ in 0..5 {
            let code = PairingCode::generate().map_err(ClientError::Integrity)?;
            let (link, hello) = pairing::Link::start(&code);
            match self.api.pairing_open(code.slot(), &hello) {
                Ok(_) => return Ok(PendingLink { code, link }),
                Err(ClientError::Server { status: 409, .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Server {
            status: 409,
            code: "conflict".into(),
            message: "no free pairing slot after 5 tries".into(),
        })
    }

    /// Waits (up to `timeout`) for the new device's join, authenticates its keys with the code
    /// and its key confirmation (a signature by the new device's key over the pairing
    /// transcript), certifies its record and sends it, with the identity key and state, in the
    /// finish. Then waits for the new device's confirmation: it registers that record itself
    /// once it opened the finish and checked the record names its keys, and only the holder of
    /// the SPAKE2 key can read the record. Only when the record is current in the proven key
    /// history does this device re-wrap every readable version for it (catch-up). A join that
    /// does not authenticate aborts the pairing; a confirmation that never comes (a finish
    /// changed on the way, refused by the new device) leaves nothing logged and nothing wrapped.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] (`Error::Pairing`) for a wrong code, a changed message, a
    /// missing key confirmation, or no confirmation before `timeout`;
    /// [`ClientError::Transport`] if no device joined in time; log, server and transport errors.
    pub fn link_finish(&mut self, pending: PendingLink, timeout: Duration) -> Result<LinkOutcome> {
        let slot = pending.code.slot().to_owned();
        let deadline = Instant::now() + timeout;
        let join = loop {
            let st = self.api.pairing_show(&slot)?;
            if let Some(j) = st.join {
                break b64d(&j, "join")?;
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Transport(
                    "no device joined before the pairing code expired".into(),
                ));
            }
            crate::sleep(POLL);
        };
        let (linked, dev) = match pending.link.accept(&join) {
            Ok(x) => x,
            Err(e) => {
                // Tell the new device (the relay could drop this; it then times out).
                let _ = self.api.pairing_finish(&slot, None);
                return Err(pairing_err(e));
            }
        };
        // Certify the new device (PROTOCOL.md §4: signed by the identity key). Nothing is
        // registered, logged or wrapped before the new device confirms.
        let created_at = crate::now_secs();
        let record = self
            .ks
            .identity
            .sign_record_for(
                self.ks.handle(),
                &dev.signing_key,
                &dev.encryption_key,
                dev.hybrid_key.as_ref(),
                created_at,
            )
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let rec = DeviceRecord::decode_verified(&record).map_err(ClientError::Integrity)?;
        // Hand over the identity key, the record and the state (step 3).
        let server = self.api.base().to_owned();
        let handover = Handover {
            display_name: self.ks.display_name().to_owned(),
            server: server.clone(),
            server_ca: self.ks.server_ca().map(str::to_owned),
            log: self.ks.log_state(&server).cloned(),
            contacts: self.ks.contacts().clone(),
        };
        let json = Zeroizing::new(
            serde_json::to_vec(&handover).map_err(|e| ClientError::Input(e.to_string()))?,
        );
        let payload = Zeroizing::new(encode_finish(&self.ks.identity, &record, &json)?);
        let fin = linked.finish(&payload).map_err(pairing_err)?;
        self.api.pairing_finish(&slot, Some(&fin))?;
        // Key confirmation: the record, which travelled sealed, current in the proven history.
        let handle = self.ks.handle().to_owned();
        loop {
            let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
            if hist.devices.iter().any(|d| d.bytes == record) {
                break;
            }
            if Instant::now() >= deadline {
                self.ks.save()?;
                return Err(ClientError::Integrity(serment_core::Error::Pairing(
                    "the new device did not confirm the pairing before the code expired (it \
                     refuses a finish changed on the way): nothing was logged or re-wrapped \
                     for it; run `serment device link` again",
                )));
            }
            crate::sleep(POLL);
        }
        let (caught_up, skipped) = self.catch_up(&rec)?;
        let team_keys = self.hand_over_team_keys(&rec)?;
        self.ks.save()?;
        Ok(LinkOutcome {
            device_id: rec.device_id(),
            caught_up,
            skipped,
            team_keys,
        })
    }

    /// `serment device catch-up DEVICE`: the catch-up and the team key hand-over of
    /// [`Session::link_finish`], on demand, for `device`, another current device of this
    /// identity in its proven key history (a device linked before team keys were handed over,
    /// or one that missed documents). Versions and team keys the device already holds are
    /// skipped (the server refuses a second wrap to the same device).
    ///
    /// # Errors
    /// [`ClientError::Input`] if `device` is this device or not a current device of this
    /// identity; as [`Session::catch_up`] and [`Session::hand_over_team_keys`].
    pub fn catch_up_device(&mut self, device: &KeyId) -> Result<LinkOutcome> {
        if *device == self.ks.device.id() {
            return Err(ClientError::Input(
                "this is the device you are on: run the catch-up on another one".into(),
            ));
        }
        let handle = self.ks.handle().to_owned();
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        let rec = hist
            .devices
            .into_iter()
            .find(|d| d.device_id() == *device)
            .ok_or_else(|| {
                ClientError::Input(format!(
                    "{device} is not a current device of {handle} in the log"
                ))
            })?;
        let (caught_up, skipped) = self.catch_up(&rec)?;
        let team_keys = self.hand_over_team_keys(&rec)?;
        self.ks.save()?;
        Ok(LinkOutcome {
            device_id: rec.device_id(),
            caught_up,
            skipped,
            team_keys,
        })
    }

    /// Re-wraps, for `new`, the DEK of every version this device holds a wrap of (PROTOCOL.md
    /// §4.1): each wrap this device unwraps is first checked against its signer (the author, or a
    /// device of this identity for a wrap that was itself a catch-up). Returns (re-wrapped,
    /// skipped).
    ///
    /// # Errors
    /// Integrity, log, server and transport errors.
    pub fn catch_up(&mut self, new: &DeviceRecord) -> Result<(usize, usize)> {
        self.catch_up_with(new, false)
    }

    /// [`Session::catch_up`]; with `unknown_authors_ok`, a wrap whose author this session
    /// cannot resolve (the recovery device's session in `serment recover` knows no contacts,
    /// PROTOCOL.md §4.2) is re-wrapped without its signature check: the new device checks the
    /// document's signature by its author on every read, so a forged wrap only yields a
    /// document that does not open.
    ///
    /// # Errors
    /// As [`Session::catch_up`].
    pub(crate) fn catch_up_with(
        &mut self,
        new: &DeviceRecord,
        unknown_authors_ok: bool,
    ) -> Result<(usize, usize)> {
        let recipient = Recipient::from(new);
        let listed = self.api.list_documents()?;
        let cp = self.sync_log()?;
        let origin = crate::log::trust(&self.api, &self.ks)?.log_key.name;
        let mut wraps: Vec<Vec<u8>> = Vec::new();
        let mut indices: Vec<u64> = Vec::new();
        let (mut done, mut skipped) = (0, 0);
        // The epoch ids of the teams this user verifiably belongs to, computed on first need.
        let mut team_epochs: Option<std::collections::BTreeSet<KeyId>> = None;
        for v in &listed {
            let doc_id = DocId::from_hex(&v.doc_id)
                .map_err(|_| ClientError::BadResponse("doc_id: expected 32 hex".into()))?;
            let rc =
                crate::log::receipt(&self.ks, &origin, &doc_id, v.doc_version, AccessWhat::Wrap)?;
            let (info, own) =
                match self
                    .api
                    .version_with(&doc_id, v.doc_version, Some(&rc), Some(cp.size))
                {
                    Ok(x) => x,
                    // Listed (authored by this identity) but not wrapped for this device.
                    Err(ClientError::BadResponse(_) | ClientError::Server { status: 403, .. }) => {
                        skipped += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            let author = key_id(&info.author_device, "author_device")?;
            let w = WrappedKey::decode(&own).map_err(ClientError::Integrity)?;
            if w.recipient != self.ks.device.id() {
                // A wrap to a team epoch (PROTOCOL.md §12.3): the new device reads the version
                // through the team's epoch key, handed over after the catch-up. Only an epoch
                // of a team whose chain verifies counts; any other recipient is a wrap the
                // server substituted (R6), not a version to skip.
                if w.doc_id != doc_id || w.doc_version != v.doc_version {
                    return Err(ClientError::Integrity(
                        serment_core::Error::ContextMismatch(
                            "the wrap served is for another document or version",
                        ),
                    ));
                }
                if team_epochs.is_none() {
                    team_epochs = Some(self.verified_team_epochs()?);
                }
                if !team_epochs
                    .as_ref()
                    .is_some_and(|ids| ids.contains(&w.recipient))
                {
                    return Err(ClientError::Integrity(
                        serment_core::Error::ContextMismatch(
                            "the wrap served is addressed to neither this device nor a team epoch it verified",
                        ),
                    ));
                }
                skipped += 1;
                continue;
            }
            match self.wrap_signer(&w, &author) {
                Ok(signer) => w
                    .verify_signature(&signer)
                    .map_err(ClientError::Integrity)?,
                Err(ClientError::UnknownAuthor(_)) if unknown_authors_ok => {}
                Err(e) => return Err(e),
            }
            if w.doc_id != doc_id || w.doc_version != v.doc_version {
                return Err(ClientError::Integrity(
                    serment_core::Error::ContextMismatch(
                        "the wrap served is for another document or version",
                    ),
                ));
            }
            let dek = wrap::unwrap_dek(&w, &self.ks.device).map_err(ClientError::Integrity)?;
            let nw = wrap::wrap_dek(
                &dek,
                &doc_id,
                v.doc_version,
                &w.header_hash,
                &recipient,
                &self.ks.device,
                &mut serment_core::rng::os_rng(),
            )
            .map_err(ClientError::Integrity)?;
            let idx = match self
                .api
                .add_wraps(&doc_id, v.doc_version, std::slice::from_ref(&nw))
            {
                Ok(idx) => idx,
                // The device holds a wrap of this version already (a repeated catch-up,
                // `serment device catch-up`): nothing to add, once the log proves that wrap
                // (R6: a 409 alone would let the server withhold the version from the device).
                Err(ClientError::Server { status: 409, .. }) => {
                    if !crate::log::wrap_logged_for(
                        &self.api,
                        &mut self.ks,
                        &doc_id,
                        v.doc_version,
                        &new.device_id(),
                    )? {
                        return Err(ClientError::Integrity(
                            serment_core::Error::ContextMismatch(
                                "the server refused the wrap as a duplicate, but the log proves no wrap of this version for the device",
                            ),
                        ));
                    }
                    skipped += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            indices.extend(idx);
            wraps.push(nw);
            done += 1;
        }
        if !wraps.is_empty() {
            let expected: Vec<(EntryKind, &[u8])> = wraps
                .iter()
                .map(|w| (EntryKind::Wrap, w.as_slice()))
                .collect();
            crate::log::check_own_writes(&self.api, &mut self.ks, &indices, &expected)?;
        }
        Ok((done, skipped))
    }

    /// The ids of every epoch of every team this user is listed in whose chain verifies
    /// ([`Session::verify_team`]): the recipients a catch-up may skip (PROTOCOL.md §12.3).
    ///
    /// # Errors
    /// As [`Session::verify_team`].
    fn verified_team_epochs(&mut self) -> Result<std::collections::BTreeSet<KeyId>> {
        let names = match self.team_list() {
            Ok(n) => n,
            Err(_) => self.ks.team_names(),
        };
        let mut ids = std::collections::BTreeSet::new();
        for name in names {
            if let Some(team) = self.verify_team(&name)? {
                ids.extend(team.state.epochs.iter().map(|e| e.id));
            }
        }
        Ok(ids)
    }

    /// The signing key that must have signed `w`: the author's for a wrap the author made; for
    /// a catch-up wrap (PROTOCOL.md §4.1) that of a current device of this device's own
    /// identity, from its proven key history. Anything else is refused.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] (`WrongSigner`) for a sharer that is neither.
    pub(crate) fn wrap_signer(&mut self, w: &WrappedKey, author: &KeyId) -> Result<[u8; 32]> {
        if w.sharer == *author {
            return Ok(self.author_record(author)?.1.signing_key);
        }
        match self.own_device_in_log(&w.sharer)? {
            Some(r) => Ok(r.signing_key),
            None => Err(ClientError::Integrity(serment_core::Error::WrongSigner {
                what: "key wrap",
                expected: author.to_string(),
                found: w.sharer.to_string(),
            })),
        }
    }

    /// A current device of this identity, from the proven key history of its own handle
    /// (never from the directory alone).
    ///
    /// # Errors
    /// Log errors.
    pub(crate) fn own_device_in_log(&mut self, device: &KeyId) -> Result<Option<DeviceRecord>> {
        if *device == self.ks.device.id() {
            return Ok(Some(self.ks.own_device_record()?));
        }
        // The recovery device whose catch-up enrolled this device (PROTOCOL.md §4.2): proven
        // current when it did, then revoked by the recovery that burnt it.
        if let Some(r) = self
            .ks
            .recovered_from()
            .filter(|r| r.device_id() == *device)
        {
            return Ok(Some(r));
        }
        let handle = self.ks.handle().to_owned();
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        if hist.identity_key != self.ks.identity.public_key() {
            return Err(ClientError::Log(serment_core::Error::History {
                reason: "the log's current identity key for this handle is not this keystore's",
            }));
        }
        Ok(hist.devices.into_iter().find(|d| d.device_id() == *device))
    }

    /// This identity's devices from the log: current ones, then revoked or retired ones.
    ///
    /// # Errors
    /// Log errors.
    pub fn device_list(&mut self) -> Result<Vec<DeviceEntry>> {
        let handle = self.ks.handle().to_owned();
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        self.ks.save()?;
        let me = self.ks.device.id();
        let mut out: Vec<DeviceEntry> = hist
            .devices
            .iter()
            .map(|d| DeviceEntry {
                device_id: d.device_id(),
                active: true,
                created_at: Some(d.created_at),
                hybrid: d.hybrid_key.is_some(),
                this_device: d.device_id() == me,
            })
            .collect();
        for r in &hist.retired {
            if !out.iter().any(|e| e.device_id == *r) {
                out.push(DeviceEntry {
                    device_id: *r,
                    active: false,
                    created_at: None,
                    hybrid: false,
                    this_device: *r == me,
                });
            }
        }
        Ok(out)
    }

    /// Revokes another device of this identity by rotating the identity key (PROTOCOL.md §4.1):
    /// every linked device holds the identity key, so without a rotation the revoked one could
    /// certify a device of its own and be wrapped to again. One request: the rotation (signed by
    /// the old and the new key) with the records, under the new key, of this device and of the
    /// devices in `keep` only; the server retires every device it does not re-certify (the
    /// revoked one, and any other not kept), in the same transaction. A device the identity key
    /// certified behind the owner's back (a thief holding the stolen device's keys) is therefore
    /// never re-certified unless named. The writes are checked in the log; the keystore then
    /// holds the new key.
    ///
    /// # Errors
    /// [`ClientError::Input`] for this device itself, a device that is not current, or a `keep`
    /// entry that is not another current device; log, server and transport errors.
    pub fn revoke_and_rotate(&mut self, device: &KeyId, keep: &[KeyId]) -> Result<RevokeOutcome> {
        if *device == self.ks.device.id() {
            return Err(ClientError::Input(
                "revoke_and_rotate revokes another device; this one is revoked alone".into(),
            ));
        }
        let handle = self.ks.handle().to_owned();
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        if !hist.devices.iter().any(|d| d.device_id() == *device) {
            return Err(ClientError::Input(format!(
                "{device} is not an active device of {handle}"
            )));
        }
        let me = self.ks.device.id();
        for k in keep {
            if *k == *device || *k == me || !hist.devices.iter().any(|d| d.device_id() == *k) {
                return Err(ClientError::Input(format!(
                    "--keep {k}: not another active device of {handle} (see `serment device list`)"
                )));
            }
        }
        let (others, dropped): (Vec<DeviceRecord>, Vec<DeviceRecord>) = hist
            .devices
            .into_iter()
            .filter(|d| d.device_id() != *device && d.device_id() != me)
            .partition(|d| keep.contains(&d.device_id()));
        self.rotate_certifying(&handle, &others, &dropped)
    }

    /// Rotates the identity key (PROTOCOL.md §4.1), re-certifying this device and every other
    /// current device of the identity except those in `drop` (REVIEW5 U18: the recovery
    /// devices of a replaced code, whose escrow copies in the backups hold the old key). The
    /// writes are checked in the log; the keystore then holds the new key.
    ///
    /// # Errors
    /// Log, server and transport errors.
    pub fn rotate_dropping(&mut self, drop: &[KeyId]) -> Result<RevokeOutcome> {
        let handle = self.ks.handle().to_owned();
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        let me = self.ks.device.id();
        let (dropped, others): (Vec<DeviceRecord>, Vec<DeviceRecord>) = hist
            .devices
            .into_iter()
            .filter(|d| d.device_id() != me)
            .partition(|d| drop.contains(&d.device_id()));
        self.rotate_certifying(&handle, &others, &dropped)
    }

    /// The rotation of [`Session::revoke_and_rotate`] and [`Session::rotate_dropping`]: a new
    /// identity key certifies this device and `others`; `dropped` (and any device not named)
    /// is retired by the server.
    fn rotate_certifying(
        &mut self,
        handle: &str,
        others: &[DeviceRecord],
        dropped: &[DeviceRecord],
    ) -> Result<RevokeOutcome> {
        let handle = handle.to_owned();
        let new = IdentitySecret::generate();
        let now = crate::now_secs();
        let rot = serment_core::log::entry::Rotation::sign(&handle, &self.ks.identity, &new, now)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let mut records = vec![
            new.sign_device_record(&handle, &self.ks.device, self.ks.created_at())
                .map_err(|e| ClientError::Input(e.to_string()))?,
        ];
        for d in others {
            records.push(
                new.sign_record_for(
                    &handle,
                    &d.signing_key,
                    &d.encryption_key,
                    d.hybrid_key.as_ref(),
                    d.created_at,
                )
                .map_err(|e| ClientError::Input(e.to_string()))?,
            );
        }
        let idx = self.api.rotate(&rot, &records)?;
        let old = std::mem::replace(&mut self.ks.identity, new);
        let mut expected: Vec<(EntryKind, &[u8])> = vec![(EntryKind::Rotation, rot.as_slice())];
        expected.extend(records.iter().map(|r| (EntryKind::Device, r.as_slice())));
        if let Err(e) = crate::log::check_own_writes(&self.api, &mut self.ks, &idx, &expected) {
            // The keystore keeps the new key only once the log shows the rotation.
            self.ks.identity = old;
            return Err(e);
        }
        self.ks.save()?;
        let mut kept = vec![self.ks.device.id()];
        kept.extend(others.iter().map(DeviceRecord::device_id));
        Ok(RevokeOutcome {
            revocation_index: idx.first().copied().unwrap_or_default(),
            rotation_indices: idx,
            identity_id: self.ks.identity.id(),
            kept,
            dropped: dropped.iter().map(DeviceRecord::device_id).collect(),
        })
    }
}

/// What `serment device join` did.
#[cfg(feature = "native")]
#[derive(Debug)]
pub struct Joined {
    /// The session of the new device, logged in.
    pub session: Session,
    /// Its handle.
    pub handle: String,
}

#[cfg(feature = "native")]
/// Joins an identity as a new device with a code from `serment device link`: answers the
/// relayed hello, waits (up to `timeout`) for the finish, checks that it carries a record of
/// exactly this device's keys signed by the identity key handed over, writes a new keystore at
/// `path`, logs in, and checks the record is current in the log (PROTOCOL.md §4.1).
///
/// # Errors
/// [`ClientError::KeystoreExists`]; [`ClientError::Integrity`] (`Error::Pairing`) for a wrong code
/// or a changed, replayed or substituted message, or an abort by the linking device;
/// [`ClientError::Transport`] on timeout; log, server and transport errors. Nothing is written
/// unless every check passes.
pub fn join(
    path: &std::path::Path,
    passphrase: Zeroizing<String>,
    params: serment_core::keystore::KdfParams,
    server: &str,
    transport: &Transport,
    code: &str,
    timeout: Duration,
) -> Result<Joined> {
    let code = PairingCode::parse(code).map_err(|e| ClientError::Input(e.to_string()))?;
    if path.exists() {
        return Err(ClientError::KeystoreExists(path.display().to_string()));
    }
    let api = Api::with_transport(server, transport)?;
    let device = serment_core::identity::DeviceSecret::generate();
    let st = api.pairing_show(code.slot()).map_err(|e| match e {
        ClientError::Server { status: 404, .. } => ClientError::Input(
            "no pairing with this code: it expired, or was mistyped (run `serment device link` again)"
                .into(),
        ),
        other => other,
    })?;
    let hello = b64d(&st.hello, "hello")?;
    let me = pairing::JoiningDevice::of(&device);
    let (joining, msg) = pairing::Join::start(&code, &hello, &device).map_err(pairing_err)?;
    api.pairing_join(code.slot(), &msg)?;
    let deadline = Instant::now() + timeout;
    let fin = loop {
        let st = api.pairing_show(code.slot())?;
        if st.aborted {
            return Err(ClientError::Integrity(serment_core::Error::Pairing(
                "the linking device refused this join: wrong code, or the relay changed a message",
            )));
        }
        if let Some(f) = st.finish {
            break b64d(&f, "finish")?;
        }
        if Instant::now() >= deadline {
            return Err(ClientError::Transport(
                "the linking device did not finish before the pairing code expired".into(),
            ));
        }
        crate::sleep(POLL);
    };
    let payload = joining.open_finish(&fin).map_err(pairing_err)?;
    let (identity, record, handover) = decode_finish(&payload)?;
    let rec = DeviceRecord::decode_verified(&record).map_err(ClientError::Integrity)?;
    if rec.identity_key != identity.public_key()
        || rec.signing_key != me.signing_key
        || rec.encryption_key != me.encryption_key
        || rec.hybrid_key != me.hybrid_key
    {
        return Err(ClientError::Integrity(serment_core::Error::Pairing(
            "the record handed over is not this device's, under the identity key handed over",
        )));
    }
    // The key confirmation the linking device waits for before it logs or re-wraps anything:
    // this record, which only the holder of the pairing key could read, registered by us.
    api.register_device(&record)?;
    let mut ks = crate::keystore::Keystore::create_joined(
        path,
        passphrase,
        identity,
        device,
        &rec.handle,
        &handover.display_name,
        rec.created_at,
        params,
    )?;
    ks.set_server(api.base(), true);
    ks.set_server_ca(handover.server_ca.as_deref());
    if let Some(l) = handover.log {
        ks.set_log_state(api.base(), l);
    }
    for (h, c) in handover.contacts {
        ks.pin(&h, c);
    }
    let handle = rec.handle.clone();
    // From here on the keystore exists; the checks below still decide whether the join succeeded.
    let session = (|| {
        let mut s = Session::connect_with(ks, Some(api.base()), transport)?;
        let hist = crate::log::key_history(&s.api, &mut s.ks, &handle, None)?;
        if hist.identity_key != s.ks.identity.public_key()
            || !hist.devices.iter().any(|d| d.bytes == record)
        {
            return Err(ClientError::OwnWriteMissing(
                "this device's record is not current in the log's history of its handle".into(),
            ));
        }
        s.ks.save()?;
        Ok(s)
    })();
    match session {
        Ok(session) => Ok(Joined { session, handle }),
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(e)
        }
    }
}

#[cfg(feature = "native")]
fn decode_finish(p: &[u8]) -> Result<(IdentitySecret, Vec<u8>, Handover)> {
    let bad = |_| {
        ClientError::Integrity(serment_core::Error::Pairing(
            "the finish payload does not decode",
        ))
    };
    let mut r = serment_core::codec::Reader::new(p, "pairing finish payload");
    let seed = Zeroizing::new(r.array::<32>().map_err(bad)?);
    let n = r.u16().map_err(bad)?;
    let record = r.take(usize::from(n)).map_err(bad)?.to_vec();
    let m = r.u32().map_err(bad)? as usize;
    let json = r.take(m).map_err(bad)?;
    r.finish().map_err(bad)?;
    let handover: Handover = serde_json::from_slice(json).map_err(|_| {
        ClientError::Integrity(serment_core::Error::Pairing(
            "the finish payload's state does not decode",
        ))
    })?;
    Ok((IdentitySecret::from_seed(&seed), record, handover))
}

//! Social recovery, k-of-n (PROTOCOL.md §4.3, issue 17 §2).
//!
//! - `serment id recovery-contacts add HANDLE… --threshold K` ([`Session::set_recovery_contacts`]):
//!   a *social recovery device* is enrolled and caught up as the recovery code's is (§4.2); the
//!   identity key and its keys go into an escrow under a fresh 256-bit secret, split K-of-n with
//!   Shamir (blahaj); each share is HPKE-wrapped to every current device of its contact, the
//!   devices taken from the contact's **proven** key history; the contacts entry (kind 13),
//!   signed by the identity key, binds the contacts, their device ids, K, the waiting period and
//!   the escrow's hash.
//! - `serment recover --social` on a new machine ([`request_recovery`]): a new device, a request
//!   (kind 14) it signs itself, saved pending next to the keystore path.
//! - `serment recovery approve` ([`Session::approve_recovery`]): a contact checks the request in
//!   the proven social chain, opens its share and re-wraps it to the new device, with an
//!   approval (kind 15).
//! - `serment recovery veto` ([`Session::veto_recovery`]): a device of the identity (kind 16).
//! - `serment recover --complete` ([`complete_recovery`]): the shares combined, the escrow
//!   opened, and **every** rule checked again in the proven log before enrolment (§4.2 steps
//!   3-8): K approvals by distinct contacts, each signed by a device current in that contact's
//!   proven key history and named in the entry; each share signed by an approving device; no
//!   veto by a current device of the identity; the waiting period over by this machine's clock
//!   from the request's log time; the escrow's hash the entry's.

// The new machine's side (request, completion) is native only: its imports are unused elsewhere.
#![cfg_attr(not(feature = "native"), allow(unused_imports))]
use serde::{Deserialize, Serialize};
use serment_api::{
    AppendedResponse, FetchRecoveryRequest, HistoryResponse, PostApprovalRequest,
    PostRecoveryRequest, PostVetoRequest, PutContactsRequest, RecoveryRequestCreated,
    SharesResponse, SocialRecoveryResponse,
};
use serment_core::KeyId;
use serment_core::identity::{DeviceRecord, DeviceSecret, IdentitySecret};
use serment_core::keystore::KdfParams;
use serment_core::log::entry::{EntryKind, Payload, Subject};
use serment_core::log::history::{ChainEntry, KeyHistory, check_chain};
use serment_core::log::social::{
    Contact, ContactsBody, RecoveryApproval, RecoveryContacts, RecoveryVeto, RequestState,
    SocialRecoveryRequest, SocialState, replay_social,
};
use serment_core::recovery::EscrowSecrets;
use serment_core::social::{
    Share, ShareContext, ShareWrap, SocialSecret, contacts_hash, escrow_hash, open_social_escrow,
    seal_social_escrow, sign_fetch, unwrap_share, wrap_share,
};
use serment_core::wrap::Recipient;

use crate::api::{Api, b64d, b64e};
use crate::error::{ClientError, Result};
use crate::recovery::RecoveryStatus;
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
use crate::recovery::{RecoverOptions, Recovered};
use crate::vault::Session;

/// The waiting period when none is given: 72 hours, in seconds.
pub const DEFAULT_WAITING_PERIOD: u64 = 72 * 3600;

fn integrity(msg: &'static str) -> ClientError {
    ClientError::Integrity(serment_core::Error::ContextMismatch(msg))
}

impl Api {
    /// `GET /v1/log/social/{handle}?size=N`: the handle's social chain (kinds 13-16), each
    /// entry proven against a checkpoint that extends the pinned one, checked whole. An empty
    /// chain when the server has none (404).
    ///
    /// # Errors
    /// Log, server and transport errors.
    pub fn proven_social_chain(
        &self,
        ks: &mut crate::keystore::Keystore,
        handle: &str,
    ) -> Result<Vec<ChainEntry>> {
        let cp = crate::log::sync(self, ks, 0)?;
        let h: HistoryResponse =
            match self.get_json(&format!("/v1/log/social/{handle}?size={}", cp.size), false) {
                Ok(h) => h,
                Err(ClientError::Server { status: 404, .. }) => return Ok(vec![]),
                Err(e) => return Err(e),
            };
        let cp = crate::log::accept_note(self, ks, &h.checkpoint)?;
        if cp.size != h.size {
            return Err(ClientError::Log(serment_core::Error::BadInclusionProof));
        }
        let chain = h
            .entries
            .iter()
            .map(|pe| crate::log::verify_proven(&cp, pe))
            .collect::<Result<Vec<_>>>()?;
        check_chain(&chain, &Subject::Social(handle.to_owned())).map_err(ClientError::Log)?;
        Ok(chain)
    }
}

impl Api {
    /// `POST /v1/recovery/approvals` (bearer): an approval payload (kind 15) and the share
    /// re-wrapped to the request's device. Returns the log indices.
    ///
    /// # Errors
    /// Server (403, 404, 409) and transport errors.
    pub fn post_recovery_approval(&self, approval: &[u8], share: &[u8]) -> Result<Vec<u64>> {
        let a: AppendedResponse = self.post_json(
            "/v1/recovery/approvals",
            &PostApprovalRequest {
                approval: b64e(approval),
                share: b64e(share),
            },
            true,
        )?;
        Ok(a.log_indices)
    }
}

impl Api {
    /// `POST /v1/recovery/contacts` (bearer): a contacts entry (kind 13), its escrow and one
    /// share wrap per named device. Returns the log indices.
    ///
    /// # Errors
    /// Server (400, 403, 409) and transport errors.
    pub fn put_recovery_contacts(
        &self,
        entry: &[u8],
        escrow: &[u8],
        shares: Vec<String>,
    ) -> Result<Vec<u64>> {
        let a: AppendedResponse = self.post_json(
            "/v1/recovery/contacts",
            &PutContactsRequest {
                contacts: b64e(entry),
                escrow: b64e(escrow),
                shares,
            },
            true,
        )?;
        Ok(a.log_indices)
    }

    /// `POST /v1/recovery/vetoes` (bearer): a veto payload (kind 16). Returns the log indices.
    ///
    /// # Errors
    /// Server (403, 404) and transport errors.
    pub fn post_recovery_veto(&self, veto: &[u8]) -> Result<Vec<u64>> {
        let a: AppendedResponse = self.post_json(
            "/v1/recovery/vetoes",
            &PostVetoRequest { veto: b64e(veto) },
            true,
        )?;
        Ok(a.log_indices)
    }
}

/// The proven social state of `handle`.
fn proven_social(
    api: &Api,
    ks: &mut crate::keystore::Keystore,
    handle: &str,
) -> Result<SocialState> {
    let chain = api.proven_social_chain(ks, handle)?;
    replay_social(handle, &chain).map_err(ClientError::Log)
}

/// The newest contacts entry, checked against the handle's proven key history: signed by its
/// current identity key.
fn current_contacts(
    st: &SocialState,
    hist: &KeyHistory,
) -> Result<(u64, RecoveryContacts, [u8; 32])> {
    let (i, c, h) = st.contacts.clone().ok_or(ClientError::Server {
        status: 404,
        code: "not_found".into(),
        message: "this handle has no recovery contacts in the log".into(),
    })?;
    if c.identity_key != hist.identity_key {
        return Err(integrity(
            "the recovery contacts entry is not signed by the handle's current identity key",
        ));
    }
    // REVIEW4 T8: the protocol's floor, whatever the server logged: no request against such an
    // entry, no approval of one, no completion.
    if serment_core::social::check_waiting_period(c.waiting_period).is_err() {
        return Err(integrity(
            "the recovery contacts entry's waiting period is below the floor of 24 hours",
        ));
    }
    Ok((i, c, h))
}

/// What [`Session::set_recovery_contacts`] did.
#[derive(Debug)]
pub struct ContactsSet {
    /// The contacts entry's log index.
    pub index: u64,
    /// The social recovery device.
    pub recovery_device: KeyId,
    /// The contacts and the devices their shares went to.
    pub contacts: Vec<Contact>,
    /// K.
    pub threshold: u8,
    /// Seconds.
    pub waiting_period: u64,
    /// Share wraps made (one per contact device).
    pub wraps: usize,
    /// Of them, with the hybrid suite 3 (X-Wing).
    pub hybrid_wraps: usize,
    /// Document versions re-wrapped for the social recovery device.
    pub caught_up: usize,
    /// The previous set's recovery device, revoked.
    pub revoked_previous: Option<KeyId>,
}

/// A request as a contact or a device of the identity sees it.
#[derive(Debug, Clone)]
pub struct RequestView {
    /// The handle being recovered.
    pub handle: String,
    /// The request id (32 hex).
    pub request_id: String,
    /// The request's log index.
    pub index: u64,
    /// The requesting device.
    pub new_device: KeyId,
    /// Its fingerprint (16 groups of 4 hex digits) to compare by phone.
    pub fingerprint: String,
    /// Server time of the request's entry.
    pub logged_at: u64,
    /// Contacts who approved (distinct, as logged).
    pub approvals: Vec<String>,
    /// K.
    pub threshold: u8,
    /// Whether a device vetoed it.
    pub vetoed: bool,
    /// When the waiting period ends (seconds since the epoch).
    pub ready_at: u64,
}

/// Whether a veto of `r` counts: signed by a device current in the handle's proven key
/// history (REVIEW4 T7). A veto by any other key (a forged one, a revoked device's) is ignored
/// everywhere, in the views as in the completion, so that it cannot silence the warning about a
/// pending takeover.
fn vetoed_by_a_current_device(r: &RequestState, hist: &KeyHistory) -> bool {
    r.vetoes
        .iter()
        .any(|(_, v)| hist.devices.iter().any(|d| d.device_id() == v.device_id()))
}

fn view(handle: &str, r: &RequestState, c: &RecoveryContacts, hist: &KeyHistory) -> RequestView {
    let mut approvals: Vec<String> = r.approvals.iter().map(|(_, a)| a.contact.clone()).collect();
    approvals.sort();
    approvals.dedup();
    RequestView {
        handle: handle.to_owned(),
        request_id: hex::encode(r.request.id),
        index: r.index,
        new_device: r.request.device_id(),
        fingerprint: crate::contacts::fingerprint(&r.request.device_id()),
        logged_at: r.logged_at,
        approvals,
        threshold: c.threshold,
        vetoed: vetoed_by_a_current_device(r, hist),
        // REVIEW4 T21: the earliest moment anyone can complete (the server's gate counts from
        // the log time), never a requester-chosen later one.
        ready_at: r.logged_at.saturating_add(c.waiting_period),
    }
}

/// The previous set's social recovery device to revoke when a new set is named (its secret is
/// burnt), if any. REVIEW5 U17: only the recovery device of an entry signed by this identity's
/// own key (a hostile server cannot sign one: a forged self-signed entry naming the user's
/// phone, or this very device, gets nothing revoked), current, and neither the new set's device
/// nor this device.
fn previous_to_revoke(
    before: &SocialState,
    own_identity_key: &[u8; 32],
    hist: &KeyHistory,
    new_device: &KeyId,
    this_device: &KeyId,
) -> Option<KeyId> {
    let (_, prev, _) = before.contacts.as_ref()?;
    let ok = prev.identity_key == *own_identity_key
        && prev.recovery_device != *new_device
        && prev.recovery_device != *this_device
        && hist
            .devices
            .iter()
            .any(|d| d.device_id() == prev.recovery_device);
    ok.then_some(prev.recovery_device)
}

/// The requests of `st` neither vetoed (by a current device) nor completed (their device not
/// yet current in the handle's proven key history), relying on the current contacts entry.
fn pending_in(handle: &str, st: &SocialState, hist: &KeyHistory) -> Vec<RequestView> {
    let Some((_, c, h)) = &st.contacts else {
        return vec![];
    };
    st.requests
        .iter()
        .filter(|r| r.request.contacts_hash == *h && !vetoed_by_a_current_device(r, hist))
        .filter(|r| {
            !hist
                .devices
                .iter()
                .any(|d| d.device_id() == r.request.device_id())
        })
        .map(|r| view(handle, r, c, hist))
        .collect()
}

/// Whether a contacts entry can still recover the identity (REVIEW4 T6): signed by the current
/// identity key (its escrow holds that seed) and its social recovery device current.
fn contacts_status(c: &RecoveryContacts, hist: &KeyHistory) -> RecoveryStatus {
    let current = hist
        .devices
        .iter()
        .any(|d| d.device_id() == c.recovery_device);
    if c.identity_key == hist.identity_key && current {
        RecoveryStatus::Usable
    } else {
        RecoveryStatus::Stale
    }
}

fn parse_request_id(id: &str) -> Result<[u8; 16]> {
    let bad = || ClientError::Input("a request id is 32 hex digits".into());
    hex::decode(id.trim())
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())
}

impl Session {
    /// `serment id recovery-contacts add` (PROTOCOL.md §4.3): see the module documentation.
    /// `contacts` are handles (2 ≤ `threshold` ≤ n ≤ 16); `waiting_period` in seconds.
    ///
    /// # Errors
    /// [`ClientError::Input`] for a bad threshold or contact list (the own handle, a contact
    /// with no current device); log, server and transport errors; [`ClientError::OwnWriteMissing`]
    /// if the log does not show the entry.
    pub fn set_recovery_contacts(
        &mut self,
        contacts: &[String],
        threshold: u8,
        waiting_period: u64,
    ) -> Result<ContactsSet> {
        let n = u8::try_from(contacts.len())
            .map_err(|_| ClientError::Input("at most 16 recovery contacts".into()))?;
        serment_core::social::check_threshold(threshold, n)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        serment_core::social::check_waiting_period(waiting_period)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let handle = self.ks.handle().to_owned();
        // Every contact's devices from its proven key history (never a directory answer).
        let mut named: Vec<(Contact, Vec<DeviceRecord>)> = Vec::new();
        for h in contacts {
            if *h == handle {
                return Err(ClientError::Input(
                    "a recovery contact is someone else, not this handle".into(),
                ));
            }
            let hist = crate::log::key_history(&self.api, &mut self.ks, h, None)?;
            if hist.devices.is_empty() {
                return Err(ClientError::Input(format!(
                    "{h} has no current device to hold a share"
                )));
            }
            let devices: Vec<DeviceRecord> = hist
                .devices
                .iter()
                .take(serment_core::log::social::MAX_CONTACT_DEVICES)
                .cloned()
                .collect();
            named.push((
                Contact {
                    handle: h.clone(),
                    devices: devices.iter().map(DeviceRecord::device_id).collect(),
                },
                devices,
            ));
        }
        let before = proven_social(&self.api, &mut self.ks, &handle)?;
        // The social recovery device, as the recovery code's (§4.2).
        let device = DeviceSecret::generate();
        let record = self
            .ks
            .identity
            .sign_device_record(&handle, &device, crate::now_secs())
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let rec = DeviceRecord::decode_verified(&record).map_err(ClientError::Integrity)?;
        self.api.register_device(&record)?;
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        if !hist.devices.iter().any(|d| d.bytes == record) {
            return Err(ClientError::OwnWriteMissing(
                "the social recovery device's record is not current in the log".into(),
            ));
        }
        let (caught_up, _) = self.catch_up(&rec)?;
        self.hand_over_team_keys(&rec)?;
        self.ks.add_known_devices(&[rec.device_id()]);
        let secret = SocialSecret::generate().map_err(ClientError::Integrity)?;
        let mut rng = serment_core::rng::os_rng();
        let shares = secret
            .split(threshold, n, &mut rng)
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let escrow = seal_social_escrow(
            &secret,
            &handle,
            &EscrowSecrets {
                identity: IdentitySecret::from_seed(&self.ks.identity.to_seed()),
                device,
            },
        )
        .map_err(ClientError::Integrity)?;
        let list: Vec<Contact> = named.iter().map(|(c, _)| c.clone()).collect();
        let entry = RecoveryContacts::sign(
            &ContactsBody {
                handle: &handle,
                recovery_device: rec.device_id(),
                threshold,
                waiting_period,
                escrow_hash: escrow_hash(&escrow),
                contacts: &list,
                at: crate::now_secs(),
            },
            &self.ks.identity,
        )
        .map_err(|e| ClientError::Input(e.to_string()))?;
        let ch = contacts_hash(&entry);
        let ctx = ShareContext {
            handle: &handle,
            contacts_hash: &ch,
            request_id: &[0; 16],
        };
        let mut wraps = Vec::new();
        let mut hybrid_wraps = 0;
        for ((_, records), share) in named.iter().zip(shares.iter()) {
            for r in records {
                let to = Recipient::from(r);
                if to.hybrid_key.is_some() {
                    hybrid_wraps += 1;
                }
                wraps.push(b64e(
                    &wrap_share(share, ctx, &to, &self.ks.device, &mut rng)
                        .map_err(ClientError::Integrity)?,
                ));
            }
        }
        let n_wraps = wraps.len();
        let log_indices = self.api.put_recovery_contacts(&entry, &escrow, wraps)?;
        crate::log::check_own_writes(
            &self.api,
            &mut self.ks,
            &log_indices,
            &[(EntryKind::RecoveryContacts, entry.as_slice())],
        )?;
        self.ks.save()?;
        // The previous set's recovery device is revoked: its escrow's secret is burnt.
        let mut revoked_previous = None;
        if let Some(prev) = previous_to_revoke(
            &before,
            &self.ks.identity.public_key(),
            &hist,
            &rec.device_id(),
            &self.ks.device.id(),
        ) {
            self.revoke_device(&prev)?;
            revoked_previous = Some(prev);
        }
        Ok(ContactsSet {
            index: log_indices.first().copied().unwrap_or_default(),
            recovery_device: rec.device_id(),
            contacts: list,
            threshold,
            waiting_period,
            wraps: n_wraps,
            hybrid_wraps,
            caught_up,
            revoked_previous,
        })
    }

    /// `serment id recovery-contacts list`: this handle's current contacts entry in the proven
    /// log (signed by the current identity key) with its index, or `None`.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] for an entry not signed by the current identity key; log
    /// errors.
    pub fn recovery_contacts(&mut self) -> Result<Option<(u64, RecoveryContacts)>> {
        let handle = self.ks.handle().to_owned();
        let st = proven_social(&self.api, &mut self.ks, &handle)?;
        if st.contacts.is_none() {
            return Ok(None);
        }
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        let (i, c, _) = current_contacts(&st, &hist)?;
        Ok(Some((i, c)))
    }

    /// Every social recovery device this handle's proven social chain names (the kind-13
    /// entries, the current set's and earlier ones): no honest flow downloads a document as one
    /// (a recovery re-wraps its key wraps), so `audit` flags every blob download by them, as by
    /// the recovery code's device (REVIEW4 T4).
    ///
    /// # Errors
    /// Log errors.
    pub fn social_recovery_devices(&mut self) -> Result<Vec<KeyId>> {
        let handle = self.ks.handle().to_owned();
        let chain = self.api.proven_social_chain(&mut self.ks, &handle)?;
        Ok(chain
            .iter()
            .filter_map(|e| match &e.entry.payload {
                Payload::RecoveryContacts(c) => Some(c.recovery_device),
                _ => None,
            })
            .collect())
    }

    /// Requests to recover `handle` (this identity's own, or one this user is a contact of)
    /// that are neither vetoed nor completed (their device not yet current in the handle's
    /// proven key history), from the proven social chain: what `device list` warns about.
    ///
    /// # Errors
    /// Log errors.
    pub fn pending_recovery_requests(&mut self, handle: &str) -> Result<Vec<RequestView>> {
        let st = proven_social(&self.api, &mut self.ks, handle)?;
        if st.contacts.is_none() {
            return Ok(vec![]);
        }
        let hist = crate::log::key_history(&self.api, &mut self.ks, handle, None)?;
        Ok(pending_in(handle, &st, &hist))
    }

    /// What `device list`, `ls` and `get` warn about for this identity's own social recovery,
    /// from one proven social chain and key history: the pending requests (as
    /// [`Session::pending_recovery_requests`]) and whether its recovery contacts still work
    /// (REVIEW4 T6: a rotation of the identity key, or the social recovery device retired,
    /// makes the set useless without a word: the entry is signed by the old key and the escrow
    /// holds the old seed), with the current entry when there is one (to name the same contacts
    /// again).
    ///
    /// # Errors
    /// Log errors.
    pub fn own_social_status(
        &mut self,
    ) -> Result<(Vec<RequestView>, RecoveryStatus, Option<RecoveryContacts>)> {
        let handle = self.ks.handle().to_owned();
        let st = proven_social(&self.api, &mut self.ks, &handle)?;
        let Some((_, c, _)) = st.contacts.clone() else {
            return Ok((vec![], RecoveryStatus::None, None));
        };
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        Ok((
            pending_in(&handle, &st, &hist),
            contacts_status(&c, &hist),
            Some(c),
        ))
    }

    /// A request as the proven log shows it (for a contact to check before approving).
    ///
    /// # Errors
    /// [`ClientError::Input`] for a bad id; 404-like [`ClientError::Server`] for a request not
    /// in the proven log; log errors.
    pub fn recovery_request(&mut self, handle: &str, id: &str) -> Result<RequestView> {
        let id = parse_request_id(id)?;
        let st = proven_social(&self.api, &mut self.ks, handle)?;
        let r = st.request(&id).ok_or_else(not_logged)?;
        let (_, c, _) = st.contacts.as_ref().ok_or_else(not_logged)?;
        let hist = crate::log::key_history(&self.api, &mut self.ks, handle, None)?;
        Ok(view(handle, r, c, &hist))
    }

    /// `serment recovery approve --handle H --request ID` (PROTOCOL.md §4.3): checks the request
    /// is in the proven social chain of `handle` and relies on its current contacts entry (signed
    /// by the handle's current identity key) naming this handle and device; opens this device's
    /// share (signed by a current device of that identity); logs an approval and re-wraps the
    /// share to the request's device (X-Wing).
    ///
    /// # Errors
    /// [`ClientError::Integrity`] for an entry or share that does not check; 404-like
    /// [`ClientError::Server`] for a request not in the log; server (409: vetoed) errors.
    pub fn approve_recovery(&mut self, handle: &str, id: &str) -> Result<RequestView> {
        let rid = parse_request_id(id)?;
        let st = proven_social(&self.api, &mut self.ks, handle)?;
        let hist = crate::log::key_history(&self.api, &mut self.ks, handle, None)?;
        let (_, c, ch) = current_contacts(&st, &hist)?;
        let r = st.request(&rid).ok_or_else(not_logged)?.clone();
        if r.request.contacts_hash != ch {
            return Err(integrity(
                "the request relies on recovery contacts that are no longer current",
            ));
        }
        if vetoed_by_a_current_device(&r, &hist) {
            return Err(ClientError::Input(
                "a device of this identity vetoed the request".into(),
            ));
        }
        let me = self.ks.handle().to_owned();
        let pos = c.position(&me).ok_or(ClientError::Input(format!(
            "{me} is not a recovery contact of {handle}"
        )))?;
        let my_id = self.ks.device.id();
        if !c.contacts.iter().any(|k| k.devices.contains(&my_id)) {
            return Err(ClientError::Input(
                "this device holds no share (it was not current when the contacts were named)"
                    .into(),
            ));
        }
        let got: SharesResponse = self
            .api
            .get_json(&format!("/v1/recovery/shares/{handle}"), true)?;
        let ctx0 = ShareContext {
            handle,
            contacts_hash: &ch,
            request_id: &[0; 16],
        };
        let mut share: Option<Share> = None;
        for s in &got.shares {
            let w = ShareWrap::decode(&b64d(s, "share")?).map_err(ClientError::Integrity)?;
            if w.recipient != my_id || w.contacts_hash != ch {
                continue;
            }
            let sharer = hist
                .devices
                .iter()
                .find(|d| d.device_id() == w.sharer)
                .ok_or(integrity(
                    "the share was not made by a current device of the identity",
                ))?;
            w.verify_signature(&sharer.signing_key)
                .map_err(ClientError::Integrity)?;
            let sh = unwrap_share(&w, ctx0, &self.ks.device).map_err(ClientError::Integrity)?;
            if usize::from(sh.x()) != pos + 1 {
                return Err(integrity("the share is another contact's"));
            }
            share = Some(sh);
            break;
        }
        let share = share.ok_or(ClientError::Server {
            status: 404,
            code: "not_found".into(),
            message: "the server holds no share of this handle for this device".into(),
        })?;
        let approval = RecoveryApproval::sign(
            handle,
            &rid,
            &r.request.device_id(),
            &me,
            &self.ks.device,
            crate::now_secs(),
        )
        .map_err(|e| ClientError::Input(e.to_string()))?;
        let rewrap = wrap_share(
            &share,
            ShareContext {
                handle,
                contacts_hash: &ch,
                request_id: &rid,
            },
            &r.request.recipient(),
            &self.ks.device,
            &mut serment_core::rng::os_rng(),
        )
        .map_err(ClientError::Integrity)?;
        let indices = self.api.post_recovery_approval(&approval, &rewrap)?;
        crate::log::check_own_writes(
            &self.api,
            &mut self.ks,
            &indices,
            &[(EntryKind::RecoveryApproval, approval.as_slice())],
        )?;
        self.ks.save()?;
        let mut v = view(handle, &r, &c, &hist);
        if !v.approvals.contains(&me) {
            v.approvals.push(me);
            v.approvals.sort();
        }
        Ok(v)
    }

    /// `serment recovery veto --request ID`: logs a veto of a request to recover this handle,
    /// signed by this device (PROTOCOL.md §4.3).
    ///
    /// # Errors
    /// 404-like [`ClientError::Server`] for a request not in the proven log; server errors;
    /// [`ClientError::OwnWriteMissing`].
    pub fn veto_recovery(&mut self, id: &str) -> Result<RequestView> {
        let rid = parse_request_id(id)?;
        let handle = self.ks.handle().to_owned();
        let st = proven_social(&self.api, &mut self.ks, &handle)?;
        let r = st.request(&rid).ok_or_else(not_logged)?.clone();
        let veto = RecoveryVeto::sign(&handle, &rid, &self.ks.device, crate::now_secs())
            .map_err(|e| ClientError::Input(e.to_string()))?;
        let indices = self.api.post_recovery_veto(&veto)?;
        crate::log::check_own_writes(
            &self.api,
            &mut self.ks,
            &indices,
            &[(EntryKind::RecoveryVeto, veto.as_slice())],
        )?;
        self.ks.save()?;
        let c = st
            .contacts
            .as_ref()
            .map(|x| x.1.clone())
            .ok_or_else(not_logged)?;
        let hist = crate::log::key_history(&self.api, &mut self.ks, &handle, None)?;
        let mut v = view(&handle, &r, &c, &hist);
        v.vetoed = true;
        Ok(v)
    }
}

fn not_logged() -> ClientError {
    ClientError::Server {
        status: 404,
        code: "not_found".into(),
        message: "no such recovery request in the log".into(),
    }
}

/// The state a recovery request leaves on the new machine until it completes: the new device's
/// keys, sealed under the passphrase like a keystore (`<keystore>.recovery-pending`).
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
#[derive(Debug, Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    handle: String,
    server: String,
    request_id: String,
    /// A sealed in-memory keystore of the new device (its identity a placeholder) holding the
    /// log pin taken at the request.
    keystore: String,
}

/// Where a pending request is kept for the keystore at `path`.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
pub fn pending_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".recovery-pending");
    std::path::PathBuf::from(p)
}

/// What [`request_recovery`] did.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
#[derive(Debug, Clone)]
pub struct RequestMade {
    /// The request id (32 hex) contacts approve.
    pub request_id: String,
    /// Its log index.
    pub index: u64,
    /// The new device.
    pub new_device: KeyId,
    /// Its fingerprint, to read to the contacts.
    pub fingerprint: String,
    /// The contacts to ask, and K.
    pub contacts: Vec<String>,
    /// K.
    pub threshold: u8,
    /// The waiting period, seconds.
    pub waiting_period: u64,
    /// The log's verifier key this machine pinned (REVIEW4 T17: to compare with the one the
    /// operator publishes, when it was not given in advance).
    pub log_key: String,
}

/// `serment recover --social --handle H --server URL` (PROTOCOL.md §4.3): pins the log key,
/// reads `handle`'s current contacts entry in the proven log (signed by its current identity
/// key), makes a new device and logs its request (kind 14), checked in the log; the device's
/// keys are kept, sealed under `passphrase`, in [`pending_path`] until `--complete`.
///
/// # Errors
/// [`ClientError::KeystoreExists`] if a keystore or a pending request exists at `path`;
/// [`ClientError::Integrity`]; server (404: no contacts) and transport errors.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
pub fn request_recovery(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    server: &str,
    transport: &crate::transport::Transport,
    handle: &str,
    params: KdfParams,
) -> Result<RequestMade> {
    request_recovery_pinned(path, passphrase, server, transport, handle, params, None)
}

/// [`request_recovery`] with the log key pinned in advance (`log_key`, REVIEW4 T17; see
/// [`crate::recovery::expected_log_state`]): a server serving another log key is refused
/// ([`ClientError::LogKeyChanged`]) before anything is requested.
///
/// # Errors
/// As [`request_recovery`]; [`ClientError::Input`] for a malformed `log_key`.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
pub fn request_recovery_pinned(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    server: &str,
    transport: &crate::transport::Transport,
    handle: &str,
    params: KdfParams,
    log_key: Option<&str>,
) -> Result<RequestMade> {
    let pinned = crate::recovery::expected_log_state(log_key)?;
    let pending = pending_path(path);
    if path.exists() {
        return Err(ClientError::KeystoreExists(path.display().to_string()));
    }
    if pending.exists() {
        return Err(ClientError::KeystoreExists(pending.display().to_string()));
    }
    serment_core::identity::validate_handle(handle)
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let api = Api::with_transport(server, transport)?;
    let device = DeviceSecret::generate();
    let mut ks = crate::keystore::Keystore::in_memory_for(
        IdentitySecret::generate(),
        device,
        handle,
        crate::now_secs(),
    );
    if let Some(l) = pinned {
        ks.set_log_state(api.base(), l);
    }
    crate::log::pin_log_key(&api, &mut ks)?;
    let st = proven_social(&api, &mut ks, handle)?;
    let hist = crate::log::key_history(&api, &mut ks, handle, None)?;
    let (_, c, ch) = current_contacts(&st, &hist)?;
    let entry = SocialRecoveryRequest::sign(handle, &ch, &ks.device, crate::now_secs())
        .map_err(|e| ClientError::Input(e.to_string()))?;
    let made: RecoveryRequestCreated = api.post_json(
        "/v1/recovery/requests",
        &PostRecoveryRequest {
            request: b64e(&entry),
        },
        false,
    )?;
    crate::log::check_own_writes(
        &api,
        &mut ks,
        &made.log_indices,
        &[(EntryKind::RecoveryRequest, entry.as_slice())],
    )?;
    let req = SocialRecoveryRequest::decode_verified(&entry).map_err(ClientError::Integrity)?;
    if made.request_id != hex::encode(req.id) {
        return Err(ClientError::BadResponse(
            "the server answered another request id".into(),
        ));
    }
    ks.set_server(api.base(), false);
    let sealed = ks.sealed_file(passphrase.as_bytes(), params)?;
    let file = PendingFile {
        version: 1,
        handle: handle.to_owned(),
        server: api.base().to_owned(),
        request_id: made.request_id.clone(),
        keystore: b64e(&sealed),
    };
    let json = serde_json::to_vec_pretty(&file)
        .map_err(|e| ClientError::Input(format!("pending request: {e}")))?;
    if let Some(dir) = pending.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io(dir, e))?;
    }
    crate::fsutil::write_atomic(&pending, &json)?;
    Ok(RequestMade {
        request_id: made.request_id,
        index: made.log_indices.first().copied().unwrap_or_default(),
        new_device: req.device_id(),
        fingerprint: crate::contacts::fingerprint(&req.device_id()),
        contacts: c.contacts.iter().map(|k| k.handle.clone()).collect(),
        threshold: c.threshold,
        waiting_period: c.waiting_period,
        log_key: ks
            .log_state(api.base())
            .map(|l| l.vkey.clone())
            .unwrap_or_default(),
    })
}

/// The pending request next to `path`, and the new device's in-memory keystore.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
fn open_pending(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
) -> Result<(PendingFile, crate::keystore::Keystore)> {
    let pending = pending_path(path);
    let raw = std::fs::read(&pending)
        .map_err(|_| ClientError::NoKeystore(pending.display().to_string()))?;
    let file: PendingFile = serde_json::from_slice(&raw)
        .map_err(|e| ClientError::Input(format!("{}: {e}", pending.display())))?;
    if file.version != 1 {
        return Err(ClientError::Input(format!(
            "{}: unknown version",
            pending.display()
        )));
    }
    let ks = crate::keystore::Keystore::open_bytes(
        &b64d(&file.keystore, "keystore")?,
        passphrase.clone(),
    )?;
    Ok((file, ks))
}

/// `POST /v1/recovery/requests/{id}`: the escrow and the shares re-wrapped to this device. The
/// server serves them only to the request's device, on a fresh proof signed with its key
/// (REVIEW4 T1; the real clock: the server checks the proof's time against its own).
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
fn fetch_request(
    api: &Api,
    ks: &crate::keystore::Keystore,
    rid: &[u8; 16],
) -> Result<SocialRecoveryResponse> {
    let at = crate::now_secs();
    api.post_json(
        &format!("/v1/recovery/requests/{}", hex::encode(rid)),
        &FetchRecoveryRequest {
            signing_key: b64e(&ks.device.signing_public_key()),
            at,
            signature: b64e(&sign_fetch(&ks.device, rid, at)),
        },
        false,
    )
}

/// The fetch of [`complete_recovery`] alone, for the pending request next to `path`, with no
/// check of the answer (tests of the server's gate).
///
/// # Errors
/// As [`complete_recovery`]'s first steps; server errors (403, 409).
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
#[doc(hidden)]
pub fn fetch_pending(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
) -> Result<SocialRecoveryResponse> {
    let (file, ks) = open_pending(path, passphrase)?;
    let api = Api::with_transport(&file.server, transport)?;
    fetch_request(&api, &ks, &parse_request_id(&file.request_id)?)
}

/// What [`complete_recovery`] did, besides the enrolment.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
#[derive(Debug)]
pub struct SocialRecovered {
    /// The enrolment (§4.2 steps 4-8).
    pub recovered: Recovered,
    /// The contacts whose approvals (and shares) were used.
    pub approved_by: Vec<String>,
    /// The request id.
    pub request_id: String,
}

/// `serment recover --social --complete` (PROTOCOL.md §4.3): see the module documentation.
/// Reads the pending request next to `path` (opened with `passphrase`), and on success writes
/// the keystore at `path` and removes the pending file.
///
/// # Errors
/// [`ClientError::NoKeystore`] without a pending request; [`ClientError::Keystore`] for a wrong
/// passphrase; [`ClientError::Integrity`] when any rule fails (too few approvals, a veto, the
/// waiting period, a substituted contact key, an unlogged request, a swapped escrow): nothing
/// is enrolled then; server and transport errors.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
pub fn complete_recovery(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    opts: RecoverOptions,
) -> Result<SocialRecovered> {
    complete_recovery_at(path, passphrase, transport, opts, crate::now_secs())
}

/// [`complete_recovery`] with `now` as this machine's clock (tests).
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
#[doc(hidden)]
pub fn complete_recovery_at(
    path: &std::path::Path,
    passphrase: zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    opts: RecoverOptions,
    now: u64,
) -> Result<SocialRecovered> {
    let pending = pending_path(path);
    let o = open_recovery(path, &passphrase, transport, now)?;
    let Opened {
        file,
        ks,
        api,
        secrets,
        mut approved_by,
        record_at,
    } = o;
    let handle = file.handle.clone();
    let device =
        DeviceSecret::from_secrets(&ks.device.signing_seed(), &ks.device.encryption_secret())
            .and_then(|d| match ks.device.hybrid_secret() {
                Some(h) => d.with_hybrid_secret(&h),
                None => Ok(d),
            })
            .map_err(ClientError::Integrity)?;
    let log_state = ks.log_state(api.base()).cloned();
    let recovered = crate::recovery::enrol_recovered(
        path,
        passphrase,
        api,
        transport,
        &handle,
        secrets,
        device,
        log_state,
        Some(record_at),
        opts,
    )?;
    let _ = std::fs::remove_file(&pending);
    approved_by.sort();
    Ok(SocialRecovered {
        recovered,
        approved_by,
        request_id: file.request_id,
    })
}

/// What [`open_recovery`] opened: every rule checked, nothing enrolled yet.
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
struct Opened {
    file: PendingFile,
    ks: crate::keystore::Keystore,
    api: Api,
    secrets: EscrowSecrets,
    approved_by: Vec<String>,
    record_at: u64,
}

/// The escrow of the pending request next to `path`, opened after every check of
/// [`complete_recovery`], without enrolling anything: what a requester who does not mean to
/// enrol (K colluding contacts, a thief's client) holds once the escrow is served. Tests of
/// what the owner then sees (`audit`).
///
/// # Errors
/// As [`complete_recovery`].
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
#[doc(hidden)]
pub fn open_pending_escrow(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    now: u64,
) -> Result<EscrowSecrets> {
    Ok(open_recovery(path, passphrase, transport, now)?.secrets)
}

#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
fn open_recovery(
    path: &std::path::Path,
    passphrase: &zeroize::Zeroizing<String>,
    transport: &crate::transport::Transport,
    now: u64,
) -> Result<Opened> {
    let (file, mut ks) = open_pending(path, passphrase)?;
    let handle = file.handle.clone();
    let rid = parse_request_id(&file.request_id)?;
    let api = Api::with_transport(&file.server, transport)?;
    // The proven social chain and key histories, before anything is opened.
    let st = proven_social(&api, &mut ks, &handle)?;
    let r = st.request(&rid).cloned().ok_or(integrity(
        "the request is not in the proven log (a recovery the log does not show is refused)",
    ))?;
    if r.request.device_id() != ks.device.id() {
        return Err(integrity("the logged request names another device"));
    }
    let hist = crate::log::key_history(&api, &mut ks, &handle, None)?;
    let (_, c, ch) = current_contacts(&st, &hist)?;
    if r.request.contacts_hash != ch {
        return Err(integrity(
            "the recovery contacts changed since the request: make a new request",
        ));
    }
    // A veto by a current device of the identity ends the request.
    if vetoed_by_a_current_device(&r, &hist) {
        return Err(integrity("a device of this identity vetoed the request"));
    }
    // The waiting period, by this machine's clock, from the later of the request's log time and
    // its own signed time: a server that lies about time can delay, not shorten it.
    let record_at = r.request.at;
    let ready_at = r
        .logged_at
        .max(r.request.at)
        .saturating_add(c.waiting_period);
    if now < ready_at {
        return Err(ClientError::Input(format!(
            "the waiting period ends in {} s (any device of {handle} can veto until then)",
            ready_at - now
        )));
    }
    // Approvals: distinct contacts of the entry, each by one of its named devices that is
    // current in its proven key history.
    let mut approvers: Vec<(String, [u8; 32], usize)> = Vec::new();
    for (_, a) in &r.approvals {
        let Some(pos) = c.position(&a.contact) else {
            continue;
        };
        if approvers.iter().any(|(h, ..)| *h == a.contact) {
            continue;
        }
        let named = c
            .contacts
            .get(pos)
            .is_some_and(|k| k.devices.contains(&a.device_id()));
        if !named {
            continue;
        }
        let chist = crate::log::key_history(&api, &mut ks, &a.contact, None)?;
        if !chist.devices.iter().any(|d| d.device_id() == a.device_id()) {
            continue;
        }
        approvers.push((a.contact.clone(), a.signing_key, pos));
    }
    if approvers.len() < usize::from(c.threshold) {
        return Err(integrity(
            "fewer valid approvals in the log than the contacts entry's threshold",
        ));
    }
    let got = fetch_request(&api, &ks, &rid)?;
    let escrow = b64d(&got.escrow, "escrow")?;
    if escrow_hash(&escrow) != c.escrow_hash {
        return Err(integrity(
            "the escrow served is not the one the contacts entry binds",
        ));
    }
    let ctx = ShareContext {
        handle: &handle,
        contacts_hash: &ch,
        request_id: &rid,
    };
    let mut shares: Vec<Share> = Vec::new();
    let mut approved_by: Vec<String> = Vec::new();
    for s in &got.shares {
        let Ok(w) = ShareWrap::decode(&b64d(s, "share")?) else {
            continue;
        };
        let Some((h, key, pos)) = approvers
            .iter()
            .find(|(_, k, _)| KeyId::of(serment_core::ids::KeyKind::Device, k) == w.sharer)
        else {
            continue;
        };
        if approved_by.contains(h) || w.verify_signature(key).is_err() {
            continue;
        }
        let Ok(sh) = unwrap_share(&w, ctx, &ks.device) else {
            continue;
        };
        if usize::from(sh.x()) != pos + 1 {
            continue;
        }
        approved_by.push(h.clone());
        shares.push(sh);
    }
    if shares.len() < usize::from(c.threshold) {
        return Err(integrity(
            "fewer valid shares than the threshold (shares not signed by an approving contact's device)",
        ));
    }
    // REVIEW4 T2: one approving contact re-wrapping a wrong share must not block the recovery:
    // K-subsets of the valid shares are tried (lexicographic order, at most C(16, 8) = 12870
    // AEAD opens) until the escrow opens; `approved_by` names the contacts whose shares did.
    let k = usize::from(c.threshold);
    let mut idx: Vec<usize> = (0..k).collect();
    let (secrets, used) = loop {
        let subset = idx
            .iter()
            .filter_map(|&i| shares.get(i))
            .map(|sh| Share::from_bytes(sh.as_bytes()))
            .collect::<serment_core::Result<Vec<Share>>>()
            .map_err(ClientError::Integrity)?;
        let opened = SocialSecret::combine(c.threshold, &subset)
            .and_then(|secret| open_social_escrow(&secret, &handle, &escrow));
        match opened {
            Ok(secrets) => break (secrets, idx.clone()),
            Err(e) => {
                // The next K-subset of 0..n, or none left.
                let n = shares.len();
                let Some(i) = (0..k)
                    .rev()
                    .find(|&i| idx.get(i).is_some_and(|&v| v < n - k + i))
                else {
                    return Err(ClientError::Integrity(e));
                };
                if let Some(v) = idx.get_mut(i) {
                    *v += 1;
                }
                let base = idx.get(i).copied().unwrap_or(0);
                for (j, v) in idx.iter_mut().enumerate().skip(i + 1) {
                    *v = base + (j - i);
                }
            }
        }
    };
    let approved_by: Vec<String> = used
        .iter()
        .filter_map(|&i| approved_by.get(i).cloned())
        .collect();
    if secrets.device.id() != c.recovery_device {
        return Err(integrity(
            "the escrow holds another recovery device than the contacts entry names",
        ));
    }
    Ok(Opened {
        file,
        ks,
        api,
        secrets,
        approved_by,
        record_at,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use serment_core::log::entry::PrevLink;
    use serment_core::social::MIN_WAITING_PERIOD;

    /// REVIEW4 T8: a contacts entry whose waiting period is below the protocol's floor is
    /// refused by every reader of it (the new machine's request, a contact's approval, the
    /// completion), whatever the server logged.
    #[test]
    fn a_contacts_entry_below_the_floor_is_refused_by_its_readers() {
        let identity = IdentitySecret::generate();
        let entry = |wait: u64| {
            let contacts = [
                Contact {
                    handle: "gp-x".into(),
                    devices: vec![DeviceSecret::generate().id()],
                },
                Contact {
                    handle: "relative-x".into(),
                    devices: vec![DeviceSecret::generate().id()],
                },
            ];
            let bytes = RecoveryContacts::sign(
                &ContactsBody {
                    handle: "patient-x",
                    recovery_device: DeviceSecret::generate().id(),
                    threshold: 2,
                    waiting_period: wait,
                    escrow_hash: [0; 32],
                    contacts: &contacts,
                    at: 1,
                },
                &identity,
            )
            .unwrap();
            SocialState {
                contacts: Some((
                    0,
                    RecoveryContacts::decode_verified(&bytes).unwrap(),
                    [0; 32],
                )),
                requests: vec![],
            }
        };
        let hist = KeyHistory {
            handle: "patient-x".into(),
            identity_key: identity.public_key(),
            identity_keys: vec![identity.public_key()],
            devices: vec![],
            retired: vec![],
            head: PrevLink {
                index: 0,
                leaf_hash: [0; 32],
            },
            hybrid_since: vec![],
            recoveries: vec![],
        };
        // REVIEW5 U17: a previous set signed by another key (a hostile server's forgery naming
        // a device of the user) gets nothing revoked; the user's own previous set does.
        let named = |by: &IdentitySecret, device: KeyId| {
            let contacts = [
                Contact {
                    handle: "gp-x".into(),
                    devices: vec![DeviceSecret::generate().id()],
                },
                Contact {
                    handle: "relative-x".into(),
                    devices: vec![DeviceSecret::generate().id()],
                },
            ];
            let bytes = RecoveryContacts::sign(
                &ContactsBody {
                    handle: "patient-x",
                    recovery_device: device,
                    threshold: 2,
                    waiting_period: MIN_WAITING_PERIOD,
                    escrow_hash: [0; 32],
                    contacts: &contacts,
                    at: 1,
                },
                by,
            )
            .unwrap();
            SocialState {
                contacts: Some((
                    0,
                    RecoveryContacts::decode_verified(&bytes).unwrap(),
                    [0; 32],
                )),
                requests: vec![],
            }
        };
        let mut with_phone = hist.clone();
        let phone_record = DeviceSecret::generate();
        let rec = DeviceRecord::decode_verified(
            &identity
                .sign_device_record("patient-x", &phone_record, 1)
                .unwrap(),
        )
        .unwrap();
        let phone_id = rec.device_id();
        with_phone.devices.push(rec);
        let (new, this) = (DeviceSecret::generate().id(), DeviceSecret::generate().id());
        let forged = named(&IdentitySecret::generate(), phone_id);
        assert_eq!(
            previous_to_revoke(&forged, &identity.public_key(), &with_phone, &new, &this),
            None,
            "a forged previous set made the client revoke the user's device"
        );
        let own = named(&identity, phone_id);
        assert_eq!(
            previous_to_revoke(&own, &identity.public_key(), &with_phone, &new, &this),
            Some(phone_id)
        );
        assert_eq!(
            previous_to_revoke(&own, &identity.public_key(), &with_phone, &new, &phone_id),
            None,
            "never this device"
        );
        assert!(current_contacts(&entry(MIN_WAITING_PERIOD), &hist).is_ok());
        match current_contacts(&entry(MIN_WAITING_PERIOD - 1), &hist) {
            Err(ClientError::Integrity(serment_core::Error::ContextMismatch(m))) => {
                assert!(m.contains("floor"), "{m}");
            }
            other => panic!("an entry below the floor must be refused, got {other:?}"),
        }
    }
}

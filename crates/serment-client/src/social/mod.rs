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

mod chain;
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
mod new_machine;

use serment_api::{
    AppendedResponse, PostApprovalRequest, PostVetoRequest, PutContactsRequest, SharesResponse,
};
use serment_core::KeyId;
use serment_core::identity::{DeviceRecord, DeviceSecret, IdentitySecret};
use serment_core::log::entry::{EntryKind, Payload};
use serment_core::log::social::{
    Contact, ContactsBody, RecoveryApproval, RecoveryContacts, RecoveryVeto,
};
use serment_core::recovery::EscrowSecrets;
use serment_core::social::{
    Share, ShareContext, ShareWrap, SocialSecret, contacts_hash, escrow_hash, seal_social_escrow,
    unwrap_share, wrap_share,
};
use serment_core::wrap::Recipient;

use crate::api::{Api, b64d, b64e};
use crate::error::{ClientError, Result};
use crate::recovery::RecoveryStatus;
use crate::vault::Session;
pub use chain::{CLOCK_SKEW, RequestView};
use chain::{
    contacts_status, current_contacts, integrity, pending_in, previous_to_revoke, proven_social,
    vetoed_by_a_current_device, view,
};
#[cfg(feature = "native")] // the new machine's side: native only (the page does not recover)
pub use new_machine::{
    RequestMade, SocialRecovered, complete_recovery, complete_recovery_at, fetch_pending,
    open_pending_escrow, pending_path, request_recovery, request_recovery_pinned,
};

/// The waiting period when none is given: 72 hours, in seconds.
pub const DEFAULT_WAITING_PERIOD: u64 = 72 * 3600;

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

/// What an integrity error says of a contacts entry this identity did not sign (REVIEW5 U16).
const FORGED_CONTACTS: &str = "the server's log holds a recovery contacts entry this identity \
    did not sign (only a hostile server logs one): report it to the operator and name your \
    contacts again";

/// What [`Session::own_social_status`] found.
#[derive(Debug, Clone)]
pub struct OwnSocialStatus {
    /// The pending requests on the current contacts entry (as
    /// [`Session::pending_recovery_requests`]).
    pub pending: Vec<RequestView>,
    /// Whether the current contacts entry can still recover the identity.
    pub status: RecoveryStatus,
    /// The current contacts entry (the newest this identity signed), if any.
    pub contacts: Option<RecoveryContacts>,
    /// The log indices of contacts entries in the social chain that this identity did not sign
    /// (REVIEW5 U16): never current, each an integrity problem to report.
    pub forged_contacts: Vec<u64>,
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

pub(super) fn parse_request_id(id: &str) -> Result<[u8; 16]> {
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
        let (before, _) = proven_social(&self.api, &mut self.ks, &handle)?;
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
        let (st, hist) = proven_social(&self.api, &mut self.ks, &handle)?;
        // REVIEW5 U16: a contacts entry this identity did not sign, newer than its own newest
        // (never current for any reader, but the server's latest word on the contacts): an
        // error until the user names contacts again (`warn_pending` and `verify-log` keep
        // reporting it after).
        let newest_own = st.contacts.as_ref().map(|c| c.0);
        if st
            .forged_contacts
            .iter()
            .any(|i| newest_own.is_none_or(|own| *i > own))
        {
            return Err(integrity(FORGED_CONTACTS));
        }
        if st.contacts.is_none() {
            return Ok(None);
        }
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
        let (st, hist) = proven_social(&self.api, &mut self.ks, handle)?;
        if st.contacts.is_none() {
            return Ok(vec![]);
        }
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
    /// REVIEW5 U16: with the contacts entries the server logged that this identity did not
    /// sign ([`OwnSocialStatus::forged_contacts`]), never current, to warn about.
    ///
    /// # Errors
    /// Log errors.
    pub fn own_social_status(&mut self) -> Result<OwnSocialStatus> {
        let handle = self.ks.handle().to_owned();
        let (st, hist) = proven_social(&self.api, &mut self.ks, &handle)?;
        let forged_contacts = st.forged_contacts.clone();
        let Some((_, c, _)) = st.contacts.clone() else {
            return Ok(OwnSocialStatus {
                pending: vec![],
                status: RecoveryStatus::None,
                contacts: None,
                forged_contacts,
            });
        };
        Ok(OwnSocialStatus {
            pending: pending_in(&handle, &st, &hist),
            status: contacts_status(&c, &hist),
            contacts: Some(c),
            forged_contacts,
        })
    }

    /// A request as the proven log shows it (for a contact to check before approving).
    ///
    /// # Errors
    /// [`ClientError::Input`] for a bad id; 404-like [`ClientError::Server`] for a request not
    /// in the proven log; log errors.
    pub fn recovery_request(&mut self, handle: &str, id: &str) -> Result<RequestView> {
        let id = parse_request_id(id)?;
        let (st, hist) = proven_social(&self.api, &mut self.ks, handle)?;
        let r = st.request(&id).ok_or_else(not_logged)?;
        let (_, c, _) = st.contacts.as_ref().ok_or_else(not_logged)?;
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
        let (st, hist) = proven_social(&self.api, &mut self.ks, handle)?;
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
        // REVIEW5 U15: no approval of a request whose completion window is over.
        if !serment_core::social::request_within_window(
            r.logged_at.min(r.request.at),
            c.waiting_period,
            crate::now_secs(),
        ) {
            return Err(ClientError::Input(
                "the request's completion window (7 days after its waiting period) is over: the \
                 requester must make a new request"
                    .into(),
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
        check_no_veto_before(
            &self.api,
            &mut self.ks,
            handle,
            &rid,
            indices.first().copied().unwrap_or_default(),
        )?;
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
        let (st, hist) = proven_social(&self.api, &mut self.ks, &handle)?;
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
        let mut v = view(&handle, &r, &c, &hist);
        v.vetoed = true;
        Ok(v)
    }
}

impl Session {
    /// `serment recovery veto --all-pending` (REVIEW5 U1): a veto of every request to recover
    /// this handle that [`Session::own_social_status`] shows pending, signed by this device, all
    /// checked in the log at once. Returns the requests vetoed (none: nothing logged).
    ///
    /// # Errors
    /// Log, server and transport errors; [`ClientError::OwnWriteMissing`].
    pub fn veto_all_pending(&mut self) -> Result<Vec<RequestView>> {
        let handle = self.ks.handle().to_owned();
        let (st, hist) = proven_social(&self.api, &mut self.ks, &handle)?;
        let mut pending = pending_in(&handle, &st, &hist);
        let mut indices = Vec::with_capacity(pending.len());
        let mut vetoes = Vec::with_capacity(pending.len());
        for p in &pending {
            let rid = parse_request_id(&p.request_id)?;
            let veto = RecoveryVeto::sign(&handle, &rid, &self.ks.device, crate::now_secs())
                .map_err(|e| ClientError::Input(e.to_string()))?;
            indices.extend(self.api.post_recovery_veto(&veto)?);
            vetoes.push(veto);
        }
        if !vetoes.is_empty() {
            let expected: Vec<(EntryKind, &[u8])> = vetoes
                .iter()
                .map(|v| (EntryKind::RecoveryVeto, v.as_slice()))
                .collect();
            crate::log::check_own_writes(&self.api, &mut self.ks, &indices, &expected)?;
        }
        self.ks.save()?;
        for p in &mut pending {
            p.vetoed = true;
        }
        Ok(pending)
    }
}

/// REVIEW5 U3: after a contact's approval is proven at `approved_at`, the handle's social
/// chain must show it, with no veto by a current device of the identity logged before it. The
/// chain is whole up to the approval (each entry links the one before it), so a server that
/// showed this contact the chain without a veto (its tail) cannot keep hiding it once the
/// approval is logged after it, short of forking the handle's chain, which `verify-log`
/// reports. The share was already re-wrapped by then: the error tells the contact to warn the
/// owner. Pins the chain's head and saves the keystore.
fn check_no_veto_before(
    api: &Api,
    ks: &mut crate::keystore::Keystore,
    handle: &str,
    rid: &[u8; 16],
    approved_at: u64,
) -> Result<()> {
    let (st, hist) = proven_social(api, ks, handle)?;
    ks.save()?;
    let r = st.request(rid).ok_or(integrity(
        "the social chain served after the approval does not hold the request",
    ))?;
    if !r.approvals.iter().any(|(i, _)| *i == approved_at) {
        return Err(integrity(
            "the social chain served after the approval does not hold it",
        ));
    }
    let vetoed_before = r.vetoes.iter().any(|(i, v)| {
        *i < approved_at && hist.devices.iter().any(|d| d.device_id() == v.device_id())
    });
    if vetoed_before {
        return Err(integrity(
            "the request had been VETOED by a device of the identity before this approval was \
             logged: the server hid the veto from this device when it approved, and the share was \
             re-wrapped to the requesting device. Warn the owner by another channel now and \
             report the server",
        ));
    }
    Ok(())
}

fn not_logged() -> ClientError {
    ClientError::Server {
        status: 404,
        code: "not_found".into(),
        message: "no such recovery request in the log".into(),
    }
}

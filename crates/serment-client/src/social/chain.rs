//! The proven social chain and what its readers make of it: the chain fetched, proven and
//! replayed, the current contacts entry checked against the key history, and the views of its
//! requests (PROTOCOL.md §4.3).

use serment_api::HistoryResponse;
use serment_core::KeyId;
use serment_core::log::entry::Subject;
use serment_core::log::history::{ChainEntry, KeyHistory, check_chain};
use serment_core::log::social::{RecoveryContacts, RequestState, SocialState, replay_social};

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::recovery::RecoveryStatus;

pub(super) fn integrity(msg: &'static str) -> ClientError {
    ClientError::Integrity(serment_core::Error::ContextMismatch(msg))
}

impl Api {
    /// `GET /v1/log/social/{handle}?size=N`: the handle's social chain (kinds 13-16), each
    /// entry proven against a checkpoint that extends the pinned one, checked whole, and still
    /// holding the head this keystore verified last for `handle` (REVIEW5 U2:
    /// [`crate::keystore::LogState::social_heads`], pinned here to the new head; the caller
    /// saves the keystore). An empty chain when the server has none (404) and nothing is
    /// pinned.
    ///
    /// # Errors
    /// Log (a chain that no longer holds the pinned head: truncated or rewritten), server and
    /// transport errors.
    pub fn proven_social_chain(
        &self,
        ks: &mut crate::keystore::Keystore,
        handle: &str,
    ) -> Result<Vec<ChainEntry>> {
        let known = ks
            .log_state(self.base())
            .and_then(|s| s.social_heads.get(handle))
            .and_then(|h| crate::log::parse_head(h));
        let cp = crate::log::sync(self, ks, 0)?;
        let h: HistoryResponse =
            match self.get_json(&format!("/v1/log/social/{handle}?size={}", cp.size), false) {
                Ok(h) => h,
                Err(ClientError::Server { status: 404, .. }) if known.is_none() => {
                    return Ok(vec![]);
                }
                Err(ClientError::Server { status: 404, .. }) => return Err(truncated()),
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
        if let Some(head) = known
            && !chain.iter().any(|e| e.link() == head)
        {
            return Err(truncated());
        }
        if let (Some(last), Some(st)) = (chain.last(), ks.log_state_mut(self.base())) {
            st.social_heads
                .insert(handle.to_owned(), crate::log::format_head(&last.link()));
        }
        Ok(chain)
    }
}

fn truncated() -> ClientError {
    ClientError::Log(serment_core::Error::History {
        reason: "the social recovery chain no longer holds the entry verified before \
                 (truncated or rewritten: a request, an approval or a veto hidden)",
    })
}

/// The proven social state of `handle` (its contacts entries checked against the identity keys
/// of its proven key history, REVIEW5 U16) and that key history.
pub(super) fn proven_social(
    api: &Api,
    ks: &mut crate::keystore::Keystore,
    handle: &str,
) -> Result<(SocialState, KeyHistory)> {
    let chain = api.proven_social_chain(ks, handle)?;
    let hist = crate::log::key_history(api, ks, handle, None)?;
    let st = replay_social(handle, &chain, Some(&hist)).map_err(ClientError::Log)?;
    Ok((st, hist))
}

/// The newest contacts entry, checked against the handle's proven key history: signed by its
/// current identity key.
pub(super) fn current_contacts(
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
    /// When the waiting period ends at the earliest (seconds since the epoch): counted from
    /// the earlier of the server's log time and the request's own signed time (REVIEW5 U9).
    pub ready_at: u64,
    /// The server's log time is ahead of this machine's clock by more than [`CLOCK_SKEW`]
    /// (REVIEW5 U9: only a server lying about time logs one; the deadline it implies is not to
    /// be believed).
    pub logged_in_future: bool,
}

/// How far a log time may be ahead of this machine's clock before a view flags it (10
/// minutes, the server's own bound on a request's signed time).
pub const CLOCK_SKEW: u64 = 600;

/// Whether a veto of `r` counts: signed by a device current in the handle's proven key
/// history (REVIEW4 T7). A veto by any other key (a forged one, a revoked device's) is ignored
/// everywhere, in the views as in the completion, so that it cannot silence the warning about a
/// pending takeover.
pub(super) fn vetoed_by_a_current_device(r: &RequestState, hist: &KeyHistory) -> bool {
    r.vetoes
        .iter()
        .any(|(_, v)| hist.devices.iter().any(|d| d.device_id() == v.device_id()))
}

pub(super) fn view(
    handle: &str,
    r: &RequestState,
    c: &RecoveryContacts,
    hist: &KeyHistory,
) -> RequestView {
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
        // the log time), never a requester-chosen later one. REVIEW5 U9: nor a later one the
        // server chose (its envelope's `logged_at` is unchecked): the earlier of the two times.
        ready_at: r
            .logged_at
            .min(r.request.at)
            .saturating_add(c.waiting_period),
        logged_in_future: r.logged_at > crate::now_secs().saturating_add(CLOCK_SKEW),
    }
}

/// The previous set's social recovery device to revoke when a new set is named (its secret is
/// burnt), if any. REVIEW5 U17: only the recovery device of an entry signed by this identity's
/// own key (a hostile server cannot sign one: a forged self-signed entry naming the user's
/// phone, or this very device, gets nothing revoked), current, and neither the new set's device
/// nor this device.
pub(super) fn previous_to_revoke(
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
pub(super) fn pending_in(handle: &str, st: &SocialState, hist: &KeyHistory) -> Vec<RequestView> {
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
pub(super) fn contacts_status(c: &RecoveryContacts, hist: &KeyHistory) -> RecoveryStatus {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use serment_core::identity::{DeviceRecord, DeviceSecret, IdentitySecret};
    use serment_core::log::entry::PrevLink;
    use serment_core::log::social::{Contact, ContactsBody};
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
                forged_contacts: vec![],
            }
        };
        let hist = KeyHistory {
            handle: "patient-x".into(),
            identity_key: identity.public_key(),
            identity_keys: vec![identity.public_key()],
            identity_since: vec![0],
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
                forged_contacts: vec![],
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

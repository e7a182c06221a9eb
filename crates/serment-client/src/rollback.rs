//! The way forward after an announced restore with loss (PROTOCOL.md §11.11, issue 12): a
//! server restored from a backup serves a shorter log than the one this client verified, so the
//! client reports LOG ROLLBACK (and LOG FORK once the restored log has grown past its pin). The
//! restore wrote a loss statement signed by the log key; [`review`] finds the one that covers
//! this client's pin and says what the client loses, and [`accept`] moves the pin back to the
//! restored tree **only** with the statement id the operator announced out of band, and never
//! twice for one statement.
//!
//! Every field of a statement is the word of whoever holds the log key, which lives with the
//! server. The checks here (the pinned log key, a statement that reaches back before the pin and
//! was written after this client last advanced it, never accepted before, whose tree head the
//! served log extends) refuse what the key holder cannot explain by a restore; what stops it from
//! rolling clients back with a statement of its own is the user's explicit command with the id
//! announced out of band (and, past the restored size, the witnesses' own acceptance).

use std::collections::BTreeSet;

use serde::Serialize;
use serment_core::log::loss::SignedLossStatement;
use serment_core::log::note::{Checkpoint, VerifierKey};
use serment_core::log::pin::check_advance;

use crate::api::Api;
use crate::error::{ClientError, Result};
use crate::keystore::{AcceptedLoss, Keystore, LogState};

fn refused(reason: &'static str) -> ClientError {
    ClientError::Log(serment_core::Error::LossStatement { reason })
}

/// The fewest hex digits of a statement id a user must give (64 bits: a server cannot make
/// another statement that shares them).
pub const MIN_ANNOUNCED_ID_LEN: usize = 16;

/// How much older than this client's (or witness's) last advance a statement may be and still
/// explain the loss: the clocks of the restoring host and the client may differ.
pub const STATEMENT_CLOCK_MARGIN_SECS: u64 = 3600;

/// How far ahead of this client's clock a statement's time may be.
const STATEMENT_FUTURE_SECS: u64 = 24 * 3600;

/// Checks that `announced` (an id prefix the operator announced) names `statement`.
///
/// # Errors
/// [`ClientError::Input`] for a malformed id; [`ClientError::Log`] for another statement.
pub(crate) fn check_announced(statement: &SignedLossStatement, announced: &str) -> Result<()> {
    let announced = announced.trim().to_ascii_lowercase();
    if announced.len() < MIN_ANNOUNCED_ID_LEN
        || announced.len() > 64
        || !announced.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(ClientError::Input(format!(
            "the announced loss statement id must be {MIN_ANNOUNCED_ID_LEN} to 64 hex digits"
        )));
    }
    if !statement.id().starts_with(&announced) {
        return Err(refused(
            "the server's loss statement is not the one announced: its id differs from the \
             one your operator gave (a different restore, or a rollback of the server's own)",
        ));
    }
    Ok(())
}

/// What [`review`] found and [`accept`] did (JSON: docs/JSON.md, `accept-rollback`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RollbackReview {
    /// The size of the checkpoint this client had verified.
    pub pinned_size: u64,
    /// The size of the checkpoint the server serves now.
    pub served_size: u64,
    /// The restored size the statement names: entries from it up to `pinned_size` that this
    /// client verified are gone from the server.
    pub restored_size: u64,
    /// One past the last entry a checkpoint known to the restore proves.
    pub lost_to: u64,
    /// When the restore wrote the statement (seconds since the Unix epoch).
    pub statement_time: u64,
    /// The statement's id (SHA-256 of its text, hex).
    pub statement_id: String,
    /// Documents (ids) with history in the lost range, as far as this device knows: those it
    /// sealed there (the log index of the commit, proven when it was made), those whose history
    /// it verified into it (get, share, audit), and those a listing first showed it there that
    /// the restored server no longer lists. Versions, wraps or erasures of them may be gone
    /// (their authors send or erase again).
    pub documents: Vec<String>,
    /// Among `documents`, those this device sealed in the lost range: gone from the server, it
    /// must send them again (newcomer 6 N2).
    pub authored: Vec<String>,
    /// Contacts (handles) whose key history this client verified into the lost range: a
    /// rotation or a device of theirs may be gone; their next look-up verifies them again.
    pub contacts: Vec<String>,
    /// Care teams whose chain this client verified into the lost range.
    pub teams: Vec<String>,
    /// This device's post-quantum upgrade (`serment id upgrade`) was logged in the lost range:
    /// senders see its classical record again until the user runs `serment id upgrade` anew.
    pub hybrid_lost: bool,
    /// This device is not registered on the restored server (its registration was in the lost
    /// range): `serment register` again, before someone else takes the handle.
    pub registration_lost: bool,
    /// This device was registered again on the restored server by the acceptance
    /// ([`restore_own_writes`]): the same keys, so the handle is its own again at once.
    pub registered_again: bool,
    /// The device revocations, recipient removals, erasures, identity rotations and care-team
    /// changes this device logged in the lost range: the restored log no longer holds them, so what they revoked
    /// (a rotation: every device it did not keep, and the old identity key) is live again
    /// until they are logged again ([`restore_own_writes`], run by the acceptance).
    pub revocations: Vec<LostRevocation>,
    /// Whether the pin was moved ([`accept`]); false for [`review`].
    pub accepted: bool,
}

/// A revocation, removal, erasure or identity rotation this device logged in a lost range
/// ([`RollbackReview`]).
#[derive(Debug, Clone, Serialize)]
pub struct LostRevocation {
    /// `device_revocation`, `recipient_removal`, `erasure`, `identity_rotation` or
    /// `team_change`.
    pub kind: &'static str,
    /// What it revoked: a device id; `<doc_id>/<version> <device id>`; a document id (hex);
    /// `<old identity id> -> <new identity id>`; `<team>: <what> (epoch N)`.
    pub subject: String,
    /// Its log index in the log the restore lost.
    pub lost_index: u64,
    /// Its log index once logged again (the same signed entry), proven in the restored log.
    pub logged_again: Option<u64>,
    /// Why it was not logged again, when the restored server refused it as moot (what it
    /// revoked is itself gone from the restored server).
    pub not_needed: Option<String>,
    /// Why it cannot be logged again, and what to do, when the restored log no longer allows
    /// it (an identity rotation whose old key is not the handle's on the restored server).
    pub cannot: Option<String>,
}

/// The kind name and subject of a recorded revocation, removal, erasure, identity rotation or
/// team change, with what to post.
enum OwnWrite {
    Revocation(serment_core::KeyId),
    Removal(serment_core::DocId, u32, serment_core::KeyId),
    Erasure(serment_core::DocId),
    /// A rotation: the keys it rotates from and to, and the device records (signed by the new
    /// key) sent with it.
    Rotation {
        old: [u8; 32],
        new: [u8; 32],
        records: Vec<Vec<u8>>,
    },
    /// A care-team change: its team, the command that makes it again, what it does, and the
    /// epoch key wraps sent with it.
    Team {
        team: String,
        redo: String,
        what: String,
        wraps: Vec<Vec<u8>>,
    },
}

impl OwnWrite {
    fn decode(o: &crate::keystore::OwnRevocation, bytes: &[u8]) -> Option<OwnWrite> {
        use serment_core::log::entry::{EntryKind, Removal, Revocation, Rotation};
        match o.kind {
            k if k == EntryKind::Revocation as u8 => Revocation::decode_verified(bytes)
                .ok()
                .map(|r| OwnWrite::Revocation(r.device_id)),
            k if k == EntryKind::Removal as u8 => Removal::decode(bytes)
                .ok()
                .map(|r| OwnWrite::Removal(r.doc_id, r.doc_version, r.recipient)),
            k if k == EntryKind::Erasure as u8 => {
                serment_core::log::erasure::Erasure::decode(bytes)
                    .ok()
                    .map(|e| OwnWrite::Erasure(e.doc_id))
            }
            k if k == EntryKind::Rotation as u8 => {
                let r = Rotation::decode_verified(bytes).ok()?;
                Some(OwnWrite::Rotation {
                    old: r.old_identity_key,
                    new: r.new_identity_key,
                    records: o.with_bytes()?,
                })
            }
            k if k == EntryKind::Team as u8 => {
                use serment_core::team::{TeamChange, TeamOp, TeamRole};
                let c = TeamChange::decode_verified(bytes).ok()?.body;
                let (t, m) = (&c.team, &c.member);
                let (what, redo) = match c.op {
                    TeamOp::Create => ("create".to_owned(), format!("serment team new {t}")),
                    TeamOp::Add => (
                        format!("add {m}"),
                        if c.role == TeamRole::Admin {
                            format!("serment team add {t} {m} --admin")
                        } else {
                            format!("serment team add {t} {m}")
                        },
                    ),
                    TeamOp::Remove => (
                        format!("remove {m}"),
                        format!("serment team remove {t} {m}"),
                    ),
                    TeamOp::GrantAdmin => (
                        format!("grant admin to {m}"),
                        format!("serment team add {t} {m} --admin"),
                    ),
                    TeamOp::Rotate => ("rotate".to_owned(), format!("serment team rotate {t}")),
                };
                Some(OwnWrite::Team {
                    team: c.team.clone(),
                    redo,
                    what: format!("{what} (epoch {})", c.epoch),
                    wraps: o.with_bytes()?,
                })
            }
            _ => None,
        }
    }

    fn kind(&self) -> serment_core::log::entry::EntryKind {
        use serment_core::log::entry::EntryKind;
        match self {
            OwnWrite::Revocation(_) => EntryKind::Revocation,
            OwnWrite::Removal(..) => EntryKind::Removal,
            OwnWrite::Erasure(_) => EntryKind::Erasure,
            OwnWrite::Rotation { .. } => EntryKind::Rotation,
            OwnWrite::Team { .. } => EntryKind::Team,
        }
    }

    fn describe(&self, index: u64) -> LostRevocation {
        let id = |k: &[u8; 32]| {
            serment_core::KeyId::of(serment_core::ids::KeyKind::Identity, k).to_string()
        };
        let (kind, subject) = match self {
            OwnWrite::Revocation(d) => ("device_revocation", d.to_string()),
            OwnWrite::Removal(doc, v, d) => ("recipient_removal", format!("{doc}/{v} {d}")),
            OwnWrite::Erasure(doc) => ("erasure", doc.to_string()),
            OwnWrite::Rotation { old, new, .. } => {
                ("identity_rotation", format!("{} -> {}", id(old), id(new)))
            }
            OwnWrite::Team { team, what, .. } => ("team_change", format!("{team}: {what}")),
        };
        LostRevocation {
            kind,
            subject,
            lost_index: index,
            logged_again: None,
            not_needed: None,
            cannot: None,
        }
    }

    /// Posts the write again; returns the log indices and the entries to find there.
    fn post(&self, api: &Api, ks: &mut Keystore, bytes: &[u8]) -> Result<Posted> {
        use serment_core::log::entry::EntryKind;
        let one = |idx: Vec<u64>| Posted::Logged(idx, vec![(self.kind(), bytes.to_vec())]);
        match self {
            OwnWrite::Revocation(_) => api.revoke(bytes).map(one),
            OwnWrite::Removal(doc, v, _) => api.remove_recipient(doc, *v, bytes).map(one),
            OwnWrite::Erasure(doc) => api.erase(doc, bytes).map(one),
            OwnWrite::Team { team, wraps, .. } => api
                .post_json::<serment_api::AppendedResponse>(
                    &format!("/v1/teams/{team}/changes"),
                    &serment_api::TeamChangeRequest {
                        change: crate::api::b64e(bytes),
                        key_wraps: wraps.iter().map(|w| crate::api::b64e(w)).collect(),
                    },
                    true,
                )
                .map(|r| one(r.log_indices)),
            OwnWrite::Rotation { old, new, records } => {
                // Valid again only where the restored log's identity key for this handle is
                // the one it rotates from; the records are sent for the devices current there.
                let handle = ks.handle().to_owned();
                let hist = crate::log::key_history(api, ks, &handle, None)?;
                if hist.identity_key == *new {
                    return Ok(Posted::Moot(
                        "the restored log already holds this rotation".into(),
                    ));
                }
                if hist.identity_key != *old {
                    return Ok(Posted::Cannot(format!(
                        "the restored log binds {handle} to another identity key than the one \
                         this rotation replaced: it cannot be logged again. Ask your server's \
                         operator, and check `serment device list` for devices of yours that \
                         are current again"
                    )));
                }
                let current: Vec<Vec<u8>> = records
                    .iter()
                    .filter(|r| {
                        serment_core::identity::DeviceRecord::decode_verified(r).is_ok_and(|d| {
                            hist.devices.iter().any(|c| c.device_id() == d.device_id())
                        })
                    })
                    .cloned()
                    .collect();
                if current.is_empty() {
                    return Ok(Posted::Cannot(
                        "none of the devices this rotation kept is current in the restored log: \
                         it cannot be logged again"
                            .into(),
                    ));
                }
                let idx = api.rotate(bytes, &current)?;
                let mut expected = vec![(EntryKind::Rotation, bytes.to_vec())];
                expected.extend(current.into_iter().map(|r| (EntryKind::Device, r)));
                Ok(Posted::Logged(idx, expected))
            }
        }
    }
}

/// What posting a lost write again gave.
enum Posted {
    /// Logged at these indices, as these entries.
    Logged(
        Vec<u64>,
        Vec<(serment_core::log::entry::EntryKind, Vec<u8>)>,
    ),
    /// Not needed: the restored log makes it moot.
    Moot(String),
    /// Not possible: why, and what to do.
    Cannot(String),
}

/// The revocations, removals and erasures of `st` logged at or past `restored_size` and not
/// yet marked lost (or, with `pending`, those marked lost and not yet logged again).
fn lost_revocations(st: &LogState, restored_size: u64, pending: bool) -> Vec<LostRevocation> {
    st.own_revocations
        .iter()
        .filter(|o| {
            if pending {
                o.lost.is_some()
            } else {
                o.lost.is_none() && o.index >= restored_size
            }
        })
        .filter_map(|o| Some(OwnWrite::decode(o, &o.bytes()?)?.describe(o.index)))
        .collect()
}

/// The index of a `<index>:<leaf hash hex>` head.
fn head_index(head: &str) -> Option<u64> {
    head.split_once(':').and_then(|(i, _)| i.parse().ok())
}

/// The document id of a `<doc_id>/<version>` key.
fn doc_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(d, _)| d)
}

/// The handle of the author of `doc_id` as this device knows it: itself for a version it
/// sealed, else the pinned contact holding the author device its cache or a listing names.
fn author_of(ks: &Keystore, st: &LogState, doc_id: &str) -> Option<String> {
    let from = format!("{doc_id}/");
    if st.authored.keys().any(|k| k.starts_with(&from)) {
        return Some(ks.handle().to_owned());
    }
    let device = ks
        .known_document_any(doc_id)
        .map(|k| k.author_device.clone())
        .filter(|d| !d.is_empty())
        .or_else(|| {
            st.listed
                .iter()
                .find(|(k, _)| k.starts_with(&from))
                .map(|(_, v)| v.author_device.clone())
        })?;
    if device == ks.device.id().to_string() {
        return Some(ks.handle().to_owned());
    }
    ks.contacts().keys().find_map(|h| {
        crate::contacts::pinned(ks, h)
            .ok()
            .filter(|c| {
                c.devices
                    .iter()
                    .any(|d| d.device_id().to_string() == device)
            })
            .map(|_| h.clone())
    })
}

/// Finds the loss statement that covers this client's pin, without changing anything.
///
/// # Errors
/// [`ClientError::NotRegistered`] (nothing pinned for this server); [`ClientError::LogKeyChanged`];
/// [`ClientError::Input`] when the served log extends the pin (nothing to accept);
/// [`ClientError::Log`] with [`serment_core::Error::LossStatement`] when no statement the server
/// serves verifies and covers the pin (the rollback stays what it looks like: an attack), or it
/// was already accepted (a replay), or the served tree does not extend its restored tree head;
/// the checkpoint's own errors (signature, witness quorum).
pub fn review(api: &Api, ks: &Keystore) -> Result<RollbackReview> {
    find(api, ks).map(|(r, _, _)| r)
}

/// Accepts the loss: checks everything [`review`] does, that `announced` (the statement id
/// the operator announced out of band, at least [`MIN_ANNOUNCED_ID_LEN`] hex digits of it) is
/// the statement's, then forgets every head this client verified at or past the restored size,
/// pins the served checkpoint, and records the statement (and the pin it replaces, as
/// evidence) so that it is never accepted again. The caller saves the keystore.
///
/// # Errors
/// Those of [`review`]; [`ClientError::Input`] for an id too short or not hex;
/// [`ClientError::Log`] when the statement is not the announced one.
pub fn accept(api: &Api, ks: &mut Keystore, announced: &str) -> Result<RollbackReview> {
    let (mut r, note, statement) = find(api, ks)?;
    check_announced(&statement, announced)?;
    let base = api.base().to_owned();
    let mut st = ks
        .log_state(&base)
        .cloned()
        .ok_or(ClientError::NotRegistered)?;
    let lost = |h: &str| head_index(h).is_none_or(|i| i >= r.restored_size);
    let documents = r
        .documents
        .iter()
        .map(|d| (d.clone(), author_of(ks, &st, d).unwrap_or_default()))
        .collect();
    st.doc_heads.retain(|_, h| !lost(h));
    st.social_heads.retain(|_, h| !lost(h));
    st.authored.retain(|_, i| *i < r.restored_size);
    st.listed
        .retain(|k, v| v.at < r.restored_size || !r.documents.iter().any(|d| doc_of(k) == d));
    for o in &mut st.own_revocations {
        if o.lost.is_none() && o.index >= r.restored_size {
            o.lost = Some(statement.id());
        }
    }
    st.accepted_losses.push(AcceptedLoss {
        statement: statement.id(),
        restored_size: r.restored_size,
        pinned_before: st.checkpoint.clone().unwrap_or_default(),
        at: crate::now_secs(),
        documents,
    });
    st.checkpoint = Some(note);
    st.advanced_at = Some(crate::now_secs());
    if ks.hybrid_since().is_some_and(|i| i >= r.restored_size) {
        r.hybrid_lost = true;
    }
    ks.set_log_state(&base, st);
    if r.hybrid_lost {
        ks.clear_hybrid_since();
    }
    let contacts: Vec<(String, crate::keystore::PinnedContact)> = ks
        .contacts()
        .iter()
        .filter(|(_, c)| c.log_head.as_deref().is_some_and(lost))
        .map(|(h, c)| (h.clone(), c.clone()))
        .collect();
    for (h, mut c) in contacts {
        c.log_head = None;
        c.lost_from = Some(r.restored_size);
        ks.pin(&h, c);
    }
    for t in &r.teams {
        ks.forget_team(t);
    }
    if ks.recoveries_seen().is_some_and(|i| i >= r.restored_size) {
        ks.clear_recoveries_seen();
    }
    r.accepted = true;
    Ok(r)
}

/// After [`accept`] (the pin moved, the keystore saved), puts back what this device itself
/// wrote in the lost range and must not stay lost (newcomer 6 N3; issue 12): registers this
/// device again when the restored server does not know it (the same keys and record: the
/// handle is its own again at once, before anyone else takes it; the user's consent is the
/// announced statement id they gave), then logs again, byte for byte and in log order, each
/// identity rotation (with the kept records current in the restored log), revocation, removal,
/// care-team change (with its key wraps) and erasure it logged in the lost range, checking each
/// in the restored log; one the restored log no longer takes is reported (`cannot`, with what
/// to do). One
/// the restored server refuses as moot (404, 409, 410: what it revoked is gone too) is
/// reported, not retried. Fills `r`'s `registered_again` and `revocations`; the caller saves
/// the keystore, also on error (what was done stays recorded; running
/// `serment accept-rollback --statement ID` again finishes the rest).
///
/// # Errors
/// [`ClientError::RegistrationLost`] when another identity took the handle first; server,
/// transport and log errors ([`ClientError::OwnWriteMissing`] when an entry logged again is
/// not in the log as sent).
pub fn restore_own_writes(api: &mut Api, ks: &mut Keystore, r: &mut RollbackReview) -> Result<()> {
    use serment_core::log::entry::EntryKind;
    let base = api.base().to_owned();
    let statement = ks
        .log_state(&base)
        .and_then(|st| st.accepted_losses.last())
        .map(|a| a.statement.clone())
        .unwrap_or_default();
    if ks.revoked_at().is_none()
        && matches!(
            api.device_record(&ks.device.id()),
            Err(ClientError::Server { status: 404, .. })
        )
    {
        r.registration_lost = true;
        let record = ks.own_record()?;
        match api.register_device(&record) {
            Ok(()) => {}
            Err(ClientError::Server {
                status: 409,
                message,
                ..
            }) => {
                let id = statement.get(..16).unwrap_or(&statement).to_owned();
                let rotation = EntryKind::Rotation as u8;
                if let Some(o) = ks.log_state(&base).and_then(|st| {
                    st.own_revocations
                        .iter()
                        .find(|o| o.kind == rotation && o.lost.is_some())
                }) {
                    return Err(ClientError::RegistrationLost {
                        message: format!(
                            "this device's registration and the identity rotation it logged \
                             (log entry {}) were both lost in the restore you accepted (loss \
                             statement {id}): the restored server binds your handle to the \
                             identity key from before the rotation, which this device no longer \
                             holds, so neither can be logged again from here ({message}). The \
                             devices that rotation revoked are current again: ask your server's \
                             operator to revoke them, and tell your contacts out of band",
                            o.index
                        ),
                        statement: Some(id),
                    });
                }
                return Err(ClientError::RegistrationLost {
                    message: format!(
                        "this device's registration was lost in the restore you accepted (loss \
                         statement {id}), and registering it again was refused ({message}): \
                         another identity took your handle on the restored server first. Tell \
                         your contacts out of band (their clients refuse its key), and register \
                         under a new handle"
                    ),
                    statement: Some(id),
                });
            }
            Err(e) => return Err(e),
        }
        let handle = ks.handle().to_owned();
        let hist = crate::log::key_history(api, ks, &handle, None)?;
        if hist.identity_key != ks.identity.public_key()
            || !hist.devices.iter().any(|d| d.bytes == record)
        {
            return Err(ClientError::OwnWriteMissing(
                "this device's record, registered again, is not current in the log's history of \
                 its handle"
                    .into(),
            ));
        }
        r.registered_again = true;
    }
    let pending: Vec<crate::keystore::OwnRevocation> = ks
        .log_state(&base)
        .map(|st| {
            st.own_revocations
                .iter()
                .filter(|o| o.lost.is_some())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if pending.is_empty() {
        return Ok(());
    }
    api.login(&ks.device)?;
    for o in pending {
        let write = o.bytes().and_then(|b| Some((OwnWrite::decode(&o, &b)?, b)));
        let mut row = None;
        if let Some((w, bytes)) = write {
            let mut lr = w.describe(o.index);
            match w.post(api, ks, &bytes) {
                Ok(Posted::Logged(idx, expected)) => {
                    let expected: Vec<(serment_core::log::entry::EntryKind, &[u8])> =
                        expected.iter().map(|(k, b)| (*k, b.as_slice())).collect();
                    crate::log::check_own_writes(api, ks, &idx, &expected)?;
                    lr.logged_again = idx.first().copied();
                }
                Ok(Posted::Moot(why)) => lr.not_needed = Some(why),
                Ok(Posted::Cannot(why)) => lr.cannot = Some(why),
                Err(ClientError::Server {
                    status: 404 | 409 | 410,
                    message,
                    ..
                }) if matches!(
                    w,
                    OwnWrite::Revocation(_) | OwnWrite::Removal(..) | OwnWrite::Erasure(_)
                ) =>
                {
                    lr.not_needed = Some(message);
                }
                // A team change that no longer follows the restored chain (another admin's
                // change was lost before it, or came first): the review names the command that
                // makes it again.
                Err(ClientError::Server {
                    status: 403 | 404 | 409,
                    message,
                    ..
                }) => {
                    lr.cannot = Some(match &w {
                        OwnWrite::Team { redo, .. } => format!(
                            "the restored server refused it ({message}): it cannot be logged \
                             again as it was; make the change again: `{redo}`"
                        ),
                        _ => format!(
                            "the restored server refused it ({message}): it cannot be logged \
                             again"
                        ),
                    });
                }
                Err(e) => return Err(e),
            }
            row = Some(lr);
        }
        if let Some(st) = ks.log_state_mut(&base) {
            st.own_revocations
                .retain(|x| !(x.lost.is_some() && x.index == o.index && x.entry == o.entry));
        }
        if let Some(lr) = row {
            match r
                .revocations
                .iter_mut()
                .find(|x| x.lost_index == lr.lost_index && x.subject == lr.subject)
            {
                Some(x) => *x = lr,
                None => r.revocations.push(lr),
            }
        }
    }
    Ok(())
}

/// When `announced` names the loss statement this device accepted last, and the acceptance
/// left something for [`restore_own_writes`] to do (its registration, or revocations not yet
/// logged again): the review to finish it with (`accepted` true, only the statement's fields
/// and the pending revocations filled). `None` otherwise.
#[must_use]
pub fn unfinished(api: &Api, ks: &Keystore, announced: &str) -> Option<RollbackReview> {
    let st = ks.log_state(api.base())?;
    let last = st.accepted_losses.last()?;
    let announced = announced.trim().to_ascii_lowercase();
    if announced.len() < MIN_ANNOUNCED_ID_LEN || !last.statement.starts_with(&announced) {
        return None;
    }
    let revocations = lost_revocations(st, 0, true);
    let unregistered = ks.revoked_at().is_none()
        && matches!(
            api.device_record(&ks.device.id()),
            Err(ClientError::Server { status: 404, .. })
        );
    (unregistered || !revocations.is_empty()).then(|| RollbackReview {
        restored_size: last.restored_size,
        statement_id: last.statement.clone(),
        revocations,
        accepted: true,
        ..RollbackReview::default()
    })
}

/// The review, the served note to pin, and the statement.
fn find(api: &Api, ks: &Keystore) -> Result<(RollbackReview, String, SignedLossStatement)> {
    let st = ks.log_state(api.base()).ok_or(ClientError::NotRegistered)?;
    let pinned = crate::log::pinned(api, ks)?.ok_or(ClientError::NotRegistered)?;
    let served_key = api.log_key()?;
    if served_key != st.vkey {
        return Err(ClientError::LogKeyChanged {
            pinned: st.vkey.clone(),
            served: served_key,
        });
    }
    let log_key = VerifierKey::parse(&st.vkey).map_err(ClientError::Keystore)?;
    let trust = crate::log::trust(api, ks)?;
    let note = api.log_checkpoint(None)?;
    let served = trust
        .verify_note(&note)
        .map_err(ClientError::Log)?
        .checkpoint;
    if extends(api, &pinned, &served) {
        return Err(ClientError::Input(format!(
            "nothing to accept: the server's log ({} entries) extends the checkpoint this client \
             verified ({} entries)",
            served.size, pinned.size
        )));
    }
    let accepted: Vec<&str> = st
        .accepted_losses
        .iter()
        .map(|a| a.statement.as_str())
        .collect();
    let statement = covering_statement(api, &log_key, &pinned, &served, &accepted, st.advanced_at)?;
    let restored = &statement.statement.restored;
    let lost = |h: &str| head_index(h).is_none_or(|i| i >= restored.size);
    let authored: BTreeSet<String> = st
        .authored
        .iter()
        .filter(|(_, i)| **i >= restored.size)
        .map(|(k, _)| doc_of(k).to_owned())
        .collect();
    let mut documents: BTreeSet<String> = st
        .doc_heads
        .iter()
        .filter(|(_, h)| lost(h))
        .map(|(d, _)| d.clone())
        .chain(authored.iter().cloned())
        .collect();
    // Versions first listed at or past the restored size: lost unless the restored server
    // still lists them (a listing it cannot give, for a device it no longer knows, lists none).
    let listed_late: Vec<&String> = st
        .listed
        .iter()
        .filter(|(_, v)| v.at >= restored.size)
        .map(|(k, _)| k)
        .collect();
    if !listed_late.is_empty() {
        let now: BTreeSet<String> = api
            .list_documents()
            .map(|l| {
                l.iter()
                    .map(|d| format!("{}/{}", d.doc_id, d.doc_version))
                    .collect()
            })
            .unwrap_or_default();
        documents.extend(
            listed_late
                .into_iter()
                .filter(|k| !now.contains(*k))
                .map(|k| doc_of(k).to_owned()),
        );
    }
    let r = RollbackReview {
        pinned_size: pinned.size,
        served_size: served.size,
        restored_size: restored.size,
        lost_to: statement.statement.lost_to,
        statement_time: statement.statement.time,
        statement_id: statement.id(),
        documents: documents.into_iter().collect(),
        authored: authored.into_iter().collect(),
        contacts: ks
            .contacts()
            .iter()
            .filter(|(_, c)| c.log_head.as_deref().is_some_and(lost))
            .map(|(h, _)| h.clone())
            .collect(),
        teams: ks
            .team_names()
            .into_iter()
            .filter(|t| ks.team_head(t).is_some_and(lost))
            .collect(),
        hybrid_lost: ks.hybrid_since().is_some_and(|i| i >= restored.size),
        registration_lost: matches!(
            api.device_record(&ks.device.id()),
            Err(ClientError::Server { status: 404, .. })
        ),
        registered_again: false,
        revocations: lost_revocations(st, restored.size, false),
        accepted: false,
    };
    Ok((r, note, statement))
}

/// The newest statement the server serves that verifies with `log_key`, covers `pinned`, was not
/// accepted before (`accepted`: ids), and whose restored tree head `served` extends. Shared by
/// clients ([`accept`]) and witnesses ([`crate::witness::Witness::accept_rollback`]).
///
/// # Errors
/// [`ClientError::Log`] with [`serment_core::Error::LossStatement`]; server errors.
pub(crate) fn covering_statement(
    api: &Api,
    log_key: &VerifierKey,
    pinned: &Checkpoint,
    served: &Checkpoint,
    accepted: &[&str],
    advanced_at: Option<u64>,
) -> Result<SignedLossStatement> {
    let texts = api.log_loss_statements()?;
    let now = crate::now_secs();
    let statement = texts
        .iter()
        .rev()
        .filter_map(|t| SignedLossStatement::verify(t, log_key).ok())
        .filter(|s| s.statement.time > 0 && s.statement.time <= now + STATEMENT_FUTURE_SECS)
        .find(|s| s.covers(pinned).is_ok())
        .ok_or(refused(
            "the server serves no loss statement, signed by its log key, that covers the \
             checkpoint this client verified: the rollback is not an announced restore",
        ))?;
    if advanced_at.is_some_and(|at| {
        statement
            .statement
            .time
            .saturating_add(STATEMENT_CLOCK_MARGIN_SECS)
            < at
    }) {
        return Err(refused(
            "the loss statement was written before this device last verified the log: that \
             restore cannot explain losing what was verified after it",
        ));
    }
    if accepted.contains(&statement.id().as_str()) {
        return Err(refused(
            "this loss statement was already accepted once: served again, it rolls the log back \
             a second time (a replay)",
        ));
    }
    if !extends(api, &statement.statement.restored, served) {
        return Err(refused(
            "the served log does not extend the tree head the statement says was restored",
        ));
    }
    Ok(statement)
}

/// Whether `new` extends `old` (same tree, or a larger one with a consistency proof the server
/// gives and that verifies). A proof the server cannot give counts as no.
pub(crate) fn extends(api: &Api, old: &Checkpoint, new: &Checkpoint) -> bool {
    if new.size < old.size {
        return false;
    }
    let proof = if new.size > old.size && old.size > 0 {
        match api.log_consistency(old.size, new.size) {
            Ok(p) => p,
            Err(_) => return false,
        }
    } else {
        Vec::new()
    };
    check_advance(Some(old), new, &proof).is_ok()
}

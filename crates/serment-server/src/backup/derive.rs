//! `serment restore`'s rows (docs/BACKUP.md §7): every row derived from the verified log
//! entries (devices, handles, rotations, revocations, wraps, removals, accesses, team changes,
//! erasures, recoveries, social recovery), the backup's side objects and the team key wraps
//! whose signatures verified; the tree rebuilt, its root the verified checkpoint's.
//!
//! A version's row also needs its blob's header (its author device): [`derive`] runs before
//! the blobs are checked (`restore` writes the bulk of the rows while the blob pass runs), so
//! it takes the version's first sharer as its author, and [`settle_versions`] corrects that
//! from the checked blobs.

use std::collections::{BTreeMap, HashMap, HashSet};

use serment_core::ids::KeyKind;
use serment_core::log::entry::{AccessWhat, LogEntry, Payload};
use serment_core::log::history::ChainEntry;
use serment_core::log::note::{NoteSigner, SignedCheckpoint};
use serment_core::log::tree::{self, Hash, NodeId};
use serment_core::team::{TeamKeyWrap, epoch_id, replay_team};
use serment_core::{DocId, KeyId};

use super::restore::{RestoreError, Unclaimable};
use super::verify::{Contents, Trust};
use crate::store::log_service::{PendingEntry, subject_key};
use crate::store::restore::{
    AccessPlan, CheckpointPlan, DevicePlan, ProvisionalPlan, RestorePlan, TeamPlan, TeamWrapPlan,
    VersionPlan, WrapPlan,
};

/// What [`derive`] gives.
pub(crate) struct Derived {
    /// The rows; each version's author is a first guess until [`settle_versions`].
    pub(crate) plan: RestorePlan,
    /// The document versions whose blobs to write, in the order of `plan.versions`.
    pub(crate) blobs: Vec<(DocId, u32)>,
    /// What of the non-log rows could not be restored.
    pub(crate) side_loss: SideLoss,
    /// What [`settle_versions`] needs to name each version's author from its blob.
    pub(crate) authors: Authors,
}

/// What [`derive`] could not restore (review S3), reported by `Restored`.
#[derive(Debug, Default)]
pub(crate) struct SideLoss {
    pub(crate) unclaimable: Vec<Unclaimable>,
    pub(crate) escrows_lost: Vec<String>,
    pub(crate) social_lost: Vec<String>,
}

/// The log's identity history, to name a version's author identity as [`derive`] would have
/// with the blob in hand: the author device's identity at the entry that made the version's row,
/// carried through the rotations after it.
#[derive(Debug, Default)]
pub(crate) struct Authors {
    /// For each version of `plan.versions` (same order), the index of the entry that made its
    /// row.
    made_at: Vec<u64>,
    /// Each device's identity, from the index of the entry that set it on.
    identities: HashMap<KeyId, Vec<(u64, KeyId)>>,
    /// Every rotation: its index, the old identity, the new one.
    rotations: Vec<(u64, KeyId, KeyId)>,
}

impl Authors {
    /// The identity of `device` for an entry at index `at` (set by an entry before it), then
    /// through every later rotation.
    fn identity(&self, device: &KeyId, at: u64) -> Option<KeyId> {
        let mut id = self
            .identities
            .get(device)?
            .iter()
            .take_while(|(i, _)| *i < at)
            .last()?
            .1;
        for (_, old, new) in self.rotations.iter().filter(|(i, _, _)| *i > at) {
            if id == *old {
                id = *new;
            }
        }
        Some(id)
    }
}

/// Names each version's author from its checked blob (the device its header names, and that
/// device's identity as [`derive`] follows it), correcting the guess [`derive`] made; returns
/// the indexes (in `plan.versions`) of the versions corrected. Refuses a version whose blob is
/// absent, does not decode, is not the one its manifest names, or whose author device the log
/// does not know at that point.
pub(crate) fn settle_versions(
    d: &mut Derived,
    blobs: &HashMap<(DocId, u32), super::verify::BlobCheck>,
) -> Result<Vec<usize>, RestoreError> {
    let bad = |s: String| RestoreError::Inconsistent(s);
    let mut corrected = Vec::new();
    for (i, ((v, key), at)) in d
        .plan
        .versions
        .iter_mut()
        .zip(&d.blobs)
        .zip(&d.authors.made_at)
        .enumerate()
    {
        let what = format!("document {} version {}", key.0, key.1);
        let blob = blobs
            .get(key)
            .ok_or_else(|| bad(format!("{what}: no blob in the backup")))?;
        let sealed = blob
            .sealed
            .as_ref()
            .map_err(|e| bad(format!("{what}: {e}")))?;
        if hex::encode(blob.id) != v.blob_id || blob.len != v.size {
            return Err(bad(format!(
                "{what}: its blob is not the one its manifest names"
            )));
        }
        let identity = d
            .authors
            .identity(&sealed.author_device, *at)
            .ok_or_else(|| bad(format!("{what}: its author device is not in the log")))?;
        let (device, identity) = (sealed.author_device.to_string(), identity.to_string());
        if v.author_device != device || v.author_identity != identity {
            v.author_device = device;
            v.author_identity = identity;
            corrected.push(i);
        }
    }
    if d.plan.versions.len() != d.authors.made_at.len() {
        return Err(bad("a version's row has no index".into()));
    }
    Ok(corrected)
}

struct Dev {
    identity: KeyId,
    handle: String,
    record: Vec<u8>,
    created_at: u64,
    revoked: bool,
}

/// Derives every row from the verified contents, up to `size` entries; returns the plan, the
/// document versions whose blobs to write, and what of the non-log rows could not be restored.
pub(crate) fn derive(
    c: &Contents,
    size: u64,
    signer: &NoteSigner,
    trust: &Trust,
    team_keys: &[(String, Vec<u8>)],
    erased_after: &[DocId],
) -> Result<Derived, RestoreError> {
    let bad = |s: String| RestoreError::Inconsistent(s);
    let n = usize::try_from(size).map_err(|_| bad("size".into()))?;
    let entries = c
        .entries
        .get(..n)
        .ok_or_else(|| bad(format!("the backup holds fewer than {size} entries")))?;
    let mut plan = RestorePlan {
        size,
        ..RestorePlan::default()
    };
    let mut nodes: HashMap<NodeId, Hash> = HashMap::new();
    let mut devices: BTreeMap<KeyId, Dev> = BTreeMap::new();
    let mut device_order: Vec<KeyId> = Vec::new();
    let mut handles: BTreeMap<String, KeyId> = BTreeMap::new();
    let mut versions: BTreeMap<(DocId, u32), (VersionPlan, u64)> = BTreeMap::new();
    let mut authors = Authors::default();
    let mut wraps: BTreeMap<(DocId, u32, KeyId), WrapPlan> = BTreeMap::new();
    let mut team_wraps: BTreeMap<(DocId, u32, String), TeamWrapPlan> = BTreeMap::new();
    let mut accesses: Vec<(DocId, AccessPlan)> = Vec::new();
    let mut erased: HashSet<DocId> = HashSet::new();
    let mut histories: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    let mut team_chains: BTreeMap<String, Vec<ChainEntry>> = BTreeMap::new();
    let mut epoch_team: HashMap<KeyId, String> = HashMap::new();
    // The documents a tombstone of these entries erases: their versions get no row (their
    // blobs, absent or not, are not restored).
    let will_erase: HashSet<DocId> = entries
        .iter()
        .filter_map(|b| LogEntry::decode(b).ok())
        .filter_map(|e| match e.payload {
            Payload::Erasure(t) => Some(t.doc_id),
            _ => None,
        })
        .chain(erased_after.iter().copied())
        .collect();

    // Review S3: provisional recipients seen so far; those whose row the backup holds are
    // restored (with their wraps, into `provisional_wraps`), the others are reported.
    let objects: HashMap<&str, &super::side::ProvisionalObject> =
        c.provisionals.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut provisional: HashSet<KeyId> = HashSet::new();
    let mut prov_plans: BTreeMap<KeyId, ProvisionalPlan> = BTreeMap::new();
    let mut unclaimable: BTreeMap<KeyId, Unclaimable> = BTreeMap::new();
    let mut prov_wraps: BTreeMap<(DocId, u32, KeyId), WrapPlan> = BTreeMap::new();
    // (handle, recovery device, logged at) of every recovery entry: the escrow it opened is burnt.
    let mut recoveries: Vec<(String, KeyId, u64)> = Vec::new();
    // Review T11: the newest contacts entry of each handle (contacts hash hex, recovery device,
    // escrow hash), the requests, approvals (request id, device) and vetoes (request id, handle).
    let mut social_entries: BTreeMap<String, (String, KeyId, [u8; 32])> = BTreeMap::new();
    let mut social_requests: Vec<crate::store::restore::SocialRequestPlan> = Vec::new();
    let mut approvals: HashSet<(String, String)> = HashSet::new();
    let mut vetoes: HashSet<(String, String)> = HashSet::new();
    for (i, bytes) in entries.iter().enumerate() {
        let idx = i as u64;
        let e = LogEntry::decode(bytes).map_err(|err| bad(format!("entry {i}: {err}")))?;
        let subject = e.subject();
        let leaf = tree::leaf_hash(bytes);
        for (node, hash) in
            tree::append(idx, leaf, &nodes).map_err(|err| bad(format!("tree: {err}")))?
        {
            nodes.insert(node, hash);
            plan.nodes.push((node, hash));
        }
        let chain_entry = || ChainEntry {
            index: idx,
            bytes: bytes.clone(),
            entry: e.clone(),
        };
        let at = e.logged_at;
        let device_col: Option<KeyId> = match &e.payload {
            Payload::Device(d) => {
                histories
                    .entry(d.handle.clone())
                    .or_default()
                    .push(chain_entry());
                let id = d.device_id();
                let ident = d.identity_id();
                match devices.get_mut(&id) {
                    None => {
                        authors.identities.entry(id).or_default().push((idx, ident));
                        devices.insert(
                            id,
                            Dev {
                                identity: ident,
                                handle: d.handle.clone(),
                                record: e.payload_bytes.clone(),
                                created_at: at,
                                revoked: false,
                            },
                        );
                        device_order.push(id);
                        handles.entry(d.handle.clone()).or_insert(ident);
                    }
                    Some(dev) => {
                        // Re-certified by a rotation (a new identity), or the hybrid upgrade.
                        if dev.identity != ident {
                            dev.identity = ident;
                            dev.revoked = false;
                            authors.identities.entry(id).or_default().push((idx, ident));
                        }
                        dev.record = e.payload_bytes.clone();
                    }
                }
                Some(id)
            }
            Payload::Rotation(r) => {
                histories
                    .entry(r.handle.clone())
                    .or_default()
                    .push(chain_entry());
                let old = KeyId::of(KeyKind::Identity, &r.old_identity_key);
                let new = KeyId::of(KeyKind::Identity, &r.new_identity_key);
                handles.insert(r.handle.clone(), new);
                for d in devices.values_mut().filter(|d| d.identity == old) {
                    d.revoked = true;
                }
                for (v, _) in versions.values_mut() {
                    if v.author_identity == old.to_string() {
                        v.author_identity = new.to_string();
                    }
                }
                authors.rotations.push((idx, old, new));
                None
            }
            Payload::Revocation(r) => {
                histories
                    .entry(r.handle.clone())
                    .or_default()
                    .push(chain_entry());
                if let Some(d) = devices.get_mut(&r.device_id) {
                    d.revoked = true;
                }
                Some(r.device_id)
            }
            // A recovery (kind 12, PROTOCOL.md §4.2): in the handle's chain, its device column
            // the device it enrolled, as `store::sql::recovery` writes it. The escrows are not
            // in the backup: after a restore, users make a new recovery code.
            Payload::Recovery(r) => {
                histories
                    .entry(r.handle.clone())
                    .or_default()
                    .push(chain_entry());
                recoveries.push((r.handle.clone(), r.recovery_device, at));
                Some(r.new_device)
            }
            // Social recovery (kinds 13-16, PROTOCOL.md §4.3): the handle's social chain, its
            // device column as `store::sql::social` writes it.
            // Review T11: the sets (escrow, share wraps) come from the backup's social objects,
            // restored only where the newest contacts entry of the handle binds them; the
            // requests are derived from these entries.
            Payload::RecoveryContacts(c) => {
                social_entries.insert(
                    c.handle.clone(),
                    (
                        hex::encode(serment_core::social::contacts_hash(&e.payload_bytes)),
                        c.recovery_device,
                        c.escrow_hash,
                    ),
                );
                Some(c.recovery_device)
            }
            Payload::RecoveryRequest(r) => {
                social_requests.push(crate::store::restore::SocialRequestPlan {
                    request_id: hex::encode(r.id),
                    handle: r.handle.clone(),
                    contacts_hash: hex::encode(r.contacts_hash),
                    new_device: r.device_id().to_string(),
                    logged_at: at,
                    vetoed: false,
                });
                Some(r.device_id())
            }
            Payload::RecoveryApproval(a) => {
                approvals.insert((hex::encode(a.request_id), a.device_id().to_string()));
                Some(a.device_id())
            }
            Payload::RecoveryVeto(v) => {
                vetoes.insert((hex::encode(v.request_id), v.handle.clone()));
                Some(v.device_id())
            }
            Payload::Wrap(w) => {
                let doc = w.doc_id.to_string();
                if let Some(team) = epoch_team.get(&w.recipient) {
                    team_wraps.retain(|(d, v, t), _| {
                        !(*d == w.doc_id && *v == w.doc_version && t == team)
                    });
                    team_wraps.insert(
                        (w.doc_id, w.doc_version, team.clone()),
                        TeamWrapPlan {
                            doc_id: doc,
                            doc_version: w.doc_version,
                            epoch_id: w.recipient.to_string(),
                            team: team.clone(),
                            sharer: w.sharer.to_string(),
                            wrap: e.payload_bytes.clone(),
                            log_idx: idx,
                        },
                    );
                    None
                } else if will_erase.contains(&w.doc_id) {
                    Some(w.recipient)
                } else if provisional.contains(&w.recipient) {
                    // A wrap to a provisional recipient (PROTOCOL.md §15): into
                    // `provisional_wraps` when its row is restored, else reported (review S3).
                    if prov_plans.contains_key(&w.recipient) {
                        if let std::collections::btree_map::Entry::Vacant(slot) =
                            versions.entry((w.doc_id, w.doc_version))
                        {
                            slot.insert((version_of(c, &devices, w, at)?, idx));
                        }
                        prov_wraps.insert(
                            (w.doc_id, w.doc_version, w.recipient),
                            WrapPlan {
                                doc_id: doc,
                                doc_version: w.doc_version,
                                recipient: w.recipient.to_string(),
                                sharer: w.sharer.to_string(),
                                wrap: e.payload_bytes.clone(),
                                log_idx: idx,
                            },
                        );
                    } else if let Some(u) = unclaimable.get_mut(&w.recipient) {
                        u.wraps += 1;
                    }
                    Some(w.recipient)
                } else {
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        versions.entry((w.doc_id, w.doc_version))
                    {
                        slot.insert((version_of(c, &devices, w, at)?, idx));
                    }
                    wraps.insert(
                        (w.doc_id, w.doc_version, w.recipient),
                        WrapPlan {
                            doc_id: doc,
                            doc_version: w.doc_version,
                            recipient: w.recipient.to_string(),
                            sharer: w.sharer.to_string(),
                            wrap: e.payload_bytes.clone(),
                            log_idx: idx,
                        },
                    );
                    Some(w.recipient)
                }
            }
            Payload::Removal(r) => {
                wraps.remove(&(r.doc_id, r.doc_version, r.recipient));
                prov_wraps.remove(&(r.doc_id, r.doc_version, r.recipient));
                Some(r.recipient)
            }
            Payload::Access(a) => {
                accesses.push((
                    a.doc_id,
                    AccessPlan {
                        doc_id: a.doc_id.to_string(),
                        doc_version: a.doc_version,
                        device_id: a.device_id.to_string(),
                        what: match a.what {
                            AccessWhat::Wrap => "wrap",
                            AccessWhat::Blob => "blob",
                        },
                        at,
                        nonce: hex::encode(a.nonce),
                    },
                ));
                Some(a.device_id)
            }
            Payload::Team(t) => {
                let b = &t.body;
                epoch_team.insert(epoch_id(&b.team, b.epoch, &b.epoch_key), b.team.clone());
                team_chains
                    .entry(b.team.clone())
                    .or_default()
                    .push(chain_entry());
                Some(KeyId::of(KeyKind::Device, &t.signer_key))
            }
            Payload::Bundle(_) => None,
            Payload::Provisional(p) => {
                let id = p.id();
                provisional.insert(id);
                let lab_identity = devices
                    .get(&p.lab_device())
                    .map(|d| d.identity.to_string())
                    .unwrap_or_default();
                match objects.get(id.to_string().as_str()) {
                    Some(o) => {
                        prov_plans.insert(
                            id,
                            ProvisionalPlan {
                                object: (*o).clone(),
                                lab_identity,
                                lab_device: p.lab_device().to_string(),
                                contact_tag: hex::encode(p.contact_tag),
                                created_at: at,
                                record_index: idx,
                                claimed_identity: None,
                            },
                        );
                    }
                    None => {
                        unclaimable.insert(
                            id,
                            Unclaimable {
                                provisional_id: id.to_string(),
                                lab_identity,
                                wraps: 0,
                            },
                        );
                    }
                }
                Some(p.lab_device())
            }
            Payload::Claim(cl) => {
                // The claimant's identity when it claimed, as the server recorded it.
                if let (Some(pp), Some(d)) = (
                    prov_plans.get_mut(&cl.provisional_id()),
                    devices.get(&cl.device_id()),
                ) {
                    pp.claimed_identity = Some(d.identity.to_string());
                }
                // A claimed recipient lacking its row is no loss for the patient (its wraps
                // were re-wrapped to their devices at the claim).
                unclaimable.remove(&cl.provisional_id());
                Some(cl.device_id())
            }
            Payload::Erasure(t) => {
                // verify_contents accepted this tombstone as the author's own (a forged one is
                // a problem, and the restore was refused): nothing of the document comes back.
                erased.insert(t.doc_id);
                versions.retain(|(d, _), _| *d != t.doc_id);
                wraps.retain(|(d, _, _), _| *d != t.doc_id);
                prov_wraps.retain(|(d, _, _), _| *d != t.doc_id);
                team_wraps.retain(|(d, _, _), _| *d != t.doc_id);
                accesses.retain(|(d, _)| *d != t.doc_id);
                Some(t.requester_device)
            }
        };
        plan.entries.push(PendingEntry {
            idx,
            kind: e.kind as u8,
            subject: subject_key(&subject),
            device_id: device_col.map(|d| d.to_string()),
            entry: bytes.clone(),
            leaf,
            logged_at: at,
        });
    }
    plan.root = tree::root(size, &nodes).map_err(|err| bad(format!("tree: {err}")))?;

    // The checkpoints: re-signed by the log key (Ed25519 is deterministic: the very line the
    // server wrote), with the cosignature lines the backup kept (only the given witnesses'
    // when keys are given). The newest must be of `size` and sign the rebuilt root.
    for (s, text) in c.notes.range(..=size) {
        let sc = SignedCheckpoint::parse(text).map_err(|err| bad(err.to_string()))?;
        let note = signer
            .sign_checkpoint(&sc.checkpoint)
            .and_then(|n| n.encode())
            .map_err(|err| bad(err.to_string()))?;
        let cosignatures = sc
            .signatures
            .iter()
            .filter(|sig| sig.name != signer.name())
            .filter(|sig| {
                trust.witnesses.is_empty()
                    || trust
                        .witnesses
                        .iter()
                        .any(|w| sc.verify_cosignature(sig, w).is_ok())
            })
            .filter_map(|sig| sig.key_id().map(|k| (sig.name.clone(), k, sig.line())))
            .collect();
        plan.checkpoints.push(CheckpointPlan {
            size: *s,
            note,
            cosignatures,
        });
    }
    match c.notes.get(&size).map(|t| SignedCheckpoint::parse(t)) {
        Some(Ok(sc)) if sc.checkpoint.root == plan.root => {}
        _ => {
            return Err(bad(format!(
                "the rebuilt tree of {size} entries does not have the verified checkpoint's root"
            )));
        }
    }

    // Teams: each chain replayed as clients replay it (PROTOCOL.md §12.4).
    for (name, chain) in &team_chains {
        let state = replay_team(name, chain, &histories)
            .map_err(|err| bad(format!("team {name}: {err}")))?;
        let cur = state
            .current()
            .ok_or_else(|| bad(format!("team {name}: no epoch")))?;
        plan.teams.push(TeamPlan {
            name: name.clone(),
            epoch: cur.epoch,
            epoch_id: cur.id.to_string(),
            head_idx: state.head.index,
            members: state
                .members
                .iter()
                .map(|m| (m.handle.clone(), m.admin))
                .collect(),
        });
    }
    for (key, bytes) in team_keys {
        let w = TeamKeyWrap::decode(bytes).map_err(|err| bad(format!("{key}: {err}")))?;
        let epoch = plan
            .teams
            .iter()
            .find(|t| t.name == w.team)
            .map(|t| t.epoch);
        if epoch.is_some_and(|e| w.epoch <= e) {
            plan.team_key_wraps
                .push((w.team, w.epoch, w.recipient.to_string(), bytes.clone()));
        }
    }

    plan.devices = device_order
        .iter()
        .filter_map(|id| {
            devices.get(id).map(|d| DevicePlan {
                device_id: id.to_string(),
                identity_id: d.identity.to_string(),
                handle: d.handle.clone(),
                record: d.record.clone(),
                created_at: d.created_at,
                revoked: d.revoked,
            })
        })
        .collect();
    plan.handles = handles
        .into_iter()
        .map(|(h, i)| (h, i.to_string()))
        .collect();
    let keys: Vec<(DocId, u32)> = versions.keys().copied().collect();
    (plan.versions, authors.made_at) = versions.into_values().unzip();
    plan.wraps = wraps.into_values().collect();
    plan.team_wraps = team_wraps.into_values().collect();
    plan.accesses = accesses.into_iter().map(|(_, a)| a).collect();
    plan.provisionals = prov_plans.into_values().collect();
    plan.provisional_wraps = prov_wraps.into_values().collect();

    // Recovery escrows (review S3): the newest backed-up row of each handle, restored only if
    // the restored log still makes its recovery device a current device of that identity and
    // handle (what `put_escrow` required) and no recovery entry logged at or after it burnt it.
    let mut newest: BTreeMap<&str, &super::side::EscrowObject> = BTreeMap::new();
    for e in &c.escrows {
        newest.insert(e.handle.as_str(), e);
    }
    let mut escrows_lost = Vec::new();
    for (handle, e) in newest {
        let burnt = recoveries.iter().any(|(h, d, at)| {
            h == handle && d.to_string() == e.recovery_device && *at >= e.updated_at
        });
        if burnt {
            continue;
        }
        let current = plan.devices.iter().any(|d| {
            d.device_id == e.recovery_device
                && d.identity_id == e.identity_id
                && d.handle == handle
                && !d.revoked
        });
        if current {
            plan.escrows.push(e.clone());
        } else {
            escrows_lost.push(handle.to_owned());
        }
    }
    // Social recovery sets (review T11): the newest backed-up set of each handle whose newest
    // contacts entry in the restored log binds it (its contacts hash, recovery device and
    // escrow hash), whose recovery device is a current device of that identity and handle, and
    // that no recovery entry (kind 12) logged at or after it burnt. Share wraps: the
    // distribution, and the re-wraps of an approval the restored log holds. Every handle with
    // a contacts entry and no such set is listed in `social_lost`.
    let mut newest_social: BTreeMap<&str, &super::side::SocialObject> = BTreeMap::new();
    for o in &c.social {
        newest_social.insert(o.handle.as_str(), o);
    }
    let mut social_lost = Vec::new();
    for (handle, (ch, device, escrow_hash)) in &social_entries {
        let device = device.to_string();
        let Some(o) = newest_social.get(handle.as_str()).copied().filter(|o| {
            o.contacts_hash == *ch
                && o.recovery_device == device
                && serment_core::social::escrow_hash(&o.escrow) == *escrow_hash
        }) else {
            social_lost.push(handle.clone());
            continue;
        };
        let burnt = recoveries
            .iter()
            .any(|(h, d, at)| h == handle && d.to_string() == device && *at >= o.updated_at);
        if burnt {
            continue;
        }
        let current = plan.devices.iter().any(|d| {
            d.device_id == device
                && d.identity_id == o.identity_id
                && d.handle == *handle
                && !d.revoked
        });
        if !current {
            social_lost.push(handle.clone());
            continue;
        }
        let requested: HashSet<&str> = social_requests
            .iter()
            .filter(|r| r.handle == *handle)
            .map(|r| r.request_id.as_str())
            .collect();
        let mut o = o.clone();
        o.shares.retain(|sh| {
            sh.request_id.is_empty()
                || (requested.contains(sh.request_id.as_str())
                    && approvals.contains(&(sh.request_id.clone(), sh.sharer.clone())))
        });
        plan.social.push(o);
    }
    for r in &mut social_requests {
        r.vetoed = vetoes.contains(&(r.request_id.clone(), r.handle.clone()));
    }
    plan.social_requests = social_requests;
    let loss = SideLoss {
        unclaimable: unclaimable.into_values().collect(),
        escrows_lost,
        social_lost,
    };
    Ok(Derived {
        plan,
        blobs: keys,
        side_loss: loss,
        authors,
    })
}

/// A version's row at its first wrap `w`: its blob as the manifests name it, and its author a
/// first guess (the device the checked blob's header names when it is already known, else the
/// wrap's sharer), with that device's identity at this point of the log; [`settle_versions`]
/// names the author from the checked blob.
fn version_of(
    c: &Contents,
    devices: &BTreeMap<KeyId, Dev>,
    w: &serment_core::wrap::WrappedKey,
    at: u64,
) -> Result<VersionPlan, RestoreError> {
    let (doc, version) = (w.doc_id, w.doc_version);
    let what = format!("document {doc} version {version}");
    let (id, len) = c
        .blob_names
        .get(&(doc, version))
        .ok_or_else(|| RestoreError::Inconsistent(format!("{what}: no blob in the backup")))?;
    let author_device = c
        .blobs
        .get(&(doc, version))
        .and_then(|b| b.sealed.as_ref().ok())
        .map_or(w.sharer, |s| s.author_device);
    let author = devices.get(&author_device).ok_or_else(|| {
        RestoreError::Inconsistent(format!("{what}: its author device is not in the log"))
    })?;
    Ok(VersionPlan {
        doc_id: doc.to_string(),
        doc_version: version,
        author_device: author_device.to_string(),
        author_identity: author.identity.to_string(),
        blob_id: hex::encode(id),
        size: *len,
        created_at: at,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backup::verify::{BlobCheck, Sealed};

    fn key(kind: KeyKind, b: u8) -> KeyId {
        KeyId::of(kind, &[b; 32])
    }

    /// One version, its row made at entry 3 with device A as the guessed author; the log: A of
    /// identity I1 from entry 0, B of I2 from entry 1, I2 rotated to I3 at entry 5.
    fn derived(blob_id: [u8; 32]) -> Derived {
        let (a, i1) = (key(KeyKind::Device, 1), key(KeyKind::Identity, 11));
        let (b, i2, i3) = (
            key(KeyKind::Device, 2),
            key(KeyKind::Identity, 12),
            key(KeyKind::Identity, 13),
        );
        let doc = DocId::from_bytes([7; 16]);
        Derived {
            plan: RestorePlan {
                versions: vec![VersionPlan {
                    doc_id: doc.to_string(),
                    doc_version: 1,
                    author_device: a.to_string(),
                    author_identity: i1.to_string(),
                    blob_id: hex::encode(blob_id),
                    size: 10,
                    created_at: 0,
                }],
                ..RestorePlan::default()
            },
            blobs: vec![(doc, 1)],
            side_loss: SideLoss::default(),
            authors: Authors {
                made_at: vec![3],
                identities: [(a, vec![(0, i1)]), (b, vec![(1, i2)])].into(),
                rotations: vec![(5, i2, i3)],
            },
        }
    }

    fn checked(author: KeyId, id: [u8; 32]) -> HashMap<(DocId, u32), BlobCheck> {
        let doc = DocId::from_bytes([7; 16]);
        let sealed = Sealed {
            doc,
            version: 1,
            header_hash: [0; 32],
            author_device: author,
            body: Ok(()),
        };
        [(
            (doc, 1),
            BlobCheck {
                key: "blobs/x".into(),
                id,
                len: 10,
                sealed: Ok(sealed),
                written: false,
                inline: None,
            },
        )]
        .into()
    }

    /// The rows written before the blobs were checked guessed the author: the blob's header
    /// names another device, whose identity (at the version's entry, then through the later
    /// rotation) replaces the guess, and the version is listed as corrected.
    #[test]
    fn a_versions_author_comes_from_its_checked_blob() {
        let mut d = derived([9; 32]);
        let b = key(KeyKind::Device, 2);
        assert_eq!(settle_versions(&mut d, &checked(b, [9; 32])).unwrap(), [0]);
        let v = d.plan.versions.first().unwrap();
        assert_eq!(v.author_device, b.to_string());
        assert_eq!(v.author_identity, key(KeyKind::Identity, 13).to_string());
        // A right guess is not corrected.
        let mut d = derived([9; 32]);
        let a = key(KeyKind::Device, 1);
        assert!(
            settle_versions(&mut d, &checked(a, [9; 32]))
                .unwrap()
                .is_empty()
        );
    }

    /// A blob other than the one the rows name, or by a device the log records only after the
    /// version, or no blob at all: refused.
    #[test]
    fn a_version_whose_blob_does_not_match_its_row_is_refused() {
        let b = key(KeyKind::Device, 2);
        let err = settle_versions(&mut derived([9; 32]), &checked(b, [8; 32])).unwrap_err();
        assert!(
            err.to_string().contains("not the one its manifest names"),
            "{err}"
        );
        let mut d = derived([9; 32]);
        d.authors.made_at = vec![1];
        let err = settle_versions(&mut d, &checked(b, [9; 32])).unwrap_err();
        assert!(err.to_string().contains("not in the log"), "{err}");
        let err = settle_versions(&mut derived([9; 32]), &HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("no blob"), "{err}");
    }
}

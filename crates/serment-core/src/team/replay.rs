//! The replay of a team's membership chain (PROTOCOL.md §12.4).

use std::collections::BTreeMap;

use super::{TeamOp, TeamRole, bad, epoch_id};
use crate::error::Result;
use crate::identity::HybridPublicKey;
use crate::ids::KeyId;
use crate::log::entry::{Payload, PrevLink, Subject};
use crate::log::history::{ChainEntry, KeyHistory, check_chain, replay_keys};

/// A member after a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    /// The handle.
    pub handle: String,
    /// The identity key the admin who added it verified.
    pub identity_key: [u8; 32],
    /// Whether the member is an admin.
    pub admin: bool,
}

/// One epoch of a team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamEpoch {
    /// The epoch number (from 1).
    pub epoch: u32,
    /// Its X-Wing public key.
    pub key: HybridPublicKey,
    /// [`epoch_id`].
    pub id: KeyId,
    /// The log index of the change that opened it.
    pub opened_at: u64,
    /// The Ed25519 keys of the admin devices that signed a change of this epoch (the one that
    /// opened it, and each add or grant while it was current): the devices that made its key
    /// wraps (PROTOCOL.md §12.3), which a member accepts as sharers.
    pub signers: Vec<[u8; 32]>,
    /// Every handle that was a member while this epoch was current (in the order they
    /// joined): the handles whose devices the admins gave its key.
    pub members: Vec<String>,
}

/// A team after replaying its chain (PROTOCOL.md §12.4).
#[derive(Debug, Clone)]
pub struct TeamState {
    /// The team name.
    pub team: String,
    /// The current members, in the order they joined.
    pub members: Vec<TeamMember>,
    /// Every handle removed, in order.
    pub removed: Vec<String>,
    /// Every epoch, oldest first; the last is current.
    pub epochs: Vec<TeamEpoch>,
    /// The last entry of the chain.
    pub head: PrevLink,
    /// The number of changes.
    pub changes: usize,
}

impl TeamState {
    /// The current epoch: the only one new wraps may use.
    pub fn current(&self) -> Option<&TeamEpoch> {
        self.epochs.last()
    }
    /// The epoch whose [`epoch_id`] is `id`.
    pub fn epoch_by_id(&self, id: &KeyId) -> Option<&TeamEpoch> {
        self.epochs.iter().find(|e| e.id == *id)
    }
    /// Whether `handle` is a current member.
    pub fn is_member(&self, handle: &str) -> bool {
        self.members.iter().any(|m| m.handle == handle)
    }
    /// Whether `handle` is a current admin.
    pub fn is_admin(&self, handle: &str) -> bool {
        self.members.iter().any(|m| m.handle == handle && m.admin)
    }
}

/// The key history of `handle` as it stood just before log index `at`: the replay of its chain's
/// entries with a smaller index.
fn keys_before(
    histories: &BTreeMap<String, Vec<ChainEntry>>,
    handle: &str,
    at: u64,
) -> Result<KeyHistory> {
    let chain = histories.get(handle).ok_or(bad(
        "a change names a handle whose key history was not given",
    ))?;
    let n = chain.iter().take_while(|e| e.index < at).count();
    let prefix = chain
        .get(..n)
        .ok_or(bad("a change names a handle with no key history before it"))?;
    if prefix.is_empty() {
        return Err(bad(
            "a change names a handle that had no key in the log yet",
        ));
    }
    replay_keys(handle, prefix)
}

/// Replays a team's chain (PROTOCOL.md §12.4). `histories` holds the whole, proven chain of every
/// handle the team's changes name (signers and members); each change is judged against the key
/// histories as they stood at its own log index.
///
/// Rules: the chain is whole ([`check_chain`]) and about `team`; the first change is a creation
/// of epoch 1 by its own member, who becomes the first admin; every change is signed by a device
/// that was a current device of the signer's identity at that index (not revoked, not rotated
/// away) and, after the creation, the signer is a current admin; `member_identity` is the
/// member's identity key at that index; an add names a non-member, a removal or grant a member;
/// at least one admin remains; create, remove and rotate open epoch `current + 1` with a key
/// never used before, add and grant keep the current epoch and its key.
///
/// # Errors
/// [`Error::Team`], [`Error::History`].
pub fn replay_team(
    team: &str,
    chain: &[ChainEntry],
    histories: &BTreeMap<String, Vec<ChainEntry>>,
) -> Result<TeamState> {
    check_chain(chain, &Subject::Team(team.to_owned()))?;
    let Some(last) = chain.last() else {
        return Err(bad("an empty team chain"));
    };
    let mut state = TeamState {
        team: team.to_owned(),
        members: Vec::new(),
        removed: Vec::new(),
        epochs: Vec::new(),
        head: last.link(),
        changes: chain.len(),
    };
    for e in chain {
        state.step(e, histories)?;
    }
    Ok(state)
}

impl TeamState {
    /// Applies the change that follows this state's head (PROTOCOL.md §12.4), with the rules of
    /// [`replay_team`] for that one change: what a member that already holds the replayed state
    /// does with a new change (a removal, say), without replaying the whole chain. `histories`
    /// needs the chains of the change's signer and member only.
    ///
    /// On error the state is unchanged.
    ///
    /// # Errors
    /// [`Error::Team`] for a change that does not link to the head (an entry dropped, reordered
    /// or about another subject) or breaks a rule; [`Error::History`].
    ///
    /// [`Error::Team`]: crate::Error::Team
    /// [`Error::History`]: crate::Error::History
    pub fn apply(
        &mut self,
        e: &ChainEntry,
        histories: &BTreeMap<String, Vec<ChainEntry>>,
    ) -> Result<()> {
        if e.entry.prev != Some(self.head)
            || e.index <= self.head.index
            || e.entry.subject() != Subject::Team(self.team.clone())
        {
            return Err(bad(
                "a change that does not follow the team's head (dropped, reordered or another subject)",
            ));
        }
        let mut next = self.clone();
        next.step(e, histories)?;
        next.head = e.link();
        next.changes = self.changes.saturating_add(1);
        *self = next;
        Ok(())
    }

    /// One change of the chain, its links already checked.
    fn step(
        &mut self,
        e: &ChainEntry,
        histories: &BTreeMap<String, Vec<ChainEntry>>,
    ) -> Result<()> {
        let team = self.team.as_str();
        let (members, removed, epochs) = (&mut self.members, &mut self.removed, &mut self.epochs);
        let Payload::Team(c) = &e.entry.payload else {
            return Err(bad("an entry of another kind in a team's chain"));
        };
        let b = &c.body;
        if b.team != team {
            return Err(bad("a change for another team"));
        }
        let signer_keys = keys_before(histories, &b.signer, e.index)?;
        let dev = c.signer_device();
        if !signer_keys.devices.iter().any(|d| d.device_id() == dev) {
            return Err(bad(
                "a change signed by a device that was not a current device of its signer \
                 (revoked, rotated away or never certified)",
            ));
        }
        let member_keys = keys_before(histories, &b.member, e.index)?;
        if member_keys.identity_key != b.member_identity {
            return Err(bad(
                "a change names a member identity key that is not the member's key in the log",
            ));
        }
        match epochs.last() {
            None => {
                if b.op != TeamOp::Create || b.epoch != 1 || b.member != b.signer {
                    return Err(bad("the chain does not start with its creation (epoch 1)"));
                }
            }
            Some(cur) => {
                if b.op == TeamOp::Create {
                    return Err(bad("a second creation of the team"));
                }
                if !members.iter().any(|m| m.handle == b.signer && m.admin) {
                    return Err(bad(
                        "a change signed by someone who is not a current admin of the team",
                    ));
                }
                if b.op.opens_epoch() {
                    if Some(b.epoch) != cur.epoch.checked_add(1) {
                        return Err(bad("a new epoch out of sequence"));
                    }
                    if epochs.iter().any(|x| x.key == b.epoch_key) {
                        return Err(bad("a new epoch reuses an old epoch key"));
                    }
                } else if b.epoch != cur.epoch || b.epoch_key != cur.key {
                    return Err(bad(
                        "a change that keeps the epoch changes its number or key",
                    ));
                }
            }
        }
        match b.op {
            TeamOp::Create => members.push(TeamMember {
                handle: b.member.clone(),
                identity_key: b.member_identity,
                admin: true,
            }),
            TeamOp::Add => {
                if members.iter().any(|m| m.handle == b.member) {
                    return Err(bad("an add of a current member"));
                }
                members.push(TeamMember {
                    handle: b.member.clone(),
                    identity_key: b.member_identity,
                    admin: b.role == TeamRole::Admin,
                });
            }
            TeamOp::Remove => {
                let before = members.len();
                members.retain(|m| m.handle != b.member);
                if members.len() == before {
                    return Err(bad("a removal of someone who is not a member"));
                }
                if !members.iter().any(|m| m.admin) {
                    return Err(bad("a removal of the last admin"));
                }
                removed.push(b.member.clone());
            }
            TeamOp::GrantAdmin => {
                let m = members
                    .iter_mut()
                    .find(|m| m.handle == b.member)
                    .ok_or(bad("an admin grant to someone who is not a member"))?;
                if m.admin {
                    return Err(bad("an admin grant to an admin"));
                }
                m.admin = true;
            }
            TeamOp::Rotate => {}
        }
        if b.op.opens_epoch() {
            epochs.push(TeamEpoch {
                epoch: b.epoch,
                key: b.epoch_key.clone(),
                id: epoch_id(team, b.epoch, &b.epoch_key),
                opened_at: e.index,
                signers: vec![c.signer_key],
                members: members.iter().map(|m| m.handle.clone()).collect(),
            });
        } else if let Some(cur) = epochs.last_mut() {
            if !cur.signers.contains(&c.signer_key) {
                cur.signers.push(c.signer_key);
            }
            if !cur.members.contains(&b.member) {
                cur.members.push(b.member.clone());
            }
        }
        Ok(())
    }
}

/// The current members of `state` with a device that left their key history after the current
/// epoch opened (PROTOCOL.md §12.4, "a revoked device ends the epoch"): a device current at the
/// change that opened the epoch, or certified since, that is no longer current (revoked, or not
/// re-certified by a rotation). That device may hold the epoch's secret, so nothing may be wrapped
/// to this epoch any more: an admin opens a new one (`team rotate`), wrapped to the current
/// devices only. Empty when the epoch is safe to use.
///
/// `histories` holds the proven chains of the members, at the size the team was replayed at. A
/// member whose history cannot be replayed counts as having lost a device.
pub fn revoked_since_current_epoch(
    state: &TeamState,
    histories: &BTreeMap<String, Vec<ChainEntry>>,
) -> Vec<String> {
    let Some(cur) = state.current() else {
        return Vec::new();
    };
    state
        .members
        .iter()
        .filter(|m| {
            let Some(chain) = histories.get(&m.handle) else {
                return true;
            };
            let Ok(now) = replay_keys(&m.handle, chain) else {
                return true;
            };
            let current: Vec<KeyId> = now.devices.iter().map(|d| d.device_id()).collect();
            let at_open = chain
                .iter()
                .take_while(|e| e.index <= cur.opened_at)
                .count();
            // The device sets after each entry from the epoch's opening on: any device in one of
            // them that is not current now has left.
            (at_open.max(1)..=chain.len()).any(|n| {
                chain.get(..n).is_some_and(|prefix| {
                    replay_keys(&m.handle, prefix)
                        .is_ok_and(|h| h.devices.iter().any(|d| !current.contains(&d.device_id())))
                })
            })
        })
        .map(|m| m.handle.clone())
        .collect()
}

/// The handles a team's chain names (signers and members): the key histories
/// [`replay_team`] needs.
pub fn named_handles(chain: &[ChainEntry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in chain {
        if let Payload::Team(c) = &e.entry.payload {
            for h in [&c.body.signer, &c.body.member] {
                if !out.contains(h) {
                    out.push(h.clone());
                }
            }
        }
    }
    out
}

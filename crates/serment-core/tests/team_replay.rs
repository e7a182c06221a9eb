//! The replay of a care team's chain (PROTOCOL.md §12.4): each rule, and a chain that breaks it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;

use serment_core::Error;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::{EntryKind, LogEntry, Revocation, encode_entry};
use serment_core::log::history::ChainEntry;
use serment_core::team::{
    EpochSecret, TeamChange, TeamChangeBody, TeamOp, TeamRole, named_handles, replay_team,
};

const TEAM: &str = "cardio-chu";

struct User {
    handle: &'static str,
    id: IdentitySecret,
    dev: DeviceSecret,
}

fn user(handle: &'static str, seed: u8) -> User {
    User {
        handle,
        id: IdentitySecret::from_seed(&[seed; 32]),
        dev: DeviceSecret::from_test_seed_hybrid(&[seed + 100; 32]),
    }
}

/// A log in memory: appends entries with per-subject links, and hands out chains.
#[derive(Default)]
struct Log {
    next: u64,
    chains: BTreeMap<String, Vec<ChainEntry>>,
}

impl Log {
    fn append(&mut self, subject: &str, kind: EntryKind, payload: &[u8]) {
        let chain = self.chains.entry(subject.to_owned()).or_default();
        let prev = chain.last().map(ChainEntry::link);
        let bytes = encode_entry(kind, 1, prev, payload).unwrap();
        chain.push(ChainEntry {
            index: self.next,
            entry: LogEntry::decode(&bytes).unwrap(),
            bytes,
        });
        self.next += 1;
    }
    fn register(&mut self, u: &User) {
        let rec = u.id.sign_device_record(u.handle, &u.dev, 1).unwrap();
        self.append(u.handle, EntryKind::Device, &rec);
    }
    fn change(&mut self, signer: &User, op: TeamOp, member: &User, epoch: u32, key: &EpochSecret) {
        self.change_raw(
            signer,
            &signer.dev,
            op,
            member,
            TeamRole::Member,
            epoch,
            key,
        );
    }
    #[allow(clippy::too_many_arguments)]
    fn change_raw(
        &mut self,
        signer: &User,
        dev: &DeviceSecret,
        op: TeamOp,
        member: &User,
        role: TeamRole,
        epoch: u32,
        key: &EpochSecret,
    ) {
        let c = TeamChange::sign(
            &TeamChangeBody {
                team: TEAM.into(),
                epoch,
                op,
                member: member.handle.into(),
                member_identity: member.id.public_key(),
                role,
                epoch_key: key.public().clone(),
                signer: signer.handle.into(),
                at: 1,
            },
            dev,
        )
        .unwrap();
        self.append(&format!("team:{TEAM}"), EntryKind::Team, &c);
    }
    fn replay(&self) -> Result<serment_core::team::TeamState, Error> {
        let chain = self.chains[&format!("team:{TEAM}")].clone();
        let mut hs = BTreeMap::new();
        for h in named_handles(&chain) {
            hs.insert(h.clone(), self.chains.get(&h).cloned().unwrap_or_default());
        }
        replay_team(TEAM, &chain, &hs)
    }
}

fn base() -> (Log, User, User, User, EpochSecret) {
    let (a, b, c) = (user("alice", 1), user("bob", 2), user("carol", 3));
    let mut log = Log::default();
    for u in [&a, &b, &c] {
        log.register(u);
    }
    let k1 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Create, &a, 1, &k1);
    log.change(&a, TeamOp::Add, &b, 1, &k1);
    (log, a, b, c, k1)
}

fn team_err(r: Result<serment_core::team::TeamState, Error>) -> &'static str {
    match r {
        Err(Error::Team { reason }) => reason,
        other => panic!("expected a team error, got {other:?}"),
    }
}

#[test]
fn creation_add_remove_rotates_the_epoch() {
    let (mut log, a, b, c, k1) = base();
    log.change(&a, TeamOp::Add, &c, 1, &k1);
    let s = log.replay().unwrap();
    assert_eq!(s.members.len(), 3);
    assert!(s.is_admin("alice") && !s.is_admin("bob"));
    assert_eq!(s.current().unwrap().epoch, 1);
    let k2 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Remove, &b, 2, &k2);
    let s = log.replay().unwrap();
    assert!(!s.is_member("bob"));
    assert_eq!(s.removed, vec!["bob".to_owned()]);
    assert_eq!(s.current().unwrap().epoch, 2);
    assert_eq!(s.current().unwrap().key, *k2.public());
    assert_eq!(s.epochs.len(), 2);
}

#[test]
fn a_non_admin_cannot_sign_a_change() {
    let (mut log, _a, b, c, k1) = base();
    log.change(&b, TeamOp::Add, &c, 1, &k1);
    assert!(team_err(log.replay()).contains("not a current admin"));
}

#[test]
fn an_admin_grant_gives_the_power_to_sign() {
    let (mut log, a, b, c, k1) = base();
    log.change_raw(&a, &a.dev, TeamOp::GrantAdmin, &b, TeamRole::Admin, 1, &k1);
    log.change(&b, TeamOp::Add, &c, 1, &k1);
    let s = log.replay().unwrap();
    assert!(s.is_admin("bob") && s.is_member("carol"));
}

#[test]
fn a_removed_admin_cannot_sign_a_change() {
    let (mut log, a, b, c, k1) = base();
    log.change_raw(&a, &a.dev, TeamOp::GrantAdmin, &b, TeamRole::Admin, 1, &k1);
    let k2 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Remove, &b, 2, &k2);
    log.change(&b, TeamOp::Add, &c, 2, &k2);
    assert!(team_err(log.replay()).contains("not a current admin"));
}

#[test]
fn a_revoked_device_cannot_sign_a_change() {
    let (mut log, a, _b, c, k1) = base();
    let rev = Revocation::sign("alice", &a.id, &a.dev.id(), 2).unwrap();
    log.append("alice", EntryKind::Revocation, &rev);
    log.change(&a, TeamOp::Add, &c, 1, &k1);
    assert!(team_err(log.replay()).contains("not a current device"));
}

#[test]
fn a_device_the_identity_never_certified_cannot_sign() {
    let (mut log, a, _b, c, k1) = base();
    let stranger = DeviceSecret::from_test_seed_hybrid(&[77; 32]);
    log.change_raw(&a, &stranger, TeamOp::Add, &c, TeamRole::Member, 1, &k1);
    assert!(team_err(log.replay()).contains("not a current device"));
}

#[test]
fn epochs_must_follow_and_never_reuse_a_key() {
    let (log0, a, b, _c, k1) = base();
    let mut log = log0;
    // A removal that keeps the old key: the removed member could still read.
    log.change(&a, TeamOp::Remove, &b, 2, &k1);
    assert!(team_err(log.replay()).contains("reuses an old epoch key"));
    let (mut log, a, b, _c, _k1) = base();
    let k3 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Remove, &b, 3, &k3);
    assert!(team_err(log.replay()).contains("out of sequence"));
    let (mut log, a, _b, c, _k1) = base();
    let other = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Add, &c, 1, &other);
    assert!(team_err(log.replay()).contains("keeps the epoch"));
}

#[test]
fn the_chain_starts_with_its_creation_and_names_true_identities() {
    let (a, b) = (user("alice", 1), user("bob", 2));
    let mut log = Log::default();
    log.register(&a);
    log.register(&b);
    let k1 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Add, &b, 1, &k1);
    assert!(team_err(log.replay()).contains("creation"));
    // A member identity key that is not the member's key in the log.
    let mut log = Log::default();
    log.register(&a);
    log.register(&b);
    log.change(&a, TeamOp::Create, &a, 1, &k1);
    let impostor = User {
        handle: "bob",
        id: IdentitySecret::from_seed(&[66; 32]),
        dev: DeviceSecret::from_test_seed_hybrid(&[67; 32]),
    };
    log.change(&a, TeamOp::Add, &impostor, 1, &k1);
    assert!(team_err(log.replay()).contains("member identity key"));
}

#[test]
fn the_last_admin_cannot_be_removed_and_a_dropped_entry_breaks_the_chain() {
    let (mut log, a, _b, _c, _k1) = base();
    let k2 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Remove, &a, 2, &k2);
    assert!(team_err(log.replay()).contains("last admin"));
    // The server drops the removal from the chain it shows: the next change no longer links.
    let (mut log, a, b, c, _k1) = base();
    log.change(&a, TeamOp::Remove, &b, 2, &k2);
    log.change(&a, TeamOp::Add, &c, 2, &k2);
    assert!(log.replay().is_ok());
    log.chains
        .get_mut(&format!("team:{TEAM}"))
        .unwrap()
        .remove(2);
    assert!(matches!(log.replay(), Err(Error::History { .. })));
}

/// `TeamState::apply`: a member holding the replayed state takes the next change in alone, with
/// the same rules, and ends in the state a whole replay gives; a change that does not follow the
/// head, or breaks a rule, is refused and leaves the state as it was.
#[test]
fn applying_the_next_change_equals_the_whole_replay() {
    let (mut log, a, b, c, _k1) = base();
    let mut held = log.replay().unwrap();
    let k2 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Remove, &b, 2, &k2);
    let removal = log.chains[&format!("team:{TEAM}")].last().unwrap().clone();
    let hs: BTreeMap<_, _> = log.chains.clone().into_iter().collect();
    held.apply(&removal, &hs).unwrap();
    let whole = log.replay().unwrap();
    assert_eq!(held.members, whole.members);
    assert_eq!(held.removed, whole.removed);
    assert_eq!(held.epochs, whole.epochs);
    assert_eq!(held.head, whole.head);
    assert_eq!(held.changes, whole.changes);
    assert_eq!(held.current().unwrap().key, *k2.public());

    // The same change again: it does not follow the new head.
    let before = held.clone();
    assert!(team_err(held.apply(&removal, &hs).map(|()| held.clone())).contains("follow"));
    // A change that skips one (the server dropped the add of carol): does not follow either.
    log.change(&a, TeamOp::Add, &c, 2, &k2);
    let k3 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Rotate, &a, 3, &k3);
    let rotate = log.chains[&format!("team:{TEAM}")].last().unwrap().clone();
    let hs: BTreeMap<_, _> = log.chains.clone().into_iter().collect();
    assert!(team_err(held.apply(&rotate, &hs).map(|()| held.clone())).contains("follow"));
    assert_eq!(held.head, before.head);
    assert_eq!(held.members, before.members);

    // A following change that breaks a rule: bob, removed, signs an add.
    let (mut log, a, b, c, _k1) = base();
    let mut held = log.replay().unwrap();
    let k2 = EpochSecret::generate().unwrap();
    log.change(&a, TeamOp::Remove, &b, 2, &k2);
    let hs: BTreeMap<_, _> = log.chains.clone().into_iter().collect();
    held.apply(
        &log.chains[&format!("team:{TEAM}")].last().unwrap().clone(),
        &hs,
    )
    .unwrap();
    log.change(&b, TeamOp::Add, &c, 2, &k2);
    let by_bob = log.chains[&format!("team:{TEAM}")].last().unwrap().clone();
    let hs: BTreeMap<_, _> = log.chains.clone().into_iter().collect();
    let head = held.head;
    assert!(
        team_err(held.apply(&by_bob, &hs).map(|()| held.clone())).contains("not a current admin")
    );
    assert_eq!(held.head, head);
    assert!(!held.is_member("carol"));
}

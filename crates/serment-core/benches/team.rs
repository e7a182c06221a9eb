//! Care-team and device benchmarks (issue 16, PROTOCOL.md §4.1 and §12), one core. Run with the
//! machine otherwise quiet:
//!
//! ```text
//! cargo bench -p serment-core --bench team
//! ```
//!
//! - `share/{10,100,1000}`: sharing a document's DEK with a team of N members: one hybrid key wrap
//!   to the current epoch key, whatever N (the `wraps` counter is 1 per share). `share_verified`
//!   adds what a client does first: replaying the team's N-member chain (§12.4) from its decoded
//!   entries and every member's key history.
//! - `remove_from_1000`: an admin removing one member of 1,000: a fresh X-Wing epoch key, the
//!   signed change, the epoch secret wrapped to the 999 remaining member devices (one device each),
//!   and the log entry (envelope, leaf hash, appended to a tree of the team's size).
//! - `process_removal`: a remaining member taking the removal in: decoding the change and checking
//!   its signature (what `LogEntry::decode` does), applying it to the state it held
//!   ([`TeamState::apply`], `incremental`; the clone of the 1,000-member state included), unwrapping
//!   the new epoch secret and checking it against the logged key; `full_replay_1000` replays the
//!   whole chain of a 1,000-member team instead, as `serment_client::team` does today on every
//!   operation.
//! - `device_catch_up/{100,1000,10000}`: adding a device to a user holding N documents (the
//!   catch-up of §4.1, O(N)): per document, decode the device's own wrap, check its signature,
//!   unwrap the DEK and wrap it to the new device (hybrid). Network round trips are not included.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use serment_core::DocId;
use serment_core::identity::{DeviceSecret, IdentitySecret};
use serment_core::log::entry::{EntryKind, LogEntry, encode_entry};
use serment_core::log::history::ChainEntry;
use serment_core::log::tree::MemoryTree;
use serment_core::rng::os_rng;
use serment_core::stream::DEK_LEN;
use serment_core::team::{
    EpochSecret, TeamChange, TeamChangeBody, TeamKeyWrap, TeamOp, TeamRole, TeamState,
    named_handles, replay_team, unwrap_epoch_secret, wrap_epoch_secret,
};
use serment_core::wrap::{self, Recipient, WrappedKey};
use zeroize::Zeroizing;

fn main() {
    divan::main();
}

const TEAM: &str = "cardio-chu";
const SIZES: &[usize] = &[10, 100, 1000];

struct User {
    handle: String,
    id: IdentitySecret,
    dev: DeviceSecret,
}

fn user(i: usize) -> User {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    let mut dseed = seed;
    dseed[31] = 0xd1;
    User {
        handle: format!("member-{i:04}"),
        id: IdentitySecret::from_seed(&seed),
        dev: DeviceSecret::from_test_seed_hybrid(&dseed),
    }
}

/// A team of `n` members (member 0 the creator and admin) as a log in memory: every member's
/// device record, then the creation and `n - 1` adds, each a decoded [`ChainEntry`].
struct Team {
    users: Vec<User>,
    chains: BTreeMap<String, Vec<ChainEntry>>,
    next: u64,
    key: EpochSecret,
    /// The replayed state (set once the chain is built).
    state: Option<TeamState>,
}

impl Team {
    fn append(&mut self, subject: &str, kind: EntryKind, payload: &[u8]) -> ChainEntry {
        let chain = self.chains.entry(subject.to_owned()).or_default();
        let prev = chain.last().map(ChainEntry::link);
        let bytes = encode_entry(kind, 1, prev, payload).unwrap();
        let e = ChainEntry {
            index: self.next,
            entry: LogEntry::decode(&bytes).unwrap(),
            bytes,
        };
        chain.push(e.clone());
        self.next += 1;
        e
    }

    fn change(&self, op: TeamOp, member: &User, epoch: u32, key: &EpochSecret) -> Vec<u8> {
        let admin = &self.users[0];
        TeamChange::sign(
            &TeamChangeBody {
                team: TEAM.into(),
                epoch,
                op,
                member: member.handle.clone(),
                member_identity: member.id.public_key(),
                role: if op == TeamOp::Add {
                    TeamRole::Member
                } else {
                    TeamRole::Admin
                },
                epoch_key: key.public().clone(),
                signer: admin.handle.clone(),
                at: 1,
            },
            &admin.dev,
        )
        .unwrap()
    }

    fn new(n: usize) -> Team {
        let users: Vec<User> = (0..n).map(user).collect();
        let key = EpochSecret::from_test_seed(&[7; 32]).unwrap();
        let mut t = Team {
            users: Vec::new(),
            chains: BTreeMap::new(),
            next: 0,
            state: None,
            key,
        };
        for u in &users {
            let rec = u.id.sign_device_record(&u.handle, &u.dev, 1).unwrap();
            t.append(&u.handle, EntryKind::Device, &rec);
        }
        t.users = users;
        let subject = format!("team:{TEAM}");
        let create = t.change(TeamOp::Create, &t.users[0], 1, &t.key);
        t.append(&subject, EntryKind::Team, &create);
        for i in 1..n {
            let add = t.change(TeamOp::Add, &t.users[i], 1, &t.key);
            t.append(&subject, EntryKind::Team, &add);
        }
        t.state = Some(t.replay());
        t
    }

    fn team_chain(&self) -> &[ChainEntry] {
        &self.chains[&format!("team:{TEAM}")]
    }

    fn histories(&self) -> BTreeMap<String, Vec<ChainEntry>> {
        named_handles(self.team_chain())
            .into_iter()
            .map(|h| {
                let c = self.chains[&h].clone();
                (h, c)
            })
            .collect()
    }

    fn replay(&self) -> TeamState {
        replay_team(TEAM, self.team_chain(), &self.histories()).unwrap()
    }

    fn state(&self) -> &TeamState {
        self.state.as_ref().expect("replayed in Team::new")
    }
}

fn team(n: usize) -> &'static Team {
    static TEAMS: OnceLock<BTreeMap<usize, Team>> = OnceLock::new();
    TEAMS
        .get_or_init(|| SIZES.iter().map(|&n| (n, Team::new(n))).collect())
        .get(&n)
        .expect("a benchmarked size")
}

fn dek() -> Zeroizing<[u8; DEK_LEN]> {
    Zeroizing::new([0x42; DEK_LEN])
}

/// Sharing with a team of N: one wrap to the current epoch key.
#[divan::bench(args = SIZES)]
fn share(bencher: Bencher, n: usize) {
    let t = team(n);
    let epoch = t.state().current().unwrap();
    let to = t.key.recipient(TEAM, epoch.epoch);
    let author = &t.users[0].dev;
    let doc = DocId::from_bytes([1; 16]);
    bencher.counter(ItemsCount::new(1usize)).bench(|| {
        let w = wrap::wrap_dek(&dek(), &doc, 1, &[9; 32], &to, author, &mut os_rng()).unwrap();
        black_box(w)
    });
}

/// Sharing with a team of N after replaying its chain, as a client does before it wraps.
#[divan::bench(args = SIZES, sample_count = 20)]
fn share_verified(bencher: Bencher, n: usize) {
    let t = team(n);
    let histories = t.histories();
    let author = &t.users[0].dev;
    let doc = DocId::from_bytes([1; 16]);
    bencher.counter(ItemsCount::new(1usize)).bench(|| {
        let state = replay_team(TEAM, t.team_chain(), &histories).unwrap();
        let epoch = state.current().unwrap();
        let to = serment_core::team::epoch_recipient(TEAM, epoch.epoch, &epoch.key);
        let w = wrap::wrap_dek(&dek(), &doc, 1, &[9; 32], &to, author, &mut os_rng()).unwrap();
        black_box(w)
    });
}

/// An admin removes one member of 1,000: new epoch key, signed change, 999 epoch-key wraps, the
/// log entry appended to a tree holding the team's entries.
#[divan::bench(sample_count = 10)]
fn remove_from_1000(bencher: Bencher) {
    let t = team(1000);
    let removed = &t.users[999];
    let remaining: Vec<Recipient> = t.users[..999]
        .iter()
        .map(|u| Recipient::from_device(&u.dev))
        .collect();
    let admin = &t.users[0].dev;
    let head = t.team_chain().last().unwrap().link();
    bencher
        .counter(ItemsCount::new(remaining.len()))
        .with_inputs(|| {
            let mut tree = MemoryTree::new();
            for i in 0..t.next {
                tree.push_entry(&i.to_be_bytes()).unwrap();
            }
            tree
        })
        .bench_local_values(|mut tree| {
            let key = EpochSecret::generate().unwrap();
            let change = t.change(TeamOp::Remove, removed, 2, &key);
            let mut rng = os_rng();
            let wraps: Vec<Vec<u8>> = remaining
                .iter()
                .map(|r| wrap_epoch_secret(&key, TEAM, 2, r, admin, &mut rng).unwrap())
                .collect();
            let entry = encode_entry(EntryKind::Team, 2, Some(head), &change).unwrap();
            tree.push_entry(&entry).unwrap();
            black_box((wraps, tree))
        });
}

/// The removal of member 999 from the 1,000-member team, as a remaining member receives it: the
/// log entry, the new epoch's key wrapped to member 1's device.
struct Removal {
    entry: Vec<u8>,
    wrap: Vec<u8>,
    key: EpochSecret,
}

fn removal() -> &'static Removal {
    static R: OnceLock<Removal> = OnceLock::new();
    R.get_or_init(|| {
        let t = team(1000);
        let key = EpochSecret::from_test_seed(&[8; 32]).unwrap();
        let change = t.change(TeamOp::Remove, &t.users[999], 2, &key);
        let head = t.team_chain().last().unwrap().link();
        let entry = encode_entry(EntryKind::Team, 2, Some(head), &change).unwrap();
        let to = Recipient::from_device(&t.users[1].dev);
        let wrap = wrap_epoch_secret(&key, TEAM, 2, &to, &t.users[0].dev, &mut os_rng()).unwrap();
        Removal { entry, wrap, key }
    })
}

mod process_removal {
    use super::*;

    /// Take the removal in with the state already held ([`TeamState::apply`]: the change's
    /// signature at decode, its link to the held head, every rule of the replay for that one
    /// change against the signer's and the member's key histories), then unwrap the new epoch
    /// key and check it against the logged one.
    #[divan::bench]
    fn incremental(bencher: Bencher) {
        let t = team(1000);
        let r = removal();
        let me = &t.users[1].dev;
        let histories = t.histories();
        bencher.bench(|| {
            let e = ChainEntry {
                index: t.next,
                entry: LogEntry::decode(&r.entry).unwrap(),
                bytes: r.entry.clone(),
            };
            let mut state = t.state().clone();
            state.apply(&e, &histories).unwrap();
            let epoch = state.current().unwrap();
            let w = TeamKeyWrap::decode(&r.wrap).unwrap();
            w.verify_signature(&t.users[0].dev.signing_public_key())
                .unwrap();
            let s = unwrap_epoch_secret(&w, me, TEAM, epoch.epoch, &epoch.key).unwrap();
            assert_eq!(s.public(), r.key.public());
            black_box(s)
        });
    }

    /// Replay the whole chain of the 1,000-member team with the removal, then unwrap.
    #[divan::bench(sample_count = 10)]
    fn full_replay_1000(bencher: Bencher) {
        let t = team(1000);
        let r = removal();
        let me = &t.users[1].dev;
        let mut chain = t.team_chain().to_vec();
        chain.push(ChainEntry {
            index: t.next,
            entry: LogEntry::decode(&r.entry).unwrap(),
            bytes: r.entry.clone(),
        });
        let histories = t.histories();
        bencher.bench(|| {
            let state = replay_team(TEAM, &chain, &histories).unwrap();
            let epoch = state.current().unwrap();
            let w = TeamKeyWrap::decode(&r.wrap).unwrap();
            let s = unwrap_epoch_secret(&w, me, TEAM, epoch.epoch, &epoch.key).unwrap();
            black_box(s)
        });
    }
}

/// A user's N documents, each with a hybrid wrap to its device, for the catch-up.
fn documents(n: usize) -> &'static (DeviceSecret, DeviceSecret, Vec<Vec<u8>>) {
    static DOCS: OnceLock<(DeviceSecret, DeviceSecret, Vec<Vec<u8>>)> = OnceLock::new();
    let all = DOCS.get_or_init(|| {
        let author = DeviceSecret::from_test_seed_hybrid(&[0xa0; 32]);
        let old = DeviceSecret::from_test_seed_hybrid(&[0xa1; 32]);
        let to = Recipient::from_device(&old);
        let mut rng = os_rng();
        let wraps = (0..10_000u32)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_be_bytes());
                wrap::wrap_dek(
                    &dek(),
                    &DocId::from_bytes(id),
                    1,
                    &[9; 32],
                    &to,
                    &author,
                    &mut rng,
                )
                .unwrap()
            })
            .collect();
        (author, old, wraps)
    });
    assert!(n <= all.2.len());
    all
}

#[divan::bench(args = [100, 1000, 10_000], sample_count = 3)]
fn device_catch_up(bencher: Bencher, n: usize) {
    let (author, old, wraps) = documents(n);
    let new = Recipient::from_device(&DeviceSecret::from_test_seed_hybrid(&[0xa2; 32]));
    let author_key = author.signing_public_key();
    bencher.counter(ItemsCount::new(n)).bench(|| {
        let mut rng = os_rng();
        let out: Vec<Vec<u8>> = wraps[..n]
            .iter()
            .map(|b| {
                let w = WrappedKey::decode(b).unwrap();
                w.verify_signature(&author_key).unwrap();
                let dek = wrap::unwrap_dek(&w, old).unwrap();
                wrap::wrap_dek(
                    &dek,
                    &w.doc_id,
                    w.doc_version,
                    &w.header_hash,
                    &new,
                    old,
                    &mut rng,
                )
                .unwrap()
            })
            .collect();
        black_box(out)
    });
}
